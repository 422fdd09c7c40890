#!/usr/bin/env bash
# Rootless (issue 17), side by side: an ordinary user with /etc/subuid and /etc/subgid ranges
# (made here and removed after) runs `husk run --rm --rootfs DIR true` and rootless
# `podman run --rm --rootfs DIR true` on the same busybox root it owns, with network none, and
# with each one's user-mode network (husk: pasta; podman 4.3: slirp4netns, it has no pasta), husk's
# slirp4netns against podman's,
# pasta's own `pasta --config-net true` for its setup cost, and an image of that root (one layer,
# an oci-archive both load) with `run --rm IMAGE true` (podman on its overlay driver, which is
# native overlayfs in a user namespace on this kernel), and the same with --userns keep-id
# (after the first run, which unpacks or copies the image for that map), and a detached container
# of that image (`run -d`, `stop -t 0`, `start`, `rm -f`, each timed); interleaved, N times each; median
# and p10-p90 of the wall time of each whole command. Everything runs in a network namespace of
# the script's own (an uplink veth with a default route for pasta and slirp4netns to use), and a
# mount namespace of its own where a 0666 tun node is bound over /dev/net/tun (the host's node is
# never changed, so nothing is left 0666 if the bench is killed).
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
for a in sh true sleep; do ln -s busybox "$W/rootfs/bin/$a"; done
mkdir -p "$W/rootfs/"{proc,dev,sys,etc,tmp}
python3 - "$W/rootfs" "$W/img.tar" <<'PY'
import hashlib, io, json, sys, tarfile
root, out = sys.argv[1], sys.argv[2]
blobs = {}
def blob(data):
    d = hashlib.sha256(data).hexdigest(); blobs[d] = data
    return {"digest": "sha256:" + d, "size": len(data)}
b = io.BytesIO()
with tarfile.open(fileobj=b, mode="w") as t:
    t.add(root, arcname=".", filter=lambda i: (setattr(i, "uid", 0), setattr(i, "gid", 0), i)[2])
layer = b.getvalue()
cfg = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode())
man = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": dict(cfg, mediaType="application/vnd.oci.image.config.v1+json"),
    "layers": [dict(blob(layer), mediaType="application/vnd.oci.image.layer.v1.tar")]}).encode())
index = {"schemaVersion": 2, "manifests": [dict(man, mediaType="application/vnd.oci.image.manifest.v1+json",
    annotations={"org.opencontainers.image.ref.name": "localhost/rlbench:1"})]}
with tarfile.open(out, "w") as t:
    for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", json.dumps(index).encode())] + \
            [("blobs/sha256/" + d, v) for d, v in blobs.items()]:
        i = tarfile.TarInfo(name); i.size = len(data); i.mode = 0o644; t.addfile(i, io.BytesIO(data))
PY
chown -R "$U:" "$W/home" "$W/run" "$W/rootfs" "$W/img.tar"
chmod 700 "$W/run"
podman_conf "$W/containers.conf"
# The loop runs as the user in one shell, so runuser's PAM session is in neither number.
cat >"$W/loop.sh" <<LOOP
h() { "$W/husk" run --rm --network none --rootfs "$W/rootfs" -- true; }
hn() { "$W/husk" run --rm --network pasta --rootfs "$W/rootfs" -- true; }
hs() { "$W/husk" run --rm --network slirp4netns --rootfs "$W/rootfs" -- true; }
p() { podman --root "$W/home/storage" --runroot "$W/run/storage" --storage-driver vfs --runtime runc \\
  run --rm --network none --rootfs "$W/rootfs" true; }
pn() { podman --root "$W/home/storage" --runroot "$W/run/storage" --storage-driver vfs --runtime runc \\
  run --rm --network slirp4netns --rootfs "$W/rootfs" true; }
pa() { pasta --config-net -q -t none -u none -T none -U none -- true; }
hi() { "$W/husk" run --rm --network none localhost/rlbench:1 true; }
po() { podman --root "$W/home/ovl" --runroot "$W/run/ovl" --storage-driver overlay --runtime runc "\$@"; }
pi() { po run --rm --network none localhost/rlbench:1 true; }
hk() { "$W/husk" run --rm --network none --userns keep-id localhost/rlbench:1 true; }
pk() { po run --rm --network none --userns keep-id localhost/rlbench:1 true; }
# a detached container of the image: run -d, stop, start again (its writes kept), rm -f
hdr() { "$W/husk" run -d --name hd --network none localhost/rlbench:1 sleep 300; }
hdp() { "$W/husk" stop -t 0 hd; }
hds() { "$W/husk" start hd; }
hdx() { "$W/husk" rm -f hd; }
pdr() { po run -d --name pd --network none localhost/rlbench:1 sleep 300; }
pdp() { po stop -t 0 pd; }
pds() { po start pd; }
pdx() { po rm -f -t 0 pd; }   # -t 0: docker's rm -f kills at once, as husk's does
"$W/husk" load -q -i "$W/img.tar" >/dev/null && po load -q -i "$W/img.tar" >/dev/null || exit 1
h && hn && hs && p && pn && pa && hi && pi && hk && pk || exit 1 # warm-up (podman makes its pause process and storage first; the first keep-id runs unpack or copy the image for that map)
for i in \$(seq $N); do
  for c in h p hn pn hs pa hi pi hk pk hdr pdr hdp pdp hds pds hdx pdx; do
    t=\$(date +%s%N); \$c >/dev/null || exit 1; echo "\$c \$(( (\$(date +%s%N) - t) / 1000 ))"
  done
