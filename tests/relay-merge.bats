#!/usr/bin/env bats
# relay-merge: jq programs over documents and relay-fetch records.

bats_require_minimum_version 1.5.0
load helpers

# A record as relay-fetch writes it.
record() {	# record URL STATUS JSON
	printf '{"url":"%s","method":"GET","status":%s,"source":"miss","headers":{},"json":%s}\n' \
	    "$1" "$2" "$3"
}

@test "inputs from standard input, files and -; -c and -r as in jq" {
	printf '{"a":1}\n{"a":2}\n' >two.json
	run relay-merge -c '[inputs.a]' two.json
	[ "$output" = '[1,2]' ]
	run relay-merge -c '[inputs.a]' <two.json
	[ "$output" = '[1,2]' ]
	run relay-merge -c '[inputs.a]' - two.json <two.json
	[ "$output" = '[1,2,1,2]' ]
	run relay-merge -r '[inputs.a] | map(tostring) | join(",")' two.json
	[ "$output" = '1,2' ]
	run relay-merge '{b: [inputs.a]}' two.json
	[ "$output" = "$(printf '{\n  "b": [\n    1,\n    2\n  ]\n}')" ]
}

@test "named inputs are \$name; several values make an array" {
	echo '{"data":[{"title":"Kick-off"}]}' >event.json
	printf '{"n":1}\n{"n":2}\n' >many.json
	run relay-merge -c --input event=event.json --input many=many.json \
	    '{title: $event.data[0].title, n: [$many[].n]}'
	[ "$status" -eq 0 ]
	[ "$output" = '{"title":"Kick-off","n":[1,2]}' ]
}

@test "records are seen whole, with their URL and status" {
	record https://api.example/a 200 '{"x":1}' >r.ndjson
	run relay-merge -c '[inputs | {url, status, x: .json.x}]' r.ndjson
	[ "$output" = '[{"url":"https://api.example/a","status":200,"x":1}]' ]
}

@test "the output never depends on the order fetches finished in" {
	{ record https://api.example/b 200 2; record https://api.example/a 200 1; } >ba
	{ record https://api.example/a 200 1; record https://api.example/b 200 2; } >ab
	[ "$(relay-merge -c '[inputs.json]' ba)" = '[1,2]' ]
	[ "$(relay-merge -c '[inputs.json]' ab)" = '[1,2]' ]
}

@test "--on-error fail: an error record stops it, naming the input and status" {
	record https://api.example/missing 404 '{"detail":"Not found"}' >r
	run --separate-stderr relay-merge --input event=r '$event'
	[ "$status" -eq 1 ]
	[ "$stderr" = "relay-merge: event (r: https://api.example/missing): HTTP status 404" ]
	[ -z "$output" ]
}

@test "--on-error partial: null in its place, \$incomplete, exit 1" {
	record https://api.example/missing 500 null >bad
	record https://api.example/ok 200 '{"v":7}' >good
	run --separate-stderr relay-merge -c --on-error partial --input a=bad \
	    --input b=good '{a: $a, b: $b.json.v, incomplete: $incomplete}'
	[ "$status" -eq 1 ]
	[ "$output" = '{"a":null,"b":7,"incomplete":["a"]}' ]
	[ "$stderr" = "relay-merge: incomplete: a (bad: https://api.example/missing): HTTP status 500" ]
}

@test "a bad program: the compile error points at the program text" {
	run --separate-stderr relay-merge '.a | ]' /dev/null
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"syntax error"*"line 1"* ]]
	[[ "$stderr" == *".a | ]"* ]]
}

