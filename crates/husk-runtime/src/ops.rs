//! Commands on an existing container: start, state, kill, delete, list.

use crate::state::{ContainerDir, State, Status};
use crate::{Error, hooks, log};
use husk_sys::process as sp;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// A pidfd for init, but only if init is still the process we started.
fn init_pidfd(state: &State) -> Option<OwnedFd> {
    if state.pid <= 0 {
        return None;
    }
    let fd = sp::pidfd_open(state.pid).ok()?;
    // Checked after opening: if the start time still matches, the pidfd is our init.
    state.init_alive().then_some(fd)
}

pub fn start(root: &Path, id: &str) -> Result<(), Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    let status = dir.status(&state);
    // Init died after `create` (killed: `create` checked everything else it could): say so,
    // rather than only that the container is stopped.
    let died = || {
        Error::Msg(format!(
            "cannot start container \"{id}\": its init exited before start, the process never ran (container not running)"
        ))
    };
    match status {
        Status::Created => {}
        Status::Stopped if dir.fifo().exists() => return Err(died()),
        s => {
            return Err(Error::Msg(format!(
                "cannot start a container that is {}",
                s.as_str()
            )));
        }
    }
    // The pidfd first: opening the fifo releases init, which may exec and exit at once.
    let pidfd = init_pidfd(&state).ok_or_else(died)?;
    crate::fault::point("start.pidfd")?;
    let fifo_path = dir.fifo();
    let fifo = husk_sys::fs::openat(None, &fifo_path, libc::O_RDONLY | libc::O_NONBLOCK, 0)
        .map_err(Error::io("open", &fifo_path))?;
    // Wait for init's byte, or for init to die: a dead init is an error, never a hang.
    let ready = husk_sys::sock::poll_in(&[fifo.as_fd(), pidfd.as_fd()], -1)
        .map_err(Error::io("poll", &fifo_path))?;
    // Init writes its byte after the startContainer hooks: a failing one makes init exit
    // without it.
    let died = || {
        Error::Msg(
            "container init exited before start (a startContainer hook failed, or it was killed)"
                .into(),
        )
    };
    if ready[0] & libc::POLLIN == 0 {
        return Err(died());
    }
    let mut b = [0u8; 1];
    let n = husk_sys::fs::read(fifo.as_fd(), &mut b).map_err(Error::io("read", &fifo_path))?;
    if n != 1 {
        return Err(died());
    }
    crate::fault::point("start.released")?;
    // Init holds the fifo open (close-on-exec) until execve: wait for its EOF, so poststart
    // hooks run after the process was executed, as the spec orders them.
    loop {
        husk_sys::sock::poll_in(&[fifo.as_fd()], -1).map_err(Error::io("poll", &fifo_path))?;
        match husk_sys::fs::read(fifo.as_fd(), &mut b) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
            Err(e) => return Err(Error::io("read", &fifo_path)(e)),
        }
    }
    std::fs::remove_file(&fifo_path).map_err(Error::io("remove", &fifo_path))?;
    crate::fault::point("start.fifo-removed")?;
    let st = serde_json::to_string(&state.oci_state(Status::Running)).unwrap_or_default();
    hooks::run_all("poststart", &state.hooks.poststart, st.as_bytes())
}

pub fn state_json(root: &Path, id: &str) -> Result<String, Error> {
    // Unlocked, as `list`: engines poll `state`, and a create stuck in a hook holds the lock.
    let dir = ContainerDir::open_unlocked(root, id)?;
    let state = dir.load()?;
    let status = dir.status(&state);
    serde_json::to_string_pretty(&state.oci_state(status)).map_err(|e| Error::Msg(e.to_string()))
}

pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<(), Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    let status = dir.status(&state);
    if all {
        // Whatever is left in the cgroup, also of a stopped container: containerd's shim sends
        // `kill --all ID KILL` after every exit, and runc 1.1 answers 0.
        for pid in state.cgroup().pids() {
            let _ = sp::kill(pid, sig);
        }
        return Ok(());
    }
    let not_running = |status| Error::not_running("kill", id, status);
    if !matches!(status, Status::Created | Status::Running | Status::Paused) {
        return Err(not_running(status));
    }
    let pidfd = init_pidfd(&state).ok_or_else(|| not_running(Status::Stopped))?;
    match sp::pidfd_send_signal(pidfd.as_fd(), sig) {
        // Exited since the pidfd was opened.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(not_running(Status::Stopped)),
        r => r.map_err(Error::io("kill", format!("pid {}", state.pid))),
    }
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), Error> {
    let dir = match ContainerDir::open(root, id) {
        Err(Error::NotExist(_)) if force => return Ok(()),
        r => r?,
    };
    let state = match dir.load() {
        Ok(s) => s,
        // A directory without state: its creator died before writing any. Nothing else exists.
        Err(Error::NotExist(_)) => return dir.remove(),
        Err(e) => return Err(e),
    };
    let status = dir.status(&state);
    match status {
        Status::Stopped | Status::Created | Status::Creating => {}
        _ if force => {}
        // runc's words.
        s => {
            return Err(Error::Msg(format!(
                "cannot delete container \"{id}\" that is not stopped: {} (use --force)",
                s.as_str()
            )));
        }
    }
    destroy(dir, &state, Some(state.cgroup()))
}

/// Kills whatever is left, removes the cgroup, runs poststop hooks, removes the state.
pub fn destroy(
    dir: ContainerDir,
    state: &State,
    cgroup: Option<husk_cgroup::Cgroup>,
) -> Result<(), Error> {
    if let Some(pidfd) = init_pidfd(state) {
        let _ = sp::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
        // The pidfd turns readable when init has exited (even if someone else reaps it).
        let _ = husk_sys::sock::poll_in(&[pidfd.as_fd()], 5000);
    }
    crate::fault::point("delete.killed")?;
    if let Some(cg) = cgroup {
        // Without its own pid namespace a container's other processes outlive init.
        if !cg.pids().is_empty() {
            let h = husk_cgroup::Hierarchies::detect()?;
            cg.kill_all(&h, |pid| {
                let _ = sp::kill(pid, libc::SIGKILL);
            })?;
        }
        cg.remove()?;
        crate::fault::point("delete.cgroup-removed")?;
        crate::explain::step(|| format!("removed cgroup ({} hierarchies)", cg.dirs.len()));
    }
    let st = serde_json::to_string(&state.oci_state(Status::Stopped)).unwrap_or_default();
    // Spec 1.3: a failing poststop hook is logged and the remaining hooks and the deletion go
    // on (run_all stopped at the first failure, skipping the later poststop hooks).
    for h in &state.hooks.poststop {
        if let Err(e) = hooks::run("poststop", h, st.as_bytes()) {
            log::warn(&e.to_string());
        }
    }
    crate::fault::point("delete.poststop")?;
    dir.remove()
}

pub struct Listed {
    pub state: State,
    pub status: Status,
}

pub fn list(root: &Path) -> Result<Vec<Listed>, Error> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", root)(e)),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        // Unlocked: `list` must not wait behind a command that holds a container's lock.
        let Ok(dir) = ContainerDir::open_unlocked(root, &id) else {
            continue;
        };
        let Ok(state) = dir.load() else { continue };
        let status = dir.status(&state);
        out.push(Listed { state, status });
    }
    out.sort_by(|a, b| a.state.created.cmp(&b.state.created));
    Ok(out)
}
