#!/usr/bin/env bash
# Rootless (issue 17), side by side: an ordinary user with /etc/subuid and /etc/subgid ranges
# (made here and removed after) runs `husk run --rm --rootfs DIR true` and rootless
# `podman run --rm --network none --rootfs DIR true` on the same busybox root it owns,
# interleaved, N times each; median and p10-p90 of the wall time of each whole command.
# Usage (as root): bench/rootless.sh HUSK_BIN OUT.md [N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
HUSK=$1 OUT=$2 N=${3:-30}
command -v podman >/dev/null || { echo "no podman"; exit 1; }
W=$(mktemp -d /tmp/husk-bench-rootless.XXXXXX)
chmod 755 "$W"
U=hkbench$$
FIRST=$((400000 + ($$ % 1000) * 65536))
cleanup() {
  # this user's processes only (podman's pause process holds its namespace), by pid
  for p in $(pgrep -u "$U" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  userdel "$U" 2>/dev/null || true
  sed -i "/^$U:/d" /etc/subuid /etc/subgid
  rm -rf "$W"
}
trap cleanup EXIT
useradd -M -d "$W/home" -s /bin/sh "$U"
sed -i "/^$U:/d" /etc/subuid /etc/subgid
echo "$U:$FIRST:65536" >>/etc/subuid
echo "$U:$FIRST:65536" >>/etc/subgid
mkdir -p "$W/home" "$W/run" "$W/rootfs/bin"
cp "$HUSK" "$W/husk"
cp "$(command -v busybox)" "$W/rootfs/bin/busybox"
for a in sh true; do ln -s busybox "$W/rootfs/bin/$a"; done
mkdir -p "$W/rootfs/"{proc,dev,sys,etc,tmp}
chown -R "$U:" "$W/home" "$W/run" "$W/rootfs"
chmod 700 "$W/run"
podman_conf "$W/containers.conf"
as() {
  runuser -u "$U" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$W/home" USER="$U" \
    XDG_RUNTIME_DIR="$W/run" XDG_CONFIG_HOME="$W/home/.config" CONTAINERS_CONF="$W/containers.conf" "$@"
}
# The loop runs as the user in one shell, so runuser's PAM session is in neither number.
cat >"$W/loop.sh" <<LOOP
h() { "$W/husk" run --rm --rootfs "$W/rootfs" -- true; }
p() { podman --root "$W/home/storage" --runroot "$W/run/storage" --storage-driver vfs \\
  run --rm --network none --rootfs "$W/rootfs" true; }
h && p || exit 1 # warm-up (podman makes its pause process and storage on the first run)
for i in \$(seq $N); do
  for c in h p; do
    t=\$(date +%s%N); \$c || exit 1; echo "\$c \$(( (\$(date +%s%N) - t) / 1000 ))"
  done
done
LOOP
load0=$(cut -d' ' -f1-3 /proc/loadavg)
as sh "$W/loop.sh" >"$W/times" 2>"$W/err" || { cat "$W/err"; exit 1; }
mapfile -t h < <(awk '$1 == "h" {print $2}' "$W/times")
mapfile -t p < <(awk '$1 == "p" {print $2}' "$W/times")
load1=$(cut -d' ' -f1-3 /proc/loadavg)
stats() { python3 -c 'import sys,statistics
v=sorted(int(x)/1000 for x in sys.argv[1:]); q=lambda f: v[min(len(v)-1,int(f*len(v)))]
print(f"{statistics.median(v):.1f} ({q(0.1):.1f} - {q(0.9):.1f})")' "$@"; }
ratio() { python3 -c 'import sys,statistics
a=[int(x) for x in sys.argv[2:2+int(sys.argv[1])]]; b=[int(x) for x in sys.argv[2+int(sys.argv[1]):]]
print(f"{statistics.median(a)/statistics.median(b):.2f}x")' "${#h[@]}" "${h[@]}" "${p[@]}"; }
{
  echo
  echo "## Rootless (bench/rootless.sh)"
  echo
  echo "An ordinary user with subuid/subgid ranges, \`--rootfs\` on the same busybox root it owns,"
  echo "network none, $N interleaved runs each in one shell of the user, wall time of the whole"
  echo "command, median (p10 - p90)."
  echo "$(date -u +%FT%TZ), $("$HUSK" --version | head -1) (git $(git -C "$(dirname "$0")" rev-parse --short HEAD)), $(podman --version)."
  echo "Load average before / after: $load0 / $load1 (shared 2-core machine)."
  echo
  echo "| command | ms |"
  echo "|---|---|"
  echo "| \`husk run --rm --rootfs DIR true\` | $(stats "${h[@]}") |"
  echo "| \`podman run --rm --network none --rootfs DIR true\` (vfs, cgroupfs) | $(stats "${p[@]}") |"
  echo "| husk / podman (medians) | $(ratio) |"
} >"$OUT"
cat "$OUT"
