/* Channel (ControlChannelTrigger): argument checks, keep-alive interval, flush, close, the
   runtime's channel limit, transport replacement (RESET) and the HARDWARE slot. */
#include "harness.h"

static h_child *server;

static void url_for(char *out, size_t n, const char *path) { h_url(out, n, "ws", server->port, path); }

static void test_id_and_interval_validation(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_channel *sentinel = (ctrlchan_channel *)&rt, *ch = sentinel;
    char id64[65], id65[66], e64[64 * 2 + 1], e65[65 * 2 + 1];
    int i;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    memset(id64, 'a', 64);
    id64[64] = '\0';
    memset(id65, 'b', 65);
    id65[65] = '\0';
    for (i = 0; i < 65; i++) { /* "é" is one character, two bytes */
        e65[2 * i] = (char)0xc3;
        e65[2 * i + 1] = (char)0xa9;
    }
    e65[130] = '\0';
    memcpy(e64, e65, 128);
    e64[128] = '\0';

    /* Ids: 1..64 characters of UTF-8. */
    CHECK_RES(ctrlchan_channel_new(rt, id65, 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK(ch == sentinel);
    CHECK_RES(ctrlchan_channel_new(rt, "", 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_new(rt, "bad\xff\xfe", 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_new(rt, "\xc3\x28", 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_new(rt, "\xed\xa0\x80", 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch),
              CTRLCHAN_RESULT_INVALID_ARGUMENT); /* a UTF-16 surrogate encoded in UTF-8 */
    CHECK_RES(ctrlchan_channel_new(rt, NULL, 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_new(rt, e65, 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK(ch == sentinel);

    /* Intervals: 100 ms ... 24 h. */
    CHECK_RES(ctrlchan_channel_new(rt, "x", 99, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_new(rt, "x", 86400001u, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_new(rt, "x", 0, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_new(rt, "x", UINT32_MAX, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_new(rt, "x", 1000, (ctrlchan_resource_type)7, &ch), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_new(rt, "x", 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, NULL),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK(ch == sentinel);

    /* The edges are accepted. */
    ch = NULL;
    CHECK_OK(ctrlchan_channel_new(rt, id64, 100, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch));
    ctrlchan_channel_free(ch);
    ch = NULL;
    CHECK_OK(ctrlchan_channel_new(rt, e64, 86400000u, CTRLCHAN_RESOURCE_TYPE_REQUEST_HARDWARE_SLOT, &ch));
    if (ch) {
        const char *id = NULL;
        uint32_t ms = 0;
        ctrlchan_resource_type t = CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT;
        CHECK_OK(ctrlchan_channel_get_id(ch, &id));
        CHECK_STR_EQ(id, e64);
        CHECK_OK(ctrlchan_channel_get_server_keepalive_interval(ch, &ms));
        CHECK_INT_EQ(ms, 86400000u);
        CHECK_OK(ctrlchan_channel_get_resource_type(ch, &t));
        CHECK_INT_EQ(t, CTRLCHAN_RESOURCE_TYPE_REQUEST_HARDWARE_SLOT);
        CHECK_RES(ctrlchan_channel_get_id(ch, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
        CHECK_RES(ctrlchan_channel_get_server_keepalive_interval(ch, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
        CHECK_RES(ctrlchan_channel_get_resource_type(ch, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
        CHECK_RES(ctrlchan_channel_current_keepalive_interval(ch, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    }
    ctrlchan_channel_free(ch);
    ctrlchan_runtime_free(rt);
}

static void test_decrease_network_keepalive_interval_halves(void) {
    static const uint32_t expect[] = {500, 250, 125, 100, 100};
    ctrlchan_runtime *rt = NULL;
    ctrlchan_channel *ch = NULL;
    uint32_t ms = 0, server_ms = 0;
    int i;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_channel_new(rt, "halves", 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch));
    CHECK_OK(ctrlchan_channel_current_keepalive_interval(ch, &ms));
    CHECK_INT_EQ(ms, 1000);
    for (i = 0; i < 5; i++) {
        CHECK_OK(ctrlchan_channel_decrease_network_keepalive_interval(ch));
        CHECK_OK(ctrlchan_channel_current_keepalive_interval(ch, &ms));
        CHECK_INT_EQ(ms, expect[i]);
    }
    /* The server interval itself is unchanged. */
    CHECK_OK(ctrlchan_channel_get_server_keepalive_interval(ch, &server_ms));
    CHECK_INT_EQ(server_ms, 1000);
    ctrlchan_channel_free(ch);
    ctrlchan_runtime_free(rt);
}

static void test_decrease_reschedules_immediately(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_event *ev = NULL;
    char url[128];
    uint32_t ms = 0;
    int i;
    int64_t t0;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/echo");
    h_open_channel(rt, "resched", 60000, NULL, url, &ws, &ch);
    /* 60 s interval: nothing for a while. */
    CHECK_RES(ctrlchan_runtime_next_event(rt, 300, &ev), CTRLCHAN_RESULT_TIMEOUT);
    for (i = 0; i < 8; i++) CHECK_OK(ctrlchan_channel_decrease_network_keepalive_interval(ch));
    CHECK_OK(ctrlchan_channel_current_keepalive_interval(ch, &ms));
    CHECK_INT_EQ(ms, 234); /* 60000 / 2^8 */
    t0 = h_now_ms();
    /* The connection has been idle > 300 ms, so the next keep-alive is due at once. */
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_KEEPALIVE, 2000);
    CHECK(ev != NULL);
    CHECK_RANGE(h_now_ms() - t0, 0, 500);
    if (ev) {
        CHECK(ctrlchan_event_get_rtt_us(ev) > 0);
        CHECK_STR_EQ(ctrlchan_event_get_channel_id(ev), "resched");
        ctrlchan_event_free(ev);
    }
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_flush_transport(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL, *ws2 = NULL;
    ctrlchan_channel *ch = NULL, *ch2 = NULL;
    ctrlchan_event *ev;
    uint8_t *big;
    char url[128], *stats;
    const size_t big_len = 2u << 20;
    int i;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));

    /* No transport / not connected -> INVALID_STATE. */
    REQUIRE_OK(ctrlchan_channel_new(rt, "flush0", 60000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch2));
    CHECK_RES(ctrlchan_channel_flush_transport(ch2, 100), CTRLCHAN_RESULT_INVALID_STATE);
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws2));
    CHECK_OK(ctrlchan_channel_using_transport(ch2, ws2));
    CHECK_RES(ctrlchan_channel_flush_transport(ch2, 100), CTRLCHAN_RESULT_INVALID_STATE);
    ctrlchan_channel_free(ch2);
    ctrlchan_websocket_free(ws2);

    /* 2 MiB and 20 small messages, flushed: /count has them all. */
    url_for(url, sizeof url, "/count");
    h_open_channel(rt, "flush", 60000, NULL, url, &ws, &ch);
    CHECK_OK(ctrlchan_channel_flush_transport(ch, 1000)); /* nothing queued */
    big = (uint8_t *)malloc(big_len);
    REQUIRE(big != NULL);
    memset(big, 'z', big_len);
    CHECK_OK(ctrlchan_websocket_send(ws, big, big_len));
    for (i = 0; i < 20; i++) CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"m", 1));
    free(big);
    CHECK_OK(ctrlchan_channel_flush_transport(ch, 10000));
    CHECK_OK(ctrlchan_websocket_send_message(ws, CTRLCHAN_MESSAGE_TYPE_UTF8, (const uint8_t *)"stats", 5));
    stats = h_wait_text(rt, 5000);
    REQUIRE(stats != NULL);
    CHECK_INT_EQ(h_json_int(stats, "messages"), 21);
    free(stats);

    /* Closed transport -> CLOSED. */
    CHECK_OK(ctrlchan_websocket_close(ws, 1000, "bye"));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CLOSED, 5000);
    CHECK(ev != NULL);
    ctrlchan_event_free(ev);
    for (i = 0; i < 250; i++) { /* until TCP is closed as well (bounded) */
        ctrlchan_websocket_state st = CTRLCHAN_WEBSOCKET_STATE_OPEN;
        CHECK_OK(ctrlchan_websocket_get_state(ws, &st));
        if (st == CTRLCHAN_WEBSOCKET_STATE_CLOSED) break;
        h_sleep_ms(10);
    }
    CHECK_RES(ctrlchan_channel_flush_transport(ch, 100), CTRLCHAN_RESULT_CLOSED);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_close(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL, *ws2 = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_keepalive *ka = NULL;
    ctrlchan_runtime_stats rs;
    ctrlchan_status st = CTRLCHAN_STATUS_SYSTEM_ERROR;
    ctrlchan_event *ev;
    h_recorder rec;
    char url[128];
    const char *id = NULL;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_keepalive_new(&ka));
    url_for(url, sizeof url, "/echo");
    h_open_channel(rt, "closing", 60000, NULL, url, &ws, &ch);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.channels_active, 1);

    CHECK_OK(ctrlchan_channel_close(ch));
    CHECK_OK(ctrlchan_channel_close(ch)); /* idempotent */
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.channels_active, 0);

    /* A closed channel refuses work but stays a valid handle. */
    CHECK_OK(ctrlchan_channel_get_id(ch, &id));
    CHECK_STR_EQ(id, "closing");
    CHECK_RES(ctrlchan_channel_wait_for_push_enabled(ch, &st), CTRLCHAN_RESULT_INVALID_STATE);
    CHECK_RES(ctrlchan_channel_set_keepalive(ch, ka), CTRLCHAN_RESULT_INVALID_STATE);
    CHECK_RES(ctrlchan_channel_decrease_network_keepalive_interval(ch), CTRLCHAN_RESULT_INVALID_STATE);
    CHECK_RES(ctrlchan_channel_flush_transport(ch, 100), CTRLCHAN_RESULT_INVALID_STATE);
    CHECK_RES(ctrlchan_keepalive_run(ka, ch), CTRLCHAN_RESULT_INVALID_STATE);
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws2));
    CHECK_RES(ctrlchan_channel_using_transport(ch, ws2), CTRLCHAN_RESULT_INVALID_STATE);
    h_recorder_init(&rec);
    CHECK_RES(ctrlchan_channel_set_event_handler(ch, h_recorder_cb, &rec, h_recorder_fin), CTRLCHAN_RESULT_INVALID_STATE);
    CHECK_INT_EQ(h_recorder_finalized(&rec), 0); /* on failure the caller keeps the userdata */

    /* The transport stays open and its events no longer belong to the channel. */
    CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"still open", 10));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
    CHECK(ev != NULL);
    if (ev) {
        CHECK(ctrlchan_event_get_channel(ev) == NULL);
        CHECK_STR_EQ(ctrlchan_event_get_channel_id(ev), "");
        CHECK(ctrlchan_event_get_websocket(ev) == ws);
        ctrlchan_event_free(ev);
    }
    /* Unbound now, but connected: using_transport is for websockets before connect. */
    {
        ctrlchan_channel *other = NULL;
        REQUIRE_OK(ctrlchan_channel_new(rt, "other", 60000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &other));
        CHECK_RES(ctrlchan_channel_using_transport(other, ws), CTRLCHAN_RESULT_INVALID_STATE);
        ctrlchan_channel_free(other);
    }
    h_recorder_destroy(&rec);
    ctrlchan_channel_free(ch);
    ctrlchan_keepalive_free(ka);
    ctrlchan_websocket_free(ws2);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_wait_for_push_enabled_statuses(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_runtime_stats rs;
    ctrlchan_status st = CTRLCHAN_STATUS_SYSTEM_ERROR;
    char url[128];
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_channel_new(rt, "statuses", 60000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch));
    /* No transport. */
    CHECK_OK(ctrlchan_channel_wait_for_push_enabled(ch, &st));
    CHECK_INT_EQ(st, CTRLCHAN_STATUS_TRANSPORT_DISCONNECTED);
    CHECK_RES(ctrlchan_channel_wait_for_push_enabled(ch, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    /* Transport not connected yet. */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    REQUIRE_OK(ctrlchan_channel_using_transport(ch, ws));
    CHECK_OK(ctrlchan_channel_using_transport(ch, ws)); /* the same one again is fine */
    st = CTRLCHAN_STATUS_SYSTEM_ERROR;
    CHECK_OK(ctrlchan_channel_wait_for_push_enabled(ch, &st));
    CHECK_INT_EQ(st, CTRLCHAN_STATUS_TRANSPORT_DISCONNECTED);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.channels_active, 0);
    /* Connected: allocated, and asking again keeps one slot. */
    url_for(url, sizeof url, "/echo");
    REQUIRE_OK(ctrlchan_websocket_connect(ws, url, 10000));
    CHECK_OK(ctrlchan_channel_wait_for_push_enabled(ch, &st));
    CHECK_INT_EQ(st, CTRLCHAN_STATUS_SOFTWARE_SLOT_ALLOCATED);
    CHECK_OK(ctrlchan_channel_wait_for_push_enabled(ch, &st));
    CHECK_INT_EQ(st, CTRLCHAN_STATUS_SOFTWARE_SLOT_ALLOCATED);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.channels_active, 1);
    ctrlchan_channel_free(ch);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.channels_active, 0); /* free releases the slot */
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_channel_limit_policy_error(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws1 = NULL, *ws2 = NULL, *ws3 = NULL;
    ctrlchan_channel *ch1 = NULL, *ch2 = NULL, *ch3 = NULL;
    ctrlchan_status st = CTRLCHAN_STATUS_SYSTEM_ERROR;
    ctrlchan_runtime_stats rs;
    char url[128];
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    CHECK_RES(ctrlchan_runtime_set_max_channels(rt, 0), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_OK(ctrlchan_runtime_set_max_channels(rt, 2));
    url_for(url, sizeof url, "/echo");
    h_open_channel(rt, "one", 60000, NULL, url, &ws1, &ch1);
    h_open_channel(rt, "two", 60000, NULL, url, &ws2, &ch2);

    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws3));
    REQUIRE_OK(ctrlchan_channel_new(rt, "three", 60000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch3));
    REQUIRE_OK(ctrlchan_channel_using_transport(ch3, ws3));
    REQUIRE_OK(ctrlchan_websocket_connect(ws3, url, 10000));
    CHECK_OK(ctrlchan_channel_wait_for_push_enabled(ch3, &st));
    CHECK_INT_EQ(st, CTRLCHAN_STATUS_POLICY_ERROR);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.channels_active, 2);

    /* A slot frees up when a channel closes; then the third one gets it. */
    CHECK_OK(ctrlchan_channel_close(ch1));
    CHECK_OK(ctrlchan_channel_wait_for_push_enabled(ch3, &st));
    CHECK_INT_EQ(st, CTRLCHAN_STATUS_SOFTWARE_SLOT_ALLOCATED);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.channels_active, 2);

    /* Lowering the limit below the current count does not evict, but blocks new slots. */
    CHECK_OK(ctrlchan_runtime_set_max_channels(rt, 1));
    CHECK_OK(ctrlchan_channel_wait_for_push_enabled(ch3, &st));
    CHECK_INT_EQ(st, CTRLCHAN_STATUS_SOFTWARE_SLOT_ALLOCATED); /* already holds its slot */

    ctrlchan_channel_free(ch1);
    ctrlchan_channel_free(ch2);
    ctrlchan_channel_free(ch3);
    ctrlchan_websocket_free(ws1);
    ctrlchan_websocket_free(ws2);
    ctrlchan_websocket_free(ws3);
    ctrlchan_runtime_free(rt);
}

static void test_using_transport_rules(void) {
    ctrlchan_runtime *rt = NULL, *rt2 = NULL;
    ctrlchan_websocket *ws = NULL, *ws_new = NULL, *foreign = NULL;
    ctrlchan_channel *ch = NULL, *ch_b = NULL;
    char url[128];
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_runtime_new(&rt2));
    REQUIRE_OK(ctrlchan_channel_new(rt, "rules", 60000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch));
    REQUIRE_OK(ctrlchan_channel_new(rt, "rules-b", 60000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch_b));

    /* A websocket of another runtime. */
    REQUIRE_OK(ctrlchan_websocket_new(rt2, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &foreign));
    CHECK_RES(ctrlchan_channel_using_transport(ch, foreign), CTRLCHAN_RESULT_INVALID_ARGUMENT);

    /* A websocket bound to another channel. */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    CHECK_OK(ctrlchan_channel_using_transport(ch_b, ws));
    CHECK_RES(ctrlchan_channel_using_transport(ch, ws), CTRLCHAN_RESULT_INVALID_STATE);
    ctrlchan_channel_free(ch_b); /* frees the binding */
    CHECK_OK(ctrlchan_channel_using_transport(ch, ws));

    /* While the transport is active it cannot be replaced. */
    url_for(url, sizeof url, "/echo");
    REQUIRE_OK(ctrlchan_websocket_connect(ws, url, 10000));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws_new));
    CHECK_RES(ctrlchan_channel_using_transport(ch, ws_new), CTRLCHAN_RESULT_INVALID_STATE);

    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_websocket_free(ws_new);
    ctrlchan_websocket_free(foreign);
    ctrlchan_runtime_free(rt2);
    ctrlchan_runtime_free(rt);
}

/* The channel's transport ends (how = "drop" via /drop, "closed" via /close); a new websocket
   is plugged in with using_transport: RESET event, and the new transport works. */
static void reset_after(const char *how) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL, *ws2 = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_status st = CTRLCHAN_STATUS_SYSTEM_ERROR;
    ctrlchan_event *ev;
    ctrlchan_runtime_stats rs;
    char url[128], *echo;
    int is_drop = strcmp(how, "drop") == 0;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, is_drop ? "/drop?after_ms=100" : "/close?code=1001&reason=going&after_ms=100");
    h_open_channel(rt, "phoenix", 60000, NULL, url, &ws, &ch);
    ev = h_wait_event(rt, is_drop ? CTRLCHAN_EVENT_KIND_TRANSPORT_DISCONNECTED : CTRLCHAN_EVENT_KIND_CLOSED, 5000);
    REQUIRE(ev != NULL);
    CHECK(ctrlchan_event_get_channel(ev) == ch);
    ctrlchan_event_free(ev);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.channels_active, 0); /* the lost transport released the slot */

    if (!is_drop) {
        /* After a close handshake, wait (bounded) for TCP to be gone as well: using_transport
           right at the CLOSED event is test_reset_from_event_callback's business. */
        int i;
        ctrlchan_websocket_state state = CTRLCHAN_WEBSOCKET_STATE_OPEN;
        for (i = 0; i < 300; i++) {
            CHECK_OK(ctrlchan_websocket_get_state(ws, &state));
            if (state == CTRLCHAN_WEBSOCKET_STATE_CLOSED) break;
            h_sleep_ms(10);
        }
        CHECK_INT_EQ(state, CTRLCHAN_WEBSOCKET_STATE_CLOSED);
    }
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws2));
    CHECK_OK(ctrlchan_channel_using_transport(ch, ws2));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_RESET, 2000);
    CHECK(ev != NULL);
    if (ev) {
        CHECK(ctrlchan_event_get_channel(ev) == ch);
        CHECK(ctrlchan_event_get_websocket(ev) == ws2);
        CHECK_STR_EQ(ctrlchan_event_get_channel_id(ev), "phoenix");
        ctrlchan_event_free(ev);
    }
    /* The new transport works. */
    url_for(url, sizeof url, "/echo");
    CHECK_OK(ctrlchan_websocket_connect(ws2, url, 10000));
    CHECK_OK(ctrlchan_channel_wait_for_push_enabled(ch, &st));
    CHECK_INT_EQ(st, CTRLCHAN_STATUS_SOFTWARE_SLOT_ALLOCATED);
    CHECK_OK(ctrlchan_websocket_send(ws2, (const uint8_t *)"again", 5));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
    CHECK(ev != NULL);
    if (ev) {
        CHECK(ctrlchan_event_get_channel(ev) == ch);
        CHECK(ctrlchan_event_get_websocket(ev) == ws2);
        echo = h_event_text(ev, NULL);
        CHECK_STR_EQ(echo, "again");
        free(echo);
        ctrlchan_event_free(ev);
    }
    h_expect_quiet(rt, 100); /* nothing from the old transport */
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_websocket_free(ws2);
    ctrlchan_runtime_free(rt);
}

