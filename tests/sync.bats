#!/usr/bin/env bats
# GET /_relay/sync: a global dump of what the cache holds, with change
# numbers, then deltas since one: records for what changed, tombstones
# for what the upstream said is gone, a reset when the history needed
# is no longer kept. A client that applies them ends with the server's
# set.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	mkdir api
	for name in a b c d; do echo "{\"name\":\"$name\",\"v\":1}" >"api/$name.json"; done
	# every answer stale at once: each request stores it anew
	start_upstream --root "$PWD/api" --cc max-age=0
}

# The client: applies the stream on stdin to the set in state.json
# (url -> body), keeping the seq; a full dump or a reset replaces it.
apply() {
	python3 -c '
import json, sys
try:
    state = json.load(open("state.json"))
except FileNotFoundError:
    state = {"seq": 0, "set": {}}
head = json.loads(sys.stdin.readline())
if head["sync"] != "delta":
    state["set"] = {}
for line in sys.stdin:
    r = json.loads(line)
    if r.get("deleted"):
        state["set"].pop(r["url"], None)
    else:
        state["set"][r["url"]] = r["json"]
state["seq"] = head["seq"]
state["kinds"] = state.get("kinds", []) + [head["sync"]]
json.dump(state, open("state.json", "w"))
'
}

sync() {	# sync [QUERY]: the client asks for what changed since its seq
	local since=0
	[ ! -f state.json ] || since=$(jq .seq state.json)
	curl -sf "$SERVE/_relay/sync?since=$since${1:-}" | apply
}

# The server's set, as a fresh full dump says.
server_set() {
	curl -sf "$SERVE/_relay/sync" | tail -n +2 | jq -s -S -c 'map({(.url): .json}) | add // {}'
}

same_set() {
	local client server
	client=$(jq -S -c '.set' state.json)
	server=$(server_set)
	[ "$client" = "$server" ] || { echo "client $client, server $server"; false; }
}

# delta_has SINCE N: the delta since SINCE has N lines, its first included.
delta_has() {
	[ "$(curl -s "$SERVE/_relay/sync?since=$1" | wc -l)" -eq "$2" ]
}

entries_are() {
	[ "$(relay-cache ls | wc -l)" -eq "$1" ]
}

# piped PEER [ARGS]: the status a sync request through a pipe gets, as
# inetd hands relay-serve a client at PEER (TCPREMOTEIP).
piped() {
	local peer=$1
	shift
	printf 'GET /_relay/sync HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
	    TCPREMOTEIP=$peer relay-serve --upstream "$UP" "$@" 2>/dev/null |
	    head -1 | cut -d' ' -f2
}

@test "a client applies a dump, then deltas after changes and deletions, and ends with the server's set" {
	start_serve
	for name in a b c d; do curl -s -o /dev/null "$SERVE/$name"; done
	eventually entries_are 4
	sync
	[ "$(jq -c '.set | length' state.json)" = 4 ]
	same_set
	# b changes, c is gone upstream, e is new
	echo '{"name":"b","v":2}' >api/b.json
	rm api/c.json
	echo '{"name":"e","v":1}' >api/e.json
	for name in b c e; do curl -s -o /dev/null "$SERVE/$name"; done
	eventually delta_has "$(jq .seq state.json)" 4	# its first line and 3
	curl -s "$SERVE/_relay/sync?since=$(jq .seq state.json)" >delta.ndjson
	[ "$(head -1 delta.ndjson | jq -r .sync)" = delta ]
	# (in the order the workers committed them)
	[ "$(tail -n +2 delta.ndjson | jq -c '[(.url | sub(".*/"; "")), (.deleted // false)]' | sort | tr '\n' ' ')" = \
	    '["b",false] ["c",true] ["e",false] ' ]
	apply <delta.ndjson
	same_set
	[ "$(jq -c '.set | [.[] | .name + "\(.v)"] | sort' state.json)" = '["a1","b2","d1","e1"]' ]
	# up to date: an empty delta, and 304 to its ETag
	run -0 curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: \"$(jq .seq state.json)\"" \
	    "$SERVE/_relay/sync?since=$(jq .seq state.json)"
	[ "$output" = 304 ]
	[ "$(curl -s "$SERVE/_relay/sync?since=$(jq .seq state.json)" | wc -l)" = 1 ]
	# the full dump's ETag too, in either format, with its own type
	etag=$(curl -s -D - -o /dev/null "$SERVE/_relay/sync" |
	    sed -n 's/^ETag: \(.*\)\r$/\1/p')
	[ "$etag" = "\"$(jq .seq state.json)\"" ]
	run -0 curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" \
	    "$SERVE/_relay/sync"
	[ "$output" = 304 ]
	curl -s -D head -o /dev/null -H "If-None-Match: $etag" \
	    "$SERVE/_relay/sync?format=sqlite"
	grep -q '^HTTP/1.1 304' head
	grep -q $'^Content-Type: application/vnd.sqlite3\r$' head
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "1"' "$SERVE/_relay/sync")" = 200 ]
}

