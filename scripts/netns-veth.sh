#!/usr/bin/env bash
# Two network namespaces joined by a veth pair, for data-plane runs between
# real processes on net_af_packet (root). Addresses exist only inside the
# namespaces; `down` removes everything (deleting a namespace deletes its
# veth end and with it the pair).
#   scripts/netns-veth.sh up [NAME] [MTU]     default NAME djn, MTU 1500
#   scripts/netns-veth.sh down [NAME]
#   scripts/netns-veth.sh bench [NAME] [build-dir] [djinn-bench options...]
#       djinn-bench transfer between the namespaces (recv in NAME-b, send in NAME-a)
set -euo pipefail
cmd=${1:-}
name=${2:-djn}
a="$name-a" b="$name-b" va="${name}va" vb="${name}vb"
[ "$(id -u)" = 0 ] || { echo "netns-veth: needs root" >&2; exit 1; }

up() {
	local mtu=${1:-1500}
	ip netns add "$a"
	ip netns add "$b"
	ip link add "$va" type veth peer name "$vb"
	ip link set "$va" netns "$a"
	ip link set "$vb" netns "$b"
	ip -n "$a" link set "$va" mtu "$mtu" up
	ip -n "$b" link set "$vb" mtu "$mtu" up
	ip -n "$a" addr add 10.99.0.1/24 dev "$va"
	ip -n "$b" addr add 10.99.0.2/24 dev "$vb"
	echo "netns-veth: $a ($va, 10.99.0.1) <-> $b ($vb, 10.99.0.2), MTU $mtu"
}

down() {
	ip netns del "$a" 2>/dev/null || true
	ip netns del "$b" 2>/dev/null || true
	echo "netns-veth: $a and $b removed"
}

bench() {
	local builddir=${1:-build}
	shift || true
	local bin
	bin="$(cd "$(dirname "$0")/.." && pwd)/$builddir/apps/djinn-bench"
	local mtu
	mtu=$(ip -n "$a" -o link show "$va" | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
	local frame=$((mtu + 14))
	ip netns exec "$b" "$bin" -l 0,1 --main-lcore 0 --no-pci --file-prefix "${name}b" \
		--vdev "net_af_packet0,iface=$vb" -- --mode transfer --role recv --frame "$frame" "$@" &
	local recv=$!
	ip netns exec "$a" "$bin" -l 0,1 --main-lcore 1 --no-pci --file-prefix "${name}a" \
		--vdev "net_af_packet0,iface=$va" -- --mode transfer --role send --frame "$frame" "$@"
	wait "$recv"
}

case "$cmd" in
up) up "${3:-1500}" ;;
down) down ;;
bench) shift 2 || true; bench "$@" ;;
*) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
