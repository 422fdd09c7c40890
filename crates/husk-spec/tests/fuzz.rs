//! Fuzz target: config.json → Plan (`parse_config` + `lower`). Any input may be refused, none
//! may panic. Time per target: HUSK_FUZZ_SECS (scripts/fuzz.sh); regressions at the end.

use husk_fuzz::{fuzz, json, mutated, proptest::prelude::*};
use serde_json::{Value, json};
use std::path::Path;

/// OCI config field names, so mutations land on fields the lowering reads.
pub const KEYS: &[&str] = &[
    "ociVersion",
    "root",
    "path",
    "readonly",
    "process",
    "terminal",
    "consoleSize",
    "height",
    "width",
    "user",
    "uid",
    "gid",
    "umask",
    "additionalGids",
    "args",
    "env",
    "cwd",
    "capabilities",
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
    "rlimits",
    "type",
    "hard",
    "soft",
    "noNewPrivileges",
    "apparmorProfile",
    "oomScoreAdj",
    "selinuxLabel",
    "scheduler",
    "policy",
    "nice",
    "priority",
    "flags",
    "runtime",
    "deadline",
    "period",
    "ioPriority",
    "class",
    "execCPUAffinity",
    "initial",
    "final",
    "hostname",
    "domainname",
    "mounts",
    "destination",
    "source",
    "options",
    "uidMappings",
    "gidMappings",
    "containerID",
    "hostID",
    "size",
    "hooks",
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
    "timeout",
    "annotations",
    "linux",
    "namespaces",
    "devices",
    "major",
    "minor",
    "fileMode",
    "cgroupsPath",
    "resources",
    "memory",
    "limit",
    "reservation",
    "swap",
    "cpu",
    "shares",
    "quota",
    "cpus",
    "mems",
    "pids",
    "sysctl",
    "seccomp",
    "defaultAction",
    "syscalls",
    "names",
    "action",
    "rootfsPropagation",
    "maskedPaths",
    "readonlyPaths",
    "mountLabel",
    "personality",
    "domain",
    "intelRdt",
    "timeOffsets",
    "secs",
    "nanosecs",
    "memoryPolicy",
    "mode",
    "nodes",
    "netDevices",
    "name",
    "unified",
    "hugepageLimits",
    "pageSize",
    "blockIO",
    "weight",
    "allow",
    "access",
];

pub const STRINGS: &[&str] = &[
    "",
    "/",
    ".",
    "..",
    "../../etc",
    "/proc",
    "/dev/null",
    "/sys",
    "tmpfs",
    "bind",
    "rbind",
    "proc",
    "sysfs",
    "ro",
    "rw",
    "nosuid",
    "rprivate",
    "shared",
    "idmap",
    "ridmap",
    "size=65536k",
    "mode=755",
    "CAP_SYS_ADMIN",
    "CAP_CHOWN",
    "CAP_NOPE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "pid",
    "network",
    "mount",
    "ipc",
    "uts",
    "user",
    "cgroup",
    "time",
    "/proc/1/ns/net",
    "SCHED_FIFO",
    "SCHED_OTHER",
    "IOPRIO_CLASS_RT",
    "c",
    "b",
    "p",
    "u",
    "a",
    "rwm",
    "0-1",
    "0,1",
    "0-",
    "net.ipv4.ip_forward",
    "kernel.shm_rmid_forced",
    "LINUX32",
    "MPOL_BIND",
    "monotonic",
    "boottime",
    "PATH=/bin",
    "x=y",
    "2MB",
    "1GB",
    "64KB",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "/sys/fs/cgroup",
    "\u{0}",
    "a\nb",
];

fn base() -> Value {
    let mut v = serde_json::to_value(husk_spec::defaults::default_spec()).unwrap();
    // The default config has none of these: start with each, so each is reached.
    v["linux"]["resources"] = json!({
        "memory": {"limit": 1 << 26, "swap": 1 << 27}, "cpu": {"shares": 512, "quota": 50000,
        "period": 100000, "cpus": "0"}, "pids": {"limit": 64},
        "devices": [{"allow": false, "access": "rwm"}]});
    v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .extend([json!({"type": "user"}), json!({"type": "time"})]);
    v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]});
    v["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 1, "nanosecs": 0}});
    v["hooks"] = json!({"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]});
    v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]);
    v["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": 0});
    v
}

fn lower(text: &str) {
    if let Ok(spec) = husk_spec::parse_config(text) {
        let _ = husk_spec::lower(&spec, Path::new("/bundle"));
    }
}

#[test]
fn config_json_to_plan() {
    // Valid to begin with, so the mutations explore one wrong field at a time.
    let spec = husk_spec::parse_config(&base().to_string()).unwrap();
    if let Err(e) = husk_spec::lower(&spec, Path::new("/bundle")) {
        panic!("the base config: {e}");
    }
    fuzz(
        "config.json → Plan",
        mutated(base(), KEYS, STRINGS),
        |v| lower(&v.to_string()),
    );
}

#[test]
fn config_json_any_document() {
    fuzz("config.json (any JSON)", json(KEYS, STRINGS), |v| {
        lower(&v.to_string())
    });
}

#[test]
fn config_json_bytes() {
    // Cut and bit-flipped text of a valid config: the parser's error paths.
    let text = base().to_string();
    let len = text.len();
    let s = (0..len, prop::collection::vec((0..len, any::<u8>()), 0..4));
    fuzz("config.json bytes", s, move |(cut, flips)| {
        let mut b = text.as_bytes()[..cut].to_vec();
        for (i, x) in flips {
            if i < b.len() {
                b[i] ^= x;
            }
        }
        lower(&String::from_utf8_lossy(&b));
    });
}
