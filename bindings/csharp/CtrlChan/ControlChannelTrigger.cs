using System;
using System.Threading;

namespace CtrlChan
{
    /// <summary>
    /// Windows.Networking.Sockets.ControlChannelTrigger: registers a web socket with the
    /// runtime so that it sends keep-alives on schedule and reports incoming data, close and
    /// disconnect as events.
    /// </summary>
    /// <remarks>
    /// Flow, as on Windows: create the socket and the channel; set <see cref="KeepAliveTask"/>;
    /// subscribe to events; <see cref="UsingTransport"/> before connecting; connect;
    /// <see cref="WaitForPushEnabled"/> after connecting. Events are raised on the runtime thread.
    /// While any of the channel's events has a subscriber, every event of its transport comes
    /// to the channel first: it is raised on the channel's event for its kind if that has
    /// subscribers, else on the socket's (MessageReceived, Closed, Disconnected...), never on both.
    /// With no subscriber on the channel, its transport's events go to the socket or, if nothing
    /// listens there either, to <see cref="ControlChannelRuntime.NextEvent"/>.
    /// </remarks>
    public sealed class ControlChannelTrigger : IDisposable
    {
        /// <summary>Shortest server keep-alive interval ctrlchan accepts (100 ms).</summary>
        public static readonly TimeSpan MinServerKeepAliveInterval = TimeSpan.FromMilliseconds(100);
        /// <summary>Longest server keep-alive interval ctrlchan accepts (24 h).</summary>
        public static readonly TimeSpan MaxServerKeepAliveInterval = TimeSpan.FromHours(24);

        internal readonly ChannelHandle Handle;
        internal readonly ControlChannelRuntime Runtime;
        private readonly long _childId;
        private readonly NativeListener _listener;
        private WebSocketKeepAlive _keepAlive;
        private IWebSocket _transport;
        private volatile bool _disposed;

        /// <summary>Windows-compatible: server keep-alive interval in minutes (1 … 1440), software slot.</summary>
        public ControlChannelTrigger(ControlChannelRuntime runtime, string channelId, uint serverKeepAliveIntervalInMinutes)
            : this(runtime, channelId, serverKeepAliveIntervalInMinutes, ControlChannelTriggerResourceType.RequestSoftwareSlot)
        {
        }

        /// <summary>Windows-compatible: server keep-alive interval in minutes (1 … 1440).</summary>
        public ControlChannelTrigger(ControlChannelRuntime runtime, string channelId, uint serverKeepAliveIntervalInMinutes,
                                     ControlChannelTriggerResourceType resourceType)
            : this(runtime, channelId, MinutesToInterval(serverKeepAliveIntervalInMinutes), resourceType)
        {
        }

        /// <summary>Same as the uint overload, for callers holding the minutes in an int.</summary>
        public ControlChannelTrigger(ControlChannelRuntime runtime, string channelId, int serverKeepAliveIntervalInMinutes)
            : this(runtime, channelId, CheckedMinutes(serverKeepAliveIntervalInMinutes), ControlChannelTriggerResourceType.RequestSoftwareSlot)
        {
        }

        /// <summary>Same as the uint overload, for callers holding the minutes in an int.</summary>
        public ControlChannelTrigger(ControlChannelRuntime runtime, string channelId, int serverKeepAliveIntervalInMinutes,
                                     ControlChannelTriggerResourceType resourceType)
            : this(runtime, channelId, CheckedMinutes(serverKeepAliveIntervalInMinutes), resourceType)
        {
        }

        /// <summary>Server keep-alive interval as a TimeSpan (100 ms … 24 h), software slot.</summary>
        public ControlChannelTrigger(ControlChannelRuntime runtime, string channelId, TimeSpan serverKeepAliveInterval)
            : this(runtime, channelId, serverKeepAliveInterval, ControlChannelTriggerResourceType.RequestSoftwareSlot)
        {
        }

