#!/usr/bin/env bats
# The size budget (--max-size, relay-cache purge --to): kept at write
# time, expired entries first, then SIEVE; evictions counted; bodies
# over --max-object-size relayed whole and not stored.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	start_upstream
}

# Samples the cache file's size (and its WAL's) every 10 ms until told
# to stop by the file "stop", writing the largest of each to sizes;
# returns once it has started.
watch_sizes() {
	python3 -c 'import os, sys, time
db, wal, most = sys.argv[1], sys.argv[1] + "-wal", [0, 0]
open("watching", "w").close()
while not os.path.exists("stop"):
    for i, f in enumerate((db, wal)):
        try:
            most[i] = max(most[i], os.stat(f).st_size)
        except FileNotFoundError:
            pass
    time.sleep(0.01)
open("sizes", "w").write("%d %d\n" % tuple(most))' "$RELAY_CACHE" &
	EXTRA_PIDS+=($!)
	eventually [ -e watching ]
}

@test "--max-size 8M under 50 MB of distinct responses: the file stays under 8 MiB plus one body throughout" {
	start_serve --workers 2 --max-size 8M
	watch_sizes
	urls=()
	for i in $(seq 200); do	# 200 x 256 KiB: 50 MiB
		urls+=(-o /dev/null "$SERVE/big/$i?size=262144&cc=max-age=600")
	done
	curl -s -Z --parallel-max 8 -w '%{http_code} %{size_download}\n' \
	    "${urls[@]}" >out 2>/dev/null
	[ "$(sort -u out)" = "200 262144" ]
	[ "$(grep -c . out)" -eq 200 ]
	touch stop
	eventually [ -s sizes ]
	read -r db wal <sizes
	echo "largest: file $db, WAL $wal"
	[ "$db" -le $((8 * 1024 * 1024 + 262144)) ]
	# and its write-ahead log is started over: bounded too
	[ "$wal" -le $((8 * 1024 * 1024)) ]
	# what is kept fits, and the rest was evicted, and counted
	[ "$(relay-cache stats --json | jq '.bytes <= 8 * 1048576')" = true ]
	evicted() { [ "$(relay-cache stats --json | jq .evictions)" -gt 150 ]; }
	eventually evicted
	# the budget still answers: the last ones are hits
	run curl -s -D head -o /dev/null "$SERVE/big/200?size=262144&cc=max-age=600"
	grep -q 'Cache-Status: relay; hit' head
}

@test "--max-object-size: a larger body is relayed whole and not stored, with a length or without" {
	start_serve --max-object-size 100K
	for q in 'size=204800' 'size=204800&chunked=1'; do
		[ "$(curl -s -o /dev/null -w '%{size_download}' "$SERVE/o?$q&cc=max-age=600")" = 204800 ]
	done
	[ "$(curl -s -o /dev/null -w '%{size_download}' "$SERVE/small?size=1000&cc=max-age=600")" = 1000 ]
	stored_small() { relay-cache ls | grep -q small; }
	eventually stored_small
	[ "$(relay-cache ls | grep -c '/o?')" -eq 0 ]
	# relay-fetch keeps to it too
	relay-fetch --max-object-size 100K -o /dev/null "$UP/f?size=204800&chunked=1&cc=max-age=600"
	[ "$(relay-cache ls | grep -c '/f?')" -eq 0 ]
}

@test "relay-cache purge --to: expired entries first, then by SIEVE, until within the size" {
	for i in $(seq 8); do
		relay-fetch -o /dev/null "$UP/p/$i?size=102400&cc=max-age=600"
	done
	relay-fetch -o /dev/null "$UP/gone?size=102400&cc=max-age=0"
	relay-fetch -o /dev/null "$UP/p/1?size=102400&cc=max-age=600"	# a hit
	run --separate-stderr relay-cache purge --to 400K -v
	[[ "$stderr" =~ ^relay-cache:\ evicted\ ([0-9]+)\ entries\;\ ([0-9]+)\ bytes\ in\ use,\ within\ 409600$ ]]
	[ "${BASH_REMATCH[2]}" -le 409600 ]
	evicted=${BASH_REMATCH[1]}
	relay-cache ls >ls
	! grep -q /gone ls || false
	grep -q '/p/1?' ls		# hit since stored: kept
	! grep -q '/p/2?' ls || false	# the oldest not hit: gone
	grep -q '/p/8?' ls		# the newest: kept
	[ "$(relay-cache stats --json | jq .evictions)" -eq "$evicted" ]
	[ "$evicted" -ge 5 ]
}

