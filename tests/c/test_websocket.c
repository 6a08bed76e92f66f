/* WebSocket: the Windows sample's main flow, wss://, headers, subprotocols, max message size,
   message types, statistics, options after connect, connect/connect_async failures. */
#include "harness.h"

static h_child *server;     /* ws:// */
static h_child *tls_server; /* wss:// with a throw-away CA */
static h_certs certs;
static char *ca_pem;
static size_t ca_pem_len;

static void url_for(char *out, size_t n, const char *path) { h_url(out, n, "ws", server->port, path); }

/* The ControlChannelTrigger sample (CommModule.cs: SetupTransport, RegisterWithControlChannelTrigger,
   then the push-notification task reading a message), one ctrlchan call per Windows line. */
static void test_windows_sample_main_flow(void) {
    ctrlchan_runtime *rt = NULL; /* the background broker */
    ctrlchan_websocket *socket = NULL;
    ctrlchan_channel *channel = NULL;
    ctrlchan_keepalive *keepalive_task = NULL;
    ctrlchan_status status = CTRLCHAN_STATUS_SYSTEM_ERROR;
    ctrlchan_event *ev;
    ctrlchan_runtime_stats rts;
    ctrlchan_websocket_state state = CTRLCHAN_WEBSOCKET_STATE_NEW;
    const char *id = NULL;
    char server_uri[128];
    static const char message[] = "hello from channelOne";
    const uint8_t *data = NULL;
    size_t len = 0;
    uint32_t interval = 0;

    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(server_uri, sizeof server_uri, "/echo");

    /* socket = new MessageWebSocket(); socket.Control.MessageType = SocketMessageType.Utf8; */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &socket));
    REQUIRE_OK(ctrlchan_websocket_set_message_type(socket, CTRLCHAN_MESSAGE_TYPE_UTF8));

    /* channel = new ControlChannelTrigger("channelOne", serverKeepAliveInterval (15 min),
                                           ControlChannelTriggerResourceType.RequestSoftwareSlot); */
    REQUIRE_OK(ctrlchan_channel_new(rt, "channelOne", 15u * 60u * 1000u, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT,
                                    &channel));
    CHECK_OK(ctrlchan_channel_get_id(channel, &id));
    CHECK_STR_EQ(id, "channelOne");
    CHECK_OK(ctrlchan_channel_current_keepalive_interval(channel, &interval));
    CHECK_INT_EQ(interval, 900000);

    /* keepAliveBuilder.TaskEntryPoint = "Windows.Networking.Sockets.WebSocketKeepAlive";
       keepAliveBuilder.SetTrigger(channel.KeepAliveTrigger); keepAliveBuilder.Register(); */
    REQUIRE_OK(ctrlchan_keepalive_new(&keepalive_task));
    REQUIRE_OK(ctrlchan_channel_set_keepalive(channel, keepalive_task));

    /* pushNotifyBuilder.SetTrigger(channel.PushNotificationTrigger): no handler here, so the
       push notifications go to the runtime queue (ctrlchan_runtime_next_event). */

    /* channel.UsingTransport(socket);  -- before connect */
    REQUIRE_OK(ctrlchan_channel_using_transport(channel, socket));

    /* await socket.ConnectAsync(serverUri); */
    REQUIRE_OK(ctrlchan_websocket_connect(socket, server_uri, 10000));
    CHECK_OK(ctrlchan_websocket_get_state(socket, &state));
    CHECK_INT_EQ(state, CTRLCHAN_WEBSOCKET_STATE_OPEN);

    /* ControlChannelTriggerStatus status = channel.WaitForPushEnabled(); */
    REQUIRE_OK(ctrlchan_channel_wait_for_push_enabled(channel, &status));
    /* if (status != HardwareSlotAllocated && status != SoftwareSlotAllocated) throw ...; */
    CHECK_INT_EQ(status, CTRLCHAN_STATUS_SOFTWARE_SLOT_ALLOCATED);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rts));
    CHECK_INT_EQ(rts.channels_active, 1);
    CHECK_INT_EQ(rts.connections_open, 1);

    /* DataWriter writer = new DataWriter(socket.OutputStream); writer.WriteString(...); await writer.StoreAsync(); */
    CHECK_OK(ctrlchan_websocket_send(socket, (const uint8_t *)message, strlen(message)));
    CHECK_OK(ctrlchan_channel_flush_transport(channel, 5000));

    /* PushNotifyTask.Run: the channel's PushNotificationTrigger fired; read the message. */
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
    REQUIRE(ev != NULL);
    CHECK_STR_EQ(ctrlchan_event_get_channel_id(ev), "channelOne");
    CHECK(ctrlchan_event_get_channel(ev) == channel);
    CHECK(ctrlchan_event_get_websocket(ev) == socket);
    CHECK_INT_EQ(ctrlchan_event_get_message_type(ev), CTRLCHAN_MESSAGE_TYPE_UTF8);
    CHECK_OK(ctrlchan_event_get_data(ev, &data, &len));
    CHECK_INT_EQ(len, strlen(message));
    CHECK(data != NULL && len == strlen(message) && memcmp(data, message, len) == 0);
    CHECK_INT_EQ(ctrlchan_event_get_close_code(ev), 0);
    CHECK_STR_EQ(ctrlchan_event_get_reason(ev), "");
    CHECK_INT_EQ(ctrlchan_event_get_rtt_us(ev), 0);
    ctrlchan_event_free(ev);

    /* socket.Close(1000, "done"): the close handshake completes with a CLOSED event. */
    CHECK_OK(ctrlchan_websocket_close(socket, 1000, "done"));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CLOSED, 5000);
    CHECK(ev != NULL);
    if (ev) {
        CHECK_INT_EQ(ctrlchan_event_get_close_code(ev), 1000);
        CHECK_STR_EQ(ctrlchan_event_get_channel_id(ev), "channelOne");
        ctrlchan_event_free(ev);
    }
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rts));
    CHECK_INT_EQ(rts.channels_active, 0);

    ctrlchan_channel_free(channel);
    ctrlchan_keepalive_free(keepalive_task);
    ctrlchan_websocket_free(socket);
    ctrlchan_runtime_free(rt);
}

