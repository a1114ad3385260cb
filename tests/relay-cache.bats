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
	{"url":"https://api.example/6","status":203,"text":"six"}
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
	[ "$(relay-cache ls | cut -f1,5 | tr '\t\n' ' ,')" = "200 https://api.example/1,203 https://api.example/6," ]
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
	{"url":"https://api.example/8","status":599,"headers":{"cache-control":"max-age=60"},"text":"ok"}
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

# queued_file: a queue file as relay-serve --queue makes it, two requests
# delivered (ids 1 and 2), relay-serve stopped.
queued_file() {
	start_upstream
	start_serve --queue '/q/*'
	for i in 1 2; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "$i" "$SERVE/q/$i")" = 202 ]
	done
	eventually [ "$(relay-cache queue | cut -f2 | tr '\n' ' ')" = "delivered delivered " ]
	kill "$SERVE_PID" && wait "$SERVE_PID" || true
	SERVE_PID=
}

@test "queue ls: a row relay never wrote (method, state, URL, fields, a column's type) is named as damaged, exit 65; the others are listed, every column escaped" {
	queued_file
	q="$RELAY_CACHE-queue"
	sqlite3 "$q" "UPDATE queue SET error = 'e' || char(27) || ']0;t' || char(7) || char(9) || char(10) WHERE id = 2"
	while IFS='#' read -r set why; do
		cp "$q" saved
		sqlite3 "$q" "UPDATE queue SET $set WHERE id = 1"
		run --separate-stderr relay-cache queue ls
		[ "$status" -eq 65 ] || { echo "$set: $status $stderr"; false; }
		[[ "$stderr" == "relay-cache: cannot read queue '$q': entry 1 '"*"' is damaged: $why" ]] || { echo "$set: $stderr"; false; }
		[ "$(cut -f1 <<<"$output")" = 2 ]
		[ "$(cut -f7 <<<"$output")" = 'e\x1B]0;t\x07\t\n' ]
		run --separate-stderr relay-cache queue --json
		[ "$status" -eq 65 ] && [ "$(jq -r .id <<<"$output")" = 2 ]
		script -qc 'relay-cache queue' /dev/null >screen
		! grep -q $'\e\|\a' screen || { echo "$set: raw control on the terminal"; false; }
		cp saved "$q"
	done <<-'EOF'
	method = 'P' || char(10) || 'X'#its method 'P\nX' is not a method name
	state = 'weird' || char(27)#its state 'weird\x1B' is not queued, delivering, delivered or failed
	url = url || char(27) || '[2J'#its URL is not a normalised URL
	url = 'HTTP://Other.example:80/x'#its URL is not a normalised URL
	fields = 'X: a' || char(7) || char(13) || char(10)#field 'X' has the control character \x07: a value may have HTAB only (RFC 9110 section 5.5)
	attempts = '1x'#its attempts is text, not an integer
	status = 200.5#its status is a real number, not an integer
	EOF
	# a damaged one can still be removed, by its id
	sqlite3 "$q" "UPDATE queue SET state = 'weird' WHERE id = 1"
	relay-cache queue rm 1
	run --separate-stderr relay-cache queue
	[ "$status" -eq 0 ] && [ "$(cut -f1 <<<"$output")" = 2 ]
}

@test "relay-serve never delivers a queued row relay never wrote, nor answers it at its token" {
	start_upstream
	start_serve --queue '/q/*'
	[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d 1 "$SERVE/q/first")" = 202 ]
	eventually [ "$(relay-cache queue | cut -f2)" = delivered ]
	kill "$SERVE_PID" && wait "$SERVE_PID" || true
	SERVE_PID=
	token=$(relay-cache queue --json | jq -r .token)
	sqlite3 "$RELAY_CACHE-queue" "UPDATE queue SET method = 'P' || char(10) || 'X';
	    INSERT INTO queue (method, url, path, fields, body, token, state, attempts, next_ms, created_ms, updated_ms)
	    VALUES ('POST', '$UP/q/bad' || char(27), '/q/bad', '', x'', 'bad', 'queued', 0, 0, 0, 0)"
	start_serve --queue '/q/*'
	[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d 2 "$SERVE/q/good")" = 202 ]
	eventually [ "$(relay-cache queue 2>/dev/null | cut -f2)" = delivered ] || { cat serve.log; relay-cache queue; false; }
	[ "$(requests_for /q/good)" -eq 1 ]
	[ "$(curl -s "$UP/_log" | jq -r .path | grep -c '^/q/bad')" -eq 0 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE/_relay/queue/$token")" != 200 ]
}

