//! `husk exec` into a running container: namespaces and cgroup of init, exit codes, the flags
//! that shape the process, --process, -d with --pid-file, paused and stopped containers, and no
//! inheritable capabilities. Also `husk features` against this host.

mod common;
use common::*;
use serde_json::{Value, json};
use std::process::{Command, Stdio};

/// A running container whose init sleeps; returns its id and init's pid.
fn running(env: &mut Env, suffix: &str) -> (String, String) {
    env.args(&["/bin/sleep", "inf"]);
    let id = env.id(suffix);
    let b = env.bundle.to_string_lossy().into_owned();
    let pf = env.dir.join(format!("init-{suffix}.pid"));
    let pfs = pf.to_string_lossy().into_owned();
    let o = env.husk(&["run", "-d", "-b", &b, "--pid-file", &pfs, &id]);
    assert!(o.status.success(), "run -d: {}", stderr(&o));
    (id, std::fs::read_to_string(&pf).unwrap())
}

/// Whether every process of the container is frozen: v1 `freezer.state` reads FROZEN (FREEZING
/// while a newcomer is not yet), v2 `cgroup.events` says `frozen 1` (the effective state, not
/// the `cgroup.freeze` request).
fn fully_frozen(id: &str) -> bool {
    cgroup_dirs(id).iter().any(|d| {
        std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            || std::fs::read_to_string(d.join("cgroup.events"))
                .is_ok_and(|s| s.lines().any(|l| l == "frozen 1"))
    })
}

fn ns_of(pid: &str, kind: &str) -> String {
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m).to_string())
        .unwrap()
}

#[test]
fn exec_joins_every_namespace_of_init() {
    require_root!();
    let mut env = Env::new("x-ns");
    let (id, init) = running(&mut env, "ns");
    let p = probe(&env.husk(&["exec", &id, "/bin/probe"]));
    for kind in ["mnt", "pid", "net", "ipc", "uts", "cgroup", "user"] {
        assert_eq!(p[&format!("ns.{kind}")], ns_of(&init, kind), "ns.{kind}");
    }
    // In init's pid namespace, next to init (pid 1).
    assert_ne!(p["pid"], "1");
    assert_eq!(p["hostname"], "husk");
    // Defaults are the container's process: its env, cwd and user.
    assert_eq!(p["cwd"], "/");
    assert_eq!(p["uid"], "0");
    let cfg_env = env.config["process"]["env"].as_array().unwrap().len();
    assert_eq!(p.keys().filter(|k| k.starts_with("env.")).count(), cfg_env);
    assert_eq!(p["env.TERM"], "xterm");
    assert_eq!(p["dumpable"], "1");
}

