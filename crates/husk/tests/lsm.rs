//! AppArmor, applied for real: a profile denying one file is enforced in the container's
//! program (not spent on an exec trampoline), in processes `exec` adds, with `exec --apparmor`
//! and `--process`, and the same file is readable without it. Runs where AppArmor is enabled
//! and apparmor_parser can load profiles (scripts/test-lsm.sh boots the cgroup v2 guest so);
//! elsewhere it is a host-feature skip, unless HUSK_REQUIRE_APPARMOR is set, which makes that a
//! failure.
//! SELinux cannot run here: its labels are refused where it is absent (tested here), and what is
//! written where is unit-tested (husk-spec `lsm`, husk-runtime `lsm`, the front end's `lsm`).

mod common;
use common::*;
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};

const DENIED: &str = "husk-lsm-denied";

/// Whether the AppArmor tests can run here; reports the skip when not. A kernel without
/// AppArmor is a host feature (allowed, except where HUSK_REQUIRE_APPARMOR says it must be
/// there: scripts/test-lsm.sh); root, the rootfs tools and apparmor_parser are prerequisites.
fn apparmor_here() -> bool {
    if let Some(r) = skip_reason() {
        skip(Skip::Prerequisite, &r);
        return false;
    }
    let enabled = std::path::Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.starts_with('Y'));
    if !enabled {
        assert!(
            std::env::var_os("HUSK_REQUIRE_APPARMOR").is_none(),
            "HUSK_REQUIRE_APPARMOR is set but AppArmor is not enabled on this host"
        );
        skip(Skip::HostFeature, "AppArmor is not enabled on this host");
        return false;
    }
    let parser = Command::new("apparmor_parser")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !parser.is_ok_and(|s| s.success()) {
        skip(
            Skip::Prerequisite,
            "no apparmor_parser (apt-get install apparmor)",
        );
        return false;
    }
    true
}

macro_rules! require_apparmor {
    () => {
        if !apparmor_here() {
            return;
        }
    };
}

/// A loaded profile that allows everything but reading /DENIED; unloaded on drop.
struct Profile(String);

impl Profile {
    fn load(name: &str) -> Profile {
        let text = format!(
            "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n  file,\n  capability,\n  network,\n  unix,\n  signal,\n  ptrace,\n  mount,\n  umount,\n  pivot_root,\n  deny /{DENIED} r,\n}}\n"
        );
        let mut child = Command::new("apparmor_parser")
            .args(["-r", "-W"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "apparmor_parser: {}", stderr(&out));
        Profile(name.to_string())
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let text = format!("profile {} {{}}\n", self.0);
        if let Ok(mut c) = Command::new("apparmor_parser")
            .arg("-R")
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            let _ = c.stdin.take().map(|mut i| i.write_all(text.as_bytes()));
            let _ = c.wait();
        }
    }
}

/// A rootfs holding the file the profile denies.
fn env_with_secret(name: &str) -> Env {
    let mut env = Env::new(name);
    let rootfs = private_rootfs(name);
    std::fs::write(rootfs.join(DENIED), "secret\n").unwrap();
    env.config["root"]["path"] = json!(rootfs);
    env
}

/// What a process sees: its label, then whether it could read the file.
const LOOK: &str = "cat /proc/self/attr/current; cat /husk-lsm-denied && echo READ || echo DENIED";

fn look(o: &std::process::Output) -> (String, String) {
    let out = stdout(o);
    let mut lines = out.lines();
    let label = lines.next().unwrap_or_default().to_string();
    let verdict = lines.last().unwrap_or_default().to_string();
    (label, verdict)
}