@test "path never writes the cache file's name raw: on a terminal or piped" {
	name="$PWD/a"$'\e]0;t\a\tb.db'
	run relay-cache -c "$name" path
	[ "$status" -eq 0 ] && [ "$output" = "$PWD"'/a\x1B]0;t\x07\tb.db' ]
	script -qc "relay-cache -c '$name' path" /dev/null >screen
	! grep -q $'\e\|\a' screen || false
	grep -q 'a\\x1B\]0;t\\x07\\tb.db' screen
	[ "$(relay-cache -c "$name" path --json | jq -r .path)" = "$name" ]
}

@test "load stores only what relay-fetch would: no-store, private, Vary: *, a cookie, a status not cacheable are named by their line" {
	cat >records <<-'EOF'
	{"url":"https://api.example/1","headers":{"set-cookie":"sid=1"},"text":"cookie"}
	{"url":"https://api.example/2","headers":{"cache-control":"no-store"},"text":"no-store"}
	{"url":"https://api.example/3","headers":{"cache-control":"private, max-age=60"},"text":"private"}
	{"url":"https://api.example/4","headers":{"vary":"*"},"text":"vary"}
	{"url":"https://api.example/5","status":201,"text":"created"}
	{"url":"https://api.example/6","status":500,"text":"error"}
	{"url":"https://api.example/7","status":206,"headers":{"cache-control":"max-age=60"},"text":"partial"}
	{"url":"https://api.example/8","status":500,"headers":{"cache-control":"max-age=60"},"text":"kept"}
	{"url":"https://api.example/9","headers":{"Cache-Control":"No-Store"},"text":"no-store"}
	EOF
	run --separate-stderr relay-cache load <records
	[ "$status" -eq 1 ]
	not="not stored, as relay-fetch would not store it"
	[ "${stderr_lines[0]}" = "relay-cache: line 1: $not: response sets a cookie (load --store-set-cookie stores it)" ]
	[ "${stderr_lines[1]}" = "relay-cache: line 2: $not: response says no-store" ]
	[ "${stderr_lines[2]}" = "relay-cache: line 3: $not: response is private" ]
	[ "${stderr_lines[3]}" = "relay-cache: line 4: $not: response varies on everything" ]
	[ "${stderr_lines[4]}" = "relay-cache: line 5: $not: status is not cacheable without explicit freshness" ]
	[ "${stderr_lines[5]}" = "relay-cache: line 6: $not: status is not cacheable without explicit freshness" ]
	[ "${stderr_lines[6]}" = "relay-cache: line 7: $not: status is not storable" ]
	[ "${stderr_lines[7]}" = "relay-cache: line 9: $not: response says no-store" ]
	[ "${#stderr_lines[@]}" -eq 8 ]
	[ "$(relay-cache ls | cut -f1,5)" = $'500\thttps://api.example/8' ]
	[ "$(sqlite3 "$RELAY_CACHE" 'SELECT count(*) FROM bodies')" = 1 ]
	# --store-set-cookie, as relay-serve and relay-fetch have it
	head -1 records | relay-cache load --store-set-cookie
	[ "$(relay-cache get https://api.example/1)" = cookie ]
}

@test "relay-fetch --records of a response that sets a cookie, piped into load, is not stored" {
	start_upstream
	relay-fetch --cache other.db --records "$UP/c?h=Set-Cookie:sid=secret&cc=max-age=600" >records
	[ "$(jq -r '.headers["set-cookie"]' records)" = sid=secret ]
	run --separate-stderr relay-cache load <records
	[ "$status" -eq 1 ]
	[[ "$stderr" == "relay-cache: line 1: not stored, as relay-fetch would not store it: response sets a cookie"* ]]
	[ -z "$(relay-cache ls)" ]
}

