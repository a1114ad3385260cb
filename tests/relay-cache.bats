#!/usr/bin/env bats
# relay-cache: every command, the cache location rules, and each kind
# of bad input with its exact message and exit status.

bats_require_minimum_version 1.5.0
load helpers

@test "put then get returns the body byte for byte" {
	head -c 700000 /dev/urandom >in.bin
	relay-cache put https://api.example/blob <in.bin
	relay-cache get https://api.example/blob >out.bin
	cmp in.bin out.bin
}

@test "get -i writes the status line, stored headers and Content-Length" {
	printf 'hello' | relay-cache put -H 'Content-Type: text/plain' \
	    -H 'ETag: "v1"' https://api.example/h
	run --separate-stderr relay-cache get -i https://api.example/h
	[ "$status" -eq 0 ]
	[ "$output" = $'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: "v1"\r\nContent-Length: 5\r\n\r\nhello' ]
}

@test "put --status and -X key the entry by method" {
	printf 'gone' | relay-cache put --status 404 -X POST https://api.example/p
	run relay-cache get https://api.example/p
	[ "$status" -eq 1 ]
	run relay-cache get -i -X POST https://api.example/p
	[ "${lines[0]}" = $'HTTP/1.1 404 Not Found\r' ]
}

@test "get of a missing entry says so and exits 1" {
	printf x | relay-cache put https://api.example/a
	run --separate-stderr relay-cache get https://api.example/missing
	[ "$status" -eq 1 ]
	[ "$output" = "" ]
	[ "$stderr" = "relay-cache: 'https://api.example/missing' is not in the cache" ]
}

@test "URLs are normalised to one key" {
	printf x | relay-cache put 'HTTP://API.Example:80/a/../b?q=1#top'
	run relay-cache get http://api.example/b?q=1
	[ "$status" -eq 0 ]
	[ "$output" = x ]
}

@test "put replaces an entry atomically and keeps one entry" {
	printf old | relay-cache put https://api.example/r
	printf new | relay-cache put https://api.example/r
	[ "$(relay-cache get https://api.example/r)" = new ]
	[ "$(relay-cache ls | wc -l)" -eq 1 ]
}

@test "hop-by-hop headers are not stored" {
	printf x | relay-cache put -H 'Connection: close' \
	    -H 'Transfer-Encoding: chunked' -H 'Content-Length: 99' \
	    -H 'X-Kept: yes' https://api.example/hop
	run relay-cache get -i https://api.example/hop
	[ "$output" = $'HTTP/1.1 200 OK\r\nX-Kept: yes\r\nContent-Length: 1\r\n\r\nx' ]
}

@test "freshness comes from --ttl, then Cache-Control, then Expires, then 300 s" {
	printf x | relay-cache put --ttl 2h https://api.example/ttl
	printf x | relay-cache put -H 'Cache-Control: public, max-age=60' https://api.example/cc
	printf x | relay-cache put -H 'Cache-Control: s-maxage=30, max-age=60' https://api.example/smax
	# one instant for both fields: two clock readings may straddle a second
	now=$(date +%s)
	printf x | relay-cache put -H "Date: $(date -u -R -d "@$now" | sed 's/+0000/GMT/')" \
	    -H "Expires: $(date -u -R -d "@$((now + 3600))" | sed 's/+0000/GMT/')" https://api.example/exp
	printf x | relay-cache put https://api.example/default
	# lifetime = age + ttl, whatever second the clock turned meanwhile
	lifetimes=$(relay-cache ls --json | jq -r '"\(.url) \(.age + .ttl)"')
	[[ "$lifetimes" == *"https://api.example/cc 60"* ]]
	[[ "$lifetimes" == *"https://api.example/default 300"* ]]
	[[ "$lifetimes" == *"https://api.example/exp 3600"* ||
	   "$lifetimes" == *"https://api.example/exp 3599"* ]]
	[[ "$lifetimes" == *"https://api.example/smax 30"* ]]
	[[ "$lifetimes" == *"https://api.example/ttl 7200"* ]]
}

@test "ls piped is tab-separated: status, size, age, state, URL" {
	printf abc | relay-cache put --ttl 1h https://api.example/b
	printf x | relay-cache put --ttl 0 https://api.example/a
	run --separate-stderr relay-cache ls
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == $'200\t1\t'[0-9]$'\tstale\thttps://api.example/a' ]]
	[[ "${lines[1]}" == $'200\t3\t'[0-9]$'\tfresh\thttps://api.example/b' ]]
	[ "${#lines[@]}" -eq 2 ]
}

@test "ls --match selects by GLOB and --json writes one object per line" {
	printf x | relay-cache put https://api.example/restaurant/a
	printf x | relay-cache put https://api.example/version
	run relay-cache ls --json --match '*/restaurant/*'
	[ "${#lines[@]}" -eq 1 ]
	echo "$output" | jq -e '.url == "https://api.example/restaurant/a" and .state == "fresh" and .hits == 0'
}