#[test]
fn apparmor_profile_confines_the_container_and_its_execs() {
    require_apparmor!();
    let name = format!("husk-test-{}", std::process::id());
    let _profile = Profile::load(&name);
    let mut env = env_with_secret("lsm-aa");

    // Without a profile the file is readable: the denial below is the profile's doing.
    env.args(&["/bin/sh", "-c", LOOK]);
    let o = env.run(&env.id("plain"));
    assert_eq!(
        look(&o),
        ("unconfined".into(), "READ".into()),
        "{}",
        stderr(&o)
    );

    // The container's program runs under the profile, itself: the exec transition is not
    // spent on the husk-exec trampoline (`--explain` narrates which execve init makes).
    env.config["process"]["apparmorProfile"] = json!(name);
    let b = env.bundle.to_string_lossy().into_owned();
    let o = env.husk(&["--explain", "run", "-b", &b, &env.id("confined")]);
    assert!(!stderr(&o).contains("execve husk-exec"), "{}", stderr(&o));
    assert!(stderr(&o).contains("execve /bin/sh"), "{}", stderr(&o));
    let (label, verdict) = look(&o);
    assert_eq!(label, format!("{name} (enforce)"), "{}", stderr(&o));
    assert_eq!(verdict, "DENIED", "{}\n{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));

    // exec gets the container's profile.
    env.args(&["/bin/sleep", "inf"]);
    let id = env.id("running");
    env.run_detached(&id);
    let o = env.husk(&["exec", &id, "/bin/sh", "-c", LOOK]);
    assert_eq!(look(&o), (format!("{name} (enforce)"), "DENIED".into()));
    // --process with the profile named, too.
    let process = env.dir.join("process.json");
    let mut p = env.config["process"].clone();
    p["args"] = json!(["/bin/sh", "-c", LOOK]);
    std::fs::write(&process, p.to_string()).unwrap();
    let o = env.husk(&["exec", "--process", &process.to_string_lossy(), &id]);
    assert_eq!(look(&o).1, "DENIED", "{}", stderr(&o));
    env.husk(&["delete", "--force", &id]);

    // An unconfined container: exec --apparmor confines the one process.
    env.config["process"]
        .as_object_mut()
        .unwrap()
        .remove("apparmorProfile");
    let id = env.id("unconfined");
    env.run_detached(&id);
    let o = env.husk(&["exec", &id, "/bin/sh", "-c", LOOK]);
    assert_eq!(look(&o), ("unconfined".into(), "READ".into()));
    let o = env.husk(&["exec", "--apparmor", &name, &id, "/bin/sh", "-c", LOOK]);
    assert_eq!(look(&o), (format!("{name} (enforce)"), "DENIED".into()));
    env.husk(&["delete", "--force", &id]);
}

/// The front end: `--security-opt apparmor=PROFILE` confines, `apparmor=unconfined` does not.
#[test]
fn front_end_security_opt_apparmor() {
    require_apparmor!();
    let name = format!("husk-test-fe-{}", std::process::id());
    let _profile = Profile::load(&name);
    let env = env_with_secret("lsm-aa-fe");
    let rootfs = env.config["root"]["path"].as_str().unwrap().to_string();
    let front = |opt: &str| {
        let mut c = Command::new(HUSK);
        c.arg("--root").arg(&env.root).args([
            "run",
            "--rootfs",
            &rootfs,
            "--security-opt",
            opt,
            "--",
            "/bin/sh",
            "-c",
            LOOK,
        ]);
        env.capture(c)
    };
    let o = front(&format!("apparmor={name}"));
    assert_eq!(
        look(&o),
        (format!("{name} (enforce)"), "DENIED".into()),
        "{}",
        stderr(&o)
    );
    let o = front("apparmor=unconfined");
    assert_eq!(
        look(&o),
        ("unconfined".into(), "READ".into()),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_profile_that_is_not_loaded_fails_create_cleanly() {
    require_apparmor!();
    let mut env = Env::new("lsm-aa-missing");
    env.config["process"]["apparmorProfile"] = json!("husk-no-such-profile");
    let id = env.id("missing");
    let o = env.run(&id);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("process.apparmorProfile") && err.contains("husk-no-such-profile"),
        "{err}"
    );
    assert_no_state(&env, &id);
    assert_no_cgroup(&id);
}

/// Where SELinux is absent (this host, the guest), its labels are refused by field name:
/// accepted, they would leave a container believed labelled running unlabelled.
#[test]
fn selinux_labels_without_selinux_are_clear_errors() {
    require_root!();
    skip_unless!(
        !std::path::Path::new("/sys/fs/selinux/enforce").exists(),
        "SELinux is enabled on this host"
    );
    let label = "system_u:system_r:container_t:s0:c1,c2";
    for (field, set) in [
        (
            "process.selinuxLabel",
            json!({"process": {"selinuxLabel": label}}),
        ),
        ("linux.mountLabel", json!({"linux": {"mountLabel": label}})),
    ] {
        let mut env = Env::new("lsm-se");
        for (k, v) in set.as_object().unwrap() {
            for (k2, v2) in v.as_object().unwrap() {
                env.config[k][k2] = v2.clone();
            }
        }
        let id = env.id("se");
        let o = env.run(&id);
        assert_eq!(o.status.code(), Some(1), "{field}");
        let err = stderr(&o);
        assert!(err.contains(field) && err.contains("SELinux"), "{err}");
        assert_no_state(&env, &id);
        assert_no_cgroup(&id);
    }
    // exec --process-label on a running container: refused the same way, nothing started.
    let mut env = Env::new("lsm-se-exec");
    env.args(&["/bin/sleep", "inf"]);
    let id = env.id("exec");
    env.run_detached(&id);
    let o = env.husk(&["exec", "--process-label", label, &id, "/bin/true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("process.selinuxLabel"),
        "{}",
        stderr(&o)
    );
    env.husk(&["delete", "--force", &id]);
}

/// CVE-2019-16884: a volume over /proc with its own `attr/exec` files. The profile is written
/// through husk's private procfs, so the container is confined all the same, and the fake files
/// are never written.
#[test]
fn a_fake_proc_cannot_take_the_profile_write() {
    require_apparmor!();
    let name = format!("husk-test-fp-{}", std::process::id());
    let _profile = Profile::load(&name);
    let mut env = env_with_secret("lsm-aa-fakeproc");
    let fake = env.dir.join("fakeproc");
    let planted = [
        "self/attr/apparmor/exec",
        "self/attr/exec",
        "thread-self/attr/apparmor/exec",
        "thread-self/attr/exec",
    ];
    for f in planted {
        let p = fake.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "").unwrap();
    }
    let mut mounts: Vec<serde_json::Value> = env.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] != "/proc")
        .cloned()
        .collect();
    mounts.insert(
        0,
        json!({"destination": "/proc", "source": fake, "options": ["rbind"]}),
    );
    env.config["mounts"] = json!(mounts);
    // Masking needs the container's /proc to be procfs; this one is not.
    env.config["linux"]["maskedPaths"] = json!([]);
    env.config["linux"]["readonlyPaths"] = json!([]);
    env.config["process"]["apparmorProfile"] = json!(name);
    env.args(&[
        "/bin/sh",
        "-c",
        "cat /husk-lsm-denied && echo READ || echo DENIED",
    ]);
    let o = env.run(&env.id("fake"));
    assert_eq!(stdout(&o).trim(), "DENIED", "{}", stderr(&o));
    for f in planted {
        assert_eq!(std::fs::read_to_string(fake.join(f)).unwrap(), "", "{f}");
    }
}

