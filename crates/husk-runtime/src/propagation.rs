//! `linux.rootfsPropagation`. As runc does, the propagation is first given to `/` of the new
//! mount namespace (a copy of the host's), which cuts the container's mount events off from
//! the host; but pivot_root refuses a new root that is shared or sits on a shared mount
//! (EINVAL), so the mount holding the rootfs is made private first when it is shared (runc's
//! rule; a slave when `slave` was asked) or unbindable (a bind of it would fail). The rootfs
//! bind then is not shared, and the
//! requested propagation is given to the container's own root after pivot_root (crun's order),
//! where `shared` and `unbindable` can only take effect.

use crate::shared::{Step, fail, open_in_root};
use husk_spec::mountopt::ms;
use husk_spec::plan::Plan;
use husk_sys::fs as sfs;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

/// What `/` of the namespace gets before the rootfs is bound: the requested propagation, except
/// unbindable, which would forbid every later bind from the host (the config's bind mounts):
/// then the default, rslave.
pub(crate) fn before_bind(requested: u64) -> u64 {
    if requested & ms::UNBINDABLE != 0 {
        ms::SLAVE | ms::REC
    } else {
        requested
    }
}

/// Makes the mount holding `target` (the rootfs, or the staging dir it is bound onto) private
/// (or a slave) if it is shared or unbindable; found by the mount id of an fd, so no path is compared.
/// After a recursive slave or private change of `/` no mount can be either, so the default
/// reads no mountinfo.
pub(crate) fn make_parent_private(applied: u64, target: &Path) -> Step<()> {
    if applied & ms::REC != 0 && applied & (ms::SLAVE | ms::PRIVATE) != 0 {
        return Ok(());
    }
    let target = sfs::openat(None, target, libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(|e| fail("open rootfs", target, e))?;
    let fdinfo = format!("/proc/self/fdinfo/{}", target.as_raw_fd());
    let info = std::fs::read_to_string(&fdinfo).map_err(|e| fail("read", &fdinfo, e))?;
    let mnt_id = info
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("read {fdinfo}: no mnt_id"))?;
    let mi = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(mi).map_err(|e| fail("read", mi, e))?;
    let Some(m) = find_mount(&text, &mnt_id) else {
        return Err(format!(
            "read {mi}: mount {mnt_id} of the rootfs is not listed"
        ));
    };
    if m.shared || m.unbindable {
        // A slave still receives the host's mount events, as `slave` asks; anything else gets
        // a root of its own.
        let (flag, name) = if applied & ms::SLAVE != 0 {
            (ms::SLAVE, "a slave")
        } else {
            (ms::PRIVATE, "private")
        };
        husk_sys::mount::mount(None, &m.mountpoint, None, flag, None).map_err(|e| {
            format!(
                "make {} (the mount holding the rootfs) {name}: {}",
                m.mountpoint,
                crate::errno_text(&e)
            )
        })?;
    }
    Ok(())
}

/// After pivot_root (or MS_MOVE + chroot): the container's root gets the requested
/// propagation. A recursive change reaches the config's mounts too, so their own propagation
/// options are given back: what a mount asked for wins over the root's. The default (rslave)
/// needs nothing: the root already is a slave, or private where the host's mount is.
pub(crate) fn after_pivot(plan: &Plan) -> Step<()> {
    let requested = plan.rootfs_propagation;
    if requested == ms::SLAVE | ms::REC {
        return Ok(());
    }
    husk_sys::mount::mount(None, "/", None, requested, None)
        .map_err(|e| fail("set propagation of", "/", e))?;
    if requested & ms::REC == 0 {
        return Ok(());
    }
    let root = sfs::openat(None, Path::new("/"), libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(|e| fail("open", "/", e))?;
    for m in &plan.mounts {
        if m.opts.propagation.is_empty() || m.fstype == "cgroup" || m.fstype == "cgroup2" {
            continue;
        }
        let top = open_in_root(root.as_fd(), &m.dest, 0)
            .map_err(|e| fail("reopen", &m.dest_display, e))?;
        for p in &m.opts.propagation {
            husk_sys::mount::mount(None, &husk_sys::mount::fd_path(top.as_fd()), None, *p, None)
                .map_err(|e| fail("set propagation of", &m.dest_display, e))?;
        }
    }
    Ok(())
}

struct MountInfo {
    mountpoint: String,
    shared: bool,
    unbindable: bool,
}

/// The mountinfo line of mount `id`: its mount point (unescaped) and propagation.
fn find_mount(text: &str, id: &str) -> Option<MountInfo> {
    text.lines().find_map(|line| {
        let (pre, _) = line.split_once(" - ")?;
        let fields: Vec<&str> = pre.split(' ').collect();
        if fields.len() < 6 || fields[0] != id {
            return None;
        }
        let optional = &fields[6..];
        Some(MountInfo {
            mountpoint: unescape(fields[4]),
            shared: optional.iter().any(|o| o.starts_with("shared:")),
            unbindable: optional.contains(&"unbindable"),
        })
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(o)) => {
                out.push((o[0] - b'0') * 64 + (o[1] - b'0') * 8 + (o[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: &str = "\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 27 0:30 / /run rw,nosuid master:7 - tmpfs tmpfs rw
41 27 0:31 / /my\\040dir rw unbindable - tmpfs tmpfs rw
42 27 0:32 / /srv rw - tmpfs tmpfs rw
";

    #[test]
    fn the_mount_holding_the_rootfs_and_its_propagation() {
        let m = find_mount(MI, "27").unwrap();
        assert_eq!(
            (m.mountpoint.as_str(), m.shared, m.unbindable),
            ("/", true, false)
        );
        let m = find_mount(MI, "40").unwrap();
        assert_eq!(
            (m.mountpoint.as_str(), m.shared, m.unbindable),
            ("/run", false, false)
        );
        let m = find_mount(MI, "41").unwrap();
        assert_eq!(
            (m.mountpoint.as_str(), m.shared, m.unbindable),
            ("/my dir", false, true)
        );
        assert!(!find_mount(MI, "42").unwrap().shared);
        assert!(find_mount(MI, "4").is_none());
    }

    #[test]
    fn unbindable_is_not_given_to_the_host_copy() {
        assert_eq!(before_bind(ms::UNBINDABLE), ms::SLAVE | ms::REC);
        assert_eq!(before_bind(ms::UNBINDABLE | ms::REC), ms::SLAVE | ms::REC);
        assert_eq!(before_bind(ms::SHARED | ms::REC), ms::SHARED | ms::REC);
        assert_eq!(before_bind(ms::PRIVATE), ms::PRIVATE);
    }
}
