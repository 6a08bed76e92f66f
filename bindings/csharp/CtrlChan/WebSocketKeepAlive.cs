using System;

namespace CtrlChan
{
    /// <summary>
    /// Windows.Networking.Sockets.WebSocketKeepAlive: the RFC 6455 keep-alive task. Assign it
    /// to <see cref="ControlChannelTrigger.KeepAliveTask"/> (the Windows equivalent of registering
    /// it as the TaskEntryPoint of the channel's KeepAliveTrigger); the runtime then runs it on
    /// schedule. <see cref="Run"/> sends one keep-alive now.
    /// </summary>
    public sealed class WebSocketKeepAlive : IDisposable
    {
        /// <summary>Shortest pong timeout (10 ms).</summary>
        public static readonly TimeSpan MinPongTimeout = TimeSpan.FromMilliseconds(10);
        /// <summary>Longest pong timeout (24 h).</summary>
        public static readonly TimeSpan MaxPongTimeout = TimeSpan.FromHours(24);

        internal readonly KeepAliveHandle Handle;
        private volatile bool _disposed;

        /// <summary>A Ping-mode task with a 5 s pong timeout.</summary>
        public WebSocketKeepAlive()
        {
            IntPtr p;
            Errors.Check(NativeMethods.ctrlchan_keepalive_new(out p), "ctrlchan_keepalive_new");
            Handle = CtrlChanHandle.Wrap<KeepAliveHandle>(p);
        }

        public bool IsDisposed { get { return _disposed; } }

        internal void ThrowIfDisposed()
        {
            if (_disposed) throw new ObjectDisposedException("WebSocketKeepAlive");
        }

        /// <summary>Ping (default; detects dead peers) or UnsolicitedPong (one-way heartbeat).</summary>
        public KeepAliveMode Mode
        {
            get
            {
                ThrowIfDisposed();
                KeepAliveMode m;
                Errors.Check(NativeMethods.ctrlchan_keepalive_get_mode(Handle, out m), "ctrlchan_keepalive_get_mode", "WebSocketKeepAlive");
                return m;
            }
            set
            {
                if (value != KeepAliveMode.Ping && value != KeepAliveMode.UnsolicitedPong)
                    throw new ArgumentOutOfRangeException("value", value, "unknown KeepAliveMode");
                ThrowIfDisposed();
                Errors.Check(NativeMethods.ctrlchan_keepalive_set_mode(Handle, value), "ctrlchan_keepalive_set_mode", "WebSocketKeepAlive");
            }
        }

        /// <summary>Ping mode: how long to wait for the matching Pong before the transport is torn
        /// down (TransportDisconnected). 10 ms … 24 h, default 5 s.</summary>
        public TimeSpan PongTimeout
        {
            get
            {
                ThrowIfDisposed();
                uint ms;
                Errors.Check(NativeMethods.ctrlchan_keepalive_get_pong_timeout(Handle, out ms), "ctrlchan_keepalive_get_pong_timeout", "WebSocketKeepAlive");
                return TimeSpan.FromMilliseconds(ms);
            }
            set
            {
                uint ms = Time.ToMilliseconds(value, MinPongTimeout, MaxPongTimeout, "value");
                ThrowIfDisposed();
                Errors.Check(NativeMethods.ctrlchan_keepalive_set_pong_timeout(Handle, ms), "ctrlchan_keepalive_set_pong_timeout", "WebSocketKeepAlive");
            }
        }

        /// <summary>IBackgroundTask.Run: sends one keep-alive on the channel's transport now.</summary>
        public void Run(ControlChannelTrigger channel)
        {
            if (channel == null) throw new ArgumentNullException("channel");
            ThrowIfDisposed();
            channel.ThrowIfDisposed();
            Errors.Check(NativeMethods.ctrlchan_keepalive_run(Handle, channel.Handle), "ctrlchan_keepalive_run", "WebSocketKeepAlive");
        }

        /// <summary>Frees this task object; a channel it was assigned to keeps its own reference.</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            Handle.Dispose();
        }
    }
}
