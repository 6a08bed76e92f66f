using System;
using System.Runtime.InteropServices;
using System.Text;

namespace CtrlChan
{
    /// <summary>
    /// A native ctrlchan failure that has no closer .NET exception type: connect, TLS or
    /// handshake failures, timeouts, closed transports, full buffers, I/O errors.
    /// <see cref="Result"/> is the C result code; <see cref="NativeMessage"/> the text of
    /// <c>ctrlchan_last_error()</c> for the failed call.
    /// </summary>
    [Serializable]
    public class CtrlChanException : Exception
    {
        public CtrlChanResult Result { get; private set; }
        public string NativeMessage { get; private set; }

        public CtrlChanException(CtrlChanResult result, string nativeMessage)
            : base(Format(result, nativeMessage))
        {
            Result = result;
            NativeMessage = nativeMessage ?? "";
            HResult = unchecked((int)(0xA0C70000u | (uint)result));
        }

        public CtrlChanException(CtrlChanResult result, string nativeMessage, Exception inner)
            : base(Format(result, nativeMessage), inner)
        {
            Result = result;
            NativeMessage = nativeMessage ?? "";
        }

        // "CONNECT_FAILED: TCP connect failed: ..." — the result name once, even when the native
        // text (event reasons, ctrlchan_last_error) already starts with it.
        private static string Format(CtrlChanResult result, string msg)
        {
            string name = Errors.ResultName(result);
            if (string.IsNullOrEmpty(msg)) return name;
            return msg.StartsWith(name + ":", StringComparison.Ordinal) ? msg : name + ": " + msg;
        }
    }

    /// <summary>PROXY_FAILED: the proxy refused the tunnel, wants other credentials (407, or 401 from
    /// proxies that answer so) or cannot be reached. The message carries the proxy's status line,
    /// never its credentials.</summary>
    [Serializable]
    public class ProxyFailedException : CtrlChanException
    {
        public ProxyFailedException(string nativeMessage) : base(CtrlChanResult.ProxyFailed, nativeMessage) { }
    }

    /// <summary>Maps result codes to exceptions. Call right after the failing native call,
    /// on the same thread: ctrlchan_last_error() is thread-local.</summary>
    internal static class Errors
    {
        internal const string ResultKey = "CtrlChan.Result";

        internal static string ResultName(CtrlChanResult r)
        {
            switch (r)
            {
                case CtrlChanResult.Ok: return "OK";
                case CtrlChanResult.InvalidArgument: return "INVALID_ARGUMENT";
                case CtrlChanResult.InvalidHandle: return "INVALID_HANDLE";
                case CtrlChanResult.InvalidState: return "INVALID_STATE";
                case CtrlChanResult.Timeout: return "TIMEOUT";
                case CtrlChanResult.ConnectFailed: return "CONNECT_FAILED";
                case CtrlChanResult.TlsFailed: return "TLS_FAILED";
                case CtrlChanResult.HandshakeFailed: return "HANDSHAKE_FAILED";
                case CtrlChanResult.Closed: return "CLOSED";
                case CtrlChanResult.MessageTooLarge: return "MESSAGE_TOO_LARGE";
                case CtrlChanResult.BufferFull: return "BUFFER_FULL";
                case CtrlChanResult.Io: return "IO";
                case CtrlChanResult.Policy: return "POLICY";
                case CtrlChanResult.Panic: return "PANIC";
                case CtrlChanResult.ProxyFailed: return "PROXY_FAILED";
                case CtrlChanResult.QueueFull: return "QUEUE_FULL";
                default: return "UNKNOWN(" + (uint)r + ")";
            }
        }

        internal static string LastError()
        {
            try { return Utf8.Decode(NativeMethods.ctrlchan_last_error()) ?? ""; }
            catch (Exception) { return ""; }
        }

        /// <summary>Throws the exception for <paramref name="r"/> unless it is OK.</summary>
        internal static void Check(CtrlChanResult r, string operation, string objectName = null)
        {
            if (r == CtrlChanResult.Ok) return;
            throw Create(r, LastError(), operation, objectName);
        }

        /// <summary>The CtrlChanException (or subclass) for a native failure code.</summary>
        internal static CtrlChanException Native(CtrlChanResult r, string detail)
        {
            if (r == CtrlChanResult.ProxyFailed) return new ProxyFailedException(detail);
            return new CtrlChanException(r, detail);
        }

        internal static Exception Create(CtrlChanResult r, string detail, string operation, string objectName)
        {
            string msg = operation + " failed: " + ResultName(r) + (string.IsNullOrEmpty(detail) ? "" : " (" + detail + ")");
            Exception e;
            switch (r)
            {
                case CtrlChanResult.InvalidArgument:
                    e = new ArgumentException(msg);
                    break;
                case CtrlChanResult.InvalidState:
                    e = new InvalidOperationException(msg);
                    break;
                case CtrlChanResult.InvalidHandle:
                    e = new ObjectDisposedException(objectName ?? operation, msg);
                    break;
                default:
                    e = Native(r, detail);
                    break;
            }
            e.Data[ResultKey] = r;
            return e;
        }
    }

    internal static class Utf8
    {
        private static readonly UTF8Encoding Strict = new UTF8Encoding(false, true);
        private static readonly UTF8Encoding Lenient = new UTF8Encoding(false, false);

        /// <summary>NUL-terminated UTF-8, or null for null. Rejects embedded NUL and unpaired surrogates.</summary>
        internal static byte[] Encode(string s, string paramName)
        {
            if (s == null) return null;
            if (s.IndexOf('\0') >= 0)
                throw new ArgumentException("string must not contain NUL characters", paramName);
            byte[] buf;
            try
            {
                int n = Strict.GetByteCount(s);
                buf = new byte[n + 1];
                Strict.GetBytes(s, 0, s.Length, buf, 0);
            }
            catch (EncoderFallbackException ex)
            {
                throw new ArgumentException("string is not valid Unicode (unpaired surrogate)", paramName, ex);
            }
            return buf;
        }

        internal static byte[] EncodeRequired(string s, string paramName)
        {
            if (s == null) throw new ArgumentNullException(paramName);
            return Encode(s, paramName);
        }

        /// <summary>Decodes a NUL-terminated UTF-8 string owned by the library (null for NULL).</summary>
        internal static unsafe string Decode(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            byte* b = (byte*)p;
            int len = 0;
            while (b[len] != 0) len++;
            return len == 0 ? "" : Lenient.GetString(b, len);
        }

        internal static string DecodeBytes(byte[] data)
        {
            return data == null ? null : Lenient.GetString(data);
        }
    }
}
