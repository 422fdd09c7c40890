//! Work an ordinary user's image store needs done as the ids its containers will see: a child in
//! a new user and mount namespace, mapped as the container's (the user as 0, its /etc/subuid and
//! /etc/subgid ranges above; newuidmap/newgidmap write them, see `idmap`), runs a closure as root
//! there. Unpacking a layer chowns its files to the image's owners (shifted into the user's range
//! by the map), removing one removes files of those owners, and overlayfs can only be mounted by
//! root of a user namespace (`userxattr`): none of that is possible for the user itself. podman
//! keeps a pause process in such a namespace; husk makes one per command (a clone and the two
//! helpers, a few ms) and keeps nothing running.

use crate::Error;
use husk_spec::config::IdMapping;
use husk_sys::process::{self as sp, Forked};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

const GO: &[u8] = b"go";
/// The child's reply: one of these bytes, then the data or the error's text, in one datagram of
/// at most MAX_REPLY bytes (longer is cut).
const OK: u8 = b'+';
const FAILED: u8 = b'-';
const MAX_REPLY: usize = 16 << 10;

/// What the child sends back: fds (a detached mount) and a line of text.
#[derive(Default)]
pub struct Reply {
    pub fds: Vec<OwnedFd>,
    pub text: String,
}

/// Runs `f` as root of a new user and mount namespace mapped by `uid` and `gid`, in a child of
/// this (single-threaded) process; returns what `f` returned (sent back over a socket), or its
/// error. The child dies with this process (PDEATHSIG), so a killed husk leaves no process.
pub fn run<F>(uid: &[IdMapping], gid: &[IdMapping], f: F) -> Result<Reply, Error>
where
    F: FnOnce() -> Result<Reply, Error>,
{
    let (ours, theirs) =
        husk_sys::sock::seqpacket_pair().map_err(Error::io("socketpair", "mapped namespace"))?;
    let one = crate::process::single_threaded()?;
    let flags = (libc::CLONE_NEWUSER | libc::CLONE_NEWNS) as u64;
    let (pid, pidfd) = match sp::clone3(&one, flags, None)
        .map_err(Error::io("clone3", "user and mount namespace"))?
    {
        Forked::Child => {
            drop(ours);
            child(theirs, f)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(theirs);
    let result = (|| {
        crate::idmap::write_process_maps(pid, uid, gid)?;
        husk_sys::sock::send(ours.as_fd(), GO).map_err(Error::io("sync", "mapped namespace"))?;
        let mut buf = vec![0u8; MAX_REPLY];
        let (n, fds) = husk_sys::sock::recv_fds(ours.as_fd(), &mut buf, 8)
            .map_err(Error::io("sync", "mapped namespace"))?;
        let text = |t: &[u8]| String::from_utf8_lossy(t).into_owned();
        match buf[..n].split_first() {
            Some((&OK, t)) => Ok(Reply { fds, text: text(t) }),
            Some((&FAILED, t)) => Err(Error::Msg(text(t))),
            // Its end closed without a word: how it ended is the only clue.
            _ => Err(Error::Msg(format!(
                "the child in the user namespace (pid {pid}) {} without a reply",
                ended(sp::waitid_pidfd(pidfd.as_fd(), false))
            ))),
        }
    })();
    if result.is_err() {
        let _ = sp::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
    }
    let _ = sp::waitid_pidfd(pidfd.as_fd(), false);
    result
}

fn ended(how: std::io::Result<Option<sp::Exit>>) -> String {
    match how {
        Ok(Some(sp::Exit::Code(c))) => format!("exited with status {c}"),
        Ok(Some(sp::Exit::Signal(n))) => {
            format!("was killed by {}", husk_spec::names::signal_name(n))
        }
        Ok(None) => "ended".into(),
        Err(e) => format!("ended (waitid: {})", husk_sys::errno::text(&e)),
    }
}

fn child<F>(sock: OwnedFd, f: F) -> !
where
    F: FnOnce() -> Result<Reply, Error>,
{
    let _ = sp::set_pdeathsig(libc::SIGKILL);
    let mut buf = [0u8; 8];
    if !matches!(husk_sys::sock::recv_fds(sock.as_fd(), &mut buf, 0), Ok((n, _)) if &buf[..n] == GO)
    {
        sp::exit_now(1);
    }
    // A panic must not unwind: this child runs on a copy of the parent's stack, and unwinding
    // would run the parent's destructors here a second time (removing what the parent made).
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        husk_sys::security::setresgid(0)
            .map_err(Error::io("setresgid", "0"))
            .and_then(|()| husk_sys::security::setresuid(0).map_err(Error::io("setresuid", "0")))
            .and_then(|()| f())
    }))
    .unwrap_or_else(|p| {
        let what = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::Msg(format!(
            "internal: the work in the user namespace panicked: {what}"
        )))
    });
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let (mark, text, fds) = match &r {
        Ok(reply) => (OK, reply.text.clone(), &reply.fds[..]),
        Err(e) => (FAILED, e.to_string(), &[][..]),
    };
    let mut msg = vec![mark];
    msg.extend(text.into_bytes());
    msg.truncate(MAX_REPLY);
    let sent = if fds.is_empty() {
        husk_sys::sock::send(sock.as_fd(), &msg).map(drop)
    } else {
        let b: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        husk_sys::sock::send_fds(sock.as_fd(), &msg, &b)
    };
    sp::exit_now(if r.is_ok() && sent.is_ok() { 0 } else { 1 })
}
