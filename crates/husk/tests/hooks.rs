//! OCI hooks: all six kinds in order with the state on stdin, failures of each class, timeouts.

mod common;
use common::*;
use serde_json::{Value, json};
use std::path::Path;

/// A hook that appends "NAME STATUS PID NS" to `log`: the status and pid come from the state JSON
/// on its stdin, NS is its own uts namespace (to tell where it ran).
fn hook(name: &str, log: &str, extra: Value) -> Value {
    let script = format!(
        "s=$(cat); st=$(echo \"$s\" | sed -n 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/p'); \
         pid=$(echo \"$s\" | sed -n 's/.*\"pid\":\\([0-9]*\\).*/\\1/p'); \
         echo \"{name} $st ${{pid:-none}} $(readlink /proc/self/ns/uts)\" >> {log}"
    );
    let mut h =
        json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["PATH=/usr/bin:/bin"]});
    if let (Some(h), Some(e)) = (h.as_object_mut(), extra.as_object()) {
        h.extend(e.clone());
    }
    h
}

fn failing(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["PATH=/usr/bin:/bin"]})
}

fn host_uts() -> String {
    std::fs::read_link("/proc/self/ns/uts")
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn pid_alive(pid: &str) -> bool {
    Path::new("/proc").join(pid.trim()).exists()
}

#[test]
fn all_six_hooks_run_in_order_with_the_state() {
    require_root!();
    let mut env = Env::new("h-all");
    let logdir = env.dir.join("hooklog");
    std::fs::create_dir_all(&logdir).unwrap();
    let host_log = logdir.join("log").to_string_lossy().into_owned();
    env.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/hooklog", "source": logdir, "options": ["bind", "rw"]}));
    let none = json!({});
    env.config["hooks"] = json!({
        "prestart": [hook("prestart", &host_log, none.clone())],
        "createRuntime": [hook("createRuntime", &host_log, none.clone())],
        // Runs in the container's namespaces but before pivot_root: host paths.
        "createContainer": [hook("createContainer", &host_log, none.clone())],
        // Runs after pivot_root: the path and the log are the container's.
        "startContainer": [hook("startContainer", "/hooklog/log", none.clone())],
        // A timeout that is not reached (a deadline, not a measurement: generous).
        "poststart": [hook("poststart", &host_log, json!({"timeout": 60}))],
        "poststop": [hook("poststop", &host_log, none)],
    });
    env.args(&["/bin/true"]);
    let id = env.id("all");
    let b = env.bundle.to_string_lossy().into_owned();
    let pf = env.dir.join("pid").to_string_lossy().into_owned();
    let o = env.husk(&["create", "-b", &b, "--pid-file", &pf, &id]);
    assert!(o.status.success(), "create: {}", stderr(&o));
    let pid = std::fs::read_to_string(&pf).unwrap();
    let o = env.husk(&["start", &id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    wait_until(PATIENCE, "the container is stopped", || {
        let st: Value = serde_json::from_slice(&env.husk(&["state", &id]).stdout).unwrap();
        st["status"] == "stopped"
    });
    let o = env.husk(&["delete", &id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));

    let log = std::fs::read_to_string(&host_log).unwrap();
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split(' ').collect()).collect();
    let names: Vec<&str> = lines.iter().map(|l| l[0]).collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "{log}"
    );
    let host = host_uts();
    for l in &lines {
        let (name, status, hpid, ns) = (l[0], l[1], l[2], l[3]);
        match name {
            "prestart" | "createRuntime" | "createContainer" => assert_eq!(status, "creating"),
            "poststart" => assert_eq!(status, "running"),
            "poststop" => assert_eq!(status, "stopped"),
            _ => assert!(!status.is_empty(), "{log}"),
        }
        if name == "poststop" {
            assert_eq!(hpid, "none", "a stopped container has no pid: {log}");
        } else {
            assert_eq!(hpid, pid.trim(), "{name}: {log}");
        }
        let in_container = name == "createContainer" || name == "startContainer";
        assert_eq!(
            ns != host,
            in_container,
            "{name} ran in the wrong place: {log}"
        );
    }
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

#[test]
fn a_failing_create_runtime_hook_leaves_nothing() {
    require_root!();
    let mut env = Env::new("h-crfail");
    let pidlog = env.dir.join("hookpid");
    env.config["hooks"] = json!({"createRuntime": [failing(&format!(
        "sed -n 's/.*\"pid\":\\([0-9]*\\).*/\\1/p' > {}; exit 3",
        pidlog.display()
    ))]});
    let id = env.id("crfail");
    let b = env.bundle.to_string_lossy().into_owned();
    let o = env.husk(&["create", "-b", &b, &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("createRuntime"), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
    let pid = std::fs::read_to_string(&pidlog).unwrap();
    assert!(!pid.trim().is_empty());
    assert!(!pid_alive(&pid), "init {pid} survived a failed create");
}

#[test]
fn a_failing_prestart_or_create_container_hook_fails_create() {
    require_root!();
    let mut env = Env::new("h-ccfail");
    let b = env.bundle.to_string_lossy().into_owned();
    for kind in ["prestart", "createContainer"] {
        env.config["hooks"] = json!({ kind: [failing("exit 2")] });
        let id = env.id(kind);
        let o = env.husk(&["create", "-b", &b, &id]);
        assert_eq!(o.status.code(), Some(1), "{kind}");
        assert!(stderr(&o).contains(kind), "{kind}: {}", stderr(&o));
        assert_no_state(&env, &id);
        assert_no_cgroup(&id);
    }
}

#[test]
fn a_hook_that_times_out_fails_in_time() {
    require_root!();
    let mut env = Env::new("h-timeout");
    // The hook never ends by itself: create returning at all is the timeout at work.
    let mut h = failing("exec sleep inf");
    h["timeout"] = json!(1);
    env.config["hooks"] = json!({"createRuntime": [h]});
    env.write_config();
    let id = env.id("timeout");
    let err = env.dir.join("create.err");
    let t = std::time::Instant::now();
    let mut create = env.spawn_create(
        &id,
        std::process::Stdio::null(),
        std::fs::File::create(&err).unwrap(),
    );
    let code = wait_code(&mut create);
    let took = t.elapsed();
    let err = std::fs::read_to_string(&err).unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("timed out"), "{err}");
    assert!(
        took >= std::time::Duration::from_secs(1),
        "gave up before the timeout: {took:?}"
    );
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

/// The timeout covers writing the state: a hook that never reads a state larger than the pipe
/// (64 KiB) fails with the timeout instead of blocking husk in the write forever.
#[test]
fn a_hook_that_never_reads_a_big_state_times_out() {
    require_root!();
    let mut env = Env::new("h-noread");
    let mut h = failing("exec sleep inf");
    h["timeout"] = json!(1);
    env.config["hooks"] = json!({"prestart": [h.clone()], "createContainer": [h]});
    env.config["annotations"] = json!({"io.husk.test/big": "x".repeat(256 * 1024)});
    for kind in ["prestart", "createContainer"] {
        if kind == "createContainer" {
            env.config["hooks"]
                .as_object_mut()
                .unwrap()
                .remove("prestart");
        }
        env.write_config();
        let id = env.id(kind);
        let err = env.dir.join(format!("{kind}.err"));
        let mut create = env.spawn_create(
            &id,
            std::process::Stdio::null(),
            std::fs::File::create(&err).unwrap(),
        );
        let code = wait_code(&mut create);
        let err = std::fs::read_to_string(&err).unwrap();
        assert_eq!(code, Some(1), "{kind}: {err}");
        assert!(
            err.contains(&format!("{kind} hook /bin/sh: timed out after 1s")),
            "{err}"
        );
        assert!(err.contains("bytes of state on its stdin"), "{err}");
        assert_no_state(&env, &id);
        assert_no_cgroup(&id);
    }
}

/// A timeout past what the clock can count is no timeout (it panicked adding it to now).
#[test]
fn a_hook_timeout_past_the_clock_is_no_timeout() {
    require_root!();
    let mut env = Env::new("h-hugetimeout");
    let mut h = failing("cat > /dev/null");
    h["timeout"] = json!(i64::MAX);
    env.config["hooks"] = json!({"prestart": [h]});
    env.args(&["/bin/true"]);
    let id = env.id("huge");
    let o = env.run(&id);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_no_state(&env, &id);
}

#[test]
fn a_failing_poststop_hook_is_only_logged() {
    require_root!();
    let mut env = Env::new("h-psfail");
    let ran = env.dir.join("second-ran");
    env.config["hooks"] = json!({"poststop": [
        failing("exit 1"),
        failing(&format!("touch {}", ran.display())),
    ]});
    env.args(&["/bin/sleep", "60"]);
    let id = env.id("psfail");
    let b = env.bundle.to_string_lossy().into_owned();
    assert!(env.husk(&["create", "-b", &b, &id]).status.success());
    let o = env.husk(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("poststop"), "warned: {}", stderr(&o));
    assert!(ran.exists(), "the next poststop hook still runs");
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

#[test]
fn a_failing_poststart_hook_fails_start() {
    require_root!();
    let mut env = Env::new("h-pstfail");
    env.config["hooks"] = json!({"poststart": [failing("exit 4")]});
    env.args(&["/bin/sleep", "60"]);
    let id = env.id("pstfail");
    let b = env.bundle.to_string_lossy().into_owned();
    assert!(env.husk(&["create", "-b", &b, &id]).status.success());
    let o = env.husk(&["start", &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("poststart"), "{}", stderr(&o));

    // `run` fails the same way, and cleans up after itself.
    let rid = env.id("pstrun");
    let o = env.run(&rid);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("poststart"), "{}", stderr(&o));
    assert_no_state(&env, &rid);
    assert_no_cgroup(&rid);
}

#[test]
fn a_failing_start_container_hook_fails_start_and_run() {
    require_root!();
    let mut env = Env::new("h-scfail");
    // Resolved inside the container: busybox's /bin/sh.
    env.config["hooks"] = json!({"startContainer": [failing("exit 5")]});
    env.args(&["/bin/sleep", "60"]);
    let id = env.id("scfail");
    let b = env.bundle.to_string_lossy().into_owned();
    assert!(env.husk(&["create", "-b", &b, &id]).status.success());
    let o = env.husk(&["start", &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("startContainer"), "{}", stderr(&o));
    assert!(env.husk(&["delete", "--force", &id]).status.success());
    assert_no_cgroup(&id);

    let rid = env.id("scrun");
    let o = env.run(&rid);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("startContainer"), "{}", stderr(&o));
    assert_no_state(&env, &rid);
    assert_no_cgroup(&rid);
}

#[test]
fn run_orders_start_container_before_poststart() {
    require_root!();
    let mut env = Env::new("h-runorder");
    let logdir = env.dir.join("hooklog");
    std::fs::create_dir_all(&logdir).unwrap();
    let host_log = logdir.join("log").to_string_lossy().into_owned();
    env.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/hooklog", "source": logdir, "options": ["bind", "rw"]}));
    // The startContainer hook is slow: poststart must still come after it.
    let mut slow = hook("startContainer", "/hooklog/log", json!({}));
    let script = slow["args"][2].as_str().unwrap().to_string();
    slow["args"][2] = json!(format!("sleep 0.3; {script}"));
    env.config["hooks"] = json!({
        "startContainer": [slow],
        "poststart": [hook("poststart", &host_log, json!({}))],
    });
    env.args(&["/bin/true"]);
    let o = env.run(&env.id("order"));
    assert!(o.status.success(), "{}", stderr(&o));
    let log = std::fs::read_to_string(&host_log).unwrap();
    let names: Vec<&str> = log.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(names, ["startContainer", "poststart"], "{log}");
}
