//! Shared harness for the integration tests: a busybox-static rootfs with our probe, one bundle
//! and one --root per test, and the built `husk` binary driven as a subprocess (the tests run on
//! threads; husk's single-thread-at-clone rule holds only inside its own process).
#![allow(dead_code)]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const HUSK: &str = env!("CARGO_BIN_EXE_husk");

fn assets() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("husk-it")
}

/// Why the live tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON
        .get_or_init(|| {
            // SAFETY-free check of euid through /proc (no libc in tests).
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let euid = status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .unwrap_or("1");
            if euid != "0" {
                return Some("not root".into());
            }
            if busybox().is_none() {
                return Some("no static busybox (apt-get install busybox-static)".into());
            }
            if std::env::var_os("HUSK_PROBE").is_none()
                && Command::new("cc")
                    .arg("--version")
                    .stdout(Stdio::null())
                    .status()
                    .map(|s| !s.success())
                    .unwrap_or(true)
            {
                return Some("no C compiler for the probe".into());
            }
            None
        })
        .clone()
}

/// Skips the calling test when the live tests cannot run here at all (not root, no busybox, no C
/// compiler for the probe). Under `HUSK_REQUIRE_ALL=1` (scripts/test.sh as root, and the cgroup
/// v2 guest) a missing prerequisite fails the test instead: there, every live test must run.
#[macro_export]
macro_rules! require_root {
    () => {
        if let Some(r) = common::skip_reason() {
            common::skip(common::Skip::Prerequisite, &r);
            return;
        }
    };
}

/// Skips the calling test unless `cond` holds, where `cond` is a prerequisite every CI host
/// provides (a tool scripts/test.sh installs): a failure under `HUSK_REQUIRE_ALL=1`, like
/// `require_root!`. The reason takes `format!` arguments.
#[macro_export]
macro_rules! require {
    ($cond:expr, $($reason:tt)+) => {
        if !$cond {
            common::skip(common::Skip::Prerequisite, &format!($($reason)+));
            return;
        }
    };
}

/// Skips the calling test unless `cond` holds, for a legitimate host reason: a feature this host
/// or kernel does not have (cgroup layout, an LSM, a library version). Such skips are allowed
/// everywhere, even under `HUSK_REQUIRE_ALL=1`; they are printed and listed in the summary of
/// scripts/test.sh. The reason takes `format!` arguments.
#[macro_export]
macro_rules! skip_unless {
    ($cond:expr, $($reason:tt)+) => {
        if !$cond {
            common::skip(common::Skip::HostFeature, &format!($($reason)+));
            return;
        }
    };
}

/// Why a test (or part of one) did not run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Something every CI host provides is missing: a failure under `HUSK_REQUIRE_ALL=1`.
    Prerequisite,
    /// This host lacks a feature the test needs; allowed, counted.
    HostFeature,
}

/// Reports a skip of the calling test (named after its libtest thread): panics for a missing
/// prerequisite under `HUSK_REQUIRE_ALL=1`; otherwise prints `SKIP <kind> <test>: <reason>` to
/// the real stderr (libtest swallows a passing test's `eprintln!`) and appends the line to
/// `$HUSK_SKIP_LOG` when set, for the summary. A test that skips only a part calls this directly
/// with `Skip::HostFeature` and goes on.
pub fn skip(kind: Skip, reason: &str) {
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    if kind == Skip::Prerequisite && std::env::var_os("HUSK_REQUIRE_ALL").is_some_and(|v| v == "1")
    {
        panic!("{test} cannot run: {reason} (HUSK_REQUIRE_ALL=1: every live test must run here)");
    }
    let kind = match kind {
        Skip::Prerequisite => "prerequisite",
        Skip::HostFeature => "host-feature",
    };
    let line = format!("SKIP {kind} {test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(log) = std::env::var_os("HUSK_SKIP_LOG") {
        // One O_APPEND write per line: test threads and binaries share the file.
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("open HUSK_SKIP_LOG {}: {e}", log.to_string_lossy()));
        f.write_all(line.as_bytes()).unwrap();
    }
}

