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
# Then the matrix: each mode people use (-it, -u, user namespaces, rootless podman, ...) runs
# under the same client with runc and then with husk; husk must pass wherever runc passes, a mode
# runc fails here is SKIP with runc's error. podman and all its networking run in a network
# namespace the script makes; the host's interfaces and firewall are never touched.
#
# Environment: HUSK=PATH uses that binary instead of building; CLIENTS="podman ctr docker" picks
# clients; BENCH_RUNS=N (default 5, 0 = off) times `run --rm IMG true` with husk and with runc;
# KEEP=1 keeps the temp dir (logs) after the run; VERBOSE=1 prints every matrix step of both
# runtimes. For crun timings too, start it with
#   unshare -m --propagation private sh -c "umount /sys/fs/cgroup/unified && scripts/test-clients.sh"
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
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
for c in podman ctr docker rootless; do
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
netns_mounted_before=0; mountpoint -q /run/netns 2>/dev/null && netns_mounted_before=1
run_before=$(ls -A /run | sort)
keyjson_before=0; [[ -e /etc/docker/key.json ]] && keyjson_before=1
# created outside our temp dir, whatever we ask: skopeo/podman's blob cache, dockerd's containerd opt dir
created_dirs=()
for d in /var/lib/containers /opt/containerd; do [[ -e $d ]] || created_dirs+=("$d"); done
PIDS=()


wait_dead() { # wait_dead PID...: until each is gone or a zombie nobody reaps, at most 60 s each
  local p i
  for p in "$@"; do
    for i in $(seq 600); do
      [[ ! -e /proc/$p ]] || [[ $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) == Z* ]] && break
      sleep 0.1
    done
  done
}

cleanup() {
  set +e
  [[ -n ${P+x} ]] && timeout 30 "${P[@]}" rm -af -t 0 >/dev/null 2>&1
  subids_restore
  # rootless podman's pause process (it holds the user's namespace), then the user if made here
  [[ -s $T/rootless-run/libpod/tmp/pause.pid ]] && kill -KILL "$(cat "$T/rootless-run/libpod/tmp/pause.pid")" 2>/dev/null
  if [[ -n ${RL_MADE:-} ]]; then
    local rl=()
    for p in $(pgrep -u "$RL_USER" 2>/dev/null); do kill -KILL "$p" 2>/dev/null && rl+=("$p"); done
    wait_dead "${rl[@]}" # userdel refuses a user with processes
    userdel "$RL_USER" 2>/dev/null
  fi
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  [[ -n ${REMAP_MADE:-} ]] && userdel hcremap 2>/dev/null
  # shims and conmons that belong to this run (their command line names our temp dir)
  local killed=()
  for p in $(pgrep -f -- "$T/" 2>/dev/null); do [[ $p != $$ ]] && kill -KILL "$p" 2>/dev/null && killed+=("$p"); done
  # SIGKILL lands asynchronously: unmount only once they are dead
  wait_dead "${killed[@]}"
  # mounts under the temp dir (overlay roots, shm, netns files), deepest first
  awk -v t="$T/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
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

# wrapper NAME CMD...: $T/bin/NAME RT ARGS... runs CMD with ARGS in place of @ARGS@; in CMD and
# ARGS, @RT@ becomes RT's runtime for podman (a path) or docker (a name), and an @RB@ argument
# becomes --runc-binary PATH for ctr. A script, not a function, so `timeout` and the pty helper
# can run it.
wrapper() {
  local name=$1; shift
  cat >"$T/bin/$name" <<EOF
#!/usr/bin/env bash
rt=\$1; shift
case \$rt/$name in
  husk/pm) r=$T/bin/husk-podman ;; husk/ct) r=$T/bin/husk-ctr ;; husk/dk) r=husk ;;
  runc/dk) r=runc ;; *) r=$RUNC ;;
