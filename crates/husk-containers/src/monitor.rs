//! The per-container monitor: husk's own binary in two short-lived shapes, and a small resident
//! loop (`watch`).
//!
//! `husk run -d` and `start` fork and execute `husk-monitor launch STORE ID` (a fresh image, so
//! nothing of the caller's heap comes along). It points the container's stdout and stderr at
//! two pipes (or, with `-t`, takes the pty master), launches the container from the stored
//! spec, writes "ok" (or the error) to its caller and executes the watcher (`watch`), which
//! keeps the pid and so stays the container's parent. When the container exits the watcher
//! executes `husk-monitor finish STORE ID CODE`: it records the code and the time, removes the
//! runtime's state and cgroup, and then restarts the container (a new `launch`, after docker's
//! back-off), removes it (`--rm`), or exits.

use crate::store::{LOST, State, Store};
use crate::time::now_ns;
use crate::watch::{self, ARGV0};
use husk_runtime::Error;
use husk_runtime::launch::{self, CreateOpts, Mode};
use husk_sys::process as sp;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

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
    // Hooks and the runtime may need PATH; nothing else of the caller's environment is kept
    // (but the test builds' fault injection).
    let mut env = vec![format!(
        "PATH={}",
        std::env::var("PATH").unwrap_or_else(|_| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        })
    )];
    env.extend(husk_runtime::fault::env());
    env.extend(husk_runtime::installed_binary_env());
    env
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
    let one = sp::SingleThreaded::check()
        .map_err(Error::io("read", "/proc/self/task"))
        .map_err(fail)?
        .ok_or_else(|| fail(Error::Msg("internal: more than one thread at fork".into())))?;
    let forked = sp::fork(&one)
        .map_err(Error::io("fork", "monitor"))
        .map_err(fail)?;
    if forked.is_none() {
        // The monitor must not hold the caller's terminal or pipes (`$(husk run -d ...)`
        // would wait for it), nor get its signals: a session of its own.
        let _ = sp::setsid();
        // A caller proxying signals (`run --sig-proxy`) has them blocked: not the monitor.
        let _ = sp::set_signal_mask(&sp::SigSet::empty());
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
        watch::VERB => watch::main(argv),
        watch::FINISH => {
            let code = argv.get(4).and_then(|c| c.parse().ok()).unwrap_or(LOST);
            finish(&store, id, code)
        }
        REMOVE => match store.remove_once_read(id) {
            Ok(()) => 0,
            Err(e) => {
                eprint!("{e}");
                1
            }
        },
        _ => 125,
    }
}

/// husk-monitor remove STORE ID: `remove_in_child`'s.
const REMOVE: &str = "remove";

