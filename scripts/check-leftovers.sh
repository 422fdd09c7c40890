#!/usr/bin/env bash
# Fails if the test suite left a container process, mount or cgroup behind.
set -u
bad=0
if pgrep -f 'husk:\[INIT\]' >/dev/null; then echo "LEFTOVER processes:"; pgrep -af 'husk:\[INIT\]'; bad=1; fi
if grep -q 'husk-it' /proc/self/mountinfo; then echo "LEFTOVER mounts:"; grep 'husk-it' /proc/self/mountinfo; bad=1; fi
left=$(find /sys/fs/cgroup -maxdepth 3 -path '*/husk/it-*' -type d 2>/dev/null)
if [[ -n $left ]]; then echo "LEFTOVER cgroups:"; echo "$left"; bad=1; fi
[[ $bad == 0 ]] && echo "no processes, mounts or cgroups left behind"
exit $bad
