#!/usr/bin/env bats
# POST /_relay/batch: many requests in one round trip, each answered as
# a request of the client's own (cache, coalescing, limits), its line
# sent as soon as it is ready; bad items get error lines, only a body
# that is not a batch fails as a whole.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	start_upstream
}

# batch JSON [curl options…]: POSTs a batch to relay-serve, prints the body.
batch() {
	local json=$1
	shift
	curl -s --data-binary "$json" "$@" "$SERVE/_relay/batch"
}

# line ID: the line of the item with that id (a string's, or an
# integer's digits), from out.ndjson.
line() {
	jq -c --arg id "$1" 'select(.id | tostring == $id)' out.ndjson
}

@test "a batch with cached, uncached, failing, conditional and malformed items answers each on a line of its own" {
	start_serve
	curl -s -o /dev/null "$SERVE/warm?cc=max-age=600"
	curl -s -o /dev/null "$SERVE/tagged?cc=max-age=600&etag=%22v1%22"
	eventually cached_as "$UP/warm?cc=max-age=600" "/warm?cc=max-age=600"
	eventually cached_as "$UP/tagged?cc=max-age=600&etag=%22v1%22" \
	    "/tagged?cc=max-age=600&etag=%22v1%22"
	batch '{"requests":[
	    {"id":"cached","path":"/warm?cc=max-age=600"},
	    {"id":"fresh","method":"GET","path":"/new?cc=max-age=600&body=%7B%22a%22%3A1%7D"},
	    {"id":"failing","path":"/down?status=503"},
	    {"id":"conditional","path":"/tagged?cc=max-age=600&etag=%22v1%22",
	     "headers":{"If-None-Match":"\"v1\""}},
	    {"id":"nopath"},
	    {"id":"badmethod","method":"GE T","path":"/x"},
	    {"id":"stranger","path":"/x","colour":"red"},
	    {"id":7,"path":"relative"},
	    {"path":"/anonymous"},
	    {"id":"cached","path":"/again"}]}' >out.ndjson
	[ "$(wc -l <out.ndjson)" -eq 10 ]
	jq -e . out.ndjson >/dev/null	# every line is one JSON object
	[ "$(line cached | jq -c 'select(.status == 200) |
	    [(.headers["cache-status"] | startswith("relay; hit; ttl=")), .text]')" = \
	    '[true,"/warm?cc=max-age=600"]' ]
	[ "$(line fresh | jq -c '[.status, .json]')" = '[200,{"a":1}]' ]
	line fresh | jq -e '.headers["cache-status"] | startswith("relay; fwd=miss")'
	[ "$(line failing | jq .status)" = 503 ]
	[ "$(line conditional | jq -c '[.status, .headers.etag, has("text")]')" = \
	    '[304,"\"v1\"",false]' ]
	[ "$(line nopath | jq -c '[.status, .error]')" = '[400,"no \"path\""]' ]
	line badmethod | jq -e '.status == 400 and (.error | startswith("\"method\""))'
	line stranger | jq -e '.error == "unknown member \"colour\""'
	line 7 | jq -e '.error == "\"path\" must start with '"'/'"'"'
	[ "$(jq -c 'select(.id == null) | .error' out.ndjson)" = '"no \"id\""' ]
	[ "$(jq -c 'select(.id == "cached") | .status' out.ndjson | sort | tr '\n' ' ')" = \
	    '200 400 ' ]
	# what reached the upstream: one request each, none for the bad
	[ "$(requests_for '/new?cc=max-age=600&body=%7B%22a%22%3A1%7D')" = 1 ]
	[ "$(requests_for /x)" = 0 ]
	[ "$(requests_for /again)" = 0 ]
	# every item is in the access log as a request of its own
	logged 5 '"target":"/'
}

@test "the batch answer is streamed NDJSON, never stored" {
	start_serve
	run -0 curl -s -D head.txt -o /dev/null --data-binary \
	    '{"requests":[{"id":"1","path":"/a"}]}' "$SERVE/_relay/batch"
	grep -qi '^content-type: application/x-ndjson' head.txt
	grep -qi '^transfer-encoding: chunked' head.txt
	grep -qi '^cache-control: no-store' head.txt
}

