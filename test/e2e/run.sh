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
# named explicitly. One at a time: each starts its own control plane.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
npx tap --timeout 900 --jobs 1 --disable-coverage test/e2e/*.e2e.ts 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# tap leaves out "fail: 0"; repeat its summary with every count so the last
# line always has the same shape.
summary=$(grep -E '^# \{ total: [0-9]+' "$log" | tail -n 1)
total=$(echo "$summary" | grep -Eo 'total: [0-9]+' | grep -Eo '[0-9]+' || true)
pass=$(echo "$summary" | grep -Eo 'pass: [0-9]+' | grep -Eo '[0-9]+' || true)
fail=$(echo "$summary" | grep -Eo 'fail: [0-9]+' | grep -Eo '[0-9]+' || true)
total=${total:-0}; pass=${pass:-0}; fail=${fail:-0}
if [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then
  # tap itself failed (a crash before any summary): count it.
  fail=1; total=$((total + 1))
fi
extra=$(echo "$summary" | grep -Eo '(todo|skip): [0-9]+' | sed 's/^/, /' | tr -d '\n' || true)
echo "# { total: $total, pass: $pass, fail: $fail$extra }"
exit "$status"
