#!/usr/bin/env bats
# relay-serve's live metrics: /_relay/metrics (Prometheus) and
# /_relay/stats (JSON), summed over every process on the cache file and
# kept in it across restarts; relay-cache stats shows the same; the
# endpoints answer loopback or the admin token, and no one else.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	start_upstream
}

# get BASE PATH [KEY] [curl options…]: one request of the mix, each with
# an API key of its own unless KEY is given.
n=0
get() {
	local base=$1 path=$2 key=${3:-k$((n += 1))}
	shift 3 2>/dev/null || shift $#
	curl -s -o /dev/null -H "X-Key: $key" "$@" "$base$path" || true
}

# The stats, from one process or another, equal the expected JSON.
stats_are() {
	local got
	got=$(curl -s "$1/_relay/stats" | jq -c "$2")
	[ "$got" = "$3" ] || { echo "got $got, want $3"; false; }
}

@test "a scripted mix over three processes: /_relay/stats counts it exactly, and keeps it across restarts" {
	limits=(--rate-limit 1/h --burst 3 --limit-key header:X-Key)
	start_serve --workers 2 "${limits[@]}"
	start_activated "${limits[@]}"
	get "$SERVE" '/m1?cc=max-age=600'
	get "$ACTIVATED" '/m2?cc=max-age=600'
	get "$ACTIVATED" '/m1?cc=max-age=600'
	get "$SERVE" '/m1?cc=max-age=600'
	get "$SERVE" '/m2?cc=max-age=600'
	get "$ACTIVATED" '/nf?status=404'
	get "$SERVE" '/e?status=503'
	get "$ACTIVATED" '/../x' '' --path-as-is
	get "$SERVE" '/p' '' -d posted
	get "$ACTIVATED" '/cut?short=5'
	for base in "$SERVE" "$ACTIVATED" "$SERVE" "$ACTIVATED" "$SERVE"; do
		get "$base" '/t?cc=max-age=600' same-key
	done
	requests='{"hit":5,"stale":0,"miss":6,"revalidated":0,"collapsed":0,"bypass":1,"merged":0,"throttled":2,"queued":0,"error":1}'
	responses='{"1xx":0,"2xx":10,"3xx":0,"4xx":4,"5xx":1}'
	eventually stats_are "$SERVE" .requests "$requests"
	# every worker's counts reach the file within a second: any answers
	eventually stats_are "$ACTIVATED" .requests "$requests"
	eventually stats_are "$SERVE" .responses "$responses"
	eventually stats_are "$SERVE" '[.upstream_requests, .upstream_errors, .upstream_duration_seconds.count]' '[7,1,7]'
	# the bytes sent are the access logs' sums, by where they came from
	bytes=$(cat serve.log activated.log | grep '^{' | jq -s -c '{
	    cache: map(select(.cache == "hit") | .bytes) | add,
	    upstream: map(select(.cache == "miss" or .cache == "bypass") | .bytes) | add}')
	eventually stats_are "$SERVE" .sent_bytes "$bytes"
	stats_are "$SERVE" '[.entries > 0, .bytes > 0]' '[true,true]'
	# every process stopped, a new one: the counts are the file's
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
	kill "${EXTRA_PIDS[@]}"
	start_serve
	stats_are "$SERVE" .requests "$requests"
	# relay-cache stats shows the same counters
	[ "$(relay-cache stats --json | jq -c .requests)" = "$requests" ]
	relay-cache stats | grep -qx $'requests.hit\t5'
	relay-cache stats | grep -qx $'upstream_errors\t1'
}

# The metrics, once they hold a line LINE (any worker may answer, and
# each adds its counts to the file once a second).
metrics_with() {
	curl -s -D head "$SERVE/_relay/metrics" >metrics && grep -qx "$1" metrics
}

@test "a counter never goes down between scrapes, whichever process answers" {
	start_serve --workers 2
	for i in $(seq 40); do
		curl -s -o /dev/null "$SERVE/mono?cc=max-age=600"
		curl -s "$SERVE/_relay/stats" | jq '[.requests[]] | add'
	done >totals
	eventually stats_are "$SERVE" '[.requests[]] | add' 40
	curl -s "$SERVE/_relay/stats" | jq '[.requests[]] | add' >>totals
	sort -n -c totals || { cat totals; false; }
	[ "$(tail -1 totals)" -eq 40 ]
}