@test "lines come as their answers are ready, not in request order" {
	start_serve
	curl -s -N --data-binary '{"requests":[
	    {"id":"held","path":"/slow?hold=1"},
	    {"id":"quick","path":"/quick"}]}' "$SERVE/_relay/batch" >out.ndjson &
	EXTRA_PIDS+=($!)
	# the quick one is out while the held one still waits upstream
	eventually grep -q '"id":"quick"' out.ndjson
	! grep -q '"id":"held"' out.ndjson || false
	curl -s "$UP/_release" >/dev/null
	eventually grep -q '"id":"held"' out.ndjson
	[ "$(head -1 out.ndjson | jq -r .id)" = quick ]
}

@test "items ride the cache's coalescing: ten items for one uncached URL reach the upstream once" {
	start_serve
	items=$(for i in $(seq 10); do printf '{"id":"%d","path":"/one?delay=300&cc=max-age=60"},' "$i"; done)
	batch "{\"requests\":[${items%,}]}" >out.ndjson
	[ "$(jq -c 'select(.status == 200)' out.ndjson | wc -l)" -eq 10 ]
	[ "$(requests_for '/one?delay=300&cc=max-age=60')" = 1 ]
}

@test "each item counts as one request of the client's against its limit, under the client's API key" {
	start_serve --rate-limit 1/h --burst 3 --limit-key header:X-Key
	items=$(for i in $(seq 5); do printf '{"id":"%d","path":"/l%d"},' "$i" "$i"; done)
	batch "{\"requests\":[${items%,}]}" -H 'X-Key: alice' >out.ndjson
	[ "$(jq -c 'select(.status == 200)' out.ndjson | wc -l)" -eq 3 ]
	[ "$(jq -c 'select(.status == 429)' out.ndjson | wc -l)" -eq 2 ]
	jq -s -e 'map(select(.status == 429)) | all(.headers["retry-after"] != null)' out.ndjson
	jq -s -e 'map(select(.status == 200)) | all(.headers.ratelimit | test("r=[0-2];"))' out.ndjson
	# the batch did not count, its items did: alice has none left
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Key: alice' "$SERVE/l9")" = 429 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Key: bob' "$SERVE/l9")" = 200 ]
	# an item's own field takes the place of the client's
	batch '{"requests":[{"id":"1","path":"/l1","headers":{"X-Key":"carol"}}]}' \
	    -H 'X-Key: alice' | jq -e '.status == 200'
}

@test "an item may send a body: a JSON value as JSON, a string as it is; HEAD gets no body" {
	start_serve
	batch '{"requests":[
	    {"id":"json","method":"POST","path":"/p?echo=1","body":{"n":[1,2]}},
	    {"id":"text","method":"PUT","path":"/p?echo=1","body":"plain words",
	     "headers":{"Content-Type":"text/plain"}},
	    {"id":"head","method":"HEAD","path":"/h?cc=max-age=60"}]}' >out.ndjson
	[ "$(line json | jq -r .text)" = 'POST {"n":[1,2]}' ]
	[ "$(line text | jq -r .text)" = 'PUT plain words' ]
	[ "$(line head | jq -c '[.status, has("text"), has("json")]')" = '[200,false,false]' ]
	[ "$(curl -s "$UP/_log" | jq -r 'select(.path == "/p?echo=1" and
	    .method == "POST") | .headers["Content-Type"]')" = application/json ]
}

@test "multipart/mixed when the client asks for it: one part an item, its id the Content-ID" {
	start_serve
	curl -s -D head.txt -H 'Accept: multipart/mixed' --data-binary \
	    '{"requests":[{"id":"a","path":"/a"},{"id":"b c","path":"/b"}]}' \
	    "$SERVE/_relay/batch" >out.txt
	grep -qi '^content-type: multipart/mixed; boundary=relay-batch' head.txt
	[ "$(grep -c $'^--relay-batch\r$' out.txt)" -eq 2 ]
	[ "$(tail -1 out.txt)" = $'--relay-batch--\r' ]
	grep -q $'^Content-ID: <a>\r$' out.txt
	! grep -q 'Content-ID: <b c>' out.txt || false	# not a token: only in the JSON
	[ "$(grep '^{' out.txt | tr -d '\r' | jq -r .id | sort | tr '\n' ' ')" = 'a b c ' ]
}

