#!/usr/bin/env bats
# GET /_relay/ws: a WebSocket channel (RFC 6455) on which a client sends
# requests whenever it likes and gets each answer as soon as it is
# ready, tagged with its id. Driven by a real client library (Debian's
# python3-websockets) and by tests/fixture/wsraw.py, which sends the
# frames a library would refuse to.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	/usr/bin/python3 -c 'import websockets' 2>/dev/null ||
	    skip "python3-websockets is not installed (make deps)"
	start_upstream
}

# raw PORT FRAME…: what the server sends back, one frame a line.
raw() {
	python3 "$ROOT/tests/fixture/wsraw.py" "$@"
}

@test "100 interleaved requests on one channel: each answered once, tagged with its id, through the cache" {
	start_serve
	/usr/bin/python3 - "$SERVE_PORT" >answers.ndjson <<'PY'
import asyncio, json, sys, websockets
async def main():
    url = "ws://127.0.0.1:%s/_relay/ws" % sys.argv[1]
    async with websockets.connect(url, max_size=None) as ws:
        async def send():
            for i in range(100):
                # ten paths, every other one slow: answers overtake
                path = "/p%d?cc=max-age=60&delay=%d" % (i % 10, 80 * (i % 2))
                await ws.send(json.dumps({"id": "r%d" % i, "path": path}))
        sender = asyncio.ensure_future(send())
        for _ in range(100):
            print(await ws.recv())
        await sender
asyncio.run(main())
PY
	[ "$(wc -l <answers.ndjson)" -eq 100 ]
	[ "$(jq -r .id answers.ndjson | sort -u | wc -l)" -eq 100 ]
	[ "$(jq -c 'select(.status == 200)' answers.ndjson | wc -l)" -eq 100 ]
	# each answer is its own request's
	jq -s -e 'all(.[]; (.id | ltrimstr("r") | tonumber % 10 | tostring) as $p |
	    .text | startswith("/p" + $p + "?"))' answers.ndjson
	# not in the order sent: a slow path's answers come after quick ones
	[ "$(jq -r .id answers.ndjson | tr '\n' ' ')" != "$(seq -f 'r%g' 0 99 | tr '\n' ' ')" ]
	# one upstream request a path: the rest were hits or collapsed
	for i in $(seq 0 9); do
		[ "$(requests_for "/p$i?cc=max-age=60&delay=$((80 * (i % 2)))")" = 1 ]
	done
	logged 100 '"target":"/p'
	logged 1 '"target":"/_relay/ws","status":101'
}

@test "fragmented messages and pings between their fragments: answered as whole messages" {
	start_serve
	/usr/bin/python3 - "$SERVE_PORT" >out.txt <<'PY'
import asyncio, json, sys, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:%s/_relay/ws" % sys.argv[1]) as ws:
        text = json.dumps({"id": "frag", "path": "/fragmented"})
        await ws.send([text[:5], text[5:12], text[12:]])   # three frames
        print(await ws.recv())
        await (await ws.ping(b"are you there"))
        print("pong")
asyncio.run(main())
PY
	[ "$(head -1 out.txt | jq -r '.id + " " + .text')" = 'frag /fragmented' ]
	[ "$(sed -n 2p out.txt)" = pong ]
	# a ping between the fragments is answered at once, the message after
	run -0 raw "$SERVE_PORT" 'first:{"id":"1",' 'ping:hello' 'more:"path"' \
	    'last::"/f"}' 'wait:2' 'close:1000'
	[ "${lines[0]}" = 'HTTP/1.1 101 Switching Protocols' ]
	[ "${lines[1]}" = 'pong hello' ]
	[[ "${lines[2]}" == 'text {"id":"1","status":200,'* ]]
	[ "${lines[3]}" = 'close 1000 closed' ]
}

@test "an oversized message closes with 1009, a text frame that is not UTF-8 with 1007" {
	start_serve --max-body 1000
	run -0 raw "$SERVE_PORT" "text:$(head -c 1001 /dev/zero | tr '\0' x)"
	[ "${lines[1]}" = 'close 1009 a message over the bound' ]
	# the bound holds across fragments too
	run -0 raw "$SERVE_PORT" "first:$(head -c 600 /dev/zero | tr '\0' x)" \
	    "last:$(head -c 600 /dev/zero | tr '\0' x)"
	[ "${lines[1]}" = 'close 1009 a message over the bound' ]
	run -0 raw "$SERVE_PORT" 'hex:7b22c328'
	[ "${lines[1]}" = 'close 1007 text that is not UTF-8' ]
	# a sequence cut at a fragment's end is whole with the next one
	run -0 raw "$SERVE_PORT" 'hexfirst:2222c3' 'hexlast:a922' 'wait:1' 'close:1000'
	[ "${lines[1]}" = 'text {"id":null,"status":400,"error":"an item is an object"}' ]
	[ "${lines[2]}" = 'close 1000 closed' ]
	[ "$(/usr/bin/python3 - "$SERVE_PORT" <<'PY'
import asyncio, sys, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:%s/_relay/ws" % sys.argv[1]) as ws:
        await ws.send("x" * 5000)
        try:
            await ws.recv()
        except websockets.ConnectionClosed as e:
            print(e.rcvd.code)
asyncio.run(main())
PY
)" = 1009 ]
}

