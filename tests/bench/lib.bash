# Sourced by the benchmarks: a work directory removed at exit, every
# process started stopped by PID, and the waits and ports they share.
# bench_name is the benchmark's name, for its messages.
bench_name=$(basename "$0")
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
pids=()
bench_cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap bench_cleanup EXIT
cd "$work" || exit 1

needs() {	# needs TOOL...: stops unless every one is installed
	local tool
	for tool; do
		command -v "$tool" >/dev/null ||
		    { echo "$bench_name: needs $tool" >&2; exit 1; }
	done
}

free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# until WHAT CMD...: until CMD succeeds, polled every 50 ms for at most
# 10 s; then the benchmark stops, saying WHAT never came.
until_true() {
	local what=$1
	shift
	for _ in $(seq 200); do
		"$@" && return 0
		sleep 0.05
	done
	echo "$bench_name: $what never came" >&2
	exit 1
}

answers() { curl -sf -o /dev/null "$1"; }

wait_for() {	# wait_for URL: until it answers
	until_true "an answer from $1" answers "$1"
}

wait_file() {	# wait_file FILE: until it is not empty
	until_true "$1" test -s "$1"
}

# start_fixture [ARGS]: the fixture upstream, its URL in $up, its port
# in $up_port; ARGS go to tests/fixture/upstream.py. $server_cpu, if
# set, pins it.
start_fixture() {
	${server_cpu:-} python3 "$root/tests/fixture/upstream.py" port "$@" &
	pids+=($!)
	wait_file port
	up_port=$(cat port)
	# shellcheck disable=SC2034 # for the benchmark that sourced this
	up=http://127.0.0.1:$up_port
}
