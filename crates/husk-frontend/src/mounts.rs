//! The front end's mounts: `-v`, `--tmpfs`, `--mount`, and the /etc files docker writes for a
//! container (hosts, hostname, resolv.conf), bind-mounted from the container's state dir.

use husk_runtime::Error;
use husk_spec::config::Mount;
use std::path::Path;

pub fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: dest.into(),
        kind: Some(kind.into()),
        source: Some(source.into()),
        options: options.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Msg(msg.into())
}

/// docker refuses `/` as a destination: it would hide the root it is mounted in.
fn destination(flag: &str, v: &str, dst: &str) -> Result<(), Error> {
    if !dst.starts_with('/') {
        return Err(bad(format!(
            "invalid {flag} \"{v}\": the destination must be absolute"
        )));
    }
    if Path::new(dst).components().count() == 1 {
        return Err(bad(format!(
            "invalid {flag} \"{v}\": the destination cannot be /"
        )));
    }
    Ok(())
}

pub fn volume(v: &str) -> Result<Mount, Error> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, "rw"),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad(format!("invalid volume \"{v}\": want SRC:DST[:ro|rw]"))),
    };
    if !src.starts_with('/') {
        return Err(bad(format!(
            "invalid volume \"{v}\": named volumes are not supported yet; the source must be an absolute path"
        )));
    }
    destination("volume", v, dst)?;
    if !Path::new(src).exists() {
        return Err(bad(format!("invalid volume \"{v}\": {src} does not exist")));
    }
    let mut opts = vec!["rbind"];
    match mode {
        "ro" => opts.push("ro"),
        "rw" => {}
        m => return Err(bad(format!("invalid volume \"{v}\": unknown mode \"{m}\""))),
    }
    Ok(mount(dst, "bind", src, &opts))
}

pub fn tmpfs(t: &str) -> Result<Mount, Error> {
    let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
    destination("tmpfs", t, dst)?;
    let mut o = vec!["nosuid", "nodev"];
    o.extend(opts.split(',').filter(|s| !s.is_empty()));
    Ok(mount(dst, "tmpfs", "tmpfs", &o))
}

/// docker's `--mount type=bind|tmpfs,source=...,target=...[,readonly][,bind-propagation=P]
/// [,tmpfs-size=N][,tmpfs-mode=M]`.
pub fn mount_flag(v: &str) -> Result<Mount, Error> {
    let mut kind = "volume";
    let (mut src, mut dst, mut ro) = (None, None, false);
    let mut extra: Vec<String> = vec![];
    for field in v.split(',') {
        let (k, val) = match field.split_once('=') {
            Some((k, val)) => (k, Some(val)),
            None => (field, None),
        };
        match (k, val) {
            ("type", Some(t)) => kind = t,
            ("source" | "src", Some(s)) => src = Some(s),
            ("target" | "destination" | "dst", Some(d)) => dst = Some(d),
            ("readonly" | "ro", None | Some("true" | "1")) => ro = true,
            ("readonly" | "ro", Some("false" | "0")) => ro = false,
            (
                "bind-propagation",
                Some(p @ ("private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave")),
            ) => extra.push(p.into()),
            ("tmpfs-size", Some(n)) => {
                let bytes = crate::size::parse(n)
                    .map_err(|e| bad(format!("invalid mount \"{v}\": tmpfs-size: {e}")))?;
                extra.push(format!("size={bytes}"));
            }
            ("tmpfs-mode", Some(m)) if u32::from_str_radix(m, 8).is_ok() => {
                extra.push(format!("mode={m}"))
            }
            _ => {
                return Err(bad(format!(
                    "invalid mount \"{v}\": unknown field \"{field}\""
                )));
            }
        }
    }
    let dst = dst.ok_or_else(|| bad(format!("invalid mount \"{v}\": no target")))?;
    destination("mount", v, dst)?;
    let mut m = match kind {
        "bind" => {
            let src = src.ok_or_else(|| bad(format!("invalid mount \"{v}\": no source")))?;
            if !src.starts_with('/') || !Path::new(src).exists() {
                // Unlike -v, docker's --mount never creates the source.
                return Err(bad(format!(
                    "invalid mount \"{v}\": bind source path does not exist: {src}"
                )));
            }
            mount(dst, "bind", src, &["rbind"])
        }
        "tmpfs" if src.is_none() => mount(dst, "tmpfs", "tmpfs", &["nosuid", "nodev"]),
        "tmpfs" => return Err(bad(format!("invalid mount \"{v}\": a tmpfs has no source"))),
        "volume" => {
            return Err(bad(format!(
                "invalid mount \"{v}\": volumes are not supported yet (use type=bind or type=tmpfs)"
            )));
        }
        t => return Err(bad(format!("invalid mount \"{v}\": unknown type \"{t}\""))),
    };
    if ro {
        m.options.push("ro".into());
    }
    m.options.extend(extra);
    Ok(m)
}

/// The caller's mounts: `-v`, then `--tmpfs`, then `--mount`.
pub fn user_mounts(a: &crate::RunArgs) -> Result<Vec<Mount>, Error> {
    let v = a.volume.iter().map(|v| volume(v));
    let t = a.tmpfs.iter().map(|t| tmpfs(t));
    let m = a.mount.iter().map(|m| mount_flag(m));
    v.chain(t).chain(m).collect()
}

/// The bind of an image VOLUME's anonymous volume `dir` at `dst`, whose path is checked as a
/// -v destination is.
pub fn anonymous_volume(dst: &str, dir: &Path) -> Result<Mount, Error> {
    destination("image VOLUME", dst, dst)?;
    Ok(mount(dst, "bind", &dir.to_string_lossy(), &["rbind"]))
}

