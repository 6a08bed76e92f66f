using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;

namespace CtrlChan
{
    /// <summary>Windows.Networking.Sockets.IWebSocket: what MessageWebSocket and StreamWebSocket share.</summary>
    public interface IWebSocket : IDisposable
    {
        Task ConnectAsync(Uri uri);
        void SetRequestHeader(string headerName, string headerValue);
        void Close(ushort code, string reason);
        event TypedEventHandler<IWebSocket, WebSocketClosedEventArgs> Closed;
    }

    /// <summary>Counters of one socket (<c>ctrlchan_websocket_stats</c>).</summary>
    public sealed class WebSocketStatistics
    {
        internal WebSocketStatistics(NativeWebSocketStats s)
        {
            MessagesSent = s.MessagesSent;
            MessagesReceived = s.MessagesReceived;
            BytesSent = s.BytesSent;
            BytesReceived = s.BytesReceived;
        }
        public ulong MessagesSent { get; private set; }
        public ulong MessagesReceived { get; private set; }
        public ulong BytesSent { get; private set; }
        public ulong BytesReceived { get; private set; }
    }

    /// <summary>Windows.Networking.Sockets.MessageWebSocketInformation / StreamWebSocketInformation.</summary>
    public sealed class WebSocketInformation
    {
        private readonly WebSocketBase _owner;
        internal WebSocketInformation(WebSocketBase owner) { _owner = owner; }

        /// <summary>The subprotocol the server selected, "" if none (or not connected yet).</summary>
        public string Protocol
        {
            get
            {
                _owner.ThrowIfDisposed();
                IntPtr p;
                Errors.Check(NativeMethods.ctrlchan_websocket_get_protocol(_owner.Handle, out p), "ctrlchan_websocket_get_protocol", _owner.TypeName);
                return Utf8.Decode(p) ?? "";
            }
        }

        /// <summary>The server's certificate of the latest wss:// connection (null before one opened,
        /// and for ws://), like Windows' <c>ServerCertificate</c>.</summary>
        public X509Certificate2 ServerCertificate
        {
            get
            {
                _owner.ThrowIfDisposed();
                IntPtr der;
                UIntPtr len;
                Errors.Check(NativeMethods.ctrlchan_websocket_get_peer_certificate(_owner.Handle, out der, out len), "ctrlchan_websocket_get_peer_certificate", _owner.TypeName);
                if (der == IntPtr.Zero || len == UIntPtr.Zero) return null;
                var bytes = new byte[(int)len];
                Marshal.Copy(der, bytes, 0, bytes.Length);
                return new X509Certificate2(bytes);
            }
        }

        /// <summary>The negotiated TLS version ("TLSv1.3", "TLSv1.2"), "" before a wss:// connection opened.</summary>
        public string TlsVersion
        {
            get
            {
                _owner.ThrowIfDisposed();
                IntPtr p;
                Errors.Check(NativeMethods.ctrlchan_websocket_get_tls_version(_owner.Handle, out p), "ctrlchan_websocket_get_tls_version", _owner.TypeName);
                return Utf8.Decode(p) ?? "";
            }
        }

        /// <summary>The negotiated cipher suite's IANA name ("TLS_AES_128_GCM_SHA256"), "" if none.</summary>
        public string TlsCipherSuite
        {
            get
            {
                _owner.ThrowIfDisposed();
                IntPtr p;
                Errors.Check(NativeMethods.ctrlchan_websocket_get_tls_cipher_suite(_owner.Handle, out p), "ctrlchan_websocket_get_tls_cipher_suite", _owner.TypeName);
                return Utf8.Decode(p) ?? "";
            }
        }
    }

    /// <summary>Windows.Networking.Sockets.WebSocketControl options shared by both socket kinds.
    /// Set them before connecting; afterwards setters throw InvalidOperationException.</summary>
    public class WebSocketControl
    {
        internal readonly WebSocketBase Owner;
        private readonly ProtocolList _protocols;
        private TimeSpan _connectTimeout = TimeSpan.FromSeconds(30);

        internal WebSocketControl(WebSocketBase owner)
        {
            Owner = owner;
            _protocols = new ProtocolList(owner);
        }

        internal uint GetMaxMessageSize()
        {
            Owner.ThrowIfDisposed();
            uint v;
            Errors.Check(NativeMethods.ctrlchan_websocket_get_max_message_size(Owner.Handle, out v), "ctrlchan_websocket_get_max_message_size", Owner.TypeName);
            return v;
        }

        internal void SetMaxMessageSize(uint value)
        {
            if (value == 0) throw new ArgumentOutOfRangeException("value", value, "the maximum message size must be at least 1 byte");
            Owner.ThrowIfDisposed();
            Errors.Check(NativeMethods.ctrlchan_websocket_set_max_message_size(Owner.Handle, value), "ctrlchan_websocket_set_max_message_size", Owner.TypeName);
        }

        /// <summary>Subprotocols offered in the handshake (Sec-WebSocket-Protocol), in the order added,
        /// read back from the native socket. Only Add is supported.</summary>
        public IList<string> SupportedProtocols { get { return _protocols; } }

