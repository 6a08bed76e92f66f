// Native -> managed event delivery: one policy, the core's.
//
// The core routes each event to exactly one place, the first that applies: (a) the channel's
// native handler, if the websocket is a channel's transport and that channel has one; (b) the
// websocket's native handler; (c) the runtime queue, read with ControlChannelRuntime.NextEvent.
// The binding adds no queue of its own and drops nothing.
//
// A channel or socket installs its native handler only while something managed listens to it
// (NativeListener): a subscriber on any of its .NET events; for a socket also a pending
// ConnectAsync or an open StreamWebSocket.InputStream. The handler is installed on the first
// `+=` and removed when the last subscriber leaves, so the events of an object nobody listens
// to stay in the native queue.
//
// An event that reaches a channel's handler is raised on the channel's .NET event for its kind
// when that has subscribers, otherwise on the transport socket's (the socket's events of a
// channel's transport all arrive through the channel's handler while it is installed). An event
// that reaches a socket's handler is raised on the socket's .NET event. Exactly one .NET event
// is raised per native event; a kind nobody subscribed to on a listening object is not raised
// (a native handler that ignores a kind does the same).
//
// The handler's userdata is a *weak* GCHandle to the managed object. Weak, because a strong
// handle held by native code would keep the object (and so its native handle) alive forever: a
// dropped socket could never be collected. The handle is freed by the native finalizer callback,
// which the library calls exactly once when it drops the userdata.
//
// Handlers run on the runtime thread. No managed exception ever unwinds into native code:
// everything below the native entry points is wrapped in try/catch, and an exception
// thrown by user code is reported through ControlChannelRuntime.UnhandledException.
using System;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Threading;

namespace CtrlChan
{
    /// <summary>Native handle value -> live managed wrapper (weak).</summary>
    internal static class Registry
    {
        private static readonly ConcurrentDictionary<IntPtr, WeakReference> s_objects =
            new ConcurrentDictionary<IntPtr, WeakReference>();

        internal static void Register(IntPtr h, object o)
        {
            if (h != IntPtr.Zero) s_objects[h] = new WeakReference(o);
        }

        internal static void Unregister(IntPtr h)
        {
            WeakReference ignored;
            if (h != IntPtr.Zero) s_objects.TryRemove(h, out ignored);
        }

        internal static T Lookup<T>(IntPtr h) where T : class
        {
            if (h == IntPtr.Zero) return null;
            WeakReference w;
            return s_objects.TryGetValue(h, out w) ? w.Target as T : null;
        }

        internal static int Count { get { return s_objects.Count; } }
    }

    /// <summary>
    /// Keeps one channel's or socket's native event handler installed exactly while something
    /// managed listens to it (see the file comment). Every change to what the owner listens to
    /// goes through <see cref="Subscribe{T}"/>, <see cref="Unsubscribe{T}"/> or <see cref="Sync"/>,
    /// which compare the owner's wish with what is installed, under one lock per object.
    /// </summary>
    internal sealed class NativeListener
    {
        internal delegate CtrlChanResult SetHandler(NativeEventCallback cb, IntPtr userdata, NativeUserdataFinalizer finalizer);

        private readonly object _lock = new object();
        private readonly object _owner;
        private readonly Func<bool> _wanted;
        private readonly SetHandler _set;
        private readonly string _function;
        private readonly string _typeName;
        private IntPtr _userdata;   // non-zero while the native handler is installed
        private bool _closed;

        internal NativeListener(object owner, Func<bool> wanted, SetHandler set, string function, string typeName)
        {
            _owner = owner;
            _wanted = wanted;
            _set = set;
            _function = function;
            _typeName = typeName;
        }

        /// <summary>True while the native handler is installed (tests).</summary>
        internal bool IsInstalled { get { lock (_lock) return _userdata != IntPtr.Zero; } }

        /// <summary>`field += value`, installing the native handler if this is the first listener.
        /// If the handler cannot be installed the subscription is undone and the error thrown.</summary>
        internal void Subscribe<T>(ref T field, T value) where T : class
        {
            if (value == null) return;
            lock (_lock)
            {
                T old = field;
                Volatile.Write(ref field, (T)(object)Delegate.Combine((Delegate)(object)old, (Delegate)(object)value));
                try
                {
                    SyncLocked(true);
                }
                catch
                {
                    Volatile.Write(ref field, old);
                    throw;
                }
            }
        }

        /// <summary>`field -= value`, removing the native handler if nothing listens any more.</summary>
        internal void Unsubscribe<T>(ref T field, T value) where T : class
        {
            if (value == null) return;
            lock (_lock)
            {
                Volatile.Write(ref field, (T)(object)Delegate.Remove((Delegate)(object)field, (Delegate)(object)value));
                SyncLocked(false);
            }
        }

