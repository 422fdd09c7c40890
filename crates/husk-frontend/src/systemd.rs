//! `--systemd true|false|always`, podman's: systemd (or another init) as the container's pid 1
//! gets what it needs to boot inside — fresh tmpfs on /run, /run/lock and /tmp (it mounts
//! nothing itself in a container), its cgroup writable (it makes its slices and scopes there),
//! `container=husk` (how it knows it is in one) and SIGRTMIN+3 to stop it (its "halt"; SIGTERM
//! only re-executes it).

use husk_runtime::Error;
use husk_spec::Spec;
use husk_spec::config::Mount;

use super::labels::STOP_SIGNAL;
use super::mounts::mount;

/// Whether the run is in systemd mode: always, never, or (true, podman's default) when the
/// program is named systemd or init.
pub fn wanted(flag: Option<&str>, args: &[String]) -> Result<bool, Error> {
    match flag.unwrap_or("true") {
        "always" => Ok(true),
        "false" => Ok(false),
        "true" => Ok(args
            .first()
            .is_some_and(|p| matches!(p.rsplit('/').next(), Some("systemd" | "init")))),
        f => Err(Error::Msg(format!(
            "--systemd {f}: want true, false or always"
        ))),
    }
}

/// The tmpfs systemd expects, where no mount of the caller's is (a volume on /tmp wins), and
/// each before any mount beneath it so it does not hide one; the cgroup mount made writable.
pub fn mounts(mounts: &mut Vec<Mount>) {
    for (dest, opts) in [
        ("/run", &["nosuid", "nodev", "mode=755"][..]),
        (
            "/run/lock",
            &["nosuid", "nodev", "noexec", "size=5242880"][..],
        ),
        ("/tmp", &["nosuid", "nodev", "mode=1777"][..]),
    ] {
        if mounts.iter().any(|m| m.destination == dest) {
            continue;
        }
        let under = format!("{dest}/");
        let at = mounts
            .iter()
            .position(|m| m.destination.starts_with(&under))
            .unwrap_or(mounts.len());
        mounts.insert(at, mount(dest, "tmpfs", "tmpfs", opts));
    }
    for m in mounts.iter_mut() {
        if matches!(m.kind.as_deref(), Some("cgroup" | "cgroup2")) {
            m.options.retain(|o| o != "ro");
        }
    }
}

/// `container=husk` unless the caller set `container`, and SIGRTMIN+3 as the stop signal
/// unless `--stop-signal` gave one.
pub fn process(spec: &mut Spec, stop_signal_given: bool) {
    if let Some(p) = &mut spec.process
        && !p.env.iter().any(|e| e.starts_with("container="))
    {
        p.env.push("container=husk".into());
    }
    if !stop_signal_given {
        let rtmin3 = husk_spec::names::signal("SIGRTMIN+3").expect("a valid signal name");
        spec.annotations
            .insert(STOP_SIGNAL.into(), rtmin3.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_means_a_program_named_systemd_or_init() {
        for p in ["/sbin/init", "/lib/systemd/systemd", "systemd", "init"] {
            assert!(wanted(None, &[p.to_string()]).unwrap(), "{p}");
            assert!(
                wanted(Some("true"), &[p.to_string(), "--x".into()]).unwrap(),
                "{p}"
            );
            assert!(!wanted(Some("false"), &[p.to_string()]).unwrap(), "{p}");
        }
        for p in ["/bin/sh", "/usr/bin/initdb", "/sbin/systemd-udevd"] {
            assert!(!wanted(None, &[p.to_string()]).unwrap(), "{p}");
            assert!(wanted(Some("always"), &[p.to_string()]).unwrap(), "{p}");
        }
        assert!(wanted(Some("yes"), &["init".to_string()]).is_err());
    }

    #[test]
    fn tmpfs_go_before_mounts_beneath_them_and_never_over_the_callers() {
        let mut m = vec![
            mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "ro"]),
            mount("/run/secrets", "bind", "/s", &["rbind"]),
            mount("/tmp", "bind", "/host/tmp", &["rbind"]),
        ];
        mounts(&mut m);
        let dests: Vec<&str> = m.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(
            dests,
            [
                "/sys/fs/cgroup",
                "/run",
                "/run/secrets",
                "/tmp",
                "/run/lock"
            ]
        );
        assert_eq!(m[0].options, ["nosuid"], "the cgroup mount is writable");
        assert_eq!(m[1].kind.as_deref(), Some("tmpfs"));
        assert_eq!(
            m[3].kind.as_deref(),
            Some("bind"),
            "the caller's /tmp stays"
        );
    }
}