        /// <summary>Outbound buffer limit in bytes (default 16 MiB); a send beyond it throws CtrlChanException(BufferFull).</summary>
        public uint OutboundBufferSizeInBytes
        {
            get
            {
                Owner.ThrowIfDisposed();
                uint v;
                Errors.Check(NativeMethods.ctrlchan_websocket_get_outbound_buffer_limit(Owner.Handle, out v), "ctrlchan_websocket_get_outbound_buffer_limit", Owner.TypeName);
                return v;
            }
            set
            {
                if (value == 0) throw new ArgumentOutOfRangeException("value", value, "the outbound buffer limit must be at least 1 byte");
                Owner.ThrowIfDisposed();
                Errors.Check(NativeMethods.ctrlchan_websocket_set_outbound_buffer_limit(Owner.Handle, value), "ctrlchan_websocket_set_outbound_buffer_limit", Owner.TypeName);
            }
        }

        /// <summary>Dangerous: accept any server certificate for wss://.</summary>
        public bool IgnoreServerCertificateErrors
        {
            get
            {
                Owner.ThrowIfDisposed();
                bool v;
                Errors.Check(NativeMethods.ctrlchan_websocket_get_ignore_certificate_errors(Owner.Handle, out v), "ctrlchan_websocket_get_ignore_certificate_errors", Owner.TypeName);
                return v;
            }
            set
            {
                Owner.ThrowIfDisposed();
                Errors.Check(NativeMethods.ctrlchan_websocket_set_ignore_certificate_errors(Owner.Handle, value), "ctrlchan_websocket_set_ignore_certificate_errors", Owner.TypeName);
            }
        }

        /// <summary>Trust the PEM certificate(s) as extra roots for wss:// (in addition to the system roots).</summary>
        public unsafe void AddTrustedRootCertificate(string pem)
        {
            if (pem == null) throw new ArgumentNullException("pem");
            Owner.ThrowIfDisposed();
            byte[] b = System.Text.Encoding.UTF8.GetBytes(pem);
            fixed (byte* p = b)
            {
                Errors.Check(NativeMethods.ctrlchan_websocket_add_trusted_ca_pem(Owner.Handle, p, (UIntPtr)b.Length), "ctrlchan_websocket_add_trusted_ca_pem", Owner.TypeName);
            }
        }

        private string _proxy;
        private X509Certificate2 _clientCertificate;
        private readonly List<string> _pins = new List<string>();

        /// <summary>The proxy for every connect and reconnect: "http://[user:pass@]host:port" (HTTP CONNECT),
        /// "socks5://..." (local DNS), "socks5h://..." (proxy DNS), or "" for direct. null (default): from the
        /// environment like curl (wss_proxy/ws_proxy, https_proxy/http_proxy, all_proxy, no_proxy). A refusal,
        /// wrong credentials or an unreachable proxy throws <see cref="ProxyFailedException"/>. Reads back
        /// the value set here.</summary>
        public string Proxy
        {
            get { Owner.ThrowIfDisposed(); return _proxy; }
            set
            {
                if (value == null) throw new ArgumentNullException("value", "use \"\" for a direct connection");
                Owner.ThrowIfDisposed();
                Errors.Check(NativeMethods.ctrlchan_websocket_set_proxy(Owner.Handle, Utf8.Encode(value, "value")), "ctrlchan_websocket_set_proxy", Owner.TypeName);
                _proxy = value;
            }
        }

        /// <summary>Sets <see cref="Proxy"/> from a Uri (http, socks5 or socks5h; user info = credentials).</summary>
        public void SetProxy(Uri proxy)
        {
            if (proxy == null) throw new ArgumentNullException("proxy");
            Proxy = proxy.OriginalString;
        }

        /// <summary>Windows' <c>ClientCertificate</c>: offered when a wss:// server asks for one (mutual TLS).
        /// The certificate must carry its private key (HasPrivateKey); the key is exported to the native
        /// layer as PEM. On Mono only RSA keys can be exported; for ECDSA keys use
        /// <see cref="SetClientCertificatePem"/>.</summary>
        public X509Certificate2 ClientCertificate
        {
            get { Owner.ThrowIfDisposed(); return _clientCertificate; }
            set
            {
                if (value == null) throw new ArgumentNullException("value");
                if (!value.HasPrivateKey) throw new ArgumentException("the client certificate has no private key", "value");
                string keyPem = Pem.PrivateKey(value);
                SetClientCertificatePem(Pem.Certificate(value.RawData), keyPem);
                _clientCertificate = value;
            }
        }

        /// <summary>The client certificate chain (PEM, leaf first) and its private key (PEM: PKCS#8, SEC1 or
        /// RSA). A key that does not belong to the certificate throws ArgumentException at once.</summary>
        public unsafe void SetClientCertificatePem(string certificateChainPem, string privateKeyPem)
        {
            if (certificateChainPem == null) throw new ArgumentNullException("certificateChainPem");
            if (privateKeyPem == null) throw new ArgumentNullException("privateKeyPem");
            Owner.ThrowIfDisposed();
            byte[] c = System.Text.Encoding.UTF8.GetBytes(certificateChainPem);
            byte[] k = System.Text.Encoding.UTF8.GetBytes(privateKeyPem);
            try
            {
                fixed (byte* cp = c)
                fixed (byte* kp = k)
                {
                    Errors.Check(NativeMethods.ctrlchan_websocket_set_client_certificate_pem(Owner.Handle, cp, (UIntPtr)c.Length, kp, (UIntPtr)k.Length),
                        "ctrlchan_websocket_set_client_certificate_pem", Owner.TypeName);
                }
            }
            finally
            {
                Array.Clear(k, 0, k.Length);
            }
        }