@test "reading commands never create the cache file" {
	run relay-cache ls
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
	run relay-cache stats
	[ "$status" -eq 0 ]
	[ ! -e "$RELAY_CACHE" ]
}

@test "reading commands never write to an empty file: it reads as an empty cache" {
	: >"$RELAY_CACHE"
	for cmd in ls "ls --json" stats "stats --json" dump queue "get https://api.example/a"; do
		# shellcheck disable=SC2086
		run --separate-stderr relay-cache $cmd
		[ "$status" -eq 0 ] || [ "$cmd" = "get https://api.example/a" ] ||
		    { echo "$cmd: $status $stderr"; false; }
		[ ! -s "$RELAY_CACHE" ] || { echo "$cmd wrote"; false; }
	done
	[ "$status" -eq 1 ]	# get: not in the cache
	[ -z "$(ls cache.db?* 2>/dev/null)" ]	# no -wal, -shm or -journal
	printf x | relay-cache put https://api.example/a	# a write makes it
	[ "$(relay-cache get https://api.example/a)" = x ]
}

@test "rm removes every method of a URL; a missing URL is exit 1 unless -f" {
	printf x | relay-cache put https://api.example/a
	printf y | relay-cache put -X POST https://api.example/a
	printf z | relay-cache put https://api.example/b
	run --separate-stderr relay-cache rm https://api.example/a https://api.example/nope
	[ "$status" -eq 1 ]
	[ "$stderr" = "relay-cache: 'https://api.example/nope' is not in the cache" ]
	[ "$(relay-cache ls | cut -f5)" = https://api.example/b ]
	relay-cache rm -f https://api.example/nope
}

@test "purge needs a selector" {
	run --separate-stderr relay-cache purge
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "relay-cache: purge needs --expired, --all, --match or --to" ]
}

@test "purge --expired, --match and --all" {
	printf x | relay-cache put --ttl 0 https://api.example/old
	printf x | relay-cache put --ttl 1h https://api.example/new
	printf x | relay-cache put --ttl 0 https://other.example/old
	run --separate-stderr relay-cache purge --expired --match 'https://api.example/*' -v
	[ "$stderr" = "relay-cache: purged 1 entry" ]
	[ "$(relay-cache ls | cut -f5 | tr '\n' ' ')" = "https://api.example/new https://other.example/old " ]
	relay-cache purge --all
	[ -z "$(relay-cache ls)" ]
}

@test "stats counts entries, freshness, bytes; --json for scripts" {
	printf abcd | relay-cache put --ttl 1h https://api.example/a
	printf ef | relay-cache put --ttl 0 https://api.example/b
	run relay-cache stats
	[ "${lines[0]}" = $'entries\t2' ]
	[ "${lines[1]}" = $'fresh\t1' ]
	[ "${lines[2]}" = $'stale\t1' ]
	[ "${lines[3]}" = $'bytes\t6' ]
	relay-cache stats --json | jq -e '.entries == 2 and .hits == 0 and .pending == 0 and .file > 0'
}

@test "dump writes records: json, text and base64 bodies" {
	printf '{"a": [1, 2]}' | relay-cache put -H 'Content-Type: application/json' https://api.example/j
	printf 'line\n"two"' | relay-cache put -H 'Content-Type: text/plain' https://api.example/t
	printf '\377\000\001' | relay-cache put https://api.example/x
	run relay-cache dump
	[ "${#lines[@]}" -eq 3 ]
	echo "${lines[0]}" | jq -e '.json == {"a":[1,2]} and .headers["content-type"] == "application/json" and .source == "hit" and .status == 200'
	echo "${lines[1]}" | jq -e '.text == "line\n\"two\""'
	echo "${lines[2]}" | jq -e '.base64 == "/wAB" and .size == 3'
}

@test "dump | load moves every entry to another cache" {
	head -c 300000 /dev/urandom >big.bin
	relay-cache put https://api.example/big <big.bin
	printf '{"x":1}' | relay-cache put -H 'Content-Type: application/json' --ttl 1h https://api.example/j
	relay-cache dump | relay-cache -c other.db load
	relay-cache -c other.db get https://api.example/big | cmp - big.bin
	[ "$(relay-cache -c other.db get https://api.example/j)" = '{"x":1}' ]
	relay-cache -c other.db ls --json --match '*/j' | jq -e '.ttl <= 3600 and .ttl >= 3598'
}

