# Shared setup for the bats files: every test runs in its own
# directory with its own cache file, using the programs from bin/.

common_setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	PATH=$ROOT/bin:$PATH
	cd "$BATS_TEST_TMPDIR" || return 1
	unset CACHE_DIRECTORY XDG_CACHE_HOME RELAY_UPSTREAM
	export RELAY_CACHE=$BATS_TEST_TMPDIR/cache.db
	export HOME=$BATS_TEST_TMPDIR/home
	[ -z "${RELAY_VALGRIND:-}" ] || valgrind_shims
}

# RELAY_VALGRIND="relay-merge ...": those programs run under valgrind,
# which turns a definite leak or a bad access into exit status 99.
valgrind_shims() {
	local prog
	mkdir -p "$BATS_TEST_TMPDIR/valgrind-bin"
	for prog in $RELAY_VALGRIND; do
		printf '#!/bin/sh\nexec valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 %s "$@"\n' \
		    "$ROOT/bin/$prog" >"$BATS_TEST_TMPDIR/valgrind-bin/$prog"
		chmod +x "$BATS_TEST_TMPDIR/valgrind-bin/$prog"
	done
	PATH=$BATS_TEST_TMPDIR/valgrind-bin:$PATH
}

setup() {
	common_setup
}

# True when bin/ is built with AddressSanitizer (make SANITIZE=...):
# its shadow memory and quarantine make resident sizes meaningless.
sanitized() {
	ldd "$ROOT/bin/relay-serve" | grep -q libasan
}

# Runs a command as an unprivileged user, so that file permissions
# apply even when the tests run as root (as in CI containers).
as_nobody() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
	else
		"$@"
	fi
}

# A deterministic body of a given size, different for each key.
body() {
	yes "$1" | head -c "$2"
}

# A directory other users can reach (bats' own temp tree is private),
# removed after the test.
public_dir() {
	PUBLIC_DIR=$(mktemp -d /tmp/relay-test.XXXXXX)
	chmod 755 "$PUBLIC_DIR"
	cd "$PUBLIC_DIR" || return 1
}

# Starts the fixture upstream (tests/fixture/upstream.py) on an
# ephemeral port of 127.0.0.1 and sets UP to its base URL.
start_upstream() {
	if [ -n "${UPSTREAM_PID:-}" ]; then	# another one, in its place
		kill "$UPSTREAM_PID"
		wait "$UPSTREAM_PID" 2>/dev/null || true
	fi
	rm -f "$BATS_TEST_TMPDIR/port"
	python3 "$ROOT/tests/fixture/upstream.py" "$BATS_TEST_TMPDIR/port" "$@" &
	UPSTREAM_PID=$!
	for _ in $(seq 100); do
		[ -s "$BATS_TEST_TMPDIR/port" ] && break
		sleep 0.05
	done
	UP=http://127.0.0.1:$(cat "$BATS_TEST_TMPDIR/port")
}

# Starts nginx serving HTTPS and HTTP/2 (tests/fixture/tls-upstream)
# and sets TLS_UP to its base URL; its certificate is cert.pem.
start_tls_upstream() {
	"$ROOT/tests/fixture/tls-upstream" tls-port 2>tls-upstream.err &
	TLS_UPSTREAM_PID=$!
	for _ in $(seq 100); do
		[ -s tls-port ] && curl -s -o /dev/null --cacert cert.pem \
		    "https://127.0.0.1:$(cat tls-port)/" && break
		sleep 0.05
	done
	: >access.log	# without the readiness probe
	TLS_UP=https://127.0.0.1:$(cat tls-port)
}

# How many requests the fixture received for a path (with its query).
requests_for() {
	curl -s -G --data-urlencode "path=$1" "$UP/_count"
}

# requests_are PATH N: the fixture received N requests for PATH (a
# condition for eventually).
requests_are() {
	[ "$(requests_for "$1")" -eq "$2" ]
}

# Starts relay-serve --listen on an ephemeral port of 127.0.0.1 with the
# fixture upstream; sets SERVE (base URL), SERVE_PORT and SERVE_PID.
# Its stderr, the access log, goes to serve.log. Up to 30 s for it to
# listen: under valgrind, compiling routes' jq programs takes seconds.
start_serve() {
	: >serve.log	# now: the child truncating it may come after a look
	relay-serve --listen 127.0.0.1:0 --upstream "$UP" "$@" 2>>serve.log &
	SERVE_PID=$!
	within 30 grep -q 'listening on' serve.log 2>/dev/null || true
	SERVE_PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\)$/\1/p' serve.log)
	SERVE=http://127.0.0.1:$SERVE_PORT
}

# Starts another relay-serve on the cache file, socket-activated
# (Accept=yes: a process per connection), logging to activated.log, and
# sets ACTIVATED to its base URL.
start_activated() {
	local port
	port=$(free_port)
	systemd-socket-activate -a -l "127.0.0.1:$port" relay-serve \
	    --upstream "$UP" --cache "$RELAY_CACHE" "$@" 2>activated.log &
	EXTRA_PIDS+=($!)
	ACTIVATED=http://127.0.0.1:$port
	eventually curl -s -o /dev/null "$ACTIVATED/_relay/stats"
}

# The access log lines of serve.log, without other messages.
access_log() {
	grep '^{' serve.log
}

