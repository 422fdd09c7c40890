#!/usr/bin/env bash
# husk performance benchmark: husk vs runc vs crun vs the kernel floor.
#
#   bench/run.sh                      # as root, from anywhere; ~3 minutes on the 2-vCPU dev VM
#   BENCH_ITERS=400 bench/run.sh      # more iterations for run/split (default 200)
#
# Writes docs/benchmarks.md (table + method) and bench/results.json; raw samples stay in
# $BENCH_WORK (default /tmp/husk-bench): raw.tsv, strace-*.txt, hyperfine-*.json.
#
# What it does:
#  1. apt-get installs whatever is missing of: runc crun hyperfine strace busybox-static gcc python3.
#  2. cargo build --release -p husk (skip with HUSK=/path/to/husk), gcc builds bench/ilbench.c and
#     bench/floor.c into $BENCH_WORK.
#  3. Builds two bundles: rootfs = /bin/busybox (busybox-static) + a symlink per applet (not
#     `busybox` itself), empty proc dev sys tmp; config.json from `husk spec` with terminal false,
#     args ["/bin/true"], ociVersion "1.0.2-dev" (crun 1.8.1 rejects "1.3.0"); bundle-nonet is the
#     same without the network namespace.
#  4. Re-executes itself inside `unshare -m --propagation private`, with a tmpfs over
#     /sys/fs/cgroup/unified on a cgroup v1 hybrid host (crun 1.8.1 refuses hybrid hosts whose
#     unified hierarchy has controllers), for ALL runtimes, so conditions are equal. State dirs
#     (--root) are on a tmpfs there too.
#  5. Runs the interleaved harness (ilbench): run net/nonet, create/start+wait/delete, 100 sequential
#     and 100 with 8 in parallel, resources (peak RSS, page faults from wait4); strace -f -c syscall
#     counts; binary sizes; a back-to-back hyperfine cross-check of `run`; then bench/report.py.
#
# Knobs (environment): BENCH_ITERS (run/split iterations, default 200), BENCH_MANY_ITERS (batches
# of 100 containers per runtime and mode, default max(2, BENCH_ITERS/20)), BENCH_RES_ITERS (runs
# for the RSS/page-fault sample, default 10), BENCH_HF_RUNS (hyperfine runs, default 30, 0 = skip),
# BENCH_WORK, HUSK, BENCH_TIMEOUT_MS (watchdog per command, default 5000).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH_DIR")
WORK=${BENCH_WORK:-/tmp/husk-bench}
ITERS=${BENCH_ITERS:-200}
MANY_ITERS=${BENCH_MANY_ITERS:-$(( ITERS / 20 > 2 ? ITERS / 20 : 2 ))}
RES_ITERS=${BENCH_RES_ITERS:-10}
HF_RUNS=${BENCH_HF_RUNS:-30}
TIMEOUT_MS=${BENCH_TIMEOUT_MS:-5000}
export BENCH_DIR REPO WORK ITERS MANY_ITERS RES_ITERS HF_RUNS TIMEOUT_MS

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }

