//! What every container process goes through, whether it is init (`init`) or joins a running
//! container (`exec`): the terminal, cwd, user and capabilities, the executable lookup; and on
//! the parent side, the preserved fds and waiting with signal forwarding.

use crate::Error;
use crate::shared::{Step, fail, open_in_root};
use husk_spec::plan::ProcessPlan;
use husk_sys::process::{self as sp, Exit};
use husk_sys::{fs as sfs, security as sec, tty};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// --preserve-fds N promises fds 3..3+N; any of them the caller left closed would be taken by
/// husk's own descriptors and leak into the container, so they are filled with /dev/null. Runs
/// before husk opens anything else.
pub(crate) fn fill_preserved_fds(n: u32) -> Result<(), Error> {
    let end = 3 + i64::from(n);
    if end > i64::from(i32::MAX) {
        return Err(Error::Msg(format!(
            "--preserve-fds {n}: fds 3 to {} are past what any process can hold",
            end - 1
        )));
    }
    let failed = |fd: i32| {
        move |e: std::io::Error| {
            Error::Msg(format!(
                "--preserve-fds {n}: fill fd {fd} with /dev/null: {}",
                crate::errno_text(&e)
            ))
        }
    };
    for fd in 3..end as i32 {
        if !Path::new(&format!("/proc/self/fd/{fd}")).exists() {
            use std::os::fd::IntoRawFd;
            let null = std::fs::File::open("/dev/null").map_err(failed(fd))?;
            if null.as_raw_fd() == fd {
                // open took exactly this slot: keep it (dropping would close it again).
                sfs::clear_cloexec(null.into_raw_fd()).map_err(Error::io("fcntl", "/dev/null"))?;
            } else {
                sfs::dup2(null.as_raw_fd(), fd).map_err(Error::io("dup2", "/dev/null"))?;
            }
        }
    }
    Ok(())
}

/// Waits for the process behind `pidfd` (our child), forwarding every forwardable signal to it.
/// The signals must have been blocked before the process was made, so none is lost; the pidfd
/// existed before it could exit, so a fast exit is never missed.
pub(crate) fn wait_forwarding(pidfd: BorrowedFd<'_>, what: &'static str) -> Result<Exit, Error> {
    let sigfd = sp::signalfd(&sp::SigSet::forwardable()).map_err(Error::io("signalfd", what))?;
    loop {
        let ready = husk_sys::sock::poll_in(&[pidfd, sigfd.as_fd()], -1)
            .map_err(Error::io("poll", what))?;
        if ready[0] != 0 {
            let exit = sp::waitid_pidfd(pidfd, false).map_err(Error::io("wait", what))?;
            // The pidfd is readable once the process exited; waitid then always finds it.
            return Ok(exit.unwrap_or(Exit::Code(255)));
        }
        if ready[1] != 0 {
            let sig = sp::read_signalfd(sigfd.as_fd()).map_err(Error::io("read", "signalfd"))?;
            if sig != libc::SIGCHLD {
                let _ = sp::pidfd_send_signal(pidfd, sig);
            }
        }
    }
}

