/* Keep-alive (WebSocketKeepAlive): PING cadence and RTT, what the server received,
   UNSOLICITED_PONG, ctrlchan_keepalive_run, data counting as keep-alive, and dead peers:
   pong timeout through a blackholed proxy, /nopong, /drop (EOF and RST), proxy reset. */
#include "harness.h"

static h_child *server;

static void url_for(char *out, size_t n, const char *path) { h_url(out, n, "ws", server->port, path); }

static ctrlchan_keepalive *new_task(ctrlchan_keepalive_mode mode, uint32_t pong_timeout_ms) {
    ctrlchan_keepalive *ka = NULL;
    REQUIRE_OK(ctrlchan_keepalive_new(&ka));
    REQUIRE_OK(ctrlchan_keepalive_set_mode(ka, mode));
    REQUIRE_OK(ctrlchan_keepalive_set_pong_timeout(ka, pong_timeout_ms));
    return ka;
}

/* Sends "stats" to /count and returns the JSON reply (caller frees), counting the KEEPALIVE
   events that arrive before it into *keepalives (events are in order: a pong the server sent
   before its reply is delivered before the reply). */
static char *count_stats(ctrlchan_runtime *rt, ctrlchan_websocket *ws, int *keepalives) {
    int64_t deadline = h_now_ms() + 5000;
    int i;
    CHECK_OK(ctrlchan_websocket_send_message(ws, CTRLCHAN_MESSAGE_TYPE_UTF8, (const uint8_t *)"stats", 5));
    for (i = 0; i < 10000 && h_now_ms() < deadline; i++) {
        ctrlchan_event *ev = NULL;
        ctrlchan_event_kind k;
        if (ctrlchan_runtime_next_event(rt, 200, &ev) != CTRLCHAN_RESULT_OK) continue;
        k = ctrlchan_event_get_kind(ev);
        if (k == CTRLCHAN_EVENT_KIND_KEEPALIVE) {
            (*keepalives)++;
        } else if (k == CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION) {
            char *json = h_event_text(ev, NULL);
            ctrlchan_event_free(ev);
            return json;
        } else {
            char d[512];
            h_describe_event(ev, d, sizeof d);
            h_fail(__FILE__, __LINE__, "unexpected event %s", d);
        }
        ctrlchan_event_free(ev);
    }
    h_fail(__FILE__, __LINE__, "no stats reply from /count");
    return NULL;
}

