#!/usr/bin/env bats
# Merge routes in relay-serve: the events-with-subscriptions and menu
# examples end to end, failure policies, secrets, bad routes files,
# reloading on SIGHUP.

bats_require_minimum_version 1.5.0
load helpers

EXAMPLES=share/examples
TOKEN=s3cret-token-42

setup() {
	common_setup
	export EVENTS_TOKEN=$TOKEN
	"$ROOT/tests/fixture/events-api.py" events-port "$TOKEN" &
	EXTRA_PIDS+=($!)
	for _ in $(seq 100); do [ -s events-port ] && break; sleep 0.05; done
	EVENTS=http://127.0.0.1:$(cat events-port)
}

# The events route, with on-error set as asked.
events_routes() {	# events_routes fail|partial
	sed "s/^\ton-error fail$/\ton-error $1/" \
	    "$ROOT/$EXAMPLES/routes/events.routes" >events.routes
}

@test "events-with-subscriptions: two calls merged; the secret reaches the upstream only" {
	UP=$EVENTS start_serve --routes "$ROOT/$EXAMPLES/routes/events.routes"
	run curl -s -D head "$SERVE/events-with-subscriptions/7"
	[ "$output" = '{"id":7,"title":"Kick-off","names":["Ada","Linus","Grace"]}' ]
	grep -q $'^Relay-Complete: yes\r$' head
	grep -q $'^Content-Type: application/json\r$' head
	[ "$(curl -s "$EVENTS/_log" | jq -r '.headers.Authorization' | sort -u)" = "Token $TOKEN" ]
	! grep -q "$TOKEN" serve.log head || false
	! echo "$output" | grep -q "$TOKEN" || false
}

@test "each call is cached with the route's ttl: a second request asks nothing" {
	UP=$EVENTS start_serve --routes "$ROOT/$EXAMPLES/routes/events.routes"
	curl -s "$SERVE/events-with-subscriptions/7" >first
	curl -s "$SERVE/events-with-subscriptions/7" >second
	cmp first second
	[ "$(curl -s "$EVENTS/_log" | grep -c .)" -eq 2 ]
	[ "$(relay-cache ls --json | jq -r .ttl | sort -u | awk '$1 > 240 && $1 <= 252' | wc -l)" -eq 1 ]
}

@test "the shell recipe gives the same result as the route" {
	UP=$EVENTS start_serve --routes "$ROOT/$EXAMPLES/routes/events.routes"
	RELAY_UPSTREAM=$EVENTS run "$ROOT/$EXAMPLES/events-with-subscriptions" 7
	[ "$status" -eq 0 ]
	[ "$output" = "$(curl -s "$SERVE/events-with-subscriptions/7")" ]
}

@test "on-error fail: an upstream 404 or 500 is passed on" {
	UP=$EVENTS start_serve --routes "$ROOT/$EXAMPLES/routes/events.routes"
	run curl -s -w ' %{http_code}' "$SERVE/events-with-subscriptions/404"
	[ "$output" = $'{"status":404,"error":"Not Found","detail":"an upstream call failed"}\n 404' ]
	run curl -s -D head -w ' %{http_code}' "$SERVE/events-with-subscriptions/500"
	[[ "$output" == *' 500' ]]
	grep -q $'^Relay-Complete: no\r$' head
	logged 2
	[ "$(grep '/500' serve.log | jq -r .error)" = "call event: Internal Server Error" ]
}

@test "on-error partial: null for the failed call, and the answer says so" {
	events_routes partial
	UP=$EVENTS start_serve --routes events.routes
	run curl -s -D head -w ' %{http_code}' "$SERVE/events-with-subscriptions/404"
	[ "$output" = $'{"id":404,"title":null,"names":[]}\n 200' ]
	grep -q $'^Relay-Complete: no\r$' head
	run curl -s -w ' %{http_code}' "$SERVE/events-with-subscriptions/500"
	[ "$output" = $'{"id":500,"title":null,"names":[]}\n 200' ]
}

