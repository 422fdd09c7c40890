//! Files and descriptors: path resolution (openat2), nodes, ownership and attributes, links,
//! locks, memfds. Mounts are in `mount`, sockets and poll in `sock`.

use crate::{cstr, cvt, cvt_i};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2). `flags` are O_* flags; O_CLOEXEC is always added.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let p = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    loop {
        // SAFETY: `p` is a valid NUL-terminated string and `how` a valid open_how of the size we
        // pass; the kernel only reads both.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                p.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match cvt(r) {
            // SAFETY: on success the syscall returned a new descriptor that nothing else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            // openat2 returns EAGAIN when a concurrent rename raced RESOLVE_IN_ROOT; retry.
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
            Err(e) => return Err(e),
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
    let p = cstr(path)?;
    let d = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: valid C string; the returned fd is checked before being owned.
    let fd = cvt_i(unsafe {
        libc::openat(d, p.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint)
    })?;
    // SAFETY: a fresh descriptor from openat.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn mkdirat(dir: BorrowedFd<'_>, name: &Path, mode: u32) -> io::Result<()> {
    let p = cstr(name)?;
    // SAFETY: valid C string and fd.
    cvt_i(unsafe { libc::mkdirat(dir.as_raw_fd(), p.as_ptr(), mode) }).map(drop)
}

pub fn mknodat(
    dir: BorrowedFd<'_>,
    name: &Path,
    mode: u32,
    major: u32,
    minor: u32,
) -> io::Result<()> {
    let p = cstr(name)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: valid C string and fd.
    cvt_i(unsafe { libc::mknodat(dir.as_raw_fd(), p.as_ptr(), mode, dev) }).map(drop)
}

pub fn symlinkat(target: &Path, dir: BorrowedFd<'_>, name: &Path) -> io::Result<()> {
    let (t, n) = (cstr(target)?, cstr(name)?);
    // SAFETY: valid C strings and fd.
    cvt_i(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), n.as_ptr()) }).map(drop)
}

pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: valid C string.
    cvt_i(unsafe { libc::mkfifo(p.as_ptr(), mode) }).map(drop)
}

/// Whether this process may write in `path`, by its effective ids and capabilities as the
/// kernel sees them in its user namespace (faccessat2 AT_EACCESS, so no setuid confusion).
pub fn writable(path: &Path) -> io::Result<bool> {
    let p = cstr(path)?;
    // SAFETY: valid C string; the call only reads it.
    match cvt_i(unsafe {
        libc::faccessat(libc::AT_FDCWD, p.as_ptr(), libc::W_OK, libc::AT_EACCESS)
    }) {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EACCES | libc::EPERM | libc::EROFS)
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// fchown on an fd (works on O_PATH fds through AT_EMPTY_PATH).
pub fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: empty path with AT_EMPTY_PATH operates on `fd` itself.
    cvt_i(unsafe { libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH) })
        .map(drop)
}

pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    cvt_i(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
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
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fills `st` on success.
    cvt_i(unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: initialised by the successful call above.
    #[allow(clippy::unnecessary_cast)]
    Ok(unsafe { st.assume_init() }.f_type as i64)
}

/// Sets extended attribute `name` of the file behind `fd` (not an O_PATH fd) to `value`.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &std::ffi::CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: a NUL-terminated name and a buffer of the given length, both only read.
    cvt_i(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(drop)
}

pub fn fchdir(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    cvt_i(unsafe { libc::fchdir(fd.as_raw_fd()) }).map(drop)
}

/// flock(2) exclusive, blocking.
pub fn flock_exclusive(fd: BorrowedFd<'_>) -> io::Result<()> {
    loop {
        // SAFETY: plain syscall on a valid fd.
        match cvt_i(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(drop),
        }
    }
}

/// flock(2) exclusive without waiting: false when another holder has it.
pub fn flock_try_exclusive(fd: BorrowedFd<'_>) -> io::Result<bool> {
    loop {
        // SAFETY: plain syscall on a valid fd.
        match cvt_i(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            r => return r.map(|_| true),
        }
    }
}

/// Reads the target of a symlink given as (dir, name).
pub fn readlinkat(dir: Option<BorrowedFd<'_>>, path: &Path) -> io::Result<std::path::PathBuf> {
    let p = cstr(path)?;
    let d = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let mut buf = vec![0u8; 4096];
    // SAFETY: buf is writable for buf.len() bytes.
    let n = unsafe {
        libc::readlinkat(
            d,
            p.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
        )
    };
    let n = cvt(n as libc::c_long)? as usize;
    buf.truncate(n);
    use std::os::unix::ffi::OsStringExt;
    Ok(std::ffi::OsString::from_vec(buf).into())
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
    // SAFETY: fcntl F_GETFL/F_SETFL on a borrowed (so open) fd; no memory is passed.
    unsafe {
        let flags = cvt_i(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        cvt_i(libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags)).map(drop)
    }
}

/// read(2) into `buf` (also one datagram of a SOCK_SEQPACKET socket), retrying EINTR.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        };
        match cvt(n as libc::c_long) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(|n| n as usize),
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

/// renameat2(2) with RENAME_EXCHANGE: atomically swaps the entries `a` and `b` in `dir` (both
/// must exist; either may be a directory or a symlink). The race tests use it the way the
/// CVE-2021-30465 exploit did.
pub fn renameat2_exchange(dir: BorrowedFd<'_>, a: &Path, b: &Path) -> io::Result<()> {
    const RENAME_EXCHANGE: libc::c_uint = 1 << 1;
    let (a, b) = (cstr(a)?, cstr(b)?);
    // SAFETY: two valid NUL-terminated strings and a valid fd; the kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            dir.as_raw_fd(),
            a.as_ptr(),
            dir.as_raw_fd(),
            b.as_ptr(),
            RENAME_EXCHANGE,
        )
    };
    cvt(r).map(drop)
}

