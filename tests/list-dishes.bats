#!/usr/bin/env bats
# list-dishes against the fixture upstream serving the menu-API snapshot,
# against the snapshot itself (file:), and through relay-serve.

bats_require_minimum_version 1.5.0
load helpers

SNAPSHOT=share/examples/menu-api

setup() {
	common_setup
	start_upstream --root "$ROOT/$SNAPSHOT"
	export RELAY_UPSTREAM=$UP
	unset RELAY_URL
}

@test "no arguments: every restaurant, tab-separated when piped" {
	run --separate-stderr list-dishes
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 14 ]
	[ "${lines[0]}" = "$(printf 'cafe-erik-jorpes\tCafé Erik Jorpes\tSolna')" ]
	[ "$(list-dishes | cut -f1 | tr '\n' ' ')" = "$(jq -r '.restaurants[].identifier' "$ROOT/$SNAPSHOT/restaurant.json" | tr '\n' ' ')" ]
}

@test "--region keeps one campus, whatever the case" {
	run list-dishes --region uppsala
	[ "${#lines[@]}" -eq 6 ]
	[ "$(list-dishes --region UPPSALA | cut -f3 | sort -u)" = Uppsala ]
	run --separate-stderr list-dishes --region Lund
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "list-dishes: no restaurant in region 'Lund'; the regions are Solna, Uppsala" ]
}

@test "identifiers: each restaurant's title, location and dishes" {
	run --separate-stderr list-dishes bikupan svarta-rafven
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | cut -f1-3 | sort -u)" = "$(printf 'bikupan\tBikupan\tUppsala\nsvarta-rafven\tSvarta Räfven\tSolna')" ]
	[ "$(echo "$output" | cut -f4)" = "$(jq -r '.restaurant.menu[].dish' "$ROOT/$SNAPSHOT/restaurant/bikupan.json" "$ROOT/$SNAPSHOT/restaurant/svarta-rafven.json")" ]
}

@test "--json for the list, for menus and for searches" {
	run list-dishes --json --region Solna
	[ "$(echo "$output" | jq -r 'length')" -eq 8 ]
	[ "$(echo "$output" | jq -r '.[0] | keys | join(",")')" = identifier,name,region ]
	run list-dishes --json elma
	[ "$(echo "$output" | jq -r '.[0].title')" = Elma ]
	[ "$(echo "$output" | jq -r '.[0].dishes | length')" -eq "$(jq '.restaurant.menu | length' "$ROOT/$SNAPSHOT/restaurant/elma.json")" ]
	run list-dishes --json --search lax
	[ "$(echo "$output" | jq -r '[.[].dish | test("lax"; "i")] | all')" = true ]
}

@test "--search ignores case and accents" {
	run list-dishes --search KOTTBULLAR
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -ge 1 ]
	[ "$(echo "$output" | cut -f3 | grep -vc 'Köttbullar')" -eq 0 ]
	run list-dishes --search 'köttbullar'
	[ "$(echo "$output" | wc -l)" -eq "$(list-dishes --search KOTTBULLAR | wc -l)" ]
	run --separate-stderr list-dishes --search 'no such dish'
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "list-dishes: no dish matches 'no such dish'" ]
	run --separate-stderr list-dishes --search ärtsoppa --region solna
	[ "$status" -eq 1 ]
	[ "$stderr" = "list-dishes: no dish matches 'ärtsoppa' in region solna" ]
}

@test "--search fetches every menu in one concurrent round" {
	start_upstream --root "$ROOT/$SNAPSHOT" --delay 200
	export RELAY_UPSTREAM=$UP
	list-dishes --search vegetarisk >/dev/null
	[ "$(curl -s "$UP/_max")" -ge 8 ]
	[ "$(curl -s "$UP/_log" | jq -r .path | grep -c '^/restaurant/')" -eq 14 ]
}

@test "on a terminal: an aligned table that fits 80 columns" {
	script -qc 'stty cols 80; list-dishes; list-dishes --search lax' /dev/null |
	    tr -d '\r' >screen
	python3 - screen <<-'EOF'
	import sys
	lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
	assert lines[0].split() == ["ID", "NAME", "REGION"], lines[0]
	col = lines[0].index("REGION")
	cafe = next(l for l in lines if l.startswith("cafe-erik-jorpes"))
	assert cafe[col:] == "Solna", repr(cafe)          # in characters, not bytes
	assert all(len(l) <= 80 for l in lines), max(map(len, lines))
	assert any(l.endswith("…") for l in lines)        # long dishes are cut
	EOF
}

@test "on a terminal of 1 to 9 columns, no line is wider than it (the terminal's width or COLUMNS)" {
	for cols in 1 2 3 5 7 9; do
		script -qc "stty cols $cols; list-dishes --region Uppsala; list-dishes bikupan; list-dishes --search lax" /dev/null |
		    tr -d '\r' >"screen$cols"
		# and COLUMNS when the terminal cannot say (it says 0)
		script -qc "stty cols 0; COLUMNS=$cols list-dishes --region Uppsala" /dev/null |
		    tr -d '\r' >>"screen$cols"
		python3 - "screen$cols" "$cols" <<-'EOF'
		import sys
		lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
		cols = int(sys.argv[2])
		assert len(lines) > 20, lines
		assert all(0 < len(l) <= cols for l in lines), (cols, [l for l in lines if len(l) > cols])
		EOF
	done
	[ "$(head -1 screen1)" = "…" ]
	[ "$(head -1 screen9)" = "…  …  RE…" ]
}

