#!/usr/bin/env bash
# Runs every test husk has: unit tests, live integration tests as root on this host's cgroup
# layout, a leftover check, podman/ctr/docker driving husk, and the live tests again in a pure
# cgroup v2 guest.
# Installs what it needs (Debian/Ubuntu, as root). Usage: scripts/test.sh [--no-v2]
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n== %s\n' "$*"; }

need=()
for pkg in busybox-static gcc libc6-dev libseccomp-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [[ ${#need[@]} -gt 0 ]]; then
  if [[ $(id -u) == 0 ]]; then
    say "installing ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing packages: ${need[*]} (run as root to install them)"
  fi
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup)"; exit 1; }
scripts/musl-target.sh

say "build"
cargo build --workspace --all-targets --locked 2>&1 | tail -n 3

say "unit and integration tests (this host: $(scripts/cgroup-layout.sh))"
cargo test --workspace --locked 2>&1 | tee target/test-host.log | grep -E '^(test |SKIP|running|test result)' || true
grep -q 'test result: FAILED' target/test-host.log && { grep -B2 -A30 'failures:' target/test-host.log | head -150; exit 1; }
grep -q 'error\[' target/test-host.log && { grep -A20 'error\[' target/test-host.log | head -60; exit 1; }

if [[ $(scripts/cgroup-layout.sh) == hybrid ]]; then
  # A private mount namespace with a tmpfs over the cgroup2 mount shows husk a pure v1 host.
  say "cgroup and lifecycle tests again on pure cgroup v1 (cgroup2 mount hidden)"
  unshare -m --propagation private sh -c 'mount -t tmpfs none /sys/fs/cgroup/unified && exec cargo test --locked -p husk --test cgroups --test lifecycle' 2>&1 |
    tee target/test-v1.log | grep -E '^(test |SKIP|test result)' || true
  grep -q 'test result: FAILED' target/test-v1.log && { grep -B2 -A30 'failures:' target/test-v1.log | head -100; exit 1; }
  grep -q 'test result: ok' target/test-v1.log || { tail -30 target/test-v1.log; exit 1; }
fi

say "leftovers after the suite"
scripts/check-leftovers.sh

say "real clients: podman, containerd (ctr) and docker drive husk (scripts/test-clients.sh)"
scripts/test-clients.sh

if [[ "${1:-}" != "--no-v2" ]]; then
  say "the live tests again, in a pure cgroup v2 guest"
  scripts/test-cgroup2.sh
fi
say "all tests passed"
