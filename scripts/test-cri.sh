#!/usr/bin/env bash
# Kubernetes' calls through containerd's CRI plugin, with husk as the runc v2 shim's BinaryName
# (runtime handler "husk") and runc as the reference (handler "runc") under the same containerd.
# Root, Debian/Ubuntu.
#
# Installs what it needs with apt-get, builds husk (release), builds a busybox image and a pause
# image locally (umoci), pushes them to a docker-registry on 127.0.0.1:5000, and starts containerd
# with the CRI plugin on a private socket/root/state under a temp dir. containerd, the registry and
# the CRI client run inside a network namespace this script creates (unshare -n), so "host network"
# pods and the CNI bridge (Debian's containernetworking-plugins) only ever see that namespace.
# The client is tests/cri/cri_test.py (Python grpcio, code generated here from tests/cri/api.proto,
# Kubernetes' CRI v1 API). Everything started is stopped in a trap.
#
# Each check prints PASS/FAIL; the last line is "N passed, N failed"; the exit status is non-zero
# on any failure. Environment: HUSK=PATH uses that binary instead of building; KEEP=1 keeps the
# temp dir (logs, husk's argv log, every observation in obs.json).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
REPO=$PWD
say() { printf '\n== %s\n' "$*"; }
die() { echo "$*"; echo "0 passed, 1 failed"; exit 1; }
[[ $(id -u) == 0 ]] || die "test-cri.sh must run as root"

pkgs=(containerd runc umoci skopeo busybox-static docker-registry containernetworking-plugins iproute2
  util-linux python3-grpcio python3-protobuf python3-websocket protobuf-compiler protobuf-compiler-grpc)
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [[ ${#need[@]} -gt 0 ]]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -q >/dev/null
  timeout 900 apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null || die "apt-get install failed"
fi
# Debian's python3 modules: the system interpreter, whatever python3 comes first in PATH
PY=/usr/bin/python3
RUNC=$(command -v runc)

if [[ -n ${HUSK:-} ]]; then
  HUSK=$(readlink -f "$HUSK")
else
  say "build husk (release)"
  timeout 900 cargo build --release --locked -p husk >"${TMPDIR:-/tmp}/husk-cri-build.log" 2>&1 ||
    { tail -n 20 "${TMPDIR:-/tmp}/husk-cri-build.log"; die "build failed"; }
  HUSK=$REPO/target/x86_64-unknown-linux-musl/release/husk
fi
[[ -x $HUSK ]] || die "no husk binary at $HUSK"

T=$(mktemp -d /tmp/hcri.XXXXXX) # short: unix socket paths live under it
chmod 755 "$T"
mkdir -p "$T/bin" "$T/logs" "$T/gen" "$T/ro"
echo hello >"$T/ro/hello"
cat >"$T/bin/husk-cri" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>$T/argv-husk.log
exec $HUSK "\$@"
EOF
chmod 755 "$T/bin/husk-cri"
CG=hcri-${T##*.} # the pods' cgroup parent, as a kubelet's /kubepods
run_before=$(ls -A /run | sort)
netns_before=$(ls -A /run/netns 2>/dev/null | sort)
# made outside our temp dir whatever we ask: libcni's result cache
created_dirs=()
for x in /var/lib/cni; do [[ -e $x ]] || created_dirs+=("$x"); done
PIDS=()

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  # shims and container processes of this run: their command line or cgroup names our temp dir/parent
  local killed=() p i
  for p in $(pgrep -f -- "$T/" 2>/dev/null) $(grep -ls "/$CG/" /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3); do
    [[ $p != "$$" ]] && kill -KILL "$p" 2>/dev/null && killed+=("$p")
  done
  for p in "${killed[@]}"; do
    for i in $(seq 600); do
      [[ ! -e /proc/$p ]] || [[ $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) == Z* ]] && break
      sleep 0.1
    done
  done
  awk -v t="$T/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  # pod network namespaces containerd bind-mounted under /run/netns and did not remove
  for n in $(comm -13 <(echo "$netns_before") <(ls -A /run/netns 2>/dev/null | sort)); do
    [[ $n == cni-* ]] && umount "/run/netns/$n" 2>/dev/null && rm -f "/run/netns/$n"
  done
  find /sys/fs/cgroup -depth -type d -path "*/$CG*" -exec rmdir {} + 2>/dev/null
  for d in $(comm -13 <(echo "$run_before") <(ls -A /run | sort)); do
    case $d in
      netns) rmdir "/run/$d" 2>/dev/null ;;
      containerd) rmdir "/run/$d/s" "/run/$d" 2>/dev/null ;; # the shims' socket dir, if empty
    esac
  done
  for x in "${created_dirs[@]}"; do rm -rf "$x"; done
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
say "images: busybox-static rootfs -> OCI layout (umoci), tags box and pause"
img=$T/img
mkdir -p "$img/rootfs"/{bin,etc,tmp,proc,sys,dev,root}
cp /bin/busybox "$img/rootfs/bin/busybox"
for a in $("$img/rootfs/bin/busybox" --list); do [[ $a == busybox ]] || ln -sf busybox "$img/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$img/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$img/rootfs/etc/group"
(
  set -e
  cd "$img"
  umoci init --layout oci
  umoci new --image oci:box
  umoci unpack --rootless --image oci:box bundle
  cp -a rootfs/. bundle/rootfs/
  umoci repack --image oci:box bundle
  umoci config --image oci:box --config.cmd /bin/sh --config.env PATH=/bin --config.workingdir / \
    --architecture amd64 --os linux
  # the sandbox's pause: the kubelet's only needs to hold the namespaces and die on a signal
  umoci config --image oci:box --tag pause --config.cmd /bin/sleep --config.cmd 2147483647
  umoci gc --layout oci
  rm -rf bundle
) >"$T/logs/image.log" 2>&1 || { cat "$T/logs/image.log"; die "image build failed"; }

say "containerd $(containerd --version | awk '{print $3}') with the CRI plugin in a private network namespace"
d=$T/ctd
mkdir -p "$d/cni"
SUBNET_PREFIX=10.88.7.
cat >"$d/cni/10-hcri.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "hcri", "plugins": [{"type": "bridge", "bridge": "hcri0",
  "isGateway": true, "ipMasq": false, "hairpinMode": true,
  "ipam": {"type": "host-local", "dataDir": "$d/ipam", "ranges": [[{"subnet": "${SUBNET_PREFIX}0/24"}]],
           "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
REG=127.0.0.1:5000
cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
[grpc]
  address = "$d/c.sock"
[ttrpc]
  address = "$d/c.sock.ttrpc"
[debug]
  address = "$d/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$REG/hcri/pause:latest"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # root here lacks CAP_SYS_RESOURCE: no oom_score_adj below containerd's own (the pause's -998)
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$RUNC"
        Root = "$d/runc"
        SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.husk]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.husk.options]
        BinaryName = "$T/bin/husk-cri"
        Root = "$d/husk"
        SystemdCgroup = false