/// Polls `cond` every 10 ms until it holds. `deadline` is a backstop against a hang, never a
/// guess at how long the wait takes: pick it generous (see `PATIENCE`). Past it, the test fails
/// naming `what` it waited for.
pub fn wait_until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(
            Instant::now() < end,
            "gave up after {deadline:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The deadline for conditions that hold within moments on a quiet machine: long enough for a
/// 2-core host running several suites, or an emulated guest, at once.
pub const PATIENCE: Duration = Duration::from_secs(60);

fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Replaces the config with the one `runc spec` writes (as tutorials make bundles), keeping the
/// root and the command. runc is a prerequisite (test-cgroup2.sh hands it to the guest): where
/// it is missing, that part is skipped by name, the `husk spec` config stays and this says false.
pub fn use_runc_spec(env: &mut Env) -> bool {
    let dir = env.dir.join("runc-spec");
    std::fs::create_dir_all(&dir).unwrap();
    let st = match Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(&dir)
        .status()
    {
        Ok(st) => st,
        Err(e) => {
            skip(
                Skip::Prerequisite,
                &format!("the runc spec part: no runc ({e})"),
            );
            return false;
        }
    };
    assert!(st.success(), "runc spec failed");
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    config["root"] = env.config["root"].clone();
    config["process"]["args"] = env.config["process"]["args"].clone();
    config["process"]["terminal"] = json!(false);
    env.config = config;
    true
}

/// The shared read-only rootfs: busybox with its applets, and /bin/probe.
pub fn rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let dir = assets().join(format!("rootfs-{}", std::process::id()));
            build_rootfs(&dir);
            dir
        })
        .clone()
}