/// An executable, close-on-exec memfd holding `contents`, sealed against writes, resizing and
/// further seals, so whoever reaches it later (e.g. through /proc/PID/exe) cannot change it.
/// Fails with EACCES where vm.memfd_noexec forbids executable memfds.
pub fn sealed_memfd(name: &std::ffi::CStr, contents: &[u8]) -> io::Result<OwnedFd> {
    use std::io::Write;
    const MFD_EXEC: libc::c_uint = 0x10;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: a valid C string name; the result is checked before being owned.
    let mut r = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // Before 6.3 there is no MFD_EXEC; memfds are executable anyway.
        // SAFETY: as above.
        r = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    // SAFETY: a fresh descriptor from memfd_create.
    let memfd = unsafe { OwnedFd::from_raw_fd(cvt_i(r)?) };
    let mut file = std::fs::File::from(memfd);
    file.write_all(contents)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS with an integer argument on a valid memfd.
    cvt_i(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) })?;
    Ok(file.into())
}

/// A plain close-on-exec memfd, a scratch file that touches no filesystem.
pub fn memfd(name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    // SAFETY: a valid C string name; the result is checked before being owned.
    let r = cvt_i(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: a fresh descriptor from memfd_create.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// linkat(2) without AT_SYMLINK_FOLLOW: a hard link to the entry `old` itself, never to what a
/// symlink there points at.
pub fn linkat(
    old_dir: BorrowedFd<'_>,
    old: &Path,
    new_dir: BorrowedFd<'_>,
    new: &Path,
) -> io::Result<()> {
    let (o, n) = (cstr(old)?, cstr(new)?);
    // SAFETY: valid C strings and fds; the kernel only reads them.
    cvt_i(unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            o.as_ptr(),
            new_dir.as_raw_fd(),
            n.as_ptr(),
            0,
        )
    })
    .map(drop)
}

/// unlinkat(2); `flags` 0 or AT_REMOVEDIR.
pub fn unlinkat(dir: BorrowedFd<'_>, name: &Path, flags: i32) -> io::Result<()> {
    let p = cstr(name)?;
    // SAFETY: valid C string and fd.
    cvt_i(unsafe { libc::unlinkat(dir.as_raw_fd(), p.as_ptr(), flags) }).map(drop)
}

/// Sets the access and modification times of the file behind `fd` (not an O_PATH fd).
pub fn futimens(fd: BorrowedFd<'_>, secs: i64, nsecs: i64) -> io::Result<()> {
    let t = libc::timespec {
        tv_sec: secs as _,
        tv_nsec: nsecs as _,
    };
    let times = [t, t];
    // SAFETY: `times` is an array of two valid timespecs, only read.
    cvt_i(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) }).map(drop)
}

/// flock(2) LOCK_SH, retried on EINTR.
pub fn flock_shared(fd: BorrowedFd<'_>) -> io::Result<()> {
    loop {
        // SAFETY: plain syscall on a valid fd.
        match cvt_i(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_SH) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(drop),
        }
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
