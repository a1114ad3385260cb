#!/usr/bin/env bats
# The recipes in share/examples run as documented.

bats_require_minimum_version 1.5.0
load helpers

@test "cache-copy copies every entry into another cache" {
	printf one | relay-cache put --ttl 1h https://api.example/1
	head -c 400000 /dev/urandom >two.bin
	relay-cache put https://api.example/2 <two.bin
	run "$ROOT/share/examples/cache-copy" "$RELAY_CACHE" copy.db
	[ "$status" -eq 0 ]
	[ "$(relay-cache -c copy.db get https://api.example/1)" = one ]
	relay-cache -c copy.db get https://api.example/2 | cmp - two.bin
}

@test "cache-copy without two files is a usage error" {
	run "$ROOT/share/examples/cache-copy" only.db
	[ "$status" -eq 2 ]
}

@test "cache-report lists the largest entries first" {
	printf small | relay-cache put https://api.example/small
	body big 5000 | relay-cache put --ttl 0 https://api.example/big
	run "$ROOT/share/examples/cache-report" 1
	[ "$status" -eq 0 ]
	[ "$output" = $'5000\tstale\t0\thttps://api.example/big' ]
}

@test "fetch-all fetches every node of an index, as records, through the cache" {
	start_upstream --root "$ROOT/tests/fixture/menu"
	export RELAY_UPSTREAM=$UP
	run --separate-stderr "$ROOT/share/examples/fetch-all" /restaurant \
	    '.restaurants[] | "/restaurant/\(.identifier)"' 4
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r '.json.restaurant.title' | tr '\n' ,)" = "Bikupan,Svarta Räfven," ]
	run "$ROOT/share/examples/fetch-all" /restaurant \
	    '.restaurants[] | "/restaurant/\(.identifier)"'
	[ "$(echo "$output" | jq -r .source | sort -u)" = hit ]
}

@test "serve-here serves the upstream on a local port through the cache" {
	start_upstream --root "$ROOT/tests/fixture/menu"
	port=$(free_port)
	RELAY_UPSTREAM=$UP "$ROOT/share/examples/serve-here" "$port" 2>serve.log &
	SERVE_PID=$!
	for _ in $(seq 50); do
		curl -s -o /dev/null "http://127.0.0.1:$port/version" && break
		sleep 0.1
	done
	run curl -s "http://127.0.0.1:$port/restaurant"
	[ "$(echo "$output" | jq -r '.restaurants[0].identifier')" = bikupan ]
	run curl -s -D head "http://127.0.0.1:$port/restaurant"
	grep -q 'Cache-Status: relay; hit' head
	relay-cache ls | grep -q "$UP/restaurant"
}

@test "serve-here refuses a port that is not a number" {
	run "$ROOT/share/examples/serve-here" eighty
	[ "$status" -eq 2 ]
}

@test "make demo tours the programs over the snapshot and stops its server" {
	port=$(free_port)
	run env DEMO_PORT="$port" make -s -C "$ROOT" demo
	[ "$status" -eq 0 ]
	[[ "$output" == *$'bikupan\tBikupan\tUppsala\n'* ]]
	[[ "$output" == *$'bikupan\tBikupan\tUppsala\tMåndag: '* ]]
	[[ "$output" == *$'svarta-rafven\tSvarta Räfven\tMåndag: Vegetarisk'* ]]
	[[ "$output" =~ of\ [0-9]+\ requests,$'\n'[1-9][0-9]*\ were\ answered\ from\ the\ cache ]]
	! curl -s -o /dev/null "http://127.0.0.1:$port/" || false
	[ -z "$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'relay-demo.*' -newer "$BATS_TEST_TMPDIR" 2>/dev/null)" ]
}

@test "protected-api: client limits, spared hits, queued writes and metrics, together" {
	start_upstream
	port=$(free_port)
	RELAY_UPSTREAM=$UP CLIENT_RATE=1/h CLIENT_BURST=2 UPSTREAM_RATE=5/s \
	    "$ROOT/share/examples/protected-api" "$port" 2>serve.log &
	SERVE_PID=$!
	eventually grep -q 'listening on' serve.log
	base=http://127.0.0.1:$port
	code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
	# an API key's two requests pass, the third is refused…
	[ "$(code -H 'X-Api-Key: a' "$base/menu?cc=max-age=600")" = 200 ]
	[ "$(code -H 'X-Api-Key: a' "$base/other")" = 200 ]
	[ "$(code -H 'X-Api-Key: a' "$base/third")" = 429 ]
	# …but fresh hits cost nothing
	[ "$(code -H 'X-Api-Key: a' "$base/menu?cc=max-age=600")" = 200 ]
	# a write is kept and delivered
	[ "$(code -H 'X-Api-Key: b' -d '{"dish":12}' "$base/orders")" = 202 ]
	delivered() { [ "$(relay-cache queue | cut -f2)" = delivered ]; }
	eventually delivered
	# and the metrics say it all
	curl -s "$base/_relay/metrics" | promtool check metrics
	counted() { [ "$(curl -s "$base/_relay/stats" | jq -c '[.requests.throttled, .requests.queued, .queue_deliveries.delivered]')" = '[1,1,1]' ]; }
	eventually counted
}

@test "protected-api needs an upstream and a numeric port" {
	run -2 "$ROOT/share/examples/protected-api" eighty
	run env -u RELAY_UPSTREAM "$ROOT/share/examples/protected-api" 8000
	[ "$status" -ne 0 ]
	[[ "$output" == *"set RELAY_UPSTREAM"* ]]
}
