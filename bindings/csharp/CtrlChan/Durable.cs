// Durable, quiet channels: the reconnect policy and the per-channel statistics
// (struct ctrlchan_reconnect_policy / struct ctrlchan_channel_stats in include/ctrlchan.h).
using System;

namespace CtrlChan
{
    /// <summary>
    /// How a <see cref="ControlChannelTrigger"/> reconnects a lost transport
    /// (<c>ctrlchan_reconnect_policy</c>); set it with <see cref="ControlChannelTrigger.ReconnectPolicy"/>
    /// (null, the default, means no reconnects).
    /// </summary>
    /// <remarks>
    /// With a policy, a lost transport is reconnected on the same socket object, to the same URI
    /// with the same options; keep-alives resume without another WaitForPushEnabled. Each attempt
    /// is announced by <see cref="ControlChannelTrigger.Reconnecting"/>, success by
    /// <see cref="ControlChannelTrigger.Reset"/> (ResetReason Reconnected, or NetworkChanged /
    /// LowPowerExit when a probe found the loss). The first retry waits a random time in
    /// [0, InitialDelay] (RFC 6455 7.2.3); each further one the previous delay times
    /// <see cref="Multiplier"/>, capped at <see cref="MaxDelay"/>, randomised by +/- <see cref="Jitter"/>.
    /// After <see cref="MaxAttempts"/> failed attempts the channel raises TransportDisconnected with
    /// the last cause. Never retried: a close or Dispose by the app, TLS failures, HTTP 4xx other than
    /// 408/429 (401 and 403 among them), a subprotocol mismatch, the peer's close codes 1000, 1002,
    /// 1003, 1007-1010 and 4000-4999. Messages sent while reconnecting are queued (bounded by the
    /// outbound buffer limit) and go out after the Reset handlers returned, so what those handlers
    /// send (re-subscribe) goes first; nothing is sent twice.
    /// Values are copied when the policy is assigned: later changes to this object do not apply.
    /// </remarks>
    public sealed class ReconnectPolicy
    {
        private static readonly TimeSpan MaxAllowedDelay = TimeSpan.FromMilliseconds(uint.MaxValue);

        /// <summary>Upper bound of the first retry's random wait (default 1 s). At most MaxDelay.</summary>
        public TimeSpan InitialDelay { get; set; }
        /// <summary>Cap on any delay (default 60 s). Above zero.</summary>
        public TimeSpan MaxDelay { get; set; }
        /// <summary>Each further retry waits the previous delay times this (default 1.6; 1.0 ... 10.0,
        /// kept to two decimals).</summary>
        public double Multiplier { get; set; }
        /// <summary>Each delay after the first is randomised by +/- this share (default 0.2; 0 ... 1,
        /// kept to two decimals).</summary>
        public double Jitter { get; set; }
        /// <summary>Attempts before giving up; 0 = unlimited (the default).</summary>
        public int MaxAttempts { get; set; }

        /// <summary>The library's defaults (initial 1 s, cap 60 s, x1.6, +/- 20 %, unlimited).</summary>
        public ReconnectPolicy()
        {
            NativeReconnectPolicy p;
            NativeMethods.ctrlchan_reconnect_policy_default(out p);
            CopyFrom(p);
        }

        /// <summary>A new policy with the library's defaults (a fresh object on every call).</summary>
        public static ReconnectPolicy Default { get { return new ReconnectPolicy(); } }

        internal static ReconnectPolicy FromNative(NativeReconnectPolicy p)
        {
            var r = new ReconnectPolicy();
            r.CopyFrom(p);
            return r;
        }

        private void CopyFrom(NativeReconnectPolicy p)
        {
            InitialDelay = TimeSpan.FromMilliseconds(p.InitialDelayMs);
            MaxDelay = TimeSpan.FromMilliseconds(p.MaxDelayMs);
            Multiplier = p.MultiplierPercent / 100.0;
            Jitter = p.JitterPercent / 100.0;
            MaxAttempts = (int)Math.Min(p.MaxAttempts, (uint)int.MaxValue);
        }

