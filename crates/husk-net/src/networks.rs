//! The networks a container can join: the default `bridge` (husk0, subnet chosen at its first use)
//! and named ones (`husk network create NAME`), each with a bridge of its own, a subnet that
//! overlaps no other network's and no route here, and husk's nftables rules commented with the
//! network's name. A named network is a JSON record `<root>/.net/networks/<NAME>.json`, written
//! under the IPAM lock; its bridge and rules are made at create and again at a container's start
//! when they are gone (a reboot, another network namespace).

use crate::ipam::{self, Locked};
use crate::{BRIDGE, Subnet};
use husk_runtime::Error;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The default network's name, as docker's.
pub const DEFAULT: &str = "bridge";

/// One bridge network as containers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    /// 64 hex digits, as docker's network ids (the default network: none until listed).
    pub id: String,
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// No route out: no masquerade, nothing forwarded between the bridge and another link.
    pub internal: bool,
    pub mtu: u32,
    pub created_ns: u64,
}

/// What `husk network create` asks for.
#[derive(Clone, Debug, Default)]
pub struct CreateOpts {
    pub subnet: Option<Subnet>,
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
}

/// Subnets for named networks when --subnet is not given: the first /24 of 10.91.0.0/16 that
/// overlaps no network and no route (the default bridge takes 10.89.0.0/16 or its fallbacks).
fn pool() -> impl Iterator<Item = Subnet> {
    (0..=255u32).map(|n| Subnet {
        net: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 91, 0, 0)) + (n << 8)),
        prefix: 24,
    })
}

fn dir(net_dir: &Path) -> PathBuf {
    net_dir.join("networks")
}

fn record_path(net_dir: &Path, name: &str) -> PathBuf {
    dir(net_dir).join(format!("{name}.json"))
}

/// docker's network names: a letter or digit, then letters, digits, `_`, `.` and `-`.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 64;
    if !ok {
        return Err(Error::Msg(format!(
            "network name {name:?}: want [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 64)"
        )));
    }
    if matches!(name, "host" | "none" | DEFAULT) || name.starts_with("container:") {
        return Err(Error::Msg(format!(
            "network name {name:?} is reserved (host, none, bridge and container:NAME are modes)"
        )));
    }
    Ok(())
}

impl Network {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "Name": self.name,
            "Id": self.id,
            "Bridge": self.bridge,
            "Subnet": self.subnet.to_string(),
            "Gateway": self.gateway.to_string(),
            "Internal": self.internal,
            "MTU": self.mtu,
            "CreatedNs": self.created_ns,
        })
    }

    fn from_json(v: &serde_json::Value) -> Option<Network> {
        Some(Network {
            name: v["Name"].as_str()?.to_string(),
            id: v["Id"].as_str()?.to_string(),
            bridge: v["Bridge"].as_str()?.to_string(),
            subnet: Subnet::parse(v["Subnet"].as_str()?).ok()?,
            gateway: v["Gateway"].as_str()?.parse().ok()?,
            internal: v["Internal"].as_bool()?,
            mtu: v["MTU"].as_u64()? as u32,
            created_ns: v["CreatedNs"].as_u64().unwrap_or(0),
        })
    }

    /// The default network as recorded when husk0 was made.
    pub(crate) fn default_from(subnet: Subnet, mtu: u32) -> Network {
        Network {
            name: DEFAULT.into(),
            id: String::new(),
            bridge: BRIDGE.into(),
            subnet,
            gateway: subnet.gateway(),
            internal: false,
            mtu,
            created_ns: 0,
        }
    }
}

/// Every named network, by name.
pub fn list(net_dir: &Path) -> Vec<Network> {
    let mut nets: Vec<Network> = std::fs::read_dir(dir(net_dir))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .filter_map(|e| std::fs::read(e.path()).ok())
                .filter_map(|b| serde_json::from_slice(&b).ok())
                .filter_map(|v| Network::from_json(&v))
                .collect()
        })
        .unwrap_or_default();
    nets.sort_by(|a, b| a.name.cmp(&b.name));
    nets
}

/// A named network by name, or by a unique prefix of its id (docker's lookup).
pub fn find(net_dir: &Path, key: &str) -> Result<Network, Error> {
    let nets = list(net_dir);
    if let Some(n) = nets.iter().find(|n| n.name == key) {
        return Ok(n.clone());
    }
    let by_id: Vec<&Network> = nets
        .iter()
        .filter(|n| key.len() >= 3 && n.id.starts_with(key))
        .collect();
    match by_id.as_slice() {
        [n] => Ok((*n).clone()),
        [] => Err(Error::Msg(format!(
            "network {key}: no such network (husk network ls lists them)"
        ))),
        _ => Err(Error::Msg(format!(
            "network {key}: the id prefix names more than one network"
        ))),
    }
}

fn random_id() -> Result<String, Error> {
    husk_sys::random::hex::<32>().map_err(Error::io("read", husk_sys::random::SOURCE))
}

