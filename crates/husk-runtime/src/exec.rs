//! `husk exec`: a new process in a running container. The parent (this process) reads the
//! container's state, opens init's namespaces, root and a pidfd, and clones a child into the
//! container's cgroup (CLONE_INTO_CGROUP for cgroup2; the child moves itself into each v1
//! hierarchy first). The child joins the namespaces (user first), enters init's root, and
//! clones the process itself with CLONE_PARENT: a pid namespace only applies to children, and
//! CLONE_PARENT makes that process our child, so we wait for it and forward signals directly.
//! The child hands us its pidfd (taken by clone3, so even an instant exit is never missed) and
//! exits. The process then applies the process spec and execs.
//!
//! | step | direction        | message                          |
//! |------|------------------|----------------------------------|
//! | 1    | parent → child   | `Go`                             |
//! | 2    | child → parent   | `P<pid>` with the process' pidfd (SCM_RIGHTS), or `Error(m)` |
//! | 3    | process → parent | `Error(m)` / `NoExec(m)`, or EOF when execve closed the channel |

use crate::process::{fill_preserved_fds, find_executable, set_cwd, set_user, setup_console};
use crate::shared::{Step, connect_console, fail};
use crate::state::{ContainerDir, State, Status};
use crate::sync::{Channel, Msg};
use crate::{Error, log};
use husk_spec::config::{Capabilities, Process};
use husk_spec::names::NsKind;
use husk_spec::plan::ProcessPlan;
use husk_sys::process::{self as sp, Forked};
use husk_sys::{fs as sfs, security as sec};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct ExecOpts {
    pub root: PathBuf,
    pub id: String,
    /// A runtime-spec process JSON; when given, the flags that shape the process are ignored
    /// (runc does the same).
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    /// `UID[:GID]`, numbers only.
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--apparmor` and `--process-label`: replace the container's profile and label.
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

/// Builds the process spec: `--process FILE`, or the container's process with the flags applied.
pub fn build_process(o: &ExecOpts, state: &State) -> Result<Process, Error> {
    if let Some(path) = &o.process {
        let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
        return serde_json::from_str(&text)
            .map_err(|e| Error::Msg(format!("--process {}: {e}", path.display())));
    }
    let mut p = match &state.process {
        Some(p) => p.clone(),
        // State written by an older husk: the bundle's config.json.
        None => {
            let cfg = state.bundle.join("config.json");
            let text = std::fs::read_to_string(&cfg).map_err(Error::io("read", &cfg))?;
            husk_spec::parse_config(&text)?.process.unwrap_or_default()
        }
    };
    if o.args.is_empty() {
        return Err(Error::Msg(
            "exec: no command given (pass CMD... or --process FILE)".into(),
        ));
    }
    p.args = o.args.clone();
    p.terminal = o.tty;
    for kv in &o.env {
        if !kv.contains('=') {
            return Err(Error::Msg(format!("--env {kv}: want KEY=VALUE")));
        }
    }
    p.env = merge_env(&p.env, &o.env);
    if let Some(cwd) = &o.cwd {
        p.cwd = cwd.clone();
    }
    if let Some(u) = &o.user {
        // Numbers only: a name would have to be looked up in the container's /etc/passwd, and
        // `-u 1` must mean uid 1, never a user named "1" (crun CVE-2026-30892).
        let bad = || Error::Msg(format!("--user {u}: want UID[:GID] (numbers)"));
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        // Parsed wide, so an id past u32 is named as out of range rather than not a number.
        let id = |s: &str| -> Result<u32, Error> {
            let n: u64 = s.parse().map_err(|_| bad())?;
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            Ok(husk_spec::plan::check_id(&format!("--user {u}"), n)?)
        };
        p.user.uid = id(uid)?;
        if let Some(g) = gid {
            p.user.gid = id(g)?;
        }
    }
    for &g in &o.additional_gids {
        husk_spec::plan::check_id("--additional-gids", g)?;
    }
    p.user.additional_gids.extend(&o.additional_gids);
    if o.no_new_privs {
        p.no_new_privileges = true;
    }
    if let Some(a) = &o.apparmor {
        p.apparmor_profile = Some(a.clone());
    }
    if let Some(l) = &o.process_label {
        p.selinux_label = Some(l.clone());
    }
    if !o.caps.is_empty() {
        for c in &o.caps {
            if husk_spec::names::capability(c).is_none() {
                return Err(Error::Msg(format!("--cap {c}: unknown capability")));
            }
        }
        let caps = p.capabilities.get_or_insert_with(Capabilities::default);
        for c in &o.caps {
            for set in [&mut caps.bounding, &mut caps.effective, &mut caps.permitted] {
                if !set.contains(c) {
                    set.push(c.clone());
                }
            }
            // Never inheritable (CVE-2022-29162); ambient needs the inheritable bit, so only
            // when the container's spec already grants inheritable capabilities.
            if !caps.inheritable.is_empty() && !caps.ambient.contains(c) {
                caps.ambient.push(c.clone());
            }
        }
    }
    Ok(p)
}

/// The container's env with `extra` laid over it: a key given again replaces the old value in
/// place, so the process never sees two values for one name.
fn merge_env(base: &[String], extra: &[String]) -> Vec<String> {
    let key = |s: &str| s.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<String> = Vec::new();
    for kv in base.iter().chain(extra) {
        match out.iter_mut().find(|e| key(e) == key(kv)) {
            Some(slot) => *slot = kv.clone(),
            None => out.push(kv.clone()),
        }
    }
    out
}

/// The namespaces of init we are not in already, user first (owning the others, it must be
/// joined before them), as (kind, fd).
fn open_namespaces(pid: i32) -> Result<Vec<(NsKind, OwnedFd)>, Error> {
    let mut out = Vec::new();
    for kind in NsKind::ALL {
        let path = format!("/proc/{pid}/ns/{}", kind.proc_name());
        let mine = format!("/proc/self/ns/{}", kind.proc_name());
        let (Ok(theirs), Ok(ours)) = (std::fs::metadata(&path), std::fs::metadata(&mine)) else {
            // The kernel lacks this namespace type (time before 5.6): nothing to join.
            continue;
        };
        // Joining one's own user namespace is EINVAL; the others would be no-ops.
        if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
            continue;
        }
        let fd = sfs::openat(None, Path::new(&path), libc::O_RDONLY, 0)
            .map_err(Error::io("open namespace", &path))?;
        out.push((kind, fd));
    }
    Ok(out)
}

pub fn exec(o: &ExecOpts) -> Result<i32, Error> {
    // Before anything else is opened, so the preserved slots are not taken by our own fds.
    fill_preserved_fds(o.preserve_fds)?;
    let dir = ContainerDir::open(&o.root, &o.id)?;
    let state = dir.load()?;
    check_status(o, dir.status(&state))?;
    let spec = build_process(o, &state)?;
    let plan = husk_spec::plan::lower_process(&spec)?;
    let oom_score_adj = plan.oom_score_adj;
    crate::process::log_ignored_ambient(&plan);
    crate::lsm::check_host(&plan, None)?;
    let (console, own_tty) = console(o, &plan)?;
    let (namespaces, root) = open_init(&state, &o.id)?;
    // The lock serializes commands, not a process' whole life: `kill` and `delete` must work
    // while an exec runs.
    drop(dir);

    let cgroup = state.cgroup().for_exec(state.pid)?;
    let cg_fd = match &cgroup.unified {
        Some(u) => Some(
            sfs::openat(None, u, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(Error::io("open cgroup", u))?,
        ),
        None => None,
    };
    let cgroup_join = Some(cgroup.open_for_self_join(cg_fd.is_some())?);
    let (one, old_sigmask, parent_end, child_end) = crate::process::prepare_clone()?;
    // The container's filter applies to every process in it: compiled here, loaded by the
    // process right before execve. The notify listener's path is on the host, so it is
    // connected here, before the child enters the container.
    let seccomp = prepare_seccomp(&state)?;
    let child = Child {
        one,
        seccomp: std::cell::RefCell::new(seccomp),
        plan: &plan,
        chan: Channel(child_end),
        namespaces,
        root,
        console,
        preserve_fds: o.preserve_fds,
        old_sigmask,
        cgroup_join,
    };
    // execCPUAffinity.initial: the CPUs until the process is in the container's cgroup. The
    // cgroup2 move is the clone itself, so this process holds them around it and the child
    // inherits them; its v1 joins come first thing in the child.
    let own_cpus = match &plan.cpu_affinity_initial {
        Some(cpus) => {
            let own = sec::get_affinity().map_err(Error::io("sched_getaffinity", "husk"))?;
            sec::set_affinity(Some(cpus)).map_err(Error::io(
                "sched_setaffinity",
                "process.execCPUAffinity.initial",
            ))?;
            log::debug(|| {
                format!("exec: CPUs {cpus:?} until the cgroup is joined (execCPUAffinity.initial)")
            });
            Some(own)
        }
        None => None,
    };
    let forked = sp::clone3(&child.one, 0, cg_fd.as_ref().map(|f| f.as_fd()));
    if let Ok(Forked::Child) = forked {
        drop(parent_end);
        child.run()
    }
    if let Some(own) = &own_cpus {
        let _ = sec::set_affinity(Some(own));
    }
    let (cpid, cpidfd) = match forked.map_err(Error::io("clone3", "exec"))? {
        Forked::Child => unreachable!("the child ran above"),
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    crate::fault::point("exec.clone")?;
    // Written here, before the child joins a user namespace, for the reasons of launch's
    // (EACCES on a non-dumpable process' /proc/self there); the process inherits it.
    let oom = oom_score_adj.map(|adj| {
        let p = format!("/proc/{cpid}/oom_score_adj");
        std::fs::write(&p, adj.to_string()).map_err(Error::io("write", &p))
    });
    let old_sigmask = child.old_sigmask;
    drop(child.chan);
    drop(child.console);
    let chan = Channel(parent_end);
    let reap_child = || {
        let _ = sp::pidfd_send_signal(cpidfd.as_fd(), libc::SIGKILL);
        let _ = sp::waitid_pidfd(cpidfd.as_fd(), false);
    };
    drop(child.cgroup_join);
    if let Some(Err(e)) = oom {
        reap_child();
        return Err(e);
    }
    if let Err(e) = chan.send(&Msg::Go(0)).map_err(Error::io("sync", "go")) {
        reap_child();
        return Err(e);
    }
    let setup_result = receive_process(&chan);
    // The child exits right after handing over the pidfd (or failing).
    let _ = sp::waitid_pidfd(cpidfd.as_fd(), false);
    let (pid, pidfd) = setup_result?;
    crate::fault::point("exec.joined")?;
    await_exec(&chan, pidfd.as_fd())?;
    crate::fault::point("exec.executed")?;
    if let Some(pf) = &o.pid_file {
        crate::shared::write_pid_file(pf, pid)?;
    }
    if o.detach {
        return Ok(0);
    }
    let exit = match &own_tty {
        Some(sock) => crate::tty::wait_with_terminal(pidfd.as_fd(), sock.as_fd(), &mut |_| {}),
        None => crate::process::wait_forwarding(pidfd.as_fd(), "exec process"),
    };
    let _ = sp::set_signal_mask(&old_sigmask);
    log::debug(|| format!("exec process {pid} ended: {exit:?}"));
    Ok(exit?.status())
}

fn check_status(o: &ExecOpts, status: Status) -> Result<(), Error> {
    match status {
        s @ Status::Stopped => Err(Error::not_running("exec in", &o.id, s)),
        Status::Creating => Err(Error::Msg(
            "cannot exec in a container that is still being created".into(),
        )),
        Status::Paused if !o.ignore_paused => Err(Error::Msg(
            "cannot exec in a paused container (resume it, or pass --ignore-paused)".into(),
        )),
        _ => Ok(()),
    }
}

/// The console socket, connected on the host; or, foreground with a terminal and no socket, a
/// pair whose far end the process sends the master over, and we copy between it and our stdio
/// (as `run` does, and runc). Returns (the process' end, ours).
fn console(o: &ExecOpts, plan: &ProcessPlan) -> Result<(Option<OwnedFd>, Option<OwnedFd>), Error> {
    match (&o.console_socket, plan.terminal) {
        (Some(s), true) => Ok((Some(connect_console(s)?), None)),
        (None, true) if !o.detach => {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()
                .map_err(Error::io("socketpair", "console"))?;
            Ok((Some(OwnedFd::from(theirs)), Some(OwnedFd::from(ours))))
        }
        (Some(_), false) => Err(Error::Msg(
            "--console-socket given but the process has no terminal (pass --tty)".into(),
        )),
        (None, true) => Err(Error::Msg(
            "--tty with --detach needs --console-socket (nobody would hold the terminal)".into(),
        )),
        (None, false) => Ok((None, None)),
    }
}

/// Init's namespaces and root. Everything about init is read through paths naming its pid; the
/// pidfd and the start time checked after opening them prove they were init's and not a
/// recycled pid's.
fn open_init(state: &State, id: &str) -> Result<(Vec<(NsKind, OwnedFd)>, OwnedFd), Error> {
    let stopped = || Error::not_running("exec in", id, Status::Stopped);
    let opened = (|| {
        let init = sp::pidfd_open(state.pid).map_err(Error::io("pidfd_open", "init"))?;
        let namespaces = open_namespaces(state.pid)?;
        let root_path = format!("/proc/{}/root", state.pid);
        let root = sfs::openat(
            None,
            Path::new(&root_path),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )
        .map_err(Error::io("open", &root_path))?;
        Ok((init, namespaces, root))
    })();
    let (_init, namespaces, root) = match opened {
        // A dying init (its pid namespace being torn down) has no root or namespaces left.
        Err(Error::Io { source, .. })
            if matches!(source.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) =>
        {
            return Err(stopped());
        }
        r => r?,
    };
    if !state.init_alive() {
        return Err(stopped());
    }
    Ok((namespaces, root))
}

/// The container's filter applies to every process in it: compiled here, loaded by the
/// process right before execve. The notify listener's path is on the host, so it is
/// connected here, before the child enters the container.
fn prepare_seccomp(state: &State) -> Result<Option<crate::seccomp::Prepared>, Error> {
    let Some(sc) = husk_spec::seccomp::lower(state.seccomp.as_ref())? else {
        return Ok(None);
    };
    let listener = crate::seccomp::connect_listener(Some(&sc)).map_err(Error::Msg)?;
    let st = serde_json::to_string(&state.oci_state(Status::Running)).unwrap_or_default();
    Ok(Some(
        crate::seccomp::prepare(&sc, listener, &st).map_err(Error::Msg)?,
    ))
}

/// The joining child's report: the process' pid and pidfd ("P<pid>" with the fd), or its error.
fn receive_process(chan: &Channel) -> Result<(i32, OwnedFd), Error> {
    let mut buf = [0u8; 8192];
    let got = husk_sys::sock::recv_fd(chan.0.as_fd(), &mut buf);
    match got {
        Ok((n, Some(fd))) if buf[..n].starts_with(b"P") => {
            let pid: i32 = std::str::from_utf8(&buf[1..n])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            Ok((pid, fd))
        }
        Ok((0, _)) => Err(Error::Msg("exec: the joining child died".into())),
        Ok((n, _)) => Err(match Msg::decode(&buf[..n]).ok() {
            Some(Msg::Error(m)) => Error::Msg(m),
            other => Error::Msg(format!("internal: unexpected {other:?} from exec child")),
        }),
        Err(e) => Err(Error::io("sync", "recv")(e)),
    }
}

/// Waits for the process to execute (EOF on the channel) or fail; a failed one is killed.
fn await_exec(chan: &Channel, pidfd: BorrowedFd<'_>) -> Result<(), Error> {
    let kill_process = || {
        let _ = sp::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
        let _ = sp::waitid_pidfd(pidfd.as_fd(), false);
    };
    match chan.recv() {
        // EOF: the process' copy of the channel was closed by execve (or it died, which the
        // wait below reports as its exit status).
        Ok(None) => {}
        Ok(Some(Msg::Error(m))) => {
            kill_process();
            return Err(Error::Msg(m));
        }
        Ok(Some(Msg::NoExec(m))) => {
            kill_process();
            let not_found = crate::process::is_not_found(&m);
            return Err(Error::Exec { msg: m, not_found });
        }
        Ok(Some(other)) => {
            kill_process();
            return Err(Error::Msg(format!(
                "internal: unexpected {other:?} from exec process"
            )));
        }
        Err(e) => {
            kill_process();
            return Err(Error::io("sync", "recv")(e));
        }
    }
    Ok(())
}

/// What the child of the clone needs; it runs `Child::run` and never returns.
struct Child<'a> {
    /// Still true in the child: the clone copies only the calling thread.
    one: sp::SingleThreaded,
    seccomp: std::cell::RefCell<Option<crate::seccomp::Prepared>>,
    plan: &'a ProcessPlan,
    chan: Channel,
    namespaces: Vec<(NsKind, OwnedFd)>,
    root: OwnedFd,
    console: Option<OwnedFd>,
    preserve_fds: u32,
    old_sigmask: sp::SigSet,
    /// v1 hierarchies (v2 is joined by CLONE_INTO_CGROUP), taken first, so the process the
    /// child makes starts inside every one of them (see `Cgroup::open_for_self_join`).
    cgroup_join: Option<husk_cgroup::SelfJoin>,
}

impl Child<'_> {
    fn run(mut self) -> ! {
        sp::set_name("husk:[EXEC]");
        if let Some(join) = self.cgroup_join.take()
            && let Err(e) = join.join()
        {
            let _ = self.chan.send(&Msg::Error(e.to_string()));
            sp::exit_now(1);
        }
        if !matches!(self.chan.recv(), Ok(Some(Msg::Go(_)))) {
            sp::exit_now(1);
        }
        let pid = match self.join() {
            Ok(p) => p,
            Err(m) => {
                let _ = self.chan.send(&Msg::Error(m));
                sp::exit_now(1);
            }
        };
        let Some((pid, pidfd)) = pid else {
            // The process: set up and exec, reporting failures to the parent.
            let exe = match self.setup() {
                Ok(exe) => exe,
                Err(Failure::Setup(m)) => {
                    let _ = self.chan.send(&Msg::Error(m));
                    sp::exit_now(1);
                }
                Err(Failure::NoExec(m)) => {
                    let _ = self.chan.send(&Msg::NoExec(m));
                    sp::exit_now(1);
                }
            };
            sp::reset_signal_dispositions();
            let _ = sp::set_signal_mask(&self.old_sigmask);
            let err = match sp::PreparedExec::path(&exe, &self.plan.args, &self.plan.env) {
                // The filter goes in last: after it only the exec (see `seccomp`).
                Ok(prepared) => match self.seccomp.take().map_or(Ok(()), |s| s.install()) {
                    Ok(()) => prepared.exec(),
                    Err(m) => {
                        // Not loaded: reporting needs nothing a profile must allow.
                        let _ = self.chan.send(&Msg::Error(m));
                        sp::exit_now(1);
                    }
                },
                Err(e) => e,
            };
            let _ = self.chan.send(&Msg::Error(format!(
                "exec {}: {}",
                exe.display(),
                crate::errno_text(&err)
            )));
            sp::exit_now(if err.raw_os_error() == Some(libc::ENOENT) {
                127
            } else {
                126
            });
        };
        let msg = format!("P{pid}");
        if let Err(e) = husk_sys::sock::send_fd(self.chan.0.as_fd(), msg.as_bytes(), pidfd.as_fd())
        {
            let _ = self.chan.send(&Msg::Error(fail("sync", "send pidfd", e)));
            let _ = sp::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            sp::exit_now(1);
        }
        sp::exit_now(0);
    }

    /// Joins init's namespaces and root, then clones the process. `None` in the process itself.
    fn join(&self) -> Step<Option<(i32, OwnedFd)>> {
        // Nothing in the container may ptrace us while we hold host fds (CVE-2016-9962); the
        // process stays non-dumpable until execve.
        sp::set_dumpable(false).map_err(|e| fail("prctl", "PR_SET_DUMPABLE", e))?;
        for (kind, fd) in &self.namespaces {
            sp::setns(fd.as_fd(), kind.clone_flag() as i32)
                .map_err(|e| fail("join", format!("{} namespace", kind.oci_name()), e))?;
        }
        // Init's root, whether it got there by pivot_root or by MS_MOVE + chroot.
        sfs::fchdir(self.root.as_fd()).map_err(|e| fail("chdir", "container root", e))?;
        husk_sys::mount::chroot(".").map_err(|e| fail("chroot", "container root", e))?;
        // CLONE_PARENT: the process is our parent's child, so it waits for it directly.
        match sp::clone3(&self.one, libc::CLONE_PARENT as u64, None)
            .map_err(|e| fail("clone3", "exec process", e))?
        {
            Forked::Child => Ok(None),
            Forked::Parent { pid, pidfd } => Ok(Some((pid, pidfd))),
        }
    }

    fn setup(&self) -> Result<PathBuf, Failure> {
        let p = self.plan;
        if let Some(sock) = &self.console {
            setup_console(sock.as_fd(), p.console_size).map_err(Failure::Setup)?;
        }
        for r in &p.rlimits {
            sec::setrlimit(r.resource, r.soft, r.hard)
                .map_err(|e| fail("setrlimit", husk_spec::names::rlimit_name(r.resource), e))
                .map_err(Failure::Setup)?;
        }
        crate::process::set_scheduling(p).map_err(Failure::Setup)?;
        // execCPUAffinity.final, now that the process is in the container's cgroup; without it
        // every CPU the cgroup's cpuset allows (runtime-spec), never the caller's affinity.
        sec::set_affinity(p.cpu_affinity_final.as_deref()).map_err(|e| {
            Failure::Setup(fail(
                "sched_setaffinity",
                "process.execCPUAffinity.final",
                e,
            ))
        })?;
        let root = sfs::openat(None, Path::new("/"), libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|e| Failure::Setup(fail("open", "/", e)))?;
        set_cwd(root.as_fd(), &p.cwd).map_err(Failure::Setup)?;
        // The process' own execve spends them (see `lsm`); long before the filter, as in init.
        crate::lsm::apply(&crate::lsm::exec_writes(p)).map_err(Failure::Setup)?;
        // As in init: the filter goes in right before execve; without no_new_privs
        // `set_user` keeps CAP_SYS_ADMIN for it until then (see `seccomp`).
        set_user(p, self.seccomp.borrow().is_some()).map_err(Failure::Setup)?;
        sp::umask(p.umask.unwrap_or(0o022));
        if p.no_new_privileges {
            sec::set_no_new_privs()
                .map_err(|e| Failure::Setup(fail("prctl", "PR_SET_NO_NEW_PRIVS", e)))?;
        }
        for fd in 3..3 + self.preserve_fds {
            sfs::clear_cloexec(fd as i32)
                .map_err(|e| Failure::Setup(fail("keep preserved fd", fd.to_string(), e)))?;
        }
        sfs::close_range_cloexec(3 + self.preserve_fds)
            .map_err(|e| Failure::Setup(fail("close_range", "fds", e)))?;
        find_executable(p).map_err(Failure::NoExec)
    }
}

enum Failure {
    Setup(String),
    NoExec(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(process: Process) -> State {
        State {
            id: "c".into(),
            pid: 1,
            pid_start: 0,
            bundle: "/nonexistent".into(),
            rootfs: "/r".into(),
            created: String::new(),
            annotations: Default::default(),
            cgroup_dirs: vec![],
            cgroup_unified: None,
            systemd_unit: None,
            own_pid_ns: true,
            hooks: Default::default(),
            owner: String::new(),
            process: Some(process),
            seccomp: None,
            devices: vec![],
        }
    }

    fn base() -> Process {
        Process {
            args: vec!["init".into()],
            env: vec!["PATH=/bin".into(), "A=1".into()],
            cwd: "/".into(),
            capabilities: Some(Capabilities {
                bounding: vec!["CAP_CHOWN".into()],
                effective: vec!["CAP_CHOWN".into()],
                permitted: vec!["CAP_CHOWN".into()],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn flags_shape_the_process() {
        let o = ExecOpts {
            args: vec!["sh".into()],
            env: vec!["A=2".into(), "B=3".into()],
            user: Some("1".into()),
            cwd: Some("/tmp".into()),
            caps: vec!["CAP_KILL".into()],
            additional_gids: vec![7],
            ..Default::default()
        };
        let p = build_process(&o, &state(base())).unwrap();
        assert_eq!(p.args, vec!["sh"]);
        assert_eq!(p.env, vec!["PATH=/bin", "A=2", "B=3"]);
        // `-u 1` is uid 1 and leaves the gid alone.
        assert_eq!((p.user.uid, p.user.gid), (1, 0));
        assert_eq!(p.user.additional_gids, vec![7]);
        assert_eq!(p.cwd, "/tmp");
        let c = p.capabilities.unwrap();
        assert!(c.effective.contains(&"CAP_KILL".to_string()));
        assert!(c.bounding.contains(&"CAP_KILL".to_string()));
        assert!(c.inheritable.is_empty() && c.ambient.is_empty());
    }

    #[test]
    fn lsm_flags_replace_the_containers_labels_and_default_to_them() {
        let mut container = base();
        container.apparmor_profile = Some("container-profile".into());
        container.selinux_label = Some("u:r:container_t:s0".into());
        let o = ExecOpts {
            args: vec!["sh".into()],
            ..Default::default()
        };
        let p = build_process(&o, &state(container.clone())).unwrap();
        assert_eq!(p.apparmor_profile.as_deref(), Some("container-profile"));
        assert_eq!(p.selinux_label.as_deref(), Some("u:r:container_t:s0"));
        let o = ExecOpts {
            args: vec!["sh".into()],
            apparmor: Some("other".into()),
            process_label: Some("u:r:other_t:s0".into()),
            ..Default::default()
        };
        let p = build_process(&o, &state(container)).unwrap();
        assert_eq!(p.apparmor_profile.as_deref(), Some("other"));
        assert_eq!(p.selinux_label.as_deref(), Some("u:r:other_t:s0"));
    }

    #[test]
    fn user_must_be_numeric() {
        for u in ["root", "1:x", ":1", ""] {
            let o = ExecOpts {
                args: vec!["sh".into()],
                user: Some(u.into()),
                ..Default::default()
            };
            assert!(build_process(&o, &state(base())).is_err(), "{u}");
        }
        let o = ExecOpts {
            args: vec!["sh".into()],
            user: Some("5:6".into()),
            ..Default::default()
        };
        let p = build_process(&o, &state(base())).unwrap();
        assert_eq!((p.user.uid, p.user.gid), (5, 6));
    }

    #[test]
    fn ids_past_runcs_range_are_refused() {
        for u in ["4294967295", "2147483648", "0:4294967295", "99999999999"] {
            let o = ExecOpts {
                args: vec!["sh".into()],
                user: Some(u.into()),
                ..Default::default()
            };
            let e = build_process(&o, &state(base())).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--user {u}: ")), "{e}");
            assert!(e.contains("outside 0..=2147483647"), "{e}");
        }
        let o = ExecOpts {
            args: vec!["sh".into()],
            user: Some("2147483647:2147483647".into()),
            additional_gids: vec![4294967295],
            ..Default::default()
        };
        let e = build_process(&o, &state(base())).unwrap_err().to_string();
        assert!(
            e.starts_with("--additional-gids: 4294967295 is outside"),
            "{e}"
        );
    }

    #[test]
    fn no_command_is_an_error() {
        assert!(build_process(&ExecOpts::default(), &state(base())).is_err());
    }
}
