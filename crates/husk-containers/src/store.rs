//! The front-end container store: one directory per container under `containers/<64-hex id>`,
//! names as symlinks under `names/` (a symlink is made or refused atomically, so two `run
//! --name N` never both get N), and the runtime root `run/` where husk-runtime keeps the
//! running container's state and cgroup record. Files of a container:
//!   meta.json   name, image, command, created, restart policy (small: `ps` reads only this)
//!   config.json the OCI spec the front end built (read when the container starts again)
//!   state.json  status, pids, start and finish times, exit code (written by the monitor)
//!   ctr.log     stdout and stderr lines with timestamps (`logs`), ctr.log.1 after rotation
//!   stop        present while a `stop` is under way: the monitor does not restart then

use crate::time;
use husk_runtime::Error;
use husk_runtime::launch::StateEntry;
use husk_sys::fs as sfs;
use serde::{Deserialize, Serialize};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a `--rm` removal waits for a `wait` that holds the record and does not read it
/// (stopped, say); a live one reads it within milliseconds of the exit.
const WAITERS_GRACE: Duration = Duration::from_secs(10);

/// Where front-end containers of a `--root` live: runc-mode containers (engines' `--root`) and
/// these never share a directory. The default root's store survives a reboot, as docker's does;
/// it sits beside the image store (husk-image's /var/lib/husk). An ordinary user's default root
/// ($XDG_RUNTIME_DIR/husk) keeps them in its data dir ($XDG_DATA_HOME/husk/fe), as podman's
/// rootless containers live in ~/.local/share/containers.
pub fn store_dir(root: &Path) -> PathBuf {
    if root == Path::new(DEFAULT_ROOT) {
        PathBuf::from("/var/lib/husk/fe")
    } else if let Ok(Some(data)) = husk_runtime::userdirs::current_data_dir()
        && root == husk_runtime::userdirs::current_root()
    {
        data.join("fe")
    } else {
        let mut s = root.as_os_str().to_os_string();
        s.push("-fe");
        PathBuf::from(s)
    }
}

pub const DEFAULT_ROOT: &str = "/run/husk";

/// Log size before rotation; one rotated file is kept, so a container's logs take at most twice
/// this.
pub const LOG_MAX: u64 = 8 << 20;

#[derive(Debug, Clone)]
pub struct Store {
    pub dir: PathBuf,
    /// husk-runtime's root for these containers.
    pub run: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Restart {
    /// no, on-failure, always, unless-stopped
    pub name: String,
    /// on-failure's limit; 0: no limit
    pub max: u32,
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            name: "no".into(),
            max: 0,
        }
    }
}