/// docker's `--add-host HOST:IP` (also `HOST=IP`, and IPv6 addresses with colons).
pub fn add_host(v: &str) -> Result<(String, String), Error> {
    let (host, ip) = v
        .split_once('=')
        .or_else(|| v.split_once(':'))
        .filter(|(h, ip)| !h.is_empty() && !ip.is_empty())
        .ok_or_else(|| bad(format!("invalid add-host \"{v}\": want HOST:IP")))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Err(bad(format!(
            "invalid add-host \"{v}\": {ip} is not an IP address"
        )));
    }
    Ok((host.to_string(), ip.to_string()))
}

/// `--dns`, `--dns-search`, `--dns-option`: each replaces that part of the host's resolv.conf.
pub struct Dns<'a> {
    pub servers: &'a [String],
    pub search: &'a [String],
    pub options: &'a [String],
}

impl Dns<'_> {
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.search.is_empty() && self.options.is_empty()
    }

    /// The container's resolv.conf: the host's, without loopback name servers when the container
    /// has its own network namespace (they would not answer there), with the flags' parts instead
    /// of the host's.
    pub fn resolv_conf(&self, host: &str, own_netns: bool) -> Result<String, Error> {
        for s in self.servers {
            if s.parse::<std::net::IpAddr>().is_err() {
                return Err(bad(format!("--dns {s}: not an IP address")));
            }
        }
        let mut out = String::new();
        for l in host.lines() {
            let mut w = l.split_whitespace();
            let keep = match w.next() {
                Some("nameserver") => {
                    self.servers.is_empty()
                        && !(own_netns
                            && w.next().is_some_and(|ip| {
                                ip.parse::<std::net::IpAddr>()
                                    .is_ok_and(|ip| ip.is_loopback())
                            }))
                }
                Some("search" | "domain") => self.search.is_empty(),
                Some("options") => self.options.is_empty(),
                _ => true,
            };
            if keep {
                out.push_str(l);
                out.push('\n');
            }
        }
        for s in self.servers {
            out.push_str(&format!("nameserver {s}\n"));
        }
        // docker's rule: a container left without a resolver (the host had only loopback ones)
        // gets Google's public ones.
        if own_netns && !out.lines().any(|l| l.starts_with("nameserver")) {
            out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        }
        if !self.search.is_empty() {
            out.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        Ok(out)
    }
}

/// The /etc files docker writes for a container: hosts (localhost, the container's own name, and
/// `--add-host` lines), hostname, and resolv.conf.
pub fn etc_files(
    hostname: &str,
    extra_hosts: &[(String, String)],
    resolv: String,
) -> Vec<(&'static str, String)> {
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    hosts.push_str(&format!("127.0.1.1\t{hostname}\n"));
    for (h, ip) in extra_hosts {
        hosts.push_str(&format!("{ip}\t{h}\n"));
    }
    vec![
        ("hosts", hosts),
        ("hostname", format!("{hostname}\n")),
        ("resolv.conf", resolv),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_flags() {
        let m =
            mount_flag("type=bind,source=/etc,target=/e,readonly,bind-propagation=rslave").unwrap();
        assert_eq!(
            (m.destination.as_str(), m.source.as_deref()),
            ("/e", Some("/etc"))
        );
        assert_eq!(m.options, vec!["rbind", "ro", "rslave"]);
        let t = mount_flag("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!(
            t.options,
            vec!["nosuid", "nodev", "size=1048576", "mode=1770"]
        );
        for bad in [
            "type=bind,source=/nonexistent/x,target=/x",
            "type=bind,source=/etc,target=/",
            "type=bind,source=/etc",
            "type=volume,source=v,target=/v",
            "type=tmpfs,target=/t,bogus=1",
            "type=bind,source=rel,target=/x",
        ] {
            assert!(mount_flag(bad).is_err(), "{bad}");
        }
        assert!(volume("/etc:/").is_err() && tmpfs("/").is_err());
    }

    #[test]
    fn hosts_and_resolv() {
        assert_eq!(
            add_host("db:10.0.0.2").unwrap(),
            ("db".into(), "10.0.0.2".into())
        );
        assert_eq!(add_host("v6:::1").unwrap().1, "::1");
        assert!(add_host("db:notanip").is_err() && add_host("db").is_err());
        let none = Dns {
            servers: &[],
            search: &[],
            options: &[],
        };
        let host = "nameserver 127.0.0.53\nnameserver 9.9.9.9\nsearch x\n";
        let resolv = none.resolv_conf(host, true).unwrap();
        let files = etc_files("box", &[("db".into(), "10.0.0.2".into())], resolv);
        assert!(files[0].1.contains("127.0.1.1\tbox\n") && files[0].1.ends_with("10.0.0.2\tdb\n"));
        assert_eq!(files[1].1, "box\n");
        assert_eq!(none.resolv_conf(host, false).unwrap(), host);
        assert_eq!(
            none.resolv_conf("nameserver 127.0.0.53\noptions edns0\n", true)
                .unwrap(),
            "options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let servers = ["1.1.1.1".to_string()];
        let search = ["a.example".to_string(), "b.example".to_string()];
        let flags = Dns {
            servers: &servers,
            search: &search,
            options: &["ndots:2".into()],
        };
        assert_eq!(
            flags.resolv_conf(host, true).unwrap(),
            "nameserver 1.1.1.1\nsearch a.example b.example\noptions ndots:2\n"
        );
        let bad = ["x".to_string()];
        assert!(
            Dns {
                servers: &bad,
                search: &[],
                options: &[]
            }
            .resolv_conf(host, true)
            .is_err()
        );
        assert_eq!(files[2].1, "nameserver 9.9.9.9\nsearch x\n");
    }
}
