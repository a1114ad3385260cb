#!/usr/bin/env bats
# The shipped service definitions: the systemd units pass
# systemd-analyze verify, and the inetd.conf line runs as written.

bats_require_minimum_version 1.5.0
load helpers

UNITS=share/examples/systemd
INSTALLED=/usr/local/bin/relay-serve	# where the units and inetd.conf look

# Copies units to the test's directory with ExecStart= pointing at the
# built program, which systemd-analyze requires to exist.
copy_units() {
	mkdir -p units
	for unit in "$@"; do
		case $unit in *.service)
			grep -q "^ExecStart=$INSTALLED\$" "$ROOT/$UNITS/$unit" ||
			    { echo "$unit: ExecStart= is not $INSTALLED"; return 1; }
		esac
		sed "s|^ExecStart=$INSTALLED\$|ExecStart=$ROOT/bin/relay-serve|" \
		    "$ROOT/$UNITS/$unit" >"units/$unit"
	done
}

# systemd-analyze verify on unit files: it reports bad sections, keys
# and values as warnings yet exits 0, so any output is a failure too.
# Documentation=man:relay-serve(8) is looked up in this tree's pages.
verify() {
	local man=--man=yes
	command -v systemd-analyze >/dev/null ||
	    skip "systemd-analyze is not installed"
	if command -v man >/dev/null; then
		mkdir -p manpages/man8
		ln -sf "$ROOT/man/relay-serve.8" manpages/man8/
	else
		man=--man=no
	fi
	run env SYSTEMD_LOG_LEVEL=warning MANPATH="$PWD/manpages" \
	    systemd-analyze verify "$man" "$@"
	echo "$output"
	[ "$status" -eq 0 ] && [ -z "$output" ]
}

# The inetd.conf line's fields: service socktype proto wait user
# program argv...
inetd_line() {
	grep -v -e '^#' -e '^[[:space:]]*$' "$ROOT/share/examples/inetd.conf"
}

# The line's arguments after argv[0], with --cache moved to this test.
inetd_args() {
	inetd_line | awk '{ for (i = 8; i <= NF; i++) print $i }' |
	    sed "/^--cache\$/{n;s|.*|$BATS_TEST_TMPDIR/cache.db|;}"
}

@test "relay-serve.socket and relay-serve.service pass systemd-analyze verify" {
	copy_units relay-serve.socket relay-serve.service
	verify units/relay-serve.socket units/relay-serve.service
}

@test "the shared tier's drop-ins pass systemd-analyze verify, with and without a password" {
	copy_units relay-serve.socket relay-serve.service
	mkdir -p units/relay-serve.service.d
	# with no password: only the Redis, no credential asked for
	cp "$ROOT/$UNITS/relay-serve.service.d/shared.conf" units/relay-serve.service.d/
	! grep -v '^#' units/relay-serve.service.d/shared.conf |
	    grep -q 'Credential\|password\|^ExecStart' || false
	grep -q '^Environment=RELAY_SHARED=redis://' units/relay-serve.service.d/shared.conf
	# verify reads units/relay-serve.service.d/ too
	verify units/relay-serve.socket units/relay-serve.service
	# and the password beside it
	drop_in=relay-serve.service.d/shared-password.conf
	grep -q "^ExecStart=$INSTALLED --shared-password-file " "$ROOT/$UNITS/$drop_in"
	sed "s|^ExecStart=$INSTALLED |ExecStart=$ROOT/bin/relay-serve |" \
	    "$ROOT/$UNITS/$drop_in" >"units/$drop_in"
	verify units/relay-serve.socket units/relay-serve.service
}

@test "relay-serve-accept.socket and its template pass systemd-analyze verify" {
	copy_units relay-serve-accept.socket relay-serve-accept@.service
	grep -q '^Accept=yes$' units/relay-serve-accept.socket
	verify units/relay-serve-accept.socket units/relay-serve-accept@.service
}

