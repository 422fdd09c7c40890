//! `--network slirp4netns[:OPTIONS]`: networking for an ordinary user through slirp4netns
//! (Debian's package of that name), as rootless podman had it before pasta. Like pasta it joins
//! init's namespaces through the fds init handed over (`--userns-path`/`--netns-type=path` on
//! /proc/self/fd), makes `tap0` there with 10.0.2.100/24, the gateway 10.0.2.2 and a DNS
//! forwarder at 10.0.2.3, and NATs the container's connections out through the host's sockets.
//! Unlike pasta it stays in the foreground: it is this process' child, reports readiness on
//! `--ready-fd`, and takes `-p` publications over its API socket (`add_hostfwd`) once ready;
//! connections arrive from 10.0.2.2 (slirp's own port forwarder does not keep the client's
//! address). The host's loopback stays out of reach (`--disable-host-loopback`) unless
//! `allow_host_loopback=true`, as podman's default.

use crate::helper::{self, PID_FILE, Running};
use crate::ports::Publish;
use husk_runtime::Error;
use husk_runtime::launch::InitNamespaces;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The API socket and the log, in the container's state dir (gone with it).
pub const API_SOCKET: &str = "slirp4netns.sock";
pub const LOG: &str = "slirp4netns.log";
/// slirp4netns's built-in DNS forwarder, the container's name server.
pub const DNS: &str = "10.0.2.3";

/// Whether `--network` names slirp4netns (with or without options).
pub fn named(network: &str) -> bool {
    network == "slirp4netns" || network.starts_with("slirp4netns:")
}

/// podman's `slirp4netns:` options that husk takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub allow_host_loopback: bool,
    pub mtu: u32,
}

impl Options {
    /// `slirp4netns[:allow_host_loopback=BOOL,mtu=N,port_handler=slirp4netns]` (pure).
    pub fn parse(network: &str) -> Result<Options, Error> {
        let mut o = Options {
            allow_host_loopback: false,
            // podman's: slirp's throughput grows with it.
            mtu: 65520,
        };
        let opts = network.strip_prefix("slirp4netns").unwrap_or_default();
        let bad = |what: &str| Error::Msg(format!("--network {network}: {what}"));
        for kv in opts.strip_prefix(':').unwrap_or(opts).split(',') {
            match kv.split_once('=') {
                _ if kv.is_empty() => {}
                Some(("allow_host_loopback", v)) => {
                    o.allow_host_loopback = v.parse().map_err(|_| {
                        bad(&format!("allow_host_loopback={v}: want true or false"))
                    })?;
                }
                Some(("mtu", v)) => {
                    o.mtu = v
                        .parse()
                        .ok()
                        .filter(|m| (576..=65521).contains(m))
                        .ok_or_else(|| bad(&format!("mtu={v}: want 576 to 65521")))?;
                }
                Some(("port_handler", "slirp4netns")) => {}
                Some(("port_handler", v)) => {
                    return Err(bad(&format!(
                        "port_handler={v}: only slirp4netns's own (rootlesskit's is not in husk)"
                    )));
                }
                _ => {
                    return Err(bad(&format!(
                        "{kv}: unknown option (want allow_host_loopback=, mtu= or port_handler=slirp4netns)"
                    )));
                }
            }
        }
        Ok(o)
    }
}

/// A slirp4netns invocation, checked before anything of the container exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Slirp {
    pub bin: PathBuf,
    pub options: Options,
    pub publish: Vec<Publish>,
}

/// Checks what slirp4netns needs, saying what is missing and what to do.
pub fn prepare(network: &str, publish: &[String]) -> Result<Slirp, Error> {
    let options = Options::parse(network)?;
    let publish = helper::publications("slirp4netns", publish)?;
    let bin = helper::check("slirp4netns", "slirp4netns", "slirp4netns").map_err(Error::Msg)?;
    Ok(Slirp {
        bin,
        options,
        publish,
    })
}

