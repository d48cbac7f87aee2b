#!/usr/bin/env bash
# npm run image:test — builds the unmodified Dockerfile with buildah and runs
# the image with podman (runc): non-root, read-only root filesystem, a review
# served over TLS, SIGTERM in every state (test/image/image.e2e.ts).
#
# Installs what it needs (Debian: podman, buildah, runc, mmdebstrap) and
# builds local stand-ins for the base images when they cannot be pulled
# (test/image/base.sh, cached in ~/.cache/vault-injector-image).
# Exit 0: all checks passed; 1: a check failed; 3: containers cannot run on
# this machine (said on the last line, "image: NOT RUN: why").
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
source test/lib/summary.sh
CACHE=${VAULT_INJECTOR_IMAGE_CACHE:-$HOME/.cache/vault-injector-image}
export VAULT_INJECTOR_IMAGE_CACHE=$CACHE
IMAGE=${VAULT_INJECTOR_IMAGE:-localhost/vault-injector:test}

not_run() { echo "image: NOT RUN: $*"; exit 3; }
failed() { echo "image: $*"; echo "# { total: 1, pass: 0, fail: 1 }"; exit 1; }

# 1. Tools. Rootful podman: rootless would need subordinate id ranges set up
# for the user, which a CI machine cannot be assumed to have.
[ "$(id -u)" -eq 0 ] || not_run "needs root (rootful podman and mmdebstrap --mode=root); running as $(id -un)"
missing=()
for tool in podman buildah runc mmdebstrap; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || not_run "missing ${missing[*]} and no apt-get to install them"
  echo "image: installing ${missing[*]} (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman buildah runc mmdebstrap uidmap; } >/tmp/image-test-apt.log 2>&1 \
    || not_run "apt-get could not install podman, buildah, runc, mmdebstrap (log: /tmp/image-test-apt.log)"
fi

# 2. Configuration, ours only (no /etc/containers change): runc with cgroupfs
# (no systemd in a CI container), raised ulimits (the sandbox's defaults are
# below what runc asks for), overlay storage in the cache folder.
mkdir -p "$CACHE"
cat >"$CACHE/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat >"$CACHE/storage.conf" <<EOF
[storage]
driver = "${VAULT_INJECTOR_IMAGE_STORAGE_DRIVER:-overlay}"
graphroot = "$CACHE/storage"
runroot = "${TMPDIR:-/tmp}/vault-injector-image-run"
EOF
export CONTAINERS_CONF=$CACHE/containers.conf CONTAINERS_STORAGE_CONF=$CACHE/storage.conf
podman info >/dev/null 2>/tmp/image-test-info.log || not_run "podman does not start here: $(tail -n 1 /tmp/image-test-info.log)"

# 3. The base images, as the Dockerfile names them without their digests.
node_base=$(sed -n 's/^ARG NODE_IMAGE=//p' Dockerfile | sed 's/@.*//')
runtime_base=$(sed -n 's/^ARG RUNTIME_IMAGE=//p' Dockerfile | sed 's/@.*//')
[ -n "$node_base" ] && [ -n "$runtime_base" ] || failed "the Dockerfile has no ARG NODE_IMAGE / RUNTIME_IMAGE"
bash test/image/base.sh "$node_base" "$runtime_base" || failed "building the stand-in base images failed (above)"
podman run --rm --network none "$runtime_base" true 2>/tmp/image-test-run.log \
  || not_run "containers cannot run here: $(tail -n 1 /tmp/image-test-run.log)"

# 4. The unmodified Dockerfile.
version=$(node -p 'require("./package.json").version')
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
start=$SECONDS
buildah bud --pull=never --layers=false --quiet \
  --build-arg NODE_IMAGE="$node_base" --build-arg RUNTIME_IMAGE="$runtime_base" \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  -t "$IMAGE" "$ROOT" >/tmp/image-test-build.log 2>&1 || { tail -n 30 /tmp/image-test-build.log; failed "buildah bud failed"; }
podman image prune -f >/dev/null 2>&1 || true
size_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
compressed_bytes=$(podman save --quiet --format oci-archive "$IMAGE" | gzip -1 | wc -c)
echo "image: built $IMAGE in $((SECONDS - start)) s: $((size_bytes / 1000000)) MB unpacked, about $((compressed_bytes / 1000000)) MB compressed (on the stand-in base)"

# 5. The checks. The summary is repeated with every count so the last line
# always has the same shape (test/lib/summary.sh, as test/e2e/run.sh).
# tap's runner is rebuilt for the project's plugin set (no TypeScript plugin:
# Node strips the types), as `npm test` does.
npx tap build >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
VAULT_INJECTOR_IMAGE=$IMAGE npx tap --timeout 300 --jobs 1 --disable-coverage test/image/image.e2e.ts 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
tap_summary "$log" "$status"
exit "$status"
