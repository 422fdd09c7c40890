//! The container process: args, env, cwd, user, umask, rlimits, no_new_privs, capabilities,
//! oom_score_adj, fds, dumpable, CPU affinity, and a clear error for AppArmor on a host without it.

mod common;
use common::*;
use serde_json::json;
use std::process::Command;

fn host_caps_have(bit: u32) -> bool {
    let st = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = st
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    u64::from_str_radix(eff, 16).unwrap() & (1 << bit) != 0
}

#[test]
fn args_env_and_path_lookup() {
    require_root!();
    let mut env = Env::new("p-args");
    env.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz", "EMPTY="]);
    env.args(&[
        "sh",
        "-c",
        "printf '%s|' \"$0\" \"$@\"; echo; echo \"FOO=$FOO\"",
        "zero",
        "one",
        "two words",
    ]);
    let o = env.run(&env.id("args"));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("zero|one|two words|"), "{out}");
    assert!(out.contains("FOO=bar baz"), "{out}");

    env.args(&["probe"]);
    let p = probe(&env.run(&env.id("args")));
    assert_eq!(p["env.FOO"], "bar baz");
    assert_eq!(p["env.EMPTY"], "");
    assert_eq!(p["env.PATH"], "/bin");
    // Exactly the configured environment, nothing of husk's.
    assert_eq!(p.keys().filter(|k| k.starts_with("env.")).count(), 3);
}

#[test]
fn cwd_is_created_if_missing_even_with_a_readonly_root() {
    require_root!();
    let mut env = Env::new("p-cwd");
    let private = private_rootfs("p-cwd");
    env.config["root"]["path"] = json!(private);
    assert_eq!(env.config["root"]["readonly"], json!(true));
    env.config["process"]["cwd"] = json!("/work/deep/er");
    let p = probe(&env.run(&env.id("cwd")));
    assert_eq!(p["cwd"], "/work/deep/er");
    assert!(private.join("work/deep/er").is_dir());
    let _ = std::fs::remove_dir_all(&private);
}

#[test]
fn user_groups_and_umask() {
    require_root!();
    let mut env = Env::new("p-user");
    env.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027});
    let p = probe(&env.run(&env.id("user")));
    assert_eq!(p["uid"], "1000");
    assert_eq!(p["gid"], "1001");
    assert_eq!(p["groups"], "10,20");
    assert_eq!(p["umask"], "0027");

    // Defaults: root, no supplementary groups, umask 0022.
    env.config["process"]["user"] = json!({"uid": 0, "gid": 0});
    let p = probe(&env.run(&env.id("user")));
    assert_eq!(p["uid"], "0");
    assert_eq!(p["groups"], "");
    assert_eq!(p["umask"], "0022");
}

#[test]
fn rlimits_are_set() {
    require_root!();
    let mut env = Env::new("p-rlimit");
    env.config["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2000}]);
    let p = probe(&env.run(&env.id("rl")));
    assert_eq!(p["rlimit.nofile"], "512:2000");
}

#[test]
fn no_new_privileges_on_and_off() {
    require_root!();
    let mut env = Env::new("p-nnp");
    env.config["process"]["noNewPrivileges"] = json!(true);
    assert_eq!(probe(&env.run(&env.id("nnp")))["nnp"], "1");
    env.config["process"]["noNewPrivileges"] = json!(false);
    assert_eq!(probe(&env.run(&env.id("nnp")))["nnp"], "0");
}

#[test]
fn default_and_ambient_capabilities() {
    require_root!();
    let mut env = Env::new("p-caps");
    let p = probe(&env.run(&env.id("caps")));
    for k in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(p[k], "00000000a80425fb", "{k}");
    }
    assert_eq!(p["CapInh"], "0000000000000000");
    assert_eq!(p["CapAmb"], "0000000000000000");

    // A non-root user keeps only what the ambient set carries across exec.
    let c = ["CAP_NET_BIND_SERVICE"];
    env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    env.config["process"]["capabilities"] = json!({
        "bounding": c, "effective": c, "permitted": c, "inheritable": c, "ambient": c
    });
    let p = probe(&env.run(&env.id("caps")));
    assert_eq!(p["uid"], "1000");
    for k in ["CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"] {
        assert_eq!(p[k], "0000000000000400", "{k}");
    }
    // Without ambient, a non-root process has nothing effective after exec.
    env.config["process"]["capabilities"]["ambient"] = json!([]);
    let p = probe(&env.run(&env.id("caps")));
    assert_eq!(p["CapEff"], "0000000000000000");
    assert_eq!(p["CapAmb"], "0000000000000000");
}

