"""Instruction counts per keep-alive under callgrind (stable on a noisy machine).

    bench/profile.sh [--client ctrlchan:callback] [--channels 200] [--window-ms 5000] [--scheme ws]

Starts the bench server, runs one client under `valgrind --tool=callgrind` with collection off,
switches instrumentation on at the client's first MARK and dumps at the second (callgrind_control), so
that the profile holds only steady-state keep-alives. Prints instructions per acknowledged
keep-alive and the top functions (inclusive and self), and leaves the profile in bench/results/.
"""

import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", default="ctrlchan:callback")
    ap.add_argument("--channels", type=int, default=200)
    ap.add_argument("--scheme", default="ws")
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--warmup-ms", type=int, default=3000)
    ap.add_argument("--window-ms", type=int, default=5000)
    ap.add_argument("--inflight", type=int, default=100)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--before-bin", help="bench client of an earlier build, for --client before:callback|queue")
    ap.add_argument("--pong-settle-ms", type=int, help="ctrlchan clients: the runtime's pong settle time")
    a = ap.parse_args()
    a.spread_ms, a.server_threads = 0, 2
    out_dir = os.path.join(driver.HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    tag = a.client.replace(":", "-") + f"-{a.scheme}-{a.channels}"
    out = os.path.join(out_dir, f"callgrind.{tag}.out")
    server, ports = driver.start_server(a)
    try:
        cmd, _ = driver.client_cmd(a.client, a.scheme, ports[a.scheme], a.channels, a)
        vg = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
              "--dump-instr=no", "--quiet"] + cmd
        p = subprocess.Popen(vg, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=driver.REPO)
        lines = driver.Lines(p.stdout)
        try:
            driver.expect(lines, "READY", 120)
            p.stdin.write(b"GO\n")
            p.stdin.flush()
            driver.expect(lines, "CONNECTED", 300)
            m0 = [int(x) for x in driver.expect(lines, "MARK", a.warmup_ms / 1000 + 120)]
            subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], check=True, stdout=subprocess.DEVNULL)
            m1 = [int(x) for x in driver.expect(lines, "MARK", a.window_ms / 1000 + 120)]
            subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], check=True, stdout=subprocess.DEVNULL)
        finally:
            p.stdin.close()
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    finally:
        server.stdin.close()
        server.wait(timeout=10)
    dumps = sorted(f for f in os.listdir(out_dir) if f.startswith(os.path.basename(out)))
    dump = os.path.join(out_dir, dumps[0] if len(dumps) == 1 else [d for d in dumps if d != os.path.basename(out)][0])
    acks = m1[0] - m0[0]
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", dump],
                         capture_output=True, text=True).stdout
    self_ann = subprocess.run(["callgrind_annotate", "--threshold=100", dump], capture_output=True, text=True).stdout
    total = 0
    for line in ann.splitlines():
        if "PROGRAM TOTALS" in line and line.split()[0][0].isdigit():
            total = int(line.split()[0].replace(",", ""))
    print(f"# {a.client} {a.scheme} N={a.channels}: {acks} keep-alives acknowledged in the window; "
          f"{total:,} instructions; {total / max(acks, 1):,.0f} instructions per keep-alive (user space)")
    print(f"# profile: {dump}")
    for title, text in (("inclusive", ann), ("self", self_ann)):
        # callgrind_annotate splits a function into one row per source file its inlined lines came
        # from; add them up per function symbol.
        per_fn = {}
        for ln in text.splitlines():
            m = re.match(r"^\s*([\d,]+) \([ \d.]+%\)\s+(\S*?):(.*?)(?: \[.*\])?$", ln)
            if m and "PROGRAM TOTALS" not in ln:
                fn = m.group(3).strip()
                per_fn[fn] = per_fn.get(fn, 0) + int(m.group(1).replace(",", ""))
        print(f"## top {a.top} functions by {title} instructions per keep-alive")
        for fn, ir in sorted(per_fn.items(), key=lambda kv: -kv[1])[: a.top]:
            print(f"{ir / max(acks, 1):10.0f}  {fn[:180]}")


if __name__ == "__main__":
    main()
