"""python-websockets peer for the ctrlchan benchmark.

    python bench/py_client.py URL N INTERVAL_MS WARMUP_MS WINDOW_MS INFLIGHT [CA_FILE]

N connections on one asyncio loop. Keep-alive is what websockets' own keepalive() task does
(ping, await the matching pong, sleep the interval), written out so that acknowledged pings and
their RTT can be counted. Speaks the driver protocol of bench/driver.py.
"""

import asyncio
import ssl
import sys
import time


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main() -> None:
    from websockets.asyncio.client import connect

    url, n, interval_ms, warmup_ms, window_ms, inflight = sys.argv[1:7]
    n, inflight = int(n), int(inflight)
    interval, warmup, window = int(interval_ms) / 1000, int(warmup_ms) / 1000, int(window_ms) / 1000
    ctx = None
    if len(sys.argv) > 7:
        ctx = ssl.create_default_context(cafile=sys.argv[7])
    acks = rtt_sum_us = rtt_n = 0

    say("READY")
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(inflight)

    async def one():
        async with sem:
            return await connect(url, ssl=ctx, ping_interval=None, compression=None, open_timeout=30)

    conns = await asyncio.gather(*[one() for _ in range(n)])
    say(f"CONNECTED {time.perf_counter() - t0:.4f} {len(conns)} 0")

    async def keepalive(ws):
        nonlocal acks, rtt_sum_us, rtt_n
        while True:
            await asyncio.sleep(interval)
            sent = time.perf_counter()
            await asyncio.wait_for(await ws.ping(), timeout=10)
            acks += 1
            rtt_sum_us += int((time.perf_counter() - sent) * 1e6)
            rtt_n += 1

    tasks = [asyncio.create_task(keepalive(ws)) for ws in conns]
    await asyncio.sleep(warmup)
    say(f"MARK {acks} {rtt_sum_us} {rtt_n} 0 0")
    await asyncio.sleep(window)
    say(f"MARK {acks} {rtt_sum_us} {rtt_n} 0 0")
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for t in tasks:
        t.cancel()


if __name__ == "__main__":
    asyncio.run(main())
