//! `husk features`: the runtime-spec features document (features.md). Everything the host can
//! answer is probed (namespaces, capabilities, seccomp actions, LSMs, id-mapped mounts); the
//! rest comes from husk's own tables, so the document cannot claim what husk does not do.

use husk_spec::names::{CAPABILITIES, NsKind};
use serde_json::{Value, json};
use std::path::Path;

pub fn features() -> Value {
    let namespaces: Vec<&str> = NsKind::ALL
        .iter()
        .filter(|k| Path::new("/proc/self/ns").join(k.proc_name()).exists())
        .map(|k| k.oci_name())
        .collect();
    let last_cap = husk_sys::security::last_cap() as usize;
    let caps: Vec<&str> = CAPABILITIES.iter().take(last_cap + 1).copied().collect();
    let idmap = idmap_supported();
    let mut mount_options: Vec<&str> = husk_spec::mountopt::KNOWN_OPTIONS.to_vec();
    if idmap {
        mount_options.extend(["idmap", "ridmap"]);
    }
    mount_options.sort_unstable();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": husk_spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": namespaces,
            "capabilities": caps,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false,
                "rdma": true,
            },
            "seccomp": seccomp(),
            "apparmor": { "enabled": Path::new("/sys/kernel/security/apparmor").exists() },
            "selinux": { "enabled": Path::new("/sys/fs/selinux/enforce").exists() },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": idmap } },
        },
        "annotations": {
            "io.github.husk.version": env!("CARGO_PKG_VERSION"),
        },
    })
}

/// Actions are those husk knows that the kernel lists in actions_avail; with no seccomp in the
/// kernel the whole feature is off.
fn seccomp() -> Value {
    let Ok(avail) = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail") else {
        return json!({ "enabled": false });
    };
    let avail: Vec<&str> = avail.split_whitespace().collect();
    let kernel_name = |a: &str| match a {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => "kill_thread",
        "SCMP_ACT_KILL_PROCESS" => "kill_process",
        "SCMP_ACT_TRAP" => "trap",
        "SCMP_ACT_ERRNO" => "errno",
        "SCMP_ACT_TRACE" => "trace",
        "SCMP_ACT_ALLOW" => "allow",
        "SCMP_ACT_LOG" => "log",
        "SCMP_ACT_NOTIFY" => "user_notif",
        _ => "",
    };
    let actions: Vec<&str> = husk_spec::seccomp::ACTIONS
        .iter()
        .copied()
        .filter(|a| avail.contains(&kernel_name(a)))
        .collect();
    json!({
        "enabled": true,
        "actions": actions,
        "operators": husk_spec::seccomp::OPERATORS,
        "archs": husk_spec::seccomp::ARCHES,
        "knownFlags": husk_spec::seccomp::FLAGS,
        "supportedFlags": husk_spec::seccomp::FLAGS,
    })
}

/// mount_setattr(2) exists (5.12+): a no-op change on an O_PATH fd of / answers anything but
/// ENOSYS where it does.
fn idmap_supported() -> bool {
    use std::os::fd::AsFd;
    let Ok(root) = husk_sys::fs::openat(None, Path::new("/"), libc::O_PATH | libc::O_DIRECTORY, 0)
    else {
        return false;
    };
    !matches!(
        husk_sys::fs::mount_setattr(root.as_fd(), false, 0, 0, None),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS)
    )
}