@test "an eviction is not a deletion; a since older than the kept history gets a reset" {
	start_serve
	for name in a b c; do curl -s -o /dev/null "$SERVE/$name"; done
	eventually entries_are 3
	sync
	relay-cache rm "$UP/a"	# evicted: the client keeps it
	rm api/b.json
	curl -s -o /dev/null "$SERVE/b"	# gone upstream: a tombstone
	eventually delta_has "$(jq .seq state.json)" 2
	old=$(jq .seq state.json)
	sync
	[ "$(jq -c '.set | keys | map(sub(".*/"; ""))' state.json)" = '["a","c"]' ]
	# the tombstone itself is removed: deltas from before it are not whole
	relay-cache rm "$UP/b"
	curl -s "$SERVE/_relay/sync?since=$old" >reset.ndjson
	[ "$(head -1 reset.ndjson | jq -r .sync)" = reset ]
	curl -s -D head -o /dev/null "$SERVE/_relay/sync?since=$old"
	grep -qi '^relay-sync: reset' head
	[ "$(tail -n +2 reset.ndjson | jq -r '.url | sub(".*/"; "")')" = c ]
	# a since the server never gave, as after the cache file was replaced
	[ "$(curl -s "$SERVE/_relay/sync?since=999999" | head -1 | jq -r .sync)" = reset ]
}

@test "prefix= keeps to a path, pages cover every entry in change order, a large body is left out" {
	start_upstream
	start_serve
	for i in $(seq 150); do echo "url = \"$SERVE/items/$i?cc=max-age=600\"" ; done >urls
	echo "url = \"$SERVE/other?cc=max-age=600\"" >>urls
	curl -s --parallel --parallel-max 20 -K urls -o /dev/null
	curl -s -o /dev/null "$SERVE/items/big?cc=max-age=600&size=2000000"
	eventually entries_are 152
	curl -s "$SERVE/_relay/sync?prefix=/items/" >dump.ndjson
	[ "$(tail -n +2 dump.ndjson | wc -l)" -eq 151 ]
	! grep -q '/other' dump.ndjson || false
	tail -n +2 dump.ndjson | jq -s -e 'map(.seq) | . == (sort | unique)'
	[ "$(head -1 dump.ndjson | jq .seq)" -ge "$(tail -n +2 dump.ndjson | jq -s 'map(.seq) | max')" ]
	grep '/items/big' dump.ndjson | jq -e '(.error | test("over 1048576 bytes")) and (has("text") | not)'
	curl -s -D head -o /dev/null "$SERVE/_relay/sync"
	grep -qi "^etag: \"$(head -1 dump.ndjson | jq .seq)\"" head
}

@test "?format=sqlite: a SQLite file sqlite3 opens, with the stream's records and tombstones, and nothing left behind" {
	start_serve
	for name in a b c; do curl -s -o /dev/null "$SERVE/$name"; done
	eventually entries_are 3
	mkdir tmp
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
	TMPDIR=$PWD/tmp start_serve
	curl -s -D head -o full.db "$SERVE/_relay/sync?format=sqlite"
	grep -qi '^content-type: application/vnd.sqlite3' head
	grep -qi "^content-length: $(stat -c %s full.db)" head
	[ "$(sqlite3 full.db 'PRAGMA integrity_check')" = ok ]
	[ "$(sqlite3 full.db 'SELECT kind, since FROM sync')" = 'full|0' ]
	# (in the order the workers committed them, which is theirs)
	[ "$(sqlite3 full.db "SELECT group_concat(name, ',') FROM (SELECT json_extract(CAST(body AS TEXT), '$.name') AS name FROM records ORDER BY name)")" = a,b,c ]
	seq=$(sqlite3 full.db 'SELECT seq FROM sync')
	[ "$(sqlite3 full.db 'SELECT max(seq) FROM records')" = "$seq" ]
	rm api/b.json
	curl -s -o /dev/null "$SERVE/b"
	eventually delta_has "$seq" 2	# the 404 is stored
	curl -s -o delta.db "$SERVE/_relay/sync?format=sqlite&since=$seq"
	[ "$(sqlite3 delta.db 'SELECT kind FROM sync')" = delta ]
	[ "$(sqlite3 delta.db 'SELECT url, status, deleted, body IS NULL FROM records')" = "$UP/b|404|1|1" ]
	# the temporary files are gone once sent (valgrind's own may stay)
	[ -z "$(ls tmp | grep -v '^vgdb-')" ] || { ls -la tmp; false; }
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/_relay/sync?format=xml")" = 400 ]
}

