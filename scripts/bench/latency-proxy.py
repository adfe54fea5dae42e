#!/usr/bin/python3
"""latency-proxy.py: a TCP proxy on 127.0.0.1 that delays every byte by DELAY_MS in each
direction, for the benchmark's latency case (this kernel has no netem).

    latency-proxy.py start DIR LISTEN_PORT TARGET_PORT DELAY_MS   # daemon; PID in DIR/proxy.pid
    latency-proxy.py stop DIR                                     # stops that PID only

Each chunk read is written out DELAY_MS after it arrived, in order, so the link keeps its
bandwidth and gains a round trip of 2 x DELAY_MS, as a WAN link would.
"""
import asyncio
import os
import signal
import sys
import time

CHUNK = 256 << 10
QUEUE = 256  # chunks in flight per direction: 64 MiB, more than 25 ms at loopback speed


async def pipe(reader, writer, delay):
    q = asyncio.Queue(QUEUE)

    async def pump():
        while True:
            data = await reader.read(CHUNK)
            await q.put((time.monotonic() + delay, data))
            if not data:
                return

    async def deliver():
        while True:
            due, data = await q.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                try:
                    writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(pump(), deliver())
    except (ConnectionError, OSError):
        pass


async def serve(listen, target, delay):
    async def handle(cr, cw):
        try:
            tr, tw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pipe(cr, tw, delay), pipe(tr, cw, delay))
        for w in (cw, tw):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "stop":
        pidfile = os.path.join(sys.argv[2], "proxy.pid")
        try:
            os.kill(int(open(pidfile).read()), signal.SIGTERM)
            os.remove(pidfile)
        except (OSError, ValueError):
            pass
        return
    if len(sys.argv) != 6 or sys.argv[1] != "start":
        sys.exit(__doc__)
    d, listen, target, delay_ms = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    os.makedirs(d, exist_ok=True)
    if os.fork():
        # Parent: wait until the child listens, so the caller can connect at once.
        for _ in range(100):
            try:
                import socket
                socket.create_connection(("127.0.0.1", listen), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        sys.exit("latency-proxy: did not start listening on %d" % listen)
    os.setsid()
    with open(os.path.join(d, "proxy.pid"), "w") as f:
        f.write(str(os.getpid()))
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    asyncio.run(serve(listen, target, delay_ms / 1000.0))


if __name__ == "__main__":
    main()
