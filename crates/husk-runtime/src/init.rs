//! The container's init, in the child of clone3: it runs the Plan inside the new namespaces and
//! ends in execve. Errors go to the parent as data (`Msg::Error`); the child then exits.
//! The order is the checklist in `setup`; each step says why it sits where it does.

use crate::process::{find_executable, set_cwd, set_user};
use crate::rootfs::{CgroupView, Rootfs};
use crate::shared::{Step, fail, procfs_handle, write_proc};
use crate::sync::{Channel, Msg};
use husk_spec::names::NsKind;
use husk_spec::plan::Plan;
use husk_sys::{fs as sfs, process as sp, security as sec};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub(crate) struct InitArgs<'a> {
    pub plan: &'a Plan,
    /// The container's state as the parent made it before the clone (pid 0: `Go` brings it).
    pub state: &'a crate::state::State,
    pub chan: Channel,
    /// O_PATH fd of exec.fifo (create); `None` for `run`, which is told to start over the channel.
    pub fifo: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub cgroups: CgroupView,
    pub no_pivot: bool,
    pub old_sigmask: sp::SigSet,
    /// Namespaces joined by the child itself (user first, then mount); the parent joined the rest.
    pub join_user: Option<OwnedFd>,
    pub join_mount: Option<OwnedFd>,
    pub runtime_hooks: bool,
    /// A runtime step waits for these of init's namespaces (`Msg::Namespaces`).
    pub send_namespaces: Option<crate::sync::StepNamespaces>,
    /// Where to attach the root when it is `/` itself (see `Rootfs::prepare`).
    pub staging: Option<PathBuf>,
    /// The root as a detached mount to attach at `plan.rootfs` (see `CreateOpts::rootfs_mount`).
    pub rootfs_mount: Option<&'a OwnedFd>,
    /// User namespaces for id-mapped mounts, aligned with `plan.mounts`.
    pub idmaps: Vec<Option<OwnedFd>>,
    /// Bind sources the parent opened, aligned with `plan.mounts` (see `launch::open_bind_sources`).
    pub bind_sources: Vec<Option<OwnedFd>>,
    /// Name of the new session keyring (`_ses.ID`), or None with --no-new-keyring.
    pub session_keyring: Option<String>,
    /// The connected console socket, when process.terminal: the pty master goes there.
    pub console: Option<OwnedFd>,
    /// The sealed memfd of the exec trampoline, or None to execute the program directly
    /// (see `trampoline::choose`).
    pub trampoline: Option<OwnedFd>,
    /// The v1 `tasks` files whose open fds come with `Msg::Cgroups` (see `CgroupEntry`).
    pub cgroup_join_files: Vec<PathBuf>,
}

pub(crate) fn run(a: InitArgs<'_>) -> ! {
    sp::set_name("husk:[INIT]");
    crate::explain::in_init();
    let pid = match a.chan.recv() {
        Ok(Some(Msg::Go(pid))) => pid,
        // The parent died or failed before telling us to go: nothing to report to.
        _ => sp::exit_now(1),
    };
    // The state hooks get, made here from our copy of the parent's: it may be megabytes, too
    // big for the channel (see `sync`).
    let state_json = serde_json::to_string(&crate::state::OciState {
        pid,
        ..a.state.oci_state(crate::state::Status::Creating)
    })
    .unwrap_or_default();
    let ready = match get_ready(&a, &state_json) {
        Ok(r) => r,
        Err(msg) => {
            let _ = a.chan.send(&msg);
            sp::exit_now(1);
        }
    };
    if a.chan.send(&Msg::Ready).is_err() {
        sp::exit_now(1);
    }
    let fifo_w = wait_for_start(&a, ready.own_fds.as_ref(), &state_json);
    exec_process(&a, ready, fifo_w)
}

/// What init holds once it has reported `Ready`.
struct Ready {
    seccomp: Option<crate::seccomp::Prepared>,
    /// This process' fd directory, when the root has no /proc (see `reopen_own_fd`).
    own_fds: Option<OwnedFd>,
    exe: PathBuf,
}

