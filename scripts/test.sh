#!/usr/bin/env bash
# Runs every test husk has: unit tests, live integration tests as root on this host's cgroup
# layout, a leftover check, podman/ctr/docker driving husk, and the live tests again in a pure
# cgroup v2 guest, and the AppArmor tests in that guest booted with AppArmor.
# Installs what it needs (Debian/Ubuntu, as root). Usage: scripts/test.sh [--no-v2]
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n== %s\n' "$*"; }

need=()
# umoci, skopeo and python3 build images.rs' inputs; iproute2, nftables and util-linux
# (unshare, nsenter) carry network.rs; docker-registry is registry.rs' local registry (in a
# network namespace of the test's own) with zstd for its zstd layer and openssl for its TLS registry's certificates; passt is test-rootless.sh's pasta, slirp4netns and strace its slirp4netns part; systemd is copied into the guest for test-systemd.sh;
# all are prerequisites, so a missing one fails the run.
for pkg in busybox-static gcc libc6-dev libseccomp-dev apparmor runc umoci skopeo python3 \
  iproute2 nftables util-linux uidmap passt slirp4netns strace docker-registry zstd openssl systemd; do
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
# A failing test's message, not a backtrace, is what a CI log has room for.
export RUST_BACKTRACE=0
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup)"; exit 1; }
scripts/musl-target.sh

# Every step below is judged by its exit status; logs only explain a failure.
# run_logged LOG CMD...: runs CMD with its output in LOG and the test lines on screen; returns
# CMD's own exit status (not grep's or tee's).
run_logged() {
  local log=$1 rc; shift
  set +e
  "$@" 2>&1 | tee "$log" | grep -E '^(test |SKIP|running|test result|error)'
  rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}
# explain LOG: the parts of a failed cargo run worth reading.
explain() {
  echo "-- failed; details from $1:"
  grep -E -A30 '^failures:$|^error(\[|:)|process didn.t exit successfully' "$1" | head -200
  # Last, where a shortened CI display still shows them: each panic and its message.
  echo "-- panics in $1:"
  grep -E -A4 "panicked at" "$1" | grep -vE '^ +[0-9]+: |^ +at |^note: ' | head -60
}

say "lint: cargo fmt --check, cargo clippy -D warnings, no module cycles, no long functions"
for c in rustfmt clippy; do
  rustup component list --installed | grep -q "^$c" || rustup component add "$c"
done
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
python3 scripts/module-cycles.py
python3 scripts/long-functions.py

say "build"
run_logged target/build.log cargo build --workspace --all-targets --locked || { explain target/build.log; exit 1; }

# Live tests that cannot run print `SKIP <kind> <test>: <reason>` and add it to HUSK_SKIP_LOG.
# As root every prerequisite is there, so HUSK_REQUIRE_ALL=1 turns a prerequisite skip into a
# failure; only host-feature skips (cgroup layout, LSM, library version) remain, listed below.
export HUSK_SKIP_LOG=$PWD/target/test-skips.log
rm -f "$HUSK_SKIP_LOG"
[[ $(id -u) == 0 ]] && export HUSK_REQUIRE_ALL=1
skips() {
  if [[ -s $HUSK_SKIP_LOG ]]; then
    echo "skipped, $(wc -l <"$HUSK_SKIP_LOG"):"
    sed 's/^/  /' "$HUSK_SKIP_LOG"
  else
    echo "skipped: none"
  fi
}

# The host before any test: /dev nodes, /etc, the husk binary, the cgroup roots (issue 19).
say "host snapshot before the tests (scripts/host-integrity.sh)"
scripts/host-integrity.sh snapshot target/host-before.txt

say "unit and integration tests (this host: $(scripts/cgroup-layout.sh))"
run_logged target/test-host.log cargo test --workspace --locked --no-fail-fast || { explain target/test-host.log; exit 1; }
skips
say "host unchanged by the host tests"
scripts/host-integrity.sh compare target/host-before.txt

if [[ $(scripts/cgroup-layout.sh) == hybrid ]]; then
  # A private mount namespace with a tmpfs over the cgroup2 mount shows husk a pure v1 host.
  say "cgroup and lifecycle tests again on pure cgroup v1 (cgroup2 mount hidden)"
  rm -f "$HUSK_SKIP_LOG"
  run_logged target/test-v1.log unshare -m --propagation private sh -c \
    'mount -t tmpfs none /sys/fs/cgroup/unified && exec cargo test --locked --no-fail-fast -p husk --test cgroups --test lifecycle' ||
    { explain target/test-v1.log; exit 1; }
  skips
fi

say "leftovers after the suite"
scripts/check-leftovers.sh

say "rootless: husk as an ordinary user (scripts/test-rootless.sh)"
scripts/test-rootless.sh
say "real clients: podman, containerd (ctr) and docker drive husk (scripts/test-clients.sh)"
scripts/test-clients.sh
say "Kubernetes: the kubelet's CRI calls through containerd, husk against runc (scripts/test-cri.sh)"; scripts/test-cri.sh

if [[ "${1:-}" != "--no-v2" ]]; then
  say "the live tests again, in a pure cgroup v2 guest"
  scripts/test-cgroup2.sh
fi
if [[ "${1:-}" != "--no-v2" ]]; then
  # AppArmor applied for real: this host's kernel has none, the guest's has it built in.
  say "AppArmor tests in the guest booted with AppArmor (scripts/test-lsm.sh)"
  scripts/test-lsm.sh
fi
if [[ "${1:-}" != "--no-v2" ]]; then
  # The systemd cgroup driver against a real systemd: pid 1 of a husk container (husk run
  # --systemd always) in the guest, one boot on cgroup v2 and one with the controllers on v1
  # hierarchies (hybrid); SYSTEMD_LAYOUTS="v2 hybrid v1" adds legacy.
  say "systemd cgroup driver against systemd 252 in the guest, v2 and hybrid (scripts/test-systemd.sh)"
  scripts/test-systemd.sh
fi
say "host unchanged after the whole suite (the clients' own /etc files aside)"
scripts/host-integrity.sh compare target/host-before.txt --clients
say "all tests passed"