/// Gives the process a new pty as its controlling terminal and stdio, and sends the master to
/// the console socket. Runs inside the container's root (after pivot_root or the exec's
/// chroot), so the pty comes from the container's own devpts instance, and it is opened through
/// /dev/pts/ptmx resolved in the root; the peer is taken from the master (TIOCGPTPEER), never
/// by a /dev/pts/N path the container could have swapped.
pub(crate) fn setup_console(sock: BorrowedFd<'_>, size: Option<(u16, u16)>) -> Step<()> {
    let ptmx = Path::new("/dev/pts/ptmx");
    let root = sfs::openat(None, Path::new("/"), libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(|e| fail("open", "/", e))?;
    let master = sfs::openat2(
        root.as_fd(),
        Path::new("dev/pts/ptmx"),
        libc::O_RDWR | libc::O_NOCTTY,
        0,
        sfs::RESOLVE_IN_ROOT | sfs::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(|e| fail("open", ptmx, e))?;
    let st = sfs::fstat(master.as_fd()).map_err(|e| fail("stat", ptmx, e))?;
    // 5:2 is ptmx; anything else under that name is not a pty multiplexer.
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(5, 2) {
        return Err(format!("open {}: not the ptmx device", ptmx.display()));
    }
    tty::unlock(master.as_fd()).map_err(|e| fail("unlockpt", ptmx, e))?;
    let peer = tty::open_peer(master.as_fd()).map_err(|e| fail("TIOCGPTPEER", ptmx, e))?;
    if let Some((rows, cols)) = size {
        tty::set_winsize(master.as_fd(), rows, cols)
            .map_err(|e| fail("TIOCSWINSZ", "process.consoleSize", e))?;
    }
    sp::setsid().map_err(|e| fail("setsid", "console", e))?;
    sp::set_controlling_tty(peer.as_fd()).map_err(|e| fail("TIOCSCTTY", "pty", e))?;
    for fd in 0..3 {
        sfs::dup2(peer.as_raw_fd(), fd).map_err(|e| fail("dup2", format!("pty to fd {fd}"), e))?;
    }
    // runc sends the master's name as the payload; engines read the fd and ignore the rest.
    husk_sys::sock::send_fd(sock, b"/dev/ptmx", master.as_fd())
        .map_err(|e| fail("send pty master", "console socket", e))
}

/// cwd is resolved inside the root and created if missing (runc does too); chdir through the
/// resolved fd means it cannot point outside the rootfs.
pub(crate) fn set_cwd(root: BorrowedFd<'_>, cwd: &str) -> Step<()> {
    let rel = husk_spec::plan::clean_in_root(cwd);
    let fd = match open_in_root(root, &rel, libc::O_DIRECTORY) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => crate::rootfs::mkdir_all(root, &rel),
        r => r,
    }
    .map_err(|e| fail("chdir", cwd, e))?;
    sfs::fchdir(fd.as_fd()).map_err(|e| fail("chdir", cwd, e))
}

/// process.scheduler and process.ioPriority, for init and exec alike. Before the user and
/// capabilities change: a real-time policy or a raised priority needs CAP_SYS_NICE, which the
/// process' own user rarely has (runc's order too).
pub(crate) fn set_scheduling(p: &ProcessPlan) -> Step<()> {
    if let Some(s) = &p.scheduler {
        sec::sched_setattr(
            s.policy, s.flags, s.nice, s.priority, s.runtime, s.deadline, s.period,
        )
        .map_err(|e| fail("sched_setattr", "process.scheduler", e))?;
    }
    if let Some((class, level)) = p.io_priority {
        sec::ioprio_set(class, level).map_err(|e| fail("ioprio_set", "process.ioPriority", e))?;
    }
    Ok(())
}

const CAP_SYS_ADMIN: u64 = 1 << 21;

/// Groups, ids and capability sets. `seccomp_pending`: a filter is still to be loaded right
/// before execve, which without no_new_privs needs CAP_SYS_ADMIN; it then stays effective and
/// permitted until that execve, which recomputes both from inheritable, bounding, ambient and
/// the file (root: inheritable | bounding), so the program holds no more than without it.
pub(crate) fn set_user(p: &ProcessPlan, seccomp_pending: bool) -> Step<()> {
    let hold = if seccomp_pending && !p.no_new_privileges {
        CAP_SYS_ADMIN
    } else {
        0
    };
    if let Some(caps) = &p.caps {
        // The bounding set needs CAP_SETPCAP to shrink: before we change uid.
        for cap in 0..=sec::last_cap() {
            if caps.bounding & (1 << cap) == 0 {
                sec::drop_bounding(cap).map_err(|e| {
                    fail(
                        "drop bounding capability",
                        husk_spec::names::CAPABILITIES
                            .get(cap as usize)
                            .unwrap_or(&"?"),
                        e,
                    )
                })?;
            }
        }
    }
    match sec::setgroups(&p.additional_gids) {
        // A user namespace whose gid map an ordinary user wrote itself has setgroups denied
        // (`idmap::write_process_maps`): the process keeps the groups it has, as runc's does.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && p.additional_gids.is_empty() => {}
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            return Err(fail(
                "setgroups (denied in a user namespace whose gid map has only the caller's own gid: give the user ranges in /etc/subgid for newgidmap, or drop the additional groups)",
                groups_shown(&p.additional_gids),
                e,
            ));
        }
        r => r.map_err(|e| fail("setgroups", groups_shown(&p.additional_gids), e))?,
    }
    sec::setresgid(p.gid).map_err(|e| fail("setresgid", p.gid.to_string(), e))?;
    if let Some(caps) = &p.caps {
        // Keep the permitted set across setuid so capset below can grant what was asked.
        sec::set_keepcaps(true).map_err(|e| fail("prctl", "PR_SET_KEEPCAPS", e))?;
        sec::setresuid(p.uid).map_err(|e| fail("setresuid", p.uid.to_string(), e))?;
        sec::set_keepcaps(false).map_err(|e| fail("prctl", "PR_SET_KEEPCAPS", e))?;
        sec::capset(
            caps.effective | hold,
            caps.permitted | hold,
            caps.inheritable,
        )
        .map_err(|e| fail("capset", "process.capabilities", e))?;
        sec::clear_ambient().map_err(|e| fail("prctl", "PR_CAP_AMBIENT_CLEAR_ALL", e))?;
        for cap in 0..64u8 {
            if caps.ambient & (1 << cap) != 0 {
                sec::raise_ambient(cap).map_err(|e| {
                    fail(
                        "raise ambient capability",
                        husk_spec::names::CAPABILITIES
                            .get(cap as usize)
                            .unwrap_or(&"?"),
                        e,
                    )
                })?;
            }
        }
    } else if hold != 0 && p.uid != 0 {
        // Leaving root clears permitted and effective; keep CAP_SYS_ADMIN alone through it
        // (inheritable as it was, ambient cleared as setresuid clears it): after execve a
        // non-root program gets the same sets either way.
        let (_, _, inheritable) = sec::capget().map_err(|e| fail("capget", "self", e))?;
        sec::set_keepcaps(true).map_err(|e| fail("prctl", "PR_SET_KEEPCAPS", e))?;
        sec::setresuid(p.uid).map_err(|e| fail("setresuid", p.uid.to_string(), e))?;
        sec::set_keepcaps(false).map_err(|e| fail("prctl", "PR_SET_KEEPCAPS", e))?;
        sec::capset(hold, hold, inheritable).map_err(|e| fail("capset", "CAP_SYS_ADMIN", e))?;
    } else {
        sec::setresuid(p.uid).map_err(|e| fail("setresuid", p.uid.to_string(), e))?;
    }
    Ok(())
}

