/* Events: 1000 pushes exactly once and in order, CLOSED code and reason, callbacks with
   userdata and finalizers, blocking calls inside callbacks, and event routing
   (channel handler > websocket handler > runtime queue). */
#include "harness.h"

static h_child *server;

static void url_for(char *out, size_t n, const char *path) { h_url(out, n, "ws", server->port, path); }

static unsigned be32(const uint8_t *p) {
    return ((unsigned)p[0] << 24) | ((unsigned)p[1] << 16) | ((unsigned)p[2] << 8) | (unsigned)p[3];
}

static void test_1000_pushes_exactly_once_in_order_queue(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_websocket_stats ws_stats;
    ctrlchan_runtime_stats rs;
    char url[160];
    unsigned expect = 0;
    int out_of_order = 0, wrong_channel = 0, wrong_size = 0, i;
    int64_t deadline;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/push?n=1000&size=16&type=binary&interval_ms=0");
    h_open_channel(rt, "pushes", 60000, NULL, url, &ws, &ch);
    deadline = h_now_ms() + 20000;
    for (i = 0; i < 5000 && expect < 1000 && h_now_ms() < deadline; i++) {
        ctrlchan_event *ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
        const uint8_t *data = NULL;
        size_t len = 0;
        if (ev == NULL) break;
        if (ctrlchan_event_get_data(ev, &data, &len) != CTRLCHAN_RESULT_OK || len != 16) {
            wrong_size++;
        } else {
            if (be32(data) != expect) out_of_order++;
            expect = be32(data) + 1;
        }
        if (ctrlchan_event_get_channel(ev) != ch) wrong_channel++;
        if (ctrlchan_event_get_message_type(ev) != CTRLCHAN_MESSAGE_TYPE_BINARY) wrong_size++;
        ctrlchan_event_free(ev);
    }
    CHECK_INT_EQ(expect, 1000);
    CHECK_INT_EQ(i, 1000);
    CHECK_INT_EQ(out_of_order, 0);
    CHECK_INT_EQ(wrong_channel, 0);
    CHECK_INT_EQ(wrong_size, 0);
    h_expect_quiet(rt, 300); /* and nothing twice */
    CHECK_OK(ctrlchan_websocket_get_stats(ws, &ws_stats));
    CHECK_INT_EQ(ws_stats.messages_received, 1000);
    CHECK_INT_EQ(ws_stats.bytes_received, 16000);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.messages_received, 1000);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

/* Two channels, 500 text pushes each, delivered through one callback: per-channel order. */
static void test_pushes_in_order_per_channel_callback(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws[2] = {NULL, NULL};
    ctrlchan_channel *ch[2] = {NULL, NULL};
    h_recorder rec;
    char url[160];
    unsigned next[2] = {0, 0};
    int bad = 0, c;
    size_t i, got;
    static const char *const ids[2] = {"left", "right"};
    h_recorder_init(&rec);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    for (c = 0; c < 2; c++) {
        REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws[c]));
        REQUIRE_OK(ctrlchan_channel_new(rt, ids[c], 60000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch[c]));
        /* One userdata shared by both; only the last handler's finalizer matters here. */
        REQUIRE_OK(ctrlchan_channel_set_event_handler(ch[c], h_recorder_cb, &rec, NULL));
        REQUIRE_OK(ctrlchan_channel_using_transport(ch[c], ws[c]));
    }
    url_for(url, sizeof url, "/push?n=500&size=12&type=text&interval_ms=0");
    for (c = 0; c < 2; c++) CHECK_OK(ctrlchan_websocket_connect_async(ws[c], url, 10000));
    got = h_recorder_wait(&rec, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 1000, 20000);
    CHECK_INT_EQ(got, 1000);
    h_sleep_ms(200);
    CHECK_INT_EQ(h_recorder_count(&rec, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION), 1000);
    CHECK_INT_EQ(h_recorder_count(&rec, CTRLCHAN_EVENT_KIND_CONNECTED), 2);
    pthread_mutex_lock(&rec.mu);
    for (i = 0; i < rec.n; i++) {
        h_rec_event *e = &rec.events[i];
        unsigned idx;
        char text[32];
        if (e->kind != CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION) continue;
        c = e->channel == ch[0] ? 0 : e->channel == ch[1] ? 1 : -1;
        if (c < 0 || strcmp(e->channel_id, ids[c]) != 0 || e->websocket != ws[c] || e->type != CTRLCHAN_MESSAGE_TYPE_UTF8 ||
            e->len != 12) {
            bad++;
            continue;
        }
        memcpy(text, e->data, 12);
        text[12] = '\0';
        if (sscanf(text, "msg %u", &idx) != 1 || idx != next[c]) bad++;
        next[c]++;
    }
    CHECK(!rec.cb_thread_mixed);                              /* one runtime = one callback thread */
    CHECK(rec.cb_thread_set && !pthread_equal(rec.cb_thread, pthread_self())); /* not the caller's */
    pthread_mutex_unlock(&rec.mu);
    CHECK_INT_EQ(bad, 0);
    CHECK_INT_EQ(next[0], 500);
    CHECK_INT_EQ(next[1], 500);
    for (c = 0; c < 2; c++) {
        ctrlchan_channel_free(ch[c]);
        ctrlchan_websocket_free(ws[c]);
    }
    ctrlchan_runtime_free(rt);
    h_recorder_destroy(&rec);
}

