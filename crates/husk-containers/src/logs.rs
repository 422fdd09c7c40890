//! Container logs: podman's k8s-file format, one record per line,
//!   2026-12-01T23:08:13.123456789Z stdout F hello
//! (F: a full line; P: part of a line longer than the monitor's buffer, or the unterminated
//! end of the output). Appended by the monitor only, so a reader follows the file by reading
//! what was added; at LOG_MAX the file is renamed to ctr.log.1 (replacing the previous one) and a
//! new one begun, which a follower notices by the path naming another inode.

use crate::store::{Seen, Store, alive};
use crate::time;
use husk_runtime::Error;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The monitor's side: records into a buffer allocated once, written out once per read.
pub struct Writer {
    path: PathBuf,
    old: PathBuf,
    file: Option<File>,
    size: u64,
    max: u64,
    out: Vec<u8>,
}

impl Writer {
    pub fn open(path: PathBuf, max: u64) -> Writer {
        // The fault walk's error here stands for the open failing (ENOSPC, EROFS): the
        // container runs on without a log.
        let file = husk_runtime::fault::point("log.open").ok().and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .ok()
        });
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        Writer {
            old: path.with_extension("log.1"),
            path,
            file,
            size,
            max,
            out: Vec::with_capacity(64 << 10),
        }
    }

    pub fn record(&mut self, stream: &[u8], full: bool, line: &[u8]) {
        if self.out.len() + line.len() + 48 > self.out.capacity() {
            self.flush();
        }
        let mut ts = [0u8; 30];
        let n = time::rfc3339_into(time::now_ns(), &mut ts);
        // Within capacity (checked above; a record is at most a buffer of the monitor's plus
        // 48 bytes, less than the capacity), so these never reallocate.
        self.out.extend_from_slice(&ts[..n]);
        self.out.push(b' ');
        self.out.extend_from_slice(stream);
        self.out
            .extend_from_slice(if full { b" F " } else { b" P " });
        self.out.extend_from_slice(line);
        self.out.push(b'\n');
    }

    pub fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        if self.size > 0 && self.size + self.out.len() as u64 > self.max {
            let _ = std::fs::rename(&self.path, &self.old);
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .ok();
            self.size = 0;
        }
        if let Some(f) = &mut self.file
            && f.write_all(&self.out).is_ok()
        {
            self.size += self.out.len() as u64;
        }
        self.out.clear();
    }
}

/// The copy lock: whoever copies container `id`'s output into its log (the detached monitor from
/// before its record says running until it has logged the last output; a named foreground run's
/// husk likewise) holds it exclusively on the container's config.json, a file written once at
/// create (the log is replaced by rotation, and the directory's lock is `wait`'s and `attach`'s,
/// Store::hold_for_exit). It goes with the holder's exit, so a killed monitor never leaves it
/// held. None when the file cannot be opened: the container runs on, `logs` just cannot wait.
pub fn copy_lock(store: &Store, id: &str) -> Option<File> {
    let f = File::open(copy_lock_path(store, id)).ok()?;
    husk_sys::fs::flock_exclusive(f.as_fd()).ok()?;
    Some(f)
}

fn copy_lock_path(store: &Store, id: &str) -> std::path::PathBuf {
    store.ctr(id).join("config.json")
}

/// A container whose process has ended while its record still says running: its monitor may
/// not have read the last output from the pipe yet (it could be between its launch and its
/// loop, or descheduled). Waits until the copier lets go of the copy lock, so `logs` of a
/// finished process shows all it wrote. The wait polls rather than blocks: a restart policy's
/// next run takes the lock again (the record then changes, so we stop), and with `--pid host`
/// a surviving writer can keep the pipe open and the copier holding the lock indefinitely.
fn wait_for_copy(store: &Store, id: &str) {
    // The copier lets go within a few hundred ms of an exit (its drain ends after 200 ms of
    // quiet); a bound of seconds covers a descheduled monitor on a loaded machine, and past it
    // `logs` prints what is there rather than hang on a writer that never stops.
    const BOUND: std::time::Duration = std::time::Duration::from_secs(5);
    let Ok(st) = store.state(id) else { return };
    if st.seen() != Seen::Running || alive(st.pid, st.pid_start) {
        return;
    }
    let Ok(f) = File::open(copy_lock_path(store, id)) else {
        return;
    };
    let deadline = std::time::Instant::now() + BOUND;
    while !matches!(husk_sys::fs::flock_try_shared(f.as_fd()), Ok(true) | Err(_))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
        match store.state(id) {
            Ok(now)
                if now.status == st.status
                    && now.started_ns == st.started_ns
                    && now.pid == st.pid => {}
            _ => return,
        }
    }
}

/// One parsed record.
pub struct Record<'a> {
    pub ts: &'a str,
    pub ns: u64,
    pub stderr: bool,
    pub full: bool,
    pub text: &'a [u8],
}

pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut it = line.splitn(4, |&c| c == b' ');
    let ts = std::str::from_utf8(it.next()?).ok()?;
    let stream = it.next()?;
    let tag = it.next()?;
    let text = it.next().unwrap_or(b"");
    Some(Record {
        ts,
        ns: time::parse_rfc3339(ts)?,
        stderr: stream == b"stderr",
        full: tag == b"F",
        text,
    })
}

pub struct Options {
    pub follow: bool,
    /// Only the last N lines (None: all).
    pub tail: Option<usize>,
    pub timestamps: bool,
    pub since: Option<u64>,
    pub until: Option<u64>,
}

