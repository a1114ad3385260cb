#!/usr/bin/env python3
"""A TCP proxy that adds a fixed latency each way, as a mobile network
far away does: every chunk read from one side is written to the other
DELAY_MS later, in order. Latency, not bandwidth: nothing is throttled.

    delay-proxy.py PORTFILE TARGET_PORT DELAY_MS

listens on an ephemeral port of 127.0.0.1, writes it to PORTFILE, and
forwards every connection to 127.0.0.1:TARGET_PORT until either side
closes. Stopped by a signal.
"""
import asyncio
import sys


async def pipe(reader, writer, delay):
    """Forwards reader to writer, each chunk delay seconds late."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
    except ConnectionError:
        queue.put_nowait((loop.time(), None))
    try:
        await sender
    except ConnectionError:
        pass


async def main():
    portfile, target, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1000

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(
                "127.0.0.1", target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer, delay),
                             pipe(server_reader, client_writer, delay))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    with open(portfile, "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


asyncio.run(main())
