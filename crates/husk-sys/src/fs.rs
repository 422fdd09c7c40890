//! Files and descriptors: path resolution (openat2), nodes, ownership and attributes, links,
//! locks, memfds. Mounts are in `mount`, sockets and poll in `sock`.

use crate::{cstr, cvt, cvt_i};
use rustix::fs::{Access, AtFlags, CWD, FlockOperation, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(2). `flags` are O_* flags; O_CLOEXEC is always added.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let flags = OFlags::from_bits_retain((flags | libc::O_CLOEXEC) as u32);
    let resolve = ResolveFlags::from_bits_retain(resolve);
    loop {
        match rustix::fs::openat2(dir, path, flags, Mode::from_bits_retain(mode), resolve) {
            // openat2 returns EAGAIN when a concurrent rename raced RESOLVE_IN_ROOT; retry.
            Err(Errno::AGAIN) => continue,
            r => return Ok(r?),
        }
    }
}

/// openat(2) relative to `dir` (or the cwd with `None`), O_CLOEXEC added.
pub fn openat(
    dir: Option<BorrowedFd<'_>>,
    path: &Path,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    let flags = OFlags::from_bits_retain((flags | libc::O_CLOEXEC) as u32);
    Ok(rustix::fs::openat(
        dir.unwrap_or(CWD),
        path,
        flags,
        Mode::from_bits_retain(mode),
    )?)
}

pub fn mkdirat(dir: BorrowedFd<'_>, name: &Path, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(
        dir,
        name,
        Mode::from_bits_retain(mode),
    )?)
}

pub fn mknodat(
    dir: BorrowedFd<'_>,
    name: &Path,
    mode: u32,
    major: u32,
    minor: u32,
) -> io::Result<()> {
    // Ours, not rustix's: rustix splits `mode` into a FileType, and a type of 0 (which the
    // kernel takes as a regular file) becomes an invalid one there.
    let p = cstr(name)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: valid C string and fd.
    cvt_i(unsafe { libc::mknodat(dir.as_raw_fd(), p.as_ptr(), mode, dev) }).map(drop)
}

pub fn symlinkat(target: &Path, dir: BorrowedFd<'_>, name: &Path) -> io::Result<()> {
    Ok(rustix::fs::symlinkat(target, dir, name)?)
}

pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::mkfifoat(
        CWD,
        path,
        Mode::from_bits_retain(mode),
    )?)
}

/// Whether this process may write in `path`, by its effective ids and capabilities as the
/// kernel sees them in its user namespace (faccessat2 AT_EACCESS, so no setuid confusion).
pub fn writable(path: &Path) -> io::Result<bool> {
    match rustix::fs::accessat(CWD, path, Access::WRITE_OK, AtFlags::EACCESS) {
        Ok(()) => Ok(true),
        Err(Errno::ACCESS | Errno::PERM | Errno::ROFS) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// fchown on an fd (works on O_PATH fds through AT_EMPTY_PATH).
pub fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    let (uid, gid) = (Uid::from_raw_unchecked(uid), Gid::from_raw_unchecked(gid));
    Ok(rustix::fs::chownat(
        fd,
        c"",
        Some(uid),
        Some(gid),
        AtFlags::EMPTY_PATH,
    )?)
}

pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::fchmod(fd, Mode::from_bits_retain(mode))?)
}

/// fstat on any fd (O_PATH included).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstatat with AT_EMPTY_PATH fills `st` on success, which we check before reading it.
    cvt_i(unsafe {
        libc::fstatat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            st.as_mut_ptr(),
            libc::AT_EMPTY_PATH,
        )
    })?;
    // SAFETY: initialised by the successful call above.
    Ok(unsafe { st.assume_init() })
}

pub fn fstatfs_magic(fd: BorrowedFd<'_>) -> io::Result<i64> {
    #[allow(clippy::unnecessary_cast)]
    Ok(rustix::fs::fstatfs(fd)?.f_type as i64)
}

/// Sets extended attribute `name` of the file behind `fd` (not an O_PATH fd) to `value`.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &std::ffi::CStr, value: &[u8]) -> io::Result<()> {
    Ok(rustix::fs::fsetxattr(
        fd,
        name,
        value,
        rustix::fs::XattrFlags::empty(),
    )?)
}

