//! `husk run`: runc's `run ID` with -b/--bundle, else the daemonless front end,
//! which builds a spec in memory (crate husk-frontend) and runs it on the same engine.

use husk_frontend::{RunArgs, Target, build};
use husk_runtime::Error;
use husk_runtime::launch::{self, CreateOpts, Mode};
use std::path::Path;

/// docker's exit codes for the front end's own failures: 126 when the command cannot be
/// executed, 127 when it is not found, 125 for everything else husk could not do.
pub fn error_code(e: &Error) -> i32 {
    match e {
        Error::Exec {
            not_found: true, ..
        } => 127,
        Error::Exec {
            not_found: false, ..
        } => 126,
        _ => 125,
    }
}

/// `husk run`: runc's `run ID` with -b/--bundle, else the front end (husk_frontend's RULES).
pub fn run(root: &Path, mut a: RunArgs, systemd_cgroup: bool) -> Result<i32, Error> {
    let Some(bundle) = a.bundle.clone() else {
        if let Some(flag) = a.runc_only_flags().first() {
            return Err(Error::Msg(format!(
                "{flag} is an option of runc's `run`, which needs -b/--bundle: husk run -b BUNDLE {flag} ... ID"
            )));
        }
        if a.restart.is_some() && !a.detach {
            return Err(Error::Msg(
                "--restart needs -d: a foreground container is never restarted".into(),
            ));
        }
        let unprivileged = husk_runtime::caller::Caller::current().unprivileged();
        // podman 5's default for an ordinary user, where pasta can work (else none, as root's).
        if unprivileged && a.network.is_none() && husk_net::pasta::usable() {
            a.network = Some("pasta".into());
        }
        let monitored = through_monitor(&a)?;
        if monitored {
            check_it(&a)?;
        }
        return match a.take_positionals() {
            Target::Image(image) if a.detach || monitored => {
                protect_before_the_image_root(&a)?;
                run_detached(root, a, Some(&image))
            }
            Target::Image(image) => {
                protect_before_the_image_root(&a)?;
                run_image(root, a, &image)
            }
            _ if a.detach || monitored => run_detached(root, a, None),
            _ => {
                let id = container_id(&a);
                run_frontend(root, a, id, None)
            }
        };
    };
    if let Some(flag) = a.front_end_flags.first() {
        return Err(Error::Msg(format!(
            "-b/--bundle selects runc's `run`, which takes no front-end option such as {flag}: drop one of them"
        )));
    }
    let [id] = a.positional.as_slice() else {
        return Err(Error::Msg(
            "husk run -b BUNDLE ID takes exactly one container id".into(),
        ));
    };
    let opts = CreateOpts {
        root: root.to_path_buf(),
        id: id.clone(),
        bundle,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        foreground: !a.detach,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds.unwrap_or(0),
        files: vec![],
        systemd_cgroup,
        rootfs_mount: None,
    };
    start_and_wait(
        launch::launch(&opts, Mode::Run)?,
        a.detach,
        a.keep,
        &mut |_| {},
    )
}

/// CVE-2019-5736: a plan the sealed trampoline does not suit makes husk re-execute from a
/// read-only copy of its binary, which must come before the front end makes anything
/// (husk_runtime::protect_for, called right after each build). An image run mounts its overlay
/// root before its plan exists, so the options that can lead there (a superset of
/// trampoline::unsuitable's reasons: a shared pid namespace, CAP_SYS_PTRACE, an LSM label, a
/// seccomp profile, no_new_privileges) re-execute before that mount. It costs an execve (~1 ms)
/// to runs with those options only.
fn protect_before_the_image_root(a: &RunArgs) -> Result<(), Error> {
    let caps_ptrace = a.privileged
        || a.cap_add.iter().any(|c| {
            matches!(
                c.to_ascii_uppercase().trim_start_matches("CAP_"),
                "ALL" | "SYS_PTRACE"
            )
        });
    if caps_ptrace || a.pid.is_some() || !a.security_opt.is_empty() {
        husk_runtime::protect_binary()?;
    }
    Ok(())
}

/// `tee`: as Launched::wait_teeing.
fn start_and_wait(
    mut c: launch::Launched,
    detach: bool,
    keep: bool,
    tee: &mut dyn FnMut(&[u8]),
) -> Result<i32, Error> {
    if let Err(e) = c.start() {
        // A failed poststart fails the run; the container is torn down with its state.
        let _ = c.wait_after_kill();
        return Err(e);
    }
    if detach {
        c.detach();
        return Ok(0);
    }
    c.wait_teeing(keep, tee)
}