/// Everything up to `Ready`: the filter compiled, the container set up, the program found and
/// exec.fifo proven openable. A failure is the message for the parent.
fn get_ready(a: &InitArgs<'_>, state_json: &str) -> Result<Ready, Msg> {
    // The filter is compiled now, so a bad one fails `create`, and loaded last (see
    // `seccomp`). Notify: `listenerPath` is a host path, so it is connected now, before setup
    // enters the container's user namespace and root (see `seccomp::connect_listener`).
    let seccomp = a.plan.seccomp.as_ref().map(|sc| {
        crate::seccomp::connect_listener(Some(sc))
            .and_then(|listener| crate::seccomp::prepare(sc, listener, state_json))
    });
    let seccomp = seccomp.transpose().map_err(Msg::Error)?;
    let own_fds = setup(a, state_json, seccomp.is_some()).map_err(Msg::Error)?;
    // Looked up as the container's user, after pivot_root, and reported apart from other
    // errors so front ends can return 126/127 as docker does.
    let exe = find_executable(&a.plan.process).map_err(Msg::NoExec)?;
    crate::explain::step(|| format!("found {}; ready", exe.display()));
    crate::fault::point_msg("init.ready").map_err(Msg::Error)?;
    if let Some(fifo) = &a.fifo {
        check_fifo(fifo, own_fds.as_ref(), &a.plan.process).map_err(Msg::Error)?;
    }
    Ok(Ready {
        seccomp,
        own_fds,
        exe,
    })
}

/// Waits for start: `create` blocks in opening exec.fifo for writing until `husk start` opens
/// it. `run` goes on at once: its parent starts the container as soon as it is ready anyway,
/// and records the state meanwhile. Then the startContainer hooks, and the fifo's byte.
fn wait_for_start(
    a: &InitArgs<'_>,
    own_fds: Option<&OwnedFd>,
    state_json: &str,
) -> Option<std::fs::File> {
    let mut fifo_w = match &a.fifo {
        // `check_fifo` passed: only being killed (or out of memory) fails here. Nobody waits on
        // the channel any more; stderr is all that is left to tell.
        Some(fifo) => match open_fifo(fifo, own_fds) {
            Ok(f) => Some(f),
            Err(e) => exit_with(&fifo_error(&a.plan.process, fifo, e), 1),
        },
        None => None,
    };
    if let Err(msg) = crate::fault::point_msg("init.started") {
        exit_with(&msg, 1);
    }
    // The state is `created` by now (runc sends that too); the parent wrote it as creating.
    let created = state_json.replacen("\"status\":\"creating\"", "\"status\":\"created\"", 1);
    if let Err(e) = crate::hooks::run_all(
        "startContainer",
        &a.plan.hooks.start_container,
        created.as_bytes(),
    ) {
        // `run` reports it through its parent; after `create` nobody else can.
        if a.fifo.is_none() {
            let _ = a.chan.send(&Msg::Error(e.to_string()));
            sp::exit_now(1);
        }
        exit_with(&format!("{e}"), 1);
    }
    // The fifo byte is written only after the startContainer hooks, and the fifo (like the
    // channel) stays open, close-on-exec, until execve: its EOF tells `start` (the channel's EOF
    // tells `run`) that the process was executed, so poststart hooks run after the exec as the
    // spec orders them.
    if let Some(f) = &mut fifo_w
        && f.write_all(b"0").is_err()
    {
        sp::exit_now(1);
    }
    fifo_w
}