static void test_reset_after_disconnect(void) { reset_after("drop"); }
static void test_reset_after_close(void) { reset_after("closed"); }

/* An app reconnecting from its event handler: on the terminal event of the transport, plug in
   a new websocket at once (using_transport is non-blocking, allowed in callbacks). */
struct reconnect {
    pthread_mutex_t mu;
    ctrlchan_channel *ch;
    ctrlchan_websocket *next;
    ctrlchan_event_kind terminal;
    int done;
    ctrlchan_result r;
    char err[256];
    int resets;
};

static void reconnect_cb(void *userdata, const ctrlchan_event *ev) {
    struct reconnect *rc = (struct reconnect *)userdata;
    ctrlchan_event_kind k = ctrlchan_event_get_kind(ev);
    if (k == rc->terminal) {
        /* No lock held while calling the library (see test_events: the RESET callback may run
           re-entrantly inside using_transport). */
        ctrlchan_result r = ctrlchan_channel_using_transport(rc->ch, rc->next);
        char err[256];
        snprintf(err, sizeof err, "%s", ctrlchan_last_error());
        pthread_mutex_lock(&rc->mu);
        if (!rc->done) {
            rc->r = r;
            snprintf(rc->err, sizeof rc->err, "%s", err);
            rc->done = 1;
        }
        pthread_mutex_unlock(&rc->mu);
    } else if (k == CTRLCHAN_EVENT_KIND_RESET) {
        pthread_mutex_lock(&rc->mu);
        rc->resets++;
        pthread_mutex_unlock(&rc->mu);
    }
}

