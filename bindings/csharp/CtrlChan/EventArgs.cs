using System;
using System.IO;

namespace CtrlChan
{
    /// <summary>Windows.Foundation.TypedEventHandler: the sender is strongly typed.</summary>
    public delegate void TypedEventHandler<TSender, TResult>(TSender sender, TResult args);

    /// <summary>
    /// Details of one ctrlchan event, copied out of the native event before any handler
    /// runs (so it stays valid after the handler returns). Every specific event-args type
    /// derives from this one; <see cref="ControlChannelRuntime.NextEvent"/> returns it.
    /// </summary>
    public class ControlChannelEventArgs : EventArgs
    {
        private readonly byte[] _data;

        internal ControlChannelEventArgs(ControlChannelEventArgs other)
            : this(other.Kind, other.ChannelId, other.MessageType, other._data, other.CloseCode, other.Reason, other.RoundTripTime)
        {
            Channel = other.Channel;
            WebSocket = other.WebSocket;
            Result = other.Result;
            Attempt = other.Attempt;
            Delay = other.Delay;
            ResetReason = other.ResetReason;
            KeepAliveInterval = other.KeepAliveInterval;
        }

        internal ControlChannelEventArgs(ControlChannelEventKind kind, string channelId, SocketMessageType messageType,
                                         byte[] data, ushort closeCode, string reason, TimeSpan rtt)
        {
            Kind = kind;
            ChannelId = channelId ?? "";
            MessageType = messageType;
            _data = data ?? new byte[0];
            CloseCode = closeCode;
            Reason = reason ?? "";
            RoundTripTime = rtt;
        }

        public ControlChannelEventKind Kind { get; private set; }
        /// <summary>Id of the channel the event belongs to, "" if the socket is not bound to a channel.</summary>
        public string ChannelId { get; private set; }
        /// <summary>The channel object, when it is still alive (null otherwise).</summary>
        public ControlChannelTrigger Channel { get; internal set; }
        /// <summary>The socket object, when it is still alive (null otherwise).</summary>
        public IWebSocket WebSocket { get; internal set; }
        /// <summary>Frame type of a PushNotification.</summary>
        public SocketMessageType MessageType { get; private set; }
        /// <summary>Close code of a Closed event (0 for other kinds).</summary>
        public ushort CloseCode { get; private set; }
        /// <summary>Close reason, or the failure detail of TransportDisconnected / ConnectFailed; "" if none.</summary>
        public string Reason { get; private set; }
        /// <summary>Round-trip time of a KeepAlive in Ping mode (zero otherwise).</summary>
        public TimeSpan RoundTripTime { get; private set; }
        /// <summary>The cause of a ConnectFailed / TransportDisconnected / Closed event as a result
        /// code (for example TlsFailed, HandshakeFailed, Timeout, Io, MessageTooLarge); Ok otherwise.</summary>
        public CtrlChanResult Result { get; internal set; }
        /// <summary>Reconnecting: the attempt this event announces, from 1 (0 for other kinds).</summary>
        public uint Attempt { get; internal set; }
        /// <summary>Reconnecting: the wait before this attempt (zero for other kinds).</summary>
        public TimeSpan Delay { get; internal set; }
        /// <summary>Reset: why the channel has a fresh transport (NewTransport for other kinds).</summary>
        public ControlChannelTriggerResetReason ResetReason { get; internal set; }
        /// <summary>IntervalChanged: the new network keep-alive interval (zero for other kinds).</summary>
        public TimeSpan KeepAliveInterval { get; internal set; }

        /// <summary>Length of the message payload in bytes.</summary>
        public int DataLength { get { return _data.Length; } }

        /// <summary>A copy of the message payload.</summary>
        public byte[] GetDataBytes() { return (byte[])_data.Clone(); }

        /// <summary>The payload decoded as UTF-8.</summary>
        public string GetDataString() { return Utf8.DecodeBytes(_data); }

        /// <summary>The payload as a read-only stream.</summary>
        public Stream GetDataStream() { return new MemoryStream(_data, false); }

        public override string ToString()
        {
            switch (Kind)
            {
                case ControlChannelEventKind.PushNotification:
                    return string.Format("PushNotification({0}, {1} bytes, {2})", ChannelId, _data.Length, MessageType);
                case ControlChannelEventKind.KeepAlive:
                    return string.Format("KeepAlive({0}, rtt {1:F3} ms)", ChannelId, RoundTripTime.TotalMilliseconds);
                case ControlChannelEventKind.Closed:
                    return string.Format("Closed({0}, {1} {2})", ChannelId, CloseCode, Reason);
                case ControlChannelEventKind.Reconnecting:
                    return string.Format("Reconnecting({0}, attempt {1} in {2} ms, {3}{4})", ChannelId, Attempt,
                                         (long)Delay.TotalMilliseconds, Result, Reason.Length > 0 ? ": " + Reason : "");
                case ControlChannelEventKind.Reset:
                    return string.Format("Reset({0}, {1})", ChannelId, ResetReason);
                default:
                    return string.Format("{0}({1}{2})", Kind, ChannelId, Reason.Length > 0 ? ", " + Reason : "");
            }
        }
    }

