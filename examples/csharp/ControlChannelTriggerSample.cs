// The Windows "ControlChannelTrigger StreamWebSocket" sample, ported to ctrlchan.
//
// The structure follows the Windows documentation ("Network communications in the
// background", section "ControlChannelTrigger with WebSockets"): a CommModule registers a
// ControlChannelTrigger with a keep-alive task and a push-notification task, ties a
// StreamWebSocket to it with UsingTransport, connects, calls WaitForPushEnabled, keeps a read
// posted with the raw async pattern, and queues what it reads for the push-notification task.
//
// What changes on Linux:
//   * "the system" is a ControlChannelRuntime you create (and dispose last);
//   * BackgroundTaskBuilder + KeepAliveTrigger + "Windows.Networking.Sockets.WebSocketKeepAlive"
//     become `channel.KeepAliveTask = new WebSocketKeepAlive()`;
//   * the PushNotificationTrigger background task is run by the read completion itself: each
//     event goes to exactly one place, and here the StreamWebSocket's InputStream takes the data
//     (a channel PushNotificationReceived handler would take it instead);
//   * CoreApplication.Properties becomes a plain dictionary;
//   * the keep-alive interval may be below Windows' 15-minute minimum (here 1 s, to see it work).
//
// Usage:  mono ControlChannelTriggerSample.exe [--seconds N] [ws://host:port/path]
// With no URI it starts the repository's test peer (tests/peer/server.py) on 127.0.0.1 and
// connects to its /push endpoint, which sends a few messages and then stays open.
// Exit code 0 when messages and keep-alives were seen, 1 otherwise.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using CtrlChan;

namespace CtrlChanSample
{
    internal static class Diag
    {
        public static void DebugPrint(string msg)
        {
            Console.WriteLine("[{0:HH:mm:ss.fff}] {1}", DateTime.Now, msg);
        }
    }

    /// <summary>What the Windows sample stores in CoreApplication.Properties under the channel id.</summary>
    internal sealed class AppContext
    {
        public static readonly ConcurrentQueue<string> messageQueue = new ConcurrentQueue<string>();

        public AppContext(CommModule commInstance, StreamWebSocket webSocket, ControlChannelTrigger channel, string id)
        {
            CommInstance = commInstance;
            WebSocketHandle = webSocket;
            Channel = channel;
            ChannelId = id;
        }

        public CommModule CommInstance { get; private set; }
        public StreamWebSocket WebSocketHandle { get; private set; }
        public ControlChannelTrigger Channel { get; private set; }
        public string ChannelId { get; private set; }
    }

    /// <summary>The push-notification background task ("Background.PushNotifyTask").</summary>
    internal static class PushNotifyTask
    {
        public static int Processed;

        public static void Run(ControlChannelTrigger channel)
        {
            // The read completion handler already queued the data; process it here.
            string message;
            while (AppContext.messageQueue.TryDequeue(out message))
            {
                Interlocked.Increment(ref Processed);
                Diag.DebugPrint("PushNotifyTask [" + channel.ControlChannelTriggerId + "]: " + message);
            }
        }
    }

    internal sealed class CommModule : IDisposable
    {
        private const int MAX_BUFFER_LENGTH = 100;

        // CoreApplication.Properties stand-in.
        public static readonly Dictionary<string, object> Properties = new Dictionary<string, object>();

        private readonly ControlChannelRuntime runtime;
        private StreamWebSocket socket;
        private ControlChannelTrigger channel;
        private WebSocketKeepAlive keepAliveTask;
        public int KeepAlives;
        public int BytesRead;

        public CommModule(ControlChannelRuntime runtime)
        {
            this.runtime = runtime;
        }

        public bool SetupTransport(string serverUri)
        {
            return RegisterWithControlChannelTrigger(serverUri);
        }

        private bool RegisterWithControlChannelTrigger(string serverUri)
        {
            // Wait for the whole registration to complete before returning (as on Windows).
            Task<bool> registerTask = RegisterWithCCTHelper(serverUri);
            return registerTask.Result;
        }