@test "load takes the URLs relay-fetch fetches only: http, https, file, and a redirect from and to http or https" {
	cat >records <<-'EOF'
	{"url":"http://api.example/a","effective_url":"file:///etc/passwd","text":"root"}
	{"url":"http://api.example/b","effective_url":"ftp://other.example/b","text":"ftp"}
	{"url":"ftp://api.example/c","text":"ftp"}
	{"url":"gopher://api.example/d","text":"gopher"}
	{"url":"file:///srv/e.json","effective_url":"https://other.example/e","text":"file"}
	{"url":"http://api.example/f","effective_url":"https://other.example/f","text":"moved"}
	{"url":"file:///srv/g.json","text":"file"}
	{"url":"http://api.example/h","effective_url":"HTTP://API.example:80/h","text":"same"}
	EOF
	run --separate-stderr relay-cache load <records
	[ "$status" -eq 1 ]
	[ "${stderr_lines[0]}" = "relay-cache: line 1: effective_url 'file:///etc/passwd': relay-fetch follows redirects from and to http and https only" ]
	[ "${stderr_lines[1]}" = "relay-cache: line 2: effective_url 'ftp://other.example/b': relay-fetch follows redirects from and to http and https only" ]
	[ "${stderr_lines[2]}" = "relay-cache: line 3: 'ftp://api.example/c' is not an http, https or file URL, which relay-fetch fetches" ]
	[ "${stderr_lines[3]}" = "relay-cache: line 4: 'gopher://api.example/d' is not an http, https or file URL, which relay-fetch fetches" ]
	[ "${stderr_lines[4]}" = "relay-cache: line 5: effective_url 'https://other.example/e': relay-fetch follows redirects from and to http and https only" ]
	[ "${#stderr_lines[@]}" -eq 5 ]
	[ "$(relay-cache ls | cut -f5 | tr '\n' ' ')" = "file:///srv/g.json http://api.example/h https://other.example/f " ]
}

