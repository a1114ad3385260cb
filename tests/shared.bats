#!/usr/bin/env bats
# relay-serve's shared tier (--shared): several hosts, each with its own
# cache file, sharing responses, one upstream request per URL and the
# rate limits through one real redis-server, started here on a free
# loopback port and stopped by PID; and each going on alone while
# Redis is down or stopped.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	command -v redis-server >/dev/null || skip "no redis-server (make deps)"
	start_upstream --cc max-age=600
	start_redis
}

redis() {
	if [ -n "${REDIS_PASSWORD:-}" ]; then
		REDISCLI_AUTH=$REDIS_PASSWORD redis-cli -p "$REDIS_PORT" "$@"
	else
		redis-cli -p "$REDIS_PORT" "$@"
	fi
}

redis_answers() {
	[ "$(redis ping 2>/dev/null)" = PONG ]
}

# start_redis [ARGS]: a redis-server of the test's own, with no files
# (REDIS_PORT kept from a stopped one, so that hosts find it again).
start_redis() {
	REDIS_PORT=${REDIS_PORT:-$(free_port)}
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
	    --appendonly no "$@" >>redis.log 2>&1 &
	REDIS_PID=$!
	eventually redis_answers
}

stop_redis() {
	kill "$REDIS_PID"
	wait "$REDIS_PID" 2>/dev/null || true
	REDIS_PID=
}

# start_host N [ARGS]: relay-serve with cache file hostN.db sharing
# through the test's Redis; its base URL in HOST[N].
start_host() {
	local n=$1 log="host$1.log"
	shift
	: >"$log"
	relay-serve --listen 127.0.0.1:0 --upstream "$UP" \
	    --cache "$BATS_TEST_TMPDIR/host$n.db" --access-log off \
	    --shared "redis://127.0.0.1:$REDIS_PORT" "$@" 2>>"$log" &
	EXTRA_PIDS+=($!)
	within 30 grep -q 'listening on' "$log"
	HOST[$n]=http://127.0.0.1:$(sed -n \
	    's/.*listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$log")
}

# How many requests the upstream had for paths under PREFIX.
requests_under() {
	curl -s "$UP/_log" | jq -r --arg p "$1" \
	    'select(.path | startswith($p)) | .path' | grep -c . || true
}

cache_status() {
	curl -s -o /dev/null -w '%header{cache-status}' "$1"
}

# Whether Redis holds a shared entry for URL (its key: the hash tag).
shared_has() {
	local sha
	sha=$(printf %s "$1" | sha1sum | cut -d' ' -f1)
	[ "$(redis exists "relay:{$sha}:entry")" = 1 ]
}

@test "a response fetched through one host is a hit on the others, without the upstream" {
	for n in 1 2 3; do start_host "$n"; done
	u=/menu?etag=v1
	[ "$(cache_status "${HOST[1]}$u")" = "relay; fwd=miss" ]
	eventually shared_has "$UP$u"
	[[ "$(cache_status "${HOST[2]}$u")" == "relay; hit; ttl="*"; detail=shared" ]]
	[[ "$(cache_status "${HOST[3]}$u")" == "relay; hit; ttl="*"; detail=shared" ]]
	[ "$(requests_for "$u")" -eq 1 ]
	# each host keeps it in its own file: the next is a local hit
	eventually cached_as_in 2 "$UP$u"
	[[ "$(cache_status "${HOST[2]}$u")" == "relay; hit; ttl="[0-9]* ]]
	# the body and its fields as the upstream gave them
	curl -s -D head2 "${HOST[2]}$u" >body2
	curl -s -D head1 "${HOST[1]}$u" >body1
	cmp body1 body2
	grep -qi '^etag: "*v1' head2
}

cached_as_in() {
	relay-cache -c "$BATS_TEST_TMPDIR/host$1.db" get "$2" >/dev/null 2>&1
}