esac
cmd=()
for a in $(printf '%q ' "$@"); do
  if [[ \$a == @ARGS@ ]]; then
    for b in "\$@"; do if [[ \$b == @RB@ ]]; then cmd+=(--runc-binary "\$r"); else cmd+=("\${b//@RT@/\$r}"); fi; done
  else cmd+=("\${a//@RT@/\$r}"); fi
done
exec "\${cmd[@]}"
EOF
  chmod 755 "$T/bin/$name"
}
export PATH=$T/bin:$PATH

# ---------------------------------------------------------------------------------------------
# the matrix: each mode of a client runs with runc, then with husk, under the same client in the
# same run. husk must pass wherever runc passes; a mode runc fails here is SKIP with runc's error.
# A mode is a function MODE RT (RT = runc or husk) made of steps; it returns non-zero at the
# first failing step and cleans up after itself either way.
ROWS=()
step() { # step RC REGEX CMD...: the command exits with RC and its output matches REGEX
  local want=$1 re=$2 rc=0; shift 2
  timeout 60 "$@" >"$T/step" 2>&1 || rc=$?
  printf '$ %s\n' "$(show "$@")"; cat "$T/step"
  if [[ $rc == "$want" ]] && { [[ -z $re ]] || grep -Eq -- "$re" "$T/step"; }; then return 0; fi
  echo "=> exit $rc (want $want)${re:+, output must match /$re/}"
  return 1
}
step_until() { # step_until SECONDS RC REGEX CMD...: step, retried until it passes or time is up
  local end=$((SECONDS + $1)); shift
  until step "$@" >"$T/step.last"; do
    ((SECONDS < end)) || { cat "$T/step.last"; return 1; }
    sleep 0.2
  done
  cat "$T/step.last"
}
# step_pty RC REGEX CMD...: CMD with a new pty as its terminal (what -it/--tty need); $TTY_IN is
# typed once the shell's prompt ('# ') shows
TTY_IN='echo "$(tty)-tty-$((6*7))"; exit 3'
TTY_RE='^/dev/pts/[0-9]+-tty-42'
step_pty() {
  local want=$1 re=$2; shift 2
  step "$want" "$re" python3 "$T/ptyrun.py" '# ' "$TTY_IN" "$@"
}
mode() { # mode CLIENT NAME FUNCTION
  local client=$1 name=$2 fn=$3 r=PASS h=PASS why
  "$fn" runc >"$T/mode.runc" 2>&1 || r=FAIL
  "$fn" husk >"$T/mode.husk" 2>&1 || h=FAIL
  if [[ $h == PASS ]]; then
    pass "$client $name (runc: $r)"
  elif [[ $r == FAIL ]]; then
    why=$(grep -v '^[$] \|^=>' "$T/mode.runc" | grep -m1 -i 'error\|denied\|not \|fail\|unsupported' ||
      tail -n 1 "$T/mode.runc")
    skip "$client $name" "runc fails it too: ${why:0:200}"
    h=SKIP
  else
    cp "$T/mode.husk" "$OUT"
    fail "$client $name (runc passes)"
  fi
  ROWS+=("$client|$name|$r|$h")
  if [[ ${VERBOSE:-0} == 1 ]]; then
    sed 's/^/      runc| /' "$T/mode.runc"; sed 's/^/      husk| /' "$T/mode.husk"
  fi
  return 0
}
skip_mode() { # skip_mode CLIENT NAME REASON: a mode neither runtime can run on this host
  skip "$1 $2" "$3"
  ROWS+=("$1|$2|SKIP|SKIP")
}
cat >"$T/ptyrun.py" <<'PY'
# ptyrun.py READY INPUT CMD...: runs CMD with a new pty as its terminal, types INPUT and a newline
# once READY shows in the output, copies the output to stdout, exits with CMD's status.
import os, pty, select, sys, time
ready, data, cmd = sys.argv[1].encode(), sys.argv[2].encode() + b"\n", sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
out, sent, end, status = b"", False, time.time() + 50, None
while time.time() < end:
    if not sent and ready in out:
        os.write(fd, data)
        sent = True
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            b = os.read(fd, 4096)
        except OSError:  # EIO: nobody holds the terminal any more
            b = b""
        out += b
        sys.stdout.buffer.write(b)
        sys.stdout.flush()
        if b:
            continue
    if status is None:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(st)
    if status is not None:
        break
