//! One regression test per class of published runtime escape (README "Security"): each runs on a
//! hostile rootfs, or with a racing process where the attack is a race (bounded), and checks that
//! nothing outside the rootfs was touched and that the husk binary is byte-for-byte unchanged.
//! Classes held elsewhere are named in the README table (hostile.rs, exec.rs, process.rs).

mod common;
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hasher};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The husk binary's content hash, taken at the start of a test and compared at the end.
struct BinaryGuard(u64);

impl BinaryGuard {
    fn hash() -> u64 {
        let mut h = DefaultHasher::new();
        h.write(&std::fs::read(HUSK).expect("read the husk binary"));
        h.finish()
    }

    fn new() -> BinaryGuard {
        BinaryGuard(Self::hash())
    }

    fn check(&self) {
        assert_eq!(Self::hash(), self.0, "the husk binary changed: {HUSK}");
    }
}

fn mounts(env: &mut Env) -> &mut Vec<Value> {
    env.config["mounts"].as_array_mut().unwrap()
}

/// `run -d` of the current config; returns the id.
fn run_detached(env: &Env, suffix: &str) -> String {
    let id = env.id(suffix);
    env.run_detached(&id);
    id
}

/// CVE-2019-5736 scaffolding: a rootfs whose `/bin/evil` is `#!/proc/self/exe`, a shared dir
/// for the attacker's ready/go/out files, and the husk binary's identity for the attacker to look for.
struct ExeAttack {
    env: Env,
    rootfs: PathBuf,
    share: PathBuf,
    guard: BinaryGuard,
}

impl ExeAttack {
    fn new(name: &str) -> ExeAttack {
        let guard = BinaryGuard::new();
        let mut env = Env::new(name);
        let rootfs = private_rootfs(name);
        let evil = rootfs.join("bin/evil");
        std::fs::write(&evil, "#!/proc/self/exe\n").unwrap();
        std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
        let share = env.dir.join("share");
        std::fs::create_dir_all(&share).unwrap();
        env.config["root"]["path"] = json!(rootfs);
        mounts(&mut env)
            .push(json!({"destination": "/share", "source": share, "options": ["bind"]}));
        ExeAttack {
            env,
            rootfs,
            share,
            guard,
        }
    }

    /// The attacker's command: `probe exe-attack` hunting the husk binary (see probe.c).
    fn attacker(&self) -> Vec<String> {
        let md = std::fs::metadata(HUSK).unwrap();
        ["/bin/probe", "exe-attack"]
            .into_iter()
            .map(String::from)
            .chain([md.dev().to_string(), md.ino().to_string()])
            .chain(["/share/ready", "/share/go", "/share/out"].map(String::from))
            .collect()
    }

    /// Waits until the attacker has scanned /proc once: from then on it is watching.
    fn wait_ready(&self) {
        let ready = self.share.join("ready");
        wait_until(PATIENCE, "the attacker has scanned /proc", || {
            ready.exists()
        });
    }

    /// Tells the attacker to stop (no husk process runs now) and reads its counts (the file
    /// appears whole: the probe renames it into place).
    fn report(&self) -> BTreeMap<String, i64> {
        std::fs::write(self.share.join("go"), "").unwrap();
        let out = self.share.join("out");
        wait_until(PATIENCE, "the attacker reports", || out.exists());
        let out: BTreeMap<String, i64> = std::fs::read_to_string(out)
            .expect("the attacker reports")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
            .collect();
        eprintln!("exe-attack: {out:?}");
        assert!(out["scans"] > 0, "{out:?}");
        assert_eq!(out["direct_rw"], 0, "{out:?}");
        assert_eq!(
            out["rw_ok"], 0,
            "the husk binary was opened for writing: {out:?}"
        );
        out
    }
}

impl Drop for ExeAttack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.rootfs);
        if !std::thread::panicking() {
            self.guard.check();
        }
    }
}

