#!/usr/bin/env bats
# relay-serve against the fixture upstream: start modes, HTTP/1.1,
# relaying, caching, safety, timeouts, logs and shutdown.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	start_upstream
}

# Sends standard input to the running relay-serve, prints the answer.
raw() {
	"$ROOT/tests/fixture/rawhttp" 127.0.0.1 "$SERVE_PORT" "$@"
}

stored_size() {	# the one entry's body has this size
	[ "$(relay-cache ls | cut -f2)" = "$1" ]
}

workers_are() {
	[ "$(pgrep -c -P "$SERVE_PID")" -eq "$1" ]
}

all_gone() {	# none of these processes is alive
	local pid
	for pid in "$@"; do
		! kill -0 "$pid" 2>/dev/null || return 1
	done
}

lines_are() {	# lines_are FILE N
	[ "$(wc -l <"$1")" -eq "$2" ]
}

# The status codes of the responses in an HTTP stream.
statuses() {
	grep -ao 'HTTP/1.1 [0-9]*' | cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//'
}


@test "inetd style over plain pipes: an HTTP/1.0 request is answered" {
	run --separate-stderr relay-serve --upstream "$UP" \
	    < <(printf 'GET /a?body=hello HTTP/1.0\r\n\r\n')
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = $'HTTP/1.1 200 OK\r' ]
	[[ "$output" == *$'\r\nConnection: close\r\n'* ]]
	[[ "$output" == *$'\r\n\r\nhello' ]]
	[ "$(echo "$stderr" | jq -r .cache)" = miss ]
}

@test "pipelining: three requests in one write, three answers in order" {
	start_serve
	printf 'GET /1?body=one HTTP/1.1\r\nHost: x\r\n\r\nGET /2?body=two&delay=200 HTTP/1.1\r\nHost: x\r\n\r\nGET /3?body=three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
	    raw >out
	[ "$(statuses <out)" = "200 200 200" ]
	[ "$(grep -ao 'one\|two\|three' out | tr '\n' ' ')" = "one two three " ]
}

@test "keep-alive: curl's two requests share one connection" {
	start_serve
	curl -s "$SERVE/a?body=1" "$SERVE/b?body=2" >/dev/null
	logged 2
	[ "$(access_log | jq -r .peer | grep -c .)" -eq 2 ]
	[ "$(access_log | jq -r .peer | sort -u | wc -l)" -eq 1 ]
}

@test "HEAD has the fields of GET and no body" {
	start_serve
	run curl -s -I "$SERVE/h?body=hello"
	[[ "$output" == *$'Content-Length: 5\r'* ]]
	run curl -s -I "$SERVE/h?body=hello"
	[[ "$output" == *"Cache-Status: relay; hit"* ]]
	printf 'HEAD /h?body=hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | raw >out
	[ "$(tail -c 4 out | od -An -c | tr -d ' ')" = '\r\n\r\n' ]
}

@test "relay-serve's own error answers to HEAD have their head and no body (RFC 9110 9.3.2)" {
	start_serve
	for target in '/%zz' '/_relay/nope' '/_relay/batch' '/_relay/ws' \
	    "/$(head -c 9000 /dev/zero | tr '\0' a)"; do
		printf 'HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n' "$target" | raw >out
		head -1 out
		grep -q '^Content-Length: [1-9]' out
		# the blank line ends it: no JSON after
		[ "$(tail -c 4 out | od -An -c | tr -d ' ')" = '\r\n\r\n' ]
	done
	# refused by the server before dispatch, too (an unknown version)
	printf 'HEAD / HTTP/2.0\r\nHost: x\r\n\r\n' | raw >out
	grep -q '^HTTP/1.1 505' out
	[ "$(tail -c 4 out | od -An -c | tr -d ' ')" = '\r\n\r\n' ]
	# a GET's has its body
	printf 'GET /_relay/nope HTTP/1.1\r\nHost: x\r\n\r\n' | raw >out
	tail -1 out | jq -e '.status == 404'
}

@test "an HTTP/1.0 client gets Connection: close, or keep-alive if it asks" {
	start_serve
	printf 'GET /k?body=x HTTP/1.0\r\n\r\n' | raw --hold >out
	grep -q $'^Connection: close\r$' out
	printf 'GET /k?body=x HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /k?body=x HTTP/1.0\r\n\r\n' |
	    raw --hold >out
	[ "$(statuses <out)" = "200 200" ]
	grep -q $'^Connection: keep-alive\r$' out
}

