//! `linux.seccomp` → a typed, validated filter description (`SeccompPlan`). Pure: syscall names
//! are only checked for shape here; resolving them to numbers needs libseccomp and happens in the
//! runtime, where names the library does not know are skipped (runc does the same, because
//! profiles list syscalls newer than the library).
//!
//! The config field stays a `serde_json::Value` in `config.rs` so a config round-trips unchanged;
//! it is parsed here, and every name that would only fail later inside libseccomp (action,
//! architecture, operator, flag) is checked now, before any side effect, naming its field.

use crate::error::{ConfigError, err};
use serde::Deserialize;
use std::path::PathBuf;

/// What a matching syscall (or, as the default, any other syscall) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `SCMP_ACT_KILL` and `SCMP_ACT_KILL_THREAD`: the kernel kills the calling thread only.
    KillThread,
    KillProcess,
    Trap,
    Errno(u16),
    Trace(u16),
    Allow,
    Log,
    Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`: the config's `value` is the mask, `valueTwo` the datum.
    MaskedEq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCmp {
    /// Syscall argument number, 0..=5.
    pub index: u32,
    pub op: CmpOp,
    pub value: u64,
    pub value_two: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallRule {
    pub names: Vec<String>,
    pub action: Action,
    pub args: Vec<ArgCmp>,
}

/// `SECCOMP_FILTER_FLAG_*` requested by the config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    pub tsync: bool,
    pub log: bool,
    pub spec_allow: bool,
    /// Needs libseccomp ≥ 2.6; the runtime refuses it with the library's version.
    pub wait_killable_recv: bool,
    /// `flags` was absent (not merely empty): add SPEC_ALLOW when the library and kernel
    /// support it, as runc ≥ 1.2 does.
    pub spec_allow_if_supported: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompPlan {
    pub default_action: Action,
    /// `SCMP_ARCH_*` names, validated against `ARCHES`; the native one is always in the filter.
    pub architectures: Vec<&'static str>,
    pub flags: Flags,
    /// Host path of the agent's socket; the notify fd goes there after the filter is loaded.
    pub listener_path: Option<PathBuf>,
    pub listener_metadata: String,
    pub rules: Vec<SyscallRule>,
}

impl SeccompPlan {
    /// A rule with `SCMP_ACT_NOTIFY` makes the kernel hand out a listener fd.
    pub fn uses_notify(&self) -> bool {
        self.rules.iter().any(|r| r.action == Action::Notify)
    }
}

/// The architectures libseccomp knows (2.6 names included; the runtime reports the ones the
/// linked library lacks).
pub const ARCHES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

/// Names for `husk features`-style reports.
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];
pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
pub const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

// The config's shape, private to this module (see the module comment for why it is not in
// config.rs). Unknown fields are ignored, as everywhere in husk-spec.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawSeccomp {
    default_action: String,
    default_errno_ret: Option<u32>,
    architectures: Vec<String>,
    flags: Option<Vec<String>>,
    listener_path: String,
    listener_metadata: String,
    syscalls: Vec<RawSyscall>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawSyscall {
    names: Vec<String>,
    action: String,
    errno_ret: Option<u32>,
    args: Vec<RawArg>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawArg {
    index: u32,
    value: u64,
    value_two: u64,
    op: String,
}

/// The errno for ERRNO/TRACE; EPERM when the config gives none (runc's default). Ignored for
/// the other actions, as runc ignores it.
fn action(
    field: &str,
    name: &str,
    errno: Option<u32>,
    errno_field: &str,
) -> Result<Action, ConfigError> {
    let ret = || -> Result<u16, ConfigError> {
        match errno {
            None => Ok(1),
            // The kernel keeps 16 bits of SECCOMP_RET_DATA.
            Some(e) => u16::try_from(e).map_err(|_| err(errno_field, "must be at most 65535")),
        }
    };
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_ERRNO" => Action::Errno(ret()?),
        "SCMP_ACT_TRACE" => Action::Trace(ret()?),
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_NOTIFY" => Action::Notify,
        other => return Err(err(field, format!("unknown action \"{other}\""))),
    })
}

fn operator(field: &str, name: &str) -> Result<CmpOp, ConfigError> {
    Ok(match name {
        "SCMP_CMP_NE" => CmpOp::Ne,
        "SCMP_CMP_LT" => CmpOp::Lt,
        "SCMP_CMP_LE" => CmpOp::Le,
        "SCMP_CMP_EQ" => CmpOp::Eq,
        "SCMP_CMP_GE" => CmpOp::Ge,
        "SCMP_CMP_GT" => CmpOp::Gt,
        "SCMP_CMP_MASKED_EQ" => CmpOp::MaskedEq,
        other => return Err(err(field, format!("unknown operator \"{other}\""))),
    })
}

/// Lowers `linux.seccomp`. `None` when there is no filter: the field is absent, null, or has
/// neither a default action nor rules (runc treats that as "seccomp disabled").
pub fn lower(value: Option<&serde_json::Value>) -> Result<Option<SeccompPlan>, ConfigError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let raw: RawSeccomp =
        serde_json::from_value(value.clone()).map_err(|e| err("linux.seccomp", e.to_string()))?;
    if raw.default_action.is_empty() && raw.syscalls.is_empty() {
        return Ok(None);
    }
    let default_action = action(
        "linux.seccomp.defaultAction",
        &raw.default_action,
        raw.default_errno_ret,
        "linux.seccomp.defaultErrnoRet",
    )?;
    // A notifying default would also stop husk's own syscalls between loading the filter and
    // execve until the agent answers; runc refuses it for the same reason.
    if default_action == Action::Notify {
        return Err(err(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let mut architectures = Vec::new();
    for (i, a) in raw.architectures.iter().enumerate() {
        let name = ARCHES.iter().find(|n| **n == a).ok_or_else(|| {
            err(
                format!("linux.seccomp.architectures[{i}]"),
                format!("unknown architecture \"{a}\""),
            )
        })?;
        if !architectures.contains(name) {
            architectures.push(*name);
        }
    }
    let mut flags = Flags::default();
    match &raw.flags {
        None => flags.spec_allow_if_supported = true,
        Some(list) => {
            for (i, f) in list.iter().enumerate() {
                match f.as_str() {
                    "SECCOMP_FILTER_FLAG_TSYNC" => flags.tsync = true,
                    "SECCOMP_FILTER_FLAG_LOG" => flags.log = true,
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => flags.spec_allow = true,
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => flags.wait_killable_recv = true,
                    _ => {
                        return Err(err(
                            format!("linux.seccomp.flags[{i}]"),
                            format!("unknown flag \"{f}\""),
                        ));
                    }
                }
            }
        }
    }
    let mut rules = Vec::new();
    for (i, s) in raw.syscalls.iter().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        if s.names.is_empty() {
            return Err(err(format!("{field}.names"), "needs at least one name"));
        }
        if let Some(j) = s.names.iter().position(|n| n.is_empty()) {
            return Err(err(format!("{field}.names[{j}]"), "empty syscall name"));
        }
        let action = action(
            &format!("{field}.action"),
            &s.action,
            s.errno_ret,
            &format!("{field}.errnoRet"),
        )?;
        // husk's init writes to its sync socket after loading the filter; runc refuses the same.
        if action == Action::Notify && s.names.iter().any(|n| n == "write") {
            return Err(err(
                format!("{field}.names"),
                "SCMP_ACT_NOTIFY cannot be used for the write syscall",
            ));
        }
        let mut args = Vec::new();
        for (j, a) in s.args.iter().enumerate() {
            let afield = format!("{field}.args[{j}]");
            if a.index > 5 {
                return Err(err(
                    format!("{afield}.index"),
                    format!("{} is not a syscall argument (0..5)", a.index),
                ));
            }
            args.push(ArgCmp {
                index: a.index,
                op: operator(&format!("{afield}.op"), &a.op)?,
                value: a.value,
                value_two: a.value_two,
            });
        }
        rules.push(SyscallRule {
            names: s.names.clone(),
            action,
            args,
        });
    }
    let listener_path =
        Some(PathBuf::from(&raw.listener_path)).filter(|_| !raw.listener_path.is_empty());
    let plan = SeccompPlan {
        default_action,
        architectures,
        flags,
        listener_path,
        listener_metadata: raw.listener_metadata,
        rules,
    };
    // Without an agent the kernel answers every notified syscall with ENOSYS once the fd is
    // closed: surely not what the config meant.
    if plan.uses_notify() && plan.listener_path.is_none() {
        return Err(err(
            "linux.seccomp.listenerPath",
            "required when a rule uses SCMP_ACT_NOTIFY",
        ));
    }
    Ok(Some(plan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn low(v: serde_json::Value) -> Result<Option<SeccompPlan>, String> {
        lower(Some(&v)).map_err(|e| e.to_string())
    }

    #[test]
    fn absent_or_empty_is_no_filter() {
        assert_eq!(lower(None), Ok(None));
        assert_eq!(low(json!(null)), Ok(None));
        assert_eq!(low(json!({})), Ok(None));
        assert_eq!(
            low(json!({"architectures": ["SCMP_ARCH_X86_64"]})),
            Ok(None)
        );
    }

    #[test]
    fn golden() {
        let p = low(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"],
            "listenerPath": "/run/agent.sock",
            "listenerMetadata": "m",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 4294967295u64, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["kill"], "action": "SCMP_ACT_KILL"},
                {"names": ["tkill"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["x"], "action": "SCMP_ACT_TRACE"},
                {"names": ["mount"], "action": "SCMP_ACT_NOTIFY"},
                {"names": ["y"], "action": "SCMP_ACT_LOG",
                 "args": [{"index": 5, "value": 1, "op": "SCMP_CMP_GT"}, {"index": 1, "value": 2, "op": "SCMP_CMP_NE"}]}
            ]
        }))
        .unwrap()
        .unwrap();
        assert_eq!(p.default_action, Action::Errno(38));
        assert_eq!(
            p.architectures,
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        );
        assert_eq!(
            p.flags,
            Flags {
                tsync: true,
                log: true,
                ..Flags::default()
            }
        );
        assert_eq!(p.listener_path, Some(PathBuf::from("/run/agent.sock")));
        assert_eq!(p.listener_metadata, "m");
        let actions: Vec<Action> = p.rules.iter().map(|r| r.action).collect();
        assert_eq!(
            actions,
            [
                Action::Allow,
                Action::Errno(13),
                Action::Errno(1),
                Action::Allow,
                Action::KillThread,
                Action::KillProcess,
                Action::Trace(1),
                Action::Notify,
                Action::Log,
            ]
        );
        assert_eq!(p.rules[0].names, ["read", "write"]);
        assert_eq!(
            p.rules[3].args,
            [ArgCmp {
                index: 0,
                op: CmpOp::MaskedEq,
                value: 0xffff_ffff,
                value_two: 8
            }]
        );
        assert_eq!(p.rules[8].args[0].op, CmpOp::Gt);
        assert_eq!(p.rules[8].args[1].op, CmpOp::Ne);
        assert!(p.uses_notify());
    }

    #[test]
    fn flags_absent_vs_empty() {
        let absent = low(json!({"defaultAction": "SCMP_ACT_ALLOW"}))
            .unwrap()
            .unwrap();
        assert!(absent.flags.spec_allow_if_supported);
        assert_eq!(absent.default_action, Action::Allow);
        let empty = low(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": []}))
            .unwrap()
            .unwrap();
        assert_eq!(empty.flags, Flags::default());
        let all = low(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}))
        .unwrap()
        .unwrap();
        assert!(all.flags.spec_allow && all.flags.wait_killable_recv);
        assert!(!all.flags.spec_allow_if_supported);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"defaultAction": "SCMP_ACT_FOO"}),
                "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_FOO\"",
            ),
            (
                json!({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}),
                "linux.seccomp.defaultAction: unknown action \"\"",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}),
                "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}),
                "linux.seccomp.defaultErrnoRet: must be at most 65535",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]}),
                "linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_VAX\"",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}),
                "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_NOPE\"",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                    {"names": ["read"], "action": "SCMP_ACT_DENY"}]}),
                "linux.seccomp.syscalls[1].action: unknown action \"SCMP_ACT_DENY\"",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 65536}]}),
                "linux.seccomp.syscalls[0].errnoRet: must be at most 65535",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 1, "op": "SCMP_CMP_SORTA"}]}]}),
                "linux.seccomp.syscalls[0].args[1].op: unknown operator \"SCMP_CMP_SORTA\"",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
                "linux.seccomp.syscalls[0].args[0].index: 6 is not a syscall argument (0..5)",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}),
                "linux.seccomp.syscalls[0].names: needs at least one name",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a", ""], "action": "SCMP_ACT_ERRNO"}]}),
                "linux.seccomp.syscalls[0].names[1]: empty syscall name",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x", "syscalls": [
                    {"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}),
                "linux.seccomp.syscalls[0].names: SCMP_ACT_NOTIFY cannot be used for the write syscall",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
                "linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(low(v).unwrap_err(), want);
        }
        // Type errors name the object they are in.
        let e = low(json!({"defaultAction": 3})).unwrap_err();
        assert!(e.starts_with("linux.seccomp: invalid type"), "{e}");
    }
}
