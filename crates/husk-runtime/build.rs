//! Builds `trampoline/husk-exec.c`, the tiny program init executes the container's program
//! through (see `src/trampoline.rs`), as a static ELF without libc, and leaves it in OUT_DIR
//! for `include_bytes!`. The C compiler is the one that links husk anyway ($CC or `cc`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "trampoline/husk-exec.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CC");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("husk-exec");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args([
            "-Os",
            "-static",
            "-nostdlib",
            "-ffreestanding",
            "-fno-builtin",
            "-fno-pic",
            "-no-pie",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wl,--build-id=none",
            "-Wl,-z,noexecstack",
            "-Wl,-z,norelro",
            "-s",
            "-o",
        ])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("run the C compiler `{cc}` for {src}: {e}"));
    assert!(status.success(), "`{cc}` failed to build {src}");
}