/// slirp4netns's arguments for the inherited fds (pure); `exit`: the read end of the pipe
/// whose close ends it.
pub fn args(o: &Options, user: i32, net: i32, ready: i32, exit: Option<i32>) -> Vec<String> {
    let mut a = vec![
        "--configure".to_string(),
        format!("--mtu={}", o.mtu),
        format!("--ready-fd={ready}"),
        format!("--api-socket={API_SOCKET}"),
        "--netns-type=path".into(),
        format!("--userns-path=/proc/self/fd/{user}"),
        "--enable-seccomp".into(),
    ];
    a.extend(exit.map(|fd| format!("--exit-fd={fd}")));
    if !o.allow_host_loopback {
        a.push("--disable-host-loopback".into());
    }
    a.push(format!("/proc/self/fd/{net}"));
    a.push("tap0".into());
    a
}

/// The API request that forwards the host's port of `p` to the container's (pure).
pub fn hostfwd_request(p: &Publish) -> String {
    serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": p.proto,
            "host_addr": p.host_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
            "host_port": p.host_port,
            "guest_port": p.port,
        }
    })
    .to_string()
}

impl Slirp {
    /// Starts slirp4netns for init's namespaces and its publications; returns once the
    /// container's tap is up and every port forwarded, with its pid in `state_dir`; `tied`:
    /// it exits when this process does (UserNet::attach).
    pub fn attach(
        &self,
        ns: &InitNamespaces,
        state_dir: &Path,
        tied: bool,
    ) -> Result<Running, Error> {
        let t = std::time::Instant::now();
        let (mut ready_r, ready_w) =
            std::io::pipe().map_err(Error::io("make pipe", "slirp4netns --ready-fd"))?;
        let ready_w = helper::inheritable(&ready_w.into(), "slirp4netns --ready-fd")?;
        // The write end stays here only (close-on-exec), so no other process holds it open.
        let (exit_r, exit_w) = match tied {
            true => {
                let (r, w) =
                    std::io::pipe().map_err(Error::io("make pipe", "slirp4netns --exit-fd"))?;
                let r = helper::inheritable(&r.into(), "slirp4netns --exit-fd")?;
                (Some(r), Some(w))
            }
            false => (None, None),
        };
        let (user, net) = helper::namespace_fds(ns, "slirp4netns")?;
        let log_path = state_dir.join(LOG);
        let log = std::fs::File::create(&log_path).map_err(Error::io("create", &log_path))?;
        let err_log = log.try_clone().map_err(Error::io("dup", &log_path))?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(args(
            &self.options,
            user.as_raw_fd(),
            net.as_raw_fd(),
            ready_w.as_raw_fd(),
            exit_r.as_ref().map(|r| r.as_raw_fd()),
        ))
        // The API socket's path is relative: a state dir's full path may pass sun_path's 108.
        .current_dir(state_dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log);
        let shown = format!("{cmd:?}").replace('"', "");
        let mut child = cmd.spawn().map_err(Error::io("run", &shown))?;
        drop((user, net, ready_w, exit_r));
        let running = match Running::of_child(child.id()) {
            Ok(r) => match exit_w {
                Some(w) => r.tied(w.into()),
                None => r,
            },
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let pid_file = state_dir.join(PID_FILE);
        std::fs::write(&pid_file, child.id().to_string()).map_err(Error::io("write", &pid_file))?;
        // "1" once configured; EOF if it exited (its write end is the only one left).
        let mut got = [0u8; 1];
        let n = loop {
            match ready_r.read(&mut got) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Error::Msg(format!(
                        "{shown}: read its --ready-fd: {}",
                        husk_runtime::errno_text(&e)
                    )));
                }
                Ok(n) => break n,
            }
        };
        if n == 0 || got[0] != b'1' {
            drop(running);
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(Error::Msg(format!(
                "{shown}: exited before the network was ready: {}",
                said.trim()
            )));
        }
        husk_runtime::explain::step(|| {
            format!(
                "network: slirp4netns ready ({} µs)",
                t.elapsed().as_micros()
            )
        });
        for p in &self.publish {
            let t = std::time::Instant::now();
            api(state_dir, &running, &hostfwd_request(p)).map_err(|e| {
                Error::Msg(format!("-p {}: slirp4netns add_hostfwd: {e}", p.record()))
            })?;
            husk_runtime::explain::step(|| {
                format!(
                    "network: slirp4netns add_hostfwd {} ({} µs)",
                    p.record(),
                    t.elapsed().as_micros()
                )
            });
        }
        Ok(running)
    }
}