        /// <summary>Server keep-alive interval as a TimeSpan (100 ms … 24 h).</summary>
        /// <exception cref="ArgumentNullException">runtime or channelId is null.</exception>
        /// <exception cref="ArgumentException">channelId is empty, longer than 64 characters or not valid.</exception>
        /// <exception cref="ArgumentOutOfRangeException">the interval or resource type is out of range.</exception>
        public ControlChannelTrigger(ControlChannelRuntime runtime, string channelId, TimeSpan serverKeepAliveInterval,
                                     ControlChannelTriggerResourceType resourceType)
        {
            if (runtime == null) throw new ArgumentNullException("runtime");
            byte[] id = Utf8.EncodeRequired(channelId, "channelId");
            uint ms = Time.ToMilliseconds(serverKeepAliveInterval, MinServerKeepAliveInterval, MaxServerKeepAliveInterval, "serverKeepAliveInterval");
            if (resourceType != ControlChannelTriggerResourceType.RequestSoftwareSlot &&
                resourceType != ControlChannelTriggerResourceType.RequestHardwareSlot)
                throw new ArgumentOutOfRangeException("resourceType", resourceType, "unknown ControlChannelTriggerResourceType");
            runtime.ThrowIfDisposed();

            IntPtr p;
            CtrlChanResult r = NativeMethods.ctrlchan_channel_new(runtime.Handle, id, ms, resourceType, out p);
            if (r == CtrlChanResult.InvalidArgument)
                throw new ArgumentException("invalid channel: " + Errors.LastError(), "channelId");
            Errors.Check(r, "ctrlchan_channel_new", "ControlChannelRuntime");
            Handle = CtrlChanHandle.Wrap<ChannelHandle>(p);
            Runtime = runtime;
            Registry.Register(p, this);
            // No native handler until something subscribes (NativeListener).
            _listener = new NativeListener(this, HasSubscribers,
                (cb, userdata, fin) => NativeMethods.ctrlchan_channel_set_event_handler(Handle, cb, userdata, fin),
                "ctrlchan_channel_set_event_handler", "ControlChannelTrigger");
            _childId = runtime.AddChild(this);
        }

        private static uint CheckedMinutes(int minutes)
        {
            if (minutes < 1 || minutes > 1440)
                throw new ArgumentOutOfRangeException("serverKeepAliveIntervalInMinutes", minutes, "must be between 1 and 1440 minutes");
            return (uint)minutes;
        }

        private static TimeSpan MinutesToInterval(uint minutes)
        {
            if (minutes < 1 || minutes > 1440)
                throw new ArgumentOutOfRangeException("serverKeepAliveIntervalInMinutes", minutes, "must be between 1 and 1440 minutes");
            return TimeSpan.FromMinutes(minutes);
        }

        public bool IsDisposed { get { return _disposed; } }

        internal void ThrowIfDisposed()
        {
            if (_disposed) throw new ObjectDisposedException("ControlChannelTrigger");
        }

        /// <summary>The runtime this channel belongs to.</summary>
        public ControlChannelRuntime ControlChannelRuntime { get { return Runtime; } }

        /// <summary>The channel id given at construction.</summary>
        public string ControlChannelTriggerId
        {
            get
            {
                ThrowIfDisposed();
                IntPtr p;
                Errors.Check(NativeMethods.ctrlchan_channel_get_id(Handle, out p), "ctrlchan_channel_get_id", "ControlChannelTrigger");
                return Utf8.Decode(p) ?? "";
            }
        }

        /// <summary>Server keep-alive interval in whole minutes (rounded down; 0 for sub-minute intervals).
        /// Settable, as on Windows (1 ... 1440): the network interval restarts from the new value and
        /// keep-alives are rescheduled at once.</summary>
        public uint ServerKeepAliveIntervalInMinutes
        {
            get { return (uint)(ServerKeepAliveInterval.Ticks / TimeSpan.TicksPerMinute); }
            set
            {
                if (value < 1 || value > 1440)
                    throw new ArgumentOutOfRangeException("value", value, "ServerKeepAliveIntervalInMinutes must be 1 ... 1440");
                ServerKeepAliveInterval = TimeSpan.FromMinutes(value);
            }
        }

