#!/usr/bin/env bash
# husk builds for Rust's musl target (.cargo/config.toml says why): adds it to the toolchain
# when it is missing. Called by the scripts that build husk.
set -euo pipefail
target=x86_64-unknown-linux-musl
command -v rustup >/dev/null || { echo "rustup not found: install Rust with rustup (https://rustup.rs)"; exit 1; }
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
