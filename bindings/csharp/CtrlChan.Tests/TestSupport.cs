// Test infrastructure: the third-party peer (tests/peer/server.py, a Python `websockets`
// server) and the fault-injection proxy (tests/peer/proxy.py), started as child processes
// on 127.0.0.1, plus small thread-safe recorders for events raised on the runtime thread.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using CtrlChan;
using NUnit.Framework;

namespace CtrlChan.Tests
{
    /// <summary>One peer server for the whole test run.</summary>
    [SetUpFixture]
    public class PeerFixture
    {
        internal static PeerProcess Server;

        [SetUp]
        public void StartPeer()
        {
            Server = PeerProcess.Start("server.py", "--port", "0");
        }

        [TearDown]
        public void StopPeer()
        {
            if (Server != null) Server.Dispose();
            Server = null;
        }

        internal static Uri Url(string pathAndQuery)
        {
            return new Uri("ws://127.0.0.1:" + Server.Port + pathAndQuery);
        }
    }

    internal sealed class PeerProcess : IDisposable
    {
        private readonly Process _process;
        private readonly Queue<string> _lines = new Queue<string>();
        private readonly List<string> _stderr = new List<string>();
        private bool _eof;
        public int Port { get; private set; }

        internal static string RepoRoot
        {
            get
            {
                string env = Environment.GetEnvironmentVariable("CTRLCHAN_REPO_ROOT");
                if (!string.IsNullOrEmpty(env)) return env;
                string dir = Path.GetDirectoryName(typeof(PeerProcess).Assembly.Location);
                for (int i = 0; i < 10 && dir != null; i++)
                {
                    if (File.Exists(Path.Combine(dir, "Cargo.toml")) && Directory.Exists(Path.Combine(dir, "tests", "peer")))
                        return dir;
                    dir = Path.GetDirectoryName(dir);
                }
                throw new InvalidOperationException("repository root not found; set CTRLCHAN_REPO_ROOT");
            }
        }

        internal static string Python
        {
            get
            {
                string env = Environment.GetEnvironmentVariable("CTRLCHAN_PYTHON");
                if (!string.IsNullOrEmpty(env)) return env;
                return Path.Combine(RepoRoot, ".venv", "bin", "python");
            }
        }

        private PeerProcess(Process p) { _process = p; }

        internal static PeerProcess Start(string script, params string[] args)
        {
            string path = Path.Combine(Path.Combine(RepoRoot, "tests", "peer"), script);
            var psi = new ProcessStartInfo(Python, "-u \"" + path + "\" " + string.Join(" ", args))
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = RepoRoot,
            };
            var proc = Process.Start(psi);
            var peer = new PeerProcess(proc);
            var reader = new Thread(() =>
            {
                try
                {
                    string line;
                    while ((line = proc.StandardOutput.ReadLine()) != null)
                        lock (peer._lines) { peer._lines.Enqueue(line.Trim()); Monitor.PulseAll(peer._lines); }
                }
                catch (Exception) { }
                lock (peer._lines) { peer._eof = true; Monitor.PulseAll(peer._lines); }
            }) { IsBackground = true, Name = script + " stdout" };
            reader.Start();
            proc.ErrorDataReceived += (s, e) => { if (e.Data != null) lock (peer._stderr) peer._stderr.Add(e.Data); };
            proc.BeginErrorReadLine();

            string portLine = peer.WaitLine(l => l.StartsWith("PORT "), TimeSpan.FromSeconds(30));
            if (portLine == null)
            {
                string err = peer.StderrText();
                peer.Dispose();
                throw new InvalidOperationException(script + " did not print PORT within 30 s: " + err);
            }
            peer.Port = int.Parse(portLine.Substring(5).Trim());
            return peer;
        }

        internal string StderrText()
        {
            lock (_stderr) return string.Join("\n", _stderr);
        }

        internal string WaitLine(Func<string, bool> match, TimeSpan timeout)
        {
            var sw = Stopwatch.StartNew();
            lock (_lines)
            {
                while (true)
                {
                    while (_lines.Count > 0)
                    {
                        string l = _lines.Dequeue();
                        if (match(l)) return l;
                    }
                    if (_eof) return null;
                    TimeSpan left = timeout - sw.Elapsed;
                    if (left <= TimeSpan.Zero) return null;
                    Monitor.Wait(_lines, left);
                }
            }
        }

        /// <summary>Sends a proxy command and waits for its "OK cmd" acknowledgement.</summary>
        internal void Command(string cmd)
        {
            _process.StandardInput.WriteLine(cmd);
            _process.StandardInput.Flush();
            string ack = WaitLine(l => l == "OK " + cmd, TimeSpan.FromSeconds(10));
            if (ack == null) throw new InvalidOperationException("no 'OK " + cmd + "' from peer: " + StderrText());
        }

