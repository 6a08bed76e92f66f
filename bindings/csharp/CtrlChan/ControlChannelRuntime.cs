using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading;

namespace CtrlChan
{
    /// <summary>Counters of a runtime (<c>ctrlchan_runtime_stats</c>).</summary>
    public sealed class ControlChannelRuntimeStatistics
    {
        internal ControlChannelRuntimeStatistics(NativeRuntimeStats s)
        {
            Wakeups = s.Wakeups;
            KeepAlivesSent = s.KeepalivesSent;
            KeepAlivesAcknowledged = s.KeepalivesAcked;
            MessagesReceived = s.MessagesReceived;
            ConnectionsOpen = s.ConnectionsOpen;
            ChannelsActive = s.ChannelsActive;
        }
        /// <summary>Reactor wake-ups since start.</summary>
        public ulong Wakeups { get; private set; }
        /// <summary>Keep-alive frames sent (ping or unsolicited pong).</summary>
        public ulong KeepAlivesSent { get; private set; }
        /// <summary>Pongs that matched a keep-alive ping.</summary>
        public ulong KeepAlivesAcknowledged { get; private set; }
        /// <summary>Push notifications produced.</summary>
        public ulong MessagesReceived { get; private set; }
        /// <summary>Web sockets currently open.</summary>
        public ulong ConnectionsOpen { get; private set; }
        /// <summary>Channels holding a slot (push enabled).</summary>
        public ulong ChannelsActive { get; private set; }
    }

    /// <summary>
    /// The background broker ("the system" in Windows terms): one reactor thread that owns
    /// every socket and timer of the sockets and channels created on it, sends keep-alives
    /// and delivers events. Create one per process (or a few); dispose it last.
    /// </summary>
    /// <remarks>
    /// Each event goes to exactly one place, the first that applies (the core's rule):
    /// the socket's channel, if the socket is a channel's transport and something subscribed to
    /// one of the channel's events; else the socket, if something subscribed to one of its events
    /// (or a ConnectAsync is pending, or a StreamWebSocket's InputStream is open); else the
    /// runtime's native queue, read in order with <see cref="NextEvent"/> (nothing is dropped).
    /// A channel raises an event of a kind it has no subscriber for on its transport socket's
    /// event instead; a kind nobody subscribed to on the object it went to is not raised.
    /// Events are raised on the runtime's thread.
    /// Disposing the runtime disposes every socket and channel created on it.
    /// Keep references to the sockets and channels you use: a wrapper that becomes
    /// garbage is finalized, which closes its connection.
    /// </remarks>
    public sealed class ControlChannelRuntime : IDisposable
    {
        private static readonly ConcurrentDictionary<long, WeakReference> s_runtimes = new ConcurrentDictionary<long, WeakReference>();
        private static long s_nextId;

        internal readonly RuntimeHandle Handle;
        private readonly long _id;
        private readonly object _disposeLock = new object();
        private volatile bool _disposed;

        private readonly ConcurrentDictionary<long, WeakReference> _children = new ConcurrentDictionary<long, WeakReference>();
        private long _nextChildId;
        private int _pruneAt = 1024;

        private long _unhandledCount;
        private Exception _lastUnhandled;

        static ControlChannelRuntime()
        {
            // Native runtime threads must never call into a domain that is going away.
            AppDomain.CurrentDomain.DomainUnload += (s, e) => DisposeAll();
            AppDomain.CurrentDomain.ProcessExit += (s, e) => DisposeAll();
        }

        private static void DisposeAll()
        {
            foreach (var kv in s_runtimes)
            {
                var rt = kv.Value.Target as ControlChannelRuntime;
                if (rt == null) continue;
                try { rt.Dispose(); } catch (Exception) { }
            }
        }

