#!/usr/bin/env bats
# relay-fetch against the fixture upstream: caching, revalidation,
# concurrency and order, failures and their exit statuses.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	start_upstream
}

@test "a body goes to stdout and into the cache" {
	run --separate-stderr relay-fetch "$UP/a?body=hello&cc=max-age=60"
	[ "$status" -eq 0 ]
	[ "$output" = hello ]
	[ "$(relay-cache get "$UP/a?body=hello&cc=max-age=60")" = hello ]
}

@test "a fresh hit makes no request" {
	relay-fetch "$UP/a?cc=max-age=60" >/dev/null
	run relay-fetch "$UP/a?cc=max-age=60"
	[ "$output" = "/a?cc=max-age=60" ]
	[ "$(requests_for '/a?cc=max-age=60')" = 1 ]
}

@test "a stale entry with an ETag is revalidated; a 304 transfers no body" {
	url="$UP/e?cc=max-age=0&etag=%22v1%22&size=100000"
	relay-fetch "$url" >first
	run relay-fetch --records "$url"
	[ "$(requests_for '/e?cc=max-age=0&etag=%22v1%22&size=100000')" = 2 ]
	echo "$output" | jq -e '.source == "revalidated" and .status == 200 and .size == 100000'
	curl -s "$UP/_log" | tail -1 | jq -e '.headers["If-None-Match"] == "\"v1\""'
	relay-fetch "$url" | cmp - first
}

@test "Last-Modified revalidates with If-Modified-Since" {
	url="$UP/m?cc=no-cache&lm=Sun,%2006%20Nov%201994%2008:49:37%20GMT"
	relay-fetch "$url" >/dev/null
	run relay-fetch --records "$url"
	echo "$output" | jq -e '.source == "revalidated"'
	curl -s "$UP/_log" | tail -1 | jq -e '.headers["If-Modified-Since"] == "Sun, 06 Nov 1994 08:49:37 GMT"'
}

@test "--no-cache revalidates a fresh entry" {
	relay-fetch "$UP/n?cc=max-age=600&etag=x" >/dev/null
	run relay-fetch --records --no-cache "$UP/n?cc=max-age=600&etag=x"
	echo "$output" | jq -e '.source == "revalidated"'
	[ "$(requests_for '/n?cc=max-age=600&etag=x')" = 2 ]
}

@test "Vary: each variant is cached apart, Vary: * not at all" {
	url="$UP/v?cc=max-age=60&h=Vary:Accept"
	relay-fetch -H 'Accept: text/a' "$url" >/dev/null
	relay-fetch -H 'Accept: text/b' "$url" >/dev/null
	relay-fetch -H 'Accept: text/a' "$url" >/dev/null
	relay-fetch -H 'Accept: text/b' "$url" >/dev/null
	[ "$(requests_for '/v?cc=max-age=60&h=Vary:Accept')" = 2 ]
	[ "$(sqlite3 "$RELAY_CACHE" "SELECT replace(variant, char(10), ';') FROM entries ORDER BY variant" | tr '\n' ,)" = "accept=text/a;,accept=text/b;," ]
	relay-fetch "$UP/star?cc=max-age=60&h=Vary:*" >/dev/null
	[ "$(relay-cache ls | wc -l)" -eq 2 ]
}

@test "answers from the cache count as hits" {
	for i in 1 2 3; do relay-fetch "$UP/hit?cc=max-age=60" >/dev/null; done
	relay-cache stats --json | jq -e '.hits == 2'
}

@test "--no-store fetches without caching" {
	relay-fetch --no-store "$UP/ns" >/dev/null
	[ -z "$(relay-cache ls)" ]
}

@test "no-store and private responses are not cached" {
	relay-fetch "$UP/p?cc=private" "$UP/q?cc=no-store" >/dev/null
	[ -z "$(relay-cache ls)" ]
}

@test "--offline answers from the cache; a miss is an error" {
	relay-fetch "$UP/o?cc=max-age=0" >/dev/null
	run --separate-stderr relay-fetch --offline "$UP/o?cc=max-age=0" "$UP/missing"
	[ "$status" -eq 1 ]
	[ "$output" = "/o?cc=max-age=0" ]
	[ "$stderr" = "relay-fetch: $UP/missing: '$UP/missing' is not in the cache" ]
}

@test "--upstream resolves paths" {
	run relay-fetch --upstream "$UP/api/" "/restaurant?body=menu"
	[ "$output" = menu ]
	RELAY_UPSTREAM=$UP/api run relay-fetch "/version?body=1"
	[ "$output" = 1 ]
}

@test "output keeps input order whatever order transfers finish in" {
	printf '%s\n' "$UP/1?delay=400&body=one" "$UP/2?body=two" \
	    "$UP/3?delay=200&body=three" >urls
	run relay-fetch -j 3 <urls
	[ "$output" = onetwothree ]
}

@test "a large body waiting its turn is kept whole (memory, then file)" {
	run relay-fetch -j 2 "$UP/first?delay=500&body=a" "$UP/big?size=300000"
	[ "${#output}" -eq 300001 ]
	[ "${output:0:2}" = ax ]
	run relay-fetch --records -j 2 --no-store "$UP/first2?delay=500&body=a" "$UP/big2?size=300000"
	[ "$(echo "${lines[1]}" | jq -r '.text | length')" -eq 300000 ]
}

@test "a slow producer on stdin does not stall transfers in progress" {
	{ echo "$UP/one?body=1"; sleep 2; echo "$UP/two?body=2"; } |
	    relay-fetch --unordered --records >out &
	pid=$!
	sleep 1
	# the first URL was fetched and written while input was pending
	[ "$(jq -r .text out)" = 1 ]
	wait "$pid"
	[ "$(jq -r .text out | tr -d '\n')" = 12 ]
}

@test "an over-long line is reported and skipped" {
	{ echo "$UP/a?body=x"; printf 'http://x/%09000d\n' 0; echo "$UP/b?body=y"; } >urls
	run --separate-stderr relay-fetch <urls
	[ "$status" -eq 1 ]
	[ "$output" = xy ]
	[ "$stderr" = "relay-fetch: line 2: URL longer than 8192 bytes" ]
}

