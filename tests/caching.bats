#!/usr/bin/env bats
# HTTP caching rules beyond the core (RFC 9110, 9111, 9213): safe
# defaults for a shared cache, ranges from stored responses, targeted
# cache control, invalidation by Location, must-understand, Age and
# Expires as RFC 9111 reads them.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	common_setup
	start_upstream
}

cache_status() {	# cache_status URL [CURL ARGS]: its Cache-Status
	local url=$1
	shift
	curl -s -o /dev/null -D - "$@" "$url" | tr -d '\r' |
	    sed -n 's/^[Cc]ache-[Ss]tatus: //p'
}

is_hit() {
	[[ "$(cache_status "$@")" == "relay; hit"* ]]
}

not_hit() {
	! is_hit "$@" || false
}

@test "a response that sets a cookie is not shared with the next client" {
	start_serve
	url="$SERVE/login?cc=max-age=600&h=Set-Cookie:session=alice"
	run curl -s -D head "$url"
	grep -qi '^set-cookie: session=alice' head
	run curl -s -D head "$url"
	[[ "$(tr -d '\r' <head | grep -i '^cache-status')" == *"fwd=miss"* ]]
	[ "$(requests_for "/login?cc=max-age=600&h=Set-Cookie:session=alice")" -eq 2 ]
	[ -z "$(relay-cache ls)" ]
}

@test "--store-set-cookie stores it, as RFC 9111 allows" {
	start_serve --store-set-cookie
	url="$SERVE/c?cc=max-age=600&h=Set-Cookie:k=v"
	curl -s "$url" >/dev/null
	eventually is_hit "$url"
	run relay-fetch --store-set-cookie "$UP/d?cc=max-age=600&h=Set-Cookie:k=v"
	[ "$status" -eq 0 ]
	eventually cached_as "$UP/d?cc=max-age=600&h=Set-Cookie:k=v" \
	    "/d?cc=max-age=600&h=Set-Cookie:k=v"
	run relay-fetch "$UP/e?cc=max-age=600&h=Set-Cookie:k=v"
	! cached_as "$UP/e?cc=max-age=600&h=Set-Cookie:k=v" \
	    "/e?cc=max-age=600&h=Set-Cookie:k=v" || false
}

@test "a Range is answered from the stored response: 206, 416, If-Range" {
	start_serve
	url="$SERVE/r?cc=max-age=600&body=0123456789&etag=%22v1%22"
	curl -s "$url" >/dev/null
	eventually is_hit "$url"
	run curl -s -D head -H 'Range: bytes=2-4' "$url"
	[ "$output" = 234 ]
	grep -q '^HTTP/1.1 206 ' head
	grep -qi '^content-range: bytes 2-4/10' head
	grep -qi '^content-length: 3' head
	run curl -s -H 'Range: bytes=-3' "$url"
	[ "$output" = 789 ]
	run curl -s -H 'Range: bytes=7-' "$url"
	[ "$output" = 789 ]
	run curl -s -H 'Range: bytes=5-99' "$url"
	[ "$output" = 56789 ]
	run curl -s -D head -H 'Range: bytes=10-' "$url"
	grep -q '^HTTP/1.1 416 ' head
	grep -qi '^content-range: bytes \*/10' head
	# several ranges, one that does not parse, a stale If-Range: all of it
	for r in 'bytes=0-1,4-5' 'bytes=x-2' 'items=0-1'; do
		run curl -s -H "Range: $r" "$url"
		[ "$output" = 0123456789 ] || { echo "$r: $output"; false; }
	done
	run curl -s -H 'Range: bytes=0-1' -H 'If-Range: "v0"' "$url"
	[ "$output" = 0123456789 ]
	run curl -s -H 'Range: bytes=0-1' -H 'If-Range: "v1"' "$url"
	[ "$output" = 01 ]
	[ "$(requests_for '/r?cc=max-age=600&body=0123456789&etag=%22v1%22')" -eq 1 ]
}

