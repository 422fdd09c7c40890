//! The contract engines rely on without writing it down: the words in kill/delete/state errors
//! that containerd's runc shim, CRI-O and podman parse (docs/clients.md, "Errors engines
//! parse"), and exec.fifo reachable by whatever user the process ends as, in bundles made by
//! `runc spec`.

mod common;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Asserts a husk command failed with exit code 1 and a message containing `words`.
fn fails_with(env: &Env, args: &[&str], words: &str) {
    let o = env.husk(args);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
    assert!(stderr(&o).contains(words), "{args:?}: {}", stderr(&o));
}

#[test]
fn errors_carry_the_words_engines_match() {
    require_root!();
    let mut env = Env::new("eng-words");
    let b = env.bundle.to_string_lossy().into_owned();
    let id = env.id("exited");
    env.args(&["/bin/true"]);
    assert!(env.husk(&["create", &id, "-b", &b]).status.success());
    assert!(env.husk(&["start", &id]).status.success());
    env.wait_status(&id, "stopped");

    // containerd's shim sends this after every exit; runc 1.1 answers 0.
    let o = env.husk(&["kill", "--all", &id, "KILL"]);
    assert!(
        o.status.success(),
        "kill --all of a stopped container: {}",
        stderr(&o)
    );
    // A plain kill fails, in the words the shim (and CRI-O, and podman's stop) take as "gone".
    fails_with(&env, &["kill", &id, "KILL"], "container not running");
    fails_with(&env, &["kill", &id, "9"], "container not running");
    fails_with(&env, &["exec", &id, "/bin/true"], "container not running");
    fails_with(&env, &["pause", &id], "container not running");
    fails_with(&env, &["ps", &id], "container not running");
    fails_with(
        &env,
        &["start", &id],
        "cannot start a container that is stopped",
    );
    // The shim reads the last error of the JSON log (`runtimeError`): the same words there.
    let log = env.dir.join("log.json");
    let l = log.to_string_lossy().into_owned();
    let o = env.husk(&["--log", &l, "--log-format", "json", "kill", &id, "9"]);
    assert_eq!(o.status.code(), Some(1));
    let last: Value = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|v| v["level"] == "error")
        .expect("an error line in the JSON log");
    assert!(
        last["msg"]
            .as_str()
            .unwrap()
            .contains("container not running"),
        "{last}"
    );
    // delete of an exited container (the shim's `delete` after `task rm`) succeeds.
    assert!(env.husk(&["delete", &id]).status.success());

    // An id husk does not know: "does not exist" (the shim's delete and kill, podman's state).
    for args in [
        vec!["state", id.as_str()],
        vec!["kill", id.as_str(), "9"],
        vec!["kill", "--all", id.as_str(), "9"],
        vec!["delete", id.as_str()],
        vec!["start", id.as_str()],
        vec!["exec", id.as_str(), "/bin/true"],
    ] {
        fails_with(&env, &args, &format!("container \"{id}\" does not exist"));
    }
    assert!(env.husk(&["delete", "--force", &id]).status.success());

    // A running container: delete needs --force (runc's words); kill and kill --all work.
    let id = env.id("running");
    env.args(&["/bin/sleep", "inf"]);
    assert!(env.husk(&["create", &id, "-b", &b]).status.success());
    assert!(env.husk(&["start", &id]).status.success());
    fails_with(
        &env,
        &["delete", &id],
        &format!("cannot delete container \"{id}\" that is not stopped: running"),
    );
    assert!(env.husk(&["kill", "--all", &id, "KILL"]).status.success());
    env.wait_status(&id, "stopped");
    assert!(env.husk(&["delete", &id]).status.success());
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