@test "a NUL byte in an input line refuses that line, naming it; the rest is fetched" {
	{
		printf '%s\n' "$UP/a?body=x"
		printf '%s\0%s\n' "$UP/b?body=y" "/evil"
		printf '\0\n'
		printf '%s\n' "$UP/c?body=z"
		printf '%s\0' "$UP/d?body=w"	# the last line, unended
	} >urls
	run --separate-stderr relay-fetch <urls
	[ "$status" -eq 1 ]
	[ "$output" = xz ]
	[ "$stderr" = "relay-fetch: line 2: a NUL byte in the URL
relay-fetch: line 3: a NUL byte in the URL
relay-fetch: line 5: a NUL byte in the URL" ]
	[ "$(requests_for '/b?body=y')" = 0 ]
	[ "$(requests_for '/d?body=w')" = 0 ]
	printf '%s\0\n' "$UP/b?body=y" >urls
	run --separate-stderr relay-fetch <urls
	[ "$status" -eq 69 ]
}

@test "a header line longer than libcurl takes is reported as such, not as 'Out of memory'" {
	"$ROOT/tests/fixture/broken-upstream" bport &
	EXTRA_PIDS+=($!)
	eventually [ -s bport ]
	broken=http://127.0.0.1:$(cat bport)
	run --separate-stderr relay-fetch --retry 0 "$broken/long-line"
	[ "$status" -eq 69 ]
	[ "$stderr" = "relay-fetch: $broken/long-line: response header line longer than 100 KiB" ]
	[ -z "$(relay-cache ls)" ]
	# relay-serve takes the reason from the same place
	UP=$broken start_serve
	run curl -s -o /dev/null -w '%{http_code}' "$SERVE/long-line"
	[ "$output" = 502 ]
	logged 1
	[ "$(access_log | jq -r .error)" = "response header line longer than 100 KiB" ]
}

# Whether the cache holds an entry for URL (another process's view).
stored() {
	relay-cache get "$1" >/dev/null 2>&1
}

@test "an entry this run's own --max-size evicts before its turn is fetched again; the rest is written" {
	hit="$UP/b?cc=max-age=600&size=100000"
	big="$UP/m?cc=max-age=600&size=150000"
	limits="--max-size 300K --max-object-size 200K"
	relay-fetch $limits "$hit" >/dev/null
	# the held first URL keeps the hit waiting for its turn while the
	# big one is stored, which evicts it
	relay-fetch $limits -j 4 "$UP/h?hold=1&body=h" "$hit" "$big" \
	    "$UP/e?body=e" >out 2>err &
	pid=$!
	eventually stored "$big"
	! stored "$hit" || false
	curl -s "$UP/_release" >/dev/null
	wait "$pid"
	[ ! -s err ]
	[ "$(head -c 1 out)" = h ]
	[ "$(wc -c <out)" -eq $((1 + 100000 + 150000 + 1)) ]
	[ "$(tail -c 1 out)" = e ]
	[ "$(requests_for '/b?cc=max-age=600&size=100000')" = 2 ]
}

held_arrived() {
	[ "$(requests_for '/h?hold=1&body=h')" -ge 1 ]
}

# run_while_changed MODE...: relay-fetch MODE writes three hits after a
# held URL; meanwhile relay-cache removes the first (rm), replaces the
# second (put) and purges the third. Its status, stdout and stderr are
# kept; a fresh upstream each time, for a fresh hold and counts.
run_while_changed() {
	local pid
	start_upstream
	for n in one two three; do
		relay-fetch "$UP/$n?cc=max-age=600&body=$n" >/dev/null
	done
	relay-fetch -j 8 "$@" "$UP/h?hold=1&body=h" "$UP/one?cc=max-age=600&body=one" \
	    "$UP/two?cc=max-age=600&body=two" \
	    "$UP/three?cc=max-age=600&body=three" >out 2>err &
	pid=$!
	# the hits were looked up before the held request went out
	eventually held_arrived
	relay-cache rm "$UP/one?cc=max-age=600&body=one"
	printf new | relay-cache put --ttl 600 "$UP/two?cc=max-age=600&body=two"
	relay-cache purge --match "$UP/three?*"
	curl -s "$UP/_release" >/dev/null
	status=0
	wait "$pid" || status=$?
	# the removed and purged URLs were fetched again; the new entry
	# answered the replaced one
	[ "$(requests_for '/one?cc=max-age=600&body=one')" = 2 ]
	[ "$(requests_for '/two?cc=max-age=600&body=two')" = 1 ]
	[ "$(requests_for '/three?cc=max-age=600&body=three')" = 2 ]
}

@test "an entry that relay-cache rm, put or purge changes before its turn: that URL is looked up again, the rest is written" {
	run_while_changed
	[ "$status" -eq 0 ]
	[ ! -s err ]
	[ "$(cat out)" = honenewthree ]
	run_while_changed -i
	[ "$status" -eq 0 ]
	[ "$(grep -o 'HTTP/1.1 200 OK' out | wc -l)" -eq 4 ]
	tr -d '\r' <out | grep -qx 'newHTTP/1.1 200 OK'
	[ "$(tail -c 5 out)" = three ]
	run_while_changed --records
	[ "$status" -eq 0 ]
	[ "$(jq -r .text out | tr -d '\n')" = honenewthree ]
	[ "$(jq -r .source out | tr '\n' ' ')" = "miss miss hit miss " ]
	mkdir files
	run_while_changed -o 'files/%n'
	[ "$status" -eq 0 ]
	[ "$(cat files/1 files/2 files/3 files/4)" = honenewthree ]
	[ -z "$(find files -name '*.part')" ]
}

@test "--unordered writes each as it finishes" {
	run relay-fetch -j 2 --unordered --records "$UP/1?delay=500&body=one" "$UP/2?body=two"
	[ "$(echo "$output" | jq -r .text | tr -d '\n')" = twoone ]
}

@test "-j N runs N transfers at once, and no more" {
	for i in $(seq 12); do echo "$UP/$i?delay=300"; done >urls
	relay-fetch -j 4 <urls >/dev/null
	[ "$(curl -s "$UP/_max")" -eq 4 ]
}

@test "connections are reused: 20 URLs at -j 2 take at most 2 connections" {
	for i in $(seq 20); do echo "$UP/$i"; done | relay-fetch -j 2 >/dev/null
	[ "$(curl -s "$UP/_connections")" -le 2 ]
}

@test "an invalid URL line is reported with its number; the rest is fetched" {
	printf '%s\n' "$UP/a?body=x" "not a url" "$UP/b?body=y" >urls
	run --separate-stderr relay-fetch <urls
	[ "$status" -eq 1 ]
	[ "$output" = xy ]
	[ "$stderr" = "relay-fetch: line 2: invalid URL 'not a url': Bad scheme" ]
}

@test "a reset mid-body is reported and never cached" {
	run --separate-stderr relay-fetch --retry 0 "$UP/r?reset=1000&size=50000"
	[ "$status" -eq 69 ]
	[ "$stderr" = "relay-fetch: $UP/r?reset=1000&size=50000: Recv failure: Connection reset by peer" ]
	[ -z "$(relay-cache ls)" ]
}

@test "a wrong Content-Length is reported and never cached" {
	run --separate-stderr relay-fetch --retry 0 "$UP/s?short=10&body=abc"
	[ "$status" -eq 69 ]
	[ "$stderr" = "relay-fetch: $UP/s?short=10&body=abc: transfer closed with 10 bytes remaining to read" ]
	[ -z "$(relay-cache ls)" ]
}

@test "unreachable host and DNS failure: clear messages, exit 69 when all fail" {
	run --separate-stderr relay-fetch --retry 0 http://127.0.0.1:1/x
	[ "$status" -eq 69 ]
	[[ "$stderr" == "relay-fetch: http://127.0.0.1:1/x: Failed to connect to 127.0.0.1 port 1 "*"Couldn't connect to server" ]]
	run --separate-stderr relay-fetch --retry 0 http://host.invalid/x
	[ "$status" -eq 69 ]
	[ "$stderr" = "relay-fetch: http://host.invalid/x: Could not resolve host: host.invalid" ]
}

@test "a TLS error is reported with the library's reason" {
	https=${UP/http:/https:}
	run --separate-stderr relay-fetch --retry 0 "$https/x"
	[ "$status" -eq 69 ]
	[[ "$stderr" == "relay-fetch: $https/x: "*"SSL routines::wrong version number" ]]
}

@test "HTTPS over HTTP/2: 20 URLs at -j 8 multiplexed on one connection" {
	start_tls_upstream
	for i in $(seq 20); do echo "$TLS_UP/$i"; done >urls
	run relay-fetch --cacert cert.pem -j 8 <urls
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 20 | sed 's|^|/|')" ]
	[ "$(cut -d' ' -f2 access.log | sort -u)" = HTTP/2.0 ]
	[ "$(cut -d' ' -f1 access.log | sort -u | wc -l)" -eq 1 ]
}