/* Connects a websocket to wss:// with an optional CA / ignore flag; returns the result. */
static ctrlchan_result wss_connect(ctrlchan_runtime *rt, int trust_ca, int ignore_errors, ctrlchan_websocket **out) {
    ctrlchan_websocket *ws = NULL;
    char url[128];
    ctrlchan_result r;
    h_url(url, sizeof url, "wss", tls_server->port, "/echo");
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    if (trust_ca) CHECK_OK(ctrlchan_websocket_add_trusted_ca_pem(ws, (const uint8_t *)ca_pem, ca_pem_len));
    if (ignore_errors) CHECK_OK(ctrlchan_websocket_set_ignore_certificate_errors(ws, true));
    r = ctrlchan_websocket_connect(ws, url, 10000);
    h_snap_error();
    *out = ws;
    return r;
}

static void echo_roundtrip(ctrlchan_runtime *rt, ctrlchan_websocket *ws) {
    static const uint8_t payload[] = {'s', 'e', 'c', 'u', 'r', 'e', 0, 0xff};
    ctrlchan_event *ev;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_OK(ctrlchan_websocket_send(ws, payload, sizeof payload));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
    CHECK(ev != NULL);
    if (ev == NULL) return;
    CHECK_OK(ctrlchan_event_get_data(ev, &data, &len));
    CHECK(len == sizeof payload && memcmp(data, payload, len) == 0);
    CHECK(ctrlchan_event_get_websocket(ev) == ws);
    ctrlchan_event_free(ev);
}

