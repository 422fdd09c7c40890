//! Lowering a validated config to a `Plan`: typed, ordered operations the runtime executes
//! without re-reading the config. Everything here is pure, so every config error is found before
//! any side effect and names its field.

use crate::config::{Hook, Hooks, IdMapping, Process, Spec};
use crate::mountopt::{self, MountOptions, ms};
use crate::names::{self, NsKind};
use crate::resources::Resources;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

pub use crate::error::ConfigError;
use crate::error::err;

/// The largest uid or gid husk takes, runc's (and docker's) limit. The kernel takes up to
/// 4294967294, but reads 4294967295 as "leave unchanged": `setresuid(4294967295)` kept init
/// as root.
pub const MAX_ID: u32 = 2_147_483_647;

/// Refuses an id outside 0..=MAX_ID, naming `field` and the value.
pub fn check_id(field: &str, id: u32) -> Result<u32, ConfigError> {
    if id > MAX_ID {
        return Err(err(
            field,
            format!("{id} is outside 0..={MAX_ID}, the ids runc and husk take"),
        ));
    }
    Ok(id)
}

/// Checks user namespace mappings as the kernel will: a size of at least 1, and neither range
/// reaching 4294967295 (an invalid id), so the error names the field before anything is made.
fn id_maps(field: &str, maps: &[IdMapping]) -> Result<Vec<IdMapping>, ConfigError> {
    for (i, m) in maps.iter().enumerate() {
        let end = |first: u32| u64::from(first) + u64::from(m.size);
        if m.size == 0
            || end(m.container_id) > u64::from(u32::MAX)
            || end(m.host_id) > u64::from(u32::MAX)
        {
            return Err(err(
                format!("{field}[{i}]"),
                format!(
                    "containerID {} hostID {} size {}: the size must be at least 1 and both ranges end below 4294967295",
                    m.container_id, m.host_id, m.size
                ),
            ));
        }
    }
    Ok(maps.to_vec())
}