if [[ "${1:-}" != --inner ]]; then
  [[ $(id -u) == 0 ]] || { echo "bench/run.sh must run as root" >&2; exit 1; }

  # 1. packages
  need=()
  command -v runc >/dev/null || need+=(runc)
  command -v crun >/dev/null || need+=(crun)
  command -v hyperfine >/dev/null || need+=(hyperfine)
  command -v strace >/dev/null || need+=(strace)
  command -v gcc >/dev/null || need+=(gcc)
  command -v unshare >/dev/null || need+=(util-linux)
  [[ -x /bin/busybox ]] && /bin/busybox --list 2>/dev/null | grep -qx true || need+=(busybox-static)
  [[ -x /usr/bin/python3 ]] || need+=(python3)
  if (( ${#need[@]} )); then
    log "apt-get install ${need[*]}"
    timeout 600 apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  fi
  if ldd /bin/busybox >/dev/null 2>&1; then
    echo "/bin/busybox is dynamically linked; install busybox-static" >&2; exit 1
  fi

  # 2. builds
  mkdir -p "$WORK"
  if [[ -z "${HUSK:-}" ]]; then
    log "cargo build --release -p husk (may wait for the cargo lock)"
    "$REPO/scripts/musl-target.sh" >&2
    (cd "$REPO" && timeout 1800 cargo build --release -p husk 2>&1 | tail -n 3) >&2
    HUSK=$REPO/target/x86_64-unknown-linux-musl/release/husk
  fi
  [[ -x $HUSK ]] || { echo "no husk binary at $HUSK" >&2; exit 1; }
  HUSK=$(readlink -f "$HUSK")
  # Copy the binary so a concurrent rebuild of target/ cannot swap it mid-benchmark.
  cp "$HUSK" "$WORK/husk.bin.tmp" && mv "$WORK/husk.bin.tmp" "$WORK/husk"
  # The detached containers' resident monitor sits beside husk (bench/detached.sh measures it).
  if [[ -x $(dirname "$HUSK")/husk-monitor ]]; then
    cp "$(dirname "$HUSK")/husk-monitor" "$WORK/husk-monitor.tmp" && mv "$WORK/husk-monitor.tmp" "$WORK/husk-monitor"
  fi
  gcc -O2 -Wall -o "$WORK/ilbench" "$BENCH_DIR/ilbench.c"
  gcc -O2 -Wall -o "$WORK/floor" "$BENCH_DIR/floor.c"

  # 3. bundles
  b=$WORK/bundle
  rm -rf "$b" "$WORK/bundle-nonet"
  mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/dev" "$b/rootfs/sys" "$b/rootfs/tmp" "$WORK/bundle-nonet"
  cp /bin/busybox "$b/rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do
    [[ $a == busybox ]] || ln -s busybox "$b/rootfs/bin/$a"
  done
  timeout 10 "$WORK/husk" spec --bundle "$b"
  /usr/bin/python3 - "$b/config.json" "$WORK/bundle-nonet/config.json" <<'EOF'
import json, sys
src, nonet = sys.argv[1], sys.argv[2]
c = json.load(open(src))
c["ociVersion"] = "1.0.2-dev"
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(src, "w"), indent=2)
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
json.dump(c, open(nonet, "w"), indent=2)
EOF
  cp -a "$b/rootfs" "$WORK/bundle-nonet/rootfs"   # a copy: runc refuses a symlinked rootfs
  export HUSK_BIN=$WORK/husk HUSK_SRC=$HUSK

  log "entering a private mount namespace"
  exec timeout 3600 unshare -m --propagation private "$0" --inner
fi

# ---------------------------------------------------------------- inside the mount namespace
if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
  mount -t tmpfs -o mode=755 bench-unified /sys/fs/cgroup/unified
  CGNOTE="cgroup v1 hybrid: tmpfs over /sys/fs/cgroup/unified (all runtimes)"
elif [[ $(stat -f -c %T /sys/fs/cgroup) == cgroup2fs ]]; then
  CGNOTE="cgroup v2 (unified)"
else
  CGNOTE="cgroup v1"
fi
mkdir -p "$WORK/state"
mount -t tmpfs -o mode=700 bench-state "$WORK/state"
mkdir -p "$WORK/state/husk" "$WORK/state/runc" "$WORK/state/crun" "$WORK/state/pid"

RUNC=$(command -v runc) CRUN=$(command -v crun)
B=$WORK/bundle BN=$WORK/bundle-nonet RAW=$WORK/raw.tsv
: >"$RAW"
meta() { printf 'M\t%s\t%s\n' "$1" "$2" >>"$RAW"; }
resv() { printf 'R\t%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RAW"; }

meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
meta ncpu "$(nproc)"
meta mem "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
meta kernel "$(uname -r)"
meta os "$(. /etc/os-release && echo "$PRETTY_NAME")"
meta virt "$(systemd-detect-virt --vm 2>/dev/null || echo unknown)"
meta cgroups "$CGNOTE"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta husk_version "$("$HUSK_BIN" --version 2>&1 | head -1)"
meta husk_commit "$(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo unknown)"
meta husk_path "$HUSK_SRC"
meta runc_version "$("$RUNC" --version | head -1) ($(dpkg-query -W -f '${Version}' runc 2>/dev/null))"
meta crun_version "$("$CRUN" --version | head -1) ($(dpkg-query -W -f '${Version}' crun 2>/dev/null))"
meta busybox "$(dpkg-query -W -f '${Version}' busybox-static 2>/dev/null)"
meta iters "$ITERS"
meta many_iters "$MANY_ITERS"
meta res_iters "$RES_ITERS"
meta hf_runs "$HF_RUNS"
meta timeout_ms "$TIMEOUT_MS"

# Smoke test: one run per runtime, errors shown verbatim.
for rt in husk:"$HUSK_BIN" runc:"$RUNC" crun:"$CRUN"; do
  name=${rt%%:*} bin=${rt#*:}
  if ! out=$(timeout 10 "$bin" --root "$WORK/state/$name" run -b "$B" "smoke-$name-$$" 2>&1 </dev/null); then
    log "SMOKE FAIL: $bin --root $WORK/state/$name run -b $B smoke-$name-$$: $out"
    meta "smoke_fail_$name" "$bin --root $WORK/state/$name run -b $B smoke-$name-$$ => $out"
  fi
done

T=(-r "husk=$HUSK_BIN:$WORK/state/husk" -r "runc=$RUNC:$WORK/state/runc" -r "crun=$CRUN:$WORK/state/crun")
F=(-f "floor=$WORK/floor")
IL=("$WORK/ilbench" -o "$RAW" -t "$TIMEOUT_MS" -p "$WORK/state/pid")

log "run: $ITERS interleaved iterations x (husk runc crun floor) x (net nonet)"
"${IL[@]}" "${T[@]}" "${F[@]}" -b net="$B" -b nonet="$BN" -n "$ITERS" -w 5 run
log "split create/start/delete: $ITERS iterations"
"${IL[@]}" "${T[@]}" -b net="$B" -b nonet="$BN" -n "$ITERS" -w 3 split
log "many: 100 sequential and 100 with 8 in parallel (interleaved), $MANY_ITERS batches each"
"${IL[@]}" "${T[@]}" "${F[@]}" -b net="$B" -n "$MANY_ITERS" -w 0 -c 100 -P 1,8 many
log "resources: $RES_ITERS runs each"
"${IL[@]}" "${T[@]}" "${F[@]}" -b net="$B" -n "$RES_ITERS" -w 1 res

log "strace -f -c (3 runs each), binary sizes"
for rt in husk:"$HUSK_BIN" runc:"$RUNC" crun:"$CRUN" floor:"$WORK/floor"; do
  name=${rt%%:*} bin=${rt#*:}
  resv "$name" binary_bytes "$(stat -L -c %s "$bin")"
  resv "$name" binary_path "$bin"
  for i in 1 2 3; do
    f=$WORK/strace-$name-$i.txt
    if [[ $name == floor ]]; then
      cmd=("$bin" "$B/rootfs")
    else
      cmd=("$bin" --root "$WORK/state/$name" run -b "$B" "st-$name-$i-$$")
    fi
    if timeout 30 strace -f -c -o "$f" "${cmd[@]}" </dev/null >/dev/null 2>"$WORK/strace-$name-$i.err"; then
      calls=$(awk '$NF == "total" {print $4}' "$f")
      errors=$(awk '$NF == "total" {print (NF == 6 ? $5 : 0)}' "$f")
      procs=$(awk '$NF ~ /^(clone|clone3|fork|vfork)$/ {n += $4} END {print n + 0}' "$f")
      resv "$name" "syscalls_$i" "$calls"
      resv "$name" "syscall_errors_$i" "$errors"
      resv "$name" "forks_$i" "$procs"
    else
      meta "strace_fail_$name" "strace -f -c ${cmd[*]}: $(tr '\n' ' ' <"$WORK/strace-$name-$i.err" | head -c 500)"
    fi
  done
done

if (( HF_RUNS > 0 )); then
  log "hyperfine back-to-back cross-check of run (net), $HF_RUNS runs each"
  for rt in husk:"$HUSK_BIN" runc:"$RUNC" crun:"$CRUN"; do
    name=${rt%%:*} bin=${rt#*:}
    timeout 600 hyperfine -N -w 3 -r "$HF_RUNS" --style none --export-json "$WORK/hyperfine-$name.json" \
      --command-name "$name" "$bin --root $WORK/state/$name run -b $B hf-$name" >/dev/null 2>"$WORK/hyperfine-$name.err" \
      || meta "hyperfine_fail_$name" "$(tr '\n' ' ' <"$WORK/hyperfine-$name.err" | head -c 500)"
  done
  timeout 600 hyperfine -N -w 3 -r "$HF_RUNS" --style none --export-json "$WORK/hyperfine-floor.json" \
    --command-name floor "$WORK/floor $B/rootfs" >/dev/null 2>"$WORK/hyperfine-floor.err" || true
fi

# The front end's overhead over the OCI path: `husk run --rootfs` (spec built in memory, lo up,
# hostname) against `husk run -b` on the same rootfs, both without seccomp (the OCI bundle has
# none), interleaved by hyperfine's alternation over the same runs.
FE_MD=$WORK/frontend.md
: >"$FE_MD"
if [[ $HF_RUNS -gt 0 ]]; then
  log "front end vs OCI path (hyperfine, $HF_RUNS runs each)"
  timeout 600 hyperfine -N -w 3 -r "$HF_RUNS" --style none --export-json "$WORK/hyperfine-frontend.json" \
    --command-name oci "$HUSK_BIN --root $WORK/state/husk run -b $B hf-oci" \
    --command-name frontend "$HUSK_BIN --root $WORK/state/husk run --rootfs $B/rootfs --security-opt seccomp=unconfined -- /bin/true" \
    >/dev/null 2>"$WORK/hyperfine-frontend.err" || true
  /usr/bin/python3 - "$WORK/hyperfine-frontend.json" >"$FE_MD" <<'PY' || true
import json, statistics, sys
r = {x["command"]: sorted(x["times"]) for x in json.load(open(sys.argv[1]))["results"]}
med = {k: statistics.median(v) * 1000 for k, v in r.items()}
print("\n## Front end overhead\n")
print("`husk run --rootfs R --security-opt seccomp=unconfined -- /bin/true` against `husk run -b B ID` on the same rootfs")
print(f"(hyperfine, {len(r['oci'])} runs each): OCI path {med['oci']:.2f} ms, front end {med['frontend']:.2f} ms median,")
print(f"overhead {med['frontend'] - med['oci']:+.2f} ms (the goal: within 1 ms).")
PY
fi

# Optional (BENCH_DETACHED=1): detached front-end containers against podman (bench/detached.sh).
DET_MD=$WORK/detached.md
: >"$DET_MD"
if [[ ${BENCH_DETACHED:-0} == 1 ]]; then
  log "detached containers vs podman (bench/detached.sh)"
  timeout 900 "$BENCH_DIR/detached.sh" "$HUSK_BIN" "$B/rootfs" "$DET_MD" >/dev/null || true
fi

# Optional (BENCH_NETWORK=1): --network none/bridge/-p against podman and published-port
# throughput (bench/network.sh), inside a network namespace of its own.
NET_MD=$WORK/network.md
: >"$NET_MD"
if [[ ${BENCH_NETWORK:-0} == 1 ]]; then
  log "networking vs podman (bench/network.sh)"
  timeout 1800 "$BENCH_DIR/network.sh" "$HUSK_BIN" "$B/rootfs" "$NET_MD" >/dev/null || true
fi

# Leftovers: containers still listed by a runtime after everything (should be none).
for name in husk runc crun; do
  bin=$HUSK_BIN; [[ $name == runc ]] && bin=$RUNC; [[ $name == crun ]] && bin=$CRUN
  left=$(timeout 10 "$bin" --root "$WORK/state/$name" list -q 2>&1 | tr '\n' ' ')
  meta "leftover_$name" "$left"
done
meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

log "report"
/usr/bin/python3 "$BENCH_DIR/report.py" --raw "$RAW" --work "$WORK" \
  --json "$BENCH_DIR/results.json" --md "$REPO/docs/benchmarks.md"
cat "$FE_MD" >>"$REPO/docs/benchmarks.md"
cat "$DET_MD" >>"$REPO/docs/benchmarks.md"
cat "$NET_MD" >>"$REPO/docs/benchmarks.md"
log "done: $REPO/docs/benchmarks.md, $BENCH_DIR/results.json"
