#!/usr/bin/env bats
# relay-serve's cap on what every process together sends to the
# upstream (--upstream-rate): turns spaced as the rate says, a bounded
# wait for one, then stale or 503; and an upstream's Retry-After pausing
# every process.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	start_upstream
}


@test "--upstream-rate 5/s: 50 clients over three processes, and the upstream never sees more than 5 in any second" {
	rate=(--upstream-rate 5/s --upstream-wait 2s)
	start_serve --workers 2 "${rate[@]}"
	start_activated "${rate[@]}"
	urls=()
	for i in $(seq 50); do
		if [ $((i % 3)) -eq 0 ]; then
			urls+=(-o /dev/null "$ACTIVATED/r/$i")
		else
			urls+=(-o /dev/null "$SERVE/r/$i")
		fi
	done
	curl -s -Z --parallel-max 50 \
	    -w '%{http_code} %header{retry-after}\n' "${urls[@]}" >out 2>/dev/null
	[ "$(grep -c . out)" -eq 50 ]
	passed=$(grep -c '^200 ' out)
	# each answer that passed is one upstream request, and no other went
	[ "$(arrivals /r/ | grep -c .)" -eq "$passed" ]
	# what waited got its turn within 2 s: the first, then one each 0.2 s
	[ "$passed" -ge 11 ] && [ "$passed" -lt 50 ]
	# the rest: 503, to come back when a turn is free again
	[ "$(grep -v '^200 ' out | cut -d' ' -f1 | sort -u)" = 503 ]
	! grep '^503 ' out | cut -d' ' -f2 | grep -qvE '^[1-9][0-9]*$' || false
	# any six arrivals span a second at least (jitter of 0.1 s allowed)
	arrivals_spaced /r/
}

@test "an upstream 429 with Retry-After: 2 stops every process's calls for 2 s, then they go" {
	rate=(--upstream-rate 100/s --upstream-burst 10 --upstream-wait 10s)
	start_serve "${rate[@]}"
	start_activated "${rate[@]}"
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/busy?status=429&retry_after=2")" = 429 ]
	# the pause is in the buckets before anyone asks again
	eventually paused_until_later
	curl -s -Z -w '%{http_code}\n' -o /dev/null "$SERVE/after/1" \
	    -o /dev/null "$ACTIVATED/after/2" -o /dev/null "$SERVE/after/3" \
	    -o /dev/null "$ACTIVATED/after/4" >out 2>/dev/null
	[ "$(sort -u out)" = 200 ]
	arrivals_after /busy /after/ 4
}

# Some bucket's arrival time is more than a second ahead: the pause
# (CACHE-buckets: a 128-byte header, then slots of hash and time).
paused_until_later() {
	python3 -c 'import struct, sys, time
slots = open(sys.argv[1], "rb").read()[128:]
later = time.time() * 1e6 + 1e6
sys.exit(not any(t > later for _, t in struct.iter_unpack("<Qq", slots)))' \
	    "$RELAY_CACHE-buckets"
}

