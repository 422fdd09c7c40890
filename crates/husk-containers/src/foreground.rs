//! A foreground `run --name N` in the store: docker keeps a named foreground container's output
//! and exit code, so `husk logs N`, `ps -a` and `inspect N` work during and after the run. husk
//! itself is the record's monitor: it copies the container's stdout and stderr (pipes instead
//! of its own stdio) to its own stdio and into ctr.log on a thread, and records the exit. With a
//! terminal husk-runtime relays the pty to husk's stdio and hands each chunk to `tee`, which
//! logs it as stdout (docker keeps a terminal's output so). The
//! runtime keeps the container under the caller's `--root` with the name as id (as without the
//! record), which `Meta::foreground` names for `stop`/`kill`. The next foreground run of the same
//! name replaces an exited record (its logs go with it); `rm` removes one, `--rm` at exit.

use crate::logs::Writer;
use crate::store::{Meta, Seen, State, Store};
use crate::time::now_ns;
use crate::watch::Stream;
use husk_runtime::Error;
use husk_sys::process as sp;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::thread::JoinHandle;

/// The record of a foreground run: removed on drop unless the run started.
pub struct Record {
    store: Store,
    id: String,
    auto_remove: bool,
    /// husk's own stdout and stderr while fds 1 and 2 are the pipes (between `redirect` and
    /// `started`).
    saved: Option<(OwnedFd, OwnedFd)>,
    pipes: Option<(OwnedFd, OwnedFd)>,
    /// Tells the copier the container exited (it then drains what is left, briefly).
    done: Option<OwnedFd>,
    copier: Option<JoinHandle<()>>,
    /// With a terminal: the log and its line splitter, fed by `tee`.
    term: Option<(Writer, Stream)>,
    tty: bool,
    started: bool,
    /// crate::logs::copy_lock, let go once the container's last output is logged.
    copying: Option<std::fs::File>,
}

/// Makes the record of `meta` (a foreground run's: `meta.foreground` set), replacing an exited
/// foreground record of the same name.
pub fn begin(store: &Store, meta: Meta, spec: &husk_spec::Spec) -> Result<Record, Error> {
    if let Some(old) = replaceable(store, &meta.name) {
        store.remove(&old)?;
    }
    store.create(&meta, spec)?;
    let copying = crate::logs::copy_lock(store, &meta.id);
    // husk is the record's monitor from the start: a run killed before its container started
    // leaves a record the next run of the name can tell is over.
    let me = sp::getpid();
    let st = State {
        status: "created".into(),
        monitor_pid: me,
        monitor_start: sp::proc_stat(me).map(|s| s.0).unwrap_or(0),
        ..Default::default()
    };
    if let Err(e) = store.save_state(&meta.id, &st) {
        let _ = store.remove(&meta.id);
        return Err(e);
    }
    Ok(Record {
        store: store.clone(),
        id: meta.id,
        auto_remove: meta.auto_remove,
        saved: None,
        pipes: None,
        done: None,
        copier: None,
        term: None,
        tty: meta.tty,
        started: false,
        copying,
    })
}

/// The id of an exited foreground record named `name`, which a new foreground run replaces.
fn replaceable(store: &Store, name: &str) -> Option<String> {
    let id = store.resolve(name).ok().filter(|id| id.len() == 64)?;
    let fg = store
        .meta(&id)
        .is_ok_and(|m| m.foreground.is_some() && m.name == name);
    // Exited, or never started by a husk that is gone (killed during the setup).
    let over = store.state(&id).is_ok_and(|s| {
        s.seen() == Seen::Exited || !crate::store::alive(s.monitor_pid, s.monitor_start)
    });
    (fg && over).then_some(id)
}

/// Whether a foreground run may take `name`: no record has it, or an exited foreground one.
pub fn name_free(store: &Store, name: &str) -> bool {
    !store.name_taken(name) || replaceable(store, name).is_some()
}

fn io_err(step: &'static str, what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::io(step, what)(e)
}

impl Record {
    /// Points fds 1 and 2 at pipes for the container to inherit (call just before the launch).
    /// Nothing with a terminal: the container's stdio is the pty's slave.
    pub fn redirect(&mut self) -> Result<(), Error> {
        if self.tty {
            return Ok(());
        }
        let out = husk_sys::fs::dup_cloexec(1).map_err(io_err("dup", "stdout"))?;
        let err = husk_sys::fs::dup_cloexec(2).map_err(io_err("dup", "stderr"))?;
        let (out_r, out_w) = std::io::pipe().map_err(io_err("make pipe", "stdout"))?;
        let (err_r, err_w) = std::io::pipe().map_err(io_err("make pipe", "stderr"))?;
        husk_sys::fs::dup2(out_w.as_raw_fd(), 1).map_err(io_err("dup2", "stdout pipe"))?;
        self.saved = Some((out, err));
        husk_sys::fs::dup2(err_w.as_raw_fd(), 2).map_err(io_err("dup2", "stderr pipe"))?;
        self.pipes = Some((out_r.into(), err_r.into()));
        Ok(())
    }