static void test_closed_event_code_and_reason(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_event *ev;
    ctrlchan_runtime_stats rs;
    char url[160];
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/close?code=4001&reason=bye-now&after_ms=100");
    h_open_channel(rt, "closer", 60000, NULL, url, &ws, &ch);
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CLOSED, 5000);
    REQUIRE(ev != NULL);
    CHECK_INT_EQ(ctrlchan_event_get_close_code(ev), 4001);
    CHECK_STR_EQ(ctrlchan_event_get_reason(ev), "bye-now");
    CHECK_STR_EQ(ctrlchan_event_get_channel_id(ev), "closer");
    CHECK(ctrlchan_event_get_channel(ev) == ch);
    CHECK(ctrlchan_event_get_websocket(ev) == ws);
    ctrlchan_event_free(ev);
    CHECK_RES(ctrlchan_websocket_send(ws, (const uint8_t *)"late", 4), CTRLCHAN_RESULT_CLOSED);
    CHECK_RES(ctrlchan_websocket_close(ws, 1000, NULL), CTRLCHAN_RESULT_CLOSED);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.channels_active, 0);
    h_expect_quiet(rt, 300); /* one terminal event only */
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);

    /* A normal close without a reason. */
    url_for(url, sizeof url, "/close?code=1000&after_ms=0");
    ws = h_connect(rt, url);
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CLOSED, 5000);
    REQUIRE(ev != NULL);
    CHECK_INT_EQ(ctrlchan_event_get_close_code(ev), 1000);
    CHECK_STR_EQ(ctrlchan_event_get_reason(ev), "");
    CHECK_STR_EQ(ctrlchan_event_get_channel_id(ev), "");
    CHECK(ctrlchan_event_get_channel(ev) == NULL);
    ctrlchan_event_free(ev);
    ctrlchan_websocket_free(ws);

    /* Client-initiated: the CLOSED event carries the server's answer. */
    url_for(url, sizeof url, "/echo");
    ws = h_connect(rt, url);
    CHECK_OK(ctrlchan_websocket_close(ws, 3999, "app says bye"));
    CHECK_RES(ctrlchan_websocket_close(ws, 1000, NULL), CTRLCHAN_RESULT_CLOSED); /* already closing */
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CLOSED, 5000);
    REQUIRE(ev != NULL);
    CHECK_INT_EQ(ctrlchan_event_get_close_code(ev), 3999);
    CHECK_STR_EQ(ctrlchan_event_get_reason(ev), "app says bye");
    ctrlchan_event_free(ev);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_finalizer_on_replace_and_channel_free(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    h_recorder a, b, c;
    char url[128];
    h_recorder_init(&a);
    h_recorder_init(&b);
    h_recorder_init(&c);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/echo");
    h_open_channel(rt, "finals", 60000, NULL, url, &ws, &ch);
    CHECK_OK(ctrlchan_channel_set_event_handler(ch, h_recorder_cb, &a, h_recorder_fin));
    CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"to a", 4));
    CHECK_INT_EQ(h_recorder_wait(&a, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 1, 5000), 1);
    CHECK_INT_EQ(h_recorder_finalized(&a), 0);

    /* Replacing finalizes the old userdata once (as soon as a:s last call has returned). */
    CHECK_OK(ctrlchan_channel_set_event_handler(ch, h_recorder_cb, &b, h_recorder_fin));
    CHECK_INT_EQ(h_recorder_wait_finalized(&a, 1, 2000), 1);
    CHECK_INT_EQ(h_recorder_finalized(&b), 0);
    CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"to b", 4));
    CHECK_INT_EQ(h_recorder_wait(&b, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 1, 5000), 1);
    CHECK_INT_EQ(h_recorder_count(&a, -1), 1); /* the old callback is never called again */

    /* Removing (cb NULL) finalizes b; the userdata passed with NULL is ignored. */
    CHECK_OK(ctrlchan_channel_set_event_handler(ch, NULL, &c, h_recorder_fin));
    CHECK_INT_EQ(h_recorder_wait_finalized(&b, 1, 2000), 1);
    CHECK_INT_EQ(h_recorder_finalized(&c), 0);

    /* Channel free finalizes the current one. */
    CHECK_OK(ctrlchan_channel_set_event_handler(ch, h_recorder_cb, &c, h_recorder_fin));
    ctrlchan_channel_free(ch);
    CHECK_INT_EQ(h_recorder_finalized(&c), 1);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
    /* Exactly once, even after everything is gone. */
    CHECK_INT_EQ(h_recorder_finalized(&a), 1);
    CHECK_INT_EQ(h_recorder_finalized(&b), 1);
    CHECK_INT_EQ(h_recorder_finalized(&c), 1);
    h_recorder_destroy(&a);
    h_recorder_destroy(&b);
    h_recorder_destroy(&c);
}