/// A foreground run goes through a monitor, as `run -d` + `attach`, when it asks for what only
/// a container that can outlive husk has: detach keys, or signals that end husk alone.
fn through_monitor(a: &RunArgs) -> Result<bool, Error> {
    let asked = a.detach_keys.is_some() || a.sig_proxy.is_some();
    if a.detach && asked {
        return Err(Error::Msg(
            "--detach-keys and --sig-proxy are for a foreground run: give -d's container its keys with husk attach --detach-keys".into(),
        ));
    }
    if a.detach_keys.is_some() && !a.interactive {
        return Err(Error::Msg(
            "--detach-keys: the keys are read from the container's input, which needs -i".into(),
        ));
    }
    Ok(a.detach_keys.is_some() || a.sig_proxy == Some(false))
}

/// docker's check: a pty fed from a pipe would echo the input and never pass its EOF.
fn check_it(a: &RunArgs) -> Result<(), Error> {
    use std::io::IsTerminal;
    if a.tty && a.interactive && !std::io::stdin().is_terminal() {
        return Err(Error::Msg(
            "-it: the input device is not a TTY (drop -t to pipe into the container)".into(),
        ));
    }
    Ok(())
}

/// `run -d`: the container goes into the front end's store and runs under its own monitor
/// (crate husk-containers); prints the id once the process runs. Without -d (`through_monitor`)
/// the caller stays attached until the container exits or the detach keys are typed.
fn run_detached(root: &Path, mut a: RunArgs, image: Option<&str>) -> Result<i32, Error> {
    use husk_containers::{Meta, Store, store};
    let keys = match (&a.detach_keys, a.detach) {
        (_, true) => None,
        (Some(k), false) => Some(husk_containers::attach::parse_keys(k)?),
        (None, false) => Some(husk_containers::attach::DEFAULT_KEYS.to_vec()),
    };
    let restart = restart_policy(&a)?;
    let s = Store::for_root(root);
    let id = store::new_id()?;
    // The image's overlay root stays mounted while the container exists: unmounted (dropped) if
    // it never runs, kept for `rm` to remove once it does.
    let image_root = match image {
        Some(image) => Some(crate::images::prepare_run(
            &mut a,
            image,
            &id,
            &s.ctr(&id),
            true,
        )?),
        None => None,
    };
    let host = build::Host::current(s.run.join(&id));
    // docker's host name for a detached container is its short id, whatever its --name.
    let mut built = build::build(
        &RunArgs {
            name: None,
            ..a.clone()
        },
        &id,
        &host,
    )?;
    // An ordinary user's image root was mounted (detached) only to read and prepare it: the
    // monitor mounts it again on the same upper for each start (husk_image::overlay::mount_kept),
    // and two overlays should not share an upper.
    a.root_mount = None;
    let image_root = image_root.map(|mut r| {
        r.mount = None;
        r
    });
    husk_runtime::protect_for(&built.plan)?;
    let bridge = bridge_meta(root, &a);
    if let Some(other) = a
        .network
        .as_deref()
        .and_then(|n| n.strip_prefix("container:"))
    {
        join_container_netns(root, other, &mut built)?;
    }
    // Checked now, so that what is missing shows here rather than in the monitor's log.
    let user_net =
        husk_net::usermode::UserNet::prepare(a.network.as_deref().unwrap_or(""), &a.publish)?;
    let pasta =
        matches!(user_net, Some(husk_net::usermode::UserNet::Pasta(_))).then(|| a.publish.clone());
    let slirp4netns = match user_net {
        Some(husk_net::usermode::UserNet::Slirp(_)) => {
            a.network.clone().map(|n| (n, a.publish.clone()))
        }
        _ => None,
    };
    let meta = Meta {
        restart,
        image_root: image_root.as_ref().map(|r| r.dir.clone()),
        bridge,
        pasta,
        slirp4netns,
        ..store_meta(&a, &id, &built, image)
    };
    write_cidfile(&a, &id)?;
    let ran = match &keys {
        Some(keys) => {
            let attach = husk_containers::verbs::Attach {
                input: a.interactive,
                stdin_once: true,
                keys,
                out: &mut std::io::stdout(),
                err: &mut std::io::stderr(),
            };
            let sig_proxy = a.sig_proxy.unwrap_or(true);
            let r = husk_containers::verbs::run_attached(&s, meta, &built.spec, attach, sig_proxy);
            // The image root is the container's once it exists (`rm`, or `--rm` at its exit,
            // removes it), else unmounted here.
            let exists = r.is_ok() || s.ctr(&id).exists();
            if exists {
                image_root.map(husk_image::overlay::Root::keep);
            }
            return match r {
                Ok(code) => Ok(code),
                Err((e, code)) => {
                    if !exists {
                        remove_cidfile(&a);
                    }
                    eprintln!("husk: {e}");
                    Ok(code)
                }
            };
        }
        None => husk_containers::verbs::run_detached(&s, meta, &built.spec),
    };
    match ran {
        Ok(id) => {
            image_root.map(husk_image::overlay::Root::keep);
            crate::out::line(id)?;
            Ok(0)
        }
        Err((e, code)) => {
            remove_cidfile(&a);
            eprintln!("husk: {e}");
            Ok(code)
        }
    }
}