#[derive(Debug, Clone, PartialEq)]
pub struct NsOp {
    pub kind: NsKind,
    /// `None`: create a new one; `Some`: join this one.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MountOp {
    /// Destination inside the rootfs, relative, normalised (no `..`, no leading `/`).
    pub dest: PathBuf,
    /// As written in the config (for messages).
    pub dest_display: String,
    pub source: Option<PathBuf>,
    pub fstype: String,
    pub opts: MountOptions,
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevKind {
    Char,
    Block,
    Fifo,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceOp {
    /// Path inside the rootfs, relative (e.g. `dev/null`).
    pub path: PathBuf,
    pub kind: DevKind,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    /// What will be raised: the asked ambient set within inheritable and permitted.
    pub ambient: u64,
    /// Asked as ambient but missing from inheritable or permitted, where the kernel refuses
    /// to raise them (EPERM). runc skips them with a warning, and `runc spec` writes such a
    /// config (ambient = permitted, no inheritable): husk skips them too and logs it.
    pub ambient_ignored: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RlimitOp {
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerOp {
    pub policy: u32,
    pub nice: i32,
    pub priority: u32,
    pub flags: u64,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemPolicyOp {
    pub mode: i32,
    pub flags: i32,
    /// Node numbers.
    pub nodes: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Absolute path inside the container.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub terminal: bool,
    /// (height, width) for TIOCSWINSZ on the pty.
    pub console_size: Option<(u16, u16)>,
    pub rlimits: Vec<RlimitOp>,
    /// `None`: leave the capability sets as they are (root keeps everything).
    pub caps: Option<CapSets>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub scheduler: Option<SchedulerOp>,
    /// (class, level) for ioprio_set.
    pub io_priority: Option<(u32, u32)>,
    /// CPUs for the container process; `None` means all CPUs (the runtime's mask is reset).
    pub cpu_affinity_initial: Option<Vec<u32>>,
    pub cpu_affinity_final: Option<Vec<u32>>,
    pub apparmor_profile: Option<String>,
    pub selinux_label: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub rootfs: PathBuf,
    pub rootfs_readonly: bool,
    /// Make the whole root tree read-only, submounts included, before the config's mounts
    /// (the front end's host-root default; not expressible in config.json).
    pub rootfs_readonly_recursive: bool,
    /// Bring `lo` up in a new network namespace (the front end; runc leaves that to CNI).
    pub loopback_up: bool,
    /// Copy husk itself to /dev/init in the container's own /dev (the front end's `--init`).
    pub install_init: bool,
    /// The container's init gets SIGKILL when the husk that started it dies (the front end's
    /// foreground run: a container must not outlive its `husk run`).
    pub die_with_parent: bool,
    /// MS_* propagation applied to / before the mounts (rslave unless asked otherwise).
    pub rootfs_propagation: u64,
    pub namespaces: Vec<NsOp>,
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
    pub mounts: Vec<MountOp>,
    /// Build the default /dev (nodes, links) because /dev is not bound from the host.
    pub setup_dev: bool,
    pub devices: Vec<DeviceOp>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub sysctl: Vec<(String, String)>,
    pub time_offsets: Vec<(String, i64, u32)>,
    pub personality: Option<u64>,
    pub mem_policy: Option<MemPolicyOp>,
    /// `linux.seccomp`, validated; loaded by init just before execve (see `husk_runtime::seccomp`).
    pub seccomp: Option<crate::seccomp::SeccompPlan>,
    pub process: ProcessPlan,
    pub hooks: Hooks,
    pub cgroups_path: Option<String>,
    /// `linux.resources`, typed; whether this host's cgroup layout can apply them is checked by
    /// the runtime before it makes anything.
    pub resources: Option<Resources>,
    /// `linux.mountLabel`: already in the data of the mounts that take it (see `lsm`); kept for
    /// the tmpfs the runtime makes itself (masked directories).
    pub mount_label: Option<String>,
    pub record: Record,
}

/// What the state dir keeps of the config as written, for later verbs: `exec` starts from the
/// container's process and filter (lowered again with its own changes), `state` and `list` show
/// the annotations. Nothing here is executed by `create`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub annotations: BTreeMap<String, String>,
    pub process: Option<Process>,
    pub seccomp: Option<serde_json::Value>,
}

impl Plan {
    pub fn creates(&self, kind: NsKind) -> bool {
        self.namespaces
            .iter()
            .any(|n| n.kind == kind && n.path.is_none())
    }

    pub fn has(&self, kind: NsKind) -> bool {
        self.namespaces.iter().any(|n| n.kind == kind)
    }

    /// CLONE_NEW* flags for the namespaces the plan creates.
    pub fn clone_flags(&self) -> u64 {
        self.namespaces
            .iter()
            .filter(|n| n.path.is_none())
            .map(|n| n.kind.clone_flag())
            .fold(0, |a, b| a | b)
    }
}

/// Cleans a path for use inside the rootfs: relative, no `.`/`..` escaping above the root.
/// This is lexical only; the runtime still resolves it with RESOLVE_IN_ROOT, which is what
/// makes symlinks safe.
pub fn clean_in_root(p: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn cap_mask(field: &str, names: &[String]) -> Result<u64, ConfigError> {
    let mut mask = 0u64;
    for (i, n) in names.iter().enumerate() {
        let bit = names::capability(n).ok_or_else(|| {
            err(
                format!("{field}[{i}]"),
                format!("unknown capability \"{n}\""),
            )
        })?;
        mask |= 1 << bit;
    }
    Ok(mask)
}

/// Parses a cpuset list such as `0-3,7` (also used for memory policy nodes).
pub fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if a > b || b - a > 65536 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(part.parse().ok()?);
            }
        }
    }
    Some(out.into_iter().collect())
}

/// Sysctls a container may set: only those the kernel namespaces (runc's rule), and only when the
/// container has a namespace of that kind, made or joined by path (a Kubernetes pod's sysctls go
/// into every container, which joins the pause's network and ipc namespaces). A joined network
/// namespace that is the runtime's own is refused at create, where it can be seen.
fn check_sysctl(key: &str, has: impl Fn(NsKind) -> bool) -> Result<(), String> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return if has(NsKind::Ipc) {
            Ok(())
        } else {
            Err("needs an ipc namespace".into())
        };
    }
    if key.starts_with("net.") {
        return if has(NsKind::Net) {
            Ok(())
        } else {
            Err("needs a network namespace".into())
        };
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return if has(NsKind::Uts) {
            Ok(())
        } else {
            Err("needs a uts namespace".into())
        };
    }
    Err("not namespaced: it would change the host".into())
}

