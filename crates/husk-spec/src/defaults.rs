//! The config `husk spec` writes: runc's default, at ociVersion 1.3.0.

use crate::config::*;
use std::collections::BTreeMap;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: dest.into(),
        kind: Some(kind.into()),
        source: Some(source.into()),
        options: s(options),
        ..Default::default()
    }
}

/// docker's and runc's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// runc's default /dev, /proc, /sys mounts.
pub fn default_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

pub fn default_spec() -> Spec {
    let caps = s(DEFAULT_CAPS);
    let ns = |k: &str| Namespace {
        kind: k.into(),
        path: None,
    };
    Spec {
        oci_version: crate::OCI_VERSION.into(),
        process: Some(Process {
            terminal: true,
            user: User::default(),
            args: s(&["sh"]),
            env: s(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ]),
            cwd: "/".into(),
            capabilities: Some(Capabilities::granting(caps)),
            rlimits: vec![Rlimit {
                kind: "RLIMIT_NOFILE".into(),
                hard: 1024,
                soft: 1024,
            }],
            no_new_privileges: true,
            ..Default::default()
        }),
        root: Some(Root {
            path: "rootfs".into(),
            readonly: true,
        }),
        hostname: Some("husk".into()),
        domainname: None,
        mounts: default_mounts(),
        hooks: None,
        annotations: BTreeMap::new(),
        linux: Some(Linux {
            namespaces: ["pid", "network", "ipc", "uts", "mount", "cgroup"]
                .iter()
                .map(|k| ns(k))
                .collect(),
            masked_paths: s(MASKED_PATHS),
            readonly_paths: s(READONLY_PATHS),
            ..Default::default()
        }),
    }
}

/// `husk spec --rootless`: runc's rootless config for the calling user (`uid`, `gid`): a user
/// namespace mapping them to root, no network or cgroup namespace (an ordinary user's sysfs
/// could only be the host's, bound), `/sys` bound recursively read-only, devpts without `gid=5`
/// (unmapped: EINVAL), no resources (no cgroup to put them in).
pub fn rootless_spec(uid: u32, gid: u32) -> Spec {
    let mut spec = default_spec();
    spec.mounts.retain_mut(|m| {
        if m.destination == "/sys" {
            *m = mount(
                "/sys",
                "none",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            );
        }
        if m.kind.as_deref() == Some("devpts") {
            m.options.retain(|o| o != "gid=5");
        }
        true
    });
    let one = |id| {
        vec![IdMapping {
            container_id: 0,
            host_id: id,
            size: 1,
        }]
    };
    if let Some(linux) = spec.linux.as_mut() {
        linux
            .namespaces
            .retain(|n| n.kind != "network" && n.kind != "cgroup");
        linux.namespaces.push(Namespace {
            kind: "user".into(),
            path: None,
        });
        linux.uid_mappings = one(uid);
        linux.gid_mappings = one(gid);
        linux.resources = None;
    }
    spec
}

#[cfg(test)]
mod tests {
    /// What `runc spec --rootless` writes, in the parts that differ from its default.
    #[test]
    fn rootless_spec_is_runcs() {
        let spec = super::rootless_spec(1001, 1002);
        let v = serde_json::to_value(&spec).unwrap();
        let kinds: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["pid", "ipc", "uts", "mount", "user"]);
        assert_eq!(
            v["linux"]["uidMappings"],
            serde_json::json!([{"containerID": 0, "hostID": 1001, "size": 1}])
        );
        assert_eq!(v["linux"]["gidMappings"][0]["hostID"], 1002);
        let mount = |d: &str| {
            v["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == d)
                .unwrap()
                .clone()
        };
        assert_eq!(
            mount("/sys")["options"],
            serde_json::json!(["rbind", "nosuid", "noexec", "nodev", "ro"])
        );
        assert!(
            !mount("/dev/pts")["options"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o == "gid=5")
        );
        assert!(v["linux"].get("resources").is_none());
    }
}
