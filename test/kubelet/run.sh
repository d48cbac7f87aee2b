#!/usr/bin/env bash
# npm run test:kubelet: injected pods run on a real node. The e2e control
# plane (etcd, kube-apiserver) plus kube-controller-manager, kube-scheduler and
# a kubelet over containerd + runc + the CNI bridge, vault-injector as the
# webhook and a real Vault with Kubernetes auth (README, "Real node").
#
# It needs root (containerd, mounts, a bridge), Go, and Debian's containerd,
# runc, mmdebstrap and CNI plugins (installed here with apt-get when missing).
# When the machine cannot run it, it says "kubelet: NOT RUN: why" on its last
# line and exits 3 (as `npm run image:test` does): it never passes silently.
# Otherwise it ends with `# { total: N, pass: N, fail: N }` like the e2e suite.
set -uo pipefail
cd "$(dirname "$0")/../.."
source test/lib/summary.sh

skip() {
  echo "kubelet: NOT RUN: $*"
  exit 3
}
# A step before the tests failed: say which, and count it as one failure.
die() {
  echo "kubelet e2e: $*"
  tap_summary /dev/null 1
  exit 1
}

[ "$(id -u)" -eq 0 ] || skip "needs root (containerd, mounts and a network bridge)"
command -v go >/dev/null 2>&1 || skip "no Go toolchain on PATH (needed to build the kubelet)"
[ -d /sys/fs/cgroup ] || skip "no cgroup filesystem"
# The node is set up for cgroup v1 (cgroupfs driver, a cgroup root made in every hierarchy).
[ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ] || skip "cgroup v2 only (the node here is set up for cgroup v1)"

need=()
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  echo "kubelet e2e: installing ${need[*]} with apt-get"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >/tmp/vault-injector-kubelet-apt.log 2>&1; then
    tail -n 20 /tmp/vault-injector-kubelet-apt.log
    skip "could not install ${need[*]} with apt-get (log above)"
  fi
fi
# A bridge is what the pods' network needs; some sandboxes refuse it.
if ! ip link add vi-probe0 type bridge 2>/dev/null; then skip "cannot create a network bridge here"; fi
ip link del vi-probe0

# One node at a time on a host: the bridge, its subnet and the cgroup root are
# fixed, and a run cleans up what an earlier, killed run left in them.
exec 9>/tmp/vault-injector-kubelet.lock
if ! flock -n 9; then
  echo "kubelet e2e: another real-node run holds /tmp/vault-injector-kubelet.lock; waiting for it (15 min at most)"
  # Going on would kill the other run's pods and delete its bridge.
  flock -w 900 9 || skip "another real-node run still holds /tmp/vault-injector-kubelet.lock after 15 min"
fi

start=$SECONDS
if ! bin=$(bash test/e2e/build.sh | tail -n 1); then
  die "building the e2e binaries failed (see above)"
fi
if ! bash test/e2e/build.sh kubelet kube-controller-manager kube-scheduler >/dev/null; then
  die "building the kubelet, kube-controller-manager or kube-scheduler failed (see above)"
fi
[ -x "$bin/vault" ] || die "no Vault binary (test/e2e/build.sh could not build it)"
echo "kubelet e2e: binaries ready in $bin ($((SECONDS - start)) s)"

# The agent image is the one the injector is configured with by default: ask it.
agent_image=$(printf '%s\n' 'apiVersion: v1' 'kind: Pod' 'metadata: {name: probe, annotations: {vault.hashicorp.com/agent-inject: "true", vault.hashicorp.com/role: r, vault.hashicorp.com/agent-inject-secret-x: secret/x}}' 'spec: {containers: [{name: app, image: app}]}' \
  | node_modules/.bin/node src/cli.ts inject -f - 2>/dev/null | sed -n 's/^ *image: *//p' | grep -v '^app$' | head -n 1 | tr -d '"')
[ -n "$agent_image" ] || die "could not read the agent image from 'vault-injector inject'"
images=$(mktemp -d)
trap 'rm -rf "$images"' EXIT
if ! bash test/kubelet/images.sh "$agent_image" "$bin/vault" "$images"; then
  die "building the images failed (see above)"
fi
echo "kubelet e2e: images ready ($((SECONDS - start)) s)"

export VAULT_INJECTOR_E2E_BIN=$bin VAULT_INJECTOR_KUBELET_IMAGES=$images VAULT_INJECTOR_AGENT_IMAGE=$agent_image
# tap runs TypeScript with the plugin set of package.json once its runner is built for it.
npx tap build >/dev/null
log=$(mktemp)
npx tap --timeout 900 --jobs 1 --disable-coverage test/kubelet/*.kubelet.ts 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
echo "kubelet e2e: done in $((SECONDS - start)) s"
tap_summary "$log" "$status"
rm -f "$log"
exit "$status"
