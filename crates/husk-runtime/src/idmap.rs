//! Id-mapped mounts (`idmap`/`ridmap` options): the mount's uid/gid mappings need a user
//! namespace to point mount_setattr(MOUNT_ATTR_IDMAP) at. The parent makes one per distinct
//! mapping before the container's clone: a throw-away child in a new user namespace whose maps
//! we write, whose namespace we open, and which we then kill.

use crate::Error;
use husk_spec::config::IdMapping;
use husk_spec::plan::Plan;
use husk_sys::process::{self as sp, Forked};
use std::os::fd::{AsFd, OwnedFd};

fn map_text(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

fn make_userns(
    one: &sp::SingleThreaded,
    uid: &[IdMapping],
    gid: &[IdMapping],
) -> Result<OwnedFd, Error> {
    let (pid, pidfd) = match sp::clone3(one, husk_spec::names::NsKind::User.clone_flag(), None)
        .map_err(Error::io("clone3", "idmap user namespace"))?
    {
        Forked::Child => loop {
            // Only a holder for the namespace; the parent kills it once the maps are written.
            std::thread::sleep(std::time::Duration::from_secs(1));
        },
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    let result = (|| {
        write_map(pid, "uid_map", uid)?;
        write_map(pid, "gid_map", gid)?;
        let ns = format!("/proc/{pid}/ns/user");
        husk_sys::fs::openat(None, std::path::Path::new(&ns), libc::O_RDONLY, 0)
            .map_err(Error::io("open", &ns))
    })();
    let _ = sp::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
    let _ = sp::waitid_pidfd(pidfd.as_fd(), false);
    result
}

/// One user namespace fd per mount that asks for id mapping (None for the others), aligned with
/// `plan.mounts`. Mounts with the same mappings share one namespace.
pub(crate) fn user_namespaces(plan: &Plan) -> Result<Vec<Option<OwnedFd>>, Error> {
    let mut made: Vec<(Vec<IdMapping>, Vec<IdMapping>, OwnedFd)> = Vec::new();
    let mut out = Vec::with_capacity(plan.mounts.len());
    for m in &plan.mounts {
        if m.opts.idmap.is_none() {
            out.push(None);
            continue;
        }
        if !m.opts.is_bind() {
            return Err(Error::Msg(format!(
                "mount {}: idmap is supported on bind mounts only",
                m.dest_display
            )));
        }
        let existing = made
            .iter()
            .find(|(u, g, _)| *u == m.uid_mappings && *g == m.gid_mappings);
        let fd = match existing {
            Some((_, _, fd)) => fd.try_clone().map_err(Error::io("dup", "user namespace"))?,
            None => {
                let one = crate::process::single_threaded()?;
                let fd = make_userns(&one, &m.uid_mappings, &m.gid_mappings)?;
                let copy = fd.try_clone().map_err(Error::io("dup", "user namespace"))?;
                made.push((m.uid_mappings.clone(), m.gid_mappings.clone(), fd));
                copy
            }
        };
        out.push(Some(fd));
    }
    Ok(out)
}

/// Writes the container's uid and gid maps (init waits for `Go` until they are there). Root
/// writes them itself. An ordinary user may write only a single line mapping its own id (for
/// gids only once `setgroups` is denied, or it could drop a group that denies it access); any
/// other map goes through the setuid `newuidmap`/`newgidmap` of shadow's uidmap package, which
/// check it against the ranges /etc/subuid and /etc/subgid grant the user. husk has no setuid
/// helper of its own.
pub(crate) fn write_process_maps(
    pid: i32,
    uid: &[IdMapping],
    gid: &[IdMapping],
) -> Result<(), Error> {
    let who = crate::caller::Caller::current();
    if !who.unprivileged() {
        write_map(pid, "uid_map", uid)?;
        return write_map(pid, "gid_map", gid);
    }
    if is_own_id(uid, who.euid) {
        write_map(pid, "uid_map", uid)?;
    } else {
        run_helper("newuidmap", "/etc/subuid", pid, uid, who.euid)?;
    }
    if is_own_id(gid, who.egid) {
        let p = format!("/proc/{pid}/setgroups");
        std::fs::write(&p, "deny").map_err(Error::io("write", &p))?;
        write_map(pid, "gid_map", gid)
    } else {
        run_helper("newgidmap", "/etc/subgid", pid, gid, who.euid)
    }
}

fn is_own_id(maps: &[IdMapping], id: u32) -> bool {
    matches!(maps, [m] if m.host_id == id && m.size == 1)
}

fn write_map(pid: i32, file: &str, maps: &[IdMapping]) -> Result<(), Error> {
    let p = format!("/proc/{pid}/{file}");
    std::fs::write(&p, map_text(maps)).map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) => Error::Msg(format!(
            "write {p}: {}: an ordinary user may map only its own id; other ids need newuidmap/newgidmap (apt-get install uidmap) and ranges in /etc/subuid and /etc/subgid",
            crate::errno_text(&e)
        )),
        _ => Error::io("write", &p)(e),
    })
}

fn run_helper(
    tool: &str,
    ranges: &str,
    pid: i32,
    maps: &[IdMapping],
    euid: u32,
) -> Result<(), Error> {
    let mut args = vec![pid.to_string()];
    for m in maps {
        args.extend([m.container_id, m.host_id, m.size].map(|n| n.to_string()));
    }
    let shown = format!("{tool} {}", args.join(" "));
    let out = std::process::Command::new(tool)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Msg(format!(
                "{shown}: {tool} not found in PATH: mapping the ranges of {ranges} needs shadow's setuid {tool} (apt-get install uidmap)"
            )),
            _ => Error::io("run", &shown)(e),
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Msg(format!(
        "{shown}: {}: {}; the ranges must be ones {ranges} grants uid {euid} (and {tool} must be setuid root)",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}