static void test_wss_with_trusted_ca(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    CHECK_RES(wss_connect(rt, 1, 0, &ws), CTRLCHAN_RESULT_OK);
    echo_roundtrip(rt, ws);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

/* What the session negotiated, readable after connect; nothing before, and PROXY_FAILED for a dead proxy. */
static void test_wss_peer_certificate_tls_facts_and_network_options(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL, *fresh = NULL;
    const uint8_t *der = (const uint8_t *)"x";
    size_t len = 99;
    const char *version = NULL, *suite = NULL;
    char url[128];
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &fresh));
    CHECK_OK(ctrlchan_websocket_get_peer_certificate(fresh, &der, &len));
    CHECK(der == NULL && len == 0);
    CHECK_OK(ctrlchan_websocket_get_tls_version(fresh, &version));
    CHECK(version != NULL && strcmp(version, "") == 0);
    CHECK_RES(ctrlchan_websocket_get_peer_certificate(fresh, NULL, &len), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_add_pinned_public_key(fresh, "sha256//tooshort"), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_set_proxy(fresh, "ftp://u:c-secret@127.0.0.1:1"), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK(strstr(ctrlchan_last_error(), "c-secret") == NULL);
    CHECK_RES(ctrlchan_websocket_set_client_certificate_pem(fresh, (const uint8_t *)ca_pem, ca_pem_len,
                                                            (const uint8_t *)"nope", 4),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    /* A proxy port that refuses: PROXY_FAILED, without the password. */
    CHECK_OK(ctrlchan_websocket_set_proxy(fresh, "http://u:c-secret@127.0.0.1:1"));
    url_for(url, sizeof url, "/echo");
    CHECK_RES(ctrlchan_websocket_connect(fresh, url, 5000), CTRLCHAN_RESULT_PROXY_FAILED);
    CHECK(strstr(ctrlchan_last_error(), "c-secret") == NULL);
    CHECK_RES(ctrlchan_websocket_set_proxy(fresh, ""), CTRLCHAN_RESULT_INVALID_STATE);
    ctrlchan_websocket_free(fresh);

    CHECK_RES(wss_connect(rt, 1, 0, &ws), CTRLCHAN_RESULT_OK);
    CHECK_OK(ctrlchan_websocket_get_peer_certificate(ws, &der, &len));
    CHECK(der != NULL && len > 100 && der[0] == 0x30); /* a DER SEQUENCE */
    CHECK_OK(ctrlchan_websocket_get_tls_version(ws, &version));
    CHECK(version != NULL && strcmp(version, "TLSv1.3") == 0);
    CHECK_OK(ctrlchan_websocket_get_tls_cipher_suite(ws, &suite));
    CHECK(suite != NULL && strncmp(suite, "TLS_", 4) == 0);
    echo_roundtrip(rt, ws);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_wss_untrusted_is_tls_failed(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_websocket_state state = CTRLCHAN_WEBSOCKET_STATE_OPEN;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    CHECK_RES(wss_connect(rt, 0, 0, &ws), CTRLCHAN_RESULT_TLS_FAILED);
    CHECK_OK(ctrlchan_websocket_get_state(ws, &state));
    CHECK_INT_EQ(state, CTRLCHAN_WEBSOCKET_STATE_CLOSED);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_wss_ignore_certificate_errors(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    CHECK_RES(wss_connect(rt, 0, 1, &ws), CTRLCHAN_RESULT_OK);
    echo_roundtrip(rt, ws);
    ctrlchan_websocket_free(ws);
    /* set_ignore_certificate_errors(false) keeps verification on. */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    CHECK_OK(ctrlchan_websocket_set_ignore_certificate_errors(ws, false));
    {
        char url[128];
        h_url(url, sizeof url, "wss", tls_server->port, "/echo");
        CHECK_RES(ctrlchan_websocket_connect(ws, url, 10000), CTRLCHAN_RESULT_TLS_FAILED);
    }
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_wss_bad_pem(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    static const char garbage[] = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
    static const char no_cert[] = "just some text, no PEM block\n";
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    CHECK_RES(ctrlchan_websocket_add_trusted_ca_pem(ws, (const uint8_t *)garbage, strlen(garbage)),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_add_trusted_ca_pem(ws, (const uint8_t *)no_cert, strlen(no_cert)),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_add_trusted_ca_pem(ws, NULL, 10), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_add_trusted_ca_pem(ws, NULL, 0), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_request_headers_arrive(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    char url[128];
    char *json;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    CHECK_OK(ctrlchan_websocket_set_request_header(ws, "X-Ctrlchan-Test", "hello header"));
    CHECK_OK(ctrlchan_websocket_set_request_header(ws, "Authorization", "Bearer abc.def"));
    /* Setting a header again replaces it (case-insensitive name). */
    CHECK_OK(ctrlchan_websocket_set_request_header(ws, "X-Replace", "first"));
    CHECK_OK(ctrlchan_websocket_set_request_header(ws, "x-replace", "second"));
    /* Headers the handshake manages are refused. */
    CHECK_RES(ctrlchan_websocket_set_request_header(ws, "Host", "evil.example"), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_set_request_header(ws, "Sec-WebSocket-Key", "AAAA"), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_set_request_header(ws, "Upgrade", "h2c"), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    /* A value is a C string: an embedded NUL ends it, nothing after it is sent. */
    CHECK_OK(ctrlchan_websocket_set_request_header(ws, "X-Nul", "visible\0\r\nX-Injected: yes"));
    url_for(url, sizeof url, "/headers");
    REQUIRE_OK(ctrlchan_websocket_connect(ws, url, 10000));
    json = h_wait_text(rt, 5000);
    REQUIRE(json != NULL);
    CHECK_CONTAINS(json, "\"x-ctrlchan-test\": \"hello header\"");
    CHECK_CONTAINS(json, "\"authorization\": \"Bearer abc.def\"");
    CHECK_CONTAINS(json, "\"x-replace\": \"second\"");
    CHECK(strstr(json, "first") == NULL);
    CHECK_CONTAINS(json, "\"x-nul\": \"visible\"");
    CHECK(strstr(json, "x-injected") == NULL);
    CHECK(strstr(json, "evil.example") == NULL);
    CHECK_CONTAINS(json, "\"host\": \"127.0.0.1:");
    free(json);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

/* Connects to /subprotocol offering protocols[0..n); returns the websocket (connected or not). */
static ctrlchan_websocket *subprotocol_ws(ctrlchan_runtime *rt, const char *const *protocols, int n, ctrlchan_result *res) {
    ctrlchan_websocket *ws = NULL;
    char url[128];
    int i;
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    for (i = 0; i < n; i++) CHECK_OK(ctrlchan_websocket_add_supported_protocol(ws, protocols[i]));
    url_for(url, sizeof url, "/subprotocol");
    *res = ctrlchan_websocket_connect(ws, url, 10000);
    h_snap_error();
    return ws;
}

static void test_subprotocol_negotiated(void) {
    static const char *const super_first[] = {"superchat", "chat"};
    static const char *const chat_only[] = {"chat"};
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws;
    ctrlchan_result r;
    const char *proto = NULL;
    char *text;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));

    ws = subprotocol_ws(rt, super_first, 2, &r);
    CHECK_INT_EQ(r, CTRLCHAN_RESULT_OK);
    CHECK_OK(ctrlchan_websocket_get_protocol(ws, &proto));
    CHECK_STR_EQ(proto, "superchat"); /* the client's preference order decides */
    text = h_wait_text(rt, 5000);
    CHECK_STR_EQ(text, "superchat");
    free(text);
    ctrlchan_websocket_free(ws);

    ws = subprotocol_ws(rt, chat_only, 1, &r);
    CHECK_INT_EQ(r, CTRLCHAN_RESULT_OK);
    CHECK_OK(ctrlchan_websocket_get_protocol(ws, &proto));
    CHECK_STR_EQ(proto, "chat");
    text = h_wait_text(rt, 5000);
    CHECK_STR_EQ(text, "chat");
    free(text);
    ctrlchan_websocket_free(ws);

    /* None offered: "" both ways. */
    ws = subprotocol_ws(rt, NULL, 0, &r);
    CHECK_INT_EQ(r, CTRLCHAN_RESULT_OK);
    CHECK_OK(ctrlchan_websocket_get_protocol(ws, &proto));
    CHECK_STR_EQ(proto, "");
    text = h_wait_text(rt, 5000);
    CHECK_STR_EQ(text, "");
    free(text);
    ctrlchan_websocket_free(ws);

    /* Before connect: "". */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    CHECK_OK(ctrlchan_websocket_add_supported_protocol(ws, "chat"));
    proto = NULL;
    CHECK_OK(ctrlchan_websocket_get_protocol(ws, &proto));
    CHECK_STR_EQ(proto, "");
    CHECK_RES(ctrlchan_websocket_add_supported_protocol(ws, ""), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_add_supported_protocol(ws, "two words"), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_add_supported_protocol(ws, "a,b"), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_add_supported_protocol(ws, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

/* RFC 6455 4.1 / 4.2.2: a server may decline every offered subprotocol (it then sends no
   Sec-WebSocket-Protocol header); the client fails only if the server picks one it did not
   offer. The header says get_protocol() is "" when none was selected. */
static void test_subprotocol_declined_by_server(void) {
    static const char *const unknown[] = {"nobody-speaks-this"};
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws;
    ctrlchan_result r;
    const char *proto = NULL;
    char *text;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    ws = subprotocol_ws(rt, unknown, 1, &r);
    CHECKF(r == CTRLCHAN_RESULT_OK, "connect returned %s: %s", ctrlchan_result_name(r), h_last_error_copy);
    if (r == CTRLCHAN_RESULT_OK) {
        CHECK_OK(ctrlchan_websocket_get_protocol(ws, &proto));
        CHECK_STR_EQ(proto, "");
        text = h_wait_text(rt, 5000);
        CHECK_STR_EQ(text, "");
        free(text);
    }
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_max_message_size(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_event *ev;
    ctrlchan_websocket_state state = CTRLCHAN_WEBSOCKET_STATE_OPEN;
    char url[128];
    uint32_t max = 0;
    const uint8_t *data = NULL;
    size_t len = 0, i;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));

    /* Default 16 MiB. */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    CHECK_OK(ctrlchan_websocket_get_max_message_size(ws, &max));
    CHECK_INT_EQ(max, 16u << 20);
    CHECK_RES(ctrlchan_websocket_set_max_message_size(ws, 0), CTRLCHAN_RESULT_INVALID_ARGUMENT);

    /* Exactly the limit is accepted. */
    CHECK_OK(ctrlchan_websocket_set_max_message_size(ws, 1000));
    CHECK_OK(ctrlchan_websocket_get_max_message_size(ws, &max));
    CHECK_INT_EQ(max, 1000);
    url_for(url, sizeof url, "/big?size=1000");
    REQUIRE_OK(ctrlchan_websocket_connect(ws, url, 10000));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
    CHECK(ev != NULL);
    if (ev) {
        int all_ab = 1;
        CHECK_OK(ctrlchan_event_get_data(ev, &data, &len));
        CHECK_INT_EQ(len, 1000);
        for (i = 0; i < len; i++) all_ab &= data[i] == 0xAB;
        CHECK(all_ab);
        ctrlchan_event_free(ev);
    }
    ctrlchan_websocket_free(ws);

    /* Bigger than the limit: the connection is closed with 1009 and a CLOSED event. */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    CHECK_OK(ctrlchan_websocket_set_max_message_size(ws, 1000));
    url_for(url, sizeof url, "/big?size=5000");
    REQUIRE_OK(ctrlchan_websocket_connect(ws, url, 10000));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CLOSED, 5000);
    CHECK(ev != NULL);
    if (ev) {
        CHECK_INT_EQ(ctrlchan_event_get_close_code(ev), 1009);
        CHECK(ctrlchan_event_get_websocket(ev) == ws);
        ctrlchan_event_free(ev);
    }
    CHECK_OK(ctrlchan_websocket_get_state(ws, &state));
    CHECK_INT_EQ(state, CTRLCHAN_WEBSOCKET_STATE_CLOSED);
    h_expect_quiet(rt, 200); /* exactly one terminal event, no PUSH of the big message */
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

/* Sends `len` bytes with send (type = NULL) or send_message(*type); expects the echo as `want`. */
static void echo_expect(ctrlchan_runtime *rt, ctrlchan_websocket *ws, const ctrlchan_message_type *type,
                        const void *msg, size_t len, ctrlchan_message_type want) {
    ctrlchan_event *ev;
    const uint8_t *data = NULL;
    size_t got = 0;
    if (type)
        CHECK_OK(ctrlchan_websocket_send_message(ws, *type, (const uint8_t *)msg, len));
    else
        CHECK_OK(ctrlchan_websocket_send(ws, (const uint8_t *)msg, len));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
    CHECK(ev != NULL);
    if (ev == NULL) return;
    CHECK_INT_EQ(ctrlchan_event_get_message_type(ev), want);
    CHECK_OK(ctrlchan_event_get_data(ev, &data, &got));
    CHECK_INT_EQ(got, len);
    CHECK(got == len && (len == 0 || memcmp(data, msg, len) == 0));
    ctrlchan_event_free(ev);
}

static void test_message_types_round_trip(void) {
    static const char text[] = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93";
    static const uint8_t bin[] = {0x00, 0x01, 0x02, 0xff, 0xfe, 0x80, 'x'};
    const ctrlchan_message_type as_utf8 = CTRLCHAN_MESSAGE_TYPE_UTF8, as_binary = CTRLCHAN_MESSAGE_TYPE_BINARY;
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws_text = NULL, *ws_bin = NULL, *ws_stream = NULL;
    ctrlchan_message_type t = CTRLCHAN_MESSAGE_TYPE_UTF8;
    ctrlchan_websocket_kind kind = CTRLCHAN_WEBSOCKET_KIND_MESSAGE;
    char url[128];
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/echo");

    /* Default BINARY. */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws_bin));
    CHECK_OK(ctrlchan_websocket_get_message_type(ws_bin, &t));
    CHECK_INT_EQ(t, CTRLCHAN_MESSAGE_TYPE_BINARY);
    REQUIRE_OK(ctrlchan_websocket_connect(ws_bin, url, 10000));
    echo_expect(rt, ws_bin, NULL, bin, sizeof bin, CTRLCHAN_MESSAGE_TYPE_BINARY);
    echo_expect(rt, ws_bin, &as_utf8, text, strlen(text), CTRLCHAN_MESSAGE_TYPE_UTF8);
    echo_expect(rt, ws_bin, NULL, NULL, 0, CTRLCHAN_MESSAGE_TYPE_BINARY); /* empty message */

    /* UTF8 */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws_text));
    CHECK_OK(ctrlchan_websocket_set_message_type(ws_text, CTRLCHAN_MESSAGE_TYPE_UTF8));
    CHECK_OK(ctrlchan_websocket_get_message_type(ws_text, &t));
    CHECK_INT_EQ(t, CTRLCHAN_MESSAGE_TYPE_UTF8);
    REQUIRE_OK(ctrlchan_websocket_connect(ws_text, url, 10000));
    echo_expect(rt, ws_text, NULL, text, strlen(text), CTRLCHAN_MESSAGE_TYPE_UTF8);
    echo_expect(rt, ws_text, &as_binary, bin, sizeof bin, CTRLCHAN_MESSAGE_TYPE_BINARY);
    CHECK_RES(ctrlchan_websocket_send(ws_text, bin, sizeof bin), CTRLCHAN_RESULT_INVALID_ARGUMENT); /* not UTF-8 */

    /* STREAM: always binary. */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_STREAM, &ws_stream));
    CHECK_OK(ctrlchan_websocket_get_kind(ws_stream, &kind));
    CHECK_INT_EQ(kind, CTRLCHAN_WEBSOCKET_KIND_STREAM);
    CHECK_RES(ctrlchan_websocket_set_message_type(ws_stream, CTRLCHAN_MESSAGE_TYPE_UTF8), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_OK(ctrlchan_websocket_set_message_type(ws_stream, CTRLCHAN_MESSAGE_TYPE_BINARY));
    REQUIRE_OK(ctrlchan_websocket_connect(ws_stream, url, 10000));
    echo_expect(rt, ws_stream, NULL, text, strlen(text), CTRLCHAN_MESSAGE_TYPE_BINARY);
    CHECK_RES(ctrlchan_websocket_send_message(ws_stream, CTRLCHAN_MESSAGE_TYPE_UTF8, (const uint8_t *)text, strlen(text)),
              CTRLCHAN_RESULT_INVALID_ARGUMENT);

    ctrlchan_websocket_free(ws_bin);
    ctrlchan_websocket_free(ws_text);
    ctrlchan_websocket_free(ws_stream);
    ctrlchan_runtime_free(rt);
}

static void test_statistics(void) {
    static const size_t sizes[] = {1, 10, 100, 1000, 10000};
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_websocket_stats st;
    ctrlchan_runtime_stats rs;
    ctrlchan_event *ev;
    uint8_t *buf;
    char url[128];
    size_t i, total = 0;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.connections_open, 0);
    CHECK_INT_EQ(rs.channels_active, 0);
    CHECK_INT_EQ(rs.messages_received, 0);
    url_for(url, sizeof url, "/echo");
    h_open_channel(rt, "stats", 60000, NULL, url, &ws, &ch);
    CHECK_OK(ctrlchan_websocket_get_stats(ws, &st));
    CHECK_INT_EQ(st.messages_sent, 0);
    CHECK_INT_EQ(st.messages_received, 0);
    buf = (uint8_t *)calloc(1, 10000);
    REQUIRE(buf != NULL);
    for (i = 0; i < 5; i++) {
        CHECK_OK(ctrlchan_websocket_send(ws, buf, sizes[i]));
        total += sizes[i];
    }
    for (i = 0; i < 5; i++) {
        ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION, 5000);
        CHECK(ev != NULL);
        ctrlchan_event_free(ev);
    }
    free(buf);
    CHECK_OK(ctrlchan_websocket_get_stats(ws, &st));
    CHECK_INT_EQ(st.messages_sent, 5);
    CHECK_INT_EQ(st.bytes_sent, total);
    CHECK_INT_EQ(st.messages_received, 5);
    CHECK_INT_EQ(st.bytes_received, total);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.messages_received, 5);
    CHECK_INT_EQ(rs.connections_open, 1);
    CHECK_INT_EQ(rs.channels_active, 1);
    CHECK_INT_EQ(rs.keepalives_sent, 0); /* 60 s interval, and data counts as keep-alive */
    CHECK(rs.wakeups > 0);
    CHECK_OK(ctrlchan_websocket_close(ws, 1000, NULL));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CLOSED, 5000);
    CHECK(ev != NULL);
    ctrlchan_event_free(ev);
    CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    CHECK_INT_EQ(rs.channels_active, 0); /* the slot is released with the CLOSED event */
    /* The connection counts as open until TCP is closed too (the server does that right
       after the close handshake): wait for it, bounded. */
    for (i = 0; i < 250 && rs.connections_open != 0; i++) {
        h_sleep_ms(10);
        CHECK_OK(ctrlchan_runtime_get_stats(rt, &rs));
    }
    CHECK_INT_EQ(rs.connections_open, 0);
    CHECK_RES(ctrlchan_websocket_get_stats(ws, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_runtime_get_stats(rt, NULL), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void check_options_refused(ctrlchan_websocket *ws) {
    CHECK_RES(ctrlchan_websocket_set_request_header(ws, "X-Late", "1"), CTRLCHAN_RESULT_INVALID_STATE);
    CHECK_RES(ctrlchan_websocket_add_supported_protocol(ws, "chat"), CTRLCHAN_RESULT_INVALID_STATE);
    CHECK_RES(ctrlchan_websocket_set_max_message_size(ws, 4096), CTRLCHAN_RESULT_INVALID_STATE);
    CHECK_RES(ctrlchan_websocket_add_trusted_ca_pem(ws, (const uint8_t *)ca_pem, ca_pem_len), CTRLCHAN_RESULT_INVALID_STATE);
    CHECK_RES(ctrlchan_websocket_set_ignore_certificate_errors(ws, true), CTRLCHAN_RESULT_INVALID_STATE);
    /* The outbound limit may change at any time. */
    CHECK_OK(ctrlchan_websocket_set_outbound_buffer_limit(ws, 1u << 20));
}

static void test_control_options_after_connect(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    uint32_t max = 0;
    ctrlchan_message_type t = CTRLCHAN_MESSAGE_TYPE_UTF8;
    char url[128];
    int port, fd = -1;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    url_for(url, sizeof url, "/echo");
    ws = h_connect(rt, url);
    check_options_refused(ws);
    CHECK_OK(ctrlchan_websocket_get_max_message_size(ws, &max));
    CHECK_INT_EQ(max, 16u << 20); /* unchanged */
    /* The message type may change at any time (Windows allows it); it applies to later sends. */
    CHECK_OK(ctrlchan_websocket_get_message_type(ws, &t));
    CHECK_INT_EQ(t, CTRLCHAN_MESSAGE_TYPE_BINARY);
    CHECK_OK(ctrlchan_websocket_set_message_type(ws, CTRLCHAN_MESSAGE_TYPE_UTF8));
    CHECK_OK(ctrlchan_websocket_get_message_type(ws, &t));
    CHECK_INT_EQ(t, CTRLCHAN_MESSAGE_TYPE_UTF8);
    ctrlchan_websocket_free(ws);

    /* After a failed connect as well: a websocket connects once. */
    port = h_refusing_port(&fd);
    REQUIRE(port > 0);
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    h_url(url, sizeof url, "ws", port, "/echo");
    CHECK_RES(ctrlchan_websocket_connect(ws, url, 5000), CTRLCHAN_RESULT_CONNECT_FAILED);
    check_options_refused(ws);
    ctrlchan_websocket_free(ws);
    close(fd);
    ctrlchan_runtime_free(rt);
}

static void test_connect_failures(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_websocket_state state = CTRLCHAN_WEBSOCKET_STATE_OPEN;
    char url[128];
    int port, fd = -1;
    int64_t t0;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));

    /* Closed port -> CONNECT_FAILED, quickly. */
    port = h_refusing_port(&fd);
    REQUIRE(port > 0);
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    h_url(url, sizeof url, "ws", port, "/echo");
    t0 = h_now_ms();
    CHECK_RES(ctrlchan_websocket_connect(ws, url, 5000), CTRLCHAN_RESULT_CONNECT_FAILED);
    CHECK_RANGE(h_now_ms() - t0, 0, 3000);
    CHECK_OK(ctrlchan_websocket_get_state(ws, &state));
    CHECK_INT_EQ(state, CTRLCHAN_WEBSOCKET_STATE_CLOSED);
    /* A websocket connects once. */
    url_for(url, sizeof url, "/echo");
    CHECK_RES(ctrlchan_websocket_connect(ws, url, 5000), CTRLCHAN_RESULT_INVALID_STATE);
    ctrlchan_websocket_free(ws);
    close(fd);

    /* HTTP 404 -> HANDSHAKE_FAILED, the detail names the status. */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    url_for(url, sizeof url, "/no-such-path");
    CHECK_RES(ctrlchan_websocket_connect(ws, url, 5000), CTRLCHAN_RESULT_HANDSHAKE_FAILED);
    CHECK_CONTAINS(h_last_error_copy, "404");
    ctrlchan_websocket_free(ws);

    /* Connected already -> INVALID_STATE. */
    url_for(url, sizeof url, "/echo");
    ws = h_connect(rt, url);
    CHECK_RES(ctrlchan_websocket_connect(ws, url, 5000), CTRLCHAN_RESULT_INVALID_STATE);
    CHECK_RES(ctrlchan_websocket_connect_async(ws, url, 5000), CTRLCHAN_RESULT_INVALID_STATE);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

static void test_connect_timeout_through_blackhole(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    h_child *proxy = peer_proxy_start(server->port);
    char url[128];
    int64_t t0, dt;
    REQUIRE(proxy != NULL);
    REQUIRE_PEER_COMMAND(proxy, "blackhole");
    REQUIRE_OK(ctrlchan_runtime_new(&rt));
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    h_url(url, sizeof url, "ws", proxy->port, "/echo");
    t0 = h_now_ms();
    CHECK_RES(ctrlchan_websocket_connect(ws, url, 400), CTRLCHAN_RESULT_TIMEOUT);
    dt = h_now_ms() - t0;
    CHECK_RANGE(dt, 350, 3000);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
    h_child_stop(proxy);
}

static void test_connect_async_events(void) {
    ctrlchan_runtime *rt = NULL;
    ctrlchan_websocket *ws = NULL;
    ctrlchan_channel *ch = NULL;
    ctrlchan_event *ev;
    ctrlchan_websocket_state state = CTRLCHAN_WEBSOCKET_STATE_NEW;
    ctrlchan_status st = CTRLCHAN_STATUS_SYSTEM_ERROR;
    char url[128];
    int port, fd = -1;
    REQUIRE_OK(ctrlchan_runtime_new(&rt));

    /* Success: CONNECTED. */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    url_for(url, sizeof url, "/echo");
    CHECK_OK(ctrlchan_websocket_connect_async(ws, url, 5000));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CONNECTED, 5000);
    CHECK(ev != NULL);
    if (ev) {
        CHECK(ctrlchan_event_get_websocket(ev) == ws);
        CHECK(ctrlchan_event_get_channel(ev) == NULL);
        CHECK_STR_EQ(ctrlchan_event_get_channel_id(ev), "");
        ctrlchan_event_free(ev);
    }
    CHECK_OK(ctrlchan_websocket_get_state(ws, &state));
    CHECK_INT_EQ(state, CTRLCHAN_WEBSOCKET_STATE_OPEN);
    echo_roundtrip(rt, ws);
    ctrlchan_websocket_free(ws);

    /* Success on a channel's transport: the event carries the channel. */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    REQUIRE_OK(ctrlchan_channel_new(rt, "async", 60000, CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT, &ch));
    REQUIRE_OK(ctrlchan_channel_using_transport(ch, ws));
    CHECK_OK(ctrlchan_websocket_connect_async(ws, url, 5000));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CONNECTED, 5000);
    CHECK(ev != NULL);
    if (ev) {
        CHECK(ctrlchan_event_get_channel(ev) == ch);
        CHECK_STR_EQ(ctrlchan_event_get_channel_id(ev), "async");
        ctrlchan_event_free(ev);
    }
    CHECK_OK(ctrlchan_channel_wait_for_push_enabled(ch, &st));
    CHECK_INT_EQ(st, CTRLCHAN_STATUS_SOFTWARE_SLOT_ALLOCATED);
    ctrlchan_channel_free(ch);
    ctrlchan_websocket_free(ws);

    /* Refused: CONNECT_FAILED with a reason. */
    port = h_refusing_port(&fd);
    REQUIRE(port > 0);
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    h_url(url, sizeof url, "ws", port, "/echo");
    CHECK_OK(ctrlchan_websocket_connect_async(ws, url, 5000));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CONNECT_FAILED, 5000);
    CHECK(ev != NULL);
    if (ev) {
        CHECK(ctrlchan_event_get_websocket(ev) == ws);
        CHECK(ctrlchan_event_get_reason(ev)[0] != '\0');
        CHECK_CONTAINS(ctrlchan_event_get_reason(ev), "CONNECT_FAILED");
        ctrlchan_event_free(ev);
    }
    h_expect_quiet(rt, 100);
    ctrlchan_websocket_free(ws);
    close(fd);

    /* 404: CONNECT_FAILED naming the handshake failure. */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    url_for(url, sizeof url, "/nope");
    CHECK_OK(ctrlchan_websocket_connect_async(ws, url, 5000));
    ev = h_wait_event(rt, CTRLCHAN_EVENT_KIND_CONNECT_FAILED, 5000);
    CHECK(ev != NULL);
    if (ev) {
        CHECK_CONTAINS(ctrlchan_event_get_reason(ev), "HANDSHAKE_FAILED");
        CHECK_CONTAINS(ctrlchan_event_get_reason(ev), "404");
        ctrlchan_event_free(ev);
    }
    ctrlchan_websocket_free(ws);

    /* Argument errors are returned at once, no event. */
    REQUIRE_OK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws));
    CHECK_RES(ctrlchan_websocket_connect_async(ws, "http://127.0.0.1:1/", 5000), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    CHECK_RES(ctrlchan_websocket_connect_async(ws, NULL, 5000), CTRLCHAN_RESULT_INVALID_ARGUMENT);
    h_expect_quiet(rt, 100);
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
}