@test "load reports a bad line with its number, skips it, loads the rest" {
	cat >records <<-'EOF'
	{"url":"https://api.example/1","status":200,"headers":{},"text":"one"}

	{"url":"https://api.example/2","text":"two"
	not json at all
	{"url":"https://api.example/3","headers":{"x":"a\r\nb"},"text":"three"}
	{"url":"foo","text":"four"}
	{"url":"https://api.example/5","base64":"!!"}
	{"url":"https://api.example/6","status":201,"text":"six"}
	{"url":"https://api.example/7","error":"connection refused","status":0}
	EOF
	run --separate-stderr relay-cache load <records
	[ "$status" -eq 1 ]
	[ "${stderr_lines[0]}" = "relay-cache: line 3: unexpected end of line, expected ',' or '}'" ]
	[ "${stderr_lines[1]}" = "relay-cache: line 4: unexpected 'n', expected '{'" ]
	[ "${stderr_lines[2]}" = "relay-cache: line 5: header \"x\": invalid name or value" ]
	[ "${stderr_lines[3]}" = "relay-cache: line 6: invalid URL 'foo': Bad scheme" ]
	[ "${stderr_lines[4]}" = "relay-cache: line 7: \"base64\": not valid base64" ]
	[ "${#stderr_lines[@]}" -eq 5 ]
	[ "$(relay-cache ls | cut -f1,5 | tr '\t\n' ' ,')" = "200 https://api.example/1,201 https://api.example/6," ]
	[ "$(relay-cache get https://api.example/6)" = six ]
}

@test "cache location: --cache, RELAY_CACHE, CACHE_DIRECTORY, XDG_CACHE_HOME, HOME" {
	[ "$(relay-cache --cache x.db path)" = x.db ]
	[ "$(relay-cache path -c y.db)" = y.db ]
	[ "$(relay-cache path)" = "$RELAY_CACHE" ]
	RELAY_CACHE= CACHE_DIRECTORY=/var/cache/relay:/other run relay-cache path
	[ "$output" = /var/cache/relay/cache.db ]
	RELAY_CACHE= XDG_CACHE_HOME=/xdg run relay-cache path --json
	[ "$output" = '{"path":"/xdg/relay/cache.db","source":"XDG_CACHE_HOME","exists":false}' ]
	RELAY_CACHE= XDG_CACHE_HOME= run relay-cache path
	[ "$output" = "$HOME/.cache/relay/cache.db" ]
}

@test "the default location is created private on first write" {
	unset RELAY_CACHE
	printf x | relay-cache put https://api.example/a
	[ -f "$HOME/.cache/relay/cache.db" ]
	[ "$(stat -c %a "$HOME/.cache/relay")" = 700 ]
}

@test "invalid URL: exact message, exit 65" {
	run --separate-stderr relay-cache put 'foo' </dev/null
	[ "$status" -eq 65 ]
	[ "$stderr" = "relay-cache: invalid URL 'foo': Bad scheme" ]
	run --separate-stderr relay-cache get 'http://exa mple/'
	[ "$status" -eq 65 ]
	[ "$stderr" = "relay-cache: invalid URL 'http://exa mple/': Bad hostname" ]
}

@test "a file that is not a database: exact message, exit 65, file untouched" {
	printf 'just some text, not SQLite\n' >notdb
	cp notdb before
	run --separate-stderr relay-cache -c notdb ls
	[ "$status" -eq 65 ]
	[ "$stderr" = "relay-cache: cannot open cache 'notdb': file is not a database" ]
	printf x | { run --separate-stderr relay-cache -c notdb put https://api.example/a; [ "$status" -eq 65 ]; }
	cmp notdb before
}

@test "an SQLite file that relay did not create is refused" {
	sqlite3 foreign.db 'CREATE TABLE t(x); INSERT INTO t VALUES (1)'
	run --separate-stderr relay-cache -c foreign.db stats
	[ "$status" -eq 65 ]
	[ "$stderr" = "relay-cache: cannot open cache 'foreign.db': not a relay cache (it has tables relay did not create)" ]
	[ "$(sqlite3 foreign.db 'SELECT count(*) FROM sqlite_schema')" = 1 ]
}

@test "a cache from a newer schema version is refused and not touched" {
	printf x | relay-cache put https://api.example/a
	sqlite3 "$RELAY_CACHE" 'PRAGMA user_version = 99'
	run --separate-stderr relay-cache get https://api.example/a
	[ "$status" -eq 65 ]
	[ "$stderr" = "relay-cache: cannot open cache '$RELAY_CACHE': written by a newer relay (schema version 99, this one knows 6)" ]
	printf y | { run relay-cache put https://api.example/b; [ "$status" -eq 65 ]; }
	[ "$(sqlite3 "$RELAY_CACHE" 'PRAGMA user_version')" = 99 ]
	[ "$(sqlite3 "$RELAY_CACHE" 'SELECT count(*) FROM entries')" = 1 ]
}

@test "a read-only directory: cannot create, exit 73" {
	public_dir
	mkdir ro && chmod 555 ro
	run --separate-stderr as_nobody relay-cache -c ro/cache.db put https://api.example/a </dev/null
	[ "$status" -eq 73 ]
	[ "$stderr" = "relay-cache: cannot create cache 'ro/cache.db': Permission denied" ]
	[ ! -e ro/cache.db ]
}

@test "a read-only cache file: reads work, writes exit 77 and lose nothing" {
	public_dir
	mkdir -m 777 d
	printf x | relay-cache -c d/cache.db put https://api.example/a
	chmod 444 d/cache.db
	run --separate-stderr as_nobody relay-cache -c d/cache.db put https://api.example/b </dev/null
	[ "$status" -eq 77 ]
	[ "$stderr" = "relay-cache: cannot write to cache 'd/cache.db': attempt to write a readonly database" ]
	run as_nobody relay-cache -c d/cache.db get https://api.example/a
	[ "$status" -eq 0 ]
	[ "$output" = x ]
}

@test "a full disk: the put fails with exit 74 and the old entry stays whole" {
	body old 100000 >old.txt
	relay-cache put https://api.example/a <old.txt
	relay-cache put https://api.example/keep <old.txt
	size=$(( $(stat -c %s "$RELAY_CACHE") / 1024 + 64 ))
	head -c 5000000 /dev/urandom >new.bin
	run --separate-stderr bash -c "ulimit -f $size; relay-cache put https://api.example/a <new.bin"
	[ "$status" -eq 74 ]
	[ "$stderr" = "relay-cache: cannot write to cache '$RELAY_CACHE': File too large" ]
	relay-cache get https://api.example/a | cmp - old.txt
	relay-cache get https://api.example/keep | cmp - old.txt
	[ "$(sqlite3 "$RELAY_CACHE" 'PRAGMA integrity_check')" = ok ]
}

@test "a write error on stdout exits 74" {
	printf x | relay-cache put https://api.example/a
	run --separate-stderr bash -c 'relay-cache get https://api.example/a >/dev/full'
	[ "$status" -eq 74 ]
	[ "$stderr" = "relay-cache: write error on standard output: No space left on device" ]
}

@test "usage errors exit 2" {
	run relay-cache
	[ "$status" -eq 2 ]
	run --separate-stderr relay-cache frobnicate
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "relay-cache: unknown command 'frobnicate'" ]
	run --separate-stderr relay-cache ls -i
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "relay-cache: ls: option '-i' is not valid here" ]
	run --separate-stderr relay-cache put --ttl soon https://api.example/a
	[ "$status" -eq 2 ]
	[ "$stderr" = "relay-cache: bad duration 'soon': expected seconds or a number with s, m, h or d" ]
	run --separate-stderr relay-cache put -H 'no colon' https://api.example/a
	[ "$status" -eq 2 ]
	[ "$stderr" = "relay-cache: bad header 'no colon': expected 'Name: value'" ]
	run relay-cache get
	[ "$status" -eq 2 ]
}

@test "--help and --version" {
	run relay-cache --help
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "usage: relay-cache [-c file] command [args]" ]]
	run relay-cache --version
	[[ "$output" =~ ^relay-cache\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "vacuum reclaims the space of removed bodies" {
	head -c 3000000 /dev/urandom | relay-cache put https://api.example/big
	relay-cache vacuum
	before=$(stat -c %s "$RELAY_CACHE")
	relay-cache rm https://api.example/big
	relay-cache vacuum
	after=$(stat -c %s "$RELAY_CACHE")
	[ "$after" -lt $((before / 10)) ]
}

@test "put killed with SIGKILL mid-body: new URL absent, old entry whole" {
	body old 400000 >old.txt
	relay-cache put https://api.example/existing <old.txt
	mkfifo pipe
	for url in https://api.example/existing https://api.example/new; do
		relay-cache put "$url" <pipe &
		pid=$!
		exec 5>pipe	# bats owns fd 3
		head -c 3000000 /dev/urandom >&5	# 11 chunks of 256 KiB committed
		sleep 0.5
		kill -KILL "$pid"
		wait "$pid" || true
		exec 5>&-
	done
	[ "$(sqlite3 "$RELAY_CACHE" 'PRAGMA integrity_check')" = ok ]
	run relay-cache get https://api.example/new
	[ "$status" -eq 1 ]
	relay-cache get https://api.example/existing | cmp - old.txt
	relay-cache stats --json | jq -e '.entries == 1 and .pending == 2'
}

@test "32 processes hammering one cache for 10 s: nothing locked, nothing lost" {
	"$ROOT/tests/hammer" "$RELAY_CACHE" 32 10 work
	[ "$(cat work/failures | wc -l)" -eq 0 ] || { cat work/failures; false; }
	[ "$(wc -l <work/committed)" -ge 10 ]	# it did work, even under ASan
	[ "$(sqlite3 "$RELAY_CACHE" 'PRAGMA integrity_check')" = ok ]
}

@test "vacuum forgets expired uncacheable marks and keeps current ones" {
	relay-cache put https://api.example/x </dev/null
	sqlite3 "$RELAY_CACHE" "INSERT INTO uncacheable VALUES ('https://api.example/old', 1), ('https://api.example/new', strftime('%s') + 600)"
	relay-cache vacuum
	[ "$(sqlite3 "$RELAY_CACHE" 'SELECT url FROM uncacheable')" = https://api.example/new ]
}

@test "put -X takes a method name only" {
	for m in 'GE T' '' 'GET/1' "$(printf 'G%.0s' {1..24})"; do
		run --separate-stderr relay-cache put -X "$m" http://x.example/ </dev/null
		[ "$status" -eq 2 ] || { echo "'$m': $status"; false; }
		[[ "$stderr" == "relay-cache: bad --request '$m': expected a method name"* ]]
	done
	[ -z "$(relay-cache ls)" ]
}

@test "one limit on URL length: what put and relay-fetch take, load takes back" {
	long="https://api.example/$(head -c 100000 /dev/zero | tr '\0' a)"
	run --separate-stderr relay-cache put "$long" <<<hi
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"...': longer than 8192 bytes" ]]
	[ "${#stderr}" -lt 300 ]
	run --separate-stderr relay-fetch "$long"
	[ "$status" -eq 69 ]
	[[ "$stderr" == *": longer than 8192 bytes" ]]
	edge="https://api.example/$(head -c 8172 /dev/zero | tr '\0' b)"
	[ "${#edge}" -eq 8192 ]
	relay-cache put "$edge" <<<hi
	relay-cache dump >copy.ndjson
	RELAY_CACHE=$PWD/other.db relay-cache load <copy.ndjson
	[ "$(RELAY_CACHE=$PWD/other.db relay-cache get "$edge")" = hi ]
}

@test "ls never prints a URL from the file raw: a hostile file cannot drive the terminal" {
	relay-cache put https://api.example/a <<<x
	sqlite3 "$RELAY_CACHE" "UPDATE entries SET url = 'https://api.example/' || char(27) || ']0;owned' || char(7) || char(9) || 'x'"
	run relay-cache ls
	[ "$(printf '%s\n' "$output" | cut -f5)" = 'https://api.example/\x1B]0;owned\x07\tx' ]
	script -qc 'relay-cache ls' /dev/null >screen
	! grep -q $'\e\|\a' screen || false
	grep -q 'https://api.example/\\x1B\]0;owned\\x07\\tx' screen
}

@test "a body in the file longer or shorter than its entry says is refused, not served" {
	printf 'hello' | relay-cache put https://api.example/b
	sqlite3 "$RELAY_CACHE" "UPDATE chunks SET data = CAST('hello, and more' AS BLOB)"
	run --separate-stderr relay-cache get https://api.example/b
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"body has more than its 5 bytes" ]]
	sqlite3 "$RELAY_CACHE" "UPDATE chunks SET data = CAST('hel' AS BLOB)"
	run --separate-stderr relay-cache get https://api.example/b
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"body has 3 of 5 bytes" ]]
}

