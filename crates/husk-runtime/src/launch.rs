//! The parent side of `create` and `run`: config to plan, state dir, namespaces the parent joins,
//! one clone3, id maps and cgroups, then the handshake with init (see `sync` for the protocol).
//! Every failure after the state dir exists is undone by `Undo`, so nothing is left behind.

use crate::init::{self, InitArgs};
use crate::rootfs::CgroupView;
use crate::shared::write_pid_file;
use crate::state::{ContainerDir, State, Status};
pub use crate::sync::StepNamespaces;
use crate::sync::{Channel, Msg};
use crate::{Error, hooks, log};
use husk_cgroup::{Cgroup, Hierarchies};
use husk_spec::names::NsKind;
use husk_spec::plan::Plan;
use husk_sys::process::{self as sp, Forked};
use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// A foreground `run` that waits for the container: with `process.terminal` and no console
    /// socket, husk makes the pty itself and copies between it and its own stdio (as runc).
    pub foreground: bool,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Entries made in the state dir before init runs, in order (parents first), for the
    /// container to use: the front end's /etc/hosts, hostname and resolv.conf, which mounts bind,
    /// and the embedded default's scaffold root. Removed with the state dir.
    pub files: Vec<(String, StateEntry)>,
    /// `--systemd-cgroup`: the cgroup is a systemd scope (husk_cgroup::systemd).
    pub systemd_cgroup: bool,
    /// The root as a detached mount (an ordinary user's image root: overlayfs made in another
    /// user namespace, see husk_image::overlay), which init attaches at `plan.rootfs` in its own
    /// mount namespace instead of binding that directory.
    pub rootfs_mount: Option<std::sync::Arc<OwnedFd>>,
}

/// One entry `CreateOpts::files` makes in the state dir.
#[derive(Debug, Clone)]
pub enum StateEntry {
    File(Vec<u8>),
    Dir,
    Symlink(PathBuf),
}

/// Undoes a half-made container when dropped, unless disarmed.
struct Undo {
    dir: Option<ContainerDir>,
    cgroup: Option<Cgroup>,
    child: Option<OwnedFd>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pidfd) = self.child.take() {
            let _ = sp::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            let _ = sp::waitid_pidfd(pidfd.as_fd(), false);
        }
        if let Some(cg) = self.cgroup.take() {
            for pid in cg.pids() {
                let _ = sp::kill(pid, libc::SIGKILL);
            }
            let _ = cg.remove();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

/// Reads and lowers `bundle/config.json`: every config error is found here, before anything
/// is made.
pub fn load_plan(bundle: &Path) -> Result<Plan, Error> {
    let cfg = bundle.join("config.json");
    let text = fs::read_to_string(&cfg).map_err(Error::io("read", &cfg))?;
    let spec = husk_spec::parse_config(&text)?;
    Ok(husk_spec::lower(&spec, bundle)?)
}

/// Refuses what this host cannot do before anything is touched.
fn check_host(plan: &Plan, opts: &CreateOpts) -> Result<(), Error> {
    // A root inside the state dir-to-be is made from `opts.files` once that dir exists.
    let made_here = plan.rootfs.starts_with(opts.root.join(&opts.id));
    match fs::metadata(&plan.rootfs) {
        _ if made_here => {}
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::Msg(format!(
                "rootfs {}: not a directory",
                plan.rootfs.display()
            )));
        }
        Err(e) => return Err(Error::io("rootfs", &plan.rootfs)(e)),
    }
    crate::lsm::check_host(&plan.process, plan.mount_label.as_deref())?;
    if plan.process.terminal && opts.console_socket.is_none() && !opts.foreground {
        return Err(Error::Msg("process.terminal is true but no --console-socket was given (set \"terminal\": false to use the caller's stdio)".into()));
    }
    Ok(())
}

/// A created container, as the parent holds it.
pub struct Launched {
    pub dir: ContainerDir,
    pub state: State,
    pub pidfd: OwnedFd,
    chan: Channel,
    undo: Undo,
    old_sigmask: sp::SigSet,
    /// Our end of the console pair when husk copies the terminal itself.
    tty: Option<OwnedFd>,
}

pub enum Mode {
    /// `create`: init waits on exec.fifo for `start`.
    Create,
    /// `run`: init executes the process as soon as it is ready.
    Run,
}

pub fn launch(opts: &CreateOpts, mode: Mode) -> Result<Launched, Error> {
    let bundle =
        std::path::absolute(&opts.bundle).map_err(Error::io("resolve bundle", &opts.bundle))?;
    let plan = load_plan(&bundle)?;
    crate::process::log_ignored_ambient(&plan.process);
    if plan.process.cpu_affinity_initial.is_some() || plan.process.cpu_affinity_final.is_some() {
        log::debug(|| {
            "process.execCPUAffinity: kept for exec; runtime-spec 1.3 does not apply it to init"
                .into()
        });
    }
    crate::explain::step(|| {
        format!(
            "read and lowered {}/config.json: {} mounts, {} namespaces",
            bundle.display(),
            plan.mounts.len(),
            plan.namespaces.len()
        )
    });
    launch_plan(opts, &plan, mode)
}