@test "--relay and RELAY_URL give the same answers as going direct" {
	start_serve
	for args in "" "--region Solna" "bikupan elma" "--search lax" "--json hubben"; do
		# shellcheck disable=SC2086
		direct=$(list-dishes $args)
		# shellcheck disable=SC2086
		[ "$(list-dishes --relay "$SERVE" $args)" = "$direct" ]
		# shellcheck disable=SC2086
		[ "$(RELAY_URL=$SERVE list-dishes $args)" = "$direct" ]
	done
	logged 2 '"target":"/restaurant"'
}

@test "--relay asks in one batch: the list and the menus named in one round trip, a search in two" {
	start_serve
	list-dishes --relay "$SERVE" bikupan elma >/dev/null
	logged 1 '"target":"/_relay/batch"'
	[ "$(access_log | jq -r .target | sort | tr '\n' ' ')" = \
	    '/_relay/batch /restaurant /restaurant/bikupan /restaurant/elma ' ]
	list-dishes --relay "$SERVE" --search lax >/dev/null
	logged 21	# two batches more: the list, then its 14 menus
	[ "$(access_log | jq -r 'select(.target == "/_relay/batch") | .target' | wc -l)" -eq 3 ]
	# no connection but the batches'
	[ "$(access_log | jq -r .peer | sort -u | wc -l)" -eq 3 ]
}

@test "--relay to a relay with menu.routes: a search in one round trip, the same answers" {
	start_serve --routes "$ROOT/share/examples/routes/menu.routes"
	for args in "--search lax" "--search lax --region Solna" "--json --search kyckling"; do
		# shellcheck disable=SC2086
		[ "$(list-dishes --relay "$SERVE" $args)" = "$(list-dishes $args)" ]
	done
	logged 3 '"target":"/_relay/batch"'
	[ "$(access_log | jq -r 'select(.target == "/_relay/batch") | .target' | wc -l)" -eq 3 ]
}

@test "--relay at a server without batches: one request a page instead" {
	# the fixture is no relay-serve: its answer to the batch is not NDJSON
	[ "$(list-dishes --relay "$UP" bikupan elma)" = "$(list-dishes bikupan elma)" ]
	[ "$(requests_for /restaurant/bikupan)" -ge 2 ]
}

@test "the seed's client contract: Python reads what list-dishes shows" {
	start_serve
	/usr/bin/python3 - "$SERVE" >seed.tsv <<-'EOF'
	import sys, requests
	base = sys.argv[1]
	for r in requests.get(base + "/restaurant").json()["restaurants"]:
	    menu = requests.get(base + "/restaurant/" + r["identifier"]).json()
	    for d in menu["restaurant"]["menu"]:
	        print(r["identifier"], menu["restaurant"]["title"], d["dish"], sep="\t")
	EOF
	list-dishes --relay "$SERVE" $(list-dishes --relay "$SERVE" | cut -f1) |
	    cut -f1,2,4 >ours.tsv
	[ -s seed.tsv ]
	diff seed.tsv ours.tsv
}

@test "the snapshot itself, through a file: template" {
	run list-dishes --upstream "file://$ROOT/$SNAPSHOT{path}.json" hubben
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | cut -f2 | sort -u)" = Hubben ]
}

@test "--offline answers from the cache only" {
	run --separate-stderr list-dishes --offline
	[ "$status" -eq 69 ]
	[[ "$stderr" == "list-dishes: /restaurant: '$UP/restaurant' is not in the cache" ]]
	list-dishes bikupan >/dev/null
	kill "$UPSTREAM_PID"
	wait "$UPSTREAM_PID" 2>/dev/null || true
	UPSTREAM_PID=
	run list-dishes --offline bikupan
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | cut -f1 | sort -u)" = bikupan ]
	run --separate-stderr list-dishes --offline elma
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"is not in the cache"* ]]
}

@test "upstream down: stale menus from the cache, with their age" {
	start_upstream --root "$ROOT/$SNAPSHOT" --cc max-age=0
	export RELAY_UPSTREAM=$UP
	list-dishes elma >before
	kill "$UPSTREAM_PID"
	wait "$UPSTREAM_PID" 2>/dev/null || true
	UPSTREAM_PID=
	run --separate-stderr list-dishes elma
	[ "$status" -eq 0 ]
	[ "$output" = "$(cat before)" ]
	[[ "$stderr" == *"list-dishes: the upstream did not answer; /restaurant/elma is from the cache, "*" s old"* ]]
}

@test "an unknown identifier says so and suggests the closest" {
	run --separate-stderr list-dishes bikupn
	[ "$status" -eq 1 ]
	[ "$stderr" = "list-dishes: no restaurant 'bikupn'; did you mean bikupan?" ]
	run --separate-stderr list-dishes rafven elma
	[ "$status" -eq 1 ]
	[ "$stderr" = "list-dishes: no restaurant 'rafven'; did you mean svarta-rafven?" ]
	[ "$(echo "$output" | cut -f1 | sort -u)" = elma ]
	run --separate-stderr list-dishes zzzzzzzz
	[ "$stderr" = "list-dishes: no restaurant 'zzzzzzzz'; 'list-dishes' lists them" ]
}

@test "a response of the wrong shape says what was expected" {
	mkdir -p list/restaurant menu/restaurant text/restaurant
	echo '{"restaurant":[]}' >list/restaurant.json
	run --separate-stderr list-dishes --upstream "file://$PWD/list{path}.json"
	[ "$status" -eq 65 ]
	[ "$stderr" = 'list-dishes: /restaurant: expected an object with a "restaurants" array' ]
	cp "$ROOT/$SNAPSHOT/restaurant.json" menu/
	echo '{"menu":"none"}' >menu/restaurant/elma.json
	run --separate-stderr list-dishes --upstream "file://$PWD/menu{path}.json" elma
	[ "$status" -eq 65 ]
	[[ "$stderr" == 'list-dishes: /restaurant/elma: expected {"restaurant": '* ]]
	cp "$ROOT/$SNAPSHOT/restaurant.json" text/
	echo 'not json' >text/restaurant/elma.json
	run --separate-stderr list-dishes --upstream "file://$PWD/text{path}.json" elma
	[ "$status" -eq 65 ]
	[ "$stderr" = 'list-dishes: /restaurant/elma: expected a JSON document' ]
	# the list itself not JSON: 65 too, whatever was asked
	mkdir notjson
	echo 'not json' >notjson/restaurant.json
	for args in '' elma '--search lax'; do
		# shellcheck disable=SC2086
		run --separate-stderr list-dishes --upstream "file://$PWD/notjson{path}.json" $args
		[ "$status" -eq 65 ]
		[ "$stderr" = 'list-dishes: /restaurant: expected a JSON document' ]
	done
}