@test "gzip when the client takes it: the stream and the snapshot, the same once inflated" {
	start_serve
	for name in a b c d; do curl -s -o /dev/null "$SERVE/$name"; done
	eventually entries_are 4
	curl -s "$SERVE/_relay/sync" >plain.ndjson
	curl -s -D head -H 'Accept-Encoding: br, gzip' "$SERVE/_relay/sync" >packed.gz
	grep -qi '^content-encoding: gzip' head
	grep -qi '^vary: accept-encoding' head
	gzip -t packed.gz
	[ "$(gzip -dc packed.gz | jq -c 'del(.age, .ttl, .source)')" = \
	    "$(jq -c 'del(.age, .ttl, .source)' plain.ndjson)" ]
	curl -s -D head -o /dev/null -H 'Accept-Encoding: gzip;q=0, identity' "$SERVE/_relay/sync"
	! grep -qi '^content-encoding' head || false
	curl -s -H 'Accept-Encoding: gzip' "$SERVE/_relay/sync?format=sqlite" | gzip -dc >snap.db
	[ "$(sqlite3 snap.db 'PRAGMA integrity_check')" = ok ]
	[ "$(sqlite3 snap.db 'SELECT count(*) FROM records')" = 4 ]
}

@test "bad queries are 400; the endpoint follows the admin rules, or answers anyone with --public-sync" {
	start_serve
	for q in 'since=-1' 'since=x' 'prefix=nope' 'prefix=%ZZ' 'prefix=/a%0Ab'; do
		run -0 curl -s -o /dev/null -w '%{http_code}' "$SERVE/_relay/sync?$q"
		[ "$output" = 400 ] || { echo "$q: $output"; false; }
	done
	run -0 curl -s -o /dev/null -w '%{http_code}' -d x "$SERVE/_relay/sync"
	[ "$output" = 405 ]
	[ "$(piped 127.0.0.1)" = 200 ]
	[ "$(piped 192.0.2.7)" = 404 ]
	[ "$(piped 192.0.2.7 --public-sync)" = 200 ]
}

# hold_snapshot OUT: asks for the whole cache as a SQLite file, writes
# the status line to OUT once the head has come, and reads no more.
hold_snapshot() {
	python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"GET /_relay/sync?format=sqlite HTTP/1.1\r\nHost: x\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
open(sys.argv[2], "w").write(head.split(b"\r\n")[0].decode() + "\n")
time.sleep(120)' "$SERVE_PORT" "$1" &
	EXTRA_PIDS+=($!)
}

@test "?format=sqlite: two snapshots at a time a process, each of at most --sync-max-size; more wait their turn" {
	for i in $(seq 30); do
		head -c 400000 /dev/zero | tr '\0' x |
		    relay-cache put -H 'Content-Type: text/plain' "$UP/items/$i"
	done
	mkdir tmp
	TMPDIR=$PWD/tmp start_serve --workers 1 --sync-max-size 16M
	hold_snapshot one
	hold_snapshot two
	eventually grep -q ' 200 ' one
	eventually grep -q ' 200 ' two
	# a third would be a third copy of the cache: later, not now
	curl -s -D head -o body "$SERVE/_relay/sync?format=sqlite"
	grep -q '^HTTP/1.1 503' head
	grep -qi $'^Retry-After: 1\r$' head
	jq -e '.detail | test("2 snapshots are being made already")' body
	# the stream is no snapshot: it goes on
	[ "$(curl -s "$SERVE/_relay/sync" | tail -n +2 | wc -l)" -eq 30 ]
	pkill -f "_relay/sync?format=sqlite" || true
	kill "${EXTRA_PIDS[@]}" 2>/dev/null || true
	# once they are gone, a snapshot is made again
	eventually curl -sf -o full.db "$SERVE/_relay/sync?format=sqlite"
	[ "$(sqlite3 full.db 'SELECT count(*) FROM records')" -eq 30 ]
	# over its bound: 507, and nothing left behind
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
	TMPDIR=$PWD/tmp start_serve --workers 1 --sync-max-size 1M
	curl -s -D head -o body "$SERVE/_relay/sync?format=sqlite"
	grep -q '^HTTP/1.1 507' head
	jq -e '.detail | test("over 1048576 bytes")' body
	[ -z "$(ls tmp | grep -v '^vgdb-')" ] || { ls -la tmp; false; }
}

