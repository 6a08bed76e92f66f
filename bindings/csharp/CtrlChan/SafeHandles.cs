// One SafeHandle subclass per native handle type (wasmtime-dotnet pattern).
//
// Handles are released independently. The C ABI allows freeing a websocket or channel
// after its runtime (its handle stays a valid handle reporting INVALID_STATE/CLOSED until
// freed), so when the GC finalizes everything at once the order does not matter. A child
// must NOT hold a reference on the runtime's SafeHandle: a collected-but-not-yet-finalized
// child would then delay ctrlchan_runtime_free past ControlChannelRuntime.Dispose(), leaving
// the reactor thread running (and Mono waiting for it at exit).
using System;
using System.Runtime.InteropServices;

namespace CtrlChan
{
    internal abstract class CtrlChanHandle : SafeHandle
    {
        protected CtrlChanHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        /// <summary>Takes ownership of a pointer a ctrlchan_*_new call returned.</summary>
        internal static T Wrap<T>(IntPtr p) where T : CtrlChanHandle, new()
        {
            var h = new T();
            h.SetHandle(p);
            return h;
        }

        protected abstract void Free(IntPtr h);

        protected override bool ReleaseHandle()
        {
            Registry.Unregister(handle);
            Free(handle);
            return true;
        }
    }

    internal sealed class RuntimeHandle : CtrlChanHandle
    {
        public RuntimeHandle() { }
        protected override void Free(IntPtr h) { NativeMethods.ctrlchan_runtime_free(h); }
    }

    internal sealed class WebSocketHandle : CtrlChanHandle
    {
        public WebSocketHandle() { }
        protected override void Free(IntPtr h) { NativeMethods.ctrlchan_websocket_free(h); }
    }

    internal sealed class ChannelHandle : CtrlChanHandle
    {
        public ChannelHandle() { }
        protected override void Free(IntPtr h) { NativeMethods.ctrlchan_channel_free(h); }
    }

    internal sealed class KeepAliveHandle : CtrlChanHandle
    {
        public KeepAliveHandle() { }
        protected override void Free(IntPtr h) { NativeMethods.ctrlchan_keepalive_free(h); }
    }

    /// <summary>An owned event from ctrlchan_runtime_next_event (events passed to
    /// callbacks are borrowed and never wrapped).</summary>
    internal sealed class EventHandle : CtrlChanHandle
    {
        public EventHandle() { }
        protected override void Free(IntPtr h) { NativeMethods.ctrlchan_event_free(h); }
    }
}
