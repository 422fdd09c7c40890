//! `--explain`: narrates each kernel step of create/run on stderr with the time since start and
//! the cost of the step itself. Off by default, and then a step costs one relaxed atomic load.
//! The child of the clone inherits the start instant, so parent and init share one timeline.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

static ON: AtomicBool = AtomicBool::new(false);
static START: OnceLock<Instant> = OnceLock::new();
static LAST_US: AtomicU64 = AtomicU64::new(0);
static IN_INIT: AtomicBool = AtomicBool::new(false);

/// Marks this process as the container's init (after the clone) for the narration.
pub fn in_init() {
    IN_INIT.store(true, Ordering::Relaxed);
}

pub fn enable() {
    let _ = START.set(Instant::now());
    ON.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Prints `what` (built only when on) with the time since start and since the previous step.
pub fn step(what: impl FnOnce() -> String) {
    if !enabled() {
        return;
    }
    let now = START.get().map_or(0, |s| s.elapsed().as_micros() as u64);
    let prev = LAST_US.swap(now, Ordering::Relaxed);
    let who = if IN_INIT.load(Ordering::Relaxed) {
        "init"
    } else {
        "husk"
    };
    // One write per line: husk and init narrate at once into the same stderr, and writeln! on
    // unbuffered stderr writes each piece of the format separately, interleaving mid-line.
    let line = format!(
        "[{now:>7} µs] +{:>5} µs  {who}: {}\n",
        now.saturating_sub(prev),
        what()
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}