@test "the menu route: every restaurant of a region in one response" {
	start_upstream --root "$ROOT/$EXAMPLES/menu-api"
	start_serve --routes "$ROOT/$EXAMPLES/routes/menu.routes"
	run curl -s "$SERVE/menus/Uppsala"
	[ "$(echo "$output" | jq -r '[.[].title] | join(",")')" = "Bikupan,Dufva Sikt,Hubben,Linné,Rudbeck,Tallrik" ]
	RELAY_UPSTREAM=$UP run "$ROOT/$EXAMPLES/menu-all" Uppsala
	[ "$(echo "$output" | jq -c .)" = "$(curl -s "$SERVE/menus/Uppsala" | jq -c .)" ]
	[ "$(curl -s "$SERVE/menus/all" | jq length)" -eq 14 ]
}

@test "each: one call an item of another call's answer, eight at a time, each through the cache" {
	start_upstream --root "$ROOT/$EXAMPLES/menu-api" --delay 100
	start_serve --routes "$ROOT/$EXAMPLES/routes/menu.routes"
	[ "$(curl -s "$SERVE/menus/all" | jq length)" -eq 14 ]
	max=$(curl -s "$UP/_max")
	[ "$max" -gt 1 ] && [ "$max" -le 8 ] || { echo "at once: $max"; false; }
	[ "$(requests_for /restaurant)" = 1 ]
	for id in $(jq -r '.restaurants[].identifier' \
	    "$ROOT/$EXAMPLES/menu-api/restaurant.json"); do
		[ "$(requests_for "/restaurant/$id")" = 1 ]
	done
	# another region merges anew, from the calls the cache holds
	eventually calls_stored 15
	[ "$(curl -s "$SERVE/menus/Solna" | jq length)" -gt 0 ]
	[ "$(curl -s "$UP/_log" | wc -l)" -eq 15 ]
}

# calls_stored N: the cache holds N answers of /restaurant calls.
calls_stored() {
	[ "$(relay-cache ls | grep -c '/restaurant')" -eq "$1" ]
}

# A route whose list call answers the items given, one call an item.
items_route() {	# items_route ITEMS-JSON fail|partial [MAX]
	cat >items.routes <<EOF
route /fan
	call list /list?body=$(printf %s "$1" | jq -sRr @uri)
	each items /item?cc=max-age=60&body=%22{.}%22 from list .[]
	max-items ${3:-100}
	on-error $2
	jq \$items
end
EOF
}

@test "each: over max-items the route fails, or answers the first ones as incomplete" {
	start_upstream
	items_route '["a","b","c","d"]' fail 3
	start_serve --routes items.routes
	run curl -s -D head -w ' %{http_code}' "$SERVE/fan"
	[[ "$output" == *' 502' ]]
	logged 1 '"error":"call items: more than 3 items"'
	items_route '["a","b","c","d"]' partial 3
	kill -HUP "$SERVE_PID"
	eventually log_has 1 'routes reloaded'
	run curl -s -D head "$SERVE/fan"
	[ "$(echo "$output" | jq -c .)" = '["a","b","c"]' ]
	grep -q $'^Relay-Complete: no\r$' head
	[ "$(requests_for '/item?cc=max-age=60&body=%22d%22')" = 0 ]
}

@test "each: an item that is neither a string nor a number is a failed call, null in its place" {
	start_upstream
	items_route '["a",{"x":1},7]' partial
	start_serve --routes items.routes
	run curl -s -D head "$SERVE/fan"
	[ "$(echo "$output" | jq -c .)" = '["a",null,"7"]' ]
	grep -q $'^Relay-Complete: no\r$' head
	items_route '[]' fail
	kill -HUP "$SERVE_PID"
	within 10 sh -c 'curl -s "$0/fan" | jq -e ". == []"' "$SERVE"
}

