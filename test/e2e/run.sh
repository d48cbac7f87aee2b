#!/usr/bin/env bash
# npm run test:e2e — the end-to-end suite against a real etcd, kube-apiserver
# and Vault, built from their Go modules on first use (see docs in README).
set -uo pipefail
cd "$(dirname "$0")/../.."

if ! command -v go >/dev/null 2>&1; then
  echo "e2e: skipped: no Go toolchain on PATH (needed to build etcd, kube-apiserver and Vault)"
  exit 0
fi

start=$SECONDS
if ! bin=$(bash test/e2e/build.sh | tail -n 1); then
  echo "e2e: building the test binaries failed (see above)"
  exit 1
fi
echo "e2e: binaries ready in $bin ($((SECONDS - start)) s)"
export VAULT_INJECTOR_E2E_BIN=$bin
# tap's include pattern is for unit tests; these files are named explicitly.
exec npx tap --timeout 900 --jobs 1 test/e2e/*.e2e.ts
