//! The front end's options → an OCI spec and its plan, in memory. Pure but for reading the
//! caller's environment (`Host`) and the root's passwd/group files for `-u NAME`.

use super::RunArgs;
use super::mounts::{self, mount};
use husk_runtime::Error;
use husk_runtime::launch::StateEntry;
use husk_spec::config::{Capabilities, Linux, Mount, Namespace, Process, Rlimit, Root, User};
use husk_spec::defaults::{DEFAULT_CAPS, MASKED_PATHS, READONLY_PATHS};
use husk_spec::{Plan, Spec};
use std::path::{Path, PathBuf};

/// What the front end takes from the caller's side.
pub struct Host {
    pub cwd: Option<PathBuf>,
    pub shell: Option<String>,
    pub env: Vec<(String, String)>,
    /// Whether the host can limit swap (docker gives `-m` alone a swap limit only then).
    pub swap_limit: bool,
    /// The container's state dir-to-be (`--root`/ID): launch writes `Built::files` there.
    pub state_dir: PathBuf,
    /// The caller's terminal size (rows, columns): stdin's, else stdout's.
    pub term_size: Option<(u16, u16)>,
    /// The host's online CPUs, as the kernel lists them (e.g. `0-1`).
    pub cpus_online: Option<String>,
    /// Some when an ordinary user runs husk (see `rootless`).
    pub rootless: Option<super::rootless::Rootless>,
}

impl Host {
    pub fn current(state_dir: PathBuf) -> Host {
        let cg = Path::new("/sys/fs/cgroup");
        use std::os::fd::AsFd;
        let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
        Host {
            rootless: super::rootless::Rootless::detect(),
            cpus_online: std::fs::read_to_string("/sys/devices/system/cpu/online")
                .ok()
                .map(|s| s.trim().to_string()),
            state_dir,
            term_size: [stdin.as_fd(), stdout.as_fd()]
                .into_iter()
                .find(|fd| husk_sys::tty::is_tty(*fd))
                .and_then(|fd| husk_sys::tty::get_winsize(fd).ok()),
            cwd: std::env::current_dir().ok(),
            shell: std::env::var("SHELL").ok().filter(|s| s.starts_with('/')),
            env: std::env::vars().collect(),
            // v1: swap accounting on (memsw files); v2: the memory controller has swap files.
            swap_limit: cg.join("memory/memory.memsw.limit_in_bytes").exists()
                || std::fs::read_to_string(cg.join("cgroup.controllers"))
                    .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"))
                    && Path::new("/proc/swaps").exists(),
        }
    }
}

/// A docker-like short id: 12 hex digits from the clock and the pid.
pub fn generated_id() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mix = (t.as_nanos() as u64) ^ ((std::process::id() as u64) << 40) ^ 0x9e37_79b9_7f4a_7c15;
    format!("{:012x}", mix.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 16)
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Msg(msg.into())
}

