//! Fault injection for the tests (cargo feature `fault-injection`, which only the husk crate's
//! dev-dependencies turn on: `cargo build --release` never compiles it in, and without the
//! feature `point` is an empty inline function).
//!
//! Each named step of create, start, exec, delete, the front end, networking, image mounts and
//! the detached monitor calls `point("verb.step")` right after a side effect. With the feature:
//! - `HUSK_FAULT=STEP` (or `STEP:error`) makes that step return an error, `STEP:kill` SIGKILLs
//!   the process there (husk, or init for `init.*` steps), as a crash or the OOM killer would.
//! - `HUSK_FAULT_TRACE=FILE` appends every step reached to FILE, one name a line, so a test
//!   learns the steps of a command by running it once and then walks them.
//!
//! The variables are read at each point, not cached: init is a clone of husk and reads the
//! same environment, which is what makes `init.*` steps reachable.

use crate::Error;

#[cfg(feature = "fault-injection")]
static SCOPE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Names this process' steps from now on `SCOPE/step`: a command that reaches steps of another's
/// (`network connect` leases and attaches as `run` does) is walked apart from it, since a fault
/// named `net.leased` would stop the run before the connect is reached.
#[cfg(feature = "fault-injection")]
pub fn scope(name: &'static str) {
    let _ = SCOPE.set(name);
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn scope(_name: &'static str) {}

/// Reached step `step`: fails or dies there when the test asked for it.
#[cfg(feature = "fault-injection")]
pub fn point(step: &'static str) -> Result<(), Error> {
    use std::io::Write;
    use std::sync::OnceLock;
    let scoped;
    let step = match SCOPE.get() {
        Some(s) => {
            scoped = format!("{s}/{step}");
            scoped.as_str()
        }
        None => step,
    };
    // Opened at the first step (before the clone), so init, a clone, still writes to it after
    // pivot_root, where the path no longer resolves. O_APPEND with one write per line: husk and
    // init trace into the same file.
    static TRACE: OnceLock<Option<std::fs::File>> = OnceLock::new();
    let trace = TRACE.get_or_init(|| {
        let path = std::env::var_os("HUSK_FAULT_TRACE")?;
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .ok()
    });
    if let Some(mut f) = trace.as_ref() {
        let _ = f.write_all(format!("{step}\n").as_bytes());
    }
    let Ok(want) = std::env::var("HUSK_FAULT") else {
        return Ok(());
    };
    let (name, action) = want.split_once(':').unwrap_or((&want, "error"));
    if name != step {
        return Ok(());
    }
    if action == "kill" {
        let _ = husk_sys::process::kill(std::process::id() as i32, libc::SIGKILL);
        // Still here: a pid namespace's init ignores a SIGKILL it sends itself. Dying at once
        // without unwinding or cleanup is what matters, and the status says SIGKILL.
        husk_sys::process::exit_now(128 + libc::SIGKILL);
    }
    Err(Error::Msg(format!("{step}: injected fault (HUSK_FAULT)")))
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_step: &'static str) -> Result<(), Error> {
    Ok(())
}

/// `HUSK_FAULT` and `HUSK_FAULT_TRACE` as `NAME=VALUE`, for the processes husk starts with an
/// environment of its own (the detached monitor, the bridge's attach hook), so their steps are
/// walked too. Empty without the feature.
pub fn env() -> Vec<String> {
    if !cfg!(feature = "fault-injection") {
        return Vec::new();
    }
    ["HUSK_FAULT", "HUSK_FAULT_TRACE"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v}")))
        .collect()
}

/// `point` for code whose errors are strings (init's setup, the monitor).
pub fn point_msg(step: &'static str) -> Result<(), String> {
    point(step).map_err(|e| e.to_string())
}