@test "each: an item that is no segment, or a number jq may have rounded, is a failed call, never another URL" {
	start_upstream
	items_route '["a","..",".","",9007199254740993,-9007199254740993,1e300,12,1.5,"a\u0000b"]' partial
	start_serve --routes items.routes --workers 1
	run curl -s "$SERVE/fan"
	[ "$(echo "$output" | jq -c .)" = '["a",null,null,null,null,null,null,"12","1.5",null]' ]
	# nothing was asked in their place: not the collection, not ...992
	[ "$(curl -s "$UP/_log" | jq -r .path | grep -c '^/item')" -eq 3 ]
	! curl -s "$UP/_log" | grep -q '9007199254740992' || false
	# failing the route, it says why
	items_route '[9007199254740993]' fail
	kill -HUP "$SERVE_PID"
	eventually grep -q 'routes reloaded' serve.log
	curl -s -o /dev/null "$SERVE/fan"
	eventually grep -q 'number of 2^53 or more' serve.log
}

@test "each: an item is taken whole, never cut: at a NUL (refused) nor at 256 bytes" {
	start_upstream
	long=$(printf 'L%.0s' $(seq 300))
	items_route "[\"a\\u0000b\", \"$long\"]" partial
	start_serve --routes items.routes
	run curl -s "$SERVE/fan"
	[ "$(echo "$output" | jq -c '[.[0], (.[1] | length)]')" = '[null,300]' ]
	[ "$(curl -s "$UP/_log" | jq -r .path | grep -c '^/item')" -eq 1 ]
	[ "$(requests_for "/item?cc=max-age=60&body=%22$long%22")" -eq 1 ]
}

@test "cache: a complete merged answer is kept; an incomplete one is not" {
	events_routes partial
	sed -i 's/^\tttl 252$/\tttl 252\n\tcache 1m/' events.routes
	UP=$EVENTS start_serve --routes events.routes
	curl -s -D head1 "$SERVE/events-with-subscriptions/7" >first
	grep -q 'Cache-Status: relay; detail=merge' head1
	curl -s -D head2 "$SERVE/events-with-subscriptions/7" >second
	cmp first second
	grep -q 'Cache-Status: relay; hit' head2
	grep -q $'^Relay-Complete: yes\r$' head2
	logged 2
	[ "$(access_log | jq -r .cache | tr '\n' ' ')" = "merge hit " ]
	curl -s "$SERVE/events-with-subscriptions/404" >/dev/null
	curl -s -D head3 "$SERVE/events-with-subscriptions/404" >/dev/null
	grep -q $'^Relay-Complete: no\r$' head3
	logged 4
	[ "$(access_log | jq -r .cache | tail -1)" = merge ]
}

