using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using CtrlChan;
using NUnit.Framework;

namespace CtrlChan.Tests
{
    [TestFixture, Timeout(60000)]
    public class MainFlowTests
    {
        [Test]
        public void WindowsShapedFlowEchoesAText()
        {
            // The flow from the issue, step for step (with await replaced by a bounded wait).
            using (var runtime = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(runtime))
            using (var channel = new ControlChannelTrigger(runtime, "channelOne", TimeSpan.FromSeconds(30),
                                                           ControlChannelTriggerResourceType.RequestSoftwareSlot))
            {
                socket.Control.MaxMessageSize = 1 << 20;
                socket.Control.MessageType = SocketMessageType.Utf8;
                socket.SetRequestHeader("Authorization", "Bearer t");
                // The issue's flow also offers "chat"; /echo declines every subprotocol, which the
                // core currently treats as a handshake failure (see OfferedSubprotocolMayBeDeclined).
                channel.KeepAliveTask = new WebSocketKeepAlive { Mode = KeepAliveMode.Ping, PongTimeout = TimeSpan.FromSeconds(5) };
                channel.UsingTransport(socket);
                var messages = new Recorder<MessageWebSocketMessageReceivedEventArgs>();
                var threads = new Recorder<int>();
                var senders = new Recorder<object>();
                socket.MessageReceived += (s, e) => { senders.Add(s); threads.Add(Thread.CurrentThread.ManagedThreadId); messages.Add(e); };
                socket.Closed += (s, e) => { };
                channel.TransportDisconnected += (s, e) => { };
                channel.KeepAliveCompleted += (s, e) => { };

                Wait.On(socket.ConnectAsync(PeerFixture.Url("/echo")), Wait.Long);
                Assert.AreEqual(WebSocketConnectionState.Open, socket.State);
                ControlChannelTriggerStatus status = channel.WaitForPushEnabled();
                Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, status);
                Wait.On(socket.SendAsync("hello"), Wait.Short);

                var m = messages.First(Wait.Short);
                Assert.AreEqual(SocketMessageType.Utf8, m.MessageType);
                Assert.AreEqual("hello", m.GetDataString());
                CollectionAssert.AreEqual(Encoding.UTF8.GetBytes("hello"), m.GetDataBytes());
                Assert.AreEqual("channelOne", m.ChannelId);
                Assert.AreSame(channel, m.Channel);
                Assert.AreSame(socket, m.WebSocket);
                Assert.AreSame(socket, senders.Items[0]);
                Assert.AreNotEqual(Thread.CurrentThread.ManagedThreadId, threads.Items[0], "events are raised on the runtime thread");
                Assert.AreEqual(0, runtime.UnhandledExceptionCount);

                Assert.AreEqual("channelOne", channel.ControlChannelTriggerId);
                Assert.AreEqual(TimeSpan.FromSeconds(30), channel.ServerKeepAliveInterval);
                Assert.AreEqual(0u, channel.ServerKeepAliveIntervalInMinutes);
                Assert.AreSame(socket, channel.TransportObject);
                Assert.AreEqual(1u << 20, socket.Control.MaxMessageSize);
                Assert.AreEqual(SocketMessageType.Utf8, socket.Control.MessageType);
                var st = socket.Statistics;
                Assert.AreEqual(1ul, st.MessagesSent);
                Assert.AreEqual(1ul, st.MessagesReceived);
                Assert.AreEqual(5ul, st.BytesSent);
                var rs = runtime.GetStatistics();
                Assert.AreEqual(1ul, rs.ConnectionsOpen);
                Assert.AreEqual(1ul, rs.ChannelsActive);
                Assert.GreaterOrEqual(rs.MessagesReceived, 1ul);
            }
        }

        [Test]
        public void WindowsCompatibleConstructorTakesMinutes()
        {
            using (var rt = new ControlChannelRuntime())
            using (var a = new ControlChannelTrigger(rt, "a", 15))
            using (var b = new ControlChannelTrigger(rt, "b", 30u, ControlChannelTriggerResourceType.RequestHardwareSlot))
            {
                Assert.AreEqual(15u, a.ServerKeepAliveIntervalInMinutes);
                Assert.AreEqual(TimeSpan.FromMinutes(15), a.ServerKeepAliveInterval);
                Assert.AreEqual(15u, a.CurrentKeepAliveIntervalInMinutes);
                Assert.AreEqual(TimeSpan.FromMinutes(15), a.CurrentKeepAliveInterval);
                Assert.AreEqual(ControlChannelTriggerResourceType.RequestSoftwareSlot, a.ResourceType);
                Assert.IsFalse(a.IsWakeFromLowPowerSupported);
                Assert.AreEqual(30u, b.ServerKeepAliveIntervalInMinutes);
                Assert.AreEqual(ControlChannelTriggerResourceType.RequestHardwareSlot, b.ResourceType);
                Assert.IsTrue(b.IsWakeFromLowPowerSupported);
            }
        }