    /// husk's own stdout and stderr back (the container keeps the pipes).
    fn restore(&mut self) {
        if let Some((out, err)) = self.saved.take() {
            let _ = husk_sys::fs::dup2(out.as_raw_fd(), 1);
            let _ = husk_sys::fs::dup2(err.as_raw_fd(), 2);
        }
    }

    /// The launch failed: husk's stdio back; the record goes on drop.
    pub fn failed(&mut self) {
        self.restore();
        self.pipes = None;
    }

    /// The container runs as `pid`: husk's stdio back, the copier started, the record says
    /// running with husk as its monitor.
    pub fn started(&mut self, pid: i32, pid_start: u64) -> Result<(), Error> {
        if self.tty {
            let log = Writer::open(self.store.log_path(&self.id), crate::store::LOG_MAX);
            self.term = Some((log, Stream::lines(b"stdout")));
        } else {
            self.start_copier()?;
        }
        self.started = true;
        let mut st = self.store.state(&self.id)?;
        st.status = "running".into();
        (st.pid, st.pid_start, st.started_ns) = (pid, pid_start, now_ns());
        self.store.save_state(&self.id, &st)
    }

    /// A chunk of the terminal's output (a run with `-t`): into the log.
    pub fn tee(&mut self, b: &[u8]) {
        if let Some((log, lines)) = &mut self.term {
            lines.feed(b, log);
            log.flush();
        }
    }

    fn start_copier(&mut self) -> Result<(), Error> {
        let (out, err) = match &self.saved {
            Some((o, e)) => (
                o.try_clone().map_err(io_err("dup", "stdout"))?,
                e.try_clone().map_err(io_err("dup", "stderr"))?,
            ),
            None => {
                return Err(Error::Msg(
                    "foreground record: started before redirect".into(),
                ));
            }
        };
        self.restore();
        let (out_r, err_r) = self
            .pipes
            .take()
            .ok_or_else(|| Error::Msg("foreground record: no pipes".into()))?;
        let (done_r, done_w) = std::io::pipe().map_err(io_err("make pipe", "done"))?;
        self.done = Some(done_w.into());
        let log = Writer::open(self.store.log_path(&self.id), crate::store::LOG_MAX);
        self.copier = Some(
            std::thread::Builder::new()
                .spawn(move || copy(log, [out_r, err_r], [out, err], done_r.into()))
                .map_err(io_err("spawn", "log copier"))?,
        );
        Ok(())
    }

    /// The container exited with `code`: the rest of its output copied, the exit recorded and,
    /// with `--rm`, the record removed once its waiters read it (the error when it could not be).
    pub fn finish(mut self, code: i32) -> Result<(), Error> {
        self.done = None;
        if let Some(c) = self.copier.take() {
            let _ = c.join();
        }
        if let Some((mut log, mut lines)) = self.term.take() {
            lines.flush_partial(&mut log);
            log.flush();
        }
        self.copying = None;
        let mut st = self.store.state(&self.id).unwrap_or_default();
        st.status = "exited".into();
        st.exit_code = code;
        st.finished_ns = now_ns();
        st.pid = 0;
        let _ = self.store.save_state(&self.id, &st);
        if self.auto_remove {
            return self.store.remove_once_read(&self.id);
        }
        Ok(())
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        self.restore();
        if !self.started {
            let _ = self.store.remove(&self.id);
        }
    }
}

/// The copier: both pipes to husk's stdio and the log until both close, or, once `done` says
/// the container exited, until nothing came for a moment (a process outside its pid namespace
/// may hold them).
fn copy(mut log: Writer, pipes: [OwnedFd; 2], to: [OwnedFd; 2], done: OwnedFd) {
    let [o, e] = pipes;
    let mut streams = [
        Stream::new(Some(o), b"stdout"),
        Stream::new(Some(e), b"stderr"),
    ];
    let mut to = to.map(std::fs::File::from);
    let mut exited = false;
    loop {
        let r = husk_sys::sock::poll_fixed(
            [
                streams[0].poll_in(),
                streams[1].poll_in(),
                (!exited).then(|| (done.as_fd(), libc::POLLIN)),
            ],
            if exited { 200 } else { -1 },
        );
        let Ok(r) = r else { break };
        for ((s, sink), rev) in streams.iter_mut().zip(&mut to).zip(r) {
            if rev != 0 {
                s.pump(&mut log, &mut |b| {
                    let _ = sink.write_all(b);
                });
            }
        }
        log.flush();
        exited |= r[2] != 0;
        if !streams.iter().any(Stream::is_open) || (exited && r.iter().all(|&x| x == 0)) {
            break;
        }
    }
    for s in &mut streams {
        s.flush_partial(&mut log);
    }
    log.flush();
}
