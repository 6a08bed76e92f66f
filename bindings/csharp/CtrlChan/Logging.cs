using System;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace CtrlChan
{
    /// <summary>Severity of a native log message (ctrlchan_log_level).</summary>
    public enum CtrlChanLogLevel
    {
        Error = 1,
        Warning = 2,
        Information = 3,
        Debug = 4,
        Trace = 5,
    }

    /// <summary>A native log line.</summary>
    public sealed class CtrlChanLogEventArgs : EventArgs
    {
        internal CtrlChanLogEventArgs(CtrlChanLogLevel level, string target, string message)
        {
            Level = level;
            Target = target;
            Message = message;
        }

        /// <summary>Severity.</summary>
        public CtrlChanLogLevel Level { get; private set; }
        /// <summary>What logged: "ctrlchan" or a rustls module.</summary>
        public string Target { get; private set; }
        /// <summary>One line of text; never contains credentials.</summary>
        public string Message { get; private set; }
    }

    /// <summary>
    /// The library's log: connects and connect failures (refused HTTP status, TLS error),
    /// disconnects with their cause, reconnect attempts, network-change and resume probes. Every
    /// line is written to <see cref="System.Diagnostics.Trace"/> (category "ctrlchan") and raised as
    /// <see cref="MessageLogged"/>. Native logging is on at <see cref="CtrlChanLogLevel.Information"/>
    /// from the first use of the library; change it with <see cref="Level"/>.
    /// </summary>
    public static class CtrlChanLog
    {
        // Kept alive for as long as native code may call it.
        static readonly NativeLogCallback Callback = OnLog;
        static readonly object Gate = new object();
        static CtrlChanLogLevel? level;

        /// <summary>Raised on the thread that logged (mostly the runtime thread); keep it short.
        /// An exception thrown by a handler is swallowed (it must not reach native code).</summary>
        public static event EventHandler<CtrlChanLogEventArgs> MessageLogged;

        /// <summary>How much the library logs; null turns native logging off.</summary>
        public static CtrlChanLogLevel? Level
        {
            get { lock (Gate) return level; }
            set
            {
                lock (Gate)
                {
                    var rc = value.HasValue
                        ? NativeMethods.ctrlchan_set_log_handler((uint)value.Value, Callback, IntPtr.Zero, null)
                        : NativeMethods.ctrlchan_set_log_handler(1, null, IntPtr.Zero, null);
                    Errors.Check(rc, "ctrlchan_set_log_handler");
                    level = value;
                }
            }
        }

        /// <summary>Turns native logging on at Information unless the app chose a level.</summary>
        internal static void EnsureInstalled()
        {
            lock (Gate)
            {
                if (level.HasValue) return;
                if (NativeMethods.ctrlchan_set_log_handler((uint)CtrlChanLogLevel.Information, Callback, IntPtr.Zero, null) == CtrlChanResult.Ok)
                    level = CtrlChanLogLevel.Information;
            }
        }

        static string Utf8(IntPtr p)
        {
            if (p == IntPtr.Zero) return "";
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0) n++;
            var bytes = new byte[n];
            Marshal.Copy(p, bytes, 0, n);
            return Encoding.UTF8.GetString(bytes);
        }

        static void OnLog(IntPtr userdata, uint lvl, IntPtr target, IntPtr message)
        {
            try
            {
                var args = new CtrlChanLogEventArgs((CtrlChanLogLevel)lvl, Utf8(target), Utf8(message));
                Trace.WriteLine(args.Level + ": " + args.Message, args.Target);
                var h = MessageLogged;
                if (h != null) h(null, args);
            }
            catch (Exception)
            {
                // never unwind into native code
            }
        }
    }
}
