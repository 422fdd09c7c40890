//! Builds the two C pieces of husk-runtime with the C compiler that links husk anyway ($CC or
//! `cc`):
//! - `csrc/husk-exec.c`, the tiny program init executes the container's program through (see
//!   `src/trampoline.rs`), as a static ELF without libc, left in OUT_DIR for `include_bytes!`;
//! - on musl targets, `csrc/fortify-shim.c`, the glibc symbol Debian's libseccomp.a needs,
//!   linked whole into everything that links husk-runtime (see `.cargo/config.toml`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

fn run(cmd: &mut Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("{what}: run {:?}: {e}", cmd.get_program()));
    assert!(status.success(), "{what}: {cmd:?} failed");
}

fn main() {
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    build_trampoline(&out);
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl") {
        build_fortify_shim(&out);
    }
}

fn build_trampoline(out: &Path) {
    let src = "csrc/husk-exec.c";
    println!("cargo:rerun-if-changed={src}");
    run(
        Command::new(cc())
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
                // One page: headers, code and strings in one segment (2 KB instead of 10 KB).
                "-Wl,-z,noseparate-code",
                "-s",
                "-o",
            ])
            .arg(out.join("husk-exec"))
            .arg(src),
        "build the husk-exec trampoline",
    );
}

fn build_fortify_shim(out: &Path) {
    let src = "csrc/fortify-shim.c";
    println!("cargo:rerun-if-changed={src}");
    let obj = out.join("fortify-shim.o");
    run(
        Command::new(cc())
            .args([
                "-O2",
                "-fPIC",
                "-fno-stack-protector",
                "-U_FORTIFY_SOURCE",
                "-Wall",
                "-Werror",
                "-c",
                "-o",
            ])
            .arg(&obj)
            .arg(src),
        "build the fortify shim",
    );
    let lib = out.join("libhusk_fortify_shim.a");
    let _ = std::fs::remove_file(&lib);
    run(
        Command::new("ar").arg("crs").arg(&lib).arg(&obj),
        "archive the fortify shim",
    );
    println!("cargo:rustc-link-search=native={}", out.display());
    // Whole: nothing in Rust refers to the shim, and libseccomp may come later on the link line.
    println!("cargo:rustc-link-lib=static:+whole-archive=husk_fortify_shim");
}
