#!/usr/bin/env bats
# relay-serve's delivery queue (--queue): unsafe requests kept in the
# queue file before the 202, delivered later in arrival order per path,
# retried, failed after a bound but kept; nothing lost when a process is
# killed; relay-cache queue lists, retries and removes.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	start_upstream
}

# Queue entry ID, as /_relay/queue/TOKEN tells it (its token from the
# queue file: a client has it from the 202's Location).
entry() {
	local token
	token=$(relay-cache queue --json | jq -r "select(.id == $1) | .token")
	curl -s "$SERVE/_relay/queue/$token"
}

# entry_is ID STATE: until it is.
entry_is() {
	[ "$(entry "$1" | jq -r .state)" = "$2" ]
}

# effects N: the fixture has had N effects (2xx answers to writes).
effects() {
	[ "$(curl -s "$UP/_effects" | grep -c .)" -eq "$1" ]
}

# effects_at_least N
effects_at_least() {
	[ "$(curl -s "$UP/_effects" | grep -c .)" -ge "$1" ]
}

# Every entry in the queue file is delivered.
all_delivered() {
	! relay-cache queue | cut -f2 | grep -qv delivered || false
}

# stats_are JQ JSON: /_relay/stats says so.
stats_are() {
	[ "$(curl -s "$SERVE/_relay/stats" | jq -c "$1")" = "$2" ]
}

@test "a POST to a queued path is kept, answered 202 with where to look, and delivered" {
	start_serve --queue '/orders*'
	run curl -s -D head -d 'one pizza' "$SERVE/orders?echo=1"
	tr -d '\r' <head >h
	grep -q '^HTTP/1.1 202 ' h
	# its path names it by 128 random bits, never by a number to count
	local token
	token=$(sed -n 's|^Location: /_relay/queue/\([0-9a-f]\{32\}\)$|\1|p' h)
	[ -n "$token" ]
	[ "$(jq -c . <<<"$output")" = "{\"id\":1,\"state\":\"queued\",\"location\":\"/_relay/queue/$token\"}" ]
	eventually entry_is 1 delivered
	[ "$(curl -s "$SERVE/_relay/queue/$token" | jq -r .token)" = "$token" ]
	# a number, another token, a token's prefix: not found, admin or not
	local bad
	for bad in 1 0 "$(printf '%032d' 1)" "${token:0:31}" "${token}0" \
	    "$(tr a-f A-F <<<"$token")" "$token/../1"; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' \
		    "$SERVE/_relay/queue/$bad")" = 404 ] || { echo "$bad"; false; }
	done
	[ "$(entry 1 | jq -c '[.status, .body, .attempts, .method, .error]')" = '[200,"POST one pizza",1,"POST",null]' ]
	effects 1
	# other methods and paths go as they always did
	[ "$(curl -s -d x -o /dev/null -w '%{http_code}' "$SERVE/other")" = 200 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/orders")" = 200 ]
	# counted: one queued request, one delivery
	eventually stats_are '[.requests.queued, .queue_deliveries.delivered]' '[1,1]'
}

@test "retries follow Retry-After, the Idempotency-Key goes on every attempt, and after --queue-attempts an entry fails but is kept" {
	start_serve --queue '/q/*' --queue-attempts 2
	curl -s -o /dev/null -H 'Idempotency-Key: k-1' -d a "$SERVE/q/retried?fail_first=2&retry_after=1"
	curl -s -o /dev/null -d b "$SERVE/q/broken?status=500"
	eventually entry_is 2 failed
	[ "$(entry 2 | jq -c '[.attempts, .status, .error]')" = '[2,500,"Internal Server Error"]' ]
	# the other had two 503s, a second apart as they asked: failed too
	eventually entry_is 1 failed
	[ "$(curl -s "$UP/_log" | jq -r 'select(.path | startswith("/q/retried")) | .headers["Idempotency-Key"]' | sort -u)" = k-1 ]
	# relay-cache queue lists them; retry queues a failed one again
	[ "$(relay-cache queue | cut -f1,2,3,4)" = $'1\tfailed\t2\t503\n2\tfailed\t2\t500' ]
	relay-cache queue retry 1
	eventually entry_is 1 delivered
	[ "$(entry 1 | jq -c '[.attempts, .status]')" = '[1,200]' ]
	[ "$(curl -s "$UP/_count?path=/q/retried%3Ffail_first%3D2%26retry_after%3D1")" -eq 3 ]
	relay-cache queue rm 2
	[ "$(relay-cache queue --json | jq -r .state)" = delivered ]
	run -66 relay-cache queue rm 2
	[ "$output" = "relay-cache: queue entry 2: no such entry" ]
	run -2 relay-cache queue frobnicate
}