@test "the verification reports a bad key, a bad value and a missing program" {
	copy_units relay-serve.socket relay-serve.service
	verify units/relay-serve.socket units/relay-serve.service
	echo 'ProtectSystem=strictest' >>units/relay-serve.service
	run ! verify units/relay-serve.socket units/relay-serve.service
	[[ $output == *"ProtectSystem"* ]]
	copy_units relay-serve-accept.socket relay-serve-accept@.service
	sed -i 's/^Accept=yes/Acept=yes/' units/relay-serve-accept.socket
	run ! verify units/relay-serve-accept.socket units/relay-serve-accept@.service
	[[ $output == *"Acept"* ]]
	copy_units relay-serve-accept.socket relay-serve-accept@.service
	sed -i "s|^ExecStart=.*|ExecStart=$BATS_TEST_TMPDIR/missing|" \
	    units/relay-serve-accept@.service
	run ! verify units/relay-serve-accept.socket units/relay-serve-accept@.service
	[[ $output == *"missing"* ]]
}

@test "both sockets listen on port 8000 of the loopback address" {
	for unit in relay-serve.socket relay-serve-accept.socket; do
		[ "$(grep '^ListenStream=' "$ROOT/$UNITS/$unit")" = \
		    "ListenStream=127.0.0.1:8000" ]
	done
}

@test "the inetd.conf line is one stream service on port 8000 running relay-serve" {
	[ "$(inetd_line | wc -l)" -eq 1 ]
	read -r service socktype proto wait user program argv0 rest < <(inetd_line)
	[ "$service $socktype $proto $wait" = "8000 stream tcp nowait" ]
	getent passwd "$user" >/dev/null
	[ "$program" = "$INSTALLED" ]
	[ "$argv0" = relay-serve ]
	[[ $rest == *"--cache "* ]]
}

@test "the inetd.conf arguments serve a piped request; no upstream gives 502" {
	mapfile -t args < <(inetd_args)
	[ "${#args[@]}" -gt 0 ]
	# Every https:// connection goes to a closed port instead.
	printf 'GET /restaurant HTTP/1.0\r\n\r\n' >request
	run --separate-stderr env -u no_proxy -u NO_PROXY \
	    https_proxy=http://127.0.0.1:1 http_proxy=http://127.0.0.1:1 \
	    relay-serve "${args[@]}" <request
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = $'HTTP/1.1 502 Bad Gateway\r' ]
	[ "${output##*$'\n'}" = '{"status":502,"error":"Bad Gateway","detail":"upstream failed"}' ]
	echo "$stderr" | jq -e 'select(.target == "/restaurant") | .status == 502'
	[ -s "$BATS_TEST_TMPDIR/cache.db" ]
}

# inetd(8) passes the connection as standard input, output and error.
@test "under inetd, keep-alive requests get clean answers (the log stays off the connection)" {
	start_upstream
	mapfile -t args < <(inetd_args | sed "/^--upstream\$/{n;s|.*|$UP|;}")
	python3 - "$BATS_TEST_TMPDIR/inetd-port" "$ROOT/bin/relay-serve" \
	    "${args[@]}" 2>inetd.err <<-'EOF' &
		import os, socket, sys
		s = socket.create_server(("127.0.0.1", 0))
		with open(sys.argv[1] + ".tmp", "w") as f:
		    f.write(str(s.getsockname()[1]))
		os.rename(sys.argv[1] + ".tmp", sys.argv[1])
		while True:
		    c, _ = s.accept()
		    if os.fork() == 0:
		        for fd in (0, 1, 2):
		            os.dup2(c.fileno(), fd)
		        os.execv(sys.argv[2], ["relay-serve"] + sys.argv[3:])
		    c.close()
	EOF
	INETD_PID=$!
	for _ in $(seq 100); do
		[ -s inetd-port ] && break
		sleep 0.05
	done
	base=http://127.0.0.1:$(cat inetd-port)
	run curl -sS --max-time 10 "$base/a?cc=max-age=60" "$base/b?body=two"
	kill "$INETD_PID"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "/a?cc=max-age=60two" ]
}
