#!/usr/bin/env bash
# Proves that real OCI clients drive husk unchanged: podman (--runtime PATH), containerd's runc v2
# shim through ctr (--runc-binary PATH) and dockerd (--add-runtime husk=PATH). Root, Debian/Ubuntu.
#
# Installs what it needs with apt-get, builds husk (release), builds a busybox image locally
# (umoci + skopeo, nothing is pulled), starts each daemon on a private socket/root under a temp dir,
# runs the checks and stops everything in a trap. Each check prints PASS/FAIL/SKIP with the exact
# command; the last line is "N passed, N failed"; the exit status is non-zero on any failure.
#
# husk is called through a logging shim (argv to $T/argv-CLIENT.log, then exec husk); the distinct
# commands each client sent are printed at the end.
#
# Environment: HUSK=PATH uses that binary instead of building; CLIENTS="podman ctr docker" picks
# clients; BENCH_RUNS=N (default 5, 0 = off) times `run --rm IMG true` with husk and with runc;
# KEEP=1 keeps the temp dir (logs) after the run. For crun timings too, start it with
#   unshare -m --propagation private sh -c "umount /sys/fs/cgroup/unified && scripts/test-clients.sh"
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CLIENTS=${CLIENTS:-podman ctr docker}
BENCH_RUNS=${BENCH_RUNS:-5}
NPASS=0 NFAIL=0 NSKIP=0
say() { printf '\n== %s\n' "$*"; }
[[ $(id -u) == 0 ]] || { echo "test-clients.sh must run as root"; echo "0 passed, 1 failed"; exit 1; }