        /// <summary>Server keep-alive interval (100 ms ... 24 h). Settable: the network interval
        /// restarts from the new value and keep-alives are rescheduled at once.</summary>
        public TimeSpan ServerKeepAliveInterval
        {
            get
            {
                ThrowIfDisposed();
                uint ms;
                Errors.Check(NativeMethods.ctrlchan_channel_get_server_keepalive_interval(Handle, out ms), "ctrlchan_channel_get_server_keepalive_interval", "ControlChannelTrigger");
                return TimeSpan.FromMilliseconds(ms);
            }
            set
            {
                ThrowIfDisposed();
                uint ms = Time.ToMilliseconds(value, MinServerKeepAliveInterval, MaxServerKeepAliveInterval, "value");
                Errors.Check(NativeMethods.ctrlchan_channel_set_server_keepalive_interval(Handle, ms), "ctrlchan_channel_set_server_keepalive_interval", "ControlChannelTrigger");
            }
        }

        /// <summary>Effective keep-alive interval in whole minutes (rounded down).</summary>
        public uint CurrentKeepAliveIntervalInMinutes { get { return (uint)(CurrentKeepAliveInterval.Ticks / TimeSpan.TicksPerMinute); } }

        /// <summary>Effective keep-alive interval: min(server interval, network interval); with
        /// <see cref="AdaptiveKeepAlive"/> the network interval is the learned one.</summary>
        public TimeSpan CurrentKeepAliveInterval
        {
            get
            {
                ThrowIfDisposed();
                uint ms;
                Errors.Check(NativeMethods.ctrlchan_channel_current_keepalive_interval(Handle, out ms), "ctrlchan_channel_current_keepalive_interval", "ControlChannelTrigger");
                return TimeSpan.FromMilliseconds(ms);
            }
        }

        /// <summary>The resource type requested at construction.</summary>
        public ControlChannelTriggerResourceType ResourceType
        {
            get
            {
                ThrowIfDisposed();
                ControlChannelTriggerResourceType t;
                Errors.Check(NativeMethods.ctrlchan_channel_get_resource_type(Handle, out t), "ctrlchan_channel_get_resource_type", "ControlChannelTrigger");
                return t;
            }
        }

        /// <summary>True when a hardware slot was requested (kernel TCP keep-alive keeps working while the process sleeps).</summary>
        public bool IsWakeFromLowPowerSupported { get { return ResourceType == ControlChannelTriggerResourceType.RequestHardwareSlot; } }

        /// <summary>The transport given to <see cref="UsingTransport"/> (null before).</summary>
        public IWebSocket TransportObject { get { ThrowIfDisposed(); return _transport; } }

        /// <summary>
        /// The keep-alive task (the Windows KeepAliveTrigger + WebSocketKeepAlive registration).
        /// Without one the channel uses a default Ping task with a 5 s pong timeout. The channel
        /// keeps its own reference: later changes to the task's Mode or PongTimeout apply.
        /// </summary>
        public WebSocketKeepAlive KeepAliveTask
        {
            get { ThrowIfDisposed(); return _keepAlive; }
            set
            {
                if (value == null) throw new ArgumentNullException("value");
                ThrowIfDisposed();
                value.ThrowIfDisposed();
                Errors.Check(NativeMethods.ctrlchan_channel_set_keepalive(Handle, value.Handle), "ctrlchan_channel_set_keepalive", "ControlChannelTrigger");
                _keepAlive = value;
            }
        }

        private TypedEventHandler<ControlChannelTrigger, PushNotificationEventArgs> _pushNotificationReceived;
        private TypedEventHandler<ControlChannelTrigger, KeepAliveCompletedEventArgs> _keepAliveCompleted;
        private TypedEventHandler<ControlChannelTrigger, TransportDisconnectedEventArgs> _transportDisconnected;
        private TypedEventHandler<ControlChannelTrigger, ChannelResetEventArgs> _reset;
        private TypedEventHandler<ControlChannelTrigger, ReconnectingEventArgs> _reconnecting;
        private TypedEventHandler<ControlChannelTrigger, IntervalChangedEventArgs> _intervalChanged;
        private readonly object _maskLock = new object();
        private bool _maskExplicit;        // the app set EventMask: subscriptions leave the mask alone
        private bool _maskAddedKeepAlive;  // KeepAliveCompleted's first subscriber added the KeepAlive bit