if status is None:
    os.kill(pid, 9)
    sys.exit(124)
sys.exit(status)
PY

# ---------------------------------------------------------------------------------------------
say "image: busybox-static rootfs -> OCI layout (umoci) -> docker and OCI archives (skopeo)"
img=$T/img
mkdir -p "$img/rootfs"/{bin,etc,tmp,proc,sys,dev,root,var/www}
cp /bin/busybox "$img/rootfs/bin/busybox"
for a in $("$img/rootfs/bin/busybox" --list); do [[ $a == busybox ]] || ln -sf busybox "$img/rootfs/bin/$a"; done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'hcuser:x:1001:1001:hc:/tmp:/bin/sh' >"$img/rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'hcgroup:x:1001:' >"$img/rootfs/etc/group"
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
# a seccomp profile that allows everything but mkdir (EPERM)
cat >"$T/seccomp-no-mkdir.json" <<'EOF'
{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
EOF
CRIU_WHY="checkpoint/restore needs CRIU: $(command -v criu >/dev/null && echo "criu $(criu --version 2>/dev/null | awk 'NR==1{print $2}')" || echo "criu is not installed;") criu 3.17 (Debian 12) fails on this host's kernel $(uname -r)"
echo "built $img/busybox-docker.tar and $img/busybox-oci.tar"

# ---------------------------------------------------------------------------------------------
podman_tests() {
  say "podman $(podman --version | awk '{print $3}') --runtime $T/bin/husk-podman, in a network namespace of its own"
  mkdir -p "$T/podman"
  podman_conf "$T/podman/containers.conf"
  export CONTAINERS_CONF=$T/podman/containers.conf
  # podman (and through it netavark's bridge, veth and iptables rules, and every container's
  # network) runs in a network namespace made here: the host's interfaces and firewall are left
  # alone. Mounts stay in the host's mount namespace, so podman's later calls see them.
  touch "$T/netns"
  unshare --net="$T/netns" true && nsenter --net="$T/netns" ip link set lo up ||
    { fail "a network namespace for podman (unshare --net=$T/netns)"; return; }
  NS=(nsenter --net="$T/netns")
  pb=("${NS[@]}" podman --root "$T/podman/root" --runroot "$T/podman/runroot" --tmpdir "$T/podman/tmp"
    --network-config-dir "$T/podman/net" --storage-driver overlay)
  P=("${pb[@]}" --runtime "$T/bin/husk-podman")
  # pm RT ARGS...: podman with runtime RT (husk through the logging shim, or runc)
  wrapper pm "${pb[@]}" --runtime @RT@ @ARGS@
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

  say "podman modes, runc then husk"
  mode podman "run -it" pm_run_it
  mode podman "exec -it" pm_exec_it
  mode podman "-u 1000:1000" pm_user_ids
  mode podman "-u NAME" pm_user_name
  mode podman "--uidmap/--gidmap" pm_uidmap
  mode podman "--userns=keep-id (rootful)" pm_keep_id
  subids_add
  mode podman "--userns=auto" pm_userns_auto
  mode podman "rootless (podman as an ordinary user)" pm_rootless
  mode podman "rootless --userns=keep-id" pm_rootless_keep_id
  subids_restore
  mode podman "--network bridge -p" pm_bridge_port
  mode podman "--read-only" pm_read_only
  mode podman "--security-opt seccomp=FILE" pm_seccomp
  mode podman "--cap-drop all --cap-add chown" pm_caps
  mode podman "kill -s USR1" pm_kill_signal
  mode podman "restart" pm_restart
  mode podman "healthcheck run" pm_healthcheck
  skip_mode podman "container checkpoint/restore" "$CRIU_WHY"
  if host_net_untouched >"$OUT"; then pass "the host's links and nft tables are untouched"; else
    fail "podman's network reached the host" "$(cat "$OUT")"; fi

  # timings call husk itself, not the logging shim
  local -A rtp=([husk]=$HUSK [runc]=$RUNC [crun]=$CRUN)
  bench "podman run --rm --network none" rtp "${pb[@]}" --runtime @RT@ run --rm --network none "$IMG" true
  bench "podman run --rm (bridge)" rtp "${pb[@]}" --runtime @RT@ run --rm "$IMG" true
  timeout 30 "${P[@]}" rm -af -t 0 >/dev/null 2>&1
}

host_net_untouched() { # no link or nft table of the host appeared that netavark would make
  local links tables
  links=$(comm -13 <(echo "$links_before") <(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort) |
    grep -E '^(podman|veth|netavark)' | tr '\n' ' ')
  tables=$(comm -13 <(echo "$nft_before") <(nft list tables 2>/dev/null | sort) | tr '\n' ' ')
  echo "new links: ${links:-none}; new nft tables: ${tables:-none}"
  [[ -z $links && -z $tables ]]
}

pm_gone() { pm "$1" rm -f -t 0 "$2" >/dev/null 2>&1; return 0; }
pm_run_it() {
  step_pty 3 "$TTY_RE" pm "$1" run --rm -it --network none "$IMG" sh
}
pm_exec_it() {
  local n=hcm-exec-$1 ok=0
  step 0 '' pm "$1" run -d --name "$n" --network none "$IMG" sleep 600 &&
    step_pty 3 "$TTY_RE" pm "$1" exec -it "$n" sh || ok=1
  pm_gone "$1" "$n"; return $ok
}
pm_user_ids() {
  step 0 'uid=1000[^ ]* gid=1000' pm "$1" run --rm --network none -u 1000:1000 "$IMG" id
}
pm_user_name() {
  step 0 'uid=1001\(hcuser\) gid=1001\(hcgroup\)' pm "$1" run --rm --network none -u hcuser "$IMG" id
}
pm_uidmap() {
  step 0 '^ +0 +100000 +65536' pm "$1" run --rm --network none --uidmap 0:100000:65536 \
    --gidmap 0:100000:65536 "$IMG" cat /proc/self/uid_map /proc/self/gid_map
}
pm_keep_id() {
  step 0 'uid=0' pm "$1" run --rm --network none --userns=keep-id "$IMG" id
}
pm_userns_auto() {
  # a range of the user `containers` (subids_add), not host root
  step 0 '^ +0 +[1-9][0-9]* +[0-9]+' pm "$1" run --rm --network none --userns=auto "$IMG" cat /proc/self/uid_map
}
pm_bridge_port() {
  # podman's default network (netavark: bridge, veth, iptables) in the script's netns
  local n=hcm-web-$1 port=18341 ok=0
  [[ $1 == husk ]] && port=18342
  step 0 '' pm "$1" run -d --name "$n" -p 127.0.0.1:$port:8080 "$IMG" httpd -f -p 8080 -h /var/www &&
    step_until 10 0 'hello from husk' "${NS[@]}" curl -s --max-time 2 http://127.0.0.1:$port/ || ok=1
  pm_gone "$1" "$n"; return $ok
}
pm_read_only() {
  # the root is read-only, podman's tmpfs /tmp is not
  step 0 '^ro-ok$' pm "$1" run --rm --network none --read-only "$IMG" \
    sh -c 'touch /etc/x 2>/dev/null && echo rw; touch /tmp/x && echo ro-ok'
}
pm_seccomp() {
  step 1 "can't create directory.*Operation not permitted" pm "$1" run --rm --network none \
    --security-opt seccomp="$T/seccomp-no-mkdir.json" "$IMG" mkdir /tmp/d
}
pm_caps() {
  step 0 'CapEff: 0+1 CapBnd: 0+1$' pm "$1" run --rm --network none --cap-drop all --cap-add chown \
    "$IMG" sh -c 'echo $(grep -E "^Cap(Eff|Bnd)" /proc/self/status)'
}
pm_kill_signal() {
  local n=hcm-kill-$1 ok=0
  step 0 '' pm "$1" run -d --name "$n" --network none "$IMG" \
    sh -c 'trap "exit 42" USR1; touch /tmp/ready; while :; do sleep 1; done' &&
    step_until 20 0 '' pm "$1" exec "$n" test -e /tmp/ready &&
    step 0 "$n" pm "$1" kill -s USR1 "$n" &&
    step 0 '^42$' pm "$1" wait "$n" || ok=1
  pm_gone "$1" "$n"; return $ok
}
pm_restart() {
  local n=hcm-restart-$1 ok=0 pid
  step 0 '' pm "$1" run -d --name "$n" --network none "$IMG" sleep 600 &&
    pid=$(pm "$1" inspect -f '{{.State.Pid}}' "$n") &&
    step 0 "$n" pm "$1" restart -t 0 "$n" &&
    step 0 '^true [0-9]+$' pm "$1" inspect -f '{{.State.Running}} {{.State.Pid}}' "$n" &&
    ! grep -q " $pid\$" "$T/step" &&
    step 0 '^restarted$' pm "$1" exec "$n" echo restarted || ok=1
  pm_gone "$1" "$n"; return $ok
}
pm_healthcheck() {
  local n=hcm-health-$1 ok=0
  # interval disable: no systemd timer (there is no systemd here); the check runs on demand
  step 0 '' pm "$1" run -d --name "$n" --network none --health-cmd 'test -e /etc/passwd' \
    --health-interval disable "$IMG" sleep 600 &&
    step 0 '' pm "$1" healthcheck run "$n" &&
    step 0 '^healthy$' pm "$1" inspect -f '{{.State.Health.Status}}' "$n" || ok=1
  pm_gone "$1" "$n"; return $ok
}

# /etc/subuid and /etc/subgid ranges for podman's `containers` user (--userns=auto) and for the
# rootless user, added for the two modes that need them and restored after
subids_add() {
  local f
  for f in /etc/subuid /etc/subgid; do
    cp -p "$f" "$T/$(basename "$f").orig" 2>/dev/null || : >"$T/$(basename "$f").none"
    printf '%s\n' "containers:1000000000:100000000" "$RL_USER:200000:65536" >>"$f"
  done
}
subids_restore() {
  local f b
  for f in /etc/subuid /etc/subgid; do
    b=$(basename "$f")
    if [[ -e $T/$b.orig ]]; then cp -p "$T/$b.orig" "$f"; rm -f "$T/$b.orig"
    elif [[ -e $T/$b.none ]]; then rm -f "$f" "$T/$b.none"; fi
  done
}

# rootless podman: an ordinary user (made here when missing, removed after) with its own storage,
# vfs, no network, its own shim (husk through a log the user can write)
RL_USER=hcrootless
pm_rootless() { # pm_rootless RT [keep-id]
  local rt=$1 keep=${2:-} home=$T/rootless uid rtpath=$RUNC
  id -u "$RL_USER" >/dev/null 2>&1 || { useradd -M -d "$home" -s /bin/sh "$RL_USER" && RL_MADE=1; }
  uid=$(id -u "$RL_USER")
  mkdir -p "$home" "$T/rootless-run"; chown "$RL_USER:" "$home" "$T/rootless-run"; chmod 700 "$T/rootless-run"
  if [[ $rt == husk ]]; then
    rtpath=$T/bin/husk-rootless
    touch "$T/argv-rootless.log"; chmod 666 "$T/argv-rootless.log"
  fi
  local u=(runuser -u "$RL_USER" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$home"
    XDG_RUNTIME_DIR="$T/rootless-run" XDG_CONFIG_HOME="$home/.config"
    podman --root "$home/root" --runroot "$T/rootless-run/run" --storage-driver vfs
    --cgroup-manager cgroupfs --events-backend file --runtime "$rtpath")
  [[ -e $home/loaded ]] || step 0 '' "${u[@]}" load -q -i "$img/busybox-oci.tar" || return 1
  touch "$home/loaded"
  if [[ $keep == keep-id ]]; then
    # the user's own uid inside, mapped onto itself
    step 0 "^uid=$uid\\b" "${u[@]}" run --rm --network none --userns=keep-id "$IMG" sh -c 'id; cat /proc/self/uid_map' &&
      grep -Eq "^ +$uid +0 +1\$" "$T/step"
    return
  fi
  step 0 'uid=0\(root\).*' "${u[@]}" run --rm --network none "$IMG" sh -c 'id; cat /proc/self/uid_map' &&
    grep -Eq "^ +0 +$uid +1" "$T/step"
}
pm_rootless_keep_id() { pm_rootless "$1" keep-id; }

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
  # ct RT ARGS...: ctr; `@RB@` in ARGS becomes --runc-binary with runtime RT
  wrapper ct "${C[@]}" @ARGS@
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
  ctr_engine_contract

  say "ctr modes, runc then husk"
  mode ctr "run --tty" ct_run_tty
  mode ctr "task exec --tty" ct_exec_tty
  mode ctr "run --uidmap/--gidmap" ct_uidmap
  mode ctr "task pause/resume/metrics" ct_pause_metrics
  skip_mode ctr "task checkpoint" "$CRIU_WHY"

  local -A rtp=([husk]=$HUSK [runc]=$RUNC [crun]=$CRUN)
  bench "ctr run --rm" rtp "${C[@]}" run --rm --runc-binary @RT@ "$IMG" hcb true
}

