# Shell helpers the test scripts share; sourced (`. scripts/lib.sh`) after `cd` to the repo root.

# stop_pid PID: TERM, wait up to 10 s, then KILL.
stop_pid() {
  local p=$1 i
  kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
}

# wait_for SECONDS CMD...: until CMD succeeds; 1 when the time is up.
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do ((SECONDS < end)) || return 1; sleep 0.1; done
}

# need_vm WHAT: sets $vm to the cgroup2-vm tool (CGROUP2_VM, default ../shared/tools/cgroup2-vm);
# without it, prints a SKIP line for WHAT and exits: 0, or 1 where every test must run
# (HUSK_REQUIRE_ALL=1, scripts/test.sh as root).
need_vm() {
  vm=${CGROUP2_VM:-../shared/tools/cgroup2-vm}
  [[ -x $vm ]] && return 0
  echo "SKIP $1: $vm not found (set CGROUP2_VM to the cgroup2-vm tool)"
  [[ ${HUSK_REQUIRE_ALL:-} == 1 ]] && exit 1
  exit 0
}

# podman_conf FILE: a containers.conf podman can run with on this host, which cannot raise
# RLIMIT_NOFILE/NPROC past its own hard limits (rootful podman asks for nofile=1048576), with
# cgroupfs and file events so podman needs no systemd. Used by test-clients.sh and bench/.
podman_conf() {
  cat >"$1" <<CONF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
}