int main(int argc, char **argv) {
    h_init(argc, argv);
    server = peer_server_start(NULL, NULL);
    REQUIRE(server != NULL);
    REQUIRE(h_make_certs(&certs) == 0);
    ca_pem = h_read_file(certs.ca, &ca_pem_len);
    REQUIRE(ca_pem != NULL);
    tls_server = peer_server_start(certs.cert, certs.key);
    REQUIRE(tls_server != NULL);

    RUN_TEST(test_windows_sample_main_flow);
    RUN_TEST(test_wss_with_trusted_ca);
    RUN_TEST(test_wss_untrusted_is_tls_failed);
    RUN_TEST(test_wss_peer_certificate_tls_facts_and_network_options);
    RUN_TEST(test_wss_ignore_certificate_errors);
    RUN_TEST(test_wss_bad_pem);
    RUN_TEST(test_request_headers_arrive);
    RUN_TEST(test_subprotocol_negotiated);
    RUN_TEST(test_subprotocol_declined_by_server);
    RUN_TEST(test_max_message_size);
    RUN_TEST(test_message_types_round_trip);
    RUN_TEST(test_statistics);
    RUN_TEST(test_control_options_after_connect);
    RUN_TEST(test_connect_failures);
    RUN_TEST(test_connect_timeout_through_blackhole);
    RUN_TEST(test_connect_async_events);

    free(ca_pem);
    h_child_stop(tls_server);
    h_remove_certs(&certs);
    return h_finish();
}
