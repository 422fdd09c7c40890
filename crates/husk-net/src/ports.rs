//! `-p [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]`: the forms, host ports husk chooses, and DNAT
//! rules in husk's `ports` chain (`nft`), one per published port, each carrying the container's
//! id as its comment so that exit (or the next allocation, after a SIGKILL) removes exactly them.

use husk_runtime::Error;
use std::net::Ipv4Addr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub host_ip: Option<Ipv4Addr>,
    /// 0: any free port (`-p 80`, `-P`); with `host_last` above it, the first free one of the
    /// range (`-p 8000-8010:80`). After `choose`, the port itself.
    pub host_port: u16,
    pub host_last: u16,
    pub port: u16,
    pub proto: &'static str,
}

/// `A` or `A-B` as an inclusive range of ports (0 never).
fn range(v: &str, p: &str) -> Result<(u16, u16), Error> {
    let port = |x: &str| {
        x.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| Error::Msg(format!("-p {v}: {x:?} is not a port (1-65535)")))
    };
    match p.split_once('-') {
        None => port(p).map(|a| (a, a)),
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a > b {
                return Err(Error::Msg(format!("-p {v}: the range {p} runs backwards")));
            }
            Ok((a, b))
        }
    }
}

impl Publish {
    /// docker's `-p [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]`, ports or ranges (`8000-8002:80-82`
    /// maps one to one; `8000-8010:80` takes the first free host port of the range; no host
    /// port, or `IP::PORT`, takes any free one).
    pub fn parse(v: &str) -> Result<Vec<Publish>, Error> {
        let bad = |why: &str| Error::Msg(format!("-p {v}: {why}"));
        let (spec, proto) = match v.rsplit_once('/') {
            Some((s, "tcp")) => (s, "tcp"),
            Some((s, "udp")) => (s, "udp"),
            Some((_, p)) => return Err(bad(&format!("protocol {p}: want tcp or udp"))),
            None => (v, "tcp"),
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (ip, host, ctr) = match parts.as_slice() {
            [c] => (None, "", *c),
            [h, c] => (None, *h, *c),
            [ip, h, c] => (Some(*ip), *h, *c),
            _ => return Err(bad("want [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]")),
        };
        let host_ip = match ip {
            None | Some("") => None,
            Some(ip) => Some(
                ip.parse::<Ipv4Addr>()
                    .map_err(|_| bad(&format!("{ip:?} is not an IPv4 address (IPv6: not yet)")))?,
            ),
        };
        let (c0, c1) = range(v, ctr)?;
        let hosts: Vec<(u16, u16)> = if host.is_empty() {
            vec![(0, 0); usize::from(c1 - c0) + 1]
        } else {
            let (h0, h1) = range(v, host)?;
            match (h1 - h0, c1 - c0) {
                (hn, cn) if hn == cn => (h0..=h1).map(|h| (h, h)).collect(),
                (_, 0) => vec![(h0, h1)],
                _ => {
                    return Err(bad(
                        "the host range and the container range differ in length",
                    ));
                }
            }
        };
        Ok(hosts
            .into_iter()
            .zip(c0..=c1)
            .map(|((host_port, host_last), port)| Publish {
                host_ip,
                host_port,
                host_last,
                port,
                proto,
            })
            .collect())
    }

    /// One publication as a lease records it (a concrete host port).
    pub fn parse_record(r: &str) -> Result<Publish, Error> {
        match Publish::parse(r)?.as_slice() {
            [p] if p.host_port != 0 && p.host_port == p.host_last => Ok(p.clone()),
            _ => Err(Error::Msg(format!(
                "lease record {r:?}: not one published port"
            ))),
        }
    }

    /// How the lease file records it (and `parse` reads it back).
    pub fn record(&self) -> String {
        match self.host_ip {
            Some(ip) => format!("{ip}:{}:{}/{}", self.host_port, self.port, self.proto),
            None => format!("{}:{}/{}", self.host_port, self.port, self.proto),
        }
    }

    /// As docker's `ps` and `port` show it: `0.0.0.0:8080->80/tcp`.
    pub fn docker_text(&self) -> String {
        format!(
            "{}:{}->{}/{}",
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port,
            self.port,
            self.proto
        )
    }

    /// Two publications clash when they take one host port of one protocol on a common address.
    pub fn clashes(&self, other: &Publish) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }
}

