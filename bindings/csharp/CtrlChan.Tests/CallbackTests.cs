using System;
using System.Threading;
using CtrlChan;
using NUnit.Framework;

namespace CtrlChan.Tests
{
    [TestFixture, Timeout(60000)]
    public class CallbackTests
    {
        [Test]
        public void ThrowingHandlerIsReportedAndDeliveryContinues()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            using (var channel = new ControlChannelTrigger(rt, "boom", TimeSpan.FromSeconds(30)))
            {
                var reported = new Recorder<CallbackExceptionEventArgs>();
                rt.UnhandledException += (s, e) => reported.Add(e);
                rt.UnhandledException += (s, e) => { throw new Exception("a throwing exception handler is ignored too"); };
                var second = new Recorder<string>();
                var onSocket = new Recorder<string>();
                // First match: the channel listens, so every message is raised on the channel only.
                channel.PushNotificationReceived += (s, e) => { throw new InvalidOperationException("boom " + e.GetDataString()); };
                channel.PushNotificationReceived += (s, e) => second.Add(e.GetDataString());
                socket.MessageReceived += (s, e) => onSocket.Add(e.GetDataString());
                channel.UsingTransport(socket);
                socket.Control.MessageType = SocketMessageType.Utf8;
                Wait.On(socket.ConnectAsync(PeerFixture.Url("/echo")), Wait.Long);
                channel.WaitForPushEnabled();
                for (int i = 0; i < 3; i++) socket.SendAsync("m" + i);

                Assert.IsTrue(second.WaitCount(3, Wait.Short), "the other subscriber still gets every message");
                CollectionAssert.AreEqual(new[] { "m0", "m1", "m2" }, second.Items);
                Assert.IsTrue(reported.WaitCount(3, Wait.Short), "3 channel handler exceptions, got " + reported.Count);
                Assert.IsInstanceOf<InvalidOperationException>(reported.Items[0].Exception);
                Assert.AreEqual("boom m0", reported.Items[0].Exception.Message);
                Assert.AreEqual(ControlChannelEventKind.PushNotification, reported.Items[0].Event.Kind);
                Assert.AreEqual(3, rt.UnhandledExceptionCount);
                Assert.AreEqual(0, onSocket.Count, "a message raised on the channel is not raised on the socket too");
                Assert.IsNotNull(rt.LastUnhandledException);

                // The runtime is healthy afterwards.
                socket.SendAsync("after");
                Assert.IsTrue(second.WaitCount(4, Wait.Short));
                Assert.AreEqual(WebSocketConnectionState.Open, socket.State);
            }
        }

