using System;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Tasks;
using CtrlChan;
using NUnit.Framework;

namespace CtrlChan.Tests
{
    [TestFixture, Timeout(60000)]
    public class BadInputTests
    {
        private ControlChannelRuntime _rt;

        [SetUp] public void SetUp() { _rt = new ControlChannelRuntime(); }
        [TearDown] public void TearDown() { _rt.Dispose(); }

        [Test]
        public void ChannelIdIsValidated()
        {
            Assert.Throws<ArgumentNullException>(() => new ControlChannelTrigger(_rt, null, TimeSpan.FromSeconds(30)));
            Assert.Throws<ArgumentException>(() => new ControlChannelTrigger(_rt, "", TimeSpan.FromSeconds(30)));
            Assert.Throws<ArgumentException>(() => new ControlChannelTrigger(_rt, new string('x', 65), TimeSpan.FromSeconds(30)));
            Assert.Throws<ArgumentException>(() => new ControlChannelTrigger(_rt, "nul\0inside", TimeSpan.FromSeconds(30)));
            Assert.Throws<ArgumentException>(() => new ControlChannelTrigger(_rt, "\ud800lone", TimeSpan.FromSeconds(30)));
            using (var ok = new ControlChannelTrigger(_rt, new string('x', 64), TimeSpan.FromSeconds(30)))
                Assert.AreEqual(64, ok.ControlChannelTriggerId.Length);
            Assert.Throws<ArgumentNullException>(() => new ControlChannelTrigger(null, "x", TimeSpan.FromSeconds(30)));
        }

