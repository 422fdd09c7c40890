#!/usr/bin/env bash
# Detached front-end containers (issue 14), side by side with podman on the same rootfs:
#   `husk run -d --rootfs DIR sleep` until the id is printed vs `podman run -d --rootfs DIR sleep`,
#   the resident memory of husk's monitor vs conmon's (same container, idle),
#   `husk ps` with 100 running containers.
# Usage: bench/detached.sh HUSK_BIN ROOTFS OUT.md (ROOTFS: a static busybox root with sleep).
# Optional in bench/run.sh (BENCH_DETACHED=1): it starts 100+ containers.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
HUSK=$1 ROOTFS=$2 OUT=$3
W=$(mktemp -d /tmp/husk-bench-detached.XXXXXX)
ROOT=$W/root
N=${DETACHED_RUNS:-10}
cleanup() {
  for id in $("$HUSK" --root "$ROOT" ps -aq --no-trunc 2>/dev/null); do "$HUSK" --root "$ROOT" rm -f "$id" >/dev/null 2>&1 || true; done
  [[ -n ${PODMAN:-} ]] && timeout 120 podman rm -a -f -t 0 >/dev/null 2>&1 || true
  rm -rf "$W" "$ROOT-fe"
}
trap cleanup EXIT
ms() { /usr/bin/python3 -c 'import sys,statistics; v=sorted(float(x) for x in sys.argv[1:]); print(f"{statistics.median(v):.1f}")' "$@"; }
now() { date +%s%N; }
rss() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

# Interleaved, one husk run then one podman run, so a change in the shared machine's load
# falls on both alike.
if command -v podman >/dev/null; then
  PODMAN=1
  podman_conf "$W/containers.conf"
  export CONTAINERS_CONF=$W/containers.conf
fi
h=() p=() conmon_rss=n/a
load0=$(cut -d' ' -f1 /proc/loadavg)
for _ in $(seq "$N"); do
  t=$(now); "$HUSK" --root "$ROOT" run -d --rootfs "$ROOTFS" sleep 1000 >/dev/null; h+=("$(( ($(now) - t) / 1000 ))e-3")
  if [[ -n ${PODMAN:-} ]]; then
    t=$(now); podman run -d --network none --rootfs "$ROOTFS" sleep 1000 >/dev/null; p+=("$(( ($(now) - t) / 1000 ))e-3")
  fi
done
load1=$(cut -d' ' -f1 /proc/loadavg)
mon=$(pgrep -f "husk-monitor watch $ROOT-fe" | head -1)
husk_rss=$(rss "$mon")
[[ -n ${PODMAN:-} ]] && conmon_rss=$(rss "$(pgrep -x conmon | head -1)")

for _ in $(seq $((100 - N))); do "$HUSK" --root "$ROOT" run -d --rootfs "$ROOTFS" sleep 1000 >/dev/null; done
s=()
load2=$(cut -d' ' -f1 /proc/loadavg)
for _ in $(seq 20); do t=$(now); "$HUSK" --root "$ROOT" ps >/dev/null; s+=("$(( ($(now) - t) / 1000 ))e-3"); done

{
  echo
  echo "## Detached containers (bench/detached.sh)"
  echo
  echo "| measure | husk | podman | ratio |"
  echo "|---|---|---|---|"
  hm=$(ms "${h[@]}"); pm=n/a; [[ ${#p[@]} -gt 0 ]] && pm=$(ms "${p[@]}")
  echo "| \`run -d --rootfs DIR sleep 1000\` until the id is printed, median of $N interleaved (ms; load $load0-$load1) | $hm | $pm | $( [[ $pm != n/a ]] && /usr/bin/python3 -c "print(f'{$hm/$pm:.3f}x')" || echo n/a) |"
  echo "| resident memory of the idle monitor: husk-monitor vs conmon (VmRSS, KiB) | $husk_rss | $conmon_rss | $( [[ $conmon_rss != n/a ]] && /usr/bin/python3 -c "print(f'{$husk_rss/$conmon_rss:.2f}x')" || echo n/a) |"
  echo "| \`husk ps\` with 100 running containers, median of 20 (ms; load $load2) | $(ms "${s[@]}") | | |"
} >"$OUT"
cat "$OUT"
