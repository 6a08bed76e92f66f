// Public enumerations. Names and numeric values mirror Windows.Networking.Sockets and
// the C enums in include/ctrlchan.h (values are part of the ABI and never change).
namespace CtrlChan
{
    /// <summary>Result codes of the C ABI (<c>ctrlchan_result</c>).</summary>
    public enum CtrlChanResult : uint
    {
        Ok = 0,
        InvalidArgument = 1,
        InvalidHandle = 2,
        InvalidState = 3,
        Timeout = 4,
        ConnectFailed = 5,
        TlsFailed = 6,
        HandshakeFailed = 7,
        Closed = 8,
        MessageTooLarge = 9,
        BufferFull = 10,
        Io = 11,
        Policy = 12,
        Panic = 13,
        /// <summary>The proxy refused the tunnel, needs other credentials, or is unreachable.</summary>
        ProxyFailed = 14,
        /// <summary>Reserved for the event queue limit's diagnostics (events are never dropped).</summary>
        QueueFull = 15,
    }

    /// <summary>Windows.Networking.Sockets.ControlChannelTriggerResourceType.</summary>
    public enum ControlChannelTriggerResourceType : uint
    {
        /// <summary>Keep-alives are sent by the ctrlchan runtime.</summary>
        RequestSoftwareSlot = 0,
        /// <summary>Additionally arms kernel TCP keep-alive and TCP_USER_TIMEOUT.</summary>
        RequestHardwareSlot = 1,
    }

    /// <summary>Windows.Networking.Sockets.ControlChannelTriggerStatus.</summary>
    public enum ControlChannelTriggerStatus : uint
    {
        HardwareSlotRequested = 0,
        SoftwareSlotAllocated = 1,
        HardwareSlotAllocated = 2,
        PolicyError = 3,
        SystemError = 4,
        TransportDisconnected = 5,
        ServiceUnavailable = 6,
    }

    /// <summary>Windows.Networking.Sockets.SocketMessageType (Windows order: Binary first).</summary>
    public enum SocketMessageType : uint
    {
        Binary = 0,
        Utf8 = 1,
    }

    /// <summary>How a <see cref="WebSocketKeepAlive"/> task keeps the connection alive.</summary>
    public enum KeepAliveMode : uint
    {
        /// <summary>RFC 6455 Ping with a unique payload; a missing Pong within PongTimeout tears the transport down.</summary>
        Ping = 0,
        /// <summary>RFC 6455 §5.5.3 unsolicited Pong: a one-way heartbeat, no liveness check.</summary>
        UnsolicitedPong = 1,
    }

    /// <summary>Kind of a ctrlchan event (<c>ctrlchan_event_kind</c>).</summary>
    public enum ControlChannelEventKind : uint
    {
        /// <summary>A message arrived (the Windows PushNotificationTrigger).</summary>
        PushNotification = 0,
        /// <summary>A keep-alive completed (in Ping mode: its Pong arrived; RoundTripTime is set).</summary>
        KeepAlive = 1,
        /// <summary>The close handshake completed (CloseCode, Reason).</summary>
        Closed = 2,
        /// <summary>The transport was lost without a close handshake (EOF, reset, I/O error, pong timeout).</summary>
        TransportDisconnected = 3,
        Connected = 4,
        ConnectFailed = 5,
        /// <summary>The channel has a fresh transport: the app gave it a new socket (UsingTransport), or the
        /// reconnect policy reconnected it (see <see cref="ControlChannelEventArgs.ResetReason"/>).</summary>
        Reset = 6,
        /// <summary>The transport was lost (or a reconnect attempt failed) and the reconnect policy will try
        /// again after <see cref="ControlChannelEventArgs.Delay"/> (Attempt counts from 1; Result / Reason give the cause).</summary>
        Reconnecting = 7,
        /// <summary>Adaptive keep-alive moved the network interval (<see cref="ControlChannelEventArgs.KeepAliveInterval"/>).</summary>
        IntervalChanged = 8,
    }

    /// <summary>Windows.Networking.Sockets.ControlChannelTriggerResetReason (same values), plus
    /// ctrlchan's own reasons from 16 on (<c>ctrlchan_reset_reason</c>).</summary>
    public enum ControlChannelTriggerResetReason : uint
    {
        /// <summary>Windows only; never raised on Linux.</summary>
        FastUserSwitched = 0,
        /// <summary>The loss was found by the probe after the machine resumed from suspend.</summary>
        LowPowerExit = 1,
        /// <summary>Windows only; never raised on Linux.</summary>
        QuietHoursExit = 2,
        /// <summary>Windows only; never raised on Linux.</summary>
        ApplicationRestart = 3,
        /// <summary>The application bound a new socket with <see cref="ControlChannelTrigger.UsingTransport"/>.</summary>
        NewTransport = 16,
        /// <summary>The reconnect policy reconnected the same socket after a loss.</summary>
        Reconnected = 17,
        /// <summary>The loss was found by the probe after an address, link or route change.</summary>
        NetworkChanged = 18,
    }

    /// <summary>
    /// Which events a channel or socket produces (<c>1u &lt;&lt; ctrlchan_event_kind</c>, see
    /// <see cref="ControlChannelTrigger.EventMask"/>). A masked-out event is never created natively.
    /// </summary>
    [System.Flags]
    public enum EventMask : uint
    {
        None = 0,
        PushNotification = 1u << 0,
        KeepAlive = 1u << 1,
        Closed = 1u << 2,
        TransportDisconnected = 1u << 3,
        Connected = 1u << 4,
        ConnectFailed = 1u << 5,
        Reset = 1u << 6,
        Reconnecting = 1u << 7,
        IntervalChanged = 1u << 8,
        /// <summary>Every event kind, including kinds added later (<c>CTRLCHAN_EVENT_MASK_ALL</c>).</summary>
        All = 0xFFFFFFFFu,
        /// <summary>Everything but KeepAlive acknowledgements (<c>CTRLCHAN_EVENT_MASK_DEFAULT</c>), the native default.</summary>
        Default = All & ~KeepAlive,
    }

    /// <summary>Connection state of a web socket (<c>ctrlchan_websocket_state</c>).</summary>
    public enum WebSocketConnectionState : uint
    {
        New = 0,
        Connecting = 1,
        Open = 2,
        Closing = 3,
        Closed = 4,
    }

    internal enum WebSocketKind : uint
    {
        Message = 0,
        Stream = 1,
    }
}