# relay_answers BODY [TYPE]: a fake relay whose every answer is BODY.
relay_answers() {
	RELAY=$(python3 - "$UP" "$1" "${2:-application/x-ndjson}" <<-'EOF'
	import sys, urllib.parse
	print(sys.argv[1] + "/?type=" + urllib.parse.quote(sys.argv[3]) +
	      "&body=" + urllib.parse.quote(sys.argv[2]))
	EOF
	)
}

@test "a relay's batch answer that is not one is a data error (65) saying so; one past 64 MiB is cut, saying so" {
	list='{"id":"0","status":200,"json":{"restaurants":[{"identifier":"elma","name":"E","region":"R"}]}}'
	relay_answers garbage
	run --separate-stderr list-dishes --relay "$RELAY" elma
	[ "$status" -eq 65 ]
	[ "$stderr" = "list-dishes: /restaurant: the relay at $RELAY answered the batch with something else than a batch answer (line 1 is not a JSON object)" ]
	# a line that is not an item of this batch, an id that only begins
	# as one; a bad line after good ones (the message is cut after 200
	# columns: the fake relay's URL is long)
	for body in '[1]' '{"id":"7","status":200}' '{"id":"0x","status":200}' \
	    '{"id":"00","status":200}' "$list"$'\n'"garbage"; do
		relay_answers "$body"
		run --separate-stderr list-dishes --relay "$RELAY" elma
		echo "$body: $status $stderr"
		[ "$status" -eq 65 ]
		[[ "$stderr" == "list-dishes: /restaurant"*": the relay at ${RELAY:0:60}"* ]]
		[ "$(echo "$stderr" | wc -l)" -eq 1 ]
	done
	# the list came; elma's line did not
	relay_answers "$list"
	run --separate-stderr list-dishes --relay "$RELAY" elma
	[ "$status" -eq 65 ]
	[[ "$stderr" == "list-dishes: /restaurant/elma: the relay at ${RELAY:0:60}"* ]]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
	# too much: the relay was reached, and said so
	start_upstream --root "$ROOT/$SNAPSHOT"
	run --separate-stderr list-dishes --relay "$UP/?type=application/x-ndjson&size=70000000" elma
	[ "$status" -eq 65 ]
	[ "$stderr" = "list-dishes: /restaurant: the relay at $UP/?type=application/x-ndjson&size=70000000 answered the batch with more than 64 MiB" ]
	# a relay that cannot be reached is said so, exit 69
	run --separate-stderr list-dishes --relay "http://127.0.0.1:$(free_port)" elma
	[ "$status" -eq 69 ]
	[[ "$stderr" == "list-dishes: /restaurant: cannot reach the relay at http://127.0.0.1:"*": Couldn't connect to server" ]]
}

@test "usage errors exit 2" {
	run list-dishes --offline --relay http://127.0.0.1:1
	[ "$status" -eq 2 ]
	run list-dishes --search lax elma
	[ "$status" -eq 2 ]
	run list-dishes --search ''
	[ "$status" -eq 2 ]
	run list-dishes --bogus
	[ "$status" -eq 2 ]
	run list-dishes --help
	[ "$status" -eq 0 ]
	[[ "$output" == usage:* ]]
}

@test "bash completion offers identifiers from the cache and regions" {
	list-dishes >/dev/null
	# shellcheck source=/dev/null
	source "$ROOT/share/bash-completion/completions/list-dishes"
	COMP_WORDS=(list-dishes b)
	COMP_CWORD=1
	_list_dishes
	[ "${COMPREPLY[*]}" = bikupan ]
	COMP_WORDS=(list-dishes --region S)
	COMP_CWORD=2
	_list_dishes
	[ "${COMPREPLY[*]}" = Solna ]
	COMP_WORDS=(list-dishes --j)
	COMP_CWORD=1
	_list_dishes
	[ "${COMPREPLY[*]}" = --json ]
}

@test "bash completion asks the relay for a user of --relay or RELAY_URL" {
	start_serve --cache "$PWD/relay.db"
	export RELAY_CACHE=$PWD/empty.db	# nothing here: only the relay knows
	# shellcheck source=/dev/null
	source "$ROOT/share/bash-completion/completions/list-dishes"
	COMP_WORDS=(list-dishes --relay "$SERVE" b)
	COMP_CWORD=3
	_list_dishes
	[ "${COMPREPLY[*]}" = bikupan ]
	RELAY_URL=$SERVE
	COMP_WORDS=(list-dishes --region U)
	COMP_CWORD=2
	_list_dishes
	[ "${COMPREPLY[*]}" = Uppsala ]
	unset RELAY_URL
}