        [Test]
        public void ThrowingHandlerWithoutSubscriberIsStoredNotFatal()
        {
            using (var rt = new ControlChannelRuntime())
            {
                rt.CoalescingWindow = TimeSpan.Zero;
                using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromMilliseconds(150)))
                {
                    s.Channel.KeepAliveCompleted += (o, e) => { throw new NullReferenceException("keep-alive handler"); };
                    s.Socket.Closed += (o, e) => { throw new StackOverflowException("not really"); };
                    Assert.IsTrue(Wait.Until(() => rt.UnhandledExceptionCount >= 2, Wait.Short));
                    Assert.IsInstanceOf<NullReferenceException>(rt.LastUnhandledException);
                    s.Socket.Close(1000, "bye");
                    Assert.IsTrue(s.Closed.WaitCount(1, Wait.Short));
                    Assert.IsTrue(Wait.Until(() => rt.LastUnhandledException is StackOverflowException, Wait.Short));
                }
            }
        }

        [Test]
        public void BlockingCallsFromAHandlerFailInsteadOfDeadlocking()
        {
            using (var rt = new ControlChannelRuntime())
            using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromSeconds(30)))
            {
                var errors = new Recorder<Exception>();
                s.Socket.MessageReceived += (o, e) =>
                {
                    if (errors.Count > 0) return;   // only the first message; the reply is echoed too
                    errors.Add(Wait.Catch(() => s.Channel.FlushTransport(TimeSpan.FromSeconds(1))));
                    errors.Add(Wait.Catch(() => rt.NextEvent(TimeSpan.FromSeconds(1))));
                    errors.Add(Wait.Catch(() => rt.Dispose()));
                    errors.Add(Wait.Catch(() => s.Socket.SendAsync("from handler " + e.GetDataString())));
                };
                s.Socket.SendAsync("x");
                Assert.IsTrue(errors.WaitCount(4, Wait.Short));
                Assert.IsInstanceOf<InvalidOperationException>(errors.Items[0], "FlushTransport");
                Assert.IsInstanceOf<InvalidOperationException>(errors.Items[1], "NextEvent");
                Assert.IsInstanceOf<InvalidOperationException>(errors.Items[2], "runtime Dispose");
                Assert.IsNull(errors.Items[3], "non-blocking calls work from a handler");
                Assert.IsFalse(rt.IsDisposed);
                Assert.IsTrue(s.Messages.WaitCount(2, Wait.Short), "the reply sent from the handler is echoed");
            }
        }

        [Test]
        public void HandlerMayDisposeItsOwnSocket()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            {
                var seen = new Recorder<string>();
                socket.MessageReceived += (s, e) => { seen.Add(e.GetDataString()); ((MessageWebSocket)s).Dispose(); };
                Wait.On(socket.ConnectAsync(PeerFixture.Url("/push?n=20&size=4&interval_ms=5&type=text")), Wait.Long);
                Assert.IsTrue(seen.WaitCount(1, Wait.Short));
                Thread.Sleep(300);
                Assert.AreEqual(1, seen.Count, "no events after the socket was disposed");
                Assert.IsTrue(socket.IsDisposed);
                Assert.IsTrue(Wait.Until(() => rt.GetStatistics().ConnectionsOpen == 0, Wait.Short));
            }
        }

        [Test]
        public void HandlersCanBeRemoved()
        {
            using (var rt = new ControlChannelRuntime())
            using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromSeconds(30)))
            {
                var seen = new Recorder<string>();
                TypedEventHandler<MessageWebSocket, MessageWebSocketMessageReceivedEventArgs> h = (o, e) => seen.Add(e.GetDataString());
                s.Socket.MessageReceived += h;
                s.Socket.SendAsync("one");
                Assert.IsTrue(seen.WaitCount(1, Wait.Short));
                s.Socket.MessageReceived -= h;
                s.Socket.SendAsync("two");
                Assert.IsTrue(s.Messages.WaitCount(2, Wait.Short));
                Assert.AreEqual(1, seen.Count);
            }
        }
    }
}

namespace CtrlChan.Tests
{
    [TestFixture, Timeout(120000)]
    public class ProcessExitTests
    {
        // A process that ends while events are being delivered -- without disposing its runtime,
        // with handlers that throw, or through Environment.Exit -- must end promptly with its own
        // exit code: no hang waiting for the runtime thread, no crash in native code.
        [TestCase("return", 0)]
        [TestCase("throw", 0)]
        [TestCase("exit", 3)]
        public void ProcessEndsCleanlyWhileEventsFlow(string mode, int expectedExitCode)
        {
            string dir = System.IO.Path.GetDirectoryName(typeof(ProcessExitTests).Assembly.Location);
            string exe = System.IO.Path.Combine(dir, "ExitHelper.exe");
            Assert.IsTrue(System.IO.File.Exists(exe), exe + " is built by run-tests.sh");
            var psi = new System.Diagnostics.ProcessStartInfo("mono", "\"" + exe + "\" " + PeerFixture.Server.Port + " " + mode)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using (var p = System.Diagnostics.Process.Start(psi))
            {
                var stdout = p.StandardOutput.ReadToEndAsync();
                var stderr = p.StandardError.ReadToEndAsync();
                bool exited = p.WaitForExit(60000);
                if (!exited) { try { p.Kill(); } catch (Exception) { } }
                Assert.IsTrue(exited, "the process hung at exit");
                p.WaitForExit();
                StringAssert.Contains("exiting after", stdout.Result);
                Assert.AreEqual(expectedExitCode, p.ExitCode, "stderr: " + stderr.Result);
                StringAssert.DoesNotContain("panicked", stderr.Result);
                StringAssert.DoesNotContain("SIGSEGV", stderr.Result);
            }
        }
    }
}