@test "Connection: close ends the connection after the answer" {
	start_serve
	printf 'GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n' |
	    raw --hold --timeout 5 >out
	[ "$(statuses <out)" = 200 ]
}

@test "request bodies, Content-Length and chunked, are relayed" {
	start_serve
	[ "$(curl -s -d 'a=1' "$SERVE/p?echo=1")" = "POST a=1" ]
	[ "$(curl -s -H 'Transfer-Encoding: chunked' -d 'chunky' "$SERVE/p?echo=1")" = "POST chunky" ]
	[ "$(curl -s -X PUT -d 'put' "$SERVE/p?echo=1")" = "PUT put" ]
}

# upstream_saw PATH FIELD: the field the upstream got on its last
# request for PATH (with query), or "-" without it.
upstream_saw() {
	curl -s "$UP/_log" | jq -rs --arg p "$1" --arg f "$2" \
	    '[.[] | select(.path == $p)] | last | .headers |
	    with_entries(.key |= ascii_downcase) | .[$f | ascii_downcase] // "-"'
}

@test "relayed requests reach the upstream with the client's fields only, none libcurl would add" {
	start_serve --max-body 2000000
	# no Content-Type the client did not send, no Expect for a big one
	printf 'POST /nt?echo=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc' |
	    raw >out
	[ "$(statuses <out)" = 200 ]
	[ "$(upstream_saw '/nt?echo=1' content-type)" = - ]
	head -c 1500000 /dev/zero | curl -s -o /dev/null -H 'Content-Type:' \
	    -H 'Expect:' --data-binary @- --max-time 10 "$SERVE/big?echo=1"
	[ "$(upstream_saw '/big?echo=1' expect)" = - ]
	[ "$(upstream_saw '/big?echo=1' content-type)" = - ]
	[ "$(upstream_saw '/big?echo=1' content-length)" = 1500000 ]
	# the client's own Content-Type goes as it is
	curl -s -o /dev/null -H 'Content-Type: text/csv' -d 'a,b' "$SERVE/csv?echo=1"
	[ "$(upstream_saw '/csv?echo=1' content-type)" = text/csv ]
	# a DELETE without content gets no Content-Length; one of 0 keeps it
	printf 'DELETE /d1 HTTP/1.1\r\nHost: x\r\n\r\n' | raw >out
	[ "$(upstream_saw /d1 content-length)" = - ]
	printf 'DELETE /d2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n' | raw >out
	[ "$(upstream_saw /d2 content-length)" = 0 ]
	# a batch item's string body: no Content-Type it did not give
	curl -s -o /dev/null --data-binary '{"requests":[{"id":"1","method":"PUT",
	    "path":"/item","body":"x=1"}]}' "$SERVE/_relay/batch"
	[ "$(upstream_saw /item content-type)" = - ]
}

@test "answers carry Date, Via and Cache-Status; cached ones Age" {
	start_serve
	run curl -s -i "$SERVE/d?cc=max-age=60"
	[[ "$output" == *$'\r\nDate: '* ]]
	[[ "$output" == *$'\r\nVia: 1.1 relay\r'* ]]
	[[ "$output" == *$'\r\nCache-Status: relay; fwd=miss\r'* ]]
	run curl -s -i "$SERVE/d?cc=max-age=60"
	[[ "$output" == *$'\r\nAge: '* ]]
	[[ "$output" == *$'\r\nCache-Status: relay; hit; ttl='* ]]
}

@test "a fresh hit does not touch the upstream" {
	start_serve
	curl -s "$SERVE/f?cc=max-age=60" >/dev/null
	curl -s "$SERVE/f?cc=max-age=60" >/dev/null
	[ "$(requests_for '/f?cc=max-age=60')" = 1 ]
	logged 2
	[ "$(access_log | jq -r .cache | tr '\n' ' ')" = "miss hit " ]
}

