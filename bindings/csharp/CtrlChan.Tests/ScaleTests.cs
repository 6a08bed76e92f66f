using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using CtrlChan;
using NUnit.Framework;

namespace CtrlChan.Tests
{
    [TestFixture, Timeout(180000)]
    public class ScaleTests
    {
        [Test]
        public void FiveHundredChannelsOnOneRuntime()
        {
            const int N = 500;
            using (var rt = new ControlChannelRuntime())
            {
                var sockets = new MessageWebSocket[N];
                var channels = new ControlChannelTrigger[N];
                var received = new string[N];
                int receivedCount = 0;
                var done = new ManualResetEventSlim();
                var tasks = new Task[N];
                for (int i = 0; i < N; i++)
                {
                    int k = i;
                    sockets[i] = new MessageWebSocket(rt);
                    sockets[i].Control.MessageType = SocketMessageType.Utf8;
                    channels[i] = new ControlChannelTrigger(rt, "ch" + i, TimeSpan.FromMinutes(5));
                    sockets[i].MessageReceived += (s, e) =>
                    {
                        received[k] = e.GetDataString();
                        if (Interlocked.Increment(ref receivedCount) == N) done.Set();
                    };
                    channels[i].UsingTransport(sockets[i]);
                    tasks[i] = sockets[i].ConnectAsync(PeerFixture.Url("/echo"));
                }
                Assert.IsTrue(Task.WaitAll(tasks, TimeSpan.FromSeconds(90)), "all 500 connect");
                for (int i = 0; i < N; i++)
                    Assert.AreEqual(ControlChannelTriggerStatus.SoftwareSlotAllocated, channels[i].WaitForPushEnabled(), "channel " + i);
                var stats = rt.GetStatistics();
                Assert.AreEqual((ulong)N, stats.ConnectionsOpen);
                Assert.AreEqual((ulong)N, stats.ChannelsActive);
                for (int i = 0; i < N; i++) sockets[i].SendAsync("hello " + i);
                Assert.IsTrue(done.Wait(TimeSpan.FromSeconds(60)), "echoes received: " + receivedCount);
                for (int i = 0; i < N; i++) Assert.AreEqual("hello " + i, received[i], "each echo reaches its own socket");
                Assert.AreEqual(0, rt.UnhandledExceptionCount);
                for (int i = 0; i < N; i++) { channels[i].Dispose(); sockets[i].Dispose(); }
                Assert.IsTrue(Wait.Until(() => rt.GetStatistics().ConnectionsOpen == 0, TimeSpan.FromSeconds(10)));
                Assert.AreEqual(0ul, rt.GetStatistics().ChannelsActive);
            }
        }

        private static long RssKiB()
        {
            foreach (var line in File.ReadAllLines("/proc/self/status"))
                if (line.StartsWith("VmRSS:"))
                    return long.Parse(Regex.Match(line, @"\d+").Value);
            return 0;
        }

        private static void FullGc()
        {
            for (int i = 0; i < 3; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }

        private static void CreateAndDrop(ControlChannelRuntime rt, int count, int round)
        {
            for (int i = 0; i < count; i++)
            {
                var ws = (i % 5 == 0) ? (WebSocketBase)new StreamWebSocket(rt) : new MessageWebSocket(rt);
                var ch = new ControlChannelTrigger(rt, "gc" + round + "_" + i, TimeSpan.FromSeconds(30 + i % 7));
                var ka = new WebSocketKeepAlive { PongTimeout = TimeSpan.FromMilliseconds(100 + i) };
                if (i % 2 == 0)
                {
                    ch.KeepAliveTask = ka;
                    ch.UsingTransport(ws);
                }
                ws.Closed += (s, e) => { };
                ch.KeepAliveCompleted += (s, e) => { };
                if (i % 3 == 0)
                {
                    ws.Dispose();   // a mix of explicit dispose and plain drop
                    ch.Dispose();
                }
            }
        }

        [Test]
        public void GcStressCreatesAndDropsThousandsOfObjects()
        {
            using (var rt = new ControlChannelRuntime())
            {
                FullGc();
                int baseUserdata = Callbacks.LiveUserdata;
                int baseRegistry = Registry.Count;
                CreateAndDrop(rt, 200, -1);   // warm-up so the JIT and pools are in the baseline
                FullGc();
                Assert.IsTrue(Wait.Until(() => { FullGc(); return Callbacks.LiveUserdata <= baseUserdata; }, TimeSpan.FromSeconds(10)));
                long rssBefore = RssKiB();

                const int Rounds = 10, PerRound = 400;   // 10 x 400 x 3 = 12 000 native objects
                for (int r = 0; r < Rounds; r++)
                {
                    CreateAndDrop(rt, PerRound, r);
                    if (r == 0)   // the wrappers dropped without Dispose still hold their handlers here
                        Assert.That(Callbacks.LiveUserdata, Is.GreaterThan(baseUserdata + PerRound), "handlers registered before GC");
                    FullGc();
                }
                // Every dropped wrapper was finalized: its native handle freed, its handler's
                // userdata finalized by the library, its registry entry removed.
                Assert.IsTrue(Wait.Until(() => { FullGc(); return Callbacks.LiveUserdata <= baseUserdata; }, TimeSpan.FromSeconds(10)),
                              "live callback userdata " + Callbacks.LiveUserdata + " vs baseline " + baseUserdata);
                Assert.That(Registry.Count, Is.LessThanOrEqualTo(baseRegistry), "registry entries");
                Assert.That(rt.ChildCount, Is.LessThan(2 * PerRound), "child list is pruned");
                long growth = RssKiB() - rssBefore;
                Assert.That(growth, Is.LessThan(64 * 1024), "RSS growth after 12 000 objects: " + growth + " KiB");
                // The runtime still works.
                using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromSeconds(30)))
                {
                    s.Socket.SendAsync("alive");
                    Assert.AreEqual("alive", s.Messages.First(Wait.Short).GetDataString());
                }
            }
        }