# plant NAME SQL: a copy of the cache file "clean.db", changed by SQL
# as another program could, in NAME.
plant() {
	cp clean.db "$1"
	sqlite3 "$1" "$2"
}

@test "schema objects relay did not create, or altered, are refused by every program and never run" {
	printf x | relay-cache -c clean.db put https://api.example/a
	printf y | relay-cache -c clean.db put https://api.example/b
	while IFS='|' read -r what sql; do
		plant p.db "$sql"
		cp p.db before.db
		for cmd in ls stats dump "get https://api.example/a" \
		    "rm https://api.example/a" "purge --all" vacuum \
		    "put https://api.example/c"; do
			# shellcheck disable=SC2086
			run --separate-stderr relay-cache -c p.db $cmd </dev/null
			[ "$status" -eq 65 ] || { echo "$what, $cmd: $status $stderr"; false; }
			[ "$stderr" = "relay-cache: cannot open cache 'p.db': $what" ] ||
			    { echo "$cmd: $stderr"; false; }
		done
		cmp p.db before.db	# nothing ran, nothing was written
		run --separate-stderr relay-serve --cache p.db --upstream http://127.0.0.1:9 </dev/null
		[ "$status" -eq 65 ] && [ "$stderr" = "relay-serve: cannot open cache 'p.db': $what" ]
		run --separate-stderr relay-fetch --cache p.db http://127.0.0.1:9/x
		[ "$status" -eq 65 ] && [ "$stderr" = "relay-fetch: cannot open cache 'p.db': $what" ]
	done <<-'EOF'
	it has trigger 'wipe' that relay did not create|CREATE TRIGGER wipe AFTER INSERT ON entries BEGIN DELETE FROM entries; END
	it has trigger 'hog' that relay did not create|CREATE TRIGGER hog AFTER DELETE ON entries BEGIN SELECT length(randomblob(889000000)); END
	it has view 'v' that relay did not create|CREATE VIEW v AS SELECT 1
	it has index 'ex' that relay did not create|CREATE INDEX ex ON entries(length(url) * 2)
	it has table 'sqlite_stat1' that relay did not create|ANALYZE
	it has table 'extra' that relay did not create|CREATE TABLE extra (x)
	it lacks relay's index 'entries_stale_at'|DROP INDEX entries_stale_at
	its trigger 'entries_added' is not as relay made it|DROP TRIGGER entries_added; CREATE TRIGGER entries_added AFTER INSERT ON entries BEGIN DELETE FROM entries WHERE id <> NEW.id; END
	its table 'entries' is not as relay made it|PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = replace(sql, 'hits INTEGER NOT NULL DEFAULT 0', 'hits INTEGER NOT NULL DEFAULT (length(randomblob(889000000)))') WHERE name = 'entries'
	its table 'bodies' is not as relay made it|PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = replace(sql, 'touched INTEGER NOT NULL', 'touched INTEGER NOT NULL CHECK (length(randomblob(889000000)))') WHERE name = 'bodies'
	EOF
}