        /// <summary>Raised for every message received on the transport (the Windows PushNotificationTrigger).
        /// While it has subscribers, the transport socket's MessageReceived / DataReceived is not raised.</summary>
        public event TypedEventHandler<ControlChannelTrigger, PushNotificationEventArgs> PushNotificationReceived
        {
            add { _listener.Subscribe(ref _pushNotificationReceived, value); }
            remove { _listener.Unsubscribe(ref _pushNotificationReceived, value); }
        }

        /// <summary>Raised when a keep-alive completed (Ping mode: when its Pong arrived; RoundTripTime set).</summary>
        /// <remarks>
        /// Keep-alive acknowledgements are not events by default (<see cref="CtrlChan.EventMask.Default"/>:
        /// the app is woken only for data, loss, close, resets and reconnects; RTT is in
        /// <see cref="Statistics"/>). Subscribing here turns them on for this channel: the first
        /// subscriber adds <see cref="CtrlChan.EventMask.KeepAlive"/> to the native mask, and when the
        /// last one leaves the bit is taken out again if this subscription had added it. Once the app
        /// has set <see cref="EventMask"/> itself, the mask is the app's: subscriptions no longer
        /// change it (so with an explicit mask without KeepAlive, this event is not raised).
        /// </remarks>
        public event TypedEventHandler<ControlChannelTrigger, KeepAliveCompletedEventArgs> KeepAliveCompleted
        {
            add
            {
                if (value == null) return;
                lock (_maskLock)
                {
                    bool first = _keepAliveCompleted == null;
                    // Handler first, then the mask: an acknowledgement is never queued natively
                    // because the handler was not there yet.
                    _listener.Subscribe(ref _keepAliveCompleted, value);
                    if (first && !_maskExplicit) AutoKeepAliveEvents(true);
                }
            }
            remove
            {
                if (value == null) return;
                lock (_maskLock)
                {
                    // Mask first, then the handler: no acknowledgement is created for nobody.
                    var after = Delegate.Remove(_keepAliveCompleted, value);
                    if (after == null && _keepAliveCompleted != null && _maskAddedKeepAlive && !_maskExplicit)
                        AutoKeepAliveEvents(false);
                    _listener.Unsubscribe(ref _keepAliveCompleted, value);
                }
            }
        }

        /// <summary>Adds (on) or removes (off) the KeepAlive bit of the native mask for the
        /// automatic rule of <see cref="KeepAliveCompleted"/>. Caller holds _maskLock.</summary>
        private void AutoKeepAliveEvents(bool on)
        {
            if (_disposed) return;
            try
            {
                uint mask;
                Errors.Check(NativeMethods.ctrlchan_channel_get_event_mask(Handle, out mask), "ctrlchan_channel_get_event_mask", "ControlChannelTrigger");
                const uint bit = (uint)CtrlChan.EventMask.KeepAlive;
                if (on)
                {
                    if ((mask & bit) != 0) return;   // already on (not ours to take back)
                    Errors.Check(NativeMethods.ctrlchan_channel_set_event_mask(Handle, mask | bit), "ctrlchan_channel_set_event_mask", "ControlChannelTrigger");
                    _maskAddedKeepAlive = true;
                }
                else
                {
                    _maskAddedKeepAlive = false;
                    Errors.Check(NativeMethods.ctrlchan_channel_set_event_mask(Handle, mask & ~bit), "ctrlchan_channel_set_event_mask", "ControlChannelTrigger");
                }
            }
            catch (ObjectDisposedException)
            {
                // disposed on another thread: nothing to adjust
            }
        }

        /// <summary>
        /// Which events this channel's transport produces (<c>ctrlchan_channel_set_event_mask</c>).
        /// Default <see cref="CtrlChan.EventMask.Default"/>: everything but keep-alive
        /// acknowledgements, plus <see cref="CtrlChan.EventMask.KeepAlive"/> while
        /// <see cref="KeepAliveCompleted"/> has subscribers (see there). A masked-out event is never
        /// created: no .NET event, nothing in <see cref="ControlChannelRuntime.NextEvent"/>. While a
        /// socket is this channel's transport this mask applies to its events, not the socket's own.
        /// Setting it takes the mask over from the automatic KeepAliveCompleted rule for good.
        /// Any time; applies to later events.
        /// </summary>
        public EventMask EventMask
        {
            get
            {
                ThrowIfDisposed();
                uint mask;
                Errors.Check(NativeMethods.ctrlchan_channel_get_event_mask(Handle, out mask), "ctrlchan_channel_get_event_mask", "ControlChannelTrigger");
                return (EventMask)mask;
            }
            set
            {
                ThrowIfDisposed();
                lock (_maskLock)
                {
                    Errors.Check(NativeMethods.ctrlchan_channel_set_event_mask(Handle, (uint)value), "ctrlchan_channel_set_event_mask", "ControlChannelTrigger");
                    _maskExplicit = true;
                    _maskAddedKeepAlive = false;
                }
            }
        }