fn caps(a: &RunArgs, host: &Host) -> Result<Vec<String>, Error> {
    // "All" is every capability husk itself holds: asking for more fails at capset, and a host
    // may withhold some (this project's CI host has no CAP_SYS_RESOURCE). An ordinary user's
    // container is root of its own user namespace, which holds every capability over it.
    let held = match &host.rootless {
        Some(_) => (1u64 << (husk_sys::security::last_cap() + 1)) - 1,
        None => husk_sys::security::capget()
            .map(|(_, permitted, _)| permitted)
            .unwrap_or(u64::MAX),
    };
    let all = || {
        husk_spec::names::CAPABILITIES
            .iter()
            .enumerate()
            .filter(|(i, _)| held & (1 << i) != 0)
            .map(|(_, s)| s.to_string())
            .collect::<Vec<_>>()
    };
    if a.privileged {
        return Ok(all());
    }
    let norm = |c: &str| -> Result<String, Error> {
        if c.eq_ignore_ascii_case("ALL") {
            return Ok("ALL".into());
        }
        let n = husk_spec::names::capability(c)
            .ok_or_else(|| bad(format!("unknown capability \"{c}\"")))?;
        Ok(husk_spec::names::CAPABILITIES[n as usize].to_string())
    };
    let drops = a
        .cap_drop
        .iter()
        .map(|c| norm(c))
        .collect::<Result<Vec<_>, _>>()?;
    let adds = a
        .cap_add
        .iter()
        .map(|c| norm(c))
        .collect::<Result<Vec<_>, _>>()?;
    // docker's and podman's rules: a capability both added and dropped is a mistake; ALL on one
    // side is the starting set, and the named ones on the other side are then taken from it or
    // added to it (`--cap-add ALL --cap-drop NET_RAW` is everything but NET_RAW).
    if let Some(c) = adds.iter().find(|c| *c != "ALL" && drops.contains(c)) {
        return Err(bad(format!(
            "capability \"{c}\" cannot be dropped and added"
        )));
    }
    let has_all = |v: &[String]| v.iter().any(|c| c == "ALL");
    let mut set: Vec<String> = if has_all(&adds) {
        all()
    } else if has_all(&drops) {
        vec![]
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if !has_all(&adds) || !has_all(&drops) {
        set.retain(|x| !drops.contains(x));
    }
    for c in adds.iter().filter(|c| *c != "ALL") {
        if !set.contains(c) {
            set.push(c.clone());
        }
    }
    Ok(set)
}

fn env(a: &RunArgs, host: &Host, hostname: &str, home: &str) -> Result<Vec<String>, Error> {
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOSTNAME".into(), hostname.into()),
        ("HOME".into(), home.into()),
    ];
    if a.tty
        && let Some((_, t)) = host.env.iter().find(|(k, _)| k == "TERM")
    {
        env.push(("TERM".into(), t.clone()));
    }
    let mut set = |kv: &str| -> Result<(), Error> {
        if kv.is_empty() || kv.starts_with('=') {
            return Err(bad(format!("invalid environment variable: \"{kv}\"")));
        }
        let copied: Vec<(String, String)> = match kv.split_once('=') {
            Some((k, v)) => vec![(k.to_string(), v.to_string())],
            // `-e PREFIX*` copies every variable of the caller that starts with PREFIX (podman).
            None if kv.ends_with('*') => host
                .env
                .iter()
                .filter(|(k, _)| k.starts_with(&kv[..kv.len() - 1]))
                .cloned()
                .collect(),
            // `-e NAME` copies NAME from here, or drops it when unset (docker).
            None => host.env.iter().filter(|(k, _)| k == kv).cloned().collect(),
        };
        for (k, v) in copied {
            env.retain(|(x, _)| *x != k);
            env.push((k, v));
        }
        Ok(())
    };
    for kv in &a.image_env {
        set(kv)?;
    }
    for f in &a.env_file {
        let text = std::fs::read_to_string(f).map_err(Error::io("read env file", f))?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            set(line)?;
        }
    }
    for e in &a.env {
        set(e)?;
    }
    Ok(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

fn ulimit(u: &str) -> Result<Rlimit, Error> {
    let (name, vals) = u
        .split_once('=')
        .ok_or_else(|| bad(format!("invalid ulimit \"{u}\": want name=soft[:hard]")))?;
    let kind = format!("RLIMIT_{}", name.to_ascii_uppercase());
    husk_spec::names::rlimit(&kind)
        .ok_or_else(|| bad(format!("invalid ulimit \"{u}\": unknown resource {name}")))?;
    let num = |s: &str| -> Result<u64, Error> {
        if s == "-1" || s == "unlimited" {
            Ok(u64::MAX)
        } else {
            s.parse()
                .map_err(|_| bad(format!("invalid ulimit \"{u}\": {s} is not a number")))
        }
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => (num(vals)?, num(vals)?),
    };
    Ok(Rlimit { kind, soft, hard })
}

/// docker's resource flags → `linux.resources` (docker's units and conversions).
fn resources(a: &RunArgs, host: &Host) -> Result<Option<serde_json::Value>, Error> {
    use serde_json::json;
    let mut r = serde_json::Map::new();
    let memory = memory_resources(a, host)?;
    if !memory.is_empty() {
        r.insert("memory".into(), memory.into());
    }
    let cpu = cpu_resources(a, host)?;
    if !cpu.is_empty() {
        r.insert("cpu".into(), cpu.into());
    }
    if let Some(p) = a.pids_limit {
        // docker: zero or negative means unlimited.
        r.insert(
            "pids".into(),
            json!({ "limit": if p <= 0 { -1 } else { p } }),
        );
    }
    if let Some(w) = a.blkio_weight {
        if !(10..=1000).contains(&w) {
            return Err(bad(format!("--blkio-weight {w}: must be 10 to 1000")));
        }
        r.insert("blockIO".into(), json!({ "weight": w }));
    }
    // --privileged allows every device, as docker's; --device allows its own.
    let mut rules: Vec<serde_json::Value> = vec![];
    if a.privileged {
        rules.push(json!({"allow": true, "access": "rwm"}));
    }
    for d in &a.device {
        rules.push(super::devices::device(d)?.1);
    }
    if !rules.is_empty() {
        r.insert("devices".into(), rules.into());
    }
    Ok((!r.is_empty()).then(|| r.into()))
}

/// --memory, --memory-swap, --memory-reservation, --oom-kill-disable and --memory-swappiness →
/// `linux.resources.memory`.
fn memory_resources(
    a: &RunArgs,
    host: &Host,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    use serde_json::json;
    let size = |flag: &str, v: &str| super::size::parse(v).map_err(|e| bad(format!("{flag}: {e}")));
    let mut memory = serde_json::Map::new();
    // docker: 0 is no limit; without --memory-swap the swap limit is twice the memory (as much
    // swap as memory), where the host can limit swap at all.
    let limit = match &a.memory {
        Some(m) => match size("--memory", m)? {
            0 => None,
            l if l < 6 << 20 => {
                return Err(bad(format!("--memory {m}: the minimum is 6m, as docker's")));
            }
            l => Some(l),
        },
        None => None,
    };
    if let Some(l) = limit {
        memory.insert("limit".into(), json!(l));
    }
    match (a.memory_swap.as_deref(), limit) {
        (Some(_), None) if a.memory.is_none() => return Err(bad("--memory-swap needs --memory")),
        (Some("-1"), Some(_)) => {
            memory.insert("swap".into(), json!(-1));
        }
        (Some(s), Some(l)) => match size("--memory-swap", s)? {
            0 if host.swap_limit => {
                memory.insert("swap".into(), json!(2 * l));
            }
            0 => {}
            sw if sw < l => {
                return Err(bad(format!(
                    "--memory-swap {s}: must be at least --memory (it counts memory plus swap)"
                )));
            }
            sw => {
                memory.insert("swap".into(), json!(sw));
            }
        },
        (None, Some(l)) if host.swap_limit => {
            memory.insert("swap".into(), json!(2 * l));
        }
        _ => {}
    }
    if let Some(r) = &a.memory_reservation {
        memory.insert(
            "reservation".into(),
            json!(size("--memory-reservation", r)?),
        );
    }
    if a.oom_kill_disable {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    if let Some(sw) = a.memory_swappiness {
        if sw > 100 {
            return Err(bad(format!("--memory-swappiness {sw}: must be 0 to 100")));
        }
        memory.insert("swappiness".into(), json!(sw));
    }
    Ok(memory)
}

/// --cpus, --cpu-quota, --cpu-period, --cpu-shares, --cpuset-cpus and --cpuset-mems →
/// `linux.resources.cpu`.
fn cpu_resources(
    a: &RunArgs,
    host: &Host,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    use serde_json::json;
    let mut cpu = serde_json::Map::new();
    if let Some(c) = &a.cpus {
        let n: f64 = c
            .parse()
            .ok()
            .filter(|n: &f64| *n > 0.0)
            .ok_or_else(|| bad(format!("--cpus {c}: want a positive number")))?;
        // The kernel's minimum quota is 1000 µs (podman: "CPU cfs quota cannot be less than
        // 1ms"); the host's CPUs bound it from above.
        let quota = (n * 100_000.0) as i64;
        if quota < 1000 {
            return Err(bad(format!(
                "--cpus {c}: the minimum is 0.01 (the kernel's smallest quota, 1000 µs per 100000 µs period)"
            )));
        }
        if let Some(max) = host
            .cpus_online
            .as_deref()
            .and_then(husk_spec::plan::parse_cpu_list)
            && n > max.len() as f64
        {
            let n = max.len();
            return Err(bad(format!(
                "--cpus {c}: the range is 0.01 to {n}.00, as this host has {n} CPUs"
            )));
        }
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(quota));
    }
    if a.cpus.is_some() && (a.cpu_quota.is_some() || a.cpu_period.is_some()) {
        return Err(bad(
            "--cpus cannot be given with --cpu-quota or --cpu-period (docker's rule: --cpus sets both)",
        ));
    }
    if let Some(q) = a.cpu_quota {
        // docker: 0 or -1 is no quota; the kernel's minimum is 1000 µs.
        if q > 0 && q < 1000 {
            return Err(bad(format!("--cpu-quota {q}: the minimum is 1000 (µs)")));
        }
        if q > 0 {
            cpu.insert("quota".into(), json!(q));
        }
    }
    if let Some(p) = a.cpu_period {
        if !(1000..=1_000_000).contains(&p) {
            return Err(bad(format!(
                "--cpu-period {p}: must be between 1000 and 1000000 (µs)"
            )));
        }
        cpu.insert("period".into(), json!(p));
    }
    if let Some(s) = a.cpu_shares {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(c) = &a.cpuset_cpus {
        husk_spec::plan::parse_cpu_list(c)
            .ok_or_else(|| bad(format!("--cpuset-cpus {c}: want a list like 0-2,4")))?;
        if let Some(online) = &host.cpus_online
            && let Some(have) = husk_spec::plan::parse_cpu_list(online)
            && let Some(missing) = husk_spec::plan::parse_cpu_list(c)
                .unwrap_or_default()
                .into_iter()
                .find(|n| !have.contains(n))
        {
            return Err(bad(format!(
                "--cpuset-cpus {c}: CPU {missing} is not available; this host has {online}"
            )));
        }
        cpu.insert("cpus".into(), json!(c));
    }
    if let Some(m) = &a.cpuset_mems {
        husk_spec::plan::parse_cpu_list(m)
            .ok_or_else(|| bad(format!("--cpuset-mems {m}: want a list like 0-1")))?;
        cpu.insert("mems".into(), json!(m));
    }
    Ok(cpu)
}

fn rootless_resources(
    a: &RunArgs,
    host: &Host,
    res: Option<serde_json::Value>,
) -> Result<Option<serde_json::Value>, Error> {
    let (Some(r), Some(mut res)) = (&host.rootless, res.clone()) else {
        return Ok(res);
    };
    if r.cgroup.is_ok() {
        return Ok(Some(res));
    }
    if let Some(map) = res.as_object_mut() {
        map.remove("devices");
        if map.is_empty() {
            return Ok(None);
        }
    }
    Err(bad(r
        .no_cgroup(&resource_flags(a).join(", "))
        .unwrap_or_default()))
}

/// The resource flags given, by name, for messages.
fn resource_flags(a: &RunArgs) -> Vec<&'static str> {
    [
        ("-m/--memory", a.memory.is_some()),
        ("--memory-swap", a.memory_swap.is_some()),
        ("--memory-reservation", a.memory_reservation.is_some()),
        ("--memory-swappiness", a.memory_swappiness.is_some()),
        ("--oom-kill-disable", a.oom_kill_disable),
        ("--cpus", a.cpus.is_some()),
        ("--cpu-shares", a.cpu_shares.is_some()),
        ("--cpu-quota", a.cpu_quota.is_some()),
        ("--cpu-period", a.cpu_period.is_some()),
        ("--cpuset-cpus", a.cpuset_cpus.is_some()),
        ("--cpuset-mems", a.cpuset_mems.is_some()),
        ("--pids-limit", a.pids_limit.is_some()),
        ("--blkio-weight", a.blkio_weight.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, given)| given.then_some(f))
    .collect()
}

/// `--cgroup-parent P` makes the cgroup P/ID. An ordinary user's container goes under the
/// cgroup v2 subtree delegated to it (in `husk/` there, or P), or has none.
fn cgroups_path(a: &RunArgs, host: &Host, id: &str) -> Result<Option<String>, Error> {
    let parent = a.cgroup_parent.as_deref().map(|p| p.trim_matches('/'));
    let Some(r) = &host.rootless else {
        return Ok(parent.map(|p| format!("/{p}/{id}")));
    };
    match &r.cgroup {
        Ok(dir) => {
            let rel = dir.strip_prefix("/sys/fs/cgroup").unwrap_or(dir);
            Ok(Some(format!(
                "/{}/{}/{id}",
                rel.display(),
                parent.unwrap_or("husk")
            )))
        }
        Err(_) if parent.is_some() => Err(bad(r.no_cgroup("--cgroup-parent").unwrap_or_default())),
        Err(_) => Ok(None),
    }
}

/// What one front-end run needs: its spec, its plan, and the files (name, contents) launch
/// writes into the container's state dir, which the spec's mounts bind.
pub struct Built {
    pub spec: Spec,
    pub plan: Plan,
    pub files: Vec<(String, StateEntry)>,
}

/// Builds the spec and the plan for one front-end run.
pub fn build(a: &RunArgs, id: &str, host: &Host) -> Result<Built, Error> {
    husk_spec::validate_id(id).map_err(Error::Msg)?;
    let resources = rootless_resources(a, host, resources(a, host)?)?;
    let SecurityOpts { nnp, seccomp, lsm } = security_opts(a)?;
    let embedded = a.rootfs.is_none();
    let rootfs = match &a.rootfs {
        Some(r) => std::path::absolute(r).map_err(Error::io("resolve", r))?,
        None => PathBuf::from("/"),
    };
    // docker's and podman's default host name is the container's short id, never its --name.
    let hostname = match (&a.hostname, &a.name) {
        (Some(h), _) => h.clone(),
        (None, Some(_)) => generated_id(),
        (None, None) => id.chars().take(12).collect(),
    };
    let caps = caps(a, host)?;
    let caps_for_seccomp = caps.clone();

    let ns = own_namespaces(a, host)?;

    let args = process_args(a, host, embedded);
    // podman's --systemd looks at the program, not at --init's reaper in front of it.
    let program = &args[if a.init { 2 } else { 0 }..];
    let systemd = super::systemd::wanted(a.systemd.as_deref(), program)?;
    // What the root holds is read here, before init attaches a detached root where it goes.
    let view = match &a.root_mount {
        Some(fd) => PathBuf::from(husk_sys::mount::fd_path(std::os::fd::AsFd::as_fd(&**fd))),
        None => rootfs.clone(),
    };
    let mut mounts = container_mounts(a, host, embedded, &ns, &view)?;
    if systemd {
        super::systemd::mounts(&mut mounts);
    }
    let mut etc_files = etc_binds(a, host, embedded, ns.net, &hostname, &mut mounts)?;
    let root_path = scaffold_root(a, host, embedded, &rootfs, &mut mounts, &mut etc_files);

    let namespaces = namespace_list(&ns, host);
    let sysctl = sysctls(a)?;

    let user = container_user(a, host, &ns, &view)?;
    let cwd = working_dir(a, host, embedded)?;

    let mut spec = Spec {
        oci_version: husk_spec::OCI_VERSION.into(),
        process: Some(process(
            a,
            host,
            ProcessParts {
                hostname: &hostname,
                user,
                args,
                cwd,
                caps,
                nnp,
            },
        )?),
        root: Some(Root {
            path: root_path.to_string_lossy().into_owned(),
            readonly: embedded || a.read_only,
        }),
        hostname: ns.uts.then_some(hostname),
        domainname: match (&a.domainname, ns.uts) {
            (Some(_), false) => return Err(bad("--domainname cannot be set with --uts host")),
            (d, _) => d.clone(),
        },
        mounts,
        annotations: super::labels::annotations(a)?,
        linux: Some(Linux {
            uid_mappings: host
                .rootless
                .as_ref()
                .map_or_else(Vec::new, |r| r.uid_mappings(ns.keep_id)),
            gid_mappings: host
                .rootless
                .as_ref()
                .map_or_else(Vec::new, |r| r.gid_mappings(ns.keep_id)),
            namespaces,
            resources,
            sysctl,
            devices: devices(a)?,
            cgroups_path: cgroups_path(a, host, id)?,
            seccomp: match seccomp {
                Some(explicit) => explicit,
                // --privileged runs unconfined, as docker's does.
                None if a.privileged => None,
                None => Some(super::seccomp_default::profile(&caps_for_seccomp)),
            },
            masked_paths: if a.privileged {
                vec![]
            } else {
                MASKED_PATHS.iter().map(|s| s.to_string()).collect()
            },
            readonly_paths: if a.privileged {
                vec![]
            } else {
                READONLY_PATHS.iter().map(|s| s.to_string()).collect()
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    if systemd {
        super::systemd::process(&mut spec, a.stop_signal.is_some());
    }
    lsm.apply(&mut spec)?;
    let mut plan = husk_spec::lower(&spec, &root_path)?;
    plan.rootfs_readonly_recursive = embedded;
    plan.loopback_up = ns.net;
    plan.install_init = a.init;
    plan.die_with_parent = true;
    Ok(Built {
        spec,
        plan,
        files: etc_files,
    })
}

/// The process' user: -u resolved in the container's /etc files (keep-id runs as the user's own
/// ids unless -u says otherwise, as podman's), and for a rootless run, checked to be mapped.
fn container_user(
    a: &RunArgs,
    host: &Host,
    ns: &OwnNamespaces,
    rootfs: &Path,
) -> Result<super::user::Resolved, Error> {
    let keep_user = host
        .rootless
        .as_ref()
        .filter(|_| ns.keep_id && a.user.is_none())
        .map(|r| format!("{}:{}", r.uid, r.gid));
    let user = super::user::resolve(
        rootfs,
        keep_user.as_deref().or(a.user.as_deref()),
        &a.group_add,
    )?;
    if let Some(r) = &host.rootless {
        r.check_mapped(user.uid, user.gid, &user.additional_gids, ns.keep_id)
            .map_err(bad)?;
    }
    Ok(user)
}

/// The container's device nodes: the host's with --privileged, else each --device.
fn devices(a: &RunArgs) -> Result<Vec<husk_spec::config::Device>, Error> {
    if a.privileged {
        return Ok(super::devices::host_devices());
    }
    a.device
        .iter()
        .map(|d| super::devices::device(d).map(|d| d.0))
        .collect()
}

/// What --security-opt asks for.
struct SecurityOpts {
    nnp: bool,
    /// None: docker's default profile (built once the capabilities are known); Some(None):
    /// unconfined.
    seccomp: Option<Option<serde_json::Value>>,
    lsm: super::lsm::Opts,
}

/// --security-opt: no-new-privileges, seccomp and the LSM options.
fn security_opts(a: &RunArgs) -> Result<SecurityOpts, Error> {
    let mut nnp = false;
    let mut seccomp: Option<Option<serde_json::Value>> = None;
    let mut lsm = super::lsm::Opts::default();
    for o in &a.security_opt {
        match o.as_str() {
            o if super::lsm::is_lsm(o) => lsm.take(o)?,
            "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => nnp = true,
            "no-new-privileges=false" | "no-new-privileges:false" => nnp = false,
            "seccomp=unconfined" | "seccomp:unconfined" => seccomp = Some(None),
            o if o.starts_with("seccomp=") || o.starts_with("seccomp:") => {
                let file = &o["seccomp=".len()..];
                let text = std::fs::read_to_string(file)
                    .map_err(Error::io("read seccomp profile", file))?;
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| bad(format!("--security-opt {o}: {e}")))?;
                seccomp = Some(Some(v));
            }
            o => return Err(bad(format!("--security-opt {o}: unknown option"))),
        }
    }
    Ok(SecurityOpts { nnp, seccomp, lsm })
}

/// Whether `--network` names slirp4netns, with or without its options.
pub fn slirp4netns(network: &str) -> bool {
    network == "slirp4netns" || network.starts_with("slirp4netns:")
}

/// pasta and slirp4netns: an ordinary user's networks (no bridge, no rules), run by husk-net's
/// helpers.
pub fn user_mode(network: &str) -> bool {
    network == "pasta" || slirp4netns(network)
}

/// Which namespaces the container gets of its own (false: the host's), from --network, --pid,
/// --ipc, --uts, --cgroupns and --userns.
struct OwnNamespaces {
    net: bool,
    pid: bool,
    ipc: bool,
    uts: bool,
    cgroup: bool,
    /// --userns keep-id: the user's own ids are mapped into the container.
    keep_id: bool,
}

/// --network, --pid, --ipc, --uts, --cgroupns and --userns, checked against each other and
/// against the flags that need a network of the container's own.
fn own_namespaces(a: &RunArgs, host: &Host) -> Result<OwnNamespaces, Error> {
    let network = a.network.as_deref().unwrap_or("none");
    let own = |flag: &str, v: &Option<String>, private: &[&str]| -> Result<bool, Error> {
        match v.as_deref() {
            None => Ok(true),
            Some("host") => Ok(false),
            Some(p) if private.contains(&p) => Ok(true),
            Some(p) => Err(bad(format!(
                "--{flag} {p}: only host{} is supported",
                private
                    .iter()
                    .map(|p| format!(" and {p}"))
                    .collect::<String>()
            ))),
        }
    };
    // A named network is checked when its address is leased; container:NAME's namespace is
    // joined by path (the front end fills it in once it has found that container).
    let own_net = match network {
        n if user_mode(n) && host.rootless.is_none() => {
            return Err(bad(format!(
                "--network {n}: for an ordinary user (husk runs it in the container's user namespace, which a root container lacks); as root use --network bridge"
            )));
        }
        n if user_mode(n) => true,
        n if host.rootless.is_some()
            && n != "none"
            && n != "host"
            && !n.starts_with("container:") =>
        {
            return Err(bad(format!(
                "--network {n}: needs root (a veth on a husk bridge and nftables rules); as an ordinary user use --network pasta (apt-get install passt), slirp4netns, none or host"
            )));
        }
        "host" => false,
        n if n.starts_with("container:") && n.len() > "container:".len() => true,
        "none" | "bridge" => true,
        n if !n.contains(':') && !n.is_empty() => true,
        n => {
            return Err(bad(format!(
                "--network {n}: want none, bridge, host, container:NAME or a network's name"
            )));
        }
    };
    let attached = !matches!(network, "none" | "host")
        && !user_mode(network)
        && !network.starts_with("container:");
    for (set, flag) in [
        (!a.publish.is_empty() && !user_mode(network), "-p/--publish"),
        (a.publish_all, "-P/--publish-all"),
        (!a.network_alias.is_empty(), "--network-alias"),
        (a.ip.is_some(), "--ip"),
        (a.mac_address.is_some(), "--mac-address"),
    ] {
        if set && !attached {
            return Err(bad(format!(
                "{flag} needs --network bridge or a named network{} (this one is {network})",
                if flag.starts_with("-p") {
                    ", or pasta or slirp4netns as an ordinary user"
                } else {
                    ""
                }
            )));
        }
    }
    if network.starts_with("container:") && a.hostname.is_some() {
        return Err(bad(
            "-h/--hostname with --network container:NAME: the network namespace's host is that container",
        ));
    }
    let own_pid = own("pid", &a.pid, &[])?;
    let own_ipc = own("ipc", &a.ipc, &["private", "shareable"])?;
    let own_uts = own("uts", &a.uts, &[])?;
    let own_cgroup = own("cgroupns", &a.cgroupns, &["private"])?;
    let keep_id = match (a.userns.as_deref().unwrap_or(""), &host.rootless) {
        ("" | "host", None) => false,
        ("", Some(_)) => false,
        ("keep-id", Some(_)) => true,
        ("host", Some(r)) => {
            return Err(bad(format!(
                "--userns host: husk runs as uid {}, which can make namespaces only inside a user namespace of its own; drop --userns host (the container's root is uid {} on the host)",
                r.uid, r.uid
            )));
        }
        ("keep-id", None) => {
            return Err(bad(
                "--userns keep-id: only when an ordinary user runs husk (rootless), as podman's",
            ));
        }
        (u, _) => {
            return Err(bad(format!(
                "--userns {u}: only host, and keep-id when rootless, are supported"
            )));
        }
    };
    if !own_uts && a.hostname.is_some() {
        return Err(bad("-h/--hostname cannot be set with --uts host"));
    }
    Ok(OwnNamespaces {
        net: own_net,
        pid: own_pid,
        ipc: own_ipc,
        uts: own_uts,
        cgroup: own_cgroup,
        keep_id,
    })
}

/// The container's mounts but for docker's /etc files and a scaffold: runc's defaults adjusted
/// to the flags, tmpfs where the root is read-only, then --volume, --tmpfs and --mount.
fn container_mounts(
    a: &RunArgs,
    host: &Host,
    embedded: bool,
    ns: &OwnNamespaces,
    rootfs: &Path,
) -> Result<Vec<Mount>, Error> {
    let tty_group_mapped = host.rootless.as_ref().is_none_or(|r| {
        r.gid_mappings(ns.keep_id)
            .iter()
            .any(|m| (m.container_id..m.container_id.saturating_add(m.size)).contains(&5))
    });
    // runc's default /proc, /dev, /sys mounts, with docker's proc options; --privileged gets a
    // writable /sys and cgroupfs, as docker's does.
    let mut mounts = husk_spec::defaults::default_mounts();
    for m in &mut mounts {
        if m.destination == "/proc" {
            m.options = ["nosuid", "noexec", "nodev"].map(String::from).to_vec();
        }
        if m.destination == "/dev/shm"
            && let Some(sz) = &a.shm_size
        {
            let bytes = super::size::parse(sz)
                .ok()
                .filter(|b| *b > 0)
                .ok_or_else(|| bad(format!("--shm-size {sz}: want a positive size like 64m")))?;
            m.options.retain(|o| !o.starts_with("size="));
            m.options.push(format!("size={bytes}"));
        }
        // A new sysfs shows the network namespace it is mounted in: in the host's, on the
        // embedded default (whose /sys is the host's sysfs mount), a second one with other flags
        // is EBUSY; runc binds the host's there too. Not recursively: a fresh sysfs has no
        // submounts either, and the host's cgroup2 mount under it would make the container's
        // own cgroup mount EBUSY.
        // In a user namespace sysfs can be mounted only for a network namespace it owns, and a
        // bind must take the host's submounts along (they are locked to it: EINVAL), as runc's
        // rootless spec does.
        if m.destination == "/sys" && !ns.net && (embedded || host.rootless.is_some()) {
            let bind = if host.rootless.is_some() {
                "rbind"
            } else {
                "bind"
            };
            *m = mount(
                "/sys",
                "bind",
                "/sys",
                &[bind, "nosuid", "noexec", "nodev", "ro"],
            );
        }
        if a.privileged {
            m.options.retain(|o| o != "ro" && o != "rro");
        }
        // devpts refuses a gid the user namespace does not map (EINVAL): without subgid
        // ranges the ptys keep the user's own group, as runc's rootless spec has them.
        if m.kind.as_deref() == Some("devpts") && !tty_group_mapped {
            m.options.retain(|o| o != "gid=5");
        }
    }
    // Writable /tmp and /run where the root is not: always on the embedded default, and with
    // --read-only as podman's --read-only-tmpfs (its default) gives them.
    if embedded || a.read_only {
        mounts.push(mount(
            "/tmp",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "mode=1777"],
        ));
        mounts.push(mount(
            "/run",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "mode=755"],
        ));
    }
    if !embedded && a.read_only && dir_in_root(rootfs, "var/tmp") {
        mounts.push(mount(
            "/var/tmp",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "mode=1777"],
        ));
    }
    // The caller's directory under /tmp or /run would be hidden by those fresh tmpfs: bind it
    // there, read-only like the rest of the host's root.
    let caller_dir = host
        .cwd
        .as_ref()
        .filter(|c| embedded && a.workdir.is_none() && c.is_dir())
        .filter(|c| c.starts_with("/tmp") || c.starts_with("/run"))
        .filter(|c| c.components().count() > 2);
    if let Some(c) = caller_dir {
        let c = c.to_string_lossy();
        mounts.push(mount(&c, "bind", &c, &["rbind", "rro"]));
    }
    mounts.extend(a.image_volumes.iter().cloned());
    mounts.extend(mounts::user_mounts(a)?);
    Ok(mounts)
}

/// docker's /etc/hosts, /etc/hostname and /etc/resolv.conf, written by launch into the state
/// dir (the files returned) and bound from there (added to `mounts`); the embedded default
/// keeps the host's own.
fn etc_binds(
    a: &RunArgs,
    host: &Host,
    embedded: bool,
    own_net: bool,
    hostname: &str,
    mounts: &mut Vec<Mount>,
) -> Result<Vec<(String, StateEntry)>, Error> {
    let mut etc_files = vec![];
    let extra_hosts = a
        .add_host
        .iter()
        .map(|h| mounts::add_host(h))
        .collect::<Result<Vec<_>, _>>()?;
    // slirp4netns answers DNS itself on 10.0.2.3 (relaying to the host's resolvers, loopback
    // ones included), which podman names as the container's server.
    let slirp_dns = ["10.0.2.3".to_string()];
    let servers = match a.network.as_deref() {
        Some(n) if a.dns.is_empty() && !embedded && slirp4netns(n) => &slirp_dns[..],
        _ => &a.dns[..],
    };
    let dns = mounts::Dns {
        servers,
        search: &a.dns_search,
        options: &a.dns_option,
    };
    if embedded && !(extra_hosts.is_empty() && dns.is_empty()) {
        return Err(bad(
            "--add-host and --dns* need --rootfs: the embedded default shows the host's own /etc/hosts and /etc/resolv.conf",
        ));
    }
    if !embedded {
        let resolv = dns.resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            own_net,
        )?;
        for (name, text) in mounts::etc_files(hostname, &extra_hosts, resolv) {
            let src = host.state_dir.join(name);
            mounts.push(mount(
                &format!("/etc/{name}"),
                "bind",
                &src.to_string_lossy(),
                &["rbind", "nosuid", "nodev", "noexec"],
            ));
            etc_files.push((name.to_string(), StateEntry::File(text.into_bytes())));
        }
    }
    Ok(etc_files)
}

