// Durable, quiet channels (issue 8): event masks, per-channel statistics, the runtime queue
// limit, the reconnect policy (a peer process stopped and restarted on the same port), and
// the simulated suspend.
using System;
using System.Linq;
using System.Threading;
using CtrlChan;
using NUnit.Framework;

namespace CtrlChan.Tests
{
    [TestFixture, Timeout(60000)]
    public class EventMaskTests
    {
        [Test]
        public void EnumValuesMatchTheHeader()
        {
            Assert.AreEqual(0u, (uint)ControlChannelTriggerResetReason.FastUserSwitched);
            Assert.AreEqual(1u, (uint)ControlChannelTriggerResetReason.LowPowerExit);
            Assert.AreEqual(2u, (uint)ControlChannelTriggerResetReason.QuietHoursExit);
            Assert.AreEqual(3u, (uint)ControlChannelTriggerResetReason.ApplicationRestart);
            Assert.AreEqual(16u, (uint)ControlChannelTriggerResetReason.NewTransport);
            Assert.AreEqual(17u, (uint)ControlChannelTriggerResetReason.Reconnected);
            Assert.AreEqual(18u, (uint)ControlChannelTriggerResetReason.NetworkChanged);
            Assert.AreEqual(7u, (uint)ControlChannelEventKind.Reconnecting);
            Assert.AreEqual(8u, (uint)ControlChannelEventKind.IntervalChanged);
            Assert.AreEqual(14u, (uint)CtrlChanResult.ProxyFailed);
            Assert.AreEqual(15u, (uint)CtrlChanResult.QueueFull);
            // One mask member per event kind, at bit (1 << kind).
            foreach (ControlChannelEventKind k in Enum.GetValues(typeof(ControlChannelEventKind)))
            {
                EventMask m;
                Assert.IsTrue(Enum.TryParse(k.ToString(), out m), "EventMask." + k);
                Assert.AreEqual(1u << (int)k, (uint)m, "EventMask." + k);
            }
            Assert.AreEqual(0xFFFFFFFFu, (uint)EventMask.All);
            Assert.AreEqual(0xFFFFFFFFu & ~2u, (uint)EventMask.Default);
        }

        [Test]
        public void ResultNamesMatchTheLibrary()
        {
            foreach (var r in new[] { CtrlChanResult.ProxyFailed, CtrlChanResult.QueueFull })
            {
                var e = Errors.Create(r, "detail", "op", null);
                Assert.IsInstanceOf<CtrlChanException>(e);
                Assert.AreEqual(r, ((CtrlChanException)e).Result);
                Assert.AreEqual(Utf8.Decode(NativeMethods.ctrlchan_result_name(r)), Errors.ResultName(r));
            }
        }

