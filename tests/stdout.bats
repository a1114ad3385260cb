#!/usr/bin/env bats
# Every program notices a failed write to standard output, as cat does:
# full (/dev/full) or closed, it exits 74 and says so.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	export RELAY_UPSTREAM="file://$ROOT/share/examples/menu-api{path}.json"
	relay-fetch /restaurant >/dev/null
	# Each command writes something on success.
	COMMANDS=(
		"list-dishes"
		"list-dishes --json bikupan"
		"relay-fetch /version"
		"relay-fetch --records /version"
		"relay-cache ls"
		"relay-cache stats"
		"relay-cache dump"
		"relay-cache get file://$ROOT/share/examples/menu-api/restaurant.json"
		"relay-merge {} -"
		"relay-fetch --help"
	)
}

@test "a full standard output: exit 74 with a message" {
	for cmd in "${COMMANDS[@]}"; do
		run --separate-stderr bash -c "$cmd </dev/null >/dev/full"
		[ "$status" -eq 74 ] || { echo "$cmd: $status"; false; }
		[[ "$stderr" == *"write error on standard output"* ]] ||
		    { echo "$cmd: $stderr"; false; }
	done
}

@test "a closed standard output: exit 74 with a message, nothing lost into another file" {
	for cmd in "${COMMANDS[@]}"; do
		run --separate-stderr bash -c "$cmd </dev/null >&-"
		[ "$status" -eq 74 ] || { echo "$cmd: $status"; false; }
		[[ "$stderr" == *"write error on standard output"* ]] ||
		    { echo "$cmd: $stderr"; false; }
	done
	[ "$(sqlite3 "$RELAY_CACHE" 'PRAGMA integrity_check')" = ok ]
}

@test "under | head, a filter ends quietly (SIGPIPE)" {
	run --separate-stderr bash -c 'relay-cache dump | head -c 1 >/dev/null; echo "${PIPESTATUS[0]}"'
	[ -z "$stderr" ]
	[ "$output" = 0 ] || [ "$output" = 141 ]
}
