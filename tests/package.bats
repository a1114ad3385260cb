#!/usr/bin/env bats
# How relay ships: the Debian package (make deb), installed into a
# clean Debian root made by mmdebstrap, and the container image (make
# image) run with podman. Both are built from Debian's archive only;
# skipped, saying why, where the tools are not installed.

bats_require_minimum_version 1.5.0
load helpers

VERSION=$(sed -n 's/^VERSION = //p' "$BATS_TEST_DIRNAME/../Makefile")

needs_root_and() {
	local tool
	! sanitized ||
	    skip "bin/ is built with sanitizers; the package builds its own"
	[ "$(id -u)" -eq 0 ] || skip "needs root (mmdebstrap's root mode)"
	for tool; do
		command -v "$tool" >/dev/null ||
		    skip "needs $tool (apt-get install $tool)"
	done
}

# A PATH of links to every command on this one but those named, with
# an apt-get that only logs what it is asked to install (and fails, so
# that make stops there) and a sudo that runs its command.
path_without() {
	local dir cmd
	mkdir -p limited-bin
	printf '#!/bin/sh\necho "$*" >>"%s/apt.log"\n[ "$1" = update ]\n' \
	    "$PWD" >limited-bin/apt-get
	printf '#!/bin/sh\nexec "$@"\n' >limited-bin/sudo
	chmod +x limited-bin/apt-get limited-bin/sudo
	IFS=: read -ra dirs <<<"$PATH"
	for dir in "${dirs[@]}"; do
		for cmd in "$dir"/*; do
			[ -x "$cmd" ] && [ ! -e "limited-bin/${cmd##*/}" ] || continue
			[[ " $* " != *" ${cmd##*/} "* ]] || continue
			ln -s "$cmd" "limited-bin/${cmd##*/}"
		done
	done
}

@test "make deb and make image install the tools they need first, as make check does" {
	path_without dh dpkg-buildpackage fakeroot lintian mmdebstrap podman runc
	for target in deb image; do
		rm -f apt.log
		run env PATH="$PWD/limited-bin" make -C "$ROOT" "$target"
		[ "$status" -ne 0 ]
		grep -q '^update' apt.log
		install=$(grep '^install ' apt.log)
		echo "$target: $install"
		case $target in
		deb) tools="debhelper dpkg-dev fakeroot lintian" ;;
		image) tools="mmdebstrap podman runc" ;;
		esac
		for tool in $tools; do
			[[ " $install " == *" $tool "* ]]
		done
		# and nothing was built before the tools were there
		[[ "$output" != *dpkg-buildpackage* ]]
	done
	# make deps-package installs both groups
	rm -f apt.log
	run env PATH="$PWD/limited-bin" make -C "$ROOT" deps-package
	[[ "$(grep '^install ' apt.log)" == *" lintian"* ]]
}