        /// <summary>Public-key pins added so far (curl's "sha256//base64" form).</summary>
        public IList<string> PinnedPublicKeys { get { return _pins.AsReadOnly(); } }

        /// <summary>Pins the server's public key ("sha256//base64 of the SubjectPublicKeyInfo's SHA-256"; several
        /// joined by ';'): the server's key must match one, in addition to normal verification.</summary>
        public void AddPinnedPublicKey(string pin)
        {
            if (pin == null) throw new ArgumentNullException("pin");
            Owner.ThrowIfDisposed();
            Errors.Check(NativeMethods.ctrlchan_websocket_add_pinned_public_key(Owner.Handle, Utf8.Encode(pin, "pin")), "ctrlchan_websocket_add_pinned_public_key", Owner.TypeName);
            _pins.Add(pin);
        }

        /// <summary>Limit for ConnectAsync (default 30 s). Kept here: it is an argument of each native
        /// connect call, not a setting of the native socket.</summary>
        public TimeSpan ConnectTimeout
        {
            get { return _connectTimeout; }
            set
            {
                Time.ToMilliseconds(value, TimeSpan.FromMilliseconds(1), TimeSpan.FromDays(1), "value");
                _connectTimeout = value;
            }
        }

        /// <summary>The offered subprotocols as the native socket holds them (no managed copy).</summary>
        private sealed class ProtocolList : IList<string>
        {
            private readonly WebSocketBase _owner;
            internal ProtocolList(WebSocketBase owner) { _owner = owner; }

            public int Count
            {
                get
                {
                    _owner.ThrowIfDisposed();
                    UIntPtr n;
                    Errors.Check(NativeMethods.ctrlchan_websocket_get_supported_protocol_count(_owner.Handle, out n), "ctrlchan_websocket_get_supported_protocol_count", _owner.TypeName);
                    return (int)Math.Min(n.ToUInt64(), int.MaxValue);
                }
            }

            public string this[int index]
            {
                get
                {
                    if (index < 0) throw new ArgumentOutOfRangeException("index", index, "must not be negative");
                    _owner.ThrowIfDisposed();
                    IntPtr p;
                    CtrlChanResult r = NativeMethods.ctrlchan_websocket_get_supported_protocol(_owner.Handle, (UIntPtr)(uint)index, out p);
                    if (r == CtrlChanResult.InvalidArgument)
                        throw new ArgumentOutOfRangeException("index", index, "only " + Count + " protocols are offered");
                    Errors.Check(r, "ctrlchan_websocket_get_supported_protocol", _owner.TypeName);
                    return Utf8.Decode(p) ?? "";
                }
                set { throw new NotSupportedException("protocols cannot be replaced once offered"); }
            }

            public bool IsReadOnly { get { return false; } }

            public void Add(string item)
            {
                _owner.ThrowIfDisposed();
                byte[] p = Utf8.EncodeRequired(item, "item");
                Errors.Check(NativeMethods.ctrlchan_websocket_add_supported_protocol(_owner.Handle, p), "ctrlchan_websocket_add_supported_protocol", _owner.TypeName);
            }

            public void Insert(int index, string item)
            {
                if (index != Count) throw new NotSupportedException("protocols are offered in the order added; only Add is supported");
                Add(item);
            }

            private List<string> Snapshot()
            {
                int n = Count;
                var l = new List<string>(n);
                for (int i = 0; i < n; i++) l.Add(this[i]);
                return l;
            }

            public int IndexOf(string item) { return Snapshot().IndexOf(item); }
            public bool Contains(string item) { return IndexOf(item) >= 0; }
            public void CopyTo(string[] array, int arrayIndex) { Snapshot().CopyTo(array, arrayIndex); }
            public IEnumerator<string> GetEnumerator() { return Snapshot().GetEnumerator(); }
            IEnumerator IEnumerable.GetEnumerator() { return GetEnumerator(); }
            public bool Remove(string item) { throw new NotSupportedException("protocols cannot be removed once offered"); }
            public void RemoveAt(int index) { throw new NotSupportedException("protocols cannot be removed once offered"); }
            public void Clear() { throw new NotSupportedException("protocols cannot be removed once offered"); }
        }
    }

    /// <summary>Windows.Networking.Sockets.MessageWebSocketControl.</summary>
    public sealed class MessageWebSocketControl : WebSocketControl
    {
        internal MessageWebSocketControl(WebSocketBase owner) : base(owner) { }

        /// <summary>Largest incoming message in bytes (default 16 MiB); a larger one closes the connection with 1009.</summary>
        public uint MaxMessageSize { get { return GetMaxMessageSize(); } set { SetMaxMessageSize(value); } }

