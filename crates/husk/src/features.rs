//! `husk features`: the runtime-spec features document (features.md). It reports what this
//! build does on this host: namespaces, capabilities and id-mapped mounts are probed; seccomp
//! actions, architectures and flags are those both the kernel and the linked libseccomp accept
//! (asked at run time, as `seccomp::build` would meet them); AppArmor and SELinux are enabled
//! only where the host runs them, since husk applies them there (`husk_runtime::lsm`).

use husk_runtime::seccomp_probe as probe;
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
                "systemd": true,
                "systemdUser": false,
                "rdma": true,
            },
            "seccomp": seccomp(),
            "apparmor": { "enabled": husk_runtime::lsm::apparmor_enabled() },
            "selinux": { "enabled": husk_runtime::lsm::selinux_enabled() },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": idmap } },
        },
        "annotations": {
            "io.github.husk.version": env!("CARGO_PKG_VERSION"),
            "io.github.seccomp.libseccomp.version": probe::version(),
        },
    })
}

/// With no seccomp in the kernel the whole feature is off. Otherwise each list holds what a
/// profile may use here: an action the kernel lists in actions_avail and libseccomp's API
/// level covers, an architecture libseccomp adds to a filter, a flag it sets on one.
fn seccomp() -> Value {
    let Ok(avail) = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail") else {
        return json!({ "enabled": false });
    };
    let avail: Vec<&str> = avail.split_whitespace().collect();
    let api = probe::api_level();
    // (kernel name, libseccomp API level that brought it).
    let need = |a: &str| match a {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ("kill_thread", 1),
        "SCMP_ACT_KILL_PROCESS" => ("kill_process", 3),
        "SCMP_ACT_TRAP" => ("trap", 1),
        "SCMP_ACT_ERRNO" => ("errno", 1),
        "SCMP_ACT_TRACE" => ("trace", 1),
        "SCMP_ACT_ALLOW" => ("allow", 1),
        "SCMP_ACT_LOG" => ("log", 3),
        "SCMP_ACT_NOTIFY" => ("user_notif", 5),
        _ => ("", u32::MAX),
    };
    let actions: Vec<&str> = husk_spec::seccomp::ACTIONS
        .iter()
        .copied()
        .filter(|a| {
            let (kernel, level) = need(a);
            avail.contains(&kernel) && api >= level
        })
        .collect();
    json!({
        "enabled": true,
        "actions": actions,
        "operators": husk_spec::seccomp::OPERATORS,
        "archs": probe::archs(),
        "knownFlags": husk_spec::seccomp::FLAGS,
        "supportedFlags": probe::flags(),
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
        husk_sys::mount::mount_setattr(root.as_fd(), false, 0, 0, None),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS)
    )
}