/// A private, writable copy of the rootfs (for tests that plant things in it).
pub fn private_rootfs(name: &str) -> PathBuf {
    let dir = assets().join(format!("rootfs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    build_rootfs(&dir);
    dir
}

fn build_rootfs(dir: &Path) {
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let bb = busybox().expect("busybox");
    std::fs::copy(&bb, dir.join("bin/busybox")).unwrap();
    let list = Command::new(&bb).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
    }
    // HUSK_PROBE: a prebuilt static probe (the cgroup v2 guest has no compiler).
    if let Some(pre) = std::env::var_os("HUSK_PROBE") {
        std::fs::copy(pre, dir.join("bin/probe")).unwrap();
    } else {
        let probe_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/probe/probe.c");
        let st = Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(dir.join("bin/probe"))
            .arg(&probe_src)
            .status()
            .unwrap();
        assert!(st.success(), "building the probe failed");
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// One test's world: a bundle dir and a state root, removed at the end.
pub struct Env {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub config: Value,
}

impl Env {
    pub fn new(name: &str) -> Env {
        let dir = assets().join(format!("t-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).unwrap();
        let root = dir.join("state");
        let out = Command::new(HUSK)
            .args(["spec", "--bundle"])
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "husk spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
        config["root"]["path"] = json!(rootfs());
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["/bin/probe"]);
        Env {
            dir,
            root,
            bundle,
            config,
        }
    }

    pub fn id(&self, suffix: &str) -> String {
        format!("it-{}-{suffix}", std::process::id())
    }

    pub fn write_config(&self) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// A new user namespace whose ids 0 to 65535 are the host's from `host_id` on.
    pub fn user_namespace(&mut self, host_id: u32) {
        let map = json!([{"containerID": 0, "hostID": host_id, "size": 65536}]);
        self.config["linux"]["uidMappings"] = map.clone();
        self.config["linux"]["gidMappings"] = map;
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
    }

    /// `husk create` of `id` from this bundle (the config as last written) as a child, stdin
    /// from /dev/null: for tests that act while it runs.
    pub fn spawn_create(
        &self,
        id: &str,
        stdout: impl Into<Stdio>,
        stderr: impl Into<Stdio>,
    ) -> std::process::Child {
        Command::new(HUSK)
            .arg("--root")
            .arg(&self.root)
            .args(["create", "-b"])
            .arg(&self.bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap()
    }

    /// Runs husk with stdout/stderr in files, not pipes: a created container inherits them and
    /// would hold a pipe open long after husk exits.
    pub fn husk(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(HUSK);
        cmd.arg("--root").arg(&self.root).args(args);
        self.capture(cmd)
    }

    /// Writes the config, then runs `cmd` with stdin from /dev/null and stdout/stderr in files
    /// of this test's dir (see `husk`).
    pub fn capture(&self, cmd: Command) -> Output {
        self.write_config();
        self.capture_as_is(cmd)
    }

    /// `capture` without writing the config: for threads running husk at once, which must not
    /// rewrite config.json while another's `create` reads it.
    pub fn capture_as_is(&self, mut cmd: Command) -> Output {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (out, err) = (
            self.dir.join(format!("out.{n}")),
            self.dir.join(format!("err.{n}")),
        );
        let status = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&out).unwrap(),
            stderr: std::fs::read(&err).unwrap(),
        }
    }

    /// `husk run -b BUNDLE ID` with the current config.
    pub fn run(&self, id: &str) -> Output {
        let b = self.bundle.to_string_lossy().into_owned();
        self.husk(&["run", "-b", &b, id])
    }

    /// Drops a namespace kind (e.g. "pid") from the config.
    pub fn without_namespace(&mut self, kind: &str) -> &mut Env {
        let ns = self.config["linux"]["namespaces"].clone();
        let kept: Vec<&Value> = ns
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] != kind)
            .collect();
        self.config["linux"]["namespaces"] = json!(kept);
        self
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Env {
        self.config["process"]["args"] = json!(args);
        self
    }
}

impl Env {
    /// The container's status as `husk state` reports it; "" when it has none.
    pub fn status(&self, id: &str) -> String {
        let st: Value =
            serde_json::from_slice(&self.husk(&["state", id]).stdout).unwrap_or(Value::Null);
        st["status"].as_str().unwrap_or_default().to_string()
    }

    /// `husk run -d -b BUNDLE ID` of the current config; a failure fails the test with husk's
    /// stderr.
    pub fn run_detached(&self, id: &str) {
        let b = self.bundle.to_string_lossy().into_owned();
        let o = self.husk(&["run", "-d", "-b", &b, id]);
        assert!(o.status.success(), "run -d {id}: {}", stderr(&o));
    }

    /// Polls until the container reports `want` (PATIENCE: the machine may be loaded).
    pub fn wait_status(&self, id: &str, want: &str) {
        wait_until(PATIENCE, &format!("{id} is {want}"), || {
            self.status(id) == want
        });
    }
}

/// Runs `WRAPPER... husk --root R ARGS...` through `sh -c PRELUDE; exec "$@"`, so fds the shell
/// opened (not close-on-exec) are open in husk as a careless caller would leave them, and a
/// wrapper (`taskset`) sets what husk inherits.
pub fn husk_via_sh(env: &Env, prelude: &str, wrapper: &[&str], args: &[&str]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{prelude}\nexec \"$@\""))
        .arg("sh")
        .args(wrapper)
        .arg(HUSK)
        .arg("--root")
        .arg(&env.root)
        .args(args);
    env.capture(cmd)
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let _ = Command::new(HUSK)
                    .arg("--root")
                    .arg(&self.root)
                    .args(["delete", "--force"])
                    .arg(e.file_name())
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses probe output into key → value.
pub fn probe(o: &Output) -> BTreeMap<String, String> {
    assert!(
        o.status.success(),
        "container failed: status {:?}\nstderr: {}\nstdout: {}",
        o.status,
        stderr(o),
        stdout(o)
    );
    stdout(o)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn host_ns(kind: &str) -> String {
    std::fs::metadata(format!("/proc/self/ns/{kind}"))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m).to_string())
        .unwrap()
}

/// The container's cgroup directories: one per v1 hierarchy, or the one v2 directory.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("/sys/fs/cgroup/husk").join(id)];
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        v.push(h.path().join("husk").join(id));
    }
    v
}

/// The pids in the container's cgroup.
pub fn cgroup_procs(id: &str) -> String {
    cgroup_dirs(id)
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .unwrap_or_default()
}

/// Asserts no cgroup directory for `id` exists in any hierarchy.
pub fn assert_no_cgroup(id: &str) {
    for p in cgroup_dirs(id) {
        assert!(!p.exists(), "cgroup left behind: {}", p.display());
    }
}

pub fn assert_no_state(env: &Env, id: &str) {
    assert!(
        !env.root.join(id).exists(),
        "state dir left behind for {id}"
    );
}