        /// <summary>Frame type used by SendAsync(byte[]) (default Binary). May be changed at any time,
        /// also while connected (as on Windows); it applies to later sends.</summary>
        public SocketMessageType MessageType
        {
            get
            {
                Owner.ThrowIfDisposed();
                SocketMessageType t;
                Errors.Check(NativeMethods.ctrlchan_websocket_get_message_type(Owner.Handle, out t), "ctrlchan_websocket_get_message_type", Owner.TypeName);
                return t;
            }
            set
            {
                if (value != SocketMessageType.Binary && value != SocketMessageType.Utf8)
                    throw new ArgumentOutOfRangeException("value", value, "unknown SocketMessageType");
                Owner.ThrowIfDisposed();
                Errors.Check(NativeMethods.ctrlchan_websocket_set_message_type(Owner.Handle, value), "ctrlchan_websocket_set_message_type", Owner.TypeName);
            }
        }
    }

    /// <summary>Windows.Networking.Sockets.StreamWebSocketControl.</summary>
    public sealed class StreamWebSocketControl : WebSocketControl
    {
        internal StreamWebSocketControl(WebSocketBase owner) : base(owner) { }

        /// <summary>Largest incoming frame in bytes (default 16 MiB).</summary>
        public uint MaxMessageSize { get { return GetMaxMessageSize(); } set { SetMaxMessageSize(value); } }
    }

    /// <summary>Common implementation of <see cref="MessageWebSocket"/> and <see cref="StreamWebSocket"/>.</summary>
    public abstract class WebSocketBase : IWebSocket
    {
        internal readonly WebSocketHandle Handle;
        internal readonly ControlChannelRuntime Runtime;
        private readonly long _childId;
        internal readonly NativeListener Listener;
        private readonly object _connectLock = new object();
        private volatile TaskCompletionSource<bool> _pendingConnect;
        private CancellationTokenSource _connectWatchdog;
        private volatile bool _disposed;

        internal WebSocketBase(ControlChannelRuntime runtime, WebSocketKind kind)
        {
            if (runtime == null) throw new ArgumentNullException("runtime");
            runtime.ThrowIfDisposed();
            IntPtr p;
            Errors.Check(NativeMethods.ctrlchan_websocket_new(runtime.Handle, kind, out p), "ctrlchan_websocket_new", "ControlChannelRuntime");
            Handle = CtrlChanHandle.Wrap<WebSocketHandle>(p);
            Runtime = runtime;
            Registry.Register(p, this);
            // No native handler until something listens (NativeListener).
            Listener = new NativeListener(this, IsListenedTo,
                (cb, userdata, fin) => NativeMethods.ctrlchan_websocket_set_event_handler(Handle, cb, userdata, fin),
                "ctrlchan_websocket_set_event_handler", TypeName);
            _childId = runtime.AddChild(this);
        }

        internal string TypeName { get { return GetType().Name; } }

        public bool IsDisposed { get { return _disposed; } }

        internal void ThrowIfDisposed()
        {
            if (_disposed) throw new ObjectDisposedException(TypeName);
        }

        /// <summary>The runtime this socket belongs to.</summary>
        public ControlChannelRuntime ControlChannelRuntime { get { return Runtime; } }

        /// <summary>Information about the connection (negotiated subprotocol).</summary>
        public WebSocketInformation Information { get { ThrowIfDisposed(); return new WebSocketInformation(this); } }

        /// <summary>Connection state.</summary>
        public WebSocketConnectionState State
        {
            get
            {
                ThrowIfDisposed();
                WebSocketConnectionState s;
                Errors.Check(NativeMethods.ctrlchan_websocket_get_state(Handle, out s), "ctrlchan_websocket_get_state", TypeName);
                return s;
            }
        }

        /// <summary>Message and byte counters.</summary>
        public WebSocketStatistics Statistics
        {
            get
            {
                ThrowIfDisposed();
                NativeWebSocketStats s;
                Errors.Check(NativeMethods.ctrlchan_websocket_get_stats(Handle, out s), "ctrlchan_websocket_get_stats", TypeName);
                return new WebSocketStatistics(s);
            }
        }

        internal abstract WebSocketControl ControlBase { get; }

        /// <summary>
        /// Which events this socket produces while it is no channel's transport
        /// (<c>ctrlchan_websocket_set_event_mask</c>; default <see cref="CtrlChan.EventMask.Default"/>).
        /// While the socket is a channel's transport the channel's
        /// <see cref="ControlChannelTrigger.EventMask"/> applies instead. A masked-out event is never
        /// created. Masking out Connected / ConnectFailed leaves a ConnectAsync to its watchdog
        /// timeout, masking out Closed / TransportDisconnected leaves the InputStream of a
        /// StreamWebSocket open: keep those bits unless you poll State. Any time.
        /// </summary>
        public EventMask EventMask
        {
            get
            {
                ThrowIfDisposed();
                uint mask;
                Errors.Check(NativeMethods.ctrlchan_websocket_get_event_mask(Handle, out mask), "ctrlchan_websocket_get_event_mask", TypeName);
                return (EventMask)mask;
            }
            set
            {
                ThrowIfDisposed();
                Errors.Check(NativeMethods.ctrlchan_websocket_set_event_mask(Handle, (uint)value), "ctrlchan_websocket_set_event_mask", TypeName);
            }
        }

