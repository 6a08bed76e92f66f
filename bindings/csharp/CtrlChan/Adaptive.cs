// Adaptive keep-alive (beyond Windows): the range type and the IntervalChanged event arguments.
using System;

namespace CtrlChan
{
    /// <summary>
    /// The range adaptive keep-alive learns the network keep-alive interval in: from
    /// <see cref="Minimum"/> up to min(<see cref="Maximum"/>, the server keep-alive interval).
    /// Set it with <see cref="ControlChannelTrigger.AdaptiveKeepAlive"/> (null = off).
    /// </summary>
    public struct AdaptiveKeepAliveRange : IEquatable<AdaptiveKeepAliveRange>
    {
        /// <summary>Shortest interval the learner uses (and starts from), at least 100 ms.</summary>
        public TimeSpan Minimum { get; private set; }
        /// <summary>Longest interval the learner tries (at most 24 h, at least Minimum).</summary>
        public TimeSpan Maximum { get; private set; }

        /// <summary>A range; checked (ArgumentOutOfRangeException) when assigned to a channel.</summary>
        public AdaptiveKeepAliveRange(TimeSpan minimum, TimeSpan maximum) : this()
        {
            Minimum = minimum;
            Maximum = maximum;
        }

        /// <summary>Value equality.</summary>
        public bool Equals(AdaptiveKeepAliveRange other) { return Minimum == other.Minimum && Maximum == other.Maximum; }
        /// <summary>Value equality.</summary>
        public override bool Equals(object obj) { return obj is AdaptiveKeepAliveRange && Equals((AdaptiveKeepAliveRange)obj); }
        /// <summary>Hash of both bounds.</summary>
        public override int GetHashCode() { return Minimum.GetHashCode() * 31 + Maximum.GetHashCode(); }
        /// <summary>"[min, max]".</summary>
        public override string ToString() { return "[" + Minimum + ", " + Maximum + "]"; }
    }

    /// <summary>Adaptive keep-alive moved the channel's network keep-alive interval to
    /// <see cref="ControlChannelEventArgs.KeepAliveInterval"/> (also what
    /// <see cref="ControlChannelTrigger.CurrentKeepAliveInterval"/> reports now).</summary>
    public sealed class IntervalChangedEventArgs : ControlChannelEventArgs
    {
        internal IntervalChangedEventArgs(ControlChannelEventArgs e) : base(e) { }
    }
}
