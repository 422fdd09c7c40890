//! The resident part of a detached container's monitor: what an idle container costs.
//!
//! `husk-monitor launch` (husk itself) starts the container and executes this loop, normally
//! as the small separate binary `husk-monitor` installed beside husk (crates/husk/src/bin), so
//! the resident image is that binary's few pages and not husk's (docs/benchmarks.md has the
//! numbers); husk carries the same loop for when the small binary is missing. The loop copies
//! the container's output into ctr.log, relays an attached client's input and terminal (see
//! `attach`), reaps the container, and executes husk again (`husk-monitor finish`) to record
//! the exit, clean up and restart: the code that does that never stays resident.
//!
//! Descriptors on entry: 3 the container's stdout pipe or pty master, 4 its stderr pipe
//! (without a terminal), 5 the write end of its stdin pipe (`-i` without a terminal), 6 the
//! copy lock (crate::logs::copy_lock), let go once the last output is logged.

use crate::logs::Writer;
use husk_sys::process as sp;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// argv[0] of the monitor's images (husk itself, or the small binary of this loop installed
/// under this name); husk's `main` checks for it before parsing anything.
pub const ARGV0: &str = "husk-monitor";

/// The verb the loop executes husk with when the container has exited: husk-monitor finish
/// STORE ID CODE (crate::monitor records it).
pub const FINISH: &str = "finish";

/// The verb husk's monitor executes the loop with; argv: husk-monitor watch STORE ID PID HUSK
/// MODE, MODE a set of `t` (terminal) and `i` (stdin kept open) or `-`.
pub const VERB: &str = "watch";

/// What an attach client sends: one frame per message, `[kind, len, bytes...]`.
pub const FRAME_INPUT: u8 = b'i';
/// `[FRAME_EOF, 0]`: the caller's stdin ended and the container was started attached to it
/// (docker's StdinOnce): its stdin pipe is closed, so it reads EOF too. Without a terminal only.
pub const FRAME_EOF: u8 = b'e';
/// `[FRAME_WINSIZE, 4, rows_lo, rows_hi, cols_lo, cols_hi]`
pub const FRAME_WINSIZE: u8 = b'w';
/// `[FRAME_HELLO, 1, replay]`, a client's first frame: from then on it gets the terminal's
/// output, after (with `replay` 1) the last HISTORY bytes of it. `start -a` replays, as its
/// container may write before the client connects; output is never sent twice or lost between
/// the two, since both come from this loop.
pub const FRAME_HELLO: u8 = b'h';

/// What a terminal's watcher keeps of its latest output for FRAME_HELLO's replay.
const HISTORY: usize = 4096;

/// The terminal's last HISTORY bytes (a ring).
struct History {
    buf: Box<[u8]>,
    at: usize,
    full: bool,
}

impl History {
    fn push(&mut self, mut b: &[u8]) {
        if b.len() > HISTORY {
            b = &b[b.len() - HISTORY..];
        }
        let first = b.len().min(HISTORY - self.at);
        self.buf[self.at..self.at + first].copy_from_slice(&b[..first]);
        self.buf[..b.len() - first].copy_from_slice(&b[first..]);
        self.full |= self.at + b.len() >= HISTORY;
        self.at = (self.at + b.len()) % HISTORY;
    }

    fn send(&self, to: &mut UnixStream) -> std::io::Result<()> {
        if self.full {
            to.write_all(&self.buf[self.at..])?;
        }
        to.write_all(&self.buf[..self.at])
    }
}

/// The socket an attach client connects to, in the container's directory.
pub const SOCKET: &str = "attach.sock";

/// A path to `dir`'s socket short enough for sun_path whatever the store's path: through an
/// open descriptor of the directory (which the caller keeps open while using the path).
pub fn socket_path(dir: &Path) -> std::io::Result<(std::fs::File, PathBuf)> {
    let d = std::fs::File::open(dir)?;
    let p = PathBuf::from(format!(
        "/proc/self/fd/{}/{SOCKET}",
        std::os::fd::AsRawFd::as_raw_fd(&d)
    ));
    Ok((d, p))
}