@test "a body that is not a batch is 400, more than 100 requests 413, and a GET 405" {
	start_serve
	for body in '' 'null' '{"requests":{}}' '{"requests":[1,]}' \
	    '{"calls":[]}' '{"requests":[]} trailing'; do
		run -0 curl -s -o out.json -w '%{http_code}' --data-binary "$body" \
		    "$SERVE/_relay/batch"
		[ "$output" = 400 ] || { echo "body: $body: $output"; false; }
	done
	items=$(for i in $(seq 101); do printf '{"id":"%d","path":"/x"},' "$i"; done)
	run -0 curl -s -o out.json -w '%{http_code}' --data-binary \
	    "{\"requests\":[${items%,}]}" "$SERVE/_relay/batch"
	[ "$output" = 413 ]
	jq -e '.detail == "more than 100 requests"' out.json
	run -0 curl -s -o /dev/null -w '%{http_code}' "$SERVE/_relay/batch"
	[ "$output" = 405 ]
	[ "$(requests_for /x)" = 0 ]
	# an empty batch is a batch
	run -0 curl -s -o out.json -w '%{http_code}' --data-binary \
	    '{"requests":[]}' "$SERVE/_relay/batch"
	[ "$output" = 200 ] && [ ! -s out.json ]
}

@test "an item whose answer is over 1 MiB gets an error line; the others are whole" {
	start_serve
	batch '{"requests":[{"id":"big","path":"/big?size=3000000&cc=max-age=60"},
	    {"id":"small","path":"/small"}]}' >out.ndjson
	line big | jq -e '.status == 200 and (.error | test("over 1048576 bytes"))'
	line big | jq -e 'has("text") | not'
	[ "$(line small | jq -r .text)" = /small ]
	# the big one, stored meanwhile or not, is answered whole alone
	[ "$(curl -s "$SERVE/big?size=3000000&cc=max-age=60" | wc -c)" -eq 3000000 ]
}

@test "a batch's error answers are JSON problems that quote no request bytes" {
	start_serve
	local body
	for body in '{}' '{"requests":{}}' '{"<script>\u0001":1}' \
	    '{"requests":[]} "\u001b]0;x\u0007"' "$(printf '{"\xff\x1b[31m":1}')"; do
		curl -s -D head -o out.json --data-binary "$body" "$SERVE/_relay/batch"
		grep -q '^HTTP/1.1 400' head
		grep -qi $'^X-Content-Type-Options: nosniff\r$' head
		jq -e '.status == 400 and (.detail | type == "string")' out.json
		! grep -aq $'<script>\|\x1b\|\x07\|\xff' out.json || false
	done
}

@test "ids 1 and \"1\" are two items, each line giving its id back as it came" {
	start_serve
	batch '{"requests":[{"id":1,"path":"/one"},{"id":"1","path":"/string-one"},
	    {"id":"1","path":"/again"},{"id":-7,"path":"/minus"}]}' >out.ndjson
	[ "$(wc -l <out.ndjson)" -eq 4 ]
	[ "$(jq -c 'select(.id == 1) | [.status, .text]' out.ndjson)" = '[200,"/one"]' ]
	[ "$(jq -c 'select(.id == "1") | [.status, .text // .error]' out.ndjson |
	    sort)" = '[200,"/string-one"]
[400,"the id is not unique in the batch"]' ]
	[ "$(jq -c 'select(.id == -7) | .text' out.ndjson)" = '"/minus"' ]
	# multipart parts are named by the id's value
	batch '{"requests":[{"id":1,"path":"/one"},{"id":"two","path":"/two"}]}' \
	    -H 'Accept: multipart/mixed' | tr -d '\r' >parts.txt
	grep -qx 'Content-ID: <1>' parts.txt
	grep -qx 'Content-ID: <two>' parts.txt
}

