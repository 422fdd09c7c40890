//! The front end's default seccomp profile: what docker's default profile refuses, written as a
//! deny list gated on the capabilities the container gets (docker unlocks the same groups for
//! the same capabilities). Refused calls fail with EPERM; clone3 fails with ENOSYS so libc falls
//! back to clone, whose namespace flags can then be checked.

use serde_json::{Value, json};

/// (capability that unlocks the group, syscalls). `None`: refused whatever the capabilities.
const GROUPS: &[(Option<&str>, &[&str])] = &[
    (
        None,
        &[
            "add_key",
            "keyctl",
            "request_key",
            "uselib",
            "ustat",
            "sysfs",
            "_sysctl",
            "nfsservctl",
            "vm86",
            "vm86old",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
        ],
    ),
    (
        Some("CAP_SYS_ADMIN"),
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "setns",
            "unshare",
            "name_to_handle_at",
            "quotactl",
            "swapon",
            "swapoff",
            "lookup_dcookie",
            "fanotify_init",
            "open_tree",
            "move_mount",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "mount_setattr",
            "bpf",
            "perf_event_open",
        ],
    ),
    (
        Some("CAP_SYS_MODULE"),
        &[
            "create_module",
            "delete_module",
            "finit_module",
            "init_module",
            "query_module",
            "get_kernel_syms",
        ],
    ),
    (
        Some("CAP_SYS_BOOT"),
        &["reboot", "kexec_file_load", "kexec_load"],
    ),
    (
        Some("CAP_SYS_TIME"),
        &[
            "clock_adjtime",
            "clock_settime",
            "settimeofday",
            "stime",
            "adjtimex",
        ],
    ),
    (
        Some("CAP_SYS_PTRACE"),
        &[
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "kcmp",
            "userfaultfd",
        ],
    ),
    (Some("CAP_SYS_RAWIO"), &["ioperm", "iopl"]),
    (Some("CAP_SYS_PACCT"), &["acct"]),
    (Some("CAP_DAC_READ_SEARCH"), &["open_by_handle_at"]),
    (Some("CAP_SYSLOG"), &["syslog"]),
    (Some("CAP_SYS_TTY_CONFIG"), &["vhangup"]),
    (
        Some("CAP_SYS_NICE"),
        &["get_mempolicy", "mbind", "set_mempolicy", "move_pages"],
    ),
];

/// CLONE_NEW* bits: without CAP_SYS_ADMIN, clone may not make namespaces (docker's rule).
const NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

pub fn profile(caps: &[String]) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let denied: Vec<&str> = GROUPS
        .iter()
        .filter(|(cap, _)| cap.is_none_or(|c| !has(c)))
        .flat_map(|(_, names)| names.iter().copied())
        .collect();
    let mut rules = vec![json!({"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": 1})];
    if !has("CAP_SYS_ADMIN") {
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}));
        for flag in NAMESPACE_FLAGS {
            rules.push(json!({
                "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}]
            }));
        }
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_unlock_their_groups() {
        let names = |v: &Value| {
            v["syscalls"][0]["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        let default = profile(&["CAP_CHOWN".to_string()]);
        let n = names(&default);
        assert!(
            n.contains(&"mount".to_string())
                && n.contains(&"keyctl".to_string())
                && n.contains(&"ptrace".to_string())
        );
        assert_eq!(
            default["syscalls"].as_array().unwrap().len(),
            1 + 1 + NAMESPACE_FLAGS.len()
        );
        let admin = profile(&["CAP_SYS_ADMIN".to_string(), "CAP_SYS_PTRACE".to_string()]);
        let n = names(&admin);
        assert!(
            !n.contains(&"mount".to_string())
                && !n.contains(&"ptrace".to_string())
                && n.contains(&"keyctl".to_string())
        );
        assert_eq!(admin["syscalls"].as_array().unwrap().len(), 1);
        // The profile is valid for husk's own validation.
        husk_spec::seccomp::lower(Some(&default)).unwrap().unwrap();
    }
}
