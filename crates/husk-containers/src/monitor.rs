//! The per-container monitor: husk's own binary, in two short-lived shapes and one resident.
//!
//! `husk run -d` and `start` fork and execute `husk-monitor launch STORE ID` (a fresh image, so
//! nothing of the caller's heap comes along). It points its stdout and stderr at two pipes,
//! launches the container from the stored spec (the container inherits them), writes "ok" (or
//! the error) to its caller and executes `husk-monitor watch STORE ID PID`. An execve keeps the
//! pid, so the watcher is still the container's parent: it reaps it and records the exit code.
//! The watcher is all the memory a detached container costs when idle: a fresh image that
//! touches only the pages of this loop, which allocates nothing (husk's bump arena keeps what
//! is freed out of order, see husk_sys::alloc), so its resident size is flat whatever the
//! container writes. It copies both pipes into ctr.log (see `logs`), rotating at LOG_MAX; when
//! the container exits it records the code and the time, removes the runtime's state and
//! cgroup, and then restarts it (a new `launch`, after docker's back-off), removes it (`--rm`),
//! or exits.

use crate::logs::Writer;
use crate::store::{State, Store};
use crate::time::now_ns;
use husk_runtime::Error;
use husk_runtime::launch::{self, CreateOpts, Mode};
use husk_sys::process as sp;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// argv[0] of the monitor's images; `main` checks for it before parsing anything.
pub const ARGV0: &str = "husk-monitor";

fn exe_args(verb: &str, store: &Store, id: &str, extra: &[String]) -> Vec<String> {
    let mut v = vec![
        ARGV0.to_string(),
        verb.to_string(),
        store.dir.to_string_lossy().into_owned(),
        id.to_string(),
    ];
    v.extend_from_slice(extra);
    v
}

fn env() -> Vec<String> {
    // Hooks and the runtime may need PATH; nothing else of the caller's environment is kept.
    vec![format!(
        "PATH={}",
        std::env::var("PATH").unwrap_or_else(|_| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        })
    )]
}

/// docker's codes for a container that never ran: 127 not found, 126 not executable, 125 else.
pub fn error_code(e: &Error) -> i32 {
    match e {
        Error::Exec {
            not_found: true, ..
        } => 127,
        Error::Exec { .. } => 126,
        _ => 125,
    }
}

/// Starts the monitor of container `id` and returns once the container's process runs (or
/// with the launch's error and its docker code).
pub fn spawn(store: &Store, id: &str) -> Result<(), (Error, i32)> {
    let fail = |e: Error| (e, 125);
    let (mut report, report_w) = std::io::pipe()
        .map_err(Error::io("make pipe", "report"))
        .map_err(fail)?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(Error::io("open", "/dev/null"))
        .map_err(fail)?;
    let args = exe_args("launch", store, id, &[]);
    let env = env();
    let forked = sp::fork()
        .map_err(Error::io("fork", "monitor"))
        .map_err(fail)?;
    if forked.is_none() {
        // The monitor must not hold the caller's terminal or pipes (`$(husk run -d ...)`
        // would wait for it), nor get its signals: a session of its own.
        let _ = sp::setsid();
        let ok = husk_sys::fs::dup2(null.as_raw_fd(), 0).is_ok()
            && husk_sys::fs::dup2(report_w.as_raw_fd(), 1).is_ok()
            && husk_sys::fs::dup2(null.as_raw_fd(), 2).is_ok();
        if ok {
            let _ = sp::execve(Path::new("/proc/self/exe"), &args, &env);
        }
        sp::exit_now(125);
    }
    drop(report_w);
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut report, &mut text);
    if text == "ok\n" {
        return Ok(());
    }
    match text.strip_prefix('E').and_then(|t| t.split_once('\n')) {
        Some((code, msg)) => Err((Error::Msg(msg.to_string()), code.parse().unwrap_or(125))),
        None => Err(fail(Error::Msg(
            "the container's monitor exited before the container ran".into(),
        ))),
    }
}

/// `husk-monitor VERB STORE ID ...`: never returns.
pub fn main(argv: &[String]) -> i32 {
    let (Some(verb), Some(dir), Some(id)) = (argv.get(1), argv.get(2), argv.get(3)) else {
        return 125;
    };
    let dir = PathBuf::from(dir);
    let store = Store {
        run: dir.join("run"),
        dir,
    };
    match verb.as_str() {
        "launch" => launch_and_watch(&store, id),
        "watch" => {
            let pid = argv.get(4).and_then(|p| p.parse().ok()).unwrap_or(0);
            watch(&store, id, pid)
        }
        _ => 125,
    }
}