@test "a program that would load a module is refused as a compile error, never an abort" {
	# libjq 1.6 would look in the working directory, or where an
	# import's metadata says: a module there must not be loaded
	mkdir lib
	echo 'def f: "loaded";' >lib/m.jq
	echo 'def f: "loaded";' >m.jq
	echo '"loaded"' >m.json
	for program in 'include "m"; f' 'import "m" as m; m::f' \
	    'import "m" as $m; $m' 'import "m" as m {search: "lib"}; m::f' \
	    'module {}; 1' $' # a comment\ninclude "x"; 1'; do
		run --separate-stderr relay-merge "$program" </dev/null
		[ "$status" -eq 65 ] || { echo "$program: $status"; false; }
		[ -z "$output" ]
		[[ "${stderr_lines[0]}" =~ ^'relay-merge: jq: error: '(include|import|module)' is not supported: relay loads no jq modules at <top-level>, line '[12]:$ ]]
		[ "${stderr_lines[2]}" = "relay-merge: jq: 1 compile error" ]
	done
	[ "${stderr_lines[1]}" = 'relay-merge: include "x"; 1' ]
	# names that only begin like a directive are names
	run relay-merge -c '{include: 1, import: .include_x, module: 2} | [.import, .include]' </dev/null
	[ "$status" -eq 0 ]
	[ "$output" = '[null,1]' ]
	run --separate-stderr relay-merge 'include::f' </dev/null
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"include::f/0 is not defined"* ]]
	# and nothing searches a path at run time
	run --separate-stderr relay-merge '"m" | modulemeta' </dev/null
	[ "$status" -eq 5 ]
	[ "$stderr" = "relay-merge: error at no input: module not found: m" ]
	run relay-merge -c '[get_search_list]' </dev/null
	[ "$output" = '[[]]' ]
}

@test "halt_error exits with its code and writes its message as jq does, escaped for a terminal" {
	for program in '"msg\n" | halt_error(3)' 'halt_error(7)' \
	    '{a: "\u009b"} | halt_error(300)' '"x\u001b[31m\ny\u0000z" | halt_error(-1)' \
	    '1, ("bye" | halt_error(1.7)), 2' '"quiet" | halt_error(0)'; do
		relay-merge -c "$program" </dev/null >"out" 2>"err" && rc=0 || rc=$?
		jq -nc "$program" >"jq-out" 2>/dev/null && jq_rc=0 || jq_rc=$?
		[ "$rc" -eq "$jq_rc" ] || { echo "$program: $rc, jq $jq_rc"; false; }
		cmp out jq-out
		printf '%s|%s|' "$rc" "$(cat -A err)" >>all
	done
	[ "$(cat all)" = '3|msg$|7||44|{"a":"\u009B"}$|255|x\x1B[31m$
y\x00z|1|bye|0|quiet|' ]
	# a plain halt ends the program as done; incomplete inputs still say 1
	run -0 relay-merge -c '1, halt, 2' </dev/null
	[ "$output" = 1 ]
	echo '{"url":"https://api.example/x","status":500,"source":"miss","headers":{}}' >bad
	run --separate-stderr relay-merge --on-error partial --input a=bad '"x" | halt_error(0)'
	[ "$status" -eq 1 ]
	[ "$stderr" = "$(printf 'relay-merge: incomplete: a (bad: https://api.example/x): HTTP status 500\nx')" ]
}

@test "stderr and debug write to standard error as in jq, C1 escaped" {
	run --separate-stderr relay-merge -c '1, ("a\u009bb" | stderr | empty), ({x: 2} | debug), 3' </dev/null
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '1\n{"x":2}\n3')" ]
	[ "$stderr" = '"a\u009Bb"["DEBUG:",{"x":2}]' ]
}