        /// <summary>Raised before each reconnect attempt of the <see cref="ReconnectPolicy"/>
        /// (Attempt from 1, Delay before it, Result / Reason: the cause).</summary>
        public event TypedEventHandler<ControlChannelTrigger, ReconnectingEventArgs> Reconnecting
        {
            add { _listener.Subscribe(ref _reconnecting, value); }
            remove { _listener.Unsubscribe(ref _reconnecting, value); }
        }

        /// <summary>
        /// The channel's reconnect policy; null (the default) = a lost transport stays lost. The
        /// policy is copied on assignment; the getter returns a fresh copy. See <see cref="CtrlChan.ReconnectPolicy"/>.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">a value of the policy is out of range.</exception>
        /// <exception cref="InvalidOperationException">the channel was closed.</exception>
        public ReconnectPolicy ReconnectPolicy
        {
            get
            {
                ThrowIfDisposed();
                NativeReconnectPolicy p;
                bool enabled;
                Errors.Check(NativeMethods.ctrlchan_channel_get_reconnect_policy(Handle, out p, out enabled), "ctrlchan_channel_get_reconnect_policy", "ControlChannelTrigger");
                return enabled ? CtrlChan.ReconnectPolicy.FromNative(p) : null;
            }
            set
            {
                ThrowIfDisposed();
                if (value == null)
                {
                    Errors.Check(NativeMethods.ctrlchan_channel_clear_reconnect_policy(Handle, IntPtr.Zero), "ctrlchan_channel_set_reconnect_policy", "ControlChannelTrigger");
                    return;
                }
                NativeReconnectPolicy p = value.ToNative();
                Errors.Check(NativeMethods.ctrlchan_channel_set_reconnect_policy(Handle, ref p), "ctrlchan_channel_set_reconnect_policy", "ControlChannelTrigger");
            }
        }

        /// <summary>
        /// Adaptive keep-alive (beyond Windows); null (the default) = off. When set, the runtime
        /// learns the longest network keep-alive interval the path (NATs, proxies, load balancers)
        /// tolerates between Minimum and min(Maximum, <see cref="ServerKeepAliveInterval"/>), per
        /// network and server host: it doubles the interval after 3 acknowledged keep-alives in a
        /// row, bisects (geometrically) below the first silent loss, settles 20 % below it and
        /// re-probes after 1 h (back-off to 48 h). <see cref="CurrentKeepAliveInterval"/> and
        /// <see cref="Statistics"/> report the learned value; each move raises
        /// <see cref="IntervalChanged"/>; <see cref="DecreaseNetworkKeepAliveInterval"/> tells the
        /// learner the value is too long. Read from the library.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">Minimum below 100 ms, Maximum above 24 h, or Minimum &gt; Maximum.</exception>
        public AdaptiveKeepAliveRange? AdaptiveKeepAlive
        {
            get
            {
                ThrowIfDisposed();
                uint lo, hi;
                Errors.Check(NativeMethods.ctrlchan_channel_get_adaptive_keepalive(Handle, out lo, out hi), "ctrlchan_channel_get_adaptive_keepalive", "ControlChannelTrigger");
                if (lo == 0 && hi == 0) return null;
                return new AdaptiveKeepAliveRange(TimeSpan.FromMilliseconds(lo), TimeSpan.FromMilliseconds(hi));
            }
            set
            {
                ThrowIfDisposed();
                uint lo = 0, hi = 0;
                if (value.HasValue)
                {
                    lo = Time.ToMilliseconds(value.Value.Minimum, MinServerKeepAliveInterval, MaxServerKeepAliveInterval, "value");
                    hi = Time.ToMilliseconds(value.Value.Maximum, MinServerKeepAliveInterval, MaxServerKeepAliveInterval, "value");
                    if (lo > hi) throw new ArgumentOutOfRangeException("value", value.Value, "Minimum must not exceed Maximum");
                }
                Errors.Check(NativeMethods.ctrlchan_channel_set_adaptive_keepalive(Handle, lo, hi), "ctrlchan_channel_set_adaptive_keepalive", "ControlChannelTrigger");
            }
        }

