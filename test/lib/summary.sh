# tap's closing summary, `# { total: N, pass: N, fail: N, todo: N, skip: N }`,
# read from a run's log, for every script that runs tap and reports counts
# (test/e2e/run.sh, test/image/run.sh, test/kubelet/run.sh, .ci/run).
# Sourced: `source test/lib/summary.sh` (bash). tap leaves out a zero count
# ("fail: 0"), and prints other "# { ... }" lines nowhere, but a test's own
# output can hold "fail: 3": only a line starting "# { total: N" is read.

# tap_counts LOG [STATUS]: sets TAP_TOTAL, TAP_PASS, TAP_FAIL and TAP_EXTRA
# (", todo: N, skip: N", or empty) from the last summary line in LOG; a count
# it leaves out is 0. STATUS is the exit status of what wrote LOG: when it is
# non-zero and no failure was counted (tap crashed before its summary, a build
# step failed), one failure is added, so a failed run never counts as clean.
tap_counts() {
  local log=$1 status=${2:-0} line key count
  line=$(grep -E '^# \{ total: [0-9]+' "$log" 2>/dev/null | tail -n 1)
  TAP_TOTAL=$(_tap_count "$line" total)
  TAP_PASS=$(_tap_count "$line" pass)
  TAP_FAIL=$(_tap_count "$line" fail)
  TAP_EXTRA=""
  for key in todo skip; do
    count=$(_tap_count "$line" "$key")
    [ "$count" -eq 0 ] || TAP_EXTRA="$TAP_EXTRA, $key: $count"
  done
  if [ "$status" -ne 0 ] && [ "$TAP_FAIL" -eq 0 ]; then
    TAP_FAIL=1
    TAP_TOTAL=$((TAP_TOTAL + 1))
  fi
}

# _tap_count LINE KEY: the number after "KEY: " in a summary line, or 0.
_tap_count() {
  local n
  n=$(printf '%s\n' "$1" | sed -nE "s/.*[{,] $2: ([0-9]+).*/\\1/p")
  echo "${n:-0}"
}

# tap_summary LOG [STATUS]: the summary again with every count, as the run's
# last line, so that line always has the same shape (what .ci/run reads).
tap_summary() {
  tap_counts "$@"
  echo "# { total: $TAP_TOTAL, pass: $TAP_PASS, fail: $TAP_FAIL$TAP_EXTRA }"
}