# A menu API whose text carries terminal escapes, tabs and newlines.
hostile_menu() {
	mkdir -p hostile/restaurant
	cat >hostile/restaurant.json <<-'EOF'
	{"restaurants": [{"identifier": "evil", "name": "Evil\u001b]0;owned\u0007 Diner\u001b[2J", "region": "Solna\tFake", "homepage": "", "menuUrl": "", "osm": "", "coordinate": [0, 0]}]}
	EOF
	cat >hostile/restaurant/evil.json <<-'EOF'
	{"restaurant": {"title": "Evil\u009b31m", "location": "Solna\nFake row", "url": "", "map_url": "", "menu": [{"dish": "Soup\u0007\tbread\\n"}]}}
	EOF
	start_upstream --root "$BATS_TEST_TMPDIR/hostile"
	export RELAY_UPSTREAM=$UP
}

@test "upstream text never reaches the terminal raw: escapes are shown, not sent" {
	hostile_menu
	script -qc 'stty cols 100; list-dishes; list-dishes evil' /dev/null >screen
	# no ESC, BEL or C1 CSI byte on the terminal, only their escaped forms
	! grep -q $'\e\|\a' screen || false
	! grep -q $'\xc2\x9b' screen || false
	grep -q 'Evil\\x1B\]0;owned\\x07 Diner\\x1B\[2J' screen
	grep -q 'Evil\\u009B31m — Solna\\nFake row' screen
	grep -q 'Soup\\x07\\tbread\\n' screen
}

@test "piped, a tab or newline inside a field cannot make false columns or rows" {
	hostile_menu
	run --separate-stderr list-dishes
	[ "${#lines[@]}" -eq 1 ]
	[ "$(printf '%s\n' "$output" | awk -F'\t' '{ print NF }')" -eq 3 ]
	[ "$(printf '%s\n' "$output" | cut -f3)" = 'Solna\tFake' ]
	run --separate-stderr list-dishes evil
	[ "${#lines[@]}" -eq 1 ]
	[ "$(printf '%s\n' "$output" | awk -F'\t' '{ print NF }')" -eq 4 ]
	# a backslash is doubled, so the escapes read back one way
	[ "$(printf '%s\n' "$output" | cut -f4)" = 'Soup\x07\tbread\\n' ]
	run --separate-stderr list-dishes --json evil
	[ "$(jq -r '.[0].dishes[0]' <<<"$output")" = $'Soup\a\tbread\\n' ]
	# a C1 control, which jq writes raw, is escaped too: the same string
	! grep -q $'\xc2\x9b' <<<"$output" || false
	[[ "$output" == *'"title":"Evil\u009B31m"'* ]]
	[ "$(jq -c '.[0].title | explode[:5]' <<<"$output")" = '[69,118,105,108,155]' ]
}

@test "a relay's URL in a message is escaped, and without its credentials" {
	run --separate-stderr list-dishes --relay "http://user:secret@127.0.0.1:$(free_port)/"
	[ "$status" -eq 69 ]
	[[ "$stderr" == "list-dishes: /restaurant: cannot reach the relay at http://***@127.0.0.1:"* ]]
	[[ "$stderr" != *secret* ]]
	run --separate-stderr list-dishes --relay "$UP/?status=503&body=x"
	[ "$status" -eq 69 ]
	[ "$stderr" = "list-dishes: /restaurant: the relay at $UP/?status=503&body=x answered the batch with HTTP status 503 Service Unavailable" ]
	run --separate-stderr list-dishes --relay $'\e]0;x\a'
	[ "$status" -eq 2 ]
	[ "$stderr" = "list-dishes: bad --relay '\x1B]0;x\x07': expected a URL" ]
}

@test "--timeout: an upstream that hangs gets the cached menus once it is up" {
	# an upstream that takes connections and never answers
	python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
held = []
while True: held.append(s.accept())' hang.port &
	EXTRA_PIDS+=($!)
	eventually [ -s hang.port ]
	hang=http://127.0.0.1:$(cat hang.port)
	for p in restaurant restaurant/bikupan; do
		relay-cache put --ttl 0 -H 'Content-Type: application/json' \
		    "$hang/$p" <"$ROOT/$SNAPSHOT/$p.json"
	done
	run --separate-stderr list-dishes --upstream "$hang" --timeout 1 bikupan
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | cut -f1 | sort -u)" = bikupan ]
	[[ "$stderr" == *"the upstream did not answer; /restaurant/bikupan is from the cache"* ]]
	run --separate-stderr list-dishes --upstream "$hang" --offline bikupan
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	run list-dishes --timeout soon
	[ "$status" -eq 2 ]
}

# A menu API whose identifiers are paths, dot segments, queries,
# fragments, percent-encodings and shell syntax, in two copies: odd-http
# for the fixture, whose files are named by the encoded path it is
# asked, and odd-file for a file: template, whose files are named by the
# text (curl decodes a file: path once). Each menu's one dish names its
# restaurant, so that what is shown says which file was read. Beside
# them, admin/x.json is what "../../admin/x" would reach unencoded.
odd_ids() {
	python3 - <<-'EOF'
	import json, os, urllib.parse
	ids = ["../../admin/x", "..", ".", "a/b", "a\\b", "a?b=c", "a#frag",
	       "%2e%2e", "...", "a b", "\u00e9", "$(x)"]
	rs = [{"identifier": i, "name": "N%d" % k, "region": "R", "homepage": "",
	       "menuUrl": "", "osm": "", "coordinate": [0, 0]}
	      for k, i in enumerate(ids)]
	safe = ids[5:]
	for root, name in (("odd-http", lambda i: urllib.parse.quote(i, safe="")),
	                   ("odd-file", lambda i: i)):
	    os.makedirs(root + "/restaurant")
	    json.dump({"restaurants": rs}, open(root + "/restaurant.json", "w"))
	    for i in safe:
	        json.dump({"restaurant": {"title": "T", "location": "",
	                   "menu": [{"dish": "dish of " + i}]}},
	                  open(root + "/restaurant/" + name(i) + ".json", "w"))
	for d in ("odd-http/admin", "admin"):
	    os.makedirs(d)
	    json.dump({"restaurant": {"title": "SECRET", "location": "",
	               "menu": [{"dish": "dish of SECRET"}]}}, open(d + "/x.json", "w"))
	EOF
}