@test "one path's requests are delivered in the order they came, across workers" {
	start_serve --workers 2 --queue '/seq'
	for i in $(seq 20); do
		curl -s -o /dev/null -d "$i" "$SERVE/seq?delay=5"
	done
	eventually effects 20
	[ "$(curl -s "$UP/_effects" | tr '\n' ' ')" = "$(seq 20 | tr '\n' ' ')" ]
}

# post_all N PREFIX [KEYED]: N POSTs over 10 paths, bodies PREFIX-i,
# each with an Idempotency-Key if KEYED; every one answered 202. The
# fixture holds their deliveries until it is told (release).
post_all() {
	local n=$1 prefix=$2 keyed=${3:-} i args=()
	for i in $(seq "$n"); do
		[ -z "$keyed" ] || args+=(-H "Idempotency-Key: $prefix-$i")
		args+=(-s -w '%{http_code}\n' -o /dev/null -d "$prefix-$i"
		    "$SERVE/q/p$((i % 10))?delay=50&hold=1" --next)
	done
	curl "${args[@]}" -s -o /dev/null "$SERVE/_relay/stats" >codes
	[ "$(sort codes | uniq -c | awk '{print $1, $2}')" = "$n 202" ]
}

# Lets the held deliveries go: a path's next is 50 ms after the last.
release() {
	curl -s -o /dev/null "$UP/_release"
}

# Kills relay-serve and its workers at once, as the OOM killer would.
kill_serve() {
	kill -9 $(pgrep -P "$SERVE_PID") "$SERVE_PID"
	wait "$SERVE_PID" 2>/dev/null || true
}

# every_effect PREFIX N HOW: each body PREFIX-1..N had HOW many effects:
# once, or at least once.
every_effect() {
	curl -s "$UP/_effects" | grep "^$1-" | sort | uniq -c |
	    awk -v n="$2" -v how="$3" '{ seen++; if ($1 > 1 && how == "once") bad++ }
	    END { exit !(seen == n && !bad) }'
}

@test "SIGKILL while 500 queued POSTs are being delivered: after a restart each is delivered exactly once with an Idempotency-Key" {
	start_serve --workers 2 --queue '/q/*'
	post_all 500 keyed yes
	release
	# well under way (10 paths of 50, 50 ms each: 2.5 s at least), not
	# done: then every process is killed at once
	eventually effects_at_least 100
	kill_serve
	[ "$(curl -s "$UP/_effects" | grep -c .)" -lt 500 ]
	start_serve --workers 2 --queue '/q/*'
	within 60 all_delivered
	[ "$(relay-cache queue | cut -f2 | sort | uniq -c | awk '{print $1, $2}')" = "500 delivered" ]
	every_effect keyed 500 once
}

@test "without an Idempotency-Key, a kill may deliver one twice but never loses one" {
	start_serve --queue '/q/*'
	post_all 100 plain
	release
	eventually effects_at_least 20
	kill_serve
	[ "$(curl -s "$UP/_effects" | grep -c .)" -lt 100 ]
	start_serve --queue '/q/*'
	within 60 all_delivered
	every_effect plain 100 at-least-once
}

@test "bad --queue-attempts is a usage error" {
	run -2 relay-serve --upstream "$UP" --queue '/x' --queue-attempts 0
	[[ "$output" == *"bad --queue-attempts '0': expected 1 to 1000"* ]]
}

@test "a large queued POST is held once in memory and never copied on disk by a change of state" {
	start_serve --workers 1 --queue '/big' --max-body 60000000
	head -c 50000000 /dev/zero | tr '\0' q >body
	[ "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @body \
	    "$SERVE/big?echo=1")" = 202 ]
	eventually all_delivered
	# the upstream had it whole, once
	[ "$(curl -s "$UP/_effects" | wc -c)" -eq $((50000000 + 1)) ]
	# the body in memory once (it was three times): 50 MB and the rest
	local hwm
	hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$SERVE_PID/status")
	sanitized || [ "$hwm" -lt $((50000 + 40000)) ] ||
	    { echo "peak RSS $hwm kB"; false; }
	# delivered, its body is gone from the file; the log keeps its room
	[ "$(sqlite3 "$RELAY_CACHE-queue" 'SELECT count(*) FROM queue_body')" -eq 0 ]
	curl -s -o /dev/null -d x "$SERVE/big"
	eventually all_delivered
	[ "$(stat -c %s "$RELAY_CACHE-queue-wal")" -le $((4 * 1024 * 1024)) ]
}

