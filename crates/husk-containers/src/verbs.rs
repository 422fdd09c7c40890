//! docker's container verbs on the store: each reads the records the monitors keep, acts through
//! husk-runtime on the runtime root, and waits for the monitor's record where docker waits.

use crate::format;
use crate::logs;
use crate::monitor;
use crate::store::{Meta, Seen, State, Store, alive};
use crate::time::{self, now_ns};
use husk_runtime::Error;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Creates the container (name, files) and starts its monitor; returns the id once the
/// container's process runs. A container that never ran leaves nothing behind; the error comes
/// with docker's exit code.
pub fn run_detached(
    store: &Store,
    mut meta: Meta,
    spec: &husk_spec::Spec,
) -> Result<String, (Error, i32)> {
    let e125 = |e| (e, 125);
    if meta.name.is_empty() {
        meta.name = store.generate_name().map_err(e125)?;
    } else if !crate::store::valid_name(&meta.name) {
        return Err(e125(Error::Msg(format!(
            "--name {}: a name is [a-zA-Z0-9][a-zA-Z0-9_.-]+",
            meta.name
        ))));
    }
    store.create(&meta, spec).map_err(e125)?;
    match monitor::spawn(store, &meta.id) {
        Ok(()) => Ok(meta.id),
        Err(e) => {
            let _ = store.remove(&meta.id);
            Err(e)
        }
    }
}

fn state_of(store: &Store, id: &str) -> Result<State, Error> {
    store.state(id)
}