# What list-dishes says of the identifiers no path can hold.
odd_refusals() {
	cat <<-'EOF'
	list-dishes: restaurant '../../admin/x': cannot be asked for: a slash in a path segment
	list-dishes: restaurant '..': cannot be asked for: a dot segment
	list-dishes: restaurant '.': cannot be asked for: a dot segment
	list-dishes: restaurant 'a/b': cannot be asked for: a slash in a path segment
	list-dishes: restaurant 'a\b': cannot be asked for: a backslash in a path segment
	EOF
}

@test "identifiers go into a path as one segment, encoded: never a path, query, fragment or dot segment" {
	odd_ids
	start_upstream --root "$PWD/odd-http"
	export RELAY_UPSTREAM=$UP
	# every menu of a search, each its own restaurant's
	run --separate-stderr list-dishes --search 'dish of'
	[ "$status" -eq 1 ]
	[ "$stderr" = "$(odd_refusals)" ]
	[ "$output" = "$(printf '%s\tN%s\tdish of %s\n' 'a?b=c' 5 'a?b=c' 'a#frag' 6 'a#frag' \
	    %2e%2e 7 %2e%2e ... 8 ... 'a b' 9 'a b' é 10 é '$(x)' 11 '$(x)')" ]
	[ "$(curl -s "$UP/_log" | jq -r .path | sort)" = "$(printf '%s\n' /restaurant \
	    /restaurant/%24%28x%29 /restaurant/%252e%252e /restaurant/%C3%A9 \
	    /restaurant/... /restaurant/a%20b /restaurant/a%23frag \
	    /restaurant/a%3Fb%3Dc | sort)" ]
	# the arguments, each asked once more (not from the cache)
	export RELAY_CACHE=$PWD/arguments.db
	run --separate-stderr list-dishes 'a?b=c' %2e%2e ../../admin/x '$(x)' ..
	[ "$status" -eq 1 ]
	[ "$stderr" = "$(odd_refusals | sed -n '1,2p')" ]
	[ "$(echo "$output" | cut -f4)" = "$(printf 'dish of %s\n' 'a?b=c' %2e%2e '$(x)')" ]
	[ "$(requests_for '/restaurant/a%3Fb%3Dc')" -eq 2 ]
	[ "$(requests_for /restaurant/%252e%252e)" -eq 2 ]
	[ "$(requests_for /restaurant/%24%28x%29)" -eq 2 ]
	! curl -s "$UP/_log" | jq -r .path | grep -v '^/restaurant' || false
}

# A menu API whose text has NULs ("\u0000"), which C would read as its
# end: an identifier "plain\u0000evil" beside "plain".
nul_menu() {
	mkdir -p nul/restaurant
	python3 - <<-'EOF'
	import json
	json.dump({"restaurants": [
	    {"identifier": "plain\u0000evil", "name": "Evil\u0000name", "region": "R\u0000x"},
	    {"identifier": "plain", "name": "Plain", "region": "R"}]},
	    open("nul/restaurant.json", "w"))
	json.dump({"restaurant": {"title": "T\u0000itle", "location": "L\u0000oc",
	    "menu": [{"dish": "\u0000nul lax"}, {"dish": "soup"}]}},
	    open("nul/restaurant/plain.json", "w"))
	EOF
	start_upstream --root "$PWD/nul"
	export RELAY_UPSTREAM=$UP
}

@test "a NUL in the upstream's text: kept whole, shown escaped, never a shorter identifier or path" {
	nul_menu
	refused="list-dishes: restaurant 'plain\x00evil': cannot be asked for: a control character in a path segment"
	run --separate-stderr list-dishes
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'plain\\x00evil\tEvil\\x00name\tR\\x00x\nplain\tPlain\tR')" ]
	run --separate-stderr list-dishes --json
	[ "$output" = '[{"identifier":"plain\u0000evil","name":"Evil\u0000name","region":"R\u0000x"},{"identifier":"plain","name":"Plain","region":"R"}]' ]
	# a region with a NUL is not --region's
	run --separate-stderr list-dishes --region r
	[ "$output" = "$(printf 'plain\tPlain\tR')" ]
	run --separate-stderr list-dishes --region nope
	[ "$stderr" = "list-dishes: no restaurant in region 'nope'; the regions are R\x00x, R" ]
	# a search: plain's menu under plain alone, the other refused
	run --separate-stderr list-dishes --search 'nul lax'
	[ "$status" -eq 1 ]
	[ "$stderr" = "$refused" ]
	[ "$output" = "$(printf 'plain\tPlain\t\\x00nul lax')" ]
	run --separate-stderr list-dishes --json --search soup
	[ "$output" = '[{"identifier":"plain","name":"Plain","dish":"soup"}]' ]
	[ "$(curl -s "$UP/_log" | jq -r .path | sort -u)" = "$(printf '/restaurant\n/restaurant/plain')" ]
	# a menu: every text whole
	run --separate-stderr list-dishes plain
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'plain\tT\\x00itle\tL\\x00oc\t\\x00nul lax\nplain\tT\\x00itle\tL\\x00oc\tsoup')" ]
	run --separate-stderr list-dishes --json plain
	[ "$output" = '[{"identifier":"plain","title":"T\u0000itle","location":"L\u0000oc","dishes":["\u0000nul lax","soup"]}]' ]
	script -qc 'stty cols 80; list-dishes plain' /dev/null | tr -d '\r' >screen
	[ "$(cat screen)" = "$(printf 'T\\x00itle — L\\x00oc\n  \\x00nul lax\n  soup')" ]
	# named, it is not plain, and the suggestion shows it whole
	run --separate-stderr list-dishes plainx
	[ "$stderr" = "list-dishes: no restaurant 'plainx'; did you mean plain\x00evil, plain?" ]
	# the same through a relay's batch
	start_serve
	run --separate-stderr list-dishes --relay "$SERVE" --search 'nul lax'
	[ "$stderr" = "$refused" ]
	[ "$output" = "$(printf 'plain\tPlain\t\\x00nul lax')" ]
	[ "$(curl -s "$UP/_log" | jq -r .path | sort -u)" = "$(printf '%s\n' /restaurant \
	    /restaurant-menus /restaurant/plain /restaurant/plainx)" ]
}