static void test_ping_cadence_rtt_and_server_count(void) {
    const int interval = 300, window_ms = 2150;
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_keepalive *ka = new_task(CTRLCHAN_KEEPALIVE_MODE_PING, 2000);
    ctrlchan_runtime_stats rs;
    char url[128], *json;
    int events = 0, total = 0, bad_rtt = 0, i, n;
    double ping_ms[64];
    int64_t t0, end;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/count");
    h_open_channel(rt, "cadence", (uint32_t)interval, ka, url, &ws, &ch);
    t0 = h_now_ms();
    end = t0 + window_ms;
    for (i = 0; i < 1000 && h_now_ms() < end; i++) {
        ctrlchan_event *ev = NULL;
        int64_t left = end - h_now_ms();
        if (left <= 0) break;
        if (ctrlchan_runtime_next_event(rt, (uint32_t)left, &ev) != CTRLCHAN_RESULT_OK) continue;
        if (ctrlchan_event_get_kind(ev) == CTRLCHAN_EVENT_KIND_KEEPALIVE) {
            uint64_t rtt = ctrlchan_event_get_rtt_us(ev);
            events++;
            if (rtt == 0 || rtt > 1000000) bad_rtt++;
            CHECK_STR_EQ(ctrlchan_event_get_channel_id(ev), "cadence");
            CHECK(ctrlchan_event_get_channel(ev) == ch);
        } else {
            char d[512];
            h_describe_event(ev, d, sizeof d);
            h_fail(__FILE__, __LINE__, "unexpected event %s", d);
        }
        ctrlchan_event_free(ev);
    }
    /* Never later than the interval (>= 7 in 2.15 s; 5 leaves slack for a loaded machine), and not
       much earlier (coalescing may advance a keep-alive by at most interval/4). */
    printf("    %d KEEPALIVE events in %d ms at a %d ms interval\n", events, window_ms, interval);
    CHECK_RANGE(events, 5, 10);
    CHECK_INT_EQ(bad_rtt, 0);

    total = events;
    json = count_stats(rt, ws, &total);
    REQUIRE(json != NULL);
    /* Each ping the server received was answered, and each pong gave one KEEPALIVE event. */
    CHECK_INT_EQ(h_json_int(json, "pings"), total);
    CHECK_INT_EQ(h_json_int(json, "pongs"), 0);
    CHECK_INT_EQ(h_json_int(json, "messages"), 0);
    n = h_json_array(json, "ping_times_ms", ping_ms, 64);
    CHECK_INT_EQ(n, total);
    if (n > 0) CHECK_RANGE(ping_ms[0], 0, interval + 150); /* first one no later than the interval */
    printf("    pings seen by the server at (ms after its handshake):");
    for (i = 0; i < n; i++) printf(" %.1f", ping_ms[i]);
    printf("\n");
    for (i = 1; i < n; i++) {
        double gap = ping_ms[i] - ping_ms[i - 1];
        CHECKF(gap >= interval * 0.75 - 60 && gap <= interval + 150, "gap %d..%d = %.1f ms", i - 1, i, gap);
    }
    free(json);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK(rs.keepalives_sent >= (uint64_t)total);
    CHECK(rs.keepalives_acked >= (uint64_t)total);
    CHECK(rs.keepalives_sent <= (uint64_t)total + 1);
    ctrlchan_channel_free(ch);
    ctrlchan_keepalive_free(ka);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_unsolicited_pong_mode(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_keepalive *ka = new_task(CTRLCHAN_KEEPALIVE_MODE_UNSOLICITED_PONG, 5000);
    ctrlchan_keepalive_mode mode = CTRLCHAN_KEEPALIVE_MODE_PING;
    char url[128], *json;
    int events = 0, nonzero_rtt = 0, i;
    int64_t end;
    CHECK_OK(ctrlchan_keepalive_get_mode(ka, &mode));
    CHECK_INT_EQ(mode, CTRLCHAN_KEEPALIVE_MODE_UNSOLICITED_PONG);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/count");
    h_open_channel(rt, "pongs", 300, ka, url, &ws, &ch);
    end = h_now_ms() + 1500;
    for (i = 0; i < 1000 && h_now_ms() < end; i++) {
        ctrlchan_event *ev = NULL;
        int64_t left = end - h_now_ms();
        if (left <= 0) break;
        if (ctrlchan_runtime_next_event(rt, (uint32_t)left, &ev) != CTRLCHAN_RESULT_OK) continue;
        if (ctrlchan_event_get_kind(ev) == CTRLCHAN_EVENT_KIND_KEEPALIVE) {
            events++;
            if (ctrlchan_event_get_rtt_us(ev) != 0) nonzero_rtt++;
        } else {
            h_fail(__FILE__, __LINE__, "unexpected event %s", h_kind_name(ctrlchan_event_get_kind(ev)));
        }
        ctrlchan_event_free(ev);
    }
    CHECK_RANGE(events, 3, 8);
    CHECK_INT_EQ(nonzero_rtt, 0); /* one-way: no round trip */
    json = count_stats(rt, ws, &events);
    REQUIRE(json != NULL);
    CHECK_INT_EQ(h_json_int(json, "pings"), 0);
    CHECK_INT_EQ(h_json_int(json, "pongs"), events);
    free(json);
    ctrlchan_channel_free(ch);
    ctrlchan_keepalive_free(ka);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_keepalive_run_sends_one_now(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL, *ws2 = NULL;
    ctrlchan_channel *ch = NULL, *ch2 = NULL;
    ctrlchan_keepalive *ka = new_task(CTRLCHAN_KEEPALIVE_MODE_PING, 5000);
    ctrlchan_event *ev;
    char url[128], *json;
    int extra = 0;
    int64_t t0;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));

    /* No transport / not connected -> INVALID_STATE. */
    REQUIRE_OK(ctrlchan_channel_new(rt, "idle", 60000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch2));
    CHECK_RES(ctrlchan_keepalive_run(ka, ch2), CTRLCHAN_RESULT_INVALID_STATE);
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws2));
    CHECK_OK(ctrlchan_channel_using_transport(ch2, ws2));
    CHECK_RES(ctrlchan_keepalive_run(ka, ch2), CTRLCHAN_RESULT_INVALID_STATE);

    url_for(url, sizeof url, "/count");
    h_open_channel(rt, "run", 60000, NULL, url, &ws, &ch); /* 60 s: nothing scheduled soon */
    t0 = h_now_ms();
    CHECK_OK(ctrlchan_keepalive_run(ka, ch));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_KEEPALIVE, 2000);
    CHECK(ev != NULL);
    CHECK_RANGE(h_now_ms() - t0, 0, 1000);
    if (ev) {
        CHECK(ctrlchan_event_get_rtt_us(ev) > 0);
        CHECK_STR_EQ(ctrlchan_event_get_channel_id(ev), "run");
        ctrlchan_event_free(ev);
    }
    json = count_stats(rt, ws, &extra);
    REQUIRE(json != NULL);
    CHECK_INT_EQ(h_json_int(json, "pings"), 1);
    CHECK_INT_EQ(h_json_int(json, "pongs"), 0);
    free(json);
    CHECK_INT_EQ(extra, 0);

    /* The task's mode applies: an unsolicited pong now. */
    CHECK_OK(ctrlchan_keepalive_set_mode(ka, CTRLCHAN_KEEPALIVE_MODE_UNSOLICITED_PONG));
    CHECK_OK(ctrlchan_keepalive_run(ka, ch));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_KEEPALIVE, 2000);
    CHECK(ev != NULL);
    if (ev) {
        CHECK_INT_EQ(ctrlchan_event_get_rtt_us(ev), 0);
        ctrlchan_event_free(ev);
    }
    json = count_stats(rt, ws, &extra);
    REQUIRE(json != NULL);
    CHECK_INT_EQ(h_json_int(json, "pings"), 1);
    CHECK_INT_EQ(h_json_int(json, "pongs"), 1);
    free(json);

    /* Closed transport -> CLOSED. */
    CHECK_OK(ctrlchan_websocket_close(ws, 1000, NULL));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CLOSED, 5000);
    CHECK(ev != NULL);
    ctrlchan_event_free(ev);
    CHECK_RES(ctrlchan_keepalive_run(ka, ch), CTRLCHAN_RESULT_CLOSED);

    ctrlchan_channel_free(ch);
    ctrlchan_channel_free(ch2);
    ctrlchan_keepalive_free(ka);
    ctrlchan_websocket_free(ws);
    ctrlchan_websocket_free(ws2);
    ctrlchan_runtime_free(rt);
}

