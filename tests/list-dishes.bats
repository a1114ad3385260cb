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
