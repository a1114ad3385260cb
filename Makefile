# relay — a caching API relay built as a Unix toolkit.
# GNU make, no configure step: libraries come from pkg-config.

VERSION = 0.1.0
PREFIX ?= /usr/local
BINDIR = $(PREFIX)/bin
MANDIR = $(PREFIX)/share/man
EXAMPLEDIR = $(PREFIX)/share/relay/examples
COMPLETIONDIR = $(PREFIX)/share/bash-completion/completions

CC ?= cc
CFLAGS ?= -O2 -g
WARNINGS = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wwrite-strings -Wvla -Wno-format-nonliteral
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
endif

PKGS = libcurl sqlite3 zlib hiredis
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# Debian's libjq 1.6 ships no .pc file.
JQ_CFLAGS ?= $(shell pkg-config --cflags libjq 2>/dev/null)
JQ_LIBS ?= $(shell pkg-config --libs libjq 2>/dev/null || echo -ljq)

ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Ilib -DVERSION='"$(VERSION)"' $(WARNINGS) \
	$(PKG_CFLAGS) -pthread $(CPPFLAGS) $(CFLAGS)
LIBS = $(PKG_LIBS) -pthread

PROGS = bin/list-dishes bin/relay-cache bin/relay-fetch bin/relay-merge \
	bin/relay-serve
LIB_SRCS = $(wildcard lib/*/*.c)
LIB_OBJS = $(LIB_SRCS:lib/%.c=build/lib/%.o)
LIB_HDRS = $(wildcard lib/*/*.h)
UNIT_TESTS = $(patsubst tests/unit/%.c,build/tests/%,$(wildcard tests/unit/test_*.c))
MAN1 = man/list-dishes.1 man/relay-cache.1 man/relay-fetch.1 \
	man/relay-merge.1
MAN5 = man/relay-cache.5 man/relay-routes.5
MAN7 = man/relay.7
MAN8 = man/relay-serve.8

all: $(PROGS)