#[test]
fn exit_codes_pass_through() {
    require_root!();
    let mut env = Env::new("x-exit");
    let (id, _) = running(&mut env, "exit");
    assert_eq!(
        env.husk(&["exec", &id, "/bin/probe", "exit", "7"])
            .status
            .code(),
        Some(7)
    );
    assert_eq!(
        env.husk(&["exec", &id, "/bin/probe", "kill", "9"])
            .status
            .code(),
        Some(137)
    );
    // `sh -c` arguments are the command's, not husk's (-c is --cap to husk).
    assert_eq!(
        env.husk(&["exec", &id, "sh", "-c", "exit 4"]).status.code(),
        Some(4)
    );
    let missing = env.husk(&["exec", &id, "/bin/nope"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("nope"), "{}", stderr(&missing));
    // The container is unharmed.
    assert_eq!(env.status(&id), "running");
}

#[test]
fn env_cwd_user_flags_before_and_after_the_id() {
    require_root!();
    let mut env = Env::new("x-flags");
    let (id, _) = running(&mut env, "flags");
    let p = probe(&env.husk(&[
        "exec",
        "-e",
        "FOO=bar",
        "--env",
        "TERM=dumb",
        &id,
        "--cwd",
        "/tmp",
        "-u",
        "1:2",
        "--additional-gids",
        "5,6",
        "/bin/probe",
    ]));
    assert_eq!(p["env.FOO"], "bar");
    // Replaced in place, not given twice.
    assert_eq!(p["env.TERM"], "dumb");
    assert!(p.contains_key("env.PATH"));
    assert_eq!(p["cwd"], "/tmp");
    assert_eq!((p["uid"].as_str(), p["gid"].as_str()), ("1", "2"));
    assert_eq!(p["groups"], "5,6");
    // `-u 1` is uid 1 (crun CVE-2026-30892 read it otherwise); the gid stays the container's.
    let p = probe(&env.husk(&["exec", "-u", "1", &id, "/bin/probe"]));
    assert_eq!((p["uid"].as_str(), p["gid"].as_str()), ("1", "0"));
    // The root is read-only: a missing cwd cannot be made, and the error says where and why.
    let o = env.husk(&["exec", "--cwd", "/nope", &id, "/bin/true"]);
    assert!(stderr(&o).contains("chdir /nope: EROFS"), "{}", stderr(&o));
    let bad = env.husk(&["exec", "-u", "root", &id, "/bin/true"]);
    assert!(stderr(&bad).contains("--user"), "{}", stderr(&bad));
    let p = probe(&env.husk(&["exec", "--no-new-privs", &id, "/bin/probe"]));
    assert_eq!(p["nnp"], "1");
}

#[test]
fn process_file() {
    require_root!();
    let mut env = Env::new("x-procfile");
    let (id, _) = running(&mut env, "pf");
    let file = env.dir.join("process.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&json!({
            "args": ["/bin/probe"],
            "env": ["PATH=/bin", "ONLY=this"],
            "cwd": "/etc",
            "user": {"uid": 3, "gid": 4},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 88}],
        }))
        .unwrap(),
    )
    .unwrap();
    let f = file.to_string_lossy().into_owned();
    let p = probe(&env.husk(&["exec", "--process", &f, &id]));
    assert_eq!(p["env.ONLY"], "this");
    assert_eq!(p.keys().filter(|k| k.starts_with("env.")).count(), 2);
    assert_eq!(p["cwd"], "/etc");
    assert_eq!((p["uid"].as_str(), p["gid"].as_str()), ("3", "4"));
    assert_eq!(p["rlimit.nofile"], "77:88");
    let bad = env.dir.join("bad.json");
    std::fs::write(&bad, "{\"args\": []}").unwrap();
    let o = env.husk(&["exec", "-p", &bad.to_string_lossy(), &id]);
    assert!(stderr(&o).contains("process.args"), "{}", stderr(&o));
}

