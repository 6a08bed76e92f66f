// One event policy, the core's: each event goes to exactly one place, the first that applies --
// the channel (if the socket is its transport and something subscribed to the channel), else the
// socket (if something subscribed to it), else the runtime's native queue (NextEvent). A native
// handler exists only while something managed listens, and the queue drops nothing.
using System;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using CtrlChan;
using NUnit.Framework;

namespace CtrlChan.Tests
{
    [TestFixture, Timeout(120000)]
    public class EventRoutingTests
    {
        /// <summary>The next PushNotification from the runtime queue (other kinds skipped), or null.</summary>
        private static ControlChannelEventArgs NextPush(ControlChannelRuntime rt, TimeSpan timeout)
        {
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed < timeout)
            {
                var ev = rt.NextEvent(TimeSpan.FromMilliseconds(100));
                if (ev != null && ev.Kind == ControlChannelEventKind.PushNotification) return ev;
            }
            return null;
        }

        private static string PushText(int i) { return ("msg " + i).PadRight(16, '.'); }

        [Test]
        public void FiftyThousandUnsubscribedEventsAreReadBackInOrder()
        {
            const int N = 50000;
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            using (var channel = new ControlChannelTrigger(rt, "flood", TimeSpan.FromSeconds(30)))
            {
                channel.UsingTransport(socket);
                Wait.On(socket.ConnectAsync(PeerFixture.Url("/push?n=" + N + "&size=16&interval_ms=0&type=text")), Wait.Long);
                Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, channel.WaitForPushEnabled());
                Assert.IsFalse(socket.HasNativeHandler, "the handler that waited for the connect result is gone");
                Assert.IsFalse(channel.HasNativeHandler);

                // Let all of them arrive before reading one: the queue holds 50 000 at once
                // (the binding's old managed queue kept 10 000 and dropped the oldest).
                Assert.IsTrue(Wait.Until(() => rt.GetStatistics().MessagesReceived >= N, TimeSpan.FromSeconds(60)),
                              "messages received: " + rt.GetStatistics().MessagesReceived);

                int next = 0, others = 0;
                var sw = Stopwatch.StartNew();
                while (next < N && sw.Elapsed < TimeSpan.FromSeconds(60))
                {
                    var ev = rt.NextEvent(TimeSpan.FromSeconds(5));
                    if (ev == null) break;
                    if (ev.Kind != ControlChannelEventKind.PushNotification) { others++; continue; }
                    string got = ev.GetDataString();
                    if (got != PushText(next)) Assert.Fail("event " + next + " out of order or lost: got '" + got + "'");
                    if (next == 0 || next == N - 1)
                    {
                        Assert.AreEqual("flood", ev.ChannelId);
                        Assert.AreSame(socket, ev.WebSocket);
                        Assert.AreSame(channel, ev.Channel);
                    }
                    next++;
                }
                Assert.AreEqual(N, next, "every pushed message read back (other events: " + others + ")");
                Assert.IsNull(NextPush(rt, TimeSpan.FromMilliseconds(300)), "and no message twice");
                Assert.AreEqual(0, rt.UnhandledExceptionCount);
            }
        }

        [Test]
        public void EachMessageGoesToTheChannelElseTheSocketElseTheQueue()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            using (var channel = new ControlChannelTrigger(rt, "route", TimeSpan.FromSeconds(30)))
            {
                var onChannel = new Recorder<string>();
                var onSocket = new Recorder<string>();
                TypedEventHandler<ControlChannelTrigger, PushNotificationEventArgs> ch = (s, e) => onChannel.Add(e.GetDataString());
                TypedEventHandler<MessageWebSocket, MessageWebSocketMessageReceivedEventArgs> so = (s, e) => onSocket.Add(e.GetDataString());
                socket.Control.MessageType = SocketMessageType.Utf8;
                channel.PushNotificationReceived += ch;
                socket.MessageReceived += so;
                channel.UsingTransport(socket);
                Wait.On(socket.ConnectAsync(PeerFixture.Url("/echo")), Wait.Long);
                Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, channel.WaitForPushEnabled());

                socket.SendAsync("one");
                Assert.AreEqual("one", onChannel.First(Wait.Short), "1. the listening channel comes first");

                channel.PushNotificationReceived -= ch;
                Assert.IsFalse(channel.HasNativeHandler, "the last subscriber removed the channel's handler");
                socket.SendAsync("two");
                Assert.AreEqual("two", onSocket.First(Wait.Short), "2. then the socket");

                socket.MessageReceived -= so;
                Assert.IsFalse(socket.HasNativeHandler);
                socket.SendAsync("three");
                var queued = NextPush(rt, Wait.Short);
                Assert.IsNotNull(queued, "3. then the runtime queue");
                Assert.AreEqual("three", queued.GetDataString());
                Assert.AreSame(socket, queued.WebSocket);
                Assert.AreSame(channel, queued.Channel);

                channel.PushNotificationReceived += ch;
                socket.MessageReceived += so;
                socket.SendAsync("four");
                Assert.IsTrue(onChannel.WaitCount(2, Wait.Short), "subscribing again routes to the channel again");
                Thread.Sleep(300);
                CollectionAssert.AreEqual(new[] { "one", "four" }, onChannel.Items);
                CollectionAssert.AreEqual(new[] { "two" }, onSocket.Items);
                Assert.IsNull(NextPush(rt, TimeSpan.FromMilliseconds(200)), "nothing raised went to the queue as well");
            }
        }

        [Test]
        public void AChannelListeningForOtherKindsRaisesMessagesOnItsSocket()
        {
            using (var rt = new ControlChannelRuntime())
            using (var ka = new WebSocketKeepAlive())
            using (var socket = new MessageWebSocket(rt))
            using (var channel = new ControlChannelTrigger(rt, "kinds", TimeSpan.FromMinutes(10)))
            {
                var keepAlives = new Recorder<KeepAliveCompletedEventArgs>();
                var onSocket = new Recorder<string>();
                TypedEventHandler<MessageWebSocket, MessageWebSocketMessageReceivedEventArgs> so = (s, e) => onSocket.Add(e.GetDataString());
                channel.KeepAliveTask = ka;
                channel.KeepAliveCompleted += (s, e) => keepAlives.Add(e);
                socket.MessageReceived += so;
                socket.Control.MessageType = SocketMessageType.Utf8;
                channel.UsingTransport(socket);
                Wait.On(socket.ConnectAsync(PeerFixture.Url("/echo")), Wait.Long);
                channel.WaitForPushEnabled();
                Assert.IsTrue(channel.HasNativeHandler);

                // The core gives every event of the transport to the channel's handler; a message
                // (no PushNotificationReceived subscriber) is raised on the socket, once.
                socket.SendAsync("via the channel's handler");
                Assert.AreEqual("via the channel's handler", onSocket.First(Wait.Short));
                ka.Run(channel);
                Assert.That(keepAlives.First(Wait.Short).RoundTripTime, Is.GreaterThan(TimeSpan.Zero));

                // A kind nobody subscribed to on the object the core chose is not raised, and it
                // does not reach the queue either: the channel's handler received it.
                socket.MessageReceived -= so;
                socket.SendAsync("ignored");
                Thread.Sleep(300);
                Assert.IsNull(NextPush(rt, TimeSpan.FromMilliseconds(200)));
                Assert.AreEqual(1, onSocket.Count);
            }
        }

        [Test]
        public void ALostTransportIsRaisedOnTheChannelElseTheSocketElseQueued()
        {
            using (var rt = new ControlChannelRuntime())
            {
                // channel and socket both subscribed: the channel only
                using (var socket = new MessageWebSocket(rt))
                using (var channel = new ControlChannelTrigger(rt, "lost1", TimeSpan.FromSeconds(30)))
                {
                    var onChannel = new Recorder<TransportDisconnectedEventArgs>();
                    var onSocket = new Recorder<WebSocketDisconnectedEventArgs>();
                    channel.TransportDisconnected += (s, e) => onChannel.Add(e);
                    socket.Disconnected += (s, e) => onSocket.Add(e);
                    channel.UsingTransport(socket);
                    Wait.On(socket.ConnectAsync(PeerFixture.Url("/drop?after_ms=100")), Wait.Long);
                    channel.WaitForPushEnabled();
                    Assert.AreEqual("lost1", onChannel.First(Wait.Short).ChannelId);
                    Thread.Sleep(300);
                    Assert.AreEqual(1, onChannel.Count);
                    Assert.AreEqual(0, onSocket.Count, "raised on the channel, not on the socket too");
                }
                // only the socket subscribed: the socket
                using (var socket = new MessageWebSocket(rt))
                using (var channel = new ControlChannelTrigger(rt, "lost2", TimeSpan.FromSeconds(30)))
                {
                    var onSocket = new Recorder<WebSocketDisconnectedEventArgs>();
                    socket.Disconnected += (s, e) => onSocket.Add(e);
                    channel.UsingTransport(socket);
                    Wait.On(socket.ConnectAsync(PeerFixture.Url("/drop?after_ms=100")), Wait.Long);
                    channel.WaitForPushEnabled();
                    var d = onSocket.First(Wait.Short);
                    Assert.AreEqual("lost2", d.ChannelId);
                    Assert.AreSame(channel, d.Channel);
                }
                // nothing subscribed: the queue
                using (var socket = new MessageWebSocket(rt))
                using (var channel = new ControlChannelTrigger(rt, "lost3", TimeSpan.FromSeconds(30)))
                {
                    channel.UsingTransport(socket);
                    Wait.On(socket.ConnectAsync(PeerFixture.Url("/drop?after_ms=100")), Wait.Long);
                    channel.WaitForPushEnabled();
                    ControlChannelEventArgs lost = null;
                    var sw = Stopwatch.StartNew();
                    while (lost == null && sw.Elapsed < Wait.Short)
                    {
                        var ev = rt.NextEvent(TimeSpan.FromMilliseconds(200));
                        if (ev != null && ev.Kind == ControlChannelEventKind.TransportDisconnected) lost = ev;
                    }
                    Assert.IsNotNull(lost, "TransportDisconnected queued");
                    Assert.AreEqual("lost3", lost.ChannelId);
                    Assert.AreSame(socket, lost.WebSocket);
                }
            }
        }

        private static void FullGc()
        {
            for (int i = 0; i < 3; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }

        [Test]
        public void NoNativeHandlerExistsWhileNothingIsSubscribed()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            using (var stream = new StreamWebSocket(rt))
            using (var channel = new ControlChannelTrigger(rt, "quiet", TimeSpan.FromSeconds(30)))
            {
                FullGc();
                int baseline = Callbacks.LiveUserdata;
                Assert.IsFalse(socket.HasNativeHandler);
                Assert.IsFalse(stream.HasNativeHandler);
                Assert.IsFalse(channel.HasNativeHandler);

                TypedEventHandler<IWebSocket, WebSocketClosedEventArgs> closed = (s, e) => { };
                TypedEventHandler<MessageWebSocket, MessageWebSocketMessageReceivedEventArgs> message = (s, e) => { };
                socket.Closed += closed;
                Assert.IsTrue(socket.HasNativeHandler, "installed on the first +=");
                Assert.AreEqual(baseline + 1, Callbacks.LiveUserdata);
                socket.MessageReceived += message;
                Assert.AreEqual(baseline + 1, Callbacks.LiveUserdata, "one handler per object");
                socket.Closed -= closed;
                Assert.IsTrue(socket.HasNativeHandler, "MessageReceived still has a subscriber");
                socket.MessageReceived -= message;
                Assert.IsFalse(socket.HasNativeHandler, "removed with the last subscriber");
                Assert.AreEqual(baseline, Callbacks.LiveUserdata, "the library released the userdata");

                TypedEventHandler<ControlChannelTrigger, ChannelResetEventArgs> reset = (s, e) => { };
                channel.Reset += reset;
                Assert.IsTrue(channel.HasNativeHandler);
                channel.Reset -= reset;
                Assert.IsFalse(channel.HasNativeHandler);

                var input = stream.InputStream;
                Assert.IsTrue(stream.HasNativeHandler, "an open InputStream listens for data");
                input.Dispose();
                Assert.IsFalse(stream.HasNativeHandler);
                Assert.AreEqual(baseline, Callbacks.LiveUserdata);

                // Nothing subscribed: the socket's events are in the runtime queue.
                socket.Control.MessageType = SocketMessageType.Utf8;
                channel.UsingTransport(socket);
                Wait.On(socket.ConnectAsync(PeerFixture.Url("/echo")), Wait.Long);
                Assert.IsFalse(socket.HasNativeHandler, "a finished connect no longer listens");
                socket.SendAsync("to the queue");
                var ev = NextPush(rt, Wait.Short);
                Assert.IsNotNull(ev);
                Assert.AreEqual("to the queue", ev.GetDataString());
            }
        }

        [Test]
        public void APendingConnectListensUntilItsResult()
        {
            // A listener that accepts TCP but never answers the handshake keeps the connect pending.
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            try
            {
                int port = ((IPEndPoint)l.LocalEndpoint).Port;
                using (var rt = new ControlChannelRuntime())
                using (var ws = new MessageWebSocket(rt))
                {
                    ws.Control.ConnectTimeout = TimeSpan.FromMilliseconds(500);
                    Task t = ws.ConnectAsync(new Uri("ws://127.0.0.1:" + port + "/"));
                    Assert.IsTrue(ws.HasNativeHandler, "the connect result is an event: the socket listens for it");
                    var ex = Wait.Catch(() => Wait.On(t, TimeSpan.FromSeconds(10)));
                    Assert.IsInstanceOf<CtrlChanException>(ex);
                    Assert.IsFalse(ws.HasNativeHandler, "no listener once the task ended");
                    Assert.IsNull(rt.NextEvent(TimeSpan.FromMilliseconds(100)), "the result went to the task, not also to the queue");
                }
            }
            finally { l.Stop(); }
        }
    }

    [TestFixture, Timeout(60000)]
    public class SettingsTests
    {
        [Test]
        public void SettingsAreReadBackFromTheNativeObjects()
        {
            var rt = new ControlChannelRuntime();
            using (rt)
            using (var ws = new MessageWebSocket(rt))
            using (var ch = new ControlChannelTrigger(rt, "ünïcode-id", TimeSpan.FromSeconds(30)))
            {
                Assert.AreEqual(65536u, rt.MaxChannels, "native default");
                Assert.AreEqual(TimeSpan.FromSeconds(3), rt.CoalescingWindow, "native default");
                rt.MaxChannels = 7;
                rt.CoalescingWindow = TimeSpan.FromMilliseconds(250);
                Assert.AreEqual(7u, rt.MaxChannels);
                Assert.AreEqual(TimeSpan.FromMilliseconds(250), rt.CoalescingWindow);
                Assert.AreEqual(TimeSpan.FromMilliseconds(50), rt.PongSettle, "native default");
                rt.PongSettle = TimeSpan.FromMilliseconds(20);
                Assert.AreEqual(TimeSpan.FromMilliseconds(20), rt.PongSettle);
                rt.PongSettle = TimeSpan.Zero;
                Assert.AreEqual(TimeSpan.Zero, rt.PongSettle);

                Assert.AreEqual(16u << 20, ws.Control.OutboundBufferSizeInBytes, "native default");
                Assert.IsFalse(ws.Control.IgnoreServerCertificateErrors);
                ws.Control.OutboundBufferSizeInBytes = 4096;
                ws.Control.IgnoreServerCertificateErrors = true;
                Assert.AreEqual(4096u, ws.Control.OutboundBufferSizeInBytes);
                Assert.IsTrue(ws.Control.IgnoreServerCertificateErrors);

                var protocols = ws.Control.SupportedProtocols;
                Assert.AreEqual(0, protocols.Count);
                protocols.Add("chat");
                protocols.Add("superchat");
                CollectionAssert.AreEqual(new[] { "chat", "superchat" }, protocols.ToList(), "in the order offered");
                Assert.AreEqual("superchat", protocols[1]);
                Assert.AreEqual(1, protocols.IndexOf("superchat"));
                Assert.IsTrue(protocols.Contains("chat"));
                Assert.Throws<ArgumentOutOfRangeException>(() => { var p = protocols[2]; });
                Assert.Throws<NotSupportedException>(() => protocols.RemoveAt(0));
                Assert.Throws<NotSupportedException>(() => protocols[0] = "other");
                Assert.AreEqual(2, protocols.Count);

                Assert.AreEqual("ünïcode-id", ch.ControlChannelTriggerId);
            }
            Assert.Throws<ObjectDisposedException>(() => { var m = rt.MaxChannels; });
            Assert.Throws<ObjectDisposedException>(() => { var w = rt.CoalescingWindow; });
        }
    }
}