        /// <summary>Re-evaluates after a change that is not a subscription (a pending connect, an
        /// input stream). <paramref name="throwOnError"/>: when installing fails, throw.</summary>
        internal void Sync(bool throwOnError = false)
        {
            lock (_lock) SyncLocked(throwOnError);
        }

        /// <summary>The native handle is being freed (that releases the handler): never touch it again.</summary>
        internal void Close()
        {
            lock (_lock)
            {
                _closed = true;
                _userdata = IntPtr.Zero;
            }
        }

        private void SyncLocked(bool throwOnError)
        {
            if (_closed) return;
            bool wanted = _wanted();
            if (wanted == (_userdata != IntPtr.Zero)) return;
            CtrlChanResult r;
            if (wanted)
            {
                IntPtr userdata = Callbacks.AllocUserdata(_owner);
                try
                {
                    r = _set(Callbacks.EventCallback, userdata, Callbacks.Finalizer);
                }
                catch (ObjectDisposedException)
                {
                    // Disposed on another thread at this moment: nothing to install any more.
                    Callbacks.FreeUserdata(userdata);
                    return;
                }
                if (r != CtrlChanResult.Ok)
                {
                    Exception ex = Errors.Create(r, Errors.LastError(), _function, _typeName);
                    Callbacks.FreeUserdata(userdata);   // on failure the caller keeps the userdata
                    if (throwOnError) throw ex;
                    return;
                }
                _userdata = userdata;
            }
            else
            {
                // The library calls the finalizer for the old userdata (after a call in progress returns).
                _userdata = IntPtr.Zero;
                try { _set(null, IntPtr.Zero, null); }
                catch (ObjectDisposedException) { }
            }
        }
    }

    internal static class Callbacks
    {
        // Kept in static readonly fields: the native library holds these function
        // pointers for as long as any handler is registered.
        internal static readonly NativeEventCallback EventCallback = OnEvent;
        internal static readonly NativeUserdataFinalizer Finalizer = OnFinalize;

        private static readonly ConcurrentDictionary<IntPtr, byte> s_live = new ConcurrentDictionary<IntPtr, byte>();
        private static long s_finalized;

        [ThreadStatic] private static int t_depth;
        [ThreadStatic] private static bool t_seen;

        /// <summary>True while the calling thread is inside a ctrlchan callback.</summary>
        internal static bool InCallback { get { return t_depth > 0; } }

        /// <summary>Userdata handles currently owned by native code (leak check in tests).</summary>
        internal static int LiveUserdata { get { return s_live.Count; } }
        internal static long FinalizedUserdata { get { return Interlocked.Read(ref s_finalized); } }

        internal static IntPtr AllocUserdata(object target)
        {
            GCHandle h = GCHandle.Alloc(target, GCHandleType.Weak);
            IntPtr p = GCHandle.ToIntPtr(h);
            s_live[p] = 0;
            return p;
        }

        /// <summary>Frees a userdata handle once; later calls with the same value do nothing.</summary>
        internal static void FreeUserdata(IntPtr p)
        {
            byte ignored;
            if (p != IntPtr.Zero && s_live.TryRemove(p, out ignored))
                GCHandle.FromIntPtr(p).Free();
        }

        private static void OnFinalize(IntPtr userdata)
        {
            MarkRuntimeThread();
            try
            {
                FreeUserdata(userdata);
                Interlocked.Increment(ref s_finalized);
            }
            catch (Exception)
            {
                // never unwind into native code
            }
        }

        /// <summary>
        /// A native runtime thread becomes a managed thread the first time it calls back. Mark it
        /// background: Mono otherwise counts it as a foreground thread and waits for it at exit.
        /// Finalizer callbacks can also run on the thread that frees a handle (any app thread),
        /// so only threads the library created (named "ctrlchan-...") are marked.
        /// </summary>
        private static void MarkRuntimeThread()
        {
            if (t_seen) return;
            t_seen = true;
            try
            {
                string comm = System.IO.File.ReadAllText("/proc/thread-self/comm").Trim();
                if (!comm.StartsWith("ctrlchan", StringComparison.Ordinal)) return;
                Thread t = Thread.CurrentThread;
                t.IsBackground = true;
                if (t.Name == null) t.Name = comm;
            }
            catch (Exception) { }
        }