EOF
cat >"$d/registry.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $d/registry}}
http: {addr: $REG}
EOF
# the namespace lives as long as containerd; the registry and the client join it by containerd's pid
unshare -n sh -c 'ip link set lo up && exec containerd --config "$1"' sh "$d/config.toml" >"$T/logs/containerd.log" 2>&1 &
CPID=$!
PIDS+=("$CPID")
NS=(nsenter -t "$CPID" -n)
wait_for 30 ctr -a "$d/c.sock" version || { tail -n 20 "$T/logs/containerd.log"; die "containerd did not start"; }
"${NS[@]}" docker-registry serve "$d/registry.yml" >"$T/logs/registry.log" 2>&1 &
PIDS+=($!)
wait_for 30 "${NS[@]}" bash -c "exec 3<>/dev/tcp/127.0.0.1/5000" ||
  { tail -n 20 "$T/logs/registry.log"; die "registry did not start"; }
for tag in box pause; do
  "${NS[@]}" skopeo copy -q --dest-tls-verify=false "oci:$img/oci:$tag" "docker://$REG/hcri/$tag:latest" \
    >"$T/logs/push.log" 2>&1 || { cat "$T/logs/push.log"; die "push of $tag to the local registry failed"; }
done

say "CRI client: tests/cri/cri_test.py (grpcio; api.proto is Kubernetes' CRI v1)"
protoc -I tests/cri --python_out="$T/gen" --grpc_out="$T/gen" \
  --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" tests/cri/api.proto || die "protoc failed"
t0=$SECONDS
PYTHONPATH=$T/gen timeout 600 "${NS[@]}" "$PY" tests/cri/cri_test.py --socket "$d/c.sock" \
  --image "$REG/hcri/box:latest" --tmp "$T" --ro-dir "$T/ro" --cgroup-root "$CG" \
  --subnet-prefix "$SUBNET_PREFIX" --handlers runc,husk --json "$T/obs.json" | tee "$T/logs/client.log"
rc=${PIPESTATUS[0]}
echo "      client: $((SECONDS - t0)) s"
if [[ -s $T/argv-husk.log ]]; then
  echo "      husk was called as: $(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^(create|start|exec|kill|delete|update|state|ps|pause|resume|events)$/) {print $i; break}}' "$T/argv-husk.log" | sort | uniq -c | tr -s ' \n' ' ')"
else
  echo "      husk was never called"; rc=1
fi
if [[ $rc != 0 ]]; then
  grep -E 'level=(error|warning)' "$T/logs/containerd.log" | tail -n 15 | sed 's/^/      | /'
  grep -q '^[0-9]* passed, [0-9]* failed$' "$T/logs/client.log" || echo "0 passed, 1 failed"
fi
exit "$rc"