pub fn fchdir(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::process::fchdir(fd)?)
}

/// flock(2) exclusive, blocking.
pub fn flock_exclusive(fd: BorrowedFd<'_>) -> io::Result<()> {
    flock(fd, FlockOperation::LockExclusive)
}

/// flock(2) exclusive without waiting: false when another holder has it.
pub fn flock_try_exclusive(fd: BorrowedFd<'_>) -> io::Result<bool> {
    match flock(fd, FlockOperation::NonBlockingLockExclusive) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        r => r.map(|()| true),
    }
}

/// flock(2), retried on EINTR.
fn flock(fd: BorrowedFd<'_>, op: FlockOperation) -> io::Result<()> {
    loop {
        match rustix::fs::flock(fd, op) {
            Err(Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// Reads the target of a symlink given as (dir, name).
pub fn readlinkat(dir: Option<BorrowedFd<'_>>, path: &Path) -> io::Result<std::path::PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let target = rustix::fs::readlinkat(dir.unwrap_or(CWD), path, Vec::new())?;
    Ok(std::ffi::OsString::from_vec(target.into_bytes()).into())
}

/// Closes every descriptor from `first` up, except those the kernel keeps for CLOEXEC use:
/// with CLOSE_RANGE_CLOEXEC they are only marked, so they vanish at execve.
pub fn close_range_cloexec(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: marks descriptors close-on-exec; no memory is touched.
    cvt(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) })
        .map(drop)
}

/// Clears FD_CLOEXEC so `fd` survives execve (for hooks' and preserved fds).
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an integer fd; an invalid fd is reported as EBADF.
    cvt_i(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// dup3 onto a chosen number (used to place stdio).
pub fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    if from == to {
        return clear_cloexec(to);
    }
    // SAFETY: dup2 on integer fds; errors are reported.
    cvt_i(unsafe { libc::dup2(from, to) }).map(drop)
}

/// Sets or clears O_NONBLOCK on the open file description of `fd`.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let mut flags = rustix::fs::fcntl_getfl(fd)?;
    flags.set(OFlags::NONBLOCK, on);
    Ok(rustix::fs::fcntl_setfl(fd, flags)?)
}

/// read(2) into `buf` (also one datagram of a SOCK_SEQPACKET socket), retrying EINTR.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Err(Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// A close-on-exec copy of a descriptor someone else owns (a C library's, such as libseccomp's
/// notify fd), so Rust code can own and pass the copy; EBADF when `fd` is not open.
pub fn dup_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an integer fd touches no memory; the new descriptor is fresh,
    // so nothing else owns it.
    let new = cvt_i(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: `new` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// A close-on-exec copy of `fd` numbered `min` or above: a descriptor about to be placed with
/// dup2 among others (3, 4, ...) first moves out of their way, so no dup2 closes one still to
/// be placed.
pub fn dup_at_least(fd: BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(fd, min)?)
}

/// renameat2(2) with RENAME_EXCHANGE: atomically swaps the entries `a` and `b` in `dir` (both
/// must exist; either may be a directory or a symlink). The race tests use it the way the
/// CVE-2021-30465 exploit did.
pub fn renameat2_exchange(dir: BorrowedFd<'_>, a: &Path, b: &Path) -> io::Result<()> {
    Ok(rustix::fs::renameat_with(
        dir,
        a,
        dir,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    )?)
}

/// An executable, close-on-exec memfd holding `contents`, sealed against writes, resizing and
/// further seals, so whoever reaches it later (e.g. through /proc/PID/exe) cannot change it.
/// Fails with EACCES where vm.memfd_noexec forbids executable memfds.
pub fn sealed_memfd(name: &std::ffi::CStr, contents: &[u8]) -> io::Result<OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags};
    use std::io::Write;
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    let memfd = match rustix::fs::memfd_create(name, flags | MemfdFlags::EXEC) {
        // Before 6.3 there is no MFD_EXEC; memfds are executable anyway.
        Err(Errno::INVAL) => rustix::fs::memfd_create(name, flags)?,
        r => r?,
    };
    let mut file = std::fs::File::from(memfd);
    file.write_all(contents)?;
    let seals = SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE;
    rustix::fs::fcntl_add_seals(&file, seals)?;
    Ok(file.into())
}

