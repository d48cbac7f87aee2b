#!/usr/bin/env bash
# npm run test:e2e — the end-to-end suite against a real etcd, kube-apiserver
# and Vault, built from their Go modules on first use (README, "End-to-end tests").
# Ends with tap's summary line, `# { total: N, pass: N, fail: N }`, which
# .ci/run adds to its count; exits non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/../.."

if ! command -v go >/dev/null 2>&1; then
  echo "e2e: SKIPPED: no Go toolchain on PATH (needed to build etcd, kube-apiserver and Vault; see the README, \"End-to-end tests\")"
  exit 0
fi

start=$SECONDS
if ! bin=$(bash test/e2e/build.sh | tail -n 1); then
  echo "e2e: building the test binaries failed (see above)"
  echo "# { total: 1, pass: 0, fail: 1 }"
  exit 1
fi
echo "e2e: binaries ready in $bin ($((SECONDS - start)) s)"
export VAULT_INJECTOR_E2E_BIN=$bin

# tap's include pattern (package.json) is the unit suite's: these files are
# named explicitly (all, or those given: `bash test/e2e/run.sh test/e2e/x.e2e.ts`).
# One at a time: each starts its own control plane.
files=("$@")
[ $# -gt 0 ] || files=(test/e2e/*.e2e.ts)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
npx tap --timeout 900 --jobs 1 --disable-coverage "${files[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# The summary again with every count (test/lib/summary.sh): the last line
# always has the same shape.
source test/lib/summary.sh
tap_summary "$log" "$status"
exit "$status"
