// Packaging-facing behaviour: exception texts name the result once, and the native loader
// reports where it looked.
using System;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks;
using CtrlChan;
using NUnit.Framework;

namespace CtrlChan.Tests
{
    [TestFixture]
    public class PackagingTests
    {
        private static int ClosedPort()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        private static int Count(string haystack, string needle)
        {
            int n = 0;
            for (int i = haystack.IndexOf(needle, StringComparison.Ordinal); i >= 0;
                 i = haystack.IndexOf(needle, i + needle.Length, StringComparison.Ordinal))
                n++;
            return n;
        }

        [Test]
        public void ConnectFailureNamesTheResultOnce()
        {
            int port = ClosedPort();
            using (var rt = new ControlChannelRuntime())
            using (var ws = new MessageWebSocket(rt))
            {
                Task t = ws.ConnectAsync(new Uri("ws://127.0.0.1:" + port + "/"));
                var ex = Assert.Throws<CtrlChanException>(() => Wait.On(t, Wait.Long));
                Assert.AreEqual(CtrlChanResult.ConnectFailed, ex.Result);
                StringAssert.StartsWith("CONNECT_FAILED: ", ex.Message);
                Assert.AreEqual(1, Count(ex.Message, "CONNECT_FAILED"), ex.Message);
            }
            using (var rt = new ControlChannelRuntime())
            using (var ws = new MessageWebSocket(rt))
            {
                var ex = Assert.Throws<CtrlChanException>(() => ws.Connect(new Uri("ws://127.0.0.1:" + port + "/"), TimeSpan.FromSeconds(5)));
                Assert.AreEqual(1, Count(ex.Message, "CONNECT_FAILED"), ex.Message);
                StringAssert.Contains("refused", ex.Message.ToLowerInvariant());
            }
        }

        [Test]
        public void ExceptionTextKeepsANativeTextThatAlreadyNamesTheResult()
        {
            Assert.AreEqual("TLS_FAILED: bad certificate",
                new CtrlChanException(CtrlChanResult.TlsFailed, "TLS_FAILED: bad certificate").Message);
            Assert.AreEqual("IO: connection reset", new CtrlChanException(CtrlChanResult.Io, "connection reset").Message);
            Assert.AreEqual("TIMEOUT", new CtrlChanException(CtrlChanResult.Timeout, "").Message);
        }

        [Test]
        public void LoaderFoundTheLibraryAndSaysWhere()
        {
            Assert.IsNotEmpty(ControlChannelRuntime.Version);
            StringAssert.Contains("libctrlchan.so", NativeLibraryLoader.Describe());
        }

        [Test]
        public void MissingLibraryMessageListsEveryPathTried()
        {
            var ex = NativeLibraryLoader.NotFound(new[] { "/nowhere/a/libctrlchan.so (not found)", "/nowhere/b/libctrlchan.so (not found)" });
            Assert.IsInstanceOf<DllNotFoundException>(ex);
            StringAssert.Contains("/nowhere/a/libctrlchan.so", ex.Message);
            StringAssert.Contains("/nowhere/b/libctrlchan.so", ex.Message);
            StringAssert.Contains("CTRLCHAN_LIBRARY", ex.Message);
        }
    }
}