/// Launches a plan, from config.json (`launch`) or made in memory by the front end. Four steps,
/// each undone by `Undo` if a later one fails: `prepare` checks and reads the host and makes
/// nothing; `claim` makes the state dir and what must exist before the clone; `spawn` joins
/// the namespaces given by path and clones init; `handshake` maps ids, makes the cgroup and
/// walks init through the protocol in `sync` until it is ready.
pub fn launch_plan(opts: &CreateOpts, plan: &Plan, mode: Mode) -> Result<Launched, Error> {
    launch_plan_with(opts, plan, mode, None)
}

/// Work of the caller, given init's pid and namespaces, done in-process once they exist and
/// before anything of the container runs (the front end's `--network bridge` attach, pasta: a
/// createRuntime hook without the hook's process).
#[derive(Clone, Copy)]
pub struct RuntimeStep<'a> {
    /// The namespaces init opens and sends for it, nothing more: an fd held is a reference
    /// that keeps a namespace alive, and a bridge attach has no use for the user namespace.
    pub needs: StepNamespaces,
    pub run: &'a dyn Fn(&InitNamespaces) -> Result<(), Error>,
}

impl StepNamespaces {
    /// The fds of `Msg::Namespaces` as `InitNamespaces`: exactly as many as `kinds`.
    fn take(self, pid: i32, fds: Vec<OwnedFd>) -> Result<InitNamespaces, Error> {
        let want = self.kinds().len();
        if fds.len() != want {
            return Err(Error::Msg(format!(
                "internal: init sent {} namespace fds, expected {want} ({})",
                fds.len(),
                self.kinds().join(", ")
            )));
        }
        let mut fds = fds.into_iter();
        let user = (self == StepNamespaces::UserAndNet)
            .then(|| fds.next())
            .flatten();
        let net = fds.next().expect("count checked above");
        Ok(InitNamespaces { pid, user, net })
    }
}

/// Init's pid, and the namespaces its step asked for as init itself opened them (see
/// `init::send_namespaces`).
pub struct InitNamespaces {
    pub pid: i32,
    /// `Some` only for `StepNamespaces::UserAndNet`.
    pub user: Option<OwnedFd>,
    pub net: OwnedFd,
}

/// `launch_plan` with a `RuntimeStep`: it runs while init mounts (after the cgroup is sent),
/// and init waits for it as for createRuntime hooks, before pivot_root.
pub fn launch_plan_with(
    opts: &CreateOpts,
    plan: &Plan,
    mode: Mode,
    step: Option<RuntimeStep<'_>>,
) -> Result<Launched, Error> {
    let pre = prepare(opts, plan)?;
    let claimed = claim(opts, plan, &pre, mode)?;
    let spawned = spawn(opts, plan, pre, claimed, step.map(|s| s.needs))?;
    handshake(opts, plan, spawned, step)
}

/// What `prepare` found out, before anything exists.
struct Prepared {
    /// The sealed copy of husk that init executes through (see `trampoline::choose`).
    trampoline: Option<OwnedFd>,
    /// The connected console socket, or our socket pair's far end for a foreground terminal.
    console: Option<OwnedFd>,
    /// Our end of that pair, when husk copies the terminal itself.
    own_tty: Option<OwnedFd>,
    hier: Hierarchies,
    cgroup: Cgroup,
    cg_path: String,
    /// `--systemd-cgroup`: the scope, and systemd, connected before anything exists (no
    /// systemd to ask fails with nothing to undo).
    /// With the unit properties the config's annotations ask for.
    systemd: Option<(
        husk_cgroup::systemd::Unit,
        husk_cgroup::systemd::Systemd,
        Vec<husk_cgroup::systemd::props::Prop>,
    )>,
    /// The container's device nodes, which its device rules always allow.
    devices: Vec<(char, i64, i64)>,
}