@test "a queued request without content is delivered without, one with empty content with Content-Length: 0" {
	start_serve --queue '/q/*'
	printf 'DELETE /q/none HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
	    "$ROOT/tests/fixture/rawhttp" 127.0.0.1 "$SERVE_PORT" | grep -q '^HTTP/1.1 202'
	printf 'POST /q/empty HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' |
	    "$ROOT/tests/fixture/rawhttp" 127.0.0.1 "$SERVE_PORT" | grep -q '^HTTP/1.1 202'
	eventually all_delivered
	saw() {	# saw PATH FIELD: the field the upstream got, or -
		curl -s "$UP/_log" | jq -rs --arg p "$1" --arg f "$2" \
		    '[.[] | select(.path == $p)] | last | .headers[$f] // "-"'
	}
	[ "$(saw /q/none Content-Length)" = - ]
	[ "$(saw /q/none Content-Type)" = - ]
	[ "$(saw /q/empty Content-Length)" = 0 ]
}

@test "a queue file of the first version is taken up: its entries and bodies kept, then delivered" {
	# the first version's schema, as its relay-serve made it
	sqlite3 "$RELAY_CACHE-queue" "PRAGMA journal_mode = WAL;
	    CREATE TABLE IF NOT EXISTS queue (  id INTEGER PRIMARY KEY AUTOINCREMENT,  method TEXT NOT NULL, url TEXT NOT NULL, path TEXT NOT NULL,  fields TEXT NOT NULL, body BLOB NOT NULL,  state TEXT NOT NULL, attempts INTEGER NOT NULL,  next_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL,  updated_ms INTEGER NOT NULL, status INTEGER,  response_type TEXT, response BLOB, error TEXT);CREATE INDEX IF NOT EXISTS queue_open ON queue (path, id)  WHERE state IN ('queued', 'delivering');CREATE INDEX IF NOT EXISTS queue_due ON queue (next_ms)  WHERE state IN ('queued', 'delivering');
	    INSERT INTO queue (method, url, path, fields, body, state, attempts,
	    next_ms, created_ms, updated_ms) VALUES ('POST', '$UP/old?echo=1',
	    '/old', 'Via: 1.1 relay' || char(13, 10), CAST('kept' AS BLOB),
	    'queued', 0, 0, 0, 0);" >/dev/null
	start_serve --queue '/old'
	eventually all_delivered
	[ "$(curl -s "$UP/_effects")" = kept ]
	[ "$(sqlite3 "$RELAY_CACHE-queue" 'PRAGMA user_version')" = 2 ]
}

@test "a queued request goes to its own URL without the credentials of another upstream" {
	start_serve --workers 1 --queue '/q'
	[ "$(curl -s -o /dev/null -w '%{http_code}' -d x "$SERVE/q?hold=1")" = 202 ]
	eventually requests_are '/q?hold=1' 1
	kill_serve	# the delivery is cut short: the entry is taken up again
	curl -s -o /dev/null "$UP/_release"
	# the next relay-serve on the file has another upstream, with a password
	python3 "$ROOT/tests/fixture/upstream.py" other-port &
	EXTRA_PIDS+=($!)
	eventually [ -s other-port ]
	UP_WAS=$UP
	UP="http://user:s3cr3t@127.0.0.1:$(cat other-port)" start_serve --workers 1 --queue '/q'
	UP=$UP_WAS
	eventually requests_are '/q?hold=1' 2
	curl -s "$UP/_log" | jq -e -s '[.[] | select(.path == "/q?hold=1")] |
	    length == 2 and all(.headers.Authorization == null)'
	# its own upstream still gets them
	curl -s -o /dev/null "$SERVE/mine"
	curl -s "http://127.0.0.1:$(cat other-port)/_log" |
	    jq -e 'select(.path == "/mine") | .headers.Authorization == "Basic dXNlcjpzM2NyM3Q="'
}
