#!/usr/bin/python3
"""One client of tests/bench/mobile: 40 requests for /item/SET-00 to
/item/SET-39 through the delay proxy on PORT, one way of asking, and
the seconds from the first byte sent to the last answer, printed. The
connections (and the WebSocket channel) are open before the clock
starts, as a phone's are while it is in use.

    mobile-client.py HOW PORT SET

HOW is keepalive6, keepalive2, pipeline, batch, websocket or fanout.
Exits 1 unless all 40 answers came, each a 200.
"""
import asyncio
import http.client
import json
import socket
import sys
import threading
import time

N = 40
how, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
paths = ["/item/%s-%02d" % (name, i) for i in range(N)]


def connection():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.connect()
    return c


def keepalive(n):
    conns = [connection() for _ in range(n)]
    ok = []

    def run(c, mine):
        for p in mine:
            c.request("GET", p)
            r = c.getresponse()
            r.read()
            ok.append(r.status == 200)

    threads = [threading.Thread(target=run, args=(c, paths[i::n]))
               for i, c in enumerate(conns)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - start, len(ok) == N and all(ok)


def read_response(f):
    """One response from a buffered socket file: its status."""
    status = int(f.readline().split()[1])
    length, chunked = None, False
    while True:
        line = f.readline().strip()
        if not line:
            break
        key, _, value = line.decode().partition(":")
        if key.lower() == "content-length":
            length = int(value)
        elif key.lower() == "transfer-encoding":
            chunked = "chunked" in value.lower()
    if chunked:
        while True:
            size = int(f.readline().split(b";")[0], 16)
            f.read(size + 2)
            if size == 0:
                break
    else:
        f.read(length or 0)
    return status


def pipeline():
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = s.makefile("rb")
    requests = b"".join(b"GET %s HTTP/1.1\r\nHost: relay\r\n\r\n" % p.encode()
                        for p in paths)
    start = time.monotonic()
    s.sendall(requests)
    statuses = [read_response(f) for _ in paths]
    return time.monotonic() - start, statuses == [200] * N


def batch():
    c = connection()
    body = json.dumps({"requests": [{"id": str(i), "path": p}
                                    for i, p in enumerate(paths)]})
    start = time.monotonic()
    c.request("POST", "/_relay/batch", body,
              {"Content-Type": "application/json"})
    lines = c.getresponse().read().decode().splitlines()
    took = time.monotonic() - start
    return took, sorted(json.loads(l)["status"] for l in lines) == [200] * N


def websocket():
    import websockets

    async def run():
        async with websockets.connect("ws://127.0.0.1:%d/_relay/ws" % port) as ws:
            start = time.monotonic()
            for i, p in enumerate(paths):
                await ws.send(json.dumps({"id": str(i), "path": p}))
            answers = [json.loads(await ws.recv()) for _ in paths]
            took = time.monotonic() - start
        return took, sorted(a["status"] for a in answers) == [200] * N

    return asyncio.run(run())


def fanout():
    c = connection()
    start = time.monotonic()
    c.request("GET", "/fan/" + name)
    r = c.getresponse()
    items = json.loads(r.read())
    took = time.monotonic() - start
    return took, r.status == 200 and len(items) == N and None not in items


took, ok = {"keepalive6": lambda: keepalive(6), "keepalive2": lambda: keepalive(2),
            "pipeline": pipeline, "batch": batch, "websocket": websocket,
            "fanout": fanout}[how]()
print("%.3f" % took)
sys.exit(0 if ok else 1)
