//! How init executes the container's program without exposing the husk binary
//! (CVE-2019-5736): through `husk-exec`, a 2 KB program without libc executed from a sealed
//! memfd (csrc/husk-exec.c says why and how), or directly when husk itself already runs
//! from a read-only copy of its binary. Where the trampoline would not be equivalent to a
//! direct execve, or not safe, husk re-executes itself from a read-only copy first (the older,
//! ~1 ms dearer protection) and then executes directly.

use crate::Error;
use husk_spec::names::NsKind;
use husk_spec::plan::Plan;
use husk_spec::seccomp::{Action, SeccompPlan};
use husk_sys::mount as smount;
use husk_sys::process::PreparedExec;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

static HUSK_EXEC: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/husk-exec"));

const CAP_SYS_PTRACE: u64 = 1 << 19;

/// Decided in the parent before anything is created: `Some(memfd)` to go through the
/// trampoline, `None` to execute directly (husk already runs from a read-only binary). When
/// neither is possible this re-executes husk from a read-only copy and does not return.
pub(crate) fn choose(plan: &Plan) -> Result<Option<OwnedFd>, Error> {
    if running_from_readonly_binary().map_err(protect_err)? {
        return Ok(None);
    }
    let why = match unsuitable(plan) {
        None => match husk_sys::fs::sealed_memfd(c"husk-exec", HUSK_EXEC) {
            Ok(fd) => return Ok(Some(fd)),
            Err(e) => format!("no executable memfd: {}", crate::errno_text(&e)),
        },
        Some(why) => why.to_string(),
    };
    crate::explain::step(|| format!("re-executing from a read-only copy of husk: {why}"));
    protect_binary()?;
    // Returned without executing: the binary turned out to be protected after all.
    Ok(None)
}

fn protect_err(e: io::Error) -> Error {
    Error::Msg(format!(
        "re-execute husk from a read-only copy of its binary (CVE-2019-5736): {}",
        crate::errno_text(&e)
    ))
}

/// `reexec_from_readonly_binary`, its failure worded as husk's errors are.
pub fn protect_binary() -> Result<(), Error> {
    reexec_from_readonly_binary().map_err(protect_err)
}

/// For a caller that makes things before the launch (the front end: a name, a cidfile, a
/// lease, log pipes, a monitor): re-executes now, from `plan` alone and before those exist,
/// when the launch would (`choose` with a plan the trampoline does not suit). Returns when
/// husk can stay as it is.
pub fn protect_for(plan: &Plan) -> Result<(), Error> {
    match unsuitable(plan) {
        Some(why) if !running_from_readonly_binary().map_err(protect_err)? => {
            crate::explain::step(|| format!("re-executing from a read-only copy of husk: {why}"));
            protect_binary()
        }
        _ => Ok(()),
    }
}

/// CVE-2019-5736: every process husk makes for a container is a fork of husk, so until its
/// execve its /proc/self/exe is the husk binary, and an image whose entrypoint is
/// `#!/proc/self/exe` has the kernel run that binary as a dumpable process of the container,
/// which can then hold a handle on it and reopen it for writing once no husk process runs.
/// This re-executes husk from a detached, read-only bind mount of its own binary (open_tree +
/// mount_setattr; no copy, nothing attached anywhere), so every handle the container can get is
/// on a read-only mount (EROFS). Where that is impossible (no CAP_SYS_ADMIN), from a sealed
/// memfd copy (runc's way). Returns Ok without doing anything when the binary already is on a
/// read-only mount or this process was already re-executed; on success it does not return.
pub fn reexec_from_readonly_binary() -> io::Result<()> {
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    if running_from_readonly_binary()? {
        return Ok(());
    }
    let exe = Path::new("/proc/self/exe");
    let fd = match smount::open_tree(None, exe, smount::OPEN_TREE_CLONE).and_then(|t| {
        smount::mount_setattr(t.as_fd(), false, MOUNT_ATTR_RDONLY, 0, None)?;
        Ok(t)
    }) {
        Ok(t) => t,
        Err(_) => sealed_copy(exe)?,
    };
    let args: Vec<_> = std::env::args_os().collect();
    // Not re-executed yet (checked above), so /proc/self/exe is the installed binary.
    let original = std::fs::read_link(exe).ok().map(PathBuf::into_os_string);
    let env: Vec<OsString> = std::env::vars_os()
        .filter(|(k, _)| k != ORIGINAL_EXE_ENV)
        .chain(original.map(|o| (ORIGINAL_EXE_ENV.into(), o)))
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect();
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let env: Vec<&[u8]> = env.iter().map(|e| e.as_bytes()).collect();
    Err(husk_sys::process::execveat_bytes(fd.as_fd(), &args, &env))
}