static void test_finalizer_on_channel_close_and_websocket_free(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    h_recorder a, w;
    h_recorder_init(&a);
    h_recorder_init(&w);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_channel_new(rt, "c", 60000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    CHECK_OK(ctrlchan_channel_set_event_handler(ch, h_recorder_cb, &a, h_recorder_fin));
    CHECK_OK(ctrlchan_websocket_set_event_handler(ws, h_recorder_cb, &w, h_recorder_fin));
    CHECK_OK(ctrlchan_channel_close(ch));
    CHECK_INT_EQ(h_recorder_finalized(&a), 1);
    ctrlchan_channel_free(ch);
    CHECK_INT_EQ(h_recorder_finalized(&a), 1);
    CHECK_INT_EQ(h_recorder_finalized(&w), 0);
    ctrlchan_websocket_free(ws);
    CHECK_INT_EQ(h_recorder_finalized(&w), 1);
    ctrlchan_runtime_free(rt);
    CHECK_INT_EQ(h_recorder_finalized(&w), 1);
    h_recorder_destroy(&a);
    h_recorder_destroy(&w);
}

static void test_finalizer_on_runtime_free(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL, *ws2 = NULL;
    ctrlchan_channel *ch = NULL;
    h_recorder a, w, w2;
    char url[128];
    h_recorder_init(&a);
    h_recorder_init(&w);
    h_recorder_init(&w2);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/echo");
    h_open_channel(rt, "rtfree", 60000, NULL, url, &ws, &ch);
    CHECK_OK(ctrlchan_channel_set_event_handler(ch, h_recorder_cb, &a, h_recorder_fin));
    CHECK_OK(ctrlchan_websocket_set_event_handler(ws, h_recorder_cb, &w, h_recorder_fin));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws2)); /* never connected */
    CHECK_OK(ctrlchan_websocket_set_event_handler(ws2, h_recorder_cb, &w2, h_recorder_fin));
    ctrlchan_runtime_free(rt);
    /* Released by the time runtime_free returns. */
    CHECK_INT_EQ(h_recorder_finalized(&a), 1);
    CHECK_INT_EQ(h_recorder_finalized(&w), 1);
    CHECK_INT_EQ(h_recorder_finalized(&w2), 1);
    /* No callback after shutdown (no CLOSED event for the runtime's own close). */
    CHECK_INT_EQ(h_recorder_count(&a, -1), 0);
    CHECK_INT_EQ(h_recorder_count(&w, -1), 0);
    /* A handler cannot be installed any more; the caller keeps the userdata. */
    {
        h_recorder late;
        h_recorder_init(&late);
        CHECK_RES(ctrlchan_channel_set_event_handler(ch, h_recorder_cb, &late, h_recorder_fin), CTRLCHAN_RESULT_INVALID_STATE);
        CHECK_RES(ctrlchan_websocket_set_event_handler(ws, h_recorder_cb, &late, h_recorder_fin), CTRLCHAN_RESULT_INVALID_STATE);
        CHECK_INT_EQ(h_recorder_finalized(&late), 0);
        h_recorder_destroy(&late);
    }
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_websocket_free(ws2);
    CHECK_INT_EQ(h_recorder_finalized(&a), 1);
    CHECK_INT_EQ(h_recorder_finalized(&w), 1);
    CHECK_INT_EQ(h_recorder_finalized(&w2), 1);
    h_recorder_destroy(&a);
    h_recorder_destroy(&w);
    h_recorder_destroy(&w2);
}