@test "protocol errors close with 1002, binary messages with 1003; a bad item gets an error answer and the channel stays" {
	start_serve
	run -0 raw "$SERVE_PORT" 'unmasked:{}'
	[ "${lines[1]}" = 'close 1002 a client frame unmasked' ]
	run -0 raw "$SERVE_PORT" 'more:x'
	[ "${lines[1]}" = 'close 1002 a continuation of nothing' ]
	run -0 raw "$SERVE_PORT" 'first:x' 'text:y'
	[ "${lines[1]}" = 'close 1002 a new message inside a fragmented one' ]
	run -0 raw "$SERVE_PORT" 'close:1005'
	[ "${lines[1]}" = 'close 1002 a close code not allowed' ]
	run -0 raw "$SERVE_PORT" 'binary:abc'
	[ "${lines[1]}" = 'close 1003 items are text messages' ]
	run -0 raw "$SERVE_PORT" 'text:{"id":"a"}' 'text:nonsense' \
	    'text:{"id":"b","path":"/ok"}' 'wait:3' 'close:4000'
	[ "${lines[1]}" = 'text {"id":"a","status":400,"error":"no \"path\""}' ]
	[[ "${lines[2]}" == 'text {"id":null,"status":400,"error":'* ]]
	[[ "${lines[3]}" == 'text {"id":"b","status":200,'* ]]
	[ "${lines[4]}" = 'close 4000 closed' ]
}

@test "the handshake: 101 with the RFC's accept value; no upgrade 426, another version 426, a POST 405, HTTP/1.0 400" {
	start_serve
	# the channel stays open: curl stops at its --max-time with the head
	run curl -s -i --max-time 1 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
	    -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
	    "$SERVE/_relay/ws"
	[[ "$output" == 'HTTP/1.1 101 Switching Protocols'* ]]
	[[ "$output" == *$'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r'* ]]
	code() { curl -s -o /dev/null -w '%{http_code}' "$@" "$SERVE/_relay/ws"; }
	[ "$(code)" = 426 ]
	[ "$(code -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 8' \
	    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==')" = 426 ]
	curl -s -D - -o /dev/null -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
	    -H 'Sec-WebSocket-Version: 8' "$SERVE/_relay/ws" | grep -q $'^Sec-WebSocket-Version: 13\r$'
	[ "$(code -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
	    -H 'Sec-WebSocket-Key: short')" = 400 ]
	[ "$(code -d x)" = 405 ]
	# RFC 6455 section 4.1: over HTTP/1.1 at least, never HTTP/1.0
	[ "$(code -0 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
	    -H 'Sec-WebSocket-Version: 13' \
	    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==')" = 400 ]
}

@test "an idle channel closes after --idle-timeout with 1001" {
	start_serve --idle-timeout 1
	run -0 within 10 raw "$SERVE_PORT" 'text:{"id":"1","path":"/x"}'
	[[ "${lines[1]}" == 'text {"id":"1","status":200,'* ]]
	[ "${lines[2]}" = 'close 1001 idle for 1000 ms' ]
}

@test "items count against the client's limit; SIGTERM closes open channels with 1001" {
	start_serve --rate-limit 1/h --burst 2
	/usr/bin/python3 - "$SERVE_PORT" >out.txt <<'PY' &
import asyncio, json, sys, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:%s/_relay/ws" % sys.argv[1]) as ws:
        for i in range(3):
            await ws.send(json.dumps({"id": str(i), "path": "/l%d" % i}))
        for i in range(3):
            print(await ws.recv(), flush=True)
        try:
            await ws.recv()
        except websockets.ConnectionClosed as e:
            print("closed", e.rcvd.code, flush=True)
asyncio.run(main())
PY
	client=$!
	EXTRA_PIDS+=($client)
	waits_three() { [ "$(wc -l <out.txt)" -eq 3 ]; }
	eventually waits_three
	[ "$(jq -r .status out.txt | sort | tr '\n' ' ')" = '200 200 429 ' ]
	kill -TERM "$SERVE_PID"
	wait "$client"
	[ "$(tail -1 out.txt)" = 'closed 1001' ]
	wait "$SERVE_PID"
	SERVE_PID=
}

@test "a channel works one process per connection (socket activation, as from inetd)" {
	start_activated
	port=${ACTIVATED##*:}
	run -0 raw "$port" 'text:{"id":"1","path":"/a?cc=max-age=60"}' \
	    'text:{"id":"2","path":"/a?cc=max-age=60"}' 'wait:2' 'close:1000'
	[[ "${lines[1]}" == 'text {"id":"'* ]]
	[[ "${lines[2]}" == 'text {"id":"'* ]]
	[ "${lines[3]}" = 'close 1000 closed' ]
	[ "$(requests_for '/a?cc=max-age=60')" = 1 ]
}
