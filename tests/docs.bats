#!/usr/bin/env bats
# The manual pages are well-formed and agree with the programs.

bats_require_minimum_version 1.5.0
load helpers

@test "every manual page passes mandoc -Tlint" {
	for page in "$ROOT"/man/*.[0-9]; do
		run mandoc -Tlint -Wwarning "$page"
		[ "$output" = "" ] || { echo "$output"; false; }
	done
}

@test "rendered pages have no broken quotes (a Ql that swallowed a list)" {
	for page in "$ROOT"/man/*.[0-9]; do
		run bash -c "mandoc -Tutf8 '$page' | col -b | grep -n \"’’\\|‘[^’ ]*, ‘\""
		[ "$output" = "" ] || { echo "$page: $output"; false; }
	done
}

@test "--help describes every option of the synopsis, one line each" {
	for prog in list-dishes relay-cache relay-fetch relay-merge relay-serve; do
		"$prog" --help >help
		sed '/^$/q' help >synopsis
		[ "$(wc -l <help)" -gt "$(wc -l <synopsis)" ]
		for opt in $(grep -o -- '--[a-z-]*' synopsis | sort -u); do
			grep -Eq -- "^ +(-[a-zA-Z], )?$opt([ ,=]|\$)|, $opt " help ||
			    { echo "$prog: $opt not described"; false; }
		done
	done
}

@test "relay-cache.1 documents every command of the usage text" {
	for cmd in $(relay-cache --help | sed -n 's/^ *\(usage:\)\{0,1\} *relay-cache \([a-z]*\).*/\2/p'); do
		grep -q "^\.It Cm $cmd" "$ROOT/man/relay-cache.1" || { echo "missing: $cmd"; false; }
	done
}

@test "relay-fetch.1 documents every option of the usage text" {
	for opt in $(relay-fetch --help | sed '/^$/q' | grep -o -- '--[a-z-]*'); do
		# mdoc writes --name as Fl \-name
		grep -qF ".Op Fl \\${opt#-}" "$ROOT/man/relay-fetch.1" ||
		    { echo "missing: $opt"; false; }
	done
}

@test "relay-serve.8 documents every option of the usage text" {
	for opt in $(relay-serve --help | sed '/^$/q' | grep -o -- '--[a-z-]*'); do
		grep -qF ".Op Fl \\${opt#-}" "$ROOT/man/relay-serve.8" ||
		    { echo "missing: $opt"; false; }
		grep -qF ".It Fl \\${opt#-}" "$ROOT/man/relay-serve.8" ||
		    { echo "not described: $opt"; false; }
	done
}

@test "list-dishes.1 documents every option of the usage text" {
	for opt in $(list-dishes --help | sed '/^$/q' | grep -o -- '--[a-z-]*'); do
		grep -qF ".It Fl \\${opt#-}" "$ROOT/man/list-dishes.1" ||
		    { echo "not described: $opt"; false; }
	done
}

@test "relay-merge.1 documents every option of the usage text" {
	for opt in $(relay-merge --help | sed '/^$/q' | grep -o -- '--[a-z-]*'); do
		grep -qF ".It Fl \\${opt#-}" "$ROOT/man/relay-merge.1" ||
		    grep -qF ", Fl \\${opt#-}" "$ROOT/man/relay-merge.1" ||
		    { echo "not described: $opt"; false; }
	done
}