/* A callback that takes 300 ms: the finalizer of a replaced handler must wait for it. */
static void slow_cb(void *userdata, const ctrlchan_event *ev) {
    h_recorder *r = (h_recorder *)userdata;
    pthread_mutex_lock(&r->mu);
    r->in_callback = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    h_sleep_ms(300);
    pthread_mutex_lock(&r->mu);
    r->in_callback = 0;
    pthread_mutex_unlock(&r->mu);
    h_recorder_add(r, ev);
}

static void test_finalizer_waits_for_running_callback(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    h_recorder slow, next;
    char url[128];
    int i, started = 0;
    h_recorder_init(&slow);
    h_recorder_init(&next);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/echo");
    h_open_channel(rt, "slow", 60000, NULL, url, &ws, &ch);
    CHECK_OK(ctrlchan_channel_set_event_handler(ch, slow_cb, &slow, h_recorder_fin));
    CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"x", 1));
    for (i = 0; i < 500 && !started; i++) { /* up to 5 s for the callback to start */
        pthread_mutex_lock(&slow.mu);
        started = slow.in_callback;
        pthread_mutex_unlock(&slow.mu);
        if (!started) h_sleep_ms(10);
    }
    REQUIRE(started);
    CHECK_OK(ctrlchan_channel_set_event_handler(ch, h_recorder_cb, &next, h_recorder_fin));
    /* The slow callback is still running; its userdata must stay alive until it returns. */
    for (i = 0; i < 300 && h_recorder_finalized(&slow) == 0; i++) h_sleep_ms(10);
    CHECK_INT_EQ(h_recorder_finalized(&slow), 1);
    CHECK_INT_EQ(slow.finalized_in_callback, 0);
    CHECK_INT_EQ(h_recorder_count(&slow, -1), 1);
    ctrlchan_channel_free(ch);
    CHECK_INT_EQ(h_recorder_finalized(&next), 1);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
    CHECK_INT_EQ(h_recorder_finalized(&slow), 1);
    h_recorder_destroy(&slow);
    h_recorder_destroy(&next);
}

/* What a callback observed when it called other functions. */
struct inside {
    pthread_mutex_t mu;
    int done;
    ctrlchan_runtime *rt;
    ctrlchan_channel *ch;
    ctrlchan_websocket *ws;
    ctrlchan_websocket *other;  /* not connected */
    ctrlchan_websocket *async_ws; /* connect_async from the callback */
    char url[128];
    ctrlchan_result connect_r, flush_r, next_r, send_r, async_r, state_r;
    char connect_err[256], flush_err[256], next_err[256];
    ctrlchan_event *next_out;
    ctrlchan_websocket_state other_state;
    /* borrowed-event checks */
    const ctrlchan_event *borrowed;
    ctrlchan_event_kind kind_after_free;
};

