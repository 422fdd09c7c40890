#!/usr/bin/env bash
# Live test of the systemd cgroup driver (`--systemd-cgroup`) against a real systemd: none runs
# on this host, so the cgroup v2 guest (../shared/tools/cgroup2-vm) starts one as pid 1 of a
# husk container (root = the guest's /, its own cgroup namespace with cgroup2 mounted rw,
# tmpfs /run and /tmp, container=husk: what podman's --systemd=always gives), and husk, run
# inside that container as a Kubernetes node image runs its runtime, drives containers through
# it: create/start/update/pause/resume/exec/kill/delete, checked against `systemctl show` and the
# cgroup files (tests/systemd/guest.sh). Usage: scripts/test-systemd.sh
set -euo pipefail
cd "$(dirname "$0")/.."
vm=${CGROUP2_VM:-../shared/tools/cgroup2-vm}
skip() {
  echo "SKIP systemd driver live test: $1"
  # Where every test must run (scripts/test.sh as root), a missing prerequisite is a failure.
  [[ ${HUSK_REQUIRE_ALL:-} == 1 ]] && exit 1
  exit 0
}
[[ -x $vm ]] || skip "$vm not found (set CGROUP2_VM to the cgroup2-vm tool)"
sd=/lib/systemd/systemd
[[ -x $sd ]] || skip "$sd missing (apt-get install systemd)"
command -v runc >/dev/null || skip "runc missing (its spec is the base of both configs)"
stage=$PWD/target/systemd-stage
rm -rf "$stage" && mkdir -p "$stage/outer" "$stage/inner"
cargo build --locked -p husk 2>"$stage/build.log" || { cat "$stage/build.log"; exit 1; }
husk=$PWD/target/x86_64-unknown-linux-musl/debug/husk
(cd "$stage/outer" && runc spec) && (cd "$stage/inner" && runc spec)
python3 - "$stage" <<'PY'
import json, sys
stage = sys.argv[1]
caps = """CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE
SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME
SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG
WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE""".split()
caps = ["CAP_" + c for c in caps]

def load(d):
    with open(f"{stage}/{d}/config.json") as f:
        return json.load(f)

def save(d, c):
    with open(f"{stage}/{d}/config.json", "w") as f:
        json.dump(c, f, indent=1)

# systemd as pid 1 of a privileged container whose root is the guest's own /.
c = load("outer")
c["root"] = {"path": "/", "readonly": False}
p = c["process"]
p["terminal"] = False
p["args"] = ["/lib/systemd/systemd", "--log-target=console", "--log-level=info"]
p["env"].append("container=husk")
p["capabilities"] = {k: caps for k in ["bounding", "effective", "permitted"]}
p["noNewPrivileges"] = False
lx = c["linux"]
lx["maskedPaths"], lx["readonlyPaths"] = [], []
lx["namespaces"] = [{"type": t} for t in ["pid", "network", "mount", "ipc", "uts", "cgroup"]]
lx["cgroupsPath"] = "/husk-sd"
# A limit, so husk delegates every controller down to the container (cgroup.subtree_control).
lx["resources"] = {"devices": [{"allow": True, "access": "rwm"}], "pids": {"limit": 4096}}
mounts = [m for m in c["mounts"] if m["destination"] != "/sys/fs/cgroup"]
for m in mounts:
    if m["destination"] == "/sys":
        m["options"] = [o for o in m["options"] if o != "ro"]
mounts += [
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "rw"]},
    {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]},
    # systemd as pid 1 logs to /dev/console: the guest's log file stands in for it.
    {"destination": "/dev/console", "type": "bind", "source": "/var/log/systemd.log", "options": ["bind", "rw"]},
]
c["mounts"] = mounts
save("outer", c)

# The container husk makes through systemd: runc's default config with limits.
c = load("inner")
c["root"] = {"path": "/inner/rootfs", "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "1000"]
c["linux"]["cgroupsPath"] = "huskt-a.slice:husk:c1"
c["linux"]["resources"].update({
    "memory": {"limit": 67108864},
    "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0"},
    "pids": {"limit": 50},
})
# runc's org.systemd.property.* annotations, one a time in seconds (sent as TimeoutStopUSec).
c["annotations"] = {"org.systemd.property.CollectMode": "'inactive-or-failed'",
                    "org.systemd.property.TimeoutStopSec": "uint64 7"}
save("inner", c)
PY
cp tests/systemd/guest.sh "$stage/guest.sh"
args=(--bin "$husk" --bin "$sd" --bin systemctl --share "$stage" --env HUSK="$husk" --env STAGE="$stage"
  --timeout "${SYSTEMD_VM_TIMEOUT:-900}")
# One boot per layout: a controller used by cgroups under the v2 root (the v2 run makes them,
# and a dying memory cgroup can outlive its rmdir) cannot move to a v1 hierarchy.
rc=0
for layout in ${SYSTEMD_LAYOUTS:-v2 hybrid}; do
  echo "--- systemd driver on $layout"
  "$vm" "${args[@]}" --env LAYOUT="$layout" -- sh "$stage/guest.sh" || rc=1
done
exit $rc