        /// <summary>Raised when adaptive keep-alive moved the network keep-alive interval
        /// (KeepAliveInterval: the new value). In the default event mask; only channels with
        /// <see cref="AdaptiveKeepAlive"/> raise it, a few times while learning, once per network switch.</summary>
        public event TypedEventHandler<ControlChannelTrigger, IntervalChangedEventArgs> IntervalChanged
        {
            add { _listener.Subscribe(ref _intervalChanged, value); }
            remove { _listener.Unsubscribe(ref _intervalChanged, value); }
        }

        /// <summary>A snapshot of the channel's counters: keep-alives sent and acknowledged, reconnects,
        /// last and smoothed round-trip times (RFC 6298), the current keep-alive interval.</summary>
        public ControlChannelTriggerStatistics Statistics
        {
            get
            {
                ThrowIfDisposed();
                NativeChannelStats s;
                Errors.Check(NativeMethods.ctrlchan_channel_get_stats(Handle, out s), "ctrlchan_channel_get_stats", "ControlChannelTrigger");
                return new ControlChannelTriggerStatistics(s);
            }
        }

        /// <summary>Raised once when the transport is lost without a close handshake (Reason says why:
        /// EOF, reset, I/O error or pong timeout). While it has subscribers, the transport socket's
        /// Disconnected is not raised.</summary>
        public event TypedEventHandler<ControlChannelTrigger, TransportDisconnectedEventArgs> TransportDisconnected
        {
            add { _listener.Subscribe(ref _transportDisconnected, value); }
            remove { _listener.Unsubscribe(ref _transportDisconnected, value); }
        }

        /// <summary>Raised when the channel has a fresh transport; ResetReason says why: NewTransport
        /// (UsingTransport), Reconnected (the <see cref="ReconnectPolicy"/> reconnected the same socket),
        /// NetworkChanged or LowPowerExit (a probe after a network change or a resume found the loss).
        /// Messages sent from this handler go out before those queued during the reconnect.</summary>
        public event TypedEventHandler<ControlChannelTrigger, ChannelResetEventArgs> Reset
        {
            add { _listener.Subscribe(ref _reset, value); }
            remove { _listener.Unsubscribe(ref _reset, value); }
        }

        private bool HasSubscribers()
        {
            return _pushNotificationReceived != null || _keepAliveCompleted != null
                || _transportDisconnected != null || _reset != null || _reconnecting != null
                || _intervalChanged != null;
        }

        /// <summary>True while the channel's native event handler is installed (tests).</summary>
        internal bool HasNativeHandler { get { return _listener.IsInstalled; } }

        /// <summary>Binds the socket to this channel. Call before connecting the socket. To reconnect
        /// after the transport closed, create a new socket and call UsingTransport again, or set a
        /// <see cref="ReconnectPolicy"/> to have the same socket reconnected automatically.</summary>
        public void UsingTransport(IWebSocket transport)
        {
            if (transport == null) throw new ArgumentNullException("transport");
            var ws = transport as WebSocketBase;
            if (ws == null) throw new ArgumentException("the transport must be a CtrlChan MessageWebSocket or StreamWebSocket", "transport");
            ThrowIfDisposed();
            ws.ThrowIfDisposed();
            if (!ReferenceEquals(ws.Runtime, Runtime))
                throw new ArgumentException("the transport belongs to a different ControlChannelRuntime", "transport");
            Errors.Check(NativeMethods.ctrlchan_channel_using_transport(Handle, ws.Handle), "ctrlchan_channel_using_transport", "ControlChannelTrigger");
            _transport = transport;
        }

