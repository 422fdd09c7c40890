//! `-p [IP:]HOSTPORT:CONTAINERPORT[/tcp|udp]`: DNAT rules in husk's `ports` chain (`nft`), one
//! per published port, each carrying the container's id as its comment so that exit (or the
//! next allocation, after a SIGKILL) removes exactly them.

use husk_runtime::Error;
use std::net::Ipv4Addr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub port: u16,
    pub proto: &'static str,
}

impl Publish {
    pub fn parse(v: &str) -> Result<Publish, Error> {
        let bad = |why: &str| Error::Msg(format!("-p {v}: {why}"));
        let (spec, proto) = match v.rsplit_once('/') {
            Some((s, "tcp")) => (s, "tcp"),
            Some((s, "udp")) => (s, "udp"),
            Some((_, p)) => return Err(bad(&format!("protocol {p}: want tcp or udp"))),
            None => (v, "tcp"),
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (ip, host, ctr) = match parts.as_slice() {
            [h, c] => (None, *h, *c),
            [ip, h, c] => (Some(*ip), *h, *c),
            [_] => {
                return Err(bad(
                    "a host port chosen by husk is not yet supported: write HOSTPORT:CONTAINERPORT",
                ));
            }
            _ => return Err(bad("want [IP:]HOSTPORT:CONTAINERPORT[/tcp|udp]")),
        };
        if host.contains('-') || ctr.contains('-') {
            return Err(bad("port ranges are not yet supported"));
        }
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(&format!("{p:?} is not a port (1-65535)")))
        };
        let host_ip = match ip {
            None | Some("") => None,
            Some(ip) => Some(
                ip.parse::<Ipv4Addr>()
                    .map_err(|_| bad(&format!("{ip:?} is not an IPv4 address (IPv6: not yet)")))?,
            ),
        };
        Ok(Publish {
            host_ip,
            host_port: port(host)?,
            port: port(ctr)?,
            proto,
        })
    }

    /// How the lease file records it (and `parse` reads it back).
    pub fn record(&self) -> String {
        match self.host_ip {
            Some(ip) => format!("{ip}:{}:{}/{}", self.host_port, self.port, self.proto),
            None => format!("{}:{}/{}", self.host_port, self.port, self.proto),
        }
    }

    /// Two publications clash when they take one host port of one protocol on a common address.
    pub fn clashes(&self, other: &Publish) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }
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

    #[test]
    fn forms() {
        let p = Publish::parse("8080:80").unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.port, p.proto),
            (None, 8080, 80, "tcp")
        );
        let p = Publish::parse("127.0.0.1:5353:53/udp").unwrap();
        assert_eq!(p.record(), "127.0.0.1:5353:53/udp");
        assert_eq!(Publish::parse(&p.record()).unwrap(), p);
        for bad in [
            "80",
            "a:80",
            "0:80",
            "1:2:3:4",
            "80:80/sctp",
            "8000-8001:80",
            "::1:80:80",
        ] {
            assert!(Publish::parse(bad).is_err(), "{bad}");
        }
        let any = Publish::parse("80:1").unwrap();
        assert!(any.clashes(&Publish::parse("127.0.0.1:80:2").unwrap()));
        assert!(!any.clashes(&Publish::parse("80:1/udp").unwrap()));
        assert!(
            !Publish::parse("127.0.0.1:80:1")
                .unwrap()
                .clashes(&Publish::parse("127.0.0.2:80:1").unwrap())
        );
    }
}
