"""Reference client for the benchmark: the same workload with python-websockets.

Opens N connections to the server, lets the library send a ping every INTERVAL seconds
(websockets' built-in keep-alive, which waits for the matching pong), and prints the same figures
as the ctrlchan benchmark: connect time, RSS per connection, CPU per keep-alive round trip.
"""

import argparse
import asyncio
import resource
import time


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() // 1024


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def main() -> None:
    from websockets.asyncio.client import connect

    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--channels", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    base = rss_kib()
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(200)
    acked = 0

    async def one():
        async with sem:
            return await connect(args.url, ping_interval=None, compression=None, open_timeout=30)

    conns = await asyncio.gather(*[one() for _ in range(args.channels)])
    connect_s = time.perf_counter() - t0
    await asyncio.sleep(1.0)
    rss = rss_kib() - base

    async def keepalive(ws):
        # What websockets' own keep-alive does: ping, await the matching pong, sleep the interval.
        nonlocal acked
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            waiter = await ws.ping()
            await asyncio.wait_for(waiter, timeout=10)
            acked += 1
            await asyncio.sleep(args.interval)

    c0 = cpu_s()
    w0 = time.perf_counter()
    await asyncio.gather(*[keepalive(ws) for ws in conns])
    cpu = cpu_s() - c0
    wall = time.perf_counter() - w0
    print(f"python-websockets: channels={args.channels} connect_s={connect_s:.3f} "
          f"rss_per_channel_kib={rss / args.channels:.2f} keepalives_acked={acked} "
          f"cpu_us_per_keepalive={cpu * 1e6 / max(acked, 1):.1f} wall_s={wall:.1f}", flush=True)
    await asyncio.gather(*[ws.close() for ws in conns])


if __name__ == "__main__":
    asyncio.run(main())
