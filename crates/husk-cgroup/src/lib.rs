//! One cgroup API over the three layouts a host may have, detected from mountinfo:
//! v1 (one hierarchy per controller), hybrid (v1 plus a cgroup2 mount holding a few
//! controllers, as on this project's CI host) and v2 (one unified tree).
//!
//! All file access goes through the directories this module computes, so tests point it at a
//! temp dir with a synthetic mountinfo.
#![forbid(unsafe_code)]

mod apply;
pub use apply::check as check_resources;
pub mod devices_bpf;
mod hints;
pub mod resources;
pub mod stats;
pub mod systemd;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup: no cgroup filesystem is mounted")]
    NoCgroupFs,
    #[error("cgroup: {step} {path}: {}", husk_sys::errno::text(source))]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The kernel refused a value; `allowed` says what the host takes ("; ..." or "").
    #[error(
        "cgroup: write {value:?} to {path}: {}{allowed}",
        husk_sys::errno::text(source)
    )]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
        allowed: String,
    },
    #[error(
        "cgroup: cgroupsPath \"{0}\" is in systemd's slice:prefix:name form, which needs --systemd-cgroup"
    )]
    SystemdPath(String),
    #[error("cgroup: {0}")]
    Unsupported(String),
    #[error("systemd: {step} {unit}: {msg}")]
    Systemd {
        step: &'static str,
        unit: String,
        msg: String,
    },
    #[error(
        "cgroup {path}: not empty ({count} process(es) already there): a container needs a cgroup of its own (runc refuses this too)"
    )]
    NotEmpty { path: PathBuf, count: usize },
    #[error("cgroup {0}: frozen before the container exists (runc refuses this too)")]
    Frozen(PathBuf),
}

fn io_err<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// v1: the controllers (and `name=` options) of the mount; empty for cgroup2.
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    /// The cgroup the mount shows as its root (not `/` inside a cgroup namespace).
    pub root: PathBuf,
    pub v2: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    V1,
    Hybrid,
    V2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchies {
    pub list: Vec<Hierarchy>,
}

fn unescape_mountinfo(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Hierarchies {
    /// Parses /proc/self/mountinfo text.
    pub fn from_mountinfo(text: &str) -> Hierarchies {
        let mut list = Vec::new();
        for line in text.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                continue;
            }
            let (root, mountpoint) = (unescape_mountinfo(pre[3]), unescape_mountinfo(pre[4]));
            // A later mount on the same path hides an earlier hierarchy (e.g. a tmpfs over
            // /sys/fs/cgroup/unified): it is no longer reachable there.
            list.retain(|h: &Hierarchy| h.mountpoint != Path::new(&mountpoint));
            let hierarchy = match post[0] {
                "cgroup2" => Hierarchy {
                    controllers: vec![],
                    mountpoint: mountpoint.into(),
                    root: root.into(),
                    v2: true,
                },
                "cgroup" => {
                    let controllers = post[2]
                        .split(',')
                        .filter(|o| {
                            !matches!(*o, "rw" | "ro") && !o.contains('=') || o.starts_with("name=")
                        })
                        .filter(|o| KNOWN_V1.contains(o) || o.starts_with("name="))
                        .map(String::from)
                        .collect();
                    Hierarchy {
                        controllers,
                        mountpoint: mountpoint.into(),
                        root: root.into(),
                        v2: false,
                    }
                }
                _ => continue,
            };
            // A hierarchy mounted twice (bind mounts) is joined once.
            if !list
                .iter()
                .any(|h: &Hierarchy| h.v2 == hierarchy.v2 && h.controllers == hierarchy.controllers)
            {
                list.push(hierarchy);
            }
        }
        Hierarchies { list }
    }

    pub fn detect() -> Result<Hierarchies, CgroupError> {
        let p = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(p).map_err(io_err("read", p))?;
        let h = Hierarchies::from_mountinfo(&text);
        if h.list.is_empty() {
            Err(CgroupError::NoCgroupFs)
        } else {
            Ok(h)
        }
    }

    pub fn layout(&self) -> Layout {
        let v1 = self.list.iter().any(|h| !h.v2);
        let v2 = self.list.iter().any(|h| h.v2);
        match (v1, v2) {
            (true, true) => Layout::Hybrid,
            (true, false) => Layout::V1,
            _ => Layout::V2,
        }
    }
}

