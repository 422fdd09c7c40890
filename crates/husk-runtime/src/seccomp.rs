//! `linux.seccomp` (already validated into a `SeccompPlan` by husk-spec): compiled with
//! libseccomp before the container starts, loaded with one syscall, and a `SCMP_ACT_NOTIFY`
//! listener fd handed to the agent at `listenerPath`.
//!
//! When (init.rs, exec.rs): as the last step before execve, so that a profile need allow only
//! the exec itself (and husk-exec's fcntl and execve, see trampoline.rs); with a notify rule
//! also the sendmsg of the listener to the agent. Without no_new_privs the kernel loads a
//! filter only for a holder of CAP_SYS_ADMIN: `process::set_user` keeps it until that execve,
//! which recomputes the capability sets.

use husk_spec::seccomp::{Action, ArgCmp, CmpOp, SeccompPlan};
use husk_sys::security::{self as sec, SeccompProgram};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    ScmpVersion,
};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::str::FromStr;

fn scmp_action(a: Action) -> ScmpAction {
    match a {
        Action::KillThread => ScmpAction::KillThread,
        Action::KillProcess => ScmpAction::KillProcess,
        Action::Trap => ScmpAction::Trap,
        Action::Errno(e) => ScmpAction::Errno(i32::from(e)),
        Action::Trace(e) => ScmpAction::Trace(e),
        Action::Allow => ScmpAction::Allow,
        Action::Log => ScmpAction::Log,
        Action::Notify => ScmpAction::Notify,
    }
}

fn scmp_cmp(a: &ArgCmp) -> ScmpArgCompare {
    let (op, datum) = match a.op {
        CmpOp::Ne => (ScmpCompareOp::NotEqual, a.value),
        CmpOp::Lt => (ScmpCompareOp::Less, a.value),
        CmpOp::Le => (ScmpCompareOp::LessOrEqual, a.value),
        CmpOp::Eq => (ScmpCompareOp::Equal, a.value),
        CmpOp::Ge => (ScmpCompareOp::GreaterEqual, a.value),
        CmpOp::Gt => (ScmpCompareOp::Greater, a.value),
        // OCI puts the mask in `value` and the datum in `valueTwo`, as libseccomp's C API does.
        CmpOp::MaskedEq => (ScmpCompareOp::MaskedEqual(a.value), a.value_two),
    };
    ScmpArgCompare::new(a.index, op, datum)
}

fn version() -> String {
    ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_else(|_| "unknown".into())
}

/// Builds the filter without loading it: every error libseccomp can find before the kernel
/// sees the program (unsupported architecture or flag, a rule it rejects) comes out here.
pub fn build(plan: &SeccompPlan) -> Result<ScmpFilterContext, String> {
    let ver = version();
    let default = scmp_action(plan.default_action);
    let mut ctx = ScmpFilterContext::new(default)
        .map_err(|e| format!("seccomp: create filter (libseccomp {ver}): {e}"))?;
    // libseccomp sets no_new_privs itself on load unless told not to; whether the container
    // gets it is `process.noNewPrivileges`' decision alone.
    ctx.set_ctl_nnp(false)
        .map_err(|e| format!("seccomp: clear SCMP_FLTATR_CTL_NNP: {e}"))?;
    for name in &plan.architectures {
        let arch = ScmpArch::from_str(name).map_err(|e| format!("seccomp: {name}: {e}"))?;
        ctx.add_arch(arch).map_err(|e| {
            format!("linux.seccomp.architectures: {name} is not supported by libseccomp {ver}: {e}")
        })?;
    }
    let f = &plan.flags;
    if f.wait_killable_recv {
        // The attribute exists only from 2.6.0; older libraries reject it with a bare EINVAL.
        let ok = ScmpVersion::current().is_ok_and(|v| (v.major, v.minor) >= (2, 6));
        if !ok {
            return Err(format!(
                "linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs libseccomp >= 2.6.0; husk is built with libseccomp {ver}"
            ));
        }
        ctx.set_ctl_waitkill(true)
            .map_err(|e| format!("seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: {e}"))?;
    }
    if f.tsync {
        ctx.set_ctl_tsync(true)
            .map_err(|e| format!("seccomp: SECCOMP_FILTER_FLAG_TSYNC: {e}"))?;
    }
    if f.log {
        ctx.set_ctl_log(true)
            .map_err(|e| format!("seccomp: SECCOMP_FILTER_FLAG_LOG: {e}"))?;
    }
    // API level 4 means both the library and the running kernel know SPEC_ALLOW; runc adds it
    // by default in that case, when the config has no `flags` at all.
    if f.spec_allow || (f.spec_allow_if_supported && libseccomp::get_api() >= 4) {
        ctx.set_ctl_ssb(true).map_err(|e| {
            format!("seccomp: SECCOMP_FILTER_FLAG_SPEC_ALLOW (libseccomp {ver}): {e}")
        })?;
    }
    for rule in &plan.rules {
        let action = scmp_action(rule.action);
        // libseccomp refuses a rule whose action is the default one (EACCES); it would change
        // nothing, so runc skips it too.
        if action == default {
            crate::log::debug(|| {
                format!(
                    "seccomp: skipping {:?}: same action as the default",
                    rule.names
                )
            });
            continue;
        }
        let conds: Vec<ScmpArgCompare> = rule.args.iter().map(scmp_cmp).collect();
        // Comparisons in one rule are ANDed, and libseccomp allows one per argument. When the
        // config compares the same argument twice, runc adds one rule per comparison (ORed);
        // do the same so profiles written for runc mean the same here.
        let repeated = (0..6).any(|i| rule.args.iter().filter(|a| a.index == i).count() > 1);
        let groups: Vec<&[ScmpArgCompare]> = if repeated {
            conds.chunks(1).collect()
        } else {
            vec![&conds[..]]
        };
        for name in &rule.names {
            let Ok(sys) = ScmpSyscall::from_name(name) else {
                // Profiles list syscalls newer than the library (or of other arches): skip.
                crate::log::debug(|| {
                    format!("seccomp: ignoring syscall \"{name}\" unknown to libseccomp {ver}")
                });
                continue;
            };
            for g in &groups {
                ctx.add_rule_conditional(action, sys, g)
                    .map_err(|e| format!("seccomp: add rule for {name} ({action:?}): {e}"))?;
            }
        }
    }
    Ok(ctx)
}