        private TypedEventHandler<IWebSocket, WebSocketClosedEventArgs> _closed;
        private TypedEventHandler<IWebSocket, WebSocketDisconnectedEventArgs> _disconnected;

        /// <summary>Raised when the close handshake completed (the peer's close code and reason).</summary>
        public event TypedEventHandler<IWebSocket, WebSocketClosedEventArgs> Closed
        {
            add { Listener.Subscribe(ref _closed, value); }
            remove { Listener.Unsubscribe(ref _closed, value); }
        }

        /// <summary>Raised when the transport was lost without a close handshake (EOF, reset, I/O error,
        /// pong timeout). Not in the Windows API, where this surfaces as a failed read. Not raised
        /// when the socket is a channel's transport and the channel's TransportDisconnected has
        /// subscribers (the channel's event is raised instead).</summary>
        public event TypedEventHandler<IWebSocket, WebSocketDisconnectedEventArgs> Disconnected
        {
            add { Listener.Subscribe(ref _disconnected, value); }
            remove { Listener.Unsubscribe(ref _disconnected, value); }
        }

        /// <summary>Whether the native handler is wanted: some event has a subscriber, a
        /// ConnectAsync waits for its result, or (stream sockets) the InputStream is open.</summary>
        internal virtual bool IsListenedTo()
        {
            return _closed != null || _disconnected != null || _pendingConnect != null;
        }

        /// <summary>True while the socket's native event handler is installed (tests).</summary>
        internal bool HasNativeHandler { get { return Listener.IsInstalled; } }

        /// <summary>Adds an HTTP header to the opening handshake. CR, LF and NUL are rejected.</summary>
        public void SetRequestHeader(string headerName, string headerValue)
        {
            byte[] n = Utf8.EncodeRequired(headerName, "headerName");
            byte[] v = Utf8.EncodeRequired(headerValue, "headerValue");
            ThrowIfDisposed();
            Errors.Check(NativeMethods.ctrlchan_websocket_set_request_header(Handle, n, v), "ctrlchan_websocket_set_request_header", TypeName);
        }

        private static byte[] EncodeUri(Uri uri)
        {
            if (uri == null) throw new ArgumentNullException("uri");
            if (!uri.IsAbsoluteUri) throw new ArgumentException("the URI must be absolute", "uri");
            if (uri.Scheme != "ws" && uri.Scheme != "wss")
                throw new ArgumentException("the URI scheme must be ws or wss, not " + uri.Scheme, "uri");
            return Utf8.Encode(uri.AbsoluteUri, "uri");
        }

        /// <summary>
        /// Starts the opening handshake; the task completes when the socket is open, or faults
        /// with CtrlChanException (ConnectFailed, HandshakeFailed, TlsFailed) or TimeoutException.
        /// Argument and state errors throw synchronously. Bind the socket to a channel
        /// (UsingTransport) before connecting.
        /// </summary>
        public Task ConnectAsync(Uri uri)
        {
            byte[] u = EncodeUri(uri);
            ThrowIfDisposed();
            TimeSpan timeout = ControlBase.ConnectTimeout;
            var tcs = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            var watchdog = new CancellationTokenSource();
            CancellationToken watchdogToken = watchdog.Token;
            lock (_connectLock)
            {
                if (_pendingConnect != null) throw new InvalidOperationException("a connect is already in progress");
                _pendingConnect = tcs;
                _connectWatchdog = watchdog;
            }
            // The result arrives as an event: listen for it (the socket's own handler, unless
            // a listening channel receives the socket's events anyway).
            try
            {
                Listener.Sync(true);
            }
            catch
            {
                TakePendingConnect();
                throw;
            }
            CtrlChanResult r = NativeMethods.ctrlchan_websocket_connect_async(Handle, u, (uint)timeout.TotalMilliseconds);
            if (r != CtrlChanResult.Ok)
            {
                Exception ex = Errors.Create(r, Errors.LastError(), "ctrlchan_websocket_connect_async", TypeName);
                TakePendingConnect();
                throw ex;
            }
            // The native connect has its own timeout; this only guarantees the task always ends.
            Task.Delay(timeout + TimeSpan.FromSeconds(5), watchdogToken).ContinueWith(t =>
            {
                if (t.IsCanceled) return;
                var pending = TakePendingConnect();
                if (pending != null)
                    pending.TrySetException(new TimeoutException("no connect result from the runtime within " + timeout));
            }, TaskContinuationOptions.ExecuteSynchronously);
            return tcs.Task;
        }

        /// <summary>Connects synchronously (blocking). Throws CtrlChanException on failure.
        /// Cannot be called from an event handler (InvalidOperationException).</summary>
        public void Connect(Uri uri)
        {
            Connect(uri, ControlBase.ConnectTimeout);
        }