@test "standard output that cannot be written stops the program, exit 74; every status is in relay-merge(1)" {
	run --separate-stderr bash -c 'relay-merge "range(1e9)" </dev/null >/dev/full'
	[ "$status" -eq 74 ]
	[ "$stderr" = "relay-merge: write error on standard output: No space left on device" ]
	# the statuses relay-merge exits with, each listed in EXIT STATUS
	echo '{"url":"u","status":500}' >failed
	echo '{' >broken
	statuses=()
	for args in '.' '--input a=failed .' '--bogus .' 'error("x")' '.' 'nope(' \
	    '. missing' 'halt_error(9)'; do
		# shellcheck disable=SC2086
		relay-merge $args </dev/null >/dev/null 2>&1 && statuses+=(0) || statuses+=($?)
	done
	relay-merge . broken >/dev/null 2>&1 || statuses+=($?)
	relay-merge . </dev/null >/dev/full 2>&1 || statuses+=($?)
	[ "${statuses[*]}" = "0 1 2 5 0 65 66 9 65 74" ]
	listed=$(MANWIDTH=80 man "$ROOT/man/relay-merge.1" 2>/dev/null |
	    sed -n '/^EXIT STATUS/,/^[A-Z]/p' | awk '$1 ~ /^[0-9]+$/ { print $1 }' | tr '\n' ' ')
	for s in "${statuses[@]}"; do
		[ "$s" = 9 ] || [[ " $listed" == *" $s "* ]] || { echo "$s not in: $listed"; false; }
	done
}

@test "a runtime error names the input it was working on" {
	record https://api.example/r 200 '"text"' >r
	run --separate-stderr relay-merge '[inputs | .json.title]' r
	[ "$status" -eq 5 ]
	[ "$stderr" = 'relay-merge: error at r: https://api.example/r: Cannot index string with string "title"' ]
}

@test "bad input and bad options" {
	echo '{"a":' >broken.json
	run --separate-stderr relay-merge '.' broken.json
	[ "$status" -eq 65 ]
	[[ "$stderr" == "relay-merge: 'broken.json': "* ]]
	run --separate-stderr relay-merge '.' missing.json
	[ "$status" -eq 66 ]
	run relay-merge --input nofile '.'
	[ "$status" -eq 2 ]
	run relay-merge --input 1x=broken.json '.'
	[ "$status" -eq 2 ]
	run relay-merge --on-error sometimes '.'
	[ "$status" -eq 2 ]
	run relay-merge
	[ "$status" -eq 2 ]
}

@test "relay-fetch | relay-merge: every menu in one document" {
	start_upstream --root "$ROOT/share/examples/menu-api"
	export RELAY_UPSTREAM=$UP
	run "$ROOT/share/examples/menu-all" Uppsala
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r '[.[].title] | join(",")')" = "Bikupan,Dufva Sikt,Hubben,Linné,Rudbeck,Tallrik" ]
	[ "$(echo "$output" | jq '.[0].dishes | length')" -eq "$(jq '.restaurant.menu | length' "$ROOT/share/examples/menu-api/restaurant/bikupan.json")" ]
}

@test "jv reference counting: valgrind finds no leak or bad access" {
	skip_unless_valgrind relay-merge
	record https://api.example/b 200 '{"v":2}' >recs
	record https://api.example/a 404 null >>recs
	echo '{"data":[{"title":"T"}]}' >event.json
	for args in "-c [inputs.json]" "--on-error partial -c [inputs]" \
	    "-r --input e=event.json \$e.data[0].title" "-c .a|]" \
	    "[inputs|.json.v.x]"; do
		# shellcheck disable=SC2086
		valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
		    --error-exitcode=99 relay-merge $args recs >/dev/null 2>vg.log ||
		    [ $? -ne 99 ] || { cat vg.log; false; }
	done
}

@test "an input that cannot be read exits 66; a name with a leading digit says why" {
	mkdir adir
	run --separate-stderr relay-merge --input x=adir .
	[ "$status" -eq 66 ]
	[ "$stderr" = "relay-merge: cannot read 'adir': Is a directory" ]
	run --separate-stderr relay-merge --input x=missing.json .
	[ "$status" -eq 66 ]
	run --separate-stderr relay-merge --input 1x=adir .
	[ "$status" -eq 2 ]
	[ "$stderr" = "relay-merge: bad --input name '1x': a jq variable name cannot start with a digit" ]
}

