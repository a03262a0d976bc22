#!/usr/bin/env bash
# Runs a command in a network, IPC, UTS and mount namespace of its own, so that what the
# end-to-end suites create (CNI bridge, veths, port mappings, iptables rules, listeners, System V
# IPC objects, hostnames, network namespaces under /run/netns, CNI caches under /var/lib/cni)
# never reaches the host: loopback up, private tmpfs on /run/netns, /var/lib/cni and each
# directory of $HARDENED_PRIVATE_DIRS (space-separated, e.g. /var/lib/kubelet /var/log/pods).
# Everything goes away with the namespace; a mount point this script had to create on the host
# is removed again when it is empty.
#   [HARDENED_PRIVATE_DIRS="..."] scripts/netns-run.sh CMD ARGS...
set -euo pipefail

main() {
  local dirs="/run/netns /var/lib/cni ${HARDENED_PRIVATE_DIRS:-}" d
  if [ "${HARDENED_IN_NETNS:-}" != 1 ]; then
    # The mount points must exist to be mounted over: create the missing ones, remove them after.
    local created=() rc=0
    for d in $dirs; do
      [ -d "$d" ] || { mkdir -p "$d"; created+=("$d"); }
    done
    env HARDENED_IN_NETNS=1 HARDENED_HOST_NETNS="$(readlink /proc/self/ns/net)" \
      unshare --net --ipc --uts --mount --propagation private -- "$0" "$@" || rc=$?
    for d in "${created[@]}"; do rmdir "$d" 2>/dev/null || true; done
    return $rc
  fi
  ip link set lo up
  for d in $dirs; do mount -t tmpfs -o mode=0755 tmpfs "$d"; done
  exec "$@"
}

# One function, parsed whole before it runs: editing this file while it runs changes nothing.
main "$@"
exit $?
