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