fn lower_scheduler(s: &crate::config::Scheduler) -> Result<SchedulerOp, ConfigError> {
    let policy = match s.policy.as_str() {
        "SCHED_OTHER" => 0,
        "SCHED_FIFO" => 1,
        "SCHED_RR" => 2,
        "SCHED_BATCH" => 3,
        "SCHED_ISO" => 4,
        "SCHED_IDLE" => 5,
        "SCHED_DEADLINE" => 6,
        p => {
            return Err(err(
                "process.scheduler.policy",
                format!("unknown policy \"{p}\""),
            ));
        }
    };
    let mut flags = 0u64;
    for (i, f) in s.flags.iter().enumerate() {
        flags |= match f.as_str() {
            "SCHED_FLAG_RESET_ON_FORK" => 0x01,
            "SCHED_FLAG_RECLAIM" => 0x02,
            "SCHED_FLAG_DL_OVERRUN" => 0x04,
            "SCHED_FLAG_KEEP_POLICY" => 0x08,
            "SCHED_FLAG_KEEP_PARAMS" => 0x10,
            "SCHED_FLAG_UTIL_CLAMP_MIN" => 0x20,
            "SCHED_FLAG_UTIL_CLAMP_MAX" => 0x40,
            _ => {
                return Err(err(
                    format!("process.scheduler.flags[{i}]"),
                    format!("unknown flag \"{f}\""),
                ));
            }
        };
    }
    if !(-20..=19).contains(&s.nice) {
        return Err(err("process.scheduler.nice", "must be within -20..19"));
    }
    Ok(SchedulerOp {
        policy,
        nice: s.nice,
        priority: s.priority.max(0) as u32,
        flags,
        runtime: s.runtime,
        deadline: s.deadline,
        period: s.period,
    })
}

fn lower_mem_policy(m: &crate::config::MemoryPolicy) -> Result<MemPolicyOp, ConfigError> {
    let mode = match m.mode.as_str() {
        "MPOL_DEFAULT" => 0,
        "MPOL_PREFERRED" => 1,
        "MPOL_BIND" => 2,
        "MPOL_INTERLEAVE" => 3,
        "MPOL_LOCAL" => 4,
        "MPOL_PREFERRED_MANY" => 5,
        "MPOL_WEIGHTED_INTERLEAVE" => 6,
        other => {
            return Err(err(
                "linux.memoryPolicy.mode",
                format!("unknown mode \"{other}\""),
            ));
        }
    };
    let mut flags = 0;
    for (i, f) in m.flags.iter().enumerate() {
        flags |= match f.as_str() {
            "MPOL_F_NUMA_BALANCING" => 1 << 13,
            "MPOL_F_RELATIVE_NODES" => 1 << 14,
            "MPOL_F_STATIC_NODES" => 1 << 15,
            _ => {
                return Err(err(
                    format!("linux.memoryPolicy.flags[{i}]"),
                    format!("unknown flag \"{f}\""),
                ));
            }
        };
    }
    let nodes = parse_cpu_list(&m.nodes).ok_or_else(|| {
        err(
            "linux.memoryPolicy.nodes",
            format!("bad node list \"{}\"", m.nodes),
        )
    })?;
    if nodes.is_empty() && !matches!(mode, 0 | 4) {
        return Err(err("linux.memoryPolicy.nodes", "this mode needs nodes"));
    }
    Ok(MemPolicyOp { mode, flags, nodes })
}