@test "a header value with a control character but HTAB is refused by put -H and load, and never written out when planted" {
	for h in $'X-Evil: a\e]0;t\ab' $'X: bell\a' $'X: del\x7f' $'X: back\bspace'; do
		run --separate-stderr relay-cache put -H "$h" https://api.example/h </dev/null
		[ "$status" -eq 2 ] || { echo "$h: $status"; false; }
		[[ "$stderr" == "relay-cache: bad header '"*"': field 'X"*"' has the control character \\x"*": a value may have HTAB only (RFC 9110 section 5.5)" ]] || { echo "$stderr"; false; }
		[[ "$stderr" != *[$'\e\a\x7f\b']* ]]
	done
	printf x | relay-cache put -H $'X-Tab: a\tb' https://api.example/tab
	[ "$(relay-cache get -i https://api.example/tab | sed -n 2p)" = $'X-Tab: a\tb\r' ]
	printf '%s\n' '{"url":"https://api.example/l","headers":{"x-evil":"a\u001b]0;t\u0007"},"text":"l"}' \
	    '{"url":"https://api.example/m","headers":{"x":"\u0000"},"text":"m"}' >records
	run --separate-stderr relay-cache load <records
	[ "$status" -eq 1 ]
	# refused as a record's field is read, or when it would be stored
	[[ "${stderr_lines[0]}" == "relay-cache: line 1: "*"x-evil"* ]]
	[ "$(relay-cache ls | cut -f5)" = https://api.example/tab ]
	sqlite3 "$RELAY_CACHE" "UPDATE entries SET headers = 'X: a' || char(27) || '[2J' || char(13) || char(10)"
	run --separate-stderr relay-cache get -i https://api.example/tab
	[ "$status" -eq 65 ] && [ "$output" = "" ]
	[ "$stderr" = "relay-cache: cannot read cache '$RELAY_CACHE': entry 'https://api.example/tab' is damaged: field 'X' has the control character \\x1B: a value may have HTAB only (RFC 9110 section 5.5)" ]
	run --separate-stderr relay-cache dump
	[ "$status" -eq 65 ] && [ "$output" = "" ]
}

@test "a column of another type than relay writes (a status '200abc', 200.5, a blob; a time as text) is damage for get, ls and dump" {
	for u in a b c; do printf '{"u":"%s"}' "$u" | relay-cache put -H 'Content-Type: application/json' "https://api.example/$u"; done
	while IFS='|' read -r set why; do
		damage "$set"
		msg="relay-cache: cannot read cache '$RELAY_CACHE': entry 'https://api.example/b' is damaged: $why"
		run --separate-stderr relay-cache get https://api.example/b
		[ "$status" -eq 65 ] && [ "$output" = "" ] && [ "$stderr" = "$msg" ] || { echo "$set: $status $stderr"; false; }
		run --separate-stderr relay-cache ls
		[ "$status" -eq 65 ] && [ "$stderr" = "$msg" ] && [ "$(cut -f5 <<<"$output" | tr '\n' ' ')" = "https://api.example/a https://api.example/c " ]
		run --separate-stderr relay-cache dump
		[ "$status" -eq 65 ] && [ "$stderr" = "$msg" ]
		[ "$(jq -c .json <<<"$output" | tr '\n' ' ')" = '{"u":"a"} {"u":"c"} ' ]
		run --separate-stderr relay-fetch --offline https://api.example/b
		[ "$status" -eq 65 ] && [ "$output" = "" ] || { echo "fetch $set: $status $stderr"; false; }
		damage "status = 200, size = 9, stale_at = $(($(date +%s) + 300)), lifetime = 300"
	done <<-'EOF'
	status = '200abc'|its status is text, not an integer
	status = 200.5|its status is a real number, not an integer
	status = x'c8'|its status is a blob, not an integer
	size = '9 bytes'|its size is text, not an integer
	stale_at = 1e10 + 0.5|its stale_at is a real number, not an integer
	EOF
	# the counters stats adds up
	sqlite3 "$RELAY_CACHE" "INSERT INTO counters VALUES ('relay_requests_total{outcome=\"hit\"}', '5x')"
	run --separate-stderr relay-cache stats
	[ "$status" -eq 65 ]
	[ "$stderr" = "relay-cache: cannot read cache '$RELAY_CACHE': its table 'counters' is damaged: series 'relay_requests_total{outcome=\"hit\"}': its value is text, not an integer" ]
}

@test "a body not as relay writes it (chunks from seq 1, a chunk of text) is refused by every reader; ls leaves body-damaged entries out" {
	for u in a b c; do printf '{"u":"%s"}' "$u" | relay-cache put -H 'Content-Type: application/json' "https://api.example/$u"; done
	body="(SELECT body FROM entries WHERE url = 'https://api.example/b')"
	while IFS='|' read -r how why; do
		sqlite3 "$RELAY_CACHE" "${how//BODY/$body}"
		msg="relay-cache: cannot read cache '$RELAY_CACHE': entry 'https://api.example/b' is damaged: $why"
		run --separate-stderr relay-cache get https://api.example/b
		[ "$status" -eq 65 ] && [ "$output" = "" ] && [ "$stderr" = "$msg" ] || { echo "$how: $status $stderr"; false; }
		for cmd in ls "ls --json"; do
			# shellcheck disable=SC2086
			run --separate-stderr relay-cache $cmd
			[ "$status" -eq 65 ] && [ "$stderr" = "$msg" ] && [ "${#lines[@]}" -eq 2 ] || { echo "$cmd $how: $status $stderr"; false; }
			[[ "$output" != *api.example/b* ]]
		done
		run --separate-stderr relay-fetch --offline https://api.example/b
		[ "$status" -eq 65 ] && [ "$output" = "" ] || { echo "fetch $how: $status $output"; false; }
		[ "$stderr" = "relay-fetch: ${msg#relay-cache: }" ]
		printf '{"u":"b"}' | relay-cache put -H 'Content-Type: application/json' https://api.example/b
	done <<-'EOF'
	UPDATE chunks SET seq = 1 WHERE body = BODY|its body's chunks are at seq 1 to 1, not 0 to 0
	UPDATE chunks SET data = CAST(data AS TEXT) WHERE body = BODY|its body has a chunk that is not a blob of at most 262144 bytes at an integer seq
	DELETE FROM chunks WHERE body = BODY|its body has 0 of 9 bytes
	UPDATE bodies SET state = 0 WHERE id = BODY|its body is missing
	UPDATE entries SET size = 10 WHERE url = 'https://api.example/b'|its body has 9 of 10 bytes
	EOF
}

@test "ls and dump give age and ttl as relay-cache(5) says; a time out of bounds is damage, one past a record's bounds dumps within them" {
	printf '{"u":"a"}' | relay-cache put -H 'Content-Type: application/json' https://api.example/a
	now=$(date +%s)
	# fresh for 100 s more, whatever the other columns say
	sqlite3 "$RELAY_CACHE" "UPDATE entries SET stale_at = $now + 100, lifetime = 5000, response_time = $now - 100000"
	line=$(relay-cache ls --json)
	[ "$(jq -r .state <<<"$line")" = fresh ]
	ttl=$(jq .ttl <<<"$line"); age=$(jq .age <<<"$line")
	[ "$ttl" -le 100 ] && [ "$ttl" -ge 95 ] && [ $((age + ttl)) -eq 5000 ]
	[ "$(relay-cache ls | cut -f4)" = fresh ]
	# stale these 4900 s
	sqlite3 "$RELAY_CACHE" "UPDATE entries SET stale_at = $now - 4900, lifetime = 100"
	line=$(relay-cache ls --json)
	[ "$(jq -r .state <<<"$line")" = stale ] && [ "$(jq .ttl <<<"$line")" -le -4900 ]
	[ "$(relay-cache dump | jq -r .source)" = stale ]
	# past STORE_TIME_MAX (2^42): damage, not an overflow
	for v in -9223372036854775808 9223372036854775807 4398046511105; do
		sqlite3 "$RELAY_CACHE" "UPDATE entries SET stale_at = $v"
		run --separate-stderr relay-cache ls --json
		[ "$status" -eq 65 ] && [ "$output" = "" ] || { echo "$v: $status $output"; false; }
		[ "$stderr" = "relay-cache: cannot read cache '$RELAY_CACHE': entry 'https://api.example/a' is damaged: stale_at $v is out of bounds (-2^42 to 2^42 seconds)" ]
	done
	# within it, but past what a record carries (2^40): dumped within, loaded back
	sqlite3 "$RELAY_CACHE" "UPDATE entries SET stale_at = 4398046511104, lifetime = 4398046511104"
	relay-cache dump >copy.ndjson
	[ "$(jq .ttl copy.ndjson)" = 1099511627776 ] && [ "$(jq .age copy.ndjson)" -ge 0 ]
	RELAY_CACHE=$PWD/other.db relay-cache load <copy.ndjson
	[ "$(RELAY_CACHE=$PWD/other.db relay-cache ls | cut -f4)" = fresh ]
}

@test "load on a disk that fills: the record that does not fit is named by its line, the later ones that fit go in, exit 74" {
	small_disk 3m
	export RELAY_CACHE=$PWD/disk/cache.db
	printf small | relay-cache put https://api.example/keep
	head -c 1700000 /dev/zero >disk/filler
	head -c 900000 /dev/urandom | base64 -w0 >big.b64
	{
		echo '{"url":"https://api.example/1","text":"one"}'
		printf '{"url":"https://api.example/big","base64":"%s"}\n' "$(cat big.b64)"
		echo '{"url":"https://api.example/3","text":"three"}'
		echo 'not json'
	} >records
	run --separate-stderr relay-cache load <records
	[ "$status" -eq 74 ]
	[ "${stderr_lines[0]}" = "relay-cache: line 2: cannot write to cache '$RELAY_CACHE': No space left on device" ]
	[ "${stderr_lines[1]}" = "relay-cache: line 4: unexpected 'n', expected '{'" ]
	[ "${#stderr_lines[@]}" -eq 2 ]
	[ "$(relay-cache ls | cut -f5 | tr '\n' ' ')" = "https://api.example/1 https://api.example/3 https://api.example/keep " ]
	[ "$(sqlite3 "$RELAY_CACHE" 'SELECT count(*) FROM bodies')" = 3 ]
}

@test "a sequence or a singleton row planted in the file is named as damage (65), not a full disk or a constraint" {
	printf x | relay-cache put https://api.example/a
	cp "$RELAY_CACHE" clean.db
	start_upstream
	while IFS='|' read -r sql why; do
		cp clean.db "$RELAY_CACHE"
		sqlite3 "$RELAY_CACHE" "$sql"
		run --separate-stderr relay-cache put https://api.example/b <<<y
		[ "$status" -eq 65 ] || { echo "$sql: $status $stderr"; false; }
		[ "$stderr" = "relay-cache: cannot write to cache '$RELAY_CACHE': $why" ]
		run --separate-stderr relay-fetch "$UP/x?cc=max-age=60"
		[[ "$stderr" == *"not cached: cannot write to cache '$RELAY_CACHE': $why"* ]] || { echo "fetch: $stderr"; false; }
		[ "$(relay-cache ls | cut -f5)" = https://api.example/a ]
	done <<-'EOF'
	UPDATE sqlite_sequence SET seq = 9223372036854775807 WHERE name = 'bodies'|its table 'sqlite_sequence' is damaged: the sequence of 'bodies' is past 2^62, which relay never reaches
	DELETE FROM sync|its table 'sync' is damaged: 0 rows, not one
	INSERT INTO chunks VALUES ((SELECT seq + 1 FROM sqlite_sequence WHERE name = 'bodies'), 0, x'00')|its table 'chunks' is damaged: it has rows of body 2, which relay had not made
	EOF
}

@test "a GLOB pattern over 16384 bytes is a usage error; a user_version below 0 is an unknown version" {
	printf x | relay-cache put https://api.example/a
	long=$(head -c 60000 /dev/zero | tr '\0' '*')
	for cmd in ls purge dump; do
		run --separate-stderr relay-cache "$cmd" --match "$long"
		[ "$status" -eq 2 ] && [ "$stderr" = "relay-cache: bad --match: a pattern of 60000 bytes, over 16384" ] || { echo "$cmd: $status $stderr"; false; }
	done
	edge=$(head -c 16384 /dev/zero | tr '\0' '*')
	[ "$(relay-cache ls --match "$edge" | cut -f5)" = https://api.example/a ]
	sqlite3 "$RELAY_CACHE" 'PRAGMA user_version = -1'
	run --separate-stderr relay-cache ls
	[ "$status" -eq 65 ] && [ "$stderr" = "relay-cache: cannot open cache '$RELAY_CACHE': unknown schema version -1" ]
}

@test "a file system with no room left at all: reading commands still read (the WAL index in memory), writes fail with 74" {
	small_disk 1m
	export RELAY_CACHE=$PWD/disk/cache.db
	printf '{"u":"a"}' | relay-cache put -H 'Content-Type: application/json' https://api.example/a
	head -c 2000000 /dev/zero >disk/filler 2>/dev/null || true
	[ "$(df --output=avail disk | tail -1)" -eq 0 ]
	rm -f "$RELAY_CACHE-wal" "$RELAY_CACHE-shm"
	[ "$(relay-cache ls | cut -f5)" = https://api.example/a ]
	[ "$(relay-cache get https://api.example/a)" = '{"u":"a"}' ]
	[ "$(relay-cache stats | head -1)" = $'entries\t1' ]
	[ "$(relay-cache dump | jq -c .json)" = '{"u":"a"}' ]
	[ "$(relay-cache path)" = "$RELAY_CACHE" ]
	run --separate-stderr relay-cache put https://api.example/b <<<b
	[ "$status" -eq 74 ]
	[[ "$stderr" == *"No space left on device" ]]
	rm disk/filler
	relay-cache put https://api.example/b <<<b
	[ "$(relay-cache ls | wc -l)" -eq 2 ]
}

@test "relay-cache(5) gives the queue file's schema as the store makes it, indexes included" {
	queued_file
	sqlite3 "$RELAY_CACHE-queue" '.schema' | tr -s '[:space:]' ' ' >have
	for obj in "CREATE INDEX queue_open ON queue (path, id) WHERE state IN ('queued', 'delivering');" \
	    "CREATE INDEX queue_due ON queue (next_ms) WHERE state IN ('queued', 'delivering');"; do
		grep -qF "$obj" have || { echo "not in the file: $obj"; false; }
		mandoc -Tascii "$ROOT/man/relay-cache.5" | col -b | tr -s '[:space:]' ' ' | grep -qF "$obj" || { echo "not in the page: $obj"; false; }
	done
}