        /// <summary>Checks the values and converts them; ArgumentOutOfRangeException names the bad one.</summary>
        internal NativeReconnectPolicy ToNative()
        {
            uint max = Time.ToMilliseconds(MaxDelay, TimeSpan.FromMilliseconds(1), MaxAllowedDelay, "MaxDelay");
            uint initial = Time.ToMilliseconds(InitialDelay, TimeSpan.Zero, MaxDelay, "InitialDelay");
            if (double.IsNaN(Multiplier) || Multiplier < 1.0 || Multiplier > 10.0)
                throw new ArgumentOutOfRangeException("Multiplier", Multiplier, "must be between 1.0 and 10.0");
            if (double.IsNaN(Jitter) || Jitter < 0.0 || Jitter > 1.0)
                throw new ArgumentOutOfRangeException("Jitter", Jitter, "must be between 0 and 1");
            if (MaxAttempts < 0)
                throw new ArgumentOutOfRangeException("MaxAttempts", MaxAttempts, "must not be negative (0 = unlimited)");
            return new NativeReconnectPolicy
            {
                InitialDelayMs = initial,
                MaxDelayMs = max,
                MultiplierPercent = (uint)Math.Round(Multiplier * 100.0),
                JitterPercent = (uint)Math.Round(Jitter * 100.0),
                MaxAttempts = (uint)MaxAttempts,
            };
        }

        public override string ToString()
        {
            return string.Format("ReconnectPolicy(initial {0} ms, max {1} ms, x{2:0.##}, jitter {3:0.##}, attempts {4})",
                                 (long)InitialDelay.TotalMilliseconds, (long)MaxDelay.TotalMilliseconds, Multiplier, Jitter,
                                 MaxAttempts == 0 ? "unlimited" : MaxAttempts.ToString());
        }
    }

    /// <summary>A snapshot of one channel's counters (<c>ctrlchan_channel_stats</c>),
    /// see <see cref="ControlChannelTrigger.Statistics"/>.</summary>
    public sealed class ControlChannelTriggerStatistics
    {
        internal ControlChannelTriggerStatistics(NativeChannelStats s)
        {
            KeepAlivesSent = s.KeepalivesSent;
            KeepAlivesAcknowledged = s.KeepalivesAcked;
            Reconnects = s.Reconnects;
            LastRoundTripTime = Micro(s.LastRttUs);
            SmoothedRoundTripTime = Micro(s.SrttUs);
            RoundTripTimeVariation = Micro(s.RttvarUs);
            CurrentKeepAliveInterval = TimeSpan.FromMilliseconds(s.CurrentIntervalMs);
        }

        private static TimeSpan Micro(uint us) { return TimeSpan.FromTicks((long)us * 10); }

        /// <summary>Keep-alive frames sent on this channel's transports.</summary>
        public ulong KeepAlivesSent { get; private set; }
        /// <summary>Keep-alive pings answered by a pong.</summary>
        public ulong KeepAlivesAcknowledged { get; private set; }
        /// <summary>Successful reconnects by the reconnect policy.</summary>
        public ulong Reconnects { get; private set; }
        /// <summary>Round-trip time of the last acknowledged keep-alive (zero before the first pong).</summary>
        public TimeSpan LastRoundTripTime { get; private set; }
        /// <summary>Smoothed round-trip time, as TCP computes it (RFC 6298 SRTT; zero before the first pong).</summary>
        public TimeSpan SmoothedRoundTripTime { get; private set; }
        /// <summary>Round-trip time variation (RFC 6298 RTTVAR; zero before the first pong).</summary>
        public TimeSpan RoundTripTimeVariation { get; private set; }
        /// <summary>The interval keep-alives follow now.</summary>
        public TimeSpan CurrentKeepAliveInterval { get; private set; }

        public override string ToString()
        {
            return string.Format("sent {0}, acked {1}, reconnects {2}, rtt {3:F3} ms (srtt {4:F3}, rttvar {5:F3}), interval {6} ms",
                                 KeepAlivesSent, KeepAlivesAcknowledged, Reconnects, LastRoundTripTime.TotalMilliseconds,
                                 SmoothedRoundTripTime.TotalMilliseconds, RoundTripTimeVariation.TotalMilliseconds,
                                 (long)CurrentKeepAliveInterval.TotalMilliseconds);
        }
    }
}
