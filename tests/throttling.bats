#!/usr/bin/env bats
# relay-serve's rate limits (--rate-limit): counts shared by every
# process on the cache file, 429 with Retry-After and a problem, the
# RateLimit fields on every answer, dry runs and the fail modes.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	start_upstream
}

@test "1000 requests from one client over 8 processes against 100/m burst 10: exactly what the limit allows" {
	limits=(--rate-limit 100/m --burst 10)
	start_serve --workers 4 "${limits[@]}"
	port=$(free_port)
	systemd-socket-activate -a -l "127.0.0.1:$port" relay-serve \
	    --upstream "$UP" --cache "$RELAY_CACHE" "${limits[@]}" 2>activated.log &
	EXTRA_PIDS+=($!)
	eventually curl -s -o /dev/null "http://127.0.0.1:$port/ready"
	# that probe counted once: one allowed request fewer for the test
	"$ROOT/tests/fixture/limited-client" 1000 '/t?cc=max-age=600' \
	    "${SERVE_PORT}x4" "${port}x4" >out
	[ "$(grep -c . out)" -eq 1001 ]
	passes_within 100 9 out
	# every refusal is a 429 with a Retry-After of one interval (0.6 s)
	[ "$(grep -v '^200\|^elapsed' out | cut -f1 | sort -u)" = 429 ]
	[ "$(grep '^429' out | cut -f2 | sort -u)" = 1 ]
	# every answer carries the policy and a well-formed RateLimit
	[ "$(grep -v '^elapsed' out | cut -f3 | sort -u)" = '"default";q=100;w=60' ]
	! grep -v '^elapsed' out | cut -f4 | grep -vqE '^"default";r=[0-9]+;t=[0-9]+$' || false
	[ "$(grep '^429' out | cut -f4 | sed 's/;t=.*//' | sort -u)" = '"default";r=0' ]
	# eight processes took part: four workers and four activated ones
	[ "$(pgrep -c -P "$SERVE_PID")" -eq 4 ]
	[ "$(grep -c '"status":429' activated.log)" -ge 1 ]
}

@test "a 429 is a problem (RFC 9457) and says when to come back" {
	start_serve --rate-limit 1/h --burst 1
	curl -s -o /dev/null "$SERVE/p"
	run curl -s -D head "$SERVE/p"
	tr -d '\r' <head >h
	grep -q '^HTTP/1.1 429 ' h
	grep -qi '^content-type: application/problem+json' h
	retry=$(sed -n 's/^Retry-After: //p' h)
	[ "$retry" -gt 3500 ] && [ "$retry" -le 3600 ]
	[ "$(jq -r .status <<<"$output")" = 429 ]
	[ "$(jq -r .title <<<"$output")" = "Too Many Requests" ]
	logged 2
	[ "$(access_log | tail -1 | jq -r '.cache + " " + .error')" = "throttled over the rate limit" ]
}

@test "--limit-key header:NAME counts per API key; route counts per path" {
	start_serve --rate-limit 1/h --limit-key header:X-Api-Key
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Api-Key: a' "$SERVE/k")" = 200 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Api-Key: a' "$SERVE/k")" = 429 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Api-Key: b' "$SERVE/k")" = 200 ]
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
	start_serve --rate-limit 1/h --limit-key route
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/one?x=1")" = 200 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/one?x=2")" = 429 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/two")" = 200 ]
}

@test "--rate-limit-dry-run counts and logs, refuses nothing" {
	start_serve --rate-limit 1/h --rate-limit-dry-run
	for _ in 1 2 3; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/d")" = 200 ]
	done
	logged 3
	[ "$(access_log | jq -r .error | grep -c 'over the rate limit (dry run')" -eq 2 ]
	curl -s -D head -o /dev/null "$SERVE/d"
	grep -q 'RateLimit: "default";r=0;' head
}

# Another process holds the buckets' lock (tests/unit/test_buckets.c
# knows where it is) for 60 s at most, as one stopped mid-decision would.
hold_buckets_lock() {
	python3 -c 'import ctypes, mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
table = (ctypes.c_char * os.fstat(fd).st_size).from_buffer(mmap.mmap(fd, 0))
libc = ctypes.CDLL("libc.so.6")
if libc.pthread_mutex_lock(ctypes.c_void_p(ctypes.addressof(table) + 64)):
    sys.exit("cannot lock")
open(sys.argv[2], "w").write("held")
time.sleep(60)' "$RELAY_CACHE-buckets" held &
	EXTRA_PIDS+=($!)
	eventually [ -s held ]
}

@test "buckets whose lock is not free within 100 ms: open lets requests pass, closed answers 503" {
	start_serve --rate-limit 1/h
	hold_buckets_lock
	for _ in 1 2 3; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/f")" = 200 ]
	done
	grep -q 'rate limits could not be checked in time: requests pass' serve.log
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
	start_serve --rate-limit 1/h --rate-limit-fail closed
	run curl -s -D head "$SERVE/f"
	grep -q '^HTTP/1.1 503 ' head
	grep -q '^Retry-After: 1' head
	[ "$(jq -r .detail <<<"$output")" = "the rate limit could not be checked" ]
}

@test "--rate-limit-spare-hits: fresh hits do not count; what reaches the upstream does" {
	start_serve --workers 1 --rate-limit 2/h --burst 2 --rate-limit-spare-hits
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/h?cc=max-age=600")" = 200 ]
	# a hit once the writer has stored it (before, it is a miss again)
	eventually cached_as "$UP/h?cc=max-age=600" "/h?cc=max-age=600"
	for _ in 1 2 3 4 5; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/h?cc=max-age=600")" = 200 ]
	done
	curl -s -D head -o /dev/null "$SERVE/h?cc=max-age=600"
	! grep -qi '^ratelimit:' head || false
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/other")" = 200 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/third")" = 429 ]
}

@test "bad throttling options are usage errors" {
	for args in "--rate-limit 100" "--rate-limit 0/m" "--rate-limit 5/y" \
	    "--burst 0" "--limit-key nobody" "--limit-key header:" \
	    "--rate-limit-fail maybe"; do
		# shellcheck disable=SC2086
		run relay-serve --rate-limit 1/s $args
		[ "$status" -eq 2 ] || { echo "$args: $status"; false; }
	done
}

@test "a route's own limit (limit RATE burst N in the routes file) replaces the default for it" {
	cat >limited.routes <<-'EOF'
	route /both/{a}
		limit 2/h burst 2
		call x /x?body={a}
		jq {x: $x.text}
	end
	EOF
	start_serve --routes limited.routes
	for want in 200 200 429; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/both/q")" = "$want" ]
	done
	curl -s -D head -o /dev/null "$SERVE/both/q"
	grep -q 'RateLimit-Policy: "/both/{a}";q=2;w=3600' head
	# other paths have no limit without --rate-limit
	for _ in 1 2 3; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/plain")" = 200 ]
	done
	printf 'route /r\n\tlimit lots\n\tcall x /x\n\tjq .\nend\n' >bad.routes
	run --separate-stderr relay-serve --routes bad.routes
	[ "$status" -eq 78 ]
	[ "$stderr" = "relay-serve: bad.routes:2: bad limit 'lots': a count per s, m, h or d, as 100/m" ]
}