@test "CDN-Cache-Control stands in for Cache-Control; --targeted-cache-control names others" {
	start_serve
	url="$SERVE/t?cc=no-store&h=CDN-Cache-Control:max-age=600"
	curl -s "$url" >/dev/null
	eventually is_hit "$url"
	url="$SERVE/u?cc=max-age=600&h=CDN-Cache-Control:no-store"
	curl -s "$url" >/dev/null
	curl -s "$url" >/dev/null
	[ "$(requests_for '/u?cc=max-age=600&h=CDN-Cache-Control:no-store')" -eq 2 ]
	# a value that is not a dictionary is ignored: Cache-Control rules
	url="$SERVE/v?cc=max-age=600&h=CDN-Cache-Control:MAX-AGE=0"
	curl -s "$url" >/dev/null
	eventually is_hit "$url"
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
	start_serve --targeted-cache-control Edge-Control,CDN-Cache-Control
	url="$SERVE/w?cc=no-store&h=Edge-Control:max-age=600&h=CDN-Cache-Control:no-store"
	curl -s "$url" >/dev/null
	eventually is_hit "$url"
	run relay-serve --targeted-cache-control 'a b'
	[ "$status" -eq 2 ]
	[[ "$output" == *"bad --targeted-cache-control 'a b'"* ]]
}

@test "obeying Surrogate-Control, relay-serve and relay-fetch both tell the upstream so (Surrogate-Capability); otherwise neither does" {
	start_serve --targeted-cache-control Surrogate-Control
	curl -s "$SERVE/sc?echo_header=Surrogate-Capability" >served
	[ "$(cat served)" = 'relay="Surrogate/1.0"' ]
	relay-fetch --targeted-cache-control Surrogate-Control \
	    "$UP/sf?echo_header=Surrogate-Capability" >fetched
	[ "$(cat fetched)" = 'relay="Surrogate/1.0"' ]
	relay-fetch "$UP/sg?echo_header=Surrogate-Capability" >plain
	[ ! -s plain ]
}

@test "a POST's Location and Content-Location of the same origin are invalidated" {
	start_serve
	for p in one two far; do
		curl -s "$SERVE/item/$p?cc=max-age=600" >/dev/null
		eventually is_hit "$SERVE/item/$p?cc=max-age=600"
	done
	curl -s -X POST -d x "$SERVE/item?h=Location:/item/one?cc=max-age=600&h=Content-Location:item/two?cc=max-age=600" >/dev/null
	curl -s -X POST -d x "$SERVE/item?h=Location:http://elsewhere.example/item/far?cc=max-age=600" >/dev/null
	eventually not_hit "$SERVE/item/one?cc=max-age=600"
	eventually not_hit "$SERVE/item/two?cc=max-age=600"
	is_hit "$SERVE/item/far?cc=max-age=600"
}

@test "must-understand: an unknown status is not stored, a known one is despite no-store" {
	start_serve
	curl -s "$SERVE/m?status=599&cc=max-age=600,must-understand" >/dev/null
	curl -s "$SERVE/m?status=599&cc=max-age=600,must-understand" >/dev/null
	[ "$(requests_for '/m?status=599&cc=max-age=600,must-understand')" -eq 2 ]
	url="$SERVE/n?cc=max-age=600,must-understand,no-store"
	curl -s "$url" >/dev/null
	eventually is_hit "$url"
}

# second_status PATH: relay-serve's Cache-Status for PATH asked a
# second time, once its first answer is in the file.
second_status() {
	curl -s -o /dev/null "$SERVE$1"
	eventually stored "$UP$1"
	cache_status "$SERVE$1"
}

stored() {
	relay-cache get "$1" >/dev/null 2>&1
}

# reused PATH: the second answer for PATH is the stored one, fresh.
reused() {
	[[ "$(second_status "$1")" == "relay; hit"* ]] ||
	    { echo "$1 was not reused"; return 1; }
}

# stale PATH: the second answer for PATH had to ask the upstream again.
stale() {
	[[ "$(second_status "$1")" == *"fwd=stale"* ]] &&
	    [ "$(requests_for "$1")" -eq 2 ] ||
	    { echo "$1 was reused"; return 1; }
}

uri() {
	jq -rn --arg v "$1" '$v | @uri'
}

@test "Age: a list counts by its first member, an invalid one is ignored, not stale (RFC 9111 5.1)" {
	start_serve
	for age in abc -7200 +7200 7200.0 '7200;foo=bar' '7200;foo=111' \
	    '0, 7200' '0,7200' '0, 0' ', 0' '"7200"' 'abc, 7200' 0 10; do
		reused "/a?cc=max-age=3600&h=$(uri "Age:$age")"
	done
	# on two lines: one list (RFC 9110 5.3)
	reused "/a?cc=max-age=3600&h=Age:0&h=Age:7200"
	reused "/a?cc=max-age=3600&h=Age:0&h=Age:0"
	reused "/a?cc=max-age=10000&h=Age:3600&h=Age:3600"
	reused "/a?cc=max-age=3600&h=Age:x&h=Age:7200"
	for age in 7200 '7200, 0' '7200,0' 99999999999; do
		stale "/b?cc=max-age=3600&h=$(uri "Age:$age")"
	done
	stale "/b?cc=max-age=3600&h=Age:7200&h=Age:0"
}

