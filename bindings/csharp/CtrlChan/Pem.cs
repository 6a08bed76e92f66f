using System;
using System.Collections.Generic;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace CtrlChan
{
    /// <summary>PEM text for the native client-certificate call: the certificate from its DER, the
    /// private key as PKCS#1 from RSAParameters (available on Mono and every .NET). ECDSA keys
    /// cannot be exported portably on netstandard2.0/Mono: pass PEM strings instead.</summary>
    internal static class Pem
    {
        internal static string Certificate(byte[] der)
        {
            return Block("CERTIFICATE", der);
        }

        internal static string PrivateKey(X509Certificate2 cert)
        {
            AsymmetricAlgorithm key;
            try { key = cert.PrivateKey; }
            catch (CryptographicException e)
            {
                throw new ArgumentException("the client certificate's private key cannot be read: " + e.Message
                    + " (use SetClientCertificatePem with PEM strings)", "value", e);
            }
            var rsa = key as RSA;
            if (rsa == null)
                throw new ArgumentException("only RSA private keys can be exported here; for "
                    + (key == null ? "this key" : key.GetType().Name) + " use SetClientCertificatePem with PEM strings", "value");
            RSAParameters p;
            try { p = rsa.ExportParameters(true); }
            catch (CryptographicException e)
            {
                throw new ArgumentException("the private key is not exportable: " + e.Message
                    + " (load the certificate with X509KeyStorageFlags.Exportable, or use SetClientCertificatePem)", "value", e);
            }
            var der = new List<byte>();
            byte[][] fields = { new byte[] { 0 }, p.Modulus, p.Exponent, p.D, p.P, p.Q, p.DP, p.DQ, p.InverseQ };
            foreach (var f in fields) der.AddRange(Integer(f));
            byte[] body = der.ToArray();
            string pem = Block("RSA PRIVATE KEY", Tlv(0x30, body));
            Array.Clear(body, 0, body.Length);
            return pem;
        }

        private static byte[] Integer(byte[] unsignedBigEndian)
        {
            int i = 0;
            while (i < unsignedBigEndian.Length - 1 && unsignedBigEndian[i] == 0) i++;
            var v = new List<byte>();
            if ((unsignedBigEndian[i] & 0x80) != 0) v.Add(0);
            for (; i < unsignedBigEndian.Length; i++) v.Add(unsignedBigEndian[i]);
            return Tlv(0x02, v.ToArray());
        }

        private static byte[] Tlv(byte tag, byte[] value)
        {
            var o = new List<byte> { tag };
            int n = value.Length;
            if (n < 0x80) o.Add((byte)n);
            else if (n < 0x100) { o.Add(0x81); o.Add((byte)n); }
            else if (n < 0x10000) { o.Add(0x82); o.Add((byte)(n >> 8)); o.Add((byte)n); }
            else { o.Add(0x83); o.Add((byte)(n >> 16)); o.Add((byte)(n >> 8)); o.Add((byte)n); }
            o.AddRange(value);
            return o.ToArray();
        }

        private static string Block(string label, byte[] der)
        {
            var sb = new StringBuilder();
            sb.Append("-----BEGIN ").Append(label).Append("-----\n");
            string b64 = Convert.ToBase64String(der);
            for (int i = 0; i < b64.Length; i += 64) sb.Append(b64, i, Math.Min(64, b64.Length - i)).Append('\n');
            sb.Append("-----END ").Append(label).Append("-----\n");
            return sb.ToString();
        }
    }
}
