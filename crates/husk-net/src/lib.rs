//! Bridge networking for `husk run --network bridge`: the `husk0` bridge with husk's own nftables
//! table `inet husk` (masquerade and forwarding), a veth pair per container, and addresses from
//! `ipam`. Links, addresses and routes are programmed over rtnetlink by husk itself (`link`),
//! the container's end from the front end's own process while init sets up its mounts; rules
//! with `nft -f` (docs/architecture.md, "Networking").
#![forbid(unsafe_code)]

pub mod ipam;
pub mod link;
mod netlink;
pub mod nft;
pub mod ports;

/// Runs one network step and narrates it under `--explain` with its own cost (the narration's
/// "+N µs" counts from the previous step, which may be something else's).
fn explain<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = std::time::Instant::now();
    let r = f();
    husk_runtime::explain::step(|| format!("network: {what} ({} µs)", t.elapsed().as_micros()));
    r
}
mod tools;

use husk_runtime::Error;
pub use ipam::Subnet;
pub use ports::Publish;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The default bridge's name.
pub const BRIDGE: &str = "husk0";
/// The interface name inside the container.
pub const IFNAME: &str = "eth0";
/// Chooses the bridge's subnet when it is created (default: the first of `CANDIDATES` that no
/// route of this network namespace overlaps).
pub const SUBNET_ENV: &str = "HUSK_BRIDGE_SUBNET";
const CANDIDATES: [&str; 4] = [
    "10.89.0.0/16",
    "10.90.0.0/16",
    "172.29.0.0/16",
    "192.168.229.0/24",
];

/// The bridge as husk created it: recorded in `<root>/.net/bridge` ("SUBNET MTU").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bridge {
    pub subnet: Subnet,
    pub mtu: u32,
}

/// One container's attachment: what the createRuntime hook configures and `release` undoes.
#[derive(Debug)]
pub struct Attachment {
    pub bridge: Bridge,
    pub ip: Ipv4Addr,
    /// The host side of the veth pair (named after the address: unique while leased).
    pub veth: String,
    lease: PathBuf,
    dir: PathBuf,
    id: String,
    published: bool,
}

fn net_dir(root: &Path) -> PathBuf {
    root.join(".net")
}

/// The veth's host-side name for an address: "hk" and the address in hex (≤ 15 bytes).
fn veth_name(ip: Ipv4Addr) -> String {
    format!("hk{:08x}", u32::from(ip))
}

/// Takes an address for container `id` and publishes `publish` to it, creating the bridge and
/// husk's nftables table first when this network namespace has none. Stale leases (their husk
/// was killed) are reclaimed with their veth and rules.
pub fn allocate(root: &Path, id: &str, publish: &[Publish]) -> Result<Attachment, Error> {
    let dir = net_dir(root);
    let locked = ipam::lock(&dir)?;
    for (ip, text) in ipam::reclaim(&dir, &locked) {
        husk_runtime::explain::step(|| {
            format!(
                "network: reclaimed lease {ip} of a husk that is gone ({})",
                text.trim()
            )
        });
        // Usually gone with the container's network namespace; a leftover goes now.
        let veth = veth_name(ip);
        if tools::link_exists(&veth) {
            let _ = explain(&format!("delete leftover veth {veth}"), || {
                link::Rtnl::open().and_then(|mut r| r.delete(&veth))
            });
        }
        if let Some(dead) = text.split_whitespace().next()
            && text.split_whitespace().count() > 3
        {
            let _ = remove_rules(dead);
        }
    }
    let bridge = ensure_bridge(&dir)?;
    for p in publish {
        let taken = ipam::held(&dir, &locked).into_iter().find(|l| {
            l.split_whitespace()
                .skip(3)
                .filter_map(|r| Publish::parse(r).ok())
                .any(|q| q.clashes(p))
        });
        if let Some(l) = taken {
            let owner = l.split_whitespace().next().unwrap_or_default();
            return Err(Error::Msg(format!(
                "-p {}: host port {} is already published by container {owner}",
                p.record(),
                p.host_port
            )));
        }
        ports::check_free(p)?;
    }
    let mut holder = ipam::me();
    for p in publish {
        holder.push(' ');
        holder.push_str(&p.record());
    }
    let lease = ipam::allocate(&dir, &locked, bridge.subnet, id, &holder)?;
    let att = Attachment {
        bridge,
        veth: veth_name(lease.ip),
        ip: lease.ip,
        lease: lease.file,
        dir,
        id: id.to_string(),
        published: !publish.is_empty(),
    };
    if !publish.is_empty() {
        let added = explain(
            &format!("nf_tables batch: {} DNAT rule(s)", publish.len()),
            || nft::add_port_rules(publish, att.ip, id),
        );
        if let Err(e) = added {
            let _ = std::fs::remove_file(&att.lease);
            return Err(e);
        }
    }
    Ok(att)
}