/// The last steps: signal mask and dispositions as an ordinary exec gives them, the parent-death
/// signal, the filter, and execve (of the trampoline or the program).
fn exec_process(a: &InitArgs<'_>, ready: Ready, fifo_w: Option<std::fs::File>) -> ! {
    let Ready { seccomp, exe, .. } = ready;
    // Restore the caller's signal mask and SIGPIPE (Rust ignores it) so the container starts
    // with what an ordinary exec would give it.
    sp::reset_signal_dispositions();
    // The `--init` reaper keeps them blocked through execve: a pid namespace's init drops a
    // signal whose disposition is the default, but never a blocked one, so a signal forwarded
    // before the reaper has set up its signalfd waits for it instead of being lost.
    if !a.plan.install_init {
        let _ = sp::set_signal_mask(&a.old_sigmask);
    }
    // After the last credential change, which clears it. A parent already gone by now shows as
    // a hung-up channel (it holds its end until our execve).
    if a.plan.die_with_parent {
        let gone = sp::set_pdeathsig(libc::SIGKILL).is_err()
            || husk_sys::sock::poll(&[(a.chan.0.as_fd(), libc::POLLRDHUP)], 0)
                .is_ok_and(|r| r[0] & (libc::POLLHUP | libc::POLLRDHUP) != 0);
        if gone {
            sp::exit_now(137);
        }
    }
    let (args, env) = (&a.plan.process.args, &a.plan.process.env);
    let prepared = match &a.trampoline {
        Some(memfd) => {
            crate::explain::step(|| format!("execve husk-exec (sealed memfd) → {}", exe.display()));
            let mut signal_fds = vec![a.chan.0.as_raw_fd()];
            signal_fds.extend(fifo_w.as_ref().map(|f| f.as_raw_fd()));
            crate::trampoline::prepare(memfd.as_fd(), &signal_fds, &exe, args, env)
        }
        None => {
            crate::explain::step(|| format!("execve {}", exe.display()));
            sp::PreparedExec::path(&exe, args, env)
        }
    };
    let err = match prepared {
        // The container's filter goes in last: after it only the exec (see `seccomp`).
        Ok(prepared) => match seccomp.map_or(Ok(()), |s| s.install()) {
            Ok(()) => prepared.exec(),
            Err(msg) => {
                // Not loaded, so reporting costs nothing a profile must allow. `run` is still
                // listening; after `create`, stderr and the exit status are all there is.
                if a.fifo.is_none() {
                    let _ = a.chan.send(&Msg::Error(msg));
                    sp::exit_now(1);
                }
                exit_with(&msg, 1);
            }
        },
        Err(e) => e,
    };
    exit_with(
        &format!("exec {}: {}", exe.display(), crate::errno_text(&err)),
        if err.raw_os_error() == Some(libc::ENOENT) {
            127
        } else {
            126
        },
    );
}

/// Init's way into its cgroup, once, as late as the config allows: the parent makes the
/// cgroup while init mounts, then sends `Msg::Cgroups` with the open v1 `tasks` files
/// (cgroup2 was joined by CLONE_INTO_CGROUP). Init moves itself in (see
/// `Cgroup::open_for_self_join`) and only then makes its cgroup namespace, whose root is the
/// cgroup it is in; so this runs before the first cgroup mount.
struct CgroupEntry<'a> {
    done: std::cell::Cell<bool>,
    chan: &'a Channel,
    files: &'a [PathBuf],
    new_ns: bool,
}

impl CgroupEntry<'_> {
    fn enter(&self) -> Step<()> {
        if self.done.replace(true) {
            return Ok(());
        }
        let fds = match self.chan.recv_with_fds(self.files.len() + 1) {
            Ok(Some((Msg::Cgroups, fds))) if fds.len() == self.files.len() => fds,
            Ok(Some((m, fds))) => {
                return Err(format!(
                    "internal: expected the cgroup's {} files, got {m:?} with {}",
                    self.files.len(),
                    fds.len()
                ));
            }
            Err(e) => return Err(fail("receive", "the cgroup's tasks files", e)),
            // The parent failed or died: it reports (or there is nobody to report to).
            Ok(None) => sp::exit_now(1),
        };
        husk_cgroup::SelfJoin::from_parts(self.files.to_vec(), fds)
            .join()
            .map_err(|e| e.to_string())?;
        crate::explain::step(|| {
            format!(
                "joined {} v1 cgroup hierarchies (tasks ← 0)",
                self.files.len()
            )
        });
        if self.new_ns {
            sp::unshare(libc::CLONE_NEWCGROUP)
                .map_err(|e| fail("unshare", "cgroup namespace", e))?;
        }
        Ok(())
    }
}

