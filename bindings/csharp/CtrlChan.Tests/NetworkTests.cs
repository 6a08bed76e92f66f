using System;
using System.Diagnostics;
using System.IO;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CtrlChan;
using NUnit.Framework;

namespace CtrlChan.Tests
{
    /// <summary>Real networks: tinyproxy (HTTP CONNECT + BasicAuth) from tests/peer/proxies.py, and the
    /// websockets peer with CERT_REQUIRED for mutual TLS (RSA certificates from make_certs.py).</summary>
    [TestFixture, Timeout(120000)]
    public class NetworkTests
    {
        private string _dir;
        private string _caPem;
        private PeerProcess _mtls;
        private PeerProcess _plain;
        private PeerProcess _proxy;
        private string _proxyUri;

        private static void Run(string args)
        {
            var psi = new ProcessStartInfo(PeerProcess.Python, args)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using (var p = Process.Start(psi))
            {
                var output = p.StandardOutput.ReadToEndAsync();
                Assert.IsTrue(p.WaitForExit(30000), "python finished");
                Assert.AreEqual(0, p.ExitCode, p.StandardError.ReadToEnd() + output.Result);
            }
        }

        private string F(string name) { return Path.Combine(_dir, name); }

        [TestFixtureSetUp]
        public void Start()
        {
            _dir = Path.Combine(Path.GetTempPath(), "ctrlchan-cs-net-" + Process.GetCurrentProcess().Id);
            Directory.CreateDirectory(_dir);
            Run("\"" + Path.Combine(PeerProcess.RepoRoot, "tests", "peer", "make_certs.py") + "\" \"" + _dir + "\" --key-type rsa --client");
            // A PKCS#12 of the client certificate and key, as Windows code would load one (3DES/SHA-1:
            // what Mono's importer reads).
            Run("-c \"import sys; from cryptography.hazmat.primitives import hashes, serialization as s; "
                + "from cryptography.hazmat.primitives.serialization import pkcs12; from cryptography import x509; "
                + "d=sys.argv[1]; c=x509.load_pem_x509_certificate(open(d+'/client-cert.pem','rb').read()); "
                + "k=s.load_pem_private_key(open(d+'/client-key.pem','rb').read(), None); "
                + "e=s.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(2048)"
                + ".key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1()).build(b'pw'); "
                + "open(d+'/client.pfx','wb').write(pkcs12.serialize_key_and_certificates(b'client', k, c, None, e))\" \""
                + _dir + "\"");
            _caPem = File.ReadAllText(F("ca.pem"));
            _mtls = PeerProcess.Start("server.py", "--port", "0",
                "--tls-cert", "\"" + F("server-cert.pem") + "\"", "--tls-key", "\"" + F("server-key.pem") + "\"",
                "--tls-client-ca", "\"" + F("ca.pem") + "\"");
            _plain = PeerProcess.Start("server.py", "--port", "0");
            _proxy = PeerProcess.Start("proxies.py", "tinyproxy");
            string uri = _proxy.WaitLine(l => l.StartsWith("URI "), TimeSpan.FromSeconds(10));
            Assert.IsNotNull(uri, "tinyproxy URI");
            _proxyUri = uri.Substring(4).Trim();
        }

        [TestFixtureTearDown]
        public void Stop()
        {
            foreach (var p in new[] { _mtls, _plain, _proxy }) if (p != null) p.Dispose();
            try { Directory.Delete(_dir, true); } catch (Exception) { }
        }