/// One request on the API socket of the slirp4netns (`running`) in `state_dir`, which answers
/// `{"return": ...}` or `{"error": ...}` and closes. Reached through an fd of the
/// directory, whose /proc/self/fd path is short whatever the state dir's.
fn api(state_dir: &Path, running: &Running, request: &str) -> Result<serde_json::Value, String> {
    let dir = std::fs::File::open(state_dir).map_err(|e| {
        format!(
            "open {}: {}",
            state_dir.display(),
            husk_runtime::errno_text(&e)
        )
    })?;
    let path = format!("/proc/self/fd/{}/{API_SOCKET}", dir.as_raw_fd());
    let shown = state_dir.join(API_SOCKET);
    let fail = |what: &str, e: std::io::Error| {
        format!(
            "{what} {}: {}",
            shown.display(),
            husk_runtime::errno_text(&e)
        )
    };
    // slirp4netns reports ready from the child that made the tap, before its parent binds the
    // socket: waited for while slirp4netns runs (bounded: 30 s).
    let t = std::time::Instant::now();
    let mut s = loop {
        match std::os::unix::net::UnixStream::connect(&path) {
            Ok(s) => break s,
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ECONNREFUSED))
                    && t.elapsed() < std::time::Duration::from_secs(30)
                    && !running.exited_within(1) => {}
            Err(e) => return Err(fail("connect", e)),
        }
    };
    s.write_all(request.as_bytes())
        .map_err(|e| fail("write", e))?;
    s.shutdown(std::net::Shutdown::Write)
        .map_err(|e| fail("shutdown", e))?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| fail("read", e))?;
    let v: serde_json::Value = serde_json::from_str(&answer)
        .map_err(|_| format!("{}: answered {answer:?}", shown.display()))?;
    match v.get("error") {
        Some(e) => Err(e["desc"].as_str().unwrap_or(&e.to_string()).to_string()),
        None => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_as_podmans_with_loopback_closed_by_default() {
        let d = Options::parse("slirp4netns").unwrap();
        assert_eq!((d.allow_host_loopback, d.mtu), (false, 65520));
        assert_eq!(
            args(&d, 5, 6, 7, None).join(" "),
            "--configure --mtu=65520 --ready-fd=7 --api-socket=slirp4netns.sock --netns-type=path --userns-path=/proc/self/fd/5 --enable-seccomp --disable-host-loopback /proc/self/fd/6 tap0"
        );
        assert_eq!(
            args(&d, 5, 6, 7, Some(8))[7..9],
            ["--exit-fd=8", "--disable-host-loopback"]
        );
        let o = Options::parse(
            "slirp4netns:allow_host_loopback=true,mtu=1500,port_handler=slirp4netns",
        )
        .unwrap();
        assert_eq!((o.allow_host_loopback, o.mtu), (true, 1500));
        assert!(!args(&o, 5, 6, 7, None).contains(&"--disable-host-loopback".to_string()));
        for (bad, says) in [
            (
                "slirp4netns:port_handler=rootlesskit",
                "only slirp4netns's own",
            ),
            ("slirp4netns:mtu=9", "want 576 to 65521"),
            ("slirp4netns:allow_host_loopback=yes", "want true or false"),
            ("slirp4netns:cidr=10.1.0.0/24", "unknown option"),
        ] {
            let e = Options::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(named("slirp4netns") && named("slirp4netns:mtu=1500"));
        assert!(!named("slirp4netnsx") && !named("pasta"));
    }

    #[test]
    fn publications_become_hostfwd_requests() {
        let p = helper::publications(
            "slirp4netns",
            &["127.0.0.1:8080:80".into(), "5353:53/udp".into()],
        )
        .unwrap();
        let r: Vec<serde_json::Value> = p
            .iter()
            .map(|p| serde_json::from_str(&hostfwd_request(p)).unwrap())
            .collect();
        assert_eq!(
            r[0],
            serde_json::json!({"execute": "add_hostfwd", "arguments":
                {"proto": "tcp", "host_addr": "127.0.0.1", "host_port": 8080, "guest_port": 80}})
        );
        assert_eq!(r[1]["arguments"]["proto"], "udp");
        assert_eq!(r[1]["arguments"]["host_addr"], "0.0.0.0");
        let e = helper::publications("slirp4netns", &["80".into()]).unwrap_err();
        assert!(
            e.to_string()
                .contains("with --network slirp4netns the host port must be given")
        );
    }
}