@test "the queue file's planted objects are refused too; an empty one is read, not written" {
	: >"$RELAY_CACHE-queue"
	run --separate-stderr relay-cache queue
	[ "$status" -eq 0 ] && [ "$output" = "" ]
	[ ! -s "$RELAY_CACHE-queue" ]
	rm "$RELAY_CACHE-queue"
	start_upstream
	start_serve --queue '/q'
	[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$SERVE/q")" = 202 ]
	eventually sh -c '[ "$(relay-cache queue | cut -f2)" = delivered ]'
	kill "$SERVE_PID" && wait "$SERVE_PID" || true
	SERVE_PID=
	sqlite3 "$RELAY_CACHE-queue" "CREATE TRIGGER gone AFTER UPDATE ON queue BEGIN DELETE FROM queue; END"
	why="cannot open cache '$RELAY_CACHE-queue': it has trigger 'gone' that relay did not create"
	run --separate-stderr relay-cache queue retry 1
	[ "$status" -eq 65 ] && [ "$stderr" = "relay-cache: $why" ]
	run --separate-stderr relay-serve --queue /q --upstream "$UP" </dev/null
	[ "$status" -eq 65 ] && [ "$stderr" = "relay-serve: $why" ]
	[ "$(sqlite3 "$RELAY_CACHE-queue" 'SELECT count(*) FROM queue')" = 1 ]
}