#[test]
fn detach_with_pid_file_joins_the_cgroup() {
    require_root!();
    let mut env = Env::new("x-detach");
    let (id, _) = running(&mut env, "d");
    let pf = env.dir.join("exec.pid");
    let pfs = pf.to_string_lossy().into_owned();
    // The process never ends by itself: exec -d returning at all shows it did not wait.
    env.write_config();
    let err = env.dir.join("exec-d.err");
    let mut exec = Command::new(HUSK)
        .arg("--root")
        .arg(&env.root)
        .args(["exec", "-d", "--pid-file", &pfs, &id, "/bin/sleep", "inf"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    assert_eq!(
        wait_code(&mut exec),
        Some(0),
        "{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    let pid = std::fs::read_to_string(&pf).unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with(b"/bin/sleep\x00inf"), "{cmdline:?}");
    assert!(
        cgroup_procs(&id).lines().any(|l| l.trim() == pid),
        "{pid} not in {}",
        cgroup_procs(&id)
    );
    assert!(env.husk(&["delete", "--force", &id]).status.success());
    assert_no_cgroup(&id);
}

/// A container whose init made its cgroup a parent (systemd as init, a nested runtime: init
/// moved to a child cgroup, a controller enabled for children) can hold no process there
/// (EBUSY): exec joins init's cgroup, as runc does; and delete removes the child cgroups.
#[test]
fn exec_into_a_cgroup_init_made_a_parent_joins_inits() {
    require_root!();
    let mut env = Env::new("x-nested");
    let (id, init) = running(&mut env, "nested");
    let unified = cgroup_dirs(&id)
        .into_iter()
        .find(|d| d.join("cgroup.subtree_control").exists());
    let controller = unified.as_ref().and_then(|u| {
        let c = std::fs::read_to_string(u.join("cgroup.controllers")).ok()?;
        c.split_whitespace().next().map(String::from)
    });
    let (Some(u), Some(controller)) = (unified, controller) else {
        assert!(env.husk(&["delete", "--force", &id]).status.success());
        return skip(
            Skip::HostFeature,
            "no cgroup2 controller to enable for children",
        );
    };
    std::fs::create_dir(u.join("init")).unwrap();
    std::fs::write(u.join("init/cgroup.procs"), init.trim()).unwrap();
    std::fs::write(u.join("cgroup.subtree_control"), format!("+{controller}")).unwrap();
    let o = env.husk(&["exec", &id, "/bin/cat", "/proc/self/cgroup"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).lines().any(|l| l == "0::/init"),
        "{}",
        stdout(&o)
    );
    let ps = env.husk(&["ps", "--format", "json", &id]);
    assert!(
        stdout(&ps).contains(init.trim()),
        "ps lists init in the child cgroup: {}",
        stdout(&ps)
    );
    let o = env.husk(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_no_cgroup(&id);
}

#[test]
fn paused_is_refused_unless_ignore_paused() {
    require_root!();
    let mut env = Env::new("x-paused");
    let (id, _) = running(&mut env, "p");
    assert!(env.husk(&["pause", &id]).status.success());
    let o = env.husk(&["exec", &id, "/bin/true"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("paused"), "{}", stderr(&o));

    env.write_config();
    let mut child = Command::new(HUSK)
        .arg("--root")
        .arg(&env.root)
        .args(["exec", "--ignore-paused", &id, "/bin/probe", "exit", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.dir.join("ip.err")).unwrap())
        .spawn()
        .unwrap();
    // Frozen with the rest of the container until resume: once it is in the cgroup and the
    // whole cgroup reads frozen again, it cannot have run.
    wait_until(
        PATIENCE,
        "the exec'd process is in the frozen cgroup",
        || cgroup_procs(&id).lines().count() >= 2 && fully_frozen(&id),
    );
    assert!(child.try_wait().unwrap().is_none(), "ran while paused");
    assert!(env.husk(&["resume", &id]).status.success());
    let code = wait_code(&mut child);
    assert_eq!(
        code,
        Some(3),
        "{}",
        std::fs::read_to_string(env.dir.join("ip.err")).unwrap_or_default()
    );
}

#[test]
fn stopped_container_is_an_error() {
    require_root!();
    let mut env = Env::new("x-stopped");
    let (id, _) = running(&mut env, "s");
    assert!(env.husk(&["kill", &id, "KILL"]).status.success());
    wait_until(PATIENCE, "the container is stopped", || {
        env.status(&id) == "stopped"
    });
    let o = env.husk(&["exec", &id, "/bin/true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("stopped"), "{}", stderr(&o));
    let o = env.husk(&["exec", "nope", "/bin/true"]);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}

#[test]
fn no_inheritable_capabilities() {
    require_root!();
    let mut env = Env::new("x-caps");
    let (id, _) = running(&mut env, "c");
    let p = probe(&env.husk(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        "-c",
        "net_raw",
        &id,
        "/bin/probe",
    ]));
    // CVE-2022-29162: --cap goes to bounding, effective and permitted, never inheritable.
    assert_eq!(p["CapInh"], "0000000000000000");
    assert_eq!(p["CapAmb"], "0000000000000000");
    let eff = u64::from_str_radix(&p["CapEff"], 16).unwrap();
    assert_ne!(eff & (1 << 21), 0, "CAP_SYS_ADMIN missing: {eff:x}");
    assert_ne!(eff & (1 << 13), 0, "CAP_NET_RAW missing: {eff:x}");
    let p = probe(&env.husk(&["exec", &id, "/bin/probe"]));
    assert_eq!(p["CapInh"], "0000000000000000");
    assert_eq!(
        u64::from_str_radix(&p["CapEff"], 16).unwrap() & (1 << 21),
        0,
        "the default set has no CAP_SYS_ADMIN"
    );
    let bad = env.husk(&["exec", "--cap", "CAP_NOPE", &id, "/bin/true"]);
    assert!(stderr(&bad).contains("CAP_NOPE"), "{}", stderr(&bad));
}

#[test]
fn features_match_the_host() {
    let out = Command::new(HUSK).arg("features").output().unwrap();
    assert!(out.status.success());
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert_eq!(f["ociVersionMax"], "1.3.0");
    assert_eq!(f["hooks"].as_array().unwrap().len(), 6);
    let opts: Vec<&str> = f["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for o in ["ro", "rbind", "nosuid", "rro", "rprivate", "strictatime"] {
        assert!(opts.contains(&o), "{o}");
    }
    // Filesystem data is not a mount option husk interprets.
    assert!(!opts.contains(&"mode=755"));
    let linux = &f["linux"];
    let mut host_ns: Vec<String> = std::fs::read_dir("/proc/self/ns")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with("_for_children"))
        .map(|n| match n.as_str() {
            "mnt" => "mount".to_string(),
            "net" => "network".to_string(),
            _ => n,
        })
        .collect();
    host_ns.sort();
    let mut ns: Vec<String> = linux["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    ns.sort();
    assert_eq!(ns, host_ns);
    let last: usize = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let caps = linux["capabilities"].as_array().unwrap();
    assert_eq!(caps.len(), last + 1);
    assert_eq!(caps[0], "CAP_CHOWN");
    // The systemd driver (--systemd-cgroup) talks to the system instance only, as root.
    assert_eq!(linux["cgroup"]["systemd"], true);
    assert_eq!(linux["cgroup"]["systemdUser"], false);
    assert_eq!(linux["cgroup"]["v2"], true);
    let seccomp = std::path::Path::new("/proc/sys/kernel/seccomp/actions_avail").exists();
    assert_eq!(linux["seccomp"]["enabled"], seccomp);
    if seccomp {
        let acts = linux["seccomp"]["actions"].as_array().unwrap();
        assert!(acts.contains(&json!("SCMP_ACT_ERRNO")));
        assert!(!linux["seccomp"]["archs"].as_array().unwrap().is_empty());
    }
    // The LSMs, seccomp's archs and flags: tests/features.rs.
    assert_eq!(linux["intelRdt"]["enabled"], false);
    assert!(linux["mountExtensions"]["idmap"]["enabled"].is_boolean());
    assert!(f["annotations"]["io.github.husk.version"].is_string());
}

/// runc's range, 0..=2147483647, wherever an id comes in: 4294967295 reached setresuid as -1
/// ("unchanged") and the process ran as root. Duplicate additional gids are passed once.
#[test]
fn ids_outside_runcs_range_are_refused_everywhere() {
    require_root!();
    let mut env = Env::new("x-ids");
    for (user, field) in [
        (json!({"uid": 4294967295u32, "gid": 0}), "process.user.uid"),
        (json!({"uid": 0, "gid": 2147483648u32}), "process.user.gid"),
        (
            json!({"uid": 0, "gid": 0, "additionalGids": [1, 4294967295u32]}),
            "process.user.additionalGids[1]",
        ),
    ] {
        env.config["process"]["user"] = user;
        let id = env.id("ids");
        let o = env.run(&id);
        assert_eq!(o.status.code(), Some(1), "{field}: {}", stdout(&o));
        assert!(
            stderr(&o).contains(&format!("{field}: "))
                && stderr(&o).contains("outside 0..=2147483647"),
            "{}",
            stderr(&o)
        );
        assert_no_state(&env, &id);
        assert_no_cgroup(&id);
    }
    env.config["process"]["user"] = json!({"uid": 0, "gid": 0, "additionalGids": [7, 5, 5, 7]});
    let (id, _) = running(&mut env, "ids");
    let p = probe(&env.husk(&["exec", &id, "/bin/probe"]));
    assert_eq!(p["groups"], "5,7");
    let p = probe(&env.husk(&["exec", "-g", "6,6", &id, "/bin/probe"]));
    assert_eq!(p["groups"], "5,6,7");
    for u in ["4294967295", "0:4294967295"] {
        let o = env.husk(&["exec", "-u", u, &id, "/bin/probe"]);
        assert_eq!(o.status.code(), Some(1), "-u {u}: {}", stdout(&o));
        assert!(
            stderr(&o).contains(&format!("--user {u}: ")),
            "{}",
            stderr(&o)
        );
    }
    let file = env.dir.join("process.json");
    std::fs::write(
        &file,
        json!({"args": ["/bin/probe"], "cwd": "/", "user": {"uid": 4294967295u32, "gid": 0}})
            .to_string(),
    )
    .unwrap();
    let o = env.husk(&["exec", "--process", &file.to_string_lossy(), &id]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("process.user.uid: 4294967295"),
        "{}",
        stderr(&o)
    );
    // The front end's -u, as docker refuses it.
    let root = rootfs().to_string_lossy().into_owned();
    let o = env.husk(&[
        "run",
        "--rootfs",
        &root,
        "-u",
        "4294967295",
        "--",
        "/bin/probe",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("--user 4294967295: uid: 4294967295 is outside"),
        "{}",
        stderr(&o)
    );
}

fn cpus_allowed(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string()
}

/// exec applies process.scheduler, ioPriority and execCPUAffinity, from --process or from the
/// container's process. runtime-spec 1.3: `initial` holds until the cgroup is joined, `final`
/// after; without `final`, every CPU the cgroup allows (never the caller's affinity); and
/// execCPUAffinity does not apply to init.
#[test]
fn exec_applies_scheduler_io_priority_and_cpu_affinity() {
    require_root!();
    let all = cpus_allowed(&std::fs::read_to_string("/proc/self/status").unwrap());
    skip_unless!(all.starts_with("0-"), "CPUs {all}, want 0 and 1");
    let mut env = Env::new("x-sched");
    env.config["process"]["execCPUAffinity"] = json!({"final": "1"});
    let (id, init_pid) = running(&mut env, "sched");
    let init = std::fs::read_to_string(format!("/proc/{}/status", init_pid.trim())).unwrap();
    assert_eq!(cpus_allowed(&init), all, "init takes no execCPUAffinity");
    // Without --process, exec takes the container's process, execCPUAffinity included.
    let p = probe(&env.husk(&["exec", &id, "/bin/probe"]));
    assert_eq!(p["Cpus_allowed_list"], "1");
    assert_eq!(
        (p["sched.policy"].as_str(), p["ioprio"].as_str()),
        ("0", "0:0")
    );
    let file = env.dir.join("process.json");
    std::fs::write(
        &file,
        json!({
            "args": ["/bin/probe"], "cwd": "/",
            "scheduler": {"policy": "SCHED_BATCH", "nice": 5},
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6},
            "execCPUAffinity": {"initial": "0", "final": "1"},
        })
        .to_string(),
    )
    .unwrap();
    let log = env.dir.join("debug.log");
    let (f, l) = (file.to_string_lossy(), log.to_string_lossy());
    let p = probe(&env.husk(&["--debug", "--log", &l, "exec", "--process", &f, &id]));
    // SCHED_BATCH is 3; IOPRIO_CLASS_BE is 2.
    assert_eq!(p["sched.policy"], "3");
    assert_eq!(p["nice"], "5");
    assert_eq!(p["ioprio"], "2:6");
    assert_eq!(p["Cpus_allowed_list"], "1");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("CPUs [0] until the cgroup is joined"), "{log}");
    // No execCPUAffinity: every CPU, not the affinity of whoever ran husk.
    std::fs::write(
        &file,
        json!({"args": ["/bin/probe"], "cwd": "/"}).to_string(),
    )
    .unwrap();
    let root = env.root.to_string_lossy().into_owned();
    let mut cmd = Command::new("taskset");
    cmd.args([
        "-c",
        "0",
        HUSK,
        "--root",
        &root,
        "exec",
        "--process",
        &f,
        &id,
    ]);
    assert_eq!(probe(&env.capture(cmd))["Cpus_allowed_list"], all);
    // A CPU the host lacks names the field.
    std::fs::write(
        &file,
        json!({"args": ["/bin/probe"], "cwd": "/", "execCPUAffinity": {"final": "1000"}})
            .to_string(),
    )
    .unwrap();
    let o = env.husk(&["exec", "--process", &f, &id]);
    assert!(
        stderr(&o).contains("sched_setaffinity process.execCPUAffinity.final: EINVAL"),
        "{}",
        stderr(&o)
    );
}
