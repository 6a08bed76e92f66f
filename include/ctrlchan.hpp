/*
 * ctrlchan.hpp: a header-only C++17 wrapper over ctrlchan.h. Hand-written (ctrlchan.h is the
 * generated one); tested by tests/cpp (scripts/test-packaging.sh), installed next to ctrlchan.h.
 *
 *   ctrlchan::runtime rt;                                   // one reactor thread
 *   ctrlchan::channel ch(rt, "channelOne", std::chrono::minutes(15));
 *   ctrlchan::websocket ws(rt);
 *   ch.set_event_handler([](const ctrlchan::event_view &ev) { ... });  // on the runtime thread
 *   ch.using_transport(ws);                                 // before connect
 *   ws.connect("wss://example.com/feed");                   // throws ctrlchan::error on failure
 *   ctrlchan_status st = ch.wait_for_push_enabled();        // after connect
 *
 * Rules:
 *   - Every class owns one C handle (RAII: the destructor calls the matching *_free); they are
 *     movable, not copyable. Any destruction order is safe (the C library checks handles), but
 *     destroy objects before the process exits, as for the C API.
 *   - A failing C call throws ctrlchan::error: code() is the ctrlchan_result, what() names the
 *     call, the result and ctrlchan_last_error(). CTRLCHAN_RESULT_TIMEOUT from
 *     runtime::next_event is not an error: it returns std::nullopt.
 *   - Event handlers are std::function<void(const event_view &)>. They run on the runtime's
 *     thread; the event_view is valid only during the call. The library keeps the handler until
 *     it is replaced or its channel/websocket/runtime is freed, then destroys it (possibly on the
 *     runtime thread). A handler must not let an exception escape: C frames are on the stack,
 *     so the trampoline is noexcept and an escaping exception calls std::terminate, as for a
 *     std::thread body.
 *   - Durations are std::chrono durations, converted to the C API's milliseconds (a negative
 *     or too large duration throws ctrlchan::error with CTRLCHAN_RESULT_INVALID_ARGUMENT).
 */
#ifndef CTRLCHAN_HPP
#define CTRLCHAN_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "ctrlchan.h"

#if __cplusplus < 201703L && !(defined(_MSVC_LANG) && _MSVC_LANG >= 201703L)
#error "ctrlchan.hpp needs C++17"
#endif

namespace ctrlchan {

/** A failed ctrlchan call. */
class error : public std::runtime_error {
  public:
    error(ctrlchan_result code, const std::string &what_arg) : std::runtime_error(what_arg), code_(code) {}
    /** The C result code (CTRLCHAN_RESULT_CONNECT_FAILED, ...). */
    ctrlchan_result code() const noexcept { return code_; }

  private:
    ctrlchan_result code_;
};

/** The version of the library actually loaded ("0.1.0"); the header's is CTRLCHAN_VERSION_*. */
inline std::string_view version() noexcept { return ctrlchan_version(); }

/** "OK", "CONNECT_FAILED", ... */
inline std::string_view result_name(ctrlchan_result r) noexcept { return ctrlchan_result_name(r); }

namespace detail {

inline void check(ctrlchan_result r, const char *call) {
    if (r == CTRLCHAN_RESULT_OK) return;
    std::string msg(call);
    msg += ": ";
    msg += ctrlchan_result_name(r);
    const char *detail = ctrlchan_last_error();
    if (detail && *detail) {
        msg += ": ";
        msg += detail;
    }
    throw error(r, msg);
}

template <class Rep, class Period>
inline uint32_t to_ms(std::chrono::duration<Rep, Period> d, const char *what) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    if (ms < 0 || static_cast<unsigned long long>(ms) > std::numeric_limits<uint32_t>::max())
        throw error(CTRLCHAN_RESULT_INVALID_ARGUMENT, std::string(what) + ": duration out of range (0 .. 2^32-1 ms)");
    return static_cast<uint32_t>(ms);
}

inline std::string_view view(const char *s) noexcept { return s ? std::string_view(s) : std::string_view(); }

template <class T, void (*Free)(T *)>
struct deleter {
    void operator()(T *p) const noexcept { Free(p); }
};

template <class T, void (*Free)(T *)>
using handle = std::unique_ptr<T, deleter<T, Free>>;

}  // namespace detail

