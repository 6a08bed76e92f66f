/* Runtime: new/free, next_event timeouts, the event fd, joins on free, free(NULL). */
#include "harness.h"

static h_child *server;

static void test_new_free_joins_reactor(void) {
    ctrlchan_runtime *rt = NULL;
    int base = h_thread_count();
    int during;
    REQUIRE(base > 0);
    CHECK_RES(ctrlchan_runtime_new(NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE(rt != NULL);
    during = h_thread_count();
    /* One runtime = one reactor thread (DESIGN.md, performance model). */
    CHECK_INT_EQ(during, base + 1);
    ctrlchan_runtime_free(rt);
    /* free joins the reactor: right after it returns the thread is gone (a few ms for the
       kernel to drop the /proc entry of a thread that was already joined). */
    CHECK_INT_EQ(h_wait_thread_count(base, 50), base);
    /* free(NULL) and a second free are no-ops. */
    ctrlchan_runtime_free(NULL);
    ctrlchan_runtime_free(rt);
    CHECK_INT_EQ(h_thread_count(), base);
}

static void test_no_thread_per_connection(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws[4];
    char url[128];
    int base = h_thread_count(), i;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    h_url(url, sizeof url, "ws", server->port, "/echo");
    for (i = 0; i < 4; i++) ws[i] = h_connect(rt, url);
    CHECK_INT_EQ(h_thread_count(), base + 1);
    for (i = 0; i < 4; i++) ctrlchan_websocket_free(ws[i]);
    ctrlchan_runtime_free(rt);
    CHECK_INT_EQ(h_wait_thread_count(base, 50), base);
}

static void test_next_event_timeout(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_event *sentinel = (ctrlchan_event *)&rt; /* any non-NULL value */
    ctrlchan_event *ev = sentinel;
    int64_t t0, dt;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));

    t0 = h_now_ms();
    CHECK_RES(ctrlchan_runtime_next_event(rt, 150, &ev), CTRLCHAN_RESULT_TIMEOUT);
    dt = h_now_ms() - t0;
    CHECK_RANGE(dt, 140, 2000);
    CHECK(ev == sentinel); /* out-pointers are written only on success */

    t0 = h_now_ms();
    CHECK_RES(ctrlchan_runtime_next_event(rt, 0, &ev), CTRLCHAN_RESULT_TIMEOUT);
    CHECK_RANGE(h_now_ms() - t0, 0, 100);
    CHECK(ev == sentinel);

    CHECK_RES(ctrlchan_runtime_next_event(rt, 0, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    ctrlchan_runtime_free(rt);
    /* A freed runtime is an invalid handle, not a crash. */
    CHECK_RES(ctrlchan_runtime_next_event(rt, 0, &ev), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK(ev == sentinel);
}

static int fd_readable(int fd, int timeout_ms) {
    struct pollfd p;
    int r;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    r = poll(&p, 1, timeout_ms);
    return r == 1 && (p.revents & POLLIN);
}

static void test_event_fd_readable_exactly_while_queued(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws;
    ctrlchan_event *ev = NULL;
    char url[160];
    int fd = -1, fd2 = -1, i;
    int64_t t0;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    CHECK_RES(ctrlchan_runtime_event_fd(rt, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    REQUIRE_OK(ctrlchan_runtime_event_fd(rt, &fd));
    REQUIRE(fd >= 0);
    CHECK_OK(ctrlchan_runtime_event_fd(rt, &fd2));
    CHECK_INT_EQ(fd2, fd); /* the same fd every time */

    /* Nothing queued: not readable (and poll really waits). */
    t0 = h_now_ms();
    CHECK(!fd_readable(fd, 100));
    CHECK_RANGE(h_now_ms() - t0, 90, 2000);

    /* Three pushes, sent 100 ms after the handshake (so the queue starts empty). */
    h_url(url, sizeof url, "ws", server->port, "/push?n=3&size=8&interval_ms=100");
    ws = h_connect(rt, url);
    CHECK(fd_readable(fd, 5000));
    h_sleep_ms(500); /* all three arrived by now */
    for (i = 0; i < 3; i++) {
        CHECKF(fd_readable(fd, 0), "fd not readable with %d event(s) queued", 3 - i);
        ev = NULL;
        CHECK_OK(ctrlchan_runtime_next_event(rt, 0, &ev));
        CHECK(ev != NULL && ctrlchan_event_get_kind(ev) == CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION);
        ctrlchan_event_free(ev);
    }
    CHECK(!fd_readable(fd, 0));
    CHECK_RES(ctrlchan_runtime_next_event(rt, 0, &ev), CTRLCHAN_RESULT_TIMEOUT);
    CHECK(!fd_readable(fd, 50));

    /* Readable again as soon as one more event is queued: an echo. */
    {
        static const uint8_t hi[] = {'h', 'i'};
        ctrlchan_websocket *echo;
        h_url(url, sizeof url, "ws", server->port, "/echo");
        echo = h_connect(rt, url);
        CHECK(!fd_readable(fd, 0));
        CHECK_OK(ctrlchan_websocket_send(echo, hi, sizeof hi));
        CHECK(fd_readable(fd, 5000));
        CHECK(fd_readable(fd, 0)); /* polling does not consume it */
        ev = NULL;
        CHECK_OK(ctrlchan_runtime_next_event(rt, 1000, &ev));
        ctrlchan_event_free(ev);
        CHECK(!fd_readable(fd, 0));
        ctrlchan_websocket_free(echo);
    }
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

struct waiter {
    ctrlchan_runtime *rt;
    int got;
    int seen[64];
};

static void *waiter_main(void *arg) {
    struct waiter *w = (struct waiter *)arg;
    int i;
    for (i = 0; i < 200; i++) {
        ctrlchan_event *ev = NULL;
        ctrlchan_result r = ctrlchan_runtime_next_event(w->rt, 1500, &ev);
        const uint8_t *data = NULL;
        size_t len = 0;
        if (r != CTRLCHAN_RESULT_OK) break;
        if (ctrlchan_event_get_kind(ev) == CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION &&
            ctrlchan_event_get_data(ev, &data, &len) == CTRLCHAN_RESULT_OK && len >= 4) {
            unsigned idx = ((unsigned)data[0] << 24) | ((unsigned)data[1] << 16) | ((unsigned)data[2] << 8) | data[3];
            if (idx < 64) w->seen[idx]++;
            w->got++;
        }
        ctrlchan_event_free(ev);
    }
    return NULL;
}

static void test_several_waiters_each_event_once(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws;
    struct waiter w[3];
    pthread_t th[3];
    char url[160];
    int i, j, total = 0;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    memset(w, 0, sizeof w);
    for (i = 0; i < 3; i++) {
        w[i].rt = rt;
        REQUIRE(pthread_create(&th[i], NULL, waiter_main, &w[i]) == 0);
    }
    h_url(url, sizeof url, "ws", server->port, "/push?n=64&size=8&type=binary&interval_ms=2");
    ws = h_connect(rt, url);
    for (i = 0; i < 3; i++) pthread_join(th[i], NULL);
    for (i = 0; i < 3; i++) total += w[i].got;
    CHECK_INT_EQ(total, 64);
    for (j = 0; j < 64; j++) {
        int n = w[0].seen[j] + w[1].seen[j] + w[2].seen[j];
        CHECKF(n == 1, "message %d delivered %d times", j, n);
    }
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_handles_after_runtime_free(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL, *ws2 = NULL;
    ctrlchan_channel *ch = NULL, *ch2 = NULL;
    ctrlchan_websocket_state state = CTRLCHAN_WEBSOCKET_STATE_NEW;
    ctrlchan_status st = CTRLCHAN_STATUS_SOFTWARE_SLOT_ALLOCATED;
    static const uint8_t x[] = {1, 2, 3};
    char url[128];
    int base = h_thread_count();
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    h_url(url, sizeof url, "ws", server->port, "/echo");
    h_open_channel(rt, "after-free", 60000, NULL, url, &ws, &ch);
    ctrlchan_runtime_free(rt);
    CHECK_INT_EQ(h_wait_thread_count(base, 50), base);
    /* Objects of a freed runtime stay valid handles that report CLOSED / INVALID_STATE. */
    CHECK_OK(ctrlchan_websocket_get_state(ws, &state));
    CHECK_INT_EQ(state, CTRLCHAN_WEBSOCKET_STATE_CLOSED);
    CHECK_RES(ctrlchan_websocket_send(ws, x, sizeof x), CTRLCHAN_RESULT_CLOSED);
    CHECK_OK(ctrlchan_channel_wait_for_push_enabled(ch, &st));
    CHECK_INT_EQ(st, CTRLCHAN_STATUS_SERVICE_UNAVAILABLE);
    /* The runtime handle itself is gone. */
    CHECK_RES(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws2), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK(ws2 == NULL);
    CHECK_RES(ctrlchan_channel_new(rt, "x", 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch2),
              CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK(ch2 == NULL);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
}

/* runtime_free while a blocking connect waits in another thread (the handshake never
   completes: blackholed proxy): the connect returns promptly, free does not hang. */
struct connector {
    ctrlchan_websocket *ws;
    char url[128];
    ctrlchan_result r;
    int64_t returned_at;
};

static void *connector_main(void *arg) {
    struct connector *c = (struct connector *)arg;
    c->r = ctrlchan_websocket_connect(c->ws, c->url, 10000);
    c->returned_at = h_now_ms();
    return NULL;
}

static void test_free_while_connecting(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws_async = NULL;
    ctrlchan_websocket_state st = CTRLCHAN_WEBSOCKET_STATE_OPEN;
    struct connector c;
    pthread_t th;
    h_child *proxy = peer_proxy_start(server->port);
    int64_t t_free, t_done;
    REQUIRE(proxy != NULL);
    REQUIRE_PEER_COMMAND(proxy, "blackhole");
    memset(&c, 0, sizeof c);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &c.ws));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws_async));
    h_url(c.url, sizeof c.url, "ws", proxy->port, "/echo");
    CHECK_OK(ctrlchan_websocket_connect_async(ws_async, c.url, 10000));
    REQUIRE(pthread_create(&th, NULL, connector_main, &c) == 0);
    h_sleep_ms(300);
    t_free = h_now_ms();
    ctrlchan_runtime_free(rt);
    t_done = h_now_ms();
    pthread_join(th, NULL);
    CHECK_RANGE(t_done - t_free, 0, 2000);
    CHECK_RANGE(c.returned_at - t_free, 0, 2000);
    CHECKF(c.r != CTRLCHAN_RESULT_OK, "connect returned OK after the runtime was freed");
    CHECK_OK(ctrlchan_websocket_get_state(c.ws, &st));
    CHECK_INT_EQ(st, CTRLCHAN_WEBSOCKET_STATE_CLOSED);
    CHECK_OK(ctrlchan_websocket_get_state(ws_async, &st));
    CHECK_INT_EQ(st, CTRLCHAN_WEBSOCKET_STATE_CLOSED);
    ctrlchan_websocket_free(c.ws);
    ctrlchan_websocket_free(ws_async);
    h_child_stop(proxy);
}

static void test_meta(void) {
    const char *v = ctrlchan_version();
    unsigned a, b, c;
    REQUIRE(v != NULL);
    CHECK(sscanf(v, "%u.%u.%u", &a, &b, &c) == 3);
    CHECK_STR_EQ(v, "0.1.0");
}

int main(int argc, char **argv) {
    h_init(argc, argv);
    server = peer_server_start(NULL, NULL);
    REQUIRE(server != NULL);
    RUN_TEST(test_new_free_joins_reactor);
    RUN_TEST(test_no_thread_per_connection);
    RUN_TEST(test_next_event_timeout);
    RUN_TEST(test_event_fd_readable_exactly_while_queued);
    RUN_TEST(test_several_waiters_each_event_once);
    RUN_TEST(test_handles_after_runtime_free);
    RUN_TEST(test_free_while_connecting);
    RUN_TEST(test_meta);
    return h_finish();
}