@test "identifiers through a relay's batch: the same encoded segments, nothing refused asked for" {
	odd_ids
	start_upstream --root "$PWD/odd-http"
	start_serve
	run --separate-stderr list-dishes --relay "$SERVE" --search 'dish of'
	[ "$status" -eq 1 ]
	[ "$stderr" = "$(odd_refusals)" ]
	[ "$(echo "$output" | cut -f3)" = "$(printf 'dish of %s\n' 'a?b=c' 'a#frag' %2e%2e ... 'a b' é '$(x)')" ]
	run --separate-stderr list-dishes --relay "$SERVE" 'a#frag' a/b
	[ "$stderr" = "$(odd_refusals | sed -n 4p)" ]
	[ "$output" = "$(printf 'a#frag\tT\t\tdish of a#frag')" ]
	[ "$(curl -s "$UP/_log" | jq -r .path | grep '^/restaurant/' | sort -u)" = "$(printf '%s\n' \
	    /restaurant/%24%28x%29 /restaurant/%252e%252e /restaurant/%C3%A9 \
	    /restaurant/... /restaurant/a%20b /restaurant/a%23frag \
	    /restaurant/a%3Fb%3Dc | sort)" ]
	! curl -s "$UP/_log" | jq -r .path | grep admin || false
}

@test "identifiers with a file: upstream read their own file, never another" {
	odd_ids
	export RELAY_UPSTREAM="file://$PWD/odd-file{path}.json"
	run --separate-stderr list-dishes --search 'dish of'
	[ "$status" -eq 1 ]
	[ "$stderr" = "$(odd_refusals)" ]
	[ "$(echo "$output" | cut -f3)" = "$(printf 'dish of %s\n' 'a?b=c' 'a#frag' %2e%2e ... 'a b' é '$(x)')" ]
	run --separate-stderr list-dishes ../../admin/x 'a?b=c' %2e%2e
	[ "$status" -eq 1 ]
	[ "$stderr" = "$(odd_refusals | sed -n 1p)" ]
	[ "$(echo "$output" | cut -f4)" = "$(printf 'dish of %s\n' 'a?b=c' %2e%2e)" ]
	[[ "$output" != *SECRET* ]]
}

@test "a menu that cannot be fetched says which and why, and is never a missing restaurant" {
	cp -r "$ROOT/$SNAPSHOT" api
	rm api/restaurant/elma.json
	start_upstream --root "$PWD/api"
	export RELAY_UPSTREAM=$UP
	run --separate-stderr list-dishes elma bikupan
	[ "$status" -eq 1 ]
	[ "$stderr" = "list-dishes: /restaurant/elma: HTTP status 404" ]
	[ "$(echo "$output" | cut -f1 | sort -u)" = bikupan ]
	run --separate-stderr list-dishes --search lax
	[ "$status" -eq 1 ]
	[ "$stderr" = "list-dishes: /restaurant/elma: HTTP status 404" ]
	[ "${#lines[@]}" -ge 1 ]
	run --separate-stderr list-dishes --search 'no such dish'
	[ "$status" -eq 1 ]
	[ "$stderr" = "$(printf '%s\n' "list-dishes: /restaurant/elma: HTTP status 404" \
	    "list-dishes: no dish matches 'no such dish'")" ]
	# the same through a relay's batch, and from a file: upstream
	start_serve
	run --separate-stderr list-dishes --relay "$SERVE" elma
	[ "$status" -eq 1 ]
	[ "$stderr" = "list-dishes: /restaurant/elma: HTTP status 404" ]
	run --separate-stderr list-dishes --relay "$SERVE" --search lax
	[ "$status" -eq 1 ]
	[ "$stderr" = "list-dishes: /restaurant/elma: HTTP status 404" ]
	run --separate-stderr list-dishes --upstream "file://$PWD/api{path}.json" elma
	[ "$status" -eq 1 ]
	[ "$stderr" = "list-dishes: /restaurant/elma: HTTP status 404" ]
	# the list: nothing to show, 69
	mkdir none
	run --separate-stderr list-dishes --upstream "file://$PWD/none{path}.json"
	[ "$status" -eq 69 ]
	[ "$stderr" = "list-dishes: /restaurant: HTTP status 404" ]
}

@test "a menu the upstream does not answer for says why, the list being in the cache" {
	dead=http://127.0.0.1:$(free_port)
	relay-cache put --ttl 3600 -H 'Content-Type: application/json' \
	    "$dead/restaurant" <"$ROOT/$SNAPSHOT/restaurant.json"
	run --separate-stderr list-dishes --upstream "$dead" elma
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" == "list-dishes: /restaurant/elma: "?* ]]
	[[ "$stderr" != *"no restaurant"* ]]
	run --separate-stderr list-dishes --upstream "$dead" --search lax
	[ "$status" -eq 1 ]
	[ "$(echo "$stderr" | grep -c '^list-dishes: /restaurant/[a-z-]*: .')" -eq 14 ]
}