@test "Expires: exactly one of the three date forms, in any case; any other spelling or two lines is in the past (RFC 9111 5.3, RFC 9110 5.6.7)" {
	start_serve
	for when in 'Thu, 18 Aug 2050 02:01:18 GMT' \
	    'thu, 18 AUG 2050 02:01:18 gmt' \
	    'Thursday, 18-Aug-50 02:01:18 GMT' \
	    'THURSDAY, 18-aug-50 02:01:18 GMT' \
	    'Thu Aug 18 02:01:18 2050' 'Mon Aug  8 02:01:18 2050'; do
		reused "/e?h=$(uri "Expires:$when")"
	done
	for when in 'Thu, 18 Aug 2050 2:01:18 GMT' \
	    'Thu, 18  Aug  2050 02:01:18 GMT' \
	    'Thu,  18 Aug 2050 02:01:18 GMT' \
	    'Thu 18 Aug 2050 02:01:18 GMT' \
	    'Thu, 18-Aug-2050 02:01:18 GMT' \
	    'Thu, 18 Aug 2050 02.01.18 GMT' \
	    'Thu, 18 Aug 50 02:01:18 GMT' \
	    'Thu, 8 Aug 2050 02:01:18 GMT' \
	    'Thu, 18 Aug 2050 02:01:18 UTC' \
	    'Thu, 18 Aug 2050 02:01:18 AEST' \
	    'Thu, 18 Aug 2050 02:01:18 +0000' \
	    'Thu, 31 Apr 2050 02:01:18 GMT' \
	    'Thursday, 18-Aug-2050 02:01:18 GMT' \
	    'Thu Aug 8 02:01:18 2050' 'Thu Aug 18 2:01:18 2050' \
	    'Thu Aug 18 02:01:18 2050 GMT' \
	    'Tue 19 Jan 2038 14:14:08 GMT' 0 never; do
		stale "/f?h=$(uri "Expires:$when")"
	done
	# one date on two lines is not a date (RFC 9110 5.3)
	stale "/f?h=$(uri 'Expires:Thu, 18 Aug 2050 02:01:18 GMT')&h=$(uri 'Expires:Thu, 18 Aug 2050 02:01:18 GMT')"
	stale "/f?h=$(uri 'Expires:Thu, 18 Aug 2050 02:01:18 GMT')&h=$(uri 'Expires:Thu, 18 Aug 2050 02:01:19 GMT')"
}

@test "credentials in a URL go upstream, never into keys, records, logs or messages" {
	auth_up=${UP/http:\/\//http://al%40ice:s3cr%3At@}
	run --separate-stderr relay-fetch --records "$auth_up/k?cc=max-age=600"
	[ "$status" -eq 0 ]
	[ "$(jq -r .url <<<"$output")" = "$UP/k?cc=max-age=600" ]
	[ "$(curl -s "$UP/_log" | jq -r 'select(.path == "/k?cc=max-age=600") | .headers.Authorization')" = \
	    "Basic $(printf 'al@ice:s3cr:t' | base64)" ]
	[ "$(relay-cache ls | cut -f1 | grep -c s3cr)" -eq 0 ]
	! sqlite3 "$RELAY_CACHE" .dump | grep -q s3cr || false
	run --separate-stderr relay-fetch "${auth_up}/gone?status=404" 'http://u:s3cr@[::1/x'
	[[ "$stderr" != *s3cr* ]]
	[[ "$stderr" == *"invalid URL 'http://***@[::1/x'"* ]]
	run --separate-stderr relay-cache get 'http://u:s3cr@[::1/x'
	[[ "$stderr" != *s3cr* ]]
	start_serve --upstream "$auth_up"
	curl -s "$SERVE/s?cc=max-age=600" >/dev/null
	[ "$(curl -s "$UP/_log" | jq -r 'select(.path == "/s?cc=max-age=600") | .headers.Authorization')" = \
	    "Basic $(printf 'al@ice:s3cr:t' | base64)" ]
	! grep -q s3cr serve.log || false
	run relay-serve --upstream 'http://u:s3cr@[::1'
	[ "$status" -eq 78 ]
	[[ "$output" != *s3cr* ]]
}

@test "Vary: a field sent on several lines is keyed as the upstream reads it, every line of it (RFC 9111 4.1, RFC 9110 5.3)" {
	start_serve
	local path='/v?cc=max-age=60&h=Vary:Accept-Language&echo_header=Accept-Language'
	[ "$(curl -s -H 'Accept-Language: en' -H 'Accept-Language: evil' \
	    "$SERVE$path")" = 'en, evil' ]
	eventually cached_as "$UP$path" 'en, evil'
	# one line "en" is another variant: never the two lines' answer
	[ "$(curl -s -H 'Accept-Language: en' "$SERVE$path")" = en ]
	# the same value on one line is the same variant: a hit
	is_hit "$SERVE$path" -H 'Accept-Language: en, evil'
	[ "$(curl -s -H 'Accept-Language: en, evil' "$SERVE$path")" = 'en, evil' ]
	# as a batch item, its value as a list, the same
	curl -s --data-binary '{"requests":[{"id":"1","path":"'"$path"'",
	    "headers":{"accept-language":["en","evil"]}}]}' \
	    "$SERVE/_relay/batch" >out.ndjson
	jq -e '.text == "en, evil" and
	    (.headers["cache-status"] | startswith("relay; hit"))' out.ndjson
	[ "$(requests_for "$path")" = 2 ]
}