        /// <summary>Call after the transport connected: allocates the slot and starts keep-alives.
        /// TransportDisconnected if not connected, PolicyError beyond the runtime's MaxChannels.</summary>
        public ControlChannelTriggerStatus WaitForPushEnabled()
        {
            ThrowIfDisposed();
            ControlChannelTriggerStatus s;
            Errors.Check(NativeMethods.ctrlchan_channel_wait_for_push_enabled(Handle, out s), "ctrlchan_channel_wait_for_push_enabled", "ControlChannelTrigger");
            return s;
        }

        /// <summary>Tells the runtime the network keep-alive interval was too long (a NAT dropped the mapping):
        /// it is lowered, see <see cref="CurrentKeepAliveInterval"/>.</summary>
        public void DecreaseNetworkKeepAliveInterval()
        {
            ThrowIfDisposed();
            Errors.Check(NativeMethods.ctrlchan_channel_decrease_network_keepalive_interval(Handle), "ctrlchan_channel_decrease_network_keepalive_interval", "ControlChannelTrigger");
        }

        /// <summary>Blocks until queued outbound data reached the kernel (30 s limit).</summary>
        public void FlushTransport() { FlushTransport(TimeSpan.FromSeconds(30)); }

        /// <summary>Blocks until queued outbound data reached the kernel. CtrlChanException(Timeout) past
        /// <paramref name="timeout"/>; InvalidOperationException from an event handler.</summary>
        public void FlushTransport(TimeSpan timeout)
        {
            uint ms = Time.ToMilliseconds(timeout, TimeSpan.Zero, TimeSpan.FromDays(1), "timeout");
            ThrowIfDisposed();
            Errors.Check(NativeMethods.ctrlchan_channel_flush_transport(Handle, ms), "ctrlchan_channel_flush_transport", "ControlChannelTrigger");
        }

        // ---- events from the runtime thread -----------------------------------------

        internal bool OnPushNotification(ControlChannelEventArgs e)
        {
            var h = Volatile.Read(ref _pushNotificationReceived);
            return h != null && Callbacks.Raise(h, this, new PushNotificationEventArgs(e), Runtime, e);
        }

        internal bool OnKeepAlive(ControlChannelEventArgs e)
        {
            var h = Volatile.Read(ref _keepAliveCompleted);
            return h != null && Callbacks.Raise(h, this, new KeepAliveCompletedEventArgs(e), Runtime, e);
        }

        internal bool OnTransportDisconnected(ControlChannelEventArgs e)
        {
            var h = Volatile.Read(ref _transportDisconnected);
            return h != null && Callbacks.Raise(h, this, new TransportDisconnectedEventArgs(e), Runtime, e);
        }

        internal bool OnReconnecting(ControlChannelEventArgs e)
        {
            var h = Volatile.Read(ref _reconnecting);
            return h != null && Callbacks.Raise(h, this, new ReconnectingEventArgs(e), Runtime, e);
        }

        internal bool OnIntervalChanged(ControlChannelEventArgs e)
        {
            var h = Volatile.Read(ref _intervalChanged);
            return h != null && Callbacks.Raise(h, this, new IntervalChangedEventArgs(e), Runtime, e);
        }

        internal bool OnReset(ControlChannelEventArgs e)
        {
            var h = Volatile.Read(ref _reset);
            return h != null && Callbacks.Raise(h, this, new ChannelResetEventArgs(e), Runtime, e);
        }

        // ---- close / dispose --------------------------------------------------------

        /// <summary>Closes the channel (stops its keep-alives, releases its slot) and frees it;
        /// the same as Dispose (Windows IClosable.Close). The transport socket is not disposed.</summary>
        public void Close()
        {
            if (_disposed) return;
            _listener.Close();   // closing releases the native handler
            try
            {
                NativeMethods.ctrlchan_channel_close(Handle);
            }
            catch (ObjectDisposedException) { }
            Dispose();
        }

        /// <summary>Frees the channel. Idempotent.</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _transport = null;
            _keepAlive = null;
            _listener.Close();   // freeing the channel releases its native handler
            Runtime.RemoveChild(_childId);
            Handle.Dispose();
        }
    }
}
