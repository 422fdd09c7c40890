//! What pasta and slirp4netns share: a user-mode network process outside the container that
//! holds its namespaces (and so never sees them go), found in PATH, needing the tun device,
//! joined through init's namespace fds, and stopped when the container is gone by a pidfd
//! (`Running`) or, from another process, by its pid file in the state dir (`stop`).

use crate::ports::Publish;
use husk_runtime::Error;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub const TUN: &str = "/dev/net/tun";
/// The helper's pid file, in the container's state dir (gone with it).
pub const PID_FILE: &str = "net-helper.pid";

/// `name` in PATH, if any.
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Opens the tun device as the caller (the helper opens it as this uid, inside the container's
/// user namespace, whose root has no rights over the host's device nodes).
pub fn tun_access() -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(TUN)
        .map(drop)
}

/// `bin` found and the tun device usable, or what is missing and what to do (`package`:
/// Debian's package of it).
pub fn check(network: &str, name: &str, package: &str) -> Result<PathBuf, String> {
    let bin = find(name).ok_or_else(|| {
        format!(
            "--network {network}: {name} not found in PATH (apt-get install {package}), or use --network none"
        )
    })?;
    tun_access().map_err(|e| {
        format!(
            "--network {network}: open {TUN}: {}: {name} needs the tun device readable and writable by this user (most distributions ship it 0666: chmod 0666 {TUN}, or a udev rule), or use --network none",
            husk_runtime::errno_text(&e)
        )
    })?;
    Ok(bin)
}

/// A copy of a namespace (or pipe) fd without O_CLOEXEC, for the helper to inherit; closed
/// once it ran.
pub fn inheritable(fd: &OwnedFd, what: &str) -> Result<OwnedFd, Error> {
    let d = fd
        .as_fd()
        .try_clone_to_owned()
        .map_err(Error::io("dup", what))?;
    husk_sys::fs::clear_cloexec(d.as_raw_fd()).map_err(Error::io("fcntl F_SETFD", what))?;
    Ok(d)
}

/// Inheritable copies of init's user and network namespace fds for `helper` (its runtime step
/// asked for both).
pub fn namespace_fds(
    ns: &husk_runtime::launch::InitNamespaces,
    helper: &str,
) -> Result<(OwnedFd, OwnedFd), Error> {
    let user = ns.user.as_ref().ok_or_else(|| {
        Error::Msg(format!(
            "internal: {helper}'s step got no user namespace (StepNamespaces::Net)"
        ))
    })?;
    Ok((
        inheritable(user, "user namespace fd")?,
        inheritable(&ns.net, "network namespace fd")?,
    ))
}

/// The helper in the background, stopped when dropped (and reaped, when it is this process'
/// child: slirp4netns is, pasta forks away from it).
#[derive(Debug)]
pub struct Running {
    pidfd: Option<OwnedFd>,
    /// The write end of slirp4netns's `--exit-fd` (close-on-exec): its close, when this value
    /// goes or this process dies however it dies (a foreground husk SIGKILLed), ends it.
    tie: Option<OwnedFd>,
}

impl Running {
    /// The helper whose pid `pid_file` holds (written before the helper was reported ready,
    /// so the pid is that live process').
    pub fn from_pid_file(pid_file: &Path) -> Result<Running, Error> {
        open_pid_file(pid_file).map(|(_, pidfd)| Running {
            pidfd: Some(pidfd),
            tie: None,
        })
    }

    /// This process' child `pid`, just spawned (not yet reaped, so the pid is that process').
    pub fn of_child(pid: u32) -> Result<Running, Error> {
        let pidfd = husk_sys::process::pidfd_open(pid as i32)
            .map_err(Error::io("pidfd_open", format!("network helper {pid}")))?;
        Ok(Running {
            pidfd: Some(pidfd),
            tie: None,
        })
    }

    /// The helper ends when `w`, the write end of its exit pipe, closes.
    pub fn tied(mut self, w: OwnedFd) -> Running {
        self.tie = Some(w);
        self
    }

    /// Waits up to `ms` for the helper to exit; false while it runs.
    pub fn exited_within(&self, ms: i32) -> bool {
        self.pidfd
            .as_ref()
            .is_none_or(|fd| husk_sys::sock::poll_in(&[fd.as_fd()], ms).map_or(true, |r| r[0] != 0))
    }

