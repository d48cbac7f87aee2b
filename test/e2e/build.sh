#!/usr/bin/env bash
# Builds the real programs the end-to-end tests run — etcd, kube-apiserver,
# Vault, vault-k8s, Helm, kubeconform and kustomize — from the Go modules pinned in test/e2e/go/<name>/go.mod (+ go.sum),
# through the Go module proxy, into a cache kept between runs:
#   ${VAULT_INJECTOR_E2E_CACHE:-~/.cache/vault-injector-e2e}/
#     builds/<name>-<version>-<hash of the folder's files>/<name>   one per version
#     bin/<name> -> the build in use                            what the tests run
#     gomod/, gocache/                                           Go's module and build caches
# Prints the bin directory on its last line. etcd and kube-apiserver must
# build. Vault is optional: if it does not, the Vault Agent scenario is skipped
# with the reason. vault-k8s (HashiCorp's injector handler, test/e2e/go/vault-k8s/
# main.go, a main package of our own instead of a `tool` line) is built too; if
# it does not build, the other scenarios still run and the differential test
# fails, saying so. csi-driver (the CSI driver's side of a provider mount,
# test/e2e/go/csi-driver/main.go) is optional: without it the CSI scenario is
# skipped with the reason. secrets-store-csi-driver (the driver's own binary,
# test/e2e/go/secrets-store-csi-driver, with monis.app/mlog replaced by ./mlog)
# is optional too. Helm, kubeconform and kustomize (the chart and
# kustomize install tests) are built too: without them those tests fail,
# saying so. A compile error is remembered per go.mod (no 10-minute retry
# on every run); a download error is not.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VAULT_INJECTOR_E2E_CACHE:-$HOME/.cache/vault-injector-e2e}
BIN=$CACHE/bin
# Everything Go downloads or compiles stays in the cache folder: removing it
# gives a cold build, and CI can keep it as one directory.
export GOMODCACHE=$CACHE/gomod
export GOCACHE=$CACHE/gocache
# readonly: the committed go.sum pins every dependency; a missing entry is an
# error instead of a silent change to the checkout.
export GOFLAGS='-mod=readonly -buildvcs=false'
export CGO_ENABLED=0
mkdir -p "$BIN" "$CACHE/builds"

log() { echo "[e2e build] $*" >&2; }

# Extra linker flags per program.
ldflags_for() { # name version
  case $1 in
    # /version reports the release instead of v0.0.0-master.
    kube-apiserver) echo "-X k8s.io/component-base/version.gitVersion=$2" ;;
  esac
}

build() { # name [module folder under go/, when several programs share one]
  local name=$1 dir=$HERE/go/${2:-$1}
  local tool version hash key out buildlog start
  # The go.mod's tool; where a folder pins several, the one named like the program.
  tool=$(awk '/^tool \(/{block=1; next} block && /^\)/{block=0} block{print $1} /^tool [^(]/{print $2}' "$dir/go.mod")
  [ "$(echo "$tool" | wc -l)" -le 1 ] || tool=$(echo "$tool" | grep -E "(^|/)$name\$" | head -n 1)
  if [ -n "$tool" ]; then
    # The version of the module that holds the main package, as go.mod pins it.
    version=$(cd "$dir" && go list -f '{{.Module.Version}}' "$tool") || { log "$name: cannot resolve $tool"; return 1; }
  else
    # Our own main package (main.go beside go.mod): named after the module it
    # wraps, given by a "// wraps: <module>" line in go.mod, else github.com/hashicorp/<name>.
    tool=.
    local wraps
    wraps=$(sed -n 's|^// wraps: ||p' "$dir/go.mod")
    wraps=${wraps:-github.com/hashicorp/$name}
    version=$(cd "$dir" && go list -m -f '{{.Version}}' "$wraps") || { log "$name: cannot resolve $wraps"; return 1; }
  fi
  # Every file of the folder and its subfolders (go.mod, go.sum, any main.go, a
  # replaced module's sources): a changed source is a new build. For the
  # tool-only folders this is the hash of go.mod+go.sum.
  hash=$(find "$dir" -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)
  key=$name-$version-$hash
  out=$CACHE/builds/$key/$name
  if [ -x "$out" ]; then
    log "$name $version cached ($out)"
    ln -sfn "$out" "$BIN/$name"
    return 0
  fi
  # A compile error does not go away by retrying the same go.mod.
  if [ -f "$CACHE/builds/$key.failed" ]; then
    log "$name $version failed to compile before (remove $CACHE/builds/$key.failed to retry):"
    sed 's/^/    /' "$CACHE/builds/$key.failed" >&2
    rm -f "$BIN/$name"
    return 1
  fi
  mkdir -p "$(dirname "$out")"
  start=$SECONDS
  log "$name $version: downloading the modules it needs"
  # pipefail: the pipeline fails when go fails.
  if ! (cd "$dir" && go list -deps "$tool" >/dev/null) 2>&1 | sed 's/^/    /' >&2; then
    log "$name: downloading failed (not remembered: it may be the network)"
    rm -f "$BIN/$name"
    return 1
  fi
  log "$name: downloaded in $((SECONDS - start)) s; building $tool (several minutes on 2 cores)"
  start=$SECONDS
  buildlog=$(mktemp)
  if (cd "$dir" && go build -trimpath -ldflags "-s -w $(ldflags_for "$name" "$version")" -o "$out.tmp" "$tool") 2>&1 | tee "$buildlog" >&2; then
    mv "$out.tmp" "$out"
    echo "built $(date -u +%FT%TZ) in $((SECONDS - start)) s with $(go env GOVERSION)" > "$CACHE/builds/$key/build.txt"
    log "$name: built in $((SECONDS - start)) s"
    ln -sfn "$out" "$BIN/$name"
    rm -f "$buildlog"
    return 0
  fi
  tail -n 30 "$buildlog" > "$CACHE/builds/$key.failed"
  rm -f "$buildlog" "$out.tmp" "$BIN/$name"
  log "$name $version did not compile (the last lines are kept in $CACHE/builds/$key.failed)"
  return 1
}

# `build.sh <name>...` builds only those (each must build), e.g. the benchmark
# needs only vault-k8s. The node's programs for test/kubelet share one go.mod
# (test/e2e/go/kubelet: the same k8s.io/kubernetes as kube-apiserver, so most
# packages come from the build cache).
if [ $# -gt 0 ]; then
  for name in "$@"; do
    case $name in
      kubelet|kube-controller-manager|kube-scheduler) build "$name" kubelet ;;
      *) build "$name" ;;
    esac
  done
  echo "$BIN"
  exit 0
fi

build etcd
build kube-apiserver
if ! build vault; then
  log "vault: the Vault Agent scenario will be skipped"
fi
if ! build vault-k8s; then
  log "vault-k8s: the differential test against vault-k8s will fail (it needs this binary)"
fi
# The Secrets Store CSI Driver's side of a provider mount, from the driver's
# own module (test/e2e/go/csi-driver/main.go).
if ! build csi-driver; then
  log "csi-driver: the CSI provider scenario will be skipped"
fi
# The driver's own binary (test/e2e/go/secrets-store-csi-driver: monis.app/mlog,
# which the module proxy does not serve, replaced by a small module of ours).
if ! build secrets-store-csi-driver; then
  log "secrets-store-csi-driver: the real driver's NodePublishVolume check will be skipped"
fi
for name in helm kubeconform kustomize; do
  if ! build "$name"; then
    log "$name: the install tests that need it will fail (they need this binary)"
  fi
done
echo "$BIN"