fn lower_personality(p: &crate::config::Personality) -> Result<u64, ConfigError> {
    let mut v = match p.domain.as_str() {
        "LINUX" => 0x0000,
        "LINUX32" => 0x0008,
        d => {
            return Err(err(
                "linux.personality.domain",
                format!("unknown domain \"{d}\""),
            ));
        }
    };
    for (i, f) in p.flags.iter().enumerate() {
        v |= match f.as_str() {
            "ADDR_NO_RANDOMIZE" => 0x0040000,
            "ADDR_COMPAT_LAYOUT" => 0x0200000,
            "READ_IMPLIES_EXEC" => 0x0400000,
            "ADDR_LIMIT_32BIT" => 0x0800000,
            "SHORT_INODE" => 0x1000000,
            "WHOLE_SECONDS" => 0x2000000,
            "STICKY_TIMEOUTS" => 0x4000000,
            "ADDR_LIMIT_3GB" => 0x8000000,
            "MMAP_PAGE_ZERO" => 0x0100000,
            "UNAME26" => 0x0020000,
            "FDPIC_FUNCPTRS" => 0x0080000,
            _ => {
                return Err(err(
                    format!("linux.personality.flags[{i}]"),
                    format!("unknown flag \"{f}\""),
                ));
            }
        };
    }
    Ok(v)
}

