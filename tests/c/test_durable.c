/* Durable, quiet channels from C against the real websockets peer: the default mask is quiet
 * (no KEEPALIVE events, figures in the stats), reconnect policies (validation, a peer restart with
 * 1000 channels spread by jitter, max_attempts with the never-sent count) and the bounded queue. */
#include "harness.h"

static h_child *server;

static void url_for(char *out, size_t n, const char *path) { h_url(out, n, "ws", server->port, path); }

/* A plain channel with the library's default mask (h_open_channel opts into every event). */
static void open_quiet(ctrlchan_runtime *rt, const char *url, uint32_t interval_ms, ctrlchan_websocket **ws,
                       ctrlchan_channel **ch) {
    ctrlchan_status st;
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, ws));
    REQUIRE_OK(ctrlchan_channel_new(rt, "quiet", interval_ms, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, ch));
    REQUIRE_OK(ctrlchan_channel_using_transport(*ch, *ws));
    REQUIRE_OK(ctrlchan_websocket_connect(*ws, url, 10000));
    REQUIRE_OK(ctrlchan_channel_wait_for_push_enabled(*ch, &st));
}

static void test_quiet_by_default_with_stats(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_channel_stats s;
    ctrlchan_event *ev = NULL;
    uint32_t mask = 0;
    char url[128];
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/echo");
    open_quiet(rt, url, 200, &ws, &ch);
    CHECK_OK(ctrlchan_channel_get_event_mask(ch, &mask));
    CHECK_INT_EQ(mask, CTRLCHAN_EVENT_MASK_DEFAULT);
    CHECK_INT_EQ(CTRLCHAN_EVENT_MASK_DEFAULT & (1u << CTRLCHAN_EVENT_KIND_KEEPALIVE), 0);
    h_expect_quiet(rt, 1100); /* five keep-alives, no event */
    CHECK_OK(ctrlchan_channel_get_stats(ch, &s));
    CHECK(s.keepalives_sent >= 3 && s.keepalives_acked >= 3);
    CHECK(s.srtt_us > 0 && s.last_rtt_us > 0);
    CHECK_INT_EQ(s.current_interval_ms, 200);
    CHECK_RES(ctrlchan_channel_get_stats(ch, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_get_stats(NULL, &s), CTRLCHAN_RESULT_INVALID_HANDLE);
    /* Asked for: acknowledgements are events again. */
    CHECK_OK(ctrlchan_channel_set_event_mask(ch, CTRLCHAN_EVENT_MASK_ALL));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_KEEPALIVE, 2000);
    CHECK(ev != NULL);
    if (ev) CHECK(ctrlchan_event_get_rtt_us(ev) > 0);
    ctrlchan_event_free(ev);
    /* A mask without PUSH_NOTIFICATION: the echo is never created. */
    CHECK_OK(ctrlchan_channel_set_event_mask(ch, CTRLCHAN_EVENT_MASK_DEFAULT & ~(1u << CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION)));
    CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"x", 1));
    h_expect_quiet(rt, 500);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_policy_validation(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_reconnect_policy p, got;
    bool on = true;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_channel_new(rt, "p", 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch));
    ctrlchan_reconnect_policy_default(&p);
    ctrlchan_reconnect_policy_default(NULL); /* ignored */
    CHECK_INT_EQ(p.initial_delay_ms, 1000);
    CHECK_INT_EQ(p.max_delay_ms, 60000);
    CHECK_INT_EQ(p.multiplier_percent, 160);
    CHECK_INT_EQ(p.jitter_percent, 20);
    CHECK_INT_EQ(p.max_attempts, 0);
    CHECK_OK(ctrlchan_channel_get_reconnect_policy(ch, &got, &on));
    CHECK(!on); /* off by default */
    CHECK_OK(ctrlchan_channel_set_reconnect_policy(ch, &p));
    CHECK_OK(ctrlchan_channel_get_reconnect_policy(ch, &got, &on));
    CHECK(on);
    CHECK_INT_EQ(got.max_delay_ms, 60000);
    got = p;
    got.multiplier_percent = 99;
    CHECK_RES(ctrlchan_channel_set_reconnect_policy(ch, &got), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    got = p;
    got.jitter_percent = 101;
    CHECK_RES(ctrlchan_channel_set_reconnect_policy(ch, &got), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    got = p;
    got.initial_delay_ms = got.max_delay_ms + 1;
    CHECK_RES(ctrlchan_channel_set_reconnect_policy(ch, &got), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_get_reconnect_policy(ch, NULL, &on), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_OK(ctrlchan_channel_set_reconnect_policy(ch, NULL));
    CHECK_OK(ctrlchan_channel_get_reconnect_policy(ch, &got, &on));
    CHECK(!on);
    CHECK_RES(ctrlchan_channel_set_reconnect_policy(NULL, &p), CTRLCHAN_RESULT_INVALID_HANDLE);
    ctrlchan_channel_free(ch);
    ctrlchan_runtime_free(rt);
}

/* Starts the peer on a given port (a restart of a killed one). */
static h_child *peer_on_port(int port) {
    char script[4096], portbuf[16];
    char *argv[6];
    h_child *c;
    h_peer_script(script, sizeof script, "server.py");
    snprintf(portbuf, sizeof portbuf, "%d", port);
    argv[0] = (char *)h_python();
    argv[1] = script;
    argv[2] = (char *)"--port";
    argv[3] = portbuf;
    argv[4] = NULL;
    c = h_spawn("restarted peer", argv);
    if (c == NULL) return NULL;
    if (h_child_read_port(c) < 0) {
        h_child_stop(c);
        return NULL;
    }
    return c;
}

#define N_RESTART 1000

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void test_peer_restart_brings_every_channel_back_spread_by_jitter(void) {
    static ctrlchan_websocket *ws[N_RESTART];
    static ctrlchan_channel *ch[N_RESTART];
    static uint32_t first_delay[N_RESTART];
    static int64_t back_at[N_RESTART];
    static int reconnecting[N_RESTART];
    ctrlchan_runtime *rt = NULL;
    ctrlchan_reconnect_policy p;
    h_child *peer;
    char url[128];
    int i, back = 0, port;
    int64_t t_kill, t_restart, deadline;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    peer = peer_server_start(NULL, NULL);
    REQUIRE(peer != NULL);
    port = peer->port;
    h_url(url, sizeof url, "ws", port, "/echo");
    ctrlchan_reconnect_policy_default(&p);
    p.initial_delay_ms = 2000;
    p.max_delay_ms = 4000;
    p.multiplier_percent = 150;
    for (i = 0; i < N_RESTART; i++) {
        ctrlchan_status st;
        char id[32];
        snprintf(id, sizeof id, "c%d", i);
        REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws[i]));
        REQUIRE_OK(ctrlchan_channel_new(rt, id, 60000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch[i]));
        REQUIRE_OK(ctrlchan_channel_set_reconnect_policy(ch[i], &p));
        REQUIRE_OK(ctrlchan_channel_using_transport(ch[i], ws[i]));
        REQUIRE_OK(ctrlchan_websocket_connect(ws[i], url, 10000));
        REQUIRE_OK(ctrlchan_channel_wait_for_push_enabled(ch[i], &st));
        first_delay[i] = UINT32_MAX;
        back_at[i] = -1;
    }
    t_kill = h_now_ms();
    h_child_stop(peer); /* the server goes down (its shutdown closes every connection with 1001) */
    h_sleep_ms(500);
    peer = peer_on_port(port);
    REQUIRE(peer != NULL);
    t_restart = h_now_ms();
    deadline = t_restart + 20000;
    while (back < N_RESTART && h_now_ms() < deadline) {
        ctrlchan_event *ev = NULL;
        ctrlchan_channel *c;
        int k;
        if (ctrlchan_runtime_next_event(rt, 200, &ev) != CTRLCHAN_RESULT_OK) continue;
        c = ctrlchan_event_get_channel(ev);
        for (k = 0; k < N_RESTART && ch[k] != c; k++) {}
        if (k < N_RESTART) {
            if (ctrlchan_event_get_kind(ev) == CTRLCHAN_EVENT_KIND_RECONNECTING) {
                if (ctrlchan_event_get_attempt(ev) == 1) first_delay[k] = ctrlchan_event_get_delay_ms(ev);
                reconnecting[k]++;
            } else if (ctrlchan_event_get_kind(ev) == CTRLCHAN_EVENT_KIND_RESET && back_at[k] < 0) {
                CHECK_INT_EQ(ctrlchan_event_get_reset_reason(ev), CTRLCHAN_RESET_REASON_RECONNECTED);
                back_at[k] = h_now_ms() - t_kill;
                back++;
            }
        }
        ctrlchan_event_free(ev);
    }
    CHECK_INT_EQ(back, N_RESTART);
    {
        uint32_t sorted[N_RESTART];
        uint32_t backs[N_RESTART];
        int n = 0, m = 0;
        for (i = 0; i < N_RESTART; i++) {
            if (first_delay[i] != UINT32_MAX) sorted[n++] = first_delay[i];
            if (back_at[i] >= 0) backs[m++] = (uint32_t)back_at[i];
        }
        CHECK_INT_EQ(n, N_RESTART);
        qsort(sorted, (size_t)n, sizeof sorted[0], cmp_u32);
        qsort(backs, (size_t)m, sizeof backs[0], cmp_u32);
        if (n > 0 && m > 0) {
            fprintf(stderr,
                    "    restart of %d channels: first delays %u..%u ms (median %u), back after %u..%u ms "
                    "(median %u) from the kill\n",
                    N_RESTART, sorted[0], sorted[n - 1], sorted[n / 2], backs[0], backs[m - 1], backs[m / 2]);
            CHECK(sorted[n - 1] <= 2000);            /* first retry in [0, initial] */
            CHECK(sorted[n - 1] - sorted[0] >= 1500); /* spread: no thundering herd */
        }
    }
    /* Pushes flow on the same handles. */
    for (i = 0; i < N_RESTART; i += 97) {
        ctrlchan_websocket_state s;
        CHECK_OK(ctrlchan_websocket_get_state(ws[i], &s));
        CHECK_INT_EQ(s, CTRLCHAN_WEBSOCKET_STATE_OPEN);
        CHECK_OK(ctrlchan_websocket_send(ws[i], (const uint8_t *)"again", 5));
    }
    for (i = 0; i < N_RESTART; i += 97) {
        ctrlchan_event *ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
        CHECK(ev != NULL);
        ctrlchan_event_free(ev);
    }
    {
        ctrlchan_channel_stats s;
        CHECK_OK(ctrlchan_channel_get_stats(ch[0], &s));
        CHECK_INT_EQ(s.reconnects, 1);
    }
    for (i = 0; i < N_RESTART; i++) {
        ctrlchan_channel_free(ch[i]);
        ctrlchan_websocket_free(ws[i]);
    }
    ctrlchan_runtime_free(rt);
    h_child_stop(peer);
}