static void inside_cb(void *userdata, const ctrlchan_event *ev) {
    struct inside *in = (struct inside *)userdata;
    if (ctrlchan_event_get_kind(ev) != CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION) return;
    pthread_mutex_lock(&in->mu);
    if (in->done) {
        pthread_mutex_unlock(&in->mu);
        return;
    }
    in->connect_r = ctrlchan_websocket_connect(in->other, in->url, 1000);
    snprintf(in->connect_err, sizeof in->connect_err, "%s", ctrlchan_last_error());
    in->flush_r = ctrlchan_channel_flush_transport(in->ch, 100);
    snprintf(in->flush_err, sizeof in->flush_err, "%s", ctrlchan_last_error());
    in->next_out = NULL;
    in->next_r = ctrlchan_runtime_next_event(in->rt, 0, &in->next_out);
    snprintf(in->next_err, sizeof in->next_err, "%s", ctrlchan_last_error());
    in->state_r = ctrlchan_websocket_get_state(in->other, &in->other_state);
    /* Non-blocking calls work from a callback. */
    in->send_r = ctrlchan_websocket_send(in->ws, (const uint8_t *)"from callback", 13);
    in->async_r = ctrlchan_websocket_connect_async(in->async_ws, in->url, 5000);
    /* The event is borrowed: freeing it here is ignored, it stays readable. */
    ctrlchan_event_free((ctrlchan_event *)ev);
    in->kind_after_free = ctrlchan_event_get_kind(ev);
    in->borrowed = ev;
    in->done = 1;
    pthread_mutex_unlock(&in->mu);
}

static void test_blocking_calls_inside_callback(void) {
    ctrlchan_runtime *rt = NULL;
    struct inside in;
    h_recorder async_rec;
    ctrlchan_websocket_state st = CTRLCHAN_WEBSOCKET_STATE_CLOSED;
    const uint8_t *data = NULL;
    size_t len = 0;
    int i, done = 0;
    memset(&in, 0, sizeof in);
    pthread_mutex_init(&in.mu, NULL);
    h_recorder_init(&async_rec);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    in.rt = rt;
    url_for(in.url, sizeof in.url, "/echo");
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &in.other));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &in.async_ws));
    REQUIRE_OK(ctrlchan_websocket_set_event_handler(in.async_ws, h_recorder_cb, &async_rec, NULL));
    h_open_channel(rt, "inside", 60000, NULL, in.url, &in.ws, &in.ch);
    REQUIRE_OK(ctrlchan_channel_set_event_handler(in.ch, inside_cb, &in, NULL));
    CHECK_OK(ctrlchan_websocket_send(in.ws, (const uint8_t *)"go", 2));
    for (i = 0; i < 500 && !done; i++) {
        pthread_mutex_lock(&in.mu);
        done = in.done;
        pthread_mutex_unlock(&in.mu);
        if (!done) h_sleep_ms(10);
    }
    REQUIRE(done);
    CHECKF(in.connect_r == CTRLCHAN_RESULT_INVALID_STATE, "connect in callback: %s", ctrlchan_result_name(in.connect_r));
    CHECKF(in.flush_r == CTRLCHAN_RESULT_INVALID_STATE, "flush in callback: %s", ctrlchan_result_name(in.flush_r));
    CHECKF(in.next_r == CTRLCHAN_RESULT_INVALID_STATE, "next_event in callback: %s", ctrlchan_result_name(in.next_r));
    CHECK(in.connect_err[0] != '\0' && in.flush_err[0] != '\0' && in.next_err[0] != '\0');
    CHECK(in.next_out == NULL);
    CHECK_INT_EQ(in.state_r, CTRLCHAN_RESULT_OK);
    CHECK_INT_EQ(in.other_state, CTRLCHAN_WEBSOCKET_STATE_NEW); /* the refused connect changed nothing */
    CHECK_INT_EQ(in.send_r, CTRLCHAN_RESULT_OK);
    CHECK_INT_EQ(in.async_r, CTRLCHAN_RESULT_OK);
    CHECK_INT_EQ(in.kind_after_free, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION);
    /* After the callback returned, the borrowed event handle is dead. */
    CHECK_RES(ctrlchan_event_get_data(in.borrowed, &data, &len), CTRLCHAN_RESULT_INVALID_HANDLE);
    /* connect_async from the callback went through. */
    CHECK_INT_EQ(h_recorder_wait(&async_rec, CTRLCHAN_EVENT_KIND_CONNECTED, 1, 5000), 1);
    /* And the websocket whose connect was refused can still connect from a normal thread. */
    CHECK_OK(ctrlchan_websocket_connect(in.other, in.url, 5000));
    CHECK_OK(ctrlchan_websocket_get_state(in.other, &st));
    CHECK_INT_EQ(st, CTRLCHAN_WEBSOCKET_STATE_OPEN);
    ctrlchan_channel_free(in.ch);
    ctrlchan_websocket_free(in.ws);
    ctrlchan_websocket_free(in.other);
    ctrlchan_websocket_free(in.async_ws);
    ctrlchan_runtime_free(rt);
    h_recorder_destroy(&async_rec);
    pthread_mutex_destroy(&in.mu);
}