/// The root path: on the embedded default, mount points and a working directory the host lacks
/// need a scaffold root (see `scaffold`), whose entries and binds are added here.
fn scaffold_root(
    a: &RunArgs,
    host: &Host,
    embedded: bool,
    rootfs: &Path,
    mounts: &mut Vec<Mount>,
    etc_files: &mut Vec<(String, StateEntry)>,
) -> PathBuf {
    let mut root_path = rootfs.to_path_buf();
    if embedded {
        let mut wanted: Vec<&str> = mounts.iter().map(|m| m.destination.as_str()).collect();
        wanted.extend(a.workdir.as_deref());
        let missing = super::scaffold::missing(&wanted);
        if !missing.is_empty() {
            let (entries, binds) = super::scaffold::build(&missing);
            etc_files.extend(entries);
            mounts.splice(0..0, binds);
            root_path = host.state_dir.join(super::scaffold::DIR);
        }
    }
    root_path
}

/// The namespaces the container makes: a mount namespace always, the others it owns, and a
/// user namespace when rootless.
fn namespace_list(ns: &OwnNamespaces, host: &Host) -> Vec<Namespace> {
    let mut namespaces = vec!["mount"];
    for (own, kind) in [
        (ns.pid, "pid"),
        (ns.uts, "uts"),
        (ns.ipc, "ipc"),
        (ns.cgroup, "cgroup"),
        (ns.net, "network"),
    ] {
        if own {
            namespaces.push(kind);
        }
    }
    if host.rootless.is_some() {
        namespaces.push("user");
    }
    namespaces
        .into_iter()
        .map(|k| Namespace {
            kind: k.to_string(),
            path: None,
        })
        .collect()
}