        public void Connect(Uri uri, TimeSpan timeout)
        {
            byte[] u = EncodeUri(uri);
            uint ms = Time.ToMilliseconds(timeout, TimeSpan.FromMilliseconds(1), TimeSpan.FromDays(1), "timeout");
            ThrowIfDisposed();
            Errors.Check(NativeMethods.ctrlchan_websocket_connect(Handle, u, ms), "ctrlchan_websocket_connect", TypeName);
        }

        private TaskCompletionSource<bool> TakePendingConnect()
        {
            TaskCompletionSource<bool> tcs;
            lock (_connectLock)
            {
                tcs = _pendingConnect;
                var wd = _connectWatchdog;
                _pendingConnect = null;
                _connectWatchdog = null;
                if (wd != null) wd.Cancel();   // stops the watchdog delay; not disposed (the delay may still hold its token)
                if (tcs == null) return null;
            }
            Listener.Sync();   // nothing may listen any more
            return tcs;
        }

        internal bool OnConnectResult(ControlChannelEventArgs e)
        {
            var tcs = TakePendingConnect();
            if (tcs == null) return false;
            if (e.Kind == ControlChannelEventKind.Connected) tcs.TrySetResult(true);
            else tcs.TrySetException(Errors.Native(e.Result == CtrlChanResult.Ok ? CtrlChanResult.ConnectFailed : e.Result, e.Reason));
            return true;
        }

        // ---- sending ----------------------------------------------------------------

        /// <summary>Sends a text message (a UTF-8 frame on a MessageWebSocket, bytes on a StreamWebSocket).
        /// The message is queued whole or an exception is thrown; the returned task is already complete.</summary>
        public Task SendAsync(string message)
        {
            if (message == null) throw new ArgumentNullException("message");
            byte[] b = System.Text.Encoding.UTF8.GetBytes(message);
            SendCore(TextFrameType, true, b, 0, b.Length);
            return CompletedTask;
        }

        /// <summary>Sends bytes with the socket's Control.MessageType (Binary on a StreamWebSocket).</summary>
        public Task SendAsync(byte[] data)
        {
            if (data == null) throw new ArgumentNullException("data");
            SendCore(SocketMessageType.Binary, false, data, 0, data.Length);
            return CompletedTask;
        }

        /// <summary>Sends a slice of bytes with the socket's Control.MessageType.</summary>
        public Task SendAsync(ArraySegment<byte> data)
        {
            if (data.Array == null) throw new ArgumentNullException("data");
            SendCore(SocketMessageType.Binary, false, data.Array, data.Offset, data.Count);
            return CompletedTask;
        }

        /// <summary>Sends bytes as an explicit frame type (Utf8 payloads must be valid UTF-8).</summary>
        public Task SendAsync(byte[] data, SocketMessageType messageType)
        {
            if (data == null) throw new ArgumentNullException("data");
            SendCore(messageType, true, data, 0, data.Length);
            return CompletedTask;
        }

        internal virtual SocketMessageType TextFrameType { get { return SocketMessageType.Utf8; } }

        private static readonly Task CompletedTask = Task.FromResult(true);

        internal unsafe void SendCore(SocketMessageType type, bool explicitType, byte[] data, int offset, int count)
        {
            if (offset < 0 || count < 0 || offset > data.Length - count)
                throw new ArgumentOutOfRangeException("data", "offset/count outside the array");
            if (type != SocketMessageType.Binary && type != SocketMessageType.Utf8)
                throw new ArgumentOutOfRangeException("messageType", type, "unknown SocketMessageType");
            ThrowIfDisposed();
            CtrlChanResult r;
            fixed (byte* p0 = data)
            {
                byte* p = count == 0 ? null : p0 + offset;
                r = explicitType
                    ? NativeMethods.ctrlchan_websocket_send_message(Handle, type, p, (UIntPtr)count)
                    : NativeMethods.ctrlchan_websocket_send(Handle, p, (UIntPtr)count);
            }
            Errors.Check(r, explicitType ? "ctrlchan_websocket_send_message" : "ctrlchan_websocket_send", TypeName);
        }

        // ---- closing ----------------------------------------------------------------

        /// <summary>Starts the close handshake; <see cref="Closed"/> follows when it completes.
        /// InvalidOperationException if the socket is not open.</summary>
        public void Close(ushort code, string reason)
        {
            byte[] r = Utf8.Encode(reason, "reason");
            ThrowIfDisposed();
            Errors.Check(NativeMethods.ctrlchan_websocket_close(Handle, code, r), "ctrlchan_websocket_close", TypeName);
        }

        /// <summary>Close(1000, "").</summary>
        public void Close() { Close(1000, null); }

        // ---- events from the runtime thread -----------------------------------------

        /// <summary>A message for this socket: raised on its data event (or, for a stream socket,
        /// written to an open InputStream). False when nothing consumed it.</summary>
        internal abstract bool OnData(ControlChannelEventArgs e);

        internal virtual void OnTransportEnded() { }