@test "a stale entry is revalidated with its ETag; a 304 is a revalidated hit" {
	start_serve
	url="$SERVE/e?cc=max-age=0&etag=%22v1%22&size=100000"
	curl -s "$url" >first
	run curl -s -D head -o second "$url"
	cmp first second
	grep -q 'Cache-Status: relay; fwd=stale; fwd-status=304' head
	logged 2
	[ "$(access_log | jq -r .cache | tr '\n' ' ')" = "miss revalidated " ]
	[ "$(grep -c '^Age:' head)" -eq 1 ]
	run curl -s "$UP/_log"
	[[ "$(echo "$output" | tail -1 | jq -r '.headers["If-None-Match"]')" == '"v1"' ]]
}

@test "stale-if-error: a failed revalidation serves the stale entry" {
	start_serve --stale-if-error 1h
	curl -s "$SERVE/s?cc=max-age=0&body=old" >/dev/null
	kill "$UPSTREAM_PID"
	wait "$UPSTREAM_PID" 2>/dev/null || true
	UPSTREAM_PID=
	run curl -s -D head "$SERVE/s?cc=max-age=0&body=old"
	[ "$output" = old ]
	grep -q 'detail=stale-if-error' head
	logged 2
	[ "$(access_log | jq -r .cache | tail -1)" = stale ]
}

@test "stale-while-revalidate: answered at once, revalidated in the background" {
	start_serve
	path='/w?cc=max-age=0,stale-while-revalidate=60&etag=%22w1%22&delay=3000'
	curl -s "$SERVE$path" >/dev/null
	# The upstream takes 3 s: an answer within 2 s did not wait for it.
	curl -s -m 2 -D head -o /dev/null "$SERVE$path"
	grep -q 'Cache-Status: relay; hit; ttl=.*; detail=stale-while-revalidate' head
	for _ in $(seq 50); do
		[ "$(curl -s "$UP/_log" | tail -1 | jq -r '.headers["If-None-Match"]')" = '"w1"' ] && break
		sleep 0.1
	done
	[ "$(requests_for "$path")" = 2 ]
	[ "$(curl -s "$UP/_log" | tail -1 | jq -r '.headers["If-None-Match"]')" = '"w1"' ]
	logged 2
	[ "$(access_log | jq -r .cache | tr '\n' ' ')" = "miss stale " ]
}

@test "client conditional requests get 304 from the cache" {
	start_serve
	url="$SERVE/v?cc=max-age=60&etag=%22v7%22"
	curl -s "$url" >/dev/null
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "v7"' "$url")" = 304 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: W/"v7", "x"' "$url")" = 304 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "v8"' "$url")" = 200 ]
	lm='Sun, 06 Nov 1994 08:49:37 GMT'
	url="$SERVE/l?cc=max-age=60&lm=$(jq -rn --arg v "$lm" '$v|@uri')"
	curl -s "$url" >/dev/null
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-Modified-Since: $lm" "$url")" = 304 ]
}

@test "relay-serve, relay-fetch and relay-cache share one cache" {
	start_serve
	curl -s "$SERVE/shared?cc=max-age=60&body=s1" >/dev/null
	eventually cached_as "$UP/shared?cc=max-age=60&body=s1" s1
	relay-fetch "$UP/fetched?cc=max-age=60&body=f1" >/dev/null
	run curl -s -D head "$SERVE/fetched?cc=max-age=60&body=f1"
	[ "$output" = f1 ]
	grep -q 'Cache-Status: relay; hit' head
}

@test "a hit kept in memory follows the file: relay-cache put, rm and other workers" {
	start_serve --workers 2
	url="/mem?cc=max-age=60&body=upstream"
	curl -s "$SERVE$url" >/dev/null
	eventually cached_as "$UP$url" upstream
	# Every worker has it in memory after a few hits.
	for _ in $(seq 8); do [ "$(curl -s "$SERVE$url")" = upstream ]; done
	echo replaced | relay-cache put --ttl 1h "$UP$url"
	for _ in $(seq 8); do [ "$(curl -s "$SERVE$url")" = replaced ]; done
	relay-cache rm "$UP$url"
	for _ in $(seq 8); do [ "$(curl -s "$SERVE$url")" = upstream ]; done
	[ "$(requests_for "$url")" -eq 2 ]
}