/// The host port for `p`: its own, or the first free one of its range, or any free one the
/// kernel offers (bound, then let go: the DNAT rule needs no socket), clashing with none of
/// `taken` (the leases' publications).
pub fn choose(p: &Publish, taken: &[Publish]) -> Result<Publish, Error> {
    let with = |port: u16| Publish {
        host_port: port,
        host_last: port,
        ..p.clone()
    };
    if p.host_port != 0 && p.host_port == p.host_last {
        return Ok(p.clone());
    }
    let ok = |q: &Publish| !taken.iter().any(|t| t.clashes(q)) && check_free(q).is_ok();
    if p.host_port != 0 {
        return (p.host_port..=p.host_last)
            .map(with)
            .find(ok)
            .ok_or_else(|| {
                Error::Msg(format!(
                    "-p {}-{}:{}/{}: every host port of the range is busy",
                    p.host_port, p.host_last, p.port, p.proto
                ))
            });
    }
    let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    for _ in 0..64 {
        let port = match p.proto {
            "udp" => std::net::UdpSocket::bind((ip, 0)).and_then(|s| s.local_addr()),
            _ => std::net::TcpListener::bind((ip, 0)).and_then(|s| s.local_addr()),
        }
        .map_err(|e| {
            Error::Msg(format!(
                "-p {}/{}: bind {ip}:0 for a free host port: {}",
                p.port,
                p.proto,
                husk_runtime::errno_text(&e)
            ))
        })?
        .port();
        if ok(&with(port)) {
            return Ok(with(port));
        }
    }
    Err(Error::Msg(format!(
        "-p {}/{}: no free host port found in 64 tries",
        p.port, p.proto
    )))
}

/// A busy host port is refused before any rule exists: something on this host already listens
/// there (for TCP) or holds it (UDP).
pub fn check_free(p: &Publish) -> Result<(), Error> {
    let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let r = match p.proto {
        "udp" => std::net::UdpSocket::bind((ip, p.host_port)).map(drop),
        _ => std::net::TcpListener::bind((ip, p.host_port)).map(drop),
    };
    r.map_err(|e| {
        Error::Msg(format!(
            "-p {}: host port {ip}:{} is busy: {}",
            p.record(),
            p.host_port,
            husk_runtime::errno_text(&e)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &str) -> Publish {
        let [p] = Publish::parse(v).unwrap().try_into().unwrap();
        p
    }

    #[test]
    fn forms() {
        let p = one("8080:80");
        assert_eq!(
            (p.host_ip, p.host_port, p.port, p.proto),
            (None, 8080, 80, "tcp")
        );
        let p = one("127.0.0.1:5353:53/udp");
        assert_eq!(p.record(), "127.0.0.1:5353:53/udp");
        assert_eq!(Publish::parse_record(&p.record()).unwrap(), p);
        let r: Vec<_> = Publish::parse("8000-8002:80-82/udp")
            .unwrap()
            .iter()
            .map(Publish::record)
            .collect();
        assert_eq!(r, ["8000:80/udp", "8001:81/udp", "8002:82/udp"]);
        let any = Publish::parse("80-81").unwrap();
        assert_eq!((any.len(), any[0].host_port, any[1].port), (2, 0, 81));
        assert_eq!(one("127.0.0.1::80").host_port, 0);
        let pick = one("9000-9009:80");
        assert_eq!((pick.host_port, pick.host_last), (9000, 9009));
        assert!(Publish::parse_record("80").is_err());
        // -P: an image's ExposedPorts key, any free host port.
        let exposed = one("53/udp");
        assert_eq!(
            (exposed.host_port, exposed.port, exposed.proto),
            (0, 53, "udp")
        );
        for bad in [
            "a:80",
            "0:80",
            "1:2:3:4",
            "80:80/sctp",
            "8000-8001:80-82",
            "8001-8000:80",
            "::1:80:80",
        ] {
            assert!(Publish::parse(bad).is_err(), "{bad}");
        }
        let any = one("80:1");
        assert!(any.clashes(&one("127.0.0.1:80:2")));
        assert!(!any.clashes(&one("80:1/udp")));
        assert!(!one("127.0.0.1:80:1").clashes(&one("127.0.0.2:80:1")));
    }

    #[test]
    fn chosen_host_ports_are_free_and_distinct() {
        let taken = [one("127.0.0.1:40000:1")];
        let p = choose(&one("127.0.0.1:40000-40001:80"), &taken).unwrap();
        assert_eq!(p.host_port, 40001);
        let q = choose(&one("127.0.0.1::80"), &taken).unwrap();
        assert!(q.host_port != 0 && q.host_port == q.host_last);
    }
}