/// CVE-2019-5736. The image's `/bin/evil` is `#!/proc/self/exe`: when `husk exec` runs it, the
/// kernel executes whatever /proc/self/exe of the exec'ing process is, as a process of the
/// container, dumpable. Meanwhile the container's init scans /proc/PID/exe of everything it can
/// see, opens it for writing, and keeps O_PATH handles of the husk binary to reopen for writing
/// through /proc/self/fd once no husk process runs (ETXTBSY no longer protects then). Nothing is
/// ever written: a successful open is the failure.
#[test]
fn cve_2019_5736_the_husk_binary_cannot_be_reopened_for_writing() {
    require_root!();
    let mut a = ExeAttack::new("s-exe");
    let attacker = a.attacker();
    a.env
        .args(&attacker.iter().map(String::as_str).collect::<Vec<_>>());
    let id = run_detached(&a.env, "exe");
    // The attacker runs until report() says stop, however long the rounds take.
    a.wait_ready();
    for _ in 0..8 {
        // The husk binary runs inside for a moment (it refuses "/bin/evil" as a command).
        let o = a.env.husk(&["exec", &id, "/bin/evil"]);
        assert!(!o.status.success());
        let o = a.env.husk(&["exec", &id, "/bin/true"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let out = a.report();
    // The container may well get a handle on the binary (it is what the kernel ran), but only
    // through a read-only mount: otherwise the reopen below succeeds as soon as no husk process
    // happens to be running.
    assert_eq!(
        out["grabbed_on_rw_mount"], 0,
        "the container holds the husk binary on a writable mount: {out:?}"
    );
    // Every handle the container got on the binary is on a read-only mount (EROFS), or the
    // binary was busy at that moment (ETXTBSY); nothing else.
    assert_eq!(out["rw_other"], 0, "{out:?}");
    let _ = a.env.husk(&["delete", "--force", &id]);
}

/// CVE-2019-5736 on the way from create to the program: init runs the host's husk binary until
/// it executes the program, non-dumpable, so a process exec'd into the created container finds
/// no handle on it; and the program is executed through the sealed husk-exec trampoline, so an
/// image whose command is `#!/proc/self/exe` runs that trampoline (which refuses), not husk.
#[test]
fn cve_2019_5736_init_reaches_the_program_without_exposing_husk() {
    require_root!();
    let mut a = ExeAttack::new("s-init");
    a.env.args(&["/bin/evil"]);
    let b = a.env.bundle.to_string_lossy().into_owned();
    let id = a.env.id("created");
    let o = a.env.husk(&["create", "-b", &b, &id]);
    assert!(o.status.success(), "create: {}", stderr(&o));
    let mut exec = vec!["exec", "-d", &id];
    let attacker = a.attacker();
    exec.extend(attacker.iter().map(String::as_str));
    let o = a.env.husk(&exec);
    assert!(o.status.success(), "exec -d: {}", stderr(&o));
    // One whole scan of /proc while init (still the husk binary until start) is there.
    a.wait_ready();
    let out = a.report();
    assert_eq!(
        out["grabbed"], 0,
        "init's husk binary was reachable: {out:?}"
    );
    let _ = a.env.husk(&["delete", "--force", &id]);

    let o = a
        .env
        .husk(&["run", "--explain", "-b", &b, &a.env.id("run")]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("execve husk-exec (sealed memfd)"),
        "{}",
        stderr(&o)
    );
    // The kernel ran /proc/self/exe = the trampoline, which refuses its interpreter argv.
    assert!(stderr(&o).contains("husk-exec: usage"), "{}", stderr(&o));

    // Where the trampoline is not safe (CAP_SYS_PTRACE could reach a non-dumpable init), husk
    // re-executes from a read-only copy first, as the exec path always does.
    a.env.config["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_SYS_PTRACE"));
    let o = a
        .env
        .husk(&["run", "--explain", "-b", &b, &a.env.id("ptrace")]);
    assert!(
        stderr(&o).contains(
            "re-executing from a read-only copy of husk: the container may hold CAP_SYS_PTRACE"
        ),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("husk-exec"), "{}", stderr(&o));
}

/// CVE-2024-21626: fds the caller leaked (a directory on the host, not close-on-exec, on every
/// slot 3..9) never reach the container, and a cwd of /proc/self/fd/N is refused (run and exec)
/// or lands inside the rootfs: the host directory's marker is never visible.
#[test]
fn cve_2024_21626_leaked_fds_and_a_proc_self_fd_cwd_stay_inside() {
    require_root!();
    let guard = BinaryGuard::new();
    let mut env = Env::new("s-leak");
    let host = env.dir.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("HOST_MARKER"), "").unwrap();
    let prelude: String = (3..=9)
        .map(|fd| format!("exec {fd}<'{}'\n", host.display()))
        .collect();
    let b = env.bundle.to_string_lossy().into_owned();
    let script = "ls -a; ls -a /proc/self/fd/*/ 2>/dev/null; exec /bin/probe";
    env.args(&["/bin/sh", "-c", script]);
    for n in 0..=9 {
        env.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        let id = env.id(&format!("leak{n}"));
        let o = husk_via_sh(&env, &prelude, &[], &["run", "-b", &b, &id]);
        assert!(
            !stdout(&o).contains("HOST_MARKER"),
            "cwd fd {n}: {}",
            stdout(&o)
        );
        if o.status.success() {
            let p = probe(&o);
            assert_eq!(p["fds"], "0,1,2");
        } else {
            assert!(stderr(&o).contains("cwd"), "{}", stderr(&o));
        }
        assert_no_state(&env, &id);
    }
    // exec: the same leak into a running container, and the cwd through the exec'd process' fds.
    env.config["process"]["cwd"] = json!("/");
    env.args(&["/bin/sleep", "inf"]);
    let id = run_detached(&env, "leakexec");
    for n in 0..=9 {
        let cwd = format!("/proc/self/fd/{n}");
        let o = husk_via_sh(
            &env,
            &prelude,
            &[],
            &["exec", "--cwd", &cwd, &id, "/bin/sh", "-c", script],
        );
        assert!(
            !stdout(&o).contains("HOST_MARKER"),
            "cwd fd {n}: {}",
            stdout(&o)
        );
        assert!(!o.status.success(), "exec --cwd {cwd} ran: {}", stdout(&o));
    }
    let o = husk_via_sh(&env, &prelude, &[], &["exec", &id, "/bin/sh", "-c", script]);
    assert!(!stdout(&o).contains("HOST_MARKER"), "{}", stdout(&o));
    assert_eq!(probe(&o)["fds"], "0,1,2");
    let _ = env.husk(&["delete", "--force", &id]);
    guard.check();
}

/// Swaps `a` and `b` in `dir` (RENAME_EXCHANGE) on a thread until the returned flag is set.
fn swapper(dir: &Path, a: &str, b: &str) -> (Arc<AtomicBool>, std::thread::JoinHandle<usize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let fd = std::fs::File::open(dir).unwrap();
    let (a, b) = (PathBuf::from(a), PathBuf::from(b));
    let s = stop.clone();
    let h = std::thread::spawn(move || {
        let mut swaps = 0;
        while !s.load(Ordering::Relaxed) {
            husk_sys::fs::renameat2_exchange(fd.as_fd(), &a, &b).unwrap();
            swaps += 1;
        }
        swaps
    });
    (stop, h)
}

/// Iterations of a race test: each is one container start while the swapper runs.
const RACE_RUNS: usize = 100;

/// CVE-2021-30465: the mount target /mnt/target is swapped, in a loop, with a symlink to a host
/// directory while containers start. Each mount lands inside the rootfs (at the target, or where
/// the link points *inside* the root), the container sees it, and the host directory is never
/// mounted on or written.
#[test]
fn cve_2021_30465_a_mount_target_swapped_with_a_symlink_stays_inside() {
    require_root!();
    let guard = BinaryGuard::new();
    let mut env = Env::new("s-swap");
    let bait = Bait::new(&env);
    let rootfs = private_rootfs("s-swap");
    std::fs::create_dir_all(rootfs.join("mnt/target")).unwrap();
    symlink(&bait.dir, rootfs.join("mnt/link")).unwrap();
    env.config["root"]["path"] = json!(rootfs);
    mounts(&mut env).push(json!({"destination": "/mnt/target", "type": "tmpfs",
        "source": "tmpfs", "options": ["size=88k"]}));
    env.args(&["/bin/cat", "/proc/self/mountinfo"]);
    let inside = bait.dir.to_string_lossy().into_owned();
    let expected = ["/mnt/target", "/mnt/link", inside.as_str()];
    let (stop, h) = swapper(&rootfs.join("mnt"), "target", "link");
    let (mut ok, mut failed) = (0, 0);
    for i in 0..RACE_RUNS {
        let o = env.run(&env.id(&format!("swap{i}")));
        if !o.status.success() {
            // A clean refusal is safe; it must say so in one line.
            assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
            failed += 1;
            continue;
        }
        ok += 1;
        let out = stdout(&o);
        let at: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("size=88k"))
            .filter_map(|l| l.split_whitespace().nth(4))
            .collect();
        assert_eq!(at.len(), 1, "the tmpfs is not in the container: {out}");
        assert!(expected.contains(&at[0]), "mounted at {}", at[0]);
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = h.join().unwrap();
    eprintln!("30465: {ok} runs, {failed} refused, {swaps} swaps");
    assert!(ok > 0);
    bait.assert_untouched();
    guard.check();
    let _ = std::fs::remove_dir_all(&rootfs);
}

/// CVE-2024-45310: a parent of new mount targets (/race) is swapped in a loop with a symlink to a
/// host directory while husk makes the missing directories (/race/dN/sub, new each time): no
/// directory or file is ever made on the host.
#[test]
fn cve_2024_45310_mkdir_of_mount_targets_under_a_racing_symlink_stays_inside() {
    require_root!();
    let guard = BinaryGuard::new();
    let mut env = Env::new("s-mkdir");
    let bait = Bait::new(&env);
    let rootfs = private_rootfs("s-mkdir");
    std::fs::create_dir_all(rootfs.join("race")).unwrap();
    symlink(&bait.dir, rootfs.join("racelink")).unwrap();
    env.config["root"]["path"] = json!(rootfs);
    env.args(&["/bin/true"]);
    let base = mounts(&mut env).clone();
    let (stop, h) = swapper(&rootfs, "race", "racelink");
    let mut ok = 0;
    for i in 0..RACE_RUNS {
        let mut m = base.clone();
        m.push(
            json!({"destination": format!("/race/d{i}/sub"), "type": "tmpfs",
            "source": "tmpfs", "options": ["size=64k"]}),
        );
        // A file bind target too: its parent directories and the file itself are created.
        m.push(
            json!({"destination": format!("/race/f{i}/file"), "source": "/etc/passwd",
            "options": ["bind", "ro"]}),
        );
        env.config["mounts"] = json!(m);
        let o = env.run(&env.id(&format!("mk{i}")));
        if o.status.success() {
            ok += 1;
        } else {
            assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = h.join().unwrap();
    eprintln!("45310: {ok}/{RACE_RUNS} runs, {swaps} swaps");
    assert!(ok > 0);
    bait.assert_untouched();
    guard.check();
    let _ = std::fs::remove_dir_all(&rootfs);
}

/// CVE-2025-31133: /dev/null is a symlink to a procfs file when masking starts, either because
/// the config binds the image's own /dev, or because something replaced it after the devices
/// were made (a createContainer hook plays the racing container). Masking must fail hard; no
/// procfs file is ever bound writable into the container.
#[test]
fn cve_2025_31133_a_dev_null_symlink_to_procfs_fails_masking() {
    require_root!();
    let guard = BinaryGuard::new();
    let core_pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let mut env = Env::new("s-null");
    let rootfs = private_rootfs("s-null");
    symlink("/proc/sys/kernel/core_pattern", rootfs.join("dev/null")).unwrap();
    env.config["root"]["path"] = json!(rootfs);
    env.args(&[
        "/bin/sh",
        "-c",
        "echo '|/bin/escape' > /proc/kcore; echo written",
    ]);
    env.config["linux"]["maskedPaths"] = json!(["/proc/kcore", "/proc/keys", "/proc/timer_list"]);
    // 1. The image's own /dev, bound in place of the tmpfs.
    let image_dev = mounts(&mut env)
        .iter_mut()
        .find(|m| m["destination"] == "/dev")
        .unwrap();
    *image_dev = json!({"destination": "/dev", "source": rootfs.join("dev"), "options": ["rbind"]});
    let id = env.id("null-bind");
    let o = env.run(&id);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("not the null device"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("written"));
    assert_no_state(&env, &id);
    // 2. The usual /dev tmpfs, with /dev/null swapped after husk made it.
    let fresh = Env::new("s-null2");
    env.config["mounts"] = fresh.config["mounts"].clone();
    env.config["hooks"] = json!({"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
        format!("rm {0}/dev/null && ln -s /proc/sys/kernel/core_pattern {0}/dev/null",
            rootfs.display())]}]});
    let id = env.id("null-hook");
    let o = env.run(&id);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("not the null device"), "{}", stderr(&o));
    assert_no_state(&env, &id);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        core_pattern
    );
    guard.check();
    let _ = std::fs::remove_dir_all(&rootfs);
}