/// One output stream of the container: the fd and the bytes of a line not yet complete.
pub(crate) struct Stream {
    fd: Option<OwnedFd>,
    name: &'static [u8],
    buf: Box<[u8]>,
    len: usize,
}

const LINE_MAX: usize = 16 << 10;

impl Stream {
    pub(crate) fn new(fd: Option<OwnedFd>, name: &'static [u8]) -> Stream {
        Stream {
            buf: vec![0u8; if fd.is_some() { LINE_MAX } else { 0 }].into_boxed_slice(),
            fd,
            name,
            len: 0,
        }
    }

    /// Reads once; passes what was read to `sink` (an attached terminal), writes every complete
    /// line (and a full buffer as a partial one) to `log`. Closes the stream at EOF (or EIO: a
    /// pty whose every slave is closed).
    pub(crate) fn pump(&mut self, log: &mut Writer, sink: &mut dyn FnMut(&[u8])) {
        let Some(fd) = &self.fd else { return };
        let n = match husk_sys::fs::read(fd.as_fd(), &mut self.buf[self.len..]) {
            Ok(0) | Err(_) => {
                self.flush_partial(log);
                self.fd = None;
                return;
            }
            Ok(n) => n,
        };
        sink(&self.buf[self.len..self.len + n]);
        self.split(n, log);
    }

    /// A line splitter with no descriptor: for output that reaches husk by another way (a
    /// foreground run's terminal, which husk-runtime relays).
    pub(crate) fn lines(name: &'static [u8]) -> Stream {
        Stream {
            buf: vec![0u8; LINE_MAX].into_boxed_slice(),
            fd: None,
            name,
            len: 0,
        }
    }

    /// Logs `bytes` as `pump` logs what it reads.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], log: &mut Writer) {
        while !bytes.is_empty() {
            let n = bytes.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.split(n, log);
            bytes = &bytes[n..];
        }
    }

    /// `n` new bytes follow the held part line: every complete line (and a full buffer as a
    /// partial one) goes to `log`.
    fn split(&mut self, n: usize, log: &mut Writer) {
        self.len += n;
        let mut start = 0;
        while let Some(nl) = self.buf[start..self.len].iter().position(|&c| c == b'\n') {
            log.record(self.name, true, &self.buf[start..start + nl]);
            start += nl + 1;
        }
        self.buf.copy_within(start..self.len, 0);
        self.len -= start;
        if self.len == self.buf.len() {
            self.flush_partial(log);
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.fd.is_some()
    }

    /// Its poll entry while open.
    pub(crate) fn poll_in(&self) -> Option<(BorrowedFd<'_>, i16)> {
        self.fd.as_ref().map(|f| (f.as_fd(), libc::POLLIN))
    }

    pub(crate) fn flush_partial(&mut self, log: &mut Writer) {
        if self.len > 0 {
            log.record(self.name, false, &self.buf[..self.len]);
            self.len = 0;
        }
    }
}

/// An attached client and the bytes of a frame not yet complete.
struct Client {
    sock: UnixStream,
    /// It sent FRAME_HELLO: the terminal's output goes to it.
    ready: bool,
    buf: [u8; 512],
    len: usize,
}

