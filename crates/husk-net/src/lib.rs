//! Bridge networking for `husk run --network bridge`: the `husk0` bridge with husk's own nftables
//! table `inet husk` (masquerade and forwarding), a veth pair per container, and addresses from
//! `ipam`. Links and addresses are programmed with the `ip` binary in batch mode and rules with
//! `nft -f` (docs/architecture.md, "Networking": two to three exec()s, measured ~3 ms; netlink
//! would save most of that but adds a hand-written or third-party rtnetlink layer).
#![forbid(unsafe_code)]

pub mod ipam;

/// Runs one network step and narrates it under `--explain` with its cost.
fn explain<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let r = f();
    husk_runtime::explain::step(|| format!("network: {what}"));
    r
}
mod tools;

use husk_runtime::Error;
pub use ipam::Subnet;
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
}

fn net_dir(root: &Path) -> PathBuf {
    root.join(".net")
}

/// The veth's host-side name for an address: "hk" and the address in hex (≤ 15 bytes).
fn veth_name(ip: Ipv4Addr) -> String {
    format!("hk{:08x}", u32::from(ip))
}

/// Takes an address for container `id`, creating the bridge and husk's nftables table first
/// when this network namespace has none. Stale leases (their husk was killed) are reclaimed.
pub fn allocate(root: &Path, id: &str) -> Result<Attachment, Error> {
    let dir = net_dir(root);
    let locked = ipam::lock(&dir)?;
    for ip in ipam::reclaim(&dir, &locked) {
        // Usually gone with the container's network namespace; a leftover goes now.
        let veth = veth_name(ip);
        if tools::link_exists(&veth) {
            let _ = tools::ip(None, &format!("link del {veth}\n"));
        }
    }
    let bridge = ensure_bridge(&dir)?;
    let lease = ipam::allocate(&dir, &locked, bridge.subnet, id, &ipam::me())?;
    Ok(Attachment {
        bridge,
        veth: veth_name(lease.ip),
        ip: lease.ip,
        lease: lease.file,
        dir,
    })
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
    let gw = subnet.gateway();
    tools::ip(
        None,
        &format!(
            "link add {BRIDGE} mtu {mtu} type bridge\naddr add {gw}/{p} dev {BRIDGE}\nlink set {BRIDGE} up\n",
            mtu = bridge.mtu,
            p = subnet.prefix
        ),
    )?;
    let rest = (|| {
        tools::nft(&ruleset(subnet))?;
        // Routing between the bridge and the uplink; in this network namespace only.
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
            .map_err(Error::io("write", "/proc/sys/net/ipv4/ip_forward"))?;
        std::fs::write(&record, format!("{subnet} {}\n", bridge.mtu))
            .map_err(Error::io("write", &record))
    })();
    if let Err(e) = rest {
        let _ = tools::ip(None, &format!("link del {BRIDGE}\n"));
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
/// containers' traffic leaving the subnet is masqueraded, and forwarded in both directions.
pub fn ruleset(subnet: Subnet) -> String {
    format!(
        "table inet husk {{}}
delete table inet husk
table inet husk {{
  chain forward {{
    type filter hook forward priority filter; policy accept;
    ip daddr {subnet} ct state established,related accept
    ip saddr {subnet} accept
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {subnet} ip daddr != {subnet} masquerade
  }}
}}
"
    )
}

impl Attachment {
    /// The createRuntime hook's arguments (after the subcommand): everything `attach` needs.
    pub fn hook_args(&self) -> Vec<String> {
        vec![
            self.veth.clone(),
            format!("{}/{}", self.ip, self.bridge.subnet.prefix),
            self.bridge.subnet.gateway().to_string(),
            self.bridge.mtu.to_string(),
        ]
    }

    /// Removes the veth (if the container's namespace did not take it along) and the lease.
    pub fn release(self) {
        if tools::link_exists(&self.veth) {
            let _ = tools::ip(None, &format!("link del {}\n", self.veth));
        }
        if let Ok(locked) = ipam::lock(&self.dir) {
            let _ = std::fs::remove_file(&self.lease);
            drop(locked);
        }
    }
}

/// The createRuntime hook (`husk net-attach VETH IP/PREFIX GATEWAY MTU`, the OCI state on
/// stdin): creates the veth pair with its peer in init's network namespace, enslaves the host
/// side to the bridge and sets the container's address, link and default route.
pub fn attach_hook(args: &[String], state: &str) -> Result<(), Error> {
    let [veth, cidr, gw, mtu] = args else {
        return Err(Error::Msg(format!(
            "net-attach: want VETH IP/PREFIX GATEWAY MTU, got {args:?}"
        )));
    };
    let st: serde_json::Value = serde_json::from_str(state)
        .map_err(|e| Error::Msg(format!("net-attach: the hook's state on stdin: {e}")))?;
    let pid = st["pid"]
        .as_u64()
        .filter(|p| *p > 0)
        .ok_or_else(|| Error::Msg(format!("net-attach: no pid in the state {state:?}")))?;
    tools::ip(
        None,
        &format!(
            "link add {veth} mtu {mtu} type veth peer name {IFNAME} mtu {mtu} netns {pid}\nlink set {veth} master {BRIDGE} up\n"
        ),
    )?;
    let inside = tools::ip(
        Some(pid),
        &format!(
            "addr add {cidr} dev {IFNAME}\nlink set {IFNAME} up\nroute add default via {gw}\n"
        ),
    );
    if let Err(e) = inside {
        let _ = tools::ip(None, &format!("link del {veth}\n"));
        return Err(e);
    }
    Ok(())
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
