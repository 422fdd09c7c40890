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
/// program is one of podman's init paths or its file name is `systemd` (podman's rule to the
/// letter: a bare `init`, or /usr/bin/init, is some other program).
pub fn wanted(flag: Option<&str>, args: &[String]) -> Result<bool, Error> {
    match flag.unwrap_or("true") {
        "always" => Ok(true),
        "false" => Ok(false),
        "true" => Ok(is_init(args)),
        f => Err(Error::Msg(format!(
            "--systemd {f}: want true, false or always"
        ))),
    }
}

const INIT_PATHS: [&str; 3] = ["/sbin/init", "/usr/sbin/init", "/usr/local/sbin/init"];

fn is_init(args: &[String]) -> bool {
    // podman build writes a shell-form ENTRYPOINT as `/bin/sh -c LINE`: podman looks at LINE.
    let program = match args {
        [sh, c, line, ..] if sh == "/bin/sh" && c == "-c" => line,
        [first, ..] => first,
        [] => return false,
    };
    INIT_PATHS.contains(&program.as_str())
        || std::path::Path::new(program).file_name() == Some("systemd".as_ref())
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
    fn true_means_podmans_init_paths_or_a_program_named_systemd() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for p in [
            "/sbin/init",
            "/usr/sbin/init",
            "/usr/local/sbin/init",
            "/lib/systemd/systemd",
            "systemd",
        ] {
            assert!(wanted(None, &v(&[p])).unwrap(), "{p}");
            assert!(wanted(Some("true"), &v(&[p, "--x"])).unwrap(), "{p}");
            assert!(
                wanted(None, &v(&["/bin/sh", "-c", p])).unwrap(),
                "sh -c {p}"
            );
            assert!(!wanted(Some("false"), &v(&[p])).unwrap(), "{p}");
        }
        for p in [
            "/bin/sh",
            "/usr/bin/initdb",
            "/sbin/systemd-udevd",
            "init",
            "/init",
            "/usr/bin/init",
            "./sbin/init",
        ] {
            assert!(!wanted(None, &v(&[p])).unwrap(), "{p}");
            assert!(wanted(Some("always"), &v(&[p])).unwrap(), "{p}");
        }
        // Only /bin/sh -c is looked past, and only to its command line.
        assert!(!wanted(None, &v(&["/bin/bash", "-c", "/sbin/init"])).unwrap());
        assert!(!wanted(None, &v(&["/bin/sh", "/sbin/init"])).unwrap());
        assert!(!wanted(None, &[]).unwrap());
        assert!(wanted(Some("yes"), &v(&["/sbin/init"])).is_err());
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