        /// <summary>CLOSED: ends a pending connect and the input stream, then raises Closed.</summary>
        internal bool OnClosed(ControlChannelEventArgs e)
        {
            var tcs = TakePendingConnect();
            if (tcs != null) tcs.TrySetException(new CtrlChanException(CtrlChanResult.Closed, "closed while connecting: " + e.CloseCode + " " + e.Reason));
            OnTransportEnded();
            var h = Volatile.Read(ref _closed);
            return h != null && Callbacks.Raise(h, (IWebSocket)this, new WebSocketClosedEventArgs(e), Runtime, e);
        }

        /// <summary>TRANSPORT_DISCONNECTED, whoever raises it: ends a pending connect and the input stream.</summary>
        internal void OnTransportLost(ControlChannelEventArgs e)
        {
            var tcs = TakePendingConnect();
            if (tcs != null) tcs.TrySetException(new CtrlChanException(CtrlChanResult.ConnectFailed, e.Reason));
            OnTransportEnded();
        }

        /// <summary>TRANSPORT_DISCONNECTED when no channel event took it: raises Disconnected.</summary>
        internal bool OnDisconnected(ControlChannelEventArgs e)
        {
            var h = Volatile.Read(ref _disconnected);
            return h != null && Callbacks.Raise(h, (IWebSocket)this, new WebSocketDisconnectedEventArgs(e), Runtime, e);
        }

        // ---- dispose ----------------------------------------------------------------