/// `runc spec` into the env's bundle, on the shared rootfs; None (with a SKIP line) without runc
/// (a prerequisite: test-cgroup2.sh hands runc to the guest).
fn runc_spec(env: &mut Env) -> Option<()> {
    let runc = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(runc) = runc else {
        skip(
            Skip::Prerequisite,
            "no runc to write the bundle (apt-get install runc)",
        );
        return None;
    };
    let _ = std::fs::remove_file(env.bundle.join("config.json"));
    let st = Command::new(runc)
        .args(["spec", "--bundle"])
        .arg(&env.bundle)
        .status()
        .unwrap();
    assert!(st.success(), "runc spec");
    env.config =
        serde_json::from_slice(&std::fs::read(env.bundle.join("config.json")).unwrap()).unwrap();
    env.config["root"]["path"] = json!(rootfs());
    env.config["process"]["terminal"] = json!(false);
    assert_eq!(
        env.config["root"]["readonly"],
        json!(true),
        "runc spec's root"
    );
    Some(())
}

/// create, then check the container is `created` (init alive, waiting on exec.fifo), then start
/// and return what `id -u; id -g` printed.
fn create_start_ids(env: &Env, id: &str) -> String {
    env.write_config();
    let out = env.dir.join(format!("{id}.out"));
    let err = env.dir.join(format!("{id}.err"));
    // The container inherits create's stdout: a file, read once it has exited.
    let st = Command::new(HUSK)
        .arg("--root")
        .arg(&env.root)
        .args(["create", "--bundle"])
        .arg(&env.bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    let err_text = || std::fs::read_to_string(&err).unwrap_or_default();
    assert!(st.success(), "create {id}: {}", err_text());
    assert_eq!(env.status(id), "created", "{id}: {}", err_text());
    let o = env.husk(&["start", id]);
    assert!(o.status.success(), "start {id}: {}", stderr(&o));
    env.wait_status(id, "stopped");
    assert!(env.husk(&["delete", id]).status.success());
    std::fs::read_to_string(&out).unwrap()
}

fn user_case(env: &mut Env, uid: u32, gid: u32, caps: Option<Value>) {
    env.config["process"]["user"] = json!({"uid": uid, "gid": gid});
    env.config["process"]["args"] = json!(["/bin/sh", "-c", "id -u; id -g"]);
    if let Some(c) = caps {
        env.config["process"]["capabilities"] = c;
    }
}

#[test]
fn exec_fifo_reaches_start_for_every_final_user() {
    require_root!();
    let mut env = Env::new("eng-fifo");
    if runc_spec(&mut env).is_none() {
        return;
    }
    let default_caps = env.config["process"]["capabilities"].clone();
    let none = json!({});

    // Kubernetes' restricted profile: runAsUser 1000, drop ALL, read-only root.
    user_case(&mut env, 1000, 1000, Some(none.clone()));
    assert_eq!(create_start_ids(&env, &env.id("u1000")), "1000\n1000\n");

    // root without a single capability (no CAP_DAC_OVERRIDE).
    user_case(&mut env, 0, 0, Some(none));
    assert_eq!(create_start_ids(&env, &env.id("u0")), "0\n0\n");

    // A nobody-like uid with runc's default capabilities (no CAP_DAC_OVERRIDE among them).
    user_case(&mut env, 65535, 65535, Some(default_caps));
    assert_eq!(create_start_ids(&env, &env.id("u65535")), "65535\n65535\n");

    // A user namespace: container root is host uid 100000, and a container user is 101000.
    env.user_namespace(100000);
    user_case(&mut env, 0, 0, None);
    let id = env.id("userns");
    let fifo_owner = fifo_owner_while_created(&env, &id);
    assert_eq!(fifo_owner, (100000, 100000), "exec.fifo of {id}");
    user_case(&mut env, 1000, 1000, Some(json!({})));
    assert_eq!(
        create_start_ids(&env, &env.id("userns1000")),
        "1000\n1000\n"
    );
}

/// Creates `id`, reads exec.fifo's owner while it is created, then starts and deletes it.
fn fifo_owner_while_created(env: &Env, id: &str) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let b = env.bundle.to_string_lossy().into_owned();
    let o = env.husk(&["create", id, "-b", &b]);
    assert!(o.status.success(), "create {id}: {}", stderr(&o));
    assert_eq!(env.status(id), "created");
    let m = std::fs::metadata(env.root.join(id).join("exec.fifo")).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600, "only its owner opens it");
    let owner = (m.uid(), m.gid());
    assert!(env.husk(&["start", id]).status.success());
    env.wait_status(id, "stopped");
    assert!(env.husk(&["delete", id]).status.success());
    owner
}