        [Test]
        public void DefaultMaskHasNoKeepAliveAndSubscribingTurnsItOn()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ws = new MessageWebSocket(rt))
            using (var ch = new ControlChannelTrigger(rt, "mask", TimeSpan.FromSeconds(30)))
            {
                Assert.AreEqual(EventMask.Default, ch.EventMask);
                Assert.AreEqual(EventMask.Default, ws.EventMask);
                Assert.IsFalse(ch.EventMask.HasFlag(EventMask.KeepAlive));

                TypedEventHandler<ControlChannelTrigger, KeepAliveCompletedEventArgs> a = (o, e) => { };
                TypedEventHandler<ControlChannelTrigger, KeepAliveCompletedEventArgs> b = (o, e) => { };
                ch.KeepAliveCompleted += a;
                Assert.AreEqual(EventMask.Default | EventMask.KeepAlive, ch.EventMask, "first subscriber turns KeepAlive on");
                ch.KeepAliveCompleted += b;
                ch.KeepAliveCompleted -= a;
                Assert.IsTrue(ch.EventMask.HasFlag(EventMask.KeepAlive), "still one subscriber");
                ch.KeepAliveCompleted -= b;
                Assert.AreEqual(EventMask.Default, ch.EventMask, "the last one leaving restores the mask");
                Assert.AreEqual(EventMask.Default, ws.EventMask, "the socket's own mask is untouched");
            }
        }

        [Test]
        public void AnExplicitMaskIsNotChangedBySubscriptions()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ch = new ControlChannelTrigger(rt, "mask", TimeSpan.FromSeconds(30)))
            {
                TypedEventHandler<ControlChannelTrigger, KeepAliveCompletedEventArgs> a = (o, e) => { };
                ch.KeepAliveCompleted += a;
                ch.EventMask = EventMask.All;               // the app takes over
                ch.KeepAliveCompleted -= a;
                Assert.AreEqual(EventMask.All, ch.EventMask, "explicit mask kept after the last unsubscribe");

                ch.EventMask = EventMask.PushNotification | EventMask.Closed;
                ch.KeepAliveCompleted += a;
                Assert.AreEqual(EventMask.PushNotification | EventMask.Closed, ch.EventMask, "explicit mask kept on subscribe");
                ch.KeepAliveCompleted -= a;
            }
        }

        [Test]
        public void WebSocketMaskRoundTrips()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ms = new MessageWebSocket(rt))
            using (var ss = new StreamWebSocket(rt))
            {
                ms.EventMask = EventMask.All;
                Assert.AreEqual(EventMask.All, ms.EventMask);
                ss.EventMask = EventMask.Default & ~EventMask.PushNotification;
                Assert.AreEqual(EventMask.Default & ~EventMask.PushNotification, ss.EventMask);
                ms.Dispose();
                Assert.Throws<ObjectDisposedException>(() => { var m = ms.EventMask; });
            }
        }

        [Test]
        public void KeepAliveAcknowledgementsAreNotQueuedByDefaultButCounted()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ws = new MessageWebSocket(rt))
            using (var ch = new ControlChannelTrigger(rt, "quiet", TimeSpan.FromMilliseconds(150)))
            {
                rt.CoalescingWindow = TimeSpan.Zero;
                ch.UsingTransport(ws);
                ws.Connect(PeerFixture.Url("/echo"));
                Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, ch.WaitForPushEnabled());
                // Nothing listens: every event of the socket would go to the runtime queue.
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(1.2);
                int keepAlives = 0;
                while (DateTime.UtcNow < deadline)
                {
                    var ev = rt.NextEvent(TimeSpan.FromMilliseconds(100));
                    if (ev != null && ev.Kind == ControlChannelEventKind.KeepAlive) keepAlives++;
                }
                Assert.AreEqual(0, keepAlives, "no KeepAlive event is created with the default mask");
                var s = ch.Statistics;
                Assert.GreaterOrEqual(s.KeepAlivesAcknowledged, 3ul, "keep-alives ran: " + s);

                // Asking for them explicitly puts them in the queue.
                ch.EventMask = EventMask.All;
                var ka = rt.NextEvent(TimeSpan.FromSeconds(3));
                while (ka != null && ka.Kind != ControlChannelEventKind.KeepAlive) ka = rt.NextEvent(TimeSpan.FromSeconds(3));
                Assert.IsNotNull(ka, "KeepAlive event with EventMask.All");
                Assert.AreSame(ch, ka.Channel);
            }
        }

        [Test]
        public void MessageTypeCanChangeWhileConnected()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ws = new MessageWebSocket(rt))
            {
                var echoes = new Recorder<MessageWebSocketMessageReceivedEventArgs>();
                ws.MessageReceived += (o, e) => echoes.Add(e);
                ws.Control.MessageType = SocketMessageType.Binary;
                Wait.On(ws.ConnectAsync(PeerFixture.Url("/echo")), Wait.Long);
                ws.SendAsync(new byte[] { 0x61 });
                Assert.IsTrue(echoes.WaitCount(1, Wait.Short));
                ws.Control.MessageType = SocketMessageType.Utf8;   // Windows allows this at any time
                ws.SendAsync(new byte[] { 0x62 });
                Assert.IsTrue(echoes.WaitCount(2, Wait.Short));
                Assert.AreEqual(SocketMessageType.Binary, echoes.Items[0].MessageType);
                Assert.AreEqual(SocketMessageType.Utf8, echoes.Items[1].MessageType);
                Assert.AreEqual("b", echoes.Items[1].GetDataString());
            }
        }

        [Test]
        public void SubscribingToKeepAliveCompletedRaisesIt()
        {
            using (var rt = new ControlChannelRuntime())
            {
                rt.CoalescingWindow = TimeSpan.Zero;
                // Session.Open subscribes KeepAliveCompleted and nothing else about the mask.
                using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromMilliseconds(150)))
                {
                    Assert.IsTrue(s.KeepAlives.WaitCount(2, Wait.Short), "KeepAliveCompleted raised");
                    Assert.IsTrue(s.Channel.EventMask.HasFlag(EventMask.KeepAlive));
                }
            }
        }
    }

    [TestFixture, Timeout(60000)]
    public class ChannelStatisticsTests
    {
        [Test]
        public void StatisticsGrowWithKeepAlives()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ws = new MessageWebSocket(rt))
            using (var ch = new ControlChannelTrigger(rt, "stats", TimeSpan.FromMilliseconds(200)))
            {
                rt.CoalescingWindow = TimeSpan.Zero;
                var before = ch.Statistics;
                Assert.AreEqual(0ul, before.KeepAlivesSent);
                Assert.AreEqual(TimeSpan.Zero, before.SmoothedRoundTripTime, "0 before the first pong");
                ch.UsingTransport(ws);
                ws.Connect(PeerFixture.Url("/echo"));
                ch.WaitForPushEnabled();
                Assert.IsTrue(Wait.Until(() => ch.Statistics.KeepAlivesAcknowledged >= 2, Wait.Short), "two pongs: " + ch.Statistics);
                var s1 = ch.Statistics;
                Assert.IsTrue(Wait.Until(() => ch.Statistics.KeepAlivesAcknowledged >= s1.KeepAlivesAcknowledged + 2, Wait.Short), "growing");
                var s2 = ch.Statistics;
                Assert.Greater(s2.KeepAlivesSent, s1.KeepAlivesSent);
                Assert.GreaterOrEqual(s2.KeepAlivesSent, s2.KeepAlivesAcknowledged);
                Assert.That(s2.LastRoundTripTime, Is.GreaterThan(TimeSpan.Zero).And.LessThan(TimeSpan.FromMilliseconds(500)));
                Assert.That(s2.SmoothedRoundTripTime, Is.GreaterThan(TimeSpan.Zero).And.LessThan(TimeSpan.FromMilliseconds(500)));
                Assert.That(s2.RoundTripTimeVariation, Is.GreaterThanOrEqualTo(TimeSpan.Zero));
                Assert.AreEqual(TimeSpan.FromMilliseconds(200), s2.CurrentKeepAliveInterval);
                Assert.AreEqual(0ul, s2.Reconnects);
                ch.Dispose();
                Assert.Throws<ObjectDisposedException>(() => { var s = ch.Statistics; });
            }
        }

        [Test]
        public void EventQueueLimitReadsBack()
        {
            using (var rt = new ControlChannelRuntime())
            {
                Assert.AreEqual(65536u, rt.EventQueueLimit, "default");
                rt.EventQueueLimit = 1000;
                Assert.AreEqual(1000u, rt.EventQueueLimit);
                Assert.Throws<ArgumentOutOfRangeException>(() => rt.EventQueueLimit = 0);
                Assert.AreEqual(1000u, rt.EventQueueLimit);
                rt.Dispose();
                Assert.Throws<ObjectDisposedException>(() => { var l = rt.EventQueueLimit; });
            }
        }

        [Test]
        public void ReconnectPolicyPropertyRoundTrips()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ch = new ControlChannelTrigger(rt, "policy", TimeSpan.FromSeconds(30)))
            {
                Assert.IsNull(ch.ReconnectPolicy, "off by default");
                var d = ReconnectPolicy.Default;
                Assert.AreEqual(TimeSpan.FromSeconds(1), d.InitialDelay);
                Assert.AreEqual(TimeSpan.FromSeconds(60), d.MaxDelay);
                Assert.AreEqual(1.6, d.Multiplier, 1e-9);
                Assert.AreEqual(0.2, d.Jitter, 1e-9);
                Assert.AreEqual(0, d.MaxAttempts);
                Assert.AreNotSame(d, ReconnectPolicy.Default, "a fresh copy each time");

                ch.ReconnectPolicy = new ReconnectPolicy
                {
                    InitialDelay = TimeSpan.FromMilliseconds(250), MaxDelay = TimeSpan.FromSeconds(5),
                    Multiplier = 2.0, Jitter = 0.5, MaxAttempts = 7,
                };
                var p = ch.ReconnectPolicy;
                Assert.AreEqual(TimeSpan.FromMilliseconds(250), p.InitialDelay);
                Assert.AreEqual(TimeSpan.FromSeconds(5), p.MaxDelay);
                Assert.AreEqual(2.0, p.Multiplier, 1e-9);
                Assert.AreEqual(0.5, p.Jitter, 1e-9);
                Assert.AreEqual(7, p.MaxAttempts);

                Assert.Throws<ArgumentOutOfRangeException>(() => ch.ReconnectPolicy = new ReconnectPolicy { Multiplier = 0.5 });
                Assert.Throws<ArgumentOutOfRangeException>(() => ch.ReconnectPolicy = new ReconnectPolicy { Jitter = 1.5 });
                Assert.Throws<ArgumentOutOfRangeException>(() => ch.ReconnectPolicy = new ReconnectPolicy { MaxAttempts = -1 });
                Assert.Throws<ArgumentOutOfRangeException>(() => ch.ReconnectPolicy = new ReconnectPolicy
                    { InitialDelay = TimeSpan.FromSeconds(10), MaxDelay = TimeSpan.FromSeconds(5) });
                Assert.AreEqual(7, ch.ReconnectPolicy.MaxAttempts, "a rejected policy changes nothing");

                ch.ReconnectPolicy = null;
                Assert.IsNull(ch.ReconnectPolicy);
            }
        }
    }

    [TestFixture, Timeout(90000)]
    public class ReconnectTests
    {
        private static ReconnectPolicy Fast(int maxAttempts)
        {
            return new ReconnectPolicy
            {
                InitialDelay = TimeSpan.FromMilliseconds(100),
                MaxDelay = TimeSpan.FromMilliseconds(400),
                Multiplier = 1.5,
                Jitter = 0.2,
                MaxAttempts = maxAttempts,
            };
        }

        [Test]
        public void ServerRestartOnTheSamePortReconnectsTheSameSocket()
        {
            PeerProcess peer = PeerProcess.Start("server.py", "--port", "0");
            int port = peer.Port;
            try
            {
                using (var rt = new ControlChannelRuntime())
                using (var ws = new MessageWebSocket(rt))
                using (var ch = new ControlChannelTrigger(rt, "durable", TimeSpan.FromMilliseconds(500)))
                {
                    var pushes = new Recorder<string>();
                    var reconnecting = new Recorder<ReconnectingEventArgs>();
                    var resets = new Recorder<ChannelResetEventArgs>();
                    var disconnects = new Recorder<TransportDisconnectedEventArgs>();
                    int pushesAtReset = -1;
                    ws.Control.MessageType = SocketMessageType.Utf8;
                    ch.ReconnectPolicy = Fast(0);
                    ch.PushNotificationReceived += (o, e) => pushes.Add(e.GetDataString());
                    ch.Reconnecting += (o, e) => reconnecting.Add(e);
                    ch.Reset += (o, e) => { pushesAtReset = pushes.Count; resets.Add(e); };
                    ch.TransportDisconnected += (o, e) => disconnects.Add(e);
                    ch.UsingTransport(ws);
                    Wait.On(ws.ConnectAsync(new Uri("ws://127.0.0.1:" + port + "/push?n=100000&size=8&interval_ms=50&type=text")), Wait.Long);
                    Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, ch.WaitForPushEnabled());
                    Assert.IsTrue(pushes.WaitCount(3, Wait.Short), "pushes before the restart");

                    // Stop the server; let at least one attempt fail (connection refused); restart it.
                    peer.Dispose();
                    peer = null;
                    Assert.IsTrue(reconnecting.WaitCount(2, Wait.Long), "Reconnecting while the server is down");
                    Assert.AreEqual(0, resets.Count, "no Reset while the server is down");
                    peer = PeerProcess.Start("server.py", "--port", port.ToString());

                    Assert.IsTrue(resets.WaitCount(1, Wait.Long), "Reset after the restart");
                    var reset = resets.Items[0];
                    Assert.AreEqual(ControlChannelTriggerResetReason.Reconnected, reset.ResetReason);
                    Assert.AreSame(ch, reset.Channel);
                    Assert.AreSame(ws, reset.WebSocket, "the same socket object");
                    Assert.AreSame(ws, ch.TransportObject);

                    var r = reconnecting.Items;
                    Assert.AreEqual(1u, r[0].Attempt, "attempts count from 1");
                    for (int i = 1; i < r.Count; i++) Assert.AreEqual(r[i - 1].Attempt + 1, r[i].Attempt, "attempt " + i);
                    Assert.That(r[0].Delay, Is.LessThanOrEqualTo(TimeSpan.FromMilliseconds(100)), "first retry in [0, initial]");
                    foreach (var e in r)
                    {
                        Assert.That(e.Delay, Is.LessThanOrEqualTo(TimeSpan.FromMilliseconds(400 * 1.2 + 1)), "capped (+jitter): " + e);
                        Assert.AreNotEqual(CtrlChanResult.Ok, e.Result, "a cause: " + e);
                        Assert.AreSame(ws, e.WebSocket);
                    }
                    Assert.AreEqual(0, disconnects.Count, "no TransportDisconnected while the policy retries");

                    Assert.IsTrue(pushes.WaitCount(pushesAtReset + 3, Wait.Short), "pushes flow again after the Reset");
                    Assert.AreEqual(WebSocketConnectionState.Open, ws.State);
                    Assert.AreEqual(1ul, ch.Statistics.Reconnects);
                    // Keep-alives resumed on their own (no second WaitForPushEnabled).
                    ulong acked = ch.Statistics.KeepAlivesAcknowledged;
                    Assert.IsTrue(Wait.Until(() => ch.Statistics.KeepAlivesAcknowledged > acked, TimeSpan.FromSeconds(3)),
                                  "keep-alives after the reconnect: " + ch.Statistics);
                }
            }
            finally
            {
                if (peer != null) peer.Dispose();
            }
        }

        [Test]
        public void SendsDuringTheReconnectGoOutAfterTheResetHandlerOnce()
        {
            PeerProcess peer = PeerProcess.Start("server.py", "--port", "0");
            int port = peer.Port;
            try
            {
                using (var rt = new ControlChannelRuntime())
                using (var ws = new MessageWebSocket(rt))
                using (var ch = new ControlChannelTrigger(rt, "backlog", TimeSpan.FromSeconds(30)))
                {
                    var echoes = new Recorder<string>();
                    var reconnecting = new Recorder<ReconnectingEventArgs>();
                    var resets = new Recorder<ChannelResetEventArgs>();
                    ws.Control.MessageType = SocketMessageType.Utf8;
                    ch.ReconnectPolicy = Fast(0);
                    ch.PushNotificationReceived += (o, e) => echoes.Add(e.GetDataString());
                    ch.Reconnecting += (o, e) => reconnecting.Add(e);
                    ch.Reset += (o, e) =>
                    {
                        ((MessageWebSocket)e.WebSocket).SendAsync("resubscribe");   // from the handler: goes first
                        resets.Add(e);
                    };
                    ch.UsingTransport(ws);
                    Wait.On(ws.ConnectAsync(new Uri("ws://127.0.0.1:" + port + "/echo")), Wait.Long);
                    ch.WaitForPushEnabled();
                    ws.SendAsync("before");
                    Assert.IsTrue(echoes.WaitCount(1, Wait.Short));

                    peer.Dispose();
                    peer = null;
                    Assert.IsTrue(reconnecting.WaitCount(1, Wait.Long), "Reconnecting");
                    ws.SendAsync("queued 1");   // queued while reconnecting, not an error
                    ws.SendAsync("queued 2");
                    peer = PeerProcess.Start("server.py", "--port", port.ToString());
                    Assert.IsTrue(resets.WaitCount(1, Wait.Long), "Reset");
                    Assert.IsTrue(echoes.WaitCount(4, Wait.Short), "echoes: " + string.Join(", ", echoes.Items));
                    Thread.Sleep(300);
                    var got = echoes.Items;
                    string seen = string.Join(", ", got);
                    // Delivered exactly once each, the backlog in order, nothing lost.
                    CollectionAssert.AreEquivalent(new[] { "before", "resubscribe", "queued 1", "queued 2" }, got, seen);
                    Assert.AreEqual("before", got[0], seen);
                    Assert.Less(got.IndexOf("queued 1"), got.IndexOf("queued 2"), seen);
                    // The contract (ctrlchan_channel_set_reconnect_policy): what the Reset handler
                    // sends goes out before the backlog.
                    Assert.AreEqual("resubscribe", got[1], seen);
                }
            }
            finally
            {
                if (peer != null) peer.Dispose();
            }
        }

        [Test]
        public void StreamSocketInputStreamSurvivesTheReconnect()
        {
            PeerProcess peer = PeerProcess.Start("server.py", "--port", "0");
            int port = peer.Port;
            try
            {
                using (var rt = new ControlChannelRuntime())
                using (var ws = new StreamWebSocket(rt))
                using (var ch = new ControlChannelTrigger(rt, "stream", TimeSpan.FromSeconds(30)))
                {
                    var resets = new Recorder<ChannelResetEventArgs>();
                    ch.ReconnectPolicy = Fast(0);
                    ch.Reset += (o, e) => resets.Add(e);   // the channel listens; data goes on to the InputStream
                    ch.UsingTransport(ws);
                    var input = ws.InputStream;
                    Wait.On(ws.ConnectAsync(new Uri("ws://127.0.0.1:" + port + "/echo")), Wait.Long);
                    ch.WaitForPushEnabled();
                    var buf = new byte[64];
                    ws.SendAsync(new byte[] { 1, 2, 3 });
                    var read = input.ReadAsync(buf, 0, buf.Length);
                    Assert.IsTrue(read.Wait(Wait.Short));
                    Assert.AreEqual(3, read.Result);

                    peer.Dispose();
                    peer = PeerProcess.Start("server.py", "--port", port.ToString());
                    Assert.IsTrue(resets.WaitCount(1, Wait.Long), "Reset");
                    Assert.AreEqual(ControlChannelTriggerResetReason.Reconnected, resets.Items[0].ResetReason);
                    ws.SendAsync(new byte[] { 4, 5 });
                    read = input.ReadAsync(buf, 0, buf.Length);
                    Assert.IsTrue(read.Wait(Wait.Short), "the same InputStream reads after the reconnect");
                    Assert.AreEqual(2, read.Result);
                    Assert.AreEqual(4, buf[0]);
                }
            }
            finally
            {
                if (peer != null) peer.Dispose();
            }
        }

        [Test]
        public void MaxAttemptsIsHonoured()
        {
            PeerProcess peer = PeerProcess.Start("server.py", "--port", "0");
            int port = peer.Port;
            try
            {
                using (var rt = new ControlChannelRuntime())
                using (var ws = new MessageWebSocket(rt))
                using (var ch = new ControlChannelTrigger(rt, "giveup", TimeSpan.FromSeconds(30)))
                {
                    var reconnecting = new Recorder<ReconnectingEventArgs>();
                    var resets = new Recorder<ChannelResetEventArgs>();
                    var disconnects = new Recorder<TransportDisconnectedEventArgs>();
                    ch.ReconnectPolicy = Fast(2);
                    ch.Reconnecting += (o, e) => reconnecting.Add(e);
                    ch.Reset += (o, e) => resets.Add(e);
                    ch.TransportDisconnected += (o, e) => disconnects.Add(e);
                    ch.UsingTransport(ws);
                    Wait.On(ws.ConnectAsync(new Uri("ws://127.0.0.1:" + port + "/echo")), Wait.Long);
                    ch.WaitForPushEnabled();

                    peer.Dispose();   // and never back
                    peer = null;
                    Assert.IsTrue(disconnects.WaitCount(1, Wait.Long), "TransportDisconnected after the last attempt");
                    Thread.Sleep(1000);   // would be long enough for a third attempt
                    var r = reconnecting.Items;
                    Assert.AreEqual(2, r.Count, "exactly MaxAttempts attempts: " + string.Join("; ", r.Select(e => e.ToString())));
                    Assert.AreEqual(1u, r[0].Attempt);
                    Assert.AreEqual(2u, r[1].Attempt);
                    Assert.AreEqual(0, resets.Count);
                    Assert.AreEqual(1, disconnects.Count, "once");
                    Assert.AreNotEqual(CtrlChanResult.Ok, disconnects.Items[0].Result, "the last cause: " + disconnects.Items[0]);
                    Assert.AreNotEqual(WebSocketConnectionState.Open, ws.State);
                    Assert.AreEqual(0ul, ch.Statistics.Reconnects);
                }
            }
            finally
            {
                if (peer != null) peer.Dispose();
            }
        }

        [Test]
        public void WithoutAPolicyTheLossIsFinal()
        {
            PeerProcess peer = PeerProcess.Start("server.py", "--port", "0");
            try
            {
                using (var rt = new ControlChannelRuntime())
                using (var ws = new MessageWebSocket(rt))
                using (var ch = new ControlChannelTrigger(rt, "nopolicy", TimeSpan.FromSeconds(30)))
                {
                    var reconnecting = new Recorder<ReconnectingEventArgs>();
                    var lost = new Recorder<ControlChannelEventArgs>();
                    ch.Reconnecting += (o, e) => reconnecting.Add(e);
                    ch.TransportDisconnected += (o, e) => lost.Add(e);
                    ws.Closed += (o, e) => lost.Add(e);
                    ch.UsingTransport(ws);
                    Wait.On(ws.ConnectAsync(new Uri("ws://127.0.0.1:" + peer.Port + "/echo")), Wait.Long);
                    ch.WaitForPushEnabled();
                    peer.Dispose();
                    peer = null;
                    Assert.IsTrue(lost.WaitCount(1, Wait.Long), "the loss is reported");
                    Thread.Sleep(300);
                    Assert.AreEqual(0, reconnecting.Count);
                }
            }
            finally
            {
                if (peer != null) peer.Dispose();
            }
        }

        [Test]
        public void SimulatedSuspendProbesTheChannelAtOnce()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ws = new MessageWebSocket(rt))
            using (var ch = new ControlChannelTrigger(rt, "suspend", TimeSpan.FromMinutes(10)))
            {
                var resets = new Recorder<ChannelResetEventArgs>();
                ch.ReconnectPolicy = Fast(0);
                ch.Reset += (o, e) => resets.Add(e);
                ch.UsingTransport(ws);
                Wait.On(ws.ConnectAsync(PeerFixture.Url("/echo")), Wait.Long);
                ch.WaitForPushEnabled();
                ulong sent = ch.Statistics.KeepAlivesSent;
                rt.SimulateSuspend(TimeSpan.FromMinutes(10));
                // The interval is 10 minutes: only the probe can send a keep-alive this soon.
                Assert.IsTrue(Wait.Until(() => ch.Statistics.KeepAlivesAcknowledged > 0 && ch.Statistics.KeepAlivesSent > sent, Wait.Short),
                              "probe keep-alive after the simulated resume: " + ch.Statistics);
                Thread.Sleep(200);
                Assert.AreEqual(0, resets.Count, "a live transport is not reset");
                Assert.AreEqual(WebSocketConnectionState.Open, ws.State);
                Assert.Throws<ArgumentOutOfRangeException>(() => rt.SimulateSuspend(TimeSpan.FromSeconds(-1)));
            }
        }
    }
}
