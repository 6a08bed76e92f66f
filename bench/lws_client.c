/* libwebsockets peer for the ctrlchan benchmark (Debian's libwebsockets-dev, 4.1).
 *
 *   lws_client HOST PORT N INTERVAL_MS WARMUP_MS WINDOW_MS INFLIGHT [CA_FILE]
 *
 * N client connections on one lws context, keep-alive the lws way: a retry-and-idle policy whose
 * secs_since_valid_ping makes lws send a PING on every connection idle for the interval (whole
 * seconds), counted when LWS_CALLBACK_CLIENT_RECEIVE_PONG arrives. lws does not tell when it sent
 * its ping, so this client reports no RTT. Speaks the driver protocol of bench/driver.py. */
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int connected, failed, lost, issued, marked, done;
static unsigned long long acks;
static struct lws_context *context;
static lws_sorted_usec_list_t mark_sul;
static lws_usec_t window_us;

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    (void)wsi, (void)user, (void)len;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        connected++;
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        fprintf(stderr, "lws_client: connect failed: %s\n", in ? (const char *)in : "?");
        failed++;
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        acks++;
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        lost++;
        break;
    default:
        break;
    }
    return 0;
}

static void on_mark(lws_sorted_usec_list_t *sul) {
    printf("MARK %llu 0 0 0 0\n", acks);
    fflush(stdout);
    if (++marked == 2) {
        done = 1;
        lws_cancel_service(context);
    } else {
        lws_sul_schedule(context, 0, sul, on_mark, window_us);
    }
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: lws_client HOST PORT N INTERVAL_MS WARMUP_MS WINDOW_MS INFLIGHT [CA_FILE]\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]), n = atoi(argv[3]), inflight = atoi(argv[7]);
    int interval_s = atoi(argv[4]) / 1000;
    lws_usec_t warmup_us = (lws_usec_t)atoll(argv[5]) * 1000;
    window_us = (lws_usec_t)atoll(argv[6]) * 1000;
    const char *ca = argc > 8 ? argv[8] : NULL;
    if (interval_s < 1) interval_s = 1;
    lws_set_log_level(LLL_ERR, NULL);

    static struct lws_protocols protocols[] = {{"bench", callback, 0, 0, 0, NULL, 0}, {NULL, NULL, 0, 0, 0, NULL, 0}};
    lws_retry_bo_t policy = {.secs_since_valid_ping = (uint16_t)interval_s,
                             .secs_since_valid_hangup = (uint16_t)(interval_s * 3 + 10)};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = ca;
    info.fd_limit_per_thread = (unsigned int)n + 64;
    info.retry_and_idle_policy = &policy;
    context = lws_create_context(&info);
    if (!context) {
        fprintf(stderr, "lws_client: lws_create_context failed\n");
        return 1;
    }

    printf("READY\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 1;

    lws_usec_t t0 = lws_now_usecs();
    lws_usec_t give_up = t0 + (lws_usec_t)120 * 1000000;
    while (connected + failed < n && lws_now_usecs() < give_up) {
        while (issued < n && issued - connected - failed < inflight) {
            struct lws_client_connect_info cc;
            memset(&cc, 0, sizeof cc);
            cc.context = context;
            cc.address = host;
            cc.port = port;
            cc.path = "/";
            cc.host = host;
            cc.origin = host;
            cc.local_protocol_name = "bench";
            cc.retry_and_idle_policy = &policy;
            cc.ssl_connection = ca ? LCCSCF_USE_SSL : 0;
            if (!lws_client_connect_via_info(&cc)) failed++;
            issued++;
        }
        lws_service(context, 0);
    }
    lws_usec_t t1 = lws_now_usecs();
    printf("CONNECTED %.4f %d %d\n", (double)(t1 - t0) / 1e6, connected, failed);
    fflush(stdout);

    lws_sul_schedule(context, 0, &mark_sul, on_mark, warmup_us);
    lws_usec_t end = t1 + warmup_us + window_us + (lws_usec_t)10 * 1000000;
    while (!done && lws_now_usecs() < end)
        lws_service(context, 0);
    while (fgets(line, sizeof line, stdin)) {
    }
    lws_context_destroy(context);
    return 0;
}
