//! Failures: each one exits 1 with one stderr line naming the problem and leaves no state dir, no
//! cgroup and no process; `delete --force` cleans up after a create that was SIGKILLed midway.

mod common;
use common::*;
use serde_json::json;

/// Runs `create` and checks the failure contract; returns stderr.
fn create_fails(env: &Env, id: &str, want: &str) -> String {
    let b = env.bundle.to_string_lossy().into_owned();
    let o = env.husk(&["create", "-b", &b, id]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(want), "{want:?} not in {err}");
    assert_no_state(env, id);
    assert_no_cgroup(id);
    assert!(
        procs_naming(id).is_empty(),
        "left running: {:?}",
        procs_naming(id)
    );
    err
}

#[test]
fn missing_rootfs() {
    require_root!();
    let mut env = Env::new("f-rootfs");
    let missing = env.dir.join("no-such-rootfs");
    env.config["root"]["path"] = json!(missing);
    let err = create_fails(&env, &env.id("rootfs"), &missing.to_string_lossy());
    assert!(err.contains("ENOENT"), "{err}");
}

#[test]
fn bad_config() {
    require_root!();
    let mut env = Env::new("f-config");
    let mut ns = env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .clone();
    ns.push(json!({"type": "bogus"}));
    env.config["linux"]["namespaces"] = json!(ns);
    let err = create_fails(&env, &env.id("ns"), "unknown namespace \"bogus\"");
    assert!(err.contains("linux.namespaces[6].type"), "{err}");

    // Not JSON at all (husk is called directly: env.husk rewrites config.json).
    let id = env.id("json");
    std::fs::write(env.bundle.join("config.json"), "{ not json").unwrap();
    let o = std::process::Command::new(HUSK)
        .arg("--root")
        .arg(&env.root)
        .args(["create", "-b"])
        .arg(&env.bundle)
        .arg(&id)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("config.json"), "{}", stderr(&o));
    assert_no_state(&env, &id);
}

#[test]
fn missing_executable() {
    require_root!();
    let mut env = Env::new("f-exec");
    env.args(&["no-such-command"]);
    create_fails(&env, &env.id("path"), "executable file not found");
    env.args(&["/bin/no-such-command"]);
    // runc's words, which docker (exit 127) and podman (ErrOCIRuntimeNotFound) match on.
    create_fails(
        &env,
        &env.id("abs"),
        "exec: \"/bin/no-such-command\": stat /bin/no-such-command: no such file or directory",
    );
    // `run` fails the same way.
    env.args(&["no-such-command"]);
    let id = env.id("run");
    let o = env.run(&id);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        stderr(&o)
    );
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

#[test]
fn failing_mount() {
    require_root!();
    let mut env = Env::new("f-mount");
    let missing = env.dir.join("no-such-source");
    env.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/mnt", "source": missing, "options": ["bind"]}));
    let err = create_fails(&env, &env.id("mount"), &missing.to_string_lossy());
    assert!(err.contains("/mnt"), "{err}");
}

#[test]
fn delete_force_after_create_was_killed_midway() {
    require_root!();
    let mut env = Env::new("f-killed");
    let started = env.dir.join("hook-started");
    let pidlog = env.dir.join("init-pid");
    let hookpid = env.dir.join("hook-pid");
    // The hook records init's pid and its own, then keeps create stuck until the test kills it.
    env.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "sed -n 's/.*\"pid\":\\([0-9]*\\).*/\\1/p' > {p}; echo $$ > {h}; touch {s}; exec sleep inf",
            p = pidlog.display(), h = hookpid.display(), s = started.display()
        )],
        "env": ["PATH=/usr/bin:/bin"]
    }]});
    env.write_config();
    let id = env.id("killed");
    let (out, err) = (env.dir.join("create.out"), env.dir.join("create.err"));
    let mut create = env.spawn_create(
        &id,
        std::fs::File::create(&out).unwrap(),
        std::fs::File::create(&err).unwrap(),
    );
    let _hook = KillHook(hookpid.clone());
    wait_until(PATIENCE, "the hook runs", || started.exists());
    create.kill().unwrap();
    create.wait().unwrap();
    let init = std::fs::read_to_string(&pidlog).unwrap();
    assert!(!init.trim().is_empty());
    assert!(
        env.root.join(&id).exists(),
        "create left its state for delete"
    );

    let o = env.husk(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
    // SIGKILL takes effect asynchronously: init is dead (or a zombie) once the kernel is done.
    wait_until(PATIENCE, "init is gone after delete --force", || {
        !alive(&init)
    });
    assert!(procs_naming(&id).is_empty(), "{:?}", procs_naming(&id));
}