@test "promtool check metrics passes on /_relay/metrics, and the histogram is whole" {
	start_serve
	curl -s -o /dev/null "$SERVE/a?delay=30"
	curl -s -o /dev/null "$SERVE/b"
	eventually metrics_with 'relay_upstream_duration_seconds_count 2'
	grep -qi '^Content-Type: text/plain; version=0.0.4' head
	grep -qi '^Cache-Control: no-store' head
	# relay's own answer, said so: never "(null)" (every admin answer)
	grep -qx $'Cache-Status: relay; detail=admin\r' head
	curl -s -D head -o /dev/null "$SERVE/_relay/stats"
	grep -qx $'Cache-Status: relay; detail=admin\r' head
	promtool check metrics <metrics
	grep -qx 'relay_upstream_duration_seconds_bucket{le="+Inf"} 2' metrics
	# the 30 ms one is not in the buckets below it
	le=$(sed -n 's/^relay_upstream_duration_seconds_bucket{le="0.025"} //p' metrics)
	[ "$le" -le 1 ]
	grep -qx 'relay_requests_total{outcome="miss",tier="upstream"} 2' metrics
	grep -q '^# TYPE relay_cache_entries gauge$' metrics
	# no raw URL becomes a label
	! grep -q '/a\|/b' metrics || false
}

# One request to relay-serve through a pipe, as inetd would hand it a
# client at PEER (TCPREMOTEIP), with extra request lines; prints the status.
piped() {
	local peer=$1
	shift
	{
		printf 'GET /_relay/stats HTTP/1.1\r\nHost: x\r\n'
		printf '%s\r\n' "$@"
		printf 'Connection: close\r\n\r\n'
	} | TCPREMOTEIP=$peer relay-serve --upstream "$UP" "${ADMIN[@]}" 2>/dev/null |
	    head -1 | cut -d' ' -f2
}

@test "/_relay/ answers loopback, or another client with the admin token; anyone else gets 404, and the upstream sees none of it" {
	printf 's3cret-token\n' >token
	ADMIN=(--admin-token-file token)
	[ "$(piped 127.0.0.1)" = 200 ]
	[ "$(piped ::1)" = 200 ]
	[ "$(piped 192.0.2.7)" = 404 ]
	[ "$(piped 192.0.2.7 'Authorization: Bearer s3cret-token')" = 200 ]
	[ "$(piped 192.0.2.7 'Authorization: Bearer s3cret-tokem')" = 404 ]
	[ "$(piped 192.0.2.7 'Authorization: Bearer s3cret')" = 404 ]
	ADMIN=()
	[ "$(piped 192.0.2.7 'Authorization: Bearer s3cret-token')" = 404 ]
	start_serve
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/_relay/nothing")" = 404 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$SERVE/_relay/stats")" = 405 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/%5Frelay/stats")" = 200 ]
	curl -s "$UP/_log" >upstream.log; [ ! -s upstream.log ] || { cat upstream.log; false; }
	# and none of it is counted
	[ "$(curl -s "$SERVE/_relay/stats" | jq '[.requests[]] | add')" -eq 0 ]
}

@test "a bad --admin-token-file is a configuration error" {
	run -78 relay-serve --upstream "$UP" --admin-token-file missing
	[[ "$output" == "relay-serve: bad --admin-token-file 'missing': No such file or directory" ]]
	: >empty
	run -78 relay-serve --upstream "$UP" --admin-token-file empty
	[[ "$output" == *"'empty': it is empty" ]]
	printf 'two words\n' >spaced
	run -78 relay-serve --upstream "$UP" --admin-token-file spaced
	[[ "$output" == *"it has spaces or bytes other than visible ASCII" ]]
	# a NUL never ends the token early ("t" would be one of one byte)
	printf 't\0zzzzzzzz\n' >nul
	run -78 relay-serve --upstream "$UP" --admin-token-file nul
	[[ "$output" == *"it has spaces or bytes other than visible ASCII" ]]
}

@test "an inetd client's address is an address or none: loopback is decided on the address, never its text's prefix" {
	piped() {	# piped ADDR: the status of /_relay/stats for that peer
		printf 'GET /_relay/stats HTTP/1.0\r\n\r\n' |
		    REMOTE_ADDR=$1 relay-serve --upstream "$UP" 2>>pipe.log |
		    head -1 | cut -d' ' -f2
	}
	[ "$(piped 127.0.0.1)" = 200 ]
	[ "$(piped ::1)" = 200 ]
	[ "$(piped ::ffff:127.0.0.1)" = 200 ]
	[ "$(piped ::ffff:7f00:1)" = 200 ]
	[ "$(piped 127.0.0.1x)" = 404 ]
	[ "$(piped 127.evil.example)" = 404 ]
	[ "$(piped '::1]')" = 404 ]
	[ "$(piped 192.0.2.1)" = 404 ]
	[ "$(piped '')" = 404 ]
	# the log says "-" for what is no address
	! grep -q '"peer":"127.0.0.1x"\|"peer":""' pipe.log || false
	grep -q '"peer":"-"' pipe.log
}
