//! `--network pasta`: networking for an ordinary user through pasta (Debian's passt package),
//! as rootless podman has it. Init opens its own user and network namespaces and hands them to
//! the front end (`launch::InitNamespaces`): being non-dumpable until its execve, its
//! /proc/PID/ns is closed even to its own uid, so `pasta PID` fails with EACCES. pasta gets them
//! as `--userns /proc/self/fd/U --netns /proc/self/fd/N`, makes a tap device there with the
//! addresses and routes of this namespace's uplink, and forks into the background once it is
//! ready. It holds the namespace itself and so never sees it go: `Running`, dropped when the
//! container is gone, stops it. `-p` becomes pasta's `-t`/`-u` (only those ports: pasta's
//! default would forward every port the container binds), and `--no-map-gw` keeps the host's
//! loopback out of the container's reach, as podman's default.

use crate::helper::{self, PID_FILE, Running};
use crate::ports::Publish;
use husk_runtime::Error;
use husk_runtime::launch::InitNamespaces;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A pasta invocation, checked before anything of the container exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Pasta {
    pub bin: PathBuf,
    pub args: Vec<String>,
}

/// pasta's port options for these publications (pure): `-t`/`-u` for each, `none` for a
/// protocol without any; never anything from the container to the host's ports.
pub fn port_args(publish: &[Publish]) -> Vec<String> {
    let mut args = Vec::new();
    for (flag, proto) in [("-t", "tcp"), ("-u", "udp")] {
        let ports: Vec<String> = publish
            .iter()
            .filter(|p| p.proto == proto)
            .map(|p| match p.host_ip {
                Some(ip) => format!("{ip}/{}:{}", p.host_port, p.port),
                None => format!("{}:{}", p.host_port, p.port),
            })
            .collect();
        args.push(flag.to_string());
        args.push(if ports.is_empty() {
            "none".to_string()
        } else {
            ports.join(",")
        });
    }
    args.extend(["-T", "none", "-U", "none"].map(String::from));
    args
}

/// pasta's binary, or what is missing and what to do: looked for once per process, however
/// often a start asks (`usable` for an ordinary user's default network, then `prepare`).
fn probe() -> &'static Result<PathBuf, String> {
    static PROBE: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    PROBE.get_or_init(|| helper::check("pasta", "pasta", "passt"))
}

/// Whether `--network pasta` would work here: the default network of an ordinary user then.
pub fn usable() -> bool {
    probe().is_ok()
}

/// Checks what pasta needs, saying what is missing and what to do.
pub fn prepare(publish: &[String]) -> Result<Pasta, Error> {
    let publish = helper::publications("pasta", publish)?;
    let bin = probe().clone().map_err(Error::Msg)?;
    let mut args: Vec<String> = ["--config-net", "--quiet", "--no-map-gw"]
        .map(String::from)
        .to_vec();
    args.extend(port_args(&publish));
    Ok(Pasta { bin, args })
}

impl Pasta {
    /// Runs pasta for init's namespaces; returns once pasta has configured them and gone into
    /// the background, writing its pid into the container's `state_dir`.
    pub fn attach(&self, ns: &InitNamespaces, state_dir: &Path) -> Result<Running, Error> {
        let pid_file = state_dir.join(PID_FILE);
        // The only fds pasta inherits, closed here once it ran.
        let (user, net) = helper::namespace_fds(ns, "pasta")?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .arg("-P")
            .arg(&pid_file)
            .arg("--userns")
            .arg(format!("/proc/self/fd/{}", user.as_raw_fd()))
            .arg("--netns")
            .arg(format!("/proc/self/fd/{}", net.as_raw_fd()));
        let shown = format!("{cmd:?}").replace('"', "");
        let t = std::time::Instant::now();
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(Error::io("run", &shown))?;
        drop((user, net));
        if !out.status.success() {
            return Err(Error::Msg(format!(
                "{shown}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        husk_runtime::explain::step(|| {
            format!("network: pasta ready ({} µs)", t.elapsed().as_micros())
        });
        Running::from_pid_file(&pid_file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_become_pastas_and_nothing_else_is_forwarded() {
        let p = helper::publications(
            "pasta",
            &[
                "8080:80".into(),
                "127.0.0.1:5353:53/udp".into(),
                "9000-9001:90-91/tcp".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            port_args(&p).join(" "),
            "-t 8080:80,9000:90,9001:91 -u 127.0.0.1/5353:53 -T none -U none"
        );
        assert_eq!(port_args(&[]).join(" "), "-t none -u none -T none -U none");
    }

    #[test]
    fn a_publication_without_a_host_port_is_refused() {
        for v in ["80", "8000-8010:80", "127.0.0.1::80"] {
            let e = helper::publications("pasta", &[v.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains("host port must be given"), "{v}: {e}");
        }
    }
}
