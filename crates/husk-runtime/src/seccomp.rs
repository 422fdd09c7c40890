//! Loading `linux.seccomp` (already validated into a `SeccompPlan` by husk-spec) with
//! libseccomp, and handing a `SCMP_ACT_NOTIFY` listener fd to the agent at `listenerPath`.
//!
//! The callers decide *when* (see `init.rs`): with no_new_privs as late as possible before
//! execve; without it before the capabilities are dropped, because loading a filter without
//! no_new_privs needs CAP_SYS_ADMIN. These functions only do the *what*, so an `exec` path can
//! call them too.

use husk_spec::seccomp::{Action, ArgCmp, CmpOp, SeccompPlan};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    ScmpVersion,
};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
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

/// Builds and loads the filter into the calling thread (all threads with TSYNC). Returns the
/// listener fd when a rule uses `SCMP_ACT_NOTIFY`; whoever gets it answers the notified
/// syscalls, so it must reach the agent before the process makes one (see `send_to_listener`).
pub fn load(plan: &SeccompPlan) -> Result<Option<OwnedFd>, String> {
    let ctx = build(plan)?;
    ctx.load()
        .map_err(|e| format!("seccomp: load filter: {e}"))?;
    if !plan.uses_notify() {
        return Ok(None);
    }
    let raw = ctx
        .get_notify_fd()
        .map_err(|e| format!("seccomp: get notify fd: {e}"))?;
    // libseccomp keeps its own (close-on-exec) copy; ours is an owned one to send and drop.
    husk_sys::fs::dup_cloexec(raw)
        .map(Some)
        .map_err(|e| format!("seccomp: dup notify fd: {}", crate::errno_text(&e)))
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

/// Sends the notify fd with SCM_RIGHTS and the process state as payload, in one message, then
/// lets the connection close (the agent sees EOF after the state).
pub fn send_to_listener(
    sock: UnixStream,
    notify: BorrowedFd<'_>,
    plan: &SeccompPlan,
    state_json: &str,
) -> Result<(), String> {
    let payload = process_state(plan, state_json);
    husk_sys::fs::send_fd(sock.as_fd(), payload.as_bytes(), notify).map_err(|e| {
        format!(
            "send seccomp fd to {}: {}",
            plan.listener_path
                .as_deref()
                .unwrap_or(std::path::Path::new("?"))
                .display(),
            crate::errno_text(&e)
        )
    })
}

/// `load`, then the notify fd (if any) straight to the agent: a notified syscall blocks until
/// it is answered, and only the holder of the fd can answer.
pub fn install(
    plan: &SeccompPlan,
    listener: Option<UnixStream>,
    state_json: &str,
) -> Result<(), String> {
    let notify = load(plan)?;
    match (notify, listener) {
        (Some(fd), Some(sock)) => send_to_listener(sock, fd.as_fd(), plan, state_json),
        (Some(_), None) => Err("seccomp: SCMP_ACT_NOTIFY without a listener connection".into()),
        _ => Ok(()),
    }
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