        private static void OnEvent(IntPtr userdata, IntPtr ev)
        {
            MarkRuntimeThread();
            t_depth++;
            ControlChannelRuntime runtime = null;
            ControlChannelEventArgs args = null;
            try
            {
                if (ev == IntPtr.Zero || !s_live.ContainsKey(userdata)) return;
                object target = GCHandle.FromIntPtr(userdata).Target;
                if (target == null) return;   // wrapper already collected; its handle is being freed

                args = ReadEvent(ev);
                // The object whose handler the core chose decides the route; the other one is
                // looked up only to fill in the event's Channel / WebSocket.
                var viaChannel = target as ControlChannelTrigger;
                WebSocketBase ws = Registry.Lookup<WebSocketBase>(NativeMethods.ctrlchan_event_get_websocket(ev))
                                   ?? target as WebSocketBase;
                ControlChannelTrigger ch = viaChannel
                                   ?? Registry.Lookup<ControlChannelTrigger>(NativeMethods.ctrlchan_event_get_channel(ev));
                runtime = ws != null ? ws.Runtime : ch != null ? ch.Runtime : null;
                if (runtime == null) return;
                runtime.Dispatch(args, ws, ch, viaChannel != null);
            }
            catch (Exception ex)
            {
                try { if (runtime != null) runtime.ReportCallbackException(ex, args); }
                catch (Exception) { }
            }
            finally
            {
                t_depth--;
            }
        }

        /// <summary>Copies everything out of a (borrowed or owned) native event.</summary>
        internal static ControlChannelEventArgs ReadEvent(IntPtr ev)
        {
            ControlChannelEventKind kind = NativeMethods.ctrlchan_event_get_kind(ev);
            string channelId = Utf8.Decode(NativeMethods.ctrlchan_event_get_channel_id(ev));
            SocketMessageType type = SocketMessageType.Binary;
            byte[] data = null;
            ushort code = 0;
            TimeSpan rtt = TimeSpan.Zero;
            if (kind == ControlChannelEventKind.PushNotification)
            {
                type = NativeMethods.ctrlchan_event_get_message_type(ev);
                IntPtr p;
                UIntPtr len;
                if (NativeMethods.ctrlchan_event_get_data(ev, out p, out len) == CtrlChanResult.Ok)
                {
                    ulong n = len.ToUInt64();
                    if (n > int.MaxValue) throw new OverflowException("message larger than 2 GiB");
                    data = new byte[(int)n];
                    if (n > 0) Marshal.Copy(p, data, 0, (int)n);
                }
            }
            else if (kind == ControlChannelEventKind.Closed)
            {
                code = NativeMethods.ctrlchan_event_get_close_code(ev);
            }
            else if (kind == ControlChannelEventKind.KeepAlive)
            {
                ulong us = NativeMethods.ctrlchan_event_get_rtt_us(ev);
                rtt = TimeSpan.FromTicks((long)Math.Min(us, (ulong)(long.MaxValue / 10)) * 10);
            }
            string reason = Utf8.Decode(NativeMethods.ctrlchan_event_get_reason(ev));
            var args = new ControlChannelEventArgs(kind, channelId, type, data, code, reason, rtt);
            args.Result = NativeMethods.ctrlchan_event_get_result(ev);
            if (kind == ControlChannelEventKind.Reconnecting)
            {
                args.Attempt = NativeMethods.ctrlchan_event_get_attempt(ev);
                args.Delay = TimeSpan.FromMilliseconds(NativeMethods.ctrlchan_event_get_delay_ms(ev));
            }
            else if (kind == ControlChannelEventKind.Reset)
            {
                args.ResetReason = NativeMethods.ctrlchan_event_get_reset_reason(ev);
            }
            else if (kind == ControlChannelEventKind.IntervalChanged)
            {
                args.KeepAliveInterval = TimeSpan.FromMilliseconds(NativeMethods.ctrlchan_event_get_interval_ms(ev));
            }
            if (kind != ControlChannelEventKind.Reset) args.ResetReason = ControlChannelTriggerResetReason.NewTransport;
            return args;
        }

        /// <summary>Invokes each subscriber separately; a throwing subscriber is reported
        /// and does not stop the others. Returns false when there was no subscriber.</summary>
        internal static bool Raise<TSender, TArgs>(TypedEventHandler<TSender, TArgs> handler, TSender sender, TArgs args,
                                                   ControlChannelRuntime runtime, ControlChannelEventArgs ev)
        {
            if (handler == null) return false;
            foreach (Delegate d in handler.GetInvocationList())
            {
                try
                {
                    ((TypedEventHandler<TSender, TArgs>)d)(sender, args);
                }
                catch (Exception ex)
                {
                    runtime.ReportCallbackException(ex, ev);
                }
            }
            return true;
        }
    }
}