/// `Store::remove_once_read` in a child process (husk again, under the monitor's name): for a
/// caller with threads (a relay's stdin and sig-proxy threads), because an ordinary user's image
/// root is removed as root of a mapped user namespace, which only a single-threaded process can
/// clone into (husk_runtime::mapped). Costs an execve.
pub fn remove_in_child(store: &Store, id: &str) -> Result<(), Error> {
    use std::os::unix::process::CommandExt;
    let args = exe_args(REMOVE, store, id, &[]);
    let out = std::process::Command::new("/proc/self/exe")
        .arg0(&args[0])
        .args(&args[1..])
        .env_clear()
        .envs(env().iter().filter_map(|kv| kv.split_once('=')))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .output()
        .map_err(Error::io("execute", "husk-monitor remove"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Msg(format!(
        "--rm: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    )))
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

/// The small watcher binary installed beside husk, else husk itself (which carries the same
/// loop); and husk's own path, which the watcher executes again when the container exits.
fn watcher() -> (PathBuf, PathBuf) {
    let husk = husk_runtime::installed_binary();
    let small = husk.with_file_name(ARGV0);
    if small.is_file() {
        (small, husk)
    } else {
        (husk.clone(), husk)
    }
}

/// Undoes a container this monitor launched but cannot watch: killed and reaped first (a
/// zombie child of ours would keep the runtime's delete waiting on a cgroup that never empties),
/// then its runtime state, pasta, leases, hosts entries and port rules, as `finish` does.
fn abandon(store: &Store, id: &str, pid: i32) {
    let _ = sp::kill(pid, libc::SIGKILL);
    if let Ok(fd) = sp::pidfd_open(pid) {
        let _ = sp::waitid_pidfd(std::os::fd::AsFd::as_fd(&fd), false);
    }
    let _ = store.clean_runtime(id);
    if let Some(root) = store.meta(id).ok().as_ref().and_then(|m| m.net_root()) {
        husk_net::release_id(root, id);
    }
}

fn launch_and_watch(store: &Store, id: &str) -> i32 {
    // fd 1 is the caller's report pipe (or /dev/null on a restart): a close-on-exec copy, so
    // neither the container nor the watcher holds it and the caller sees EOF.
    let Ok(report) = husk_sys::fs::dup_cloexec(1) else {
        return 125;
    };
    let mut report = std::fs::File::from(report);
    // Taken before the record can say running; the watcher keeps it (fd 6) until it has logged
    // the container's last output.
    let copying = crate::logs::copy_lock(store, id).map(OwnedFd::from);
    match launch_once(store, id) {
        Ok(l) => {
            let _ = report.write_all(b"ok\n");
            drop(report);
            // Each moved above the targets first: a dup2 onto 4 must not close a source that
            // happens to be 4.
            let fds = [
                Some(&l.out),
                l.err.as_ref(),
                l.stdin.as_ref(),
                copying.as_ref(),
            ]
            .map(|f| f.map(|f| husk_sys::fs::dup_at_least(f.as_fd(), 10)));
            let placed = fds.iter().zip(3..).try_for_each(|(f, n)| match f {
                Some(Ok(f)) => husk_sys::fs::dup2(f.as_raw_fd(), n),
                Some(Err(e)) => Err(std::io::Error::from_raw_os_error(
                    e.raw_os_error().unwrap_or(libc::EIO),
                )),
                None => Ok(()),
            });
            let e = match placed.and_then(|()| {
                husk_runtime::fault::point("monitor.fds_placed")
                    .map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))
            }) {
                Err(e) => Error::Msg(format!(
                    "place the monitor's descriptors 3-6: {}",
                    husk_runtime::errno_text(&e)
                )),
                Ok(()) => {
                    let (exe, husk) = watcher();
                    let args = exe_args(
                        watch::VERB,
                        store,
                        id,
                        &[
                            l.pid.to_string(),
                            husk.to_string_lossy().into_owned(),
                            l.mode,
                        ],
                    );
                    // The fault walk's error here stands for the execve failing.
                    let e = match husk_runtime::fault::point("monitor.reported") {
                        Ok(()) => sp::execve(&exe, &args, &env()),
                        Err(_) => std::io::Error::from_raw_os_error(libc::EIO),
                    };
                    Error::Msg(format!(
                        "execute the monitor {}: {}",
                        exe.display(),
                        husk_runtime::errno_text(&e)
                    ))
                }
            };
            // Nobody would reap the container: kill it, then fail as a launch does.
            abandon(store, id, l.pid);
            record_failure(store, id, &e, 125);
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

/// A launched container as the watcher takes it over (watch's descriptors 3, 4, 5).
struct Launch {
    pid: i32,
    /// stdout's pipe, or the pty master
    out: OwnedFd,
    err: Option<OwnedFd>,
    /// The write end of stdin's pipe (`-i` without a terminal).
    stdin: Option<OwnedFd>,
    /// watch's MODE
    mode: String,
}

fn launch_once(store: &Store, id: &str) -> Result<Launch, Error> {
    let meta = store.meta(id)?;
    let spec = store.spec(id)?;
    // Leftovers of an earlier run whose monitor was killed (or a reboot): state dir, cgroup.
    store.clean_runtime(id)?;
    // An ordinary user's image root is mounted for this start only: it goes with the container.
    let root_mount = match &meta.image_root {
        Some(dir) => husk_image::overlay::mount_kept(dir)?.map(std::sync::Arc::new),
        None => None,
    };
    let mut plan = husk_spec::lower(&spec, &meta.root_path)?;
    plan.rootfs_readonly_recursive = meta.rootfs_readonly_recursive;
    plan.loopback_up = meta.loopback_up;
    plan.install_init = meta.install_init;
    let tty = plan.process.terminal;
    let (pipes, stdin) = match tty {
        true => (None, None),
        false => stdio_pipes(meta.stdin)?,
    };
    let mut files: Vec<_> = meta
        .files
        .iter()
        .map(|(n, e)| (n.clone(), e.into()))
        .collect();
    let hostname = spec.hostname.clone().unwrap_or_default();
    // Checked before the lease, which a failure here would leave held.
    let user_net = match (&meta.pasta, &meta.slirp4netns) {
        (Some(publish), _) => husk_net::usermode::UserNet::prepare("pasta", publish)?,
        (None, Some((network, publish))) => husk_net::usermode::UserNet::prepare(network, publish)?,
        (None, None) => None,
    };
    let att = lease_networks(id, &meta, &mut files, &mut plan, &hostname)?;
    let opts = CreateOpts {
        root: store.run.clone(),
        id: id.to_string(),
        bundle: plan.rootfs.clone(),
        // With a terminal: husk's own console pair, whose master the watcher keeps.
        foreground: tty,
        files,
        rootfs_mount: root_mount,
        ..Default::default()
    };
    // Stopped when dropped, if the launch fails; once it runs it is disowned, and `finish`
    // (clean_runtime) stops it from the pid file, whichever process that is.
    let helper_running = std::cell::RefCell::new(None);
    let attach = |ns: &launch::InitNamespaces| {
        att.iter()
            .try_for_each(|a| a.attach(std::os::fd::AsFd::as_fd(&ns.net)))?;
        if let Some(u) = &user_net {
            *helper_running.borrow_mut() = Some(u.attach(ns, &store.helper_dir(id), false)?);
        }
        Ok(())
    };
    let step = (!att.is_empty() || user_net.is_some()).then(|| launch::RuntimeStep {
        needs: husk_net::usermode::step_needs(user_net.as_ref()),
        run: &attach,
    });
    let started = launch::launch_plan_with(&opts, &plan, Mode::Run, step).and_then(|mut c| {
        husk_runtime::fault::point("monitor.launched")?;
        let master = c.start().and_then(|()| c.take_pty_master());
        match master {
            Ok(m) => Ok((c, m)),
            Err(e) => {
                let _ = c.wait_after_kill();
                Err(e)
            }
        }
    });
    // The lease is the monitor's (its pid holds it) until `finish` releases it.
    let (c, master) = match started {
        Ok(x) => x,
        Err(e) => {
            att.into_iter().for_each(husk_net::Attachment::release);
            return Err(e);
        }
    };
    if let Some(r) = helper_running.take() {
        r.disown();
    }
    let (pid, pid_start) = (c.state.pid, c.state.pid_start);
    c.detach();
    if let Err(e) = record_running(store, id, pid, pid_start) {
        abandon(store, id, pid);
        return Err(e);
    }
    let mode = match (tty, meta.stdin) {
        (true, true) => "ti",
        (true, false) => "t",
        (false, true) => "i",
        (false, false) => "-",
    };
    let (out, err) = match (master, pipes) {
        (Some(m), _) => (m, None),
        (None, Some((o, e))) => (o, Some(e)),
        (None, None) => {
            return Err(Error::Msg(
                "process.terminal: init sent no pty master".into(),
            ));
        }
    };
    Ok(Launch {
        pid,
        out,
        err,
        stdin,
        mode: mode.into(),
    })
}

/// The read ends of the container's stdout and stderr pipes, and the write end of its stdin's.
type Pipes = (Option<(OwnedFd, OwnedFd)>, Option<OwnedFd>);

/// Without a terminal the container writes into two pipes (and, with -i, reads a third that
/// the watcher keeps open), placed as this process' stdio for init to inherit; with one, init
/// makes the pty's slave its stdio.
fn stdio_pipes(with_stdin: bool) -> Result<Pipes, Error> {
    let (out_r, out_w) = std::io::pipe().map_err(Error::io("make pipe", "stdout"))?;
    let (err_r, err_w) = std::io::pipe().map_err(Error::io("make pipe", "stderr"))?;
    husk_sys::fs::dup2(out_w.as_raw_fd(), 1).map_err(Error::io("dup2", "stdout pipe"))?;
    husk_sys::fs::dup2(err_w.as_raw_fd(), 2).map_err(Error::io("dup2", "stderr pipe"))?;
    let pipes = Some((OwnedFd::from(out_r), OwnedFd::from(err_r)));
    let mut stdin = None;
    if with_stdin {
        let (in_r, in_w) = std::io::pipe().map_err(Error::io("make pipe", "stdin"))?;
        husk_sys::fs::dup2(in_r.as_raw_fd(), 0).map_err(Error::io("dup2", "stdin pipe"))?;
        stdin = Some(OwnedFd::from(in_w));
    }
    Ok((pipes, stdin))
}

/// The container's leases: the bridge's (its /etc/hosts among `files`, its address in the
/// plan) and one per further network; all released when one fails.
fn lease_networks(
    id: &str,
    meta: &crate::store::Meta,
    files: &mut Vec<(String, husk_runtime::launch::StateEntry)>,
    plan: &mut husk_spec::plan::Plan,
    hostname: &str,
) -> Result<Vec<husk_net::Attachment>, Error> {
    let mut att = vec![];
    if let Some(b) = &meta.bridge {
        att.push(crate::net::lease(id, b, files, plan, hostname)?);
    }
    for (i, b) in meta.networks.iter().enumerate() {
        let more = crate::net::lease_more(id, b, hostname, None, format!("eth{}", i + 1), false);
        match more {
            Ok(a) => att.push(a),
            Err(e) => {
                att.into_iter().for_each(husk_net::Attachment::release);
                return Err(e);
            }
        }
    }
    Ok(att)
}

/// The record of a launched container: running, its pid and start time, this monitor's.
fn record_running(store: &Store, id: &str, pid: i32, pid_start: u64) -> Result<(), Error> {
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
    store.save_state(id, &st)
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
    if husk_runtime::fault::point("finish.cleaned").is_err() {
        return code;
    }
    let meta = store.meta(id).ok();
    if let Some(root) = meta.as_ref().and_then(|m| m.net_root()) {
        husk_net::release_id(root, id);
    }
    if husk_runtime::fault::point("finish.released").is_err() {
        return code;
    }
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
        if husk_runtime::fault::point("finish.recorded").is_err() {
            return code;
        }
        // Read again after the exit is recorded: a `run --rm` detached from meanwhile sets
        // auto_remove and then checks for the exit, so one of the two removes it.
        if store.meta(id).is_ok_and(|m| m.auto_remove) {
            let _ = store.remove_once_read(id);
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
    let _ = husk_sys::sock::poll_fixed::<0>([], delay_ms as i32);
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
