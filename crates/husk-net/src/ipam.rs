//! Addresses for containers: one lease file per address under `<root>/.net/leases/`, written
//! under an exclusive flock of `<root>/.net/lock`, so parallel `husk run`s never get one address
//! twice. A lease names its holder (the front end's pid and start time): a lease whose holder is
//! gone (husk was SIGKILLed) is reclaimed by the next allocation.

use husk_runtime::Error;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// An IPv4 subnet: network address and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub net: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Result<Subnet, Error> {
        let bad = || {
            Error::Msg(format!(
                "subnet {s:?}: want an IPv4 CIDR such as 10.89.0.0/16"
            ))
        };
        let (ip, p) = s.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let mask = Self::mask_of(prefix);
        Ok(Subnet {
            net: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        })
    }

    fn mask_of(prefix: u8) -> u32 {
        u32::MAX << (32 - prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask_of(self.prefix) == u32::from(self.net)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        let m = Self::mask_of(p);
        u32::from(self.net) & m == u32::from(other.net) & m
    }

    /// The bridge's own address: the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.net) + 1)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.net) + !Self::mask_of(self.prefix))
    }

    /// Host addresses: after the network address, before the broadcast address.
    fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.net) + 1;
        let last = u32::from(self.broadcast()) - 1;
        (first..=last).map(Ipv4Addr::from)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// Holds `<dir>/lock` exclusively while alive.
pub struct Locked {
    _file: File,
}

pub fn lock(dir: &Path) -> Result<Locked, Error> {
    std::fs::create_dir_all(dir.join("leases")).map_err(Error::io("create", dir))?;
    let path = dir.join("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(Error::io("open", &path))?;
    husk_sys::fs::flock_exclusive(file.as_fd()).map_err(Error::io("flock", &path))?;
    Ok(Locked { _file: file })
}

/// This process as a lease holder: pid and start time (pids are reused, start times are not).
pub fn me() -> String {
    holder(std::process::id())
}

/// Process `pid` as a lease holder (a running container's monitor, for `network connect`).
pub fn holder(pid: u32) -> String {
    format!("{pid} {}", start_time(pid).unwrap_or_default())
}

fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22, counted after the command name (which may hold spaces) closes with ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)
        .map(str::to_string)
}

fn holder_alive(lease: &str) -> bool {
    let mut w = lease.split_whitespace().skip(1);
    let (Some(pid), Some(start)) = (w.next(), w.next()) else {
        return false;
    };
    pid.parse::<u32>()
        .ok()
        .and_then(start_time)
        .is_some_and(|s| s == start)
}

/// A lease: the address and the file that holds it.
#[derive(Debug)]
pub struct Lease {
    pub ip: Ipv4Addr,
    pub file: PathBuf,
}

/// Leases whose holder is gone, found and removed under the lock (the caller tears down what
/// else they held). Returns the addresses freed with their lease text ("ID PID START [PORTS]").
pub fn reclaim(dir: &Path, _locked: &Locked) -> Vec<(Ipv4Addr, String)> {
    let mut freed = vec![];
    let Ok(entries) = std::fs::read_dir(dir.join("leases")) else {
        return freed;
    };
    for e in entries.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        if !holder_alive(&text) && std::fs::remove_file(e.path()).is_ok() {
            let ip = e
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Ipv4Addr>().ok());
            freed.extend(ip.map(|ip| (ip, text)));
        }
    }
    freed
}

