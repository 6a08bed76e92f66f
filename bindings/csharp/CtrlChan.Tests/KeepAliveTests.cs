using System;
using System.Linq;
using System.Threading;
using CtrlChan;
using NUnit.Framework;

namespace CtrlChan.Tests
{
    [TestFixture, Timeout(60000)]
    public class KeepAliveTests
    {
        [Test]
        public void PingKeepAlivesFollowTheIntervalAndReportRoundTripTime()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ka = new WebSocketKeepAlive { PongTimeout = TimeSpan.FromSeconds(1) })
            {
                rt.CoalescingWindow = TimeSpan.Zero;
                Assert.AreEqual(KeepAliveMode.Ping, ka.Mode, "Ping is the default mode");
                using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromMilliseconds(300), ka))
                {
                    TimeSpan start = s.KeepAlives.Now;
                    Thread.Sleep(2150);
                    TimeSpan end = s.KeepAlives.Now;
                    var times = s.KeepAlives.Times.Where(t => t >= start && t <= end).ToList();
                    var events = s.KeepAlives.Items;
                    // 2.15 s / 300 ms = 7 keep-alives; never later than the interval, never far earlier.
                    Assert.That(times.Count, Is.InRange(5, 10), "keep-alives in 2.15 s at 300 ms");
                    for (int i = 1; i < times.Count; i++)
                    {
                        double gap = (times[i] - times[i - 1]).TotalMilliseconds;
                        Assert.That(gap, Is.InRange(150.0, 300.0 + 200.0), "gap " + i + " of " + string.Join(",", times.Select(t => (int)t.TotalMilliseconds)));
                    }
                    foreach (var e in events)
                    {
                        Assert.AreEqual(ControlChannelEventKind.KeepAlive, e.Kind);
                        Assert.AreEqual("test", e.ChannelId);
                        Assert.That(e.RoundTripTime, Is.GreaterThan(TimeSpan.Zero));
                        Assert.That(e.RoundTripTime, Is.LessThan(TimeSpan.FromMilliseconds(500)));
                    }
                    var stats = rt.GetStatistics();
                    Assert.GreaterOrEqual(stats.KeepAlivesSent, (ulong)events.Count);
                    Assert.GreaterOrEqual(stats.KeepAlivesAcknowledged, (ulong)events.Count);
                    Assert.AreEqual(0, s.Disconnects.Count);
                }
            }
        }

        [Test]
        public void OutboundTrafficCountsAsKeepAlive()
        {
            using (var rt = new ControlChannelRuntime())
            {
                rt.CoalescingWindow = TimeSpan.Zero;
                using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromMilliseconds(400)))
                {
                    // A message every 100 ms for 1.6 s: the channel is never idle for 400 ms.
                    for (int i = 0; i < 16; i++)
                    {
                        s.Socket.SendAsync("busy " + i);
                        Thread.Sleep(100);
                    }
                    Assert.That(s.KeepAlives.Count, Is.LessThanOrEqualTo(1), "a busy channel needs no pings");
                    Assert.IsTrue(s.Messages.WaitCount(16, Wait.Short));
                    // ...and pings resume once it is idle.
                    Assert.IsTrue(s.KeepAlives.WaitCount(2, TimeSpan.FromSeconds(3)));
                }
            }
        }

        [Test]
        public void UnsolicitedPongModeSendsHeartbeats()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ka = new WebSocketKeepAlive())
            {
                rt.CoalescingWindow = TimeSpan.Zero;
                ka.Mode = KeepAliveMode.UnsolicitedPong;
                Assert.AreEqual(KeepAliveMode.UnsolicitedPong, ka.Mode);
                using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromMilliseconds(200), ka))
                {
                    Assert.IsTrue(Wait.Until(() => rt.GetStatistics().KeepAlivesSent >= 4, TimeSpan.FromSeconds(5)),
                                  "sent " + rt.GetStatistics().KeepAlivesSent);
                    Assert.AreEqual(0ul, rt.GetStatistics().KeepAlivesAcknowledged, "pongs are not answered");
                    Assert.AreEqual(0, s.Disconnects.Count, "no liveness check in this mode");
                    foreach (var e in s.KeepAlives.Items)
                        Assert.AreEqual(TimeSpan.Zero, e.RoundTripTime);
                }
            }
        }

        [Test]
        public void RunSendsOneKeepAliveNow()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ka = new WebSocketKeepAlive())
            using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromMinutes(10), ka))
            {
                Assert.AreEqual(0, s.KeepAlives.Count);
                ka.Run(s.Channel);
                var e = s.KeepAlives.First(Wait.Short);
                Assert.That(e.RoundTripTime, Is.GreaterThan(TimeSpan.Zero));
                Assert.Throws<ArgumentNullException>(() => ka.Run(null));
            }
        }

        [Test]
        public void ServerKeepAliveIntervalIsSettableLikeWindows()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ch = new ControlChannelTrigger(rt, "settable", 20u))
            {
                ch.DecreaseNetworkKeepAliveInterval();
                ch.ServerKeepAliveIntervalInMinutes = 5;
                Assert.AreEqual(5u, ch.ServerKeepAliveIntervalInMinutes);
                Assert.AreEqual(TimeSpan.FromMinutes(5), ch.CurrentKeepAliveInterval, "the network interval restarts");
                ch.ServerKeepAliveInterval = TimeSpan.FromMilliseconds(250);
                Assert.AreEqual(TimeSpan.FromMilliseconds(250), ch.ServerKeepAliveInterval);
                Assert.Throws<ArgumentOutOfRangeException>(() => ch.ServerKeepAliveIntervalInMinutes = 0);
                Assert.Throws<ArgumentOutOfRangeException>(() => ch.ServerKeepAliveIntervalInMinutes = 1441);
                Assert.Throws<ArgumentOutOfRangeException>(() => ch.ServerKeepAliveInterval = TimeSpan.FromMilliseconds(99));
                Assert.AreEqual(TimeSpan.FromMilliseconds(250), ch.ServerKeepAliveInterval);
            }
        }

        [Test]
        public void DecreaseNetworkKeepAliveIntervalLowersTheCurrentInterval()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ch = new ControlChannelTrigger(rt, "nat", 20u))
            {
                Assert.AreEqual(TimeSpan.FromMinutes(20), ch.CurrentKeepAliveInterval);
                TimeSpan prev = ch.CurrentKeepAliveInterval;
                ch.DecreaseNetworkKeepAliveInterval();
                TimeSpan now = ch.CurrentKeepAliveInterval;
                Assert.That(now, Is.LessThan(prev));
                Assert.That(now, Is.GreaterThan(TimeSpan.Zero));
                Assert.AreEqual(TimeSpan.FromMinutes(20), ch.ServerKeepAliveInterval, "the server interval is unchanged");
                for (int i = 0; i < 50; i++)
                {
                    prev = ch.CurrentKeepAliveInterval;
                    ch.DecreaseNetworkKeepAliveInterval();
                    Assert.That(ch.CurrentKeepAliveInterval, Is.LessThanOrEqualTo(prev));
                }
                Assert.That(ch.CurrentKeepAliveInterval, Is.GreaterThanOrEqualTo(ControlChannelTrigger.MinServerKeepAliveInterval));
                Assert.AreEqual((uint)(ch.CurrentKeepAliveInterval.Ticks / TimeSpan.TicksPerMinute), ch.CurrentKeepAliveIntervalInMinutes);
            }
        }

        [Test]
        public void DecreasedIntervalSpeedsUpKeepAlives()
        {
            using (var rt = new ControlChannelRuntime())
            {
                rt.CoalescingWindow = TimeSpan.Zero;
                using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromSeconds(2)))
                {
                    int guard = 0;
                    while (s.Channel.CurrentKeepAliveInterval > TimeSpan.FromMilliseconds(500) && guard++ < 20)
                        s.Channel.DecreaseNetworkKeepAliveInterval();
                    Assert.That(s.Channel.CurrentKeepAliveInterval, Is.LessThanOrEqualTo(TimeSpan.FromMilliseconds(500)));
                    Assert.IsTrue(s.KeepAlives.WaitCount(2, TimeSpan.FromSeconds(2.5)),
                        "with the interval at " + s.Channel.CurrentKeepAliveInterval + " two keep-alives arrive well before the 2 s server interval would allow");
                }
            }
        }

        [Test]
        public void KeepAliveTaskPropertiesRoundTripAndValidate()
        {
            using (var ka = new WebSocketKeepAlive())
            {
                Assert.AreEqual(TimeSpan.FromSeconds(5), ka.PongTimeout);
                ka.PongTimeout = TimeSpan.FromMilliseconds(1234);
                Assert.AreEqual(TimeSpan.FromMilliseconds(1234), ka.PongTimeout);
                Assert.Throws<ArgumentOutOfRangeException>(() => ka.PongTimeout = TimeSpan.FromMilliseconds(5));
                Assert.Throws<ArgumentOutOfRangeException>(() => ka.PongTimeout = TimeSpan.FromHours(25));
                Assert.Throws<ArgumentOutOfRangeException>(() => ka.PongTimeout = TimeSpan.FromSeconds(-1));
                Assert.Throws<ArgumentOutOfRangeException>(() => ka.Mode = (KeepAliveMode)7);
                Assert.AreEqual(TimeSpan.FromMilliseconds(1234), ka.PongTimeout, "failed sets change nothing");
            }
        }

        [Test]
        public void ChannelKeepsItsOwnReferenceToTheTask()
        {
            using (var rt = new ControlChannelRuntime())
            {
                rt.CoalescingWindow = TimeSpan.Zero;
                var ka = new WebSocketKeepAlive { PongTimeout = TimeSpan.FromSeconds(2) };
                using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromMilliseconds(200), ka))
                {
                    ka.Dispose();
                    Assert.Throws<ObjectDisposedException>(() => { var m = ka.Mode; });
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    Assert.IsTrue(s.KeepAlives.WaitCount(3, TimeSpan.FromSeconds(3)), "keep-alives continue after the task object was disposed");
                }
            }
        }
    }

    [TestFixture, Timeout(60000)]
    public class DeadPeerTests
    {
        [Test]
        public void BlackholedPeerIsDetectedByPongTimeoutExactlyOnce()
        {
            using (var proxy = PeerProcess.Start("proxy.py", "--target-port", PeerFixture.Server.Port.ToString()))
            using (var rt = new ControlChannelRuntime())
            using (var ka = new WebSocketKeepAlive { PongTimeout = TimeSpan.FromMilliseconds(400) })
            {
                rt.CoalescingWindow = TimeSpan.Zero;
                var uri = new Uri("ws://127.0.0.1:" + proxy.Port + "/echo");
                using (var s = Session.Open(rt, uri, TimeSpan.FromMilliseconds(250), ka))
                {
                    var socketDisconnects = new Recorder<WebSocketDisconnectedEventArgs>();
                    s.Socket.Disconnected += (o, e) => socketDisconnects.Add(e);
                    Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, s.Status);
                    Assert.IsTrue(s.KeepAlives.WaitCount(2, TimeSpan.FromSeconds(3)), "keep-alives work through the proxy");
                    Assert.AreEqual(0, s.Disconnects.Count);

                    proxy.Command("blackhole");
                    var detectStart = s.Disconnects.Now;
                    var d = s.Disconnects.First(TimeSpan.FromSeconds(4));
                    var detectedAfter = s.Disconnects.Times[0] - detectStart;
                    // Worst case: 250 ms until the next ping + 400 ms pong timeout (+ scheduling slack).
                    Assert.That(detectedAfter, Is.LessThan(TimeSpan.FromMilliseconds(1500)), "detection took " + detectedAfter);
                    Assert.AreEqual(ControlChannelEventKind.TransportDisconnected, d.Kind);
                    StringAssert.IsMatch("(?i)pong|time", d.Reason, "the reason names the pong timeout");
                    Assert.AreEqual(CtrlChanResult.Timeout, d.Result, "the cause as a result code");
                    Assert.AreEqual("test", d.ChannelId);
                    Thread.Sleep(1000);
                    Assert.AreEqual(1, s.Disconnects.Count, "exactly once");
                    Assert.AreEqual(0, s.Closed.Count, "no close handshake happened");
                    Assert.AreEqual(0, socketDisconnects.Count, "first match: the channel's TransportDisconnected took it, not the socket's Disconnected too");
                    int kaAfter = s.KeepAlives.Count;
                    Thread.Sleep(600);
                    Assert.AreEqual(kaAfter, s.KeepAlives.Count, "keep-alives stop after the transport is gone");
                    Assert.AreNotEqual(WebSocketConnectionState.Open, s.Socket.State);
                    var late = Assert.Throws<CtrlChanException>(() => s.Socket.Close(1000, "late"));
                    Assert.AreEqual(CtrlChanResult.Closed, late.Result);
                }
            }
        }

        [Test]
        public void PeerThatNeverPongsIsDetected()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ka = new WebSocketKeepAlive { PongTimeout = TimeSpan.FromMilliseconds(300) })
            {
                rt.CoalescingWindow = TimeSpan.Zero;
                using (var s = Session.Open(rt, PeerFixture.Url("/nopong"), TimeSpan.FromMilliseconds(200), ka))
                {
                    var d = s.Disconnects.First(TimeSpan.FromSeconds(4));
                    StringAssert.IsMatch("(?i)pong|time", d.Reason);
                    Assert.AreEqual(0, s.KeepAlives.Count, "no pong ever matched");
                }
            }
        }

        [Test]
        public void ResetConnectionIsReportedAsDisconnect()
        {
            using (var proxy = PeerProcess.Start("proxy.py", "--target-port", PeerFixture.Server.Port.ToString()))
            using (var rt = new ControlChannelRuntime())
            {
                var uri = new Uri("ws://127.0.0.1:" + proxy.Port + "/echo");
                using (var s = Session.Open(rt, uri, TimeSpan.FromSeconds(30)))
                {
                    s.Socket.SendAsync("before");
                    Assert.IsTrue(s.Messages.WaitCount(1, Wait.Short));
                    proxy.Command("reset");
                    var d = s.Disconnects.First(TimeSpan.FromSeconds(5));
                    Assert.IsNotEmpty(d.Reason);
                    Thread.Sleep(300);
                    Assert.AreEqual(1, s.Disconnects.Count);
                    var after = Assert.Throws<CtrlChanException>(() => s.Socket.SendAsync("after"));
                    Assert.AreEqual(CtrlChanResult.Closed, after.Result, "sending on a lost transport");
                }
            }
        }
    }

    [TestFixture, Timeout(60000)]
    public class CloseTests
    {
        [TestCase(1000, "done")]
        [TestCase(1001, "going away")]
        [TestCase(4001, "custom")]
        [TestCase(4999, "")]
        public void ServerCloseCodeAndReasonReachClosed(int code, string reason)
        {
            using (var rt = new ControlChannelRuntime())
            using (var s = Session.Open(rt, PeerFixture.Url("/close?code=" + code + "&reason=" + Uri.EscapeDataString(reason) + "&after_ms=50"),
                                        TimeSpan.FromSeconds(30)))
            {
                var c = s.Closed.First(Wait.Short);
                Assert.AreEqual((ushort)code, c.Code);
                Assert.AreEqual(reason, c.Reason);
                Assert.AreEqual(ControlChannelEventKind.Closed, c.Kind);
                Thread.Sleep(200);
                Assert.AreEqual(1, s.Closed.Count);
                Assert.AreEqual(0, s.Disconnects.Count, "a clean close is not a disconnect");
                Assert.AreEqual(WebSocketConnectionState.Closed, s.Socket.State);
            }
        }

        [Test]
        public void ClientCloseCompletesTheHandshake()
        {
            using (var rt = new ControlChannelRuntime())
            using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromSeconds(30)))
            {
                s.Socket.Close(4002, "client bye");
                var c = s.Closed.First(Wait.Short);
                Assert.AreEqual((ushort)4002, c.Code);
                Assert.AreEqual(WebSocketConnectionState.Closed, s.Socket.State, "the state is CLOSED once the CLOSED event is raised");
                Assert.AreEqual(CtrlChanResult.Closed, Assert.Throws<CtrlChanException>(() => s.Socket.Close()).Result);
                Assert.AreEqual(CtrlChanResult.Closed, Assert.Throws<CtrlChanException>(() => s.Socket.SendAsync("x")).Result);
            }
        }

        [Test]
        public void DroppedConnectionRaisesTransportDisconnectedOnce()
        {
            using (var rt = new ControlChannelRuntime())
            using (var s = Session.Open(rt, PeerFixture.Url("/drop?after_ms=100"), TimeSpan.FromSeconds(30)))
            {
                var d = s.Disconnects.First(Wait.Short);
                Assert.AreEqual("test", d.ChannelId);
                Assert.IsNotEmpty(d.Reason);
                Thread.Sleep(300);
                Assert.AreEqual(1, s.Disconnects.Count);
                Assert.AreEqual(0, s.Closed.Count);
                Assert.AreEqual(0ul, rt.GetStatistics().ConnectionsOpen);
            }
        }

        [Test]
        public void ChannelCanBeReusedWithANewTransport()
        {
            using (var rt = new ControlChannelRuntime())
            using (var s = Session.Open(rt, PeerFixture.Url("/drop?after_ms=50"), TimeSpan.FromSeconds(30)))
            {
                s.Disconnects.First(Wait.Short);
                var resets = new Recorder<ChannelResetEventArgs>();
                s.Channel.Reset += (o, e) => resets.Add(e);
                using (var socket2 = new MessageWebSocket(rt))
                {
                    var msgs = new Recorder<string>();
                    socket2.MessageReceived += (o, e) => msgs.Add(e.GetDataString());
                    socket2.Control.MessageType = SocketMessageType.Utf8;
                    s.Channel.UsingTransport(socket2);
                    Wait.On(socket2.ConnectAsync(PeerFixture.Url("/echo")), Wait.Long);
                    Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, s.Channel.WaitForPushEnabled());
                    Assert.AreSame(socket2, s.Channel.TransportObject);
                    socket2.SendAsync("again");
                    Assert.AreEqual("again", msgs.First(Wait.Short));
                    Assert.IsTrue(resets.WaitCount(1, Wait.Short), "RESET after a new transport");
                    Assert.AreEqual("test", resets.Items[0].ChannelId);
                }
            }
        }

        [Test]
        public void OversizedIncomingMessageClosesWith1009()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            using (var channel = new ControlChannelTrigger(rt, "big", TimeSpan.FromSeconds(30)))
            {
                var msgs = new Recorder<int>();
                var closed = new Recorder<WebSocketClosedEventArgs>();
                var lost = new Recorder<TransportDisconnectedEventArgs>();
                socket.MessageReceived += (o, e) => msgs.Add(e.DataLength);
                socket.Closed += (o, e) => closed.Add(e);
                channel.TransportDisconnected += (o, e) => lost.Add(e);
                socket.Control.MaxMessageSize = 1024;
                channel.UsingTransport(socket);
                Wait.On(socket.ConnectAsync(PeerFixture.Url("/big?size=100000")), Wait.Long);
                channel.WaitForPushEnabled();
                Assert.IsTrue(Wait.Until(() => closed.Count + lost.Count > 0, Wait.Short), "the connection ends");
                Assert.AreEqual(0, msgs.Count, "the oversized message is not delivered");
                if (closed.Count > 0) Assert.AreEqual((ushort)1009, closed.Items[0].Code);
                else StringAssert.Contains("1009", lost.Items[0].Reason);
            }
        }
    }
}