fn exit_with(msg: &str, code: i32) -> ! {
    let _ = writeln!(std::io::stderr(), "husk: {msg}");
    sp::exit_now(code);
}

/// Blocks until `husk start` opens the fifo.
fn open_fifo(fifo: &OwnedFd, own_fds: Option<&OwnedFd>) -> std::io::Result<std::fs::File> {
    reopen_own_fd(fifo, own_fds, libc::O_WRONLY)
}

/// Proves, before `Ready`, that `open_fifo` will get past everything but the wait, as the user
/// init now is: a non-blocking open of a fifo nobody reads fails with ENXIO only after the
/// path was resolved and the permission checked. So `create` never reports a container whose
/// init cannot wait for `start`.
fn check_fifo(
    fifo: &OwnedFd,
    own_fds: Option<&OwnedFd>,
    p: &husk_spec::plan::ProcessPlan,
) -> Step<()> {
    match reopen_own_fd(fifo, own_fds, libc::O_WRONLY | libc::O_NONBLOCK) {
        // Only `start` reads it, and it cannot before `Ready`; closing it at once is harmless.
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(()),
        Err(e) => Err(fifo_error(p, fifo, e)),
    }
}

/// Reopens one of init's own O_PATH fds (exec.fifo, whose path is on the host, outside the
/// container's root) through /proc/self/fd, close-on-exec. Without a mount namespace the root
/// has no /proc of its own: `own_fds` is then this process' fd directory, opened before the
/// chroot.
fn reopen_own_fd(
    fd: &OwnedFd,
    own_fds: Option<&OwnedFd>,
    flags: i32,
) -> std::io::Result<std::fs::File> {
    let (dir, path) = match own_fds {
        Some(dir) => (Some(dir.as_fd()), fd.as_raw_fd().to_string()),
        None => (None, format!("/proc/self/fd/{}", fd.as_raw_fd())),
    };
    sfs::openat(dir, Path::new(&path), flags, 0).map(std::fs::File::from)
}

fn fifo_error(p: &husk_spec::plan::ProcessPlan, fifo: &OwnedFd, e: std::io::Error) -> String {
    fail(
        &format!("open exec.fifo for writing as uid {} gid {}", p.uid, p.gid),
        format!("/proc/self/fd/{}", fifo.as_raw_fd()),
        e,
    )
}

/// The container, set up in the order this checklist gives (each part says why it sits where
/// it does). Returns this process' fd directory when the root has no /proc (see `open_fifo`).
fn setup(a: &InitArgs<'_>, state_json: &str, seccomp_pending: bool) -> Step<Option<OwnedFd>> {
    enter_namespaces(a)?;
    let cgroup = CgroupEntry {
        done: std::cell::Cell::new(false),
        chan: &a.chan,
        files: &a.cgroup_join_files,
        new_ns: a.plan.creates(NsKind::Cgroup),
    };
    let enter_cgroup = || cgroup.enter();
    let rootfs = mount_root(a, &enter_cgroup)?;
    // Without a cgroup mount (or a mount namespace) init enters the cgroup here.
    cgroup.enter()?;
    run_create_hooks(a, state_json)?;
    let own_fds = enter_root(a, rootfs.as_ref())?;
    set_process_attributes(a, seccomp_pending)?;
    Ok(own_fds)
}

/// Whether a user namespace's map holds id 0: the plan's for a namespace init made, the
/// kernel's (`file`, read after setns) for one it `joined`. An unreadable map is taken to hold
/// it, so setresuid says what is wrong.
fn holds_zero(plan: &[husk_spec::config::IdMapping], joined: bool, file: &str) -> bool {
    if !joined {
        return plan.iter().any(|m| m.container_id == 0);
    }
    std::fs::read_to_string(file).map_or(true, |t| {
        t.lines().any(|l| l.split_whitespace().next() == Some("0"))
    })
}

