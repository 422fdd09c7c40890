#!/bin/sh
# Runs in the cgroup v2 guest (see scripts/test-systemd.sh): systemd as pid 1 of a husk
# container, then husk inside it with --systemd-cgroup, checked against systemctl and the
# cgroup files. Every wait polls a condition with a deadline (the guest is TCG-emulated).
# LAYOUT=v2 (the guest as it boots), hybrid: every controller moved from the cgroup2 root to
# its own v1 hierarchy, a name=systemd hierarchy and cgroup2 at unified/, as a hybrid host
# mounts them, or v1: the same without unified/ (legacy). systemd in the container then runs
# in that mode too and takes v1 properties.
set -u
fail=0
LAYOUT=${LAYOUT:-v2}
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
if [ "$LAYOUT" != v2 ]; then
    # A controller leaves cgroup2 for a v1 hierarchy only while no cgroup below the root uses
    # it: this runs first, before anything made one.
    sed 's/\([a-z_]*\)/-\1/g' /sys/fs/cgroup/cgroup.subtree_control >/sys/fs/cgroup/cgroup.subtree_control
    mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
    # cpu with cpuacct and net_cls with net_prio share a hierarchy, as hosts mount them
    # (husk then links cpu and cpuacct to cpu,cpuacct in the container, as hosts do).
    for c in $(awk 'NR > 1 && $4 == 1 { print $1 }' /proc/cgroups |
            sed '/^cpuacct$/d; /^net_prio$/d; s/^cpu$/cpu,cpuacct/; s/^net_cls$/net_cls,net_prio/'); do
        mkdir /sys/fs/cgroup/$c && mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c || {
            echo "FAIL mount the v1 $c hierarchy"; exit 1; }
    done
    ln -s cpu,cpuacct /sys/fs/cgroup/cpu && ln -s cpu,cpuacct /sys/fs/cgroup/cpuacct
    mkdir /sys/fs/cgroup/systemd
    mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd || { echo "FAIL mount name=systemd"; exit 1; }
    if [ "$LAYOUT" = hybrid ]; then
        mkdir /sys/fs/cgroup/unified && mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified || {
            echo "FAIL mount unified"; exit 1; }
    fi
fi
# In a container systemd reads its "kernel command line" from its own arguments: without
# this on v1 it mounts cgroup2 at unified/ itself and runs hybrid.
legacy=""
[ "$LAYOUT" = v1 ] && legacy=systemd.legacy_systemd_cgroup_controller=1
# The systemd container's cgroup: --cgroup-parent husk-sd, then its id (set below).
SD=
# A file of the container's cgroup (path from the outer container's), in its hierarchy.
cgf() {
    if [ "$LAYOUT" = v2 ]; then echo "/sys/fs/cgroup/$SD$1/$2"; else echo "/sys/fs/cgroup/${2%%.*}/$SD$1/$2"; fi
}
# Every directory a cgroup of the outer container's has (one per hierarchy on hybrid).
cgdirs() {
    if [ "$LAYOUT" = v2 ]; then echo "/sys/fs/cgroup/$SD$1"; return; fi
    for h in memory pids freezer systemd $([ "$LAYOUT" = hybrid ] && echo unified); do
        echo "/sys/fs/cgroup/$h/$SD$1"
    done
}
# The line of /proc/PID/cgroup that holds the memory controller.
memline() { if [ "$LAYOUT" = v2 ]; then grep '^0::'; else grep ':memory:' | cut -d: -f2-; fi; }
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

mkdir -p /var/log && : >/var/log/systemd.log
# podman's --systemd=always: tmpfs /run, /run/lock, /tmp, the cgroup mount writable,
# container=husk; --privileged for a node image's rights (every capability, /sys rw, devices);
# a pids limit so husk delegates every controller down to the container; systemd as pid 1
# logs to /dev/console, for which the guest's log file stands in.
sysd=sysd
$OUTER run --name $sysd --systemd always --rootfs / --privileged --network none \
    --cgroup-parent husk-sd --pids-limit 4096 -v /var/log/systemd.log:/dev/console \
    -- /lib/systemd/systemd --log-target=console --log-level=info $legacy \
    </dev/null >/var/log/husk-run.log 2>&1 &
