#!/usr/bin/env bash
# Runs the AppArmor tests (crates/husk/tests/lsm.rs, and features.rs, which must then report
# AppArmor enabled) for real: in the cgroup v2 guest of ../shared/tools/cgroup2-vm booted with
# AppArmor as its LSM, with apparmor_parser copied in. HUSK_REQUIRE_APPARMOR makes a skipped
# AppArmor test a failure there. This host's kernel has no AppArmor; SELinux runs nowhere here.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_vm "AppArmor tests"
if ! command -v apparmor_parser >/dev/null; then
  if [[ $(id -u) == 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends apparmor >/dev/null
  else
    echo "apparmor_parser missing: apt-get install apparmor (as root)"; exit 1
  fi
fi
stage=target/lsm-stage
rm -rf "$stage" && mkdir -p "$stage"
gcc -static -O2 -o "$stage/probe" tests/probe/probe.c
cargo build --locked -p husk >/dev/null 2>&1
mapfile -t bins < <(cargo test --locked -p husk --test lsm --test features --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["kind"]==["test"] and m.get("executable"):
        print(m["executable"])')
[[ ${#bins[@]} == 2 ]] || { echo "expected the lsm and features test binaries, got: ${bins[*]}"; exit 1; }
husk=$PWD/target/x86_64-unknown-linux-musl/debug/husk
guest=$PWD/$stage/guest.sh
{
  echo 'fail=0'
  echo 'echo "LSMs in the guest: $(cat /sys/kernel/security/lsm)"'
  for b in "${bins[@]}"; do
    echo "echo '== $(basename "$b")'"
    echo "$b --test-threads=1 --nocapture || fail=1"
  done
  echo 'exit $fail'
} > "$guest"
chmod +x "$guest"
args=(--bin "$husk" --bin apparmor_parser --share "$PWD/$stage" --env HUSK_PROBE="$PWD/$stage/probe"
  --env HUSK_REQUIRE_APPARMOR=1 --env HUSK_REQUIRE_ALL=1 --append "apparmor=1 security=apparmor" --timeout 600)
for b in "${bins[@]}"; do args+=(--bin "$b"); done
"$vm" "${args[@]}" -- sh "$guest"