/// Deletes the rules commented `tag` (a container's id) from husk's table.
fn remove_rules(tag: &str) -> Result<(), Error> {
    explain(
        &format!("nf_tables: delete the rules commented {tag:?}"),
        || nft::remove_tagged(tag).map(drop),
    )
}

fn ensure_bridge(dir: &Path) -> Result<Bridge, Error> {
    let record = dir.join("bridge");
    if tools::link_exists(BRIDGE) {
        let text = std::fs::read_to_string(&record).map_err(Error::io("read", &record))?;
        return parse_record(&text).ok_or_else(|| {
            Error::Msg(format!("{}: bad bridge record {text:?}", record.display()))
        });
    }
    let subnet = match std::env::var(SUBNET_ENV) {
        Ok(s) => Subnet::parse(&s)?,
        Err(_) => {
            let routes = tools::routes();
            CANDIDATES
                .iter()
                .filter_map(|c| Subnet::parse(c).ok())
                .find(|c| !routes.iter().any(|r| r.overlaps(c)))
                .ok_or_else(|| {
                    Error::Msg(format!(
                        "create bridge {BRIDGE}: every candidate subnet ({}) overlaps a route here; set {SUBNET_ENV}",
                        CANDIDATES.join(", ")
                    ))
                })?
        }
    };
    let bridge = Bridge {
        subnet,
        mtu: tools::default_route_mtu(),
    };
    let mut rtnl = link::Rtnl::open()?;
    explain(
        &format!(
            "create bridge {BRIDGE} {} mtu {}",
            subnet.gateway(),
            bridge.mtu
        ),
        || rtnl.create_bridge(BRIDGE, bridge.mtu, subnet.gateway(), subnet.prefix),
    )?;
    let rest = (|| {
        tools::nft(&ruleset(subnet))?;
        // Routing between the bridge and the uplink, and 127.0.0.1 DNATed onto the bridge
        // (published ports from the host itself); in this network namespace only.
        for (path, v) in [
            ("/proc/sys/net/ipv4/ip_forward".to_string(), "1"),
            (
                format!("/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet"),
                "1",
            ),
        ] {
            std::fs::write(&path, v).map_err(Error::io("write", &path))?;
        }
        std::fs::write(&record, format!("{subnet} {}\n", bridge.mtu))
            .map_err(Error::io("write", &record))
    })();
    if let Err(e) = rest {
        let _ = rtnl.delete(BRIDGE);
        let _ = tools::nft("delete table inet husk\n");
        return Err(e);
    }
    Ok(bridge)
}

fn parse_record(text: &str) -> Option<Bridge> {
    let mut w = text.split_whitespace();
    Some(Bridge {
        subnet: Subnet::parse(w.next()?).ok()?,
        mtu: w.next()?.parse().ok()?,
    })
}

