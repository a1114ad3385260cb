#!/usr/bin/env bats
# Every program notices a failed write to standard output, as cat does:
# full (/dev/full) or closed, it exits 74 and says so. What it says on
# standard error never carries a raw control byte from elsewhere.

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

@test "a bad option is told escaped, not by getopt as given: exit 2, the usage, no raw control byte" {
	esc=$'\e]0;pwned\a'
	c1=$'\xc2\x9b31m\xff'
	for prog in list-dishes relay-cache relay-fetch relay-merge relay-serve; do
		for spelling in "--$esc" "--x$c1=1" "-$esc" "-$c1" "--help=$esc"; do
			run --separate-stderr "$prog" "$spelling" </dev/null
			[ "$status" -eq 2 ] || { echo "$prog $spelling: $status"; false; }
			printf '%s\n' "$stderr" >err
			printable_lines err || { cat -v err; false; }
			[[ "${stderr_lines[0]}" == "$prog: "*"option"* ]]
			[[ "${stderr_lines[1]}" == "usage: $prog "* ]]
		done
		run --separate-stderr "$prog" "--$esc"
		[ "${stderr_lines[0]}" = "$prog: unrecognized option '--\\x1B]0;pwned\\x07'" ]
		run --separate-stderr "$prog" "-$c1"
		[ "${stderr_lines[0]}" = "$prog: invalid option '-\\xC2'" ]
		run --separate-stderr "$prog" "--help=$esc"
		[ "${stderr_lines[0]}" = "$prog: option '--help' doesn't allow an argument" ]
	done
	# ambiguous; a missing argument, long and short
	run --separate-stderr relay-fetch "--no$esc"
	[ "${stderr_lines[0]}" = "relay-fetch: unrecognized option '--no\\x1B]0;pwned\\x07'" ]
	run --separate-stderr relay-fetch --no
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "relay-fetch: option '--no' is ambiguous" ]
	run --separate-stderr relay-merge --input
	[ "${stderr_lines[0]}" = "relay-merge: option '--input' requires an argument" ]
	run --separate-stderr relay-fetch -j
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "relay-fetch: option '-j' requires an argument" ]
	run --separate-stderr relay-cache ls --cache
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "relay-cache: option '--cache' requires an argument" ]
}

# Whether a file is UTF-8 holding no control character but newlines:
# no ESC, CR, BEL, DEL or C1 (U+0080 to U+009F) as it is.
printable_lines() {
	python3 -c 'import sys
data = open(sys.argv[1], "rb").read()
try:
    text = data.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit("not UTF-8: %s" % e)
raw = sorted({c for c in text if (c < " " and c != "\n") or "\x7f" <= c < "\xa0"})
if raw:
    sys.exit("raw control characters: %r" % raw)' "$1"
}

@test "diagnostics show text from elsewhere escaped: no raw control byte or invalid UTF-8 reaches stderr" {
	start_upstream
	esc=$'\e[31m\r\a'		# refused in a URL: an invalid URL's message
	c1=$'\xc2\x9b31m\xff\xfe'	# C1 CSI and invalid UTF-8: taken in a URL
	: >err
	# relay-fetch: URLs as arguments, on standard input, from the upstream
	relay-fetch "http://x/$esc" 2>>err || true
	relay-fetch --offline "$UP/$c1" 2>>err || true
	relay-fetch --retry 0 "$UP/nf?status=404&x=$c1" 2>>err || true
	printf '%s\n' "http://x/$esc" "$UP/$c1" | relay-fetch --offline 2>>err || true
	relay-fetch -H "X-A$esc: 1" "$UP/a" 2>>err || true
	# relay-cache: URLs as arguments and in records
	relay-cache get "$UP/$c1" 2>>err || true
	relay-cache rm "$UP/$c1" 2>>err || true
	relay-cache get "http://x/$esc" 2>>err || true
	{
		printf '{"url":"http://x/\\u001b[31m\\u0007\\r","text":""}\n'
		printf '{"url":"http://x/a","headers":{"x\\u001b[2J\\u009b":"v"},"text":""}\n'
		printf '{"url":"http://x/a","\\u001b]0;title\\u0007":nul,"text":""}\n'
		printf '{"url":"http://x/a","text":"\xff\xfe"}\n'
		printf '{"url":"%s","text":""}\n' "$esc"
	} | relay-cache load 2>>err || true
	# relay-merge: file names, records' errors, jq's messages
	relay-merge . "missing$esc$c1.json" 2>>err || true
	printf '{"url":"http://x/\\u001b","status":0,"error":"\\u001b[31m\\u009b"}\n' |
	    relay-merge '[inputs]' >/dev/null 2>>err || true
	echo '"x"' | relay-merge 'error("\u001b[2J\u0007\u009b")' 2>>err || true
	cat -v err
	[ "$(grep -c '' err)" -eq 17 ]
	printable_lines err
	# each is shown as an escape instead
	grep -qF 'http://x/\x1B[31m\r\x07' err
	grep -qF '\u009B31m\xFF\xFE' err
}

# Text with ESC, CR, BEL, a C1 control and bytes that are not UTF-8.
hostile() {
	esc=$'\e[31m\r\a' c1=$'\xc2\x9b31m\xff\xfe'
	bad=$esc$c1
}

