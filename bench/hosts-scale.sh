#!/usr/bin/env bash
# /etc/hosts at scale (husk-net hosts.rs): C detached containers on one named network, then N
# `husk run --rm --network NET true` on it, two husk binaries side by side (each with a root and
# a network of its own, interleaved): the wall time of each start and the lease step's
# own cost as `--explain` narrates it ("leased ... lock, stale leases, address, hosts files"), which is
# where every container's /etc/hosts is rewritten. Everything runs in a network namespace of the
# script's own (`unshare -n`); the host's interfaces and firewall are never touched.
# Usage (as root): bench/hosts-scale.sh BEFORE_HUSK AFTER_HUSK OUT.md [C] [N]
set -euo pipefail
BEFORE=$1 AFTER=$2 OUT=$3 C=${4:-50} N=${5:-20}
W=$(mktemp -d /tmp/husk-bench-hosts.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/rootfs/bin"
cp "$(command -v busybox)" "$W/rootfs/bin/busybox"
for a in sh sleep true; do ln -s busybox "$W/rootfs/bin/$a"; done
cat >"$W/ns.sh" <<NS
set -eu
ip link set lo up
H() { v=\$1; shift; if [ \$v = b ]; then "$BEFORE" --root "$W/b" "\$@"; else "$AFTER" --root "$W/a" "\$@"; fi; }
# the containers go however the script ends (their sleeps would hold the namespace)
trap 'for v in b a; do H \$v rm -f \$(seq -f "c\$v%g" $C) >/dev/null 2>&1; H \$v network rm n\$v >/dev/null 2>&1; done' EXIT
for v in b a; do
  H \$v network create n\$v >/dev/null
  for i in \$(seq $C); do H \$v run -d --name c\$v\$i --network n\$v --rootfs "$W/rootfs" sleep 600 >/dev/null; done
done
for i in \$(seq $N); do
  for v in b a; do
    if [ \$v = b ]; then B="$BEFORE"; else B="$AFTER"; fi
    t=\$(date +%s%N)
    "\$B" --root "$W/\$v" --explain run --rm --network n\$v --rootfs "$W/rootfs" true 2>"$W/explain"
    w=\$(( (\$(date +%s%N) - t) / 1000 ))
    l=\$(sed -n 's/.*network: leased .*hosts files (\([0-9]*\) µs)\$/\1/p' "$W/explain")
    echo "\$v \$w \$l"
  done
done
NS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
timeout 1200 unshare -n sh "$W/ns.sh" >"$W/times"
load1=$(cut -d' ' -f1-3 /proc/loadavg)
stats() { python3 -c 'import sys,statistics
v=sorted(int(x)/1000 for x in sys.argv[1:]); q=lambda f: v[min(len(v)-1,int(f*len(v)))]
print(f"{statistics.median(v):.2f} ({q(0.1):.2f} - {q(0.9):.2f})")' "$@"; }
col() { awk -v v="$1" -v c="$2" '$1 == v {print $c}' "$W/times"; }
{
  echo
  echo "## /etc/hosts with $C containers on one network (bench/hosts-scale.sh)"
  echo
  echo "$N interleaved \`run --rm --network NET true\` per binary, each beside $C detached containers"
  echo "on its own named network, in a network namespace of the script's own; ms, median (p10 - p90)."
  echo "$(date -u +%FT%TZ); load average before / after: $load0 / $load1 (shared 2-core machine)."
  echo
  echo "| binary | whole start | lease step (address, every /etc/hosts) |"
  echo "|---|---|---|"
  for v in b a; do
    name=$([ $v = b ] && echo "before: $BEFORE" || echo "after: $AFTER")
    echo "| $name | $(stats $(col $v 2)) | $(stats $(col $v 3)) |"
  done
} >"$OUT"
cat "$OUT"