@test "a 304 that sets a cookie or says no-store or private takes the stored response away; its fields never answer the next client" {
	start_serve
	local h
	for h in 'Set-Cookie:session=alice' 'Cache-Control:no-store' 'Cache-Control:private'; do
		local p="/r304?cc=max-age=1&etag=%22v%22&h304=$(printf %s "$h" | jq -sRr @uri)"
		curl -s -o /dev/null "$SERVE$p"
		eventually cached_as "$UP$p" "$p"
		stale_now() { relay-cache ls --json | jq -e 'select(.state == "stale" and .age >= 2)' >/dev/null; }
		eventually stale_now
		# this client revalidates: it gets what its 304 said
		curl -s -D head1 -o /dev/null "$SERVE$p"
		grep -qi "^${h%%:*}: ${h#*:}" head1 || { cat head1; false; }
		# the next one never gets it from the cache
		eventually cache_empty
		curl -s -D head2 -o /dev/null "$SERVE$p"
		! grep -qi '^set-cookie' head2 || false
		! grep -qi 'relay; hit' head2 || false
		relay-cache rm "$UP$p" >/dev/null 2>&1 || true
	done
}

@test "only-if-cached: a stored response the request may have, else 504, never the upstream (RFC 9111 5.2.1.7)" {
	start_serve
	local p='/oic?cc=max-age=1'
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Cache-Control: only-if-cached' "$SERVE$p")" = 504 ]
	curl -s -o /dev/null "$SERVE$p"
	eventually cached_as "$UP$p" "$p"
	stale_now() { relay-cache ls --json | jq -e 'select(.state == "stale" and .age >= 2)' >/dev/null; }
	eventually stale_now
	# stale, and the request does not take stale: 504, the upstream not asked
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Cache-Control: only-if-cached' "$SERVE$p")" = 504 ]
	[ "$(requests_for "$p")" -eq 1 ]
	# one that takes it stale gets it
	[ "$(curl -s -H 'Cache-Control: only-if-cached, max-stale=600' "$SERVE$p")" = "$p" ]
	[ "$(requests_for "$p")" -eq 1 ]
}

@test "a client's no-store keeps its answer out of the cache and marks the URL for no one else: the next request stores it" {
	start_serve
	path='/ns?cc=max-age=60&body=n'
	[ "$(curl -s -H 'Cache-Control: no-store' "$SERVE$path")" = n ]
	[ "$(curl -s "$SERVE$path")" = n ]
	eventually cached_as "$UP$path" n
	[ "$(sqlite3 "$RELAY_CACHE" 'SELECT count(*) FROM uncacheable')" -eq 0 ]
	[[ "$(cache_status "$SERVE$path")" == *"relay; hit"* ]]
	[ "$(requests_for "$path")" -eq 2 ]
	# relay-fetch --no-store: the same
	path='/ns2?cc=max-age=60&body=f'
	[ "$(relay-fetch --no-store "$UP$path")" = f ]
	[ "$(relay-fetch "$UP$path")" = f ]
	cached_as "$UP$path" f
}