@test "other methods invalidate the URL's entry; --read-only refuses them" {
	start_serve
	curl -s "$SERVE/i?cc=max-age=60" >/dev/null
	curl -s -X DELETE "$SERVE/i?cc=max-age=60" >/dev/null
	eventually cache_empty
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
	start_serve --read-only
	run curl -s -w ' %{http_code}' -X POST -d x "$SERVE/i?echo=1"
	[ "$output" = $'{"status":405,"error":"Method Not Allowed","detail":"only GET and HEAD are served"}\n 405' ]
}

@test "upstream down is 502, upstream too slow is 504, with JSON bodies" {
	UP=http://127.0.0.1:1 start_serve
	run curl -s -w ' %{http_code}' "$SERVE/x"
	[ "$output" = $'{"status":502,"error":"Bad Gateway","detail":"upstream failed"}\n 502' ]
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
	start_serve --max-time 1
	run curl -s -w ' %{http_code}' "$SERVE/x?delay=3000"
	[ "$output" = $'{"status":504,"error":"Gateway Timeout","detail":"upstream timed out"}\n 504' ]
	logged 1
	[[ "$(access_log | jq -r .error | tail -1)" == *"timed out"* ]]
}

@test "a truncated upstream body cuts the answer short and is not cached" {
	start_serve
	run curl -s -o body "$SERVE/t?reset=1000&size=50000"
	[ "$status" -ne 0 ]
	run curl -s -o body "$SERVE/t2?short=10&body=abc"
	[ "$status" -ne 0 ]
	[ -z "$(relay-cache ls)" ]
}

@test "a large body streams through in bounded memory and is cached" {
	start_serve
	/usr/bin/time -f %M -o rss curl -s "$SERVE/big?size=104857600&cc=max-age=60" -o big
	[ "$(stat -c %s big)" -eq 104857600 ]
	# The writer thread commits it as the last bytes go out.
	eventually stored_size 104857600
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
	/usr/bin/time -f %M -o rss relay-serve --upstream "$UP" \
	    < <(printf 'GET /big?size=104857600&cc=max-age=60 HTTP/1.0\r\n\r\n') >out 2>/dev/null
	[ "$(stat -c %s out)" -gt 104857600 ]
	[ "$(cat rss)" -lt 32768 ]	# KiB: a cached 100 MB answer
}

@test "hostile targets are refused, never relayed elsewhere" {
	start_serve
	while IFS='|' read -r target expect; do
		printf 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$target" |
		    raw >out
		got=$(statuses <out)
		[ "$got" = "$expect" ] || { echo "$target: $got, not $expect"; false; }
	done <<-'EOF'
	http://evil.example/x|400
	//evil.example/x|400
	/a/../../etc/passwd|400
	/%2e%2e/x|400
	/.%2E/x|400
	/a%2fb|400
	/a%5cb|400
	/a\b|400
	/a%00b|400
	/a%0d%0aSet-Cookie:x|400
	/a#frag|400
	*|400
	/.//evil.example/x|400
	/@evil.example/x|200
	/a/./b/../c|200
	EOF
	run curl -s "$UP/_log"
	# evil.example only as the path /@evil.example/x, which it is
	! echo "$output" | jq -r .path | grep -v '^/@evil.example/x$' |
	    grep -q evil.example || false
	echo "$output" | grep -q '"/@evil.example/x"'
	echo "$output" | grep -q '"/a/c"'
}

@test "a token or password file that is a FIFO, a directory or a device is refused at once" {
	mkfifo fifo
	mkdir dir
	local f opt
	for opt in --admin-token-file --shared-password-file; do
		for f in fifo dir /dev/zero; do
			run --separate-stderr timeout 20 relay-serve --upstream "$UP" \
			    --shared redis://127.0.0.1:1 "$opt" "$f" </dev/null
			[ "$status" -eq 78 ] || { echo "$opt $f: $status"; false; }
			[[ "$stderr" == *"'$f'"*"not a regular file"* ]] ||
			    { echo "$opt $f: $stderr"; false; }
		done
	done
}

