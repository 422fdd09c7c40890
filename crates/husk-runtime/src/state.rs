//! The state directory of one container: `<root>/<id>/state.json` (written atomically),
//! `exec.fifo` while created, and an flock on the directory that serializes commands.

use husk_spec::config::Hooks;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::Error;

pub const STATE_FILE: &str = "state.json";
pub const FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What husk keeps about a container. The OCI state is derived from it (`oci_state`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// Init's pid, 0 while creating.
    pub pid: i32,
    /// Init's start time (jiffies since boot), so a reused pid is never mistaken for init.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub cgroup_dirs: Vec<PathBuf>,
    #[serde(default)]
    pub cgroup_unified: Option<PathBuf>,
    /// `--systemd-cgroup`: the scope unit `delete` stops and `update` sets properties of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// Whether init has its own pid namespace (then killing init kills everything).
    #[serde(default)]
    pub own_pid_ns: bool,
    #[serde(default)]
    pub hooks: Hooks,
    #[serde(default)]
    pub owner: String,
    /// The container's process as created: `exec` starts from it (env, user, capabilities...).
    #[serde(default)]
    pub process: Option<husk_spec::config::Process>,
    /// The container's `linux.seccomp`: processes `exec` adds get the same filter.
    #[serde(default)]
    pub seccomp: Option<serde_json::Value>,
    /// The container's device nodes (type, major, minor): always allowed by the device rules,
    /// also when `update` replaces them.
    #[serde(default)]
    pub devices: Vec<(char, i64, i64)>,
}

/// The OCI state document (`husk state`, and hooks' stdin).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'static str,
    pub id: &'a str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "is_zero")]
    pub pid: i32,
    pub bundle: &'a Path,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

fn is_zero(p: &i32) -> bool {
    *p == 0
}

impl State {
    pub fn oci_state(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: husk_spec::OCI_VERSION,
            id: &self.id,
            status: status.as_str(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: &self.bundle,
            annotations: &self.annotations,
        }
    }

    pub fn cgroup(&self) -> husk_cgroup::Cgroup {
        husk_cgroup::Cgroup {
            dirs: self.cgroup_dirs.clone(),
            unified: self.cgroup_unified.clone(),
            systemd_unit: self.systemd_unit.clone(),
        }
    }

    /// Whether init is still the process we started (alive and not a zombie).
    pub fn init_alive(&self) -> bool {
        husk_sys::process::alive(self.pid, self.pid_start)
    }
}

/// A locked container directory. The lock is released when this is dropped.
pub struct ContainerDir {
    pub path: PathBuf,
    /// The flock; `None` after `unlock` (a foreground `run` while its container runs).
    lock: Option<OwnedFd>,
}