@test "an object planted while relay-serve runs is refused at its next write, which changes nothing" {
	start_upstream
	start_serve
	curl -sf -o /dev/null "$SERVE/a?cc=max-age=600"
	eventually cached_as "$UP/a?cc=max-age=600" "/a?cc=max-age=600"
	sqlite3 "$RELAY_CACHE" "CREATE TRIGGER wipe AFTER INSERT ON entries BEGIN DELETE FROM entries; END"
	[ "$(curl -sf "$SERVE/b?cc=max-age=600")" = "/b?cc=max-age=600" ]
	eventually log_has 1 "it has trigger 'wipe' that relay did not create"
	[ "$(sqlite3 "$RELAY_CACHE" 'SELECT url FROM entries')" = "$UP/a?cc=max-age=600" ]
}

@test "put --status takes a final status only, 200 to 599" {
	for code in 0 100 103 199 600 999; do
		run --separate-stderr relay-cache put --status "$code" https://api.example/s </dev/null
		[ "$status" -eq 2 ] || { echo "$code: $status"; false; }
		[ "$stderr" = "relay-cache: bad status '$code': expected 200 to 599, a final status" ]
	done
	[ -z "$(relay-cache ls)" ]
	printf x | relay-cache put --status 599 https://api.example/s
	[ "$(relay-cache ls | cut -f1)" = 599 ]
}

