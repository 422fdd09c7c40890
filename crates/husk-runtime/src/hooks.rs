//! OCI hooks: the state JSON on stdin, the spec's timeout, and no helper threads (one poll on
//! the hook's pidfd and its stdin feeds the state and keeps the time).

use crate::Error;
use husk_spec::config::Hook;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn run(kind: &str, hook: &Hook, state_json: &[u8]) -> Result<(), Error> {
    let mut cmd = Command::new(&hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in &hook.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        Error::Msg(format!(
            "{kind} hook {}: start: {}",
            hook.path,
            crate::errno_text(&e)
        ))
    })?;
    let r = feed_and_wait(kind, hook, &mut child, state_json);
    if r.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    r
}

/// Writes the state to the hook's stdin while waiting for it to exit, within its timeout.
/// The clock runs from the start: a hook that never reads a state larger than the pipe
/// (64 KiB) would otherwise block husk in the write, before any timeout began.
fn feed_and_wait(
    kind: &str,
    hook: &Hook,
    child: &mut std::process::Child,
    state_json: &[u8],
) -> Result<(), Error> {
    let deadline = hook
        .timeout
        .filter(|t| *t > 0)
        // A timeout past what the clock can count is no timeout.
        .and_then(|t| Instant::now().checked_add(Duration::from_secs(t as u64)));
    let pidfd = husk_sys::process::pidfd_open(child.id() as i32)
        .map_err(Error::io("pidfd_open hook", &hook.path))?;
    let mut stdin = child.stdin.take().filter(|_| !state_json.is_empty());
    if let Some(s) = &stdin {
        husk_sys::fs::set_nonblocking(s.as_fd(), true)
            .map_err(Error::io("hook stdin of", &hook.path))?;
    }
    let mut fed = 0;
    loop {
        let wait_ms = deadline.map_or(-1, |d| {
            d.saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as i32
        });
        let mut fds = vec![(pidfd.as_fd(), libc::POLLIN)];
        fds.extend(stdin.as_ref().map(|s| (s.as_fd(), libc::POLLOUT)));
        let ready =
            husk_sys::sock::poll(&fds, wait_ms).map_err(Error::io("wait for hook", &hook.path))?;
        if ready[0] != 0 {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::Msg(format!(
                "{kind} hook {}: timed out after {}s{}",
                hook.path,
                hook.timeout.unwrap_or(0),
                if stdin.is_some() {
                    format!(
                        " (it read {fed} of the {} bytes of state on its stdin)",
                        state_json.len()
                    )
                } else {
                    String::new()
                }
            )));
        }
        if let Some(s) = &mut stdin
            && ready.get(1).is_some_and(|r| *r != 0)
        {
            match s.write(&state_json[fed..]) {
                Ok(n) => fed += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // A hook that exits or closes its stdin without reading: that is its right.
                Err(_) => fed = state_json.len(),
            }
            if fed == state_json.len() {
                // Closed: the hook sees EOF after the state.
                stdin = None;
            }
        }
    }
    drop(stdin);
    let status = child
        .wait()
        .map_err(Error::io("wait for hook", &hook.path))?;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(Error::Msg(format!(
            "{kind} hook {}: exited with status {code}",
            hook.path
        ))),
        (_, sig) => Err(Error::Msg(format!(
            "{kind} hook {}: killed by {}",
            hook.path,
            husk_spec::names::signal_name(sig.unwrap_or(0))
        ))),
    }
}

pub fn run_all(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Result<(), Error> {
    for h in hooks {
        crate::log::debug(|| format!("running {kind} hook {}", h.path));
        run(kind, h, state_json)?;
    }
    Ok(())
}