        private async Task<bool> RegisterWithCCTHelper(string serverUri)
        {
            bool result = false;
            socket = new StreamWebSocket(runtime);

            // Windows takes minutes (at least 15); ctrlchan also takes a TimeSpan down to 100 ms.
            TimeSpan serverKeepAliveInterval = TimeSpan.FromSeconds(1);
            const string channelId = "channelOne";
            ControlChannelTriggerStatus status;

            try
            {
                channel = new ControlChannelTrigger(runtime, channelId, serverKeepAliveInterval,
                                                    ControlChannelTriggerResourceType.RequestHardwareSlot);
            }
            catch (Exception exp)
            {
                Diag.DebugPrint("Could not create the ControlChannelTrigger: " + exp.Message);
                return result;
            }

            Uri serverUriInstance;
            try
            {
                serverUriInstance = new Uri(serverUri);
            }
            catch (Exception exp)
            {
                Diag.DebugPrint("Error creating URI: " + exp.Message);
                return result;
            }

            // The keep-alive "background task": the system runs it on the channel's schedule.
            // Acknowledged keep-alives are not events by default (RTT is in channel.Statistics);
            // subscribing to KeepAliveCompleted turns them on for this channel.
            keepAliveTask = new WebSocketKeepAlive { Mode = KeepAliveMode.Ping, PongTimeout = TimeSpan.FromSeconds(5) };
            channel.KeepAliveTask = keepAliveTask;
            channel.KeepAliveCompleted += (ch, e) =>
            {
                Interlocked.Increment(ref KeepAlives);
                Diag.DebugPrint(string.Format("KeepAlive [{0}]: pong after {1:F2} ms", e.ChannelId, e.RoundTripTime.TotalMilliseconds));
            };

            // The push-notification "background task".
            // Durable channel: a lost transport is reconnected on the same socket (backoff with
            // jitter); TransportDisconnected only comes when the policy gives up or cannot retry.
            channel.ReconnectPolicy = ReconnectPolicy.Default;
            channel.Reconnecting += (ch, e) =>
                Diag.DebugPrint(string.Format("Reconnecting [{0}]: attempt {1} in {2} ms ({3} {4})",
                                              e.ChannelId, e.Attempt, (long)e.Delay.TotalMilliseconds, e.Result, e.Reason));
            channel.Reset += (ch, e) =>
                Diag.DebugPrint("Reset [" + e.ChannelId + "]: " + e.ResetReason + " -- re-subscribe here; queued sends follow");
            channel.TransportDisconnected += (ch, e) =>
                Diag.DebugPrint("Transport lost [" + e.ChannelId + "]: " + e.Reason + " (" + e.Result + ")");

            try
            {
                // Tie the transport to the trigger before connecting. If the connection breaks
                // later, the same trigger takes a new socket through UsingTransport again.
                channel.UsingTransport(socket);

                // Keep a read posted from the start (the InputStream buffers from first use).
                Stream input = socket.InputStream;

                await socket.ConnectAsync(serverUriInstance);

                // After connecting: allocate the slot and start the keep-alives.
                status = channel.WaitForPushEnabled();
                if (status != ControlChannelTriggerStatus.HardwareSlotAllocated
                    && status != ControlChannelTriggerStatus.SoftwareSlotAllocated)
                {
                    throw new Exception(string.Format("Neither hardware nor software slot could be allocated. ChannelStatus is {0}", status));
                }
                Diag.DebugPrint("WaitForPushEnabled: " + status);

                Properties.Remove(channel.ControlChannelTriggerId);
                var appContext = new AppContext(this, socket, channel, channel.ControlChannelTriggerId);
                Properties.Add(channel.ControlChannelTriggerId, appContext);
                result = true;

                PostSocketRead(MAX_BUFFER_LENGTH);
            }
            catch (Exception exp)
            {
                Diag.DebugPrint("RegisterWithCCTHelper Task failed with: " + exp.Message);
            }
            return result;
        }

        /// <summary>The raw async read pattern: post a read; its completion posts the next one.</summary>
        private void PostSocketRead(int length)
        {
            try
            {
                var readBuf = new byte[length];
                Task<int> readOp = socket.InputStream.ReadAsync(readBuf, 0, length);
                readOp.ContinueWith(op =>
                {
                    if (op.IsFaulted)
                    {
                        Diag.DebugPrint("Read operation failed: " + op.Exception.GetBaseException().Message);
                        return;
                    }
                    if (op.IsCanceled) return;
                    OnDataReadCompletion(op.Result, readBuf);
                }, TaskContinuationOptions.ExecuteSynchronously);
            }
            catch (Exception exp)
            {
                Diag.DebugPrint("failed to post a read failed with error: " + exp.Message);
            }
        }

        private void OnDataReadCompletion(int bytesRead, byte[] readPacket)
        {
            if (bytesRead == 0)
            {
                Diag.DebugPrint("Received zero bytes from the socket. Server must have closed the connection.");
                return;
            }
            Interlocked.Add(ref BytesRead, bytesRead);
            // Minimal processing in the completion: queue it for the push-notification task.
            string message = Encoding.UTF8.GetString(readPacket, 0, bytesRead);
            AppContext.messageQueue.Enqueue(message);
            PushNotifyTask.Run(channel);
            // Post another receive to ensure future push notifications.
            PostSocketRead(MAX_BUFFER_LENGTH);
        }