/// What the monitor records when the container could not be launched.
fn record_failure(store: &Store, id: &str, e: &Error, code: i32) {
    let mut st = store.state(id).unwrap_or_default();
    st.status = "exited".into();
    st.exit_code = code;
    st.error = e.to_string();
    st.finished_ns = now_ns();
    st.pid = 0;
    let _ = store.save_state(id, &st);
}

fn launch_and_watch(store: &Store, id: &str) -> i32 {
    // fd 1 is the caller's report pipe (or /dev/null on a restart): a close-on-exec copy, so
    // neither the container nor the watcher holds it and the caller sees EOF.
    let Ok(report) = husk_sys::fs::dup_cloexec(1) else {
        return 125;
    };
    let mut report = std::fs::File::from(report);
    match launch_once(store, id) {
        Ok((pid, out, err)) => {
            let _ = report.write_all(b"ok\n");
            drop(report);
            let ok = husk_sys::fs::dup2(out.as_raw_fd(), 3).is_ok()
                && husk_sys::fs::dup2(err.as_raw_fd(), 4).is_ok();
            if ok {
                let args = exe_args("watch", store, id, &[pid.to_string()]);
                let e = sp::execve(Path::new("/proc/self/exe"), &args, &env());
                // Nobody would reap the container: kill it, then fail as a launch does.
                let _ = sp::kill(pid, libc::SIGKILL);
                let _ = store.clean_runtime(id);
                let e = Error::Msg(format!(
                    "execute the monitor: {}",
                    husk_runtime::errno_text(&e)
                ));
                record_failure(store, id, &e, 125);
            }
            125
        }
        Err(e) => {
            let code = error_code(&e);
            record_failure(store, id, &e, code);
            let _ = write!(report, "E{code}\n{e}");
            code
        }
    }
}

fn launch_once(store: &Store, id: &str) -> Result<(i32, OwnedFd, OwnedFd), Error> {
    let meta = store.meta(id)?;
    let spec = store.spec(id)?;
    // Leftovers of an earlier run whose monitor was killed (or a reboot): state dir, cgroup.
    store.clean_runtime(id)?;
    let mut plan = husk_spec::lower(&spec, &meta.root_path)?;
    plan.rootfs_readonly_recursive = meta.rootfs_readonly_recursive;
    plan.loopback_up = meta.loopback_up;
    plan.install_init = meta.install_init;
    let (out_r, out_w) = std::io::pipe().map_err(Error::io("make pipe", "stdout"))?;
    let (err_r, err_w) = std::io::pipe().map_err(Error::io("make pipe", "stderr"))?;
    husk_sys::fs::dup2(out_w.as_raw_fd(), 1).map_err(Error::io("dup2", "stdout pipe"))?;
    husk_sys::fs::dup2(err_w.as_raw_fd(), 2).map_err(Error::io("dup2", "stderr pipe"))?;
    drop((out_w, err_w));
    let opts = CreateOpts {
        root: store.run.clone(),
        id: id.to_string(),
        bundle: plan.rootfs.clone(),
        foreground: false,
        files: meta
            .files
            .iter()
            .map(|(n, e)| (n.clone(), e.into()))
            .collect(),
        ..Default::default()
    };
    let mut c = launch::launch_plan(&opts, &plan, Mode::Run)?;
    husk_runtime::fault::point("monitor.launched")?;
    if let Err(e) = c.start() {
        let _ = c.wait_after_kill();
        return Err(e);
    }
    let (pid, pid_start) = (c.state.pid, c.state.pid_start);
    c.detach();
    let me = sp::getpid();
    let st = store.state(id).unwrap_or_default();
    let st = State {
        status: "running".into(),
        pid,
        pid_start,
        monitor_pid: me,
        monitor_start: sp::proc_stat(me).map(|s| s.0).unwrap_or(0),
        started_ns: now_ns(),
        finished_ns: st.finished_ns,
        exit_code: 0,
        restart_count: st.restart_count,
        error: String::new(),
    };
    husk_runtime::fault::point("monitor.running")?;
    store.save_state(id, &st)?;
    Ok((pid, out_r.into(), err_r.into()))
}

/// One output stream of the container: the pipe and the bytes of a line not yet complete.
struct Stream {
    fd: Option<OwnedFd>,
    name: &'static [u8],
    buf: Box<[u8]>,
    len: usize,
}

const LINE_MAX: usize = 16 << 10;

impl Stream {
    fn new(fd: OwnedFd, name: &'static [u8]) -> Stream {
        Stream {
            fd: Some(fd),
            name,
            buf: vec![0u8; LINE_MAX].into_boxed_slice(),
            len: 0,
        }
    }