/// Everything that can be refused before the first side effect: the host's abilities, the
/// console socket, the cgroup's place and whether this host's layout takes `linux.resources`
/// (what is left to fail at `apply` is what only the kernel can say).
fn prepare(opts: &CreateOpts, plan: &Plan) -> Result<Prepared, Error> {
    // First, as it may re-execute husk: nothing exists yet that a re-execution would leak.
    let trampoline = crate::trampoline::choose(plan)?;
    check_host(plan, opts)?;
    crate::process::fill_preserved_fds(opts.preserve_fds)?;
    // Connected here: the socket's path is on the host, and init only sees the container's root.
    // Foreground with a terminal: init sends the master over our own socket pair.
    let mut own_tty = None;
    let console = match &opts.console_socket {
        Some(sock) if plan.process.terminal => Some(crate::shared::connect_console(sock)?),
        None if plan.process.terminal => {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()
                .map_err(Error::io("socketpair", "console"))?;
            own_tty = Some(OwnedFd::from(ours));
            Some(OwnedFd::from(theirs))
        }
        _ => None,
    };
    let hier = Hierarchies::detect()?;
    let own = husk_cgroup::parse_proc_cgroup(
        &fs::read_to_string("/proc/self/cgroup").map_err(Error::io("read", "/proc/self/cgroup"))?,
    );
    let cg_path = plan
        .cgroups_path
        .clone()
        .unwrap_or_else(|| format!("/husk/{}", opts.id));
    // What the config says is checked before systemd is asked anything.
    let systemd = match opts.systemd_cgroup {
        true => {
            let unit = husk_cgroup::systemd::Unit::parse(
                plan.cgroups_path.as_deref(),
                &opts.id,
                crate::caller::Caller::current().rootless(),
            )?;
            let annotated = husk_cgroup::systemd::annotations::properties(&plan.record.annotations)
                .map_err(husk_cgroup::CgroupError::Unsupported)?;
            Some((unit, husk_cgroup::systemd::Systemd::connect()?, annotated))
        }
        false => None,
    };
    let mut cgroup = match &systemd {
        Some((unit, _, _)) => Cgroup {
            systemd_unit: Some(unit.name.clone()),
            ..Cgroup::locate(&hier, &own, &unit.cgroup_path())?
        },
        None => Cgroup::locate(&hier, &own, &cg_path)?,
    };
    if systemd.is_none() && plan.cgroups_path.is_none() && crate::caller::rootless_cgroups() {
        cgroup.drop_unwritable()?;
    }
    let devices: Vec<(char, i64, i64)> = plan
        .devices
        .iter()
        .filter_map(|d| match d.kind {
            husk_spec::plan::DevKind::Char => Some(('c', d.major as i64, d.minor as i64)),
            husk_spec::plan::DevKind::Block => Some(('b', d.major as i64, d.minor as i64)),
            husk_spec::plan::DevKind::Fifo => None,
        })
        .collect();
    if let Some(res) = &plan.resources {
        husk_cgroup::check_resources(&hier, res, &devices)?;
    }
    Ok(Prepared {
        trampoline,
        console,
        own_tty,
        hier,
        cgroup,
        cg_path,
        systemd,
        devices,
    })
}

/// What `claim` made: the state dir (held by `undo`) and what init needs of it.
struct Claimed {
    undo: Undo,
    state: State,
    /// exec.fifo's O_PATH fd (`create` only).
    fifo: Option<OwnedFd>,
    /// Where a root of `/` is attached (see `Rootfs::prepare`).
    staging: Option<PathBuf>,
    /// The cgroup2 directory, made before the clone so init starts inside it.
    cg_fd: Option<OwnedFd>,
}

