//! `husk features` reports what this build does on this host: each seccomp architecture and
//! flag it lists is one a container here can use, each known one it leaves out is refused, and
//! the LSMs are enabled exactly where the host runs them (husk then applies them: lsm.rs).

mod common;
use common::*;
use husk_runtime as _;
use serde_json::{Value, json};
use std::process::Command;

fn features() -> Value {
    let out = Command::new(HUSK).arg("features").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn lsms_are_enabled_only_where_the_host_runs_them() {
    let f = features();
    let apparmor = std::path::Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.starts_with('Y'));
    assert_eq!(f["linux"]["apparmor"]["enabled"], apparmor);
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    assert_eq!(f["linux"]["selinux"]["enabled"], selinux);
}

#[test]
fn seccomp_lists_what_the_linked_libseccomp_accepts() {
    let f = features();
    let sc = &f["linux"]["seccomp"];
    skip_unless!(sc["enabled"] == true, "no seccomp in this kernel");
    let v = libseccomp::ScmpVersion::current().unwrap();
    assert_eq!(
        f["annotations"]["io.github.seccomp.libseccomp.version"],
        format!("{}.{}.{}", v.major, v.minor, v.micro)
    );
    let known = strings(&sc["knownFlags"]);
    let supported = strings(&sc["supportedFlags"]);
    assert!(supported.iter().all(|s| known.contains(s)));
    let wait = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV".to_string();
    assert!(known.contains(&wait));
    // The attribute arrived in libseccomp 2.6 (Debian 12 ships 2.5.4).
    assert_eq!(supported.contains(&wait), (v.major, v.minor) >= (2, 6));
    let archs = strings(&sc["archs"]);
    assert!(archs.contains(&"SCMP_ARCH_X86_64".to_string()), "{archs:?}");
    // Big-endian ABIs cannot share a filter with x86_64, and 2.5 does not know LoongArch.
    for absent in ["SCMP_ARCH_S390X", "SCMP_ARCH_PPC64"] {
        assert!(
            !archs.contains(&absent.to_string()),
            "{absent} in {archs:?}"
        );
    }
    if (v.major, v.minor) < (2, 6) {
        assert!(!archs.contains(&"SCMP_ARCH_LOONGARCH64".to_string()));
    }
}

/// The claims, tried: a container whose profile uses every listed arch and flag runs; one
/// known arch or flag left out of the lists is refused at create, naming the field.
#[test]
fn every_listed_arch_and_flag_works_and_an_unlisted_one_is_refused() {
    require_root!();
    let f = features();
    let sc = &f["linux"]["seccomp"];
    skip_unless!(sc["enabled"] == true, "no seccomp in this kernel");
    let archs = strings(&sc["archs"]);
    let supported = strings(&sc["supportedFlags"]);
    let mut env = Env::new("feat-sc");
    env.args(&["/bin/true"]);
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": archs,
        "flags": supported,
        "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    });
    let id = env.id("ok");
    let o = env.run(&id);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let all_archs = [
        "SCMP_ARCH_S390X",
        "SCMP_ARCH_PPC64",
        "SCMP_ARCH_LOONGARCH64",
    ];
    if let Some(arch) = all_archs.iter().find(|a| !archs.contains(&a.to_string())) {
        env.config["linux"]["seccomp"]["flags"] = json!([]);
        env.config["linux"]["seccomp"]["architectures"] = json!(["SCMP_ARCH_X86_64", arch]);
        let id = env.id("arch");
        let o = env.run(&id);
        assert_eq!(o.status.code(), Some(1), "{arch}");
        assert!(
            stderr(&o).contains("linux.seccomp.architectures"),
            "{}",
            stderr(&o)
        );
        assert_no_state(&env, &id);
    }
    let known = strings(&sc["knownFlags"]);
    if let Some(flag) = known.iter().find(|k| !supported.contains(k)) {
        env.config["linux"]["seccomp"]["architectures"] = json!(["SCMP_ARCH_X86_64"]);
        env.config["linux"]["seccomp"]["flags"] = json!([flag]);
        let id = env.id("flag");
        let o = env.run(&id);
        assert_eq!(o.status.code(), Some(1), "{flag}");
        assert!(stderr(&o).contains("linux.seccomp.flags"), "{}", stderr(&o));
        assert_no_state(&env, &id);
    }
}
