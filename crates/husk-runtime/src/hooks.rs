//! OCI hooks: the state JSON on stdin, the spec's timeout, and no helper threads (the timeout is
//! a poll on the hook's pidfd).

use crate::Error;
use husk_spec::config::Hook;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

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
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that exits without reading its stdin makes this EPIPE: that is its right.
        let _ = stdin.write_all(state_json);
    }
    let timeout_ms = hook
        .timeout
        .map_or(-1, |t| (t.min(i32::MAX as i64 / 1000) * 1000) as i32);
    if timeout_ms >= 0 {
        let pidfd = husk_sys::process::pidfd_open(child.id() as i32)
            .map_err(Error::io("pidfd_open hook", &hook.path))?;
        let ready = husk_sys::fs::poll_in(&[pidfd.as_fd()], timeout_ms)
            .map_err(Error::io("wait for hook", &hook.path))?;
        if ready[0] == 0 {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Msg(format!(
                "{kind} hook {}: timed out after {}s",
                hook.path,
                hook.timeout.unwrap_or(0)
            )));
        }
    }
    let status = child
        .wait()
        .map_err(Error::io("wait for hook", &hook.path))?;
    if !status.success() {
        return Err(Error::Msg(format!(
            "{kind} hook {}: exited with {status}",
            hook.path
        )));
    }
    Ok(())
}

pub fn run_all(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Result<(), Error> {
    for h in hooks {
        crate::log::debug(|| format!("running {kind} hook {}", h.path));
        run(kind, h, state_json)?;
    }
    Ok(())
}
