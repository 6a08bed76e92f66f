/*
 * Header check, compiled twice by run.sh: as C99 and (through header_check.cpp) as C++11,
 * both with -Wall -Wextra -Werror -pedantic, then linked against the library and run.
 * Linking takes the address of every exported function, so a declaration without C linkage
 * (missing extern "C") or a function missing from the library fails the check.
 */
#include "ctrlchan.h"

#include <stdio.h>
#include <string.h>

/* Sizes the C ABI promises (values fixed once released; enums are 32-bit). */
typedef char check_result_size[(sizeof(ctrlchan_result) == 4) ? 1 : -1];
typedef char check_status_size[(sizeof(ctrlchan_status) == 4) ? 1 : -1];
typedef char check_kind_size[(sizeof(ctrlchan_event_kind) == 4) ? 1 : -1];
typedef char check_rt_stats[(sizeof(struct ctrlchan_runtime_stats) == 48) ? 1 : -1];
typedef char check_ws_stats[(sizeof(struct ctrlchan_websocket_stats) == 32) ? 1 : -1];
typedef char check_codes[(CTRLCHAN_RESULT_OK == 0 && CTRLCHAN_RESULT_INVALID_ARGUMENT == 1 &&
                          CTRLCHAN_RESULT_INVALID_HANDLE == 2 && CTRLCHAN_RESULT_INVALID_STATE == 3 &&
                          CTRLCHAN_RESULT_TIMEOUT == 4 && CTRLCHAN_RESULT_CONNECT_FAILED == 5 &&
                          CTRLCHAN_RESULT_TLS_FAILED == 6 && CTRLCHAN_RESULT_HANDSHAKE_FAILED == 7 &&
                          CTRLCHAN_RESULT_CLOSED == 8 && CTRLCHAN_RESULT_MESSAGE_TOO_LARGE == 9 &&
                          CTRLCHAN_RESULT_BUFFER_FULL == 10 && CTRLCHAN_RESULT_IO == 11 &&
                          CTRLCHAN_RESULT_POLICY == 12 && CTRLCHAN_RESULT_PANIC == 13)
                             ? 1
                             : -1];
typedef char check_enums[(CTRLCHAN_MESSAGE_TYPE_BINARY == 0 && CTRLCHAN_MESSAGE_TYPE_UTF8 == 1 &&
                          CTRLCHAN_WEBSOCKET_KIND_MESSAGE == 0 && CTRLCHAN_WEBSOCKET_KIND_STREAM == 1 &&
                          CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT == 0 &&
                          CTRLCHAN_RESOURCE_TYPE_REQUEST_HARDWARE_SLOT == 1 &&
                          CTRLCHAN_STATUS_HARDWARE_SLOT_REQUESTED == 0 && CTRLCHAN_STATUS_SOFTWARE_SLOT_ALLOCATED == 1 &&
                          CTRLCHAN_STATUS_HARDWARE_SLOT_ALLOCATED == 2 && CTRLCHAN_STATUS_POLICY_ERROR == 3 &&
                          CTRLCHAN_STATUS_SYSTEM_ERROR == 4 && CTRLCHAN_STATUS_TRANSPORT_DISCONNECTED == 5 &&
                          CTRLCHAN_STATUS_SERVICE_UNAVAILABLE == 6 && CTRLCHAN_KEEPALIVE_MODE_PING == 0 &&
                          CTRLCHAN_KEEPALIVE_MODE_UNSOLICITED_PONG == 1 &&
                          CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION == 0 && CTRLCHAN_EVENT_KIND_KEEPALIVE == 1 &&
                          CTRLCHAN_EVENT_KIND_CLOSED == 2 && CTRLCHAN_EVENT_KIND_TRANSPORT_DISCONNECTED == 3 &&
                          CTRLCHAN_EVENT_KIND_CONNECTED == 4 && CTRLCHAN_EVENT_KIND_CONNECT_FAILED == 5 &&
                          CTRLCHAN_EVENT_KIND_RESET == 6 && CTRLCHAN_WEBSOCKET_STATE_NEW == 0 &&
                          CTRLCHAN_WEBSOCKET_STATE_CLOSED == 4)
                             ? 1
                             : -1];

typedef void (*any_fn)(void);
#define FN(f) (any_fn)(f)

