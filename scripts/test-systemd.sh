#!/usr/bin/env bash
# Live test of the systemd cgroup driver (`--systemd-cgroup`) against a real systemd: none runs
# on this host, so the cgroup v2 guest (../shared/tools/cgroup2-vm) starts one as pid 1 of a
# husk container (`husk run --systemd always --rootfs / --privileged`: its own cgroup
# namespace with the cgroup mount rw, tmpfs /run, /run/lock and /tmp, container=husk), and husk, run
# inside that container as a Kubernetes node image runs its runtime, drives containers through
# it: create/start/update/pause/resume/exec/kill/delete, checked against `systemctl show` and the
# cgroup files (tests/systemd/guest.sh), once per cgroup layout (one guest boot each).
# Usage: [SYSTEMD_LAYOUTS="v2 hybrid v1"] scripts/test-systemd.sh (default: v2 hybrid)
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
command -v runc >/dev/null || skip "runc missing (its spec is the base of the inner config)"
stage=$PWD/target/systemd-stage
rm -rf "$stage" && mkdir -p "$stage/inner"
cargo build --locked -p husk 2>"$stage/build.log" || { cat "$stage/build.log"; exit 1; }
husk=$PWD/target/x86_64-unknown-linux-musl/debug/husk
(cd "$stage/inner" && runc spec)
python3 - "$stage" <<'PY'
import json, os, sys
stage = sys.argv[1]
def load(d):
    with open(f"{stage}/{d}/config.json") as f:
        return json.load(f)

def save(d, c):
    with open(f"{stage}/{d}/config.json", "w") as f:
        json.dump(c, f, indent=1)

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
# Properties systemd refuses though their syntax is fine: one it does not know, and one of the
# wrong type (SendSIGKILL is a boolean), each container in a unit of its own.
for kind, key, value in [("name", "NoSuchPropertyHusk", "'x'"), ("type", "SendSIGKILL", "'yes'")]:
    r = json.loads(json.dumps(c))
    r["linux"]["cgroupsPath"] = f"huskt-a.slice:husk:r{kind}"
    r["annotations"] = {f"org.systemd.property.{key}": value}
    os.makedirs(f"{stage}/refused-{kind}")
    save(f"refused-{kind}", r)
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
