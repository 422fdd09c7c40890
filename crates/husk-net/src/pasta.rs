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

use crate::ports::Publish;
use husk_runtime::Error;
use husk_runtime::launch::InitNamespaces;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const TUN: &str = "/dev/net/tun";
/// pasta's pid file, in the container's state dir.
pub const PID_FILE: &str = "pasta.pid";

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

/// The publications of `-p` values, each with a host port of its own: pasta binds exactly
/// what it is told (no free-port choice, as the bridge's `ports::choose` makes).
pub fn publications(publish: &[String]) -> Result<Vec<Publish>, Error> {
    let mut all = Vec::new();
    for v in publish {
        for p in Publish::parse(v)? {
            if p.host_port == 0 || p.host_last != p.host_port {
                return Err(Error::Msg(format!(
                    "-p {v}: with --network pasta the host port must be given, one per container port (e.g. -p 8080:{})",
                    p.port
                )));
            }
            all.push(p);
        }
    }
    Ok(all)
}

/// pasta in PATH, if any.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("pasta"))
        .find(|p| p.is_file())
}

/// Opens the tun device as the caller (pasta opens it as this uid, inside the container's
/// user namespace, whose root has no rights over the host's device nodes).
pub fn tun_access() -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(TUN)
        .map(drop)
}

/// Whether `--network pasta` would work here: the default network of an ordinary user then.
pub fn usable() -> bool {
    find().is_some() && tun_access().is_ok()
}

/// Checks what pasta needs, saying what is missing and what to do.
pub fn prepare(publish: &[String]) -> Result<Pasta, Error> {
    let publish = publications(publish)?;
    let bin = find().ok_or_else(|| {
        Error::Msg(
            "--network pasta: pasta not found in PATH (apt-get install passt), or use --network none"
                .into(),
        )
    })?;
    if let Err(e) = tun_access() {
        return Err(Error::Msg(format!(
            "--network pasta: open {TUN}: {}: pasta needs the tun device readable and writable by this user (most distributions ship it 0666: chmod 0666 {TUN}, or a udev rule), or use --network none",
            husk_runtime::errno_text(&e)
        )));
    }
    let mut args: Vec<String> = ["--config-net", "--quiet", "--no-map-gw"]
        .map(String::from)
        .to_vec();
    args.extend(port_args(&publish));
    Ok(Pasta { bin, args })
}

impl Pasta {
    /// Runs pasta for init's namespaces; returns once pasta has configured them and gone into
    /// the background, writing its pid to `pid_file`.
    pub fn attach(&self, ns: &InitNamespaces, pid_file: &Path) -> Result<Running, Error> {
        // The only fds pasta inherits: copies without O_CLOEXEC, closed here once it ran.
        let inherit = |fd: &OwnedFd| -> Result<OwnedFd, Error> {
            let d = fd
                .as_fd()
                .try_clone_to_owned()
                .map_err(Error::io("dup", "namespace fd"))?;
            husk_sys::fs::clear_cloexec(d.as_raw_fd())
                .map_err(Error::io("fcntl F_SETFD", "namespace fd"))?;
            Ok(d)
        };
        let user = ns.user.as_ref().ok_or_else(|| {
            Error::Msg("internal: pasta's step got no user namespace (StepNamespaces::Net)".into())
        })?;
        let (user, net) = (inherit(user)?, inherit(&ns.net)?);
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .arg("-P")
            .arg(pid_file)
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
        Running::from_pid_file(pid_file)
    }
}

/// pasta in the background, stopped when dropped.
#[derive(Debug)]
pub struct Running {
    pidfd: OwnedFd,
}

impl Running {
    /// The pasta whose pid `pid_file` holds (pasta wrote it before its parent exited, so the
    /// pid is that live process').
    pub fn from_pid_file(pid_file: &Path) -> Result<Running, Error> {
        open_pid_file(pid_file).map(|(_, pidfd)| Running { pidfd })
    }
}

/// The pid in `pid_file` and a pidfd of it.
fn open_pid_file(pid_file: &Path) -> Result<(i32, OwnedFd), Error> {
    let text = std::fs::read_to_string(pid_file).map_err(Error::io("read", pid_file))?;
    let pid: i32 = text.trim().parse().map_err(|_| {
        Error::Msg(format!(
            "read {}: {text:?} is not a pid",
            pid_file.display()
        ))
    })?;
    let pidfd = husk_sys::process::pidfd_open(pid)
        .map_err(Error::io("pidfd_open", format!("pasta {pid}")))?;
    Ok((pid, pidfd))
}

/// Stops the pasta of a container whose runner is gone (a detached container's monitor, at
/// its exit or at `rm`): by the pid file, only when that pid is still a pasta (the pidfd,
/// opened first, keeps the pid from being reused meanwhile).
pub fn stop(pid_file: &Path) {
    let Ok((pid, pidfd)) = open_pid_file(pid_file) else {
        return;
    };
    // pasta execs passt.avx2 where the CPU has AVX2: either name, as /proc/PID/comm shows it.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.starts_with("pasta") || comm.starts_with("passt") {
        drop(Running { pidfd });
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // pasta keeps nothing to flush; ESRCH: it is gone already.
        let _ = husk_sys::process::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_become_pastas_and_nothing_else_is_forwarded() {
        let p = publications(&[
            "8080:80".into(),
            "127.0.0.1:5353:53/udp".into(),
            "9000-9001:90-91/tcp".into(),
        ])
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
            let e = publications(&[v.into()]).unwrap_err().to_string();
            assert!(e.contains("host port must be given"), "{v}: {e}");
        }
    }
}