# ---------------------------------------------------------------------------------------------
# install (idempotent)
pkgs=(runc iptables nftables skopeo umoci busybox-static curl
  podman conmon netavark aardvark-dns catatonit slirp4netns uidmap containerd docker.io)
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [[ ${#need[@]} -gt 0 ]]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -q >/dev/null
  # policy-rc.d style: never let the packages start their system daemons.
  timeout 900 apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null ||
    { echo "apt-get install failed"; echo "0 passed, 1 failed"; exit 1; }
fi
RUNC=$(command -v runc)
# crun (timings only) refuses hybrid cgroups whose cgroup2 part offers controllers (this VM:
# hugetlb); it runs when this script is started in a mount namespace without the cgroup2 mount.
CRUN=$(command -v crun || true)
if [[ -n $CRUN ]] && grep -qs . /sys/fs/cgroup/unified/cgroup.controllers; then CRUN=; fi

# ---------------------------------------------------------------------------------------------
# husk
if [[ -n ${HUSK:-} ]]; then
  HUSK=$(readlink -f "$HUSK")
else
  say "build husk (release)"
  timeout 900 cargo build --release --locked -p husk >"${TMPDIR:-/tmp}/husk-clients-build.log" 2>&1 ||
    { tail -n 20 "${TMPDIR:-/tmp}/husk-clients-build.log"; echo "0 passed, 1 failed"; exit 1; }
  HUSK=$REPO/target/x86_64-unknown-linux-musl/release/husk
fi
[[ -x $HUSK ]] || { echo "no husk binary at $HUSK"; echo "0 passed, 1 failed"; exit 1; }

T=$(mktemp -d /tmp/hc.XXXXXX) # short: unix socket paths live under it
chmod 755 "$T"
mkdir -p "$T/bin" "$T/logs"
for c in podman ctr docker; do
  cat >"$T/bin/husk-$c" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>$T/argv-$c.log
exec $HUSK "\$@"
EOF
  chmod 755 "$T/bin/husk-$c"
done

# ---------------------------------------------------------------------------------------------
# host state before, restored by the trap
links_before=$(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort)
nft_before=$(nft list tables 2>/dev/null | sort)
fwd_before=$(sysctl -n net.ipv4.ip_forward)
netns_mounted_before=0; mountpoint -q /run/netns 2>/dev/null && netns_mounted_before=1
run_before=$(ls -A /run | sort)
keyjson_before=0; [[ -e /etc/docker/key.json ]] && keyjson_before=1
# created outside our temp dir, whatever we ask: skopeo/podman's blob cache, dockerd's containerd opt dir
created_dirs=()
for d in /var/lib/containers /opt/containerd; do [[ -e $d ]] || created_dirs+=("$d"); done
PIDS=()

stop_pid() { # stop_pid PID: TERM, wait up to 10 s, then KILL
  local p=$1 i
  kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
}

cleanup() {
  set +e
  [[ -n ${P+x} ]] && timeout 30 "${P[@]}" rm -af -t 0 >/dev/null 2>&1
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  # shims and conmons that belong to this run (their command line names our temp dir)
  local killed=()
  for p in $(pgrep -f -- "$T/" 2>/dev/null); do [[ $p != $$ ]] && kill -KILL "$p" 2>/dev/null && killed+=("$p"); done
  # SIGKILL lands asynchronously: unmount only once they are dead (gone, or a zombie nobody
  # reaps), waiting at most 60 s for each.
  for p in "${killed[@]}"; do
    for i in $(seq 600); do
      [[ ! -e /proc/$p ]] || [[ $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) == Z* ]] && break
      sleep 0.1
    done
  done
  # mounts under the temp dir (overlay roots, shm, netns files), deepest first
  awk -v t="$T/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  # network state the clients created
  for l in $(comm -13 <(echo "$links_before") <(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort)); do
    ip link del "$l" 2>/dev/null
  done
  for t in $(comm -13 <(echo "$nft_before") <(nft list tables 2>/dev/null | sort) | awk '{print $2" "$3}' | tr ' ' ':'); do
    nft delete table ${t/:/ } 2>/dev/null
  done
  sysctl -qw net.ipv4.ip_forward="$fwd_before"
  if [[ $netns_mounted_before == 0 ]] && mountpoint -q /run/netns 2>/dev/null && [[ -z $(ls -A /run/netns) ]]; then
    umount /run/netns && rmdir /run/netns
  fi
  for d in "${created_dirs[@]}"; do rm -rf "$d"; done
  [[ $keyjson_before == 0 ]] && rm -f /etc/docker/key.json && rmdir /etc/docker 2>/dev/null
  for d in $(comm -13 <(echo "$run_before") <(ls -A /run | sort)); do
    case $d in
      containerd | docker | libpod | containers | cni) rm -rf "/run/$d" ;;
      runc | crun | netns) rmdir "/run/$d" 2>/dev/null ;; # the runtimes' default roots, if empty
    esac
  done
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# checks
OUT=$T/out
show() { printf '%q ' "$@" | sed 's/ $//'; }
pass() { NPASS=$((NPASS + 1)); echo "PASS: $*"; }
fail() {
  NFAIL=$((NFAIL + 1)); echo "FAIL: $1"; shift
  [[ $# -gt 0 ]] && echo "      $*"
  sed 's/^/      | /' "$OUT" | tail -n 15
}
skip() { NSKIP=$((NSKIP + 1)); echo "SKIP: $1 ($2)"; }
# check RC REGEX CMD...: the command exits with RC and its output (stdout+stderr) matches REGEX
check() {
  local want=$1 re=$2; shift 2
  local rc=0
  timeout 60 "$@" >"$OUT" 2>&1 || rc=$?
  if [[ $rc == "$want" ]] && { [[ -z $re ]] || grep -Eq -- "$re" "$OUT"; }; then pass "$(show "$@")"; return 0; fi
  fail "$(show "$@")" "exit $rc (want $want)${re:+, output must match /$re/}"
  return 1
}
# retry SECONDS RC REGEX CMD...: like check, but retried until it passes or SECONDS run out
retry() {
  local secs=$1 want=$2 re=$3; shift 3
  local end=$((SECONDS + secs)) rc
  while :; do
    rc=0; timeout 10 "$@" >"$OUT" 2>&1 || rc=$?
    if [[ $rc == "$want" ]] && { [[ -z $re ]] || grep -Eq -- "$re" "$OUT"; }; then pass "$(show "$@")"; return 0; fi
    ((SECONDS < end)) || break
    sleep 0.2
  done
  fail "$(show "$@")" "exit $rc (want $want) for ${secs}s, output must match /$re/"
  return 1
}
# bench LABEL VALUES CMD...: wall time of CMD with @RT@ replaced by each runtime's entry in the
# associative array named VALUES (husk, runc, crun; empty = left out). The runtimes take turns,
# BENCH_RUNS rounds after one warm-up round, so load changes hit them alike. Prints the mean.
bench() {
  local label=$1; local -n vals=$2; shift 2
  ((BENCH_RUNS > 0)) || return 0
  local rts=() rt i a t0 cmd
  for rt in husk runc crun; do [[ -n ${vals[$rt]:-} ]] && rts+=("$rt"); done
  local -A total=() bad=()
  for i in $(seq 0 "$BENCH_RUNS"); do
    for rt in "${rts[@]}"; do
      cmd=(); for a in "$@"; do cmd+=("${a//@RT@/${vals[$rt]}}"); done
      t0=$(date +%s%N)
      timeout 60 "${cmd[@]}" >/dev/null 2>&1 || bad[$rt]=1
      ((i > 0)) && total[$rt]=$((${total[$rt]:-0} + $(date +%s%N) - t0))
    done
  done
  for rt in "${rts[@]}"; do
    if [[ -n ${bad[$rt]:-} ]]; then echo "TIME: $label, $rt: failed"
    else echo "TIME: $label, $rt: $((total[$rt] / 1000000 / BENCH_RUNS)) ms mean of $BENCH_RUNS"; fi
  done
  cmd=(); for a in "$@"; do cmd+=("${a//@RT@/${vals[husk]}}"); done
  echo "      ($(show "${cmd[@]}"))"
}
wait_for() { # wait_for SECONDS CMD...: until CMD succeeds
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do ((SECONDS < end)) || return 1; sleep 0.1; done
}

# ---------------------------------------------------------------------------------------------
say "image: busybox-static rootfs -> OCI layout (umoci) -> docker and OCI archives (skopeo)"
img=$T/img
mkdir -p "$img/rootfs"/{bin,etc,tmp,proc,sys,dev,root,var/www}
cp /bin/busybox "$img/rootfs/bin/busybox"
for a in $("$img/rootfs/bin/busybox" --list); do [[ $a == busybox ]] || ln -sf busybox "$img/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$img/rootfs/etc/passwd"
echo 'root:x:0:' >"$img/rootfs/etc/group"
echo 'hello from husk' >"$img/rootfs/var/www/index.html"
(
  set -e
  cd "$img"
  umoci init --layout oci
  umoci new --image oci:latest
  umoci unpack --rootless --image oci:latest bundle
  cp -a rootfs/. bundle/rootfs/
  umoci repack --image oci:latest bundle
  umoci config --image oci:latest --config.cmd /bin/sh \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.workingdir / --architecture amd64 --os linux
  umoci gc --layout oci
  rm -rf bundle
  skopeo copy -q oci:oci:latest docker-archive:busybox-docker.tar:localhost/hcbox:latest
  skopeo copy -q oci:oci:latest oci-archive:busybox-oci.tar:localhost/hcbox:latest
) >"$T/logs/image.log" 2>&1 || { echo "image build failed:"; tail "$T/logs/image.log"; echo "0 passed, 1 failed"; exit 1; }
IMG=localhost/hcbox:latest
echo "built $img/busybox-docker.tar and $img/busybox-oci.tar"

# ---------------------------------------------------------------------------------------------
podman_tests() {
  say "podman $(podman --version | awk '{print $3}') --runtime $T/bin/husk-podman"
  mkdir -p "$T/podman"
  # rootful podman asks for nofile=1048576; the runtime cannot raise the hard limit here.
  cat >"$T/podman/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  export CONTAINERS_CONF=$T/podman/containers.conf
  local pb=(podman --root "$T/podman/root" --runroot "$T/podman/runroot" --tmpdir "$T/podman/tmp"
    --network-config-dir "$T/podman/net" --storage-driver overlay)
  P=("${pb[@]}" --runtime "$T/bin/husk-podman")
  if ! timeout 60 "${P[@]}" load -q -i "$img/busybox-oci.tar" >"$OUT" 2>&1; then
    fail "$(show "${P[@]}" load -q -i "$img/busybox-oci.tar")"; return
  fi
  check 7 '^hi$' "${P[@]}" run --rm --network none "$IMG" sh -c 'echo hi; exit 7'
  # husk's error reaches podman through conmon, in runc's words: 127 and 126 as with runc
  check 127 'stat /nonexistent: no such file or directory' "${P[@]}" run --rm --network none "$IMG" /nonexistent
  check 126 'permission denied' "${P[@]}" run --rm --network none "$IMG" /etc/passwd
  check 0 '^[0-9a-f]{64}$' "${P[@]}" run -d --name hc-top --network none "$IMG" sh -c 'trap "exit 0" TERM; sleep 300 & wait'
  check 0 '^exec-ok$' "${P[@]}" exec hc-top sh -c 'echo exec-ok'
  check 0 'hc-top' "${P[@]}" stop -t 10 hc-top
  check 0 '^0$' "${P[@]}" inspect -f '{{.State.ExitCode}}' hc-top
  check 0 'hc-top' "${P[@]}" rm hc-top
  check 0 '^67108864$' "${P[@]}" run --rm --network none --memory 64m "$IMG" cat /sys/fs/cgroup/memory/memory.limit_in_bytes
  # default (bridge) network: netavark + iptables, a port published on loopback only
  local port=18341
  if check 0 '' "${P[@]}" run -d --name hc-web -p 127.0.0.1:$port:8080 "$IMG" httpd -f -p 8080 -h /var/www; then
    retry 10 0 'hello from husk' curl -s --max-time 2 http://127.0.0.1:$port/
    check 0 'hc-web' "${P[@]}" rm -f -t 0 hc-web
  fi
  # timings call husk itself, not the logging shim
  local -A rtp=([husk]=$HUSK [runc]=$RUNC [crun]=$CRUN)
  bench "podman run --rm --network none" rtp "${pb[@]}" --runtime @RT@ run --rm --network none "$IMG" true
  bench "podman run --rm (bridge)" rtp "${pb[@]}" --runtime @RT@ run --rm "$IMG" true
  timeout 30 "${P[@]}" rm -af -t 0 >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------
ctr_tests() {
  say "containerd $(containerd --version | awk '{print $3}') + ctr, runc v2 shim --runc-binary $T/bin/husk-ctr"
  local d=$T/ctd
  mkdir -p "$d"
  cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/c.sock"
[ttrpc]
  address = "$d/c.sock.ttrpc"
[debug]
  address = "$d/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
EOF
  containerd --config "$d/config.toml" >"$T/logs/containerd.log" 2>&1 &
  PIDS+=($!)
  C=(ctr -a "$d/c.sock" -n husk-test)
  if ! wait_for 20 "${C[@]}" version; then
    skip "ctr" "containerd did not start: $(tail -n 3 "$T/logs/containerd.log" | tr '\n' ' ')"; return
  fi
  if ! timeout 60 "${C[@]}" images import "$img/busybox-docker.tar" >"$OUT" 2>&1; then
    fail "$(show "${C[@]}" images import "$img/busybox-docker.tar")"; return
  fi
  local rb=(--runc-binary "$T/bin/husk-ctr")
  check 7 '^hi$' "${C[@]}" run --rm "${rb[@]}" "$IMG" hc1 sh -c 'echo hi; exit 7'
  # the shim reads husk's error from the JSON --log file
  check 1 'stat /nonexistent: no such file or directory' "${C[@]}" run --rm "${rb[@]}" "$IMG" hc0 /nonexistent
  check 0 '' "${C[@]}" run -d "${rb[@]}" --memory-limit 67108864 "$IMG" hc2 sleep 300
  check 0 '^exec-ok$' "${C[@]}" task exec --exec-id e1 hc2 sh -c 'echo exec-ok'
  check 0 '^67108864$' cat /sys/fs/cgroup/memory/husk-test/hc2/memory.limit_in_bytes
  check 0 '' "${C[@]}" task kill -s SIGKILL hc2
  retry 10 0 'hc2 +[0-9]+ +STOPPED' "${C[@]}" task ls
  check 0 '' "${C[@]}" task rm hc2
  check 0 '' "${C[@]}" containers rm hc2
  local -A rtp=([husk]=$HUSK [runc]=$RUNC [crun]=$CRUN)
  bench "ctr run --rm" rtp "${C[@]}" run --rm --runc-binary @RT@ "$IMG" hcb true
}

# ---------------------------------------------------------------------------------------------
docker_tests() {
  local dv
  dv=$(dockerd --version | awk '{print $3}' | tr -d ,)
  say "dockerd $dv --add-runtime husk=$T/bin/husk-docker (--bridge=none --iptables=false)"
  local d=$T/dkr
  mkdir -p "$d"
  echo '{}' >"$d/daemon.json"
  dockerd --config-file "$d/daemon.json" --data-root "$d/root" --exec-root "$d/exec" \
    -H "unix://$d/d.sock" --pidfile "$d/d.pid" --bridge=none --iptables=false --ip-forward=false \
    --storage-driver overlay2 --add-runtime husk="$T/bin/husk-docker" \
    --add-runtime husk-bare="$HUSK" ${CRUN:+--add-runtime crun="$CRUN"} >"$T/logs/dockerd.log" 2>&1 &
  PIDS+=($!)
  # /usr/bin/docker: the Debian CLI matching this dockerd (another may come first in PATH)
  D=(/usr/bin/docker -H "unix://$d/d.sock")
  if ! wait_for 30 "${D[@]}" version; then
    skip "docker" "dockerd did not start: $(tail -n 3 "$T/logs/dockerd.log" | tr '\n' ' ')"; return
  fi
  if ! timeout 60 "${D[@]}" load -q -i "$img/busybox-docker.tar" >"$OUT" 2>&1; then
    fail "$(show "${D[@]}" load -q -i "$img/busybox-docker.tar")"; return
  fi
  # --network none: no bridge, but docker still puts its libnetwork-setkey prestart hook in
  # config.json (the default network with --bridge=none has no network namespace and no hook)
  local R=(--runtime husk --network none)
  check 7 '^hi$' "${D[@]}" run --rm "${R[@]}" "$IMG" sh -c 'echo hi; exit 7'
  check 127 'stat /nonexistent: no such file or directory' "${D[@]}" run --rm "${R[@]}" "$IMG" /nonexistent
  check 126 'permission denied' "${D[@]}" run --rm "${R[@]}" "$IMG" /etc/passwd
  check 0 '' "${D[@]}" run -d "${R[@]}" --name hc-top "$IMG" sh -c 'trap "exit 0" TERM; sleep 300 & wait'
  check 0 'libnetwork-setkey' cat "$d/exec/containerd/daemon/io.containerd.runtime.v2.task/moby/$(cat "$OUT" 2>/dev/null)/config.json"
  check 0 '^exec-ok$' "${D[@]}" exec hc-top sh -c 'echo exec-ok'
  check 0 'hc-top' "${D[@]}" stop -t 10 hc-top
  check 0 '^0$' "${D[@]}" inspect -f '{{.State.ExitCode}}' hc-top
  check 0 'hc-top' "${D[@]}" rm hc-top
  check 0 '^67108864$' "${D[@]}" run --rm "${R[@]}" --memory 64m "$IMG" cat /sys/fs/cgroup/memory/memory.limit_in_bytes
  local -A rtd=([husk]=husk-bare [runc]=runc [crun]=${CRUN:+crun})
  bench "docker run --rm --network none" rtd "${D[@]}" run --rm --runtime @RT@ --network none "$IMG" true
}

for c in $CLIENTS; do
  case $c in
    podman) podman_tests ;;
    ctr) ctr_tests ;;
    docker) docker_tests ;;
    *) echo "unknown client $c" ;;
  esac
done

say "husk commands each client sent (ids and temp paths abstracted)"
for c in $CLIENTS; do
  [[ -s $T/argv-$c.log ]] || continue
  echo "-- $c"
  sed -E -e "s#$T#\$T#g" -e 's#[0-9a-f]{64}#<id>#g' -e 's#/runc-process[0-9]+#/runc-process<n>#g' \
    -e 's#\bhc[a-z0-9-]*\b#<name>#g' -e 's#\be1\b#<exec-id>#g' \
    -e 's#exec-process-[0-9]+#exec-process-<n>#g' "$T/argv-$c.log" | sort -u | sed 's/^/   husk /'
done

echo
[[ $NSKIP -gt 0 ]] && echo "($NSKIP skipped)"
echo "$NPASS passed, $NFAIL failed"
[[ $NFAIL == 0 ]]
