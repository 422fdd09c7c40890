//! The parent/child protocol over one SOCK_SEQPACKET pair: one datagram per message, a tag byte
//! then an optional UTF-8 payload. EOF on either end means the peer died.
//!
//! Every message is small: a datagram must fit the socket's send buffer (`wmem_max`, ~208 KiB)
//! and the receiver's buffer (`MAX_MSG`), while a config and so the state may be megabytes
//! (Kubernetes allows 256 KiB of annotations). So nothing from the config travels here: init is
//! a clone of the parent and already holds the state; `Go` brings only the one thing it lacks,
//! its own host pid. Error texts are cut to `MAX_TEXT`.
//!
//! | step | direction      | message    | meaning                                                  |
//! |------|----------------|------------|----------------------------------------------------------|
//! | 1    | parent → child | `Go(pid)`  | id maps written: set up the container; `pid` is init's   |
//! |      |                |            | host pid, for the state hooks get; meanwhile the parent   |
//! |      |                |            | saves the state and makes the cgroup                     |
//! | 1'   | parent → child | `Cgroups`  | the cgroup is ready, limits set; with it the open `tasks` |
//! |      |                |            | files of the v1 hierarchies (SCM_RIGHTS): the child moves |
//! |      |                |            | itself in before the cgroup namespace and cgroup mounts   |
//! | 1''  | child → parent | `Namespaces`| (only for a runtime step) the namespaces it needs     |
//! |      |                |            | (network; user too for pasta), SCM_RIGHTS, opened by init |
//! |      |                |            | itself: non-dumpable, its /proc/PID/ns is closed to the   |
//! |      |                |            | caller's uid                                              |
//! | 2    | child → parent | `Mounted`  | mounts done, before pivot_root: run createRuntime hooks  |
//! | 3    | parent → child | `HooksDone`| (only when there are prestart/createRuntime hooks)       |
//! | 4    | child → parent | `Ready`    | everything but exec is done                              |
//! | 5    | child          |            | `create`: wait on exec.fifo for `start`; `run`: go on    |
//! | any  | child → parent | `Error(m)` | setup failed; `m` names the step, path and errno         |
//! | 4'   | child → parent | `NoExec(m)`| the command cannot be found or executed (instead of 4)   |

use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// The receive buffer: larger than any message `encode` makes.
const MAX_MSG: usize = 8192;
/// Error texts longer than this are cut (a message naming a huge value must still arrive).
const MAX_TEXT: usize = 4096;

#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    Go(i32),
    Cgroups,
    Namespaces,
    Mounted,
    HooksDone,
    Ready,
    Error(String),
    NoExec(String),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        let pid;
        let (tag, payload): (u8, &str) = match self {
            Msg::Go(p) => {
                pid = p.to_string();
                (b'G', &pid)
            }
            Msg::Cgroups => (b'C', ""),
            Msg::Namespaces => (b'N', ""),
            Msg::Mounted => (b'M', ""),
            Msg::HooksDone => (b'H', ""),
            Msg::Ready => (b'R', ""),
            Msg::Error(m) => (b'E', m),
            Msg::NoExec(m) => (b'X', m),
        };
        let payload = cut(payload);
        let mut v = Vec::with_capacity(1 + payload.len());
        v.push(tag);
        v.extend_from_slice(payload.as_bytes());
        v
    }

    pub(crate) fn decode(b: &[u8]) -> io::Result<Msg> {
        Ok(match b.first() {
            Some(b'G') => Msg::Go(
                std::str::from_utf8(&b[1..])
                    .ok()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "bad sync message")
                    })?,
            ),
            Some(b'C') => Msg::Cgroups,
            Some(b'N') => Msg::Namespaces,
            Some(b'M') => Msg::Mounted,
            Some(b'H') => Msg::HooksDone,
            Some(b'R') => Msg::Ready,
            Some(b'E') => Msg::Error(String::from_utf8_lossy(&b[1..]).into_owned()),
            Some(b'X') => Msg::NoExec(String::from_utf8_lossy(&b[1..]).into_owned()),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bad sync message",
                ));
            }
        })
    }
}

/// `text`, or its first `MAX_TEXT` bytes (on a char boundary) and how much was left out.
fn cut(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_TEXT {
        return text.into();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes)", &text[..end], text.len() - end).into()
}