@test "the EXAMPLES pipeline of relay-merge(1) works on the offline snapshot (no Content-Type)" {
	export RELAY_UPSTREAM="file://$ROOT/share/examples/menu-api{path}.json"
	run bash -c "relay-fetch /restaurant | jq -r '.restaurants[].identifier' |
	    sed 's|^|/restaurant/|' | relay-fetch -j 16 --records |
	    relay-merge '[inputs | .json.restaurant | {title, dishes: [.menu[].dish]}]'"
	[ "$status" -eq 0 ]
	[ "$(jq length <<<"$output")" -eq 14 ]
	[ "$(jq -r '.[0].title' <<<"$output")" = Bikupan ]
}

# Inputs past one read (64 KiB) and a pipe's buffer: 3000 records, one
# record of 1 MiB, and documents whose number and UTF-8 character
# straddle the first read's end.
big_inputs() {
	python3 - <<'PY'
import json
with open("many", "w") as f:
    for i in range(3000):
        f.write(json.dumps({"url": "https://api.example/%05d" % i,
            "status": 200, "source": "miss", "headers": {},
            "json": {"i": i, "pad": "p" * 100}}) + "\n")
with open("huge", "w") as f:
    f.write(json.dumps({"url": "https://api.example/huge", "status": 200,
        "source": "miss", "headers": {}, "json": {"s": "x" * (1 << 20)}}))
first = '{"pad":"' + "y" * (65536 - 20) + '","n":123456789012}\n'
# the first two-byte character's bytes are the second read's last and
# the third read's first
second = '"' + "y" * (131071 - len(first) - 1) + "\u00e9" * 10 + '"\n'
with open("split", "w", encoding="utf-8") as f:
    f.write(first + second)
PY
}

# merged_every_way FILE N EXPR EXPECTED: EXPR on $all, the N values of
# FILE, read as a file, from a pipe, redirected, as "-", and as
# --input's file or standard input.
merged_every_way() {
	local file=$1 n=$2 expr=$3 expected=$4 named
	named="(if $n == 1 then [\$in] else \$in end) as \$all | $expr"
	run -0 relay-merge -c "[inputs] as \$all | $expr" "$file"
	[ "$output" = "$expected" ]
	run -0 bash -c 'cat "$0" | relay-merge -c "$1"' "$file" \
	    "[inputs] as \$all | $expr"
	[ "$output" = "$expected" ]
	run -0 relay-merge -c "[inputs] as \$all | $expr" - <"$file"
	[ "$output" = "$expected" ]
	run -0 relay-merge -c --input "in=$file" "$named"
	[ "$output" = "$expected" ]
	run -0 bash -c 'cat "$0" | relay-merge -c --input in=- "$1"' "$file" \
	    "$named"
	[ "$output" = "$expected" ]
}

@test "inputs over 64 KiB and a pipe's buffer: many records, one huge one, values split across reads" {
	big_inputs
	merged_every_way many 3000 '[$all[].json.i] | [length, add]' '[3000,4498500]'
	merged_every_way huge 1 '[$all[].json.s | length]' '[1048576]'
	merged_every_way split 2 '[$all[] | if type == "object" then .n else length end]' '[123456789012,65536]'
	# as the issue met it: relay-fetch's records of big answers
	mkdir api
	for i in 1 2 3; do
		jq -nc --argjson i "$i" '{i: $i, s: ("x" * 200000)}' >"api/$i.json"
	done
	export RELAY_UPSTREAM="file://$PWD/api{path}.json"
	run -0 bash -c 'printf "/%s\n" 1 2 3 | relay-fetch --records |
	    relay-merge -c "[inputs.json | [.i, (.s | length)]]"'
	[ "$output" = '[[1,200000],[2,200000],[3,200000]]' ]
}