@test "relay-cache purge --to 0 evicts every entry and says what it could not free" {
	for i in 1 2 3; do
		relay-fetch -o /dev/null "$UP/z/$i?size=102400&cc=max-age=600"
	done
	run --separate-stderr relay-cache purge --to 0 -v
	[ "$status" -eq 0 ]
	[[ "$stderr" =~ ^relay-cache:\ evicted\ 3\ entries\;\ ([0-9]+)\ bytes\ in\ use,\ over\ 0:\ the\ rest\ is\ the\ file\'s\ own\ pages\ and\ bodies\ being\ written$ ]]
	[ "${BASH_REMATCH[1]}" -lt 102400 ]
	[ -z "$(relay-cache ls)" ]
	run --separate-stderr relay-cache purge --to 1G -v
	[[ "$stderr" =~ ^relay-cache:\ evicted\ 0\ entries\;\ [0-9]+\ bytes\ in\ use,\ within\ 1073741824$ ]]
}

@test "bad sizes are usage errors" {
	for args in "--max-size 8X" "--max-size 0" "--max-object-size -1"; do
		# shellcheck disable=SC2086
		run relay-serve --upstream "$UP" $args
		[ "$status" -eq 2 ] || { echo "$args: $status"; false; }
	done
	run -2 relay-cache purge --to lots
	[[ "$output" == *"bad size 'lots'"* ]]
}

@test "a URL keeps at most 64 variants: storing a 70th through relay-serve evicts the least recently used" {
	start_serve
	for i in $(seq 70); do
		curl -sf -o /dev/null -H "Accept-Language: l$i" "$SERVE/v?cc=max-age=600&h=Vary:Accept-Language"
		# one at a time: each is stored before the next, in order
		stored() { [ "$(relay-cache stats --json | jq '.entries + .evictions')" -eq "$i" ]; }
		eventually stored
	done
	[ "$(relay-cache stats --json | jq -c '[.entries, .evictions]')" = '[64,6]' ]
	# the newest is a hit; the oldest was evicted
	curl -s -D head -o /dev/null -H "Accept-Language: l70" "$SERVE/v?cc=max-age=600&h=Vary:Accept-Language"
	grep -q 'Cache-Status: relay; hit' head
	curl -s -D head -o /dev/null -H "Accept-Language: l1" "$SERVE/v?cc=max-age=600&h=Vary:Accept-Language"
	grep -q 'Cache-Status: relay; fwd=miss' head
}

@test "--max-size 1M: the write-ahead log stays within a quarter of it, and the transaction that passed it" {
	start_serve --workers 1 --max-size 1M
	watch_sizes
	urls=()
	for i in $(seq 30); do	# 30 x 100 KiB: 3 MiB
		urls+=(-o /dev/null "$SERVE/w/$i?size=102400&cc=max-age=600")
	done
	curl -s -Z --parallel-max 4 -w '%{http_code}\n' "${urls[@]}" >out 2>/dev/null
	[ "$(sort -u out)" = 200 ]
	evicted() { [ "$(relay-cache stats --json | jq .evictions)" -gt 15 ]; }
	eventually evicted
	touch stop
	eventually [ -s sizes ]
	read -r db wal <sizes
	echo "largest: file $db, WAL $wal"
	[ "$db" -le $((1024 * 1024 + 262144)) ]
	# a quarter, and a transaction of two chunks at most, and its pages
	[ "$wal" -le $((262144 + 2 * 262144 + 65536)) ]
}