/// Non-dumpable, then the namespaces init joins itself (user, then mount), root of a new user
/// namespace, the session keyring, loopback, names and CPU affinity.
fn enter_namespaces(a: &InitArgs<'_>) -> Step<()> {
    let plan = a.plan;
    let p = &plan.process;
    // Non-dumpable until execve: nothing in the container may ptrace or read /proc/1/mem of a
    // process that still holds host fds (CVE-2016-9962).
    sp::set_dumpable(false).map_err(|e| fail("prctl", "PR_SET_DUMPABLE", e))?;
    // umask 0 while we create device nodes and mount targets with exact modes.
    sp::umask(0);
    if let Some(fd) = &a.join_user {
        sp::setns(fd.as_fd(), libc::CLONE_NEWUSER)
            .map_err(|e| fail("join", "user namespace", e))?;
    }
    if plan.has(NsKind::User) {
        // Become root of the user namespace (the maps were written before `Go`) where its maps
        // hold 0. An ordinary user's keep-id map without /etc/subuid ranges holds its own id
        // alone: init stays that id, which has the namespace's full capabilities already (as its
        // creator, or by setns).
        let joined = a.join_user.is_some();
        if holds_zero(&plan.gid_mappings, joined, "/proc/self/gid_map") {
            sec::setresgid(0).map_err(|e| fail("setresgid", "0", e))?;
        }
        if holds_zero(&plan.uid_mappings, joined, "/proc/self/uid_map") {
            sec::setresuid(0).map_err(|e| fail("setresuid", "0", e))?;
        }
    }
    if let Some(needs) = a.send_namespaces {
        send_namespaces(&a.chan, needs)?;
    }
    if let Some(name) = &a.session_keyring {
        // The keyring is labelled when it is made (SELinux keycreate, as runc does).
        crate::lsm::apply(&crate::lsm::keyring_writes(p))?;
        // A kernel without keyrings has nothing to share: ENOSYS is fine (runc agrees).
        match sec::join_session_keyring(name) {
            Err(e) if e.raw_os_error() != Some(libc::ENOSYS) => {
                return Err(fail("join session keyring", name, e));
            }
            _ => {}
        }
    }
    if let Some(fd) = &a.join_mount {
        sp::setns(fd.as_fd(), libc::CLONE_NEWNS).map_err(|e| fail("join", "mount namespace", e))?;
    }
    if plan.loopback_up {
        husk_sys::net::loopback_up().map_err(|e| fail("bring up", "lo", e))?;
    }
    if let Some(h) = &plan.hostname {
        sp::sethostname(h).map_err(|e| fail("sethostname", h, e))?;
    }
    if let Some(d) = &plan.domainname {
        sp::setdomainname(d).map_err(|e| fail("setdomainname", d, e))?;
    }
    // Every CPU (the cgroup's cpuset narrows it), never the caller's affinity. execCPUAffinity
    // is for exec only: runtime-spec 1.3 says it does not apply to init (runc agrees).
    sec::set_affinity(None).map_err(|e| fail("sched_setaffinity", "all CPUs", e))?;
    Ok(())
}

/// The namespaces the parent's runtime step needs (pasta joins them by `/proc/self/fd/N`), and
/// only those. Only init may open them: being non-dumpable, its /proc/PID/ns refuses even its
/// own uid (EACCES), while a process' own /proc/thread-self/ns is always its own.
pub(crate) fn send_namespaces(chan: &Channel, needs: crate::sync::StepNamespaces) -> Step<()> {
    let fds = needs
        .kinds()
        .iter()
        .map(|kind| {
            let p = format!("/proc/thread-self/ns/{kind}");
            sfs::openat(None, Path::new(&p), libc::O_RDONLY | libc::O_CLOEXEC, 0)
                .map_err(|e| fail("open", &p, e))
        })
        .collect::<Step<Vec<OwnedFd>>>()?;
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    chan.send_with_fds(&Msg::Namespaces, &borrowed)
        .map_err(|e| fail("sync", "namespaces", e))
}