# A list with a name, a region and an identifier of a megabyte each,
# and a menu with a title and a dish of a megabyte.
long_menu() {
	mkdir -p long/restaurant
	python3 - <<-'EOF'
	import json
	mb = 1 << 20
	json.dump({"restaurants": [
	    {"identifier": "long", "name": "N" * mb, "region": "R" * mb},
	    {"identifier": "L" * mb, "name": "short", "region": "Solna"}]},
	    open("long/restaurant.json", "w"))
	json.dump({"restaurant": {"title": "T" * mb, "location": "here", "menu": [
	    {"dish": "soup " + "é" * mb}, {"dish": "soup"}]}},
	    open("long/restaurant/long.json", "w"))
	EOF
	start_upstream --root "$PWD/long"
	export RELAY_UPSTREAM=$UP
}

@test "on a terminal no line is wider than the terminal, however long the text; piped, it is whole" {
	long_menu
	script -qc 'stty cols 20; list-dishes; list-dishes long
	    list-dishes --search soup 2>err' /dev/null >screen
	python3 - screen <<-'EOF'
	import sys
	lines = open(sys.argv[1], encoding="utf-8").read().replace("\r", "").splitlines()
	assert len(lines) == 9, [l[:40] for l in lines]   # 3 + 3 + 3
	assert all(len(l) <= 20 for l in lines), max(map(len, lines))
	assert lines[0].split() == ["ID", "NAME", "REGION"], lines[0]
	assert lines[1].startswith("long") and "N…" in lines[1], lines[1]
	assert lines[2].startswith("LLL") and lines[2].endswith("Solna"), lines[2]
	assert lines[3] == "T" * 19 + "…", lines[3]
	assert lines[4] == "  soup " + "é" * 12 + "…", lines[4]
	assert lines[5] == "  soup", lines[5]
	EOF
	# the long identifier cannot be asked for: said in a line
	[ "$(cat err)" = "list-dishes: restaurant '$(printf 'L%.0s' $(seq 200))…': cannot be asked for: a path longer than 8192 bytes" ]
	[ "$(list-dishes | cut -f2 | head -1 | wc -c)" -eq $((1024 * 1024 + 1)) ]
	[ "$(list-dishes long | cut -f2 | head -1 | wc -c)" -eq $((1024 * 1024 + 1)) ]
}

@test "relay-fetch that cannot be run is said so, not taken for a failed page" {
	cp "$ROOT/bin/list-dishes" .
	run --separate-stderr env PATH=/usr/bin:/bin ./list-dishes
	[ "$status" -eq 69 ]
	[[ "$stderr" == "list-dishes: cannot run relay-fetch: "?* ]]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
}

# A menu API whose identifiers and regions are shell syntax: each would
# make a file pwned* if the shell ever expanded it.
shell_menu() {
	mkdir -p shell
	python3 - <<-'EOF'
	import json
	ids = ["$(touch pwned1)", "`touch pwned2`", "$((1))x", "*", "a b", "it's",
	       '"q"', "a\nb", "back\\slash", "c:d=e@f", "~x", "{y,z}", "\u00e9", "!b"]
	regions = ["$(touch pwned3) x", "Nya Karolinska", "Sol`touch pwned4`"]
	json.dump({"restaurants": [
	    {"identifier": i, "name": "N", "region": regions[k % len(regions)]}
	    for k, i in enumerate(ids)]}, open("shell/restaurant.json", "w"))
	EOF
	start_upstream --root "$PWD/shell"
	export RELAY_UPSTREAM=$UP
}

# completes WORD...: bash completion for the command line WORD..., the
# last word being completed; the candidates are in COMPREPLY.
completes() {
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	_list_dishes
}