runpid=$!
# Whether the foreground run still runs (a zombie not yet reaped by this shell counts as gone).
run_alive() { kill -0 $runpid 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' /proc/$runpid/status 2>/dev/null; }
# A wait that ends early when the run is gone: then its exit status, output and systemd's log
# say why, instead of a timeout at the deadline.
await_sysd() {
    until_true 3000 "! run_alive || $1" && run_alive && return 0
    if run_alive; then echo "FAIL husk run --systemd always: no $2 within 300 s"; else
        wait $runpid; echo "FAIL husk run --systemd always ended (exit status $?) before $2"; fi
    echo "--- husk run's output"; cat /var/log/husk-run.log
    echo "--- systemd's log"; tail -40 /var/log/systemd.log
    exit 1
}
await_sysd "$OUTER state $sysd 2>/dev/null | grep -q '\"status\": *\"running\"'" "running state"
SD=husk-sd/$sysd
sdpid=$($OUTER state $sysd | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
echo "systemd is pid $sdpid (host view), run by husk run --systemd always"
check "systemd's environment" container=husk \
    "$(tr '\0' '\n' </proc/$sdpid/environ | grep '^container=')"
check "stop signal recorded (SIGRTMIN+3)" 37 \
    "$($OUTER state $sysd | sed -n 's/.*"husk.stop-signal": *"\([0-9]*\)".*/\1/p')"
await_sysd "[ -S /proc/$sdpid/root/run/systemd/private ]" "systemd's private socket"

# Inside the systemd container, as a node's runtime would run.
IN() { $OUTER exec $sysd "$@"; }
H() { IN "$HUSK" "$@"; }
# One systemctl call per unit and moment (each exec costs seconds in the emulated guest):
# `load UNIT`, then `prop NAME`.
load() { props=$(IN systemctl show "$1"); }
prop() { echo "$props" | sed -n "s/^$1=//p"; }
ok "systemd $(IN systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p') runs as pid 1 of husk container sysd ($LAYOUT)"
# systemd picks its mode from what is mounted (statfs of /sys/fs/cgroup, unified/, systemd/)
# and moves itself to init.scope in the hierarchies it tracks processes with: the unified one
# (v2, hybrid), name=systemd (hybrid, v1).
case $LAYOUT in
    v2) want=":/init.scope" ;;
    hybrid) want="name=systemd:/init.scope :/init.scope" ;;
    v1) want="name=systemd:/init.scope :/" ;;
esac
check "systemd's own cgroups ($LAYOUT mode)" "$want" \
    "$(IN cat /proc/1/cgroup | grep -E '^[0-9]*:(name=systemd)?:' | cut -d: -f2- | tr '\n' ' ' | sed 's/ $//')"
if [ "$LAYOUT" != v2 ]; then
    check "the container's cpu link" cpu,cpuacct "$(IN readlink /sys/fs/cgroup/cpu)"
fi
scope=/huskt.slice/huskt-a.slice/husk-c1.scope
if [ "$LAYOUT" = v2 ]; then mem=0::$scope; else mem=memory:$scope; fi

