using System;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading.Tasks;
using CtrlChan;
using NUnit.Framework;

namespace CtrlChan.Tests
{
    /// <summary>wss:// against the same peer serving TLS with a throw-away CA (tests/peer/make_certs.py).</summary>
    [TestFixture, Timeout(60000)]
    public class TlsTests
    {
        private string _dir;
        private string _caPem;
        private PeerProcess _server;

        [TestFixtureSetUp]
        public void StartTlsPeer()
        {
            _dir = Path.Combine(Path.GetTempPath(), "ctrlchan-cs-tls-" + Process.GetCurrentProcess().Id);
            Directory.CreateDirectory(_dir);
            var psi = new ProcessStartInfo(PeerProcess.Python,
                "\"" + Path.Combine(PeerProcess.RepoRoot, "tests", "peer", "make_certs.py") + "\" \"" + _dir + "\"")
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using (var p = Process.Start(psi))
            {
                var output = p.StandardOutput.ReadToEndAsync();
                Assert.IsTrue(p.WaitForExit(30000), "make_certs.py finished");
                Assert.AreEqual(0, p.ExitCode, p.StandardError.ReadToEnd());
                StringAssert.Contains("CA ", output.Result);
            }
            _caPem = File.ReadAllText(Path.Combine(_dir, "ca.pem"));
            _server = PeerProcess.Start("server.py", "--port", "0",
                "--tls-cert", "\"" + Path.Combine(_dir, "server-cert.pem") + "\"",
                "--tls-key", "\"" + Path.Combine(_dir, "server-key.pem") + "\"");
        }

        [TestFixtureTearDown]
        public void StopTlsPeer()
        {
            if (_server != null) _server.Dispose();
            try { Directory.Delete(_dir, true); } catch (Exception) { }
        }

        private Uri Url(string path) { return new Uri("wss://127.0.0.1:" + _server.Port + path); }

        [Test]
        public void TrustedCaConnectsAndEchoes()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            using (var channel = new ControlChannelTrigger(rt, "tls", TimeSpan.FromSeconds(30)))
            {
                var msgs = new Recorder<string>();
                socket.MessageReceived += (s, e) => msgs.Add(e.GetDataString());
                socket.Control.AddTrustedRootCertificate(_caPem);
                socket.Control.MessageType = SocketMessageType.Utf8;
                channel.UsingTransport(socket);
                Wait.On(socket.ConnectAsync(Url("/echo")), Wait.Long);
                Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, channel.WaitForPushEnabled());
                socket.SendAsync("over tls");
                Assert.AreEqual("over tls", msgs.First(Wait.Short));
            }
        }

        [Test]
        public void UntrustedCertificateFailsWithTlsFailed()
        {
            using (var rt = new ControlChannelRuntime())
            {
                using (var socket = new MessageWebSocket(rt))
                {
                    var ex = Assert.Throws<CtrlChanException>(() => Wait.On(socket.ConnectAsync(Url("/echo")), Wait.Long));
                    Assert.AreEqual(CtrlChanResult.TlsFailed, ex.Result, ex.Message);
                }
                using (var socket = new MessageWebSocket(rt))
                {
                    var ex = Assert.Throws<CtrlChanException>(() => socket.Connect(Url("/echo"), TimeSpan.FromSeconds(10)));
                    Assert.AreEqual(CtrlChanResult.TlsFailed, ex.Result, ex.Message);
                }
            }
        }

        [Test]
        public void IgnoringCertificateErrorsIsExplicit()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            {
                Assert.IsFalse(socket.Control.IgnoreServerCertificateErrors);
                socket.Control.IgnoreServerCertificateErrors = true;
                Wait.On(socket.ConnectAsync(Url("/echo")), Wait.Long);
                Assert.AreEqual(WebSocketConnectionState.Open, socket.State);
            }
        }

        [Test]
        public void MalformedPemIsAnArgumentError()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            {
                Assert.Throws<ArgumentException>(() => socket.Control.AddTrustedRootCertificate("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"));
                Assert.Throws<ArgumentException>(() => socket.Control.AddTrustedRootCertificate("no certificate here"));
                Assert.Throws<ArgumentNullException>(() => socket.Control.AddTrustedRootCertificate(null));
            }
        }

        [Test]
        public void StreamSocketDataReceivedOverTls()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new StreamWebSocket(rt))
            {
                var chunks = new Recorder<byte[]>();
                socket.DataReceived += (s, e) => chunks.Add(e.GetDataBytes());
                socket.Control.AddTrustedRootCertificate(_caPem);
                Wait.On(socket.ConnectAsync(Url("/echo")), Wait.Long);
                socket.SendAsync(new byte[] { 1, 2, 3 });
                socket.SendAsync("text goes out as binary");
                Assert.IsTrue(chunks.WaitCount(2, Wait.Short));
                CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, chunks.Items[0]);
                Assert.AreEqual("text goes out as binary", Encoding.UTF8.GetString(chunks.Items[1]));
                Assert.Throws<ArgumentException>(() => socket.SendAsync(new byte[] { 65 }, SocketMessageType.Utf8), "stream sockets send binary only");
            }
        }
    }
}