@test "load refuses what put refuses: a status that is not final, a method that is not a method name" {
	long=$(printf 'G%.0s' {1..24})
	cat >records <<-EOF
	{"url":"https://api.example/1","status":0,"text":"zero"}
	{"url":"https://api.example/2","status":100,"text":"continue"}
	{"url":"https://api.example/3","status":600,"text":"past"}
	{"url":"https://api.example/4","method":"G ET","text":"space"}
	{"url":"https://api.example/5","method":"","text":"empty"}
	{"url":"https://api.example/6","method":"$long","text":"long"}
	{"url":"https://api.example/7","method":"PURGE","status":204,"text":""}
	{"url":"https://api.example/8","status":599,"text":"ok"}
	EOF
	run --separate-stderr relay-cache load <records
	[ "$status" -eq 1 ]
	[ "${stderr_lines[0]}" = "relay-cache: line 1: status 0 is not a final status (200 to 599)" ]
	[ "${stderr_lines[1]}" = "relay-cache: line 2: status 100 is not a final status (200 to 599)" ]
	[ "${stderr_lines[2]}" = "relay-cache: line 3: status 600 is not a final status (200 to 599)" ]
	[ "${stderr_lines[3]}" = "relay-cache: line 4: method 'G ET' is not a method name, a token of at most 23 characters" ]
	[ "${stderr_lines[4]}" = "relay-cache: line 5: method '' is not a method name, a token of at most 23 characters" ]
	[ "${stderr_lines[5]}" = "relay-cache: line 6: method '$long' is not a method name, a token of at most 23 characters" ]
	[ "${#stderr_lines[@]}" -eq 6 ]
	[ "$(relay-cache ls | cut -f1,5 | tr '\t\n' ' ,')" = "204 https://api.example/7,599 https://api.example/8," ]
	[ "$(sqlite3 "$RELAY_CACHE" 'SELECT count(*) FROM bodies')" = 2 ]
}

# damage SQL: the entry of https://api.example/b changed by SQL as
# another program could.
damage() {
	sqlite3 "$RELAY_CACHE" "UPDATE entries SET $1 WHERE url = 'https://api.example/b'"
}

@test "an entry planted with a status that is not final, or another field relay never writes, is damaged: get, ls and dump name it, go on, exit 65" {
	for u in a b c; do printf '{"u":"%s"}' "$u" | relay-cache put -H 'Content-Type: application/json' "https://api.example/$u"; done
	while IFS='|' read -r set why; do
		damage "$set"
		msg="relay-cache: cannot read cache '$RELAY_CACHE': entry 'https://api.example/b' is damaged: $why"
		if [[ "$set" != method* ]]; then	# get cannot ask for that one
			run --separate-stderr relay-cache get https://api.example/b
			[ "$status" -eq 65 ] && [ "$output" = "" ] && [ "$stderr" = "$msg" ] || { echo "$set: $status $stderr"; false; }
		fi
		for cmd in ls "ls --json"; do
			# shellcheck disable=SC2086
			run --separate-stderr relay-cache $cmd
			[ "$status" -eq 65 ] && [ "$stderr" = "$msg" ] && [ "${#lines[@]}" -eq 2 ]
		done
		run --separate-stderr relay-cache dump
		[ "$status" -eq 65 ] && [ "$stderr" = "$msg" ]
		[ "$(jq -c .json <<<"$output" | tr '\n' ' ')" = '{"u":"a"} {"u":"c"} ' ]
		damage "status = 200, method = 'GET', size = 8"
	done <<-'EOF'
	status = 100|status 100 is not a final status (200 to 599)
	status = 0|status 0 is not a final status (200 to 599)
	status = 1000|status 1000 is not a final status (200 to 599)
	method = 'G ET'|method 'G ET' is not a method name, a token of at most 23 characters
	size = -1|size -1 is negative
	EOF
}

@test "a damaged body: get writes nothing and exits 65 (not 75), dump writes whole records only, naming the damaged one" {
	for u in a b c; do printf '{"u":"%s"}' "$u" | relay-cache put -H 'Content-Type: application/json' "https://api.example/$u"; done
	body="(SELECT body FROM entries WHERE url = 'https://api.example/b')"
	while read -r how; do
		sqlite3 "$RELAY_CACHE" "${how//BODY/$body}"
		run --separate-stderr relay-cache get -i https://api.example/b
		[ "$status" -eq 65 ] && [ "$output" = "" ] || { echo "$how: $status $stderr"; false; }
		[[ "$stderr" == "relay-cache: cannot read cache '$RELAY_CACHE': entry 'https://api.example/b' is damaged: its body "* ]]
		run --separate-stderr relay-cache dump
		[ "$status" -eq 65 ]
		[[ "$stderr" == "relay-cache: cannot read cache '$RELAY_CACHE': entry 'https://api.example/b' is damaged: its body "* ]]
		[ "$(jq -c .json <<<"$output" | tr '\n' ' ')" = '{"u":"a"} {"u":"c"} ' ]
		printf '{"u":"b"}' | relay-cache put -H 'Content-Type: application/json' https://api.example/b
	done <<-'EOF'
	DELETE FROM chunks WHERE body = BODY
	UPDATE chunks SET data = CAST('{"u":"b","more":1}' AS BLOB) WHERE body = BODY
	UPDATE chunks SET data = CAST('{"u"' AS BLOB) WHERE body = BODY
	DELETE FROM bodies WHERE id = BODY
	UPDATE bodies SET state = 2 WHERE id = BODY
	EOF
}

