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

fn make_userns(uid: &[IdMapping], gid: &[IdMapping]) -> Result<OwnedFd, Error> {
    let (pid, pidfd) = match sp::clone3(husk_spec::names::NsKind::User.clone_flag(), None)
        .map_err(Error::io("clone3", "idmap user namespace"))?
    {
        Forked::Child => loop {
            // Only a holder for the namespace; the parent kills it once the maps are written.
            std::thread::sleep(std::time::Duration::from_secs(1));
        },
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    let result = (|| {
        for (file, text) in [("uid_map", map_text(uid)), ("gid_map", map_text(gid))] {
            let p = format!("/proc/{pid}/{file}");
            std::fs::write(&p, text).map_err(Error::io("write", &p))?;
        }
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
                let fd = make_userns(&m.uid_mappings, &m.gid_mappings)?;
                let copy = fd.try_clone().map_err(Error::io("dup", "user namespace"))?;
                made.push((m.uid_mappings.clone(), m.gid_mappings.clone(), fd));
                copy
            }
        };
        out.push(Some(fd));
    }
    Ok(out)
}