        [Test]
        public void ExplicitProxyTunnelsAndWrongCredentialsThrowProxyFailedException()
        {
            using (var rt = new ControlChannelRuntime())
            {
                using (var socket = new MessageWebSocket(rt))
                {
                    socket.Control.SetProxy(new Uri(_proxyUri));
                    Assert.AreEqual(_proxyUri, socket.Control.Proxy);
                    socket.Connect(new Uri("ws://127.0.0.1:" + _plain.Port + "/echo"), TimeSpan.FromSeconds(10));
                    Assert.AreEqual(WebSocketConnectionState.Open, socket.State);
                    Assert.AreEqual("", socket.Information.TlsVersion);
                    Assert.IsNull(socket.Information.ServerCertificate);
                }
                using (var socket = new MessageWebSocket(rt))
                {
                    string wrong = _proxyUri.Replace(":ctrlchan-proxy-test@", ":cs-wrong-secret@");
                    Assert.AreNotEqual(_proxyUri, wrong, "the helper's password is in the URI");
                    socket.Control.Proxy = wrong;
                    var ex = Assert.Throws<ProxyFailedException>(() => Wait.On(socket.ConnectAsync(new Uri("ws://127.0.0.1:" + _plain.Port + "/echo")), Wait.Long));
                    Assert.AreEqual(CtrlChanResult.ProxyFailed, ex.Result);
                    StringAssert.DoesNotContain("cs-wrong-secret", ex.Message);
                    StringAssert.Contains("401", ex.Message);
                }
                using (var socket = new MessageWebSocket(rt))
                {
                    var ex = Assert.Throws<ArgumentException>(() => socket.Control.Proxy = "ftp://u:cs-secret@127.0.0.1:1");
                    StringAssert.DoesNotContain("cs-secret", ex.Message);
                }
            }
        }

        [Test]
        public void ClientCertificateFromX509Certificate2AndServerCertificate()
        {
            using (var rt = new ControlChannelRuntime())
            {
                using (var socket = new MessageWebSocket(rt))
                {
                    socket.Control.AddTrustedRootCertificate(_caPem);
                    socket.Control.Proxy = "";
                    Assert.Throws<CtrlChanException>(() => socket.Connect(new Uri("wss://localhost:" + _mtls.Port + "/echo"), TimeSpan.FromSeconds(10)));
                }
                using (var socket = new MessageWebSocket(rt))
                {
                    socket.Control.AddTrustedRootCertificate(_caPem);
                    socket.Control.Proxy = "";
                    var cert = new X509Certificate2(F("client.pfx"), "pw", X509KeyStorageFlags.Exportable);
                    Assert.IsTrue(cert.HasPrivateKey);
                    socket.Control.ClientCertificate = cert;
                    socket.Connect(new Uri("wss://localhost:" + _mtls.Port + "/echo"), TimeSpan.FromSeconds(10));
                    Assert.AreEqual(WebSocketConnectionState.Open, socket.State);
                    var server = socket.Information.ServerCertificate;
                    Assert.IsNotNull(server);
                    var expected = new X509Certificate2(File.ReadAllBytes(F("server-cert.pem")));
                    Assert.AreEqual(expected.Thumbprint, server.Thumbprint);
                    StringAssert.StartsWith("TLSv1.", socket.Information.TlsVersion);
                    StringAssert.StartsWith("TLS_", socket.Information.TlsCipherSuite);
                }
            }
        }

        [Test]
        public void MismatchedKeyAndBadPinAreArgumentExceptionsAndWrongPinFails()
        {
            using (var rt = new ControlChannelRuntime())
            using (var socket = new MessageWebSocket(rt))
            {
                Assert.Throws<ArgumentException>(() => socket.Control.SetClientCertificatePem(File.ReadAllText(F("client-cert.pem")), File.ReadAllText(F("other-key.pem"))));
                Assert.Throws<ArgumentException>(() => socket.Control.AddPinnedPublicKey("sha1//nope"));
                socket.Control.AddTrustedRootCertificate(_caPem);
                socket.Control.Proxy = "";
                socket.Control.SetClientCertificatePem(File.ReadAllText(F("client-cert.pem")), File.ReadAllText(F("client-key.pem")));
                socket.Control.AddPinnedPublicKey("sha256//" + Convert.ToBase64String(new byte[32]));
                Assert.AreEqual(1, socket.Control.PinnedPublicKeys.Count);
                var ex = Assert.Throws<CtrlChanException>(() => socket.Connect(new Uri("wss://localhost:" + _mtls.Port + "/echo"), TimeSpan.FromSeconds(10)));
                Assert.AreEqual(CtrlChanResult.TlsFailed, ex.Result, ex.Message);
            }
        }
    }
}