        [Test]
        public void BinaryAndSegmentsEchoExactly()
        {
            using (var rt = new ControlChannelRuntime())
            using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromSeconds(30), type: SocketMessageType.Binary))
            {
                var payload = new byte[70000];
                new Random(7).NextBytes(payload);
                Wait.On(s.Socket.SendAsync(payload), Wait.Short);
                var seg = new byte[] { 9, 9, 1, 2, 3, 9 };
                Wait.On(s.Socket.SendAsync(new ArraySegment<byte>(seg, 2, 3)), Wait.Short);
                Wait.On(s.Socket.SendAsync(new byte[0]), Wait.Short);
                Wait.On(s.Socket.SendAsync("text anyway"), Wait.Short);
                Assert.IsTrue(s.Messages.WaitCount(4, Wait.Short), "4 echoes, got " + s.Messages.Count);
                var m = s.Messages.Items;
                Assert.AreEqual(SocketMessageType.Binary, m[0].MessageType);
                CollectionAssert.AreEqual(payload, m[0].GetDataBytes());
                CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, m[1].GetDataBytes());
                Assert.AreEqual(0, m[2].GetDataBytes().Length);
                Assert.AreEqual(SocketMessageType.Utf8, m[3].MessageType, "SendAsync(string) sends a text frame");
                Assert.AreEqual("text anyway", m[3].GetDataString());
                using (var stream = m[1].GetDataStream())
                    Assert.AreEqual(3, stream.Length);
                Assert.IsTrue(m[0].IsMessageComplete);
            }
        }

        [Test]
        public void ExplicitFrameTypeOverridesControlMessageType()
        {
            using (var rt = new ControlChannelRuntime())
            using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromSeconds(30), type: SocketMessageType.Binary))
            {
                Wait.On(s.Socket.SendAsync(Encoding.UTF8.GetBytes("ü"), SocketMessageType.Utf8), Wait.Short);
                Wait.On(s.Socket.SendAsync(Encoding.UTF8.GetBytes("b"), SocketMessageType.Binary), Wait.Short);
                Assert.IsTrue(s.Messages.WaitCount(2, Wait.Short));
                Assert.AreEqual(SocketMessageType.Utf8, s.Messages.Items[0].MessageType);
                Assert.AreEqual("ü", s.Messages.Items[0].GetDataString());
                Assert.AreEqual(SocketMessageType.Binary, s.Messages.Items[1].MessageType);
            }
        }

        [Test]
        public void PushedMessagesArriveOnceInOrderOnTheChannelOnly()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            using (var channel = new ControlChannelTrigger(rt, "push", TimeSpan.FromSeconds(30)))
            {
                var onSocket = new Recorder<string>();
                var onChannel = new Recorder<string>();
                socket.MessageReceived += (s, e) => onSocket.Add(e.GetDataString());
                var senders = new Recorder<object>();
                channel.PushNotificationReceived += (s, e) => { senders.Add(s); onChannel.Add(e.GetDataString()); };
                channel.UsingTransport(socket);
                Wait.On(socket.ConnectAsync(PeerFixture.Url("/push?n=50&size=16&interval_ms=0&type=text")), Wait.Long);
                Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, channel.WaitForPushEnabled());
                Assert.IsTrue(onChannel.WaitCount(50, Wait.Long), "got " + onChannel.Count);
                Thread.Sleep(200);
                Assert.AreEqual(50, onChannel.Count, "each message exactly once");
                Assert.AreEqual(0, onSocket.Count, "first match: raised on the channel, not on the socket too");
                CollectionAssert.AreEqual(Enumerable.Range(0, 50).Select(i => ("msg " + i).PadRight(16, '.')).ToList(), onChannel.Items, "in order");
                Assert.AreSame(channel, senders.Items[0]);
                Assert.AreEqual(50, onChannel.Items.Distinct().Count(), "messages are distinct: " + string.Join(",", onChannel.Items.Take(3)));
            }
        }

        [Test]
        public void PullApiReturnsEventsNobodySubscribedTo()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            using (var channel = new ControlChannelTrigger(rt, "pull", TimeSpan.FromSeconds(30)))
            {
                Assert.IsNull(rt.NextEvent(TimeSpan.FromMilliseconds(50)), "nothing queued yet");
                channel.UsingTransport(socket);
                Wait.On(socket.ConnectAsync(PeerFixture.Url("/push?n=3&size=8&interval_ms=10&type=binary")), Wait.Long);
                channel.WaitForPushEnabled();
                var got = new List<ControlChannelEventArgs>();
                var sw = System.Diagnostics.Stopwatch.StartNew();
                while (got.Count < 3 && sw.Elapsed < Wait.Long)
                {
                    var ev = rt.NextEvent(TimeSpan.FromSeconds(1));
                    if (ev != null && ev.Kind == ControlChannelEventKind.PushNotification) got.Add(ev);
                }
                Assert.AreEqual(3, got.Count);
                foreach (var ev in got)
                {
                    Assert.AreEqual("pull", ev.ChannelId);
                    Assert.AreEqual(SocketMessageType.Binary, ev.MessageType);
                    Assert.AreEqual(8, ev.GetDataBytes().Length);
                    Assert.AreSame(socket, ev.WebSocket);
                    Assert.AreSame(channel, ev.Channel);
                }
                Assert.Throws<ArgumentOutOfRangeException>(() => rt.NextEvent(TimeSpan.FromMilliseconds(-5)));
            }
        }

        [Test]
        public void SubprotocolIsNegotiated()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            {
                socket.Control.SupportedProtocols.Add("chat");
                Assert.AreEqual(1, socket.Control.SupportedProtocols.Count);
                Assert.Throws<NotSupportedException>(() => socket.Control.SupportedProtocols.Clear());
                Assert.AreEqual("", socket.Information.Protocol);
                Wait.On(socket.ConnectAsync(PeerFixture.Url("/subprotocol")), Wait.Long);
                Assert.AreEqual("chat", socket.Information.Protocol);
            }
        }

        [Test]
        public void OfferedSubprotocolMayBeDeclined()
        {
            // RFC 6455 4.1: a server that agrees to none of the offered subprotocols omits the
            // header and the connection proceeds with none (only an unoffered one is an error).
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            {
                var messages = new Recorder<string>();
                socket.MessageReceived += (s, e) => messages.Add(e.GetDataString());
                socket.Control.SupportedProtocols.Add("chat");
                socket.Control.MessageType = SocketMessageType.Utf8;
                Wait.On(socket.ConnectAsync(PeerFixture.Url("/echo")), Wait.Long);
                Assert.AreEqual("", socket.Information.Protocol);
                socket.SendAsync("hello");
                Assert.AreEqual("hello", messages.First(Wait.Short));
            }
        }

        [Test]
        public void RequestHeadersReachTheServer()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            {
                var messages = new Recorder<string>();
                socket.MessageReceived += (s, e) => messages.Add(e.GetDataString());
                socket.SetRequestHeader("Authorization", "Bearer t");
                socket.SetRequestHeader("X-CtrlChan-Test", "plain value 42");
                Wait.On(socket.ConnectAsync(PeerFixture.Url("/headers")), Wait.Long);
                string text = messages.First(Wait.Short);
                StringAssert.Contains("\"authorization\": \"Bearer t\"", text);
                StringAssert.Contains("\"x-ctrlchan-test\": \"plain value 42\"", text);
            }
        }

        [Test]
        public void SynchronousConnectWorksWithoutAChannel()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            {
                var messages = new Recorder<string>();
                socket.MessageReceived += (s, e) => messages.Add(e.GetDataString());
                socket.Control.MessageType = SocketMessageType.Utf8;
                socket.Connect(PeerFixture.Url("/echo"), TimeSpan.FromSeconds(10));
                Assert.AreEqual(WebSocketConnectionState.Open, socket.State);
                socket.SendAsync("sync");
                Assert.AreEqual("sync", messages.First(Wait.Short));
            }
        }

        [Test]
        public void StreamWebSocketReadsThroughInputStream()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new StreamWebSocket(rt))
            using (var channel = new ControlChannelTrigger(rt, "stream", TimeSpan.FromSeconds(30)))
            {
                Stream input = socket.InputStream;
                input.ReadTimeout = 5000;
                channel.UsingTransport(socket);
                Wait.On(socket.ConnectAsync(PeerFixture.Url("/echo")), Wait.Long);
                Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, channel.WaitForPushEnabled());
                byte[] data = Encoding.ASCII.GetBytes("stream-bytes");
                socket.OutputStream.Write(data, 0, data.Length);
                var buf = new byte[64];
                int total = 0;
                var sw = System.Diagnostics.Stopwatch.StartNew();
                while (total < data.Length && sw.Elapsed < Wait.Short)
                {
                    int n = input.Read(buf, total, buf.Length - total);
                    if (n == 0) break;
                    total += n;
                }
                Assert.AreEqual("stream-bytes", Encoding.ASCII.GetString(buf, 0, total));
                Wait.On(socket.SendAsync("more"), Wait.Short);
                var t = input.ReadAsync(buf, 0, buf.Length);
                Wait.On(t, Wait.Short);
                Assert.AreEqual("more", Encoding.ASCII.GetString(buf, 0, t.Result));
            }
        }

        [Test]
        public void FlushTransportReturnsWhenDataReachedTheKernel()
        {
            using (var rt = new ControlChannelRuntime())
            using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromSeconds(30)))
            {
                for (int i = 0; i < 20; i++) s.Socket.SendAsync(new string('x', 10000));
                s.Channel.FlushTransport(TimeSpan.FromSeconds(10));
                s.Channel.FlushTransport();
                Assert.IsTrue(s.Messages.WaitCount(20, Wait.Long));
            }
        }

        [Test]
        public void VersionIsReported()
        {
            StringAssert.IsMatch(@"^\d+\.\d+\.\d+", ControlChannelRuntime.Version);
        }
    }
}