/* runtime_free from inside a callback: shutdown starts, INVALID_STATE detail, no deadlock. */
struct self_free {
    pthread_mutex_t mu;
    ctrlchan_runtime *rt;
    int done;
    char err[256];
};

static void self_free_cb(void *userdata, const ctrlchan_event *ev) {
    struct self_free *s = (struct self_free *)userdata;
    (void)ev;
    pthread_mutex_lock(&s->mu);
    if (!s->done) {
        ctrlchan_runtime_free(s->rt);
        snprintf(s->err, sizeof s->err, "%s", ctrlchan_last_error());
        s->done = 1;
    }
    pthread_mutex_unlock(&s->mu);
}

static void test_runtime_free_inside_callback(void) {
    struct self_free s;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_event *ev = NULL;
    ctrlchan_websocket_state st = CTRLCHAN_WEBSOCKET_STATE_OPEN;
    char url[128];
    int base = h_thread_count(), i, done = 0;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    REQUIRE_OK(ctrlchan_runtime_new(&s.rt));
    url_for(url, sizeof url, "/echo");
    ws = h_connect(s.rt, url);
    REQUIRE_OK(ctrlchan_websocket_set_event_handler(ws, self_free_cb, &s, NULL));
    CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"bye", 3));
    for (i = 0; i < 500 && !done; i++) {
        pthread_mutex_lock(&s.mu);
        done = s.done;
        pthread_mutex_unlock(&s.mu);
        if (!done) h_sleep_ms(10);
    }
    REQUIRE(done);
    CHECKF(s.err[0] != '\0', "runtime_free in a callback left no last_error");
    /* The handle is released; the reactor winds down on its own. */
    CHECK_RES(ctrlchan_runtime_next_event(s.rt, 0, &ev), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_INT_EQ(h_wait_thread_count(base, 3000), base);
    CHECK_OK(ctrlchan_websocket_get_state(ws, &st));
    CHECK_INT_EQ(st, CTRLCHAN_WEBSOCKET_STATE_CLOSED);
    ctrlchan_websocket_free(ws);
    pthread_mutex_destroy(&s.mu);
}

