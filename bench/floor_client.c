/* The floor: the least a client can do to keep N websockets alive from one thread.
 *
 *   floor_client HOST PORT N INTERVAL_MS WARMUP_MS WINDOW_MS COALESCE_MS [CA_FILE]
 *
 * Connects N websockets one after another (blocking; with CA_FILE over TLS, OpenSSL), then one
 * epoll loop: per channel per interval one write of a 6-byte masked PING frame (no payload), per
 * pong one read. Nothing else: no timers per channel (a FIFO ring in due order is the timer queue),
 * no allocation after connect, no events. Like ctrlchan, a wake-up sends every ping due within
 * COALESCE_MS (ctrlchan's default rule: min(1 s, interval / 4)) and the next one is due an interval
 * after it was sent, so pings that went out together stay together. Speaks the driver protocol of
 * bench/driver.py (READY / CONNECTED / MARK, see examples/bench.rs). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

typedef struct {
    int fd;
    SSL *ssl;
    int64_t sent_ns; /* 0: no ping outstanding */
    int64_t due_ns;
} chan_t;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "floor_client: %s: %s\n", what, strerror(errno));
    exit(1);
}

static ssize_t io_write(chan_t *c, const void *b, size_t n) {
    return c->ssl ? SSL_write(c->ssl, b, (int)n) : write(c->fd, b, n);
}

static ssize_t io_read(chan_t *c, void *b, size_t n) {
    return c->ssl ? SSL_read(c->ssl, b, (int)n) : read(c->fd, b, n);
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: floor_client HOST PORT N INTERVAL_MS WARMUP_MS WINDOW_MS COALESCE_MS [CA_FILE]\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    int n = atoi(argv[3]);
    int64_t interval = (int64_t)atoll(argv[4]) * 1000000;
    int64_t warmup = (int64_t)atoll(argv[5]) * 1000000;
    int64_t window = (int64_t)atoll(argv[6]) * 1000000;
    int64_t coalesce = (int64_t)atoll(argv[7]) * 1000000;
    SSL_CTX *ctx = NULL;
    if (argc > 8) {
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[8], NULL) != 1) die("CA file");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    chan_t *ch = calloc((size_t)n, sizeof *ch);
    int *ring = calloc((size_t)n, sizeof *ring); /* channel indices in due order */
    int ep = epoll_create1(0);
    if (!ch || !ring || ep < 0) die("setup");

    printf("READY\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 1;

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    char req[512];
    int reqlen = snprintf(req, sizeof req,
                          "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                          host, port);
    int64_t t0 = now_ns();
    int ok = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        chan_t *c = &ch[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        if (c->fd < 0) die("socket");
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect");
        if (ctx) {
            c->ssl = SSL_new(ctx);
            SSL_set_fd(c->ssl, c->fd);
            SSL_set1_host(c->ssl, host);
            if (SSL_connect(c->ssl) != 1) {
                ERR_print_errors_fp(stderr);
                die("SSL_connect");
            }
        }
        if (io_write(c, req, (size_t)reqlen) != reqlen) die("handshake write");
        char resp[1024];
        size_t got = 0;
        while (got < sizeof resp - 1) {
            ssize_t r = io_read(c, resp + got, sizeof resp - 1 - got);
            if (r <= 0) die("handshake read");
            got += (size_t)r;
            resp[got] = 0;
            if (strstr(resp, "\r\n\r\n")) break;
        }
        if (strncmp(resp, "HTTP/1.1 101", 12) != 0) {
            failed++;
            continue;
        }
        ok++;
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl");
        c->due_ns = now_ns() + interval;
    }
    int64_t t1 = now_ns();
    printf("CONNECTED %.4f %d %d\n", (double)(t1 - t0) / 1e9, ok, failed);
    fflush(stdout);

    int head = 0, count = 0;
    for (int i = 0; i < n; i++)
        if (ch[i].fd >= 0 && ch[i].due_ns) ring[count++] = i;
    uint64_t acks = 0, rtt_sum_us = 0, rtt_n = 0;
    int64_t marks[2] = {t1 + warmup, t1 + warmup + window};
    int marked = 0;
    static const unsigned char ping[6] = {0x89, 0x80, 0x12, 0x34, 0x56, 0x78};
    struct epoll_event evs[256];
    int64_t give_up = t1 + warmup + window + 10 * (int64_t)1000000000;
    while (marked < 2 && now_ns() < give_up) {
        int64_t now = now_ns();
        if (count && ch[ring[head]].due_ns <= now) {
            while (count && ch[ring[head]].due_ns <= now + coalesce) {
                int i = ring[head];
                if (io_write(&ch[i], ping, sizeof ping) != (ssize_t)sizeof ping) die("ping write");
                ch[i].sent_ns = now_ns(); /* for the RTT only (vDSO clock read) */
                /* Still in due order: the unsent ones were sent before now, so are due before this. */
                ch[i].due_ns = now + interval;
                head = (head + 1) % count;
            }
        }
        if (now >= marks[marked]) {
            printf("MARK %llu %llu %llu 0 0\n", (unsigned long long)acks, (unsigned long long)rtt_sum_us,
                   (unsigned long long)rtt_n);
            fflush(stdout);
            marked++;
            continue;
        }
        int64_t next = marks[marked];
        if (count && ch[ring[head]].due_ns < next) next = ch[ring[head]].due_ns;
        int timeout = (int)((next - now + 999999) / 1000000);
        int k = epoll_wait(ep, evs, 256, timeout);
        if (k < 0 && errno != EINTR) die("epoll_wait");
        int64_t t = now_ns();
        for (int e = 0; e < k; e++) {
            chan_t *c = &ch[evs[e].data.u32];
            unsigned char buf[256];
            ssize_t r = io_read(c, buf, sizeof buf);
            if (r <= 0) {
                if (c->ssl && SSL_get_error(c->ssl, (int)r) == SSL_ERROR_WANT_READ) continue;
                if (!c->ssl && r < 0 && errno == EAGAIN) continue;
                fprintf(stderr, "floor_client: channel %u lost\n", evs[e].data.u32);
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            for (ssize_t p = 0; p + 1 < r;) { /* server frames are unmasked with short payloads */
                if ((buf[p] & 0x0f) == 0x0a && c->sent_ns) {
                    acks++;
                    rtt_sum_us += (uint64_t)(t - c->sent_ns) / 1000;
                    rtt_n++;
                    c->sent_ns = 0;
                }
                p += 2 + (buf[p + 1] & 0x7f);
            }
        }
    }
    while (fgets(line, sizeof line, stdin)) {
    }
    return 0;
}