static void test_outbound_data_counts_as_keepalive(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    char url[128], *json;
    int keepalives = 0, i;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    CHECK_OK(ctrlchan_runtime_set_coalescing_window(rt, 0));
    url_for(url, sizeof url, "/count");
    h_open_channel(rt, "busy", 400, NULL, url, &ws, &ch);
    for (i = 0; i < 12; i++) { /* 1.2 s of traffic, one message per 100 ms */
        CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"data", 4));
        h_sleep_ms(100);
    }
    json = count_stats(rt, ws, &keepalives);
    REQUIRE(json != NULL);
    CHECK_INT_EQ(h_json_int(json, "messages"), 12);
    /* Outbound data keeps the NAT mapping fresh, but liveness needs inbound evidence: this peer
       never answers data, so one probe per interval (400 ms) is still sent, never more. */
    CHECK_RANGE(h_json_int(json, "pings"), 1, 1200 / 400 + 1);
    CHECK_INT_EQ(keepalives, h_json_int(json, "pings"));
    free(json);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

/* Waits for exactly one TRANSPORT_DISCONNECTED within max_ms (KEEPALIVE events allowed before
   it when allow_keepalive); returns its reason (static copy) and the elapsed time. */
static const char *wait_disconnect(ctrlchan_runtime *rt, int max_ms, int allow_keepalive, int64_t *elapsed) {
    static char reason[512];
    int64_t t0 = h_now_ms(), deadline = t0 + max_ms;
    int i;
    reason[0] = '\0';
    *elapsed = -1;
    for (i = 0; i < 10000; i++) {
        ctrlchan_event *ev = NULL;
        ctrlchan_event_kind k;
        int64_t left = deadline - h_now_ms();
        if (left <= 0) break;
        if (ctrlchan_runtime_next_event(rt, (uint32_t)left, &ev) != CTRLCHAN_RESULT_OK) continue;
        k = ctrlchan_event_get_kind(ev);
        if (k == CTRLCHAN_EVENT_KIND_TRANSPORT_DISCONNECTED) {
            *elapsed = h_now_ms() - t0;
            snprintf(reason, sizeof reason, "%s", ctrlchan_event_get_reason(ev));
            ctrlchan_event_free(ev);
            break;
        }
        if (!(allow_keepalive && k == CTRLCHAN_EVENT_KIND_KEEPALIVE)) {
            char d[512];
            h_describe_event(ev, d, sizeof d);
            h_fail(__FILE__, __LINE__, "unexpected event before the disconnect: %s", d);
        }
        ctrlchan_event_free(ev);
    }
    CHECKF(*elapsed >= 0, "no TRANSPORT_DISCONNECTED within %d ms", max_ms);
    /* Exactly one: nothing else follows (no second disconnect, no CLOSED, no keep-alive). */
    {
        ctrlchan_event *ev = NULL;
        if (ctrlchan_runtime_next_event(rt, 600, &ev) == CTRLCHAN_RESULT_OK) {
            char d[512];
            h_describe_event(ev, d, sizeof d);
            h_fail(__FILE__, __LINE__, "event after the disconnect: %s", d);
            ctrlchan_event_free(ev);
        }
    }
    return reason;
}

