#!/usr/bin/env bash
# Runs husk's live integration tests inside a throw-away QEMU guest whose only cgroup hierarchy is
# cgroup v2, using ../shared/tools/cgroup2-vm when it is there. The guest has no compiler, so the
# probe is built here and handed in through HUSK_PROBE. Usage: scripts/test-cgroup2.sh [BINARY...]
# (test binaries by name, e.g. `lifecycle security`; default all).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_vm "cgroup v2 tests"
stage=target/cgroup2-stage
rm -rf "$stage" && mkdir -p "$stage"
gcc -static -O2 -o "$stage/probe" tests/probe/probe.c
cargo build --locked -p husk 2>"$stage/build.log" || { cat "$stage/build.log"; exit 1; }
# Into a file first: a failure inside <(...) would go unnoticed and leave the guest no tests.
cargo test --locked -p husk --no-run --message-format=json >"$stage/artifacts.json" 2>"$stage/build.log" ||
  { cat "$stage/build.log"; exit 1; }
mapfile -t bins < <(python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["kind"]==["test"] and m.get("executable"):
        print(m["executable"])' <"$stage/artifacts.json")
# Arguments, if any, name the test binaries to run (e.g. `lifecycle security`); default all.
# images.rs, registry.rs and network.rs stay on the host: their inputs need umoci, skopeo,
# python3, docker-registry and nft,
# which the busybox guest lacks, and none depends on the cgroup version (overlayfs, veth
# and nftables are the same kernel code under v1 and v2).
# faults.rs, load.rs and exhaustion.rs (issue 19) stay on the host too: their network parts need
# ip, nft and unshare, and their hundreds of containers would take the emulated guest far past its
# few minutes (run them there by name: scripts/test-cgroup2.sh faults).
if [[ $# -eq 0 ]]; then
  all=("${bins[@]}") bins=()
  for b in "${all[@]}"; do
    case $(basename "$b") in images-* | registry-* | network-* | faults-* | load-* | exhaustion-*) ;; *) bins+=("$b") ;; esac
  done
fi
if [[ $# -gt 0 ]]; then
  all=("${bins[@]}") bins=()
  for b in "${all[@]}"; do
    for want in "$@"; do [[ $(basename "$b") == "$want"-* ]] && bins+=("$b"); done
  done
fi
[[ ${#bins[@]} -gt 0 ]] || { echo "no test binaries found${*:+ named $*}"; exit 1; }
husk=$PWD/target/x86_64-unknown-linux-musl/debug/husk
guest=$PWD/$stage/guest.sh
{
  echo 'fail=0'
  echo 'echo "cgroup mounts in the guest: $(grep -c " - cgroup" /proc/self/mountinfo), cgroup2 only: $(grep -c " - cgroup2 " /proc/self/mountinfo)"'
  for b in "${bins[@]}"; do
    echo "echo '== $(basename "$b")'"
    echo "$b --test-threads=2 || fail=1"
  done
  echo 'n=$(find /sys/fs/cgroup -path "*/husk/it-*" -type d | wc -l); echo "leftover cgroups: $n"; test "$n" = 0 || fail=1'
  # The guest gives back only its output: the skip summary is printed here.
  echo 'echo "skipped, $(cat $HUSK_SKIP_LOG 2>/dev/null | wc -l):"; sed "s/^/  /" $HUSK_SKIP_LOG 2>/dev/null'
  echo 'exit $fail'
} > "$guest"
chmod +x "$guest"
# As root in the guest every prerequisite is there (script(1) and runc come from this host): a
# test may skip only for a feature the guest lacks. The VM's timeout is a backstop against a hung
# guest, not a budget: where /dev/kvm cannot boot it, the guest is emulated (TCG), and on a
# loaded 2-core host the suite there has taken over 15 minutes.
args=(--bin "$husk" --bin script --bin runc --share "$PWD/$stage" --env HUSK_PROBE="$PWD/$stage/probe"
  --env HUSK_REQUIRE_ALL=1 --env HUSK_SKIP_LOG=/tmp/husk-skips.log --timeout "${CGROUP2_TIMEOUT:-5400}"
  # 3 GiB, not the tool's 1 GiB: the guest's root is a tmpfs holding the test binaries, and
  # lifecycle.rs's 34 MB config is parsed by a debug husk whose bump arena never frees.
  --mem "${CGROUP2_MEM:-3072}")
# The guest's Debian kernel enables AppArmor, so lsm.rs runs there and needs the parser (a
# prerequisite: without it those tests fail under HUSK_REQUIRE_ALL, naming it).
command -v apparmor_parser >/dev/null && args+=(--bin apparmor_parser)
# The detached containers' small watcher, found beside husk as cargo builds them (detached.rs
# checks it is the one used).
args+=(--bin "${husk%/*}/husk-monitor")
for b in "${bins[@]}"; do args+=(--bin "$b"); done
"$vm" "${args[@]}" -- sh "$guest"