static void reset_from_callback(const char *path, ctrlchan_event_kind terminal) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    struct reconnect rc;
    char url[128];
    int i, done = 0;
    memset(&rc, 0, sizeof rc);
    pthread_mutex_init(&rc.mu, NULL);
    rc.terminal = terminal;
    rc.r = CTRLCHAN_RESULT_PANIC;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &rc.next));
    url_for(url, sizeof url, path);
    h_open_channel(rt, "reconnect", 60000, NULL, url, &ws, &rc.ch);
    REQUIRE_OK(ctrlchan_channel_set_event_handler(rc.ch, reconnect_cb, &rc, NULL));
    for (i = 0; i < 500 && !done; i++) {
        pthread_mutex_lock(&rc.mu);
        done = rc.done;
        pthread_mutex_unlock(&rc.mu);
        if (!done) h_sleep_ms(10);
    }
    REQUIRE(done);
    CHECKF(rc.r == CTRLCHAN_RESULT_OK, "using_transport in the %s callback: %s: %s", h_kind_name(terminal),
           ctrlchan_result_name(rc.r), rc.err);
    if (rc.r == CTRLCHAN_RESULT_OK) {
        int resets = 0;
        for (i = 0; i < 200 && resets == 0; i++) {
            pthread_mutex_lock(&rc.mu);
            resets = rc.resets;
            pthread_mutex_unlock(&rc.mu);
            if (resets == 0) h_sleep_ms(10);
        }
        CHECK_INT_EQ(resets, 1);
    }
    ctrlchan_channel_free(rc.ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_websocket_free(rc.next);
    ctrlchan_runtime_free(rt);
    pthread_mutex_destroy(&rc.mu);
}