/// Takes the id (the state dir, locked) and makes what must exist before the clone.
fn claim(opts: &CreateOpts, plan: &Plan, pre: &Prepared, mode: Mode) -> Result<Claimed, Error> {
    let bundle =
        std::path::absolute(&opts.bundle).map_err(Error::io("resolve bundle", &opts.bundle))?;
    let dir = ContainerDir::create(&opts.root, &opts.id)?;
    crate::explain::step(|| format!("created and locked state dir {}", dir.path.display()));
    let mut undo = Undo {
        dir: Some(dir),
        cgroup: None,
        child: None,
    };
    let cgroup = &pre.cgroup;
    crate::fault::point("create.state-dir")?;
    // After the id is taken (a second `create` of an id says so, as runc does), before any
    // cgroup is touched: a cgroup already holding processes would become this container's,
    // and `delete` would kill them. Refused, only the state dir is undone.
    cgroup.check_unused()?;
    let dir = undo.dir.as_ref().expect("set above");
    for (name, entry) in &opts.files {
        let path = dir.path.join(name);
        match entry {
            StateEntry::File(text) => fs::write(&path, text).map_err(Error::io("write", &path))?,
            StateEntry::Dir => fs::create_dir(&path).map_err(Error::io("mkdir", &path))?,
            StateEntry::Symlink(to) => {
                std::os::unix::fs::symlink(to, &path).map_err(Error::io("symlink", &path))?
            }
        }
    }
    crate::fault::point("create.files")?;
    let state = State {
        id: opts.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle,
        rootfs: plan.rootfs.clone(),
        created: crate::state::rfc3339_now(),
        annotations: plan.record.annotations.clone(),
        cgroup_dirs: cgroup.dirs.clone(),
        cgroup_unified: cgroup.unified.clone(),
        systemd_unit: cgroup.systemd_unit.clone(),
        own_pid_ns: plan.creates(NsKind::Pid),
        hooks: plan.hooks.clone(),
        owner: String::new(),
        process: plan.record.process.clone(),
        seccomp: plan.record.seccomp.clone(),
        devices: pre.devices.clone(),
    };

    let fifo = match mode {
        Mode::Create => Some(make_exec_fifo(&dir.fifo(), plan)?),
        Mode::Run => None,
    };
    crate::fault::point("create.fifo")?;
    let staging = if plan.rootfs == Path::new("/") && plan.has(NsKind::Mount) {
        let d = dir.path.join("root");
        fs::create_dir(&d).map_err(Error::io("mkdir", &d))?;
        Some(d)
    } else {
        None
    };
    // The cgroup2 directory must exist before the clone into it. The v1 ones are made after the
    // clone, while init sets up its mounts (it joins them by itself, before the cgroup
    // namespace and mounts: see `Msg::Cgroups`). Either way the state names the cgroup before
    // any of it exists, so `delete --force` finds a container whose creator was killed at any
    // point after that.
    // systemd makes a scope's cgroup only once it has a pid to put there: init is cloned
    // outside and moved in by systemd (it waits at `Msg::Cgroups` before anything else).
    let clone_into = cgroup.unified.is_some() && pre.systemd.is_none();
    if clone_into {
        dir.save(&state)?;
        undo.cgroup = Some(cgroup.clone());
        cgroup.create_part(true)?;
        crate::fault::point("create.cgroup2")?;
    }
    let cg_fd = match cgroup.unified.as_ref().filter(|_| clone_into) {
        Some(u) => Some(
            husk_sys::fs::openat(None, u, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(Error::io("open cgroup", u))?,
        ),
        None => None,
    };
    Ok(Claimed {
        undo,
        state,
        fifo,
        staging,
        cg_fd,
    })
}

/// A cloned init, not yet told to go.
struct Spawned {
    pre: Prepared,
    undo: Undo,
    state: State,
    pid: i32,
    pidfd: OwnedFd,
    chan: Channel,
    old_sigmask: sp::SigSet,
    clone_flags: u64,
    into_cgroup: bool,
}

/// Joins the namespaces given by path (all but user and mount, which init joins), makes a time
/// namespace with its offsets, and clones init. The child never returns from here.
fn spawn(
    opts: &CreateOpts,
    plan: &Plan,
    mut pre: Prepared,
    c: Claimed,
    step_needs: Option<StepNamespaces>,
) -> Result<Spawned, Error> {
    // Init's: the parent's copies are closed once it is cloned.
    let (trampoline, console) = (pre.trampoline.take(), pre.console.take());
    let Claimed {
        mut undo,
        state,
        fifo,
        staging,
        cg_fd,
    } = c;
    let (join_user, join_mount) = join_namespaces(plan)?;
    // The cgroup namespace is made by init itself after `Go`: its root is the cgroup of the
    // process at the time it is created, which must be the container's, joined after the clone.
    let mut clone_flags = plan.clone_flags() & !NsKind::Cgroup.clone_flag();
    if plan.creates(NsKind::Time) {
        unshare_time(plan)?;
        clone_flags &= !NsKind::Time.clone_flag();
    }

    let cgroup_join_files = pre.cgroup.self_join_files(cg_fd.is_some());
    let idmaps = crate::idmap::user_namespaces(plan)?;
    let bind_sources = open_bind_sources(plan)?;
    let (one, old_sigmask, parent_end, child_end) = crate::process::prepare_clone()?;
    let view = CgroupView {
        hierarchies: pre.hier.list.clone(),
        dirs: pre.cgroup.dirs.clone(),
        own_cgroup_ns: plan.creates(NsKind::Cgroup),
    };
    let runtime_hooks = !plan.hooks.prestart.is_empty()
        || !plan.hooks.create_runtime.is_empty()
        || step_needs.is_some();

    log::debug(|| {
        format!(
            "clone3 flags={clone_flags:#x} into_cgroup={}",
            cg_fd.is_some()
        )
    });
    let (pid, pidfd) = match sp::clone3(&one, clone_flags, cg_fd.as_ref().map(|f| f.as_fd()))
        .map_err(Error::io("clone3", "init"))?
    {
        Forked::Child => {
            drop(parent_end);
            // Close the child's copy of the state-dir lock fd (the flock stays with the parent's
            // copy), or the lock would live as long as init waits for `start`. The undo guard is
            // the parent's job: the child must not run it.
            drop(undo.dir.take());
            std::mem::forget(undo);
            init::run(InitArgs {
                plan,
                state: &state,
                chan: Channel(child_end),
                fifo,
                preserve_fds: opts.preserve_fds,
                cgroups: view,
                no_pivot: opts.no_pivot,
                old_sigmask,
                join_user,
                join_mount,
                runtime_hooks,
                send_namespaces: step_needs,
                staging,
                rootfs_mount: opts.rootfs_mount.as_deref(),
                console,
                idmaps,
                bind_sources,
                session_keyring: (!opts.no_new_keyring).then(|| format!("_ses.{}", opts.id)),
                trampoline,
                cgroup_join_files,
            })
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(child_end);
    drop(fifo);
    drop(bind_sources);
    drop(trampoline);
    drop(console);
    undo.child = Some(pidfd.try_clone().map_err(Error::io("dup", "pidfd"))?);
    crate::fault::point("create.clone")?;
    Ok(Spawned {
        pre,
        undo,
        state,
        pid,
        pidfd,
        chan: Channel(parent_end),
        old_sigmask,
        clone_flags,
        into_cgroup: cg_fd.is_some(),
    })
}

/// Namespaces given by path: the parent joins all but user and mount before the clone, so the
/// child starts inside them even when it also creates a user namespace (from which it could
/// no longer join namespaces the host owns). The parent is disposable: this changes nothing
/// it still needs. Returns the user and mount namespaces for init to join.
fn join_namespaces(plan: &Plan) -> Result<(Option<OwnedFd>, Option<OwnedFd>), Error> {
    let (mut join_user, mut join_mount) = (None, None);
    for ns in plan.namespaces.iter().filter(|n| n.path.is_some()) {
        let path = ns.path.as_ref().expect("filtered");
        let fd = husk_sys::fs::openat(None, path, libc::O_RDONLY, 0)
            .map_err(Error::io("open namespace", path))?;
        if ns.kind == NsKind::Net {
            refuse_net_sysctl_in_own_netns(&plan.sysctl, &fd, path)?;
        }
        match ns.kind {
            NsKind::User => join_user = Some(fd),
            NsKind::Mount => join_mount = Some(fd),
            k => sp::setns(fd.as_fd(), k.clone_flag() as i32)
                .map_err(Error::io("join namespace", path))?,
        }
    }
    Ok((join_user, join_mount))
}

/// Offsets can only be set before a process enters the namespace, so it is made for our
/// children (unshare affects only them), given its offsets, and then the clone enters it.
fn unshare_time(plan: &Plan) -> Result<(), Error> {
    sp::unshare(libc::CLONE_NEWTIME).map_err(Error::io("unshare", "time namespace"))?;
    let offsets: String = plan
        .time_offsets
        .iter()
        .map(|(c, s, n)| format!("{c} {s} {n}\n"))
        .collect();
    if !offsets.is_empty() {
        fs::write("/proc/self/timens_offsets", offsets)
            .map_err(Error::io("write", "/proc/self/timens_offsets"))?;
    }
    Ok(())
}

/// The parent's half of the protocol in `sync`, from `Go` to `Ready`: id maps, the cgroup and
/// its limits, the cgroup fds, the runtime's hooks once init has mounted.
fn handshake(
    opts: &CreateOpts,
    plan: &Plan,
    s: Spawned,
    step: Option<RuntimeStep<'_>>,
) -> Result<Launched, Error> {
    let Spawned {
        mut pre,
        mut undo,
        mut state,
        pid,
        pidfd,
        chan,
        old_sigmask,
        clone_flags,
        into_cgroup,
    } = s;
    if plan.creates(NsKind::User) {
        crate::idmap::write_process_maps(pid, &plan.uid_mappings, &plan.gid_mappings)?;
        crate::explain::step(|| format!("wrote uid_map and gid_map of {pid}"));
    }
    // From here, as the host's root, not by init: in a user namespace init is non-dumpable, so
    // its /proc/self files belong to the host's root (EACCES: docker's --userns-remap sets an
    // oomScoreAdj for every container), and lowering the score needs CAP_SYS_RESOURCE of the
    // initial namespace. runc writes it before entering the namespace too. Inherited by exec.
    if let Some(adj) = plan.process.oom_score_adj {
        let p = format!("/proc/{pid}/oom_score_adj");
        fs::write(&p, adj.to_string()).map_err(Error::io("write", &p))?;
    }
    crate::explain::step(|| {
        format!(
            "clone3 flags={clone_flags:#x}{} → pid {pid}",
            if into_cgroup {
                " + CLONE_INTO_CGROUP"
            } else {
                ""
            },
        )
    });
    state.pid = pid;
    let hook_state = serde_json::to_string(&state.oci_state(Status::Creating)).unwrap_or_default();
    chan.send(&Msg::Go(pid)).map_err(Error::io("sync", "go"))?;
    crate::fault::point("create.go")?;
    let dir = undo.dir.as_ref().expect("set in claim");
    // Init mounts meanwhile; it waits for the cgroup before its cgroup namespace and mounts.
    if !into_cgroup {
        dir.save(&state)?;
    }
    undo.cgroup = Some(pre.cgroup.clone());
    make_cgroup(plan, &mut pre, &state)?;
    send_cgroups(&chan, &pre, pidfd.as_fd(), into_cgroup, plan)?;
    // Init mounts meanwhile, on the other CPU when there is one.
    if let Some(step) = step {
        let ns = recv_namespaces(&chan, step.needs, pid, plan, &pre, pidfd.as_fd())?;
        (step.run)(&ns)?;
    }
    await_ready(&chan, plan, &pre, pidfd.as_fd(), &hook_state)?;
    state.pid_start = sp::proc_stat(pid)
        .map_err(Error::io("read", format!("/proc/{pid}/stat")))?
        .0;
    dir.save(&state)?;
    crate::fault::point("create.state-saved")?;
    if let Some(pf) = &opts.pid_file {
        crate::fault::point("create.pid-file")?;
        write_pid_file(pf, pid)?;
    }
    let dir = undo.dir.take().expect("set in claim");
    Ok(Launched {
        dir,
        state,
        pidfd,
        chan,
        undo,
        old_sigmask,
        tty: pre.own_tty,
    })
}

/// Makes the rest of the cgroup and writes the limits, before init lets anything of the
/// container run.
fn make_cgroup(plan: &Plan, pre: &mut Prepared, state: &State) -> Result<(), Error> {
    if let Some((unit, sd, annotated)) = &mut pre.systemd {
        let res = plan.resources.as_ref();
        let devices = &state.devices;
        husk_cgroup::systemd::start(sd, unit, &pre.hier, state.pid, res, devices, annotated)?;
        crate::explain::step(|| format!("systemd started {} in {}", unit.name, unit.slice));
    }
    pre.cgroup.create_part(false)?;
    crate::fault::point("create.cgroup")?;
    crate::explain::step(|| {
        format!(
            "created cgroup {} ({} hierarchies)",
            pre.cg_path,
            pre.cgroup.dirs.len()
        )
    });
    if let Some(res) = &plan.resources {
        for w in pre.cgroup.apply(&pre.hier, res, &state.devices)? {
            log::warn(&w);
        }
        crate::explain::step(|| "wrote linux.resources limits".into());
    }
    Ok(())
}

/// `Msg::Cgroups` with the fds init joins by. Init may have failed meanwhile (and closed its
/// end): then its error is waiting to be read.
fn send_cgroups(
    chan: &Channel,
    pre: &Prepared,
    pidfd: BorrowedFd<'_>,
    into_cgroup: bool,
    plan: &Plan,
) -> Result<(), Error> {
    let join = pre.cgroup.open_for_self_join(into_cgroup)?;
    let fds: Vec<_> = join.files().map(|f| f.as_fd()).collect();
    let sent = chan.send_with_fds(&Msg::Cgroups, &fds);
    drop(fds);
    drop(join);
    let Err(e) = sent else {
        return Ok(());
    };
    // Init's namespaces, when a runtime step asked for them, come before its error.
    let mut reply = chan.recv();
    if matches!(reply, Ok(Some(Msg::Namespaces))) {
        reply = chan.recv();
    }
    Err(match reply {
        Ok(Some(m @ (Msg::Error(_) | Msg::NoExec(_)))) => init_failed(m),
        Ok(None) => died_during_setup(pidfd, &pre.cgroup, &pre.hier, plan),
        _ => Error::io("sync", "cgroups")(e),
    })
}

/// The namespaces init sent for the runtime step (`Msg::Namespaces`), or its error.
fn recv_namespaces(
    chan: &Channel,
    needs: StepNamespaces,
    pid: i32,
    plan: &Plan,
    pre: &Prepared,
    pidfd: BorrowedFd<'_>,
) -> Result<InitNamespaces, Error> {
    match chan
        .recv_with_fds(needs.kinds().len())
        .map_err(Error::io("sync", "namespaces"))?
    {
        Some((Msg::Namespaces, fds)) => needs.take(pid, fds),
        Some((m, _)) => Err(init_failed(m)),
        None => Err(died_during_setup(pidfd, &pre.cgroup, &pre.hier, plan)),
    }
}

/// An init's report that is not the one awaited: its error, or a protocol fault.
fn init_failed(m: Msg) -> Error {
    match m {
        Msg::Error(m) => Error::Msg(m),
        Msg::NoExec(m) => Error::Exec {
            not_found: crate::process::is_not_found(&m),
            msg: m,
        },
        other => Error::Msg(format!("internal: unexpected {other:?} from init")),
    }
}

/// Runs the prestart and createRuntime hooks when init has mounted, until it is ready.
fn await_ready(
    chan: &Channel,
    plan: &Plan,
    pre: &Prepared,
    pidfd: BorrowedFd<'_>,
    hook_state: &str,
) -> Result<(), Error> {
    loop {
        match chan.recv().map_err(Error::io("sync", "recv"))? {
            Some(Msg::Mounted) => {
                hooks::run_all("prestart", &plan.hooks.prestart, hook_state.as_bytes())?;
                hooks::run_all(
                    "createRuntime",
                    &plan.hooks.create_runtime,
                    hook_state.as_bytes(),
                )?;
                crate::fault::point("create.prestart-hooks")?;
                chan.send(&Msg::HooksDone)
                    .map_err(Error::io("sync", "hooks done"))?;
            }
            Some(Msg::Ready) => {
                crate::explain::step(|| "init is ready".into());
                crate::fault::point("create.ready")?;
                return Ok(());
            }
            Some(other) => return Err(init_failed(other)),
            None => return Err(died_during_setup(pidfd, &pre.cgroup, &pre.hier, plan)),
        }
    }
}

/// Init ended without reporting an error: how, in words, and when the memory cgroup's OOM
/// killer did it, that and where it shows (a memory limit too small for setup itself).
fn died_during_setup(
    pidfd: BorrowedFd<'_>,
    cgroup: &Cgroup,
    hier: &Hierarchies,
    plan: &Plan,
) -> Error {
    let how = sp::waitid_pidfd(pidfd, false).ok().flatten();
    let what = match how {
        Some(sp::Exit::Code(c)) => format!("exited with status {c}"),
        Some(sp::Exit::Signal(n)) => {
            format!("was killed by {}", husk_spec::names::signal_name(n))
        }
        None => "died".into(),
    };
    let mut msg = format!("container init {what} during setup, without reporting an error");
    if matches!(how, Some(sp::Exit::Signal(libc::SIGKILL))) {
        let events = match cgroup.dir_for_controller(hier, "memory") {
            Some(d) => Some(d.join("memory.oom_control")),
            None => cgroup.unified.as_ref().map(|u| u.join("memory.events")),
        };
        let kills = husk_cgroup::stats::oom_kills(cgroup, hier);
        if let Some(events) = events.filter(|_| kills > 0) {
            let limit = plan
                .resources
                .as_ref()
                .and_then(|r| r.memory.as_ref())
                .and_then(|m| m.limit);
            msg = format!(
                "container init was killed by SIGKILL during setup: the memory cgroup's OOM killer \
                 (oom_kill {kills} in {}){}",
                events.display(),
                match limit {
                    Some(l) => format!(
                        "; linux.resources.memory.limit {l} bytes is below what setting up the container needs"
                    ),
                    None => String::new(),
                }
            );
        }
    }
    Error::Msg(msg)
}

/// In a user namespace of its own init is, to the host, an unprivileged uid: a bind source under
/// a directory only host root may search (podman's 0700 `userdata` holding /etc/hosts) is out
/// of its reach. So each source is cloned here, before the clone, as a detached mount
/// (`open_tree`), which init attaches on its target (`move_mount`): runc opens its mount
/// sources from the host side too. A plain fd would not do: a bind from a mount outside the
/// caller's mount namespace is EINVAL. Aligned with `plan.mounts`; id-mapped binds make their
/// own detached copy. An ordinary user can do neither (open_tree's clone needs CAP_SYS_ADMIN
/// over the mount namespace) nor needs it: its container reaches what the user itself can, and
/// init binds the sources itself.
fn open_bind_sources(plan: &Plan) -> Result<Vec<Option<OwnedFd>>, Error> {
    if !plan.creates(NsKind::User) || crate::caller::Caller::current().unprivileged() {
        return Ok(Vec::new());
    }
    plan.mounts
        .iter()
        .map(|m| match &m.source {
            Some(src) if m.opts.is_bind() && m.opts.idmap.is_none() => {
                husk_sys::mount::open_tree_clone(src, m.opts.flags & libc::MS_REC != 0)
                    .map(Some)
                    .map_err(Error::io("open_tree bind source", src))
            }
            _ => Ok(None),
        })
        .collect()
}

/// exec.fifo, and the O_PATH fd init keeps of it. Init reopens it for writing at the very end,
/// as the container's user with its final capabilities (`init::open_fifo`), so that user must
/// be allowed to without CAP_DAC_OVERRIDE: the fifo belongs to its host uid and gid, mode 0600.
/// runc makes it 0622, owned by the container's root, which lets any host user open it through
/// the 0711 state dir and hold `start` up; here only root and that one host uid can. A user
/// namespace joined by path hides the host ids (its maps are not in the config): then it is
/// runc's 0622.
fn make_exec_fifo(path: &Path, plan: &Plan) -> Result<OwnedFd, Error> {
    husk_sys::fs::mkfifo(path, 0o600).map_err(Error::io("mkfifo", path))?;
    let fd = husk_sys::fs::openat(None, path, libc::O_PATH, 0).map_err(Error::io("open", path))?;
    match final_host_ids(plan) {
        Some((uid, gid)) => husk_sys::fs::fchown(fd.as_fd(), uid, gid)
            .map_err(Error::io("chown exec.fifo to the process' user", path))?,
        None => {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(0o622))
                .map_err(Error::io("chmod 0622", path))?;
        }
    }
    Ok(fd)
}

/// The host uid and gid the container's process ends up with, where the config tells.
fn final_host_ids(plan: &Plan) -> Option<(u32, u32)> {
    let (uid, gid) = (plan.process.uid, plan.process.gid);
    if !plan.has(NsKind::User) {
        return Some((uid, gid));
    }
    if !plan.creates(NsKind::User) {
        return None;
    }
    let host = |maps: &[husk_spec::config::IdMapping], id: u32| {
        maps.iter().find_map(|m| {
            let off = id.checked_sub(m.container_id)?;
            (off < m.size).then(|| m.host_id.checked_add(off)).flatten()
        })
    };
    Some((
        host(&plan.uid_mappings, uid)?,
        host(&plan.gid_mappings, gid)?,
    ))
}

impl Launched {
    /// `create` is done: init waits on exec.fifo; the state stays.
    pub fn finish_create(mut self) {
        self.undo.child = None;
        self.undo.cgroup = None;
    }

    /// `run`: init goes on to exec once ready; this waits for the exec and runs poststart hooks.
    pub fn start(&mut self) -> Result<(), Error> {
        self.dir.unlock();
        // Init's end of the channel is close-on-exec: its EOF means the process was executed
        // (or init died), so poststart hooks run after the exec, not during startContainer.
        loop {
            match self.chan.recv().map_err(Error::io("sync", "recv"))? {
                None => break,
                Some(Msg::Error(m)) => return Err(Error::Msg(m)),
                Some(_) => {}
            }
        }
        let st = serde_json::to_string(&self.state.oci_state(Status::Running)).unwrap_or_default();
        hooks::run_all("poststart", &self.state.hooks.poststart, st.as_bytes())
    }

    /// The pty master init sent over husk's own console pair (`foreground` with
    /// `process.terminal`), for a caller that relays the terminal itself (the detached
    /// containers' monitor); `None` without a terminal. Call after `start`.
    pub fn take_pty_master(&mut self) -> Result<Option<OwnedFd>, Error> {
        let Some(sock) = self.tty.take() else {
            return Ok(None);
        };
        crate::tty::receive_master(sock.as_fd()).map(Some)
    }

    /// Detached `run`: the container keeps running, the state stays.
    pub fn detach(self) {
        self.finish_create();
    }

    /// Tears a started container down after a failure (kills init, then as `wait`).
    pub fn wait_after_kill(self) -> Result<i32, Error> {
        let _ = sp::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        self.wait(false)
    }

    /// Foreground `run`: forwards signals until init exits; returns its status. The pidfd was
    /// taken before the clone returned, so an init that exits at once is never missed.
    pub fn wait(self, keep: bool) -> Result<i32, Error> {
        self.wait_teeing(keep, &mut |_| {})
    }

    /// `wait`, with `tee` seeing the terminal's output as husk relays it (nothing without a
    /// terminal: that output never passes through husk).
    pub fn wait_teeing(mut self, keep: bool, tee: &mut dyn FnMut(&[u8])) -> Result<i32, Error> {
        let exit = match self.tty.take() {
            Some(sock) => crate::tty::wait_with_terminal(self.pidfd.as_fd(), sock.as_fd(), tee),
            None => crate::process::wait_forwarding(self.pidfd.as_fd(), "init"),
        };
        let _ = sp::set_signal_mask(&self.old_sigmask);
        self.undo.child = None;
        let status = exit?.status();
        crate::explain::step(|| format!("init exited with status {status}"));
        let cgroup = self.undo.cgroup.take();
        if keep {
            return Ok(status);
        }
        self.dir.relock()?;
        crate::ops::destroy(self.dir, &self.state, cgroup)?;
        crate::explain::step(|| "removed the cgroup and the state dir".into());
        Ok(status)
    }
}

/// runc's rule for `net.*` sysctls in a joined network namespace: allowed, unless that namespace
/// is the one the runtime itself runs in (the host's), whose settings they would change.
fn refuse_net_sysctl_in_own_netns(
    sysctl: &[(String, String)],
    fd: &OwnedFd,
    path: &Path,
) -> Result<(), Error> {
    let Some((key, _)) = sysctl.iter().find(|(k, _)| k.starts_with("net.")) else {
        return Ok(());
    };
    let theirs = husk_sys::fs::fstat(fd.as_fd()).map_err(Error::io("fstat", path))?;
    let own = Path::new("/proc/self/ns/net");
    let ours = fs::metadata(own).map_err(Error::io("stat", own))?;
    if (theirs.st_dev, theirs.st_ino) == (ours.dev(), ours.ino()) {
        return Err(Error::Msg(format!(
            "linux.sysctl.{key}: the network namespace joined at {} is the runtime's own (the host's): its sysctls would change the host",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inode of a namespace fd, and of this process' own namespace of `kind`.
    fn ns_ino(fd: &OwnedFd) -> u64 {
        fs::File::from(fd.try_clone().unwrap())
            .metadata()
            .unwrap()
            .ino()
    }
    fn own_ino(kind: &str) -> u64 {
        fs::metadata(format!("/proc/self/ns/{kind}")).unwrap().ino()
    }

    /// A bridge attach gets init's network namespace and no user namespace fd (init opened
    /// one for every step before); pasta gets both, each the namespace it names.
    #[test]
    fn init_sends_only_the_namespaces_its_step_needs() {
        for (needs, want_user) in [
            (StepNamespaces::Net, false),
            (StepNamespaces::UserAndNet, true),
        ] {
            let (a, b) = husk_sys::sock::seqpacket_pair().unwrap();
            let (a, b) = (Channel(a), Channel(b));
            init::send_namespaces(&a, needs).unwrap();
            // Room for more than asked: a surplus fd would arrive and be counted.
            let (m, fds) = b.recv_with_fds(4).unwrap().unwrap();
            assert_eq!(m, Msg::Namespaces);
            assert_eq!(fds.len(), needs.kinds().len(), "{needs:?}");
            let ns = needs.take(7, fds).unwrap();
            assert_eq!(ns.pid, 7);
            assert_eq!(ns_ino(&ns.net), own_ino("net"), "{needs:?}");
            assert_eq!(ns.user.is_some(), want_user, "{needs:?}");
            if let Some(u) = &ns.user {
                assert_eq!(ns_ino(u), own_ino("user"));
            }
        }
        // A count other than the step's is init and husk out of step: named, never guessed at.
        let two = vec![
            fs::File::open("/proc/self/ns/net").unwrap().into(),
            fs::File::open("/proc/self/ns/net").unwrap().into(),
        ];
        let e = StepNamespaces::Net.take(7, two).err().unwrap();
        assert!(
            e.to_string()
                .contains("sent 2 namespace fds, expected 1 (net)"),
            "{e}"
        );
    }
}
