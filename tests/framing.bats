#!/usr/bin/env bats
# Upstreams that break HTTP framing (tests/fixture/broken-upstream):
# relay-serve answers 502 or cuts the answer short, relay-fetch fails
# the URL, and nothing is stored (RFC 9112 sections 6.3 and 7.1; an
# interim response with no final one, a 101 not asked for: RFC 9110
# section 15.2).

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	rm -f bport
	"$ROOT/tests/fixture/broken-upstream" bport &
	EXTRA_PIDS+=($!)
	eventually [ -s bport ]
	UP=http://127.0.0.1:$(cat bport)
}

entries() {
	sqlite3 "$RELAY_CACHE" 'SELECT count(*) FROM entries' 2>/dev/null || echo 0
}

one_entry() {
	[ "$(entries)" -eq 1 ]
}

# CASE STATUS: what the client gets. "cut" means the head went out and
# the body ends before its framing does, or a 502, so no client takes
# it whole.
CASES="cut-head:502 two-lengths:502 not-http:502
negative-length:502 text-length:502 huge-head:502 short-body:cut
bad-chunk:cut cut-chunk:cut interim-only:502 unasked-101:502
odd-coding:502 gzip-coding:502 length-chunked:502"

@test "relay-serve: a broken upstream response is 502 or cut short, never stored" {
	start_serve
	for c in $CASES; do
		name=${c%%:*} want=${c#*:}
		run curl -s -o body -w '%{http_code}' "$SERVE/$name"
		if [ "$want" = cut ]; then
			# curl: 18 partial file, 56 receive error; or a 502
			# when the fault is seen before the head goes out
			[ "$status" -eq 18 ] || [ "$status" -eq 56 ] ||
			    [ "$status-$output" = 0-502 ] ||
			    { echo "$name: curl exit $status, $output"; false; }
		else
			[ "$status" -eq 0 ]
			[ "$output" = "$want" ] || { echo "$name: $output"; false; }
			[ "$(jq -r .status body)" = "$want" ]
		fi
		[ "$(entries)" -eq 0 ] || { echo "$name was stored"; false; }
		run curl -s -o /dev/null -w '%{http_code}' "$SERVE/$name"
		[ "$(requests_for "/$name")" -eq 2 ] ||
		    { echo "$name answered from the cache"; false; }
	done
	run curl -s "$SERVE/good"
	[ "$output" = fine ]
	eventually one_entry
}

@test "relay-serve: differing Content-Length values cannot desync a keep-alive client" {
	start_serve
	printf 'GET /two-lengths HTTP/1.1\r\nHost: x\r\n\r\nGET /good HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
	    "$ROOT/tests/fixture/rawhttp" 127.0.0.1 "$SERVE_PORT" >out
	[ "$(grep -ac '^HTTP/1.1 ' out)" -eq 1 ]
	grep -aq '^HTTP/1.1 502 ' out
	! grep -aq 'abcdefg\|fg' out || false
	logged 1
	[ "$(access_log | jq -r .error | head -1)" = "invalid or differing Content-Length values" ]
}

@test "relay-serve: a body longer than its Content-Length is cut there; the rest reaches no one" {
	start_serve
	run curl -s "$SERVE/long-body"
	[ "$output" = abc ]
	run curl -s "$SERVE/long-body"
	[ "$output" = abc ]
	[ "$(requests_for /long-body)" -eq 1 ]
	run curl -s "$SERVE/good"
	[ "$output" = fine ]
	run relay-fetch --no-cache "$UP/long-body" "$UP/other"
	[ "$output" = abcfine ]
}

@test "relay-serve: a length beside chunked cannot split one answer into two on a keep-alive connection" {
	start_serve
	printf 'GET /length-chunked HTTP/1.1\r\nHost: x\r\n\r\nGET /good HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
	    "$ROOT/tests/fixture/rawhttp" 127.0.0.1 "$SERVE_PORT" >out
	grep -aq '^HTTP/1.1 502 ' out
	! grep -aq 'injected' out || false
	[ "$(access_log | jq -r .error | head -1)" = "both Content-Length and Transfer-Encoding" ]
}

@test "relay-fetch: a broken upstream response fails its URL and is not cached" {
	for c in $CASES; do
		name=${c%%:*}
		run --separate-stderr relay-fetch "$UP/$name"
		[ "$status" -ne 0 ] || { echo "$name: exit 0"; false; }
		[[ "$stderr" == "relay-fetch: $UP/$name: "* ]]
		[ "$(entries)" -eq 0 ] || { echo "$name was stored"; false; }
	done
	run --separate-stderr relay-fetch "$UP/two-lengths"
	[ "$stderr" = "relay-fetch: $UP/two-lengths: invalid or differing Content-Length values" ]
	run --separate-stderr relay-fetch "$UP/cut-head"
	[ "$stderr" = "relay-fetch: $UP/cut-head: response head cut short" ]
	run --separate-stderr relay-fetch "$UP/interim-only"
	[ "$stderr" = "relay-fetch: $UP/interim-only: no final response after an interim one" ]
	run --separate-stderr relay-fetch "$UP/unasked-101"
	[ "$stderr" = "relay-fetch: $UP/unasked-101: 101 Switching Protocols, not asked for" ]
	run relay-fetch "$UP/good"
	[ "$output" = fine ]
}

@test "relay-serve: a batch or channel item whose body breaks gets an error, never a whole 200" {
	/usr/bin/python3 -c 'import websockets' 2>/dev/null ||
	    skip "python3-websockets is not installed (make deps)"
	start_serve
	local cut="short-body bad-chunk cut-chunk" items= name
	for name in $cut; do
		items="$items{\"id\":\"$name\",\"path\":\"/$name\"},"
	done
	curl -s --data-binary "{\"requests\":[${items%,}]}" \
	    "$SERVE/_relay/batch" >batch.ndjson
	/usr/bin/python3 - "$SERVE_PORT" $cut >ws.ndjson <<'PY'
import asyncio, json, sys, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:%s/_relay/ws" % sys.argv[1]) as ws:
        for name in sys.argv[2:]:
            await ws.send(json.dumps({"id": name, "path": "/" + name}))
        for _ in sys.argv[2:]:
            print(await ws.recv())
asyncio.run(main())
PY
	for out in batch.ndjson ws.ndjson; do
		[ "$(wc -l <"$out")" -eq 3 ]
		# a 502 when seen before the head, else the head's status
		# with why and no body; never a body taken as whole
		jq -e 'select(.status == 502 or (.error | test("cut short")))' \
		    "$out" >/dev/null
		[ "$(jq -c 'select(.status != 502 and
		    (has("text") or has("json") or has("base64")))' "$out")" = "" ]
		[ "$(jq -c 'select(.status != 502 and
		    (.error | test("cut short") | not))' "$out")" = "" ]
	done
	# no answer claims a store that cannot be known when its head goes out
	! curl -s -D - -o /dev/null "$SERVE/short-body" | grep -qi '^cache-status:.*stored' || false
	[ "$(entries)" -eq 0 ]
}
