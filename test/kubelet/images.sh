#!/usr/bin/env bash
# Builds the container images the real-node test runs, as docker-archive files
# that `ctr images import` loads into containerd. Nothing can be pulled here,
# so each is made locally:
#   pause   registry.k8s.io/pause:3.10 stand-in: pause.c, statically linked
#   base    a Debian bookworm minbase root filesystem from mmdebstrap
#   agent   base + the Vault binary the e2e build made, tagged as the agent
#           image the injector is configured with (first argument)
#   app     base, tagged vault-injector.dev/e2e-app:1
# Usage: images.sh AGENT_IMAGE VAULT_BINARY OUT_DIR
# The Debian root filesystem is cached (it takes minutes); the archives are
# rebuilt when their inputs change. Prints nothing but progress on stderr.
set -euo pipefail

agent_image=$1 vault_bin=$2 out=$3
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VAULT_INJECTOR_E2E_CACHE:-$HOME/.cache/vault-injector-e2e}/images
mkdir -p "$CACHE" "$out"
log() { echo "[kubelet images] $*" >&2; }

rootfs=$CACHE/debian-bookworm-minbase.tar
if [ ! -s "$rootfs" ]; then
  log "building a Debian root filesystem with mmdebstrap (a few minutes, once)"
  mmdebstrap --quiet --variant=minbase bookworm "$rootfs.tmp" >&2
  mv "$rootfs.tmp" "$rootfs"
fi

sha() { sha256sum "$1" | cut -d' ' -f1; }

# archive NAME:TAG OUT CONFIG_JSON LAYER...: a docker-archive (manifest.json,
# one config, uncompressed layers), the format `ctr images import` reads.
archive() {
  local ref=$1 file=$2 config=$3; shift 3
  local stage diff_ids="" layers="" layer id
  stage=$(mktemp -d)
  for layer in "$@"; do
    id=$(sha "$layer")
    ln "$layer" "$stage/$id.tar" 2>/dev/null || cp "$layer" "$stage/$id.tar"
    diff_ids+="${diff_ids:+,}\"sha256:$id\""
    layers+="${layers:+,}\"$id.tar\""
  done
  printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":[%s]}}' "$config" "$diff_ids" > "$stage/config.json"
  id=$(sha "$stage/config.json")
  mv "$stage/config.json" "$stage/$id.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":[%s]}]' "$id" "$ref" "$layers" > "$stage/manifest.json"
  (cd "$stage" && tar --owner=0 --group=0 -cf "$file.tmp" -- *)
  mv "$file.tmp" "$file"
  rm -rf "$stage"
  log "$ref -> $file"
}

# One-file layers, owned by root, with a fixed date so the digest is stable.
layer_of() { # out dir path...
  local layer=$1 dir=$2; shift 2
  tar --owner=0 --group=0 --mtime='2026-01-01' --sort=name -cf "$layer" -C "$dir" "$@"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/pause"
gcc -static -Os -o "$work/pause/pause" "$HERE/pause.c"
layer_of "$work/pause.tar" "$work/pause" pause
archive registry.k8s.io/pause:3.10 "$out/pause.tar" '{"Entrypoint":["/pause"],"User":"65535:65535"}' "$work/pause.tar"

# Debian's /bin is a link to usr/bin: the binary goes to usr/bin.
mkdir -p "$work/vault/usr/bin"
cp "$vault_bin" "$work/vault/usr/bin/vault"
layer_of "$work/vault.tar" "$work/vault" usr/bin/vault
path='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"'
archive "$agent_image" "$out/agent.tar" "{\"Env\":[$path],\"Cmd\":[\"vault\"]}" "$rootfs" "$work/vault.tar"
archive vault-injector.dev/e2e-app:1 "$out/app.tar" "{\"Env\":[$path],\"Cmd\":[\"/bin/sh\"]}" "$rootfs"