static void check_channel_lost(ctrlchan_runtime *rt, ctrlchan_websocket *ws, ctrlchan_channel *ch) {
    ctrlchan_websocket_state state = CTRLCHAN_WEBSOCKET_STATE_OPEN;
    ctrlchan_status st = CTRLCHAN_STATUS_SOFTWARE_SLOT_ALLOCATED;
    ctrlchan_runtime_stats rs;
    CHECK_OK(ctrlchan_websocket_get_state(ws, &state));
    CHECK_INT_EQ(state, CTRLCHAN_WEBSOCKET_STATE_CLOSED);
    CHECK_OK(ctrlchan_channel_wait_for_push_enabled(ch, &st));
    CHECK_INT_EQ(st, CTRLCHAN_STATUS_TRANSPORT_DISCONNECTED);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.channels_active, 0);
    CHECK_INT_EQ(rs.connections_open, 0);
    CHECK_RES(ctrlchan_websocket_send(ws, (const uint8_t *)"x", 1), CTRLCHAN_RESULT_CLOSED);
}

static void test_pong_timeout_through_blackholed_proxy(void) {
    const int interval = 300, pong_timeout = 400;
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_keepalive *ka = new_task(CTRLCHAN_KEEPALIVE_MODE_PING, (uint32_t)pong_timeout);
    h_child *proxy = peer_proxy_start(server->port);
    ctrlchan_event *ev;
    const char *reason;
    char url[128];
    int64_t elapsed;
    REQUIRE(proxy != NULL);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    h_url(url, sizeof url, "ws", proxy->port, "/echo");
    h_open_channel(rt, "blackholed", (uint32_t)interval, ka, url, &ws, &ch);
    /* The path works: a keep-alive round trip through the proxy. */
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_KEEPALIVE, 2000);
    REQUIRE(ev != NULL);
    ctrlchan_event_free(ev);
    /* A dead NAT / frozen peer: the connection stays up but nothing comes back. */
    REQUIRE_PEER_COMMAND(proxy, "blackhole");
    reason = wait_disconnect(rt, interval + pong_timeout + 1500, 1, &elapsed);
    printf("    blackhole detected after %lld ms: \"%s\"\n", (long long)elapsed, reason);
    CHECKF(h_icontains(reason, "pong timeout"), "reason: \"%s\"", reason);
    /* Detected within interval + pong timeout (+ slack for a loaded machine). */
    CHECK_RANGE(elapsed, pong_timeout - interval, interval + pong_timeout + 600);
    check_channel_lost(rt, ws, ch);
    ctrlchan_channel_free(ch);
    ctrlchan_keepalive_free(ka);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
    h_child_stop(proxy);
}