/** An event borrowed for the duration of a callback (or owned by an `event`). */
class event_view {
  public:
    explicit event_view(const ctrlchan_event *ev) noexcept : ev_(ev) {}

    ctrlchan_event_kind kind() const noexcept { return ctrlchan_event_get_kind(ev_); }
    std::string_view channel_id() const noexcept { return detail::view(ctrlchan_event_get_channel_id(ev_)); }
    /** Close reason, failure detail, or "". */
    std::string_view reason() const noexcept { return detail::view(ctrlchan_event_get_reason(ev_)); }
    /** The message of a PUSH_NOTIFICATION (bytes; text for UTF8 messages), "" otherwise. */
    std::string_view data() const noexcept {
        const uint8_t *p = nullptr;
        size_t n = 0;
        if (ctrlchan_event_get_data(ev_, &p, &n) != CTRLCHAN_RESULT_OK || p == nullptr) return {};
        return std::string_view(reinterpret_cast<const char *>(p), n);
    }
    ctrlchan_message_type message_type() const noexcept { return ctrlchan_event_get_message_type(ev_); }
    uint16_t close_code() const noexcept { return ctrlchan_event_get_close_code(ev_); }
    std::chrono::microseconds rtt() const noexcept {
        return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(ctrlchan_event_get_rtt_us(ev_)));
    }
    /** The cause of a failure event (CONNECT_FAILED, TRANSPORT_DISCONNECTED, 1009 CLOSED); OK otherwise. */
    ctrlchan_result result() const noexcept { return ctrlchan_event_get_result(ev_); }
    /** The C event, borrowed. */
    const ctrlchan_event *get() const noexcept { return ev_; }

  protected:
    const ctrlchan_event *ev_;
};

/** An event taken from the runtime queue; frees it when destroyed. */
class event : public event_view {
  public:
    explicit event(ctrlchan_event *ev) noexcept : event_view(ev), owned_(ev) {}

  private:
    detail::handle<ctrlchan_event, ctrlchan_event_free> owned_;
};

using event_handler = std::function<void(const event_view &)>;

namespace detail {

inline void event_trampoline(void *userdata, const ctrlchan_event *ev) noexcept {
    (*static_cast<event_handler *>(userdata))(event_view(ev));  // noexcept: an escaping exception terminates
}

inline void handler_finalizer(void *userdata) noexcept { delete static_cast<event_handler *>(userdata); }

/** Installs `fn` through `install(cb, userdata, finalizer)`; an empty `fn` removes the handler. */
template <class Install>
inline void set_handler(event_handler fn, Install install, const char *call) {
    if (!fn) {
        check(install(nullptr, nullptr, nullptr), call);
        return;
    }
    auto owned = std::make_unique<event_handler>(std::move(fn));
    check(install(&event_trampoline, owned.get(), &handler_finalizer), call);
    owned.release();  // the library owns it now and calls handler_finalizer exactly once
}

}  // namespace detail

/** ctrlchan_runtime: one reactor thread for every websocket and channel created on it. */
class runtime {
  public:
    runtime() {
        ctrlchan_runtime *p = nullptr;
        detail::check(ctrlchan_runtime_new(&p), "ctrlchan_runtime_new");
        h_.reset(p);
    }

    /** The next queued event (events of objects without a handler), or nullopt after `timeout`. */
    template <class Rep, class Period>
    std::optional<event> next_event(std::chrono::duration<Rep, Period> timeout) {
        ctrlchan_event *ev = nullptr;
        ctrlchan_result r = ctrlchan_runtime_next_event(h_.get(), detail::to_ms(timeout, "timeout"), &ev);
        if (r == CTRLCHAN_RESULT_TIMEOUT) return std::nullopt;
        detail::check(r, "ctrlchan_runtime_next_event");
        return std::optional<event>(std::in_place, ev);
    }

    /** Readable while events are queued (for poll/epoll loops). */
    int event_fd() const {
        int fd = -1;
        detail::check(ctrlchan_runtime_event_fd(h_.get(), &fd), "ctrlchan_runtime_event_fd");
        return fd;
    }

    ctrlchan_runtime_stats stats() const {
        ctrlchan_runtime_stats s{};
        detail::check(ctrlchan_runtime_get_stats(h_.get(), &s), "ctrlchan_runtime_get_stats");
        return s;
    }