/// CVE-2019-16884 / CVE-2025-52881: the image brings a fake /proc (a directory with a
/// `sys/net/ipv4/ip_forward` file and a `self/oom_score_adj`), and the config either mounts no
/// procfs or binds the image's fake tree there. Sysctl and oom_score_adj writes are refused as
/// "not on procfs" and the fake files are never written; so are masks and read-only paths, which
/// would otherwise go through the image's /proc/self/fd links.
#[test]
fn cve_2019_16884_writes_to_a_fake_proc_are_refused() {
    require_root!();
    let guard = BinaryGuard::new();
    let mut env = Env::new("s-fakeproc");
    let rootfs = private_rootfs("s-fakeproc");
    let fake = |dir: &Path| {
        std::fs::create_dir_all(dir.join("sys/net/ipv4")).unwrap();
        std::fs::write(dir.join("sys/net/ipv4/ip_forward"), "fake\n").unwrap();
        std::fs::create_dir_all(dir.join("self")).unwrap();
        std::fs::write(dir.join("self/oom_score_adj"), "fake\n").unwrap();
        // Where husk's fd paths would go, links elsewhere in the container.
        std::fs::create_dir_all(dir.join("self/fd")).unwrap();
        for n in 0..32 {
            symlink("/tmp", dir.join(format!("self/fd/{n}"))).unwrap();
        }
    };
    fake(&rootfs.join("proc"));
    fake(&rootfs.join("fakeproc"));
    env.config["root"]["path"] = json!(rootfs);
    env.args(&["/bin/true"]);
    let with_procfs = mounts(&mut env).clone();
    let no_proc: Vec<Value> = with_procfs
        .iter()
        .filter(|m| m["destination"] != "/proc")
        .cloned()
        .collect();
    let mut bind_fake = no_proc.clone();
    bind_fake.insert(
        0,
        json!({"destination": "/proc", "source": rootfs.join("fakeproc"), "options": ["rbind"]}),
    );
    for (name, m) in [("noproc", no_proc), ("bindfake", bind_fake)] {
        env.config["mounts"] = json!(m);
        for (sysctl, oom) in [
            (json!({"net.ipv4.ip_forward": "1"}), None),
            (json!({}), Some(7)),
        ] {
            env.config["linux"]["sysctl"] = sysctl;
            env.config["process"]["oomScoreAdj"] = json!(oom);
            let id = env.id(name);
            let o = env.run(&id);
            assert_eq!(o.status.code(), Some(1), "{name}: {}", stdout(&o));
            assert!(
                stderr(&o).contains("not on procfs"),
                "{name}: {}",
                stderr(&o)
            );
            assert_no_state(&env, &id);
        }
    }
    for dir in ["proc", "fakeproc"] {
        for f in ["sys/net/ipv4/ip_forward", "self/oom_score_adj"] {
            let p = rootfs.join(dir).join(f);
            assert_eq!(
                std::fs::read_to_string(&p).unwrap(),
                "fake\n",
                "{}",
                p.display()
            );
        }
    }
    guard.check();
    let _ = std::fs::remove_dir_all(&rootfs);
}

