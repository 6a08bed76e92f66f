// Adaptive keep-alive (issue 10) from C#: the nullable range, IntervalChanged with
// KeepAliveInterval, CurrentKeepAliveInterval following the learner, the runtime's StateFile.
// On the loopback peer nothing forgets idle connections, so the learner doubles up to Maximum;
// NAT behaviour is tested in the Rust suite (tests/adaptive_nat*.rs).
using System;
using System.IO;
using System.Linq;
using CtrlChan;
using NUnit.Framework;

namespace CtrlChan.Tests
{
    [TestFixture, Timeout(60000)]
    public class AdaptiveKeepAliveTests
    {
        [Test]
        public void RangeIsCheckedAndReadBackAndNullTurnsItOff()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ch = new ControlChannelTrigger(rt, "adaptive", TimeSpan.FromSeconds(30)))
            {
                Assert.IsNull(ch.AdaptiveKeepAlive);
                Assert.Throws<ArgumentOutOfRangeException>(() =>
                    ch.AdaptiveKeepAlive = new AdaptiveKeepAliveRange(TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(1)));
                Assert.Throws<ArgumentOutOfRangeException>(() =>
                    ch.AdaptiveKeepAlive = new AdaptiveKeepAliveRange(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1)));
                Assert.Throws<ArgumentOutOfRangeException>(() =>
                    ch.AdaptiveKeepAlive = new AdaptiveKeepAliveRange(TimeSpan.FromSeconds(1), TimeSpan.FromDays(2)));
                var range = new AdaptiveKeepAliveRange(TimeSpan.FromMilliseconds(500), TimeSpan.FromMinutes(10));
                ch.AdaptiveKeepAlive = range;
                Assert.AreEqual(range, ch.AdaptiveKeepAlive);
                Assert.AreEqual(TimeSpan.FromMilliseconds(500), ch.CurrentKeepAliveInterval, "the learner starts at Minimum");
                Assert.AreEqual(TimeSpan.FromMilliseconds(500), ch.Statistics.CurrentKeepAliveInterval);
                ch.AdaptiveKeepAlive = null;
                Assert.IsNull(ch.AdaptiveKeepAlive);
                Assert.AreEqual(TimeSpan.FromSeconds(30), ch.CurrentKeepAliveInterval, "off: the server interval again");
            }
        }

        [Test]
        public void IntervalChangedFollowsTheLearnerAndTheStateFileIsWritten()
        {
            string dir = Path.Combine(Path.GetTempPath(), "ctrlchan-cs-adaptive-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            string state = Path.Combine(dir, "adaptive.txt");
            try
            {
                using (var rt = new ControlChannelRuntime())
                {
                    rt.CoalescingWindow = TimeSpan.Zero;
                    Assert.IsNull(rt.StateFile);
                    rt.StateFile = state;
                    Assert.AreEqual(state, rt.StateFile);
                    using (var ws = new MessageWebSocket(rt))
                    using (var ch = new ControlChannelTrigger(rt, "learn", TimeSpan.FromSeconds(8)))
                    {
                        var moves = new Recorder<IntervalChangedEventArgs>();
                        ch.IntervalChanged += (o, e) => moves.Add(e);
                        ch.UsingTransport(ws);
                        Wait.On(ws.ConnectAsync(PeerFixture.Url("/echo")), Wait.Long);
                        Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, ch.WaitForPushEnabled());
                        ch.AdaptiveKeepAlive = new AdaptiveKeepAliveRange(TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(800));
                        Assert.IsTrue(moves.WaitCount(2, TimeSpan.FromSeconds(6)), "two moves: 0.4 s, 0.8 s");
                        CollectionAssert.AreEqual(new[] { 400.0, 800.0 }, moves.Items.Select(e => e.KeepAliveInterval.TotalMilliseconds).ToArray());
                        Assert.AreEqual(ControlChannelEventKind.IntervalChanged, moves.Items[0].Kind);
                        Assert.AreEqual(TimeSpan.FromMilliseconds(800), ch.CurrentKeepAliveInterval);
                        Assert.AreEqual(TimeSpan.FromMilliseconds(800), ch.Statistics.CurrentKeepAliveInterval);
                    }
                }
                Assert.IsTrue(File.ReadAllText(state).StartsWith("ctrlchan-adaptive v1"), "saved at dispose");
            }
            finally
            {
                Directory.Delete(dir, true);
            }
        }
    }
}