@test "a bad routes file is refused at start with file, line and reason" {
	printf 'route /x/{id}\n\tcal a /a\nend\n' >bad.routes
	run --separate-stderr relay-serve --upstream "$EVENTS" --routes bad.routes </dev/null
	[ "$status" -eq 78 ]
	[ "$stderr" = "relay-serve: bad.routes:2: unknown directive 'cal'" ]
	printf 'route /x/{id}\n\tcall a /a/{nope}\n\tjq .\nend\n' >bad.routes
	run --separate-stderr relay-serve --upstream "$EVENTS" --routes bad.routes </dev/null
	[ "$stderr" = "relay-serve: bad.routes:2: no parameter '{nope}' in the route's pattern" ]
	printf 'route /x\n\tcall a /a\n\tjq {a: $a |]}\nend\n' >bad.routes
	run --separate-stderr relay-serve --upstream "$EVENTS" --routes bad.routes </dev/null
	[ "$status" -eq 78 ]
	[ "$stderr" = "relay-serve: bad.routes:3: jq: syntax error, unexpected INVALID_CHARACTER" ]
	# the true line of a program over several, never the wrapper around it
	printf 'route /x\n\tcall a /a\n\tjq {\n\t  b: $a,\n\t  c: $nope\n\t}\nend\n' >bad.routes
	run --separate-stderr relay-serve --upstream "$EVENTS" --routes bad.routes </dev/null
	[ "$stderr" = "relay-serve: bad.routes:5: jq: \$nope is not defined" ]
	# no module is loaded, by the program or by each's items
	echo 'def f: 1;' >m.jq
	printf 'route /x\n\tcall a /a\n\tjq include "m";\n\t  f\nend\n' >bad.routes
	run --separate-stderr relay-serve --upstream "$EVENTS" --routes bad.routes </dev/null
	[ "$status" -eq 78 ]
	[ "$stderr" = "relay-serve: bad.routes:3: jq: include is not supported: relay loads no jq modules" ]
	printf 'route /x\n\tcall a /a\n\teach b /b/{.} from a import "m" as m; m::f\n\tjq $b\nend\n' >bad.routes
	run --separate-stderr relay-serve --upstream "$EVENTS" --routes bad.routes </dev/null
	[ "$status" -eq 78 ]
	[ "$stderr" = "relay-serve: bad.routes:3: jq: import is not supported: relay loads no jq modules" ]
	unset EVENTS_TOKEN
	run --separate-stderr relay-serve --upstream "$EVENTS" --routes "$ROOT/$EXAMPLES/routes/events.routes" </dev/null
	[ "$status" -eq 78 ]
	[[ "$stderr" == *"events.routes:13: environment variable 'EVENTS_TOKEN' is not set" ]]
	run --separate-stderr relay-serve --upstream "$EVENTS" --routes missing.routes </dev/null
	[ "$stderr" = "relay-serve: cannot read 'missing.routes': No such file or directory" ]
	# a header's value: no control character, from the file or a header-file
	printf 'k\0ey\n' >nul.key
	printf 'k\001ey\n' >ctl.key
	for f in nul.key ctl.key; do
		printf 'route /x\n\tcall a /a\n\theader-file X-Key: %s\n\tjq .\nend\n' "$f" >bad.routes
		run -78 --separate-stderr relay-serve --upstream "$EVENTS" --routes bad.routes </dev/null
		[[ "$stderr" == "relay-serve: bad.routes:3: "* ]] || { echo "$f: $stderr"; false; }
	done
	printf 'route /x\n\tcall a /a\n\theader X-Key: k\001ey\n\tjq .\nend\n' >bad.routes
	run -78 --separate-stderr relay-serve --upstream "$EVENTS" --routes bad.routes </dev/null
}

@test "SIGHUP reloads the routes; a bad new file keeps the old ones" {
	events_routes fail
	UP=$EVENTS start_serve --routes events.routes --workers 2
	# Not a route yet: relayed as it is, without the token.
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/hello")" = 401 ]
	printf 'route /hello\n\tcall e /events/7\n\theader Authorization: Token ${EVENTS_TOKEN}\n\tjq $e.data[0].title\nend\n' >>events.routes
	kill -HUP "$SERVE_PID"
	for _ in $(seq 50); do
		[ "$(grep -c 'routes reloaded' serve.log)" -eq 2 ] && break
		sleep 0.1
	done
	[ "$(curl -s "$SERVE/hello")" = '"Kick-off"' ]
	echo 'nonsense' >>events.routes
	kill -HUP "$SERVE_PID"
	for _ in $(seq 50); do
		[ "$(grep -c 'not reloaded' serve.log)" -eq 2 ] && break
		sleep 0.1
	done
	grep -q "routes not reloaded, the old ones stay: events.routes:27: 'nonsense' outside a route" serve.log
	[ "$(curl -s "$SERVE/hello")" = '"Kick-off"' ]
}

# not_reloaded N: serve.log says N times that a reload was refused.
not_reloaded() {
	[ "$(grep -c 'not reloaded' serve.log)" -eq "$1" ]
}