/// Writes records to `out`/`err` as `logs` shows them.
struct Printer<'a> {
    o: &'a Options,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    /// Whether the last record printed on each stream ended a line (timestamps go at starts).
    at_start: [bool; 2],
}

impl Printer<'_> {
    fn print(&mut self, r: &Record) -> Result<(), Error> {
        if self.o.since.is_some_and(|s| r.ns < s) || self.o.until.is_some_and(|u| r.ns > u) {
            return Ok(());
        }
        let i = usize::from(r.stderr);
        let w: &mut dyn Write = if r.stderr { self.err } else { self.out };
        let mut put = || -> std::io::Result<()> {
            if self.o.timestamps && self.at_start[i] {
                write!(w, "{} ", r.ts)?;
            }
            w.write_all(r.text)?;
            if r.full {
                w.write_all(b"\n")?;
            }
            w.flush()
        };
        put().map_err(Error::io(
            "write",
            if r.stderr { "stderr" } else { "stdout" },
        ))?;
        self.at_start[i] = r.full;
        Ok(())
    }
}

/// `husk logs`: the rotated file, then the current one; with `follow`, what the monitor appends
/// until the container is no longer running.
pub fn show(
    store: &Store,
    id: &str,
    o: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Error> {
    wait_for_copy(store, id);
    let path = store.log_path(id);
    let old = path.with_extension("log.1");
    let mut p = Printer {
        o,
        out,
        err,
        at_start: [true, true],
    };
    let mut text = std::fs::read(&old).unwrap_or_default();
    let mut cur = match File::open(&path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("open", &path)(e)),
    };
    if let Some(f) = &mut cur {
        f.read_to_end(&mut text).map_err(Error::io("read", &path))?;
    }
    // Complete records only: a record being written is picked up by the follow loop.
    let end = text.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    let lines: Vec<&[u8]> = text[..end]
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let skip = match o.tail {
        Some(n) => lines.len().saturating_sub(n),
        None => 0,
    };
    for l in &lines[skip..] {
        if let Some(r) = parse(l) {
            p.print(&r)?;
        }
    }
    if !o.follow {
        return Ok(());
    }
    // What was read of the current file but not printed (an incomplete last record).
    let mut pending: Vec<u8> = text[end..].to_vec();
    drop(text);
    follow(store, id, &path, cur, &mut pending, &mut p, None)
}

fn follow(
    store: &Store,
    id: &str,
    path: &std::path::Path,
    mut cur: Option<File>,
    pending: &mut Vec<u8>,
    p: &mut Printer,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Result<(), Error> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst)) {
            return Ok(());
        }
        // Read before checking the status: output written before the exit is never lost.
        let running = matches!(
            store.state(id).map(|s| s.seen()),
            Ok(crate::store::Seen::Running | crate::store::Seen::Restarting)
        );
        let mut got = false;
        if let Some(f) = &mut cur {
            loop {
                let n = f.read(&mut buf).map_err(Error::io("read", path))?;
                if n == 0 {
                    break;
                }
                got = true;
                pending.extend_from_slice(&buf[..n]);
            }
        }
        if let Some(end) = pending.iter().rposition(|&c| c == b'\n') {
            for l in pending[..end].split(|&c| c == b'\n') {
                if let Some(r) = parse(l) {
                    p.print(&r)?;
                }
            }
            pending.drain(..=end);
        }
        // Rotated (or first made): the path names another file; the old one was read to its end.
        let now = std::fs::metadata(path).ok().map(|m| m.ino());
        let have = cur
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.ino());
        if now.is_some() && now != have {
            cur = File::open(path).ok();
            pending.clear();
            continue;
        }
        if !running && !got {
            return Ok(());
        }
        if !got {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// The end of the current log, for `start -a` and `attach` to print only what comes after.
pub fn position(store: &Store, id: &str) -> (Option<u64>, u64) {
    match std::fs::metadata(store.log_path(id)) {
        Ok(m) => (Some(m.ino()), m.len()),
        Err(_) => (None, 0),
    }
}

/// Follows the log from `pos` (see `position`) until the container stops (or `stop` is set).
pub fn follow_from(
    store: &Store,
    id: &str,
    pos: (Option<u64>, u64),
    out: &mut dyn Write,
    err: &mut dyn Write,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Result<(), Error> {
    let path = store.log_path(id);
    let o = Options {
        follow: true,
        tail: None,
        timestamps: false,
        since: None,
        until: None,
    };
    let mut p = Printer {
        o: &o,
        out,
        err,
        at_start: [true, true],
    };
    let mut cur = File::open(&path).ok();
    if let Some(f) = &mut cur
        && f.metadata().ok().map(|m| m.ino()) == pos.0
    {
        f.seek(SeekFrom::Start(pos.1))
            .map_err(Error::io("seek", &path))?;
    }
    follow(store, id, &path, cur, &mut Vec::new(), &mut p, stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_parses_and_rotates() {
        let dir = std::env::temp_dir().join(format!("husk-logs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctr.log");
        let mut w = Writer::open(path.clone(), 200);
        w.record(b"stdout", true, b"hello world");
        w.record(b"stderr", false, b"part");
        w.flush();
        let text = std::fs::read(&path).unwrap();
        let lines: Vec<&[u8]> = text
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let a = parse(lines[0]).unwrap();
        assert!(!a.stderr && a.full && a.text == b"hello world");
        let b = parse(lines[1]).unwrap();
        assert!(b.stderr && !b.full && b.text == b"part");
        for _ in 0..10 {
            w.record(b"stdout", true, b"0123456789012345678901234567890123456789");
            w.flush();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 200);
        assert!(dir.join("ctr.log.1").exists(), "rotated");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