@test "an untrusted certificate is a TLS error; --cacert trusts it" {
	start_tls_upstream
	run --separate-stderr relay-fetch --retry 0 "$TLS_UP/x"
	[ "$status" -eq 69 ]
	[ "$stderr" = "relay-fetch: $TLS_UP/x: SSL certificate problem: self-signed certificate" ]
	run --separate-stderr relay-fetch --cacert missing.pem "$TLS_UP/x"
	[ "$status" -eq 66 ]
	[ "$stderr" = "relay-fetch: cannot read --cacert 'missing.pem': No such file or directory" ]
}

@test "partial failure exits 1, total failure 69" {
	run relay-fetch "$UP/ok" "$UP/nf?status=404"
	[ "$status" -eq 1 ]
	run --separate-stderr relay-fetch "$UP/nf?status=404"
	[ "$status" -eq 69 ]
	[ "$stderr" = "relay-fetch: $UP/nf?status=404: HTTP 404 Not Found" ]
}

@test "503 is retried, honouring Retry-After" {
	run relay-fetch --retry 2 "$UP/busy?status=503&retry_after=0"
	[ "$status" -eq 69 ]
	[ "$(requests_for '/busy?status=503&retry_after=0')" = 3 ]
}

@test "a failed revalidation keeps the entry; --stale-if-error serves it" {
	url="$UP/down?status=500"
	printf 'good' | relay-cache put -H 'ETag: "old"' --ttl 0 "$url"
	run --separate-stderr relay-fetch "$url"
	[ "$status" -eq 69 ]
	[ "$stderr" = "relay-fetch: $url: HTTP 500 Internal Server Error" ]
	[ "$(relay-cache get "$url")" = good ]
	run --separate-stderr relay-fetch --stale-if-error 1h "$url"
	[ "$status" -eq 0 ]
	[ "$output" = good ]
	[[ "$stderr" == "relay-fetch: $url: HTTP 500 Internal Server Error; serving the cached response, "*" s old" ]]
}

@test "stale-if-error from the origin is honoured" {
	url="$UP/down2?status=503"
	printf 'good' | relay-cache put -H 'Cache-Control: max-age=0, stale-if-error=600' "$url"
	run --separate-stderr relay-fetch --retry 0 "$url"
	[ "$status" -eq 0 ]
	[ "$output" = good ]
}

# stands_in URL OPTIONS...: relay-fetch OPTIONS URL, whose transfer
# fails, writes what --offline writes from the stored response, byte
# for byte, in every output mode (on its own, a body goes straight out;
# --unordered holds it), and exits 0; its record says "stale".
stands_in() {
	local url=$1 mode
	shift
	for mode in "" -i --unordered "-o body" "-i -o body"; do
		rm -f body want
		relay-fetch --offline $mode "$url" >want.out
		[ ! -e body ] || mv body want
		run --separate-stderr relay-fetch "$@" $mode "$url"
		[ "$status" -eq 0 ] || { echo "$mode: exit $status"; false; }
		[[ "$stderr" == *"serving the cached response"* ]]
		if [ -e want ]; then
			cmp body want || { echo "$mode: $(cat body)"; false; }
			[ -z "$(find . -name '*.part')" ]
		else
			[ "$output" = "$(cat want.out)" ] ||
			    { echo "$mode: $output"; false; }
		fi
	done
	[ "$(relay-fetch --offline "$url")" = STALE ]
	relay-fetch --offline --records "$url" | jq -c 'del(.age, .ttl)' >want
	run --separate-stderr relay-fetch "$@" --records "$url"
	[ "$status" -eq 0 ]
	[ "$(jq -c 'del(.age, .ttl)' <<<"$output")" = "$(cat want)" ]
	jq -e '.source == "stale" and .text == "STALE" and .size == 5 and
	    (has("effective_url") | not)' <<<"$output"
}

@test "a transfer --stale-if-error answers writes the stored response, never the bytes it received" {
	# cut short after some bytes, reset after some or none: each
	# output mode, streamed or held, with and without a retry
	for q in "short=5&body=NEWNEW" "reset=3&body=NEWNEW" \
	    "reset=0&body=NEWNEW"; do
		url="$UP/cut?$q"
		printf STALE | relay-cache put --ttl 0 "$url"
		stands_in "$url" --stale-if-error 1h --retry 0
	done
	url="$UP/cut?reset=0&body=AGAIN"
	printf STALE | relay-cache put --ttl 0 "$url"
	stands_in "$url" --stale-if-error 1h --retry 1
	# the origin's own stale-if-error, with a validator
	url="$UP/cut?short=5&body=NEWNEW&etag=%22v2%22"
	printf STALE | relay-cache put -H 'ETag: "v1"' \
	    -H 'Cache-Control: max-age=0, stale-if-error=600' "$url"
	stands_in "$url" --retry 0
	# a 5xx at the end of redirects: the record is the URL's own
	url="$UP/r?status=302&h=Location:/gone%3Fstatus%3D500"
	printf STALE | relay-cache put --ttl 0 "$url"
	stands_in "$url" -L --stale-if-error 1h --retry 0
	# every way the broken upstream's framing fails
	"$ROOT/tests/fixture/broken-upstream" bport &
	EXTRA_PIDS+=($!)
	eventually [ -s bport ]
	UP=http://127.0.0.1:$(cat bport)
	for c in short-body cut-chunk bad-chunk two-lengths cut-head not-http; do
		printf STALE | relay-cache put --ttl 0 "$UP/$c"
		stands_in "$UP/$c" --stale-if-error 1h --retry 0
	done
	# nothing the failed transfers received was stored
	for c in short-body cut-chunk bad-chunk two-lengths cut-head not-http; do
		[ "$(relay-cache get "$UP/$c")" = STALE ]
	done
}

@test "a transfer cut short with no stored response to serve fails its URL in every output mode" {
	url="$UP/cut?short=5&body=NEWNEW"
	printf STALE | relay-cache put --ttl 0 "$url"
	for u in "$url" "$UP/cut?reset=3&body=NEWNEW"; do
		for mode in "" -i --unordered; do
			run --separate-stderr relay-fetch --retry 0 $mode "$UP/first?body=1" "$u"
			[ "$status" -eq 1 ]
			[[ "$stderr" == "relay-fetch: $u: "* ]]
			[[ "$stderr" != *serving* && "$stderr" != *$'\n'* ]]
		done
		# held back until it was over: none of it goes out
		[ "$output" = 1 ]
		run --separate-stderr relay-fetch --retry 0 -o 'f%n' "$UP/first?body=1" "$u"
		[ "$status" -eq 1 ]
		[ "$(cat f1)" = 1 ]
		[ "$(ls | grep '^f')" = f1 ]
		run --separate-stderr relay-fetch --retry 1 --records "$u"
		[ "$status" -eq 69 ]
		jq -e '.error and (has("text") or has("json") or has("base64") | not)' <<<"$output"
	done
	# a body that went straight out when it failed: the bytes stay, but
	# the URL fails and says so
	run --separate-stderr relay-fetch --retry 0 "$url" "$UP/after?body=2"
	[ "$status" -eq 1 ]
	[ "$output" = NEWNEW2 ]
	[ "$stderr" = "relay-fetch: $url: transfer closed with 5 bytes remaining to read" ]
	[ "$(relay-cache get "$url")" = STALE ]
}