/// A bundle in which init cannot open exec.fifo where it looks for it (a /proc that is not
/// the kernel's: here a tmpfs) fails at `create`, naming the step and the errno, and leaves
/// nothing; before, `create` returned 0 for an init that had already exited.
#[test]
fn create_fails_when_init_could_not_wait_for_start() {
    require_root!();
    let mut env = Env::new("eng-nofifo");
    let id = env.id("nofifo");
    let b = env.bundle.to_string_lossy().into_owned();
    // No mask or read-only paths: they need the real /proc and would fail first.
    env.config["linux"]["maskedPaths"] = json!([]);
    env.config["linux"]["readonlyPaths"] = json!([]);
    let mounts = env.config["mounts"].as_array_mut().unwrap();
    for m in mounts.iter_mut().filter(|m| m["destination"] == "/proc") {
        *m = json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]});
    }
    let o = env.husk(&["create", &id, "-b", &b]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("open exec.fifo for writing as uid 0 gid 0 /proc/self/fd/")
            && e.contains("ENOENT"),
        "{e}"
    );
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

/// An init killed after `create` returned: `start` says so in words engines match.
#[test]
fn start_of_a_killed_init_says_it_never_ran() {
    require_root!();
    let mut env = Env::new("eng-killed");
    let id = env.id("killed");
    env.args(&["/bin/true"]);
    let b = env.bundle.to_string_lossy().into_owned();
    let pf: PathBuf = env.dir.join("pid");
    let pfs = pf.to_string_lossy().into_owned();
    assert!(
        env.husk(&["create", &id, "-b", &b, "--pid-file", &pfs])
            .status
            .success()
    );
    let pid = std::fs::read_to_string(&pf).unwrap();
    assert!(
        Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    env.wait_status(&id, "stopped");
    fails_with(
        &env,
        &["start", &id],
        "its init exited before start, the process never ran (container not running)",
    );
    assert!(env.husk(&["delete", &id]).status.success());
    assert_no_cgroup(&id);
}

/// podman `--uidmap`: /etc/hosts and /etc/hostname are binds of files in a 0700 directory only
/// host root may search, while init runs as host uid 100000. The parent opens the sources; the
/// container sees them (before: `create mount target /etc/hosts: ENOTDIR`, the source unreadable
/// taken for a directory, and its bind would have been EACCES).
#[test]
fn binds_from_a_private_dir_reach_a_user_namespace() {
    require_root!();
    let mut env = Env::new("eng-userdata");
    if runc_spec(&mut env).is_none() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    // The targets exist in the image, as podman's do: root of the user namespace (host 100000)
    // may not create anything in a root-owned image.
    let root = private_rootfs("eng-userdata");
    std::fs::write(root.join("etc/hosts"), "").unwrap();
    std::fs::create_dir_all(root.join("mnt/data")).unwrap();
    env.config["root"]["path"] = json!(root);
    let userdata = env.dir.join("userdata");
    std::fs::create_dir_all(userdata.join("dir")).unwrap();
    std::fs::set_permissions(&userdata, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(userdata.join("hosts"), "127.0.0.1 bound-hosts\n").unwrap();
    std::fs::write(userdata.join("dir/inside"), "in-dir\n").unwrap();
    env.user_namespace(100000);
    let mounts = env.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/etc/hosts", "type": "bind",
        "source": userdata.join("hosts"), "options": ["bind", "rprivate"]}));
    mounts.push(json!({"destination": "/mnt/data", "type": "bind",
        "source": userdata.join("dir"), "options": ["rbind", "ro"]}));
    env.config["process"]["args"] = json!([
        "/bin/sh",
        "-c",
        "id -u; cat /etc/hosts /mnt/data/inside; touch /mnt/data/x || echo ro"
    ]);
    env.config["process"]["user"] = json!({"uid": 0, "gid": 0});
    let out = create_start_ids(&env, &env.id("userdata"));
    assert_eq!(out, "0\n127.0.0.1 bound-hosts\nin-dir\nro\n");
    let _ = std::fs::remove_dir_all(&root);
}
