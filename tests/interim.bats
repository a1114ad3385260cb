#!/usr/bin/env bats
# Interim (1xx) responses of the upstream's (RFC 9110 section 15.2,
# RFC 8297's 103 Early Hints): relay-serve passes each on before the
# final head to an HTTP/1.1 client, never to an HTTP/1.0 one, a batch
# or channel item or a merge route's client; none is ever stored or
# the final answer, and a 101 nobody asked for is a broken response.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	start_upstream
	start_serve
}

# raw PATH [VERSION]: one GET of PATH on a connection of its own, as
# HTTP/1.1 (or VERSION); what came back goes to out.
raw() {
	printf 'GET %s HTTP/%s\r\nHost: x\r\nConnection: close\r\n\r\n' \
	    "$1" "${2:-1.1}" | "$ROOT/tests/fixture/rawhttp" 127.0.0.1 \
	    "$SERVE_PORT" | tr -d '\r' >out
}

# The status of each response in out, in order, on one line (a body
# without a newline at its end runs into the next status line).
statuses() {
	grep -ao 'HTTP/1\.1 [0-9][0-9][0-9] ' out | cut -d' ' -f2 | paste -sd' '
}

# head N: the fields of the Nth response in out.
head_of() {
	awk -v n="$1" '/^HTTP\/1.1 / { i++ } i == n && /^$/ { exit }
	    i == n' out
}

@test "103 Early Hints and every 1xx but 101 reach an HTTP/1.1 client before the final head, without hop-by-hop fields" {
	raw '/p?cc=max-age=60&interim=103&interim=102&interim=100&interim=199'
	[ "$(statuses)" = "103 102 100 199 200" ]
	[ "$(head_of 1)" = 'HTTP/1.1 103 Early Hints
X-Interim: 103
Link: </style.css>; rel=preload; as=style
Via: 1.1 relay' ]
	[ "$(head_of 2)" = 'HTTP/1.1 102 Processing
X-Interim: 102
Via: 1.1 relay' ]
	head_of 3 | grep -qx 'HTTP/1.1 100 Continue'
	head_of 4 | grep -qx "HTTP/1.1 199 "	# no reason phrase known
	# the final head is the final response's alone
	! head_of 5 | grep -qi '^x-interim\|^link\|^x-hop' || false
	[ "$(tail -1 out)" = '/p?cc=max-age=60&interim=103&interim=102&interim=100&interim=199' ]
	# keep-alive: each request's own, in its place
	printf 'GET /q?interim=103 HTTP/1.1\r\nHost: x\r\n\r\nGET /r?interim=103&interim=103 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
	    "$ROOT/tests/fixture/rawhttp" 127.0.0.1 "$SERVE_PORT" | tr -d '\r' >out
	[ "$(statuses)" = "103 200 103 103 200" ]
	# a relayed POST's too
	printf 'POST /s?interim=103 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi' |
	    "$ROOT/tests/fixture/rawhttp" 127.0.0.1 "$SERVE_PORT" | tr -d '\r' >out
	[ "$(statuses)" = "103 200" ]
}

@test "curl shows the 103 before the answer" {
	run curl -si "$SERVE/p?interim=103"
	[ "$status" -eq 0 ]
	[ "$(grep -a '^HTTP/' <<<"$output" | tr -d '\r' | paste -sd,)" = \
	    "HTTP/1.1 103 Early Hints,HTTP/1.1 200 OK" ]
}

@test "a revalidation's interim response goes before the stored answer" {
	path='/v?cc=no-cache&etag=%22v1%22&interim=103'
	raw "$path"
	[ "$(statuses)" = "103 200" ]
	eventually relay-cache get "$UP$path"
	raw "$path"
	[ "$(statuses)" = "103 200" ]
	head_of 2 | grep -q '^Cache-Status: relay; fwd=stale; fwd-status=304'
	[ "$(requests_for "$path")" -eq 2 ]
}

@test "an HTTP/1.0 client gets no interim response" {
	raw '/p?interim=103&interim=100' 1.0
	[ "$(statuses)" = 200 ]
	! grep -qai '^link\|^x-interim' out || false
}

@test "an interim response is never stored, never repeated from the cache, never the final answer" {
	path='/p?cc=max-age=600&interim=103&h=X-Final:yes'
	raw "$path"
	[ "$(statuses)" = "103 200" ]
	eventually relay-cache get "$UP$path"
	run relay-cache get -i "$UP$path"
	[ "$(head -1 <<<"$output" | tr -d '\r')" = 'HTTP/1.1 200 OK' ]
	grep -qi '^x-final: yes' <<<"$output"
	! grep -qi '^link\|^x-interim' <<<"$output" || false
	raw "$path"	# a hit: the upstream's interim response is not its
	[ "$(statuses)" = 200 ]
	grep -q '^Cache-Status: relay; hit' out
	[ "$(requests_for "$path")" -eq 1 ]
	# 101 is no interim response: asked for by no one, it is broken
	raw '/u?cc=max-age=600&interim=101'
	[ "$(statuses)" = 502 ]
	! grep -qai '^upgrade\|^x-interim' out || false
	logged 1 '"error":"101 Switching Protocols, not asked for"'
	[ "$(relay-cache ls | grep -c '/u?')" -eq 0 ]
}

@test "batch and channel items and merge calls get no interim response" {
	run curl -si --data-binary '{"requests":[{"id":1,"path":"/i?interim=103"}]}' \
	    "$SERVE/_relay/batch"
	[ "$(grep -a '^HTTP/' <<<"$output" | tr -d '\r')" = 'HTTP/1.1 200 OK' ]
	line=$(tail -1 <<<"$output")
	[ "$(jq -c '[.id, .status, .text]' <<<"$line")" = '[1,200,"/i?interim=103"]' ]
	[ "$(jq -c '.headers | [has("link"), has("x-interim")]' <<<"$line")" = '[false,false]' ]
	cat >m.routes <<EOF
route /m
	call a /a?interim=103&body=%7B%22a%22%3A1%7D
	jq \$a
end
EOF
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
	start_serve --routes m.routes
	raw /m
	[ "$(statuses)" = 200 ]
	[ "$(tail -1 out)" = '{"a":1}' ]
	/usr/bin/python3 -c 'import websockets' 2>/dev/null ||
	    skip "python3-websockets is not installed (make deps)"
	/usr/bin/python3 - "$SERVE_PORT" >ws.ndjson <<'PY'
import asyncio, json, sys, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:%s/_relay/ws" % sys.argv[1]) as ws:
        await ws.send(json.dumps({"id": "w", "path": "/w?interim=103"}))
        print(await ws.recv())
asyncio.run(main())
PY
	[ "$(jq -c '[.id, .status, (.headers | has("link"))]' ws.ndjson)" = '["w",200,false]' ]
}