@test "a routes file, or a file it names, that is not a bounded regular file is refused, at start and on SIGHUP" {
	mkdir dir.routes
	mkfifo fifo.routes secret.fifo
	head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' '#' >big.routes
	printf 'route /a\n\tcall a /a\n\theader-file X-Key: secret.fifo\n\tjq $a\nend\n' \
	    >fifo-header.routes
	local f
	for f in dir.routes fifo.routes /dev/zero big.routes; do
		run --separate-stderr timeout 20 relay-serve --upstream "$EVENTS" \
		    --routes "$f" </dev/null
		[ "$status" -eq 78 ] || { echo "$f: exit $status"; false; }
		[[ "$stderr" == "relay-serve: cannot read '$f': "* ]]
	done
	[[ "$stderr" == *"larger than 1048576 bytes" ]]
	run --separate-stderr timeout 20 relay-serve --upstream "$EVENTS" \
	    --routes fifo-header.routes </dev/null
	[ "$status" -eq 78 ]
	[ "$stderr" = "relay-serve: fifo-header.routes:3: cannot read 'secret.fifo': not a regular file" ]
	# on SIGHUP the same: the old routes stay, the worker goes on
	events_routes fail
	UP=$EVENTS start_serve --routes events.routes --workers 1
	rm events.routes
	mkdir events.routes
	kill -HUP "$SERVE_PID"
	eventually grep -q "routes not reloaded, the old ones stay: cannot read 'events.routes': not a regular file" serve.log
	rmdir events.routes
	ln -s /dev/zero events.routes
	kill -HUP "$SERVE_PID"
	eventually not_reloaded 2
	[ "$(curl -s "$SERVE/events-with-subscriptions/7" | jq -r .title)" = Kick-off ]
}

@test "jv reference counting: a merge route under valgrind" {
	skip_unless_valgrind relay-serve
	printf 'GET /events-with-subscriptions/7 HTTP/1.1\r\nHost: x\r\n\r\nGET /events-with-subscriptions/404 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >requests
	run valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
	    --error-exitcode=99 relay-serve --upstream "$EVENTS" \
	    --routes "$ROOT/$EXAMPLES/routes/events.routes" <requests
	[ "$status" -eq 0 ]
	[[ "$output" == *'"names":["Ada","Linus","Grace"]'* ]]
}

@test "what a route's own header unlocks answers that route alone: never a direct request, an item or another route" {
	start_upstream
	local p='/priv?cc=max-age=600&echo_header=X-Api-Key&type=application/json'
	cat >keys.routes <<-EOF
	route /with-key
		call p $p
		header X-Api-Key: k1
		jq \$p
	end
	route /other-key
		call p $p
		header X-Api-Key: k2
		jq \$p
	end
	route /no-key
		call p $p
		jq \$p
	end
	EOF
	start_serve --routes keys.routes --workers 1
	[ "$(curl -s "$SERVE/with-key")" = '"k1"' ]
	eventually sh -c '[ -n "$(relay-cache ls)" ]'
	# the plain URL, asked directly or in a batch: not k1's
	[ "$(curl -s "$SERVE$p")" = '""' ]
	curl -s --data-binary '{"requests":[{"id":"1","path":"'"$p"'"}]}' \
	    "$SERVE/_relay/batch" | jq -e '.json == "" and .status == 200'
	# another route with another key, and one with none: their own
	[ "$(curl -s "$SERVE/other-key")" = '"k2"' ]
	[ "$(curl -s "$SERVE/no-key")" = '""' ]
	# each is cached for its own: asked again, the upstream is not
	[ "$(curl -s "$SERVE/with-key")" = '"k1"' ]
	[ "$(curl -s "$SERVE$p")" = '""' ]
	[ "$(requests_for "$p")" -eq 3 ]
	# no secret lies in the file: the scope is a digest
	! sqlite3 "$RELAY_CACHE" 'SELECT variant FROM entries' | grep -q 'k1\|k2' || false
	# nor goes out in a sync, which carries the plain URL's alone
	curl -s "$SERVE/_relay/sync" >sync.ndjson
	[ "$(tail -n +2 sync.ndjson | jq -c .json)" = '""' ]
	curl -s -o sync.db "$SERVE/_relay/sync?format=sqlite"
	[ "$(sqlite3 sync.db 'SELECT count(*) FROM records')" -eq 1 ]
	# purging the URL purges every scope's copy
	relay-cache rm "$UP$p"
	[ -z "$(relay-cache ls)" ]
}