impl Restart {
    pub fn parse(s: &str) -> Result<Restart, Error> {
        let (name, max) = s.split_once(':').unwrap_or((s, ""));
        let bad = || {
            Error::Msg(format!(
                "--restart {s}: want no, on-failure[:MAX-RETRIES], always or unless-stopped"
            ))
        };
        let max = match (name, max) {
            (_, "") => 0,
            ("on-failure", n) => n.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        match name {
            "no" | "on-failure" | "always" | "unless-stopped" => Ok(Restart {
                name: name.into(),
                max,
            }),
            _ => Err(bad()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Entry {
    File(Vec<u8>),
    Dir,
    Symlink(PathBuf),
}

impl From<&StateEntry> for Entry {
    fn from(e: &StateEntry) -> Entry {
        match e {
            StateEntry::File(b) => Entry::File(b.clone()),
            StateEntry::Dir => Entry::Dir,
            StateEntry::Symlink(p) => Entry::Symlink(p.clone()),
        }
    }
}

impl From<&Entry> for StateEntry {
    fn from(e: &Entry) -> StateEntry {
        match e {
            Entry::File(b) => StateEntry::File(b.clone()),
            Entry::Dir => StateEntry::Dir,
            Entry::Symlink(p) => StateEntry::Symlink(p.clone()),
        }
    }
}

/// What `ps` shows and how the container starts again (with config.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub id: String,
    pub name: String,
    pub created_ns: u64,
    /// The rootfs given, or "(host)" for the embedded default.
    pub image: String,
    pub command: Vec<String>,
    /// The directory the spec's root.path is relative to (husk_spec::lower's bundle).
    pub root_path: PathBuf,
    pub rootfs_readonly_recursive: bool,
    pub loopback_up: bool,
    pub install_init: bool,
    /// Entries the front end makes in the runtime state dir (/etc/hosts, scaffold root, ...).
    pub files: Vec<(String, Entry)>,
    pub restart: Restart,
    pub auto_remove: bool,
    pub stop_signal: i32,
    pub stop_timeout: i64,
    /// `-t`: the process has a terminal, whose master the monitor keeps for `attach`.
    #[serde(default)]
    pub tty: bool,
    /// `-i`: the process' stdin stays open for `attach` to write to.
    #[serde(default)]
    pub stdin: bool,
    /// `run -d IMAGE`: the image store's directory of this container's overlay root
    /// (husk_image::overlay), mounted from `run` until `rm` (again by `start` after a reboot).
    #[serde(default)]
    pub image_root: Option<PathBuf>,
    /// The image's ExposedPorts (`80/tcp`), for `inspect`.
    #[serde(default)]
    pub exposed: Vec<String>,
    /// `--network bridge`: each run leases an address (husk-net) and releases it at exit.
    #[serde(default)]
    pub bridge: Option<BridgeMeta>,
    /// `--network pasta` (an ordinary user's): each run starts pasta with these `-p` values;
    /// `clean_runtime` stops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pasta: Option<Vec<String>>,
    /// `--network slirp4netns[:OPTIONS]` (an ordinary user's): that value and the `-p` values;
    /// each run starts slirp4netns with them, `clean_runtime` stops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slirp4netns: Option<(String, Vec<String>)>,
    /// The networks after the first (`network connect`): each run leases on them too, as
    /// eth1, eth2, ... without the default route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<BridgeMeta>,
    /// A foreground `run --name`'s record (crate::foreground): the runtime keeps the container
    /// under this `--root` with the name as its id, not in the store's own root.
    #[serde(default)]
    pub foreground: Option<PathBuf>,
    /// The `--root` whose `.net` may hold this container's hosts file while it is on no
    /// network (`network disconnect` of its last, a `network connect` that failed): its exit and
    /// `rm` release it there, as they do a networked container's through `bridge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_root: Option<PathBuf>,
}

impl Meta {
    /// Where the container's leases and hosts file are released (husk_net::release_id).
    pub fn net_root(&self) -> Option<&Path> {
        self.bridge
            .as_ref()
            .or(self.networks.first())
            .map(|b| b.root.as_path())
            .or(self.net_root.as_deref())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BridgeMeta {
    /// The `--root` whose network state (`.net`) foreground runs share: one address space.
    pub root: PathBuf,
    /// `-p` as given, and with `-P` the image's ExposedPorts (`80/tcp`: any free host port).
    pub publish: Vec<String>,
    /// `bridge` or a named network.
    #[serde(default = "default_network")]
    pub network: String,
    /// The container's name and `--network-alias`es (the network's others resolve them).
    #[serde(default)]
    pub names: Vec<String>,
    /// `--ip`, `--mac-address`.
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub mac: Option<String>,
}

fn default_network() -> String {
    "bridge".into()
}

/// What the monitor (and `stop`/`rm` when no monitor is left) records.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// created, running, restarting, exited
    pub status: String,
    pub pid: i32,
    pub pid_start: u64,
    pub monitor_pid: i32,
    pub monitor_start: u64,
    pub started_ns: u64,
    pub finished_ns: u64,
    pub exit_code: i32,
    pub restart_count: u32,
    pub error: String,
}

/// A status as seen now: a record saying running whose monitor is gone (killed, or the host
/// rebooted) is an exited container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Created,
    Running,
    Restarting,
    Exited,
}

impl Seen {
    pub fn as_str(self) -> &'static str {
        match self {
            Seen::Created => "created",
            Seen::Running => "running",
            Seen::Restarting => "restarting",
            Seen::Exited => "exited",
        }
    }
}

pub use husk_sys::process::alive;

/// The code recorded for a container whose monitor vanished before it could record one.
pub const LOST: i32 = 255;

impl State {
    pub fn seen(&self) -> Seen {
        match self.status.as_str() {
            "running" | "restarting" if !alive(self.monitor_pid, self.monitor_start) => {
                Seen::Exited
            }
            "running" => Seen::Running,
            "restarting" => Seen::Restarting,
            "created" => Seen::Created,
            _ => Seen::Exited,
        }
    }

    /// The exit code to show: the recorded one, or LOST when the monitor died first.
    pub fn code(&self) -> i32 {
        if self.status == "exited" {
            self.exit_code
        } else {
            LOST
        }
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, Error> {
    let b = std::fs::read(path).map_err(Error::io("read", path))?;
    serde_json::from_slice(&b).map_err(|e| Error::Msg(format!("{}: {e}", path.display())))
}

/// Written to a temporary name and renamed: readers never see half a file.
pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let b = serde_json::to_vec(v).map_err(|e| Error::Msg(e.to_string()))?;
    std::fs::write(&tmp, b).map_err(Error::io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io("rename", path))
}

/// docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// 64 hex digits, as docker's ids; never all digits, so a short prefix never reads as a number.
pub fn new_id() -> Result<String, Error> {
    loop {
        let id =
            husk_sys::random::hex::<32>().map_err(Error::io("read", husk_sys::random::SOURCE))?;
        if !id[..12].bytes().all(|c| c.is_ascii_digit()) {
            return Ok(id);
        }
    }
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "quirky", "serene", "tender", "upbeat", "vivid", "witty", "zealous", "bold", "crisp",
];
const NAMES: &[&str] = &[
    "lovelace", "hopper", "turing", "noether", "curie", "dijkstra", "knuth", "ritchie", "thompson",
    "hamilton", "shannon", "lamport", "liskov", "torvalds", "meitner", "franklin", "goodall",
    "babbage", "euler", "gauss",
];

impl Store {
    pub fn for_root(root: &Path) -> Store {
        let dir = store_dir(root);
        Store {
            run: dir.join("run"),
            dir,
        }
    }

    pub fn ctr(&self, id: &str) -> PathBuf {
        self.dir.join("containers").join(id)
    }

    fn name_link(&self, name: &str) -> PathBuf {
        self.dir.join("names").join(name)
    }

    /// Every container's id (unordered); none when the store does not exist yet.
    pub fn ids(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.join("containers"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.len() == 64)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The id a user's word names, as docker: a full id, a name, or a unique id prefix.
    pub fn resolve(&self, word: &str) -> Result<String, Error> {
        if word.len() == 64 && self.ctr(word).is_dir() {
            return Ok(word.to_string());
        }
        if valid_name(word)
            && let Ok(t) = std::fs::read_link(self.name_link(word))
        {
            return Ok(t.to_string_lossy().into_owned());
        }
        if !word.is_empty() && word.bytes().all(|c| c.is_ascii_hexdigit()) {
            let mut hits = self.ids().into_iter().filter(|id| id.starts_with(word));
            if let Some(id) = hits.next() {
                if hits.next().is_some() {
                    return Err(Error::Msg(format!(
                        "{word}: more than one container's id starts with it; give more of the id"
                    )));
                }
                return Ok(id);
            }
        }
        Err(Error::Msg(format!("no such container: {word}")))
    }

    /// Whether a front-end container is named `name` (a foreground `run --name` checks it).
    pub fn name_taken(&self, name: &str) -> bool {
        std::fs::symlink_metadata(self.name_link(name)).is_ok()
    }

    /// A free generated name, docker-style (`brave_hopper`, then `brave_hopper_2`, ...).
    pub fn generate_name(&self) -> Result<String, Error> {
        let r =
            husk_sys::random::bytes::<2>().map_err(Error::io("read", husk_sys::random::SOURCE))?;
        let base = format!(
            "{}_{}",
            ADJECTIVES[r[0] as usize % ADJECTIVES.len()],
            NAMES[r[1] as usize % NAMES.len()]
        );
        let mut name = base.clone();
        let mut n = 2;
        while self.name_taken(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        Ok(name)
    }

    /// Makes the container's directory, its files and its name; undone on any failure.
    pub fn create(&self, meta: &Meta, spec: &husk_spec::Spec) -> Result<(), Error> {
        let names = self.dir.join("names");
        std::fs::create_dir_all(&names).map_err(Error::io("create", &names))?;
        let dir = self.ctr(&meta.id);
        std::fs::create_dir_all(dir.parent().expect("has one"))
            .map_err(Error::io("create", &self.dir))?;
        std::fs::create_dir(&dir).map_err(Error::io("create", &dir))?;
        let made = (|| {
            write_json(&dir.join("config.json"), spec)?;
            write_json(&dir.join("meta.json"), meta)?;
            write_json(
                &dir.join("state.json"),
                &State {
                    status: "created".into(),
                    ..Default::default()
                },
            )?;
            let link = self.name_link(&meta.name);
            std::os::unix::fs::symlink(&meta.id, &link).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    let other = std::fs::read_link(&link).unwrap_or_default();
                    Error::Msg(format!(
                        "the name \"{}\" is already in use by container {}: remove it or pick another --name",
                        meta.name,
                        other.display()
                    ))
                } else {
                    Error::io("create name", &link)(e)
                }
            })
        })();
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        made
    }

    pub fn meta(&self, id: &str) -> Result<Meta, Error> {
        read_json(&self.ctr(id).join("meta.json"))
    }

    pub fn spec(&self, id: &str) -> Result<husk_spec::Spec, Error> {
        read_json(&self.ctr(id).join("config.json"))
    }

    pub fn state(&self, id: &str) -> Result<State, Error> {
        read_json(&self.ctr(id).join("state.json"))
    }

    pub fn save_state(&self, id: &str, s: &State) -> Result<(), Error> {
        write_json(&self.ctr(id).join("state.json"), s)
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.ctr(id).join("ctr.log")
    }

    pub fn stop_marker(&self, id: &str) -> PathBuf {
        self.ctr(id).join("stop")
    }

    /// Where the runtime keeps container `id` of `meta`: its root and its id there.
    pub fn runtime(&self, meta: &Meta) -> (PathBuf, String) {
        match &meta.foreground {
            Some(root) => (root.clone(), meta.name.clone()),
            None => (self.run.clone(), meta.id.clone()),
        }
    }

    /// Removes the runtime's leftovers (state dir, cgroup, processes) of an earlier run.
    pub fn clean_runtime(&self, id: &str) -> Result<(), Error> {
        husk_net::helper::stop(&self.run.join(id));
        husk_runtime::ops::delete(&self.run, id, true)
    }

    /// Where a run's pasta or slirp4netns keeps its pid (and slirp4netns its socket and log):
    /// the runtime's state dir, gone with it.
    pub fn helper_dir(&self, id: &str) -> PathBuf {
        self.run.join(id)
    }

    /// Removes everything of a container: runtime leftovers, its image root, its directory,
    /// its name.
    pub fn remove(&self, id: &str) -> Result<(), Error> {
        self.sweep_removed();
        self.clean_runtime(id)?;
        if let Ok(m) = self.meta(id) {
            // A foreground run keeps its container in its own --root under the name; a husk
            // killed there left it (a live one cleans up itself: `rm -f` waited for it).
            if m.foreground.is_some()
                && !self
                    .state(id)
                    .is_ok_and(|s| alive(s.monitor_pid, s.monitor_start))
            {
                let (rt, rid) = self.runtime(&m);
                husk_net::helper::stop(&rt.join(&rid));
                husk_runtime::ops::delete(&rt, &rid, true)?;
            }
            if let Some(dir) = &m.image_root {
                husk_image::overlay::remove(dir)?;
            }
            // Released at each exit by the monitor; a monitor killed first left it.
            if let Some(root) = m.net_root() {
                husk_net::release_id(root, id);
            }
            let link = self.name_link(&m.name);
            if std::fs::read_link(&link).is_ok_and(|t| t == Path::new(id)) {
                let _ = std::fs::remove_file(&link);
            }
        }
        // Out of sight first, in one step: a concurrent writer (a monitor recording the exit,
        // `rm -f`'s stop marker) can no longer add to it by its path, readers see the whole
        // record or none, and a second remover finds nothing left to do.
        let dir = self.ctr(id);
        let gone = self.dir.join("containers").join(format!(".rm-{id}"));
        match std::fs::rename(&dir, &gone) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("rename", &dir)(e));
            }
            _ => {}
        }
        // A writer that resolved the path just before the rename may still add an entry:
        // removed again then.
        let mut tries = 0;
        loop {
            match std::fs::remove_dir_all(&gone) {
                Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && tries < 10 => {
                    // The writer needs a moment to finish its entry; retrying at once would
                    // spend every try before it has.
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(5 * tries));
                }
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io("remove", &gone)(e));
                }
                _ => return Ok(()),
            }
        }
    }

    /// Finishes removals that were left half done: `remove` renames a record to `.rm-<id>`
    /// before deleting it, and a remover killed in between (or whose delete failed) leaves a
    /// directory that `ids()` never lists, so nothing else would ever retry it. Best effort: a
    /// failure here leaves it for the next sweep, and a concurrent remover's own delete of the
    /// same directory tolerates entries that vanish under it.
    pub fn sweep_removed(&self) {
        let containers = self.dir.join("containers");
        let Ok(d) = std::fs::read_dir(&containers) else {
            return;
        };
        for e in d.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.strip_prefix(".rm-").is_some_and(|id| id.len() == 64) {
                let _ = std::fs::remove_dir_all(containers.join(&*name));
            }
        }
    }

    /// `--rm` after the exit: the record, with its exit code, stays until every `wait` and
    /// `attach` that was blocked on the container has read it (they hold its directory locked
    /// shared, see `hold_for_exit`), at most WAITERS_GRACE for one that never lets go; then it
    /// is removed as `remove` removes it. docker's `wait` of a `--rm` container prints its code.
    pub fn remove_once_read(&self, id: &str) -> Result<(), Error> {
        let dir = std::fs::File::open(self.ctr(id));
        if let Ok(d) = &dir {
            let end = Instant::now() + WAITERS_GRACE;
            while matches!(sfs::flock_try_exclusive(d.as_fd()), Ok(false)) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // Removed while still locked, so a waiter that comes now finds no record, not one
        // half gone.
        self.remove(id)
    }

    /// A `wait`'s or `attach`'s hold on the container's record: `--rm` leaves it until this is
    /// dropped. None when the container is gone.
    pub fn hold_for_exit(&self, id: &str) -> Option<std::fs::File> {
        let d = std::fs::File::open(self.ctr(id)).ok()?;
        sfs::flock_shared(d.as_fd()).ok()?;
        Some(d)
    }

    /// When the container was created, for `ps`' CREATED and ordering.
    pub fn created_ago(meta: &Meta) -> u64 {
        time::now_ns().saturating_sub(meta.created_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_beside_the_root() {
        assert_eq!(
            store_dir(Path::new("/run/husk")),
            PathBuf::from("/var/lib/husk/fe")
        );
        assert_eq!(store_dir(Path::new("/tmp/r")), PathBuf::from("/tmp/r-fe"));
    }

    #[test]
    fn restart_policies() {
        assert_eq!(Restart::parse("no").unwrap(), Restart::default());
        assert_eq!(
            Restart::parse("on-failure:3").unwrap(),
            Restart {
                name: "on-failure".into(),
                max: 3
            }
        );
        assert!(Restart::parse("always:3").is_err());
        assert!(Restart::parse("sometimes").is_err());
    }

    #[test]
    fn names_and_ids() {
        assert!(valid_name("web-1.a_b") && !valid_name("-x") && !valid_name("a/b"));
        let id = new_id().unwrap();
        assert!(id.len() == 64 && id.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn half_done_removals_are_swept() {
        let dir = std::env::temp_dir().join(format!("husk-store-sweep-{}", std::process::id()));
        let s = Store::for_root(&dir);
        let c = s.dir.join("containers");
        let gone = c.join(format!(".rm-{}", "a".repeat(64)));
        std::fs::create_dir_all(gone.join("sub")).unwrap();
        std::fs::write(gone.join("sub/state.json"), "{}").unwrap();
        // Not a removal's: left alone.
        let other = c.join(".rm-x");
        std::fs::create_dir_all(&other).unwrap();
        crate::verbs::prune(&s).unwrap();
        assert!(!gone.exists());
        assert!(other.exists());
        std::fs::create_dir_all(gone.join("sub")).unwrap();
        let _ = s.remove(&"b".repeat(64));
        assert!(!gone.exists());
        std::fs::remove_dir_all(&s.dir).unwrap();
    }

    #[test]
    fn short_ids_resolve_only_when_unique() {
        let dir = std::env::temp_dir().join(format!("husk-store-ids-{}", std::process::id()));
        let s = Store::for_root(&dir);
        let (a, b) = (
            format!("abc1{}", "0".repeat(60)),
            format!("abc2{}", "0".repeat(60)),
        );
        for id in [&a, &b] {
            std::fs::create_dir_all(s.ctr(id)).unwrap();
        }
        std::fs::create_dir_all(s.dir.join("names")).unwrap();
        std::os::unix::fs::symlink(&b, s.name_link("web")).unwrap();
        let r = |w: &str| s.resolve(w).map_err(|e| e.to_string());
        assert_eq!(r("abc1"), Ok(a.clone()));
        assert_eq!(r(&a), Ok(a.clone()));
        assert_eq!(r("web"), Ok(b.clone()));
        assert!(r("abc").unwrap_err().contains("more than one"));
        assert!(r("abd").unwrap_err().contains("no such container"));
        std::fs::remove_dir_all(&s.dir).unwrap();
    }
}