@test "a file: upstream serves the regular files its template names, nothing else" {
	mkdir -p api/dir.json
	echo '{"ok":1}' >api/menu.json
	echo secret >api/README
	echo secret >api/README.json.bak
	mkfifo api/fifo.json
	ln -s /dev/zero api/zero.json
	UP="file://$PWD/api{path}.json" start_serve
	code() { curl -s -o body -w '%{http_code}' --max-time 10 "$SERVE$1"; }
	[ "$(code /menu)" = 200 ] && [ "$(cat body)" = '{"ok":1}' ]
	[ "$(code '/menu?x=1')" = 200 ] && [ "$(cat body)" = '{"ok":1}' ]
	# a query cannot take the place of the template's end
	local t
	for t in '/README?' '/README?x' '/README?.bak' '/README%3F'; do
		[ "$(code "$t")" = 404 ] || { echo "$t: not 404"; false; }
		! grep -q secret body || { echo "$t: served README"; false; }
	done
	# a directory, a FIFO, a device: 404, and the loop never waits on one
	for t in /dir /fifo /zero; do
		[ "$(code "$t")" = 404 ] || { echo "$t: not 404"; false; }
	done
	[ "$(code /menu)" = 200 ]
	# what is stored of them says 404, never a body
	! relay-cache ls --json | jq -r 'select(.status != 404) | .url' |
	    grep -q 'dir\|fifo\|zero\|README' || false
}

@test "malformed and oversized requests get 400, 414, 431, 501, 505" {
	start_serve
	while IFS='|' read -r request expect; do
		printf "$request" | raw >out
		got=$(statuses <out)
		[ "$got" = "$expect" ] || { echo "$request: $got, not $expect"; false; }
	done <<-'EOF'
	GET / HTTP/1.1\r\n\r\n|400
	GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n|400
	GET / HTTP/1.1\r\nHost: a b\r\n\r\n|400
	GET / HTTP/1.1\r\nHost: a, b\r\n\r\n|400
	GET / HTTP/1.1\r\nHost: user@a\r\n\r\n|400
	GET / HTTP/1.1\r\nHost: a/b\r\n\r\n|400
	POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc|400
	POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc|400
	POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd|400
	GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n|400
	GET / HTTP/1.1\r\nHost : x\r\n\r\n|400
	GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n|400
	POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n|501
	GET / HTTP/2.0\r\nHost: x\r\n\r\n|505
	EOF
	{ printf 'GET /'; head -c 9000 /dev/zero | tr '\0' a; printf ' HTTP/1.1\r\nHost: x\r\n\r\n'; } |
	    raw >out
	[ "$(statuses <out)" = 414 ]
	# a target the parser takes but whose upstream URL is over 8192
	# bytes is too long as well, never a 400 (the base adds its length)
	local len
	for len in 8100 8170 8171 8180 8192; do
		{ printf 'GET /'; head -c $((len - 1)) /dev/zero | tr '\0' a
		  printf ' HTTP/1.1\r\nHost: x\r\n\r\n'; } | raw >out
		got=$(statuses <out)
		[ "$got" = 200 ] || [ "$got" = 414 ] ||
		    { echo "$len: $got"; false; }
		[ "$len" -lt 8180 ] || [ "$got" = 414 ]
	done
	{ printf 'GET / HTTP/1.1\r\nHost: x\r\n'; for i in $(seq 101); do printf 'X-%d: y\r\n' "$i"; done; printf '\r\n'; } |
	    raw >out
	[ "$(statuses <out)" = 431 ]
	{ printf 'GET / HTTP/1.1\r\nHost: x\r\nBig: '; head -c 20000 /dev/zero | tr '\0' b; printf '\r\n\r\n'; } |
	    raw >out
	[ "$(statuses <out)" = 431 ]
}

@test "error answers never echo request bytes" {
	start_serve
	printf 'GET /<script>/%%2e%%2e/%%2e%%2e/x HTTP/1.1\r\nHost: x\r\nX-Evil: <b>\r\n\r\n' | raw >out
	[ "$(statuses <out)" = 400 ]
	! grep -aq 'script\|<b>\|X-Evil' out || false
}

@test "a client sending a byte a second gets 408 and holds no worker" {
	start_serve --workers 1 --request-timeout 1
	printf 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n' | raw --slow 0.5 --timeout 10 >slow &
	slow=$!
	sleep 0.3
	[ "$(curl -s -m 2 "$SERVE/other?body=fast")" = fast ]
	wait "$slow"
	[ "$(statuses <slow)" = 408 ]
}