/// In a user namespace (docker --userns-remap, podman's user namespaces) init and the exec'd
/// process are non-dumpable and root only inside: the attribute writes still land.
#[test]
fn apparmor_in_a_user_namespace() {
    require_apparmor!();
    let name = format!("husk-test-us-{}", std::process::id());
    let _profile = Profile::load(&name);
    let mut env = env_with_secret("lsm-aa-userns");
    env.user_namespace(100000);
    env.args(&["/bin/sh", "-c", LOOK]);
    let o = env.run(&env.id("us-plain"));
    assert_eq!(
        look(&o),
        ("unconfined".into(), "READ".into()),
        "{}",
        stderr(&o)
    );
    env.config["process"]["apparmorProfile"] = json!(name);
    let o = env.run(&env.id("us-confined"));
    assert_eq!(
        look(&o),
        (format!("{name} (enforce)"), "DENIED".into()),
        "{}",
        stderr(&o)
    );
    env.args(&["/bin/sleep", "inf"]);
    let id = env.id("us-running");
    env.run_detached(&id);
    let o = env.husk(&["exec", &id, "/bin/sh", "-c", LOOK]);
    assert_eq!(
        look(&o),
        (format!("{name} (enforce)"), "DENIED".into()),
        "{}",
        stderr(&o)
    );
    env.husk(&["delete", "--force", &id]);
}