@test "a transfer retried after its head drops what it received: valgrind finds no leak" {
	skip_unless_valgrind relay-fetch
	url="$UP/c?reset=0"
	printf STALE | relay-cache put --ttl 0 "$UP/s?reset=0"
	for args in "--records $url" "-o f%n $url" "--unordered $url" \
	    "--stale-if-error 1h -o f%n $UP/s?reset=0"; do
		# shellcheck disable=SC2086
		valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
		    --error-exitcode=99 relay-fetch --retry 1 $args >/dev/null 2>vg.log ||
		    [ $? -ne 99 ] || { cat vg.log; false; }
	done
	[ "$(requests_for "/c?reset=0")" -eq 6 ]
	[ "$(cat f1)" = STALE ]
}

@test "--records writes one record per URL, errors included" {
	run --separate-stderr relay-fetch --records --retry 0 "$UP/j?body=%7B%22a%22:%201%7D&cc=max-age=5" http://127.0.0.1:1/x
	[ "$status" -eq 1 ]
	echo "${lines[0]}" | jq -e '.json == {"a":1} and .source == "miss" and .ttl == 5'
	echo "${lines[1]}" | jq -e '.url == "http://127.0.0.1:1/x" and (.error | test("connect"))'
}

@test "a large body streams through bounded memory and caches whole" {
	/usr/bin/time -f %M -o rss relay-fetch "$UP/big?size=60000000" | wc -c >size
	[ "$(cat size)" -eq 60000000 ]
	[ "$(relay-cache get "$UP/big?size=60000000" | wc -c)" -eq 60000000 ]
	# AddressSanitizer's shadow memory makes RSS meaningless
	ldd "$ROOT/bin/relay-fetch" | grep -q libasan || [ "$(cat rss)" -lt 32768 ]
}

@test "a full disk: every body still goes out, each response lost is named" {
	relay-fetch "$UP/keep?cc=max-age=60&size=1000" >/dev/null
	limit=$(( $(stat -c %s "$RELAY_CACHE") / 1024 + 64 ))
	small="$UP/small?cc=max-age=60&size=100"
	big="$UP/big?cc=max-age=60&size=3000000"
	# the big body first goes straight out, not to a spool file
	run --separate-stderr bash -c "ulimit -f $limit; relay-fetch '$big' '$small' | wc -c"
	[ "$status" -eq 0 ]
	[ "$output" -eq 3000100 ]
	[[ "$stderr" = *"relay-fetch: $big: not cached: cannot write to cache '$RELAY_CACHE': File too large"* ]]
	[ "$(sqlite3 "$RELAY_CACHE" 'PRAGMA integrity_check')" = ok ]
	[ "$(relay-cache get "$UP/keep?cc=max-age=60&size=1000" | wc -c)" -eq 1000 ]
	[ "$(relay-cache get "$small" | wc -c)" -eq 100 ]
	run relay-cache get "$big"
	[ "$status" -eq 1 ]
}

@test "-i writes the response head" {
	run relay-fetch -i "$UP/h?body=x&h=X-Test:1"
	[ "${lines[0]}" = $'HTTP/1.1 200 OK\r' ]
	[[ "$output" == *$'X-Test: 1\r'* ]]
}

@test "-i -o writes the response head into each file, fetched or cached" {
	url="$UP/h?body=x&h=X-Test:1&cc=max-age=60"
	relay-fetch -i -o fetched "$url"
	relay-fetch -i -o cached "$url"
	for f in fetched cached; do
		[ "$(head -1 $f)" = $'HTTP/1.1 200 OK\r' ]
		grep -q $'^X-Test: 1\r$' $f
		[ "$(tail -c 3 $f)" = $'\r\nx' ]
	done
}

@test "-o writes each body to a file named from the template" {
	mkdir out
	relay-fetch -o 'out/%n-%f.txt' "$UP/menu/today?body=a" "$UP/?body=b" \
	    "$UP/x/..%2F?body=c"
	[ "$(cat out/1-today.txt)" = a ]
	[ "$(cat out/2-index.txt)" = b ]
	[ "$(ls out | wc -l)" -eq 3 ]
	[ -z "$(find out -name '*.part')" ]
	# the same again, now answered from the cache
	rm out/*
	relay-fetch -o 'out/%n-%f.txt' "$UP/menu/today?body=a"
	[ "$(cat out/1-today.txt)" = a ]
}

@test "--records with -o is a usage error" {
	run --separate-stderr relay-fetch --records -o 'f%n' "$UP/a"
	[ "$status" -eq 2 ]
	[ "$stderr" = "relay-fetch: --records and -o cannot be used together" ]
	[ ! -e f1 ] && [ ! -e f1.part ]
	[ "$(requests_for /a)" = 0 ]
}

@test "-o to a device or a FIFO (/dev/null) writes into it, never replaces it" {
	relay-fetch -o /dev/null "$UP/dn"
	[ -c /dev/null ]
	mkfifo body.fifo
	cat body.fifo >got &
	relay-fetch -o body.fifo "$UP/fifo"
	wait $!
	[ -p body.fifo ]
	[ "$(cat got)" = /fifo ]
	[ ! -e body.fifo.part ]
	# a failed URL leaves it as it was, too
	run relay-fetch -o /dev/null "$UP/x?status=500"
	[ "$status" -ne 0 ]
	[ -c /dev/null ]
}

@test "-o leaves no file for a failed URL" {
	mkdir out
	run relay-fetch --retry 0 -o 'out/%n' "$UP/nf?status=404" http://127.0.0.1:1/
	[ "$status" -eq 69 ]
	[ -z "$(ls out)" ]
}

@test "progress shows on a terminal only" {
	script -qec "relay-fetch '$UP/a?body=x' '$UP/b?delay=300' >body" typescript >/dev/null
	grep -q 'relay-fetch: [0-9]*/2 done, 0 failed' typescript
	run --separate-stderr relay-fetch "$UP/c?delay=300"
	[ "$stderr" = "" ]
}

@test "a run over in its first round shows no progress line, which would only race the next program's output on the terminal" {
	relay-fetch "$UP/a?cc=max-age=600" >/dev/null
	script -qec "relay-fetch --records '$UP/a?cc=max-age=600' | jq -r .source" typescript >/dev/null
	grep -q hit typescript
	! grep -q 'relay-fetch: [0-9]*/1 done' typescript
}

@test "--max-time abandons a slow transfer" {
	run --separate-stderr relay-fetch --retry 0 --max-time 1 "$UP/slow?delay=3000"
	[ "$status" -eq 69 ]
	[[ "$stderr" == "relay-fetch: $UP/slow?delay=3000: Operation timed out after "*" milliseconds with 0 bytes received" ]]
}

@test "usage errors exit 2" {
	run relay-fetch -j 0 x
	[ "$status" -eq 2 ]
	run relay-fetch --bogus
	[ "$status" -eq 2 ]
}

@test "--upstream with {path} maps paths to files; a missing file is 404" {
	mkdir -p api/restaurant
	echo '{"restaurant":{"title":"X"}}' >api/restaurant/x.json
	run relay-fetch --upstream "file://$PWD/api{path}.json" /restaurant/x
	[ "$output" = '{"restaurant":{"title":"X"}}' ]
	run --separate-stderr relay-fetch --upstream "file://$PWD/api{path}.json" /restaurant/y
	[ "$status" -eq 69 ]
	[ "$stderr" = "relay-fetch: file://$PWD/api/restaurant/y.json: HTTP 404 Not Found" ]
}

@test "processes that create a new cache at once all open it (no SQLITE_BUSY at open)" {
	start_upstream
	for round in 1 2 3; do
		rm -rf "$RELAY_CACHE"*
		for i in 1 2 3 4 5 6 7 8; do
			relay-fetch "$UP/open$i?cc=max-age=60" >/dev/null 2>"err$i" &
			EXTRA_PIDS+=($!)
		done
		for pid in "${EXTRA_PIDS[@]}"; do
			wait "$pid" || { cat err*; false; }
		done
		EXTRA_PIDS=()
	done
}