    ctrlchan_runtime *get() const noexcept { return h_.get(); }

  private:
    detail::handle<ctrlchan_runtime, ctrlchan_runtime_free> h_;
};

/** ctrlchan_keepalive: the WebSocketKeepAlive task (PING with a 5 s pong timeout by default). */
class keepalive {
  public:
    keepalive() {
        ctrlchan_keepalive *p = nullptr;
        detail::check(ctrlchan_keepalive_new(&p), "ctrlchan_keepalive_new");
        h_.reset(p);
    }
    explicit keepalive(ctrlchan_keepalive_mode mode) : keepalive() { set_mode(mode); }

    void set_mode(ctrlchan_keepalive_mode mode) {
        detail::check(ctrlchan_keepalive_set_mode(h_.get(), mode), "ctrlchan_keepalive_set_mode");
    }
    template <class Rep, class Period>
    void set_pong_timeout(std::chrono::duration<Rep, Period> timeout) {
        detail::check(ctrlchan_keepalive_set_pong_timeout(h_.get(), detail::to_ms(timeout, "pong timeout")),
                      "ctrlchan_keepalive_set_pong_timeout");
    }

    ctrlchan_keepalive *get() const noexcept { return h_.get(); }

  private:
    detail::handle<ctrlchan_keepalive, ctrlchan_keepalive_free> h_;
};

/** ctrlchan_websocket: a MessageWebSocket (default) or StreamWebSocket. */
class websocket {
  public:
    explicit websocket(runtime &rt, ctrlchan_websocket_kind kind = CTRLCHAN_WEBSOCKET_KIND_MESSAGE) {
        ctrlchan_websocket *p = nullptr;
        detail::check(ctrlchan_websocket_new(rt.get(), kind, &p), "ctrlchan_websocket_new");
        h_.reset(p);
    }

    void set_request_header(const std::string &name, const std::string &value) {
        detail::check(ctrlchan_websocket_set_request_header(h_.get(), name.c_str(), value.c_str()),
                      "ctrlchan_websocket_set_request_header");
    }
    void add_supported_protocol(const std::string &protocol) {
        detail::check(ctrlchan_websocket_add_supported_protocol(h_.get(), protocol.c_str()),
                      "ctrlchan_websocket_add_supported_protocol");
    }
    void set_max_message_size(uint32_t bytes) {
        detail::check(ctrlchan_websocket_set_max_message_size(h_.get(), bytes), "ctrlchan_websocket_set_max_message_size");
    }
    void set_message_type(ctrlchan_message_type type) {
        detail::check(ctrlchan_websocket_set_message_type(h_.get(), type), "ctrlchan_websocket_set_message_type");
    }
    /** Handler for this websocket's events when it is not a channel's transport (or its channel has none). */
    void set_event_handler(event_handler fn) {
        ctrlchan_websocket *ws = h_.get();
        detail::set_handler(
            std::move(fn),
            [ws](ctrlchan_event_callback cb, void *ud, ctrlchan_finalizer fin) {
                return ctrlchan_websocket_set_event_handler(ws, cb, ud, fin);
            },
            "ctrlchan_websocket_set_event_handler");
    }

    /** Blocking connect (not from a callback); 0 ms = the library's 30 s default. */
    template <class Rep = int64_t, class Period = std::milli>
    void connect(const std::string &uri, std::chrono::duration<Rep, Period> timeout = std::chrono::seconds(10)) {
        detail::check(ctrlchan_websocket_connect(h_.get(), uri.c_str(), detail::to_ms(timeout, "timeout")),
                      "ctrlchan_websocket_connect");
    }
    /** Starts connecting; a CONNECTED or CONNECT_FAILED event follows. */
    template <class Rep = int64_t, class Period = std::milli>
    void connect_async(const std::string &uri, std::chrono::duration<Rep, Period> timeout = std::chrono::seconds(10)) {
        detail::check(ctrlchan_websocket_connect_async(h_.get(), uri.c_str(), detail::to_ms(timeout, "timeout")),
                      "ctrlchan_websocket_connect_async");
    }