/// --sysctl NAME=VALUE → `linux.sysctl`.
fn sysctls(a: &RunArgs) -> Result<std::collections::BTreeMap<String, String>, Error> {
    let mut sysctl = std::collections::BTreeMap::new();
    for s in &a.sysctl {
        let (k, v) = s
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| bad(format!("--sysctl {s}: want NAME=VALUE")))?;
        sysctl.insert(k.to_string(), v.to_string());
    }
    Ok(sysctl)
}

/// -w, else where the process starts by default.
fn working_dir(a: &RunArgs, host: &Host, embedded: bool) -> Result<String, Error> {
    Ok(match &a.workdir {
        Some(w) if w.starts_with('/') => w.clone(),
        Some(w) => {
            return Err(bad(format!(
                "-w {w}: the working directory must be absolute"
            )));
        }
        // On the host's own root, start where the caller is, when the container can see it.
        None if embedded => host
            .cwd
            .as_ref()
            .filter(|c| c.is_dir())
            .map_or("/".into(), |c| c.to_string_lossy().into_owned()),
        None => "/".into(),
    })
}

/// The process's arguments: --entrypoint and the command, else the shell; behind husk's reaper
/// with --init.
fn process_args(a: &RunArgs, host: &Host, embedded: bool) -> Vec<String> {
    // Without an image, --entrypoint is the program and the command its arguments; "" is none.
    let entry: Vec<String> = a
        .entrypoint
        .iter()
        .filter(|e| !e.is_empty())
        .cloned()
        .collect();
    let args = if !entry.is_empty() {
        [entry, a.args.clone()].concat()
    } else if a.args.is_empty() {
        vec![
            host.shell
                .clone()
                .filter(|_| embedded)
                .unwrap_or_else(|| "/bin/sh".into()),
        ]
    } else {
        a.args.clone()
    };
    // --init: husk's reaper (copied to /dev/init by init) runs the command as its child.
    if a.init {
        [vec!["/dev/init".to_string(), "--".to_string()], args].concat()
    } else {
        args
    }
}