# Each candidate, read back by the shell as the command line would,
# is one word: the text it stands for, the list's in order.
reads_back() {
	local i words
	[ "${#COMPREPLY[@]}" -eq $# ] || return 1
	for ((i = 0; i < $#; i++)); do
		eval "words=(${COMPREPLY[i]})"
		[ "${#words[@]}" -eq 1 ] && [ "${words[0]}" = "${@:i+1:1}" ] || return 1
	done
}

# Each candidate, written after the quote $1 the word opened (with the
# text $2 before it) and closed by readline, read back as the command
# line would: the text it stands for, the list's in order.
reads_back_in() {
	local quote=$1 before=$2 i words close=${1: -1}
	shift 2
	[ "${#COMPREPLY[@]}" -eq $# ] || return 1
	for ((i = 0; i < $#; i++)); do
		eval "words=($before$quote${COMPREPLY[i]}$close)"
		[ "${#words[@]}" -eq 1 ] && [ "${words[0]}" = "${@:i+1:1}" ] || return 1
	done
}

# The candidates of the hostile list as they must be, and the texts.
shell_checks() {
	local ids=('$(touch pwned1)' '`touch pwned2`' '$((1))x' '*' 'a b' "it's"
	    '"q"' $'a\nb' 'back\slash' 'c:d=e@f' '~x' '{y,z}' 'é' '!b')
	completes list-dishes ''
	[ "${COMPREPLY[*]}" = '\$\(touch\ pwned1\) \`touch\ pwned2\` \$\(\(1\)\)x \* a\ b it\'"'"'s \"q\" $'"'a\\nb'"' back\\slash c\:d\=e\@f \~x \{y\,z\} é \!b' ]
	reads_back "${ids[@]}"
	completes list-dishes '$('
	reads_back '$(touch pwned1)' '$((1))x'
	completes list-dishes 'a\ '
	[ "${COMPREPLY[*]}" = 'a\ b' ]
	completes list-dishes 'c\:d'
	[ "${COMPREPLY[*]}" = 'c\:d\=e\@f' ]
	# in a quote left open: that quote's rules, and no control character
	completes list-dishes "'"
	[ "${#COMPREPLY[@]}" -eq 13 ]
	[ "${COMPREPLY[5]}" = "it'\\''s" ]
	completes list-dishes "'\$(t"
	[ "${COMPREPLY[*]}" = '$(touch pwned1)' ]
	completes list-dishes '"'
	[ "${#COMPREPLY[@]}" -eq 12 ]	# nor "!"
	[ "${COMPREPLY[0]}" = '\$(touch pwned1)' ]
	[ "${COMPREPLY[1]}" = '\`touch pwned2\`' ]
	[ "${COMPREPLY[6]}" = '\"q\"' ]
	[ "${COMPREPLY[7]}" = 'back\\slash' ]
	# in $'...': its rules, a control character escaped; the text typed
	# in it decoded as bash decodes it
	completes list-dishes "\$'"
	reads_back_in "\$'" '' "${ids[@]}"
	[ "${COMPREPLY[5]}" = "it\\'s" ]
	[ "${COMPREPLY[7]}" = 'a\x0Ab' ]
	[ "${COMPREPLY[8]}" = 'back\\slash' ]
	completes list-dishes "\$'\$(t"
	[ "${COMPREPLY[*]}" = '$(touch pwned1)' ]
	completes list-dishes "\$'it\\'"
	reads_back_in "\$'" '' "it's"
	completes list-dishes "\$'a\\n"
	reads_back_in "\$'" '' $'a\nb'
	completes list-dishes "\$'\\x61\\x20"
	[ "${COMPREPLY[*]}" = 'a b' ]
	completes list-dishes "a\$' "
	reads_back_in "\$'" a 'a b'
	# in $"...": as in "..."
	completes list-dishes '$"$(t'
	[ "${COMPREPLY[*]}" = '\$(touch pwned1)' ]
	reads_back_in '$"' '' '$(touch pwned1)'
	completes list-dishes --region ''
	[ "${COMPREPLY[*]}" = '\$\(touch\ pwned3\)\ x Nya\ Karolinska Sol\`touch\ pwned4\`' ]
	reads_back '$(touch pwned3) x' 'Nya Karolinska' 'Sol`touch pwned4`'
	completes list-dishes --region "'N"
	[ "${COMPREPLY[*]}" = 'Nya Karolinska' ]
	completes list-dishes --region '"S'
	[ "${COMPREPLY[*]}" = 'Sol\`touch pwned4\`' ]
}

@test "bash completion never runs upstream text: hostile identifiers and regions complete quoted" {
	shell_menu
	list-dishes >/dev/null
	# shellcheck source=/dev/null
	source "$ROOT/share/bash-completion/completions/list-dishes"
	shell_checks
	# the same from a relay
	start_serve --cache "$PWD/relay.db"
	export RELAY_CACHE=$PWD/empty.db RELAY_URL=$SERVE
	shell_checks
	unset RELAY_URL
	# a cache file named on the line as the shell reads it
	list-dishes --cache "$PWD/my cache.db" >/dev/null
	completes list-dishes --cache "'$PWD/my cache.db'" a
	[ "${COMPREPLY[*]}" = 'a\ b $'"'a\\nb'" ]
	# nothing ran, ever: neither completing nor reading a candidate back
	[ -z "$(find . -name 'pwned*')" ]
}

@test "bash completion of C1 controls and NULs, whatever the locale: exact words, or none" {
	mkdir -p c1
	printf '%s' '{"restaurants": [{"identifier": "c1\u009b31mX\u0085", "name": "N", "region": "R"},
	    {"identifier": "lit\\u0085", "name": "N", "region": "R"},
	    {"identifier": "nul\u0000x", "name": "N", "region": "R"}]}' >c1/restaurant.json
	start_upstream --root "$PWD/c1"
	export RELAY_UPSTREAM=$UP
	list-dishes >/dev/null
	# shellcheck source=/dev/null
	source "$ROOT/share/bash-completion/completions/list-dishes"
	for locale in C C.UTF-8; do
		export LC_ALL=$locale
		completes list-dishes ''
		reads_back $'c1\xc2\x9b31mX\xc2\x85' 'lit\u0085'	# no word holds a NUL
		[[ "${COMPREPLY[0]}" == \$\'* ]]
		completes list-dishes "\$'"
		reads_back_in "\$'" '' $'c1\xc2\x9b31mX\xc2\x85' 'lit\u0085'
		[ "${COMPREPLY[0]}" = 'c1\xC2\x9B31mX\xC2\x85' ]
		completes list-dishes "'"
		[ "${COMPREPLY[*]}" = 'lit\u0085' ]
		completes list-dishes '"'
		[ "${COMPREPLY[*]}" = 'lit\\u0085' ]
	done
}

@test "a hostile relay's batch answer: its errors are escaped, its ages kept in range" {
	fake=$(python3 - "$UP" <<-'EOF'
	import json, sys, urllib.parse
	items = [{"id": "0", "status": 200, "headers": {
	              "cache-status": "relay; hit; detail=stale",
	              "age": "99999999999999999999, 1e400"},
	          "json": {"restaurants": [{"identifier": "elma", "name": "E", "region": "R"}]}},
	         {"id": "1", "status": 0, "error": "\u001b]0;owned\u0007 gone"}]
	body = "".join(json.dumps(i) + "\n" for i in items)
	print(sys.argv[1] + "/?type=application/x-ndjson&body=" + urllib.parse.quote(body))
	EOF
	)
	run --separate-stderr list-dishes --relay "$fake" elma
	[ "$status" -eq 1 ]
	[ "$stderr" = "$(printf '%s\n' \
	    'list-dishes: the upstream did not answer; /restaurant is from the cache, 24855 days old' \
	    'list-dishes: /restaurant/elma: \x1B]0;owned\x07 gone')" ]
}