        /// <summary>Starts a runtime (its reactor thread).</summary>
        public ControlChannelRuntime()
        {
            CtrlChanLog.EnsureInstalled();
            IntPtr p;
            Errors.Check(NativeMethods.ctrlchan_runtime_new(out p), "ctrlchan_runtime_new");
            Handle = CtrlChanHandle.Wrap<RuntimeHandle>(p);
            _id = Interlocked.Increment(ref s_nextId);
            s_runtimes[_id] = new WeakReference(this);
        }

        /// <summary>Version of the native library, e.g. "0.1.0".</summary>
        public static string Version
        {
            get { return Utf8.Decode(NativeMethods.ctrlchan_version()); }
        }

        public bool IsDisposed { get { return _disposed; } }

        /// <summary>Raised (on the runtime thread) when an event handler threw. The process keeps
        /// running and the event's other subscribers still run. If nobody subscribes, the
        /// exception is still kept in <see cref="LastUnhandledException"/>.</summary>
        public event EventHandler<CallbackExceptionEventArgs> UnhandledException;

        /// <summary>The most recent exception thrown by an event handler (null if none).</summary>
        public Exception LastUnhandledException { get { return Volatile.Read(ref _lastUnhandled); } }

        /// <summary>How many exceptions event handlers threw so far.</summary>
        public long UnhandledExceptionCount { get { return Interlocked.Read(ref _unhandledCount); } }

        /// <summary>Channels that may hold a slot at once (default 65 536); WaitForPushEnabled beyond it
        /// returns <see cref="ControlChannelTriggerStatus.PolicyError"/>.</summary>
        public uint MaxChannels
        {
            get
            {
                ThrowIfDisposed();
                uint v;
                Errors.Check(NativeMethods.ctrlchan_runtime_get_max_channels(Handle, out v), "ctrlchan_runtime_get_max_channels", "ControlChannelRuntime");
                return v;
            }
            set
            {
                if (value == 0) throw new ArgumentOutOfRangeException("value", value, "at least one channel");
                ThrowIfDisposed();
                Errors.Check(NativeMethods.ctrlchan_runtime_set_max_channels(Handle, value), "ctrlchan_runtime_set_max_channels", "ControlChannelRuntime");
            }
        }

        /// <summary>Keep-alives due within this window (capped at a quarter of a channel's interval)
        /// are sent early, together. Default 3 s; zero disables coalescing; at most 1 h.</summary>
        public TimeSpan CoalescingWindow
        {
            get
            {
                ThrowIfDisposed();
                uint ms;
                Errors.Check(NativeMethods.ctrlchan_runtime_get_coalescing_window(Handle, out ms), "ctrlchan_runtime_get_coalescing_window", "ControlChannelRuntime");
                return TimeSpan.FromMilliseconds(ms);
            }
            set
            {
                ThrowIfDisposed();
                uint ms = Time.ToMilliseconds(value, TimeSpan.Zero, TimeSpan.FromHours(1), "value");
                Errors.Check(NativeMethods.ctrlchan_runtime_set_coalescing_window(Handle, ms), "ctrlchan_runtime_set_coalescing_window", "ControlChannelRuntime");
            }
        }

        /// <summary>The longest single wait after a burst of keep-alive pings: the runtime thread
        /// sleeps, reads what arrived in one pass, and repeats while most of the burst's pongs are
        /// out (the first sleep is learned from earlier bursts), so the pongs cost a few wake-ups
        /// instead of one each. Data and calls from other threads arriving meanwhile wait at most
        /// this long; measured keep-alive round trips include the wait. Default 50 ms; zero
        /// disables; at most 1 s.</summary>
        public TimeSpan PongSettle
        {
            get
            {
                ThrowIfDisposed();
                uint ms;
                Errors.Check(NativeMethods.ctrlchan_runtime_get_pong_settle(Handle, out ms), "ctrlchan_runtime_get_pong_settle", "ControlChannelRuntime");
                return TimeSpan.FromMilliseconds(ms);
            }
            set
            {
                ThrowIfDisposed();
                uint ms = Time.ToMilliseconds(value, TimeSpan.Zero, TimeSpan.FromSeconds(1), "value");
                Errors.Check(NativeMethods.ctrlchan_runtime_set_pong_settle(Handle, ms), "ctrlchan_runtime_set_pong_settle", "ControlChannelRuntime");
            }
        }