/// Plans a new network under the lock: its name free, its subnet clear of every other network's
/// (`taken`, the default bridge's included) and of this namespace's routes. Its MTU and creation
/// time are the caller's to set.
pub fn plan(
    net_dir: &Path,
    _locked: &Locked,
    name: &str,
    o: &CreateOpts,
    taken: &[Subnet],
    routes: &[Subnet],
) -> Result<Network, Error> {
    validate_name(name)?;
    let existing = list(net_dir);
    if existing.iter().any(|n| n.name == name) {
        return Err(Error::Msg(format!(
            "network with name {name} already exists"
        )));
    }
    let mut used: Vec<Subnet> = existing.iter().map(|n| n.subnet).collect();
    used.extend_from_slice(taken);
    let subnet = match o.subnet {
        Some(s) => {
            if let Some(n) = existing.iter().find(|n| n.subnet.overlaps(&s)) {
                return Err(Error::Msg(format!(
                    "--subnet {s}: overlaps network {}'s {}",
                    n.name, n.subnet
                )));
            }
            if let Some(t) = used.iter().find(|t| t.overlaps(&s)) {
                return Err(Error::Msg(format!(
                    "--subnet {s}: overlaps the default bridge's {t}"
                )));
            }
            s
        }
        None => pool()
            .find(|c| !used.iter().chain(routes).any(|u| u.overlaps(c)))
            .ok_or_else(|| {
                Error::Msg(format!(
                    "network create {name}: every /24 of 10.91.0.0/16 is taken or routed here; give --subnet"
                ))
            })?,
    };
    let gateway = match o.gateway {
        Some(g) if !subnet.contains(g) || g == subnet.net || g == subnet.broadcast() => {
            return Err(Error::Msg(format!(
                "--gateway {g}: not a host address of {subnet}"
            )));
        }
        Some(g) => g,
        None => subnet.gateway(),
    };
    let id = random_id()?;
    Ok(Network {
        name: name.to_string(),
        // docker's bridges are br-<12 hex>; husk's hk- keeps them apart and within IFNAMSIZ.
        bridge: format!("hk-{}", &id[..12]),
        id,
        subnet,
        gateway,
        internal: o.internal,
        mtu: 0,
        created_ns: 0,
    })
}

/// Writes the record (the network exists for husk from here on).
pub fn save(net_dir: &Path, _locked: &Locked, n: &Network) -> Result<(), Error> {
    std::fs::create_dir_all(dir(net_dir)).map_err(Error::io("create", dir(net_dir)))?;
    let path = record_path(net_dir, &n.name);
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(&n.to_json()).unwrap_or_default();
    std::fs::write(&tmp, text + "\n").map_err(Error::io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(Error::io("rename", &path))
}

pub fn remove_record(net_dir: &Path, _locked: &Locked, name: &str) -> Result<(), Error> {
    let path = record_path(net_dir, name);
    std::fs::remove_file(&path).map_err(Error::io("remove", &path))
}

/// The containers holding an address of `n` (their ids), from the leases.
pub fn users(net_dir: &Path, locked: &Locked, n: &Network) -> Vec<String> {
    ipam::held_by_ip(net_dir, locked)
        .into_iter()
        .filter(|(ip, _)| n.subnet.contains(*ip))
        .filter_map(|(_, text)| text.split_whitespace().next().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_subnets_and_records() {
        for bad in ["", "-a", "a b", "host", "bridge", "none", "a/b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        validate_name("front-end_1.x").unwrap();
        let dir = std::env::temp_dir().join(format!("husk-networks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let l = ipam::lock(&dir).unwrap();
        let default = Subnet::parse("10.89.0.0/16").unwrap();
        let routed = Subnet::parse("10.91.0.0/24").unwrap();
        let a = plan(&dir, &l, "a", &CreateOpts::default(), &[default], &[routed]).unwrap();
        assert_eq!(a.subnet.to_string(), "10.91.1.0/24");
        assert_eq!(a.gateway, Ipv4Addr::new(10, 91, 1, 1));
        assert!(a.bridge.starts_with("hk-") && a.bridge.len() == 15);
        save(&dir, &l, &a).unwrap();
        assert_eq!(find(&dir, "a").unwrap(), a);
        assert_eq!(find(&dir, &a.id[..5]).unwrap(), a);
        assert!(plan(&dir, &l, "a", &CreateOpts::default(), &[], &[]).is_err());
        let b = plan(&dir, &l, "b", &CreateOpts::default(), &[default], &[]).unwrap();
        assert_eq!(b.subnet.to_string(), "10.91.0.0/24");
        let clash = CreateOpts {
            subnet: Some(Subnet::parse("10.91.1.128/25").unwrap()),
            ..Default::default()
        };
        assert!(plan(&dir, &l, "c", &clash, &[], &[]).is_err());
        let own = CreateOpts {
            subnet: Some(Subnet::parse("192.168.77.0/24").unwrap()),
            gateway: Some(Ipv4Addr::new(192, 168, 77, 254)),
            internal: true,
        };
        let c = plan(&dir, &l, "c", &own, &[], &[]).unwrap();
        assert_eq!(c.gateway, Ipv4Addr::new(192, 168, 77, 254));
        let outside = CreateOpts {
            gateway: Some(Ipv4Addr::new(192, 168, 78, 1)),
            ..own
        };
        assert!(plan(&dir, &l, "d", &outside, &[], &[]).is_err());
        remove_record(&dir, &l, "a").unwrap();
        assert!(find(&dir, "a").is_err());
        drop(l);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