/// Kills the hook (by the pid it recorded) when the test ends, however it ends.
struct KillHook(std::path::PathBuf);

impl Drop for KillHook {
    fn drop(&mut self) {
        if let Ok(h) = std::fs::read_to_string(&self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-9", h.trim()])
                .status();
        }
    }
}

/// A memory limit too small for setup: init is OOM-killed before it can report anything, and
/// the error says so, naming the cgroup file that counted it and the limit.
#[test]
fn a_memory_limit_below_what_setup_needs_names_the_oom_kill() {
    require_root!();
    let mut env = Env::new("f-oom");
    env.config["linux"]["resources"] = json!({"memory": {"limit": 4096}});
    let err = create_fails(&env, &env.id("oom"), "killed by SIGKILL during setup");
    assert!(
        err.contains("the memory cgroup's OOM killer (oom_kill "),
        "{err}"
    );
    assert!(
        err.contains("memory.oom_control)") || err.contains("memory.events)"),
        "{err}"
    );
    assert!(
        err.contains("linux.resources.memory.limit 4096 bytes is below"),
        "{err}"
    );
}

/// A bad `linux.resources` value (a wrong type, a kernel bound, a file name) is refused while
/// planning, before anything is made: even with the state root a regular file, where making the
/// state dir would fail, the error is the resource's, and no cgroup or process exists.
#[test]
fn bad_resource_values_fail_before_anything_exists() {
    require_root!();
    let mut env = Env::new("f-res");
    let not_a_dir = env.dir.join("root-is-a-file");
    std::fs::write(&not_a_dir, "").unwrap();
    let b = env.bundle.to_string_lossy().into_owned();
    let cases = [
        (
            json!({"memory": {"limit": "64m"}}),
            "linux.resources: invalid type: string \"64m\"",
        ),
        (json!({"cpu": {"period": 5}}), "cpu.period 5"),
        (
            json!({"hugepageLimits": [{"pageSize": "2XB", "limit": 1}]}),
            "hugepageLimits[0].pageSize \"2XB\"",
        ),
    ];
    for (i, (res, want)) in cases.into_iter().enumerate() {
        env.config["linux"]["resources"] = res;
        let id = env.id(&format!("r{i}"));
        create_fails(&env, &id, want);
        let mut cmd = std::process::Command::new(HUSK);
        cmd.arg("--root")
            .arg(&not_a_dir)
            .args(["create", "-b", &b, &id]);
        let o = env.capture(cmd);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains(want), "{want:?} not in {}", stderr(&o));
        assert_no_cgroup(&id);
        assert!(procs_naming(&id).is_empty(), "{:?}", procs_naming(&id));
    }
}

/// More supplementary groups than NGROUPS_MAX: refused before anything is made, naming the
/// field and the limit (it was setgroups' EINVAL in init, reported as `Some(Code(1))`).
#[test]
fn too_many_additional_gids_name_the_field_and_the_limit() {
    require_root!();
    let mut env = Env::new("f-ngroups");
    env.config["process"]["user"]["additionalGids"] = json!((1..=70_000).collect::<Vec<u32>>());
    create_fails(
        &env,
        &env.id("ngroups"),
        "process.user.additionalGids: 70000 groups: the kernel takes at most 65536 (NGROUPS_MAX)",
    );
}

/// A --preserve-fds past what a process can hold is an error naming the flag (it overflowed in
/// init: a panic, or in a release build a wrapped count).
#[test]
fn preserve_fds_past_any_fd_table_is_refused() {
    require_root!();
    let env = Env::new("f-preserve");
    let b = env.bundle.to_string_lossy().into_owned();
    let id = env.id("pf");
    let o = env.husk(&["create", "--preserve-fds", "4294967295", "-b", &b, &id]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(
        err.trim(),
        "husk: --preserve-fds 4294967295: fds 3 to 4294967297 are past what any process can hold"
    );
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}
