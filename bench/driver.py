"""Runs every benchmark client against one loopback server and prints one table.

    bench/run.sh [--channels 1000,10000] [--schemes ws,wss] [--clients ...] [--window-ms 10000] ...

(run.sh raises `ulimit -n`, runs bench/setup.sh, then this file). Standard library only.

Each client is its own process and speaks one line protocol (see examples/bench.rs): READY (the
driver samples RSS, then says GO), CONNECTED secs ok failed, then two MARK lines, one after the
warm-up and one after the measured window. At each MARK the driver reads, from /proc of the client:
RSS (VmRSS), CPU time (the sum over its threads of /proc/PID/task/TID/schedstat, nanoseconds;
utime+stime of /proc/PID/stat is also read but moves in 10 ms ticks) and context switches
(wake-ups: voluntary switches summed over threads; involuntary ones, preemptions, per thread
apart). The client reports keep-alives acknowledged, RTT
sums and, for ctrlchan, the reactor's own wake-up counter and the events the application saw.
"""

import argparse
import datetime
import json
import os
import platform
import random
import resource
import select
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CA = os.path.join(HERE, "certs", "ca.pem")
ALL_CLIENTS = ["floor", "ctrlchan:callback", "ctrlchan:queue", "node-ws", "libwebsockets", "python-websockets"]


def python() -> str:
    venv = os.path.join(REPO, ".venv", "bin", "python")
    return venv if os.path.exists(venv) else sys.executable


