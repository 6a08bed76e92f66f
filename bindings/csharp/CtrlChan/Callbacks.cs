// Native -> managed event delivery.
//
// Every socket and every channel registers ONE native event handler whose userdata is
// a *weak* GCHandle to the managed object. Weak, because a strong handle held by native
// code would keep the object (and so its native handle) alive forever: a dropped socket
// could never be collected. The handle is freed by the native finalizer callback, which
// the library calls exactly once when it drops the userdata.
//
// The native library routes an event to the channel's handler when the socket is a
// channel's transport, else to the socket's handler. Either way the dispatcher resolves
// BOTH managed objects from the borrowed pointers in the event (Registry) and raises the
// socket-level .NET events on the socket and the channel-level ones on the channel.
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
                WebSocketBase ws = Registry.Lookup<WebSocketBase>(NativeMethods.ctrlchan_event_get_websocket(ev))
                                   ?? target as WebSocketBase;
                ControlChannelTrigger ch = Registry.Lookup<ControlChannelTrigger>(NativeMethods.ctrlchan_event_get_channel(ev))
                                   ?? target as ControlChannelTrigger;
                runtime = ws != null ? ws.Runtime : ch != null ? ch.Runtime : null;
                if (runtime == null) return;
                runtime.Dispatch(args, ws, ch);
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