@test "an idle keep-alive connection is closed after --idle-timeout" {
	start_serve --idle-timeout 1
	printf 'GET /i HTTP/1.1\r\nHost: x\r\n\r\n' | raw --hold --timeout 5 >out
	[ "$(statuses <out)" = 200 ]
}

@test "SIGTERM during a request: it finishes, then relay-serve exits 0" {
	start_serve --workers 1
	curl -s "$SERVE/term?delay=1000&body=done" >out &
	client=$!
	eventually requests_are '/term?delay=1000&body=done' 1
	kill -TERM "$SERVE_PID"
	wait "$client"
	[ "$(cat out)" = done ]
	wait "$SERVE_PID"
	SERVE_PID=
}

# exited PID: the process has ended.
exited() {
	! kill -0 "$1" 2>/dev/null
}

@test "SIGTERM: what is still in progress at --drain-timeout is cut short, and relay-serve exits 0" {
	start_serve --workers 1 --drain-timeout 1
	curl -s -o /dev/null "$SERVE/stuck?delay=60000" &
	EXTRA_PIDS+=($!)
	# a client that never reads a big answer
	python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"GET /big?size=50000000 HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(120)' "$SERVE_PORT" &
	EXTRA_PIDS+=($!)
	eventually requests_are '/stuck?delay=60000' 1
	eventually requests_are '/big?size=50000000' 1
	kill -TERM "$SERVE_PID"
	# the upstream would hold one for a minute, the client the other forever
	within 20 exited "$SERVE_PID"
	run wait "$SERVE_PID"
	SERVE_PID=
	[ "$status" -eq 0 ]
	[ "$(access_log | jq -r 'select(.target == "/stuck?delay=60000" or
	    .target == "/big?size=50000000") | .error' |
	    grep -c '^the answer was cut short')" -eq 2 ]
}

@test "socket activation, Accept=no: a listening socket, workers accept" {
	port=$(free_port)
	systemd-socket-activate -l "127.0.0.1:$port" relay-serve --upstream "$UP" --cache "$RELAY_CACHE" --workers 2 2>serve.log &
	SERVE_PID=$!
	for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
	[ "$(curl -s "http://127.0.0.1:$port/a?body=one" "http://127.0.0.1:$port/a?body=one")" = oneone ]
	logged 1 '"cache":"hit"'
	[ "$(grep -c '"cache":"hit"' serve.log)" -eq 1 ]
	[ "$(pgrep -c -P "$SERVE_PID")" -eq 2 ]	# the workers
}

@test "socket activation, Accept=yes: a connected socket on fd 3" {
	port=$(free_port)
	systemd-socket-activate -a -l "127.0.0.1:$port" relay-serve --upstream "$UP" --cache "$RELAY_CACHE" 2>serve.log &
	SERVE_PID=$!
	for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
	[ "$(curl -s "http://127.0.0.1:$port/y?body=one" "http://127.0.0.1:$port/y?body=two")" = onetwo ]
	logged 2 '"peer":"127.0.0.1:'
}

@test "socket activation, --inetd: the connection on standard input and output" {
	port=$(free_port)
	systemd-socket-activate --inetd -a -l "127.0.0.1:$port" relay-serve --upstream "$UP" --cache "$RELAY_CACHE" 2>serve.log &
	SERVE_PID=$!
	for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
	[ "$(curl -s "http://127.0.0.1:$port/z?body=one" "http://127.0.0.1:$port/z?body=two")" = onetwo ]
	logged 2 '"cache":"miss"'
}

@test "one JSON log line per request with the documented members" {
	start_serve
	curl -s "$SERVE/log?body=abc" >/dev/null
	logged 1
	run jq -c 'keys' <(access_log)
	[ "$(echo "$output" | tail -1)" = '["bytes","cache","method","ms","peer","status","target","time","upstream_ms"]' ]
	[ "$(tail -1 serve.log | jq -r '[.method, .target, .status, .bytes, .cache] | @tsv')" = "$(printf 'GET\t/log?body=abc\t200\t3\tmiss')" ]
}

@test "the seed's Python requests client reads /restaurant through it" {
	start_upstream --root "$ROOT/tests/fixture/menu"
	start_serve
	run /usr/bin/python3 - "$SERVE" <<-'EOF'
	import sys, requests
	base = sys.argv[1]
	r = requests.get(base + "/restaurant")
	r.raise_for_status()
	for rest in r.json()["restaurants"]:
	    d = requests.get(base + "/restaurant/" + rest["identifier"]).json()
	    print(rest["identifier"], d["restaurant"]["title"], len(d["restaurant"]["menu"]))
	EOF
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -ge 2 ]
	[[ "${lines[0]}" == bikupan* ]]
}

@test "load: 200 keep-alive connections on the Accept=no path, no errors" {
	port=$(free_port)
	systemd-socket-activate -l "127.0.0.1:$port" relay-serve --upstream "$UP" --cache "$RELAY_CACHE" 2>serve.log &
	SERVE_PID=$!
	for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
	run "$ROOT/tests/fixture/load" 127.0.0.1 "$port" --connections 200 --seconds 3 \
	    --path '/load?cc=max-age=60&body=ok'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *" 0 errors"* ]]
	[ "$(pgrep -c -P "$SERVE_PID")" -ge 1 ]
	! grep -q 'died' serve.log || false
	[ "$(relay-cache ls | grep /load | cut -f1,2)" = "$(printf '200\t2')" ]
	[ "$(sqlite3 "$RELAY_CACHE" 'PRAGMA integrity_check')" = ok ]
}