        /// <summary>Frees the socket. Idempotent. An open connection is closed by the library in the
        /// background (close frame, then the peer's close, bounded by the close timeout); no
        /// events are raised for this socket after Dispose.</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            Listener.Close();   // freeing the socket releases its native handler
            var tcs = TakePendingConnect();
            if (tcs != null) tcs.TrySetException(new ObjectDisposedException(TypeName));
            OnTransportEnded();
            Runtime.RemoveChild(_childId);
            Handle.Dispose();
        }
    }

    /// <summary>Windows.Networking.Sockets.MessageWebSocket: whole messages, text or binary.</summary>
    public sealed class MessageWebSocket : WebSocketBase
    {
        private readonly MessageWebSocketControl _control;

        public MessageWebSocket(ControlChannelRuntime runtime) : base(runtime, WebSocketKind.Message)
        {
            _control = new MessageWebSocketControl(this);
        }

        /// <summary>Options; set before ConnectAsync.</summary>
        public MessageWebSocketControl Control { get { ThrowIfDisposed(); return _control; } }
        internal override WebSocketControl ControlBase { get { return _control; } }

        private TypedEventHandler<MessageWebSocket, MessageWebSocketMessageReceivedEventArgs> _messageReceived;

        /// <summary>Raised on the runtime thread for every message, in order. Not raised when the
        /// socket is a channel's transport and the channel's PushNotificationReceived has subscribers
        /// (the channel's event is raised instead).</summary>
        public event TypedEventHandler<MessageWebSocket, MessageWebSocketMessageReceivedEventArgs> MessageReceived
        {
            add { Listener.Subscribe(ref _messageReceived, value); }
            remove { Listener.Unsubscribe(ref _messageReceived, value); }
        }

        internal override bool IsListenedTo()
        {
            return _messageReceived != null || base.IsListenedTo();
        }

        internal override bool OnData(ControlChannelEventArgs e)
        {
            var h = Volatile.Read(ref _messageReceived);
            return h != null && Callbacks.Raise(h, this, new MessageWebSocketMessageReceivedEventArgs(e), Runtime, e);
        }
    }

    /// <summary>Windows.Networking.Sockets.StreamWebSocket: a byte stream over binary frames.
    /// Read with <see cref="InputStream"/> or the <see cref="DataReceived"/> event; write with
    /// <see cref="OutputStream"/> or SendAsync.</summary>
    public sealed class StreamWebSocket : WebSocketBase
    {
        private readonly StreamWebSocketControl _control;
        private readonly object _inputLock = new object();
        private WebSocketInputStream _input;
        private WebSocketOutputStream _output;

        public StreamWebSocket(ControlChannelRuntime runtime) : base(runtime, WebSocketKind.Stream)
        {
            _control = new StreamWebSocketControl(this);
        }

        public StreamWebSocketControl Control { get { ThrowIfDisposed(); return _control; } }
        internal override WebSocketControl ControlBase { get { return _control; } }
        internal override SocketMessageType TextFrameType { get { return SocketMessageType.Binary; } }

        private TypedEventHandler<StreamWebSocket, StreamWebSocketDataReceivedEventArgs> _dataReceived;

        /// <summary>Raised on the runtime thread for every chunk received. While it has subscribers,
        /// data is not written to <see cref="InputStream"/>. Not raised when the socket is a channel's
        /// transport and the channel's PushNotificationReceived has subscribers.</summary>
        public event TypedEventHandler<StreamWebSocket, StreamWebSocketDataReceivedEventArgs> DataReceived
        {
            add { Listener.Subscribe(ref _dataReceived, value); }
            remove { Listener.Unsubscribe(ref _dataReceived, value); }
        }

        /// <summary>Incoming bytes. Read blocks until data arrives or the connection ends (then returns 0).
        /// Data is buffered from the first access to this property on, unless an event takes it first
        /// (<see cref="DataReceived"/>, or the channel's PushNotificationReceived).</summary>
        public Stream InputStream
        {
            get
            {
                ThrowIfDisposed();
                WebSocketInputStream input;
                bool created = false;
                lock (_inputLock)
                {
                    if (_input == null)
                    {
                        _input = new WebSocketInputStream(Listener);
                        created = true;
                    }
                    input = _input;
                }
                if (created) Listener.Sync(true);   // an open input stream listens for data
                return input;
            }
        }

        internal override bool IsListenedTo()
        {
            if (_dataReceived != null || base.IsListenedTo()) return true;
            WebSocketInputStream input;
            lock (_inputLock) input = _input;
            return input != null && !input.IsCompleted;
        }

        /// <summary>Outgoing bytes: every Write sends one binary frame.</summary>
        public Stream OutputStream
        {
            get
            {
                ThrowIfDisposed();
                lock (_inputLock)
                {
                    if (_output == null) _output = new WebSocketOutputStream(this);
                    return _output;
                }
            }
        }

        internal override bool OnData(ControlChannelEventArgs e)
        {
            var h = Volatile.Read(ref _dataReceived);
            if (h != null) return Callbacks.Raise(h, this, new StreamWebSocketDataReceivedEventArgs(e), Runtime, e);
            WebSocketInputStream input;
            lock (_inputLock) input = _input;
            return input != null && input.Append(e.GetDataBytes());
        }

        internal override void OnTransportEnded()
        {
            WebSocketInputStream input;
            lock (_inputLock) input = _input;
            if (input != null) input.Complete();
        }
    }

    internal sealed class WebSocketInputStream : Stream
    {
        private readonly NativeListener _listener;
        private readonly Queue<byte[]> _chunks = new Queue<byte[]>();
        private byte[] _current;
        private int _pos;
        private volatile bool _completed;
        private int _readTimeout = Timeout.Infinite;

        /// <param name="listener">the socket's listener: an open stream keeps its native handler installed</param>
        internal WebSocketInputStream(NativeListener listener) { _listener = listener; }

        internal bool IsCompleted { get { return _completed; } }

        /// <summary>Buffers a chunk for Read; false once the stream has ended (disposed, or the transport ended).</summary>
        internal bool Append(byte[] data)
        {
            lock (_chunks)
            {
                if (_completed) return false;
                if (data.Length > 0) _chunks.Enqueue(data);
                Monitor.PulseAll(_chunks);
                return true;
            }
        }

        internal void Complete()
        {
            lock (_chunks)
            {
                if (_completed) return;
                _completed = true;
                Monitor.PulseAll(_chunks);
            }
            _listener.Sync();   // a finished stream no longer listens
        }

        public override bool CanRead { get { return true; } }
        public override bool CanSeek { get { return false; } }
        public override bool CanWrite { get { return false; } }
        public override bool CanTimeout { get { return true; } }
        public override int ReadTimeout { get { return _readTimeout; } set { _readTimeout = value; } }
        public override long Length { get { throw new NotSupportedException(); } }
        public override long Position { get { throw new NotSupportedException(); } set { throw new NotSupportedException(); } }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) { throw new NotSupportedException(); }
        public override void SetLength(long value) { throw new NotSupportedException(); }
        public override void Write(byte[] buffer, int offset, int count) { throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (buffer == null) throw new ArgumentNullException("buffer");
            if (offset < 0 || count < 0 || offset > buffer.Length - count) throw new ArgumentOutOfRangeException("count");
            if (count == 0) return 0;
            lock (_chunks)
            {
                var sw = System.Diagnostics.Stopwatch.StartNew();
                while ((_current == null || _pos >= _current.Length) && _chunks.Count == 0)
                {
                    if (_completed) return 0;
                    if (_readTimeout == Timeout.Infinite) { Monitor.Wait(_chunks); continue; }
                    int left = _readTimeout - (int)sw.ElapsedMilliseconds;
                    if (left <= 0) throw new IOException("read timed out");
                    Monitor.Wait(_chunks, left);
                }
                if (_current == null || _pos >= _current.Length)
                {
                    _current = _chunks.Dequeue();
                    _pos = 0;
                }
                int n = Math.Min(count, _current.Length - _pos);
                Buffer.BlockCopy(_current, _pos, buffer, offset, n);
                _pos += n;
                return n;
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            return Task.Factory.StartNew(() => Read(buffer, offset, count), cancellationToken,
                                         TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) Complete();
            base.Dispose(disposing);
        }
    }

    internal sealed class WebSocketOutputStream : Stream
    {
        private readonly StreamWebSocket _owner;
        internal WebSocketOutputStream(StreamWebSocket owner) { _owner = owner; }
        public override bool CanRead { get { return false; } }
        public override bool CanSeek { get { return false; } }
        public override bool CanWrite { get { return true; } }
        public override long Length { get { throw new NotSupportedException(); } }
        public override long Position { get { throw new NotSupportedException(); } set { throw new NotSupportedException(); } }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) { throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) { throw new NotSupportedException(); }
        public override void SetLength(long value) { throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count)
        {
            if (buffer == null) throw new ArgumentNullException("buffer");
            _owner.SendCore(SocketMessageType.Binary, true, buffer, offset, count);
        }
    }
}