# log_has N PATTERN: serve.log has at least N lines that match.
log_has() {
	[ "$(grep -c -- "$2" serve.log 2>/dev/null)" -ge "$1" ]
}

# logged N [PATTERN]: until serve.log holds N access log lines (that
# match), for up to 10 s. A line is written once its answer has gone
# out, so the client may have it a moment before the log does.
logged() {
	eventually log_has "$1" "^{.*${2:-}"
}

# valgrind cannot run programs built with AddressSanitizer.
skip_unless_valgrind() {
	command -v valgrind >/dev/null || skip "valgrind is not installed"
	! ldd "$ROOT/bin/$1" | grep -q libasan ||
	    skip "$1 is built with AddressSanitizer"
}

# A port free on 127.0.0.1 now, for programs that cannot pick their own.
free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Other processes a test started, stopped by teardown.
EXTRA_PIDS=()

teardown() {
	local pid
	for pid in "${EXTRA_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "${SERVE_PID:-}" ]; then
		kill "$SERVE_PID" 2>/dev/null
		wait "$SERVE_PID" 2>/dev/null || true
	fi
	[ -z "${EXTRA_CLEANUP:-}" ] || "$EXTRA_CLEANUP"
	if [ -n "${REDIS_PID:-}" ]; then	# stopped (SIGSTOP) maybe
		kill -CONT "$REDIS_PID" 2>/dev/null
		kill "$REDIS_PID" 2>/dev/null
		wait "$REDIS_PID" 2>/dev/null || true
	fi
	if [ -n "${TLS_UPSTREAM_PID:-}" ]; then
		kill "$TLS_UPSTREAM_PID" 2>/dev/null
		wait "$TLS_UPSTREAM_PID" 2>/dev/null || true
	fi
	if [ -n "${UPSTREAM_PID:-}" ]; then
		kill "$UPSTREAM_PID" 2>/dev/null
		wait "$UPSTREAM_PID" 2>/dev/null || true
	fi
	if [ -n "${PUBLIC_DIR:-}" ]; then
		chmod -R u+w "$PUBLIC_DIR"
		rm -rf "$PUBLIC_DIR"
	fi
	valgrind_clean
}

# Under RELAY_VALGRIND, a program's memory errors fail its test: with
# -q, valgrind writes nothing else ("==PID== ...") to the logs.
valgrind_clean() {
	[ -n "${RELAY_VALGRIND:-}" ] || return 0
	! grep -h '^==[0-9]*== ' serve.log activated.log 2>/dev/null ||
	    { echo "valgrind found the errors above"; return 1; }
}

# within SECONDS COMMAND...: runs the command until it succeeds, for up
# to SECONDS; the last try's failure is the caller's. The pause is
# between looks at a condition, never a bet on how long something takes.
within() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || { "$@"; return; }
		sleep 0.05
	done
}

# Up to 10 s: for what another process sees once a writer thread has
# committed it; 30 s when the programs run under valgrind, many times
# slower, on a machine the other CI stages may be loading.
eventually() {
	local bound=10
	[ -z "${RELAY_VALGRIND:-}" ] || bound=30
	within "$bound" "$@"
}

# Whether the cache holds no entry (another process's view).
cache_empty() {
	[ -z "$(relay-cache ls)" ]
}

# Whether relay-cache get URL prints TEXT.
cached_as() {
	[ "$(relay-cache get "$1" 2>/dev/null)" = "$2" ]
}

# The times the fixture received requests for paths under PREFIX, one a line.
arrivals() {
	curl -s "$UP/_log" | jq -r --arg p "$1" \
	    'select(.path | startswith($p)) | .time'
}

# arrivals_spaced PREFIX: any six arrivals under PREFIX span a second
# at least (5/s, with a jitter of 0.1 s).
arrivals_spaced() {
	arrivals "$1" | sort -n | python3 -c 'import sys
t = [float(x) for x in sys.stdin]
gaps = [t[i + 5] - t[i] for i in range(len(t) - 5)]
print("narrowest 6 in", min(gaps))
sys.exit(min(gaps) < 0.9)'
}

# arrivals_after FIRST PREFIX N: N requests arrived under PREFIX, each
# 2 s or more after the one for FIRST (its Retry-After: 2).
arrivals_after() {
	arrivals "$2" | python3 -c 'import sys
first, n = float(sys.argv[1]), int(sys.argv[2])
t = [float(x) for x in sys.stdin]
print("after the 429:", [round(x - first, 3) for x in t])
sys.exit(len(t) != n or min(t) < first + 2)' "$(arrivals "$1")" "$3"
}

# passes_within LIMIT_PER_MINUTE BURST OUT: the 200s in OUT are what
# the limit allows over the time it took, no more, and at least the
# burst.
passes_within() {
	local per_minute=$1 burst=$2 out=$3 passed elapsed most
	passed=$(grep -c '^200' "$out")
	elapsed=$(sed -n 's/^elapsed //p' "$out")
	most=$(python3 -c "import math, sys
print($burst + math.ceil($elapsed * $per_minute / 60) + 1)")
	echo "passed $passed in $elapsed s; at most $most"
	[ "$passed" -ge "$burst" ] && [ "$passed" -le "$most" ]
}