/// `--restart`, which `--rm` excludes (docker's rule).
fn restart_policy(a: &RunArgs) -> Result<husk_containers::Restart, Error> {
    let restart = match &a.restart {
        Some(r) => husk_containers::Restart::parse(r)?,
        None => husk_containers::Restart::default(),
    };
    if a.rm && restart.name != "no" {
        return Err(Error::Msg(format!(
            "--rm and --restart {}: a container removed at exit cannot be restarted; drop one",
            restart.name
        )));
    }
    Ok(restart)
}

/// What the store keeps of a front-end container (detached, or a named foreground run's
/// record): the defaults of a container without --restart, image root or network.
fn store_meta(
    a: &RunArgs,
    id: &str,
    built: &build::Built,
    image: Option<&str>,
) -> husk_containers::Meta {
    let ann = &built.spec.annotations;
    husk_containers::Meta {
        id: id.to_string(),
        name: a.name.clone().unwrap_or_default(),
        created_ns: husk_containers::time::now_ns(),
        image: match (image, &a.rootfs) {
            (Some(image), _) => image.to_string(),
            (None, Some(r)) => std::path::absolute(r)
                .unwrap_or_else(|_| r.clone())
                .display()
                .to_string(),
            (None, None) => "(host)".into(),
        },
        command: built
            .spec
            .process
            .as_ref()
            .map(|p| p.args.clone())
            .unwrap_or_default(),
        root_path: built.plan.rootfs.clone(),
        rootfs_readonly_recursive: built.plan.rootfs_readonly_recursive,
        loopback_up: built.plan.loopback_up,
        install_init: built.plan.install_init,
        files: built
            .files
            .iter()
            .map(|(n, e)| (n.clone(), e.into()))
            .collect(),
        restart: husk_containers::Restart::default(),
        auto_remove: a.rm,
        stop_signal: ann
            .get(husk_frontend::STOP_SIGNAL)
            .and_then(|v| v.parse().ok())
            .unwrap_or(libc::SIGTERM),
        stop_timeout: ann
            .get(husk_frontend::STOP_TIMEOUT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
        tty: a.tty,
        stdin: a.interactive,
        image_root: None,
        exposed: a.exposed.clone(),
        bridge: None,
        pasta: None,
        slirp4netns: None,
        networks: vec![],
        foreground: None,
        net_root: None,
    }
}

/// docker writes the id at create and refuses an existing file.
fn write_cidfile(a: &RunArgs, id: &str) -> Result<(), Error> {
    let Some(f) = &a.cidfile else { return Ok(()) };
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(f)
        .and_then(|mut file| file.write_all(id.as_bytes()))
        .map_err(Error::io("write --cidfile", f))
}

/// The id file goes again when the container never ran.
fn remove_cidfile(a: &RunArgs) {
    if let Some(f) = &a.cidfile {
        let _ = std::fs::remove_file(f);
    }
}

fn container_id(a: &RunArgs) -> String {
    match &a.name {
        Some(n) => n.clone(),
        None => build::generated_id(),
    }
}

/// `husk run IMAGE`: the image's overlay root (crate husk-image) is mounted first, under the
/// container's id, and unmounted and removed however the run ends.
fn run_image(root: &Path, mut a: RunArgs, image: &str) -> Result<i32, Error> {
    let id = container_id(&a);
    husk_spec::validate_id(&id).map_err(Error::Msg)?;
    remove_left_behind(root, &id)?;
    if root.join(&id).exists() {
        return Err(Error::Msg(format!(
            "container name \"{id}\" is already in use"
        )));
    }
    let rootfs = crate::images::prepare_run(&mut a, image, &id, &root.join(&id), false)?;
    let r = run_frontend(root, a, id, Some(image));
    let released = rootfs.release();
    let code = r?;
    released?;
    Ok(code)
}

/// `image`: the image name `run_image` mounted (`a.rootfs` is its overlay root), for the record.
fn run_frontend(root: &Path, a: RunArgs, id: String, image: Option<&str>) -> Result<i32, Error> {
    check_it(&a)?;
    let store = husk_containers::Store::for_root(root);
    if let Some(n) = &a.name
        && !husk_containers::foreground::name_free(&store, n)
    {
        return Err(Error::Msg(format!(
            "the name \"{n}\" is already in use by a detached container: remove it or pick another --name"
        )));
    }
    let host = build::Host::current(root.join(&id));
    let mut built = build::build(&a, &id, &host)?;
    husk_runtime::protect_for(&built.plan)?;
    // Held until the container is gone: dropping it removes the veth and the lease.
    let net = match a.network.as_deref().unwrap_or("none") {
        n if n.starts_with("container:") => {
            join_container_netns(root, &n["container:".len()..], &mut built)?;
            NetGuard(None)
        }
        n if husk_frontend::build::user_mode(n) => NetGuard(None),
        _ => match bridge_meta(root, &a) {
            Some(b) => {
                let hostname = built.spec.hostname.clone().unwrap_or_default();
                NetGuard(Some(husk_containers::net::lease(
                    &id,
                    &b,
                    &mut built.files,
                    &mut built.plan,
                    &hostname,
                )?))
            }
            None => NetGuard(None),
        },
    };
    husk_runtime::fault::point("run.network-leased")?;
    // A named run keeps its output (a terminal's as stdout) and exit code for `logs`, `ps -a`
    // and `inspect` (husk_containers::foreground); not a run whose name is a runc id but not a
    // docker name (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
    let mut record = match &a.name {
        Some(n) if husk_containers::store::valid_name(n) => {
            let meta = husk_containers::Meta {
                foreground: Some(root.to_path_buf()),
                ..store_meta(&a, &husk_containers::store::new_id()?, &built, image)
            };
            Some(husk_containers::foreground::begin(
                &store,
                meta,
                &built.spec,
            )?)
        }
        _ => None,
    };
    let opts = CreateOpts {
        root: root.to_path_buf(),
        id: id.clone(),
        bundle: built.plan.rootfs.clone(),
        foreground: true,
        files: built.files,
        rootfs_mount: a.root_mount.clone(),
        ..Default::default()
    };
    if !a.interactive {
        // docker's default: without -i the container's stdin is /dev/null, not the terminal.
        let null = std::fs::File::open("/dev/null").map_err(Error::io("open", "/dev/null"))?;
        husk_sys::fs::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0)
            .map_err(Error::io("dup2", "/dev/null"))?;
    }
    remove_left_behind(root, &id)?;
    // docker writes the id at create and refuses an existing file; removed again if the
    // container never runs.
    write_cidfile(&a, &id)?;
    let user_net =
        husk_net::usermode::UserNet::prepare(a.network.as_deref().unwrap_or(""), &a.publish)?;
    // Stopped (dropped) once the container is gone, however the run ends.
    let helper_running = std::cell::RefCell::new(None);
    let attach = |ns: &launch::InitNamespaces| {
        if let Some(att) = net.0.as_ref() {
            att.attach(std::os::fd::AsFd::as_fd(&ns.net))?;
            att.rules_go_at_exit(ns.pid)?;
        }
        if let Some(u) = &user_net {
            *helper_running.borrow_mut() = Some(u.attach(ns, &root.join(&id), true)?);
        }
        Ok(())
    };
    let step = (net.0.is_some() || user_net.is_some()).then(|| launch::RuntimeStep {
        needs: husk_net::usermode::step_needs(user_net.as_ref()),
        run: &attach,
    });
    if let Some(r) = &mut record {
        r.redirect()?;
    }
    let c = match launch::launch_plan_with(&opts, &built.plan, Mode::Run, step) {
        Ok(c) => c,
        Err(e) => {
            if let Some(r) = &mut record {
                r.failed();
            }
            remove_cidfile(&a);
            return Err(match &host.rootless {
                Some(r) => rootless_hint(e, r.uid),
                None => e,
            });
        }
    };
    let Some(mut r) = record else {
        return start_and_wait(c, false, false, &mut |_| {});
    };
    r.started(c.state.pid, c.state.pid_start)?;
    let code = start_and_wait(c, false, false, &mut |b| r.tee(b));
    // A run that failed after the launch (a poststart hook) is recorded as docker's 125.
    if let Err(e) = r.finish(*code.as_ref().unwrap_or(&125)) {
        // docker's `--rm` that could not remove: said, and the container's code kept.
        eprintln!("husk: --rm: {e}");
    }
    code
}