/// Says which ambient capabilities are skipped (`CapSets::ambient_ignored`): at debug level,
/// because `runc spec` writes such a config for every tutorial bundle.
pub(crate) fn log_ignored_ambient(p: &ProcessPlan) {
    if let Some(c) = p.caps.filter(|c| c.ambient_ignored != 0) {
        crate::log::debug(|| {
            format!(
                "process.capabilities.ambient: ignoring {}: not in both the inheritable and permitted sets, so the kernel would refuse to raise them (runc ignores them too)",
                husk_spec::names::capability_list(c.ambient_ignored)
            )
        });
    }
}

/// process.user.additionalGids as an error shows them: the list when short, else a count.
fn groups_shown(gids: &[u32]) -> String {
    let list: Vec<String> = gids.iter().map(u32::to_string).collect();
    if gids.len() <= 16 {
        format!("process.user.additionalGids [{}]", list.join(","))
    } else {
        format!(
            "process.user.additionalGids ({} groups: {},...)",
            gids.len(),
            list[..16].join(",")
        )
    }
}

/// Whether a `NoExec` message means "not found" (127) rather than "cannot execute" (126).
pub(crate) fn is_not_found(msg: &str) -> bool {
    msg.contains("executable file not found") || msg.contains("no such file or directory")
}

/// An errno as Go prints it (`no such file or directory`), which clients match on.
fn go_errno_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut c = text.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

/// Looks the command up in the container's PATH before `Ready`, so a missing executable fails
/// `create` (as runc does) instead of a container that dies at start.
pub(crate) fn find_executable(p: &ProcessPlan) -> Step<PathBuf> {
    let arg0 = &p.args[0];
    let check = |path: &Path| -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if arg0.contains('/') {
        let path = PathBuf::from(arg0);
        return match std::fs::metadata(&path) {
            // runc's words: docker (127) and podman (ErrOCIRuntimeNotFound) match on them.
            Err(e) => Err(format!(
                "exec: \"{arg0}\": stat {arg0}: {}",
                go_errno_text(&e)
            )),
            Ok(_) if !check(&path) => Err(format!(
                "exec: \"{arg0}\": permission denied (not an executable file)"
            )),
            Ok(_) => Ok(path),
        };
    }
    let path_var = p
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(arg0))
        .find(|c| check(c))
        .ok_or_else(|| format!("exec: \"{arg0}\": executable file not found in $PATH"))
}

/// Everything a clone needs first, for init and for exec: the process must be single-threaded
/// (the child continues with a copy of this one thread), the forwardable signals are blocked
/// (the parent reads them from a signalfd; the child restores the returned mask before exec),
/// and a SOCK_SEQPACKET pair carries the sync protocol: (the proof of one thread, old mask,
/// parent end, child end).
pub(crate) fn prepare_clone() -> Result<
    (
        sp::SingleThreaded,
        sp::SigSet,
        std::os::fd::OwnedFd,
        std::os::fd::OwnedFd,
    ),
    Error,
> {
    let one = single_threaded()?;
    let old_sigmask = sp::block_signals(&sp::SigSet::forwardable())
        .map_err(Error::io("block signals", "sigprocmask"))?;
    let (parent_end, child_end) =
        husk_sys::sock::seqpacket_pair().map_err(Error::io("socketpair", "sync"))?;
    Ok((one, old_sigmask, parent_end, child_end))
}

/// The proof `clone3` and `fork` need; a second thread here is husk's own bug.
pub(crate) fn single_threaded() -> Result<sp::SingleThreaded, Error> {
    sp::SingleThreaded::check()
        .map_err(Error::io("read", "/proc/self/task"))?
        .ok_or_else(|| {
            Error::Msg(
                "internal: more than one thread at clone; husk must be single-threaded here".into(),
            )
        })
}