/// CVE-2026-41579 / CVE-2026-47766 (and CVE-2019-19921's class): the image's /dev or /sys is a
/// symlink to a host directory. Refused before anything is mounted or made; the host directory
/// (with a `ptmx` a /dev setup would delete) is untouched. Also with no /dev mount in the config,
/// where husk's own /dev setup is what would follow the link. (/proc: hostile.rs.)
#[test]
fn cve_2026_41579_dev_and_sys_as_symlinks_are_refused() {
    require_root!();
    let guard = BinaryGuard::new();
    for (top, keep_mounts) in [("dev", true), ("dev", false), ("sys", true)] {
        let mut env = Env::new(&format!("s-{top}-{keep_mounts}"));
        let bait = Bait::new(&env);
        let rootfs = private_rootfs(&format!("s-{top}"));
        std::fs::remove_dir(rootfs.join(top)).unwrap();
        symlink(&bait.dir, rootfs.join(top)).unwrap();
        env.config["root"]["path"] = json!(rootfs);
        if !keep_mounts {
            mounts(&mut env).retain(|m| {
                !m["destination"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("/dev"))
            });
        }
        let id = env.id(top);
        let b = env.bundle.to_string_lossy().into_owned();
        let o = env.husk(&["create", "-b", &b, &id]);
        assert_eq!(o.status.code(), Some(1), "/{top}");
        assert!(stderr(&o).contains("symlink"), "{}", stderr(&o));
        assert_no_state(&env, &id);
        assert_no_cgroup(&id);
        bait.assert_untouched();
        let _ = std::fs::remove_dir_all(&rootfs);
    }
    guard.check();
}