/// Polls the record until `done` holds (the monitor writes it; nothing to wait on otherwise).
fn wait_record(
    store: &Store,
    id: &str,
    limit: Option<Duration>,
    done: impl Fn(&State) -> bool,
) -> Result<State, Error> {
    let end = limit.map(|l| Instant::now() + l);
    loop {
        let st = state_of(store, id)?;
        if done(&st) || st.seen() == Seen::Exited {
            return Ok(st);
        }
        if end.is_some_and(|e| Instant::now() >= e) {
            return Ok(st);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Blocks until the process `pid` (started at `start`) is gone, at most `limit`; true if gone.
fn wait_gone(pid: i32, start: u64, limit: Option<Duration>) -> bool {
    if !alive(pid, start) {
        return true;
    }
    let Ok(fd) = husk_sys::process::pidfd_open(pid) else {
        return true;
    };
    let ms = limit.map_or(-1, |l| l.as_millis().min(i32::MAX as u128) as i32);
    use std::os::fd::AsFd;
    matches!(husk_sys::sock::poll_fixed([Some((fd.as_fd(), libc::POLLIN))], ms), Ok([r]) if r != 0)
}

/// The record after the monitor wrote the exit (or after husk wrote it for a lost monitor).
fn settle(store: &Store, id: &str) -> Result<State, Error> {
    let st = wait_record(store, id, None, |s| s.status == "exited")?;
    if st.status != "exited" {
        // The monitor is gone (killed, rebooted): nobody else will record the end.
        let mut st = st;
        if alive(st.pid, st.pid_start) {
            let _ = husk_sys::process::kill(st.pid, libc::SIGKILL);
            wait_gone(st.pid, st.pid_start, None);
        }
        st.status = "exited".into();
        st.exit_code = st.code();
        if st.finished_ns < st.started_ns {
            st.finished_ns = now_ns();
        }
        st.pid = 0;
        store.clean_runtime(id)?;
        store.save_state(id, &st)?;
        return Ok(st);
    }
    Ok(st)
}

/// `stop`: the stop signal, then KILL after `timeout` seconds (the container's --stop-timeout,
/// else 10). The marker keeps the monitor from restarting it.
pub fn stop(store: &Store, word: &str, timeout: Option<i64>) -> Result<(), Error> {
    let id = store.resolve(word)?;
    let meta = store.meta(&id)?;
    let st = state_of(store, &id)?;
    std::fs::write(store.stop_marker(&id), b"")
        .map_err(Error::io("write", store.stop_marker(&id)))?;
    match st.seen() {
        Seen::Running => {
            let t = timeout.unwrap_or(meta.stop_timeout);
            let (rt, rid) = store.runtime(&meta);
            let _ = husk_runtime::ops::kill(&rt, &rid, meta.stop_signal, false);
            let limit = (t >= 0).then(|| Duration::from_secs(t as u64));
            if !wait_gone(st.pid, st.pid_start, limit) {
                let _ = husk_runtime::ops::kill(&rt, &rid, libc::SIGKILL, false);
                wait_gone(st.pid, st.pid_start, None);
            }
        }
        // The monitor waits out its back-off: it ends there on SIGTERM.
        Seen::Restarting if alive(st.monitor_pid, st.monitor_start) => {
            let _ = husk_sys::process::kill(st.monitor_pid, libc::SIGTERM);
        }
        _ => {}
    }
    let mut st = settle(store, &id)?;
    if st.status == "restarting" {
        st.status = "exited".into();
        store.save_state(&id, &st)?;
    }
    Ok(())
}

/// `kill`: a signal to the container's process (docker's default: KILL).
pub fn kill(store: &Store, word: &str, sig: i32) -> Result<(), Error> {
    let id = store.resolve(word)?;
    let st = state_of(store, &id)?;
    if st.seen() != Seen::Running {
        return Err(Error::Msg(format!("container {word} is not running")));
    }
    let (rt, rid) = store.runtime(&store.meta(&id)?);
    husk_runtime::ops::kill(&rt, &rid, sig, false)
}

/// `rm`: a stopped container (with `force`, a running one is killed first), everything of it.
pub fn rm(store: &Store, word: &str, force: bool) -> Result<(), Error> {
    let id = store.resolve(word)?;
    let st = state_of(store, &id).unwrap_or_default();
    match st.seen() {
        Seen::Running | Seen::Restarting if !force => {
            return Err(Error::Msg(format!(
                "cannot remove container {word}: it is {}; stop it first or use rm -f",
                st.seen().as_str()
            )));
        }
        Seen::Running | Seen::Restarting => {
            let _ = std::fs::write(store.stop_marker(&id), b"");
            if st.seen() == Seen::Restarting {
                let _ = husk_sys::process::kill(st.monitor_pid, libc::SIGTERM);
            }
            if let Ok(meta) = store.meta(&id) {
                let (rt, rid) = store.runtime(&meta);
                let _ = husk_runtime::ops::kill(&rt, &rid, libc::SIGKILL, false);
            }
            if let Err(e) = settle(store, &id) {
                // A foreground `run --rm` (its husk the monitor) removes its record at the
                // exit instead of recording it: nothing left to remove.
                return if store.ctr(&id).exists() {
                    Err(e)
                } else {
                    Ok(())
                };
            }
            // The monitor may still be removing the runtime's state (or, with --rm, the
            // container): let it finish first.
            if alive(st.monitor_pid, st.monitor_start) {
                wait_gone(
                    st.monitor_pid,
                    st.monitor_start,
                    Some(Duration::from_secs(10)),
                );
            }
        }
        _ => {}
    }
    store.remove(&id)
}

/// `wait`: blocks until the container stops; its exit code.
pub fn wait(store: &Store, word: &str) -> Result<i32, Error> {
    let id = store.resolve(word)?;
    let _held = store.hold_for_exit(&id);
    let mut st = state_of(store, &id)?;
    // Between its record and its start (`run -d` still starting it): waited through, as
    // podman's `wait` and docker's since moby#49627, unless its runner is gone.
    if st.seen() == Seen::Created && alive(st.monitor_pid, st.monitor_start) {
        st = wait_record(store, &id, None, |s| {
            s.seen() != Seen::Created || !alive(s.monitor_pid, s.monitor_start)
        })?;
    }
    if st.seen() == Seen::Running {
        wait_gone(st.pid, st.pid_start, None);
        let started = st.started_ns;
        let st = wait_record(store, &id, None, |s| {
            s.status != "running" || s.started_ns != started
        })?;
        return Ok(st.code());
    }
    if st.seen() == Seen::Restarting {
        let st = wait_record(store, &id, None, |s| s.status == "exited")?;
        return Ok(st.code());
    }
    Ok(st.code())
}

/// How `attach` and `start -a` attach: with `input`, the caller's stdin goes to a container
/// that keeps one open (`-i`); `keys` end the attachment and leave the container running.
pub struct Attach<'a> {
    pub input: bool,
    /// The caller's EOF closes the container's stdin (docker's StdinOnce, set for a container
    /// started attached to the caller's `-i`, as a foreground `run -i` is); else it stays open
    /// for the next attacher (`attach` to a `run -d -i` container).
    pub stdin_once: bool,
    pub keys: &'a [u8],
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

/// docker's message and exit code when the detach keys end an attachment.
pub const DETACHED_CODE: i32 = 1;

/// A foreground run that can outlive husk (`run --detach-keys`, `--sig-proxy=false`): the
/// container is made and monitored as `run -d` makes it, and the caller is attached from its
/// first byte as `start -a` attaches. Its exit code; 0 after the detach keys (docker's `run`),
/// the container going on. `--rm` (in `meta`) is done after the exit, so the code can be read
/// first (by a child, `monitor::remove_in_child`: this process may have threads), or left to
/// the monitor once detached. `sig_proxy`: the signals husk receives go
/// to the container (docker's rule: without a terminal only).
pub fn run_attached(
    store: &Store,
    mut meta: Meta,
    spec: &husk_spec::Spec,
    a: Attach<'_>,
    sig_proxy: bool,
) -> Result<i32, (Error, i32)> {
    let e125 = |e| (e, 125);
    let rm = std::mem::take(&mut meta.auto_remove);
    let proxy = sig_proxy && !meta.tty;
    let mut blocked = None;
    if proxy {
        // Blocked before any thread exists, so every thread inherits the mask and only the
        // proxy's signalfd sees them.
        let set = husk_sys::process::SigSet::forwardable();
        blocked = Some(
            husk_sys::process::block_signals(&set)
                .map_err(Error::io("block", "signals"))
                .map_err(e125)?,
        );
    }
    let id = match run_detached(store, meta, spec) {
        Ok(id) => id,
        Err(e) => {
            if let Some(old) = &blocked {
                let _ = husk_sys::process::set_signal_mask(old);
            }
            return Err(e);
        }
    };
    let proxied = if proxy {
        proxy_signals(store, &id)
    } else {
        Ok(())
    };
    let ended = proxied.and_then(|()| relay(store, &id, (None, 0), a, true));
    match ended {
        Ok(Some(code)) => {
            // relay's hold is dropped by now: a `wait` from another shell still gets the code.
            if rm {
                monitor::remove_in_child(store, &id).map_err(e125)?;
            }
            Ok(code)
        }
        // Detached (or the attachment failed): the container goes on without this husk.
        Ok(None) | Err(_) if rm => {
            let left = remove_at_exit(store, &id);
            let code = ended.map_err(e125)?;
            left.map_err(e125)?;
            Ok(code.unwrap_or(0))
        }
        Ok(None) => Ok(0),
        Err(e) => Err(e125(e)),
    }
}

/// `--rm` of a container this husk no longer waits for: its monitor removes it at its exit from
/// now on (it reads meta.json after recording the exit); one that exited meanwhile is removed
/// here.
fn remove_at_exit(store: &Store, id: &str) -> Result<(), Error> {
    let mut m = match store.meta(id) {
        Ok(m) => m,
        // Removed meanwhile (`rm -f`).
        Err(_) if !store.ctr(id).exists() => return Ok(()),
        Err(e) => return Err(e),
    };
    m.auto_remove = true;
    crate::store::write_json(&store.ctr(id).join("meta.json"), &m)?;
    if state_of(store, id).is_ok_and(|s| s.status == "exited") {
        monitor::remove_in_child(store, id)?;
    }
    Ok(())
}

/// docker's sig-proxy: a thread passes each forwardable signal (blocked by the caller) to the
/// container, as `husk kill -s SIG` would. It ends with the process.
fn proxy_signals(store: &Store, id: &str) -> Result<(), Error> {
    use husk_sys::process as sp;
    let fd =
        sp::signalfd(&sp::SigSet::forwardable()).map_err(Error::io("signalfd", "sig-proxy"))?;
    let (store, id) = (store.clone(), id.to_string());
    std::thread::Builder::new()
        .spawn(move || {
            while let Ok(sig) = sp::read_signalfd(std::os::fd::AsFd::as_fd(&fd)) {
                if ![libc::SIGCHLD, libc::SIGWINCH, libc::SIGPIPE, libc::SIGURG].contains(&sig) {
                    let _ = kill(&store, &id, sig);
                }
            }
        })
        .map_err(Error::io("spawn", "sig-proxy thread"))?;
    Ok(())
}

/// `start`: runs a created or exited container again, with the same config and root. With
/// `attach`, relays its output (and input) until it exits and returns its code.
pub fn start(store: &Store, word: &str, attach: Option<Attach<'_>>) -> Result<i32, (Error, i32)> {
    let e125 = |e| (e, 125);
    let id = store.resolve(word).map_err(e125)?;
    let st = state_of(store, &id).map_err(e125)?;
    if matches!(st.seen(), Seen::Running | Seen::Restarting) {
        return Ok(0);
    }
    if store.meta(&id).map_err(e125)?.foreground.is_some() {
        return Err(e125(Error::Msg(format!(
            "{word} is the record of a foreground run (for its logs): run it again with husk run, or husk run -d for a container that start can restart"
        ))));
    }
    if st.status != "exited" && st.status != "created" {
        // Its monitor died: settle the record first.
        settle(store, &id).map_err(e125)?;
    }
    let _ = std::fs::remove_file(store.stop_marker(&id));
    let pos = logs::position(store, &id);
    monitor::spawn(store, &id)?;
    match attach {
        None => Ok(0),
        Some(a) => relay(store, &id, pos, a, true)
            .map(|c| c.unwrap_or(DETACHED_CODE))
            .map_err(e125),
    }
}

/// The attachment proper: a terminal through the monitor's socket, else the log from `pos`
/// (and stdin through the socket with `-i`). The container's exit code, or None after the
/// detach keys.
fn relay(
    store: &Store,
    id: &str,
    pos: (Option<u64>, u64),
    a: Attach<'_>,
    replay: bool,
) -> Result<Option<i32>, Error> {
    // The exit code is read at the end, also of a `--rm` container.
    let _held = store.hold_for_exit(id);
    let meta = store.meta(id)?;
    let input = a.input && meta.stdin;
    let ended = if meta.tty {
        let ended = match crate::attach::connect(store, id)? {
            Some(sock) => crate::attach::terminal(sock, input, a.keys, replay)?,
            None => crate::attach::Ended::ExitedUnheard,
        };
        // `start -a` of a container that was gone before its monitor heard the client: what it
        // wrote is in the log.
        if replay && ended == crate::attach::Ended::ExitedUnheard {
            logs::follow_from(store, id, pos, a.out, a.err, None)?;
        }
        ended
    } else if input {
        use std::sync::atomic::{AtomicBool, Ordering};
        let detached = std::sync::Arc::new(AtomicBool::new(false));
        if let Some(sock) = crate::attach::connect(store, id)? {
            // Never joined: it blocks reading the caller's stdin, which only the caller ends;
            // the follow below ends at the container's exit or when this sets `detached`.
            let (keys, d, once) = (a.keys.to_vec(), detached.clone(), a.stdin_once);
            std::thread::Builder::new()
                .spawn(move || {
                    let ended = crate::attach::forward_input(sock, &keys, once);
                    d.store(ended == crate::attach::Ended::Detached, Ordering::SeqCst);
                })
                .map_err(Error::io("spawn", "stdin thread"))?;
        }
        logs::follow_from(store, id, pos, a.out, a.err, Some(&detached))?;
        if detached.load(Ordering::SeqCst) {
            crate::attach::Ended::Detached
        } else {
            crate::attach::Ended::Exited
        }
    } else {
        logs::follow_from(store, id, pos, a.out, a.err, None)?;
        crate::attach::Ended::Exited
    };
    match ended {
        crate::attach::Ended::Detached => {
            let _ = writeln!(a.err, "read escape sequence");
            Ok(None)
        }
        crate::attach::Ended::Exited | crate::attach::Ended::ExitedUnheard => {
            wait(store, id).map(Some)
        }
    }
}

/// `attach`: the container's output from now until it exits (with a terminal: the terminal
/// itself, input included unless `--no-stdin`); its code, or DETACHED_CODE after the detach
/// keys.
pub fn attach(store: &Store, word: &str, a: Attach<'_>) -> Result<i32, Error> {
    let id = store.resolve(word)?;
    let st = state_of(store, &id)?;
    if st.seen() != Seen::Running {
        return Err(Error::Msg(format!(
            "cannot attach to container {word}: it is not running"
        )));
    }
    let pos = logs::position(store, &id);
    relay(store, &id, pos, a, false).map(|c| c.unwrap_or(DETACHED_CODE))
}

/// `container prune`: removes every container that is not running; their ids.
pub fn prune(store: &Store) -> Result<Vec<String>, Error> {
    store.sweep_removed();
    let mut out = vec![];
    for id in store.ids() {
        let st = state_of(store, &id).unwrap_or_default();
        if matches!(st.seen(), Seen::Exited | Seen::Created) {
            store.remove(&id)?;
            out.push(id);
        }
    }
    Ok(out)
}

/// One row of `ps`.
pub struct Row {
    pub meta: Meta,
    pub state: State,
    pub seen: Seen,
}

impl Row {
    pub fn status_text(&self, now: u64) -> String {
        match self.seen {
            Seen::Running => format!(
                "Up {}",
                time::human(now.saturating_sub(self.state.started_ns))
            ),
            Seen::Restarting => format!(
                "Restarting ({}) {} ago",
                self.state.exit_code,
                time::human(now.saturating_sub(self.state.finished_ns))
            ),
            Seen::Created => "Created".into(),
            Seen::Exited => {
                let at = if self.state.finished_ns > 0 {
                    self.state.finished_ns
                } else {
                    self.state.started_ns.max(self.meta.created_ns)
                };
                format!(
                    "Exited ({}) {} ago",
                    self.state.code(),
                    time::human(now.saturating_sub(at))
                )
            }
        }
    }

    /// docker's PORTS cell, `0.0.0.0:8080->80/tcp, ...`, from the running container's lease.
    pub fn ports(&self) -> String {
        let (Some(b), Seen::Running) = (&self.meta.bridge, self.seen) else {
            return String::new();
        };
        husk_net::published_of(&b.root, &self.meta.id)
            .ok()
            .flatten()
            .map(|ps| {
                ps.iter()
                    .map(husk_net::Publish::docker_text)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }

    pub fn command(&self, trunc: bool) -> String {
        let c = self.meta.command.join(" ");
        if trunc && c.chars().count() > 20 {
            format!("\"{}…\"", c.chars().take(19).collect::<String>())
        } else {
            format!("\"{c}\"")
        }
    }

    /// The fields `--format '{{.Field}}'` and `--format json` know, as docker names them.
    pub fn field(&self, name: &str, now: u64, trunc: bool) -> Option<String> {
        Some(match name {
            "ID" => {
                if trunc {
                    self.meta.id[..12].to_string()
                } else {
                    self.meta.id.clone()
                }
            }
            "Image" => self.meta.image.clone(),
            "Command" => self.command(trunc),
            "CreatedAt" => time::rfc3339(self.meta.created_ns),
            "RunningFor" => format!(
                "{} ago",
                time::human(now.saturating_sub(self.meta.created_ns))
            ),
            "Status" => self.status_text(now),
            "State" => self.seen.as_str().into(),
            "Ports" => self.ports(),
            "Names" => self.meta.name.clone(),
            "Pid" => self.state.pid.to_string(),
            _ => return None,
        })
    }
}

/// The containers `ps` lists, newest first (with `all`, the stopped ones too).
pub fn rows(store: &Store, all: bool) -> Vec<Row> {
    let mut rows: Vec<Row> = store
        .ids()
        .into_iter()
        .filter_map(|id| {
            let meta = store.meta(&id).ok()?;
            let state = store.state(&id).unwrap_or_default();
            let seen = state.seen();
            (all || matches!(seen, Seen::Running | Seen::Restarting)).then_some(Row {
                meta,
                state,
                seen,
            })
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.meta.created_ns));
    rows
}

pub const PS_FIELDS: &[&str] = &[
    "ID",
    "Image",
    "Command",
    "CreatedAt",
    "RunningFor",
    "Status",
    "State",
    "Ports",
    "Names",
    "Pid",
];

/// `ps`: docker's table, `--format json` (one object per line), or a template of `{{.Field}}`s
/// (a leading `table ` adds a header).
pub fn ps(
    store: &Store,
    all: bool,
    quiet: bool,
    format: &str,
    no_trunc: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let rows = rows(store, all);
    let now = now_ns();
    let trunc = !no_trunc;
    let w =
        |out: &mut dyn Write, s: &str| writeln!(out, "{s}").map_err(Error::io("write", "stdout"));
    if quiet {
        for r in &rows {
            w(out, &r.field("ID", now, trunc).unwrap_or_default())?;
        }
        return Ok(());
    }
    let columns = [
        "ID",
        "Image",
        "Command",
        "RunningFor",
        "Status",
        "Ports",
        "Names",
    ];
    let field = |r: &Row, f: &str| r.field(f, now, trunc).unwrap_or_default();
    for l in format::listing(format, PS_FIELDS, &columns, ps_header, &rows, field)? {
        w(out, &l)?;
    }
    Ok(())
}

/// docker's header for a `ps` field, in its table and in `--format 'table ...'`.
fn ps_header(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID".into(),
        "RunningFor" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        f => f.to_uppercase(),
    }
}

/// `inspect`: docker's object for each container.
pub fn inspect(store: &Store, word: &str) -> Result<Value, Error> {
    let id = store.resolve(word)?;
    let meta = store.meta(&id)?;
    let spec = store.spec(&id)?;
    let st = state_of(store, &id)?;
    let seen = st.seen();
    let t = |ns: u64| {
        if ns == 0 {
            "0001-01-01T00:00:00Z".to_string()
        } else {
            time::rfc3339(ns)
        }
    };
    let process = spec.process.clone().unwrap_or_default();
    let network = spec
        .linux
        .as_ref()
        .map(|l| {
            if l.namespaces
                .iter()
                .any(|n| n.kind == "network" && n.path.is_none())
            {
                "none"
            } else {
                "host"
            }
        })
        .unwrap_or("host");
    let mounts: Vec<Value> = spec
        .mounts
        .iter()
        .filter(|m| {
            m.options.iter().any(|o| o == "bind" || o == "rbind")
                || m.kind.as_deref() == Some("tmpfs")
        })
        .filter(|m| {
            !matches!(
                m.destination.as_str(),
                "/dev" | "/dev/shm" | "/etc/hosts" | "/etc/hostname" | "/etc/resolv.conf"
            )
        })
        .map(|m| {
            let bind = m.kind.as_deref() != Some("tmpfs");
            let source = m.source.clone().unwrap_or_default();
            let rw = !m.options.iter().any(|o| o == "ro" || o == "rro");
            match husk_image::volumes::name_of(Path::new(&source)) {
                Some(name) if bind => json!({
                    "Type": "volume",
                    "Name": name,
                    "Source": source,
                    "Destination": m.destination,
                    "Driver": "local",
                    "Mode": "",
                    "RW": rw,
                    "Propagation": "",
                }),
                _ => json!({
                    "Type": if bind { "bind" } else { "tmpfs" },
                    "Source": source,
                    "Destination": m.destination,
                    "Mode": "",
                    "RW": rw,
                    "Propagation": "",
                }),
            }
        })
        .collect();
    Ok(json!({
        "Id": id,
        "Created": t(meta.created_ns),
        "Path": meta.command.first().cloned().unwrap_or_default(),
        "Args": meta.command.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": seen.as_str(),
            "Running": seen == Seen::Running,
            "Paused": false,
            "Restarting": seen == Seen::Restarting,
            "OOMKilled": false,
            "Dead": false,
            "Pid": if seen == Seen::Running { st.pid } else { 0 },
            "ExitCode": if seen == Seen::Exited { st.code() } else { 0 },
            "Error": st.error,
            "StartedAt": t(st.started_ns),
            "FinishedAt": t(st.finished_ns),
        },
        "Image": meta.image,
        "LogPath": store.log_path(&id),
        "Name": format!("/{}", meta.name),
        "RestartCount": st.restart_count,
        "HostConfig": {
            "RestartPolicy": {"Name": meta.restart.name, "MaximumRetryCount": meta.restart.max},
            "AutoRemove": meta.auto_remove,
            "NetworkMode": network,
        },
        "Mounts": mounts,
        "Config": {
            "Hostname": spec.hostname.clone().unwrap_or_default(),
            "User": format!("{}:{}", process.user.uid, process.user.gid),
            "Env": process.env,
            "Cmd": meta.command,
            "WorkingDir": process.cwd,
            "Labels": spec.annotations,
            "ExposedPorts": meta.exposed.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
            "StopSignal": husk_spec::names::signal_name(meta.stop_signal),
            "StopTimeout": meta.stop_timeout,
        },
        "NetworkSettings": {"Mode": network},
        "Monitor": {"Pid": if alive(st.monitor_pid, st.monitor_start) { st.monitor_pid } else { 0 }},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `wait` of a container recorded but not started yet (its runner alive) waits for its
    /// exit; one whose runner is gone answers at once.
    #[test]
    fn wait_goes_through_created() {
        let dir = std::env::temp_dir().join(format!("husk-wait-{}", std::process::id()));
        let store = Store {
            dir: dir.clone(),
            run: dir.clone(),
        };
        let id = "ab".repeat(32);
        std::fs::create_dir_all(store.ctr(&id)).unwrap();
        let me = husk_sys::process::getpid();
        let created = State {
            status: "created".into(),
            monitor_pid: me,
            monitor_start: husk_sys::process::proc_stat(me).unwrap().0,
            ..Default::default()
        };
        store.save_state(&id, &created).unwrap();
        let code = std::thread::scope(|s| {
            let waiter = s.spawn(|| wait(&store, &id));
            // Started, ran and exited: a wait that answered `created` at once gives LOST.
            let ran = State {
                status: "exited".into(),
                exit_code: 3,
                ..created.clone()
            };
            store.save_state(&id, &ran).unwrap();
            waiter.join().unwrap()
        });
        assert_eq!(code.unwrap(), 3);
        let orphaned = State {
            monitor_pid: 0,
            ..created
        };
        store.save_state(&id, &orphaned).unwrap();
        assert_eq!(wait(&store, &id).unwrap(), crate::store::LOST);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// docker heads a templated `ps` column as it heads the table's: `table {{.ID}}` reads
    /// CONTAINER ID, not ID.
    #[test]
    fn ps_template_headers_are_dockers() {
        let dir = std::env::temp_dir().join(format!("husk-ps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store {
            dir: dir.clone(),
            run: dir.clone(),
        };
        let ps_out = |format: &str| {
            let mut out = vec![];
            ps(&store, true, false, format, false, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let t = ps_out("table {{.ID}}\\t{{.RunningFor}}\\t{{.CreatedAt}}\\t{{.State}}");
        let table = ps_out("");
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(t, "CONTAINER ID\tCREATED\tCREATED AT\tSTATE\n");
        assert_eq!(
            table.split_whitespace().collect::<Vec<_>>(),
            [
                "CONTAINER",
                "ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES"
            ]
        );
    }
}