ct_gone() { # ct_gone ID: the task killed and deleted (rm -f), then the container
  timeout 30 "${C[@]}" task rm -f "$1" >/dev/null 2>&1
  timeout 30 "${C[@]}" containers rm "$1" >/dev/null 2>&1
  return 0
}
ct_run_tty() {
  step_pty 3 "$TTY_RE" ct "$1" run --rm -t @RB@ "$IMG" "hcm-tty-$1" sh
}
ct_exec_tty() {
  local n=hcm-etty-$1 ok=0
  step 0 '' ct "$1" run -d @RB@ "$IMG" "$n" sleep 600 &&
    step_pty 3 "$TTY_RE" ct "$1" task exec -t --exec-id sh1 "$n" sh || ok=1
  ct_gone "$n"; return $ok
}
ct_uidmap() {
  step 0 '^ +0 +100000 +65536' ct "$1" run --rm @RB@ --uidmap 0:100000:65536 --gidmap 0:100000:65536 \
    "$IMG" "hcm-map-$1" cat /proc/self/uid_map /proc/self/gid_map
}
ct_pause_metrics() {
  local n=hcm-pause-$1 ok=0
  step 0 '' ct "$1" run -d @RB@ "$IMG" "$n" sleep 600 &&
    step 0 '' ct "$1" task pause "$n" &&
    step 0 "^$n +[0-9]+ +PAUSED" ct "$1" task ls &&
    step 0 '' ct "$1" task resume "$n" &&
    step 0 "^$n +[0-9]+ +RUNNING" ct "$1" task ls &&
    step 0 'memory\.usage_in_bytes|memory\.usage' ct "$1" task metrics "$n" || ok=1
  ct_gone "$n"; return $ok
}