/// The root bound and every mount made (`Rootfs::mount_all`), or without a mount namespace only
/// /dev's nodes in the root; `None` then.
fn mount_root<'a>(
    a: &'a InitArgs<'_>,
    enter_cgroup: &'a dyn Fn() -> Step<()>,
) -> Step<Option<Rootfs<'a>>> {
    let plan = a.plan;
    let in_userns = plan.has(NsKind::User);
    // A mount namespace joined by path is set up like a new one: runc binds the root, mounts
    // and pivots there too (whatever else lives in that namespace sees it).
    let has_mount_ns = plan.has(NsKind::Mount);
    Ok(if has_mount_ns {
        crate::explain::step(|| "joined namespaces, hostname, affinity".into());
        let root = Rootfs::prepare(plan, a.staging.as_deref(), a.rootfs_mount)?;
        crate::explain::step(|| format!("bound rootfs {}", plan.rootfs.display()));
        let r = Rootfs {
            idmaps: &a.idmaps,
            bind_sources: &a.bind_sources,
            plan,
            // Also when husk itself runs in one (rootless podman): mknod and sysfs are refused.
            in_userns: in_userns || !crate::caller::Caller::in_initial_userns(),
            cgroups: &a.cgroups,
            enter_cgroup,
            root,
        };
        r.mount_all()?;
        crate::fault::point_msg("init.mounted")?;
        crate::explain::step(|| {
            format!(
                "mounted {} filesystems{}",
                plan.mounts.len(),
                if plan.setup_dev {
                    format!(", made {} device nodes", plan.devices.len())
                } else {
                    String::new()
                }
            )
        });
        Some(r)
    } else {
        // No mount namespace: nothing is mounted (the plan refused what would need it), but
        // /dev gets its nodes and links in the root's own directory, as runc makes them there.
        let root = sfs::openat(None, &plan.rootfs, libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|e| fail("open rootfs", &plan.rootfs, e))?;
        Rootfs {
            idmaps: &a.idmaps,
            bind_sources: &a.bind_sources,
            plan,
            in_userns,
            cgroups: &a.cgroups,
            enter_cgroup,
            root,
        }
        .mount_all()?;
        None
    })
}

/// The runtime's hooks (prestart, createRuntime) run by the parent once mounted, then
/// createContainer here, in the container's namespaces before pivot_root.
fn run_create_hooks(a: &InitArgs<'_>, state_json: &str) -> Step<()> {
    if a.runtime_hooks {
        a.chan
            .send(&Msg::Mounted)
            .map_err(|e| fail("sync", "mounted", e))?;
        match a.chan.recv() {
            Ok(Some(Msg::HooksDone)) => {}
            _ => return Err("runtime hooks failed".into()),
        }
    }
    crate::hooks::run_all(
        "createContainer",
        &a.plan.hooks.create_container,
        state_json.as_bytes(),
    )
    .map_err(|e| e.to_string())
}