        /// <summary>Bound of the runtime's native event queue (what <see cref="NextEvent"/> reads), in
        /// events; default 65 536. When it is full the runtime stops reading the sockets whose events
        /// would go there (TCP back-pressure to the server) and resumes once the app has drained it
        /// below half: nothing is ever dropped. Events raised as .NET events need no limit.</summary>
        public uint EventQueueLimit
        {
            get
            {
                ThrowIfDisposed();
                uint v;
                Errors.Check(NativeMethods.ctrlchan_runtime_get_event_queue_limit(Handle, out v), "ctrlchan_runtime_get_event_queue_limit", "ControlChannelRuntime");
                return v;
            }
            set
            {
                if (value == 0) throw new ArgumentOutOfRangeException("value", value, "at least one event");
                ThrowIfDisposed();
                Errors.Check(NativeMethods.ctrlchan_runtime_set_event_queue_limit(Handle, value), "ctrlchan_runtime_set_event_queue_limit", "ControlChannelRuntime");
            }
        }

        private string _stateFile;

        /// <summary>Where learned adaptive keep-alive intervals are kept across runs (null: in
        /// memory only, the default), so a restart does not probe from Minimum again. Setting it
        /// loads the file at once; a missing file is created on the first save, a malformed one
        /// is ignored (a "ctrlchan WARN" line on stderr) and replaced. Saved off the runtime
        /// thread at most every 10 s and when the runtime is disposed.</summary>
        public string StateFile
        {
            get { ThrowIfDisposed(); return _stateFile; }
            set { SetStateFile(value); }
        }

        /// <summary>Same as setting <see cref="StateFile"/>; null or "" = in memory only.</summary>
        public void SetStateFile(string path)
        {
            ThrowIfDisposed();
            byte[] raw = string.IsNullOrEmpty(path) ? null : Utf8.Encode(path, "path");
            Errors.Check(NativeMethods.ctrlchan_runtime_set_state_file(Handle, raw), "ctrlchan_runtime_set_state_file", "ControlChannelRuntime");
            _stateFile = string.IsNullOrEmpty(path) ? null : path;
        }

        /// <summary>
        /// FOR TESTS: behaves as if the machine had just resumed from a suspend of
        /// <paramref name="duration"/> (0 ... 49 days): every channel is probed at once (pong timeout
        /// at most 5 s); a dead transport is reconnected at once (Reset with ResetReason LowPowerExit)
        /// if its channel has a <see cref="ControlChannelTrigger.ReconnectPolicy"/>, else raises
        /// TransportDisconnected.
        /// </summary>
        public void SimulateSuspend(TimeSpan duration)
        {
            uint ms = Time.ToMilliseconds(duration, TimeSpan.Zero, TimeSpan.FromMilliseconds(uint.MaxValue), "duration");
            ThrowIfDisposed();
            Errors.Check(NativeMethods.ctrlchan_runtime_simulate_suspend(Handle, ms), "ctrlchan_runtime_simulate_suspend", "ControlChannelRuntime");
        }

        /// <summary>Current counters of the runtime.</summary>
        public ControlChannelRuntimeStatistics GetStatistics()
        {
            ThrowIfDisposed();
            NativeRuntimeStats s;
            Errors.Check(NativeMethods.ctrlchan_runtime_get_stats(Handle, out s), "ctrlchan_runtime_get_stats", "ControlChannelRuntime");
            return new ControlChannelRuntimeStatistics(s);
        }