        public void Dispose()
        {
            try { _process.StandardInput.Close(); } catch (Exception) { }
            try
            {
                if (!_process.WaitForExit(5000)) _process.Kill();
                _process.WaitForExit(5000);
            }
            catch (Exception) { }
            _process.Dispose();
        }
    }

    /// <summary>Thread-safe list of items recorded on the runtime thread, with bounded waits.</summary>
    internal sealed class Recorder<T>
    {
        private readonly List<T> _items = new List<T>();
        private readonly List<TimeSpan> _times = new List<TimeSpan>();
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        public void Add(T item)
        {
            lock (_items)
            {
                _items.Add(item);
                _times.Add(_clock.Elapsed);
                Monitor.PulseAll(_items);
            }
        }

        public int Count { get { lock (_items) return _items.Count; } }

        public List<T> Items { get { lock (_items) return new List<T>(_items); } }

        public List<TimeSpan> Times { get { lock (_items) return new List<TimeSpan>(_times); } }

        public TimeSpan Now { get { return _clock.Elapsed; } }

        public bool WaitCount(int n, TimeSpan timeout)
        {
            var sw = Stopwatch.StartNew();
            lock (_items)
            {
                while (_items.Count < n)
                {
                    TimeSpan left = timeout - sw.Elapsed;
                    if (left <= TimeSpan.Zero) return false;
                    Monitor.Wait(_items, left);
                }
                return true;
            }
        }

        public T First(TimeSpan timeout)
        {
            Assert.IsTrue(WaitCount(1, timeout), "no " + typeof(T).Name + " within " + timeout);
            lock (_items) return _items[0];
        }
    }

    internal static class Wait
    {
        public static readonly TimeSpan Short = TimeSpan.FromSeconds(5);
        public static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

        /// <summary>Waits for a task, bounded; rethrows its exception unwrapped.</summary>
        public static void On(Task t, TimeSpan timeout)
        {
            bool done;
            try { done = t.Wait(timeout); }
            catch (AggregateException ae)
            {
                if (ae.InnerExceptions.Count == 1) throw ae.InnerExceptions[0];
                throw;
            }
            if (!done) Assert.Fail("task did not complete within " + timeout);
        }

        /// <summary>Polls a condition every 20 ms until it holds or the timeout passes.</summary>
        public static bool Until(Func<bool> cond, TimeSpan timeout)
        {
            var sw = Stopwatch.StartNew();
            while (true)
            {
                if (cond()) return true;
                if (sw.Elapsed > timeout) return false;
                Thread.Sleep(20);
            }
        }

        /// <summary>Runs an action on a task and returns the exception it threw (null if none).</summary>
        public static Exception Catch(Action a)
        {
            try { a(); return null; }
            catch (Exception e) { return e; }
        }
    }

    /// <summary>A socket bound to a channel, connected and push-enabled.</summary>
    internal sealed class Session : IDisposable
    {
        public MessageWebSocket Socket;
        public ControlChannelTrigger Channel;
        public ControlChannelTriggerStatus Status;
        public readonly Recorder<MessageWebSocketMessageReceivedEventArgs> Messages = new Recorder<MessageWebSocketMessageReceivedEventArgs>();
        public readonly Recorder<WebSocketClosedEventArgs> Closed = new Recorder<WebSocketClosedEventArgs>();
        public readonly Recorder<TransportDisconnectedEventArgs> Disconnects = new Recorder<TransportDisconnectedEventArgs>();
        public readonly Recorder<KeepAliveCompletedEventArgs> KeepAlives = new Recorder<KeepAliveCompletedEventArgs>();

        public static Session Open(ControlChannelRuntime rt, Uri uri, TimeSpan interval, WebSocketKeepAlive ka = null,
                                   string id = "test", SocketMessageType type = SocketMessageType.Utf8)
        {
            var s = new Session();
            s.Socket = new MessageWebSocket(rt);
            s.Channel = new ControlChannelTrigger(rt, id, interval);
            s.Socket.Control.MessageType = type;
            if (ka != null) s.Channel.KeepAliveTask = ka;
            s.Socket.MessageReceived += (o, e) => s.Messages.Add(e);
            s.Socket.Closed += (o, e) => s.Closed.Add(e);
            s.Channel.TransportDisconnected += (o, e) => s.Disconnects.Add(e);
            s.Channel.KeepAliveCompleted += (o, e) => s.KeepAlives.Add(e);
            s.Channel.UsingTransport(s.Socket);
            Wait.On(s.Socket.ConnectAsync(uri), Wait.Long);
            s.Status = s.Channel.WaitForPushEnabled();
            return s;
        }

        public void Dispose()
        {
            if (Channel != null) Channel.Dispose();
            if (Socket != null) Socket.Dispose();
        }
    }
}
