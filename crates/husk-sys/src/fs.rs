//! Files, mounts and path resolution.

use crate::{cstr, cvt, cvt_i};
use std::ffi::CString;
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

/// Unix SOCK_SEQPACKET pair with CLOEXEC.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    cvt_i(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: two fresh descriptors.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for reads of its length. MSG_NOSIGNAL: a dead peer is EPIPE, not SIGPIPE.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr() as *const libc::c_void,
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    cvt(n as libc::c_long).map(|n| n as usize)
}

/// A msghdr over `iov` and a control buffer (`cbuf`, sized here) with room for `nfds`
/// descriptors. Both stay the caller's and must outlive every use of the result.
fn fd_msghdr(iov: &mut libc::iovec, nfds: usize, cbuf: &mut Vec<u64>) -> libc::msghdr {
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE((nfds * std::mem::size_of::<RawFd>()) as u32) } as usize;
    cbuf.resize(space.div_ceil(8), 0);
    // SAFETY: msghdr is plain data; zeroed is a valid starting value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    msg
}

/// Sends `payload` as one datagram with `fd` attached (SCM_RIGHTS).
pub fn send_fd(sock: BorrowedFd<'_>, payload: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    send_fds(sock, payload, &[fd])
}

/// Sends `payload` as one datagram with `fds` attached (SCM_RIGHTS; at least one).
pub fn send_fds(sock: BorrowedFd<'_>, payload: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    let data_len = (fds.len() * std::mem::size_of::<RawFd>()) as u32;
    let mut cbuf = Vec::new();
    let msg = fd_msghdr(&mut iov, fds.len(), &mut cbuf);
    // SAFETY: the control buffer is CMSG_SPACE(data_len) bytes, so the first header and its
    // data fit; we write exactly fds.len() ints into it.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(data_len) as _;
        let data = libc::CMSG_DATA(c) as *mut RawFd;
        for (i, fd) in fds.iter().enumerate() {
            std::ptr::write_unaligned(data.add(i), fd.as_raw_fd());
        }
    }
    // SAFETY: msg points at live buffers for the duration of the call.
    cvt(unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) } as libc::c_long)
        .map(drop)
}

/// Receives one datagram and the fd sent with it by `send_fd`, if any (close-on-exec).
/// Returns the payload length and the fd; any extra fds in the message are closed.
pub fn recv_fd(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let (n, fds) = recv_fds(sock, buf, 4)?;
    Ok((n, fds.into_iter().next()))
}

/// Receives one datagram and up to `max` fds sent with it (close-on-exec): the payload length
/// and the fds. Room is made for `max`, so a peer sending more cannot make us lose track of the
/// ones we got; fds beyond what the buffer holds are closed by the kernel. A datagram longer
/// than `buf` is EMSGSIZE (its fds are closed).
pub fn recv_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    max: usize,
) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut cbuf = Vec::new();
    let mut msg = fd_msghdr(&mut iov, max, &mut cbuf);
    let n = loop {
        // SAFETY: msg points at live, writable buffers of the sizes it states.
        let r = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        match cvt(r as libc::c_long) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r? as usize,
        }
    };
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control/msg_controllen; CMSG_FIRSTHDR/NXTHDR stay within
    // them, and SCM_RIGHTS data is an array of ints whose count follows from cmsg_len.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let len = (*c).cmsg_len as usize - (data as usize - c as usize);
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned((data as *const RawFd).add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    // A datagram longer than `buf` loses its tail: an error, never a silently cut message.
    if msg.msg_flags & libc::MSG_TRUNC != 0 {
        return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
    }
    Ok((n, fds))
}