@test "usage errors exit 2; a bad upstream exits 78" {
	run relay-serve --bogus
	[ "$status" -eq 2 ]
	run relay-serve --workers 0
	[ "$status" -eq 2 ]
	run --separate-stderr relay-serve --upstream 'http://x/?q'
	[ "$status" -eq 78 ]
	[ "$stderr" = "relay-serve: bad upstream 'http://x/?q': it has a query or fragment" ]
}

@test "a {path} template maps requests to files; a missing one is 404" {
	mkdir -p api/restaurant
	echo '{"restaurants":[]}' >api/restaurant.json
	echo '{"restaurant":{"title":"X"}}' >api/restaurant/x.json
	UP="file://$PWD/api{path}.json" start_serve
	[ "$(curl -s "$SERVE/restaurant")" = '{"restaurants":[]}' ]
	[ "$(curl -s "$SERVE/restaurant/x")" = '{"restaurant":{"title":"X"}}' ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/restaurant/nope")" = 404 ]
	[ "$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "$SERVE/../secret")" = 400 ]
}

@test "workers end with their parent, even one killed with SIGKILL" {
	start_serve --workers 2
	eventually workers_are 2
	pids=$(pgrep -P "$SERVE_PID")
	kill -KILL "$SERVE_PID"
	eventually all_gone $pids
	SERVE_PID=
}

@test "--access-log FILE takes the log, whole lines; --access-log off drops it" {
	start_serve --access-log "$BATS_TEST_TMPDIR/access.json" --workers 2
	"$ROOT/tests/fixture/burst" 127.0.0.1 "$SERVE_PORT" '/al?cc=max-age=60' 50 >/dev/null
	eventually lines_are access.json 50
	[ "$(jq -r .target access.json | sort -u)" = "/al?cc=max-age=60" ]
	[ "$(jq -s length access.json)" -eq 50 ]
	! access_log || false
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
	start_serve --access-log off
	[ "$(curl -s "$SERVE/quiet?body=q")" = q ]
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
	SERVE_PID=
	! access_log || false
	run relay-serve --access-log /nonexistent/dir/log
	[ "$status" -eq 73 ]
	[ "$output" = "relay-serve: cannot open --access-log '/nonexistent/dir/log': No such file or directory" ]
}

@test "--listen with a port that is not one is a usage error, never another port" {
	for spec in 127.0.0.1:99999 127.0.0.1:65536 127.0.0.1: 127.0.0.1:-1 127.0.0.1:http; do
		run --separate-stderr relay-serve --listen "$spec"
		[ "$status" -eq 2 ] || { echo "$spec: $status"; false; }
		[ "$stderr" = "relay-serve: bad --listen '$spec': expected a port from 0 to 65535" ]
	done
}

@test "the access log counts the body bytes of error answers" {
	start_serve --read-only
	curl -s -o body -X POST -d x "$SERVE/x"
	logged 1
	[ "$(access_log | jq -r .bytes)" -eq "$(wc -c <body)" ]
	[ "$(wc -c <body)" -gt 0 ]
}