done
LOOP
cat >"$W/ns.sh" <<NS
ip link set lo up
ip link add up0 type veth peer name up1 && ip link set up1 up
ip addr add 10.77.0.1/24 dev up0 && ip link set up0 up && ip route add default via 10.77.0.254
runuser -u "$U" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$W/home" USER="$U" \\
  XDG_RUNTIME_DIR="$W/run" XDG_CONFIG_HOME="$W/home/.config" CONTAINERS_CONF="$W/containers.conf" \\
  sh "$W/loop.sh"
NS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
unshare -n -m --propagation private sh -c 'mkdir "$1/tun" && mount -t tmpfs -o mode=0755 husk-bench-tun "$1/tun" &&
  mknod -m 0666 "$1/tun/tun" c 10 200 && mount --bind "$1/tun/tun" /dev/net/tun && exec sh "$1/ns.sh"' sh "$W" >"$W/times" 2>"$W/err" || { cat "$W/err"; exit 1; }
col() { awk -v c="$1" '$1 == c {print $2}' "$W/times"; }
mapfile -t h < <(col h)
mapfile -t p < <(col p)
mapfile -t hn < <(col hn)
mapfile -t pn < <(col pn)
mapfile -t pa < <(col pa)
mapfile -t hs < <(col hs)
mapfile -t hi < <(col hi)
for c in hdr pdr hdp pdp hds pds hdx pdx; do mapfile -t "$c" < <(col "$c"); done
mapfile -t pi < <(col pi)
mapfile -t hk < <(col hk)
mapfile -t pk < <(col pk)
load1=$(cut -d' ' -f1-3 /proc/loadavg)
stats() { python3 -c 'import sys,statistics
v=sorted(int(x)/1000 for x in sys.argv[1:]); q=lambda f: v[min(len(v)-1,int(f*len(v)))]
print(f"{statistics.median(v):.1f} ({q(0.1):.1f} - {q(0.9):.1f})")' "$@"; }
ratio() { python3 -c 'import sys,statistics
n=int(sys.argv[1]); a=[int(x) for x in sys.argv[2:2+n]]; b=[int(x) for x in sys.argv[2+n:]]
print(f"{statistics.median(a)/statistics.median(b):.2f}x")' "$@"; }
{
  echo
  echo "## Rootless (bench/rootless.sh)"
  echo
  echo "An ordinary user with subuid/subgid ranges, \`--rootfs\` on the same busybox root it owns,"
  echo "$N interleaved runs each in one shell of the user, in a network namespace of the script's"
  echo "own, wall time of the whole command, median (p10 - p90)."
  echo "$(date -u +%FT%TZ), $("$HUSK" --version | head -1) (git $(git -C "$(dirname "$0")" rev-parse --short HEAD)), $(podman --version)."
  echo "Load average before / after: $load0 / $load1 (shared 2-core machine)."
  echo
  echo "| network | husk ms | podman ms (vfs, cgroupfs) | husk / podman |"
  echo "|---|---|---|---|"
  echo "| none | $(stats "${h[@]}") | $(stats "${p[@]}") | $(ratio "${#h[@]}" "${h[@]}" "${p[@]}") |"
  echo "| husk pasta / podman slirp4netns | $(stats "${hn[@]}") | $(stats "${pn[@]}") | $(ratio "${#hn[@]}" "${hn[@]}" "${pn[@]}") |"
  echo "| slirp4netns (both) | $(stats "${hs[@]}") | $(stats "${pn[@]}") | $(ratio "${#hs[@]}" "${hs[@]}" "${pn[@]}") |"
  echo "| pasta's own \`pasta --config-net true\` | $(stats "${pa[@]}") | | |"
  echo "| none, \`run --rm IMAGE true\` (podman: overlay driver) | $(stats "${hi[@]}") | $(stats "${pi[@]}") | $(ratio "${#hi[@]}" "${hi[@]}" "${pi[@]}") |"
  echo "| none, \`run --rm --userns keep-id IMAGE true\` (after the first) | $(stats "${hk[@]}") | $(stats "${pk[@]}") | $(ratio "${#hk[@]}" "${hk[@]}" "${pk[@]}") |"
  row() { local -n a=$2 b=$3; echo "| $1 | $(stats "${a[@]}") | $(stats "${b[@]}") | $(ratio "${#a[@]}" "${a[@]}" "${b[@]}") |"; }
  row "none, detached: \`run -d IMAGE sleep 300\`" hdr pdr
  row "none, detached: \`stop -t 0\`" hdp pdp
  row "none, detached: \`start\` again (the root mounted again, its writes kept)" hds pds
  row "none, detached: \`rm -f\` (its upper removed)" hdx pdx
  echo "| husk pasta - husk none (setup cost) | $(python3 -c 'import sys,statistics
n=int(sys.argv[1]); a=[int(x) for x in sys.argv[2:2+n]]; b=[int(x) for x in sys.argv[2+n:]]
print(f"{(statistics.median(a)-statistics.median(b))/1000:.1f}")' "${#hn[@]}" "${hn[@]}" "${h[@]}") | | |"
} >"$OUT"
cat "$OUT"
