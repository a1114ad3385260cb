#!/usr/bin/env bats
# One upstream request per URL at a time, across every process that
# shares the cache file; and no connection waits for another's write.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	start_upstream
}

waiting() {	# a waiter has made the FIFO it waits on
	[ -n "$(ls "$RELAY_CACHE-wake")" ]
}

marked() {
	[ "$(sqlite3 "$RELAY_CACHE" 'SELECT count(*) FROM uncacheable')" -eq 1 ]
}

stored() {
	[ -n "$(relay-cache ls)" ]
}

burst() {	# burst PORT PATH N [options]: N requests at once
	"$ROOT/tests/fixture/burst" 127.0.0.1 "$@"
}

@test "200 concurrent misses over the workers: one upstream request, 200 identical answers" {
	start_serve --workers 2
	path='/one?delay=200&cc=max-age=60&body=shared'
	run burst "$SERVE_PORT" "$path" 200
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | cut -f1 | sort | uniq -c | awk '{print $1, $2}')" = "200 200" ]
	[ "$(echo "$output" | cut -f3 | sort -u | wc -l)" -eq 1 ]
	[ "$(requests_for "$path")" -eq 1 ]
	[ "$(echo "$output" | cut -f2 | grep -cx 'relay; fwd=miss')" -eq 1 ]
	# One taken up only after the answer is in is a hit: as good.
	[ "$(echo "$output" | grep -c -e 'fwd=miss; collapsed' -e 'relay; hit')" -eq 199 ]
	logged 200
	[ "$(access_log | jq -r .cache | sed 's/^hit$/collapsed/' | sort | uniq -c | awk '{print $1, $2}' | tr '\n' ' ')" = "199 collapsed 1 miss " ]
}

@test "30 concurrent misses through Accept=yes processes: one upstream request" {
	port=$(free_port)
	systemd-socket-activate -a -l "127.0.0.1:$port" relay-serve --upstream "$UP" --cache "$RELAY_CACHE" 2>serve.log &
	SERVE_PID=$!
	eventually curl -s -o /dev/null "http://127.0.0.1:$port/ready"
	path='/accept?delay=300&cc=max-age=60&body=each'
	run burst "$port" "$path" 30
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | cut -f1 | sort -u)" = 200 ]
	[ "$(echo "$output" | cut -f3 | sort -u | wc -l)" -eq 1 ]
	[ "$(requests_for "$path")" -eq 1 ]
}

@test "a response that cannot be stored releases every waiter at once" {
	start_serve
	path='/private?delay=400&cc=no-store&body=mine'
	run burst "$SERVE_PORT" "$path" 20
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | cut -f1 | sort -u)" = 200 ]
	[ "$(requests_for "$path")" -eq 20 ]
	# The 19 waiters reached the upstream together, not one by one.
	[ "$(curl -s "$UP/_max")" -ge 10 ]
	# Marked for a while: the next ones do not wait for each other.
	eventually marked

}

@test "a holder killed with SIGKILL: a waiter in another process takes over" {
	start_serve --workers 1
	holder=$SERVE_PID holder_port=$SERVE_PORT
	path='/killed?delay=2000&cc=max-age=60&body=late'
	curl -s -o /dev/null "http://127.0.0.1:$holder_port$path" &
	EXTRA_PIDS+=($!)
	eventually requests_are "$path" 1
	mv serve.log holder.log
	start_serve --collapse-timeout 60
	curl -s --max-time 20 "$SERVE$path" >answer &
	waiter=$!
	# Waiting on the holder's lease: no request of its own yet.
	eventually waiting
	[ "$(requests_for "$path")" -eq 1 ]
	kill -KILL "$holder"
	wait "$waiter"
	[ "$(cat answer)" = late ]
	[ "$(requests_for "$path")" -eq 2 ]
}

@test "a write lock held by another process: a fresh hit answers meanwhile" {
	start_serve --workers 1
	curl -s -o /dev/null "$SERVE/fresh?cc=max-age=600&body=hit"
	eventually stored
	python3 - "$RELAY_CACHE" <<'PY' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
open("locked", "w").close()
time.sleep(3)
db.execute("COMMIT")
open("released", "w").close()
PY
	EXTRA_PIDS+=($!)
	eventually [ -e locked ]
	# A miss, whose response the writer cannot store while locked.
	[ "$(curl -s --max-time 10 "$SERVE/miss?cc=max-age=600&body=new")" = new ]
	[ "$(curl -s --max-time 10 "$SERVE/fresh?cc=max-age=600&body=hit")" = hit ]
	[ ! -e released ]
	# Once the lock is gone the miss is stored, and then a hit.
	eventually [ -e released ]
	[ "$(curl -s -D head --max-time 10 "$SERVE/miss?cc=max-age=600&body=new")" = new ]
	grep -q 'Cache-Status: relay; hit' head
}

@test "read-your-writes: a request right after a miss is a hit" {
	start_serve --workers 1
	for i in 1 2 3 4 5; do
		curl -s -D "head$i" -o /dev/null "$SERVE/ryw$i?cc=max-age=60" "$SERVE/ryw$i?cc=max-age=60"
		[ "$(grep -c 'Cache-Status: relay; hit' "head$i")" -eq 1 ]
	done
}

@test "relay-fetch: duplicate URLs in one run are one transfer" {
	url="$UP/dup?delay=200&cc=max-age=60&body=d"
	run relay-fetch -j 8 "$url" "$url" "$url" "$url"
	[ "$status" -eq 0 ]
	[ "$output" = dddd ]
	[ "$(requests_for '/dup?delay=200&cc=max-age=60&body=d')" -eq 1 ]
}

@test "relay-fetch and relay-serve asking at once: one upstream request" {
	start_serve
	path='/both?delay=500&cc=max-age=60&body=b'
	curl -s "$SERVE$path" >served &
	client=$!
	eventually requests_are "$path" 1
	run relay-fetch "$UP$path"
	wait "$client"
	[ "$output" = b ]
	[ "$(cat served)" = b ]
	[ "$(requests_for "$path")" -eq 1 ]
}

gone() {	# gone PID: the process has exited
	! kill -0 "$1" 2>/dev/null
}

@test "relay-fetch waiting for relay-serve's request is woken when the answer is stored, not by its collapse timeout" {
	start_serve
	path='/woken?hold=1&cc=max-age=60&body=w'
	curl -s "$SERVE$path" >served &
	client=$!
	eventually requests_are "$path" 1
	relay-fetch --collapse-timeout 1h --records "$UP$path" >fetched 2>err &
	fetch=$!
	EXTRA_PIDS+=("$fetch")
	eventually waiting	# on the lease's FIFO, not on a timer
	curl -s -o /dev/null "$UP/_release"
	eventually gone "$fetch"
	wait "$fetch" || { cat err; false; }
	wait "$client"
	[ "$(cat served)" = w ]
	jq -e '.text == "w" and .source == "hit"' fetched
	[ "$(requests_for "$path")" -eq 1 ]
}