# create: the scope exists, holds init, carries runc's properties; the files hold the limits.
H --systemd-cgroup create -b "$STAGE/inner" c1 </dev/null >/tmp/c1.log 2>&1 || { cat /tmp/c1.log; bad "create c1"; }
check "c1 after create" created "$(H state c1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')"
load husk-c1.scope
check "unit ActiveState" active "$(prop ActiveState)"
check "unit Slice" huskt-a.slice "$(prop Slice)"
check "unit Delegate" yes "$(prop Delegate)"
check "unit TasksMax" 50 "$(prop TasksMax)"
check "unit CPUQuotaPerSecUSec" 200ms "$(prop CPUQuotaPerSecUSec)"
check "unit DevicePolicy" strict "$(prop DevicePolicy)"
check "unit DefaultDependencies" no "$(prop DefaultDependencies)"
check "unit ControlGroup" $scope "$(prop ControlGroup)"
# org.systemd.property.* annotations (a Sec name as USec).
check "annotated unit CollectMode" inactive-or-failed "$(prop CollectMode)"
check "annotated unit TimeoutStopUSec" 7s "$(prop TimeoutStopUSec)"
c1pid=$(H state c1 | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
check "init in the scope (the container's own view)" "$mem" "$(IN cat /proc/$c1pid/cgroup | memline)"
check "pids.max" 50 "$(cat $(cgf $scope pids.max))"
if [ "$LAYOUT" = v2 ]; then
    check "unit MemoryMax" 67108864 "$(prop MemoryMax)"
    check "unit CPUWeight" 20 "$(prop CPUWeight)"
    check "unit AllowedCPUs" 0 "$(prop AllowedCPUs)"
    check "memory.max" 67108864 "$(cat $(cgf $scope memory.max))"
    check "cpu.max" "20000 100000" "$(cat $(cgf $scope cpu.max))"
    check "cpu.weight" 20 "$(cat $(cgf $scope cpu.weight))"
else
    check "unit MemoryLimit" 67108864 "$(prop MemoryLimit)"
    check "unit CPUShares" 512 "$(prop CPUShares)"
    check "unit BlockIOAccounting" yes "$(prop BlockIOAccounting)"
    check "memory.limit_in_bytes" 67108864 "$(cat $(cgf $scope memory.limit_in_bytes))"
    check "cpu.cfs_quota_us" 20000 "$(cat $(cgf $scope cpu.cfs_quota_us))"
    check "cpu.shares" 512 "$(cat $(cgf $scope cpu.shares))"
    check "cpuset.cpus" 0 "$(cat $(cgf $scope cpuset.cpus))"
    check "init in the name=systemd scope" "name=systemd:$scope" \
        "$(IN cat /proc/$c1pid/cgroup | grep name=systemd | cut -d: -f2-)"
fi

H start c1 || bad "start c1"
check "c1 after start" running "$(H state c1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')"
check "exec in c1 joins the scope" "$mem" "$(H exec c1 cat /proc/self/cgroup | memline)"

# update: SetUnitProperties, then the files.
H update --memory 134217728 --pids-limit 80 c1 || bad "update c1"
load husk-c1.scope
check "unit TasksMax after update" 80 "$(prop TasksMax)"
check "pids.max after update" 80 "$(cat $(cgf $scope pids.max))"
if [ "$LAYOUT" = v2 ]; then
    check "unit MemoryMax after update" 134217728 "$(prop MemoryMax)"
    check "memory.max after update" 134217728 "$(cat $(cgf $scope memory.max))"
else
    check "unit MemoryLimit after update" 134217728 "$(prop MemoryLimit)"
    check "memory.limit_in_bytes after update" 134217728 "$(cat $(cgf $scope memory.limit_in_bytes))"
fi

# pause/resume: the files, as with cgroupfs.
if [ "$LAYOUT" = v2 ]; then freeze=cgroup.freeze on=1 off=0; else freeze=freezer.state on=FROZEN off=THAWED; fi
H pause c1 || bad "pause c1"
check "$freeze after pause" $on "$(cat $(cgf $scope $freeze))"
check "c1 after pause" paused "$(H state c1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')"
H resume c1 || bad "resume c1"
check "$freeze after resume" $off "$(cat $(cgf $scope $freeze))"

# A second container for the same unit is refused (its cgroup holds c1) and leaves nothing.
H --systemd-cgroup create -b "$STAGE/inner" c2 </dev/null >/tmp/c2.log 2>&1 && bad "create c2 on c1's unit succeeded"
grep -q "not empty" /tmp/c2.log && ok "same unit twice: $(cat /tmp/c2.log)" || bad "same unit twice: $(cat /tmp/c2.log)"
check "no state left for c2" "" "$(H list -q | grep c2)"

# Processes whose command line holds $1 (NULs read as spaces).
procs_with() {
    for f in /proc/[0-9]*/cmdline; do
        case "$(tr '\0' ' ' <$f 2>/dev/null)" in *"$1"*) echo "${f%/cmdline}" ;; esac
    done
}
# An org.systemd.property.* annotation systemd refuses (husk only checks its syntax: the
# names and types are systemd's, and differ between versions) fails create with the property
# named, and leaves no unit, cgroup, state or process (init is cloned before the unit is asked
# for; until its execve it is husk, with the bundle's path in its command line).
for r in name type; do
    H --systemd-cgroup create -b "$STAGE/refused-$r" r$r </dev/null >/tmp/r$r.log 2>&1 &&
        bad "create with a property systemd refuses ($r) succeeded"
    pname=$(sed -n 's/.*"org\.systemd\.property\.\([A-Za-z]*\)".*/\1/p' "$STAGE/refused-$r/config.json")
    grep -q "$pname" /tmp/r$r.log && ok "refused property ($r) named: $(cat /tmp/r$r.log)" ||
        bad "refused property ($r) not named: $(cat /tmp/r$r.log)"
    load husk-r$r.scope
    check "no unit after a refused property ($r)" not-found "$(prop LoadState)"
    for d in $(cgdirs /huskt.slice/huskt-a.slice/husk-r$r.scope); do
        [ -d $d ] && bad "cgroup left after a refused property: $d" || ok "no cgroup left ($d)"
    done
    check "no state left after a refused property ($r)" "" "$(H list -q | grep r$r)"
    check "no process left after a refused property ($r)" "" "$(procs_with "refused-$r ")"
done

# kill, then delete: StopUnit, the unit and its cgroup are gone.
H kill c1 KILL || bad "kill c1"
until_true 600 "H state c1 | grep -q stopped" && ok "c1 stopped after kill" || bad "c1 did not stop after kill"
H delete c1 || bad "delete c1"
for d in $(cgdirs $scope); do
    until_true 600 "[ ! -d $d ]" && ok "scope cgroup removed ($d)" || bad "scope cgroup left: $d"
done
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
for d in $(cgdirs /system.slice/husk-c3.scope); do
    [ -d $d ] && bad "c3's cgroup left: $d" || ok "c3's cgroup removed ($d)"
done

# delete --force of the systemd container: every cgroup systemd made under it goes too, and
# its foreground husk run ends.
$OUTER delete --force $sysd || bad "delete --force the systemd container"
until_true 600 "! kill -0 $runpid 2>/dev/null" && ok "husk run ended" || bad "husk run still running"
for d in $(cgdirs ""); do
    [ -d $d ] && bad "systemd's cgroups left: $(find $d -type d)" || ok "systemd container deleted with its slices ($d)"
done
[ $fail = 0 ] || { echo "--- systemd's log"; tail -40 /var/log/systemd.log; }
exit $fail