static void test_nopong_peer(void) {
    const int interval = 300, pong_timeout = 400;
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_keepalive *ka = new_task(CTRLCHAN_KEEPALIVE_MODE_PING, (uint32_t)pong_timeout);
    const char *reason;
    char url[128];
    int64_t elapsed;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/nopong");
    h_open_channel(rt, "nopong", (uint32_t)interval, ka, url, &ws, &ch);
    /* No KEEPALIVE may arrive: the peer never answers. */
    reason = wait_disconnect(rt, interval + pong_timeout + 1500, 0, &elapsed);
    printf("    /nopong detected after %lld ms: \"%s\"\n", (long long)elapsed, reason);
    CHECKF(h_icontains(reason, "pong timeout"), "reason: \"%s\"", reason);
    CHECK_RANGE(elapsed, pong_timeout - 100, interval + pong_timeout + 600);
    check_channel_lost(rt, ws, ch);
    ctrlchan_channel_free(ch);
    ctrlchan_keepalive_free(ka);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void drop_test(const char *path, const char *want_reason) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    const char *reason;
    char url[128];
    int64_t elapsed;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, path);
    h_open_channel(rt, "dropped", 60000, NULL, url, &ws, &ch);
    reason = wait_disconnect(rt, 3000, 0, &elapsed);
    printf("    %s: disconnect after %lld ms: \"%s\"\n", path, (long long)elapsed, reason);
    CHECKF(h_icontains(reason, want_reason), "reason \"%s\" does not mention \"%s\"", reason, want_reason);
    CHECK_RANGE(elapsed, 100, 2000); /* after_ms=200, detected promptly */
    check_channel_lost(rt, ws, ch);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_drop_is_eof(void) { drop_test("/drop?after_ms=200", "EOF"); }
static void test_drop_rst_is_reset(void) { drop_test("/drop?after_ms=200&how=rst", "reset"); }

static void test_proxy_reset(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    h_child *proxy = peer_proxy_start(server->port);
    ctrlchan_event *ev;
    const char *reason;
    char url[128];
    int64_t elapsed;
    REQUIRE(proxy != NULL);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    h_url(url, sizeof url, "ws", proxy->port, "/echo");
    h_open_channel(rt, "reset", 60000, NULL, url, &ws, &ch);
    CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"via proxy", 9));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
    CHECK(ev != NULL);
    ctrlchan_event_free(ev);
    REQUIRE_PEER_COMMAND(proxy, "reset");
    reason = wait_disconnect(rt, 3000, 0, &elapsed);
    printf("    proxy reset: disconnect after %lld ms: \"%s\"\n", (long long)elapsed, reason);
    CHECKF(h_icontains(reason, "reset"), "reason: \"%s\"", reason);
    CHECK_RANGE(elapsed, 0, 1000);
    check_channel_lost(rt, ws, ch);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
    h_child_stop(proxy);
}