        public ControlChannelTrigger Channel { get { return channel; } }

        public void Reset()
        {
            if (channel != null) { channel.Dispose(); channel = null; }
            if (socket != null) { socket.Dispose(); socket = null; }
            if (keepAliveTask != null) { keepAliveTask.Dispose(); keepAliveTask = null; }
        }

        public void Dispose() { Reset(); }
    }

    internal static class Program
    {
        private static int Main(string[] args)
        {
            double seconds = 5;
            string uri = null;
            for (int i = 0; i < args.Length; i++)
            {
                if (args[i] == "--seconds" && i + 1 < args.Length) seconds = double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
                else uri = args[i];
            }

            Process peer = null;
            try
            {
                if (uri == null)
                {
                    int port;
                    peer = StartPeer(out port);
                    uri = "ws://127.0.0.1:" + port + "/push?n=5&size=24&interval_ms=300&type=text";
                }
                Diag.DebugPrint("ctrlchan " + ControlChannelRuntime.Version + ", connecting to " + uri);

                using (var runtime = new ControlChannelRuntime())
                using (var comm = new CommModule(runtime))
                {
                    runtime.UnhandledException += (s, e) => Diag.DebugPrint("handler threw: " + e.Exception);
                    if (!comm.SetupTransport(uri))
                    {
                        Diag.DebugPrint("SetupTransport failed");
                        return 1;
                    }
                    Thread.Sleep(TimeSpan.FromSeconds(seconds));
                    // A read may complete after the push notification that announced it: process the rest.
                    PushNotifyTask.Run(comm.Channel);
                    var stats = runtime.GetStatistics();
                    Diag.DebugPrint(string.Format(
                        "summary: {0} bytes read, {1} messages processed, {2} keep-alives ({3} sent, {4} acked), {5} wake-ups",
                        comm.BytesRead, PushNotifyTask.Processed, comm.KeepAlives,
                        stats.KeepAlivesSent, stats.KeepAlivesAcknowledged, stats.Wakeups));
                    Diag.DebugPrint("channel: " + comm.Channel.Statistics);
                    return comm.BytesRead > 0 && comm.KeepAlives > 0 ? 0 : 1;
                }
            }
            finally
            {
                if (peer != null)
                {
                    try { peer.StandardInput.Close(); } catch (Exception) { }
                    if (!peer.WaitForExit(5000)) { try { peer.Kill(); } catch (Exception) { } }
                }
            }
        }

        /// <summary>Starts tests/peer/server.py from this repository on 127.0.0.1.</summary>
        private static Process StartPeer(out int port)
        {
            string root = FindRepoRoot();
            if (root == null) throw new InvalidOperationException("no URI given and tests/peer/server.py not found; pass a ws:// URI");
            string python = Environment.GetEnvironmentVariable("CTRLCHAN_PYTHON");
            if (string.IsNullOrEmpty(python)) python = Path.Combine(root, ".venv", "bin", "python");
            var psi = new ProcessStartInfo(python, "-u \"" + Path.Combine(root, "tests", "peer", "server.py") + "\" --port 0")
            {
                UseShellExecute = false,
                RedirectStandardInput = true,   // the server exits when its stdin closes
                RedirectStandardOutput = true,
            };
            var p = Process.Start(psi);
            var line = p.StandardOutput.ReadLineAsync();
            if (!line.Wait(TimeSpan.FromSeconds(30)) || line.Result == null || !line.Result.StartsWith("PORT "))
            {
                try { p.Kill(); } catch (Exception) { }
                throw new InvalidOperationException("the peer did not start (run scripts/setup-venv.sh)");
            }
            port = int.Parse(line.Result.Substring(5).Trim());
            Diag.DebugPrint("started peer tests/peer/server.py on 127.0.0.1:" + port);
            return p;
        }

        private static string FindRepoRoot()
        {
            string env = Environment.GetEnvironmentVariable("CTRLCHAN_REPO_ROOT");
            if (!string.IsNullOrEmpty(env)) return env;
            foreach (string start in new[] { AppDomain.CurrentDomain.BaseDirectory, Environment.CurrentDirectory })
            {
                string dir = start;
                for (int i = 0; i < 8 && !string.IsNullOrEmpty(dir); i++)
                {
                    if (File.Exists(Path.Combine(dir, "tests", "peer", "server.py"))) return dir;
                    dir = Path.GetDirectoryName(dir.TrimEnd('/'));
                }
            }
            return null;
        }
    }
}