/// The text of every lease held now (after `reclaim`).
pub fn held(dir: &Path, locked: &Locked) -> Vec<String> {
    held_by_ip(dir, locked)
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

/// Every lease held now with its address.
pub fn held_by_ip(dir: &Path, _locked: &Locked) -> Vec<(Ipv4Addr, String)> {
    std::fs::read_dir(dir.join("leases"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let ip = e.file_name().to_str()?.parse().ok()?;
                    Some((ip, std::fs::read_to_string(e.path()).ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Takes an address of `subnet` other than its `gateway` for container `id`, held by `holder`
/// (`me()`): `want` (`--ip`) or else the first free one.
pub fn allocate(
    dir: &Path,
    _locked: &Locked,
    subnet: Subnet,
    gateway: Ipv4Addr,
    want: Option<Ipv4Addr>,
    id: &str,
    holder: &str,
) -> Result<Lease, Error> {
    let leases = dir.join("leases");
    if let Some(w) = want
        && (!subnet.contains(w) || w == gateway || w == subnet.net || w == subnet.broadcast())
    {
        return Err(Error::Msg(format!(
            "--ip {w}: not a container address of {subnet} (gateway {gateway})"
        )));
    }
    let candidates: Box<dyn Iterator<Item = Ipv4Addr>> = match want {
        Some(w) => Box::new(std::iter::once(w)),
        None => Box::new(subnet.hosts().filter(move |ip| *ip != gateway)),
    };
    for ip in candidates {
        let file = leases.join(ip.to_string());
        // create_new: even a lease written outside the lock is never taken twice.
        match File::options().write(true).create_new(true).open(&file) {
            Ok(f) => {
                use std::io::Write;
                (&f).write_all(format!("{id} {holder}\n").as_bytes())
                    .map_err(Error::io("write", &file))?;
                return Ok(Lease { ip, file });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && want.is_some() => {
                let owner = std::fs::read_to_string(&file).unwrap_or_default();
                return Err(Error::Msg(format!(
                    "--ip {ip}: already leased to container {}",
                    owner.split_whitespace().next().unwrap_or("?")
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("create", &file)(e)),
        }
    }
    Err(Error::Msg(format!(
        "allocate an address in {subnet}: every address is leased (see {})",
        leases.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::parse("10.89.3.7/16").unwrap();
        assert_eq!(s.to_string(), "10.89.0.0/16");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 89, 0, 1));
        assert!(s.contains(Ipv4Addr::new(10, 89, 255, 1)));
        assert!(!s.contains(Ipv4Addr::new(10, 90, 0, 1)));
        assert!(s.overlaps(&Subnet::parse("10.0.0.0/8").unwrap()));
        assert!(!s.overlaps(&Subnet::parse("10.88.0.0/16").unwrap()));
        let small = Subnet::parse("192.168.5.0/30").unwrap();
        assert_eq!(
            small.hosts().collect::<Vec<_>>(),
            [Ipv4Addr::new(192, 168, 5, 1), Ipv4Addr::new(192, 168, 5, 2)]
        );
        assert_eq!(small.broadcast(), Ipv4Addr::new(192, 168, 5, 3));
        for bad in ["10.0.0.0", "10.0.0.0/31", "x/16", "10.0.0.0/4"] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parallel_allocations_are_distinct_and_dead_holders_are_reclaimed() {
        let dir = std::env::temp_dir().join(format!("husk-ipam-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let subnet = Subnet::parse("10.89.0.0/24").unwrap();
        let threads: Vec<_> = (0..100)
            .map(|i| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    let l = lock(&dir).unwrap();
                    allocate(
                        &dir,
                        &l,
                        subnet,
                        subnet.gateway(),
                        None,
                        &format!("c{i}"),
                        &me(),
                    )
                    .unwrap()
                    .ip
                })
            })
            .collect();
        let mut ips: Vec<Ipv4Addr> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), 100);
        assert!(
            ips.iter()
                .all(|ip| subnet.contains(*ip) && *ip != subnet.gateway())
        );
        // A lease of a holder that no longer runs (pid 1 with another start time) is freed.
        let l = lock(&dir).unwrap();
        std::fs::write(dir.join("leases/10.89.0.200"), "gone 1 0\n").unwrap();
        assert_eq!(
            reclaim(&dir, &l),
            [(Ipv4Addr::new(10, 89, 0, 200), "gone 1 0\n".to_string())]
        );
        assert_eq!(std::fs::read_dir(dir.join("leases")).unwrap().count(), 100);
        // --ip: that address or an error naming its holder; never the gateway.
        let want = Ipv4Addr::new(10, 89, 0, 250);
        let gw = subnet.gateway();
        assert_eq!(
            allocate(&dir, &l, subnet, gw, Some(want), "w", &me())
                .unwrap()
                .ip,
            want
        );
        let again = allocate(&dir, &l, subnet, gw, Some(want), "x", &me()).unwrap_err();
        assert!(
            again.to_string().contains("already leased to container w"),
            "{again}"
        );
        assert!(allocate(&dir, &l, subnet, gw, Some(gw), "x", &me()).is_err());
        assert!(
            allocate(
                &dir,
                &l,
                subnet,
                gw,
                Some(Ipv4Addr::new(10, 88, 0, 5)),
                "x",
                &me()
            )
            .is_err()
        );
        drop(l);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