# The runc v2 shim's side of the error contract (docs/clients.md, "Errors engines parse"), and
# exec.fifo reached by a process without capabilities and by root of a user namespace.
ctr_engine_contract() {
  local rb=(--runc-binary "$T/bin/husk-ctr") c nocaps=()
  # Without a pid namespace of its own (here: this script's, joined by path) the shim runs
  # `kill --all hc3 9` after the exit, and logs an error if it fails.
  check 0 '' "${C[@]}" run -d "${rb[@]}" --with-ns "pid:/proc/$$/ns/pid" "$IMG" hc3 true
  retry 10 0 'hc3 +[0-9]+ +STOPPED' "${C[@]}" task ls
  check 0 '^kill --all hc3 9$' sed -n 's/.*\(kill --all hc3 9\)$/\1/p' "$T/argv-ctr.log"
  check 1 '' grep -q "failed to kill init's children" "$T/logs/containerd.log"
  # husk's "container not running" is the shim's "already finished", not an unknown error.
  check 1 'process already finished' "${C[@]}" task kill -s SIGKILL hc3
  check 0 '' "${C[@]}" task rm hc3
  check 0 '' "${C[@]}" containers rm hc3
  # uid 0 with no capabilities on a read-only root (ctr 1.6 knows no ALL: containerd's
  # default set, one by one), then root mapped to host uid 100000.
  for c in CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP \
    NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE; do nocaps+=(--cap-drop "CAP_$c"); done
  check 0 '^0 CapEff: 0+$' "${C[@]}" run --rm "${rb[@]}" "${nocaps[@]}" --read-only "$IMG" hc4 sh -c 'echo $(id -u) $(grep CapEff /proc/self/status)'
  check 0 '^0 0 100000 65536$' "${C[@]}" run --rm "${rb[@]}" --uidmap 0:100000:65536 --gidmap 0:100000:65536 "$IMG" hc5 sh -c 'echo $(id -u) $(cat /proc/self/uid_map)'
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
  # dk RT ARGS...: docker; `@RT@` in ARGS becomes RT's runtime name
  wrapper dk "${D[@]}" @ARGS@
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

  say "docker modes, runc then husk"
  mode docker "run -it" dk_run_it
  mode docker "exec -it" dk_exec_it
  mode docker "-u 1000:1000" dk_user
  mode docker "--init" dk_init
  mode docker "--restart on-failure:2" dk_restart
  mode docker "stats --no-stream, top, update" dk_stats_top_update
  remap_daemon && mode docker "--userns-remap (daemon mode)" dk_remap

  local -A rtd=([husk]=husk-bare [runc]=runc [crun]=${CRUN:+crun})
  bench "docker run --rm --network none" rtd "${D[@]}" run --rm --runtime @RT@ --network none "$IMG" true
}