@test "-o: a write that fails (a file size limit) fails its URL, says why, leaves no part" {
	mkdir out
	run --separate-stderr bash -c 'ulimit -f 200; relay-fetch --no-store -o "out/%n.bin" "$1/a?size=1000000" "$1/b?size=10"' _ "$UP"
	[ "$status" -eq 1 ]
	[ "$stderr" = "relay-fetch: $UP/a?size=1000000: cannot write 'out/1.bin.part': File too large" ]
	[ "$(ls out)" = 2.bin ]
}

@test "-o: a failed rename or create fails its URL and leaves no part" {
	mkdir -p taken/1
	run --separate-stderr relay-fetch -o 'taken/%n' "$UP/a"
	[ "$status" -eq 69 ]
	[[ "$stderr" == "relay-fetch: $UP/a: cannot rename 'taken/1.part' to 'taken/1': "* ]]
	[ "$(ls taken)" = 1 ]
	run --separate-stderr relay-fetch -o 'nodir/%n' "$UP/a"
	[ "$stderr" = "relay-fetch: $UP/a: cannot create 'nodir/1.part': No such file or directory" ]
	[ ! -e nodir ]
	run relay-fetch --create-dirs -o 'made/here/%n' "$UP/a" "$UP/b"
	[ "$status" -eq 0 ]
	[ "$(cat made/here/1 made/here/2)" = /a/b ]
	run relay-fetch -o 'fail-%n' "$UP/x?status=404"
	[ "$status" -eq 69 ]
	[ -z "$(ls -A | grep fail)" ]
}

@test "-o: one name for several URLs never overwrites; a bad template is a usage error" {
	# the earlier URL keeps the name, though its answer comes later
	run --separate-stderr relay-fetch -o same "$UP/d?delay=300" "$UP/e"
	[ "$status" -eq 1 ]
	[ "$stderr" = "relay-fetch: $UP/e: -o names 'same' for URL 1 already" ]
	[ "$(cat same)" = '/d?delay=300' ]
	for t in '' 'x%q' 'x%'; do
		run --separate-stderr relay-fetch -o "$t" "$UP/d"
		[ "$status" -eq 2 ] || { echo "'$t': $status"; false; }
	done
	[ "$stderr" = "relay-fetch: bad -o 'x%': % is followed by nothing, not n, f or %" ]
}

@test "-L follows redirects up to --max-redirs; what it reaches is not stored under the first URL" {
	run --separate-stderr relay-fetch "$UP/r?status=302&h=Location:/target"
	[ "$status" -eq 69 ]
	[ "$stderr" = "relay-fetch: $UP/r?status=302&h=Location:/target: HTTP 302 Found" ]
	run relay-fetch -L "$UP/r?status=302&h=Location:/target?cc=max-age=600"
	[ "$status" -eq 0 ]
	[ "$output" = "/target?cc=max-age=600" ]
	! relay-cache ls | grep -q '/r?' || false
	two="$UP/a?status=302&h=Location:/b?status=302%26h=Location:/c"
	run relay-fetch -L "$two"
	[ "$output" = /c ]
	run --separate-stderr relay-fetch -L --max-redirs 1 "$two"
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"Maximum (1) redirects followed"* ]]
	run relay-fetch -L --max-redirs 0 "$two"
	[ "$status" -eq 2 ]
	# never to a file: URL
	run --separate-stderr relay-fetch -L "$UP/f?status=302&h=Location:file:///etc/passwd"
	[ "$status" -eq 69 ]
	[[ "$output" != *root:* ]]
}

@test "-L: a redirected response is stored, and loaded from its record, under the URL that gave it, never under the first" {
	python3 "$ROOT/tests/fixture/upstream.py" port2 &
	EXTRA_PIDS+=($!)
	eventually [ -s port2 ]
	other=http://127.0.0.1:$(cat port2)	# another host
	first="$UP/r?status=302&h=Location:$other/there?cc=max-age=600%26body=other"
	there="$other/there?cc=max-age=600&body=other"
	# the record says where the response came from; load keys on it
	relay-fetch -L --no-store --records "$first" >rec
	jq -e --arg f "$first" --arg t "$there" \
	    '.url == $f and .effective_url == $t and .text == "other"' rec
	relay-cache -c loaded.db load <rec
	[ "$(relay-cache -c loaded.db get "$there")" = other ]
	run relay-cache -c loaded.db get "$first"
	[ "$status" -eq 1 ]
	# relay-fetch -L stores it the same way
	run relay-fetch -L "$first"
	[ "$output" = other ]
	[ "$(relay-cache get "$there")" = other ]
	run relay-cache get "$first"
	[ "$status" -eq 1 ]
	# a path on the same host; a record that was never redirected
	same="$UP/s?status=301&h=Location:/landing?cc=max-age=600%26body=landed"
	relay-fetch -L --records "$same" "$UP/plain?body=p" >rec
	jq -e 'has("effective_url") | not' <(sed -n 2p rec)
	relay-cache -c same.db load <rec
	[ "$(relay-cache -c same.db get "$UP/landing?cc=max-age=600&body=landed")" = landed ]
	[ "$(relay-cache -c same.db get "$UP/plain?body=p")" = p ]
	[ "$(relay-cache -c same.db ls | wc -l)" -eq 2 ]
	# a record whose effective_url is no URL is refused, naming it
	printf '{"url":"%s","effective_url":"not a url","text":"x"}\n' "$UP/a" >rec
	run --separate-stderr relay-cache -c same.db load <rec
	[ "$status" -eq 1 ]
	[ "$stderr" = "relay-cache: line 1: invalid URL 'not a url': Bad scheme" ]
	run relay-cache -c same.db get "$UP/a"
	[ "$status" -eq 1 ]
}

@test "-L: a 304 from the URL a redirect led to does not revalidate the first URL's entry" {
	first="$UP/c?status=302&h=Location:/final?etag=%2522v1%2522%26body=final"
	printf good | relay-cache put -H 'ETag: "v1"' --ttl 0 "$first"
	run --separate-stderr relay-fetch -L "$first"
	[ "$status" -eq 0 ]
	[ "$output" = final ]
	# asked again without If-None-Match once the 304 came
	[ "$(curl -s "$UP/_log" | jq -s '[.[] | select(.path | startswith("/final")) | .headers["If-None-Match"]]')" = "$(jq -n '["\"v1\"", null]')" ]
	[ "$(relay-cache get "$first")" = good ]
	[ "$(relay-cache get "$UP/final?etag=%22v1%22&body=final")" = final ]
}

@test "records are UTF-8: a URL's bytes that are not are percent-encoded, in its key as in its record, so dump | load keeps it" {
	url="$UP/a"$'\xff\xc3\xa9'"?cc=max-age=600&body=x"
	relay-fetch --records "$url" >rec
	python3 -c 'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' rec
	[ "$(jq -r .url rec)" = "$UP/a%FFé?cc=max-age=600&body=x" ]
	relay-cache -c loaded.db load <rec
	[ "$(relay-cache -c loaded.db get "$url")" = x ]
	relay-cache dump >dump
	python3 -c 'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' dump
	relay-cache -c dumped.db load <dump
	[ "$(relay-cache -c dumped.db get "$url")" = x ]
	relay-cache ls --json | jq -e --arg u "$UP/a%FFé?cc=max-age=600&body=x" '.url == $u'
}