impl Client {
    /// Reads once and applies every complete frame; false once the client is gone.
    fn pump(
        &mut self,
        input: &mut Option<std::fs::File>,
        tty: Option<BorrowedFd<'_>>,
        history: Option<&History>,
    ) -> bool {
        match self.sock.read(&mut self.buf[self.len..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => self.len += n,
        }
        let mut at = 0;
        while self.len - at >= 2 && self.len - at >= 2 + self.buf[at + 1] as usize {
            let body = &self.buf[at + 2..at + 2 + self.buf[at + 1] as usize];
            match (self.buf[at], input.as_mut(), tty) {
                (FRAME_INPUT, Some(f), _) => {
                    // Blocks while the container does not read: the attacher waits, as it
                    // would on the terminal itself.
                    let _ = f.write_all(body);
                }
                (FRAME_EOF, Some(_), None) => *input = None,
                (FRAME_WINSIZE, _, Some(m)) if body.len() == 4 => {
                    let rows = u16::from_le_bytes([body[0], body[1]]);
                    let cols = u16::from_le_bytes([body[2], body[3]]);
                    let _ = husk_sys::tty::set_winsize(m, rows, cols);
                }
                (FRAME_HELLO, _, _) if body.len() == 1 => {
                    if let Some(h) = history
                        && body[0] == 1
                        && h.send(&mut self.sock).is_err()
                    {
                        return false;
                    }
                    self.ready = true;
                }
                _ => {}
            }
            at += 2 + self.buf[at + 1] as usize;
        }
        self.buf.copy_within(at..self.len, 0);
        self.len -= at;
        true
    }
}

fn cloexec_copy(fd: i32) -> Option<OwnedFd> {
    husk_sys::fs::dup_cloexec(fd).ok()
}

/// `husk-monitor watch ...`: never returns (it executes husk's `finish`), but for a failure to.
pub fn main(argv: &[String]) -> i32 {
    let (Some(dir), Some(id), Some(pid), Some(husk), Some(mode)) = (
        argv.get(2),
        argv.get(3),
        argv.get(4).and_then(|p| p.parse::<i32>().ok()),
        argv.get(5),
        argv.get(6),
    ) else {
        return 125;
    };
    let _ = sp::set_signal_mask(&sp::SigSet::empty());
    let tty = mode.contains('t');
    let out = cloexec_copy(3);
    let err = if tty { None } else { cloexec_copy(4) };
    let stdin = if mode.contains('i') && !tty {
        cloexec_copy(5)
    } else {
        None
    };
    // The inherited 3, 4 and 5 must not reach anything this executes; 0, 1 and 2 are the
    // launch's ends of the container's pipes, which would keep them from ever reaching EOF, and
    // so would 5 once its copy is closed (FRAME_EOF): /dev/null over each.
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let null = std::os::fd::AsRawFd::as_raw_fd(&null);
        for n in (0..3).chain(stdin.is_some().then_some(5)) {
            let _ = husk_sys::fs::dup2(null, n);
        }
    }
    let _ = husk_sys::fs::close_range_cloexec(3);
    let code = match sp::pidfd_open(pid) {
        Ok(pidfd) => watch(Path::new(dir), id, pidfd, out, err, stdin, tty, mode),
        Err(_) => crate::store::LOST,
    };
    // Everything is logged. fd 6, the copy lock, is close-on-exec (above): the execve of
    // `finish` lets `logs` read, before `finish` records the exit.
    let args = [
        ARGV0.to_string(),
        FINISH.into(),
        dir.clone(),
        id.clone(),
        code.to_string(),
    ];
    let mut env = vec![format!(
        "PATH={}",
        std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
    )];
    env.extend(husk_runtime::fault::env());
    let _ = sp::execve(Path::new(husk), &args, &env);
    125
}

/// The socket attachers connect to, in the container's directory `ctr` (replacing an earlier
/// run's); None when it cannot be made.
fn attach_socket(ctr: &Path) -> Option<UnixListener> {
    let (_d, path) = socket_path(ctr).ok()?;
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).ok()?;
    // Whoever can connect types into the container: its owner only, whatever the umask.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).ok()?;
    Some(l)
}