@test "an item that opens a batch or a channel is refused, however its path is spelled" {
	start_serve
	local paths='"/_relay/batch" "/./_relay/batch" "/%5Frelay/batch"
	    "/%5frelay/%62atch" "/x/../_relay/batch" "/_relay/ws" "/_relay/./ws"
	    "/%5Frelay/ws" "/a/b/../../_relay/ws"' items= i=0 p
	for p in $paths; do
		items="$items{\"id\":\"$((i += 1))\",\"method\":\"POST\",\"path\":$p,
		    \"body\":{\"requests\":[{\"id\":\"n\",\"path\":\"/nested\"}]}},"
	done
	batch "{\"requests\":[${items%,}]}" >out.ndjson
	[ "$(wc -l <out.ndjson)" -eq 9 ]
	[ "$(jq -c 'select(.status == 400)' out.ndjson | wc -l)" -eq 9 ]
	# no nested batch ran: the upstream never heard of /nested
	[ "$(requests_for /nested)" = 0 ]
	# the same items on a channel: refused, no 101 inside it
	/usr/bin/python3 - "$SERVE_PORT" >ws.ndjson <<'PY'
import asyncio, json, sys, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:%s/_relay/ws" % sys.argv[1]) as ws:
        paths = ["/_relay/ws", "/./_relay/ws", "/%5Frelay/ws", "/_relay/./batch"]
        for i, p in enumerate(paths):
            await ws.send(json.dumps({"id": str(i), "path": p,
                "headers": {"Upgrade": "websocket", "Connection": "Upgrade",
                            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                            "Sec-WebSocket-Version": "13"}}))
        for _ in paths:
            print(await ws.recv())
asyncio.run(main())
PY
	[ "$(jq -c 'select(.status == 400)' ws.ndjson | wc -l)" -eq 4 ]
	[ "$(requests_for /nested)" = 0 ]
}

@test "a client that resets the connection mid-batch: its items are dropped at once, the server goes on" {
	start_serve
	python3 - "$SERVE_PORT" <<'PY'
import socket, struct, sys
body = b'{"requests":[{"id":"1","path":"/h1?hold=1"},{"id":"2","path":"/h2?hold=1"}]}'
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /_relay/batch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
          % len(body) + body)
s.recv(1)   # the head is out: the items are under way
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()   # a reset, not a FIN
PY
	# both items end, answered to no one, while the upstream still holds them
	logged 2 '"target":"/h[12]?hold=1","status":0'
	curl -s "$UP/_release" >/dev/null
	[ "$(curl -s "$SERVE/after")" = /after ]
	! grep -q died serve.log || false
}

@test "a batch works one process per connection (socket activation, as from inetd)" {
	start_activated
	curl -s --data-binary '{"requests":[{"id":"1","path":"/a?cc=max-age=60"},
	    {"id":"2","path":"/a?cc=max-age=60"}]}' "$ACTIVATED/_relay/batch" >out.ndjson
	[ "$(jq -c 'select(.status == 200)' out.ndjson | wc -l)" -eq 2 ]
	[ "$(requests_for '/a?cc=max-age=60')" = 1 ]
}

@test "many clients' batches together hold a bounded number of items' bodies, not one batch's bound each" {
	start_serve --workers 1
	# 12 clients, 33 items of 1 MB each, none reading its answer
	python3 -c '
import json, socket, sys, time
port = int(sys.argv[1])
held = []
for c in range(12):
    items = [{"id": str(i), "path": "/big%d-%d?size=1000000&type=text/plain" % (c, i)}
             for i in range(33)]
    body = json.dumps({"requests": items}).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"POST /_relay/batch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
              % len(body) + body)
    held.append(s)
open("sent", "w").write("ok")
time.sleep(120)' "$SERVE_PORT" &
	EXTRA_PIDS+=($!)
	eventually [ -s sent ]
	# the first items run, then every batch waits for its client
	settled() {
		local n
		n=$(curl -s "$UP/_log" | grep -c '/big')
		[ "$n" -ge 128 ] && [ "$n" = "$(cat last 2>/dev/null)" ] ||
		    { echo "$n" >last; false; }
	}
	within 60 settled
	# at most 128 items at once, each its 1 MB and its line: far below
	# the 12 x 32 the batches' own bound would let run
	[ "$(cat last)" -le 150 ] || { echo "$(cat last) asked"; false; }
	local hwm
	hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$SERVE_PID/status")
	sanitized || [ "$hwm" -lt 450000 ] || { echo "peak RSS $hwm kB"; false; }
}