# Routes whose programs the client's parameter makes run long or need
# much memory, in the program or in each's items (from a call's answer).
bounded_routes() {
	cat >bounded.routes <<'ROUTES'
route /spin/{how}
	call a /a
	jq if $how == "loop" then (def f: f; f)
	   elif $how == "until" then until(false; .)
	   elif $how == "ok" then "fine"
	   else last(range($how | tonumber)) end
end

route /grow/{how}
	call a /a
	jq if $how == "nest" then (def f: [f]; f)
	   elif $how == "repeat" then [limit(1e9; repeat(1))]
	   else [range($how | tonumber)] end
end

route /fan/{n}
	call list /list?body=%5B{n}%5D
	each items /item/{.} from list last(range(.[0]))
	jq $items
end
ROUTES
}

# failed PATH DETAIL: the merge answers 500 saying DETAIL, within the
# test's bound.
failed() {
	run curl -s -m 30 -w ' %{http_code}' "$SERVE$1"
	echo "$1: $output"
	[ "$output" = "{\"status\":500,\"error\":\"Internal Server Error\",\"detail\":\"$2\"}
 500" ]
}

@test "a route's program that runs too long or needs too much memory answers 500, saying which bound" {
	bounded_routes
	start_upstream
	start_serve --routes bounded.routes --program-timeout 1
	failed /spin/loop "route program took longer than 1s"
	failed /spin/until "route program took longer than 1s"
	failed /spin/1e18 "route program took longer than 1s"
	failed /fan/1e18 "route items took longer than 1s"
	[ "$(curl -s "$SERVE/spin/ok")" = '"fine"' ]
	logged 5
	grep -q '"target":"/spin/loop".*"error":"route /spin/{how}: program took longer than 1s"' serve.log
	grep -q '"target":"/fan/1e18".*"error":"call items: items took longer than 1s"' serve.log
	kill "$SERVE_PID"
	wait "$SERVE_PID"
	# a build with AddressSanitizer: its malloc may fail, as libc's does
	ASAN_OPTIONS=allocator_may_return_null=1 start_serve \
	    --routes bounded.routes --program-timeout 25 --program-max-memory 16M
	failed /grow/nest "route program needed more than 16 MiB"
	failed /grow/repeat "route program needed more than 16 MiB"
	failed /grow/1e18 "route program needed more than 16 MiB"
	[ "$(curl -s "$SERVE/grow/3" | jq -c .)" = '[0,1,2]' ]
	logged 4
	grep -q '"target":"/grow/nest".*"error":"route /grow/{how}: program needed more than 16 MiB"' serve.log
	run relay-serve --upstream "$UP" --program-timeout 0 </dev/null
	[ "$status" -eq 2 ]
	run relay-serve --upstream "$UP" --program-max-memory 10 </dev/null
	[ "$status" -eq 2 ]
}

@test "a route's program or items that stop with halt_error answer 500 saying so; a plain halt ends it; debug and inputs work" {
	start_upstream
	cat >halt.routes <<'ROUTES'
route /halt/{how}
	call a /a
	jq if $how == "error" then "secret \($how)" | halt_error(3)
	   elif $how == "after" then 1, halt_error(300)
	   elif $how == "stderr" then ("secret" | stderr | debug | empty), "ok"
	   elif $how == "inputs" then [inputs]
	   else "done", halt, "never" end
end

route /fan
	call list /list?body=%5B1%5D
	each items /item/{.} from list .[], halt_error(4)
	jq $items
end
ROUTES
	start_serve --routes halt.routes
	failed /halt/error "route program stopped with halt_error, exit status 3"
	failed /halt/after "route program stopped with halt_error, exit status 44"
	failed /fan "route items stopped with halt_error, exit status 4"
	[ "$(curl -s "$SERVE/halt/plain")" = '"done"' ]
	# debug and inputs have nothing to call (libjq leaves them unset)
	[ "$(curl -s "$SERVE/halt/stderr")" = '"ok"' ]
	[ "$(curl -s "$SERVE/halt/inputs")" = '[]' ]
	logged 6
	grep -q '"target":"/halt/error".*"error":"route /halt/{how}: program stopped with halt_error, exit status 3"' serve.log
	# the message, as what the program writes to stderr, is neither sent nor logged
	! grep -q secret serve.log || false
}

# exited PID: the process has ended (a zombie counts: not reaped yet).
exited() {
	! kill -0 "$1" 2>/dev/null ||
	    [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

@test "while a route's program loops, its worker answers the others; SIGTERM stops it at once" {
	bounded_routes
	start_upstream
	start_serve --routes bounded.routes --workers 1 --program-timeout 1h
	curl -s -m 60 -w ' %{http_code}' "$SERVE/spin/loop" >looping &
	client=$!
	EXTRA_PIDS+=("$client")
	# its program runs in a child of the one process there is
	within 10 pgrep -P "$SERVE_PID" >/dev/null
	child=$(pgrep -P "$SERVE_PID")
	# the same worker answers a relayed request and another merge
	[ "$(curl -s -m 10 "$SERVE/plain?body=hello")" = hello ]
	[ "$(curl -s -m 10 "$SERVE/spin/ok")" = '"fine"' ]
	kill -0 "$client"	# still waiting for the loop
	kill -TERM "$SERVE_PID"
	within 10 exited "$SERVE_PID"
	wait "$SERVE_PID"
	SERVE_PID=
	wait "$client"
	[ "$(cat looping)" = '{"status":503,"error":"Service Unavailable","detail":"relay-serve is stopping"}
 503' ]
	within 10 exited "$child"
}

# children N: the relay-serve process has N children (its jq runs).
children() {
	[ "$(pgrep -c -P "$SERVE_PID")" -eq "$1" ]
}

@test "four programs run at once in a worker; the others wait for a turn" {
	bounded_routes
	start_upstream
	start_serve --routes bounded.routes --workers 1 --program-timeout 1
	for _ in 1 2 3 4 5 6; do
		curl -s -m 60 -o /dev/null "$SERVE/spin/loop" &
		EXTRA_PIDS+=($!)
	done
	within 10 children 4
	# waits for a turn: the loops ahead of it end within a second
	curl -s -m 60 "$SERVE/spin/ok" >ok &
	ok=$!
	EXTRA_PIDS+=("$ok")
	[ "$(curl -s -m 10 "$SERVE/plain?body=hello")" = hello ]
	[ "$(pgrep -c -P "$SERVE_PID")" -le 4 ]
	wait "$ok"
	[ "$(cat ok)" = '"fine"' ]
	logged 7 '"target":"/spin/'
	[ "$(access_log | grep -c '"status":500,.*took longer than 1s')" -eq 6 ]
	within 10 children 0
}

@test "what a route's header unlocks stays the route's when it is revalidated in the background (stale-while-revalidate)" {
	start_upstream
	local p='/swr?cc=max-age%3D1%2C%20stale-while-revalidate%3D60&echo_header=X-Api-Key&type=application/json'
	cat >swr.routes <<-EOF
	route /with-key
		call p $p
		header X-Api-Key: k1
		jq \$p
	end
	EOF
	start_serve --routes swr.routes --workers 1
	[ "$(curl -s "$SERVE/with-key")" = '"k1"' ]
	# stale by a whole second at least: relay-cache rounds its age to
	# seconds, and at the boundary relay-serve may see it fresh still
	stale() { relay-cache ls --json | jq -e 'select(.state == "stale" and .age >= 2)' >/dev/null; }
	eventually stale
	# stale within its window: answered at once, refreshed behind
	[ "$(curl -s "$SERVE/with-key")" = '"k1"' ]
	asked_twice() { [ "$(curl -s "$UP/_log" | jq -r .path | grep -c '^/swr')" -eq 2 ]; }
	eventually asked_twice
	eventually sh -c '! relay-cache ls --json | jq -e "select(.state == \"stale\")" >/dev/null'
	# the refreshed copy is still the route's alone
	[ "$(curl -s "$SERVE$p")" = '""' ]
	[ "$(sqlite3 "$RELAY_CACHE" 'SELECT count(*) FROM entries WHERE variant LIKE ":scope=%"')" -eq 1 ]
}

@test "a route's parameters are one segment each where its calls put them: no query of the client's, no /_relay/ upstream" {
	start_upstream
	cat >params.routes <<-'EOF'
	route /ev/{id}
		call c /sub?ids=%5B{id}%5D&token=operator
		jq $c
	end
	route /two/{a}/{b}
		call c /{a}/{b}
		on-error partial
		jq $c
	end
	EOF
	start_serve --routes params.routes --workers 1
	curl -s -o /dev/null "$SERVE/ev/1%5D&token=mine&x=%5B2"
	curl -s -o /dev/null "$SERVE/ev/7"
	# the client's "&" and "=" stay inside the one parameter's value
	[ "$(curl -s "$UP/_log" | jq -r .path | grep -c '^/sub')" -eq 2 ]
	curl -s "$UP/_log" | jq -r 'select(.path | startswith("/sub")) | .path' >asked
	grep -qx '/sub?ids=%5B7%5D&token=operator' asked
	grep -qx '/sub?ids=%5B1%5D%26token%3Dmine%26x%3D%5B2%5D&token=operator' asked
	# a parameter never spells relay's own namespace upstream
	for t in /two/_relay/sync /two/%5Frelay/stats /two/_relay/metrics; do
		[ "$(curl -s "$SERVE$t")" = null ]
	done
	! curl -s "$UP/_log" | jq -r .path | grep -q '_relay' || false
}

@test "a route's program sees no environment: \$ENV and env never give it relay-serve's secrets" {
	start_upstream
	cat >env.routes <<-'EOF'
	route /env/{how}
		call a /a?body=%7B%7D
		header X-Key: ${ROUTE_SECRET}
		jq if $how == "ENV" then $ENV else env end
	end
	EOF
	ROUTE_SECRET=s3cr3t-value start_serve --routes env.routes --workers 1
	[ "$(curl -s "$SERVE/env/ENV")" = '{}' ]
	[ "$(curl -s "$SERVE/env/env")" = '{}' ]
	# the header still has it
	curl -s "$UP/_log" | jq -e 'select(.path | startswith("/a")) | .headers["X-Key"] == "s3cr3t-value"'
}

# reloaded N: serve.log says N times that the routes were reloaded.
reloaded() {
	[ "$(grep -c 'routes reloaded' serve.log)" -ge "$1" ]
}

@test "two reloads while a merge is under way: the route it holds stays until it ends, and it is answered" {
	start_upstream
	cat >slow.routes <<-'EOF2'
		route /slow/{id}
			call one /j/{id}?hold=1&body=%7B%7D
			cache 30
			jq {id: $id}
		end
	EOF2
	start_serve --routes slow.routes --workers 1
	curl -s -m 30 -w ' %{http_code}' "$SERVE/slow/a" >out &
	client=$!
	eventually sh -c '[ "$(curl -s "$0/_log" | grep -c "/j/a")" -ge 1 ]' "$UP"
	kill -HUP "$SERVE_PID"
	eventually reloaded 1
	kill -HUP "$SERVE_PID"
	eventually reloaded 2
	curl -s -o /dev/null "$UP/_release"
	wait "$client"
	cat out
	[ "$(cat out)" = $'{"id":"a"}\n 200' ]
	kill -0 "$SERVE_PID"
	! grep -q 'died' serve.log || false
	[ "$(curl -s "$SERVE/slow/a")" = '{"id":"a"}' ]
}

@test "a worker started after a reload (one died) serves the reloaded routes, not those of the start" {
	start_upstream
	printf 'route /gen\n\tcall x /x?body=1\n\tjq "one"\nend\n' >gen.routes
	start_serve --routes gen.routes --workers 2
	printf 'route /gen\n\tcall x /x?body=1\n\tjq "two"\nend\n' >gen.routes
	kill -HUP "$SERVE_PID"
	eventually reloaded 2
	worker=$(pgrep -P "$SERVE_PID" | head -1)
	kill -KILL "$worker"
	eventually grep -q 'starting another' serve.log
	eventually reloaded 3
	for _ in $(seq 10); do
		[ "$(curl -s "$SERVE/gen")" = '"two"' ]
	done
}
