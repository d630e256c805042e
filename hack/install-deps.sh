#!/usr/bin/env bash
# Installs the Debian packages the local stack runs (idempotent, quick when
# everything is there). Go modules come through the Go module proxy.
set -euo pipefail

packages=(
  etcd-server                 # the workload cluster's etcd
  libseccomp-dev              # runc, built from third_party/runc, links libseccomp
  containernetworking-plugins # CNI ptp + host-local for pods
  iptables ipset              # the nodes' packet filters (kube-router's network policies)
  docker-registry             # the local OCI registry
  debootstrap                 # the Debian base image for script steps
  busybox-static              # the busybox shell image
  gcc libc6-dev               # the static pause binary of the sandbox image; runc's and Gitea's cgo
  git                         # the forge (Gitea runs git) and the git resolver's clone mode
  iproute2                    # the stack's bridge and the nodes' network namespaces
  postgresql-15               # Tekton Results' database (the stack starts its own)
  patch                       # the patches kcp's build applies (third_party/kcp/patches)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
# No service manager runs here and the stack starts its own processes:
# keep package scripts from starting services while installing.
policy=/usr/sbin/policy-rc.d
added_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod +x "$policy"
  added_policy=1
fi
trap '[ -n "$added_policy" ] && "${sudo_cmd[@]}" rm -f "$policy"' EXIT
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