@test "relay-serve: option values, file names and LISTEN_FDS in its messages are shown escaped" {
	hostile
	: >err
	for args in "--upstream http://x/$bad" "--upstream $c1" \
	    "--listen 127.0.0.1:$bad" "--listen [$bad]:80" \
	    "--admin-token-file missing$bad" "--access-log missing$bad/log" \
	    "--burst $bad" "--limit-key $bad" "--rate-limit-fail $bad" \
	    "--max-body $bad" "--queue-attempts $bad" \
	    "--upstream-burst $bad" "--workers $bad" "--rate-limit $bad" \
	    "--upstream-rate $bad" "--shared redis://$bad" \
	    "--shared redis://x --shared-password-file missing$bad" \
	    "--cache missing$bad/cache.db"; do
		# shellcheck disable=SC2086
		! relay-serve $args </dev/null 2>>err ||
		    { echo "$args: exit 0"; false; }
	done
	LISTEN_FDS=$bad bash -c 'LISTEN_PID=$$ exec relay-serve' </dev/null 2>>err || true
	cat -v err
	[ "$(grep -c '' err)" -eq 19 ]
	printable_lines err
	grep -qF "bad --listen '127.0.0.1:\x1B[31m\r\x07\u009B31m\xFF\xFE'" err
	grep -qF "got '\x1B[31m\r\x07\u009B31m\xFF\xFE'" err
}

@test "relay-serve: a routes file's name and contents are shown escaped, at start and on SIGHUP" {
	hostile
	start_upstream
	name="r$bad.routes"
	: >err
	relay-serve --upstream "$UP" --routes "missing$bad" </dev/null 2>>err || true
	for text in "route /x\n\tcall a /a\n\t$bad x\nend\n" \
	    "route /x$bad\n\tcall a /a\n\tjq .\nend\nroute /x$bad\n" \
	    "route /x\n\tcall a$bad /a\n\tcall a$bad /a\nend\n" \
	    "route /x\n\tcall a /a\n\theader A: \${V$bad}\nend\n" \
	    "route /x\n\tcall a /a\n\tjq $bad\nend\n"; do
		# shellcheck disable=SC2059
		printf "$text" >"$name"
		relay-serve --upstream "$UP" --routes "$name" </dev/null 2>>err ||
		    [ $? -eq 78 ] || { echo "$text: exit $?"; false; }
	done
	printf 'route /x\n\tcall a /a\n\tjq .\nend\n' >"$name"
	start_serve --routes "$name"
	printf "route /x\n\t$bad\nend\n" >"$name"
	kill -HUP "$SERVE_PID"
	eventually grep -q 'routes not reloaded' serve.log
	printf 'route /y\n\tcall a /a\n\tjq .\nend\n' >"$name"
	kill -HUP "$SERVE_PID"
	eventually grep -q 'routes reloaded' serve.log
	grep -av '^{' serve.log >>err
	cat -v err
	[ "$(grep -c '' err)" -ge 9 ]
	printable_lines err
	grep -qF "unknown directive '\x1B[31m\r\x07\u009B31m\xFF\xFE'" err
	grep -qF "route '/x\x1B[31m\r\x07\u009B31m\xFF\xFE' defined twice" err
	grep -qF "variable 'V\x1B[31m\r\x07\u009B31m\xFF\xFE' is not set" err
	grep -qF "routes not reloaded, the old ones stay: r\x1B[31m" err
	grep -qF "routes reloaded from 'r\x1B[31m\r\x07\u009B31m\xFF\xFE.routes'" err
}

@test "relay-serve: the cache file's name in its warnings is shown escaped" {
	hostile
	start_upstream
	cache="c$bad.db"
	mkdir "$cache-lease" "$cache-buckets" "$cache-queue.lock"
	: >err
	# the lease, the rate-limit buckets and the queue's lock
	relay-serve --upstream "$UP" --cache "$cache" --rate-limit 5/s \
	    --queue '/q/*' </dev/null 2>>err || true
	# a response it cannot store: a file size limit
	rmdir "$cache-queue.lock"
	relay-fetch --cache "$cache" "$UP/keep?cc=max-age=60&size=1000" >/dev/null 2>&1
	limit=$(( $(stat -c %s "$cache") / 1024 + 64 ))
	(ulimit -f "$limit"; exec relay-serve --upstream "$UP" --cache "$cache" \
	    --listen 127.0.0.1:0 2>>err) &
	EXTRA_PIDS+=($!)
	eventually grep -q 'listening on' err
	port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\)$/\1/p' err)
	curl -s -o /dev/null "http://127.0.0.1:$port/big?cc=max-age=60&size=3000000"
	eventually grep -q 'not cached' err
	grep -av '^{' err >err.lines
	cat -v err.lines
	printable_lines err.lines
	grep -qF "cannot open 'c\x1B[31m\r\x07\u009B31m\xFF\xFE.db-lease'" err.lines
	grep -qF "cannot open 'c\x1B[31m\r\x07\u009B31m\xFF\xFE.db-buckets'" err.lines
	grep -qF "cannot open 'c\x1B[31m\r\x07\u009B31m\xFF\xFE.db-queue.lock'" err.lines
	grep -qF "cannot write to cache 'c\x1B[31m\r\x07\u009B31m\xFF\xFE.db'" err.lines
}

@test "the shared tier's error replies are shown escaped, in every program" {
	start_upstream
	"$ROOT/tests/fixture/hostile-redis" rport &
	EXTRA_PIDS+=($!)
	eventually [ -s rport ]
	redis=redis://127.0.0.1:$(cat rport)
	start_serve --shared "$redis"
	curl -s -o /dev/null "$SERVE/a?cc=max-age=60"
	eventually grep -q 'shared tier: ERR' serve.log
	grep -av '^{' serve.log >err
	relay-fetch --shared "$redis" "$UP/b?cc=max-age=60" >/dev/null 2>>err
	relay-cache purge --all --shared "$redis" 2>>err || true
	cat -v err
	printable_lines err
	[ "$(grep -c 'ERR \\x1B\[31m\\x07\\u009B31m\\xFF\\xFE' err)" -eq 3 ]
}