/// pivot_root (or chroot without a mount namespace), the cwd made, the console, the masked and
/// read-only paths, sysctls and the root's final propagation.
fn enter_root(a: &InitArgs<'_>, rootfs: Option<&Rootfs<'_>>) -> Step<Option<OwnedFd>> {
    let plan = a.plan;
    let p = &plan.process;
    let mut own_fds = None;
    if let Some(r) = rootfs {
        r.pivot(a.no_pivot)?;
        crate::fault::point_msg("init.pivoted")?;
        crate::explain::step(|| {
            if a.no_pivot {
                "MS_MOVE + chroot".into()
            } else {
                "pivot_root, old root detached".into()
            }
        });
    } else {
        // No mount namespace: the host's mount table, entered at the root with chroot (runc's
        // way; before, the process ran in the host's own /).
        if a.fifo.is_some() {
            own_fds = Some(
                sfs::openat(
                    None,
                    Path::new("/proc/self/fd"),
                    libc::O_PATH | libc::O_DIRECTORY,
                    0,
                )
                .map_err(|e| fail("open", "/proc/self/fd", e))?,
            );
        }
        Rootfs::chroot(plan)?;
        crate::explain::step(|| format!("chroot {}", plan.rootfs.display()));
    }
    // A missing cwd is created here, before `Rootfs::finish` can make / read-only: created
    // later (in `set_cwd`), a missing cwd under the default `root.readonly` failed with
    // EROFS, where runc creates it during rootfs setup.
    let root = sfs::openat(None, Path::new("/"), libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(|e| fail("open", "/", e))?;
    crate::rootfs::mkdir_all(root.as_fd(), &husk_spec::plan::clean_in_root(&p.cwd))
        .map_err(|e| fail("create cwd", &p.cwd, e))?;
    // After pivot_root, so the pty comes from the container's devpts.
    if let Some(sock) = &a.console {
        crate::process::setup_console(sock.as_fd(), p.console_size)?;
    }
    if rootfs.is_some() {
        Rootfs::finish(plan, || write_sysctls(plan))?;
        // Last, once the masks and read-only paths (binds inside the root) are made: an
        // unbindable root would refuse them.
        crate::propagation::after_pivot(plan)?;
        crate::explain::step(|| {
            format!(
                "{} sysctls, masked {} paths, {} read-only paths",
                plan.sysctl.len(),
                plan.masked_paths.len(),
                plan.readonly_paths.len()
            )
        });
    } else {
        write_sysctls(plan)?;
    }
    Ok(own_fds)
}

/// rlimits, personality, scheduling, memory policy, cwd, LSM attributes, user and
/// capabilities, umask, no_new_privs, and every fd but stdio and the preserved ones closed on
/// exec.
fn set_process_attributes(a: &InitArgs<'_>, seccomp_pending: bool) -> Step<()> {
    let plan = a.plan;
    let p = &plan.process;
    for r in &p.rlimits {
        sec::setrlimit(r.resource, r.soft, r.hard)
            .map_err(|e| fail("setrlimit", husk_spec::names::rlimit_name(r.resource), e))?;
    }
    if let Some(pers) = plan.personality {
        sec::personality(pers).map_err(|e| fail("personality", format!("{pers:#x}"), e))?;
    }
    crate::process::set_scheduling(p)?;
    if let Some(mp) = &plan.mem_policy {
        sec::set_mempolicy(mp.mode | mp.flags, &mp.nodes)
            .map_err(|e| fail("set_mempolicy", "linux.memoryPolicy", e))?;
    }
    let cwd_root = sfs::openat(None, Path::new("/"), libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(|e| fail("open", "/", e))?;
    set_cwd(cwd_root.as_fd(), &p.cwd)?;
    // AppArmor profile and SELinux label, for the next execve (the program's: see `lsm`).
    // Long before the seccomp filter, so no profile has to allow the writes; the
    // startContainer hooks, forked and executed later, run under them too, as with runc.
    crate::lsm::apply(&crate::lsm::exec_writes(p))?;
    // Without no_new_privs loading the filter needs CAP_SYS_ADMIN, which `set_user` keeps
    // until execve (see `seccomp`).
    set_user(p, seccomp_pending)?;
    crate::explain::step(|| {
        format!(
            "cwd {}, uid {} gid {}, capabilities {}",
            p.cwd,
            p.uid,
            p.gid,
            p.caps
                .map_or("kept".to_string(), |c| format!("{:#x}", c.effective))
        )
    });
    sp::umask(p.umask.unwrap_or(0o022));
    if p.no_new_privileges {
        sec::set_no_new_privs().map_err(|e| fail("prctl", "PR_SET_NO_NEW_PRIVS", e))?;
    }
    // Nothing but stdio, the preserved fds and our own close-on-exec channel reaches the
    // container (CVE-2024-21626).
    for fd in 3..3 + a.preserve_fds {
        sfs::clear_cloexec(fd as i32).map_err(|e| fail("keep preserved fd", fd.to_string(), e))?;
    }
    sfs::close_range_cloexec(3 + a.preserve_fds).map_err(|e| fail("close_range", "fds", e))?;
    Ok(())
}

fn write_sysctls(plan: &Plan) -> Step<()> {
    if plan.sysctl.is_empty() {
        return Ok(());
    }
    let procfs = procfs_handle()?;
    for (k, v) in &plan.sysctl {
        write_proc(procfs.as_fd(), &format!("sys/{}", k.replace('.', "/")), v)?;
    }
    Ok(())
}