    /** Queues the whole message with the websocket's message type (or throws: BUFFER_FULL, CLOSED, ...). */
    void send(std::string_view data) {
        detail::check(ctrlchan_websocket_send(h_.get(), reinterpret_cast<const uint8_t *>(data.data()), data.size()),
                      "ctrlchan_websocket_send");
    }
    void send(std::string_view data, ctrlchan_message_type type) {
        detail::check(ctrlchan_websocket_send_message(h_.get(), type, reinterpret_cast<const uint8_t *>(data.data()),
                                                      data.size()),
                      "ctrlchan_websocket_send_message");
    }

    /** Starts the close handshake; a CLOSED event follows. */
    void close(uint16_t code = 1000, const std::string &reason = std::string()) {
        detail::check(ctrlchan_websocket_close(h_.get(), code, reason.c_str()), "ctrlchan_websocket_close");
    }

    ctrlchan_websocket_state state() const {
        ctrlchan_websocket_state s{};
        detail::check(ctrlchan_websocket_get_state(h_.get(), &s), "ctrlchan_websocket_get_state");
        return s;
    }

    ctrlchan_websocket *get() const noexcept { return h_.get(); }

  private:
    detail::handle<ctrlchan_websocket, ctrlchan_websocket_free> h_;
};

/** ctrlchan_channel: the ControlChannelTrigger. */
class channel {
  public:
    template <class Rep, class Period>
    channel(runtime &rt, const std::string &id, std::chrono::duration<Rep, Period> server_keepalive_interval,
            ctrlchan_resource_type type = CTRLCHAN_RESOURCE_TYPE_REQUEST_SOFTWARE_SLOT) {
        ctrlchan_channel *p = nullptr;
        detail::check(ctrlchan_channel_new(rt.get(), id.c_str(),
                                           detail::to_ms(server_keepalive_interval, "server keep-alive interval"), type, &p),
                      "ctrlchan_channel_new");
        h_.reset(p);
    }

    /** Before connect. */
    void using_transport(websocket &ws) {
        detail::check(ctrlchan_channel_using_transport(h_.get(), ws.get()), "ctrlchan_channel_using_transport");
    }
    /** After connect: starts keep-alives and returns the slot status. */
    ctrlchan_status wait_for_push_enabled() {
        ctrlchan_status s{};
        detail::check(ctrlchan_channel_wait_for_push_enabled(h_.get(), &s), "ctrlchan_channel_wait_for_push_enabled");
        return s;
    }
    /** The channel keeps its own reference to the task. */
    void set_keepalive(const keepalive &task) {
        detail::check(ctrlchan_channel_set_keepalive(h_.get(), task.get()), "ctrlchan_channel_set_keepalive");
    }
    /** Handler for the channel's events (else they go to the websocket's handler or the runtime queue). */
    void set_event_handler(event_handler fn) {
        ctrlchan_channel *ch = h_.get();
        detail::set_handler(
            std::move(fn),
            [ch](ctrlchan_event_callback cb, void *ud, ctrlchan_finalizer fin) {
                return ctrlchan_channel_set_event_handler(ch, cb, ud, fin);
            },
            "ctrlchan_channel_set_event_handler");
    }
    std::chrono::milliseconds current_keepalive_interval() const {
        uint32_t ms = 0;
        detail::check(ctrlchan_channel_current_keepalive_interval(h_.get(), &ms), "ctrlchan_channel_current_keepalive_interval");
        return std::chrono::milliseconds(ms);
    }
    void decrease_network_keepalive_interval() {
        detail::check(ctrlchan_channel_decrease_network_keepalive_interval(h_.get()),
                      "ctrlchan_channel_decrease_network_keepalive_interval");
    }
    /** Waits until queued data reached the kernel (not from a callback). */
    template <class Rep = int64_t, class Period = std::milli>
    void flush_transport(std::chrono::duration<Rep, Period> timeout = std::chrono::seconds(10)) {
        detail::check(ctrlchan_channel_flush_transport(h_.get(), detail::to_ms(timeout, "timeout")),
                      "ctrlchan_channel_flush_transport");
    }
    void close() { detail::check(ctrlchan_channel_close(h_.get()), "ctrlchan_channel_close"); }

    ctrlchan_channel *get() const noexcept { return h_.get(); }

  private:
    detail::handle<ctrlchan_channel, ctrlchan_channel_free> h_;
};

}  // namespace ctrlchan

#endif /* CTRLCHAN_HPP */