@test "--offline only reads: a missing cache file is empty and is not created" {
	run --separate-stderr relay-fetch --offline --cache "$PWD/none/cache.db" "$UP/a"
	[ "$status" -eq 69 ]
	[ "$stderr" = "relay-fetch: $UP/a: '$UP/a' is not in the cache" ]
	[ ! -e none ]
	run relay-fetch --offline --cache "$PWD/absent.db" "$UP/a"
	[ ! -e absent.db ]
}

@test "a body with a lone surrogate escape is not JSON: its record carries it as text, fetched or cached, which jq, relay-merge and load take; load refuses a record whose json holds one" {
	bodies=('{"restaurants":[{"name":"n\ud800"}]}' '["\udc00"]'
	    '{"\udbff":1}' '["\ud800\u0041"]' '["\ud83d\ude00","\ud83d"]')
	for i in "${!bodies[@]}"; do
		printf '%s\n' "$UP/s$i?cc=max-age=600&body=$(jq -rn --arg b "${bodies[$i]}" '$b | @uri')"
	done >urls
	for mode in "" --offline; do
		run --separate-stderr relay-fetch $mode --records <urls
		[ "$status" -eq 0 ] || { echo "$mode: $status $stderr"; false; }
		[ "$(jq -r .text <<<"$output")" = "$(printf '%s\n' "${bodies[@]}")" ]
		jq -se 'all(has("json") | not)' <<<"$output"
		[ "$(relay-merge -c '[inputs | .text]' <<<"$output")" = "$(printf '%s\n' "${bodies[@]}" | jq -Rsc 'split("\n")[:-1]')" ]
		relay-cache -c "loaded$mode.db" load <<<"$output"
		[ "$(relay-cache -c "loaded$mode.db" get "$UP/s0?cc=max-age=600&body=$(jq -rn --arg b "${bodies[0]}" '$b | @uri')")" = "${bodies[0]}" ]
	done
	# a record's json member is held to the same rule, on any path
	run --separate-stderr relay-cache load <<-'EOF2'
	{"url":"http://x/a","json":{"restaurants":[{"name":"n\ud800"}]}}
	{"url":"http://x/b","json":{"\udc00":1}}
	{"url":"http://x/c","json":["\ud83d\ude00"]}
	{"url":"http://x/d","text":"\ud800"}
	EOF2
	[ "$status" -eq 1 ]
	[ "${stderr_lines[0]}" = 'relay-cache: line 1: body: lone high surrogate \uD800' ]
	[ "${stderr_lines[1]}" = 'relay-cache: line 2: body: lone low surrogate \uDC00' ]
	[ "${stderr_lines[2]}" = 'relay-cache: line 4: body: lone high surrogate \uD800' ]
	[ "$(relay-cache ls --match "http://x/*" | cut -f5)" = http://x/c ]
}

@test "--offline never writes the cache file: an empty one stays empty, a full one keeps every byte of its entries, hits included; list-dishes --offline neither" {
	relay-fetch "$UP/a?cc=max-age=600" "$UP/b?cc=max-age=0" >/dev/null
	sqlite3 "$RELAY_CACHE" .dump >before
	for mode in "" --records -i "-o out%n"; do
		run --separate-stderr relay-fetch --offline $mode "$UP/a?cc=max-age=600" "$UP/b?cc=max-age=0"
		[ "$status" -eq 0 ] || { echo "$mode: $status $stderr"; false; }
	done
	sqlite3 "$RELAY_CACHE" .dump >after
	cmp before after
	: >empty.db
	run --separate-stderr relay-fetch --offline --cache "$PWD/empty.db" "$UP/a"
	[ "$status" -eq 69 ]
	RELAY_CACHE=$PWD/empty.db run list-dishes --offline
	[ "$status" -ne 0 ]
	RELAY_CACHE=$PWD/empty.db run list-dishes --offline --search x
	[ "$status" -ne 0 ]
	[ ! -s empty.db ]
	[ "$(echo empty.db*)" = empty.db ]
}

# damage_entry URL SQL: the entry of URL changed by SQL as another
# program could; in SQL, KEY stands for URL as an SQL string, BODY for
# the id of the entry's body.
damage_entry() {
	local key="'${1//\'/\'\'}'" sql=$2
	sql=${sql//BODY/(SELECT body FROM entries WHERE url = KEY)}
	# quoted: bash 5.2 reads & in it; a writer's lock is waited for
	sqlite3 -cmd ".timeout 10000" "$RELAY_CACHE" "${sql//KEY/"$key"}"
}

@test "a damaged entry is a miss: relay-fetch says so, escaped, asks the upstream, replaces the entry and writes every URL, in every output mode" {
	b="$UP/b"$'\xc2\x9b'"31m?cc=max-age=600"
	shown="$UP/b\\u009B31m?cc=max-age=600"
	for u in "$UP/a?cc=max-age=600" "$b" "$UP/c?cc=max-age=600"; do
		printf '%s\n' "$u"
	done >urls
	relay-fetch <urls >/dev/null
	n=1
	while IFS='|' read -r sql why; do
		for mode in "" -i --records --unordered "-o out%n"; do
			damage_entry "$b" "$sql"
			rm -f out*
			run --separate-stderr relay-fetch $mode <urls
			[ "$status" -eq 0 ] || { echo "$sql $mode: $status $stderr"; false; }
			[ "$stderr" = "relay-fetch: cannot read cache '$RELAY_CACHE': entry '$shown' is damaged: $why; asking the upstream instead" ] ||
			    { echo "$sql $mode: $stderr"; false; }
			n=$((n + 1))
			[ "$(requests_for "/b%c2%9b31m?cc=max-age=600")" -eq "$n" ]
			case $mode in
			--records)
				[ "$(jq -r '"\(.source) \(.text)"' <<<"$output" | tr '\n' ,)" = "hit /a?cc=max-age=600,miss /b%c2%9b31m?cc=max-age=600,hit /c?cc=max-age=600," ] ;;
			-o*)
				[ "$(cat out1 out2 out3)" = "/a?cc=max-age=600/b%c2%9b31m?cc=max-age=600/c?cc=max-age=600" ]
				[ -z "$(find . -name '*.part')" ] ;;
			"")
				[ "$output" = "/a?cc=max-age=600/b%c2%9b31m?cc=max-age=600/c?cc=max-age=600" ] ;;
			*)	# -i: with heads; --unordered: in any order
				for p in a b%c2%9b31m c; do
					[[ "$output" == *"/$p?cc=max-age=600"* ]]
				done ;;
			esac
			# replaced: whole, and a hit again
			[ "$(relay-cache get "$b")" = "/b%c2%9b31m?cc=max-age=600" ]
			[ "$(relay-fetch --records "$b" | jq -r .source)" = hit ]
		done
	done <<-'EOF2'
	UPDATE entries SET status = 0 WHERE url = KEY|status 0 is not a final status (200 to 599)
	UPDATE entries SET status = 100 WHERE url = KEY|status 100 is not a final status (200 to 599)
	UPDATE entries SET status = 600 WHERE url = KEY|status 600 is not a final status (200 to 599)
	UPDATE entries SET size = -1 WHERE url = KEY|size -1 is negative
	UPDATE entries SET size = 9223372036854775807 WHERE url = KEY|its body has 26 of 9223372036854775807 bytes
	UPDATE chunks SET data = CAST('12345' AS BLOB) WHERE body = BODY|its body has 5 of 26 bytes
	UPDATE chunks SET data = CAST('/b%c2%9b31m?cc=max-age=6000' AS BLOB) WHERE body = BODY|its body has more than its 26 bytes
	DELETE FROM chunks WHERE body = BODY|its body has 0 of 26 bytes
	UPDATE bodies SET state = 2 WHERE id = BODY|its body is missing
	DELETE FROM bodies WHERE id = BODY|its body is missing
	EOF2
}

