//! Name resolution between containers without a daemon: each attached container's /etc/hosts is
//! a file husk owns, `<root>/.net/endpoints/<IP>.hosts`, bind-mounted into the container. Under
//! the IPAM lock, every attach and release on a named network rewrites the files of all the
//! network's containers in place (same inode, so the bind mounts see it): the container's own
//! lines, then one line per other container with its name, its `--network-alias`es and its short
//! id. docker and podman (aardvark-dns) answer the same names from a DNS server they keep
//! running; husk has no process to keep, and a container's resolver reads /etc/hosts first.
//! Names on the default `bridge` network are not shared, as docker's.

use crate::ipam::Locked;
use crate::networks::DEFAULT;
use husk_runtime::Error;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// One container's place on a network, as other containers' /etc/hosts name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub network: String,
    pub id: String,
    /// Its name and aliases (what the others resolve).
    pub names: Vec<String>,
    /// Its own /etc/hosts lines (localhost, its host name, --add-host).
    pub base: String,
}

fn dir(net_dir: &Path) -> PathBuf {
    net_dir.join("endpoints")
}

pub fn hosts_path(net_dir: &Path, ip: Ipv4Addr) -> PathBuf {
    dir(net_dir).join(format!("{ip}.hosts"))
}

fn record_path(net_dir: &Path, ip: Ipv4Addr) -> PathBuf {
    dir(net_dir).join(format!("{ip}.json"))
}

impl Endpoint {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "Network": self.network, "Id": self.id, "Names": self.names, "Base": self.base,
        })
    }

    fn read(net_dir: &Path, ip: Ipv4Addr) -> Option<Endpoint> {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(record_path(net_dir, ip)).ok()?).ok()?;
        Some(Endpoint {
            ip,
            network: v["Network"].as_str()?.into(),
            id: v["Id"].as_str()?.into(),
            names: v["Names"]
                .as_array()?
                .iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect(),
            base: v["Base"].as_str()?.into(),
        })
    }

    /// The line other containers get for this one.
    fn line(&self) -> String {
        let mut names = self.names.clone();
        let short: String = self.id.chars().take(12).collect();
        if !names.contains(&short) {
            names.push(short);
        }
        format!("{}\t{}\n", self.ip, names.join(" "))
    }
}

/// Every endpoint, of every network.
fn every(net_dir: &Path) -> Vec<Endpoint> {
    let mut eps: Vec<Endpoint> = std::fs::read_dir(dir(net_dir))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n = e.file_name();
                    let ip = n.to_str()?.strip_suffix(".json")?.parse().ok()?;
                    Endpoint::read(net_dir, ip)
                })
                .collect()
        })
        .unwrap_or_default();
    eps.sort_by_key(|e| e.ip);
    eps
}

/// Every endpoint on `network`.
pub fn on_network(net_dir: &Path, _locked: &Locked, network: &str) -> Vec<Endpoint> {
    every(net_dir)
        .into_iter()
        .filter(|e| e.network == network)
        .collect()
}

/// The /etc/hosts text of `me` among `all` (every endpoint, `me` included): the others on
/// each named network its container is on (a container on several networks has one endpoint on
/// each, and whichever file is bound into it names them all).
pub fn render(me: &Endpoint, all: &[Endpoint]) -> String {
    let mut text = me.base.clone();
    let nets: Vec<&str> = all
        .iter()
        .filter(|e| e.id == me.id && e.network != DEFAULT)
        .map(|e| e.network.as_str())
        .collect();
    for e in all
        .iter()
        .filter(|e| e.id != me.id && nets.contains(&e.network.as_str()))
    {
        text.push_str(&e.line());
    }
    text
}

/// Rewrites in place (the bind mount holds the inode) or creates the file.
fn write_in_place(path: &Path, text: &str) -> Result<(), Error> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(Error::io("open", path))?;
    f.write_all(text.as_bytes())
        .map_err(Error::io("write", path))
}