        /// <summary>
        /// Pull API: the next event from the runtime's queue -- the events of sockets and channels
        /// nothing listens to (see the class remarks) -- or null when none arrives within
        /// <paramref name="timeout"/> (<see cref="Timeout.InfiniteTimeSpan"/> waits until one does).
        /// Events come out in the order they happened, each once; the queue drops nothing.
        /// Must not be called from an event handler.
        /// </summary>
        public ControlChannelEventArgs NextEvent(TimeSpan timeout)
        {
            ThrowIfDisposed();
            if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
                throw new ArgumentOutOfRangeException("timeout", "timeout must not be negative");
            if (Callbacks.InCallback)
                throw new InvalidOperationException("NextEvent cannot be called from inside an event handler (it would wait for the thread it runs on)");
            Stopwatch sw = Stopwatch.StartNew();
            while (true)
            {
                // Wait natively in slices: a call in flight keeps the runtime handle alive, so
                // a Dispose on another thread frees the runtime at the end of the slice at the latest.
                uint slice = NextEventSliceMs;
                if (timeout != Timeout.InfiniteTimeSpan)
                {
                    TimeSpan left = timeout - sw.Elapsed;
                    slice = left <= TimeSpan.Zero ? 0 : (uint)Math.Min(NextEventSliceMs, Math.Ceiling(left.TotalMilliseconds));
                }
                IntPtr p;
                CtrlChanResult r;
                try
                {
                    r = NativeMethods.ctrlchan_runtime_next_event(Handle, slice, out p);
                }
                catch (ObjectDisposedException)
                {
                    throw new ObjectDisposedException("ControlChannelRuntime");
                }
                if (r == CtrlChanResult.Ok && p != IntPtr.Zero) return ReadQueuedEvent(p);
                if (_disposed) throw new ObjectDisposedException("ControlChannelRuntime");
                if (r != CtrlChanResult.Timeout) Errors.Check(r, "ctrlchan_runtime_next_event", "ControlChannelRuntime");
                if (slice == 0 && timeout != Timeout.InfiniteTimeSpan) return null;
            }
        }

        private const uint NextEventSliceMs = 50;

        /// <summary>Copies out (and frees) an event taken from the native queue.</summary>
        private static ControlChannelEventArgs ReadQueuedEvent(IntPtr p)
        {
            using (CtrlChanHandle.Wrap<EventHandle>(p))
            {
                ControlChannelEventArgs args = Callbacks.ReadEvent(p);
                args.WebSocket = Registry.Lookup<WebSocketBase>(NativeMethods.ctrlchan_event_get_websocket(p));
                args.Channel = Registry.Lookup<ControlChannelTrigger>(NativeMethods.ctrlchan_event_get_channel(p));
                return args;
            }
        }

        /// <summary>
        /// Raises one event that a native handler received (on the runtime thread) on exactly one
        /// .NET event. <paramref name="viaChannel"/>: the core gave it to the channel's handler, so
        /// the channel's event for its kind comes first, then the transport socket's; otherwise it
        /// went to the socket's handler and only the socket's events apply.
        /// </summary>
        internal void Dispatch(ControlChannelEventArgs args, WebSocketBase ws, ControlChannelTrigger ch, bool viaChannel)
        {
            if (ws != null && ws.IsDisposed) ws = null;
            if (ch != null && ch.IsDisposed) ch = null;
            args.WebSocket = ws;
            args.Channel = ch;
            ControlChannelTrigger first = viaChannel ? ch : null;
            switch (args.Kind)
            {
                case ControlChannelEventKind.PushNotification:
                    if (first != null && first.OnPushNotification(args)) return;
                    if (ws != null) ws.OnData(args);
                    break;
                case ControlChannelEventKind.KeepAlive:
                    if (first != null) first.OnKeepAlive(args);
                    break;
                case ControlChannelEventKind.Closed:
                    if (ws != null) ws.OnClosed(args);
                    break;
                case ControlChannelEventKind.TransportDisconnected:
                    if (ws != null) ws.OnTransportLost(args);   // ends a pending connect and the input stream
                    if (first != null && first.OnTransportDisconnected(args)) return;
                    if (ws != null) ws.OnDisconnected(args);
                    break;
                case ControlChannelEventKind.Connected:
                case ControlChannelEventKind.ConnectFailed:
                    if (ws != null) ws.OnConnectResult(args);
                    break;
                case ControlChannelEventKind.Reset:
                    if (first != null) first.OnReset(args);
                    break;
                case ControlChannelEventKind.Reconnecting:
                    // The same socket reconnects: a StreamWebSocket's InputStream stays open.
                    if (first != null) first.OnReconnecting(args);
                    break;
                case ControlChannelEventKind.IntervalChanged:
                    if (first != null) first.OnIntervalChanged(args);
                    break;
            }
        }

