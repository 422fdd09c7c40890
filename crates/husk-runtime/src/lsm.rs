//! AppArmor and SELinux, applied as runc applies them: the process' profile or label is
//! written to the exec attribute of `/proc/thread-self/attr`, so the kernel switches at the next
//! execve; the session keyring is created with the process label (keycreate); the mount label
//! rides on the mounts as `context=` (planned in `husk_spec::lsm`).
//!
//! Every write goes through a private procfs instance (`shared::procfs_handle`), never the /proc
//! the image or a shared mount could have replaced: an attr write through a fake /proc is a
//! silent no-op that leaves the container unconfined (CVE-2019-16884).
//!
//! The exec attribute is spent by the first execve, so that must be the container's program:
//! with a label set, `trampoline::unsuitable` sends create through the re-exec path and init
//! executes the program itself; `exec` always executes it directly.

use crate::Error;
use crate::shared::{Step, fail};
use husk_spec::plan::ProcessPlan;
use husk_sys::fs as sfs;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

/// runc's test: the AppArmor filesystem is there and the module says it is on.
pub fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|b| b.first() == Some(&b'Y'))
}

/// selinuxfs is mounted where the kernel puts it when SELinux is the active LSM.
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Refuses a label for an LSM this host does not run: accepted, it would be a container
/// believed confined and running unconfined.
pub fn check_host(p: &ProcessPlan, mount_label: Option<&str>) -> Result<(), Error> {
    let missing = |field: &str, lsm: &str| {
        Err(Error::Msg(format!(
            "{field}: {lsm} is not enabled on this host, so it cannot be applied"
        )))
    };
    if p.apparmor_profile.is_some() && !apparmor_enabled() {
        return missing("process.apparmorProfile", "AppArmor");
    }
    if p.selinux_label.is_some() && !selinux_enabled() {
        return missing("process.selinuxLabel", "SELinux");
    }
    if mount_label.is_some() && !selinux_enabled() {
        return missing("linux.mountLabel", "SELinux");
    }
    Ok(())
}

/// One write to the calling thread's attributes: the first of `paths` (relative to the procfs
/// root) that exists gets `value`; `field` names the config field in errors.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AttrWrite {
    pub paths: &'static [&'static str],
    pub value: String,
    pub field: &'static str,
}

/// AppArmor's own directory since 5.8 (so it works beside another LSM); the shared file before.
const APPARMOR_EXEC: &[&str] = &["thread-self/attr/apparmor/exec", "thread-self/attr/exec"];
const SELINUX_EXEC: &[&str] = &["thread-self/attr/exec"];
const SELINUX_KEYCREATE: &[&str] = &["thread-self/attr/keycreate"];

/// What is written before the execve that must run under the labels.
pub(crate) fn exec_writes(p: &ProcessPlan) -> Vec<AttrWrite> {
    let mut out = Vec::new();
    if let Some(profile) = &p.apparmor_profile {
        out.push(AttrWrite {
            paths: APPARMOR_EXEC,
            value: format!("exec {profile}"),
            field: "process.apparmorProfile",
        });
    }
    if let Some(label) = &p.selinux_label {
        out.push(AttrWrite {
            paths: SELINUX_EXEC,
            value: label.clone(),
            field: "process.selinuxLabel",
        });
    }
    out
}

/// What is written before the session keyring is made, so it carries the process label. The
/// kernel clears keycreate at execve, so nothing needs undoing.
pub(crate) fn keyring_writes(p: &ProcessPlan) -> Vec<AttrWrite> {
    p.selinux_label
        .iter()
        .map(|label| AttrWrite {
            paths: SELINUX_KEYCREATE,
            value: label.clone(),
            field: "process.selinuxLabel",
        })
        .collect()
}

/// Performs `writes` through a private procfs. Nothing to write, nothing mounted.
pub(crate) fn apply(writes: &[AttrWrite]) -> Step<()> {
    if writes.is_empty() {
        return Ok(());
    }
    let procfs = crate::shared::procfs_handle()?;
    for w in writes {
        write_attr(procfs.as_fd(), w)?;
        crate::explain::step(|| format!("{}: \"{}\" written", w.field, w.value));
    }
    Ok(())
}