    /// <summary>Windows.Networking.Sockets.MessageWebSocketMessageReceivedEventArgs.</summary>
    public sealed class MessageWebSocketMessageReceivedEventArgs : ControlChannelEventArgs
    {
        internal MessageWebSocketMessageReceivedEventArgs(ControlChannelEventArgs e) : base(e) { }
        /// <summary>Always true: ctrlchan delivers whole messages.</summary>
        public bool IsMessageComplete { get { return true; } }
    }

    /// <summary>Data received on a <see cref="StreamWebSocket"/>.</summary>
    public sealed class StreamWebSocketDataReceivedEventArgs : ControlChannelEventArgs
    {
        internal StreamWebSocketDataReceivedEventArgs(ControlChannelEventArgs e) : base(e) { }
    }

    /// <summary>Windows.Networking.Sockets.WebSocketClosedEventArgs.</summary>
    public sealed class WebSocketClosedEventArgs : ControlChannelEventArgs
    {
        internal WebSocketClosedEventArgs(ControlChannelEventArgs e) : base(e) { }
        /// <summary>The close code from the peer's close frame.</summary>
        public ushort Code { get { return CloseCode; } }
    }

    /// <summary>A socket lost its transport without a close handshake.</summary>
    public sealed class WebSocketDisconnectedEventArgs : ControlChannelEventArgs
    {
        internal WebSocketDisconnectedEventArgs(ControlChannelEventArgs e) : base(e) { }
    }

    /// <summary>A message arrived on a channel's transport (the Windows PushNotificationTrigger).</summary>
    public sealed class PushNotificationEventArgs : ControlChannelEventArgs
    {
        internal PushNotificationEventArgs(ControlChannelEventArgs e) : base(e) { }
    }

    /// <summary>A keep-alive of a channel completed; <see cref="ControlChannelEventArgs.RoundTripTime"/> is set in Ping mode.</summary>
    public sealed class KeepAliveCompletedEventArgs : ControlChannelEventArgs
    {
        internal KeepAliveCompletedEventArgs(ControlChannelEventArgs e) : base(e) { }
    }

    /// <summary>A channel's transport was lost (EOF, reset, I/O error, pong timeout: see Reason).</summary>
    public sealed class TransportDisconnectedEventArgs : ControlChannelEventArgs
    {
        internal TransportDisconnectedEventArgs(ControlChannelEventArgs e) : base(e) { }
    }

    /// <summary>A channel has a fresh transport: <see cref="ControlChannelEventArgs.ResetReason"/> says why
    /// (NewTransport after UsingTransport, Reconnected / NetworkChanged / LowPowerExit after the
    /// reconnect policy reconnected the same socket).</summary>
    public sealed class ChannelResetEventArgs : ControlChannelEventArgs
    {
        internal ChannelResetEventArgs(ControlChannelEventArgs e) : base(e) { }
    }

    /// <summary>A channel's transport was lost (or a reconnect attempt failed) and its reconnect policy
    /// tries again after <see cref="ControlChannelEventArgs.Delay"/>; <see cref="ControlChannelEventArgs.Attempt"/>
    /// counts from 1, <see cref="ControlChannelEventArgs.Result"/> and <see cref="ControlChannelEventArgs.Reason"/>
    /// give the cause.</summary>
    public sealed class ReconnectingEventArgs : ControlChannelEventArgs
    {
        internal ReconnectingEventArgs(ControlChannelEventArgs e) : base(e) { }
    }

    /// <summary>An exception thrown by an event handler, caught on the runtime thread.</summary>
    public sealed class CallbackExceptionEventArgs : EventArgs
    {
        internal CallbackExceptionEventArgs(Exception exception, ControlChannelEventArgs ev)
        {
            Exception = exception;
            Event = ev;
        }
        public Exception Exception { get; private set; }
        /// <summary>The exception, named as in System.UnhandledExceptionEventArgs.</summary>
        public object ExceptionObject { get { return Exception; } }
        /// <summary>Always false: the process keeps running.</summary>
        public bool IsTerminating { get { return false; } }
        /// <summary>The event whose handler threw (null if it happened outside a handler).</summary>
        public ControlChannelEventArgs Event { get; private set; }
    }
}
