#!/usr/bin/env bash
# Builds husk and runs a container: a busybox-static bundle in target/demo, started with
# `husk run -b`. Installs busybox-static with apt-get when it is missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [[ -x /bin/busybox ]]; then
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends busybox-static >/dev/null
fi
cargo build --release --locked -p husk 2>&1 | tail -n 1
husk=$PWD/target/release/husk
b=target/demo
rm -rf "$b" && mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/dev" "$b/rootfs/sys" "$b/rootfs/tmp"
cp /bin/busybox "$b/rootfs/bin/"
for a in $(/bin/busybox --list); do [[ $a == busybox ]] || ln -sf busybox "$b/rootfs/bin/$a"; done
"$husk" spec --bundle "$b"
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hello from $(hostname), pid $$ in its own namespaces; ls \/; id"/' "$b/config.json"
"$husk" run -b "$b" "demo-$$"