fn write_attr(procfs: BorrowedFd<'_>, w: &AttrWrite) -> Step<()> {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    let resolve = sfs::RESOLVE_BENEATH | sfs::RESOLVE_NO_MAGICLINKS | sfs::RESOLVE_NO_XDEV;
    let (mut last, mut opened) = (w.paths[0], None);
    for rel in w.paths {
        last = rel;
        match sfs::openat2(
            procfs,
            Path::new(rel),
            libc::O_WRONLY | libc::O_CLOEXEC,
            0,
            resolve,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            r => {
                let step = format!("open ({})", w.field);
                opened = Some(r.map_err(|e| fail(&step, proc(rel), e))?);
                break;
            }
        }
    }
    let fd = opened.ok_or_else(|| {
        format!(
            "{}: open {}: this kernel has no such attribute",
            w.field,
            proc(last).display()
        )
    })?;
    let magic = sfs::fstatfs_magic(fd.as_fd()).map_err(|e| fail("statfs", proc(last), e))?;
    if magic != PROC_SUPER_MAGIC {
        return Err(format!("write {}: not on procfs", proc(last).display()));
    }
    // One write: the LSM parses the buffer it is given, and a short write would be a different
    // label. ENOENT here means the profile is not loaded, EINVAL a label the policy rejects.
    std::fs::File::from(fd)
        .write_all(w.value.as_bytes())
        .map_err(|e| {
            let hint = match e.raw_os_error() {
                Some(libc::ENOENT) if w.field == "process.apparmorProfile" => {
                    " (is the profile loaded? apparmor_parser -r FILE)"
                }
                Some(libc::EINVAL) if w.field == "process.selinuxLabel" => {
                    " (the policy does not know this label)"
                }
                _ => "",
            };
            let step = format!("write \"{}\" ({}) to", w.value, w.field);
            format!("{}{hint}", fail(&step, proc(last), e))
        })
}

fn proc(rel: &str) -> std::path::PathBuf {
    Path::new("/proc").join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(edit: impl FnOnce(&mut husk_spec::config::Process)) -> ProcessPlan {
        let mut p = husk_spec::defaults::default_spec().process.unwrap();
        edit(&mut p);
        husk_spec::plan::lower_process(&p).unwrap()
    }

    #[test]
    fn nothing_is_written_without_labels() {
        let p = process(|_| {});
        assert!(exec_writes(&p).is_empty() && keyring_writes(&p).is_empty());
        assert_eq!(apply(&[]), Ok(()));
    }

    #[test]
    fn apparmor_asks_for_a_change_at_exec() {
        let p = process(|p| p.apparmor_profile = Some("husk-test".into()));
        assert_eq!(
            exec_writes(&p),
            vec![AttrWrite {
                paths: &["thread-self/attr/apparmor/exec", "thread-self/attr/exec"],
                value: "exec husk-test".into(),
                field: "process.apparmorProfile",
            }]
        );
        assert!(keyring_writes(&p).is_empty());
    }

    #[test]
    fn selinux_labels_the_exec_and_the_keyring() {
        let label = "system_u:system_r:container_t:s0:c1,c2";
        let p = process(|p| p.selinux_label = Some(label.into()));
        let exec = exec_writes(&p);
        assert_eq!(exec.len(), 1);
        assert_eq!(exec[0].paths, &["thread-self/attr/exec"]);
        assert_eq!(exec[0].value, label);
        let key = keyring_writes(&p);
        assert_eq!(key.len(), 1);
        assert_eq!(key[0].paths, &["thread-self/attr/keycreate"]);
        assert_eq!(key[0].value, label);
    }

    #[test]
    fn both_lsms_write_in_order() {
        let p = process(|p| {
            p.apparmor_profile = Some("a".into());
            p.selinux_label = Some("u:r:t:s0".into());
        });
        let fields: Vec<&str> = exec_writes(&p).iter().map(|w| w.field).collect();
        assert_eq!(fields, ["process.apparmorProfile", "process.selinuxLabel"]);
    }

    #[test]
    fn labels_for_absent_lsms_are_refused_by_name() {
        if !selinux_enabled() {
            let p = process(|p| p.selinux_label = Some("u:r:t:s0".into()));
            let e = check_host(&p, None).unwrap_err().to_string();
            assert!(e.starts_with("process.selinuxLabel: SELinux"), "{e}");
            let e = check_host(&process(|_| {}), Some("u:object_r:t:s0"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("linux.mountLabel: SELinux"), "{e}");
        }
        if !apparmor_enabled() {
            let p = process(|p| p.apparmor_profile = Some("x".into()));
            let e = check_host(&p, None).unwrap_err().to_string();
            assert!(e.starts_with("process.apparmorProfile: AppArmor"), "{e}");
        }
        assert!(check_host(&process(|_| {}), None).is_ok());
    }
}
