#!/usr/bin/env bash
# Networking (issue 16), husk and podman side by side on the same rootfs, interleaved:
#   `run --network none` vs `--network bridge` vs `bridge -p 8080:80` (/bin/true, wall time of the
#   whole run: start-up, the command, teardown), and the throughput into a container through a
#   published port vs the direct path to its address (a bounded transfer from a "remote"
#   namespace).
# Usage: bench/network.sh HUSK_BIN ROOTFS OUT.md (ROOTFS: a static busybox root), as root.
# NETWORK RULE: everything runs inside a network namespace this script makes (it re-executes
# itself under `unshare -n`): husk's husk0, podman's podman0, their rules and the "remote" namespace
# live there; the host's interfaces, routes and firewall are never touched. Every wait is bounded.
# Knobs: NET_RUNS (interleaved rounds, default 30), NET_MB (MiB per transfer, default 256),
# NET_XFERS (transfers per path, default 5).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
if [[ ${1:-} != --in-netns ]]; then
  exec unshare -n "$0" --in-netns "$@"
fi
shift
HUSK=$1 ROOTFS=$2 OUT=$3
N=${NET_RUNS:-30} MB=${NET_MB:-256} XFERS=${NET_XFERS:-5}
W=$(mktemp -d /tmp/husk-bench-network.XXXXXX)
ROOT=$W/root
REMOTE= SERVER=
SINK=sink-$$
cleanup() {
  # The sink is pid 1 of its container, which ignores SIGTERM: its husk is killed, and the
  # container dies with it (PR_SET_PDEATHSIG); `delete -f` removes what is left.
  if [[ -n $SERVER ]]; then
    kill -KILL "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    "$HUSK" --root "$ROOT" delete -f "$SINK" >/dev/null 2>&1 || true
  fi
  [[ -n $REMOTE ]] && kill "$REMOTE" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
ip link set lo up
py=/usr/bin/python3

# podman as in bench/detached.sh: this host cannot raise RLIMIT_NOFILE/NPROC past its hard limits.
PODMAN=
if command -v podman >/dev/null; then
  PODMAN=1
  podman_conf "$W/containers.conf"
  # crun refuses this host's hybrid cgroup layout ("cgroups in hybrid mode not supported").
  echo 'runtime = "runc"' >>"$W/containers.conf"
  export CONTAINERS_CONF=$W/containers.conf
fi

declare -A CMD
CMD[husk_none]="$HUSK --root $ROOT run --network none --rootfs $ROOTFS /bin/true"
CMD[husk_bridge]="$HUSK --root $ROOT run --network bridge --rootfs $ROOTFS /bin/true"
CMD[husk_publish]="$HUSK --root $ROOT run --network bridge -p 8080:80 --rootfs $ROOTFS /bin/true"
MODES=(husk_none husk_bridge husk_publish)
if [[ -n $PODMAN ]]; then
  CMD[podman_none]="podman run --rm --network none --rootfs $ROOTFS /bin/true"
  CMD[podman_bridge]="podman run --rm --network bridge --rootfs $ROOTFS /bin/true"
  CMD[podman_publish]="podman run --rm --network bridge -p 8081:80 --rootfs $ROOTFS /bin/true"
  MODES+=(podman_none podman_bridge podman_publish)
fi
# One of each first: husk's bridge and table and podman's network are made once per namespace.
for m in "${MODES[@]}"; do timeout 60 ${CMD[$m]} >/dev/null; done
# Wall time of each run and, for husk, the CPU time of husk and its container (wait4's rusage:
# on a loaded machine the wall time mostly measures the wait for a CPU). podman's conmon is
# not its child, so its CPU time would miss most of it: wall time only.
for m in "${MODES[@]}"; do echo "$m ${CMD[$m]}"; done >"$W/modes"
$py - "$W/modes" "$N" >"$W/times" <<'PY'
import os, subprocess, sys, time
modes = [l.split(" ", 1) for l in open(sys.argv[1]).read().splitlines()]
for _ in range(int(sys.argv[2])):
    for name, cmd in modes:
        t = time.perf_counter()
        p = subprocess.Popen(cmd.split(), stdout=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        if status != 0:
            sys.exit(f"{cmd}: status {status}")
        print(name, round(wall * 1e6), round((ru.ru_utime + ru.ru_stime) * 1e6))
PY
declare -A T C
while read -r m wall cpu; do T[$m]+="$wall " C[$m]+="$cpu "; done <"$W/times"
load=$(cut -d' ' -f1-3 /proc/loadavg)

# Throughput: a sink in the container (busybox nc, one `cat >/dev/null` per connection), a
# sender in a "remote" namespace behind a veth: to the published port on this namespace's
# address (DNAT) and directly to the container's address (routed).
mkdir -p "$W/x"
printf '#!/bin/sh\nexec cat >/dev/null\n' >"$W/x/sink"
chmod +x "$W/x/sink"
"$HUSK" --root "$ROOT" run --name "$SINK" --network bridge -p 8080:80 -v "$W/x:/x" --rootfs "$ROOTFS" \
  -- nc -ll -p 80 -e /x/sink >"$W/sink.log" 2>&1 &
SERVER=$!
unshare -n sleep 600 &
REMOTE=$!
i=0; while [[ $(readlink /proc/$REMOTE/ns/net) == $(readlink /proc/self/ns/net) && $i -lt 100 ]]; do sleep 0.05; i=$((i+1)); done
ip link add up0 type veth peer name up1 netns "$REMOTE"
ip addr add 192.0.2.1/24 dev up0
ip link set up0 up
nsenter --net=/proc/$REMOTE/ns/net sh -c "ip addr add 192.0.2.2/24 dev up1; ip link set up1 up; ip route add 10.89.0.0/16 via 192.0.2.1"
cat >"$W/send.py" <<'PY'
import socket, sys, time
host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) << 20
buf = memoryview(bytearray(1 << 20))
for attempt in range(100):
    try:
        s = socket.create_connection((host, port), timeout=30)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit(f"connect {host}:{port}: gave up after 100 tries")
t = time.perf_counter()
sent = 0
while sent < total:
    sent += s.send(buf[: min(len(buf), total - sent)])
s.shutdown(socket.SHUT_WR)
s.recv(1)  # the sink closes once it has read everything
print(f"{total / (time.perf_counter() - t) / 1e6:.0f}")
PY
declare -A X
xfer() { nsenter --net=/proc/$REMOTE/ns/net timeout 120 $py "$W/send.py" "$@" || { cat "$W/sink.log" >&2; exit 1; }; }
for _ in $(seq "$XFERS"); do
  X[published]+="$(xfer 192.0.2.1 8080 "$MB") "
  X[direct]+="$(xfer 10.89.0.2 80 "$MB") "
done

med() { $py -c 'import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
spread() { $py -c 'import sys; v=sorted(float(x) for x in sys.argv[1:]); n=len(v); print(f"{v[n//10]/1000:.1f}-{v[n-1-n//10]/1000:.1f}")' "$@"; }
ms() { $py -c "print(f'{$1/1000:.1f}')"; }
{
  echo
  echo "## Networking (bench/network.sh)"
  echo
  echo "Inside a network namespace of the bench's own; $N interleaved rounds after one warm-up run each"
  echo "(the first run makes the bridge and the rules); wall time of \`run --rootfs DIR /bin/true\`,"
  echo "median and p10-p90 (ms); load average at the end: $load."
  echo
  echo "| runtime | \`--network none\` | \`--network bridge\` | \`bridge -p 8080:80\` | bridge − none | \`-p\` − none |"
  echo "|---|---|---|---|---|---|"
  for r in husk podman; do
    [[ $r == podman && -z $PODMAN ]] && continue
    n=$(med ${T[${r}_none]}) b=$(med ${T[${r}_bridge]}) p=$(med ${T[${r}_publish]})
    echo "| $r | $(ms "$n") ($(spread ${T[${r}_none]})) | $(ms "$b") ($(spread ${T[${r}_bridge]})) | $(ms "$p") ($(spread ${T[${r}_publish]})) | $(ms "($b - $n)") | $(ms "($p - $n)") |"
    eval "${r}_b=\$(( ${b%.*} - ${n%.*} )) ${r}_p=\$(( ${p%.*} - ${n%.*} ))"
  done
  n=$(med ${C[husk_none]}) b=$(med ${C[husk_bridge]}) p=$(med ${C[husk_publish]})
  echo "| husk, CPU time (user+sys of husk and its container) | $(ms "$n") | $(ms "$b") | $(ms "$p") | $(ms "($b - $n)") | $(ms "($p - $n)") |"
  if [[ -n $PODMAN ]]; then
    echo
    echo "husk's added cost over podman's (the goal: at most 0.02): bridge $($py -c "print(f'{$husk_b/$podman_b:.3f}')"), \`-p\` $($py -c "print(f'{$husk_p/$podman_p:.3f}')")."
  fi
  echo
  echo "Throughput into a husk container from another namespace, $XFERS transfers of $MB MiB per path,"
  echo "interleaved (MB/s; sender: Python, sink: busybox \`nc\` + \`cat\`): through the published port"
  echo "$(med ${X[published]}) (${X[published]% }), direct to the container's address $(med ${X[direct]}) (${X[direct]% });"
  echo "ratio $($py -c "print(f'{$(med ${X[published]})/$(med ${X[direct]}):.2f}')") (the goal: at least 0.9)."
} >"$OUT"
cat "$OUT"