static void test_routing_channel_then_websocket_then_queue(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL, *lone = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_event *ev;
    h_recorder on_ch, on_ws, on_lone;
    char url[128];
    h_recorder_init(&on_ch);
    h_recorder_init(&on_ws);
    h_recorder_init(&on_lone);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/echo");
    h_open_channel(rt, "routed", 60000, NULL, url, &ws, &ch);
    CHECK_OK(ctrlchan_websocket_set_event_handler(ws, h_recorder_cb, &on_ws, h_recorder_fin));
    CHECK_OK(ctrlchan_channel_set_event_handler(ch, h_recorder_cb, &on_ch, h_recorder_fin));

    /* 1. channel handler wins */
    CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"1", 1));
    CHECK_INT_EQ(h_recorder_wait(&on_ch, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 1, 5000), 1);
    CHECK_INT_EQ(h_recorder_count(&on_ws, -1), 0);
    if (h_recorder_count(&on_ch, -1) == 1) {
        CHECK(on_ch.events[0].channel == ch);
        CHECK(on_ch.events[0].websocket == ws);
        CHECK_STR_EQ(on_ch.events[0].channel_id, "routed");
    }
    /* 2. without a channel handler: the websocket handler */
    CHECK_OK(ctrlchan_channel_set_event_handler(ch, NULL, NULL, NULL));
    CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"2", 1));
    CHECK_INT_EQ(h_recorder_wait(&on_ws, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 1, 5000), 1);
    CHECK_INT_EQ(h_recorder_count(&on_ch, -1), 1);
    if (h_recorder_count(&on_ws, -1) == 1) {
        CHECK(on_ws.events[0].channel == ch); /* still the channel's event */
        CHECK(on_ws.events[0].len == 1 && on_ws.events[0].data[0] == '2');
    }
    /* 3. neither: the runtime queue */
    CHECK_OK(ctrlchan_websocket_set_event_handler(ws, NULL, NULL, NULL));
    CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)"3", 1));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
    CHECK(ev != NULL);
    if (ev) {
        CHECK(ctrlchan_event_get_channel(ev) == ch);
        ctrlchan_event_free(ev);
    }
    CHECK_INT_EQ(h_recorder_count(&on_ch, -1), 1);
    CHECK_INT_EQ(h_recorder_count(&on_ws, -1), 1);
    CHECK_INT_EQ(h_recorder_wait_finalized(&on_ch, 1, 2000), 1);
    CHECK_INT_EQ(h_recorder_wait_finalized(&on_ws, 1, 2000), 1);

    /* A websocket without a channel: its own handler. */
    lone = h_connect(rt, url);
    CHECK_OK(ctrlchan_websocket_set_event_handler(lone, h_recorder_cb, &on_lone, h_recorder_fin));
    CHECK_OK(ctrlchan_websocket_send(lone, (const uint8_t *)"4", 1));
    CHECK_INT_EQ(h_recorder_wait(&on_lone, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 1, 5000), 1);
    if (h_recorder_count(&on_lone, -1) == 1) {
        CHECK(on_lone.events[0].channel == NULL);
        CHECK(on_lone.events[0].websocket == lone);
        CHECK_STR_EQ(on_lone.events[0].channel_id, "");
    }
    h_expect_quiet(rt, 100);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_websocket_free(lone);
    CHECK_INT_EQ(h_recorder_wait_finalized(&on_lone, 1, 2000), 1);
    ctrlchan_runtime_free(rt);
    h_recorder_destroy(&on_ch);
    h_recorder_destroy(&on_ws);
    h_recorder_destroy(&on_lone);
}

/* Freeing the channel and its websocket from inside the channel's own callback ("any thread,
   including callbacks"): no crash, the event stays readable until the callback returns, and
   the finalizer runs once, after the callback returned. */
struct free_inside {
    h_recorder rec; /* finalizer bookkeeping (in_callback, finalized_in_callback) */
    ctrlchan_channel *ch;
    ctrlchan_websocket *ws;
    int done;
    ctrlchan_event_kind kind_after;
};

static void free_inside_cb(void *userdata, const ctrlchan_event *ev) {
    struct free_inside *f = (struct free_inside *)userdata;
    if (ctrlchan_event_get_kind(ev) != CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION) return;
    pthread_mutex_lock(&f->rec.mu);
    if (f->done) {
        pthread_mutex_unlock(&f->rec.mu);
        return;
    }
    f->rec.in_callback = 1;
    pthread_mutex_unlock(&f->rec.mu);
    ctrlchan_channel_free(f->ch);
    ctrlchan_websocket_free(f->ws);
    h_sleep_ms(50); /* give a wrongly early finalizer time to show */
    f->kind_after = ctrlchan_event_get_kind(ev);
    pthread_mutex_lock(&f->rec.mu);
    f->rec.in_callback = 0;
    f->done = 1;
    pthread_mutex_unlock(&f->rec.mu);
}

