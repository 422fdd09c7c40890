#!/usr/bin/env bash
# Runs every fuzz target (issue 19) for a fixed time each: scripts/fuzz.sh [SECONDS] (default
# 60). The targets are ordinary tests (proptest through crates/husk-fuzz) that `cargo test` runs
# for 2 s each as CI's short pass; here they run one at a time, for SECONDS each, in a release-
# like optimised build so more inputs fit in the time. A panic prints the shrunk input: make it a
# regression test next to the target. Run as root: the tar layer target makes device nodes and
# chowns as an image's layers do.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
export HUSK_FUZZ_SECS=$secs
log=target/fuzz.log
: >"$log"
run() {
  # --test-threads=1: each target gets the CPU time it is given; --nocapture: the case counts.
  HUSK_FUZZ_SECS=$secs cargo test --locked --profile fuzz "$@" -- --test-threads=1 --nocapture \
    2>&1 | tee -a "$log" | grep -oE 'fuzz [^:]*: [0-9]+ cases in [0-9.]+s|^test result.*|^error.*|panicked.*|minimal input.*' || true
  return "${PIPESTATUS[0]}"
}
status=0
for p in husk-spec husk-cgroup husk-runtime husk-image husk-containers; do
  run -p "$p" --test fuzz || status=1
done
run -p husk --bin husk fuzz_ || status=1
echo "fuzz: $(grep -oE 'fuzz [^:]*: [0-9]+ cases' "$log" | wc -l) targets, $secs s each; $([[ $status == 0 ]] && echo 'no panics' || echo 'FAILED, see target/fuzz.log')"
exit $status
