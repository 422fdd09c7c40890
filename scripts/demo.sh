#!/usr/bin/env bash
# Builds husk and runs its main job: `husk run` on the embedded default (the host's filesystem,
# read-only, with a fresh /proc, /dev, /tmp and its own namespaces). Needs root and a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
# libseccomp-dev: husk links libseccomp statically; gcc links the static binary.
need=()
for pkg in libseccomp-dev gcc libc6-dev; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [[ ${#need[@]} -gt 0 ]]; then
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust first (https://rustup.rs)"; exit 1; }
scripts/musl-target.sh
cargo build --release --locked -p husk 2>&1 | tail -n 1
exec target/x86_64-unknown-linux-musl/release/husk run -- sh -c 'echo "hello from $(hostname), pid $$ of its own pid namespace"; id; echo "cwd: $(pwd)"; ls -A /tmp | wc -l | sed "s/^/files in the fresh \/tmp: /"; touch /usr/x 2>&1 | sed "s/^/expected: /"; ps -o pid,comm 2>/dev/null || ls /proc | grep -c "^[0-9]"'
