#!/usr/bin/env bash
# Runs a command in a network and mount namespace of its own, so that what the end-to-end suites
# create (CNI bridge, veths, port mappings, iptables rules, listeners, network namespaces under
# /run/netns, CNI caches under /var/lib/cni) never reaches the host: loopback up, private tmpfs
# on /run/netns and /var/lib/cni. Everything goes away with the namespace.
#   scripts/netns-run.sh CMD ARGS...
set -euo pipefail
if [ "${HARDENED_IN_NETNS:-}" != 1 ]; then
  # The mount points must exist to be mounted over (empty directories on the host).
  mkdir -p /run/netns /var/lib/cni
  exec env HARDENED_IN_NETNS=1 HARDENED_HOST_NETNS="$(readlink /proc/self/ns/net)" unshare --net --mount --propagation private -- "$0" "$@"
fi
ip link set lo up
mount -t tmpfs -o mode=0755 tmpfs /run/netns
mount -t tmpfs -o mode=0755 tmpfs /var/lib/cni
exec "$@"