/// CVE-2023-25809: /sys/fs/cgroup is read-only inside, with and without a user namespace (the
/// advisory's case: a rootless-like container with no cgroup namespace of its own).
#[test]
fn cve_2023_25809_cgroupfs_is_read_only_inside() {
    require_root!();
    let guard = BinaryGuard::new();
    let mut env = Env::new("s-cgro");
    let script = "mkdir /sys/fs/cgroup/husk-escape 2>&1; \
                  grep ' /sys/fs/cgroup' /proc/self/mountinfo";
    env.args(&["/bin/sh", "-c", script]);
    let plain = env.config["linux"]["namespaces"].clone();
    let mut userns: Vec<Value> = plain
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "cgroup")
        .cloned()
        .collect();
    userns.push(json!({"type": "user"}));
    for (name, ns) in [("plain", plain), ("userns", json!(userns))] {
        env.config["linux"]["namespaces"] = ns;
        if name == "userns" {
            let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            env.config["linux"]["uidMappings"] = map.clone();
            env.config["linux"]["gidMappings"] = map;
        }
        let id = env.id(name);
        let o = env.run(&id);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains("Read-only file system") || out.contains("Permission denied"),
            "{name}: {out}"
        );
        let lines: Vec<&str> = out.lines().filter(|l| l.contains(" - ")).collect();
        assert!(!lines.is_empty(), "{name}: {out}");
        for l in lines {
            let opts = l.split_whitespace().nth(5).unwrap();
            assert!(opts.split(',').any(|o| o == "ro"), "{name}: writable: {l}");
        }
        for d in cgroup_dirs(&id) {
            assert!(!d.join("husk-escape").exists());
        }
    }
    guard.check();
}