@test "one process per connection exits when it ends, even while another holds the write lock" {
	curl -s "$UP/h?cc=max-age=600" >/dev/null
	printf 'GET /h?cc=max-age=600 HTTP/1.0\r\n\r\n' |
	    relay-serve --upstream "$UP" >/dev/null 2>&1
	# another process takes the write lock and keeps it, for 60 s at most
	python3 -c 'import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").write("held")
time.sleep(60)' "$RELAY_CACHE" held &
	EXTRA_PIDS+=($!)
	eventually [ -s held ]
	# a hit, its count queued: answered, then gone long before the
	# 30 s a write waits for the lock
	printf 'GET /h?cc=max-age=600 HTTP/1.0\r\n\r\n' |
	    timeout 10 relay-serve --upstream "$UP" >answer 2>serve.log
	grep -q '^HTTP/1.1 200 ' answer
	grep -q '"cache":"hit"' serve.log
}

@test "the access log says what the client really got: a full disk, a client that left" {
	printf 'GET /f?body=hello HTTP/1.0\r\n\r\n' |
	    relay-serve --upstream "$UP" >/dev/full 2>serve.log || true
	[ "$(access_log | jq -r .bytes)" -eq 0 ]
	[ "$(access_log | jq -r .error)" = "the answer was cut short: No space left on device" ]
	start_serve
	# reads the head and a little, then closes: most of 8 MB never goes
	python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /big?size=8000000 HTTP/1.1\r\nHost: x\r\n\r\n")
s.recv(65536)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
s.close()' "$SERVE_PORT"
	eventually grep -q '/big' serve.log
	line=$(access_log | grep '/big')
	[ "$(jq -r .bytes <<<"$line")" -lt 8000000 ]
	[[ "$(jq -r .error <<<"$line")" == "the answer was cut short: "* ]] ||
	    { echo "$line"; false; }
	# a reset when all it was sent has gone out, the rest not come yet
	python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /stall?body=hello&short=10&stall=5000 HTTP/1.1\r\nHost: x\r\n\r\n")
got = b""
while not got.endswith(b"hello"):
    got += s.recv(65536)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
s.close()' "$SERVE_PORT"
	eventually grep -q '/stall' serve.log
	line=$(access_log | grep '/stall')
	[ "$(jq -r .bytes <<<"$line")" -eq 5 ]
	[ "$(jq -r .error <<<"$line")" = "the answer was cut short: the connection ended" ] ||
	    { echo "$line"; false; }
	run curl -s -o /dev/null "$SERVE/f?body=hello"
	logged 1 '/f?body=hello'
	[ "$(access_log | grep '/f?body=hello' | jq -r .bytes)" -eq 5 ]
}

@test "out of file descriptors, a worker answers the connections it has and takes new ones as descriptors free up" {
	# a soft limit of 64 and a hard one of 64: relay-serve cannot raise it
	: >serve.log
	( ulimit -n 64; exec relay-serve --listen 127.0.0.1:0 --upstream "$UP" --workers 1 ) 2>>serve.log &
	SERVE_PID=$!
	within 30 grep -q 'listening on' serve.log
	SERVE_PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\)$/\1/p' serve.log)
	SERVE=http://127.0.0.1:$SERVE_PORT
	# hold 80 idle connections: more than it has descriptors for
	python3 -c '
import socket, sys, time
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(80)]
open("held", "w").write("ok")
time.sleep(60)' "$SERVE_PORT" &
	EXTRA_PIDS+=($!)
	eventually [ -s held ]
	# it does not spin: a tenth of a second apart at most, not a loop
	local ticks0 ticks1
	ticks0=$(awk '{print $14 + $15}' "/proc/$SERVE_PID/stat")
	sleep 1
	ticks1=$(awk '{print $14 + $15}' "/proc/$SERVE_PID/stat")
	[ $((ticks1 - ticks0)) -lt 50 ] || { echo "busy: $((ticks1 - ticks0)) ticks in 1 s"; false; }
	# the held ones go: a new client is answered
	kill "${EXTRA_PIDS[-1]}"
	[ "$(curl -s -m 20 --retry 5 --retry-all-errors "$SERVE/after?body=yes")" = yes ]
}