const KNOWN_V1: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// The caller's own cgroup in each hierarchy, from /proc/self/cgroup text:
/// `(controllers or "" for v2, path)`.
pub fn parse_proc_cgroup(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrl, path) = (it.next()?, it.next()?, it.next()?);
            Some((ctrl.to_string(), path.to_string()))
        })
        .collect()
}

/// A container's cgroup: one directory per hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cgroup {
    pub dirs: Vec<PathBuf>,
    /// The cgroup2 directory, when there is a cgroup2 hierarchy.
    pub unified: Option<PathBuf>,
    /// With `--systemd-cgroup`: the scope unit that owns these directories.
    pub systemd_unit: Option<String>,
}

/// Open `tasks` files through which a process moves itself into its cgroup (see
/// `Cgroup::open_for_self_join`).
pub struct SelfJoin(Vec<(PathBuf, fs::File)>);

impl SelfJoin {
    /// Received elsewhere (the fds passed over a socket), with the paths for error messages.
    pub fn from_parts(paths: Vec<PathBuf>, fds: Vec<std::os::fd::OwnedFd>) -> SelfJoin {
        SelfJoin(
            paths
                .into_iter()
                .zip(fds.into_iter().map(fs::File::from))
                .collect(),
        )
    }

    /// The open files, to pass to the process that joins.
    pub fn files(&self) -> impl Iterator<Item = &fs::File> {
        self.0.iter().map(|(_, f)| f)
    }

    /// In the new, single-threaded process: moves it into every hierarchy, then closes the files.
    pub fn join(self) -> Result<(), CgroupError> {
        for (p, mut f) in self.0 {
            f.write_all(b"0").map_err(io_err("write", &p))?;
        }
        Ok(())
    }
}

/// A new v1 cpuset cgroup starts with empty cpus and mems and accepts no process until they
/// are set: copy them down from the nearest ancestor (as runc does).
fn init_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let cpus = dir.join("cpuset.cpus");
    if dir.join("cgroup.controllers").exists() {
        return Ok(());
    }
    let Ok(current) = fs::read_to_string(&cpus) else {
        return Ok(());
    };
    if !current.trim().is_empty() {
        return Ok(());
    }
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    init_cpuset(parent)?;
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let from = parent.join(file);
        let value = fs::read_to_string(&from).map_err(io_err("read", &from))?;
        let to = dir.join(file);
        fs::write(&to, value.trim()).map_err(io_err("write", &to))?;
    }
    Ok(())
}

/// Processes in `dir` and every cgroup below it. A directory removed while we read (a
/// container going away) counts as empty, as runc counts it.
fn count_procs(dir: &Path) -> Result<usize, CgroupError> {
    let gone = |e: &io::Error| {
        e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV)
    };
    let procs = dir.join("cgroup.procs");
    let mut count = match fs::read_to_string(&procs) {
        Ok(s) => s.lines().filter(|l| !l.trim().is_empty()).count(),
        Err(e) if gone(&e) => return Ok(0),
        Err(e) => return Err(io_err("read", &procs)(e)),
    };
    let entries = match fs::read_dir(dir) {
        Ok(it) => it,
        Err(e) if gone(&e) => return Ok(count),
        Err(e) => return Err(io_err("read", dir)(e)),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            count += count_procs(&entry.path())?;
        }
    }
    Ok(count)
}

fn remove_tree(d: &Path) -> Result<(), CgroupError> {
    if let Ok(entries) = fs::read_dir(d) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path())?;
            }
        }
    }
    let mut tries = 0;
    loop {
        match fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 200 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(io_err("rmdir", d)(e)),
        }
    }
}

