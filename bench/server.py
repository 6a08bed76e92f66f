"""Minimal loopback WebSocket server for the benchmark: answers pings (automatically, inside the
`websockets` library), echoes data, never pings on its own. Prints `PORT <n>` once listening and
exits when stdin closes."""

import argparse
import asyncio
import resource
import sys


async def main() -> None:
    from websockets.asyncio.server import serve

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert", help="PEM certificate chain: serve wss://")
    ap.add_argument("--tls-key", help="PEM private key for --tls-cert")
    args = ap.parse_args()
    ssl_context = None
    if args.tls_cert:
        import ssl

        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def handler(ws):  # echo
        async for msg in ws:
            await ws.send(msg)

    async with serve(handler, "127.0.0.1", args.port, ping_interval=None, compression=None,
                     max_queue=16, backlog=4096, ssl=ssl_context) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