dk_gone() { "${D[@]}" rm -f "$1" >/dev/null 2>&1; return 0; }
# --userns-remap: a second dockerd whose containers all run in a user namespace mapped onto the
# subuid/subgid ranges of the user hcremap (made here when missing, with the ranges useradd gives
# it from login.defs; removed after)
remap_daemon() {
  local d=$T/dkr
  if ! id -u hcremap >/dev/null 2>&1; then
    useradd -M -d /nonexistent -s /usr/sbin/nologin hcremap && REMAP_MADE=1
  fi
  grep -q '^hcremap:' /etc/subuid || { skip_mode docker "--userns-remap (daemon mode)" "no subuid range for hcremap"; return 1; }
  echo '{}' >"$d/daemon-remap.json"
  dockerd --config-file "$d/daemon-remap.json" --data-root "$d/root-remap" --exec-root "$d/exec-remap" \
    -H "unix://$d/r.sock" --pidfile "$d/r.pid" --bridge=none --iptables=false --ip-forward=false \
    --storage-driver overlay2 --userns-remap hcremap --add-runtime husk="$T/bin/husk-docker" \
    >"$T/logs/dockerd-remap.log" 2>&1 &
  PIDS+=($!)
  DR=(/usr/bin/docker -H "unix://$d/r.sock")
  if ! wait_for 30 "${DR[@]}" version; then
    skip_mode docker "--userns-remap (daemon mode)" "dockerd --userns-remap did not start: $(tail -n 2 "$T/logs/dockerd-remap.log" | tr '\n' ' ')"
    return 1
  fi
  timeout 60 "${DR[@]}" load -q -i "$img/busybox-docker.tar" >"$OUT" 2>&1 ||
    { fail "$(show "${DR[@]}" load -q -i "$img/busybox-docker.tar")"; return 1; }
}
dk_remap() {
  # root in the container is the first subuid of hcremap, and the image's files are its own
  local first
  first=$(awk -F: '$1 == "hcremap" {print $2; exit}' /etc/subuid)
  step 0 "^0 $first [0-9]+ root root" "${DR[@]}" run --rm --runtime "$1" --network none "$IMG" \
    sh -c 'echo $(cat /proc/self/uid_map) $(stat -c "%U %G" /bin/busybox)'
}
dk_run_it() {
  step_pty 3 "$TTY_RE" dk "$1" run --rm -it --runtime @RT@ --network none "$IMG" sh
}
dk_exec_it() {
  local n=hcm-exec-$1 ok=0
  step 0 '' dk "$1" run -d --runtime @RT@ --network none --name "$n" "$IMG" sleep 600 &&
    step_pty 3 "$TTY_RE" dk "$1" exec -it "$n" sh || ok=1
  dk_gone "$n"; return $ok
}
dk_user() {
  step 0 'uid=1000[^ ]* gid=1000' dk "$1" run --rm --runtime @RT@ --network none -u 1000:1000 "$IMG" id
}
dk_init() {
  # docker-init (tini) is pid 1 and runs the command as its child
  step 0 '^ *1 .*docker-init' dk "$1" run --rm --runtime @RT@ --network none --init "$IMG" ps -o pid,args
}
dk_restart() {
  # the daemon restarts the exited task through containerd's shim and the runtime, twice
  local n=hcm-restart-$1 ok=0
  step 0 '' dk "$1" run -d --runtime @RT@ --network none --restart on-failure:2 --name "$n" "$IMG" sh -c 'exit 3' &&
    step_until 30 0 '^2 exited 3$' dk "$1" inspect -f '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}' "$n" || ok=1
  dk_gone "$n"; return $ok
}
dk_stats_top_update() {
  local n=hcm-stats-$1 ok=0
  step 0 '' dk "$1" run -d --runtime @RT@ --network none --name "$n" "$IMG" sleep 600 &&
    step 0 "^$n [0-9.]+[kKMG]i?B / " dk "$1" stats --no-stream --format '{{.Name}} {{.MemUsage}}' "$n" &&
    step 0 'sleep 600' dk "$1" top "$n" &&
    step 0 "" dk "$1" update --memory 128m --memory-swap 256m "$n" &&
    step 0 '^134217728$' dk "$1" exec "$n" cat /sys/fs/cgroup/memory/memory.limit_in_bytes || ok=1
  dk_gone "$n"; return $ok
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
for c in $CLIENTS rootless; do
  [[ -s $T/argv-$c.log ]] || continue
  echo "-- $c"
  sed -E -e "s#$T#\$T#g" -e 's#[0-9a-f]{64}#<id>#g' -e 's#/runc-process[0-9]+#/runc-process<n>#g' \
    -e 's#\bhc[a-z0-9-]*\b#<name>#g' -e 's#\be1\b#<exec-id>#g' \
    -e 's#exec-process-[0-9]+#exec-process-<n>#g' -e 's#/tmp/conmon-term\.[A-Za-z0-9]+#/tmp/conmon-term.<x>#g' \
    -e 's#/tmp/pty[0-9]+/pty\.sock#/tmp/pty<n>/pty.sock#g' "$T/argv-$c.log" | sort -u | sed 's/^/   husk /'
done

if [[ ${#ROWS[@]} -gt 0 ]]; then
  say "matrix (each mode under the same client with runc, then with husk)"
  printf '%-8s %-44s %-5s %s\n' client mode runc husk
  for r in "${ROWS[@]}"; do IFS='|' read -r c m rr hh <<<"$r"; printf '%-8s %-44s %-5s %s\n' "$c" "$m" "$rr" "$hh"; done
fi

echo
[[ $NSKIP -gt 0 ]] && echo "($NSKIP skipped)"
echo "$NPASS passed, $NFAIL failed"
[[ $NFAIL == 0 ]]