/// Records `e` and writes its hosts file and its network's others'. Returns its hosts file.
pub fn add(net_dir: &Path, locked: &Locked, e: &Endpoint) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir(net_dir)).map_err(Error::io("create", dir(net_dir)))?;
    let rec = record_path(net_dir, e.ip);
    std::fs::write(&rec, e.to_json().to_string()).map_err(Error::io("write", &rec))?;
    if let Err(err) = refresh(net_dir, locked, &e.network) {
        remove(net_dir, locked, e.ip);
        return Err(err);
    }
    Ok(hosts_path(net_dir, e.ip))
}

/// Forgets the endpoint at `ip` and updates its network's others.
pub fn remove(net_dir: &Path, _locked: &Locked, ip: Ipv4Addr) {
    let gone = Endpoint::read(net_dir, ip);
    let _ = std::fs::remove_file(record_path(net_dir, ip));
    let _ = std::fs::remove_file(hosts_path(net_dir, ip));
    if let Some(g) = gone {
        // Its network's others, and its container's endpoints on other networks.
        let _ = rewrite(net_dir, &g.network, Some(&g.id));
    }
}

/// Rewrites the hosts files of the containers on `network` (all their endpoints').
pub fn refresh(net_dir: &Path, _locked: &Locked, network: &str) -> Result<(), Error> {
    rewrite(net_dir, network, None)
}

fn rewrite(net_dir: &Path, network: &str, also: Option<&str>) -> Result<(), Error> {
    let all = every(net_dir);
    let ids: Vec<&str> = all
        .iter()
        .filter(|e| e.network == network)
        .map(|e| e.id.as_str())
        .chain(also)
        .collect();
    for e in all.iter().filter(|e| ids.contains(&e.id.as_str())) {
        write_in_place(&hosts_path(net_dir, e.ip), &render(e, &all))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_on_a_named_network_names_the_others() {
        let dir = std::env::temp_dir().join(format!("husk-hosts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let l = crate::ipam::lock(&dir).unwrap();
        let ep = |ip: [u8; 4], net: &str, id: &str, names: &[&str]| Endpoint {
            ip: ip.into(),
            network: net.into(),
            id: id.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            base: format!("127.0.0.1\tlocalhost\n{}\t{id}\n", Ipv4Addr::from(ip)),
        };
        let a = ep([10, 91, 0, 2], "n", "aaaaaaaaaaaaaaaa", &["web", "www"]);
        let b = ep([10, 91, 0, 3], "n", "bbbbbbbbbbbbbbbb", &["db"]);
        let c = ep([10, 89, 0, 2], DEFAULT, "cccc", &["c"]);
        let fa = add(&dir, &l, &a).unwrap();
        let fb = add(&dir, &l, &b).unwrap();
        let fc = add(&dir, &l, &c).unwrap();
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = ino(&fa);
        assert_eq!(
            std::fs::read_to_string(&fa).unwrap(),
            format!("{}10.91.0.3\tdb bbbbbbbbbbbb\n", a.base)
        );
        assert_eq!(
            std::fs::read_to_string(&fb).unwrap(),
            format!("{}10.91.0.2\tweb www aaaaaaaaaaaa\n", b.base)
        );
        // The default network shares no names.
        assert_eq!(std::fs::read_to_string(&fc).unwrap(), c.base);
        // c joins n too: its bound file (on the default network) names n's others, and
        // theirs name it.
        let c2 = ep([10, 91, 0, 4], "n", "cccc", &["c"]);
        add(&dir, &l, &c2).unwrap();
        assert_eq!(
            std::fs::read_to_string(&fc).unwrap(),
            format!(
                "{}10.91.0.2\tweb www aaaaaaaaaaaa\n10.91.0.3\tdb bbbbbbbbbbbb\n",
                c.base
            )
        );
        assert!(
            std::fs::read_to_string(&fa)
                .unwrap()
                .ends_with("10.91.0.4\tc cccc\n")
        );
        remove(&dir, &l, c2.ip);
        assert_eq!(std::fs::read_to_string(&fc).unwrap(), c.base);
        remove(&dir, &l, b.ip);
        assert!(!fb.exists());
        assert_eq!(std::fs::read_to_string(&fa).unwrap(), a.base);
        assert_eq!(ino(&fa), before, "rewritten in place");
        drop(l);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
