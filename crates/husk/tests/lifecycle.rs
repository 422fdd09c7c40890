//! create / start / state / kill / delete / run / list, as engines drive them.

mod common;
use common::*;
use serde_json::{Value, json};

/// Whether process `pid` has a handler for SIGTERM (bit 15 of SigCgt).
fn catches_term(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{}/status", pid.trim()))
        .ok()
        .and_then(|s| {
            let mask = s.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|m| m & (1 << (15 - 1)) != 0)
}

#[test]
fn run_returns_exit_codes() {
    require_root!();
    let mut env = Env::new("exitcodes");
    let id = env.id("exit");
    env.args(&["/bin/probe", "exit", "7"]);
    assert_eq!(env.run(&id).status.code(), Some(7));
    // pid 1 of a pid namespace cannot SIGKILL itself, so this case runs without one.
    let ns = env.config["linux"]["namespaces"].clone();
    env.without_namespace("pid");
    env.args(&["/bin/probe", "kill", "9"]);
    assert_eq!(env.run(&id).status.code(), Some(137));
    env.config["linux"]["namespaces"] = ns;
    env.args(&["/bin/true"]);
    assert_eq!(env.run(&id).status.code(), Some(0));
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

#[test]
fn create_start_state_kill_delete_with_options_after_the_id() {
    require_root!();
    let mut env = Env::new("lifecycle");
    let id = env.id("lc");
    env.args(&["/bin/sleep", "inf"]);
    let b = env.bundle.to_string_lossy().into_owned();
    let pidfile = env.dir.join("pid");
    let pf = pidfile.to_string_lossy().into_owned();
    let o = env.husk(&["create", &id, "--bundle", &b, "--pid-file", &pf]);
    assert!(o.status.success(), "create: {}", stderr(&o));
    let st: Value = serde_json::from_slice(&env.husk(&["state", &id]).stdout).unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["ociVersion"], "1.3.0");
    assert_eq!(st["id"], json!(id));
    assert_eq!(st["bundle"], json!(b));
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(st["pid"].to_string(), pid);
    // Only the cgroup of this container holds init.
    assert_eq!(cgroup_procs(&id).trim(), pid);

    let dup = env.husk(&["create", "--bundle", &b, &id]);
    assert_eq!(dup.status.code(), Some(1));
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));

    assert!(env.husk(&["start", &id]).status.success());
    let st: Value = serde_json::from_slice(&env.husk(&["state", &id]).stdout).unwrap();
    assert_eq!(st["status"], "running");
    let running_delete = env.husk(&["delete", &id]);
    assert!(
        !running_delete.status.success(),
        "deleting a running container needs --force"
    );

    let list: Value =
        serde_json::from_slice(&env.husk(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(list[0]["id"], json!(id));
    assert_eq!(stdout(&env.husk(&["list", "-q"])).trim(), id);

    assert!(env.husk(&["kill", &id, "KILL"]).status.success());
    wait_until(PATIENCE, "the killed container is stopped", || {
        env.status(&id) == "stopped"
    });
    let k = env.husk(&["kill", &id, "9"]);
    assert!(
        !k.status.success(),
        "killing a stopped container is an error"
    );
    assert!(env.husk(&["delete", &id]).status.success());
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
    let gone = env.husk(&["state", &id]);
    assert!(
        stderr(&gone).contains("does not exist"),
        "{}",
        stderr(&gone)
    );
    assert!(
        env.husk(&["delete", "--force", &id]).status.success(),
        "delete --force of a missing container succeeds, as runc's"
    );
}

#[test]
fn kill_signal_forms_and_default_term() {
    require_root!();
    let mut env = Env::new("killforms");
    let b = env.bundle.to_string_lossy().into_owned();
    for (n, sig) in [
        ("a", Some("SIGKILL")),
        ("b", Some("9")),
        ("c", Some("KILL")),
        ("d", None),
    ] {
        // pid 1 ignores signals it has no handler for; the default TERM needs a trap.
        env.args(&[
            "/bin/sh",
            "-c",
            "trap 'exit 0' TERM; while true; do sleep 0.05; done",
        ]);
        let id = env.id(n);
        let pf = env.dir.join(format!("pid-{n}"));
        let o = env.husk(&["create", &id, "-b", &b, "--pid-file", &pf.to_string_lossy()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(env.husk(&["start", &id]).status.success());
        // start returns at sh's exec, maybe before its trap: a TERM then would be ignored.
        let pid = std::fs::read_to_string(&pf).unwrap();
        wait_until(PATIENCE, "sh has its TERM trap", || catches_term(&pid));
        let mut args = vec!["kill", id.as_str()];
        args.extend(sig);
        assert!(env.husk(&args).status.success());
        wait_until(PATIENCE, &format!("signal {sig:?} stops {id}"), || {
            env.status(&id) == "stopped"
        });
        assert!(env.husk(&["delete", &id]).status.success());
    }
    let bad = env.husk(&["kill", "nope", "SIGNOPE"]);
    assert!(stderr(&bad).contains("unknown signal"));
}

#[test]
fn start_reports_a_dead_init_instead_of_hanging() {
    require_root!();
    let mut env = Env::new("deadinit");
    let id = env.id("dead");
    env.args(&["/bin/true"]);
    let b = env.bundle.to_string_lossy().into_owned();
    let pf = env.dir.join("pid").to_string_lossy().into_owned();
    assert!(
        env.husk(&["create", &id, "-b", &b, "--pid-file", &pf])
            .status
            .success()
    );
    let pid = std::fs::read_to_string(&pf).unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    // SIGKILL lands asynchronously; nobody reaps init here, so dead reads as a zombie.
    wait_until(PATIENCE, "init is dead", || {
        std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).map_or(true, |s| {
            s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
        })
    });
    let o = env.husk(&["start", &id]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot start a container that is stopped")
            || stderr(&o).contains("exited"),
        "{}",
        stderr(&o)
    );
    assert!(env.husk(&["delete", &id]).status.success());
    assert_no_cgroup(&id);
}

#[test]
fn detached_run_and_keep() {
    require_root!();
    let mut env = Env::new("detach");
    let id = env.id("d");
    env.args(&["/bin/sleep", "inf"]);
    let b = env.bundle.to_string_lossy().into_owned();
    env.run_detached(&id);
    let st: Value = serde_json::from_slice(&env.husk(&["state", &id]).stdout).unwrap();
    assert_eq!(st["status"], "running");
    assert!(env.husk(&["delete", "-f", &id]).status.success());
    assert_no_cgroup(&id);

    env.args(&["/bin/true"]);
    let kid = env.id("keep");
    assert!(
        env.husk(&["run", "--keep", "-b", &b, &kid])
            .status
            .success()
    );
    let st: Value = serde_json::from_slice(&env.husk(&["state", &kid]).stdout).unwrap();
    assert_eq!(st["status"], "stopped");
    assert!(env.husk(&["delete", &kid]).status.success());
    assert_no_state(&env, &kid);
}

#[test]
fn ids_are_validated() {
    require_root!();
    let env = Env::new("ids");
    let b = env.bundle.to_string_lossy().into_owned();
    for bad in ["../x", "a/b", ".hidden"] {
        let o = env.husk(&["create", "-b", &b, bad]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("invalid container id"),
            "{bad}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn spec_writes_a_1_3_config_and_refuses_to_overwrite() {
    let dir = std::env::temp_dir().join(format!("husk-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = || {
        std::process::Command::new(HUSK)
            .args(["spec", "-b"])
            .arg(&dir)
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["ociVersion"], "1.3.0");
    assert_eq!(v["root"]["path"], "rootfs");
    assert!(!run().status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_log_carries_the_real_error() {
    require_root!();
    let mut env = Env::new("jsonlog");
    env.config["root"]["path"] = json!("/nonexistent-rootfs");
    let log = env.dir.join("log.json");
    let b = env.bundle.to_string_lossy().into_owned();
    let l = log.to_string_lossy().into_owned();
    let id = env.id("j");
    let o = env.husk(&["--log", &l, "--log-format", "json", "create", "-b", &b, &id]);
    assert_eq!(o.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"]
            .as_str()
            .unwrap()
            .contains("/nonexistent-rootfs")
            && last["msg"].as_str().unwrap().contains("ENOENT"),
        "{last}"
    );
    assert!(last["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        stderr(&o).lines().count(),
        1,
        "one line on stderr: {}",
        stderr(&o)
    );
}

/// `--systemd-cgroup` where no systemd answers (this host runs none; the live tests start one
/// in the cgroup v2 guest: scripts/test-systemd.sh): init is cloned before systemd is asked, so
/// the failure must kill it and leave no state and no cgroup. A cgroupfs path is refused
/// before anything, naming the form the driver takes.
#[test]
fn systemd_cgroup_without_systemd_fails_and_leaves_nothing() {
    require_root!();
    if std::path::Path::new("/run/systemd/private").exists() {
        return skip(
            Skip::HostFeature,
            "a systemd runs here: the live test covers this host",
        );
    }
    let mut env = Env::new("sdnone");
    env.args(&["/bin/true"]);
    let id = env.id("sd");
    let b = env.bundle.to_string_lossy().into_owned();
    env.config["linux"]["cgroupsPath"] = json!(format!("husk_it.slice:itp:{id}"));
    let o = env.husk(&["--systemd-cgroup", "create", "-b", &b, &id]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("connect to /run/systemd/private") && stderr(&o).contains("ENOENT"),
        "{}",
        stderr(&o)
    );
    assert_no_state(&env, &id);
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let scope = h.path().join(format!("husk_it.slice/itp-{id}.scope"));
        assert!(!scope.exists(), "left behind: {}", scope.display());
    }
    env.config["linux"]["cgroupsPath"] = json!(format!("/husk/{id}"));
    let o = env.husk(&["--systemd-cgroup", "run", "-b", &b, &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("slice:prefix:name"), "{}", stderr(&o));
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
    // A bad org.systemd.property.* annotation is named before systemd is asked anything.
    env.config["linux"]["cgroupsPath"] = json!(format!("husk_it.slice:itp:{id}"));
    env.config["annotations"] = json!({"org.systemd.property.CollectMode": "inactive"});
    let o = env.husk(&["--systemd-cgroup", "run", "-b", &b, &id]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("org.systemd.property.CollectMode") && !e.contains("connect to"),
        "{e}"
    );
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

#[test]
fn explain_narrates_each_step_only_when_asked() {
    require_root!();
    let mut env = Env::new("explain");
    env.args(&["/bin/true"]);
    let b = env.bundle.to_string_lossy().into_owned();
    let o = env.husk(&["--explain", "run", "-b", &b, &env.id("x")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stderr(&o);
    for step in [
        "config.json",
        "state dir",
        "cgroup",
        "clone3",
        "pivot_root",
        "capabilities",
        "execve",
    ] {
        assert!(
            text.lines().any(|l| l.contains(" µs") && l.contains(step)),
            "no '{step}' step in:\n{text}"
        );
    }
    let quiet = env.husk(&["run", "-b", &b, &env.id("y")]);
    assert_eq!(stderr(&quiet), "", "nothing is printed without --explain");
}

/// husk with the config as written (`Env::husk` rewrites it first, which for a 34 MB config
/// costs more than husk itself).
fn husk_as_is(env: &Env, args: &[&str]) -> std::process::Output {
    let (out, err) = (env.dir.join("as-is.out"), env.dir.join("as-is.err"));
    let status = std::process::Command::new(HUSK)
        .arg("--root")
        .arg(&env.root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    std::process::Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

/// `count` annotations of `size` bytes through create, start, state, exec and delete; the hooks
/// init runs (createContainer, startContainer) get the whole state on stdin.
fn big_config_lifecycle(name: &str, count: usize, size: usize) {
    let mut env = Env::new(name);
    let logdir = env.dir.join("hooklog");
    std::fs::create_dir_all(&logdir).unwrap();
    env.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/hooklog", "source": logdir, "options": ["bind", "rw"]}));
    let cat_to =
        |f: String| json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {f}")]}]);
    env.config["hooks"] = json!({
        "createContainer": cat_to(logdir.join("cc.json").display().to_string()),
        "startContainer": cat_to("/hooklog/sc.json".into()),
    });
    let annotations: serde_json::Map<String, Value> = (0..count)
        .map(|i| (format!("io.husk.test/k{i:05}"), json!("x".repeat(size))))
        .collect();
    let annotations = Value::Object(annotations);
    env.config["annotations"] = annotations.clone();
    env.args(&["/bin/sleep", "inf"]);
    env.write_config();
    let config_len = std::fs::metadata(env.bundle.join("config.json"))
        .unwrap()
        .len();
    assert!(config_len as usize > count * size, "{config_len}");
    let id = env.id("big");
    let b = env.bundle.to_string_lossy().into_owned();
    let o = husk_as_is(&env, &["create", "-b", &b, &id]);
    assert!(o.status.success(), "create: {}", stderr(&o));
    let o = husk_as_is(&env, &["start", &id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    let o = husk_as_is(&env, &["state", &id]);
    assert!(o.status.success(), "state: {}", stderr(&o));
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["status"], "running");
    assert!(
        st["annotations"] == annotations,
        "state: annotations differ"
    );
    for (hook, file) in [
        ("createContainer", "cc.json"),
        ("startContainer", "sc.json"),
    ] {
        let got: Value = serde_json::from_slice(&std::fs::read(logdir.join(file)).unwrap())
            .unwrap_or_else(|e| panic!("{hook} got no whole state: {e}"));
        assert!(
            got["annotations"] == annotations,
            "{hook}: annotations differ"
        );
        assert_eq!(got["id"], id.as_str(), "{hook}");
    }
    let o = husk_as_is(&env, &["exec", &id, "/bin/probe", "exit", "3"]);
    assert_eq!(o.status.code(), Some(3), "exec: {}", stderr(&o));
    let o = husk_as_is(&env, &["delete", "--force", &id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

/// Kubernetes allows 256 KiB of annotations: more than one sync datagram could carry
/// (`wmem_max`, ~208 KiB), so nothing from the config travels over the channel.
#[test]
fn annotations_of_300_kib_go_through_the_lifecycle() {
    require_root!();
    big_config_lifecycle("big-300k", 300, 1000);
}

/// runc runs a 34 MB config: no size limit below it.
#[test]
fn a_34_mb_config_goes_through_the_lifecycle() {
    require_root!();
    big_config_lifecycle("big-34m", 34, 1_000_000);
}

/// `list` and `state` read the state without the container's lock: a create stuck in a hook
/// (holding the lock) shows as creating instead of making them wait for it.
#[test]
fn list_does_not_wait_behind_a_stuck_create() {
    require_root!();
    let mut env = Env::new("list-stuck");
    let (started, release) = (env.dir.join("hook-started"), env.dir.join("release"));
    env.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "touch {s}; while [ ! -e {r} ]; do sleep 0.05; done",
            s = started.display(), r = release.display()
        )],
        "env": ["PATH=/usr/bin:/bin"]
    }]});
    env.args(&["/bin/true"]);
    env.write_config();
    let id = env.id("stuck");
    let mut create = env.spawn_create(
        &id,
        std::process::Stdio::null(),
        std::process::Stdio::null(),
    );
    wait_until(PATIENCE, "the createRuntime hook runs", || started.exists());
    let out = env.dir.join("list.out");
    let mut list = std::process::Command::new(HUSK)
        .arg("--root")
        .arg(&env.root)
        .args(["list", "--format", "json"])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    let code = wait_code(&mut list);
    let state_out = env.dir.join("state.out");
    let mut state = std::process::Command::new(HUSK)
        .arg("--root")
        .arg(&env.root)
        .args(["state", &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&state_out).unwrap())
        .spawn()
        .unwrap();
    let state_code = wait_code(&mut state);
    std::fs::write(&release, "").unwrap();
    assert_eq!(code, Some(0), "list waited behind the stuck create");
    assert_eq!(state_code, Some(0), "state waited behind the stuck create");
    let st: Value = serde_json::from_slice(&std::fs::read(&state_out).unwrap()).unwrap();
    assert_eq!(st["status"], "creating");
    let listed: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let me: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id.as_str())
        .collect();
    assert_eq!(me.len(), 1, "{listed}");
    assert_eq!(me[0]["status"], "creating", "{listed}");
    assert_eq!(wait_code(&mut create), Some(0), "create after the release");
    let st: Value = serde_json::from_slice(&env.husk(&["state", &id]).stdout).unwrap();
    assert_eq!(st["status"], "created");
    assert!(env.husk(&["delete", "--force", &id]).status.success());
    assert_no_state(&env, &id);
}

/// Every command that prints ends quietly when its reader is gone (`husk list | head -1`), with
/// SIGPIPE's status as runc and coreutils, never a panic about a broken pipe.
#[test]
fn printing_to_a_closed_pipe_ends_quietly() {
    require_root!();
    let mut env = Env::new("epipe");
    env.args(&["/bin/sleep", "inf"]);
    let id = env.id("epipe");
    env.run_detached(&id);
    let commands: [&[&str]; 9] = [
        &["list"],
        &["list", "-q"],
        &["list", "--format", "json"],
        &["state", &id],
        &["ps", "--format", "json", &id],
        &["events", "--stats", &id],
        &["features"],
        &["completion", "bash"],
        &["man"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let err = env.dir.join("epipe.err");
        let status = std::process::Command::new(HUSK)
            .arg("--root")
            .arg(&env.root)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        let err = std::fs::read_to_string(&err).unwrap();
        assert_eq!(err, "", "{args:?} said something");
        assert_eq!(status.code(), Some(141), "{args:?}");
    }
    // A duration past what husk can hold is a usage error, not a panic.
    let o = env.husk(&["events", "--interval", "99999999999999999999s", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--interval 99999999999999999999s"),
        "{}",
        stderr(&o)
    );
    assert!(env.husk(&["delete", "--force", &id]).status.success());
}
