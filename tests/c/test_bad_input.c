/* Bad input: NULL, freed, double-freed, garbage and wrong-type handles; NULL out-pointers and
   strings; invalid UTF-8; header injection; bad URIs; invalid enum values and numbers; calls in
   the wrong state; the last-error text and result names; the outbound limit (BUFFER_FULL).
   Every failing call must return the documented code, leave a non-empty ctrlchan_last_error()
   (checked by CHECK_RES), and never crash (ASan watches). */
#include "harness.h"

static h_child *server;

static void url_for(char *out, size_t n, const char *path) { h_url(out, n, "ws", server->port, path); }

/* Handles of every type, created and freed: "freed" values. */
static ctrlchan_runtime *freed_rt;
static ctrlchan_websocket *freed_ws;
static ctrlchan_channel *freed_ch;
static ctrlchan_keepalive *freed_ka;
static ctrlchan_event *freed_ev;

static void make_freed_handles(void) {
    ctrlchan_runtime *rt = NULL;
    char url[128];
    url_for(url, sizeof url, "/echo");
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &freed_ws));
    REQUIRE_OK(ctrlchan_channel_new(rt, "freed", 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &freed_ch));
    REQUIRE_OK(ctrlchan_keepalive_new(&freed_ka));
    REQUIRE_OK(ctrlchan_websocket_connect_async(freed_ws, url, 5000));
    freed_ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CONNECTED, 5000);
    REQUIRE(freed_ev != NULL);
    ctrlchan_event_free(freed_ev);
    ctrlchan_channel_free(freed_ch);
    ctrlchan_keepalive_free(freed_ka);
    ctrlchan_websocket_free(freed_ws);
    ctrlchan_runtime_free(rt);
    freed_rt = rt;
}