# damage_entry N SQL: the entry of $UP/items/N changed by SQL, as
# another program could (BODY: its body's id).
damage_entry() {
	local sql=${2//BODY/(SELECT body FROM entries WHERE url = \'$UP/items/$1\')}
	sqlite3 "$RELAY_CACHE" "${sql//ENTRY/url = \'$UP/items/$1\'}"
}

@test "a damaged entry is left out of the sync and named; the stream carries the others and ends, ndjson and sqlite" {
	# more than two pages (64 entries): a damaged one must not end a page early
	for i in $(seq 150); do
		printf '{"url":"%s/items/%d","status":200,"headers":{"cache-control":"max-age=600"},"text":"{\\"i\\":%d}"}\n' "$UP" "$i" "$i"
	done | relay-cache load
	damage_entry 2 'DELETE FROM chunks WHERE body = BODY'
	damage_entry 3 "UPDATE chunks SET data = CAST('{\"i\"' AS BLOB) WHERE body = BODY"
	damage_entry 4 'UPDATE entries SET status = 100 WHERE ENTRY'
	damage_entry 70 'DELETE FROM bodies WHERE id = BODY'
	damage_entry 150 'UPDATE entries SET status = 999 WHERE ENTRY'
	start_serve
	run -0 curl -sS -o dump.ndjson "$SERVE/_relay/sync"
	[ "$(head -1 dump.ndjson | jq -r .sync)" = full ]
	[ "$(tail -n +2 dump.ndjson | jq -r '.json.i' | sort -n | tr '\n' ' ')" = \
	    "1 $(seq 5 69 | tr '\n' ' ')$(seq 71 149 | tr '\n' ' ')" ]
	run -0 curl -sS -o full.db "$SERVE/_relay/sync?format=sqlite"
	[ "$(sqlite3 full.db 'PRAGMA integrity_check')" = ok ]
	[ "$(sqlite3 full.db 'SELECT kind FROM sync')" = full ]
	[ "$(sqlite3 full.db 'SELECT count(*) FROM records')" -eq 145 ]
	[ "$(sqlite3 full.db "SELECT count(*) FROM records WHERE url IN ('$UP/items/2', '$UP/items/3', '$UP/items/4', '$UP/items/70', '$UP/items/150')")" -eq 0 ]
	# named on standard error, once a form
	for i in 2 3 4 70 150; do
		log_has 2 "entry '$UP/items/$i' is damaged: .*: left out of the sync$"
	done
	# gzipped too
	curl -s -H 'Accept-Encoding: gzip' "$SERVE/_relay/sync" | gzip -dc >packed.ndjson
	[ "$(tail -n +2 packed.ndjson | wc -l)" -eq 145 ]
}

@test "a response that varies on a client's credentials never goes out in a sync" {
	start_upstream
	start_serve
	local p='/mine?cc=public%2C%20max-age%3D600&h=Vary:Authorization'
	curl -s -o /dev/null -H 'Authorization: Bearer alice' "$SERVE$p"
	curl -s -o /dev/null -H 'Cookie: s=bob' "$SERVE/cookie?cc=max-age%3D600&h=Vary:Cookie"
	curl -s -o /dev/null "$SERVE/plain?cc=max-age%3D600"
	eventually entries_are 3
	curl -s "$SERVE/_relay/sync" >dump.ndjson
	[ "$(tail -n +2 dump.ndjson | jq -r .url)" = "$UP/plain?cc=max-age%3D600" ]
	curl -s -o dump.db "$SERVE/_relay/sync?format=sqlite"
	[ "$(sqlite3 dump.db 'SELECT url FROM records')" = "$UP/plain?cc=max-age%3D600" ]
}