/// One end of the channel.
pub struct Channel(pub OwnedFd);

impl Channel {
    pub fn send(&self, m: &Msg) -> io::Result<()> {
        husk_sys::sock::send(self.0.as_fd(), &m.encode()).map(drop)
    }

    /// `m` with `fds` attached (SCM_RIGHTS); a plain `send` when there are none.
    pub fn send_with_fds(&self, m: &Msg, fds: &[std::os::fd::BorrowedFd<'_>]) -> io::Result<()> {
        if fds.is_empty() {
            return self.send(m);
        }
        husk_sys::sock::send_fds(self.0.as_fd(), &m.encode(), fds)
    }

    /// A message and up to `max` fds sent with it; `Ok(None)` is EOF: the peer is gone.
    pub fn recv_with_fds(&self, max: usize) -> io::Result<Option<(Msg, Vec<OwnedFd>)>> {
        let mut buf = [0u8; MAX_MSG];
        let recv = |buf: &mut [u8]| husk_sys::sock::recv_fds(self.0.as_fd(), buf, max);
        // A peer that exits with a message of ours unread leaves ECONNRESET, reported once,
        // ahead of what it sent before: read on (its error report, then EOF).
        let (n, fds) = match recv(&mut buf) {
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => recv(&mut buf)?,
            r => r?,
        };
        if n == 0 {
            return Ok(None);
        }
        Ok(Some((Msg::decode(&buf[..n])?, fds)))
    }

    /// `Ok(None)` is EOF: the peer is gone.
    pub fn recv(&self) -> io::Result<Option<Msg>> {
        Ok(self.recv_with_fds(0)?.map(|(m, _)| m))
    }
}

/// Which of init's namespaces a `RuntimeStep` gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepNamespaces {
    /// The network namespace (a veth moved in by netlink).
    Net,
    /// The user namespace too (pasta joins both to make its tap device).
    UserAndNet,
}

impl StepNamespaces {
    /// The /proc/thread-self/ns names init opens, in the order they travel.
    pub(crate) fn kinds(self) -> &'static [&'static str] {
        match self {
            StepNamespaces::Net => &["net"],
            StepNamespaces::UserAndNet => &["user", "net"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_eof() {
        let (a, b) = husk_sys::sock::seqpacket_pair().unwrap();
        let (a, b) = (Channel(a), Channel(b));
        for m in [
            Msg::Go(4242),
            Msg::Cgroups,
            Msg::Namespaces,
            Msg::Mounted,
            Msg::HooksDone,
            Msg::Ready,
            Msg::Error("mount /proc: EPERM".into()),
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
        }
        let (r, w) = std::io::pipe().unwrap();
        let (r, w) = (OwnedFd::from(r), OwnedFd::from(w));
        a.send_with_fds(&Msg::Cgroups, &[r.as_fd(), w.as_fd()])
            .unwrap();
        let (m, fds) = b.recv_with_fds(16).unwrap().unwrap();
        assert_eq!((m, fds.len()), (Msg::Cgroups, 2));
        a.send_with_fds(&Msg::Cgroups, &[]).unwrap();
        assert_eq!(b.recv_with_fds(16).unwrap().unwrap().1.len(), 0);
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }

    /// A huge error text (e.g. one naming 65536 gids) arrives cut, not as EMSGSIZE or a
    /// silently truncated datagram.
    #[test]
    fn huge_texts_are_cut() {
        let (a, b) = husk_sys::sock::seqpacket_pair().unwrap();
        let (a, b) = (Channel(a), Channel(b));
        let long = format!("setgroups {}: EINVAL", "é1234,".repeat(100_000));
        a.send(&Msg::Error(long.clone())).unwrap();
        let Some(Msg::Error(got)) = b.recv().unwrap() else {
            panic!("no error message");
        };
        assert!(
            got.len() < MAX_MSG && got.starts_with("setgroups é1234,"),
            "{got}"
        );
        assert!(got.ends_with(" more bytes)"), "{got}");
        // A datagram larger than the receive buffer is an error, never a cut message.
        husk_sys::sock::send(a.0.as_fd(), &[b'E'; MAX_MSG + 1]).unwrap();
        let e = b.recv().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMSGSIZE));
    }
}