# stale_in FILE URL: the cache file (under the test's directory) holds
# URL, stale.
stale_in() {
	local file=$1
	[[ "$file" == /* ]] || file=$BATS_TEST_TMPDIR/$file
	relay-cache -c "$file" ls --json |
	    jq -e --arg u "$2" 'select(.url == $u) | .state == "stale"' >/dev/null
}

@test "a 304 through one host refreshes the shared copy: the others take it rather than ask" {
	for n in 1 2 3; do start_host "$n"; done
	u='/rv?etag=v1&cc=max-age=4'
	curl -sf -o /dev/null "${HOST[1]}$u"
	eventually shared_has "$UP$u"
	for n in 2 3; do
		curl -sf -o /dev/null "${HOST[$n]}$u"
		eventually cached_as_in "$n" "$UP$u"
	done
	[ "$(requests_for "$u")" -eq 1 ]
	# Redis's copy has host 1's times: stale when that one is
	for n in 1 2 3; do eventually stale_in "host$n.db" "$UP$u"; done
	[[ "$(cache_status "${HOST[1]}$u")" == "relay; fwd=stale; fwd-status=304;"* ]]
	[ "$(requests_for "$u")" -eq 2 ]
	for n in 2 3; do
		status=$(cache_status "${HOST[$n]}$u")
		[[ "$status" == "relay; hit; ttl="*"; detail=shared" ]] ||
		    { echo "host $n: $status"; false; }
	done
	[ "$(requests_for "$u")" -eq 2 ]
}

@test "200 concurrent misses spread over three hosts reach the upstream once" {
	for n in 1 2 3; do start_host "$n" --workers 2; done
	args=()
	for i in $(seq 200); do
		args+=(-o /dev/null "${HOST[$((i % 3 + 1))]}/slow?delay=300")
	done
	curl -s -Z --parallel-max 200 -w '%{http_code}\n' "${args[@]}" >codes
	[ "$(grep -c '^200$' codes)" -eq 200 ]
	[ "$(requests_for '/slow?delay=300')" -eq 1 ]
}

@test "a limit of 100/m burst 10 holds across three hosts as on one" {
	for n in 1 2 3; do start_host "$n" --rate-limit 100/m --burst 10; done
	ports=()
	for n in 1 2 3; do ports+=("${HOST[$n]##*:}x2"); done
	"$ROOT/tests/fixture/limited-client" 1000 '/t?cc=max-age=600' \
	    "${ports[@]}" >out
	[ "$(grep -c . out)" -eq 1001 ]
	passes_within 100 10 out
	[ "$(grep -v '^200\|^elapsed' out | cut -f1 | sort -u)" = 429 ]
	! grep -v '^elapsed' out | cut -f4 | grep -vqE '^"default";r=[0-9]+;t=[0-9]+$' || false
	# one bucket, in Redis, for the three
	[ "$(redis --scan --pattern 'relay:{*}:bucket' | grep -c .)" -eq 1 ]
}

@test "Redis stopped: every request still answered, said once; back: sharing resumes" {
	# one process a host, so that once is one line of its log
	for n in 1 2; do start_host "$n" --workers 1; done
	curl -sf -o /dev/null "${HOST[1]}/warm"
	eventually cached_as_in 1 "$UP/warm"
	stop_redis
	for i in $(seq 20); do
		curl -sf -o /dev/null "${HOST[$((i % 2 + 1))]}/alone/$i"
		curl -sf -o /dev/null "${HOST[1]}/warm"
	done
	[ "$(requests_under /alone/)" -eq 20 ]
	eventually grep -q 'is down' host1.log
	[ "$(grep -c 'is down' host1.log)" -eq 1 ]
	[ "$(grep -c 'is down' host2.log)" -eq 1 ]
	start_redis
	within 10 grep -q 'is back' host1.log
	within 10 grep -q 'is back' host2.log
	[ "$(cache_status "${HOST[1]}/again")" = "relay; fwd=miss" ]
	eventually shared_has "$UP/again"
	[[ "$(cache_status "${HOST[2]}/again")" == *"detail=shared" ]]
	[ "$(requests_for /again)" -eq 1 ]
}

@test "a stopped Redis (SIGSTOP) costs a request at most the timeout, then the host goes on alone" {
	start_host 1 --workers 1 --shared-timeout 200
	curl -sf -o /dev/null "${HOST[1]}/before"
	kill -STOP "$REDIS_PID"
	for i in $(seq 10); do
		curl -sf --max-time 5 -o /dev/null "${HOST[1]}/stopped/$i"
	done
	[ "$(requests_under /stopped/)" -eq 10 ]
	grep -q 'timed out' host1.log
	[ "$(grep -c 'is down' host1.log)" -eq 1 ]
	kill -CONT "$REDIS_PID"
	within 10 grep -q 'is back' host1.log
}

@test "redis-cli MONITOR sees no command during a hit on a warm local entry" {
	start_host 1
	curl -sf -o /dev/null "${HOST[1]}/warm"
	eventually shared_has "$UP/warm"
	eventually cached_as_in 1 "$UP/warm"
	redis monitor >monitor.log &
	EXTRA_PIDS+=($!)
	eventually grep -q OK monitor.log
	redis echo before >/dev/null
	eventually grep -q '"before"' monitor.log
	for i in $(seq 5); do
		[[ "$(cache_status "${HOST[1]}/warm")" == "relay; hit; ttl="[0-9]* ]]
	done
	redis echo after >/dev/null
	eventually grep -q '"after"' monitor.log
	sed -n '/"before"/,/"after"/p' monitor.log >between
	[ "$(grep -c . between)" -eq 2 ]
}

@test "an entry in Redis that is not one of ours, or another URL's, is refused and the upstream asked" {
	start_host 1
	sha=$(printf %s "$UP/forged" | sha1sum | cut -d' ' -f1)
	redis set "relay:{$sha}:entry" 'HTTP/1.1 200 OK' >/dev/null
	[ "$(cache_status "${HOST[1]}/forged")" = "relay; fwd=miss" ]
	grep -q "$UP/forged: shared tier: not an entry of this relay" host1.log
	# a real entry, but of another URL, put under this one's key
	curl -sf -o /dev/null "${HOST[1]}/other"
	eventually shared_has "$UP/other"
	sha2=$(printf %s "$UP/other" | sha1sum | cut -d' ' -f1)
	sha3=$(printf %s "$UP/stolen" | sha1sum | cut -d' ' -f1)
	redis --raw get "relay:{$sha2}:entry" | head -c -1 |
	    redis -x set "relay:{$sha3}:entry" >/dev/null
	[ "$(cache_status "${HOST[1]}/stolen")" = "relay; fwd=miss" ]
	grep -q "another URL's entry" host1.log
	[ "$(requests_for /stolen)" -eq 1 ]
}

# plant URL STATUS: an entry of URL in Redis, well formed, fresh for 600
# s, with STATUS, as anyone with the Redis password could put it there.
plant() {
	local url=$1 fields=$'Cache-Control: max-age=600\r\n' body='{"planted":1}' now sha
	now=$(date +%s)
	sha=$(printf %s "$url" | sha1sum | cut -d' ' -f1)
	printf 'relay-shared 1\n%s %s %s\n%s %s 0 %s\n%s%s%s' "$2" "$now" "$now" \
	    "${#url}" "${#fields}" "${#body}" "$url" "$fields" "$body" |
	    redis -x set "relay:{$sha}:entry" >/dev/null
}

@test "an entry in Redis with a status the store never keeps (100, 0, 999) is never answered, imported or fetched from: the upstream is asked" {
	start_host 1
	shared=(--shared "redis://127.0.0.1:$REDIS_PORT")
	# a well-formed one is taken as it is: the planting is right
	plant "$UP/planted-200" 200
	[[ "$(cache_status "${HOST[1]}/planted-200")" == *"detail=shared" ]]
	[ "$(curl -s "${HOST[1]}/planted-200")" = '{"planted":1}' ]
	[ "$(requests_for /planted-200)" -eq 0 ]
	for code in 100 0 999 199 600; do
		for via in serve fetch; do
			path=/planted-$via-$code
			plant "$UP$path" "$code"
			if [ "$via" = serve ]; then
				curl -s -D head -o body "${HOST[1]}$path"
				grep -qi '^cache-status: relay; fwd=miss' head
				log=host1.log
			else
				relay-fetch --upstream "$UP" "${shared[@]}" "$path" >body 2>fetch.log
				log=fetch.log
			fi
			[ "$(cat body)" = "$path" ] || { echo "$via $code: $(cat body)"; false; }
			[ "$(requests_for "$path")" -eq 1 ]
			grep -q "$UP$path: shared tier: status $code is not a final status (200 to 599)" "$log"
		done
	done
	# the host stored the upstream's answers, never a planted one
	eventually cached_as_in 1 "$UP/planted-serve-600"
	[ "$(relay-cache -c host1.db dump | jq -r 'select(.json.planted) | .url')" = "$UP/planted-200" ]
}

@test "--shared-password-file logs in; a wrong one is said, and the host goes on alone" {
	stop_redis
	REDIS_PASSWORD=s3cret
	start_redis --requirepass s3cret
	printf 's3cret\n' >pw
	printf 'wrong\n' >bad
	start_host 1 --shared-password-file pw
	start_host 2 --shared-password-file bad
	curl -sf -o /dev/null "${HOST[1]}/pw"
	eventually shared_has "$UP/pw"
	[[ "$(cache_status "${HOST[2]}/pw")" == "relay; fwd=miss" ]]
	eventually grep -q 'is down' host2.log
}

@test "bad --shared options are errors that say why" {
	run -78 relay-serve --shared 'redis://:pw@127.0.0.1:1' </dev/null
	[[ "$output" == *"--shared-password-file"* ]]
	run -78 relay-serve --shared 'rediss://127.0.0.1:1' </dev/null
	[[ "$output" == *"TLS"* ]]
	run -78 relay-serve --shared 'redis://127.0.0.1:99999' </dev/null
	[[ "$output" == *"is not redis://HOST[:PORT][/DB]"* ]]
	run -78 relay-serve --shared 'redis://127.0.0.1:1' \
	    --shared-password-file /nonexistent </dev/null
	[[ "$output" == *"cannot read '/nonexistent'"* ]]
	run -2 relay-serve --shared-prefix 'a{b}' </dev/null
	[[ "$output" == *"bad --shared-prefix"* ]]
	run -2 relay-serve --shared-timeout 0 </dev/null
	run -2 relay-serve --shared-max-object-size 1G </dev/null
}

@test "the metrics say which tier answered, whether Redis is reached, and how often it was lost" {
	start_host 1 --workers 1
	start_host 2 --workers 1
	curl -sf -o /dev/null "${HOST[1]}/tiered"
	eventually shared_has "$UP/tiered"
	curl -sf -o /dev/null "${HOST[2]}/tiered"
	curl -sf -o /dev/null "${HOST[2]}/tiered"
	eventually tiers_are 2 '{"local":1,"shared":1,"upstream":0,"none":0}'
	metrics_have 2 'relay_requests_total{outcome="hit",tier="shared"} 1'
	grep -qx 'relay_requests_total{outcome="hit",tier="local"} 1' metrics
	grep -qx 'relay_shared_up 1' metrics
	grep -qx 'relay_shared_failures_total 0' metrics
	promtool check metrics <metrics
	stop_redis
	curl -sf -o /dev/null "${HOST[2]}/after"
	eventually tiers_are 2 '{"local":1,"shared":1,"upstream":1,"none":0}'
	eventually metrics_have 2 'relay_shared_failures_total 1'
	grep -qx 'relay_shared_up 0' metrics
	grep -qx 'relay_requests_total{outcome="miss",tier="upstream"} 1' metrics
}

# tiers_are N JSON: host N's /_relay/stats counts requests by tier as JSON.
tiers_are() {
	local got
	got=$(curl -s "${HOST[$1]}/_relay/stats" | jq -c .requests_by_tier)
	[ "$got" = "$2" ] || { echo "host $1: $got"; false; }
}

# metrics_have N LINE: host N's /_relay/metrics (in ./metrics) has LINE.
metrics_have() {
	curl -s "${HOST[$1]}/_relay/metrics" >metrics
	grep -qx "$2" metrics
}

@test "relay-cache rm --shared and purge --shared reach every host" {
	for n in 1 2; do start_host "$n" --workers 1; done
	for p in /a /b /c/1 /c/2; do
		curl -sf -o /dev/null "${HOST[1]}$p"
		eventually shared_has "$UP$p"
		curl -sf -o /dev/null "${HOST[2]}$p"
		eventually cached_as_in 2 "$UP$p"
	done
	shared=(--shared "redis://127.0.0.1:$REDIS_PORT")
	relay-cache -c host1.db rm "${shared[@]}" "$UP/a"
	! shared_has "$UP/a" || false
	# host 2 heard of it and removed its own copy
	eventually not_cached_in 2 "$UP/a"
	cached_as_in 2 "$UP/b"
	relay-cache -c host1.db purge "${shared[@]}" --match "$UP/c/*" -v 2>purge.err
	grep -q 'purged 2 shared entries' purge.err
	! shared_has "$UP/c/1" || false
	! shared_has "$UP/c/2" || false
	shared_has "$UP/b"
	eventually not_cached_in 2 "$UP/c/2"
	cached_as_in 2 "$UP/b"
	relay-cache -c host1.db purge "${shared[@]}" --all
	! shared_has "$UP/b" || false
	eventually not_cached_in 2 "$UP/b"
	# what Redis expires itself, and a size, are each host's own
	run -2 relay-cache -c host1.db purge "${shared[@]}" --expired
	[[ "$output" == *"takes --all or --match"* ]]
	# no Redis there: said, and the status of a service unavailable
	stop_redis
	run -69 relay-cache -c host1.db rm "${shared[@]}" "$UP/b"
	[[ "$output" == *"cannot connect to redis://127.0.0.1:$REDIS_PORT"* ]]
}

not_cached_in() {
	! cached_as_in "$@" || false
}

@test "--upstream-rate 5/s holds across hosts: 50 clients over two, and the upstream never sees more than 5 in a second" {
	# turns are kept at Redis's clock; a host that valgrind stalls
	# sends late ones together, which is no test of the turns
	[ -z "${RELAY_VALGRIND:-}" ] || skip "spacing is not measured under valgrind"
	rate=(--upstream-rate 5/s --upstream-wait 2s)
	for n in 1 2; do start_host "$n" "${rate[@]}"; done
	urls=()
	for i in $(seq 50); do
		urls+=(-o /dev/null "${HOST[$((i % 2 + 1))]}/r/$i")
	done
	curl -s -Z --parallel-max 50 -w '%{http_code}\n' "${urls[@]}" >out 2>/dev/null
	[ "$(grep -c . out)" -eq 50 ]
	passed=$(grep -c '^200$' out)
	[ "$(arrivals /r/ | grep -c .)" -eq "$passed" ]
	[ "$passed" -ge 11 ] && [ "$passed" -lt 50 ]
	# any six arrivals span a second at least (jitter of 0.1 s allowed)
	arrivals_spaced /r/
}

# The upstream's bucket in Redis is paused: its time over a second ahead.
shared_paused() {
	local key tat
	key=$(redis --scan --pattern 'relay:{*}:bucket' | head -1)
	[ -n "$key" ] && tat=$(redis get "$key") &&
	    [ "${tat%%.*}" -gt $(( ($(date +%s) + 1) * 1000000 )) ]
}

@test "an upstream 429 with Retry-After: 2 through one host stops the other's calls for 2 s" {
	rate=(--upstream-rate 100/s --upstream-burst 10 --upstream-wait 10s)
	for n in 1 2; do start_host "$n" "${rate[@]}"; done
	[ "$(curl -s -o /dev/null -w '%{http_code}' "${HOST[1]}/busy?status=429&retry_after=2")" = 429 ]
	eventually shared_paused
	curl -s -Z -w '%{http_code}\n' -o /dev/null "${HOST[2]}/after/1" \
	    -o /dev/null "${HOST[2]}/after/2" >out 2>/dev/null
	[ "$(sort -u out)" = 200 ]
	arrivals_after /busy /after/ 2
}

# stats_of_all HOST JQ VALUE: /_relay/stats?hosts=all there has it.
stats_of_all() {
	[ "$(curl -s "${HOST[$1]}/_relay/stats?hosts=all" | jq -c "$2")" = "$3" ]
}

@test "/_relay/stats?hosts=all sums every host's counters" {
	# the gathering waits --shared-timeout for every host's numbers:
	# time enough for processes under valgrind too
	for n in 1 2 3; do start_host "$n" --workers 1 --shared-timeout 1000; done
	curl -sf -o /dev/null "${HOST[1]}/x1"
	curl -sf -o /dev/null "${HOST[1]}/x2"
	eventually shared_has "$UP/x2"
	eventually shared_has "$UP/x1"
	curl -sf -o /dev/null "${HOST[2]}/x1"	# the shared tier's
	eventually cached_as_in 2 "$UP/x1"
	curl -sf -o /dev/null "${HOST[2]}/x1"	# then its own
	curl -sf -o /dev/null "${HOST[3]}/x2"	# the shared tier's
	eventually stats_of_all 1 '[.hosts, .requests.miss, .requests.hit]' '[3,2,3]'
	eventually stats_of_all 3 '[.hosts, .requests_by_tier]' \
	    '[3,{"local":1,"shared":2,"upstream":2,"none":0}]'
	# each host's own stats are its own
	[ "$(curl -s "${HOST[2]}/_relay/stats" | jq -c '[.requests.miss, .requests.hit]')" = '[0,2]' ]
	# no Redis: a 503 that says so, not one host's numbers for all
	stop_redis
	eventually metrics_have 1 'relay_shared_up 0'
	[ "$(curl -s -o /dev/null -w '%{http_code}' "${HOST[1]}/_relay/stats?hosts=all")" = 503 ]
}

@test "relay-fetch --shared: what a relay-serve host stored comes from Redis, and what it fetches goes there" {
	start_host 1 --workers 1
	curl -sf -o /dev/null "${HOST[1]}/from-serve"
	eventually shared_has "$UP/from-serve"
	shared=(--shared "redis://127.0.0.1:$REDIS_PORT")
	relay-fetch --upstream "$UP" "${shared[@]}" --records /from-serve >rec
	[ "$(jq -r .source rec)" = shared ]
	[ "$(jq -r .text rec)" = /from-serve ]
	[ "$(requests_for /from-serve)" -eq 1 ]
	# it is this file's now: a local hit, Redis not asked
	relay-fetch --upstream "$UP" --records /from-serve | jq -e '.source == "hit"'
	# fetched here, then a hit on the host without the upstream
	relay-fetch --upstream "$UP" "${shared[@]}" /from-fetch >/dev/null
	eventually shared_has "$UP/from-fetch"
	[[ "$(cache_status "${HOST[1]}/from-fetch")" == *"detail=shared" ]]
	[ "$(requests_for /from-fetch)" -eq 1 ]
	# Redis gone: fetched alone, said once
	stop_redis
	relay-fetch --upstream "$UP" "${shared[@]}" /alone/1 /alone/2 2>err >/dev/null
	[ "$(grep -c 'is down' err)" -eq 1 ]
	[ "$(requests_under /alone/)" -eq 2 ]
}

@test "relay-fetch --shared takes the URL's lease in Redis: one upstream request with a host, or with another relay-fetch" {
	start_host 1 --workers 1
	shared=(--shared "redis://127.0.0.1:$REDIS_PORT")
	# the host asks first: relay-fetch waits for it, then takes its copy
	curl -sf -o /dev/null "${HOST[1]}/l1?delay=1000" &
	eventually upstream_saw /l1?delay=1000
	relay-fetch --upstream "$UP" "${shared[@]}" --records '/l1?delay=1000' |
	    jq -e '.source == "shared"'
	wait $!
	# relay-fetch asks first: the host waits for its news
	relay-fetch --upstream "$UP" "${shared[@]}" '/l2?delay=1000' >/dev/null &
	eventually upstream_saw /l2?delay=1000
	[[ "$(cache_status "${HOST[1]}/l2?delay=1000")" == *"detail=shared" ]]
	wait $!
	# two relay-fetch with files of their own, as on two hosts
	pids=()
	for n in 1 2; do
		relay-fetch --cache "fetch$n.db" --upstream "$UP" "${shared[@]}" \
		    --records '/l3?delay=1000' >"rec$n" &
		pids+=($!)
	done
	wait "${pids[@]}"
	[ "$(jq -r .source rec1 rec2 | sort | tr '\n' ' ')" = "miss shared " ] ||
	    { cat rec1 rec2; false; }
	for p in /l1 /l2 /l3; do [ "$(requests_for "$p?delay=1000")" -eq 1 ]; done
	# a lease given up with nothing stored lets the others go at once
	relay-fetch --upstream "$UP" "${shared[@]}" '/l4?status=404' || true
	[ "$(redis keys 'relay:*:lease')" = "" ]
}

# Whether the upstream has had a request for PATH (with its query).
upstream_saw() {
	[ "$(requests_for "$1")" -ge 1 ]
}

@test "relay-fetch --shared: its 304 refreshes the shared copy for the hosts" {
	start_host 1 --workers 1
	shared=(--shared "redis://127.0.0.1:$REDIS_PORT")
	u='/rf?etag=v1&cc=max-age=4'
	curl -sf -o /dev/null "${HOST[1]}$u"
	eventually shared_has "$UP$u"
	relay-fetch --upstream "$UP" "${shared[@]}" --records "$u" |
	    jq -e '.source == "shared"'
	eventually stale_in host1.db "$UP$u"	# Redis's too: the same times
	eventually stale_in "$RELAY_CACHE" "$UP$u"
	relay-fetch --upstream "$UP" "${shared[@]}" --records "$u" |
	    jq -e '.source == "revalidated"'
	[ "$(requests_for "$u")" -eq 2 ]
	[[ "$(cache_status "${HOST[1]}$u")" == "relay; hit; ttl="*"; detail=shared" ]]
	[ "$(requests_for "$u")" -eq 2 ]
}

@test "another host's copy has the same Age and freshness as the first's: the times travel with it" {
	start_host 1 --workers 1
	start_host 2 --workers 1
	u='/aged?cc=max-age=600&h=Age:100'
	curl -s -D head1 -o /dev/null "${HOST[1]}$u"
	eventually shared_has "$UP$u"
	curl -s -D head2 -o /dev/null "${HOST[2]}$u"
	grep -q 'detail=shared' head2
	age1=$(tr -d '\r' <head1 | sed -n 's/^Age: //p')
	age2=$(tr -d '\r' <head2 | sed -n 's/^Age: //p')
	ttl2=$(tr -d '\r' <head2 | sed -n 's/^Cache-Status: .*ttl=\([0-9-]*\).*/\1/p')
	echo "Age $age1, then $age2 on the other host; ttl $ttl2"
	# the upstream's Age, plus the seconds since it was received
	[ "$age1" -ge 100 ] && [ "$age2" -ge "$age1" ] && [ "$age2" -le $((age1 + 5)) ]
	[ "$ttl2" -eq $((600 - age2)) ]
}

@test "--shared-prefix keeps two relays on one Redis apart" {
	start_host 1 --workers 1 --shared-prefix blue:
	start_host 2 --workers 1 --shared-prefix green:
	curl -sf -o /dev/null "${HOST[1]}/apart"
	sha=$(printf %s "$UP/apart" | sha1sum | cut -d' ' -f1)
	eventually redis_has "blue:{$sha}:entry"
	[ "$(cache_status "${HOST[2]}/apart")" = "relay; fwd=miss" ]
	eventually redis_has "green:{$sha}:entry"
	[ "$(redis --scan --pattern 'relay:*' | grep -c .)" -eq 0 ]
}

redis_has() {
	[ "$(redis exists "$1")" = 1 ]
}
