#!/usr/bin/env bash
# 1000 idle detached containers alive at once (issue 14): the time to start them one after the
# other, what they cost in memory (each monitor's and each container's resident set, and the
# host's MemAvailable before and after), `husk ps` with all of them, and the time to remove them.
# Everything is removed at the end (also on failure or ^C) and checked: no monitor, no container
# process, no cgroup, no state left.
# Usage: bench/detached-1000.sh HUSK_BIN ROOTFS OUT.md   (N=1000 by default; ROOTFS: a static
# busybox root with sleep). husk-monitor must sit beside HUSK_BIN (cargo build --release does it).
# Heavy: run it alone, once; not part of bench/run.sh.
set -euo pipefail
HUSK=$1 ROOTFS=$2 OUT=$3
N=${N:-1000}
W=$(mktemp -d /tmp/husk-bench-1000.XXXXXX)
ROOT=$W/root
H() { "$HUSK" --root "$ROOT" "$@"; }
now() { date +%s%N; }
mem_avail() { awk '/^MemAvailable:/{print $2}' /proc/meminfo; }
monitors() { pgrep -f "^husk-monitor watch $ROOT-fe " || true; }
cleanup() {
  local ids
  ids=$(H ps -aq --no-trunc 2>/dev/null || true)
  [[ -n $ids ]] && xargs -n 50 "$HUSK" --root "$ROOT" rm -f <<<"$ids" >/dev/null 2>&1 || true
  rm -rf "$W" "$ROOT-fe"
}
trap cleanup EXIT
[[ -x $(dirname "$HUSK")/husk-monitor ]] || { echo "no husk-monitor beside $HUSK" >&2; exit 1; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
avail_before=$(mem_avail)
t0=$(now)
slow=0
for i in $(seq "$N"); do
  s=$(now)
  H run -d --rootfs "$ROOTFS" sleep 1000000 >/dev/null
  d=$(( ($(now) - s) / 1000000 ))
  (( d > slow )) && slow=$d
done
start_ms=$(( ($(now) - t0) / 1000000 ))
running=$(H ps -q | wc -l)
[[ $running == "$N" ]] || { echo "only $running of $N running" >&2; exit 1; }

# Resident memory: every monitor and every container process (the sleeps).
mon_rss=0 mon_anon=0 ctr_rss=0 n_mon=0
for p in $(monitors); do
  read -r rss anon < <(awk '/^VmRSS:/{r=$2} /^RssAnon:/{a=$2} END{print r, a}' "/proc/$p/status")
  mon_rss=$((mon_rss + rss)) mon_anon=$((mon_anon + anon)) n_mon=$((n_mon + 1))
done
for p in $(H ps --format '{{.Pid}}'); do
  ctr_rss=$((ctr_rss + $(awk '/^VmRSS:/{print $2}' "/proc/$p/status")))
done
avail_after=$(mem_avail)
# What the kernel charges each container's memory cgroup (its processes' pages and the kernel
# memory accounted to it), v1 or v2.
cg_bytes=0
for id in $(H ps -q --no-trunc); do
  for f in /sys/fs/cgroup/memory/husk/$id/memory.usage_in_bytes /sys/fs/cgroup/husk/$id/memory.current; do
    [[ -r $f ]] && cg_bytes=$((cg_bytes + $(cat "$f")))
  done
done

ps_ms=()
for _ in 1 2 3 4 5; do s=$(now); H ps >/dev/null; ps_ms+=($(( ($(now) - s) / 1000 ))); done
ps_med=$(printf '%s\n' "${ps_ms[@]}" | sort -n | sed -n 3p)

H ps -aq --no-trunc >"$W/ids"
t0=$(now)
xargs -n 50 "$HUSK" --root "$ROOT" rm -f <"$W/ids" >/dev/null
rm_ms=$(( ($(now) - t0) / 1000000 ))

# Nothing may be left: monitors, containers, cgroups, records.
left_mon=$(monitors | wc -l)
left_cg=$(find /sys/fs/cgroup -maxdepth 3 -type d -path '*/husk/*' 2>/dev/null | grep -cFf "$W/ids" || true)
left_rec=$(find "$ROOT-fe/containers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
left_run=$(find "$ROOT-fe/run" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)

kib() { awk -v k="$1" -v n="$2" 'BEGIN{printf "%.0f", k/n}'; }
{
  echo
  echo "## 1000 idle detached containers (bench/detached-1000.sh)"
  echo
  echo "| measure | value |"
  echo "|---|---|"
  echo "| containers started one after the other (\`run -d --rootfs DIR sleep\`), all alive at once | $N |"
  echo "| time to start them all (s) / mean per container (ms) / slowest (ms) | $(awk -v m="$start_ms" 'BEGIN{printf "%.1f", m/1000}') / $(kib "$start_ms" "$N") / $slow |"
  echo "| monitors' resident memory: total (MiB) / per monitor (KiB) / of it anonymous per monitor (KiB) | $(awk -v k="$mon_rss" 'BEGIN{printf "%.0f", k/1024}') / $(kib "$mon_rss" "$n_mon") / $(kib "$mon_anon" "$n_mon") |"
  echo "| containers' own processes (busybox sleep), resident per container (KiB) | $(kib "$ctr_rss" "$N") |"
  echo "| containers' memory cgroups (usage: their processes and the kernel memory charged to them), per container (KiB) | $(kib $((cg_bytes / 1024)) "$N") |"
  echo "| host MemAvailable drop with all $N running (MiB; per container KiB: monitor, container, namespaces, cgroup, page tables, kernel objects) | $(( (avail_before - avail_after) / 1024 )) ($(kib $((avail_before - avail_after)) "$N")) |"
  echo "| \`husk ps\` with $N running, median of 5 (ms) | $(awk -v u="$ps_med" 'BEGIN{printf "%.1f", u/1000}') |"
  echo "| \`rm -f\` of all of them, 50 per call (s) | $(awk -v m="$rm_ms" 'BEGIN{printf "%.1f", m/1000}') |"
  echo "| left after rm: monitors / cgroups / records / runtime state | $left_mon / $left_cg / $left_rec / $left_run |"
  echo
  echo "Load average before: $load_before (MemAvailable moves with everything else on the machine: indicative only); RSS counts each monitor's pages of the husk-monitor binary, which all monitors share through the page cache."
} >"$OUT"
cat "$OUT"
[[ $left_mon == 0 && $left_cg == 0 && $left_rec == 0 && $left_run == 0 ]]
