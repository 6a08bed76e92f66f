// Tests of include/ctrlchan.hpp (the C++17 wrapper) against the real test peer.
//   test_wrapper ws://127.0.0.1:PORT      (scripts/test-packaging.sh starts tests/peer/server.py)
// Built with -std=c++17 -Wall -Wextra -Werror -pedantic under AddressSanitizer + UBSan.
// Prints "cpp: N passed, N failed" last.
#include "ctrlchan.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

static int g_failures = 0;

#define EXPECT(cond)                                                                       \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            std::fprintf(stderr, "%s:%d: EXPECT(%s) failed\n", __FILE__, __LINE__, #cond); \
            ++g_failures;                                                                  \
        }                                                                                  \
    } while (0)

template <class F>
static bool eventually(F pred, std::chrono::milliseconds limit = 5s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

struct recorder {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::string> pushes;
    std::vector<std::thread::id> threads;
};

static void main_flow_with_a_handler(const std::string &base) {
    auto rec = std::make_shared<recorder>();
    {
        ctrlchan::runtime rt;
        ctrlchan::keepalive ka(CTRLCHAN_KEEPALIVE_MODE_PING);
        ka.set_pong_timeout(5s);
        ctrlchan::channel ch(rt, "cpp", 30s);
        ch.set_keepalive(ka);
        ch.set_event_handler([rec](const ctrlchan::event_view &ev) {
            if (ev.kind() != CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION) return;
            std::lock_guard<std::mutex> g(rec->m);
            rec->pushes.emplace_back(ev.data());
            rec->threads.push_back(std::this_thread::get_id());
            rec->cv.notify_all();
        });
        EXPECT(rec.use_count() == 2);  // the installed handler holds a copy
        ctrlchan::websocket ws(rt);
        ws.set_message_type(CTRLCHAN_MESSAGE_TYPE_UTF8);
        ch.using_transport(ws);
        ws.connect(base + "/push?n=5&interval_ms=20", 5s);
        EXPECT(ws.state() == CTRLCHAN_WEBSOCKET_STATE_OPEN);
        EXPECT(ch.wait_for_push_enabled() == CTRLCHAN_STATUS_SOFTWARE_SLOT_ALLOCATED);
        EXPECT(ch.current_keepalive_interval() == 30s);
        {
            std::unique_lock<std::mutex> g(rec->m);
            rec->cv.wait_for(g, 10s, [&] { return rec->pushes.size() >= 5; });
            EXPECT((rec->pushes == std::vector<std::string>{"msg 0", "msg 1", "msg 2", "msg 3", "msg 4"}));
            for (auto id : rec->threads) EXPECT(id != std::this_thread::get_id());  // on the runtime thread
        }
        ws.send("hello");
        ws.send(std::string_view("\x01\x02", 2), CTRLCHAN_MESSAGE_TYPE_BINARY);
        ch.flush_transport(5s);
        EXPECT(rt.stats().connections_open == 1);
    }
    // Everything freed: the library destroyed the handler (and its copy of rec) exactly once.
    EXPECT(eventually([&] { return rec.use_count() == 1; }));
}

static void failures_throw_ctrlchan_error(const std::string &base) {
    ctrlchan::runtime rt;
    ctrlchan::websocket ws(rt);
    try {
        ws.connect("ws://127.0.0.1:1/", 2s);
        EXPECT(!"connect to port 1 succeeded");
    } catch (const ctrlchan::error &e) {
        EXPECT(e.code() == CTRLCHAN_RESULT_CONNECT_FAILED);
        EXPECT(std::string(e.what()).rfind("ctrlchan_websocket_connect: CONNECT_FAILED: ", 0) == 0);
    }
    try {
        ctrlchan::channel too_long(rt, std::string(65, 'x'), 30s);
        EXPECT(!"a 65-character id was accepted");
    } catch (const ctrlchan::error &e) {
        EXPECT(e.code() == CTRLCHAN_RESULT_INVALID_ARGUMENT);
    }
    try {
        ctrlchan::channel negative(rt, "neg", -1s);
        EXPECT(!"a negative interval was accepted");
    } catch (const ctrlchan::error &e) {
        EXPECT(e.code() == CTRLCHAN_RESULT_INVALID_ARGUMENT);
    }
    ctrlchan::websocket idle(rt);
    try {
        idle.send("not connected");
        EXPECT(!"send before connect succeeded");
    } catch (const ctrlchan::error &e) {
        EXPECT(e.code() != CTRLCHAN_RESULT_OK);
    }
    // A failed call leaves the object usable.
    ctrlchan::websocket again(rt);
    again.connect(base + "/echo", 5s);
    EXPECT(again.state() == CTRLCHAN_WEBSOCKET_STATE_OPEN);
}

static void events_without_a_handler_go_to_the_queue(const std::string &base) {
    ctrlchan::runtime rt;
    EXPECT(rt.event_fd() >= 0);
    ctrlchan::websocket ws(rt);
    ws.connect(base + "/push?n=2", 5s);
    std::vector<std::string> got;
    while (got.size() < 2) {
        std::optional<ctrlchan::event> ev = rt.next_event(5s);
        if (!ev) break;
        if (ev->kind() == CTRLCHAN_EVENT_KIND_PUSH_NOTIFICATION) got.emplace_back(ev->data());
    }  // each event is freed here
    EXPECT((got == std::vector<std::string>{"msg 0", "msg 1"}));
    EXPECT(!rt.next_event(100ms));  // TIMEOUT is not an error: nullopt
}

static void handlers_are_replaced_and_released(const std::string &) {
    ctrlchan::runtime rt;
    auto token = std::make_shared<int>(0);
    ctrlchan::channel ch(rt, "replace", std::chrono::minutes(15));
    ch.set_event_handler([token](const ctrlchan::event_view &) {});
    EXPECT(token.use_count() == 2);
    ch.set_event_handler([](const ctrlchan::event_view &) {});  // the first one is destroyed
    EXPECT(eventually([&] { return token.use_count() == 1; }));
    ch.set_event_handler(nullptr);  // removed
    ctrlchan::channel moved = std::move(ch);
    moved.close();
    EXPECT(moved.get() != nullptr && ch.get() == nullptr);
}

static void header_and_library_versions_agree(const std::string &) {
    std::string header = std::to_string(CTRLCHAN_VERSION_MAJOR) + "." + std::to_string(CTRLCHAN_VERSION_MINOR) + "." +
                         std::to_string(CTRLCHAN_VERSION_PATCH);
    EXPECT(ctrlchan::version() == header);
    EXPECT(ctrlchan::result_name(CTRLCHAN_RESULT_TIMEOUT) == "TIMEOUT");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s ws://127.0.0.1:PORT\n", argv[0]);
        return 2;
    }
    const std::string base = argv[1];
    struct test {
        const char *name;
        void (*fn)(const std::string &);
    };
    const test tests[] = {
        {"main_flow_with_a_handler", main_flow_with_a_handler},
        {"failures_throw_ctrlchan_error", failures_throw_ctrlchan_error},
        {"events_without_a_handler_go_to_the_queue", events_without_a_handler_go_to_the_queue},
        {"handlers_are_replaced_and_released", handlers_are_replaced_and_released},
        {"header_and_library_versions_agree", header_and_library_versions_agree},
    };
    int passed = 0, failed = 0;
    for (const test &t : tests) {
        int before = g_failures;
        try {
            t.fn(base);
        } catch (const std::exception &e) {
            std::fprintf(stderr, "%s: unexpected exception: %s\n", t.name, e.what());
            ++g_failures;
        }
        bool ok = g_failures == before;
        std::printf("%s %s\n", ok ? "PASS" : "FAIL", t.name);
        (ok ? passed : failed)++;
    }
    std::printf("cpp: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