@test "relay-serve never answers a planted status that is not final: it asks the upstream, and stores its answer" {
	start_upstream
	start_serve
	# over 64 KiB: never kept in memory, each hit reads the file
	path="/s?size=70000&cc=max-age=600"
	curl -sf -o /dev/null "$SERVE$path"
	stored() { [ "$(sqlite3 "$RELAY_CACHE" 'SELECT status FROM entries')" = 200 ]; }
	eventually stored
	for code in 100 0 999; do
		sqlite3 "$RELAY_CACHE" "UPDATE entries SET status = $code"
		run curl -s -m 5 -o body -w '%{http_code}' "$SERVE$path"
		[ "$status" -eq 0 ] && [ "$output" = 200 ] || { echo "$code: $status $output"; false; }
		[ "$(wc -c <body)" -eq 70000 ]
		eventually stored
	done
	[ "$(requests_for "$path")" -eq 4 ]
	log_has 1 "entry '$UP$path' is damaged: status 100 is not a final status"
}

@test "relay-serve's writer stores no status past 599" {
	start_upstream
	start_serve
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/p?status=600&cc=max-age=600")" = 600 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/p?status=200&cc=max-age=600")" = 200 ]
	eventually cached_as "$UP/p?status=200&cc=max-age=600" "/p?status=200&cc=max-age=600"
	[ "$(relay-cache ls | cut -f1)" = 200 ]
	log_has 1 "status 600 is not a final status"
}

# small_disk SIZE: a tmpfs of SIZE at disk/, unmounted by teardown; the
# test is skipped where mounting is not allowed (it needs root, as CI).
small_disk() {
	mkdir disk
	mount -t tmpfs -o "size=$1" tmpfs disk 2>mount.err ||
	    skip "cannot mount a tmpfs here: $(cat mount.err)"
	EXTRA_CLEANUP=unmount_disk
}

unmount_disk() {
	umount "$BATS_TEST_TMPDIR/disk"
}

@test "a full disk: a large put fails with 74, leaves nothing behind, and the cache goes on and gives the room back" {
	small_disk 2m
	export RELAY_CACHE=$PWD/disk/cache.db
	printf small | relay-cache put https://api.example/keep
	head -c 5000000 /dev/urandom >big.bin
	run --separate-stderr relay-cache put https://api.example/big <big.bin
	[ "$status" -eq 74 ]
	# consistent, and nothing of the failed put is left in it
	[ "$(sqlite3 "$RELAY_CACHE" 'PRAGMA integrity_check')" = ok ]
	[ "$(sqlite3 "$RELAY_CACHE" 'SELECT count(*) FROM bodies; SELECT count(*) FROM chunks')" = $'1\n1' ]
	[ "$stderr" = "relay-cache: cannot write to cache '$RELAY_CACHE': No space left on device" ]
	[ "$(relay-cache get https://api.example/keep)" = small ]
	# the room it took is the file's free pages: other writes go in
	printf more | relay-cache put https://api.example/more
	[ "$(relay-cache get https://api.example/more)" = more ]
	# and vacuum gives it back to the file system
	relay-cache vacuum
	[ "$(stat -c %s "$RELAY_CACHE")" -lt 200000 ]
	[ "$(stat -c %s "$RELAY_CACHE-wal" 2>/dev/null || echo 0)" -eq 0 ]
}

@test "a disk another file fills: the put fails with 74, and once there is room again it goes in" {
	small_disk 4m
	export RELAY_CACHE=$PWD/disk/cache.db
	printf small | relay-cache put https://api.example/keep
	head -c 3000000 /dev/zero >disk/filler
	head -c 1500000 /dev/urandom >big.bin
	run --separate-stderr relay-cache put https://api.example/big <big.bin
	[ "$status" -eq 74 ]
	[ "$(sqlite3 "$RELAY_CACHE" 'SELECT count(*) FROM chunks')" = 1 ]
	[ "$stderr" = "relay-cache: cannot write to cache '$RELAY_CACHE': No space left on device" ]
	rm disk/filler
	relay-cache put https://api.example/big <big.bin
	relay-cache get https://api.example/big | cmp - big.bin
	[ "$(sqlite3 "$RELAY_CACHE" 'PRAGMA integrity_check')" = ok ]
}

@test "a small disk under relay-serve --max-size 1M: every answer is stored, in turn evicted, none lost to the disk" {
	small_disk 2m
	export RELAY_CACHE=$PWD/disk/cache.db
	start_upstream
	start_serve --max-size 1M
	for i in $(seq 30); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/d/$i?size=102400&cc=max-age=600")" = 200 ]
	done
	all_stored() { [ "$(relay-cache stats --json | jq '.entries + .evictions')" -eq 30 ]; }
	eventually all_stored
	! grep -q 'cannot write' serve.log || { grep 'cannot write' serve.log; false; }
	[ "$(sqlite3 "$RELAY_CACHE" 'PRAGMA integrity_check')" = ok ]
}