# A program's run is bounded in time and memory: a loop, a recursion
# without end, a memory bomb each end with the documented message and
# status (timeout's 30 s are the test's own bound, never reached).
@test "the program's outputs come to relay-merge in batches, not a write each" {
	command -v strace >/dev/null || skip "strace is not installed"
	# the child's pipe is its descriptor 3: two writes a value before
	# (LeakSanitizer cannot run under ptrace: a sanitized build's is off)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	    strace -f -e trace=write -o trace relay-merge -c 'range(10000)' </dev/null >out
	[ "$(wc -l <out)" -eq 10000 ] && [ "$(tail -1 out)" = 9999 ]
	# (a batch goes at the latest 10 ms after its first value: more
	# writes where the child is slow, as under valgrind)
	writes=$(grep -c '^[0-9]* *write(3,' trace)
	[ "$writes" -le 1000 ] || { echo "$writes writes"; false; }
}

@test "a program that runs too long or needs too much memory is stopped, saying which bound" {
	# a build with AddressSanitizer: its malloc may fail, as libc's does
	export ASAN_OPTIONS=allocator_may_return_null=1
	echo '{"a":1}' >x.json
	for program in 'def f: f; f' 'repeat(.) | empty' 'last(range(1e18))' \
	    '[inputs] | until(false; .)'; do
		run --separate-stderr timeout 30 relay-merge --program-timeout 1 \
		    "$program" x.json
		echo "$program: $status $stderr"
		[ "$status" -eq 65 ]
		[ "$stderr" = "relay-merge: the program took longer than 1s (--program-timeout)" ]
		[ -z "$output" ]
	done
	for program in 'def f: [f]; f' '[range(1e18)]' '[limit(1e9; repeat(1))]' \
	    'reduce range(1e9) as $i (""; . + "0123456789abcdef")'; do
		run --separate-stderr timeout 30 relay-merge --program-timeout 25 \
		    --program-max-memory 16M "$program" x.json
		echo "$program: $status $stderr"
		[ "$status" -eq 65 ]
		[ "$stderr" = "relay-merge: the program needed more than 16 MiB (--program-max-memory)" ]
	done
}

@test "a program's outputs come as it gives them, up to its bound; the defaults and bad bounds" {
	# endless output: written as it comes, then stopped
	run --separate-stderr timeout 30 bash -c \
	    'relay-merge --program-timeout 1 "repeat(1)" /dev/null | head -3'
	[ "$output" = "$(printf '1\n1\n1')" ]
	run --separate-stderr timeout 30 bash -c \
	    'relay-merge --program-timeout 1 -c "repeat(1)" /dev/null >out; echo $?'
	[ "$output" = 65 ]
	[ "$(head -c 4 out)" = "$(printf '1\n1\n')" ]
	# a value, or stderr text, given before a long computation comes at once
	run --separate-stderr timeout 30 relay-merge --program-timeout 1 -c \
	    '1, ("x" | stderr | empty), last(range(1e18))' /dev/null
	[ "$status" -eq 65 ]
	[ "$output" = 1 ]
	[ "$stderr" = "$(printf '"x"relay-merge: the program took longer than 1s (--program-timeout)')" ]
	# the defaults let a normal program be
	run -0 relay-merge -c '[range(100000)] | length' /dev/null
	[ "$output" = 100000 ]
	for bad in --program-timeout=0 --program-timeout=2x --program-timeout=2d \
	    --program-max-memory=512K --program-max-memory=lots; do
		run --separate-stderr relay-merge "$bad" . /dev/null
		[ "$status" -eq 2 ]
		[[ "$stderr" == "relay-merge: bad --program-"* ]]
	done
	# a libjq that crashes (its recursion past the stack) is said so
	run --separate-stderr timeout 90 relay-merge --program-timeout 60 \
	    'reduce range(1e6) as $i (null; [.]) | length' /dev/null
	[ "$status" -eq 70 ]
	[[ "$stderr" == *"relay-merge: the program crashed: "* ]]
}