        [Test]
        public void KeepAliveIntervalIsRangeChecked()
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => new ControlChannelTrigger(_rt, "x", TimeSpan.FromMilliseconds(99)));
            Assert.Throws<ArgumentOutOfRangeException>(() => new ControlChannelTrigger(_rt, "x", TimeSpan.FromHours(24) + TimeSpan.FromMilliseconds(1)));
            Assert.Throws<ArgumentOutOfRangeException>(() => new ControlChannelTrigger(_rt, "x", TimeSpan.FromSeconds(-1)));
            Assert.Throws<ArgumentOutOfRangeException>(() => new ControlChannelTrigger(_rt, "x", 0u));
            Assert.Throws<ArgumentOutOfRangeException>(() => new ControlChannelTrigger(_rt, "x", 1441u));
            Assert.Throws<ArgumentOutOfRangeException>(() => new ControlChannelTrigger(_rt, "x", -1));
            int minutes = 15;
            using (var fromInt = new ControlChannelTrigger(_rt, "int", minutes, ControlChannelTriggerResourceType.RequestSoftwareSlot))
                Assert.AreEqual(15u, fromInt.ServerKeepAliveIntervalInMinutes);
            Assert.Throws<ArgumentOutOfRangeException>(() => new ControlChannelTrigger(_rt, "x", TimeSpan.FromSeconds(1), (ControlChannelTriggerResourceType)9));
            using (var lo = new ControlChannelTrigger(_rt, "lo", TimeSpan.FromMilliseconds(100)))
            using (var hi = new ControlChannelTrigger(_rt, "hi", 1440u))
            {
                Assert.AreEqual(TimeSpan.FromMilliseconds(100), lo.ServerKeepAliveInterval);
                Assert.AreEqual(1440u, hi.ServerKeepAliveIntervalInMinutes);
            }
        }

        [Test]
        public void HeadersWithControlCharactersAreRejected()
        {
            using (var ws = new MessageWebSocket(_rt))
            {
                Assert.Throws<ArgumentException>(() => ws.SetRequestHeader("X-Bad", "a\r\nInjected: 1"));
                Assert.Throws<ArgumentException>(() => ws.SetRequestHeader("X-Bad\n", "v"));
                Assert.Throws<ArgumentException>(() => ws.SetRequestHeader("X-Bad", "nul\0"));
                Assert.Throws<ArgumentNullException>(() => ws.SetRequestHeader(null, "v"));
                Assert.Throws<ArgumentNullException>(() => ws.SetRequestHeader("X", null));
                Assert.Throws<ArgumentNullException>(() => ws.Control.SupportedProtocols.Add(null));
                ws.SetRequestHeader("X-Good", "fine");
            }
        }

        [Test]
        public void UrisAreValidated()
        {
            using (var ws = new MessageWebSocket(_rt))
            {
                Assert.Throws<ArgumentNullException>(() => ws.ConnectAsync(null));
                Assert.Throws<ArgumentException>(() => ws.ConnectAsync(new Uri("http://127.0.0.1:1/")));
                Assert.Throws<ArgumentException>(() => ws.ConnectAsync(new Uri("/relative", UriKind.Relative)));
                Assert.AreEqual(WebSocketConnectionState.New, ws.State, "a rejected URI leaves the socket unused");
            }
        }

        [Test]
        public void ConnectToAClosedPortFaultsTheTask()
        {
            int port;
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            using (var ws = new MessageWebSocket(_rt))
            {
                Task t = ws.ConnectAsync(new Uri("ws://127.0.0.1:" + port + "/"));
                var ex = Assert.Throws<CtrlChanException>(() => Wait.On(t, Wait.Long));
                Assert.AreEqual(CtrlChanResult.ConnectFailed, ex.Result);
                Assert.IsNotEmpty(ex.NativeMessage);
                Assert.AreNotEqual(WebSocketConnectionState.Open, ws.State);
            }
            using (var ws = new MessageWebSocket(_rt))
            {
                var ex = Assert.Throws<CtrlChanException>(() => ws.Connect(new Uri("ws://127.0.0.1:" + port + "/"), TimeSpan.FromSeconds(5)));
                Assert.AreEqual(CtrlChanResult.ConnectFailed, ex.Result);
                StringAssert.StartsWith("CONNECT_FAILED", ex.Message);
            }
        }

        [Test]
        public void HandshakeRejectedByServerFails()
        {
            using (var ws = new MessageWebSocket(_rt))
            {
                Task t = ws.ConnectAsync(PeerFixture.Url("/no-such-path"));
                var ex = Assert.Throws<CtrlChanException>(() => Wait.On(t, Wait.Long));
                Assert.That(ex.Result, Is.EqualTo(CtrlChanResult.HandshakeFailed).Or.EqualTo(CtrlChanResult.ConnectFailed));
            }
        }

        [Test]
        public void WrongStateIsInvalidOperation()
        {
            using (var ws = new MessageWebSocket(_rt))
            using (var ch = new ControlChannelTrigger(_rt, "state", TimeSpan.FromSeconds(30)))
            {
                Assert.Throws<InvalidOperationException>(() => ws.SendAsync("not connected"));
                Assert.Throws<InvalidOperationException>(() => ws.Close(1000, "not open"));
                Assert.AreEqual(ControlChannelTriggerStatus.TransportDisconnected, ch.WaitForPushEnabled(), "no transport yet");
                ch.UsingTransport(ws);
                Assert.AreEqual(ControlChannelTriggerStatus.TransportDisconnected, ch.WaitForPushEnabled(), "transport not connected");
                Wait.On(ws.ConnectAsync(PeerFixture.Url("/echo")), Wait.Long);
                Assert.Throws<InvalidOperationException>(() => ws.SetRequestHeader("X-Late", "1"));
                Assert.Throws<InvalidOperationException>(() => ws.Control.MaxMessageSize = 10);
                // MessageType is the exception: Windows allows changing it at any time (the core does since issue 8).
                ws.Control.MessageType = SocketMessageType.Utf8;
                Assert.AreEqual(SocketMessageType.Utf8, ws.Control.MessageType, "MessageType changes while connected");
                Assert.Throws<InvalidOperationException>(() => ws.Control.SupportedProtocols.Add("late"));
                Assert.AreEqual(0, ws.Control.SupportedProtocols.Count, "a rejected protocol is not listed");
                Assert.Throws<InvalidOperationException>(() => ws.ConnectAsync(PeerFixture.Url("/echo")), "connect twice");
                using (var other = new ControlChannelTrigger(_rt, "other", TimeSpan.FromSeconds(30)))
                    Assert.Throws<InvalidOperationException>(() => other.UsingTransport(ws), "a connected socket cannot be bound");
                using (var fresh = new MessageWebSocket(_rt))
                    Assert.Throws<InvalidOperationException>(() => ch.UsingTransport(fresh), "the current transport is still open");
            }
        }

        [Test]
        public void InvalidPayloadsAndCodesAreArgumentErrors()
        {
            using (var s = Session.Open(_rt, PeerFixture.Url("/echo"), TimeSpan.FromSeconds(30)))
            {
                Assert.Throws<ArgumentException>(() => s.Socket.SendAsync(new byte[] { 0xff, 0xfe }, SocketMessageType.Utf8), "invalid UTF-8 in a text frame");
                Assert.Throws<ArgumentNullException>(() => s.Socket.SendAsync((string)null));
                Assert.Throws<ArgumentNullException>(() => s.Socket.SendAsync((byte[])null));
                Assert.Throws<ArgumentOutOfRangeException>(() => s.Socket.SendAsync(new byte[1], (SocketMessageType)5));
                Assert.Throws<ArgumentException>(() => s.Socket.Close(1005, "reserved code"));
                Assert.Throws<ArgumentException>(() => s.Socket.Close(999, "not a close code"));
                Assert.Throws<ArgumentException>(() => s.Socket.Close(1000, new string('r', 124)), "reason longer than 123 bytes");
                // The connection is still usable after rejected calls.
                s.Socket.SendAsync("still fine");
                Assert.AreEqual("still fine", s.Messages.First(Wait.Short).GetDataString());
            }
        }

        [Test]
        public void OutboundBufferLimitGivesBufferFull()
        {
            using (var ws = new MessageWebSocket(_rt))
            using (var ch = new ControlChannelTrigger(_rt, "full", TimeSpan.FromSeconds(30)))
            using (var proxy = PeerProcess.Start("proxy.py", "--target-port", PeerFixture.Server.Port.ToString()))
            {
                ws.Control.OutboundBufferSizeInBytes = 64 * 1024;
                Assert.AreEqual(64u * 1024, ws.Control.OutboundBufferSizeInBytes);
                ch.UsingTransport(ws);
                Wait.On(ws.ConnectAsync(new Uri("ws://127.0.0.1:" + proxy.Port + "/echo")), Wait.Long);
                proxy.Command("blackhole");
                var chunk = new byte[32 * 1024];
                CtrlChanException full = null;
                for (int i = 0; i < 2000 && full == null; i++)   // kernel buffers absorb a few MB first
                {
                    try { ws.SendAsync(chunk); }
                    catch (CtrlChanException e) { full = e; }
                }
                Assert.IsNotNull(full, "BUFFER_FULL within 64 MB of sends");
                Assert.AreEqual(CtrlChanResult.BufferFull, full.Result);
            }
        }

        [Test]
        public void ZeroSizesAndLimitsAreOutOfRange()
        {
            using (var ws = new MessageWebSocket(_rt))
            using (var sws = new StreamWebSocket(_rt))
            {
                Assert.Throws<ArgumentOutOfRangeException>(() => ws.Control.MaxMessageSize = 0);
                Assert.Throws<ArgumentOutOfRangeException>(() => sws.Control.MaxMessageSize = 0);
                Assert.Throws<ArgumentOutOfRangeException>(() => ws.Control.OutboundBufferSizeInBytes = 0);
                Assert.Throws<ArgumentOutOfRangeException>(() => ws.Control.MessageType = (SocketMessageType)3);
                Assert.Throws<ArgumentException>(() => sws.SendAsync(new byte[1], SocketMessageType.Utf8));
                Assert.Throws<ArgumentOutOfRangeException>(() => ws.Control.ConnectTimeout = TimeSpan.Zero);
                Assert.AreEqual(16u << 20, ws.Control.MaxMessageSize, "default 16 MiB");
                Assert.AreEqual(SocketMessageType.Binary, ws.Control.MessageType, "default Binary");
            }
            Assert.Throws<ArgumentOutOfRangeException>(() => _rt.MaxChannels = 0);
            Assert.Throws<ArgumentOutOfRangeException>(() => _rt.CoalescingWindow = TimeSpan.FromHours(2));
            Assert.Throws<ArgumentOutOfRangeException>(() => _rt.CoalescingWindow = TimeSpan.FromMilliseconds(-1));
            _rt.CoalescingWindow = TimeSpan.FromHours(1);
            Assert.AreEqual(TimeSpan.FromHours(1), _rt.CoalescingWindow);
            Assert.Throws<ArgumentOutOfRangeException>(() => _rt.PongSettle = TimeSpan.FromMilliseconds(1001));
            Assert.Throws<ArgumentOutOfRangeException>(() => _rt.PongSettle = TimeSpan.FromMilliseconds(-1));
            _rt.PongSettle = TimeSpan.FromSeconds(1);
            Assert.AreEqual(TimeSpan.FromSeconds(1), _rt.PongSettle);
        }

        [Test]
        public void UsingTransportChecksItsArgument()
        {
            using (var other = new ControlChannelRuntime())
            using (var foreign = new MessageWebSocket(other))
            using (var ch = new ControlChannelTrigger(_rt, "t", TimeSpan.FromSeconds(30)))
            {
                Assert.Throws<ArgumentNullException>(() => ch.UsingTransport(null));
                Assert.Throws<ArgumentException>(() => ch.UsingTransport(foreign));
                Assert.Throws<ArgumentNullException>(() => ch.KeepAliveTask = null);
            }
        }

        [Test]
        public void MaxChannelsLimitGivesPolicyError()
        {
            _rt.MaxChannels = 2;
            Assert.AreEqual(2u, _rt.MaxChannels);
            var sessions = new Session[3];
            try
            {
                for (int i = 0; i < 3; i++)
                    sessions[i] = Session.Open(_rt, PeerFixture.Url("/echo"), TimeSpan.FromSeconds(30), id: "p" + i);
                Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, sessions[0].Status);
                Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, sessions[1].Status);
                Assert.AreEqual(ControlChannelTriggerStatus.PolicyError, sessions[2].Status);
                Assert.AreEqual(2ul, _rt.GetStatistics().ChannelsActive);
            }
            finally
            {
                foreach (var s in sessions) if (s != null) s.Dispose();
            }
        }

        [Test]
        public void ExceptionsCarryTheResultCode()
        {
            var e = Assert.Throws<InvalidOperationException>(() => { using (var ws = new MessageWebSocket(_rt)) ws.SendAsync("x"); });
            Assert.AreEqual(CtrlChanResult.InvalidState, e.Data["CtrlChan.Result"]);
            StringAssert.Contains("INVALID_STATE", e.Message);
            var c = new CtrlChanException(CtrlChanResult.Io, "detail");
            Assert.AreEqual(CtrlChanResult.Io, c.Result);
            Assert.AreEqual("detail", c.NativeMessage);
            StringAssert.Contains("detail", c.Message);
        }
    }

    [TestFixture, Timeout(60000)]
    public class DisposeTests
    {
        [Test]
        public void DisposedSocketThrowsObjectDisposed()
        {
            using (var rt = new ControlChannelRuntime())
            {
                var ws = new MessageWebSocket(rt);
                ws.Dispose();
                ws.Dispose();   // idempotent
                Assert.IsTrue(ws.IsDisposed);
                Assert.Throws<ObjectDisposedException>(() => ws.SendAsync("x"));
                Assert.Throws<ObjectDisposedException>(() => ws.SendAsync(new byte[1]));
                Assert.Throws<ObjectDisposedException>(() => ws.ConnectAsync(PeerFixture.Url("/echo")));
                Assert.Throws<ObjectDisposedException>(() => ws.SetRequestHeader("a", "b"));
                Assert.Throws<ObjectDisposedException>(() => ws.Close(1000, ""));
                Assert.Throws<ObjectDisposedException>(() => { var c = ws.Control; });
                Assert.Throws<ObjectDisposedException>(() => { var s = ws.State; });
                Assert.Throws<ObjectDisposedException>(() => { var s = ws.Information; });
                using (var ch = new ControlChannelTrigger(rt, "d", TimeSpan.FromSeconds(30)))
                    Assert.Throws<ObjectDisposedException>(() => ch.UsingTransport(ws));
            }
        }

        [Test]
        public void ControlObjectHeldAcrossDisposeThrows()
        {
            using (var rt = new ControlChannelRuntime())
            {
                var ws = new MessageWebSocket(rt);
                var control = ws.Control;
                ws.Dispose();
                Assert.Throws<ObjectDisposedException>(() => control.MaxMessageSize = 5);
                Assert.Throws<ObjectDisposedException>(() => control.SupportedProtocols.Add("p"));
            }
        }

        [Test]
        public void DisposedChannelThrowsObjectDisposed()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ws = new MessageWebSocket(rt))
            {
                var ch = new ControlChannelTrigger(rt, "d", TimeSpan.FromSeconds(30));
                ch.Close();
                ch.Dispose();
                Assert.Throws<ObjectDisposedException>(() => ch.WaitForPushEnabled());
                Assert.Throws<ObjectDisposedException>(() => ch.UsingTransport(ws));
                Assert.Throws<ObjectDisposedException>(() => ch.DecreaseNetworkKeepAliveInterval());
                Assert.Throws<ObjectDisposedException>(() => ch.FlushTransport());
                Assert.Throws<ObjectDisposedException>(() => { var i = ch.CurrentKeepAliveInterval; });
                Assert.Throws<ObjectDisposedException>(() => { var i = ch.ControlChannelTriggerId; });
                Assert.Throws<ObjectDisposedException>(() => ch.KeepAliveTask = new WebSocketKeepAlive());
                using (var ka = new WebSocketKeepAlive())
                    Assert.Throws<ObjectDisposedException>(() => ka.Run(ch));
            }
        }

        [Test]
        public void ClosingAChannelStopsItsKeepAlivesButNotTheSocket()
        {
            using (var rt = new ControlChannelRuntime())
            {
                rt.CoalescingWindow = TimeSpan.Zero;
                using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromMilliseconds(200)))
                {
                    Assert.IsTrue(s.KeepAlives.WaitCount(1, Wait.Short));
                    s.Channel.Close();
                    Assert.IsTrue(Wait.Until(() => rt.GetStatistics().ChannelsActive == 0, Wait.Short));
                    ulong sent = rt.GetStatistics().KeepAlivesSent;
                    System.Threading.Thread.Sleep(700);
                    Assert.AreEqual(sent, rt.GetStatistics().KeepAlivesSent, "no keep-alives after Close");
                    s.Socket.SendAsync("socket still open");
                    Assert.AreEqual("socket still open", s.Messages.First(Wait.Short).GetDataString(), "socket events go to the socket once the channel is gone");
                }
            }
        }

        [Test]
        public void DisposingTheRuntimeDisposesEverythingOnIt()
        {
            var rt = new ControlChannelRuntime();
            var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromSeconds(30));
            var idle = new MessageWebSocket(rt);
            rt.Dispose();
            rt.Dispose();
            Assert.IsTrue(rt.IsDisposed);
            Assert.IsTrue(s.Socket.IsDisposed);
            Assert.IsTrue(s.Channel.IsDisposed);
            Assert.IsTrue(idle.IsDisposed);
            Assert.Throws<ObjectDisposedException>(() => s.Socket.SendAsync("x"));
            Assert.Throws<ObjectDisposedException>(() => s.Channel.WaitForPushEnabled());
            Assert.Throws<ObjectDisposedException>(() => new MessageWebSocket(rt));
            Assert.Throws<ObjectDisposedException>(() => new ControlChannelTrigger(rt, "x", 15u));
            Assert.Throws<ObjectDisposedException>(() => rt.NextEvent(TimeSpan.Zero));
            Assert.Throws<ObjectDisposedException>(() => rt.GetStatistics());
            s.Dispose();   // disposing again afterwards is harmless
        }

        [Test]
        public void DisposingASocketFaultsAPendingConnect()
        {
            // A listener that accepts TCP but never answers the handshake keeps the connect pending.
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            try
            {
                int port = ((IPEndPoint)l.LocalEndpoint).Port;
                using (var rt = new ControlChannelRuntime())
                {
                    var ws = new MessageWebSocket(rt);
                    Task t = ws.ConnectAsync(new Uri("ws://127.0.0.1:" + port + "/"));
                    System.Threading.Thread.Sleep(100);
                    ws.Dispose();
                    Assert.Throws<ObjectDisposedException>(() => Wait.On(t, Wait.Short));
                }
            }
            finally { l.Stop(); }
        }

        [Test]
        public void ConnectTimeoutFaultsTheTask()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            try
            {
                int port = ((IPEndPoint)l.LocalEndpoint).Port;
                using (var rt = new ControlChannelRuntime())
                using (var ws = new MessageWebSocket(rt))
                {
                    ws.Control.ConnectTimeout = TimeSpan.FromMilliseconds(300);
                    var sw = System.Diagnostics.Stopwatch.StartNew();
                    Task t = ws.ConnectAsync(new Uri("ws://127.0.0.1:" + port + "/"));
                    var ex = Wait.Catch(() => Wait.On(t, TimeSpan.FromSeconds(10)));
                    Assert.IsTrue(ex is CtrlChanException || ex is TimeoutException, "got " + ex);
                    Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(4)), "the native timeout applies");
                }
            }
            finally { l.Stop(); }
        }
    }
}