@test "over the upstream's rate: a stale response answers if there is one, else 503 with Retry-After" {
	start_serve --upstream-rate 1/h --upstream-wait 0
	# the hour's one request stores a response that goes stale at once
	[ "$(curl -s "$SERVE/s?cc=max-age=0")" = "/s?cc=max-age=0" ]
	run curl -s -D head "$SERVE/s?cc=max-age=0"
	[ "$output" = "/s?cc=max-age=0" ]
	grep -qE 'Cache-Status: relay; hit; ttl=-?[0-9]+; detail=upstream-rate' head
	run curl -s -D head "$SERVE/none"
	grep -q '^HTTP/1.1 503 ' head
	retry=$(tr -d '\r' <head | sed -n 's/^Retry-After: //p')
	[ "$retry" -gt 3500 ] && [ "$retry" -le 3600 ]
	[ "$(jq -r .detail <<<"$output")" = "over the upstream's rate" ]
	# must-revalidate forbids stale: 503 rather than an old answer
	run curl -s -o /dev/null -w '%{http_code}' "$SERVE/s?cc=max-age=0,must-revalidate"
	[ "$output" = 503 ]
	[ "$(requests_for '/s?cc=max-age=0')" -eq 1 ]
	logged 4
	[ "$(access_log | jq -r '.cache + " " + (.error // "-")' | tail -3 | sort -u)" = \
	    "miss over the upstream's rate
stale over the upstream's rate" ]
}

@test "an upstream 503 with Retry-After pauses it, answering stale meanwhile" {
	# a burst, so that the quick requests before the pause all go out
	start_serve --upstream-rate 100/s --upstream-burst 10 --upstream-wait 0
	curl -s -o /dev/null "$SERVE/p?cc=max-age=0"
	# the same URL, now failing: Retry-After pauses, the stored one answers
	run curl -s -D head "$SERVE/p?cc=max-age=0"
	[ "$output" = "/p?cc=max-age=0" ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/q?status=503&retry_after=60")" = 503 ]
	[ "$(requests_for '/q?status=503&retry_after=60')" -eq 1 ]
	eventually paused_until_later
	run curl -s -D head "$SERVE/p?cc=max-age=0"
	[ "$output" = "/p?cc=max-age=0" ]
	grep -q 'detail=upstream-rate' head
	[ "$(requests_for '/p?cc=max-age=0')" -eq 2 ]
}

@test "bad --upstream-rate, --upstream-burst and --upstream-wait are usage errors" {
	run relay-serve --upstream "$UP" --upstream-rate 5
	[ "$status" -eq 2 ]
	[[ "$output" == *"bad --upstream-rate '5': expected a count per s, m, h or d"* ]]
	run relay-serve --upstream "$UP" --upstream-rate 5/s --upstream-burst 0
	[ "$status" -eq 2 ]
	[[ "$output" == *"bad --upstream-burst '0'"* ]]
	run relay-serve --upstream "$UP" --upstream-wait soon
	[ "$status" -eq 2 ]
	[[ "$output" == *"--upstream-wait"* ]]
}

@test "relay-fetch keeps --upstream-rate beside relay-serve on the same cache file: every URL fetched, no six arrivals within a second" {
	rate=(--upstream-rate 5/s --upstream-wait 2s)
	start_serve --workers 1 "${rate[@]}"
	for i in $(seq 12); do echo "$UP/r/fetch-$i?cc=no-store"; done >urls
	curl_urls=()
	for i in $(seq 8); do
		curl_urls+=(-o /dev/null "$SERVE/r/serve-$i?cc=no-store")
	done
	# the clients of relay-serve and relay-fetch's 12 URLs at once
	curl -s -Z --parallel-max 8 -w '%{http_code}\n' "${curl_urls[@]}" \
	    >served 2>/dev/null &
	clients=$!
	run --separate-stderr relay-fetch -j 8 "${rate[@]}" <urls
	wait "$clients"
	echo "$stderr"
	[ "$status" -eq 0 ]
	# relay-fetch waits for its turns: each of its URLs went, once
	[ "$(echo "$output" | grep -o '/r/fetch-[0-9]*' | wc -l)" -eq 12 ]
	[ "$(arrivals /r/fetch- | grep -c .)" -eq 12 ]
	# both programs' requests together kept the one rate
	arrivals_spaced /r/
}

@test "relay-fetch: an upstream's 429 with Retry-After pauses relay-serve's requests too" {
	rate=(--upstream-rate 100/s --upstream-burst 10 --upstream-wait 10s)
	start_serve "${rate[@]}"
	run relay-fetch --retry 0 "${rate[@]}" "$UP/busy?status=429&retry_after=2"
	[ "$status" -ne 0 ]
	eventually paused_until_later
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/after/1")" = 200 ]
	arrivals_after /busy /after/ 1
}

@test "relay-fetch: bad --upstream-rate and --upstream-burst are usage errors" {
	run relay-fetch --upstream "$UP" --upstream-rate 5 /x
	[ "$status" -eq 2 ]
	[[ "$output" == *"bad --upstream-rate '5': expected a count per s, m, h or d"* ]]
	run relay-fetch --upstream "$UP" --upstream-rate 5/s --upstream-burst 0 /x
	[ "$status" -eq 2 ]
	[[ "$output" == *"bad --upstream-burst '0'"* ]]
}
