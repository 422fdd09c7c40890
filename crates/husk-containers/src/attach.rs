//! The client side of `attach` (and `start -a`) for a container with a terminal or an open
//! stdin: it connects to the monitor's socket (watch::SOCKET) and relays the caller's terminal
//! through it, with docker's detach keys (ctrl-p ctrl-q by default) ending the attachment and
//! leaving the container running. Output of a container without a terminal comes from its log
//! (logs::follow_from) as for a plain `attach`; only the input goes through the socket then.

use crate::store::{Seen, Store};
use crate::watch::{self, FRAME_EOF, FRAME_HELLO, FRAME_INPUT, FRAME_WINSIZE};
use husk_runtime::Error;
use husk_sys::{fs as sfs, process as sp, tty};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// How an attachment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container's output ended: it exited.
    Exited,
    /// It exited before the monitor read the client's hello: nothing came through the socket,
    /// the log has it all.
    ExitedUnheard,
    /// The user typed the detach keys: the container goes on.
    Detached,
}

/// docker's default detach keys.
pub const DEFAULT_KEYS: &[u8] = &[0x10, 0x11];

/// docker's `--detach-keys`: comma-separated `ctrl-<c>` (c one of a-z, @, [, \, ], ^, _) or
/// single characters.
pub fn parse_keys(s: &str) -> Result<Vec<u8>, Error> {
    s.split(',')
        .map(|k| {
            let bad = || {
                Error::Msg(format!(
                    "--detach-keys {s}: {k} is neither a single character nor ctrl-<a-z@[\\]^_>"
                ))
            };
            match k.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => {
                    let c = c.as_bytes()[0].to_ascii_lowercase();
                    match c {
                        b'a'..=b'z' => Ok(c - b'a' + 1),
                        b'@' | b'[' | b'\\' | b']' | b'^' | b'_' => {
                            Ok(c.to_ascii_uppercase() - b'@')
                        }
                        _ => Err(bad()),
                    }
                }
                None if k.len() == 1 => Ok(k.as_bytes()[0]),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// Finds the detach keys in the input, holding back a partial match until the next read
/// decides it (docker's escape proxy).
pub struct Escape<'k> {
    keys: &'k [u8],
    matched: usize,
}

impl<'k> Escape<'k> {
    pub fn new(keys: &'k [u8]) -> Escape<'k> {
        Escape { keys, matched: 0 }
    }

    /// Appends to `out` what goes on to the container; true when the keys were typed (what
    /// came before them in this read is still passed on).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return false;
        }
        for &c in input {
            if c == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if c == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(c);
                }
            }
        }
        false
    }
}

/// One frame of the socket's protocol (watch.rs): kind, length, at most 255 bytes of body.
pub(crate) fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(body.len() + 2);
    f.extend_from_slice(&[kind, body.len() as u8]);
    f.extend_from_slice(body);
    f
}

/// The client's end of the monitor's socket. The monitor closes its end when the container
/// exits, possibly before it read what the client writes: a write that finds it closed is not
/// an error (the output sent before is still read, up to the end), only further writes stop.
struct Peer {
    sock: UnixStream,
    open: bool,
}

impl Peer {
    fn send(&mut self, kind: u8, body: &[u8]) -> Result<(), Error> {
        if !self.open {
            return Ok(());
        }
        match self.sock.write_all(&frame(kind, body)) {
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
                self.open = false;
                Ok(())
            }
            r => r.map_err(Error::io("write", "the monitor's socket")),
        }
    }

    /// `bytes` in as many frames as they take.
    fn send_all(&mut self, kind: u8, bytes: &[u8]) -> Result<(), Error> {
        bytes.chunks(255).try_for_each(|c| self.send(kind, c))
    }
}

fn running(store: &Store, id: &str) -> bool {
    matches!(
        store.state(id).map(|s| s.seen()),
        Ok(Seen::Running | Seen::Restarting)
    )
}

/// Connects to the monitor's socket; the monitor binds it just after the container starts, so
/// this waits for it while the container runs. None once the container is not running.
pub fn connect(store: &Store, id: &str) -> Result<Option<UnixStream>, Error> {
    let dir = store.ctr(id);
    let (_d, path) = watch::socket_path(&dir).map_err(Error::io("open", &dir))?;
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        match UnixStream::connect(&path) {
            Ok(s) => return Ok(Some(s)),
            Err(_) if !running(store, id) => return Ok(None),
            Err(e) if Instant::now() >= end => {
                return Err(Error::io("connect", dir.join(watch::SOCKET))(e));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// The caller's terminal in raw mode for the attachment's length (input only: without it,
/// ^C stays the caller's), restored when dropped.
struct Raw<'a> {
    fd: BorrowedFd<'a>,
    saved: Option<tty::Termios>,
}

impl Drop for Raw<'_> {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tty::restore(self.fd, t);
        }
    }
}

