#!/bin/sh
# Runs in the cgroup v2 guest (see scripts/test-systemd.sh): systemd as pid 1 of a husk
# container, then husk inside it with --systemd-cgroup, checked against systemctl and the
# cgroup files. Every wait polls a condition with a deadline (the guest is TCG-emulated).
set -u
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
# $1 = what, $2 = want, $3 = got
check() { if [ "$2" = "$3" ]; then ok "$1: $3"; else bad "$1: want [$2], got [$3]"; fi; }
# Polls a shell condition every 0.1 s, at most $1 tenths of a second.
until_true() {
    n=$1; shift
    while ! eval "$@"; do
        n=$((n - 1)); [ $n -gt 0 ] || return 1
        sleep 0.1
    done
}

OUTER="$HUSK --root /run/husk-outer"
# Units systemd needs beyond its built-in ones: the slices used and a default target.
mkdir -p /etc/systemd/system
printf '[Unit]\nDescription=husk test target\n' >/etc/systemd/system/default.target
for s in system huskt huskt-a; do
    printf '[Unit]\nDescription=%s\nDefaultDependencies=no\n' "$s" >/etc/systemd/system/$s.slice
done
echo 5d1a5a4a0c0f4f6b9d3e2b1a0c9d8e7f >/etc/machine-id
mkdir -p /inner/rootfs/bin
cp /bin/busybox /inner/rootfs/bin/
for a in sh sleep cat; do ln -sf busybox /inner/rootfs/bin/$a; done

mkdir -p /var/log
$OUTER create -b "$STAGE/outer" sysd </dev/null >/var/log/systemd.log 2>&1 || {
    cat /var/log/systemd.log; echo "FAIL create the systemd container"; exit 1; }