/// A permission error inside an ordinary user's container is the user's own: its root is that
/// uid on the host, so it may create or write only what the user may.
fn rootless_hint(e: Error, uid: u32) -> Error {
    match e {
        Error::Msg(m) if m.contains("EACCES") => Error::Msg(format!(
            "{m} (the container's root is uid {uid} on the host, with the rights of that user: a --rootfs must be the user's own, e.g. unpacked by it)"
        )),
        e => e,
    }
}

/// Releases a bridge attachment on every way out of `run_frontend`.
struct NetGuard(Option<husk_net::Attachment>);

impl Drop for NetGuard {
    fn drop(&mut self) {
        if let Some(a) = self.0.take() {
            let t = std::time::Instant::now();
            a.release();
            husk_runtime::explain::step(|| {
                format!(
                    // The veth goes with the container's network namespace.
                    "network: released the lease and hosts file, port rules gone ({} µs)",
                    t.elapsed().as_micros()
                )
            });
        }
    }
}

/// What a run on `--network bridge` or a named network asks of husk-net (none for none, host
/// and container:NAME; build has refused -p and the rest there). `-P` adds the image's
/// ExposedPorts, each on a free host port.
fn bridge_meta(root: &Path, a: &RunArgs) -> Option<husk_containers::store::BridgeMeta> {
    let network = a.network.as_deref().unwrap_or("none");
    if matches!(network, "none" | "host")
        || husk_frontend::build::user_mode(network)
        || network.starts_with("container:")
    {
        return None;
    }
    let mut publish = a.publish.clone();
    if a.publish_all {
        publish.extend(a.exposed.iter().cloned());
    }
    Some(husk_containers::store::BridgeMeta {
        root: root.to_path_buf(),
        publish,
        network: network.to_string(),
        names: a.name.iter().chain(&a.network_alias).cloned().collect(),
        ip: a.ip.clone(),
        mac: a.mac_address.clone(),
    })
}

