using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using CtrlChan;
using NUnit.Framework;

namespace CtrlChan.Tests
{
    [TestFixture, Timeout(60000)]
    public class LoggingTests
    {
        sealed class Collect : TraceListener
        {
            public readonly List<string> Lines = new List<string>();
            public override void Write(string message) { lock (Lines) Lines.Add(message); }
            public override void WriteLine(string message) { lock (Lines) Lines.Add(message); }
            public override void WriteLine(string message, string category) { lock (Lines) Lines.Add(category + "|" + message); }
        }

        static int ClosedPort()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        [Test]
        public void ConnectFailuresReachTheEventAndTrace()
        {
            var seen = new List<CtrlChanLogEventArgs>();
            EventHandler<CtrlChanLogEventArgs> h = (s, e) => { lock (seen) seen.Add(e); };
            var listener = new Collect();
            Trace.Listeners.Add(listener);
            CtrlChanLog.MessageLogged += h;
            try
            {
                using (var rt = new ControlChannelRuntime())
                {
                    Assert.AreEqual(CtrlChanLogLevel.Information, CtrlChanLog.Level);
                    int port = ClosedPort();
                    using (var ws = new MessageWebSocket(rt))
                        Assert.Throws<CtrlChanException>(() => ws.Connect(new Uri("ws://127.0.0.1:" + port + "/"), TimeSpan.FromSeconds(5)));
                    lock (seen)
                    {
                        var hit = seen.Find(e => e.Target == "ctrlchan" && e.Message.Contains("127.0.0.1:" + port) && e.Message.Contains("failed"));
                        Assert.IsNotNull(hit, "log lines: " + string.Join(" / ", seen.ConvertAll(e => e.Message)));
                        Assert.AreEqual(CtrlChanLogLevel.Warning, hit.Level);
                    }
                    lock (listener.Lines)
                        Assert.IsTrue(listener.Lines.Exists(l => l.StartsWith("ctrlchan|Warning: connect to 127.0.0.1:" + port)),
                                      string.Join(" / ", listener.Lines));
                    // Off: nothing more arrives.
                    CtrlChanLog.Level = null;
                    int before;
                    lock (seen) before = seen.Count;
                    using (var ws = new MessageWebSocket(rt))
                        Assert.Throws<CtrlChanException>(() => ws.Connect(new Uri("ws://127.0.0.1:" + port + "/"), TimeSpan.FromSeconds(5)));
                    lock (seen) Assert.AreEqual(before, seen.Count);
                }
            }
            finally
            {
                CtrlChanLog.MessageLogged -= h;
                Trace.Listeners.Remove(listener);
                CtrlChanLog.Level = CtrlChanLogLevel.Information;
            }
        }
    }
}
