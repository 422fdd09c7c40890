//! Mounts: mount(2) on a resolved fd's path, the new mount API (open_tree, move_mount,
//! mount_setattr, fsopen for a private procfs), pivot_root and chroot.

use crate::{cstr, cvt, cvt_i};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
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
    let t = cstr(target)?;
    // SAFETY: valid C string.
    cvt_i(unsafe { libc::umount2(t.as_ptr(), flags) }).map(drop)
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
    let p = cstr(path)?;
    let d = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: valid C string; result checked.
    let r = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            d,
            p.as_ptr(),
            flags | libc::O_CLOEXEC as u32,
        )
    };
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(cvt(r)? as RawFd) })
}

/// move_mount(2) of a detached tree onto the inode `to` refers to.
pub fn move_mount_to_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
    // SAFETY: both paths are empty C strings, used with the EMPTY_PATH flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    cvt(r).map(drop)
}

pub fn pivot_root(new_root: &str, put_old: &str) -> io::Result<()> {
    let (n, o) = (cstr(new_root)?, cstr(put_old)?);
    // SAFETY: valid C strings.
    cvt(unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) }).map(drop)
}

pub fn chroot(path: &str) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: valid C string.
    cvt_i(unsafe { libc::chroot(p.as_ptr()) }).map(drop)
}

/// Whether the mount `path` is on is read-only (ST_RDONLY).
pub fn on_readonly_mount(path: &Path) -> io::Result<bool> {
    let p = cstr(path)?;
    let mut sv = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: valid C string; the kernel fills `sv` on success, which is checked first.
    cvt_i(unsafe { libc::statvfs(p.as_ptr(), sv.as_mut_ptr()) })?;
    // SAFETY: initialized by the successful statvfs above.
    Ok(unsafe { sv.assume_init() }.f_flag & libc::ST_RDONLY != 0)
}

/// A private procfs instance of the current pid namespace, mounted nowhere (fsopen + fsmount):
/// its root fd. Writes to /proc go through it, so nothing the container mounted over its /proc,
/// or swapped into a shared mount, can redirect them (CVE-2019-16884, CVE-2025-52881).
pub fn private_procfs() -> io::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOUNT_ATTR_NOSUID_NODEV_NOEXEC: libc::c_uint = 0x2 | 0x4 | 0x8;
    // SAFETY: a valid C string; the result is checked and owned below.
    let fsfd = cvt(unsafe { libc::syscall(libc::SYS_fsopen, c"proc".as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: a fresh descriptor.
    let fsfd = unsafe { OwnedFd::from_raw_fd(fsfd as RawFd) };
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: plain syscall on the configured context; returns a new mount fd.
    let m = cvt(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fsfd.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_NOSUID_NODEV_NOEXEC,
        )
    })?;
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(m as RawFd) })
}
