//! Unix sockets (the parent/child channel, descriptors passed with SCM_RIGHTS) and poll.

use crate::{cvt, cvt_i};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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
    // The kernel sets MSG_CTRUNC (scm_detach_fds) when it delivers fewer fds than were sent,
    // for one of two reasons. The control buffer holds fewer: room is (msg_controllen -
    // sizeof(cmsghdr)) / 4, which CMSG_SPACE's 8-byte alignment makes `max` or `max` + 1; the
    // rest are closed, and the caller sees at least `max` fds, more than it asked for if the
    // peer sent more. Or installing one failed: the receiver's fd table is full
    // (get_unused_fd_flags at RLIMIT_NOFILE, or fs.nr_open) or an LSM refused the file
    // (security_file_receive); the kernel stops there, closes the rest and drops the error.
    // So fewer than `max` with the flag set is the second case, reported as EMFILE, the error
    // the full table gave the kernel and by far its likeliest cause; the fds that did arrive
    // are closed here, as a short list would be taken for the whole one.
    if msg.msg_flags & libc::MSG_CTRUNC != 0 && fds.len() < max {
        return Err(io::Error::from_raw_os_error(libc::EMFILE));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// The channel's guarantees: one datagram per send, the fds arrive with it, and a peer
    /// sending more fds than asked for cannot leave any open here.
    #[test]
    fn fds_travel_with_their_datagram() {
        let (a, b) = seqpacket_pair().unwrap();
        let f = crate::fs::memfd(c"a").unwrap();
        let g = crate::fs::memfd(c"b").unwrap();
        send_fds(a.as_fd(), b"two", &[f.as_fd(), g.as_fd()]).unwrap();
        send(a.as_fd(), b"none").unwrap();
        let mut buf = [0u8; 16];
        let (n, fds) = recv_fds(b.as_fd(), &mut buf, 2).unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"two"[..], 2));
        let (n, fd) = recv_fd(b.as_fd(), &mut buf).unwrap();
        assert_eq!((&buf[..n], fd.is_none()), (&b"none"[..], true));
        // Three sent, room for one asked: the kernel closes what does not fit (the control
        // buffer is 8-byte aligned, so room for one 4-byte fd holds two).
        send_fds(a.as_fd(), b"x", &[f.as_fd(), g.as_fd(), f.as_fd()]).unwrap();
        let (_, fds) = recv_fds(b.as_fd(), &mut buf, 1).unwrap();
        assert!((1..=2).contains(&fds.len()), "{}", fds.len());
        drop(a);
        assert_eq!(
            crate::fs::read(b.as_fd(), &mut buf).unwrap(),
            0,
            "EOF once the peer is gone"
        );
    }
}
