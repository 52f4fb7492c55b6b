#!/usr/bin/env bash
# Each public header stands alone: it compiles with nothing but -I include,
# first as C11 (pedantic, every warning an error), then as C++; and what it
# pulls in is the C library and its siblings only, never cJSON, OpenSSL or
# DPDK (those are on this machine's default include path, so compiling alone
# would not show it: the dependency list does).
#   test_lib_headers.sh CC CXX INCLUDE_DIR HEADER...
set -u
cc=$1 cxx=$2 inc=$3
shift 3
work=$(mktemp -d /tmp/djinn-test-lib-headers.XXXXXX)
trap 'rm -rf "$work"' EXIT
command -v "$cxx" >/dev/null || { echo "SKIP: no C++ compiler ($cxx)"; exit 77; }
status=0
for header in "$@"; do
	ok=1
	name=djinn/$(basename "$header")
	printf '#include "%s"\n#include "%s"\nint main(void) { return 0; }\n' "$name" "$name" \
		>"$work/alone.c"
	# Included twice: the include guard holds.
	if ! "$cc" -std=c11 -pedantic-errors -Wall -Wextra -Werror -I "$inc" -c "$work/alone.c" \
		-o "$work/alone.o" 2>"$work/c.log"; then
		echo "FAIL: $name does not compile alone as C11:"; cat "$work/c.log"; ok=0
	fi
	sed 's/(void)/()/' "$work/alone.c" >"$work/alone.cpp"
	if ! "$cxx" -std=c++11 -pedantic-errors -Wall -Wextra -Werror -I "$inc" -c "$work/alone.cpp" \
		-o "$work/alone.o" 2>"$work/cxx.log"; then
		echo "FAIL: $name does not compile alone as C++:"; cat "$work/cxx.log"; ok=0
	fi
	# Every header it reads: ours under $inc, or the C library's.
	deps=$("$cc" -std=c11 -I "$inc" -M "$work/alone.c" | tr -d '\\' | tr ' ' '\n' | grep '\.h$')
	bad=$(echo "$deps" | grep -Ei 'cjson|openssl|rte_|dpdk|cuda' || true)
	if [ -n "$bad" ]; then
		echo "FAIL: $name pulls in $bad"; ok=0
	fi
	own=$(echo "$deps" | grep -v '^/usr/' | grep -v "^$inc/djinn/" || true)
	if [ -n "$own" ]; then
		echo "FAIL: $name reads headers outside include/djinn: $own"; ok=0
	fi
	if [ $ok = 1 ]; then
		echo "ok: $name (C11, C++; reads $(echo "$deps" | grep -c "^$inc/djinn/") of ours)"
	else
		status=1
	fi
done
[ $status -eq 0 ] && echo "PASS: lib_headers"
exit $status
