// One SafeHandle subclass per native handle type (wasmtime-dotnet pattern).
//
// A child handle (websocket, channel) holds a reference on its runtime's handle
// (DangerousAddRef), so even when everything becomes garbage at once and the GC
// finalizes handles in arbitrary order, ctrlchan_runtime_free runs after the last
// ctrlchan_websocket_free / ctrlchan_channel_free of that runtime.
using System;
using System.Runtime.InteropServices;

namespace CtrlChan
{
    internal abstract class CtrlChanHandle : SafeHandle
    {
        private SafeHandle _parent;

        protected CtrlChanHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        /// <summary>Takes ownership of a pointer a ctrlchan_*_new call returned.</summary>
        internal static T Wrap<T>(IntPtr p) where T : CtrlChanHandle, new()
        {
            var h = new T();
            h.SetHandle(p);
            return h;
        }

        /// <summary>Keeps <paramref name="parent"/> alive until this handle is released.</summary>
        internal void SetParent(SafeHandle parent)
        {
            bool added = false;
            parent.DangerousAddRef(ref added);
            if (added) _parent = parent;
        }

        protected abstract void Free(IntPtr h);

        protected override bool ReleaseHandle()
        {
            try
            {
                Registry.Unregister(handle);
                Free(handle);
            }
            finally
            {
                SafeHandle p = _parent;
                _parent = null;
                if (p != null) p.DangerousRelease();
            }
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