static void runtime_fns_invalid(ctrlchan_runtime *bad) {
    ctrlchan_event *ev = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_runtime_stats rs;
    int fd = -7;
    CHECK_RES(ctrlchan_runtime_next_event(bad, 0, &ev), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_runtime_next_event(bad, 50, &ev), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK(ev == NULL);
    CHECK_RES(ctrlchan_runtime_event_fd(bad, &fd), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_INT_EQ(fd, -7);
    CHECK_RES(ctrlchan_runtime_get_stats(bad, &rs), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_runtime_set_max_channels(bad, 10), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_runtime_set_coalescing_window(bad, 10), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_runtime_set_pong_settle(bad, 10), CTRLCHAN_RESULT_INVALID_HANDLE);
    {
        uint32_t settle = 77;
        CHECK_RES(ctrlchan_runtime_get_pong_settle(bad, &settle), CTRLCHAN_RESULT_INVALID_HANDLE);
        CHECK_INT_EQ(settle, 77);
    }
    CHECK_RES(ctrlchan_websocket_new(bad, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK(ws == NULL);
    CHECK_RES(ctrlchan_channel_new(bad, "x", 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch),
              CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK(ch == NULL);
    ctrlchan_runtime_free(bad); /* no-op */
}

static void websocket_fns_invalid(ctrlchan_websocket *bad, h_recorder *rec) {
    const char *proto = NULL;
    ctrlchan_websocket_stats st;
    ctrlchan_websocket_state state;
    ctrlchan_websocket_kind kind;
    ctrlchan_message_type t;
    uint32_t max;
    char url[128];
    url_for(url, sizeof url, "/echo");
    CHECK_RES(ctrlchan_websocket_set_request_header(bad, "X-A", "b"), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_add_supported_protocol(bad, "chat"), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_set_max_message_size(bad, 100), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_set_message_type(bad, CTRLCHAN_MESSAGE_TYPE_UTF8), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_add_trusted_ca_pem(bad, (const uint8_t *)"x", 1), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_set_ignore_certificate_errors(bad, true), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_set_outbound_buffer_limit(bad, 100), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_set_event_handler(bad, h_recorder_cb, rec, h_recorder_fin), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_set_event_handler(bad, NULL, NULL, NULL), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_connect(bad, url, 1000), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_connect_async(bad, url, 1000), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_send(bad, (const uint8_t *)"x", 1), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_send_message(bad, CTRLCHAN_MESSAGE_TYPE_BINARY, (const uint8_t *)"x", 1),
              CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_close(bad, 1000, NULL), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_get_protocol(bad, &proto), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK(proto == NULL);
    CHECK_RES(ctrlchan_websocket_get_stats(bad, &st), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_get_state(bad, &state), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_get_kind(bad, &kind), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_get_max_message_size(bad, &max), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_websocket_get_message_type(bad, &t), CTRLCHAN_RESULT_INVALID_HANDLE);
    ctrlchan_websocket_free(bad); /* no-op */
    CHECK_INT_EQ(h_recorder_finalized(rec), 0); /* failed install: the caller keeps the userdata */
}

static void channel_fns_invalid(ctrlchan_channel *bad, ctrlchan_websocket *good_ws, ctrlchan_keepalive *good_ka,
                                h_recorder *rec) {
    ctrlchan_status st = CTRLCHAN_STATUS_SYSTEM_ERROR;
    uint32_t ms = 7;
    const char *id = NULL;
    ctrlchan_resource_type t;
    CHECK_RES(ctrlchan_channel_using_transport(bad, good_ws), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_channel_wait_for_push_enabled(bad, &st), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_INT_EQ(st, CTRLCHAN_STATUS_SYSTEM_ERROR);
    CHECK_RES(ctrlchan_channel_set_keepalive(bad, good_ka), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_channel_set_keepalive(bad, NULL), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_channel_set_event_handler(bad, h_recorder_cb, rec, h_recorder_fin), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_channel_current_keepalive_interval(bad, &ms), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_INT_EQ(ms, 7);
    CHECK_RES(ctrlchan_channel_decrease_network_keepalive_interval(bad), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_channel_flush_transport(bad, 10), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_channel_close(bad), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_channel_get_id(bad, &id), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK(id == NULL);
    CHECK_RES(ctrlchan_channel_get_server_keepalive_interval(bad, &ms), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_channel_get_resource_type(bad, &t), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_keepalive_run(good_ka, bad), CTRLCHAN_RESULT_INVALID_HANDLE);
    ctrlchan_channel_free(bad); /* no-op */
    CHECK_INT_EQ(h_recorder_finalized(rec), 0);
}

static void keepalive_fns_invalid(ctrlchan_keepalive *bad, ctrlchan_channel *good_ch) {
    ctrlchan_keepalive_mode mode;
    uint32_t ms;
    CHECK_RES(ctrlchan_keepalive_set_mode(bad, CTRLCHAN_KEEPALIVE_MODE_PING), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_keepalive_set_pong_timeout(bad, 1000), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_keepalive_run(bad, good_ch), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_keepalive_get_mode(bad, &mode), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK_RES(ctrlchan_keepalive_get_pong_timeout(bad, &ms), CTRLCHAN_RESULT_INVALID_HANDLE);
    if (bad != NULL) CHECK_RES(ctrlchan_channel_set_keepalive(good_ch, bad), CTRLCHAN_RESULT_INVALID_HANDLE);
    ctrlchan_keepalive_free(bad); /* no-op */
}

static void event_fns_invalid(ctrlchan_event *bad) {
    const uint8_t *data = (const uint8_t *)"untouched";
    size_t len = 99;
    const char *s;
    CHECK_INT_EQ(ctrlchan_event_get_kind(bad), CTRLCHAN_EVENT_KIND_TRANSPORT_DISCONNECTED);
    CHECK(ctrlchan_last_error()[0] != '\0'); /* documented: an invalid event sets the last error */
    CHECK(ctrlchan_event_get_channel(bad) == NULL);
    CHECK(ctrlchan_event_get_websocket(bad) == NULL);
    s = ctrlchan_event_get_channel_id(bad);
    CHECK(s != NULL && s[0] == '\0');
    CHECK_INT_EQ(ctrlchan_event_get_message_type(bad), CTRLCHAN_MESSAGE_TYPE_BINARY);
    CHECK_RES(ctrlchan_event_get_data(bad, &data, &len), CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK(len == 99 && data != NULL && data[0] == 'u');
    CHECK_INT_EQ(ctrlchan_event_get_close_code(bad), 0);
    s = ctrlchan_event_get_reason(bad);
    CHECK(s != NULL && s[0] == '\0');
    CHECK_INT_EQ(ctrlchan_event_get_rtt_us(bad), 0);
    CHECK_INT_EQ(ctrlchan_event_get_result(bad), CTRLCHAN_RESULT_INVALID_HANDLE);
    ctrlchan_event_free(bad); /* no-op */
}

static void test_invalid_handles_everywhere(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_keepalive *ka = NULL;
    ctrlchan_event *ev = NULL;
    h_recorder rec;
    int on_stack = 42;
    void *bad[6];
    const char *names[6] = {"NULL", "garbage 0x1234", "pointer to a stack variable", "all ones", "freed", "wrong type"};
    char url[128];
    int i;
    const char *id = NULL;
    h_recorder_init(&rec);
    make_freed_handles();
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    REQUIRE_OK(ctrlchan_channel_new(rt, "good", 60000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch));
    REQUIRE_OK(ctrlchan_keepalive_new(&ka));
    url_for(url, sizeof url, "/echo");
    {
        ctrlchan_websocket *w = h_connect(rt, url); /* one live event, for the wrong-type case */
        CHECK_OK(ctrlchan_websocket_send(w, (const uint8_t *)"e", 1));
        ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
        REQUIRE(ev != NULL);
        ctrlchan_websocket_free(w);
    }
    bad[0] = NULL;
    bad[1] = (void *)(uintptr_t)0x1234;
    bad[2] = &on_stack;
    bad[3] = (void *)(uintptr_t)UINTPTR_MAX;
    for (i = 0; i < 6; i++) {
        h_context = names[i];
        runtime_fns_invalid(i == 4 ? freed_rt : i == 5 ? (ctrlchan_runtime *)ws : (ctrlchan_runtime *)bad[i]);
        websocket_fns_invalid(i == 4 ? freed_ws : i == 5 ? (ctrlchan_websocket *)ch : (ctrlchan_websocket *)bad[i], &rec);
        channel_fns_invalid(i == 4 ? freed_ch : i == 5 ? (ctrlchan_channel *)ka : (ctrlchan_channel *)bad[i], ws, ka, &rec);
        keepalive_fns_invalid(i == 4 ? freed_ka : i == 5 ? (ctrlchan_keepalive *)ev : (ctrlchan_keepalive *)bad[i], ch);
        event_fns_invalid(i == 4 ? freed_ev : i == 5 ? (ctrlchan_event *)rt : (ctrlchan_event *)bad[i]);
        /* A bad transport for a good channel. */
        CHECK_RES(ctrlchan_channel_using_transport(
                      ch, i == 4 ? freed_ws : i == 5 ? (ctrlchan_websocket *)ch : (ctrlchan_websocket *)bad[i]),
                  CTRLCHAN_RESULT_INVALID_HANDLE);
    }
    h_context = NULL;
    CHECK(on_stack == 42);

    /* Wrong-type frees did not free anything: everything still works. */
    CHECK_OK(ctrlchan_channel_get_id(ch, &id));
    CHECK_STR_EQ(id, "good");
    CHECK_OK(ctrlchan_keepalive_set_mode(ka, CTRLCHAN_KEEPALIVE_MODE_PING));
    CHECK_OK(ctrlchan_channel_using_transport(ch, ws));
    CHECK_OK(ctrlchan_websocket_connect(ws, url, 5000));
    CHECK_INT_EQ(ctrlchan_event_get_kind(ev), CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION);
    CHECK_STR_EQ(ctrlchan_last_error(), "");
    {
        ctrlchan_runtime_stats rs;
        CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    }

    /* Double frees of every type are no-ops. */
    ctrlchan_event_free(ev);
    ctrlchan_event_free(ev);
    ctrlchan_channel_free(ch);
    ctrlchan_channel_free(ch);
    ctrlchan_keepalive_free(ka);
    ctrlchan_keepalive_free(ka);
    ctrlchan_websocket_free(ws);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
    ctrlchan_runtime_free(rt);
    ctrlchan_runtime_free(NULL);
    ctrlchan_websocket_free(NULL);
    ctrlchan_channel_free(NULL);
    ctrlchan_keepalive_free(NULL);
    ctrlchan_event_free(NULL);
    CHECK_INT_EQ(h_recorder_finalized(&rec), 0);
    h_recorder_destroy(&rec);
}

static void test_null_out_pointers(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_keepalive *ka = NULL;
    ctrlchan_event *ev = NULL;
    const uint8_t *data = NULL;
    size_t len = 0;
    char url[128];
    CHECK_RES(ctrlchan_runtime_new(NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_keepalive_new(NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_keepalive_new(&ka));
    CHECK_RES(ctrlchan_runtime_next_event(rt, 0, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_runtime_event_fd(rt, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_runtime_get_stats(rt, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_new(rt, "x", 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, NULL),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    REQUIRE_OK(ctrlchan_channel_new(rt, "x", 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch));
    CHECK_RES(ctrlchan_websocket_get_protocol(ws, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_get_stats(ws, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_get_state(ws, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_get_kind(ws, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_get_max_message_size(ws, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_get_message_type(ws, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_wait_for_push_enabled(ch, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_current_keepalive_interval(ch, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_get_id(ch, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_get_server_keepalive_interval(ch, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_get_resource_type(ch, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_keepalive_get_mode(ka, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_keepalive_get_pong_timeout(ka, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    url_for(url, sizeof url, "/echo");
    REQUIRE_OK(ctrlchan_websocket_connect_async(ws, url, 5000));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CONNECTED, 5000);
    REQUIRE(ev != NULL);
    CHECK_RES(ctrlchan_event_get_data(ev, NULL, &len), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_event_get_data(ev, &data, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_OK(ctrlchan_event_get_data(ev, &data, &len));
    CHECK_INT_EQ(len, 0); /* not a push: empty */
    ctrlchan_event_free(ev);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_keepalive_free(ka);
    ctrlchan_runtime_free(rt);
}

static void test_strings_utf8_and_header_injection(void) {
    static const char *const bad_names[] = {"X Bad", " X", "X:Bad", "", "X\tBad", "X\r\nEvil", "Na\xc3\xafve", "X(1)",
                                            "\xff"};
    static const char *const bad_values[] = {"a\rb", "a\nb", "ok\r\nX-Evil: 1", "bell\x07", "del\x7f", "caf\xe9",
                                             "\xc3\x28"};
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    size_t i;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    for (i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        h_context = bad_names[i];
        CHECK_RES(ctrlchan_websocket_set_request_header(ws, bad_names[i], "v"), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    }
    for (i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        h_context = bad_values[i];
        CHECK_RES(ctrlchan_websocket_set_request_header(ws, "X-Value", bad_values[i]), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    }
    h_context = NULL;
    CHECK_RES(ctrlchan_websocket_set_request_header(ws, NULL, "v"), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_set_request_header(ws, "X-A", NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_add_supported_protocol(ws, "\xc3"), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_add_supported_protocol(ws, "chat\r\n"), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_connect(ws, "ws://127.0.0.1:1/\xff", 1000), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    /* Fine ones still work afterwards (the failures changed nothing). */
    CHECK_OK(ctrlchan_websocket_set_request_header(ws, "X-Fine", "tab\there, and UTF-8: caf\xc3\xa9"));
    CHECK_OK(ctrlchan_websocket_set_request_header(ws, "X-Empty", ""));
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_bad_uris(void) {
    static const char *const bad[] = {"http://127.0.0.1:1/echo", "https://127.0.0.1:1/echo", "ftp://127.0.0.1/echo",
                                      "127.0.0.1:1/echo", "//127.0.0.1:1/echo", "localhost", "", "ws://", "ws:///echo",
                                      "ws://[::1/echo", "ws://127.0.0.1:1/with space",
                                      "file:///etc/passwd", "javascript:alert(1)"};
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_websocket_state st = CTRLCHAN_WEBSOCKET_STATE_CLOSED;
    char url[128];
    size_t i;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h_context = bad[i];
        CHECK_RES(ctrlchan_websocket_connect(ws, bad[i], 1000), CTRLCHAN_RESULT_INVALID_ARGUMENT);
        CHECK_RES(ctrlchan_websocket_connect_async(ws, bad[i], 1000), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    }
    h_context = NULL;
    CHECK_RES(ctrlchan_websocket_connect(ws, NULL, 1000), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_connect_async(ws, NULL, 1000), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    h_expect_quiet(rt, 100); /* no CONNECT_FAILED events for argument errors */
    /* None of that moved the websocket out of NEW: it still connects (scheme is case-insensitive). */
    CHECK_OK(ctrlchan_websocket_get_state(ws, &st));
    CHECK_INT_EQ(st, CTRLCHAN_WEBSOCKET_STATE_NEW);
    h_url(url, sizeof url, "WS", server->port, "/echo");
    CHECK_OK(ctrlchan_websocket_connect(ws, url, 5000));
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

/* A port outside 1..65535 is a malformed URI. (Seen: the library dropped the bad port and
   connected to the scheme's default port 80 instead.) */
static void test_uri_port_out_of_range(void) {
    static const char *const bad[] = {"ws://127.0.0.1:99999/echo", "ws://127.0.0.1:65536/echo", "wss://127.0.0.1:70000/"};
    ctrlchan_runtime *rt = NULL;
    size_t i;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ctrlchan_websocket *ws = NULL;
        h_context = bad[i];
        REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
        CHECK_RES(ctrlchan_websocket_connect(ws, bad[i], 1000), CTRLCHAN_RESULT_INVALID_ARGUMENT);
        ctrlchan_websocket_free(ws);
    }
    h_context = NULL;
    ctrlchan_runtime_free(rt);
}

static void test_invalid_enums_and_numbers(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL, *ws_sentinel = (ctrlchan_websocket *)&rt;
    ctrlchan_channel *ch = NULL;
    ctrlchan_keepalive *ka = NULL;
    ctrlchan_message_type t = CTRLCHAN_MESSAGE_TYPE_UTF8;
    ctrlchan_keepalive_mode m = CTRLCHAN_KEEPALIVE_MODE_UNSOLICITED_PONG;
    char url[128];
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_keepalive_new(&ka));
    ws = ws_sentinel;
    CHECK_RES(ctrlchan_websocket_new(rt, (ctrlchan_websocket_kind)7, &ws), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_new(rt, (ctrlchan_websocket_kind)UINT32_MAX, &ws), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK(ws == ws_sentinel);
    CHECK_RES(ctrlchan_channel_new(rt, "x", 1000, (ctrlchan_resource_type)7, &ch), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_channel_new(rt, "x", 1000, (ctrlchan_resource_type)2, &ch), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK(ch == NULL);
    CHECK_RES(ctrlchan_keepalive_set_mode(ka, (ctrlchan_keepalive_mode)7), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_OK(ctrlchan_keepalive_get_mode(ka, &m));
    CHECK_INT_EQ(m, CTRLCHAN_KEEPALIVE_MODE_PING);
    CHECK_RES(ctrlchan_keepalive_set_pong_timeout(ka, 0), CTRLCHAN_RESULT_INVALID_ARGUMENT);

    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    CHECK_RES(ctrlchan_websocket_set_message_type(ws, (ctrlchan_message_type)7), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_set_message_type(ws, (ctrlchan_message_type)2), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_OK(ctrlchan_websocket_get_message_type(ws, &t));
    CHECK_INT_EQ(t, CTRLCHAN_MESSAGE_TYPE_BINARY);
    CHECK_RES(ctrlchan_websocket_set_max_message_size(ws, 0), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_set_outbound_buffer_limit(ws, 0), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_runtime_set_max_channels(rt, 0), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_runtime_set_coalescing_window(rt, 3600001u), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_OK(ctrlchan_runtime_set_coalescing_window(rt, 3600000u));
    CHECK_OK(ctrlchan_runtime_set_coalescing_window(rt, 0));
    {
        uint32_t settle = 0;
        CHECK_OK(ctrlchan_runtime_get_pong_settle(rt, &settle));
        CHECK_INT_EQ(settle, CTRLCHAN_DEFAULT_PONG_SETTLE_MS);
        CHECK_RES(ctrlchan_runtime_set_pong_settle(rt, CTRLCHAN_MAX_PONG_SETTLE_MS + 1), CTRLCHAN_RESULT_INVALID_ARGUMENT);
        CHECK_RES(ctrlchan_runtime_get_pong_settle(rt, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
        CHECK_OK(ctrlchan_runtime_set_pong_settle(rt, 0));
        CHECK_OK(ctrlchan_runtime_get_pong_settle(rt, &settle));
        CHECK_INT_EQ(settle, 0);
    }

    url_for(url, sizeof url, "/echo");
    REQUIRE_OK(ctrlchan_websocket_connect(ws, url, 5000));
    CHECK_RES(ctrlchan_websocket_send_message(ws, (ctrlchan_message_type)7, (const uint8_t *)"x", 1),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    ctrlchan_websocket_free(ws);
    ctrlchan_keepalive_free(ka);
    ctrlchan_runtime_free(rt);
}

static void test_send_and_close_in_wrong_state(void) {
    static const uint8_t x[] = {'x'};
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_event *ev;
    char url[128], reason124[125], reason123[124];
    static const uint16_t bad_codes[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535};
    size_t i;
    memset(reason124, 'r', 124);
    reason124[124] = '\0';
    memset(reason123, 'r', 123);
    reason123[123] = '\0';
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    /* Not connected. */
    CHECK_RES(ctrlchan_websocket_send(ws, x, 1), CTRLCHAN_RESULT_INVALID_STATE);
    CHECK_RES(ctrlchan_websocket_send_message(ws, CTRLCHAN_MESSAGE_TYPE_BINARY, x, 1), CTRLCHAN_RESULT_INVALID_STATE);
    CHECK_RES(ctrlchan_websocket_close(ws, 1000, NULL), CTRLCHAN_RESULT_INVALID_STATE);
    url_for(url, sizeof url, "/echo");
    REQUIRE_OK(ctrlchan_websocket_connect(ws, url, 5000));
    /* Bad arguments while open. */
    CHECK_RES(ctrlchan_websocket_send(ws, NULL, 5), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_send_message(ws, CTRLCHAN_MESSAGE_TYPE_UTF8, (const uint8_t *)"\xc3\x28", 2),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_send_message(ws, CTRLCHAN_MESSAGE_TYPE_UTF8, (const uint8_t *)"\xed\xa0\x80", 3),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    for (i = 0; i < sizeof bad_codes / sizeof bad_codes[0]; i++) {
        char ctx[32];
        snprintf(ctx, sizeof ctx, "close code %u", (unsigned)bad_codes[i]);
        h_context = ctx;
        CHECK_RES(ctrlchan_websocket_close(ws, bad_codes[i], NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
        h_context = NULL;
    }
    CHECK_RES(ctrlchan_websocket_close(ws, 1000, reason124), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_close(ws, 1000, "\xff\xfe"), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    /* None of those sent anything: the connection is still open and echoing. */
    CHECK_OK(ctrlchan_websocket_send(ws, x, 1));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
    CHECK(ev != NULL);
    ctrlchan_event_free(ev);
    /* A 123-byte reason is the maximum that fits a close frame. */
    CHECK_OK(ctrlchan_websocket_close(ws, 1000, reason123));
    /* After close: CLOSED. */
    CHECK_RES(ctrlchan_websocket_send(ws, x, 1), CTRLCHAN_RESULT_CLOSED);
    CHECK_RES(ctrlchan_websocket_close(ws, 1000, NULL), CTRLCHAN_RESULT_CLOSED);
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CLOSED, 5000);
    CHECK(ev != NULL);
    if (ev) {
        CHECK_STR_EQ(ctrlchan_event_get_reason(ev), reason123);
        ctrlchan_event_free(ev);
    }
    CHECK_RES(ctrlchan_websocket_send(ws, x, 1), CTRLCHAN_RESULT_CLOSED);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_result_names(void) {
    static const char *const names[] = {"OK",     "INVALID_ARGUMENT", "INVALID_HANDLE", "INVALID_STATE",
                                        "TIMEOUT", "CONNECT_FAILED",  "TLS_FAILED",     "HANDSHAKE_FAILED",
                                        "CLOSED",  "MESSAGE_TOO_LARGE", "BUFFER_FULL",  "IO",
                                        "POLICY",  "PANIC", "PROXY_FAILED", "QUEUE_FULL"};
    unsigned i;
    for (i = 0; i < 16; i++) CHECK_STR_EQ(ctrlchan_result_name(i), names[i]);
    CHECK_STR_EQ(ctrlchan_result_name(16), "UNKNOWN");
    CHECK_STR_EQ(ctrlchan_result_name(999), "UNKNOWN");
    CHECK_STR_EQ(ctrlchan_result_name(UINT32_MAX), "UNKNOWN");
    CHECK_STR_EQ(ctrlchan_result_name(CTRLCHAN_RESULT_BUFFER_FULL), "BUFFER_FULL");
}

struct err_probe {
    char seen_before[256];
    char seen_after[256];
    ctrlchan_result r;
};

static void *err_thread(void *arg) {
    struct err_probe *p = (struct err_probe *)arg;
    ctrlchan_runtime *none = NULL;
    snprintf(p->seen_before, sizeof p->seen_before, "%s", ctrlchan_last_error());
    p->r = ctrlchan_runtime_set_max_channels(none, 1);
    snprintf(p->seen_after, sizeof p->seen_after, "%s", ctrlchan_last_error());
    return NULL;
}

static void test_last_error_is_per_thread(void) {
    struct err_probe p;
    pthread_t th;
    char mine[256];
    memset(&p, 0, sizeof p);
    CHECK_RES(ctrlchan_keepalive_set_pong_timeout(NULL, 1000), CTRLCHAN_RESULT_INVALID_HANDLE);
    snprintf(mine, sizeof mine, "%s", ctrlchan_last_error());
    REQUIRE(pthread_create(&th, NULL, err_thread, &p) == 0);
    pthread_join(th, NULL);
    CHECK_STR_EQ(p.seen_before, ""); /* another thread's failure is not visible */
    CHECK_INT_EQ(p.r, CTRLCHAN_RESULT_INVALID_HANDLE);
    CHECK(p.seen_after[0] != '\0');
    CHECK_STR_EQ(ctrlchan_last_error(), mine); /* and ours was not overwritten */
    /* The next successful call clears it. */
    {
        ctrlchan_keepalive *ka = NULL;
        CHECK_OK(ctrlchan_keepalive_new(&ka));
        CHECK_STR_EQ(ctrlchan_last_error(), "");
        ctrlchan_keepalive_free(ka);
    }
}

/* The outbound limit: a message larger than the limit is refused at once; with a frozen peer
   (the proxy blackholed and stopped, so the kernel buffers fill), sends fail with BUFFER_FULL
   once the queue holds the limit, and nothing is lost for what was accepted. */
static void test_outbound_limit_buffer_full(void) {
    const uint32_t limit = 256u * 1024u;
    const size_t chunk = 64u * 1024u;
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    h_child *proxy;
    uint8_t *buf;
    char url[128];
    ctrlchan_result r = CTRLCHAN_RESULT_OK;
    int sent = 0, i;
    int64_t deadline, full_since = 0;
    buf = (uint8_t *)calloc(1, chunk * 2);
    REQUIRE(buf != NULL);
    REQUIRE_OK(ctrlchan_runtime_new(&rt));

    /* Bigger than the limit on its own: refused even with an empty queue. */
    url_for(url, sizeof url, "/echo");
    ws = h_connect(rt, url);
    CHECK_OK(ctrlchan_websocket_set_outbound_buffer_limit(ws, 1024));
    CHECK_RES(ctrlchan_websocket_send(ws, buf, 1025), CTRLCHAN_RESULT_BUFFER_FULL);
    CHECK_OK(ctrlchan_websocket_send(ws, buf, 1024));
    ctrlchan_websocket_free(ws);
    for (i = 0; i < 10; i++) { /* drop what the echo may have queued */
        ctrlchan_event *ev = NULL;
        if (ctrlchan_runtime_next_event(rt, 100, &ev) != CTRLCHAN_RESULT_OK) break;
        ctrlchan_event_free(ev);
    }

    proxy = peer_proxy_start(server->port);
    REQUIRE(proxy != NULL);
    h_url(url, sizeof url, "ws", proxy->port, "/echo");
    h_open_channel(rt, "full", 60000, NULL, url, &ws, &ch);
    CHECK_OK(ctrlchan_websocket_set_outbound_buffer_limit(ws, limit));
    REQUIRE_PEER_COMMAND(proxy, "blackhole");
    REQUIRE(kill(proxy->pid, SIGSTOP) == 0); /* frozen: it stops reading, the kernel buffers fill */
    /* Send until BUFFER_FULL persists for 300 ms: by then the reactor had every chance to move
       queued bytes into the kernel, so the socket buffers are full and the queue holds the limit. */
    deadline = h_now_ms() + 30000;
    for (i = 0; i < 20000 && h_now_ms() < deadline; i++) {
        r = ctrlchan_websocket_send(ws, buf, chunk);
        h_snap_error();
        if (r == CTRLCHAN_RESULT_OK) {
            sent++;
            full_since = 0;
            continue;
        }
        if (r != CTRLCHAN_RESULT_BUFFER_FULL) break;
        if (full_since == 0) full_since = h_now_ms();
        if (h_now_ms() - full_since >= 300) break;
        h_sleep_ms(5);
    }
    CHECK_INT_EQ(r, CTRLCHAN_RESULT_BUFFER_FULL);
    CHECK(strstr(h_last_error_copy, "limit") != NULL);
    CHECK(sent > (int)(limit / chunk)); /* the kernel took some, the queue holds the rest */
    /* Queued bytes cannot drain: flush times out; the channel is still up. */
    CHECK_RES(ctrlchan_channel_flush_transport(ch, 200), CTRLCHAN_RESULT_TIMEOUT);
    CHECK_RES(ctrlchan_websocket_send(ws, buf, chunk * 2), CTRLCHAN_RESULT_BUFFER_FULL);
    /* Thaw (still blackholed: the bytes are dropped, but read): the queue drains. */
    kill(proxy->pid, SIGCONT);
    CHECK_OK(ctrlchan_channel_flush_transport(ch, 20000));
    CHECK_OK(ctrlchan_websocket_send(ws, buf, chunk));
    CHECK_OK(ctrlchan_channel_flush_transport(ch, 5000));
    printf("    BUFFER_FULL after %d sends of %u bytes (limit %u)\n", sent, (unsigned)chunk, (unsigned)limit);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
    h_child_stop(proxy);
    free(buf);
}

int main(int argc, char **argv) {
    h_init(argc, argv);
    server = peer_server_start(NULL, NULL);
    REQUIRE(server != NULL);
    RUN_TEST(test_invalid_handles_everywhere);
    RUN_TEST(test_null_out_pointers);
    RUN_TEST(test_strings_utf8_and_header_injection);
    RUN_TEST(test_bad_uris);
    RUN_TEST(test_uri_port_out_of_range);
    RUN_TEST(test_invalid_enums_and_numbers);
    RUN_TEST(test_send_and_close_in_wrong_state);
    RUN_TEST(test_result_names);
    RUN_TEST(test_last_error_is_per_thread);
    RUN_TEST(test_outbound_limit_buffer_full);
    return h_finish();
}