/// The most instructions the kernel loads in one filter (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

/// A filter compiled ahead, to be loaded by one syscall right before execve, with what a
/// notify agent gets (the connection, made on the host, and the process state).
pub struct Prepared {
    program: SeccompProgram,
    flags: u32,
    listener_path: Option<std::path::PathBuf>,
    listener: Option<UnixStream>,
    payload: String,
}

/// Compiles the filter (libseccomp's own program, exported) and works out the flags
/// libseccomp would pass, so that everything that can fail fails here, while `create` can
/// still report it, and loading is a single syscall that allocates nothing. `listener` is
/// `connect_listener`'s; `state_json` the OCI state the agent is sent.
pub fn prepare(
    plan: &SeccompPlan,
    listener: Option<UnixStream>,
    state_json: &str,
) -> Result<Prepared, String> {
    let ctx = build(plan)?;
    let io = |what: &str, e: std::io::Error| format!("seccomp: {what}: {}", crate::errno_text(&e));
    let memfd = husk_sys::fs::memfd(c"husk-seccomp").map_err(|e| io("memfd", e))?;
    ctx.export_bpf(memfd.as_fd())
        .map_err(|e| format!("seccomp: export the filter: {e}"))?;
    let mut file = std::fs::File::from(memfd);
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| io("read the exported filter", e))?;
    let program = SeccompProgram::from_bytes(&bytes)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            format!(
                "seccomp: libseccomp exported {} bytes, not a BPF program",
                bytes.len()
            )
        })?;
    if program.len() > MAX_INSNS {
        return Err(format!(
            "linux.seccomp: the filter compiles to {} BPF instructions; the kernel loads at most {MAX_INSNS}",
            program.len()
        ));
    }
    let f = &plan.flags;
    let mut flags = 0;
    if f.tsync {
        flags |= sec::SECCOMP_FILTER_FLAG_TSYNC;
    }
    if f.log {
        flags |= sec::SECCOMP_FILTER_FLAG_LOG;
    }
    // As `build` set the attribute (libseccomp checked there that the kernel has it).
    if f.spec_allow || (f.spec_allow_if_supported && libseccomp::get_api() >= 4) {
        flags |= sec::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    }
    if plan.uses_notify() {
        flags |= sec::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        // With a listener, TSYNC must report a thread it could not sync as ESRCH (the return
        // value is the listener fd); libseccomp adds the same.
        if f.tsync {
            flags |= sec::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }
    if f.wait_killable_recv {
        flags |= sec::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    Ok(Prepared {
        program,
        flags,
        listener_path: plan.listener_path.clone(),
        payload: if plan.uses_notify() {
            process_state(plan, state_json)
        } else {
            String::new()
        },
        listener,
    })
}

impl Prepared {
    /// Loads the filter; with a notify rule, hands the listener to the agent at once (a
    /// notified syscall blocks until answered). Besides the load, only the agent's sendmsg:
    /// the listener and the socket are close-on-exec and left for execve to close, so a
    /// profile needs nothing else.
    pub fn install(self) -> Result<(), String> {
        // Never dropped: freeing may unmap memory, a syscall the profile need not allow.
        // execve takes it all back.
        let mut this = std::mem::ManuallyDrop::new(self);
        let notify = this
            .program
            .load(this.flags)
            .map_err(|e| format!("seccomp: load filter: {}", crate::errno_text(&e)))?;
        match (notify, this.listener.take()) {
            (Some(fd), Some(sock)) => {
                let r = send_to_listener(
                    &sock,
                    fd.as_fd(),
                    &this.payload,
                    this.listener_path.as_deref(),
                );
                let _ = (fd.into_raw_fd(), sock.into_raw_fd());
                r
            }
            (Some(fd), None) => {
                let _ = fd.into_raw_fd();
                Err("seccomp: SCMP_ACT_NOTIFY without a listener connection".into())
            }
            _ => Ok(()),
        }
    }
}

/// Connects to the agent's socket. Called by init before it enters the container's user
/// namespace and root: `listenerPath` is a host path, and it must be reached with the runtime's
/// credentials (runc's parent connects for the same reason).
pub fn connect_listener(plan: Option<&SeccompPlan>) -> Result<Option<UnixStream>, String> {
    let Some(path) = plan
        .filter(|p| p.uses_notify())
        .and_then(|p| p.listener_path.as_ref())
    else {
        return Ok(None);
    };
    UnixStream::connect(path).map(Some).map_err(|e| {
        format!(
            "connect seccomp listener {}: {}",
            path.display(),
            crate::errno_text(&e)
        )
    })
}

/// runc's `ContainerProcessState`: what an agent (e.g. a seccomp notify proxy) reads along with
/// the fd. `state_json` is the OCI state, status `creating`, with the init's host pid.
pub fn process_state(plan: &SeccompPlan, state_json: &str) -> String {
    let state: serde_json::Value = serde_json::from_str(state_json).unwrap_or_default();
    let pid = state.get("pid").cloned().unwrap_or(serde_json::json!(0));
    serde_json::json!({
        "ociVersion": husk_spec::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": plan.listener_metadata,
        "state": state,
    })
    .to_string()
}

/// Sends the notify fd with SCM_RIGHTS and the process state as payload, in one message; the
/// connection closes with execve (the agent sees EOF after the state).
fn send_to_listener(
    sock: &UnixStream,
    notify: BorrowedFd<'_>,
    payload: &str,
    path: Option<&std::path::Path>,
) -> Result<(), String> {
    husk_sys::sock::send_fd(sock.as_fd(), payload.as_bytes(), notify).map_err(|e| {
        format!(
            "send seccomp fd to {}: {}",
            path.unwrap_or(std::path::Path::new("?")).display(),
            crate::errno_text(&e)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: serde_json::Value) -> SeccompPlan {
        husk_spec::seccomp::lower(Some(&json)).unwrap().unwrap()
    }

    // Building (not loading) touches no process state, so it is safe in a unit test.
    #[test]
    fn builds_a_runc_style_profile() {
        let p = plan(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["read", "write", "no_such_syscall_xyz"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["open"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        }));
        build(&p).unwrap();
    }

    // Compiling and exporting touches no process state either (a memfd, then closed).
    #[test]
    fn prepare_compiles_and_sets_the_flags_libseccomp_would() {
        let p = plan(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/x",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        let st = r#"{"ociVersion":"1.3.0","id":"c","status":"creating","pid":42,"bundle":"/b"}"#;
        let pr = prepare(&p, None, st).unwrap();
        assert!(pr.program.len() > 3);
        assert_eq!(
            pr.flags,
            sec::SECCOMP_FILTER_FLAG_LOG
                | sec::SECCOMP_FILTER_FLAG_TSYNC
                | sec::SECCOMP_FILTER_FLAG_NEW_LISTENER
                | sec::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
        );
        assert!(pr.payload.contains("\"seccompFd\""));
        // More than the kernel loads (4096 instructions) fails here, not after `start`.
        let rules: Vec<serde_json::Value> = (0..4200)
            .map(|v| {
                serde_json::json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]})
            })
            .collect();
        let big = plan(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
        let e = match prepare(&big, None, st) {
            Ok(p) => panic!("{} instructions", p.program.len()),
            Err(e) => e,
        };
        assert!(
            e.contains("BPF instructions; the kernel loads at most 4096"),
            "{e}"
        );
    }

    #[test]
    fn wait_killable_recv_names_the_version() {
        let p = plan(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
        }));
        let v = ScmpVersion::current().unwrap();
        if (v.major, v.minor) < (2, 6) {
            let e = build(&p).err().unwrap();
            assert!(e.contains("needs libseccomp >= 2.6.0"), "{e}");
            assert!(
                e.contains(&format!("{}.{}.{}", v.major, v.minor, v.micro)),
                "{e}"
            );
        }
    }

    #[test]
    fn process_state_is_runcs_shape() {
        let p = plan(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x", "listenerMetadata": "meta",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        let s = process_state(
            &p,
            r#"{"ociVersion":"1.3.0","id":"c","status":"creating","pid":42,"bundle":"/b"}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(v["pid"], 42);
        assert_eq!(v["metadata"], "meta");
        assert_eq!(v["state"]["id"], "c");
        assert_eq!(v["ociVersion"], husk_spec::OCI_VERSION);
    }
}