#[test]
fn oom_score_adj() {
    require_root!();
    let mut env = Env::new("p-oom");
    env.config["process"]["oomScoreAdj"] = json!(500);
    assert_eq!(probe(&env.run(&env.id("oom")))["oom_score_adj"], "500");
    // Lowering it needs CAP_SYS_RESOURCE; without it the error names the file.
    if !host_caps_have(24) {
        env.config["process"]["oomScoreAdj"] = json!(-500);
        let id = env.id("oomneg");
        let o = env.run(&id);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("oom_score_adj"), "{}", stderr(&o));
        assert_no_state(&env, &id);
        assert_no_cgroup(&id);
    }
}

/// oomScoreAdj with a user namespace, as docker's --userns-remap sends it for every container
/// and exec: init and the exec process are non-dumpable there, so their /proc/self files belong
/// to the host's root and writing the score from inside failed with EACCES. husk writes it from
/// the parent, as the host's root, before the process enters the namespace.
#[test]
fn oom_score_adj_in_a_user_namespace() {
    require_root!();
    let mut env = Env::new("p-oomuser");
    env.user_namespace(100000);
    env.config["process"]["oomScoreAdj"] = json!(500);
    let o = env.run(&env.id("oomu"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(probe(&o)["oom_score_adj"], "500");

    env.args(&["/bin/sleep", "inf"]);
    let id = env.id("oomux");
    let b = env.bundle.to_string_lossy().into_owned();
    let o = env.husk(&["run", "-d", "-b", &b, &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut process = env.config["process"].clone();
    process["args"] = json!(["/bin/probe"]);
    process["oomScoreAdj"] = json!(600);
    let pfile = env.dir.join("process.json");
    std::fs::write(&pfile, process.to_string()).unwrap();
    let o = env.husk(&["exec", "--process", &pfile.to_string_lossy(), &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(probe(&o)["oom_score_adj"], "600");
    assert!(env.husk(&["delete", "-f", &id]).status.success());
}

#[test]
fn only_stdio_and_preserved_fds_reach_the_container() {
    require_root!();
    let env = Env::new("p-fds");
    let b = env.bundle.to_string_lossy().into_owned();
    let id = env.id("fds");
    // An fd open in husk's caller does not leak in...
    let o = husk_via_sh(
        &env,
        "exec 3</etc/passwd 4</etc/passwd",
        &[],
        &["run", "-b", &b, &id],
    );
    assert_eq!(probe(&o)["fds"], "0,1,2");
    // ...unless it is passed with --preserve-fds.
    let o = husk_via_sh(
        &env,
        "exec 3</etc/passwd 4</etc/passwd",
        &[],
        &["run", "-b", &b, "--preserve-fds", "1", &id],
    );
    assert_eq!(probe(&o)["fds"], "0,1,2,3");
    let o = env.run(&id);
    let p = probe(&o);
    assert_eq!(p["fds"], "0,1,2");
    // Dumpable again after exec (init was not, while it held host fds).
    assert_eq!(p["dumpable"], "1");
}

#[test]
fn cpu_affinity_is_reset_to_all_cpus() {
    require_root!();
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let all = host
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    let env = Env::new("p-cpus");
    let b = env.bundle.to_string_lossy().into_owned();
    let id = env.id("cpus");
    let o = husk_via_sh(&env, "", &["taskset", "-c", "0"], &["run", "-b", &b, &id]);
    assert_eq!(probe(&o)["Cpus_allowed_list"], all);
}

#[test]
fn apparmor_profile_without_apparmor_is_a_clear_error() {
    require_root!();
    skip_unless!(
        !std::path::Path::new("/sys/kernel/security/apparmor").exists(),
        "AppArmor is enabled on this host"
    );
    let mut env = Env::new("p-aa");
    env.config["process"]["apparmorProfile"] = json!("husk-test-profile");
    let id = env.id("aa");
    let o = env.run(&id);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("AppArmor"), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

#[test]
fn runc_spec_ambient_capabilities_without_inheritable_are_ignored() {
    require_root!();
    let mut env = Env::new("p-runcspec");
    if !use_runc_spec(&mut env) {
        return;
    }
    let caps = &env.config["process"]["capabilities"];
    assert!(caps["inheritable"].is_null() && !caps["ambient"].as_array().unwrap().is_empty());
    let id = env.id("runcspec");
    let b = env.bundle.to_string_lossy().into_owned();
    let log = env.dir.join("debug.log");
    let log_s = log.to_string_lossy().into_owned();
    let o = env.husk(&["--debug", "--log", &log_s, "run", "-b", &b, &id]);
    let husk = probe(&o);
    // The same bundle under runc: the five sets must match.
    let runc_root = env.dir.join("runc-state");
    let mut cmd = Command::new("runc");
    cmd.arg("--root")
        .arg(&runc_root)
        .args(["run", "-b", &b, &id]);
    let runc = probe(&env.capture(cmd));
    for k in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(husk[k], runc[k], "{k}");
    }
    assert_eq!(husk["CapAmb"], "0000000000000000");
    assert_eq!(husk["CapEff"], "0000000020000420");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("ignoring CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE"),
        "{log}"
    );
}