/// Asserts nothing is mounted on the host at `p`.
pub fn assert_not_mounted(p: &Path) {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = p.to_string_lossy();
    assert!(
        !mi.lines().any(|l| l.split_whitespace().nth(4) == Some(&*p)),
        "something was mounted on the host at {p}"
    );
}

/// Waits for `child` to exit and returns its exit code (None if a signal ended it). Kills it
/// first if it outlives `PATIENCE`, so a failing test does not leak it.
pub fn wait_code(child: &mut std::process::Child) -> Option<i32> {
    struct KillOnPanic<'a>(&'a mut std::process::Child);
    impl Drop for KillOnPanic<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let guard = KillOnPanic(child);
    let mut code = None;
    wait_until(PATIENCE, "the child exits", || {
        match guard.0.try_wait().unwrap() {
            Some(st) => {
                code = st.code();
                true
            }
            None => false,
        }
    });
    code
}

/// A host directory an image points its symlinks at. It holds one marker file (named like a
/// device, so a /dev setup that deletes or replaces it would show); it must end as it began and
/// never be a mount point.
pub struct Bait {
    pub dir: PathBuf,
}

impl Bait {
    pub fn new(env: &Env) -> Bait {
        let dir = env.dir.join("bait");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ptmx"), "host marker\n").unwrap();
        Bait { dir }
    }

    /// `/../../..<dir>`: an absolute link climbing above / before naming the host dir.
    pub fn escape_link(&self) -> String {
        format!("/../../../..{}", self.dir.display())
    }

    pub fn assert_untouched(&self) {
        let entries: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(entries, ["ptmx"], "host dir written");
        assert_eq!(
            std::fs::read_to_string(self.dir.join("ptmx")).unwrap(),
            "host marker\n"
        );
        assert_not_mounted(&self.dir);
    }
}

/// Whether a command line names `id` as a whole word: `it-1-n6` is not named by `… it-1-n64`
/// (tests of one binary share the `it-PID-` prefix, so a substring match would wait on another
/// test's container).
fn names_id(cmdline: &str, id: &str) -> bool {
    // A path (a store directory the monitors' argv carries) is one whole argument: never a
    // word of the split below, which made faults.rs' wait for the monitors a no-op.
    if id.contains('/') {
        return cmdline.split('\0').any(|arg| arg == id);
    }
    cmdline
        .split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .any(|word| word == id)
}

/// Processes whose command line names `id` (a husk that never exec'd keeps husk's argv).
pub fn procs_naming(id: &str) -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline"))
            && names_id(&String::from_utf8_lossy(&c), id)
            && alive(&name)
        {
            v.push(name);
        }
    }
    v
}

/// Running (not gone, not a zombie).
pub fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|s| {
        let state = s
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().chars().next());
        !matches!(state, Some(Some('Z' | 'X')))
    })
}

/// fds any process holds on files under `dir` ("pid fd -> path").
pub fn fds_into(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(to) = std::fs::read_link(fd.path())
                && to.starts_with(dir)
            {
                v.push(format!(
                    "process {pid} fd {} -> {}",
                    fd.file_name().to_string_lossy(),
                    to.display()
                ));
            }
        }
    }
    v
}

/// Whether `tool` is on PATH (the tests' prerequisite checks).
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `o`'s stdout, after asserting it succeeded (the failure shows `what` and its stderr).
pub fn ok_stdout(o: &Output, what: impl std::fmt::Debug) -> String {
    assert!(o.status.success(), "husk {what:?}: {}", stderr(o));
    stdout(o)
}

/// Runs a bash fixture script in `dir`, failing the test with its stderr when it fails.
pub fn fixture_script(dir: &Path, script: &str) {
    let o = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "fixture: {}", stderr(&o));
}

/// Whether script(1) (util-linux) is there to give a command a pty.
pub fn has_script() -> bool {
    Command::new("script").arg("--version").output().is_ok()
}

/// `sh -c cmdline` with a new pty as its terminal, made by script(1); stdin is /dev/null.
pub fn in_a_pty(cmdline: &str) -> Output {
    Command::new("script")
        .args(["-qec", cmdline, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