/// `--network container:NAME`: that running container's network namespace, joined by path.
fn join_container_netns(root: &Path, name: &str, built: &mut build::Built) -> Result<(), Error> {
    // A foreground container's state lives under the root by its name; a detached one's in the
    // front end's store.
    let state = husk_runtime::ops::state_json(root, name).or_else(|_| {
        let (run, id) = crate::containers::exec_target(root, name)?;
        husk_runtime::ops::state_json(&run, &id)
    });
    let st: serde_json::Value = state
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let pid = st["pid"]
        .as_u64()
        .filter(|p| *p > 0 && st["status"] == "running")
        .ok_or_else(|| {
            Error::Msg(format!(
                "--network container:{name}: no running container of that name"
            ))
        })?;
    let path = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
    for ns in &mut built.plan.namespaces {
        if ns.kind == husk_spec::names::NsKind::Net {
            ns.path = Some(path.clone());
        }
    }
    if let Some(l) = built.spec.linux.as_mut() {
        for ns in &mut l.namespaces {
            if ns.kind == "network" {
                ns.path = Some(path.to_string_lossy().into_owned());
            }
        }
    }
    // Its loopback is that container's, already up.
    built.plan.loopback_up = false;
    Ok(())
}

/// A container of this name marked as a foreground run's, stopped or still "creating", was
/// left by a husk that was killed (its init died with it: `die_with_parent` once running, the
/// closed sync channel during setup): remove it so the name can be used again. A creator that
/// is alive holds the state dir's lock, which `delete` waits for; what it made then runs, and
/// `delete` refuses it.
fn remove_left_behind(root: &Path, id: &str) -> Result<(), Error> {
    if !root.join(id).exists() {
        return Ok(());
    }
    let Ok(text) = husk_runtime::ops::state_json(root, id) else {
        return Ok(());
    };
    let st: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if (st["status"] == "stopped" || st["status"] == "creating")
        && st["annotations"][husk_frontend::FOREGROUND] == "true"
    {
        // The killed run's pasta or slirp4netns holds the container's namespaces and never
        // exits on its own; its pid file goes with the state dir, so it is stopped first.
        husk_net::helper::stop(&root.join(id));
        husk_runtime::ops::delete(root, id, false).map_err(|e| {
            Error::Msg(format!(
                "container name \"{id}\" is already in use (removing what a killed run left: {e})"
            ))
        })?;
    }
    Ok(())
}