@test "--offline: a damaged entry fails its URL alone, saying why, nothing of its body written in any output mode, no file; alone, 65" {
	b="$UP/b"$'\xc2\x9b'"31m?cc=max-age=600"
	shown="$UP/b\\u009B31m?cc=max-age=600"
	printf '%s\n' "$UP/a?cc=max-age=600" "$b" "$UP/c?cc=max-age=600" >urls
	relay-fetch <urls >/dev/null
	while IFS='|' read -r sql why; do
		msg="cannot read cache '$RELAY_CACHE': entry '$shown' is damaged: $why"
		for mode in "" -i --records --unordered "-o out%n"; do
			damage_entry "$b" "$sql"
			rm -f out*
			run --separate-stderr relay-fetch --offline $mode <urls
			[ "$status" -eq 1 ] || { echo "$sql $mode: $status $stderr"; false; }
			[ "$stderr" = "relay-fetch: $msg" ] || { echo "$sql $mode: $stderr"; false; }
			case $mode in
			--records)
				[ "$(jq -c '[.text, .error]' <<<"$output" | tr '\n' ,)" = "$(jq -nc --arg m "$msg" '["/a?cc=max-age=600",null],[null,$m],["/c?cc=max-age=600",null]' | tr '\n' ,)" ] ;;
			-o*)
				[ "$(echo out*)" = "out1 out3" ]
				[ "$(cat out1 out3)" = "/a?cc=max-age=600/c?cc=max-age=600" ] ;;
			"" | --unordered)
				[ "$output" = "/a?cc=max-age=600/c?cc=max-age=600" ] ;;
			*)
				[[ "$output" != *b%c2%9b* ]] ;;
			esac
			rm -f out*
			run --separate-stderr relay-fetch --offline $mode "$b"
			[ "$status" -eq 65 ] && [ "$stderr" = "relay-fetch: $msg" ] ||
			    { echo "$sql $mode alone: $status $stderr"; false; }
			if [ "$mode" = --records ]; then
				jq -e --arg m "$msg" '.error == $m and (has("text") | not)' <<<"$output"
			else
				[ "$output" = "" ]
			fi
			[ -z "$(find . -name 'out*')" ]
			relay-fetch "$b" >/dev/null 2>&1	# replaced
		done
	done <<-'EOF2'
	UPDATE entries SET status = 0 WHERE url = KEY|status 0 is not a final status (200 to 599)
	UPDATE entries SET status = 999 WHERE url = KEY|status 999 is not a final status (200 to 599)
	UPDATE entries SET size = -1 WHERE url = KEY|size -1 is negative
	UPDATE entries SET size = 9223372036854775807 WHERE url = KEY|its body has 26 of 9223372036854775807 bytes
	UPDATE chunks SET data = CAST('12345' AS BLOB) WHERE body = BODY|its body has 5 of 26 bytes
	UPDATE chunks SET data = CAST('/b%c2%9b31m?cc=max-age=6000' AS BLOB) WHERE body = BODY|its body has more than its 26 bytes
	DELETE FROM chunks WHERE body = BODY|its body has 0 of 26 bytes
	DELETE FROM bodies WHERE id = BODY|its body is missing
	EOF2
	# a failure of another kind beside it: every URL failed, 69
	damage_entry "$b" "UPDATE entries SET status = 0 WHERE url = KEY"
	run relay-fetch --offline "$b" "$UP/none"
	[ "$status" -eq 69 ]
}

@test "list-dishes over a damaged entry: the menu comes from the upstream, and the entry is whole again" {
	start_upstream --root "$ROOT/share/examples/menu-api"
	export RELAY_UPSTREAM=$UP
	list-dishes --search lax >want
	[ -s want ]
	for sql in "UPDATE entries SET status = 0 WHERE url = KEY" \
	    "UPDATE chunks SET data = 12345 WHERE body = BODY"; do
		damage_entry "$UP/restaurant/elma" "$sql"
		run --separate-stderr list-dishes --search lax
		[ "$status" -eq 0 ] && [ "$output" = "$(cat want)" ] ||
		    { echo "$sql: $status $stderr"; false; }
		relay-cache get "$UP/restaurant/elma" | jq -e .restaurant.menu
	done
}

@test "an entry damaged after its lookup, before its turn in the output, is looked up again: nothing of it is written" {
	for mode in "" --records "-o out%n"; do
		start_upstream	# its hold=1 lets go once
		b="$UP/b?cc=max-age=600"
		relay-fetch "$b" >/dev/null
		rm -f out*
		# b is looked up, a hit, when the held request goes out
		relay-fetch $mode "$UP/h?hold=1" "$b" >out 2>err &
		pid=$!
		eventually requests_are "/h?hold=1" 1
		damage_entry "$b" "UPDATE chunks SET data = CAST('12345' AS BLOB) WHERE body = BODY"
		curl -s -o /dev/null "$UP/_release"
		wait "$pid" || { echo "$mode: $? $(cat err)"; false; }
		[ "$(cat err)" = "relay-fetch: cannot read cache '$RELAY_CACHE': entry '$b' is damaged: its body has 5 of 17 bytes; asking the upstream instead" ] ||
		    { cat err; false; }
		case $mode in
		"") [ "$(cat out)" = "/h?hold=1/b?cc=max-age=600" ] ;;
		--records) [ "$(jq -r '"\(.source) \(.text)"' out | tr '\n' ,)" = "miss /h?hold=1,miss /b?cc=max-age=600," ] ;;
		*) [ "$(cat out1 out2)" = "/h?hold=1/b?cc=max-age=600" ] ;;
		esac
		[ "$(requests_for "/b?cc=max-age=600")" -eq 2 ]
	done
}

@test "a record of a response that was not stored has no ttl: nothing stored claims a freshness; a stored one has its ttl, fetched or cached" {
	printf '%s\n' "$UP/n1?status=600&cc=max-age=60" \
	    "$UP/n2?status=999&cc=max-age=60" \
	    "$UP/n3?cc=max-age=60,no-store" "$UP/n4?cc=private,max-age=60" \
	    "$UP/n5?cc=max-age=60&h=Set-Cookie:a=b" \
	    "$UP/n6?status=500&cc=max-age=60" \
	    "$UP/n7?size=2000&cc=max-age=60" "http://127.0.0.1:1/n8" >unstored
	run --separate-stderr relay-fetch --max-object-size 1000 --retry 0 --records <unstored
	[ "$status" -eq 1 ]
	[ "$(jq -c '[.status, has("ttl"), has("age")]' <<<"$output" | tr '\n' ' ')" = "[600,false,true] [999,false,true] [200,false,true] [200,false,true] [200,false,true] [500,false,true] [200,false,true] [0,false,true] " ]
	[ -z "$(relay-cache ls)" ]
	# --no-store: the same
	run --separate-stderr relay-fetch --no-store --records "$UP/s?cc=max-age=60"
	[ "$status" -eq 0 ]
	jq -e 'has("ttl") | not' <<<"$output"
	[ -z "$(relay-cache ls)" ]
	# stored: its ttl, fetched, then cached
	for source in miss hit; do
		run --separate-stderr relay-fetch --records "$UP/s?cc=max-age=60"
		jq -e --arg s "$source" '.source == $s and .ttl <= 60 and .ttl >= 58' <<<"$output"
	done
	run --separate-stderr relay-fetch --offline --records "$UP/s?cc=max-age=60"
	jq -e '.source == "hit" and .ttl >= 58' <<<"$output"
	relay-cache dump | jq -e '.ttl >= 58'
}