@test "make deb: a package lintian passes, that works in a clean Debian root" {
	needs_root_and dpkg-buildpackage dh lintian mmdebstrap
	make -C "$ROOT" deb >deb.log 2>&1 || { tail -20 deb.log; false; }
	deb=$(ls "$ROOT"/build/deb/relay_"$VERSION"_*.deb)
	run lintian --fail-on error "$deb"
	echo "$output"
	[ "$status" -eq 0 ]
	# what it holds and needs
	dpkg-deb -c "$deb" >contents
	for f in usr/bin/relay-serve usr/bin/list-dishes \
	    usr/share/man/man8/relay-serve.8.gz \
	    usr/share/doc/relay/examples/menu-api/restaurant.json \
	    usr/share/bash-completion/completions/list-dishes \
	    lib/systemd/system/relay-serve.socket \
	    lib/systemd/system/relay-serve.service; do
		grep -q " \./$f\$" contents || { echo "no $f"; false; }
	done
	dpkg-deb -f "$deb" Depends | grep -q 'libcurl4.*libhiredis0.14.*libjq1'
	dpkg-deb -f "$deb" Depends | grep -qF 'libsqlite3-0 (>= 3.33.0)'
	# the pages and units name where the package puts things
	mkdir files
	dpkg-deb -x "$deb" files
	zcat files/usr/share/man/man*/*.gz >pages
	! grep -n /usr/local pages || false
	grep -qF 'file:///usr/share/doc/relay/examples/menu-api{path}.json' pages
	grep -qF '/usr/share/doc/relay/examples/systemd/relay-serve.socket' pages
	! grep -rn /usr/local files/lib/systemd files/usr/share/doc/relay/examples/systemd \
	    files/usr/share/doc/relay/examples/inetd.conf || false
	grep -qx 'ExecStart=/usr/bin/relay-serve' files/lib/systemd/system/relay-serve.service
	# the units are not started when installed
	dpkg-deb -e "$deb" control
	! grep -q 'deb-systemd-invoke' control/postinst || false
	# a clean root, the package installed by apt with its dependencies
	mmdebstrap --variant=apt --quiet \
	    --customize-hook="copy-in $deb /tmp" \
	    --customize-hook="chroot \"\$1\" apt-get install -y -q --no-install-recommends /tmp/${deb##*/}" \
	    bookworm root >mmdebstrap.log 2>&1 || { tail -20 mmdebstrap.log; false; }
	snapshot='file:///usr/share/doc/relay/examples/menu-api{path}.json'
	printf 'GET /restaurant HTTP/1.0\r\n\r\n' | chroot root env \
	    RELAY_CACHE=/tmp/cache.db "RELAY_UPSTREAM=$snapshot" relay-serve \
	    >answer 2>serve.log
	head -1 answer | grep -q '^HTTP/1.1 200 OK'
	grep -q '^Cache-Status: relay; fwd=miss' answer
	chroot root env RELAY_CACHE=/tmp/cache.db "RELAY_UPSTREAM=$snapshot" \
	    list-dishes >dishes
	grep -q 'Solna' dishes
	chroot root relay-serve --version | grep -qx "relay-serve $VERSION"
	# installed, not enabled: no symlink made for either unit
	[ -f root/lib/systemd/system/relay-serve.socket ]
	! ls root/etc/systemd/system/*.wants/relay-serve.* 2>/dev/null || false
}

# The image's things, removed at the end of the test that made them.
image_cleanup() {
	podman rm -f relay-test >/dev/null 2>&1 || true
	podman volume rm -f relay-test >/dev/null 2>&1 || true
	podman rmi -f "relay:$VERSION" relay:latest \
	    "localhost/relay-base:$VERSION" >/dev/null 2>&1 || true
}

@test "make image: relay:VERSION serves from its volume, a hit the second time, and stops on SIGTERM within 2 s" {
	needs_root_and podman runc mmdebstrap dpkg-buildpackage
	export CONTAINERS_CONF=$ROOT/containers.conf
	EXTRA_CLEANUP=image_cleanup
	make -C "$ROOT" image >image.log 2>&1 || { tail -20 image.log; false; }
	grep -E "^relay:$VERSION: [0-9.]+ MB\$" image.log
	podman image exists "relay:$VERSION"
	podman image exists relay:latest
	port=$(free_port)
	podman volume create relay-test >/dev/null
	podman run -d --name relay-test -v relay-test:/var/cache/relay \
	    -p "127.0.0.1:$port:8000" \
	    -e 'RELAY_UPSTREAM=file:///usr/share/relay/menu-api{path}.json' \
	    relay >/dev/null
	within 30 curl -sf -o /dev/null "http://127.0.0.1:$port/version"
	[ "$(curl -s -o /dev/null -w '%header{cache-status}' "http://127.0.0.1:$port/restaurant")" = \
	    "relay; fwd=miss" ]
	[[ "$(curl -s -o /dev/null -w '%header{cache-status}' "http://127.0.0.1:$port/restaurant")" == \
	    "relay; hit; ttl="* ]]
	[ "$(podman exec relay-test id -un)" = relay ]
	# the cache is on the volume
	podman exec relay-test ls /var/cache/relay/cache.db
	# SIGTERM, and SIGKILL after 2 s: exit status 0, not 137, is the
	# stop within 2 s
	podman stop -t 2 relay-test >/dev/null
	[ "$(podman inspect relay-test --format '{{.State.ExitCode}}')" -eq 0 ]
	image_cleanup
	! podman image exists "relay:$VERSION" || false
}