/// Where a re-executed husk finds the path it was started from: its /proc/self/exe names the
/// detached copy ("/"), and a program installed beside husk (husk-monitor) is found by path.
const ORIGINAL_EXE_ENV: &str = "HUSK_ORIGINAL_EXE";

/// The path of the husk binary as installed, also after `reexec_from_readonly_binary`.
pub fn installed_binary() -> PathBuf {
    let exe = Path::new("/proc/self/exe");
    // A re-executed husk, or a program it executed through /proc/self/exe (the monitor), runs
    // from the detached copy, which only running_from_readonly_binary recognises.
    // Where no detached mount can be made (an ordinary user) the copy is a sealed memfd.
    let link = std::fs::read_link(exe);
    let memfd = link
        .as_ref()
        .is_ok_and(|l| l.as_os_str().as_encoded_bytes().starts_with(b"/memfd:"));
    match std::env::var_os(ORIGINAL_EXE_ENV) {
        Some(p) if memfd || running_from_readonly_binary().unwrap_or(false) => PathBuf::from(p),
        _ => link.unwrap_or_else(|_| exe.into()),
    }
}

/// `NAME=VALUE` that keeps `installed_binary` right in a program executed with an environment
/// of its own (the monitor), when this process was re-executed.
pub fn installed_binary_env() -> Option<String> {
    let p = std::env::var(ORIGINAL_EXE_ENV).ok()?;
    Some(format!("{ORIGINAL_EXE_ENV}={p}"))
}

/// Whether this process runs from a binary nobody can write through /proc/self/exe: re-executed
/// already (from a memfd or a detached read-only mount, named "/dev/fd/N"), or on a read-only
/// mount.
pub(crate) fn running_from_readonly_binary() -> io::Result<bool> {
    // execveat(fd, "", AT_EMPTY_PATH) names the program "/dev/fd/N".
    if husk_sys::process::exec_fn_name().is_some_and(|n| n.to_bytes().starts_with(b"/dev/fd/")) {
        return Ok(true);
    }
    smount::on_readonly_mount(Path::new("/proc/self/exe"))
}

/// A sealed (no write, shrink or grow, no more seals) memfd copy of `path`, executable.
fn sealed_copy(path: &Path) -> io::Result<OwnedFd> {
    husk_sys::fs::sealed_memfd(c"husk", &std::fs::read(path)?)
}

/// Why executing through the trampoline would differ from one execve, or expose the husk
/// binary, for this plan; `None` when it is fine.
pub(crate) fn unsuitable(plan: &Plan) -> Option<&'static str> {
    let caps = plan.process.caps;
    // Until its final execve, init runs the host binary. Non-dumpable, it is out of reach of
    // /proc/PID/exe for the container, except for a process with CAP_SYS_PTRACE over the user
    // namespace its memory belongs to: the host's, unless the container has its own.
    if !plan.creates(NsKind::Pid) {
        return Some("the pid namespace is shared, so other processes can see init");
    }
    if !plan.creates(NsKind::User) && caps.is_none_or(|c| c.bounding & CAP_SYS_PTRACE != 0) {
        return Some("the container may hold CAP_SYS_PTRACE");
    }
    // A non-root program loses, at the first execve, every permitted capability that is not
    // ambient; with no_new_privileges the second execve then cannot regain file capabilities
    // (runc's dmz found this with CoreDNS, runc#4125).
    let uid0 = plan.process.uid == 0;
    if !uid0 && plan.process.no_new_privileges && caps.is_none_or(|c| c.permitted & !c.ambient != 0)
    {
        return Some("a non-root user with no_new_privileges keeps non-ambient capabilities");
    }
    // An exec transition would be spent on the trampoline.
    if plan.process.apparmor_profile.is_some() || plan.process.selinux_label.is_some() {
        return Some("an LSM exec label is set");
    }
    // The filter is in place before the trampoline runs: it must let it run.
    if let Some(sc) = &plan.seccomp
        && !["execveat", "fcntl"].iter().all(|n| allows(sc, n))
    {
        return Some("the seccomp profile does not plainly allow execveat and fcntl");
    }
    None
}

