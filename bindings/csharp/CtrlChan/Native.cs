// P/Invoke declarations for the ctrlchan C ABI (include/ctrlchan.h).
//
// Rules kept here:
//  * [DllImport("ctrlchan")] without extension: Mono and .NET resolve libctrlchan.so
//    next to the assembly, through LD_LIBRARY_PATH, or from runtimes/<rid>/native/.
//  * Handles go in as SafeHandle subclasses, so a call in flight keeps the handle
//    alive even if another thread disposes the owning object at the same time.
//  * Strings go in as NUL-terminated UTF-8 byte arrays (Utf8.Encode), never through
//    the marshaller's string conversion; strings come out as IntPtr (owned by the
//    library) and are decoded with Utf8.Decode.
//  * Borrowed pointers (events passed to callbacks, ctrlchan_event_get_*) are IntPtr.
using System;
using System.Runtime.InteropServices;

namespace CtrlChan
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void NativeEventCallback(IntPtr userdata, IntPtr ev);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void NativeUserdataFinalizer(IntPtr userdata);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void NativeLogCallback(IntPtr userdata, uint level, IntPtr target, IntPtr message);

    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeRuntimeStats
    {
        public ulong Wakeups;
        public ulong KeepalivesSent;
        public ulong KeepalivesAcked;
        public ulong MessagesReceived;
        public ulong ConnectionsOpen;
        public ulong ChannelsActive;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeWebSocketStats
    {
        public ulong MessagesSent;
        public ulong MessagesReceived;
        public ulong BytesSent;
        public ulong BytesReceived;
    }

    /// <summary><c>struct ctrlchan_channel_stats</c> (same field order as the header).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeChannelStats
    {
        public ulong KeepalivesSent;
        public ulong KeepalivesAcked;
        public ulong Reconnects;
        public uint LastRttUs;
        public uint SrttUs;
        public uint RttvarUs;
        public uint CurrentIntervalMs;
    }

    /// <summary><c>struct ctrlchan_reconnect_policy</c> (same field order as the header).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeReconnectPolicy
    {
        public uint InitialDelayMs;
        public uint MaxDelayMs;
        public uint MultiplierPercent;
        public uint JitterPercent;
        public uint MaxAttempts;
    }

    internal static unsafe class NativeMethods
    {
        internal const string Lib = "ctrlchan";

        static NativeMethods() { NativeLibraryLoader.Initialize(); }   // finds libctrlchan (NativeLibraryLoader.cs)
        private const CallingConvention CC = CallingConvention.Cdecl;

        // ---- errors / meta -------------------------------------------------------
        [DllImport(Lib, CallingConvention = CC)] internal static extern IntPtr ctrlchan_last_error();
        [DllImport(Lib, CallingConvention = CC)] internal static extern IntPtr ctrlchan_result_name(CtrlChanResult r);
        [DllImport(Lib, CallingConvention = CC)] internal static extern IntPtr ctrlchan_version();

        // ---- runtime -------------------------------------------------------------
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_new(out IntPtr rt);
        [DllImport(Lib, CallingConvention = CC)] internal static extern void ctrlchan_runtime_free(IntPtr rt);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_next_event(RuntimeHandle rt, uint timeoutMs, out IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_event_fd(RuntimeHandle rt, out int fd);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_get_stats(RuntimeHandle rt, out NativeRuntimeStats stats);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_set_max_channels(RuntimeHandle rt, uint max);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_set_coalescing_window(RuntimeHandle rt, uint ms);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_get_max_channels(RuntimeHandle rt, out uint max);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_get_coalescing_window(RuntimeHandle rt, out uint ms);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_set_pong_settle(RuntimeHandle rt, uint ms);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_get_pong_settle(RuntimeHandle rt, out uint ms);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_set_event_queue_limit(RuntimeHandle rt, uint maxEvents);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_get_event_queue_limit(RuntimeHandle rt, out uint maxEvents);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_simulate_suspend(RuntimeHandle rt, uint ms);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_set_log_handler(uint maxLevel, NativeLogCallback cb, IntPtr userdata, NativeUserdataFinalizer finalizer);

        // ---- events --------------------------------------------------------------
        [DllImport(Lib, CallingConvention = CC)] internal static extern void ctrlchan_event_free(IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern ControlChannelEventKind ctrlchan_event_get_kind(IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern IntPtr ctrlchan_event_get_channel(IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern IntPtr ctrlchan_event_get_websocket(IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern IntPtr ctrlchan_event_get_channel_id(IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern SocketMessageType ctrlchan_event_get_message_type(IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_event_get_data(IntPtr ev, out IntPtr data, out UIntPtr len);
        [DllImport(Lib, CallingConvention = CC)] internal static extern ushort ctrlchan_event_get_close_code(IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern IntPtr ctrlchan_event_get_reason(IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern ulong ctrlchan_event_get_rtt_us(IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_event_get_result(IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern uint ctrlchan_event_get_attempt(IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern uint ctrlchan_event_get_delay_ms(IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern uint ctrlchan_event_get_interval_ms(IntPtr ev);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_set_adaptive_keepalive(ChannelHandle ch, uint minMs, uint maxMs);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_get_adaptive_keepalive(ChannelHandle ch, out uint minMs, out uint maxMs);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_runtime_set_state_file(RuntimeHandle rt, byte[] path);
        [DllImport(Lib, CallingConvention = CC)] internal static extern ControlChannelTriggerResetReason ctrlchan_event_get_reset_reason(IntPtr ev);

        // ---- websocket -----------------------------------------------------------
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_new(RuntimeHandle rt, WebSocketKind kind, out IntPtr ws);
        [DllImport(Lib, CallingConvention = CC)] internal static extern void ctrlchan_websocket_free(IntPtr ws);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_set_request_header(WebSocketHandle ws, byte[] name, byte[] value);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_add_supported_protocol(WebSocketHandle ws, byte[] protocol);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_set_max_message_size(WebSocketHandle ws, uint bytes);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_set_message_type(WebSocketHandle ws, SocketMessageType type);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_connect(WebSocketHandle ws, byte[] uri, uint timeoutMs);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_connect_async(WebSocketHandle ws, byte[] uri, uint timeoutMs);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_send(WebSocketHandle ws, byte* data, UIntPtr len);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_send_message(WebSocketHandle ws, SocketMessageType type, byte* data, UIntPtr len);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_close(WebSocketHandle ws, ushort code, byte[] reason);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_set_event_handler(WebSocketHandle ws, NativeEventCallback cb, IntPtr userdata, NativeUserdataFinalizer finalizer);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_add_trusted_ca_pem(WebSocketHandle ws, byte* pem, UIntPtr len);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_set_ignore_certificate_errors(WebSocketHandle ws, [MarshalAs(UnmanagedType.U1)] bool ignore);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_set_outbound_buffer_limit(WebSocketHandle ws, uint bytes);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_protocol(WebSocketHandle ws, out IntPtr protocol);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_set_proxy(WebSocketHandle ws, byte[] proxyUri);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_set_client_certificate_pem(WebSocketHandle ws, byte* certChainPem, UIntPtr certLen, byte* privateKeyPem, UIntPtr keyLen);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_add_pinned_public_key(WebSocketHandle ws, byte[] pin);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_peer_certificate(WebSocketHandle ws, out IntPtr der, out UIntPtr len);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_tls_version(WebSocketHandle ws, out IntPtr version);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_tls_cipher_suite(WebSocketHandle ws, out IntPtr cipherSuite);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_stats(WebSocketHandle ws, out NativeWebSocketStats stats);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_state(WebSocketHandle ws, out WebSocketConnectionState state);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_kind(WebSocketHandle ws, out WebSocketKind kind);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_max_message_size(WebSocketHandle ws, out uint bytes);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_message_type(WebSocketHandle ws, out SocketMessageType type);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_outbound_buffer_limit(WebSocketHandle ws, out uint bytes);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_ignore_certificate_errors(WebSocketHandle ws, [MarshalAs(UnmanagedType.U1)] out bool ignore);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_supported_protocol_count(WebSocketHandle ws, out UIntPtr count);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_supported_protocol(WebSocketHandle ws, UIntPtr index, out IntPtr protocol);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_set_event_mask(WebSocketHandle ws, uint mask);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_websocket_get_event_mask(WebSocketHandle ws, out uint mask);

        // ---- channel -------------------------------------------------------------
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_new(RuntimeHandle rt, byte[] channelId, uint serverKeepaliveIntervalMs, ControlChannelTriggerResourceType type, out IntPtr ch);
        [DllImport(Lib, CallingConvention = CC)] internal static extern void ctrlchan_channel_free(IntPtr ch);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_using_transport(ChannelHandle ch, WebSocketHandle ws);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_wait_for_push_enabled(ChannelHandle ch, out ControlChannelTriggerStatus status);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_set_keepalive(ChannelHandle ch, KeepAliveHandle task);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_set_event_handler(ChannelHandle ch, NativeEventCallback cb, IntPtr userdata, NativeUserdataFinalizer finalizer);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_current_keepalive_interval(ChannelHandle ch, out uint ms);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_decrease_network_keepalive_interval(ChannelHandle ch);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_flush_transport(ChannelHandle ch, uint timeoutMs);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_close(ChannelHandle ch);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_get_id(ChannelHandle ch, out IntPtr id);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_get_server_keepalive_interval(ChannelHandle ch, out uint ms);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_set_server_keepalive_interval(ChannelHandle ch, uint ms);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_get_resource_type(ChannelHandle ch, out ControlChannelTriggerResourceType type);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_set_event_mask(ChannelHandle ch, uint mask);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_get_event_mask(ChannelHandle ch, out uint mask);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_get_stats(ChannelHandle ch, out NativeChannelStats stats);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_set_reconnect_policy(ChannelHandle ch, ref NativeReconnectPolicy policy);
        // The same entry point with NULL: turns the policy off.
        [DllImport(Lib, CallingConvention = CC, EntryPoint = "ctrlchan_channel_set_reconnect_policy")] internal static extern CtrlChanResult ctrlchan_channel_clear_reconnect_policy(ChannelHandle ch, IntPtr nullPolicy);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_channel_get_reconnect_policy(ChannelHandle ch, out NativeReconnectPolicy policy, [MarshalAs(UnmanagedType.U1)] out bool enabled);
        [DllImport(Lib, CallingConvention = CC)] internal static extern void ctrlchan_reconnect_policy_default(out NativeReconnectPolicy policy);

        // ---- keep-alive task -----------------------------------------------------
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_keepalive_new(out IntPtr ka);
        [DllImport(Lib, CallingConvention = CC)] internal static extern void ctrlchan_keepalive_free(IntPtr ka);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_keepalive_set_mode(KeepAliveHandle ka, KeepAliveMode mode);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_keepalive_set_pong_timeout(KeepAliveHandle ka, uint ms);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_keepalive_run(KeepAliveHandle ka, ChannelHandle ch);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_keepalive_get_mode(KeepAliveHandle ka, out KeepAliveMode mode);
        [DllImport(Lib, CallingConvention = CC)] internal static extern CtrlChanResult ctrlchan_keepalive_get_pong_timeout(KeepAliveHandle ka, out uint ms);
    }
}