/// The devices runc creates in every container with its own /dev.
pub fn default_devices() -> Vec<DeviceOp> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(n, major, minor)| DeviceOp {
        path: PathBuf::from("dev").join(n),
        kind: DevKind::Char,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

fn lower_hooks(hooks: &Hooks) -> Result<(), ConfigError> {
    let all: [(&str, &Vec<Hook>); 6] = [
        ("prestart", &hooks.prestart),
        ("createRuntime", &hooks.create_runtime),
        ("createContainer", &hooks.create_container),
        ("startContainer", &hooks.start_container),
        ("poststart", &hooks.poststart),
        ("poststop", &hooks.poststop),
    ];
    for (name, list) in all {
        for (i, h) in list.iter().enumerate() {
            if !h.path.starts_with('/') {
                return Err(err(format!("hooks.{name}[{i}].path"), "must be absolute"));
            }
            if matches!(h.timeout, Some(t) if t <= 0) {
                return Err(err(
                    format!("hooks.{name}[{i}].timeout"),
                    "must be positive",
                ));
            }
        }
    }
    Ok(())
}

/// Without a mount namespace the container shares the caller's mount table, and only a
/// chroot puts it in its root (runc's way). What would have to be mounted is refused: masks and
/// read-only paths as runc refuses them; the config's mounts, which runc mounts in the host's
/// table and leaves there after the container is gone; and a read-only root, which runc
/// silently ignores without a mount namespace.
fn check_without_mount_namespace(
    mounts: &[MountOp],
    linux: &crate::config::Linux,
    readonly: bool,
) -> Result<(), ConfigError> {
    let why = "needs a mount namespace (without one it would be mounted in the host's mount table)";
    if !linux.masked_paths.is_empty() {
        return Err(err("linux.maskedPaths", why));
    }
    if !linux.readonly_paths.is_empty() {
        return Err(err("linux.readonlyPaths", why));
    }
    if let Some(m) = mounts.first() {
        return Err(err(format!("mounts[0] ({})", m.dest_display), why));
    }
    if readonly {
        return Err(err("root.readonly", why));
    }
    Ok(())
}

/// Validates `spec` and lowers it. `bundle` resolves a relative root.path.
pub fn lower(spec: &Spec, bundle: &Path) -> Result<Plan, ConfigError> {
    let root = spec.root.as_ref().ok_or_else(|| err("root", "missing"))?;
    if root.path.is_empty() {
        return Err(err("root.path", "empty"));
    }
    let rootfs = if Path::new(&root.path).is_absolute() {
        PathBuf::from(&root.path)
    } else {
        bundle.join(&root.path)
    };
    let process = lower_process(
        spec.process
            .as_ref()
            .ok_or_else(|| err("process", "missing"))?,
    )?;
    let linux = spec.linux.clone().unwrap_or_default();
    let namespaces = lower_namespaces(&linux)?;
    let has = |k: NsKind| namespaces.iter().any(|n| n.kind == k);
    check_namespaced_fields(spec, &linux, &namespaces)?;
    let time_offsets = lower_time_offsets(&linux)?;
    let mut sysctl = Vec::new();
    for (k, v) in &linux.sysctl {
        check_sysctl(k, has).map_err(|m| err(format!("linux.sysctl.{k}"), m))?;
        sysctl.push((k.clone(), v.clone()));
    }

    let mount_label = linux.mount_label.clone().filter(|l| !l.is_empty());
    if let Some(l) = &mount_label {
        crate::lsm::check_label(l).map_err(|m| err("linux.mountLabel", m))?;
    }
    let mounts = lower_mounts(spec, bundle, mount_label.as_deref())?;
    if !has(NsKind::Mount) {
        check_without_mount_namespace(&mounts, &linux, root.readonly)?;
    }
    let dev = Path::new("dev");
    let setup_dev = !mounts.iter().any(|m| m.dest == dev && m.opts.is_bind());
    let devices = lower_devices(&linux, setup_dev)?;
    let rootfs_propagation = lower_propagation(linux.rootfs_propagation.as_deref())?;

    if let Some(h) = &spec.hooks {
        lower_hooks(h)?;
    }
    if let Some(cp) = &linux.cgroups_path
        && cp.split('/').any(|c| c == "..")
    {
        return Err(err("linux.cgroupsPath", "must not contain \"..\""));
    }

    Ok(Plan {
        rootfs,
        rootfs_readonly: root.readonly,
        rootfs_readonly_recursive: false,
        loopback_up: false,
        install_init: false,
        die_with_parent: false,
        rootfs_propagation,
        uid_mappings: id_maps("linux.uidMappings", &linux.uid_mappings)?,
        gid_mappings: id_maps("linux.gidMappings", &linux.gid_mappings)?,
        namespaces,
        mounts,
        setup_dev,
        devices,
        masked_paths: linux.masked_paths.clone(),
        readonly_paths: linux.readonly_paths.clone(),
        hostname: spec.hostname.clone(),
        domainname: spec.domainname.clone(),
        sysctl,
        time_offsets,
        personality: linux
            .personality
            .as_ref()
            .map(lower_personality)
            .transpose()?,
        mem_policy: linux
            .memory_policy
            .as_ref()
            .map(lower_mem_policy)
            .transpose()?,
        seccomp: crate::seccomp::lower(linux.seccomp.as_ref())?,
        process,
        hooks: spec.hooks.clone().unwrap_or_default(),
        cgroups_path: linux.cgroups_path.clone().filter(|s| !s.is_empty()),
        resources: lower_resources(linux.resources.as_ref())?,
        mount_label,
        record: Record {
            annotations: spec.annotations.clone(),
            process: spec.process.clone(),
            seccomp: linux.seccomp.clone(),
        },
    })
}

fn lower_namespaces(linux: &crate::config::Linux) -> Result<Vec<NsOp>, ConfigError> {
    let mut namespaces: Vec<NsOp> = Vec::new();
    for (i, ns) in linux.namespaces.iter().enumerate() {
        let field = format!("linux.namespaces[{i}]");
        let kind = NsKind::parse(&ns.kind).ok_or_else(|| {
            err(
                format!("{field}.type"),
                format!("unknown namespace \"{}\"", ns.kind),
            )
        })?;
        if namespaces.iter().any(|n| n.kind == kind) {
            return Err(err(
                format!("{field}.type"),
                format!("namespace \"{}\" given twice", ns.kind),
            ));
        }
        let path = ns
            .path
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        if let Some(p) = &path
            && !p.is_absolute()
        {
            return Err(err(format!("{field}.path"), "must be absolute"));
        }
        namespaces.push(NsOp { kind, path });
    }
    Ok(namespaces)
}

/// Fields that need a namespace of a kind, or must not be given without one.
fn check_namespaced_fields(
    spec: &Spec,
    linux: &crate::config::Linux,
    namespaces: &[NsOp],
) -> Result<(), ConfigError> {
    let has = |k: NsKind| namespaces.iter().any(|n| n.kind == k);
    let creates = |k: NsKind| namespaces.iter().any(|n| n.kind == k && n.path.is_none());

    if creates(NsKind::User) && (linux.uid_mappings.is_empty() || linux.gid_mappings.is_empty()) {
        return Err(err(
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    if !has(NsKind::User) && (!linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty()) {
        return Err(err(
            "linux.uidMappings",
            "mappings given without a user namespace",
        ));
    }
    if (spec.hostname.is_some() || spec.domainname.is_some()) && !has(NsKind::Uts) {
        // runc refuses this too: it would rename the host. A uts namespace joined by path gets
        // the names, as runc sets them there.
        let f = if spec.hostname.is_some() {
            "hostname"
        } else {
            "domainname"
        };
        return Err(err(f, "set without a uts namespace"));
    }
    if !linux.time_offsets.is_empty() && !creates(NsKind::Time) {
        return Err(err("linux.timeOffsets", "set without a new time namespace"));
    }
    Ok(())
}

fn lower_time_offsets(
    linux: &crate::config::Linux,
) -> Result<Vec<(String, i64, u32)>, ConfigError> {
    let mut time_offsets = Vec::new();
    for (clock, off) in &linux.time_offsets {
        if clock != "monotonic" && clock != "boottime" {
            return Err(err(
                format!("linux.timeOffsets.{clock}"),
                "only monotonic and boottime can be offset",
            ));
        }
        time_offsets.push((clock.clone(), off.secs, off.nanosecs));
    }

    Ok(time_offsets)
}

fn lower_mounts(
    spec: &Spec,
    bundle: &Path,
    mount_label: Option<&str>,
) -> Result<Vec<MountOp>, ConfigError> {
    let mut mounts = Vec::new();
    for (i, m) in spec.mounts.iter().enumerate() {
        let field = format!("mounts[{i}]");
        if m.destination.is_empty() {
            return Err(err(format!("{field}.destination"), "empty"));
        }
        let mut opts = mountopt::parse(m.kind.as_deref(), &m.options);
        let fstype = if opts.is_bind() {
            "bind".to_string()
        } else {
            m.kind.clone().unwrap_or_default()
        };
        if crate::lsm::takes_context(&fstype) {
            opts.data = crate::lsm::with_mount_label(&opts.data, mount_label);
        }
        if fstype.is_empty() {
            return Err(err(
                format!("{field}.type"),
                "missing (and not a bind mount)",
            ));
        }
        if opts.is_bind() && m.source.as_deref().unwrap_or("").is_empty() {
            return Err(err(
                format!("{field}.source"),
                "a bind mount needs a source",
            ));
        }
        if opts.idmap.is_some() && (m.uid_mappings.is_empty() || m.gid_mappings.is_empty()) {
            return Err(err(
                format!("{field}.options"),
                "idmap needs uidMappings and gidMappings on the mount",
            ));
        }
        // A relative bind source is relative to the bundle, as runc resolves it.
        let source = m.source.as_ref().filter(|s| !s.is_empty()).map(|s| {
            if opts.is_bind() && !s.starts_with('/') {
                bundle.join(s)
            } else {
                PathBuf::from(s)
            }
        });
        let dest = clean_in_root(&m.destination);
        mounts.push(MountOp {
            dest,
            dest_display: m.destination.clone(),
            source,
            fstype,
            opts,
            uid_mappings: id_maps(&format!("{field}.uidMappings"), &m.uid_mappings)?,
            gid_mappings: id_maps(&format!("{field}.gidMappings"), &m.gid_mappings)?,
        });
    }
    Ok(mounts)
}

/// The default nodes unless /dev is bound from the host, then `linux.devices`.
fn lower_devices(
    linux: &crate::config::Linux,
    setup_dev: bool,
) -> Result<Vec<DeviceOp>, ConfigError> {
    let mut devices = if setup_dev {
        default_devices()
    } else {
        Vec::new()
    };
    for (i, d) in linux.devices.iter().enumerate() {
        let field = format!("linux.devices[{i}]");
        let kind = match d.kind.as_str() {
            "c" | "u" => DevKind::Char,
            "b" => DevKind::Block,
            "p" => DevKind::Fifo,
            k => {
                return Err(err(
                    format!("{field}.type"),
                    format!("unknown device type \"{k}\""),
                ));
            }
        };
        if !d.path.starts_with("/dev/") {
            return Err(err(format!("{field}.path"), "must be under /dev"));
        }
        let (major, minor) = (u32::try_from(d.major), u32::try_from(d.minor));
        let (Ok(major), Ok(minor)) = (major, minor) else {
            return Err(err(format!("{field}.major"), "out of range"));
        };
        let op = DeviceOp {
            path: clean_in_root(&d.path),
            kind,
            major,
            minor,
            mode: d.file_mode.unwrap_or(0o666) & 0o7777,
            uid: check_id(&format!("{field}.uid"), d.uid.unwrap_or(0))?,
            gid: check_id(&format!("{field}.gid"), d.gid.unwrap_or(0))?,
        };
        // A config device replaces a default one with the same path.
        devices.retain(|x| x.path != op.path);
        devices.push(op);
    }

    Ok(devices)
}

fn lower_propagation(p: Option<&str>) -> Result<u64, ConfigError> {
    Ok(match p {
        None | Some("") => ms::SLAVE | ms::REC,
        Some("private") => ms::PRIVATE,
        Some("rprivate") => ms::PRIVATE | ms::REC,
        Some("slave") => ms::SLAVE,
        Some("rslave") => ms::SLAVE | ms::REC,
        Some("shared") => ms::SHARED,
        Some("rshared") => ms::SHARED | ms::REC,
        Some("unbindable") => ms::UNBINDABLE,
        Some("runbindable") => ms::UNBINDABLE | ms::REC,
        Some(p) => {
            return Err(err(
                "linux.rootfsPropagation",
                format!("unknown propagation \"{p}\""),
            ));
        }
    })
}

/// `linux.resources` as written, typed: a value of the wrong type names its position here,
/// before anything exists.
fn lower_resources(value: Option<&serde_json::Value>) -> Result<Option<Resources>, ConfigError> {
    value
        .map(|v| {
            serde_json::from_value(v.clone()).map_err(|e| err("linux.resources", e.to_string()))
        })
        .transpose()
}

/// Duplicates are dropped, the first one kept. setgroups takes them, but the spec does not
/// say; runc up to 1.2 passed each group once (runc 1.3 passes duplicates through, an open
/// runc issue), and the groups a process holds are a set either way.
fn additional_gids(gids: &[u32]) -> Result<Vec<u32>, ConfigError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(gids.len());
    for (i, &g) in gids.iter().enumerate() {
        check_id(&format!("process.user.additionalGids[{i}]"), g)?;
        if seen.insert(g) {
            out.push(g);
        }
    }
    // setgroups refuses more with EINVAL, after everything else was set up.
    if out.len() > NGROUPS_MAX {
        return Err(err(
            "process.user.additionalGids",
            format!(
                "{} groups: the kernel takes at most {NGROUPS_MAX} (NGROUPS_MAX)",
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// The kernel's limit on supplementary groups (include/uapi/linux/limits.h).
pub const NGROUPS_MAX: usize = 65536;

/// Lowers `process` alone: `create` takes it from config.json, `exec` from `--process` or from the
/// container's recorded process with the command line's changes.
pub fn lower_process(process: &crate::config::Process) -> Result<ProcessPlan, ConfigError> {
    if process.args.is_empty() {
        return Err(err("process.args", "empty: nothing to run"));
    }
    if !process.cwd.starts_with('/') {
        return Err(err(
            "process.cwd",
            format!("\"{}\" is not absolute", process.cwd),
        ));
    }
    let caps = process.capabilities.as_ref().map(lower_caps).transpose()?;
    let rlimits = lower_rlimits(&process.rlimits)?;

    if let Some(adj) = process.oom_score_adj
        && !(-1000..=1000).contains(&adj)
    {
        return Err(err("process.oomScoreAdj", "must be within -1000..1000"));
    }
    let io_priority = process
        .io_priority
        .as_ref()
        .map(lower_io_priority)
        .transpose()?;
    let scheduler = process
        .scheduler
        .as_ref()
        .map(lower_scheduler)
        .transpose()?;
    let cpus = |field: &str, v: &Option<String>| -> Result<Option<Vec<u32>>, ConfigError> {
        match v.as_deref() {
            None | Some("") => Ok(None),
            Some(s) => parse_cpu_list(s)
                .map(Some)
                .ok_or_else(|| err(field, format!("bad cpu list \"{s}\""))),
        }
    };
    // runc and podman refuse these; execve would pass them on to a program that cannot read them.
    if let Some(e) = process
        .env
        .iter()
        .find(|e| e.split_once('=').is_none_or(|(k, _)| k.is_empty()))
    {
        return Err(err("process.env", format!("\"{e}\" is not KEY=VALUE")));
    }
    let label = |field: &str, v: &Option<String>| -> Result<Option<String>, ConfigError> {
        match v.as_deref() {
            None | Some("") => Ok(None),
            Some(l) => crate::lsm::check_label(l)
                .map(|()| Some(l.to_string()))
                .map_err(|m| err(field, m)),
        }
    };
    let apparmor_profile = label("process.apparmorProfile", &process.apparmor_profile)?;
    let selinux_label = label("process.selinuxLabel", &process.selinux_label)?;
    let aff = process.exec_cpu_affinity.clone().unwrap_or_default();
    let cpu_affinity_initial = cpus("process.execCPUAffinity.initial", &aff.initial)?;
    let cpu_affinity_final = cpus("process.execCPUAffinity.final", &aff.final_)?;

    Ok(ProcessPlan {
        args: process.args.clone(),
        env: process.env.clone(),
        cwd: process.cwd.clone(),
        uid: check_id("process.user.uid", process.user.uid)?,
        gid: check_id("process.user.gid", process.user.gid)?,
        additional_gids: additional_gids(&process.user.additional_gids)?,
        umask: process.user.umask,
        terminal: process.terminal,
        console_size: process.console_size.map(|c| (c.height, c.width)),
        rlimits,
        caps,
        no_new_privileges: process.no_new_privileges,
        oom_score_adj: process.oom_score_adj,
        scheduler,
        io_priority,
        cpu_affinity_initial,
        cpu_affinity_final,
        apparmor_profile,
        selinux_label,
    })
}

fn lower_caps(c: &crate::config::Capabilities) -> Result<CapSets, ConfigError> {
    let inheritable = cap_mask("process.capabilities.inheritable", &c.inheritable)?;
    let permitted = cap_mask("process.capabilities.permitted", &c.permitted)?;
    let asked = cap_mask("process.capabilities.ambient", &c.ambient)?;
    Ok(CapSets {
        bounding: cap_mask("process.capabilities.bounding", &c.bounding)?,
        effective: cap_mask("process.capabilities.effective", &c.effective)?,
        inheritable,
        permitted,
        ambient: asked & inheritable & permitted,
        ambient_ignored: asked & !(inheritable & permitted),
    })
}

fn lower_rlimits(rls: &[crate::config::Rlimit]) -> Result<Vec<RlimitOp>, ConfigError> {
    let mut rlimits = Vec::new();
    for (i, r) in rls.iter().enumerate() {
        let resource = names::rlimit(&r.kind).ok_or_else(|| {
            err(
                format!("process.rlimits[{i}].type"),
                format!("unknown rlimit \"{}\"", r.kind),
            )
        })?;
        if r.soft > r.hard {
            return Err(err(
                format!("process.rlimits[{i}]"),
                "soft limit above hard limit",
            ));
        }
        if rlimits.iter().any(|x: &RlimitOp| x.resource == resource) {
            return Err(err(
                format!("process.rlimits[{i}].type"),
                format!("{} given twice", r.kind),
            ));
        }
        rlimits.push(RlimitOp {
            resource,
            soft: r.soft,
            hard: r.hard,
        });
    }

    Ok(rlimits)
}

/// (class, level) for ioprio_set.
fn lower_io_priority(p: &crate::config::IoPriority) -> Result<(u32, u32), ConfigError> {
    let class = match p.class.as_str() {
        "IOPRIO_CLASS_RT" => 1,
        "IOPRIO_CLASS_BE" => 2,
        "IOPRIO_CLASS_IDLE" => 3,
        c => {
            return Err(err(
                "process.ioPriority.class",
                format!("unknown class \"{c}\""),
            ));
        }
    };
    if !(0..=7).contains(&p.priority) {
        return Err(err("process.ioPriority.priority", "must be within 0..7"));
    }
    Ok((class, p.priority as u32))
}