static void test_reset_from_disconnect_callback(void) {
    reset_from_callback("/drop?after_ms=100", CTRLCHAN_EVENT_KIND_TRANSPORT_DISCONNECTED);
}

static void test_reset_from_closed_callback(void) {
    reset_from_callback("/close?code=1000&after_ms=100", CTRLCHAN_EVENT_KIND_CLOSED);
}

static void test_hardware_slot(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_status st = CTRLCHAN_STATUS_SYSTEM_ERROR;
    ctrlchan_event *ev;
    char url[128];
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    REQUIRE_OK(ctrlchan_channel_new(rt, "hw", 30000, CTRLCHAN_RESOURCE_TYPE_REQUEST_HARDWARE_SLOT, &ch));
    REQUIRE_OK(ctrlchan_channel_using_transport(ch, ws));
    url_for(url, sizeof url, "/echo");
    REQUIRE_OK(ctrlchan_websocket_connect(ws, url, 10000));
    CHECK_OK(ctrlchan_channel_wait_for_push_enabled(ch, &st));
    CHECK_INT_EQ(st, CTRLCHAN_STATUS_HARDWARE_SLOT_ALLOCATED);
    CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"hw", 2));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
    CHECK(ev != NULL);
    if (ev) {
        CHECK_STR_EQ(ctrlchan_event_get_channel_id(ev), "hw");
        ctrlchan_event_free(ev);
    }
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

int main(int argc, char **argv) {
    h_init(argc, argv);
    server = peer_server_start(NULL, NULL);
    REQUIRE(server != NULL);
    RUN_TEST(test_id_and_interval_validation);
    RUN_TEST(test_decrease_network_keepalive_interval_halves);
    RUN_TEST(test_decrease_reschedules_immediately);
    RUN_TEST(test_flush_transport);
    RUN_TEST(test_close);
    RUN_TEST(test_wait_for_push_enabled_statuses);
    RUN_TEST(test_channel_limit_policy_error);
    RUN_TEST(test_using_transport_rules);
    RUN_TEST(test_reset_after_disconnect);
    RUN_TEST(test_reset_after_close);
    RUN_TEST(test_reset_from_disconnect_callback);
    RUN_TEST(test_reset_from_closed_callback);
    RUN_TEST(test_hardware_slot);
    return h_finish();
}