@test "every shell script passes shellcheck when it is installed" {
	command -v shellcheck >/dev/null || skip "shellcheck is not installed"
	shellcheck -x "$ROOT"/share/examples/cache-* "$ROOT"/share/examples/fetch-all \
	    "$ROOT"/share/examples/serve-here "$ROOT"/share/examples/demo \
	    "$ROOT"/share/examples/menu-all "$ROOT"/share/examples/protected-api \
	    "$ROOT"/share/bash-completion/completions/list-dishes \
	    "$ROOT"/tests/fuzz/run \
	    "$ROOT"/tests/hammer "$ROOT"/tests/layers \
	    "$ROOT"/tests/run $(grep -l '^#!/bin/\(ba\)\{0,1\}sh' "$ROOT"/tests/bench/*) \
	    "$ROOT"/.ci/run \
	    "$ROOT"/tests/conformance/run \
	    "$ROOT"/tests/deps-present "$ROOT"/tests/install-deps
}

@test "an unknown option: the program's name, the option, the usage, exit 2" {
	for prog in list-dishes relay-cache relay-fetch relay-merge relay-serve; do
		run --separate-stderr "$prog" --bogus </dev/null
		[ "$status" -eq 2 ]
		[ "${stderr_lines[0]}" = "$prog: unrecognized option '--bogus'" ]
		[[ "${stderr_lines[1]}" == "usage: $prog "* ]]
	done
}

# tests/doc-examples on FILE: every example runs, offline on the
# snapshot, and prints what the text shows; those marked not runnable
# are listed, with their reasons, as skipped by design.
examples_of() {
	run "$ROOT/tests/doc-examples" "$ROOT/$1"
	echo "$output"
	sed -n 's/^skip /# skipped by design: /p' <<<"$output" >&3
	[ "$status" -eq 0 ]
	grep -q '^ok ' <<<"$output"
}

# exit_statuses PAGE: the statuses its EXIT STATUS section lists (.It N).
exit_statuses() {
	sed -n '/^\.Sh EXIT STATUS/,/^\.Sh /s/^\.It \([0-9][0-9]*\).*/\1/p' "$ROOT/man/$1"
}

# [OUT=FILE] exits N PROG ARGS...: PROG, its output to FILE (/dev/null),
# exits with N, a status its page and the table of relay(7) both list.
exits() {
	local want=$1 page
	shift
	run bash -c '"$@" >"$0"' "${OUT:-/dev/null}" "$@"
	[ "$status" -eq "$want" ] || { echo "$*: $status, not $want: $output"; false; }
	page=$(cd "$ROOT/man" && ls "$1".[18])
	exit_statuses "$page" | grep -qx "$want" || { echo "$page lacks $want"; false; }
	exit_statuses relay.7 | grep -qx "$want" || { echo "relay.7 lacks $want"; false; }
}

@test "each program's EXIT STATUS lists what it exits with, and the table of relay(7) lists each of them" {
	for page in list-dishes.1 relay-cache.1 relay-fetch.1 relay-merge.1 relay-serve.8; do
		[ -n "$(exit_statuses "$page")" ]
		for n in $(exit_statuses "$page"); do
			exit_statuses relay.7 | grep -qx "$n" || { echo "relay.7 lacks $page's $n"; false; }
		done
	done
	echo nope >notdb
	echo '"x"' >x.json
	exits 5 relay-merge 'error("x")' x.json
	exits 65 relay-merge . notdb
	exits 66 relay-merge . missing.json
	OUT=/dev/full exits 74 relay-merge . x.json
	exits 2 relay-merge
	exits 2 relay-fetch --bogus
	exits 65 relay-fetch --upstream http://127.0.0.1:1 --cache notdb /x
	exits 66 relay-fetch --cacert missing http://127.0.0.1:1/
	exits 69 relay-fetch --retry 0 http://127.0.0.1:1/x
	exits 78 relay-fetch --shared foo://x http://127.0.0.1:1/
	OUT=/dev/full exits 74 relay-fetch --help
	exits 65 relay-cache -c notdb ls
	exits 66 relay-cache queue rm 5
	RELAY_CACHE='' HOME='' exits 78 relay-cache ls
	OUT=/dev/full exits 74 relay-cache --help
	exits 2 relay-serve --bogus
	exits 65 relay-serve --upstream http://127.0.0.1:1/ --cache notdb --listen 127.0.0.1:0
	exits 66 relay-serve --upstream http://127.0.0.1:1/ --cacert missing --listen 127.0.0.1:0
	exits 73 relay-serve --upstream http://127.0.0.1:1/ --access-log missing/log --listen 127.0.0.1:0
	exits 78 relay-serve --upstream 'not a url' --listen 127.0.0.1:0
	exits 78 relay-serve --upstream http://127.0.0.1:1/ --admin-token-file missing --listen 127.0.0.1:0
	exits 78 relay-serve --upstream http://127.0.0.1:1/ --routes missing --listen 127.0.0.1:0
	exits 69 list-dishes --upstream http://127.0.0.1:1
	exits 65 list-dishes --upstream http://127.0.0.1:1 --cache notdb
	OUT=/dev/full exits 74 list-dishes --help
}

@test "README.md's examples run offline and print what it shows, make demo's among them" {
	examples_of README.md
	# the block that shows make demo is one of those that ran
	line=$(grep -n -B1 '^\$ make demo$' "$ROOT/README.md" | sed -n 's/^\([0-9]*\)-```console$/\1/p')
	[ -n "$line" ]
	grep -qx "ok README.md:$line" <<<"$output"
}

@test "README's table of the programs gives each page's NAME line, and links it" {
	for page in "$ROOT"/man/*.[0-9]; do
		name=$(sed -n 's/^\.Nm //p' "$page" | head -1)
		section=${page##*.}
		description=$(sed -n 's/^\.Nd //p' "$page")
		row="| [$name($section)](man/$name.$section) | $description |"
		grep -qxF "$row" "$ROOT/README.md" || { echo "no row: $row"; false; }
	done
}

@test "list-dishes(1) EXAMPLES run offline and print what they show" {
	examples_of man/list-dishes.1
}

@test "relay-cache(1) EXAMPLES run offline and print what they show" {
	examples_of man/relay-cache.1
}

@test "relay-cache(5) EXAMPLES run offline and print what they show" {
	examples_of man/relay-cache.5
}

@test "relay-fetch(1) EXAMPLES run offline and print what they show" {
	examples_of man/relay-fetch.1
}

@test "relay-merge(1) EXAMPLES run offline and print what they show" {
	examples_of man/relay-merge.1
}

@test "relay-routes(5) EXAMPLES run offline and print what they show" {
	examples_of man/relay-routes.5
}

@test "relay-serve(8) EXAMPLES run offline and print what they show" {
	examples_of man/relay-serve.8
}

@test "relay(7) EXAMPLES run offline and print what they show" {
	examples_of man/relay.7
}

@test "the example checker fails wrong output, a failed command, an unmarked transcript, a skip without reason" {
	cat >doc.md <<-'EOF'
		```console
		$ list-dishes --region Uppsala | head -1 | cut -f1
		bikupan
		$ list-dishes bikupn
		list-dishes: no restaurant 'bikupn'; did you mean bikupan?
		$ echo $?
		1
		```

		```console
		$ list-dishes --region Uppsala | cut -f1
		hubben
		```

		```console
		$ list-dishes nowhere
		```

		```sh
		$ rm -rf /
		```

		<!-- example: not runnable: -->
		```console
		$ systemctl start relay-serve.socket
		```

		<!-- example: not runnable: needs systemd as process 1 -->
		```console
		$ systemctl start relay-serve.socket
		```
	EOF
	run "$ROOT/tests/doc-examples" doc.md
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"ok $PWD/doc.md:1"$'\n'* ]]
	[[ "$output" == *"FAIL $PWD/doc.md:10"$'\n'*"printed:"*"|dufva-sikt"* ]]
	[[ "$output" == *"FAIL $PWD/doc.md:15"$'\n'*"exited 1"* ]]
	[[ "$output" == *"FAIL $PWD/doc.md:19: a transcript fenced as 'sh', not 'console'"* ]]
	[[ "$output" == *"FAIL $PWD/doc.md:24: not runnable, with no reason"* ]]
	[[ "$output" == *"skip $PWD/doc.md:29: needs systemd as process 1"* ]]
	# a page: \e and \& undone, a block with no command, a marked one
	cat >page.1 <<-'EOF'
		.Sh EXAMPLES
		.Bd -literal
		$ printf '%s\en' 'a\e-b' | tr -d '\e\e'
		a-b
		\&...
		.Ed
		.Bd -literal
		[Service]
		.Ed
		.\" example: not runnable: needs a Redis on another host
		.Bd -literal
		$ redis-cli -h 10.0.0.5 ping
		.Ed
	EOF
	run "$ROOT/tests/doc-examples" page.1
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "FAIL $PWD/page.1:7: an example with no command" ]
	[ "${lines[1]}" = "ok $PWD/page.1:2" ]
	[ "${lines[2]}" = "skip $PWD/page.1:11: needs a Redis on another host" ]
}

@test "INSTALL, debian/control and the programs name one oldest SQLite, and older is refused" {
	oldest=$(sed -n 's/^#define SQLITE_OLDEST_NAME[[:space:]]*"\(.*\)"$/\1/p' "$ROOT/lib/store/store.c")
	[ -n "$oldest" ]
	number=$(sed -n 's/^#define SQLITE_OLDEST[[:space:]]*\([0-9]*\)$/\1/p' "$ROOT/lib/store/store.c")
	IFS=. read -r major minor patch <<<"$oldest"
	[ "$number" -eq $((major * 1000000 + minor * 1000 + patch)) ]
	# every version INSTALL and the package name is that one
	grep -o 'SQLite [0-9.]*[0-9] or later' "$ROOT/INSTALL" | sort -u >named
	[ "$(cat named)" = "SQLite $oldest or later" ]
	grep -o 'libsqlite3-[0-9a-z]* ([^)]*)' "$ROOT/debian/control" | sort -u >named
	[ "$(cat named)" = "libsqlite3-0 (>= $oldest)"$'\n'"libsqlite3-dev (>= $oldest)" ]
	# a library one patch older than that is refused, by name, exit 70
	cat >old.c <<-EOF
		int sqlite3_libversion_number(void) { return $((number - 1)); }
		const char *sqlite3_libversion(void) { return "older"; }
	EOF
	cc -shared -fPIC -o old.so old.c
	for cmd in "relay-cache stats" "relay-fetch /version" "list-dishes --offline"; do
		# (a sanitized build wants its runtime first: told otherwise)
		run --separate-stderr env LD_PRELOAD="$PWD/old.so" \
		    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" $cmd
		echo "$cmd: $status $stderr"
		[ "$status" -eq 70 ]
		[[ "$stderr" == *"SQLite older is older than $oldest, the oldest relay works with"* ]]
	done
}

# make install into dest/ with PREFIX (and any other variables), then
# checks that pages, units and the inetd line name that prefix's paths,
# each of which is installed, and none of the default's.
installed_paths_are() {
	local prefix=$1 page path
	shift
	rm -rf dest
	make -s -C "$ROOT" install DESTDIR="$PWD/dest" PREFIX="$prefix" "$@" >install.log
	if [ "$prefix" != /usr/local ]; then
		run grep -rlI /usr/local dest
		[ -z "$output" ] || { echo "names /usr/local: $output"; false; }
	fi
	for page in dest"$prefix"/share/man/man*/*; do
		run mandoc -Tlint -Wwarning "$page"
		[ -z "$output" ] || { echo "$output"; false; }
	done
	# every path under the prefix that a page, unit or inetd.conf names
	grep -rhoI -- "$prefix/[^[:space:];,)\"'\\]*" dest | sed 's/[.]$//; s/{.*//' |
	    sort -u >named
	[ "$(wc -l <named)" -gt 10 ]
	while read -r path; do
		[ -e "dest$path" ] || { echo "named, not installed: $path"; false; }
	done <named
}

@test "make install: pages, units and the inetd line name the paths of its prefix, each installed" {
	installed_paths_are /usr/local
	grep -qx 'ExecStart=/usr/local/bin/relay-serve' \
	    dest/usr/local/share/relay/examples/systemd/relay-serve.service
	installed_paths_are /opt/relay
	grep -qx 'ExecStart=/opt/relay/bin/relay-serve' \
	    dest/opt/relay/share/relay/examples/systemd/relay-serve.service
	grep -q '^ExecStart=/opt/relay/bin/relay-serve --shared-password-file ' \
	    dest/opt/relay/share/relay/examples/systemd/relay-serve.service.d/shared-password.conf
	grep -q '/opt/relay/bin/relay-serve' dest/opt/relay/share/relay/examples/inetd.conf
	grep -qF 'file:///opt/relay/share/relay/examples/menu-api{path}.json' \
	    dest/opt/relay/share/man/man1/list-dishes.1
	# as debian/rules installs
	installed_paths_are /usr EXAMPLEDIR=/usr/share/doc/relay/examples
	grep -qx 'ExecStart=/usr/bin/relay-serve' \
	    dest/usr/share/doc/relay/examples/systemd/relay-serve.service
	grep -q '/usr/share/doc/relay/examples/systemd/relay-serve.socket' \
	    dest/usr/share/man/man8/relay-serve.8
}
