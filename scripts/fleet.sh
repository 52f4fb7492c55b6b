#!/usr/bin/env bash
# A fleet on one machine (root): N server namespaces and a client namespace,
# each joined by a veth pair to one Linux bridge, as through a switch. The
# bridge lives in a namespace of its own (NAME-sw), which also holds etcd's
# address, so nothing of the host's networking (its firewall included) is
# touched. Every member reaches every other through its one port: the
# control plane over the kernel's TCP (10.77.0.0/24), the data plane with
# DPDK's net_af_packet on the same veth (10.78.0.0/24, addresses the kernel
# does not have, so it leaves those frames alone).
#
#   scripts/fleet.sh up N [NAME] [MTU]   default NAME djf, MTU 1500
#   scripts/fleet.sh down [NAME]
#   scripts/fleet.sh env N [NAME]        the layout as shell variables
#   scripts/fleet.sh start N [NAME] [BUILD]  up, etcd in NAME-sw, N djinn-dp
#                                        (af_packet), then `djinn fleet` from
#                                        NAME-c; stop with `down`
#
# Layout: server i in namespace NAME-s$i, veth NAME-v$i (its end) and
# NAME-p$i (the bridge's), control 10.77.0.$((i+1)), data plane
# 10.78.0.$((i+1)); client NAME-c on NAME-vc, 10.77.0.100; bridge NAME-br
# with 10.77.0.254 (etcd: http://10.77.0.254:2379 in `start`).
set -euo pipefail
cmd=${1:-}
here=$(cd "$(dirname "$0")" && pwd)

usage() { sed -n '2,24p' "$0" >&2; exit 2; }
need_root() { [ "$(id -u)" = 0 ] || { echo "fleet.sh: needs root" >&2; exit 1; }; }

up() {
	local n=$1 name=$2 mtu=$3 sw="$2-sw" br="$2-br"
	case $n in ''|*[!0-9]*) usage ;; esac
	[ "$n" -ge 1 ] && [ "$n" -le 90 ] || { echo "fleet.sh: N is 1..90" >&2; exit 2; }
	[ ${#name} -le 10 ] || { echo "fleet.sh: NAME is at most 10 characters" >&2; exit 2; }
	if ip netns list | grep -q "^$sw\b"; then
		echo "fleet.sh: $sw exists: run 'fleet.sh down $name' first" >&2
		exit 1
	fi
	ip netns add "$sw"
	ip -n "$sw" link set lo up
	ip -n "$sw" link add "$br" type bridge
	ip -n "$sw" link set "$br" mtu "$mtu" up
	ip -n "$sw" addr add 10.77.0.254/24 dev "$br"
	join() { # namespace, its veth, the bridge's veth, control address
		ip netns add "$1"
		ip -n "$1" link set lo up
		ip link add "$2" mtu "$mtu" type veth peer name "$3" mtu "$mtu"
		ip link set "$2" netns "$1"
		ip link set "$3" netns "$sw"
		ip -n "$sw" link set "$3" master "$br" up
		ip -n "$1" link set "$2" up
		ip -n "$1" addr add "$4/24" dev "$2"
	}
	for i in $(seq 0 $((n - 1))); do
		join "$name-s$i" "$name-v$i" "$name-p$i" "10.77.0.$((i + 1))"
	done
	join "$name-c" "$name-vc" "$name-pc" 10.77.0.100
	echo "fleet.sh: $n servers ($name-s0..$name-s$((n - 1)), 10.77.0.1..$n, data plane" \
		"10.78.0.1..$n), client $name-c (10.77.0.100), bridge $name-br in $sw" \
		"(10.77.0.254), MTU $mtu"
}

down() {
	local name=$1
	for ns in $(ip netns list | awk '{print $1}' | grep "^$name-\(s[0-9]*\|c\|sw\)$" || true); do
		# Processes still inside would keep the namespace's devices.
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
	echo "fleet.sh: $name removed"
}

env_of() {
	local n=$1 name=$2
	echo "FLEET_NAME=$name FLEET_SW=$name-sw FLEET_CLIENT=$name-c FLEET_ETCD_IP=10.77.0.254"
	for i in $(seq 0 $((n - 1))); do
		echo "FLEET_S$i=$name-s$i FLEET_V$i=$name-v$i FLEET_CTL$i=10.77.0.$((i + 1))" \
			"FLEET_DP$i=10.78.0.$((i + 1))"
	done
}

# A demonstration: etcd and N servers, then the client's view.
start() {
	local n=$1 name=$2 build=$3 top members=
	top=$(dirname "$here")
	up "$n" "$name" 1500
	local work="/tmp/$name-fleet"
	mkdir -p "$work"
	printf '%s-fleet-token\n' "$name" >"$work/token"
	ip netns exec "$name-sw" etcd --name "$name" --data-dir "$work/etcd" \
		--listen-client-urls http://10.77.0.254:2379 \
		--advertise-client-urls http://10.77.0.254:2379 \
		--listen-peer-urls http://10.77.0.254:2380 \
		--initial-advertise-peer-urls http://10.77.0.254:2380 \
		--initial-cluster "$name=http://10.77.0.254:2380" >"$work/etcd.log" 2>&1 &
	sleep 2
	for i in $(seq 0 $((n - 1))); do
		ip netns exec "$name-s$i" "$top/$build/apps/djinn-dp" -l 0,1 --no-pci --no-huge -m 512 \
			--vdev "net_af_packet0,iface=$name-v$i,qpairs=1" -- \
			--listen "10.77.0.$((i + 1))" --dp-ip "10.78.0.$((i + 1))" --dp-frame-size 1514 \
			--dp-idle-sleep-us 20 --gpu none --stats-interval 0 \
			--fleet-etcd http://10.77.0.254:2379 --fleet-token-file "$work/token" \
			>"$work/s$i.log" 2>&1 &
	done
	sleep 4
	ip netns exec "$name-c" "$top/$build/apps/djinn" fleet --fleet-etcd http://10.77.0.254:2379
	echo "fleet.sh: logs in $work; 'ip netns exec $name-c $build/apps/djinn fleet move" \
		"--fleet-etcd http://10.77.0.254:2379 --from '#0' --to '#1' --size 1048576'"
}

case "$cmd" in
up) need_root; up "${2:-}" "${3:-djf}" "${4:-1500}" ;;
down) need_root; down "${2:-djf}" ;;
env) env_of "${2:?N}" "${3:-djf}" ;;
start) need_root; start "${2:?N}" "${3:-djf}" "${4:-build}" ;;
*) usage ;;
esac