/// husk's table, replaced whole (it holds only husk's rules; other tables are never touched):
/// containers' traffic leaving the subnet is masqueraded and forwarded in both directions;
/// traffic to a local address goes through `ports` (the DNAT rules of `-p`), from outside
/// (prerouting) and from this host (output); connections from 127.0.0.1 and hairpin connections
/// (a container to a published port) are masqueraded so that replies come back the same way.
pub fn ruleset(subnet: Subnet) -> String {
    format!(
        "table inet husk {{}}
delete table inet husk
table inet husk {{
  chain forward {{
    type filter hook forward priority filter; policy accept;
    ip daddr {subnet} ct state established,related accept
    ip daddr {subnet} ct status dnat accept
    ip saddr {subnet} accept
  }}
  chain ports {{
  }}
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local jump ports
  }}
  chain output {{
    type nat hook output priority -100; policy accept;
    fib daddr type local jump ports
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {subnet} ip daddr != {subnet} masquerade
    ip saddr 127.0.0.0/8 oifname \"{BRIDGE}\" masquerade
    ip saddr {subnet} ip daddr {subnet} ct status dnat masquerade
  }}
}}
"
    )
}

impl Attachment {
    /// What `link::Veth::attach` makes for this attachment.
    pub fn veth(&self) -> link::Veth {
        link::Veth {
            host: self.veth.clone(),
            bridge: BRIDGE.to_string(),
            mtu: self.bridge.mtu,
            mac: link::mac_for(self.ip),
            ip: self.ip,
            prefix: self.bridge.subnet.prefix,
            gateway: self.bridge.subnet.gateway(),
        }
    }

    /// Attaches the container whose init is `pid` (its network namespace exists from the
    /// clone on): called in-process by `husk run` (`launch_plan_with`).
    pub fn attach(&self, pid: i32) -> Result<(), Error> {
        let path = format!("/proc/{pid}/ns/net");
        let ns = std::fs::File::open(&path).map_err(Error::io("open", &path))?;
        self.veth().attach(std::os::fd::AsFd::as_fd(&ns))
    }

    /// Removes the port rules and the lease. The veth pair goes with the container's network
    /// namespace, which the kernel tears down after init's exit on a worker of its own:
    /// deleting it here waits for the same RCU grace periods in husk's exit path (~10-40 ms
    /// measured). A pair not yet gone when its address is leased again is deleted then
    /// (`link::Veth::attach`, EEXIST).
    pub fn release(self) {
        if self.published {
            let _ = remove_rules(&self.id);
        }
        if let Ok(locked) = ipam::lock(&self.dir) {
            let _ = std::fs::remove_file(&self.lease);
            drop(locked);
        }
    }
}

/// `Attachment::release` for a process other than the one that allocated (a detached
/// container's monitor, which records the exit in a fresh image): the lease of container `id`
/// under `root` and its port rules.
pub fn release_id(root: &Path, id: &str) {
    let dir = net_dir(root);
    let Ok(locked) = ipam::lock(&dir) else { return };
    let Ok(leases) = std::fs::read_dir(dir.join("leases")) else {
        return;
    };
    for e in leases.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        if text.split_whitespace().next() == Some(id) {
            // "ID PID START [PORTS...]"
            if text.split_whitespace().count() > 3 {
                let _ = remove_rules(id);
            }
            let _ = std::fs::remove_file(e.path());
        }
    }
    drop(locked);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_names_and_rules() {
        let b = parse_record("10.89.0.0/16 1500\n").unwrap();
        assert_eq!((b.subnet.to_string(), b.mtu), ("10.89.0.0/16".into(), 1500));
        assert!(parse_record("10.89.0.0/16").is_none());
        assert_eq!(veth_name(Ipv4Addr::new(10, 89, 0, 2)), "hk0a590002");
        let r = ruleset(b.subnet);
        assert!(r.contains("ip saddr 10.89.0.0/16 ip daddr != 10.89.0.0/16 masquerade"));
        // Only husk's own table is ever named.
        assert!(
            r.lines()
                .filter(|l| l.contains("table"))
                .all(|l| l.contains("inet husk"))
        );
    }
}
