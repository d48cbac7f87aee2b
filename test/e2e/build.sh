#!/usr/bin/env bash
# Builds the real programs the end-to-end tests run — etcd, kube-apiserver and
# Vault — from their Go modules through the Go module proxy, into a cache kept
# between runs. Prints the bin directory on its last line.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.8}
VAULT_VERSION=${VAULT_VERSION:-v1.21.0}
# Vault v1.21.0 builds with the sdk its go.mod names (v1.21.4 does not: its in-tree sdk sits between the
# published v0.20.0 and v0.21.0). Kept explicit so a version bump can pin it.
VAULT_SDK_VERSION=${VAULT_SDK_VERSION:-v0.20.0}
CACHE=${VAULT_INJECTOR_E2E_CACHE:-$HOME/.cache/vault-injector-e2e}
BIN=$CACHE/bin
export GOPATH=${GOPATH:-$CACHE/gopath}
export GOCACHE=${GOCACHE:-$CACHE/gocache}
export GOFLAGS=-mod=mod
export CGO_ENABLED=0
mkdir -p "$BIN"

log() { echo "[e2e build] $*" >&2; }

# A throwaway module that requires one program's module; kube-apiserver's
# module needs each k8s.io staging module pinned to its published v0.x twin.
build() { # name version-stamp module@version package [replace-lines]
  local name=$1 stamp=$2 mod=$3 pkg=$4 replaces=${5:-}
  if [ -x "$BIN/$name" ] && [ "$(cat "$BIN/$name.version" 2>/dev/null)" = "$stamp" ]; then
    log "$name $stamp cached"; return
  fi
  local dir; dir=$(mktemp -d)
  # Explicit && chains: `set -e` does not apply inside an `if` condition.
  (
    cd "$dir" &&
      { go mod init "e2e-build-$name" >/dev/null 2>&1; } &&
      { [ -z "$replaces" ] || printf '%s\n' "$replaces" >> go.mod; } &&
      log "$name: resolving $mod" &&
      go get "$mod" >&2 &&
      log "$name: building $pkg" &&
      start=$SECONDS &&
      go build -trimpath -ldflags='-s -w' -o "$BIN/$name" "$pkg" >&2 &&
      log "$name: built in $((SECONDS - start)) s"
  ) || { rm -rf "$dir"; return 1; }
  echo "$stamp" > "$BIN/$name.version"
  rm -rf "$dir"
}

k8s_replaces() {
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  local minor=${K8S_VERSION#v1.}
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod" | sort -u | while read -r m; do
    echo "replace $m => $m v0.$minor"
  done
}

build etcd "$ETCD_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" go.etcd.io/etcd/server/v3
build kube-apiserver "$K8S_VERSION" "k8s.io/kubernetes@$K8S_VERSION" k8s.io/kubernetes/cmd/kube-apiserver "$(k8s_replaces)"
# Vault's own go.mod points its api and sdk modules at local directories,
# which a module build cannot see: pin them to the versions it requires, or
# newer ones pulled in by plugins no longer match the server code.
vault_replaces() {
  local gomod
  gomod=$(go mod download -json "github.com/hashicorp/vault@$VAULT_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  sed -n 's#^\s*\(github.com/hashicorp/vault/\(api\|sdk\)[a-z/]*\) \(v[0-9][^ ]*\).*#\1 \3#p' "$gomod" | sort -u | while read -r m v; do
    [ "$m" = github.com/hashicorp/vault/sdk ] && v=$VAULT_SDK_VERSION
    echo "replace $m => $m $v"
  done
}
# Vault is optional: without it the Vault Agent scenario is skipped with the
# reason, and the control-plane scenarios still run.
if [ "$(cat "$BIN/vault.failed" 2>/dev/null)" = "$VAULT_VERSION" ]; then
  log "vault $VAULT_VERSION failed to build before (remove $BIN/vault.failed to retry); skipping"
elif ! build vault "$VAULT_VERSION" "github.com/hashicorp/vault@$VAULT_VERSION" github.com/hashicorp/vault "$(vault_replaces)"; then
  log "vault $VAULT_VERSION did not build from the module proxy; the Vault Agent scenario will be skipped"
  rm -f "$BIN/vault" "$BIN/vault.version"
  echo "$VAULT_VERSION" > "$BIN/vault.failed"
fi
echo "$BIN"