$OUTER start sysd || { cat /var/log/systemd.log; echo "FAIL start the systemd container"; exit 1; }
sdpid=$($OUTER state sysd | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
echo "systemd is pid $sdpid (host view)"
if ! until_true 3000 "[ -S /proc/$sdpid/root/run/systemd/private ]"; then
    cat /var/log/systemd.log; ls -la /proc/$sdpid/root/run /proc/$sdpid/root/run/systemd
    cat /proc/$sdpid/status | head -5; echo "FAIL systemd's private socket did not appear in 300 s"; exit 1
fi

# Inside the systemd container, as a node's runtime would run.
IN() { $OUTER exec sysd "$@"; }
H() { IN "$HUSK" "$@"; }
# One systemctl call per unit and moment (each exec costs seconds in the emulated guest):
# `load UNIT`, then `prop NAME`.
load() { props=$(IN systemctl show "$1"); }
prop() { echo "$props" | sed -n "s/^$1=//p"; }
ok "systemd $(IN systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p') runs as pid 1 of husk container sysd"
scope=/sys/fs/cgroup/husk-sd/huskt.slice/huskt-a.slice/husk-c1.scope

# create: the scope exists, holds init, carries runc's properties; the files hold the limits.
H --systemd-cgroup create -b "$STAGE/inner" c1 </dev/null >/tmp/c1.log 2>&1 || { cat /tmp/c1.log; bad "create c1"; }
check "c1 after create" created "$(H state c1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')"
load husk-c1.scope
check "unit ActiveState" active "$(prop ActiveState)"
check "unit Slice" huskt-a.slice "$(prop Slice)"
check "unit Delegate" yes "$(prop Delegate)"
check "unit MemoryMax" 67108864 "$(prop MemoryMax)"
check "unit TasksMax" 50 "$(prop TasksMax)"
check "unit CPUWeight" 20 "$(prop CPUWeight)"
check "unit CPUQuotaPerSecUSec" 200ms "$(prop CPUQuotaPerSecUSec)"
check "unit AllowedCPUs" 0 "$(prop AllowedCPUs)"
check "unit DevicePolicy" strict "$(prop DevicePolicy)"
check "unit DefaultDependencies" no "$(prop DefaultDependencies)"
check "unit ControlGroup" /huskt.slice/huskt-a.slice/husk-c1.scope "$(prop ControlGroup)"
c1pid=$(H state c1 | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
check "init in the scope (the container's own view)" "0::/huskt.slice/huskt-a.slice/husk-c1.scope" "$(IN cat /proc/$c1pid/cgroup)"
check "memory.max" 67108864 "$(cat $scope/memory.max)"
check "pids.max" 50 "$(cat $scope/pids.max)"
check "cpu.max" "20000 100000" "$(cat $scope/cpu.max)"
check "cpu.weight" 20 "$(cat $scope/cpu.weight)"

H start c1 || bad "start c1"
check "c1 after start" running "$(H state c1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')"
check "exec in c1 joins the scope" "0::/huskt.slice/huskt-a.slice/husk-c1.scope" "$(H exec c1 cat /proc/self/cgroup)"

# update: SetUnitProperties, then the files.
H update --memory 134217728 --pids-limit 80 c1 || bad "update c1"
load husk-c1.scope
check "unit MemoryMax after update" 134217728 "$(prop MemoryMax)"
check "unit TasksMax after update" 80 "$(prop TasksMax)"
check "memory.max after update" 134217728 "$(cat $scope/memory.max)"
check "pids.max after update" 80 "$(cat $scope/pids.max)"

# pause/resume: the files, as with cgroupfs.
H pause c1 || bad "pause c1"
check "cgroup.freeze after pause" 1 "$(cat $scope/cgroup.freeze)"
check "c1 after pause" paused "$(H state c1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')"
H resume c1 || bad "resume c1"
check "cgroup.freeze after resume" 0 "$(cat $scope/cgroup.freeze)"

# A second container for the same unit is refused (its cgroup holds c1) and leaves nothing.
H --systemd-cgroup create -b "$STAGE/inner" c2 </dev/null >/tmp/c2.log 2>&1 && bad "create c2 on c1's unit succeeded"
grep -q "not empty" /tmp/c2.log && ok "same unit twice: $(cat /tmp/c2.log)" || bad "same unit twice: $(cat /tmp/c2.log)"
check "no state left for c2" "" "$(H list -q | grep c2)"

# kill, then delete: StopUnit, the unit and its cgroup are gone.
H kill c1 KILL || bad "kill c1"
until_true 600 "H state c1 | grep -q stopped" && ok "c1 stopped after kill" || bad "c1 did not stop after kill"
H delete c1 || bad "delete c1"
until_true 600 "[ ! -d $scope ]" && ok "scope cgroup removed" || bad "scope cgroup left: $scope"
load husk-c1.scope
check "unit after delete" inactive "$(prop ActiveState)"
check "unit load state after delete" not-found "$(prop LoadState)"

# No cgroupsPath: :husk:<id> in system.slice; delete --force of a running one stops the unit.
sed 's/"cgroupsPath": *"[^"]*"/"cgroupsPath": ""/' "$STAGE/inner/config.json" >"$STAGE/inner/c.json"
# The container's /tmp is its own tmpfs: the bundle goes where both see it.
mkdir -p /inner/b3 && cp "$STAGE/inner/c.json" /inner/b3/config.json
H --systemd-cgroup run -d -b /inner/b3 c3 </dev/null >/tmp/c3.log 2>&1 || { cat /tmp/c3.log; bad "run -d c3"; }
load husk-c3.scope
check "default unit's slice" system.slice "$(prop Slice)"
check "default unit active" active "$(prop ActiveState)"
H delete --force c3 || bad "delete --force c3"
load husk-c3.scope
check "default unit after delete --force" not-found "$(prop LoadState)"
[ -d /sys/fs/cgroup/husk-sd/system.slice/husk-c3.scope ] && bad "c3's cgroup left" || ok "c3's cgroup removed"

# delete --force of the systemd container: every cgroup systemd made under it goes too.
$OUTER delete --force sysd || bad "delete --force sysd"
[ -d /sys/fs/cgroup/husk-sd ] && bad "systemd's cgroups left: $(find /sys/fs/cgroup/husk-sd -type d)" || ok "systemd container deleted with its slices"
[ $fail = 0 ] || { echo "--- systemd's log"; tail -40 /var/log/systemd.log; }
exit $fail
