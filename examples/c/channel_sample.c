/*
 * The Windows "ControlChannelTrigger with MessageWebSocket" sample, ported line by line to ctrlchan.
 *
 *   make -C examples/c && examples/c/channel_sample ws://127.0.0.1:8080/push?n=3 [seconds]
 *
 * Windows                                         ctrlchan
 *   new ControlChannelTrigger(id, 15, HW slot)     ctrlchan_channel_new(rt, "channelOne", 15 min, HARDWARE)
 *   KeepAliveTrigger + WebSocketKeepAlive task     ctrlchan_keepalive_new + ctrlchan_channel_set_keepalive
 *   PushNotificationTrigger background task        ctrlchan_channel_set_event_handler (callback)
 *   new MessageWebSocket(); Control.MessageType    ctrlchan_websocket_new + ctrlchan_websocket_set_message_type
 *   channel.UsingTransport(socket)                 ctrlchan_channel_using_transport
 *   await socket.ConnectAsync(uri)                 ctrlchan_websocket_connect
 *   channel.WaitForPushEnabled()                   ctrlchan_channel_wait_for_push_enabled
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctrlchan.h"

#define CHECK(call)                                                                      \
    do {                                                                                 \
        ctrlchan_result r_ = (call);                                                     \
        if (r_ != CTRLCHAN_RESULT_OK) {                                                  \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, ctrlchan_result_name(r_),     \
                    ctrlchan_last_error());                                              \
            goto done;                                                                   \
        }                                                                                \
    } while (0)

struct app_state {
    unsigned pushes;
    unsigned keepalives;
    int transport_gone;
};

/* The "background task": runs on the runtime thread for every event of the channel. */
static void on_channel_event(void *userdata, const ctrlchan_event *ev) {
    struct app_state *app = (struct app_state *)userdata;
    switch (ctrlchan_event_get_kind(ev)) {
    case CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION: {
        const uint8_t *data = NULL;
        size_t len = 0;
        if (ctrlchan_event_get_data(ev, &data, &len) == CTRLCHAN_RESULT_OK) {
            app->pushes++;
            printf("[%s] push notification: %.*s\n", ctrlchan_event_get_channel_id(ev), (int)len,
                   data ? (const char *)data : "");
        }
        break;
    }
    case CTRLCHAN_EVENT_KIND_KEEPALIVE:
        app->keepalives++;
        printf("[%s] keep-alive acknowledged, rtt %" PRIu64 " us\n", ctrlchan_event_get_channel_id(ev),
               ctrlchan_event_get_rtt_us(ev));
        break;
    case CTRLCHAN_EVENT_KIND_CLOSED:
        printf("[%s] closed: %u %s\n", ctrlchan_event_get_channel_id(ev),
               (unsigned)ctrlchan_event_get_close_code(ev), ctrlchan_event_get_reason(ev));
        app->transport_gone = 1;
        break;
    case CTRLCHAN_EVENT_KIND_TRANSPORT_DISCONNECTED:
        printf("[%s] transport disconnected: %s\n", ctrlchan_event_get_channel_id(ev), ctrlchan_event_get_reason(ev));
        app->transport_gone = 1;
        break;
    default:
        break;
    }
}

static void on_finalize(void *userdata) {
    (void)userdata; /* the app state lives on main's stack; nothing to free */
    printf("event handler released\n");
}

int main(int argc, char **argv) {
    const char *uri = argc > 1 ? argv[1] : NULL;
    int seconds = argc > 2 ? atoi(argv[2]) : 5;
    ctrlchan_runtime *rt = NULL;
    ctrlchan_channel *channel = NULL;
    ctrlchan_keepalive *keepalive = NULL;
    ctrlchan_websocket *socket = NULL;
    ctrlchan_status status = CTRLCHAN_STATUS_TRANSPORT_DISCONNECTED;
    struct app_state app = {0, 0, 0};
    int rc = 1;
    uint32_t interval_ms = 0;

    if (!uri) {
        fprintf(stderr, "usage: %s ws://host:port/path [seconds]\n", argv[0]);
        return 2;
    }
    printf("ctrlchan %s\n", ctrlchan_version());
    CHECK(ctrlchan_runtime_new(&rt));

    /* 1. The control channel: id, server keep-alive interval (15 minutes as in the Windows
     *    sample; 1 s here so you see keep-alives), hardware slot. */
    CHECK(ctrlchan_channel_new(rt, "channelOne", 1000, CTRLCHAN_RESOURCE_TYPE_REQUEST_HARDWARE_SLOT, &channel));

    /* 2. The keep-alive task bound to the channel's keep-alive trigger. */
    CHECK(ctrlchan_keepalive_new(&keepalive));
    CHECK(ctrlchan_keepalive_set_mode(keepalive, CTRLCHAN_KEEPALIVE_MODE_PING));
    CHECK(ctrlchan_keepalive_set_pong_timeout(keepalive, 3000));
    CHECK(ctrlchan_channel_set_keepalive(channel, keepalive));
    /* Acknowledged keep-alives are not events by default (the app is woken only for what matters);
       this sample shows them, so it asks for every event. */
    CHECK(ctrlchan_channel_set_event_mask(channel, CTRLCHAN_EVENT_MASK_ALL));

    /* 3. The push-notification "background task". */
    CHECK(ctrlchan_channel_set_event_handler(channel, on_channel_event, &app, on_finalize));

    /* 4. The MessageWebSocket and its control options (before connect). */
    CHECK(ctrlchan_websocket_new(rt, CTRLCHAN_WEBSOCKET_KIND_MESSAGE, &socket));
    CHECK(ctrlchan_websocket_set_message_type(socket, CTRLCHAN_MESSAGE_TYPE_UTF8));

    /* 5. UsingTransport before connect, 6. connect. */
    CHECK(ctrlchan_channel_using_transport(channel, socket));
    CHECK(ctrlchan_websocket_connect(socket, uri, 10000));

    /* 7. WaitForPushEnabled after connect. */
    CHECK(ctrlchan_channel_wait_for_push_enabled(channel, &status));
    if (status != CTRLCHAN_STATUS_SOFTWARE_SLOT_ALLOCATED && status != CTRLCHAN_STATUS_HARDWARE_SLOT_ALLOCATED) {
        fprintf(stderr, "push not enabled, status %u\n", (unsigned)status);
        goto done;
    }
    CHECK(ctrlchan_channel_current_keepalive_interval(channel, &interval_ms));
    printf("push enabled: %s slot, keep-alive every %u ms\n",
           status == CTRLCHAN_STATUS_HARDWARE_SLOT_ALLOCATED ? "hardware" : "software", (unsigned)interval_ms);

    /* 8. From here on the runtime keeps the channel alive; the app just sends when it wants. */
    {
        const char *hello = "hello from ctrlchan";
        CHECK(ctrlchan_websocket_send(socket, (const uint8_t *)hello, strlen(hello)));
        CHECK(ctrlchan_channel_flush_transport(channel, 2000));
    }
    {
        struct timespec ts = {0, 100 * 1000 * 1000};
        int i;
        for (i = 0; i < seconds * 10 && !app.transport_gone; i++) {
            nanosleep(&ts, NULL);
        }
    }
    if (!app.transport_gone) {
        CHECK(ctrlchan_websocket_close(socket, 1000, "sample done"));
    }
    printf("received %u push notifications, %u keep-alives acknowledged\n", app.pushes, app.keepalives);
    rc = 0;
done:
    ctrlchan_channel_free(channel);
    ctrlchan_websocket_free(socket);
    ctrlchan_keepalive_free(keepalive);
    ctrlchan_runtime_free(rt);
    return rc;
}