/// What `build` resolved for the process before writing it: from the flags, the image and the
/// container's root.
struct ProcessParts<'b> {
    hostname: &'b str,
    user: super::user::Resolved,
    args: Vec<String>,
    cwd: String,
    caps: Vec<String>,
    nnp: bool,
}

/// The spec's `process`: the resolved parts, with the environment, rlimits and OOM score the
/// flags give.
fn process(a: &RunArgs, host: &Host, parts: ProcessParts<'_>) -> Result<Process, Error> {
    let ProcessParts {
        hostname,
        user,
        args,
        cwd,
        caps,
        nnp,
    } = parts;
    Ok(Process {
        terminal: a.tty,
        env: env(a, host, hostname, &user.home)?,
        user: User {
            uid: user.uid,
            gid: user.gid,
            umask: None,
            additional_gids: user.additional_gids,
        },
        args,
        cwd,
        capabilities: Some(Capabilities::granting(caps)),
        rlimits: a
            .ulimit
            .iter()
            .map(|u| ulimit(u))
            .collect::<Result<_, _>>()?,
        no_new_privileges: nnp,
        // Set by init on the pty before the program runs: the copy loop sets it too, but
        // only once the program may already have asked.
        console_size: host
            .term_size
            .filter(|_| a.tty)
            .map(|(height, width)| husk_spec::config::ConsoleSize { height, width }),
        oom_score_adj: match a.oom_score_adj {
            Some(n) if !(-1000..=1000).contains(&n) => {
                return Err(bad(format!("--oom-score-adj {n}: must be -1000 to 1000")));
            }
            n => n,
        },
        ..Default::default()
    })
}