static const any_fn every_export[] = {
    FN(ctrlchan_last_error), FN(ctrlchan_result_name), FN(ctrlchan_version),
    FN(ctrlchan_runtime_new), FN(ctrlchan_runtime_free), FN(ctrlchan_runtime_next_event),
    FN(ctrlchan_runtime_event_fd), FN(ctrlchan_runtime_get_stats), FN(ctrlchan_runtime_set_max_channels),
    FN(ctrlchan_runtime_set_coalescing_window), FN(ctrlchan_runtime_set_pong_settle),
    FN(ctrlchan_runtime_get_pong_settle), FN(ctrlchan_event_free), FN(ctrlchan_event_get_kind),
    FN(ctrlchan_event_get_channel), FN(ctrlchan_event_get_websocket), FN(ctrlchan_event_get_channel_id),
    FN(ctrlchan_event_get_message_type), FN(ctrlchan_event_get_data), FN(ctrlchan_event_get_close_code),
    FN(ctrlchan_event_get_reason), FN(ctrlchan_event_get_rtt_us), FN(ctrlchan_event_get_result),
    FN(ctrlchan_websocket_new),
    FN(ctrlchan_websocket_free), FN(ctrlchan_websocket_set_request_header),
    FN(ctrlchan_websocket_add_supported_protocol), FN(ctrlchan_websocket_set_max_message_size),
    FN(ctrlchan_websocket_set_message_type), FN(ctrlchan_websocket_add_trusted_ca_pem),
    FN(ctrlchan_websocket_set_ignore_certificate_errors), FN(ctrlchan_websocket_set_outbound_buffer_limit),
    FN(ctrlchan_websocket_set_event_handler), FN(ctrlchan_websocket_connect), FN(ctrlchan_websocket_connect_async),
    FN(ctrlchan_websocket_send), FN(ctrlchan_websocket_send_message), FN(ctrlchan_websocket_close),
    FN(ctrlchan_websocket_get_protocol), FN(ctrlchan_websocket_get_stats), FN(ctrlchan_websocket_get_state),
    FN(ctrlchan_websocket_get_kind), FN(ctrlchan_websocket_get_max_message_size),
    FN(ctrlchan_websocket_get_message_type), FN(ctrlchan_channel_new), FN(ctrlchan_channel_free),
    FN(ctrlchan_channel_using_transport), FN(ctrlchan_channel_wait_for_push_enabled),
    FN(ctrlchan_channel_set_keepalive), FN(ctrlchan_channel_set_event_handler),
    FN(ctrlchan_channel_current_keepalive_interval), FN(ctrlchan_channel_decrease_network_keepalive_interval),
    FN(ctrlchan_channel_flush_transport), FN(ctrlchan_channel_close), FN(ctrlchan_channel_get_id),
    FN(ctrlchan_channel_get_server_keepalive_interval), FN(ctrlchan_channel_set_server_keepalive_interval), FN(ctrlchan_channel_get_resource_type),
    FN(ctrlchan_keepalive_new), FN(ctrlchan_keepalive_set_mode), FN(ctrlchan_keepalive_set_pong_timeout),
    FN(ctrlchan_keepalive_run), FN(ctrlchan_keepalive_free), FN(ctrlchan_keepalive_get_mode),
    FN(ctrlchan_keepalive_get_pong_timeout),
};

/* A callback and finalizer with exactly the header's types. */
static void on_event(void *userdata, const struct ctrlchan_event *ev) {
    (void)userdata;
    (void)ev;
}
static void on_final(void *userdata) { (void)userdata; }

int main(void) {
    struct ctrlchan_runtime *rt = NULL;
    struct ctrlchan_websocket *ws = NULL;
    ctrlchan_event_callback cb = on_event;
    ctrlchan_finalizer fin = on_final;
    ctrlchan_result r;
    size_t i, n = sizeof every_export / sizeof every_export[0];
    for (i = 0; i < n; i++) {
        if (every_export[i] == NULL) return 1;
    }
    r = ctrlchan_runtime_new(&rt);
    if (r != CTRLCHAN_RESULT_OK) return 1;
    r = ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &ws);
    if (r != CTRLCHAN_RESULT_OK) return 1;
    r = ctrlchan_websocket_set_event_handler(ws, cb, NULL, fin);
    if (r != CTRLCHAN_RESULT_OK) return 1;
    ctrlchan_websocket_free(ws);
    ctrlchan_runtime_free(rt);
    if (strcmp(ctrlchan_result_name(CTRLCHAN_RESULT_BUFFER_FULL), "BUFFER_FULL") != 0) return 1;
    printf("header check: %u exports linked, ctrlchan %s\n", (unsigned)n, ctrlchan_version());
    return 0;
}