build/%.o: src/%.c $(LIB_HDRS) $(wildcard src/*.h)
	@mkdir -p build
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/lib/%.o: lib/%.c $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/librelay.a: $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJS)

bin/list-dishes bin/relay-merge bin/relay-serve: LIBS += $(JQ_LIBS)
build/list-dishes.o build/relay-merge.o build/relay-serve.o build/serve-options.o \
    build/lib/serve/merge.o build/lib/base/jqprog.o: ALL_CFLAGS += $(JQ_CFLAGS)

bin/relay-cache: build/cache-load.o
bin/relay-serve: build/serve-options.o
bin/relay-fetch: build/fetch-input.o build/fetch-names.o build/fetch-options.o \
    build/fetch-progress.o

bin/%: build/%.o build/librelay.a
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) build/librelay.a $(LIBS)

build/tests/%: tests/unit/%.c tests/unit/unit.h build/librelay.a $(LIB_HDRS)
	@mkdir -p build/tests
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< \
		build/librelay.a $(LIBS)

unit: $(UNIT_TESTS)

# The README's test command: installs what is missing, then runs
# every unit and bats test and ends with "N passed, N failed".
check:
	@tests/deps-present || $(MAKE) deps
	@$(MAKE) --no-print-directory all unit
	@tests/run

# The HTTP cache test suite behind cache-tests.fyi (npm), relay-serve
# in front of its origin; fails when a required test fails that
# tests/conformance/expected-failures does not name, or one it names passes.
conformance: all
	@tests/conformance/run

# relay-merge's and the merge routes' tests again, those programs
# under valgrind: jv reference counting checked for leaks.
check-valgrind: all
	@RELAY_VALGRIND="relay-merge relay-serve relay-fetch" bats \
		tests/relay-merge.bats tests/routes.bats tests/batch.bats \
		tests/channel.bats tests/sync.bats tests/shared.bats

# What the build and the tests need (tests/install-deps test); "make
# deb" and "make image" install their own tools the same way.
deps:
	tests/install-deps test

deps-package:
	tests/install-deps package image

# The first thing to run on a fresh machine: a tour of the programs.
demo:
	@tests/deps-present || $(MAKE) deps
	@$(MAKE) --no-print-directory all
	@PATH="$(CURDIR)/bin:$$PATH" share/examples/demo

# The pages, units and inetd line name the default prefix's paths
# (/usr/local); they are installed with this prefix's.
SUBST_PATHS = sed -e 's|/usr/local/share/relay/examples|$(EXAMPLEDIR)|g' \
	-e 's|/usr/local/share/bash-completion/completions|$(COMPLETIONDIR)|g' \
	-e 's|/usr/local/bin|$(BINDIR)|g'

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(EXAMPLEDIR) \
		$(DESTDIR)$(COMPLETIONDIR)
	install -m 755 $(PROGS) $(DESTDIR)$(BINDIR)
	for page in $(MAN1) $(MAN5) $(MAN7) $(MAN8); do \
		$(SUBST_PATHS) $$page \
		    >$(DESTDIR)$(MANDIR)/man$${page##*.}/$${page#man/} && \
		chmod 644 $(DESTDIR)$(MANDIR)/man$${page##*.}/$${page#man/} || \
		exit 1; \
	done
	cp -R share/examples/. $(DESTDIR)$(EXAMPLEDIR)
	grep -rlI /usr/local/ share/examples | while read -r file; do \
		$(SUBST_PATHS) $$file \
		    >$(DESTDIR)$(EXAMPLEDIR)/$${file#share/examples/} || \
		exit 1; \
	done
	install -m 644 share/bash-completion/completions/list-dishes \
		$(DESTDIR)$(COMPLETIONDIR)

# The Debian package (debian/), built from a copy of the tree so that
# what dpkg-buildpackage writes beside it stays in build/deb/.
deb:
	@tests/deps-present package || tests/install-deps package
	rm -rf build/deb
	mkdir -p build/deb/relay-$(VERSION)
	tar --exclude=./build --exclude=./bin --exclude=./.git -cf - . | \
		tar -xf - -C build/deb/relay-$(VERSION)
	cd build/deb/relay-$(VERSION) && dpkg-buildpackage -us -uc -b
	@ls build/deb/relay_$(VERSION)_*.deb

# The container image relay:VERSION and relay:latest (Containerfile),
# on a base made from Debian's archive, never pulled: the package's
# dependencies and the package, a user of its own, no documentation
# but the package's.
IMAGE_BASE = localhost/relay-base:$(VERSION)
image: export CONTAINERS_CONF = $(CURDIR)/containers.conf
image:
	@tests/deps-present image || tests/install-deps image
	@$(MAKE) --no-print-directory deb
	mmdebstrap --variant=essential --mode=root \
		--include="$$(dpkg-deb -f build/deb/relay_$(VERSION)_*.deb Depends | \
		    sed 's/ *([^)]*)//g; s/ //g')" \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/relay/*' \
		--customize-hook='copy-in build/deb/relay_$(VERSION)_amd64.deb /tmp' \
		--customize-hook='chroot "$$1" dpkg -i /tmp/relay_$(VERSION)_amd64.deb' \
		--customize-hook='rm "$$1"/tmp/relay_*.deb' \
		--customize-hook='echo relay:x:999:999:relay:/var/cache/relay:/usr/sbin/nologin >>"$$1"/etc/passwd' \
		--customize-hook='echo relay:x:999: >>"$$1"/etc/group' \
		--customize-hook='install -d -o 999 -g 999 "$$1"/var/cache/relay' \
		bookworm build/image-base.tar
	podman import build/image-base.tar $(IMAGE_BASE)
	rm build/image-base.tar
	podman build --pull=never --build-arg BASE=$(IMAGE_BASE) \
		-t relay:$(VERSION) -t relay:latest -f Containerfile .
	@podman image inspect --format '{{.Size}}' relay:$(VERSION) | \
		awk '{ printf "relay:$(VERSION): %.1f MB\n", $$1 / 1e6 }'

clean:
	rm -rf build bin

.PHONY: all unit check check-valgrind conformance deb deps deps-package demo \
	image install clean
.SECONDARY: $(LIB_OBJS)