    /// Leaves the helper running past this value: a detached container's monitor launches
    /// the container, then executes the watcher, which must not take the helper down with
    /// the launch's stack; `stop` ends it by the pid file when the container is gone
    /// (`finish`, `rm`), whichever process that is. A tied helper ends all the same (its
    /// tie closes): the monitor's is started untied.
    pub fn disown(mut self) {
        self.pidfd = None;
    }
}

/// The pid in `pid_file` and a pidfd of it.
fn open_pid_file(pid_file: &Path) -> Result<(i32, OwnedFd), Error> {
    let text = std::fs::read_to_string(pid_file).map_err(Error::io("read", pid_file))?;
    let pid: i32 = text.trim().parse().map_err(|_| {
        Error::Msg(format!(
            "read {}: {text:?} is not a pid",
            pid_file.display()
        ))
    })?;
    let pidfd = husk_sys::process::pidfd_open(pid)
        .map_err(Error::io("pidfd_open", format!("network helper {pid}")))?;
    Ok((pid, pidfd))
}

/// Stops the helper of a container whose runner is gone (a detached container's monitor, at
/// its exit or at `rm`; a killed foreground run's leftovers): by the pid file, only when that
/// pid is still a helper (the pidfd, opened first, keeps the pid from being reused meanwhile).
pub fn stop(state_dir: &Path) {
    let Ok((pid, pidfd)) = open_pid_file(&state_dir.join(PID_FILE)) else {
        return;
    };
    // pasta execs passt.avx2 where the CPU has AVX2: any of the names /proc/PID/comm shows.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if ["pasta", "passt", "slirp4netns"]
        .iter()
        .any(|n| comm.starts_with(n))
    {
        drop(Running {
            pidfd: Some(pidfd),
            tie: None,
        });
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(pidfd) = self.pidfd.take() {
            // Neither keeps anything to flush; ESRCH: it is gone already. Not waited for: the
            // helper's exit closes the last fd of the container's tap device, whose
            // unregistration waits for RCU grace periods in the exiting helper (29 ms measured
            // for slirp4netns, 60% of a whole rootless run), as an exited container's veth goes
            // with its namespace after husk returns (VethEnd::WithNetns). SIGKILL cannot be
            // refused; the zombie of a child is reaped by whoever inherits it when husk exits.
            let _ = husk_sys::process::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
        }
    }
}

/// The publications of `-p` values, each with a host port of its own: pasta and slirp4netns
/// bind exactly what they are told (no free-port choice, as the bridge's `ports::choose` makes).
pub fn publications(network: &str, publish: &[String]) -> Result<Vec<Publish>, Error> {
    let mut all = Vec::new();
    for v in publish {
        for p in Publish::parse(v)? {
            if p.host_port == 0 || p.host_last != p.host_port {
                return Err(Error::Msg(format!(
                    "-p {v}: with --network {network} the host port must be given, one per container port (e.g. -p 8080:{})",
                    p.port
                )));
            }
            all.push(p);
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, r)| !r.starts_with('Z'))
        })
    }

    #[test]
    fn a_disowned_helper_lives_on_and_a_dropped_one_is_killed() {
        let dir = std::env::temp_dir().join(format!("husk-helper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join(PID_FILE);
        let spawn = || {
            let mut kid = std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap();
            std::fs::write(&pid_file, kid.id().to_string()).unwrap();
            let r = Running::from_pid_file(&pid_file);
            if r.is_err() {
                let _ = kid.kill();
                let _ = kid.wait();
            }
            (kid, r.unwrap())
        };
        let (mut dropped, stopper) = spawn();
        let (mut disowned, owner) = spawn();
        owner.disown();
        drop(stopper);
        assert!(alive(disowned.id()), "the disowned helper was stopped");
        // Killed (not waited for by the drop: its parent, here the test, reaps it).
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(dropped.wait().unwrap().signal(), Some(libc::SIGKILL));
        // Not a helper's name: `stop` leaves it.
        stop(&dir);
        assert!(alive(disowned.id()));
        let _ = disowned.kill();
        let _ = disowned.wait();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
