#!/usr/bin/env bats
# The tree shows the layers (README.md, Layout): the programs in src/,
# the library in lib/, a folder per layer, nothing including upward.

load helpers

@test "nothing in lib/ includes a layer above its own, and every include names its layer" {
	run "$ROOT/tests/layers"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "an include upward, one without its layer and a folder of no layer are each named" {
	mkdir -p tree/lib/base tree/lib/http tree/lib/extra tree/src
	printf '#include "serve/merge.h"\n#include "base/buf.h"\n' >tree/lib/base/up.c
	printf '#include "buf.h"\n' >tree/lib/http/flat.c
	printf '#include "base/buf.h"\n' >tree/lib/extra/odd.c
	printf '#include "serve/merge.h"\n#include <stdio.h>\n' >tree/src/prog.c
	run "$ROOT/tests/layers" tree
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | wc -l)" -eq 3 ]
	[[ "$output" == *'lib/base/up.c: includes "serve/merge.h", a layer above base'* ]]
	[[ "$output" == *'lib/http/flat.c: includes "buf.h" without its layer'* ]]
	[[ "$output" == *'lib/extra/odd.c: lib/extra/ is not a layer'* ]]
}

@test "the include graph between folders goes downward only" {
	run "$ROOT/tests/layers" --graph
	[ "$status" -eq 0 ]
	echo "$output"
	# the programs use the top layer; the bottom one includes nothing
	[[ "$output" == *"src -> serve:"* ]]
	[[ "$output" != *"base -> "* ]]
	[[ "$output" == *"serve -> through:"* ]]
}