def client_cmd(client, scheme, port, n, a):
    url = f"{scheme}://127.0.0.1:{port}/"
    common = [str(n), str(a.interval_ms), str(a.warmup_ms), str(a.window_ms)]
    tls = [CA] if scheme == "wss" else []
    if client == "floor":
        coalesce = min(3000, a.interval_ms // 4)  # ctrlchan's default coalescing rule
        return [os.path.join(HERE, "build", "floor_client"), "127.0.0.1", str(port)] + common + [str(coalesce)] + tls, {}
    if client.startswith("ctrlchan") or client.startswith("before"):
        mode = client.split(":")[1]
        exe = os.path.join(REPO, "target", "release", "examples", "bench")
        if client.startswith("before"):
            if not a.before_bin:
                raise SystemExit("the 'before' clients need --before-bin")
            exe = a.before_bin
        cmd = [exe, "--url", url, "--channels", str(n),
               "--mode", mode, "--interval-ms", str(a.interval_ms), "--warmup-ms", str(a.warmup_ms),
               "--window-ms", str(a.window_ms), "--inflight", str(a.inflight)]
        if a.spread_ms:
            cmd += ["--spread-ms", str(a.spread_ms)]
        settle = getattr(a, "pong_settle_ms", None)
        if settle is not None and not client.startswith("before"):
            cmd += ["--pong-settle-ms", str(settle)]
        if scheme == "wss":
            cmd += ["--ca", CA]
        return cmd, {}
    if client == "node-ws":
        return ["node", os.path.join(HERE, "node_client.js"), url] + common + [str(a.inflight)] + tls, {}
    if client == "libwebsockets":
        return [os.path.join(HERE, "build", "lws_client"), "127.0.0.1", str(port)] + common + [str(a.inflight)] + tls, {}
    if client == "python-websockets":
        return [python(), os.path.join(HERE, "py_client.py"), url] + common + [str(a.inflight)] + tls, {}
    raise SystemExit(f"unknown client {client}")


def tasks(pid):
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def sample(pid):
    """RSS KiB, CPU ns (schedstat), CPU s (stat ticks), context switches total and per thread name."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    stat_s = (int(fields[11]) + int(fields[12])) / tick
    cpu_ns = 0
    ctx = 0
    by_name = {}
    for tid in tasks(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                cpu_ns += int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            # A wake-up is a voluntary context switch (the thread slept and was woken); being
            # preempted while running (nonvoluntary) is counted apart.
            n = pre = 0
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        n += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        pre += int(line.split()[1])
            ctx += n
            by_name[name] = by_name.get(name, 0) + n
            by_name[name + ":preempted"] = by_name.get(name + ":preempted", 0) + pre
        except OSError:
            pass
    return {"rss": rss, "cpu_ns": cpu_ns, "stat_s": stat_s, "ctx": ctx, "threads": by_name}


class Lines:
    """Line reader on a pipe with a deadline."""

    def __init__(self, f):
        self.f, self.buf = f, b""

    def next(self, timeout):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError
            r, _, _ = select.select([self.f], [], [], left)
            if r:
                chunk = os.read(self.f.fileno(), 65536)
                if not chunk:
                    raise EOFError
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().strip()


def expect(lines, word, timeout):
    while True:
        line = lines.next(timeout)
        if line.startswith(word):
            return line.split()[1:]


def run_one(client, scheme, n, port, server_pid, a):
    cmd, env = client_cmd(client, scheme, port, n, a)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO, env={**os.environ, **env})
    lines = Lines(p.stdout)
    row = {"client": client.split(":")[0], "mode": client.split(":")[1] if ":" in client else "-",
           "scheme": scheme, "n": n, "interval_ms": a.interval_ms}
    try:
        expect(lines, "READY", 30)
        before = sample(p.pid)
        p.stdin.write(b"GO\n")
        p.stdin.flush()
        secs, ok, failed = expect(lines, "CONNECTED", 180 + a.spread_ms / 1000)
        m0 = expect(lines, "MARK", a.warmup_ms / 1000 + 30)
        s0, srv0 = sample(p.pid), sample(server_pid)
        t0 = time.monotonic()
        m1 = expect(lines, "MARK", a.window_ms / 1000 + 30)
        s1, srv1 = sample(p.pid), sample(server_pid)
        wall = time.monotonic() - t0
    except (TimeoutError, EOFError) as e:
        print(f"  {client} {scheme} N={n}: no answer ({type(e).__name__})", file=sys.stderr)
        p.kill()
        p.wait()
        return None
    finally:
        try:
            p.stdin.close()
        except OSError:
            pass
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    m0, m1 = [int(x) for x in m0], [int(x) for x in m1]
    acks = m1[0] - m0[0]
    rtt_n = m1[2] - m0[2]
    cpu_ns = s1["cpu_ns"] - s0["cpu_ns"]
    ctx = s1["ctx"] - s0["ctx"]
    row.update(
        connect_s=float(secs), ok=int(ok), failed=int(failed),
        rss_kib_per_channel=(s0["rss"] - before["rss"]) / n, rss_before_kib=before["rss"],
        acks=acks, acks_per_s=acks / wall,
        cpu_us_per_ka=cpu_ns / 1e3 / max(acks, 1),
        cpu_us_per_ka_stat=(s1["stat_s"] - s0["stat_s"]) * 1e6 / max(acks, 1),
        wakeups_per_s=ctx / wall,
        reactor_wakeups_per_s=(m1[3] - m0[3]) / wall if row["client"] == "ctrlchan" else None,
        app_events_per_s=(m1[4] - m0[4]) / wall if row["client"] == "ctrlchan" else None,
        thread_wakeups_per_s={k: (v - s0["threads"].get(k, 0)) / wall for k, v in s1["threads"].items()},
        rtt_us=(m1[1] - m0[1]) / rtt_n if rtt_n else None,
        server_cpu_pct=(srv1["cpu_ns"] - srv0["cpu_ns"]) / 1e9 / wall * 100,
        window_s=wall,
    )
    return row


def medians(all_rows):
    """One row per (client, mode, scheme, N): the repetition with the median CPU per keep-alive."""
    groups = {}
    for r in all_rows:
        groups.setdefault((r["client"], r["mode"], r["scheme"], r["n"]), []).append(r)
    out = []
    for group in groups.values():
        group.sort(key=lambda r: r["cpu_us_per_ka"])
        row = dict(group[(len(group) - 1) // 2])
        row["cpu_us_per_ka_all"] = [round(r["cpu_us_per_ka"], 2) for r in group]
        out.append(row)
    return out


def start_server(a):
    exe = os.path.join(HERE, "server", "target", "release", "bench-server")
    p = subprocess.Popen([exe, "--threads", str(a.server_threads), "--cert", os.path.join(HERE, "certs", "server.pem"),
                          "--key", os.path.join(HERE, "certs", "server.key")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    ws, wss = expect(Lines(p.stdout), "PORT", 30)
    return p, {"ws": int(ws), "wss": int(wss)}


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def cpu_cell(r):
    runs = r.get("cpu_us_per_ka_all") or []
    cell = fmt(r["cpu_us_per_ka"], ".2f")
    return cell + (f" ({min(runs):.1f}–{max(runs):.1f})" if len(runs) > 1 else "")


def table(rows):
    floors = {(r["scheme"], r["n"]): r["cpu_us_per_ka"] for r in rows if r["client"] == "floor"}
    head = ["client", "mode", "scheme", "N", "connect s", "RSS KiB/ch", "CPU µs/ka", "× floor", "wake-ups/s",
            "RTT µs", "server CPU %"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["--:"] * (len(head) - 3)) + "|"]
    for r in rows:
        f = floors.get((r["scheme"], r["n"]))
        r["ratio"] = r["cpu_us_per_ka"] / f if f else None
        wk = fmt(r["wakeups_per_s"], ".0f")
        if r.get("reactor_wakeups_per_s") is not None:
            wk += f" ({r['reactor_wakeups_per_s']:.0f} reactor)"
        out.append("| " + " | ".join([
            r["client"], r["mode"], r["scheme"], str(r["n"]), fmt(r["connect_s"], ".3f"),
            fmt(r["rss_kib_per_channel"], ".2f"), cpu_cell(r), fmt(r["ratio"], ".2f"),
            wk, fmt(r["rtt_us"], ".0f"), fmt(r["server_cpu_pct"], ".0f")]) + " |")
    return "\n".join(out)


COLORS = {"floor": "#888888", "ctrlchan": "#1f77b4", "node-ws": "#2ca02c", "libwebsockets": "#d62728",
          "python-websockets": "#9467bd"}


def wakeup_table(rows):
    """ctrlchan only: who wakes up, per second (reactor counter, threads' context switches, app events)."""
    head = ["mode", "scheme", "N", "interval ms", "reactor wake-ups/s", "reactor thread wake-ups/s",
            "reactor thread preempted/s", "main thread wake-ups/s", "consumer thread wake-ups/s", "app events/s",
            "keep-alives/s"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["--:"] * (len(head) - 2)) + "|"]
    for r in rows:
        if r["client"] != "ctrlchan":
            continue
        th = r["thread_wakeups_per_s"]
        out.append("| " + " | ".join([
            r["mode"], r["scheme"], str(r["n"]), str(r["interval_ms"]), fmt(r["reactor_wakeups_per_s"], ".2f"),
            fmt(th.get("ctrlchan-rt"), ".2f"), fmt(th.get("ctrlchan-rt:preempted"), ".2f"), fmt(th.get("bench"), ".2f"),
            fmt(th.get("bench-consumer"), ".2f"),
            fmt(r["app_events_per_s"], ".2f"), fmt(r["acks_per_s"], ".1f")]) + " |")
    return "\n".join(out) if len(out) > 2 else ""


def svg(rows, title, path):
    """Two panels of horizontal bars (CPU µs per keep-alive, RSS KiB per channel), one bar per row."""
    esc = lambda s: s.replace("&", "&amp;").replace("<", "&lt;")
    label_w, bar_w, row_h, top = 250, 260, 18, 60
    panels = [("CPU per keep-alive, × the floor", "ratio"), ("CPU µs per keep-alive round trip", "cpu_us_per_ka"),
              ("RSS KiB per idle channel", "rss_kib_per_channel")]
    height = top + row_h * len(rows) + 40
    width = label_w + len(panels) * (bar_w + 40) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="100%" height="100%" fill="white"/>',
             f'<text x="10" y="20" font-size="14" font-weight="bold">{esc(title)}</text>']
    for i, r in enumerate(rows):
        y = top + i * row_h
        name = f'{r["client"]}{"" if r["mode"] == "-" else " " + r["mode"]} {r["scheme"]} N={r["n"]}'
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{esc(name)}</text>')
    for k, (ptitle, key) in enumerate(panels):
        x0 = label_w + k * (bar_w + 40)
        vmax = max((r[key] for r in rows if r.get(key) is not None), default=1) or 1
        parts.append(f'<text x="{x0}" y="{top - 12}" font-weight="bold">{esc(ptitle)}</text>')
        parts.append(f'<line x1="{x0}" y1="{top - 4}" x2="{x0}" y2="{top + row_h * len(rows)}" stroke="#333"/>')
        for i, r in enumerate(rows):
            v = r.get(key)
            if v is None:
                continue
            y = top + i * row_h
            w = max(1.0, v / vmax * (bar_w - 50))
            parts.append(f'<rect x="{x0}" y="{y + 2}" width="{w:.1f}" height="{row_h - 5}" '
                         f'fill="{COLORS.get(r["client"], "#444")}"/>')
            parts.append(f'<text x="{x0 + w + 4:.1f}" y="{y + 12}">{v:.2f}</text>')
    parts.append(f'<text x="10" y="{height - 12}" fill="#555">Loopback, one server for all rows; '
                 f'lower is better. Table and conditions: README.md, Benchmark.</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}, Linux {platform.release()}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", default="1000,10000")
    ap.add_argument("--schemes", default="ws,wss")
    ap.add_argument("--clients", default=",".join(ALL_CLIENTS))
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--warmup-ms", type=int, default=2500)
    ap.add_argument("--window-ms", type=int, default=10000)
    ap.add_argument("--inflight", type=int, default=1000)
    ap.add_argument("--spread-ms", type=int, default=0, help="ctrlchan only: random connect times (phases)")
    ap.add_argument("--server-threads", type=int, default=2)
    ap.add_argument("--pong-settle-ms", type=int, help="ctrlchan clients (not before:*): the runtime's pong settle time")
    ap.add_argument("--before-bin", help="the bench client of an earlier ctrlchan build, for the clients "
                    "before:callback / before:queue (same protocol as examples/bench.rs)")
    ap.add_argument("--order-seed", type=int, default=1, help="seed of the client order of repetitions 2..")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every client this many times, interleaved; the table shows the run of median CPU")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--title", default="ctrlchan keep-alive benchmark")
    ap.add_argument("--replot", metavar="JSON", help="only redraw the table and chart of an earlier run")
    a = ap.parse_args()
    if a.replot:
        with open(a.replot) as f:
            old = json.load(f)
        base = os.path.splitext(a.replot)[0]
        print(table(old["rows"]))
        svg(old["rows"], f"{a.title} — {old['date']} — {old['machine']}", base + ".svg")
        print(f"chart: {base}.svg")
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    need = max(int(n) for n in a.channels.split(",")) + 100
    if hard < need:
        raise SystemExit(f"ulimit -n is {hard}; {need} needed")
    os.makedirs(a.out, exist_ok=True)
    server, ports = start_server(a)
    all_rows = []
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# {stamp}; {machine()}")
    print(f"# server: bench-server (tokio {a.server_threads} worker threads + tokio-tungstenite + tokio-rustls), "
          f"ws port {ports['ws']}, wss port {ports['wss']}; keep-alive every {a.interval_ms} ms; "
          f"warm-up {a.warmup_ms} ms; window {a.window_ms} ms; at most {a.inflight} handshakes in flight")
    order_rng = random.Random(a.order_seed)
    try:
        for n in [int(x) for x in a.channels.split(",")]:
            for scheme in a.schemes.split(","):
                for rep in range(a.repeat):
                    # Each repetition in its own order (the first in the order given): a client run
                    # right after another one inherits the kernel's and the server's state from it.
                    order = a.clients.split(",")
                    if rep > 0:
                        order_rng.shuffle(order)
                    for client in order:
                        t = time.monotonic()
                        r = run_one(client, scheme, n, ports[scheme], server.pid, a)
                        if not r:
                            continue
                        r["repeat"] = rep
                        all_rows.append(r)
                        print(f"  {client:20} {scheme:3} N={n:<6} connect {r['connect_s']:.3f} s  "
                              f"cpu {r['cpu_us_per_ka']:.2f} µs/ka  rss {r['rss_kib_per_channel']:.2f} KiB/ch  "
                              f"acks/s {r['acks_per_s']:.0f}  ({time.monotonic() - t:.0f} s)", file=sys.stderr)
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    rows = medians(all_rows)
    print(table(rows))
    wt = wakeup_table(rows)
    if wt:
        print("\n" + wt)
    base = os.path.join(a.out, "bench")
    with open(base + ".json", "w") as f:
        json.dump({"date": stamp, "machine": machine(), "args": vars(a), "rows": rows, "all_runs": all_rows}, f,
                  indent=1)
    svg(rows, f"{a.title} — {stamp} — {machine()}", base + ".svg")
    with open(base + ".md", "w") as f:
        f.write(table(rows) + "\n\n" + wt + "\n")
    print(f"chart: {base}.svg  (table: {base}.md, raw: {base}.json)")


if __name__ == "__main__":
    main()
