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
        /// <summary>The channel was given a new transport.</summary>
        Reset = 6,
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
