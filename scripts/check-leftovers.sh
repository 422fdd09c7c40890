#!/usr/bin/env bash
# Fails if the test suite left a container process, mount or cgroup behind.
set -u
bad=0
# Zombies are not counted: a container whose husk parent exited (create, run -d) is reparented
# to pid 1, and this machine's pid 1 does not reap orphans; a zombie holds no resources.
live=$(ps -eo pid=,stat=,args= | awk '$2 !~ /^Z/ && (/husk:\[(INIT|EXEC)\]/ || $3 == "husk-monitor") && !/awk/')
if [[ -n $live ]]; then echo "LEFTOVER processes:"; echo "$live"; bad=1; fi
zombies=$(ps -eo stat=,args= | awk '$1 ~ /^Z/ && /husk:\[/' | wc -l)
[[ $zombies -gt 0 ]] && echo "($zombies exited container processes wait for pid 1 to reap them)" 
if grep -q 'husk-it' /proc/self/mountinfo; then echo "LEFTOVER mounts:"; grep 'husk-it' /proc/self/mountinfo; bad=1; fi
# it-*: the tests' runc-mode ids; 64 hex digits: detached front-end containers (detached.rs).
left=$(find /sys/fs/cgroup -maxdepth 3 -type d \( -path '*/husk/it-*' -o -regextype posix-extended -regex '.*/husk/[0-9a-f]{64}' \) 2>/dev/null)
if [[ -n $left ]]; then echo "LEFTOVER cgroups:"; echo "$left"; bad=1; fi
# Every network test runs in a namespace of its own, and images default to the bridge only where a
# test asks for it inside one: the host's namespace never gets husk's links or table.
links=$(awk -F: 'NR > 2 {gsub(/ /, "", $1); if ($1 == "husk0" || $1 ~ /^hk/) print $1}' /proc/net/dev)
if [[ -n $links ]]; then echo "LEFTOVER links in the host's network namespace:"; echo "$links"; bad=1; fi
if command -v nft >/dev/null && nft list tables 2>/dev/null | grep -qx 'table inet husk'; then
  echo "LEFTOVER: table inet husk in the host's network namespace"; bad=1
fi
[[ $bad == 0 ]] && echo "no processes, mounts, cgroups, links or nft table left behind"
exit $bad
