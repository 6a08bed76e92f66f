// Child process for ProcessExitTests: floods 10 channels with pushed messages and leaves
// the process while events are still being delivered, without disposing anything.
//   mono ExitHelper.exe PORT return|throw|exit
// return: Main returns 0; throw: handlers throw, Main returns 0; exit: Environment.Exit(3).
using System;
using System.Threading;
using CtrlChan;

internal static class ExitHelper
{
    private static int Main(string[] args)
    {
        int port = int.Parse(args[0]);
        string mode = args.Length > 1 ? args[1] : "return";
        var runtime = new ControlChannelRuntime();
        long messages = 0;
        var keep = new object[20];
        for (int i = 0; i < 10; i++)
        {
            var ws = new MessageWebSocket(runtime);
            var ch = new ControlChannelTrigger(runtime, "exit" + i, TimeSpan.FromMilliseconds(100));
            ch.UsingTransport(ws);
            ws.MessageReceived += (s, e) =>
            {
                Interlocked.Increment(ref messages);
                if (mode != "return") throw new InvalidOperationException("handler failure");
            };
            ch.KeepAliveCompleted += (s, e) => { };
            if (!ws.ConnectAsync(new Uri("ws://127.0.0.1:" + port + "/push?n=100000&size=16&interval_ms=0&type=text")).Wait(30000))
                return 2;
            ch.WaitForPushEnabled();
            keep[2 * i] = ws;
            keep[2 * i + 1] = ch;
        }
        Thread.Sleep(300);
        Console.WriteLine("exiting after " + Interlocked.Read(ref messages) + " messages");
        if (mode == "exit") Environment.Exit(3);
        GC.KeepAlive(keep);
        return 0;
    }
}