fn own_path<'a>(h: &Hierarchy, own: &'a [(String, String)]) -> &'a str {
    own.iter()
        .find(|(ctrl, _)| {
            if h.v2 {
                ctrl.is_empty()
            } else {
                let mut a: Vec<&str> = ctrl.split(',').collect();
                let mut b: Vec<&str> = h.controllers.iter().map(String::as_str).collect();
                a.sort();
                b.sort();
                a == b
            }
        })
        .map_or("/", |(_, p)| p.as_str())
}

fn join_under(base: &Path, rel: &str) -> PathBuf {
    let mut p = base.to_path_buf();
    for c in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        p.push(c);
    }
    p
}

impl Cgroup {
    /// Where a container with `cgroups_path` lives. An absolute path is taken from each
    /// hierarchy's root; a relative one from the caller's own cgroup there (runc's rule).
    pub fn locate(
        h: &Hierarchies,
        own: &[(String, String)],
        cgroups_path: &str,
    ) -> Result<Cgroup, CgroupError> {
        if !cgroups_path.starts_with('/') && cgroups_path.split(':').count() == 3 {
            return Err(CgroupError::SystemdPath(cgroups_path.into()));
        }
        let mut cg = Cgroup::default();
        for hier in &h.list {
            // Paths in /proc/self/cgroup are relative to the hierarchy root; the mount may show
            // only a subtree (its `root`), which we strip.
            let full = if cgroups_path.starts_with('/') {
                cgroups_path.to_string()
            } else {
                format!(
                    "{}/{}",
                    own_path(hier, own).trim_end_matches('/'),
                    cgroups_path
                )
            };
            let root = hier.root.to_string_lossy();
            let rel = full
                .strip_prefix(root.as_ref())
                .filter(|_| root != "/")
                .unwrap_or(&full);
            let dir = join_under(&hier.mountpoint, rel);
            if hier.v2 {
                cg.unified = Some(dir.clone());
            }
            cg.dirs.push(dir);
        }
        Ok(cg)
    }

    /// runc's rootless cgroup manager, for a caller without a `cgroupsPath` that is not root
    /// or is root of a user namespace (rootless podman runs the runtime so): the hierarchies it
    /// may not write in are left out instead of failing the container, which then has no
    /// cgroup there (and no limits: rootless podman on cgroup v1 sends none). Judged at the
    /// nearest existing ancestor of each directory.
    pub fn drop_unwritable(&mut self) -> Result<(), CgroupError> {
        let mut keep = Vec::new();
        for d in self.dirs.drain(..) {
            let mut probe = d.as_path();
            while !probe.exists() {
                probe = probe.parent().unwrap_or(Path::new("/"));
            }
            if husk_sys::fs::writable(probe).map_err(io_err("faccessat W_OK", probe))? {
                keep.push(d);
            }
        }
        if self.unified.as_ref().is_some_and(|u| !keep.contains(u)) {
            self.unified = None;
        }
        self.dirs = keep;
        Ok(())
    }

    /// Makes the cgroup2 directory (`unified`), which must exist before a clone into it, or the
    /// v1 ones, which a new process joins by itself and so can follow the clone.
    pub fn create_part(&self, unified: bool) -> Result<(), CgroupError> {
        for d in &self.dirs {
            if (Some(d) == self.unified.as_ref()) != unified {
                continue;
            }
            fs::create_dir_all(d).map_err(io_err("mkdir", d))?;
            init_cpuset(d)?;
        }
        Ok(())
    }