        internal void ReportCallbackException(Exception ex, ControlChannelEventArgs ev)
        {
            Interlocked.Increment(ref _unhandledCount);
            Volatile.Write(ref _lastUnhandled, ex);
            EventHandler<CallbackExceptionEventArgs> h = UnhandledException;
            if (h == null) return;
            var args = new CallbackExceptionEventArgs(ex, ev);
            foreach (Delegate d in h.GetInvocationList())
            {
                try { ((EventHandler<CallbackExceptionEventArgs>)d)(this, args); }
                catch (Exception) { /* an exception handler that throws is ignored */ }
            }
        }

        // ---- children -------------------------------------------------------------

        internal long AddChild(IDisposable child)
        {
            long id = Interlocked.Increment(ref _nextChildId);
            _children[id] = new WeakReference(child);
            if (_children.Count > Volatile.Read(ref _pruneAt))
            {
                foreach (var kv in _children)
                {
                    if (!kv.Value.IsAlive)
                    {
                        WeakReference ignored;
                        _children.TryRemove(kv.Key, out ignored);
                    }
                }
                Volatile.Write(ref _pruneAt, Math.Max(1024, _children.Count * 2));
            }
            return id;
        }

        internal void RemoveChild(long id)
        {
            WeakReference ignored;
            _children.TryRemove(id, out ignored);
        }

        /// <summary>Live child wrappers tracked (diagnostics).</summary>
        internal int ChildCount { get { return _children.Count; } }

        internal void ThrowIfDisposed()
        {
            if (_disposed) throw new ObjectDisposedException("ControlChannelRuntime");
        }

        /// <summary>
        /// Disposes every socket and channel created on this runtime, then stops the runtime
        /// and joins its thread. Idempotent. Throws InvalidOperationException when called from
        /// inside an event handler (the runtime cannot join the thread the handler runs on).
        /// </summary>
        public void Dispose()
        {
            if (_disposed) return;
            if (Callbacks.InCallback)
                throw new InvalidOperationException("a ControlChannelRuntime cannot be disposed from inside an event handler");
            lock (_disposeLock)
            {
                if (_disposed) return;
                _disposed = true;
            }
            foreach (var kv in _children)
            {
                var child = kv.Value.Target as IDisposable;
                if (child == null) continue;
                try { child.Dispose(); } catch (Exception) { }
            }
            _children.Clear();
            Handle.Dispose();
            WeakReference ignored;
            s_runtimes.TryRemove(_id, out ignored);
        }
    }

    internal static class Time
    {
        /// <summary>TimeSpan -> whole milliseconds within [min, max], else ArgumentOutOfRangeException.</summary>
        internal static uint ToMilliseconds(TimeSpan value, TimeSpan min, TimeSpan max, string paramName)
        {
            if (value < min || value > max)
                throw new ArgumentOutOfRangeException(paramName, value,
                    string.Format("must be between {0} ms and {1} ms", (long)min.TotalMilliseconds, (long)max.TotalMilliseconds));
            return (uint)(value.Ticks / TimeSpan.TicksPerMillisecond);
        }
    }
}
