//! Mounts: mount(2) on a resolved fd's path, the new mount API (open_tree, move_mount,
//! mount_setattr, fsopen for a private procfs), pivot_root and chroot.

use crate::{cstr, cvt, cvt_i};
use rustix::mount::{MoveMountFlags, OpenTreeFlags};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Path of an fd for mount(2) targets: mount follows the magic link to exactly this inode, so
/// nothing in the (hostile) rootfs can redirect it after we resolved it.
pub fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn opt_cstr(s: Option<&str>) -> io::Result<Option<CString>> {
    s.map(|s| CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL)))
        .transpose()
}

/// mount(2).
pub fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: u64,
    data: Option<&str>,
) -> io::Result<()> {
    let (s, t, f, d) = (
        opt_cstr(source)?,
        cstr(target)?,
        opt_cstr(fstype)?,
        opt_cstr(data)?,
    );
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: all pointers are valid C strings or null, as mount(2) allows.
    cvt_i(unsafe {
        libc::mount(
            ptr(&s),
            t.as_ptr(),
            ptr(&f),
            flags as libc::c_ulong,
            ptr(&d) as *const libc::c_void,
        )
    })
    .map(drop)
}

pub fn umount2(target: &str, flags: i32) -> io::Result<()> {
    Ok(rustix::mount::unmount(
        target,
        rustix::mount::UnmountFlags::from_bits_retain(flags as u32),
    )?)
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// mount_setattr(2) on the mount whose root `fd` is (AT_EMPTY_PATH), optionally recursive.
pub fn mount_setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clear: u64,
    userns: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64),
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `attr` is a valid mount_attr of the size passed; the path is an empty C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    cvt(r).map(drop)
}

pub const OPEN_TREE_CLONE: u32 = 1;

/// A detached copy of the bind source at `path`, with its submounts when `recursive` (an
/// `rbind`): what a bind from outside a user namespace or an id-mapped bind attaches.
pub fn open_tree_clone(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let rec = if recursive {
        libc::AT_RECURSIVE as u32
    } else {
        0
    };
    open_tree(None, path, OPEN_TREE_CLONE | rec)
}

/// open_tree(2): a detached copy of the mount at `path` (with AT_RECURSIVE for a whole tree).
pub fn open_tree(dir: Option<BorrowedFd<'_>>, path: &Path, flags: u32) -> io::Result<OwnedFd> {
    let flags = OpenTreeFlags::from_bits_retain(flags) | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    Ok(rustix::mount::open_tree(
        dir.unwrap_or(rustix::fs::CWD),
        path,
        flags,
    )?)
}

/// move_mount(2) of a detached tree onto the inode `to` refers to.
pub fn move_mount_to_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let flags = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH;
    Ok(rustix::mount::move_mount(from, c"", to, c"", flags)?)
}

pub fn pivot_root(new_root: &str, put_old: &str) -> io::Result<()> {
    Ok(rustix::process::pivot_root(new_root, put_old)?)
}

pub fn chroot(path: &str) -> io::Result<()> {
    Ok(rustix::process::chroot(path)?)
}

/// Whether the mount `path` is on is read-only (ST_RDONLY).
pub fn on_readonly_mount(path: &Path) -> io::Result<bool> {
    let sv = rustix::fs::statvfs(path)?;
    Ok(sv.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

/// A private procfs instance of the current pid namespace, mounted nowhere (fsopen + fsmount):
/// its root fd. Writes to /proc go through it, so nothing the container mounted over its /proc,
/// or swapped into a shared mount, can redirect them (CVE-2019-16884, CVE-2025-52881).
pub fn private_procfs() -> io::Result<OwnedFd> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let fsfd = rustix::mount::fsopen(c"proc", FsOpenFlags::FSOPEN_CLOEXEC)?;
    rustix::mount::fsconfig_create(&fsfd)?;
    let attrs = MountAttrFlags::MOUNT_ATTR_NOSUID
        | MountAttrFlags::MOUNT_ATTR_NODEV
        | MountAttrFlags::MOUNT_ATTR_NOEXEC;
    Ok(rustix::mount::fsmount(
        &fsfd,
        FsMountFlags::FSMOUNT_CLOEXEC,
        attrs,
    )?)
}

/// move_mount(2) of a detached tree onto the path `to` (resolved in the caller's mount
/// namespace): how a root made elsewhere (another user namespace's overlayfs) is attached.
pub fn move_mount_to_path(from: BorrowedFd<'_>, to: &Path) -> io::Result<()> {
    Ok(rustix::mount::move_mount(
        from,
        c"",
        rustix::fs::CWD,
        to,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?)
}