@test "a validator planted with a CR or LF is damage: relay-fetch and relay-serve never send it, so it adds no request field" {
	url="$UP/e?cc=max-age=0&etag=%22v%22&lm=Mon,%2001%20Jan%202024%2000:00:00%20GMT"
	for sql in "UPDATE entries SET etag = replace('\"v\"#X-Evil: 1', '#', char(13, 10)) WHERE url = KEY" \
	    "UPDATE entries SET etag = NULL, last_modified = replace('Mon, 01 Jan 2024 00:00:00 GMT#X-Evil: 1', '#', char(10)) WHERE url = KEY"; do
		relay-fetch "$url" >/dev/null
		damage_entry "$url" "$sql"
		run --separate-stderr relay-fetch "$url"
		[ "$status" -eq 0 ] && [ "$output" = "${url#"$UP"}" ]
		[[ "$stderr" == "relay-fetch: cannot read cache '$RELAY_CACHE': entry '$url' is damaged: its "*" holds a CR or LF: it is no field value; asking the upstream instead" ]] ||
		    { echo "$stderr"; false; }
		damage_entry "$url" "$sql"
		run --separate-stderr relay-fetch --offline "$url"
		[ "$status" -eq 65 ] && [ "$output" = "" ]
	done
	start_serve
	curl -sf -o /dev/null "$SERVE/e?cc=max-age=0&etag=%22v%22"
	eventually cached_as "$UP/e?cc=max-age=0&etag=%22v%22" "/e?cc=max-age=0&etag=%22v%22"
	damage_entry "$UP/e?cc=max-age=0&etag=%22v%22" "UPDATE entries SET etag = replace('\"v\"#X-Evil: 1', '#', char(13, 10)) WHERE url = KEY"
	[ "$(curl -s "$SERVE/e?cc=max-age=0&etag=%22v%22")" = "/e?cc=max-age=0&etag=%22v%22" ]
	[ "$(curl -s "$UP/_log" | jq -s '[.[] | select(.headers | has("X-Evil"))] | length')" -eq 0 ]
	[ "$(curl -s "$UP/_log" | jq -s '[.[] | select(.headers | has("If-None-Match") or has("If-Modified-Since"))] | length')" -eq 0 ]
}

@test "a URL's own credentials make its response private: sent upstream, never stored (RFC 9111 3.5), unless it says public" {
	hostport=${UP#http://}
	run --separate-stderr relay-fetch "http://alice:s3cret@$hostport/auth?body=PRIVATE&cc=max-age=60"
	[ "$status" -eq 0 ] && [ "$output" = PRIVATE ]
	curl -s "$UP/_log" | jq -e 'select(.path | startswith("/auth?")) | .headers.Authorization | startswith("Basic ")'
	[ -z "$(relay-cache ls)" ]
	run --separate-stderr relay-fetch --records "$UP/auth?body=PRIVATE&cc=max-age=60"
	jq -e '.source == "miss"' <<<"$output"
	[ "$(requests_for '/auth?body=PRIVATE&cc=max-age=60')" -eq 2 ]
	relay-fetch "http://alice:s3cret@$hostport/pub?body=P&cc=public,max-age=60" >/dev/null
	cached_as "$UP/pub?body=P&cc=public,max-age=60" P
}

@test "--no-store stores nothing of a revalidation: a 304 refreshes no entry, and stale-while-revalidate starts no refresh" {
	url="$UP/swr?body=NEW&cc=max-age=60"
	printf OLD | relay-cache put -H 'Cache-Control: max-age=0, stale-while-revalidate=600' "$url"
	[ "$(relay-fetch --no-store "$url")" = OLD ]
	[ "$(relay-cache get "$url")" = OLD ]
	[ "$(requests_for '/swr?body=NEW&cc=max-age=60')" -eq 0 ]
	url="$UP/nsr?etag=%22v%22&cc=max-age=60"
	printf OLD | relay-cache put -H 'ETag: "v"' --ttl 0 "$url"
	before=$(relay-cache dump | jq -c '[.ttl, .response_time]')
	[ "$(relay-fetch --no-store --records "$url" | jq -r '"\(.source) \(.text)"')" = "revalidated OLD" ]
	[ "$(relay-cache dump | jq -c '[.ttl, .response_time]')" = "$before" ]
}

@test "a reset after the head is retried whenever nothing of it went out, held or streamed" {
	for mode in "" --records --unordered "-o out%n"; do
		start_upstream
		run --separate-stderr relay-fetch --retry 2 $mode "$UP/r0?size=50&reset=0"
		[ "$status" -eq 69 ] || { echo "$mode: $status"; false; }
		[ "$(requests_for '/r0?size=50&reset=0')" -eq 3 ] || { echo "$mode r0"; false; }
		# some bytes received, but held back: taken back, tried again
		[ "$mode" = "" ] && continue	# streamed: out already
		run --separate-stderr relay-fetch --retry 2 $mode "$UP/r10?size=50&reset=10"
		[ "$(requests_for '/r10?size=50&reset=10')" -eq 3 ] || { echo "$mode r10"; false; }
	done
	# streamed straight out: what went out stays, and it is not tried again
	run --separate-stderr relay-fetch --retry 2 "$UP/s10?size=50&reset=10"
	[ "$status" -eq 69 ]
	[ "$(requests_for '/s10?size=50&reset=10')" -eq 1 ]
}

@test "a Retry-After over a minute is not waited for: the 503 is the URL's answer at once" {
	for ra in 86400 99999999999999999999 "$(date -u -d '+1 day' '+%a,%%20%d%%20%b%%20%Y%%20%H:%M:%S%%20GMT')"; do
		start_upstream
		run --separate-stderr timeout 30 relay-fetch --retry 3 "$UP/ra?status=503&retry_after=$ra"
		[ "$status" -eq 69 ] || { echo "$ra: $status"; false; }
		[ "$stderr" = "relay-fetch: $UP/ra?status=503&retry_after=$ra: HTTP 503 Service Unavailable" ]
		[ "$(requests_for "/ra?status=503&retry_after=$ra")" -eq 1 ]
	done
}

@test "a failure that trying again cannot mend is not retried: a redirect to a scheme curl does not follow, an unsupported scheme" {
	path='/to-ftp?status=302&h=Location:ftp://127.0.0.1/x'
	run --separate-stderr relay-fetch -L --retry 3 "$UP$path"
	[ "$status" -eq 69 ]
	[[ "$stderr" == "relay-fetch: $UP$path: "* ]]
	[ "$(requests_for "$path")" -eq 1 ]
	run --separate-stderr timeout 30 relay-fetch --retry 5 "gopher://127.0.0.1:1/x"
	[ "$status" -eq 69 ]
	# one that may pass still is: 503, three times
	run --separate-stderr relay-fetch --retry 2 "$UP/b?status=503&retry_after=0"
	[ "$(requests_for '/b?status=503&retry_after=0')" -eq 3 ]
}

@test "--upstream's credentials are the relay's own, as relay-serve's: sent with a path, and what comes back is stored" {
	hostport=${UP#http://}
	run --separate-stderr relay-fetch --upstream "http://alice:s3cret@$hostport" "/own?body=O&cc=max-age=60"
	[ "$status" -eq 0 ] && [ "$output" = O ]
	curl -s "$UP/_log" | jq -e 'select(.path | startswith("/own?")) | .headers.Authorization | startswith("Basic ")'
	cached_as "$UP/own?body=O&cc=max-age=60" O
}