static void test_max_attempts_then_transport_disconnected(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_reconnect_policy p;
    ctrlchan_event *ev;
    h_child *peer;
    char url[128];
    int attempts = 0;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    peer = peer_server_start(NULL, NULL);
    REQUIRE(peer != NULL);
    h_url(url, sizeof url, "ws", peer->port, "/echo");
    open_quiet(rt, url, 60000, &ws, &ch);
    ctrlchan_reconnect_policy_default(&p);
    /* No jitter and a first retry 1 s after the loss: the RECONNECTING event (emitted at the
     * loss) is read and "late" queued long before the runtime gives up, even when stopping the
     * peer keeps this thread busy for a while on a loaded machine. */
    p.initial_delay_ms = 1000;
    p.max_delay_ms = 1000;
    p.jitter_percent = 0;
    p.max_attempts = 2;
    CHECK_OK(ctrlchan_channel_set_reconnect_policy(ch, &p));
    h_child_stop(peer); /* and it stays down */
    for (;;) {
        ev = NULL;
        if (ctrlchan_runtime_next_event(rt, 10000, &ev) != CTRLCHAN_RESULT_OK) break;
        if (ctrlchan_event_get_kind(ev) == CTRLCHAN_EVENT_KIND_RECONNECTING) {
            attempts++;
            CHECK_INT_EQ(ctrlchan_event_get_attempt(ev), (uint32_t)attempts);
            if (attempts == 1) CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"late", 4)); /* queued */
        } else if (ctrlchan_event_get_kind(ev) == CTRLCHAN_EVENT_KIND_TRANSPORT_DISCONNECTED) {
            CHECK(strstr(ctrlchan_event_get_reason(ev), "gave up after 2 attempts") != NULL);
            CHECK(strstr(ctrlchan_event_get_reason(ev), "1 queued messages were never sent") != NULL);
            CHECK(ctrlchan_event_get_result(ev) != CTRLCHAN_RESULT_OK);
            ctrlchan_event_free(ev);
            break;
        }
        ctrlchan_event_free(ev);
    }
    CHECK_INT_EQ(attempts, 2);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_bounded_queue_loses_nothing(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    uint32_t limit = 0;
    char url[128];
    int i, in_order = 1;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    CHECK_RES(ctrlchan_runtime_set_event_queue_limit(rt, 0), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_OK(ctrlchan_runtime_get_event_queue_limit(rt, &limit));
    CHECK_INT_EQ(limit, CTRLCHAN_DEFAULT_EVENT_QUEUE_LIMIT);
    CHECK_OK(ctrlchan_runtime_set_event_queue_limit(rt, 50));
    url_for(url, sizeof url, "/push?n=2000");
    open_quiet(rt, url, 60000, &ws, &ch);
    h_sleep_ms(1500); /* the app does not read: the reactor stops reading at 50 */
    for (i = 0; i < 2000; i++) {
        const uint8_t *data;
        size_t len;
        char want[32];
        ctrlchan_event *ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
        if (ev == NULL) break;
        snprintf(want, sizeof want, "msg %d", i);
        if (ctrlchan_event_get_data(ev, &data, &len) != CTRLCHAN_RESULT_OK || len != strlen(want) ||
            memcmp(data, want, strlen(want)) != 0)
            in_order = 0;
        ctrlchan_event_free(ev);
    }
    CHECK_INT_EQ(i, 2000);
    CHECK(in_order);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

int main(int argc, char **argv) {
    h_init(argc, argv);
    server = peer_server_start(NULL, NULL);
    REQUIRE(server != NULL);
    RUN_TEST(test_quiet_by_default_with_stats);
    RUN_TEST(test_policy_validation);
    RUN_TEST(test_max_attempts_then_transport_disconnected);
    RUN_TEST(test_bounded_queue_loses_nothing);
    RUN_TEST(test_peer_restart_brings_every_channel_back_spread_by_jitter);
    return h_finish();
}