#[allow(clippy::too_many_arguments)]
fn watch(
    store: &Path,
    id: &str,
    pidfd: OwnedFd,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    tty: bool,
    mode: &str,
) -> i32 {
    let ctr = store.join("containers").join(id);
    let mut log = Writer::open(ctr.join("ctr.log"), crate::store::LOG_MAX);
    let master = if tty {
        out.as_ref().and_then(|f| f.try_clone().ok())
    } else {
        None
    };
    let mut input: Option<std::fs::File> = if tty && mode.contains('i') {
        master.as_ref().and_then(|m| m.try_clone().ok())
    } else {
        stdin
    }
    .map(std::fs::File::from);
    // Only a container with a terminal or an open stdin has anything to attach to beyond its
    // log; the socket goes with the directory (rm) or is replaced by the next run's.
    let listener = (tty || input.is_some())
        .then(|| attach_socket(&ctr))
        .flatten();
    let mut client: Option<Client> = None;
    let mut history = tty.then(|| History {
        buf: vec![0u8; HISTORY].into_boxed_slice(),
        at: 0,
        full: false,
    });
    let mut streams = [Stream::new(out, b"stdout"), Stream::new(err, b"stderr")];
    let mut exited = None;
    // What a detached container costs while it runs: only the pages of this loop.
    let _ = sp::trim_code_pages();
    // Until the container exits: its output as it comes. After: what is left in the pipes,
    // until both close or nothing came for a moment (a process outside the container's pid
    // namespace, `--pid host`, may hold them open).
    loop {
        let wait_for_exit = exited.is_none().then(|| (pidfd.as_fd(), libc::POLLIN));
        let timeout = if exited.is_some() { 200 } else { -1 };
        let Ok(r) = husk_sys::sock::poll_fixed(
            [
                streams[0].poll_in(),
                streams[1].poll_in(),
                wait_for_exit,
                listener.as_ref().map(|l| (l.as_fd(), libc::POLLIN)),
                client.as_ref().map(|c| (c.sock.as_fd(), libc::POLLIN)),
            ],
            timeout,
        ) else {
            break;
        };
        let mut gone = false;
        for (s, rev) in streams.iter_mut().zip(r) {
            if rev != 0 {
                s.pump(&mut log, &mut |b| {
                    if let Some(h) = &mut history {
                        h.push(b);
                        if let Some(c) = &mut client
                            && c.ready
                        {
                            gone |= c.sock.write_all(b).is_err();
                        }
                    }
                });
            }
        }
        if gone {
            client = None;
        }
        log.flush();
        if r[3] != 0
            && let Some(l) = &listener
            && let Ok((s, _)) = l.accept()
        {
            // One attacher at a time: the newest.
            client = Some(Client {
                sock: s,
                ready: false,
                buf: [0; 512],
                len: 0,
            });
        } else if r[4] != 0
            && let Some(c) = &mut client
            && !c.pump(
                &mut input,
                master.as_ref().map(|f| f.as_fd()),
                history.as_ref(),
            )
        {
            client = None;
        }
        if r[2] != 0 {
            exited = sp::waitid_pidfd(pidfd.as_fd(), false).ok().flatten();
            if exited.is_none() {
                break;
            }
        }
        let open = streams.iter().any(Stream::is_open);
        if exited.is_some() && (!open || r[..3].iter().all(|&x| x == 0)) {
            break;
        }
    }
    for s in &mut streams {
        s.flush_partial(&mut log);
    }
    log.flush();
    if listener.is_some() {
        let _ = std::fs::remove_file(ctr.join(SOCKET));
    }
    exited.map(|e| e.status()).unwrap_or(crate::store::LOST)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attach::frame;

    /// FRAME_EOF closes the container's stdin pipe (it reads what came before, then EOF); with
    /// a terminal it is ignored (the pty master is the terminal itself).
    #[test]
    fn the_callers_eof_closes_the_containers_stdin_pipe_only() {
        let (mut attacher, sock) = UnixStream::pair().unwrap();
        let mut client = Client {
            sock,
            ready: false,
            buf: [0; 512],
            len: 0,
        };
        let (mut container_reads, w) = std::io::pipe().unwrap();
        let mut input = Some(std::fs::File::from(OwnedFd::from(w)));
        let tty = std::fs::File::open("/dev/null").unwrap();
        attacher.write_all(&frame(FRAME_EOF, &[])).unwrap();
        assert!(client.pump(&mut input, Some(tty.as_fd()), None));
        assert!(input.is_some(), "a terminal's input stays");
        attacher
            .write_all(&[frame(FRAME_INPUT, b"last\n"), frame(FRAME_EOF, &[])].concat())
            .unwrap();
        assert!(client.pump(&mut input, None, None));
        assert!(input.is_none());
        let mut got = String::new();
        container_reads.read_to_string(&mut got).unwrap();
        assert_eq!(got, "last\n");
    }
}