/// Whether the filter lets `name` through whatever its arguments.
fn allows(sc: &SeccompPlan, name: &str) -> bool {
    let mut rules = sc
        .rules
        .iter()
        .filter(|r| r.names.iter().any(|n| n == name));
    let mut plain_allow = false;
    for r in rules.by_ref() {
        if r.action != Action::Allow {
            return false;
        }
        plain_allow |= r.args.is_empty();
    }
    plain_allow || sc.default_action == Action::Allow
}

/// In init: prepares executing `exe` through the trampoline in `memfd`, all but the
/// execveat itself (so the container's filter can go in between). `signal_fds` stay open
/// until the container's own execve (the trampoline makes them close-on-exec), so their EOF
/// still means "executed".
pub(crate) fn prepare<'a>(
    memfd: BorrowedFd<'a>,
    signal_fds: &[RawFd],
    exe: &Path,
    args: &[String],
    env: &[String],
) -> io::Result<PreparedExec<'a>> {
    for &fd in signal_fds {
        husk_sys::fs::clear_cloexec(fd)?;
    }
    let fds: Vec<String> = signal_fds.iter().map(|fd| fd.to_string()).collect();
    let mut argv = Vec::with_capacity(args.len() + 2);
    argv.push(fds.join(","));
    argv.push(exe.to_string_lossy().into_owned());
    argv.extend_from_slice(args);
    PreparedExec::fd(memfd, &argv, env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use husk_spec::plan::CapSets;

    fn plan(edit: impl FnOnce(&mut serde_json::Value)) -> Plan {
        let mut v = serde_json::to_value(husk_spec::defaults::default_spec()).unwrap();
        edit(&mut v);
        let spec: husk_spec::Spec = serde_json::from_value(v).unwrap();
        husk_spec::plan::lower(&spec, Path::new("/bundle")).unwrap()
    }

    #[test]
    fn the_default_spec_goes_through_the_trampoline() {
        assert_eq!(unsuitable(&plan(|_| {})), None);
        assert!(!HUSK_EXEC.is_empty() && HUSK_EXEC.starts_with(b"\x7fELF"));
    }

    #[test]
    fn a_shared_pid_namespace_or_cap_sys_ptrace_re_executes() {
        let p = plan(|v| {
            let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "pid");
        });
        assert!(unsuitable(&p).unwrap().contains("pid namespace"));
        let mut p = plan(|_| {});
        p.process.caps = Some(CapSets {
            bounding: CAP_SYS_PTRACE,
            effective: 0,
            inheritable: 0,
            permitted: 0,
            ambient: 0,
            ambient_ignored: 0,
        });
        assert!(unsuitable(&p).unwrap().contains("CAP_SYS_PTRACE"));
        p.process.caps = None;
        assert!(unsuitable(&p).unwrap().contains("CAP_SYS_PTRACE"));
    }

    #[test]
    fn a_user_namespace_makes_cap_sys_ptrace_harmless() {
        let mut p = plan(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            v["linux"]["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            v["linux"]["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        });
        p.process.caps = None;
        assert_eq!(unsuitable(&p), None);
    }

    #[test]
    fn non_root_with_nnp_and_non_ambient_caps_re_executes() {
        let mut p = plan(|_| {});
        p.process.uid = 1000;
        p.process.no_new_privileges = true;
        let caps = p.process.caps.as_mut().unwrap();
        caps.ambient = 0;
        assert!(caps.permitted != 0);
        assert!(unsuitable(&p).unwrap().contains("non-root"));
        let caps = p.process.caps.as_mut().unwrap();
        caps.ambient = caps.permitted;
        assert_eq!(unsuitable(&p), None);
        p.process.no_new_privileges = false;
        p.process.caps.as_mut().unwrap().ambient = 0;
        assert_eq!(unsuitable(&p), None);
    }

    #[test]
    fn seccomp_must_plainly_allow_execveat_and_fcntl() {
        let with = |profile: serde_json::Value| {
            unsuitable(&plan(|v| v["linux"]["seccomp"] = profile.clone()))
        };
        let allow_list = |names: &[&str]| {
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
            })
        };
        assert_eq!(with(allow_list(&["execve", "execveat", "fcntl"])), None);
        assert!(with(allow_list(&["execve", "fcntl"])).is_some());
        let deny = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_ERRNO"}]
        });
        assert!(with(deny).is_some());
        let conditional = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["execveat"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 4, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["fcntl"], "action": "SCMP_ACT_ALLOW"}
            ]
        });
        assert!(with(conditional).is_some());
        let default_allow = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"});
        assert_eq!(with(default_allow), None);
    }
}