/// poll(2) over fds for POLLIN; returns the revents per fd. `timeout_ms` < 0 waits forever.
pub fn poll_in(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<Vec<i16>> {
    let with: Vec<_> = fds.iter().map(|f| (*f, libc::POLLIN)).collect();
    poll(&with, timeout_ms)
}

/// poll(2) over (fd, events) pairs; returns the revents per fd. `timeout_ms` < 0 waits forever.
pub fn poll(fds: &[(BorrowedFd<'_>, i16)], timeout_ms: i32) -> io::Result<Vec<i16>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|(f, events)| libc::pollfd {
            fd: f.as_raw_fd(),
            events: *events,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `p` is a valid array of pollfd of the given length.
        match cvt_i(unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(p.iter().map(|x| x.revents).collect()),
        }
    }
}

/// poll(2) over a fixed set of fds without allocating: the per-container monitor calls it for
/// its whole life, and every allocation there would stay in husk's bump arena (see `alloc`).
/// `None` entries are skipped (fd -1). Returns the revents per entry.
pub fn poll_fixed<const N: usize>(
    fds: [Option<(BorrowedFd<'_>, i16)>; N],
    timeout_ms: i32,
) -> io::Result<[i16; N]> {
    let mut p = fds.map(|e| match e {
        Some((f, events)) => libc::pollfd {
            fd: f.as_raw_fd(),
            events,
            revents: 0,
        },
        None => libc::pollfd {
            fd: -1,
            events: 0,
            revents: 0,
        },
    });
    loop {
        // SAFETY: `p` is a valid array of N pollfd.
        match cvt_i(unsafe { libc::poll(p.as_mut_ptr(), N as libc::nfds_t, timeout_ms) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(p.map(|x| x.revents)),
        }
    }
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

/// CVE-2019-5736: every process husk makes for a container is a fork of husk, so until its
/// execve its /proc/self/exe is the husk binary, and an image whose entrypoint is
/// `#!/proc/self/exe` has the kernel run that binary as a dumpable process of the container,
/// which can then hold a handle on it and reopen it for writing once no husk process runs.
/// This re-executes husk from a detached, read-only bind mount of its own binary (open_tree +
/// mount_setattr; no copy, nothing attached anywhere), so every handle the container can get is
/// on a read-only mount (EROFS). Where that is impossible (no CAP_SYS_ADMIN), from a sealed
/// memfd copy (runc's way). Returns Ok without doing anything when the binary already is on a
/// read-only mount or this process was already re-executed; on success it does not return.
pub fn reexec_from_readonly_binary() -> io::Result<()> {
    use std::os::fd::AsFd;
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    if running_from_readonly_binary()? {
        return Ok(());
    }
    let exe = Path::new("/proc/self/exe");
    let fd = match open_tree(None, exe, OPEN_TREE_CLONE).and_then(|t| {
        mount_setattr(t.as_fd(), false, MOUNT_ATTR_RDONLY, 0, None)?;
        Ok(t)
    }) {
        Ok(t) => t,
        Err(_) => sealed_copy(exe)?,
    };
    use std::os::unix::ffi::OsStrExt;
    let einval = || io::Error::from_raw_os_error(libc::EINVAL);
    let args: Vec<_> = std::env::args_os().collect();
    let args =
        crate::process::CArgs::from_bytes(args.iter().map(|a| a.as_bytes())).ok_or_else(einval)?;
    let env: Vec<std::ffi::OsString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect();
    let env =
        crate::process::CArgs::from_bytes(env.iter().map(|e| e.as_bytes())).ok_or_else(einval)?;
    Err(crate::process::execveat_c(fd.as_fd(), &args, &env))
}

/// Whether this process runs from a binary nobody can write through /proc/self/exe: re-executed
/// already (from a memfd or a detached read-only mount, named "/dev/fd/N"), or on a read-only
/// mount.
pub fn running_from_readonly_binary() -> io::Result<bool> {
    // SAFETY: getauxval only reads the auxiliary vector the kernel gave this process.
    let execfn = unsafe { libc::getauxval(libc::AT_EXECFN) };
    if execfn != 0 {
        // SAFETY: AT_EXECFN points to the NUL-terminated file name the kernel copied onto the
        // initial stack, which lives as long as the process.
        let name = unsafe { std::ffi::CStr::from_ptr(execfn as *const libc::c_char) };
        // execveat(fd, "", AT_EMPTY_PATH) names the program "/dev/fd/N".
        if name.to_bytes().starts_with(b"/dev/fd/") {
            return Ok(true);
        }
    }
    statvfs_readonly(Path::new("/proc/self/exe"))
}

/// Whether the mount `path` is on is read-only (ST_RDONLY).
fn statvfs_readonly(path: &Path) -> io::Result<bool> {
    let p = cstr(path)?;
    let mut sv = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: valid C string; the kernel fills `sv` on success, which is checked first.
    cvt_i(unsafe { libc::statvfs(p.as_ptr(), sv.as_mut_ptr()) })?;
    // SAFETY: initialized by the successful statvfs above.
    Ok(unsafe { sv.assume_init() }.f_flag & libc::ST_RDONLY != 0)
}

/// A sealed (no write, shrink or grow, no more seals) memfd copy of `path`, executable.
fn sealed_copy(path: &Path) -> io::Result<OwnedFd> {
    sealed_memfd(c"husk", &std::fs::read(path)?)
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