static void test_free_handles_inside_callback(void) {
    ctrlchan_runtime *rt = NULL;
    struct free_inside f;
    ctrlchan_websocket_state st;
    char url[128];
    int i, done = 0;
    memset(&f, 0, sizeof f);
    h_recorder_init(&f.rec);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/echo");
    h_open_channel(rt, "self-free", 60000, NULL, url, &f.ws, &f.ch);
    REQUIRE_OK(ctrlchan_channel_set_event_handler(f.ch, free_inside_cb, &f, h_recorder_fin));
    CHECK_OK(ctrlchan_websocket_send(f.ws, (const uint8_t *)"free me", 7));
    for (i = 0; i < 500 && !done; i++) {
        pthread_mutex_lock(&f.rec.mu);
        done = f.done;
        pthread_mutex_unlock(&f.rec.mu);
        if (!done) h_sleep_ms(10);
    }
    REQUIRE(done);
    CHECK_INT_EQ(f.kind_after, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION);
    CHECK_INT_EQ(h_recorder_wait_finalized(&f.rec, 1, 2000), 1);
    CHECK_INT_EQ(f.rec.finalized_in_callback, 0);
    CHECK_RES(ctrlchan_websocket_get_state(f.ws, &st), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_channel_close(f.ch), CTRLCHAN_RESULT_INVALID_HANDLE);
    h_expect_quiet(rt, 200);
    ctrlchan_runtime_free(rt);
    CHECK_INT_EQ(h_recorder_finalized(&f.rec), 1);
    h_recorder_destroy(&f.rec);
}

/* Callbacks run on the runtime thread (header: "cb runs on the runtime thread"), never inside
   the caller's own call: an app calling the library while holding its own lock must not have
   its callback re-entered on that thread. Seen: the RESET event of using_transport is delivered
   synchronously on the thread calling using_transport. */
static void test_reset_callback_runs_on_runtime_thread(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL, *ws2 = NULL;
    ctrlchan_channel *ch = NULL;
    h_recorder rec;
    char url[128];
    int on_caller = 0;
    h_recorder_init(&rec);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/drop?after_ms=50");
    h_open_channel(rt, "threads", 60000, NULL, url, &ws, &ch);
    REQUIRE_OK(ctrlchan_channel_set_event_handler(ch, h_recorder_cb, &rec, NULL));
    CHECK_INT_EQ(h_recorder_wait(&rec, CTRLCHAN_EVENT_KIND_TRANSPORT_DISCONNECTED, 1, 5000), 1);
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws2));
    CHECK_OK(ctrlchan_channel_using_transport(ch, ws2));
    CHECK_INT_EQ(h_recorder_wait(&rec, CTRLCHAN_EVENT_KIND_RESET, 1, 5000), 1);
    pthread_mutex_lock(&rec.mu);
    CHECK(!rec.cb_thread_mixed); /* the disconnect and the reset came on the same (runtime) thread */
    on_caller = rec.cb_thread_set && pthread_equal(rec.cb_thread, pthread_self());
    pthread_mutex_unlock(&rec.mu);
    CHECK(!on_caller);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_websocket_free(ws2);
    ctrlchan_runtime_free(rt);
    h_recorder_destroy(&rec);
}

int main(int argc, char **argv) {
    h_init(argc, argv);
    server = peer_server_start(NULL, NULL);
    REQUIRE(server != NULL);
    RUN_TEST(test_1000_pushes_exactly_once_in_order_queue);
    RUN_TEST(test_pushes_in_order_per_channel_callback);
    RUN_TEST(test_closed_event_code_and_reason);
    RUN_TEST(test_finalizer_on_replace_and_channel_free);
    RUN_TEST(test_finalizer_on_channel_close_and_websocket_free);
    RUN_TEST(test_finalizer_on_runtime_free);
    RUN_TEST(test_finalizer_waits_for_running_callback);
    RUN_TEST(test_blocking_calls_inside_callback);
    RUN_TEST(test_runtime_free_inside_callback);
    RUN_TEST(test_routing_channel_then_websocket_then_queue);
    RUN_TEST(test_free_handles_inside_callback);
    RUN_TEST(test_reset_callback_runs_on_runtime_thread);
    return h_finish();
}