fn lock_dir(path: &Path) -> Result<OwnedFd, Error> {
    let fd = husk_sys::fs::openat(None, path, libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(Error::io("open state dir", path))?;
    husk_sys::fs::flock_exclusive(fd.as_fd()).map_err(Error::io("lock state dir", path))?;
    Ok(fd)
}

impl ContainerDir {
    /// Makes and locks a new directory; fails if the id is taken.
    pub fn create(root: &Path, id: &str) -> Result<ContainerDir, Error> {
        husk_spec::validate_id(id).map_err(Error::Msg)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .map_err(Error::io("create state root", root))?;
        let path = root.join(id);
        match fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::Msg(format!("container \"{id}\" already exists")));
            }
            Err(e) => return Err(Error::io("create state dir", &path)(e)),
        }
        match lock_dir(&path) {
            Ok(lock) => Ok(ContainerDir {
                path,
                lock: Some(lock),
            }),
            Err(e) => {
                let _ = fs::remove_dir(&path);
                Err(e)
            }
        }
    }

    /// Locks an existing container's directory.
    pub fn open(root: &Path, id: &str) -> Result<ContainerDir, Error> {
        husk_spec::validate_id(id).map_err(Error::Msg)?;
        let path = root.join(id);
        match lock_dir(&path) {
            Ok(lock) => Ok(ContainerDir {
                path,
                lock: Some(lock),
            }),
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(Error::NotExist(id.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// An existing container's directory without its lock, for reading only (`list`): the
    /// state file is replaced atomically, so a reader sees a whole state, and a command holding
    /// the lock (a create stuck in a hook) never makes the reader wait.
    pub fn open_unlocked(root: &Path, id: &str) -> Result<ContainerDir, Error> {
        husk_spec::validate_id(id).map_err(Error::Msg)?;
        let path = root.join(id);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => Ok(ContainerDir { path, lock: None }),
            Ok(_) => Err(Error::NotExist(id.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotExist(id.to_string())),
            Err(e) => Err(Error::io("stat state dir", &path)(e)),
        }
    }

    /// Releases the lock while keeping the directory (a foreground `run` must not block
    /// `state`, `kill` or `exec` from other shells while its container runs).
    pub fn unlock(&mut self) {
        self.lock = None;
    }

    /// Takes the lock again (before the foreground `run` tears its container down).
    pub fn relock(&mut self) -> Result<(), Error> {
        if self.lock.is_none() {
            self.lock = Some(lock_dir(&self.path)?);
        }
        Ok(())
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(FIFO)
    }

    pub fn load(&self) -> Result<State, Error> {
        let p = self.path.join(STATE_FILE);
        let text = match fs::read(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let id = self
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                return Err(Error::NotExist(id));
            }
            Err(e) => return Err(Error::io("read", &p)(e)),
        };
        serde_json::from_slice(&text).map_err(|e| Error::Msg(format!("parse {}: {e}", p.display())))
    }

    /// Write to a temp file, then rename: a reader sees the old or the new state, never half.
    /// No fsync: the state lives on tmpfs (/run) and must not outlive a reboot anyway.
    pub fn save(&self, state: &State) -> Result<(), Error> {
        let tmp = self.path.join(".state.json.tmp");
        let data = serde_json::to_vec(state).map_err(|e| Error::Msg(e.to_string()))?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(Error::io("write", &tmp))?;
        f.write_all(&data).map_err(Error::io("write", &tmp))?;
        drop(f);
        let dst = self.path.join(STATE_FILE);
        fs::rename(&tmp, &dst).map_err(Error::io("rename", &dst))
    }

    /// The status as it is now, derived from init and the fifo rather than stored.
    pub fn status(&self, state: &State) -> Status {
        // Init's start time is recorded once it is ready: until then (or forever, when its
        // creator was killed midway) the container is being created.
        if state.pid == 0 || state.pid_start == 0 {
            return Status::Creating;
        }
        if !state.init_alive() {
            return Status::Stopped;
        }
        if self.fifo().exists() {
            return Status::Created;
        }
        if state.cgroup().frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn remove(self) -> Result<(), Error> {
        fs::remove_dir_all(&self.path)
            .or_else(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(Error::io("remove state dir", &self.path))
    }
}

/// RFC 3339 UTC timestamp with nanoseconds, as runc writes `created`.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(secs.div_euclid(86400));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's civil_from_days: (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_796_000_000, 5), "2026-11-30T00:53:20.000000005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn dir_lifecycle() {
        let root = std::env::temp_dir().join(format!("husk-state-test-{}", std::process::id()));
        let d = ContainerDir::create(&root, "c1").unwrap();
        assert!(matches!(d.load(), Err(Error::NotExist(_))));
        let st = State {
            id: "c1".into(),
            pid: 0,
            pid_start: 0,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: rfc3339_now(),
            annotations: BTreeMap::new(),
            cgroup_dirs: vec![],
            cgroup_unified: None,
            systemd_unit: None,
            own_pid_ns: true,
            hooks: Hooks::default(),
            owner: String::new(),
            process: None,
            seccomp: None,
            devices: vec![],
        };
        d.save(&st).unwrap();
        assert_eq!(d.status(&d.load().unwrap()), Status::Creating);
        drop(d);
        assert!(ContainerDir::create(&root, "c1").is_err());
        assert!(ContainerDir::create(&root, "../x").is_err());
        let d = ContainerDir::open(&root, "c1").unwrap();
        d.remove().unwrap();
        assert!(matches!(
            ContainerDir::open(&root, "c1"),
            Err(Error::NotExist(_))
        ));
        fs::remove_dir_all(&root).unwrap();
    }
}
