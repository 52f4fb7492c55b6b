#!/usr/bin/env bash
# libdjinn as a user gets it: `meson install --destdir` into a temporary
# prefix, then a program built out of tree with nothing but
#   cc prog.c $(pkg-config --cflags --libs djinn)
# (PKG_CONFIG_PATH / PKG_CONFIG_SYSROOT_DIR pointing into the destdir), run
# against a djinn-dp started here: the demo's computation over TCP, or over
# the DPDK data path (memif) through the public dj_dpdk_* API.
#   test_lib_install.sh BUILD_DIR DEMO_PROG_C DJINN_DP tcp|dpdk
set -u
build=$1 prog_src=$2 dp_bin=$3 mode=$4
work=$(mktemp -d /tmp/djinn-test-lib-install.XXXXXX)
sock=$work/dp.memif
prefix=djt-lib-$$
server=
cleanup() {
	[ -n "$server" ] && kill -INT "$server" 2>/dev/null && wait "$server" 2>/dev/null
	rm -rf "$work" "/var/run/dpdk/$prefix-s" "/var/run/dpdk/$prefix-c"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$work/server.log" ] && cat "$work/server.log"; exit 1; }
command -v pkg-config >/dev/null || { echo "SKIP: no pkg-config"; exit 77; }

dest=$work/dest
meson install -C "$build" --destdir "$dest" --no-rebuild >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log"; fail "meson install"; }
pc=$(find "$dest" -name djinn.pc | head -n 1)
[ -n "$pc" ] || fail "no djinn.pc installed"
for h in djinn.h common.h tensor.h npy.h; do
	find "$dest" -path "*/include/djinn/$h" | grep -q . || fail "public header $h not installed"
done
# Only the public headers: no module interface reaches the install.
extra=$(find "$dest" -name '*.h' ! -path '*/include/djinn/*')
[ -z "$extra" ] || fail "internal headers installed: $extra"
so=$(find "$dest" -name 'libdjinn.so.0' | head -n 1)
[ -n "$so" ] || fail "no libdjinn.so.0 installed"
find "$dest" -name libdjinn.a | grep -q . || fail "no libdjinn.a installed"
for tool in djinn djinn-dp; do
	find "$dest" -path "*/bin/$tool" | grep -q . || fail "$tool not installed"
done
libdir=$(dirname "$so")

export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$dest
flags=$(pkg-config --cflags --libs djinn) || fail "pkg-config djinn"
echo "pkg-config --cflags --libs djinn: $flags"
case "$flags" in *cjson*|*rte_*|*dpdk*|*ssl*) fail "private dependencies leak into the flags: $flags" ;; esac
cp "$prog_src" "$work/prog.c"
(cd "$work" && cc -std=c11 -Wall -Wextra -Werror prog.c $flags -lm -o prog) ||
	fail "the program does not build against the installed library"
# Static: libdjinn.a, and Libs.private for what it needs (DPDK's archives
# from the prefix djinn was built with, which a sysroot would misplace:
# the prefix is redefined instead). -ldjinn would pick the .so beside it.
if [ "$mode" = tcp ]; then
	sprefix=$(PKG_CONFIG_SYSROOT_DIR= pkg-config --variable=prefix djinn)
	sflags=$(PKG_CONFIG_SYSROOT_DIR= pkg-config --define-variable=prefix="$dest$sprefix" \
		--static --cflags --libs djinn | sed 's/-ldjinn /-l:libdjinn.a /')
	(cd "$work" && cc -std=c11 prog.c $sflags -lm -o prog-static) ||
		fail "the program does not link statically: $sflags"
	ldd "$work/prog-static" | grep -q libdjinn && fail "prog-static loads libdjinn.so"
fi
# The program finds the installed library, not the build tree's.
LD_LIBRARY_PATH=$libdir ldd "$work/prog" | grep -q "libdjinn.so.0 => $libdir/" ||
	fail "prog does not load $libdir/libdjinn.so.0: $(LD_LIBRARY_PATH=$libdir ldd "$work/prog")"

if [ "$mode" = dpdk ]; then
	"$dp_bin" --vdev "net_memif0,role=server,socket=$sock,socket-abstract=no,bsize=9216" \
		--file-prefix "$prefix-s" --no-huge -m 512 \
		-- --ctl-port 0 --stats-interval 0 --dp-idle-sleep-us 20 >"$work/server.log" 2>&1 &
else
	"$dp_bin" -- --no-dpdk --ctl-port 0 --stats-interval 0 >"$work/server.log" 2>&1 &
fi
server=$!
for _ in $(seq 150); do
	grep -q "control plane: listening" "$work/server.log" && break
	kill -0 "$server" 2>/dev/null || fail "server died"
	sleep 0.1
done
port=$(sed -n 's/.*control plane: listening on [0-9.]*:\([0-9]*\).*/\1/p' "$work/server.log")
[ -n "$port" ] || fail "server not up"

if [ "$mode" = dpdk ]; then
	grep -q "data plane: port" "$work/server.log" || fail "server has no data plane"
	out=$(LD_LIBRARY_PATH=$libdir "$work/prog" \
		--vdev "net_memif0,role=client,socket=$sock,socket-abstract=no,bsize=9216" \
		--file-prefix "$prefix-c" --no-huge -m 512 -- "$port" dpdk 2>&1)
else
	out=$(LD_LIBRARY_PATH=$libdir "$work/prog" "$port" tcp 2>&1)
fi
rc=$?
echo "$out"
[ $rc -eq 0 ] || fail "prog exited $rc"
if [ "$mode" = tcp ]; then
	sout=$("$work/prog-static" "$port" tcp 2>&1) || fail "prog-static failed: $sout"
	echo "$sout" | grep -qw MATCH || fail "prog-static: no MATCH: $sout"
fi
echo "$out" | grep -q "path $mode" || fail "prog did not use the $mode path"
echo "$out" | grep -qw MATCH || fail "no MATCH"
kill -INT "$server"; wait "$server"; rc=$?; server=
[ $rc -eq 0 ] || fail "server exit $rc on SIGINT"
echo "PASS: lib_install_$mode"