/// Whether the root's `rel` is a directory, resolved inside the root: the image is hostile, and a
/// `var/tmp` linking to `/proc` must be judged there, not on the host.
fn dir_in_root(root: &Path, rel: &str) -> bool {
    let Ok(dir) = husk_sys::fs::openat(None, root, libc::O_PATH | libc::O_DIRECTORY, 0) else {
        return false;
    };
    husk_sys::fs::openat2(
        std::os::fd::AsFd::as_fd(&dir),
        Path::new(rel),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        husk_sys::fs::RESOLVE_IN_ROOT | husk_sys::fs::RESOLVE_NO_MAGICLINKS,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use husk_spec::names::NsKind;

    /// --read-only's /var/tmp tmpfs follows the image's var/tmp inside the root: a symlink to
    /// `/proc` (a directory on the host, absent in this root) gets none.
    #[test]
    fn read_only_var_tmp_resolved_in_root() {
        let root = std::env::temp_dir().join(format!("husk-ro-vartmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("var")).unwrap();
        std::os::unix::fs::symlink("/proc", root.join("var/tmp")).unwrap();
        let ro = |root: &Path| {
            args(|a| {
                a.rootfs = Some(root.into());
                a.read_only = true;
                a.args = vec!["true".into()];
            })
        };
        let has_var_tmp = |a: &RunArgs| {
            let Built { spec, .. } = build(a, "x", &host()).unwrap();
            spec.mounts.iter().any(|m| m.destination == "/var/tmp")
        };
        let linked = has_var_tmp(&ro(&root));
        std::fs::create_dir_all(root.join("proc")).unwrap();
        let linked_to_own = has_var_tmp(&ro(&root));
        std::fs::remove_dir_all(&root).unwrap();
        assert!(!linked, "var/tmp -> /proc judged on the host");
        assert!(linked_to_own, "var/tmp -> /proc with the root's own /proc");
    }

    fn host() -> Host {
        Host {
            swap_limit: true,
            state_dir: "/run/husk/x".into(),
            term_size: None,
            cpus_online: Some("0-1".into()),
            cwd: Some("/".into()),
            rootless: None,
            shell: Some("/bin/bash".into()),
            env: vec![
                ("FOO".into(), "bar".into()),
                ("TERM".into(), "xterm".into()),
            ],
        }
    }

    fn args(f: impl FnOnce(&mut RunArgs)) -> RunArgs {
        let mut a = RunArgs::default();
        f(&mut a);
        a
    }

    #[test]
    fn embedded_default() {
        let Built { spec, plan, .. } = build(&args(|_| {}), "abc", &host()).unwrap();
        assert_eq!(plan.rootfs, PathBuf::from("/"));
        assert!(plan.rootfs_readonly_recursive && plan.loopback_up);
        for k in [
            NsKind::Pid,
            NsKind::Mount,
            NsKind::Uts,
            NsKind::Ipc,
            NsKind::Net,
            NsKind::Cgroup,
        ] {
            assert!(plan.creates(k), "{k:?}");
        }
        assert_eq!(plan.process.args, vec!["/bin/bash"]);
        assert_eq!(plan.process.cwd, "/");
        assert!(
            spec.mounts.iter().any(|m| m.destination == "/tmp")
                && spec.mounts.iter().any(|m| m.destination == "/run")
        );
        assert_eq!(plan.process.caps.unwrap().bounding.count_ones(), 14);
        assert!(!plan.masked_paths.is_empty());
        assert!(plan.process.env.contains(&"HOSTNAME=abc".to_string()));
    }

    #[test]
    fn systemd_as_init_gets_what_it_boots_with() {
        let root = std::env::temp_dir().join(format!("husk-sdroot-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let a = args(|a| {
            a.rootfs = Some(root.clone());
            a.args = vec!["/sbin/init".into()];
        });
        let Built { spec, plan, .. } = build(&a, "sd", &host()).unwrap();
        let _ = std::fs::remove_dir(&root);
        let tmpfs = |d: &str| {
            spec.mounts
                .iter()
                .any(|m| m.destination == d && m.kind.as_deref() == Some("tmpfs"))
        };
        assert!(tmpfs("/run") && tmpfs("/run/lock") && tmpfs("/tmp"));
        let cg = spec
            .mounts
            .iter()
            .find(|m| m.destination == "/sys/fs/cgroup")
            .unwrap();
        assert!(!cg.options.iter().any(|o| o == "ro"), "{:?}", cg.options);
        assert!(plan.process.env.contains(&"container=husk".to_string()));
        assert_eq!(spec.annotations[crate::STOP_SIGNAL], "37");
        // --systemd false, or another program: none of it.
        for f in [Some("false"), None] {
            let a = args(|a| {
                a.rootfs = Some("/".into());
                a.systemd = f.map(String::from);
                a.args = vec![if f.is_some() { "/sbin/init" } else { "sh" }.into()];
            });
            let Built { spec, plan, .. } = build(&a, "sd", &host()).unwrap();
            assert!(!plan.process.env.contains(&"container=husk".to_string()));
            assert!(!spec.annotations.contains_key(crate::STOP_SIGNAL));
            assert!(!spec.mounts.iter().any(|m| m.destination == "/run/lock"));
        }
    }

    /// An image's anonymous volume is mounted before the caller's mounts, so a -v under it
    /// lands inside the volume rather than under it.
    #[test]
    fn image_volumes_go_before_the_callers_mounts() {
        let a = args(|a| {
            a.rootfs = Some("/".into());
            a.volume = vec!["/etc:/data/etc:ro".into()];
            a.tmpfs = vec!["/data/t".into()];
            a.image_volumes =
                vec![crate::mounts::anonymous_volume("/data", Path::new("/var/v/1")).unwrap()];
        });
        let Built { spec, .. } = build(&a, "x", &host()).unwrap();
        let at = |d: &str| spec.mounts.iter().position(|m| m.destination == d).unwrap();
        assert!(at("/data") < at("/data/etc") && at("/data/etc") < at("/data/t"));
        let v = &spec.mounts[at("/data")];
        assert_eq!(
            (v.kind.as_deref(), v.source.as_deref(), &v.options[..]),
            (Some("bind"), Some("/var/v/1"), &["rbind".to_string()][..])
        );
        assert!(crate::mounts::anonymous_volume("data", Path::new("/v")).is_err());
        assert!(crate::mounts::anonymous_volume("/", Path::new("/v")).is_err());
    }

    #[test]
    fn options() {
        let a = args(|a| {
            a.env = vec!["A=1".into(), "FOO".into(), "MISSING".into(), "TE*".into()];
            a.cap_drop = vec!["ALL".into()];
            a.cap_add = vec!["net_admin".into()];
            a.ulimit = vec!["nofile=100:200".into()];
            a.tmpfs = vec!["/scratch:size=1m".into()];
            a.volume = vec!["/etc:/hostetc:ro".into()];
            a.network = Some("host".into());
            a.workdir = Some("/w".into());
            a.hostname = Some("h1".into());
            a.security_opt = vec!["no-new-privileges".into()];
            a.args = vec!["echo".into(), "hi".into()];
        });
        let Built { spec, plan, .. } = build(&a, "x", &host()).unwrap();
        let env = &plan.process.env;
        assert!(
            env.contains(&"A=1".into())
                && env.contains(&"FOO=bar".into())
                && env.contains(&"TERM=xterm".into())
                && !env.iter().any(|e| e.starts_with("MISSING"))
        );
        assert_eq!(plan.process.caps.unwrap().effective, 1 << 12);
        assert_eq!(plan.process.rlimits[0].soft, 100);
        assert!(!plan.has(NsKind::Net));
        assert!(!plan.loopback_up);
        assert_eq!(plan.process.cwd, "/w");
        assert_eq!(plan.hostname.as_deref(), Some("h1"));
        assert!(plan.process.no_new_privileges);
        assert_eq!(plan.process.args, vec!["echo", "hi"]);
        let vol = spec
            .mounts
            .iter()
            .find(|m| m.destination == "/hostetc")
            .unwrap();
        assert_eq!(vol.options, vec!["rbind", "ro"]);
        assert!(
            spec.mounts
                .iter()
                .any(|m| m.destination == "/scratch" && m.options.contains(&"size=1m".to_string()))
        );
    }

    #[test]
    fn bad_input_is_refused() {
        for f in [
            (|a: &mut RunArgs| a.volume = vec!["rel:/x".into()]) as fn(&mut RunArgs),
            |a| a.ulimit = vec!["bogus=1".into()],
            |a| a.cap_add = vec!["CAP_NOPE".into()],
            |a| a.network = Some("a:b".into()),
            |a| {
                a.network = Some("container:other".into());
                a.hostname = Some("h".into());
            },
            |a| a.publish = vec!["80".into()],
            |a| {
                a.network = Some("host".into());
                a.ip = Some("10.89.0.9".into());
            },
            |a| a.memory = Some("12x".into()),
            |a| a.memory = Some("1m".into()),
            |a| a.memory_swap = Some("1g".into()),
            |a| a.cpus = Some("0".into()),
            |a| a.cpus = Some("0.001".into()),
            |a| a.cpus = Some("3".into()),
            |a| a.cpuset_cpus = Some("0,5".into()),
            |a| a.cpuset_cpus = Some("x".into()),
            |a| a.security_opt = vec!["seccomp=/nonexistent/p.json".into()],
            |a| a.workdir = Some("rel".into()),
        ] {
            assert!(build(&args(f), "x", &host()).is_err());
        }
    }

    #[test]
    fn resource_flags() {
        let a = args(|a| {
            a.memory = Some("64m".into());
            a.memory_swap = Some("128m".into());
            a.cpus = Some("1.5".into());
            a.cpu_shares = Some(512);
            a.cpuset_cpus = Some("0".into());
            a.pids_limit = Some(0);
        });
        let Built { spec, .. } = build(&a, "x", &host()).unwrap();
        let r = spec.linux.unwrap().resources.unwrap();
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["memory"]["swap"], 128 << 20);
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["cpu"]["cpus"], "0");
        assert_eq!(r["pids"]["limit"], -1);
        let Built { spec, .. } = build(&args(|_| {}), "x", &host()).unwrap();
        assert!(spec.linux.unwrap().resources.is_none());
    }

    #[test]
    fn privileged_has_every_capability_and_no_masks() {
        let Built { plan, .. } = build(&args(|a| a.privileged = true), "x", &host()).unwrap();
        let held = husk_sys::security::capget().unwrap().1;
        assert_eq!(
            plan.process.caps.unwrap().bounding,
            held & ((1 << husk_spec::names::CAPABILITIES.len()) - 1)
        );
        assert!(plan.masked_paths.is_empty() && plan.readonly_paths.is_empty());
    }

    #[test]
    fn generated_ids_are_valid() {
        let id = generated_id();
        assert_eq!(id.len(), 12);
        husk_spec::validate_id(&id).unwrap();
    }
}