        // Objects are created in separate non-inlined methods: Mono scans stacks conservatively,
        // so a reference left in a dead slot of the test method's own frame could keep one alive.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static Task[] ConnectAndDrop(ControlChannelRuntime rt, int n)
        {
            var tasks = new Task[n];
            for (int i = 0; i < n; i++)
            {
                var ws = new MessageWebSocket(rt);
                var ch = new ControlChannelTrigger(rt, "drop" + i, TimeSpan.FromSeconds(30));
                ch.UsingTransport(ws);
                ws.MessageReceived += (s, e) => { };
                tasks[i] = ws.ConnectAsync(PeerFixture.Url("/echo"));
            }
            return tasks;
        }

        [Test]
        public void DroppedConnectedSocketsAreClosedByTheFinalizer()
        {
            using (var rt = new ControlChannelRuntime())
            {
                for (int round = 0; round < 5; round++)
                {
                    Assert.IsTrue(Task.WaitAll(ConnectAndDrop(rt, 20), TimeSpan.FromSeconds(30)));
                    Assert.That(rt.GetStatistics().ConnectionsOpen, Is.GreaterThanOrEqualTo(20ul));
                    FullGc();
                }
                // Mono also scans the runtime thread's stack conservatively: a stale slot left by
                // the last callback can pin the last wrapper it touched. Run some unrelated
                // callbacks (an explicitly disposed session) to overwrite such slots.
                // (Repeated: each round of callbacks overwrites more stale slots, on both threads.)
                ExerciseRuntimeThread(rt);
                Assert.IsTrue(Wait.Until(() =>
                                  {
                                      FullGc();
                                      if (rt.GetStatistics().ConnectionsOpen == 0) return true;
                                      ExerciseRuntimeThread(rt);
                                      FullGc();
                                      return rt.GetStatistics().ConnectionsOpen == 0;
                                  }, TimeSpan.FromSeconds(30)),
                              "open connections left: " + rt.GetStatistics().ConnectionsOpen);
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void ExerciseRuntimeThread(ControlChannelRuntime rt)
        {
            using (var s = Session.Open(rt, PeerFixture.Url("/echo"), TimeSpan.FromSeconds(30)))
            {
                for (int i = 0; i < 5; i++) s.Socket.SendAsync("flush " + i);
                Assert.IsTrue(s.Messages.WaitCount(5, Wait.Short));
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static List<WeakReference> CreateRuntimesAndDrop(int n)
        {
            var weak = new List<WeakReference>();
            for (int i = 0; i < n; i++)
            {
                var rt = new ControlChannelRuntime();
                var ws = new MessageWebSocket(rt);
                var ch = new ControlChannelTrigger(rt, "rt" + i, TimeSpan.FromSeconds(30));
                ch.UsingTransport(ws);
                weak.Add(new WeakReference(rt));
            }
            return weak;
        }

        [Test]
        public void RuntimesDroppedWithoutDisposeAreFinalized()
        {
            var weak = CreateRuntimesAndDrop(30);
            // Conservative stack scanning may pin the odd object; all but at most one must go.
            Assert.IsTrue(Wait.Until(() => { FullGc(); return weak.Count(w => w.IsAlive) <= 1; }, TimeSpan.FromSeconds(15)),
                          "runtimes still alive: " + weak.Count(w => w.IsAlive));
        }
    }

    [TestFixture]
    public class HeaderConformanceTests
    {
        [Test]
        public void EveryHeaderFunctionHasAMatchingDllImport()
        {
            string header = File.ReadAllText(Path.Combine(PeerProcess.RepoRoot, "include", "ctrlchan.h"));
            header = Regex.Replace(header, @"/\*.*?\*/", " ", RegexOptions.Singleline);
            header = Regex.Replace(header, @"//[^\n]*", " ");
            // "name(params);" declarations, possibly over several lines.
            var decls = Regex.Matches(header, @"\b(ctrlchan_[a-z_]+)\(([^;{]*?)\);", RegexOptions.Singleline);
            var methods = typeof(ControlChannelRuntime).Assembly.GetType("CtrlChan.NativeMethods")
                .GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
                .ToDictionary(m => m.Name);
            int checkedCount = 0;
            var problems = new List<string>();
            foreach (Match d in decls)
            {
                string name = d.Groups[1].Value;
                string args = d.Groups[2].Value.Trim();
                int arity = args == "void" || args == "" ? 0 : args.Split(',').Length;
                MethodInfo m;
                if (!methods.TryGetValue(name, out m)) { problems.Add("missing " + name); continue; }
                if (m.GetParameters().Length != arity) problems.Add(name + ": " + m.GetParameters().Length + " params, header has " + arity);
                checkedCount++;
            }
            Assert.IsEmpty(problems, string.Join("; ", problems));
            Assert.GreaterOrEqual(checkedCount, 55, "header functions found");
        }
    }
}