    /// Opens the `tasks` file of every v1 hierarchy (the cgroup2 dir is skipped when the process
    /// is cloned into it) for a new process to move itself in with `SelfJoin::join`.
    ///
    /// Why not the parent writing the pid to cgroup.procs (`join`): moving a whole process takes
    /// the kernel's global cgroup_threadgroup_rwsem for writing, and its first writer after an
    /// idle moment waits out an RCU grace period (10-20 ms measured on the dev VM, every
    /// container run on a quiet host). A thread moving only itself ("0" into `tasks`) skips that
    /// lock; a process fresh from clone has one thread, so it is the whole process. Permission is
    /// checked against the opener's credentials, so this works from a new user namespace too.
    pub fn open_for_self_join(&self, skip_unified: bool) -> Result<SelfJoin, CgroupError> {
        let mut files = Vec::new();
        for p in self.self_join_files(skip_unified) {
            let f = fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(io_err("open", &p))?;
            files.push((p, f));
        }
        Ok(SelfJoin(files))
    }

    /// The files `open_for_self_join` opens, in order.
    pub fn self_join_files(&self, skip_unified: bool) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .filter(|d| !(skip_unified && Some(*d) == self.unified.as_ref()))
            // cgroup2 has no `tasks`; only a hybrid host without CLONE_INTO_CGROUP gets there.
            .map(|d| match Some(d) == self.unified.as_ref() {
                true => d.join("cgroup.procs"),
                false => d.join("tasks"),
            })
            .collect()
    }

    /// Before a container is made here: refuses a cgroup that already holds processes (in any
    /// hierarchy, sub-cgroups included) or is frozen. Joined, such a cgroup would be this
    /// container's, and `delete` would kill processes it never started. A directory that does
    /// not exist (the usual case) costs one failed stat.
    pub fn check_unused(&self) -> Result<(), CgroupError> {
        let existing: Vec<&PathBuf> = self.dirs.iter().filter(|d| d.is_dir()).collect();
        for d in &existing {
            let count = count_procs(d)?;
            if count > 0 {
                return Err(CgroupError::NotEmpty {
                    path: d.to_path_buf(),
                    count,
                });
            }
        }
        for d in existing {
            let frozen = match fs::read_to_string(d.join("freezer.state")) {
                Ok(s) => s.trim() == "FROZEN",
                Err(_) => {
                    fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
                }
            };
            if frozen {
                return Err(CgroupError::Frozen(d.to_path_buf()));
            }
        }
        Ok(())
    }

    /// Where `exec` puts a process (runc's rule): the container's cgroup2 directory, unless
    /// something in the container made it a parent with controllers enabled for its children
    /// (systemd as the container's init, a nested runtime): such a cgroup holds no process
    /// (EBUSY), so the process joins init's cgroup below it instead.
    pub fn for_exec(mut self, init_pid: i32) -> Result<Cgroup, CgroupError> {
        let Some(u) = self.unified.clone() else {
            return Ok(self);
        };
        if fs::read_to_string(u.join("cgroup.subtree_control"))
            .map_or(true, |s| s.trim().is_empty())
        {
            return Ok(self);
        }
        let p = PathBuf::from(format!("/proc/{init_pid}/cgroup"));
        let text = fs::read_to_string(&p).map_err(io_err("read", &p))?;
        let h = Hierarchies::detect()?;
        let init = Cgroup::locate(&h, &parse_proc_cgroup(&text), "")?;
        match init.unified.filter(|d| d.starts_with(&u)) {
            Some(dir) => {
                self.dirs
                    .iter_mut()
                    .filter(|d| **d == u)
                    .for_each(|d| *d = dir.clone());
                self.unified = Some(dir);
                Ok(self)
            }
            None => Err(CgroupError::Unsupported(format!(
                "exec: {} has controllers enabled for children, and init is not below it",
                u.display()
            ))),
        }
    }

    /// Pids in the cgroup and its sub-cgroups (read from the first hierarchy that answers):
    /// a container may make cgroups of its own (systemd as its init does).
    pub fn pids(&self) -> Vec<i32> {
        fn walk(d: &Path, out: &mut Vec<i32>) {
            let Ok(entries) = fs::read_dir(d) else { return };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    if let Ok(s) = fs::read_to_string(e.path().join("cgroup.procs")) {
                        out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
                    }
                    walk(&e.path(), out);
                }
            }
        }
        for d in &self.dirs {
            if let Ok(s) = fs::read_to_string(d.join("cgroup.procs")) {
                let mut out: Vec<i32> = s.lines().filter_map(|l| l.trim().parse().ok()).collect();
                walk(d, &mut out);
                return out;
            }
        }
        Vec::new()
    }

    /// Whether the freezer holds the cgroup (v1 freezer.state, or v2 cgroup.freeze).
    pub fn frozen(&self) -> bool {
        for d in &self.dirs {
            if let Ok(s) = fs::read_to_string(d.join("freezer.state")) {
                return s.trim() == "FROZEN";
            }
        }
        self.unified
            .as_ref()
            .and_then(|u| fs::read_to_string(u.join("cgroup.freeze")).ok())
            .is_some_and(|s| s.trim() == "1")
    }

    /// Removes every directory, sub-cgroups first (what the container made inside: systemd as
    /// its init leaves its slices, as runc's RemovePath assumes too). A cgroup whose last
    /// process just died may still read as busy for a moment, so EBUSY is retried briefly.
    /// Missing directories are fine: delete is idempotent.
    pub fn remove(&self) -> Result<(), CgroupError> {
        let mut first_err = self.systemd_unit.as_ref().and_then(|unit| {
            systemd::Systemd::connect()
                .and_then(|mut s| s.stop(unit))
                .err()
        });
        for d in &self.dirs {
            if let Err(e) = remove_tree(d) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const V2: &str = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";

    #[test]
    fn detects_layouts() {
        let h = Hierarchies::from_mountinfo(HYBRID);
        assert_eq!(h.layout(), Layout::Hybrid);
        assert_eq!(h.list.len(), 6);
        assert_eq!(h.list[4].controllers, vec!["name=systemd"]);
        assert_eq!(Hierarchies::from_mountinfo(V2).layout(), Layout::V2);
        let v1: String = HYBRID
            .lines()
            .filter(|l| !l.contains("cgroup2"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(Hierarchies::from_mountinfo(&v1).layout(), Layout::V1);
        assert!(
            Hierarchies::from_mountinfo("1 2 0:1 / / rw - ext4 /dev/vda rw\n")
                .list
                .is_empty()
        );
    }

    #[test]
    fn overmounted_hierarchy_is_ignored() {
        let text = format!("{HYBRID}99 41 0:50 / /sys/fs/cgroup/unified rw - tmpfs none rw\n");
        let h = Hierarchies::from_mountinfo(&text);
        assert_eq!(h.layout(), Layout::V1);
    }

    #[test]
    fn absolute_and_relative_paths() {
        let h = Hierarchies::from_mountinfo(HYBRID);
        let own = parse_proc_cgroup("4:memory:/job/7\n1:cpu:/\n0::/\n");
        let cg = Cgroup::locate(&h, &own, "/husk/c1").unwrap();
        assert_eq!(cg.dirs[2], PathBuf::from("/sys/fs/cgroup/memory/husk/c1"));
        assert_eq!(
            cg.unified,
            Some(PathBuf::from("/sys/fs/cgroup/unified/husk/c1"))
        );
        let cg = Cgroup::locate(&h, &own, "sub/c1").unwrap();
        assert_eq!(
            cg.dirs[2],
            PathBuf::from("/sys/fs/cgroup/memory/job/7/sub/c1")
        );
        assert_eq!(cg.dirs[0], PathBuf::from("/sys/fs/cgroup/cpu/sub/c1"));
        assert!(matches!(
            Cgroup::locate(&h, &own, "system.slice:husk:c1"),
            Err(CgroupError::SystemdPath(_))
        ));
    }

    #[test]
    fn mount_root_is_stripped() {
        let h = Hierarchies::from_mountinfo(
            "30 23 0:26 /outer /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        let own = parse_proc_cgroup("0::/outer/me\n");
        let cg = Cgroup::locate(&h, &own, "c").unwrap();
        assert_eq!(cg.dirs, vec![PathBuf::from("/sys/fs/cgroup/me/c")]);
    }

    #[test]
    fn create_join_remove_on_a_temp_tree() {
        let tmp = std::env::temp_dir().join(format!("husk-cg-test-{}", std::process::id()));
        let mi = format!(
            "1 0 0:1 / {}/a rw - cgroup cgroup rw,pids\n2 0 0:2 / {}/u rw - cgroup2 cgroup2 rw\n",
            tmp.display(),
            tmp.display()
        );
        let h = Hierarchies::from_mountinfo(&mi);
        let cg = Cgroup::locate(&h, &[], "/x/y").unwrap();
        cg.create_part(true).unwrap();
        cg.create_part(false).unwrap();
        // cgroupfs provides tasks and cgroup.procs in every new directory; a temp dir needs
        // them made. The process moves itself: "0" into the v1 tasks file, cgroup2 skipped
        // (CLONE_INTO_CGROUP).
        fs::write(tmp.join("a/x/y/tasks"), "").unwrap();
        fs::write(tmp.join("a/x/y/cgroup.procs"), "42\n").unwrap();
        let join = cg.open_for_self_join(true).unwrap();
        assert_eq!(join.files().count(), 1);
        join.join().unwrap();
        assert_eq!(fs::read_to_string(tmp.join("a/x/y/tasks")).unwrap(), "0");
        assert!(!tmp.join("u/x/y/tasks").exists());
        assert_eq!(cg.pids(), vec![42]);
        fs::remove_file(tmp.join("a/x/y/tasks")).unwrap();
        fs::remove_file(tmp.join("a/x/y/cgroup.procs")).unwrap();
        cg.remove().unwrap();
        assert!(!tmp.join("a/x/y").exists() && !tmp.join("u/x/y").exists());
        cg.remove().unwrap();
        fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn a_cgroup_with_processes_or_frozen_is_refused() {
        let tmp = std::env::temp_dir().join(format!("husk-cg-used-{}", std::process::id()));
        let mi = format!(
            "1 0 0:1 / {}/a rw - cgroup cgroup rw,pids\n2 0 0:2 / {}/b rw - cgroup cgroup rw,freezer\n",
            tmp.display(),
            tmp.display()
        );
        let h = Hierarchies::from_mountinfo(&mi);
        let cg = Cgroup::locate(&h, &[], "/c").unwrap();
        // Nothing there yet: the usual case.
        cg.check_unused().unwrap();
        // An empty cgroup of that name is fine (runc reuses it too).
        fs::create_dir_all(tmp.join("a/c/inner")).unwrap();
        fs::create_dir_all(tmp.join("b/c")).unwrap();
        fs::write(tmp.join("a/c/cgroup.procs"), "").unwrap();
        fs::write(tmp.join("a/c/inner/cgroup.procs"), "").unwrap();
        fs::write(tmp.join("b/c/cgroup.procs"), "").unwrap();
        fs::write(tmp.join("b/c/freezer.state"), "THAWED\n").unwrap();
        cg.check_unused().unwrap();
        // A process in a sub-cgroup of the second hierarchy counts.
        fs::write(tmp.join("a/c/inner/cgroup.procs"), "7\n9\n").unwrap();
        match cg.check_unused() {
            Err(e @ CgroupError::NotEmpty { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&format!("{}/a/c:", tmp.display())), "{text}");
                assert!(text.contains("2 process(es)"), "{text}");
            }
            r => panic!("{r:?}"),
        }
        fs::write(tmp.join("a/c/inner/cgroup.procs"), "").unwrap();
        fs::write(tmp.join("b/c/freezer.state"), "FROZEN\n").unwrap();
        assert!(matches!(cg.check_unused(), Err(CgroupError::Frozen(p)) if p == tmp.join("b/c")));
        fs::remove_dir_all(&tmp).unwrap();
    }
}