    /// Reads once; writes every complete line (and a full buffer as a partial one) to `log`.
    /// Closes the stream at EOF.
    fn pump(&mut self, log: &mut Writer) {
        let Some(fd) = &self.fd else { return };
        match husk_sys::fs::read(fd.as_fd(), &mut self.buf[self.len..]) {
            Ok(0) | Err(_) => {
                self.flush_partial(log);
                self.fd = None;
                return;
            }
            Ok(n) => self.len += n,
        }
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

    fn flush_partial(&mut self, log: &mut Writer) {
        if self.len > 0 {
            log.record(self.name, false, &self.buf[..self.len]);
            self.len = 0;
        }
    }
}

fn watch(store: &Store, id: &str, pid: i32) -> i32 {
    let _ = sp::set_signal_mask(&sp::SigSet::empty());
    let (Ok(out), Ok(err)) = (husk_sys::fs::dup_cloexec(3), husk_sys::fs::dup_cloexec(4)) else {
        return 125;
    };
    // The inherited 3 and 4 must not reach a restarted container (nor anything else).
    let _ = husk_sys::fs::close_range_cloexec(3);
    let Ok(pidfd) = sp::pidfd_open(pid) else {
        return 125;
    };
    let mut log = Writer::open(store.log_path(id), crate::store::LOG_MAX);
    let mut streams = [Stream::new(out, b"stdout"), Stream::new(err, b"stderr")];
    let mut exited = None;
    // What a detached container costs while it runs: only the pages of this loop.
    let _ = sp::trim_code_pages();
    // Until the container exits: its output as it comes. After: what is left in the pipes,
    // until both close or nothing came for a moment (a process outside the container's pid
    // namespace, `--pid host`, may hold them open).
    loop {
        fn ev(s: &Stream) -> Option<(std::os::fd::BorrowedFd<'_>, i16)> {
            s.fd.as_ref().map(|f| (f.as_fd(), libc::POLLIN))
        }
        let wait_for_exit = exited.is_none().then(|| (pidfd.as_fd(), libc::POLLIN));
        let timeout = if exited.is_some() { 200 } else { -1 };
        let Ok(r) =
            husk_sys::fs::poll_fixed([ev(&streams[0]), ev(&streams[1]), wait_for_exit], timeout)
        else {
            break;
        };
        for (s, rev) in streams.iter_mut().zip(r) {
            if rev != 0 {
                s.pump(&mut log);
            }
        }
        log.flush();
        if r[2] != 0 {
            exited = sp::waitid_pidfd(pidfd.as_fd(), false).ok().flatten();
            if exited.is_none() {
                break;
            }
        }
        let open = streams.iter().any(|s| s.fd.is_some());
        if exited.is_some() && (!open || r.iter().all(|&x| x == 0)) {
            break;
        }
    }
    for s in &mut streams {
        s.flush_partial(&mut log);
    }
    log.flush();
    let code = exited.map(|e| e.status()).unwrap_or(crate::store::LOST);
    finish(store, id, code)
}

/// The container exited with `code`: record it, clean up, then restart, remove, or end.
fn finish(store: &Store, id: &str, code: i32) -> i32 {
    let mut st = store.state(id).unwrap_or_default();
    let now = now_ns();
    st.status = "exited".into();
    st.exit_code = code;
    st.finished_ns = now;
    st.pid = 0;
    let _ = store.clean_runtime(id);
    let meta = store.meta(id).ok();
    let stopping = store.stop_marker(id).exists();
    let restart = match &meta {
        Some(m) if !stopping => match m.restart.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => code != 0 && (m.restart.max == 0 || st.restart_count < m.restart.max),
            _ => false,
        },
        _ => false,
    };
    if !restart {
        let _ = store.save_state(id, &st);
        if meta.as_ref().is_some_and(|m| m.auto_remove) {
            let _ = store.remove(id);
        }
        return code;
    }
    // docker's back-off: 100 ms, doubling while the container keeps failing within 10 s of its
    // start, at most a minute; reset after a run of 10 s or more.
    let ran = now.saturating_sub(st.started_ns);
    let delay_ms: u64 = if ran >= 10_000_000_000 {
        100
    } else {
        (100u64 << st.restart_count.min(10)).min(60_000)
    };
    st.status = "restarting".into();
    st.restart_count += 1;
    let _ = store.save_state(id, &st);
    // Waits on nothing, so `stop` (which also removes the marker race by writing it first)
    // can end the wait by signalling the monitor.
    let _ = husk_sys::fs::poll_fixed::<0>([], delay_ms as i32);
    if store.stop_marker(id).exists() {
        st.status = "exited".into();
        let _ = store.save_state(id, &st);
        return code;
    }
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return code;
    };
    let _ = husk_sys::fs::dup2(null.as_raw_fd(), 1);
    let e = sp::execve(
        Path::new("/proc/self/exe"),
        &exe_args("launch", store, id, &[]),
        &env(),
    );
    let e = Error::Msg(format!(
        "restart: execute the monitor: {}",
        husk_runtime::errno_text(&e)
    ));
    record_failure(store, id, &e, 125);
    125
}