/// A plain close-on-exec memfd, a scratch file that touches no filesystem.
pub fn memfd(name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::memfd_create(
        name,
        rustix::fs::MemfdFlags::CLOEXEC,
    )?)
}

/// linkat(2) without AT_SYMLINK_FOLLOW: a hard link to the entry `old` itself, never to what a
/// symlink there points at.
pub fn linkat(
    old_dir: BorrowedFd<'_>,
    old: &Path,
    new_dir: BorrowedFd<'_>,
    new: &Path,
) -> io::Result<()> {
    Ok(rustix::fs::linkat(
        old_dir,
        old,
        new_dir,
        new,
        AtFlags::empty(),
    )?)
}

/// unlinkat(2); `flags` 0 or AT_REMOVEDIR.
pub fn unlinkat(dir: BorrowedFd<'_>, name: &Path, flags: i32) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(
        dir,
        name,
        AtFlags::from_bits_retain(flags as u32),
    )?)
}

/// Sets the access and modification times of the file behind `fd` (not an O_PATH fd).
pub fn futimens(fd: BorrowedFd<'_>, secs: i64, nsecs: i64) -> io::Result<()> {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nsecs as _,
    };
    let times = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    Ok(rustix::fs::futimens(fd, &times)?)
}

/// flock(2) LOCK_SH, retried on EINTR.
pub fn flock_shared(fd: BorrowedFd<'_>) -> io::Result<()> {
    flock(fd, FlockOperation::LockShared)
}

/// flock(2) shared without waiting: false when an exclusive holder has it.
pub fn flock_try_shared(fd: BorrowedFd<'_>) -> io::Result<bool> {
    match flock(fd, FlockOperation::NonBlockingLockShared) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        r => r.map(|()| true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("husk-sys-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// The property every path into a container's root rests on: a symlink to `/` or `..`
    /// resolves to the root itself, never above it.
    #[test]
    fn resolve_in_root_keeps_symlinks_inside() {
        let d = scratch("inroot");
        let root = openat(None, &d, libc::O_PATH | libc::O_DIRECTORY, 0).unwrap();
        symlinkat(Path::new("/"), root.as_fd(), Path::new("abs")).unwrap();
        symlinkat(Path::new("../../.."), root.as_fd(), Path::new("up")).unwrap();
        let ino = |fd: &OwnedFd| {
            let st = fstat(fd.as_fd()).unwrap();
            (st.st_dev, st.st_ino)
        };
        for link in ["abs", "up", "up/..", "abs/up"] {
            let fd = openat2(
                root.as_fd(),
                Path::new(link),
                libc::O_PATH | libc::O_DIRECTORY,
                0,
                RESOLVE_IN_ROOT,
            )
            .unwrap();
            assert_eq!(ino(&fd), ino(&root), "{link}");
        }
        // RESOLVE_BENEATH refuses instead.
        let e = openat2(
            root.as_fd(),
            Path::new("up"),
            libc::O_PATH,
            0,
            RESOLVE_BENEATH,
        );
        assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::EXDEV));
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Locks belong to open files: a second open of the same file sees the first one's lock,
    /// and gets it once that is closed.
    #[test]
    fn flock_try_exclusive_sees_another_holder() {
        let d = scratch("flock");
        let p = d.join("lock");
        std::fs::write(&p, "").unwrap();
        let (a, b) = (
            std::fs::File::open(&p).unwrap(),
            std::fs::File::open(&p).unwrap(),
        );
        assert!(flock_try_exclusive(a.as_fd()).unwrap());
        assert!(!flock_try_exclusive(b.as_fd()).unwrap());
        drop(a);
        assert!(flock_try_exclusive(b.as_fd()).unwrap());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn sealed_memfd_cannot_be_changed() {
        let fd = sealed_memfd(c"t", b"#!/bin/true\n").unwrap();
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        assert_eq!(std::fs::read(&path).unwrap(), b"#!/bin/true\n");
        let mut f = std::fs::File::from(fd);
        assert_eq!(
            f.write_all(b"x").unwrap_err().raw_os_error(),
            Some(libc::EPERM)
        );
        assert_eq!(f.set_len(0).unwrap_err().raw_os_error(), Some(libc::EPERM));
    }
}