/* Closing towards a peer that never answers: the close handshake times out after 5 s with one
   TRANSPORT_DISCONNECTED (header of ctrlchan_websocket_close). */
static void test_close_handshake_timeout(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    h_child *proxy = peer_proxy_start(server->port);
    const char *reason;
    char url[128];
    int64_t elapsed;
    REQUIRE(proxy != NULL);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    h_url(url, sizeof url, "ws", proxy->port, "/echo");
    h_open_channel(rt, "unanswered", 60000, NULL, url, &ws, &ch);
    REQUIRE_PEER_COMMAND(proxy, "blackhole");
    CHECK_OK(ctrlchan_websocket_close(ws, 1000, "anyone?"));
    reason = wait_disconnect(rt, 8000, 0, &elapsed);
    printf("    unanswered close: disconnect after %lld ms: \"%s\"\n", (long long)elapsed, reason);
    CHECK_RANGE(elapsed, 4500, 7000);
    CHECKF(h_icontains(reason, "close"), "reason: \"%s\"", reason);
    check_channel_lost(rt, ws, ch);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
    h_child_stop(proxy);
}

static void test_task_settings(void) {
    ctrlchan_keepalive *ka = NULL;
    ctrlchan_keepalive_mode mode = CTRLCHAN_KEEPALIVE_MODE_UNSOLICITED_PONG;
    uint32_t ms = 0;
    REQUIRE_OK(ctrlchan_keepalive_new(&ka));
    CHECK_OK(ctrlchan_keepalive_get_mode(ka, &mode));
    CHECK_INT_EQ(mode, CTRLCHAN_KEEPALIVE_MODE_PING);
    CHECK_OK(ctrlchan_keepalive_get_pong_timeout(ka, &ms));
    CHECK_INT_EQ(ms, 5000);
    CHECK_RES(ctrlchan_keepalive_set_pong_timeout(ka, 9), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_keepalive_set_pong_timeout(ka, 86400001u), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_OK(ctrlchan_keepalive_get_pong_timeout(ka, &ms));
    CHECK_INT_EQ(ms, 5000);
    CHECK_OK(ctrlchan_keepalive_set_pong_timeout(ka, 10));
    CHECK_OK(ctrlchan_keepalive_set_pong_timeout(ka, 86400000u));
    CHECK_OK(ctrlchan_keepalive_get_pong_timeout(ka, &ms));
    CHECK_INT_EQ(ms, 86400000u);
    CHECK_RES(ctrlchan_keepalive_set_mode(ka, (ctrlchan_keepalive_mode)2), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_OK(ctrlchan_keepalive_get_mode(ka, &mode));
    CHECK_INT_EQ(mode, CTRLCHAN_KEEPALIVE_MODE_PING);
    CHECK_RES(ctrlchan_keepalive_get_mode(ka, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_keepalive_get_pong_timeout(ka, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_keepalive_new(NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    ctrlchan_keepalive_free(ka);
}

int main(int argc, char **argv) {
    h_init(argc, argv);
    server = peer_server_start(NULL, NULL);
    REQUIRE(server != NULL);
    RUN_TEST(test_task_settings);
    RUN_TEST(test_ping_cadence_rtt_and_server_count);
    RUN_TEST(test_unsolicited_pong_mode);
    RUN_TEST(test_keepalive_run_sends_one_now);
    RUN_TEST(test_outbound_data_counts_as_keepalive);
    RUN_TEST(test_pong_timeout_through_blackholed_proxy);
    RUN_TEST(test_nopong_peer);
    RUN_TEST(test_drop_is_eof);
    RUN_TEST(test_drop_rst_is_reset);
    RUN_TEST(test_proxy_reset);
    RUN_TEST(test_close_handshake_timeout);
    return h_finish();
}