/// Relays the caller's stdio to a container with a terminal: its screen to stdout, stdin (with
/// `input`) to it, the window size as it changes. `replay`: the monitor first sends what the
/// container wrote before the connection (`start -a`, whose container may write before
/// the client connects).
pub fn terminal(sock: UnixStream, input: bool, keys: &[u8], replay: bool) -> Result<Ended, Error> {
    let stdin = std::io::stdin();
    let stdin_fd = stdin.as_fd();
    let stdout = std::io::stdout();
    let term = [stdin_fd, stdout.as_fd()]
        .into_iter()
        .find(|f| tty::is_tty(*f));
    let _raw = Raw {
        fd: stdin_fd,
        saved: if input && tty::is_tty(stdin_fd) {
            tty::make_raw(stdin_fd).ok()
        } else {
            None
        },
    };
    let mut peer = Peer { sock, open: true };
    let winsize = |peer: &mut Peer| -> Result<(), Error> {
        if let Some(Ok((rows, cols))) = term.map(tty::get_winsize) {
            let [r0, r1] = rows.to_le_bytes();
            let [c0, c1] = cols.to_le_bytes();
            peer.send(FRAME_WINSIZE, &[r0, r1, c0, c1])?;
        }
        Ok(())
    };
    peer.send(FRAME_HELLO, &[u8::from(replay)])?;
    winsize(&mut peer)?;
    let mut winch = sp::SigSet::empty();
    winch.add(libc::SIGWINCH);
    let old = sp::block_signals(&winch).map_err(Error::io("block", "SIGWINCH"))?;
    let sigfd = sp::signalfd(&winch).map_err(Error::io("signalfd", "SIGWINCH"));
    let result = (|| {
        let sigfd = sigfd?;
        let mut esc = Escape::new(keys);
        let mut buf = [0u8; 8192];
        let mut pass = Vec::with_capacity(buf.len());
        let mut reading = input;
        let mut heard = false;
        let mut out = stdout.lock();
        loop {
            let r = husk_sys::sock::poll_fixed(
                [
                    Some((peer.sock.as_fd(), libc::POLLIN)),
                    (reading && peer.open).then_some((stdin_fd, libc::POLLIN)),
                    Some((sigfd.as_fd(), libc::POLLIN)),
                ],
                -1,
            )
            .map_err(Error::io("poll", "attach"))?;
            if r[0] != 0 {
                let n = peer.sock.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    return Ok(if heard {
                        Ended::Exited
                    } else {
                        Ended::ExitedUnheard
                    });
                }
                heard = true;
                out.write_all(&buf[..n])
                    .and_then(|()| out.flush())
                    .map_err(Error::io("write", "stdout"))?;
            }
            if r[1] != 0 {
                let n = sfs::read(stdin_fd, &mut buf).unwrap_or(0);
                // At the caller's EOF the container's stdin stays open (docker's -d -i).
                reading = n > 0;
                pass.clear();
                let detach = esc.feed(&buf[..n], &mut pass);
                peer.send_all(FRAME_INPUT, &pass)?;
                if detach {
                    return Ok(Ended::Detached);
                }
            }
            if r[2] != 0 {
                let _ = sp::read_signalfd(sigfd.as_fd());
                winsize(&mut peer)?;
            }
        }
    })();
    let _ = sp::set_signal_mask(&old);
    result
}

/// Forwards stdin to a container without a terminal (`-i`) until the caller's EOF (passed on
/// with `once`, docker's StdinOnce) or the detach keys; its output is read from the log
/// meanwhile (by the caller's thread).
pub fn forward_input(sock: UnixStream, keys: &[u8], once: bool) -> Ended {
    let mut peer = Peer { sock, open: true };
    let mut esc = Escape::new(keys);
    let mut buf = [0u8; 8192];
    let mut pass = Vec::with_capacity(buf.len());
    let stdin = std::io::stdin();
    loop {
        let n = sfs::read(stdin.as_fd(), &mut buf).unwrap_or(0);
        if n == 0 {
            if once {
                let _ = peer.send(FRAME_EOF, &[]);
            }
            return Ended::Exited;
        }
        pass.clear();
        let detach = esc.feed(&buf[..n], &mut pass);
        if peer.send_all(FRAME_INPUT, &pass).is_err() || !peer.open {
            return Ended::Exited;
        }
        if detach {
            return Ended::Detached;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_as_docker() {
        assert_eq!(parse_keys("ctrl-p,ctrl-q").unwrap(), DEFAULT_KEYS);
        assert_eq!(parse_keys("ctrl-@,a,ctrl-_").unwrap(), vec![0, b'a', 0x1f]);
        assert!(parse_keys("ctrl-1").is_err() && parse_keys("ab").is_err());
    }

    #[test]
    fn a_monitor_that_closed_first_still_gives_its_output() {
        // The monitor's side replays and closes (the container exited) before the client's
        // hello or window size arrives: the client's write is no error, the replay still reads.
        let (client, mut monitor) = UnixStream::pair().unwrap();
        monitor.write_all(b"early-bird").unwrap();
        let mut unread = [0u8; 8];
        let mut peer = Peer {
            sock: client,
            open: true,
        };
        peer.send(FRAME_HELLO, &[1]).unwrap();
        monitor.read_exact(&mut unread[..3]).unwrap();
        drop(monitor);
        peer.send(FRAME_WINSIZE, &[24, 0, 80, 0]).unwrap();
        peer.send(FRAME_INPUT, b"more").unwrap();
        assert!(!peer.open);
        let mut got = String::new();
        let _ = peer.sock.read_to_string(&mut got);
        assert_eq!(got, "early-bird");
    }

    #[test]
    fn escape_holds_a_partial_match_back() {
        let mut e = Escape::new(DEFAULT_KEYS);
        let mut out = vec![];
        assert!(!e.feed(b"ab\x10", &mut out));
        assert_eq!(out, b"ab");
        // ^P then something else: both go on.
        assert!(!e.feed(b"x\x10\x10", &mut out));
        assert_eq!(out, b"ab\x10x\x10");
        assert!(e.feed(b"\x11rest", &mut out));
        assert_eq!(out, b"ab\x10x\x10");
    }
}
