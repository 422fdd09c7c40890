//! Name resolution between containers without a daemon: each attached container's /etc/hosts is
//! a file husk owns, `<root>/.net/endpoints/<ID>.hosts` (one per container, whatever its
//! networks), bind-mounted into the container. Under the IPAM lock, every attach and release on
//! a named network rewrites the files of all the network's containers in place (same inode, so
//! the bind mounts see it): the container's own lines, then one line per other container with
//! its name, its `--network-alias`es and its short id. The endpoints are one index,
//! `<root>/.net/endpoints.json`, read once per change rather than a record per container.
//! A container's file outlives `network disconnect` of every network (it stays bound; a later
//! `connect` writes it again) and goes when the container does. docker and podman
//! (aardvark-dns) answer the same names from a DNS server they keep running; husk has no
//! process to keep, and a container's resolver reads /etc/hosts first. Names on the default
//! `bridge` network are not shared, as docker's.

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

/// The hosts file of container `id`.
pub fn hosts_path(net_dir: &Path, id: &str) -> PathBuf {
    dir(net_dir).join(format!("{id}.hosts"))
}

fn index_path(net_dir: &Path) -> PathBuf {
    net_dir.join("endpoints.json")
}

impl Endpoint {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "Ip": self.ip.to_string(), "Network": self.network, "Id": self.id,
            "Names": self.names, "Base": self.base,
        })
    }

    fn from_json(v: &serde_json::Value) -> Option<Endpoint> {
        Some(Endpoint {
            ip: v["Ip"].as_str()?.parse().ok()?,
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

/// Every endpoint, of every network, in the order they were added (a container's first is its
/// primary: its own lines head the container's file).
fn every(net_dir: &Path) -> Vec<Endpoint> {
    std::fs::read(index_path(net_dir))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<serde_json::Value>>(&b).ok())
        .map(|v| v.iter().filter_map(Endpoint::from_json).collect())
        .unwrap_or_default()
}

/// Replaces the index (whole, by rename: a reader never sees half of it); none when empty.
fn save(net_dir: &Path, all: &[Endpoint]) -> Result<(), Error> {
    let path = index_path(net_dir);
    if all.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("remove", &path)(e))
            }
            _ => Ok(()),
        };
    }
    let tmp = net_dir.join("endpoints.json.tmp");
    let v: Vec<serde_json::Value> = all.iter().map(Endpoint::to_json).collect();
    std::fs::write(&tmp, serde_json::Value::from(v).to_string())
        .map_err(Error::io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(Error::io("rename", &path))
}

/// Every endpoint on `network`.
pub fn on_network(net_dir: &Path, _locked: &Locked, network: &str) -> Vec<Endpoint> {
    let mut eps: Vec<Endpoint> = every(net_dir)
        .into_iter()
        .filter(|e| e.network == network)
        .collect();
    eps.sort_by_key(|e| e.ip);
    eps
}

/// The /etc/hosts text of container `id` among `all` (every endpoint): its primary endpoint's
/// own lines, then the others on each named network it is on, by address.
pub fn render(id: &str, all: &[Endpoint]) -> Option<String> {
    let mine: Vec<&Endpoint> = all.iter().filter(|e| e.id == id).collect();
    let mut text = mine.first()?.base.clone();
    let nets: Vec<&str> = mine
        .iter()
        .filter(|e| e.network != DEFAULT)
        .map(|e| e.network.as_str())
        .collect();
    let mut others: Vec<&Endpoint> = all
        .iter()
        .filter(|e| e.id != id && nets.contains(&e.network.as_str()))
        .collect();
    others.sort_by_key(|e| e.ip);
    for e in others {
        text.push_str(&e.line());
    }
    Some(text)
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

/// Records `e` and writes its container's hosts file and its network's others'. Returns the
/// container's hosts file.
pub fn add(net_dir: &Path, _locked: &Locked, e: &Endpoint) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir(net_dir)).map_err(Error::io("create", dir(net_dir)))?;
    let mut all = every(net_dir);
    all.retain(|o| o.ip != e.ip);
    all.push(e.clone());
    save(net_dir, &all)?;
    if let Err(err) = rewrite(net_dir, &all, &e.network, &e.id) {
        all.pop();
        let _ = save(net_dir, &all);
        if !all.iter().any(|o| o.id == e.id) {
            let _ = std::fs::remove_file(hosts_path(net_dir, &e.id));
        }
        return Err(err);
    }
    Ok(hosts_path(net_dir, &e.id))
}

/// What becomes of a container's hosts file when its last endpoint goes.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum LastFile {
    /// The container is gone: so is its file.
    Remove,
    /// `network disconnect`: the container runs on with the file bound, which keeps its own
    /// lines for a later `network connect` to write again.
    Keep,
}

/// Forgets the endpoint at `ip` and updates its container's file and its network's others.
pub fn remove(net_dir: &Path, _locked: &Locked, ip: Ipv4Addr, last: LastFile) {
    let mut all = every(net_dir);
    let Some(i) = all.iter().position(|e| e.ip == ip) else {
        return;
    };
    let gone = all.remove(i);
    // The container's own lines move to its next endpoint (`network connect` leased that one
    // without), its host name then on that address.
    let gone_ip = format!("{}\t", gone.ip);
    match all.iter_mut().find(|e| e.id == gone.id) {
        Some(next) if next.base.is_empty() => {
            next.base = rebase(&gone.base, &gone_ip, &format!("{}\t", next.ip));
        }
        Some(_) => {}
        None => {
            let path = hosts_path(net_dir, &gone.id);
            let _ = match last {
                LastFile::Remove => std::fs::remove_file(&path).map_err(Error::io("remove", &path)),
                LastFile::Keep => write_in_place(&path, &rebase(&gone.base, &gone_ip, UNBOUND)),
            };
        }
    }
    if save(net_dir, &all).is_err() {
        return;
    }
    let _ = rewrite(net_dir, &all, &gone.network, &gone.id);
}

/// The host name's address in a container without a network (docker's), as the front end
/// writes it before a lease gives it the container's address.
pub const UNBOUND: &str = "127.0.1.1\t";

/// `base` with the lines that start with `from` starting with `to` instead.
fn rebase(base: &str, from: &str, to: &str) -> String {
    base.split_inclusive('\n')
        .map(|l| match l.strip_prefix(from) {
            Some(rest) => format!("{to}{rest}"),
            None => l.to_string(),
        })
        .collect()
}

/// The own lines a container without endpoints keeps in its file (after `network disconnect`
/// of its every network), for `network connect` to lease with; empty otherwise.
pub fn kept(net_dir: &Path, _locked: &Locked, id: &str) -> String {
    if every(net_dir).iter().any(|e| e.id == id) {
        return String::new();
    }
    std::fs::read_to_string(hosts_path(net_dir, id)).unwrap_or_default()
}

/// The hosts file of container `id` once none of its endpoints is left (a container that
/// disconnected from every network, then exited).
pub fn forget(net_dir: &Path, _locked: &Locked, id: &str) {
    if !every(net_dir).iter().any(|e| e.id == id) {
        let _ = std::fs::remove_file(hosts_path(net_dir, id));
    }
}

/// Rewrites the hosts files of the containers on `network` (none of the default network's:
/// it shares no names) and of container `also`.
fn rewrite(net_dir: &Path, all: &[Endpoint], network: &str, also: &str) -> Result<(), Error> {
    let mut ids: Vec<&str> = all
        .iter()
        .filter(|e| e.network == network && network != DEFAULT)
        .map(|e| e.id.as_str())
        .chain([also])
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        if let Some(text) = render(id, all) {
            write_in_place(&hosts_path(net_dir, id), &text)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(ip: [u8; 4], net: &str, id: &str, names: &[&str]) -> Endpoint {
        Endpoint {
            ip: ip.into(),
            network: net.into(),
            id: id.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            base: format!("127.0.0.1\tlocalhost\n{}\t{id}\n", Ipv4Addr::from(ip)),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("husk-hosts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn ino(p: &Path) -> u64 {
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap())
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn every_container_on_a_named_network_names_the_others() {
        let dir = scratch("names");
        let l = crate::ipam::lock(&dir).unwrap();
        let a = ep([10, 91, 0, 2], "n", "aaaaaaaaaaaaaaaa", &["web", "www"]);
        let b = ep([10, 91, 0, 3], "n", "bbbbbbbbbbbbbbbb", &["db"]);
        let c = ep([10, 89, 0, 2], DEFAULT, "cccc", &["c"]);
        let fa = add(&dir, &l, &a).unwrap();
        let fb = add(&dir, &l, &b).unwrap();
        let fc = add(&dir, &l, &c).unwrap();
        let before = ino(&fa);
        assert_eq!(read(&fa), format!("{}10.91.0.3\tdb bbbbbbbbbbbb\n", a.base));
        assert_eq!(
            read(&fb),
            format!("{}10.91.0.2\tweb www aaaaaaaaaaaa\n", b.base)
        );
        // The default network shares no names.
        assert_eq!(read(&fc), c.base);
        // c joins n too (leased without own lines, as `network connect` does): its one file
        // names n's others, and theirs name it.
        let c2 = Endpoint {
            base: String::new(),
            ..ep([10, 91, 0, 4], "n", "cccc", &["c"])
        };
        assert_eq!(add(&dir, &l, &c2).unwrap(), fc);
        assert_eq!(
            read(&fc),
            format!(
                "{}10.91.0.2\tweb www aaaaaaaaaaaa\n10.91.0.3\tdb bbbbbbbbbbbb\n",
                c.base
            )
        );
        assert!(read(&fa).ends_with("10.91.0.4\tc cccc\n"));
        remove(&dir, &l, c2.ip, LastFile::Remove);
        assert_eq!(read(&fc), c.base);
        remove(&dir, &l, b.ip, LastFile::Remove);
        assert!(!fb.exists());
        assert_eq!(read(&fa), a.base);
        assert_eq!(ino(&fa), before, "rewritten in place");
        remove(&dir, &l, a.ip, LastFile::Remove);
        remove(&dir, &l, c.ip, LastFile::Remove);
        assert!(!index_path(&dir).exists() && !fa.exists() && !fc.exists());
        drop(l);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_bound_file_outlives_disconnecting_its_first_network() {
        let dir = scratch("disconnect");
        let l = crate::ipam::lock(&dir).unwrap();
        let x1 = ep([10, 91, 0, 2], "n1", "xxxx", &["x"]);
        let peer = ep([10, 92, 0, 2], "n2", "pppp", &["peer"]);
        let later = ep([10, 93, 0, 2], "n3", "llll", &["later"]);
        let bound = add(&dir, &l, &x1).unwrap();
        add(&dir, &l, &peer).unwrap();
        add(&dir, &l, &later).unwrap();
        let ino0 = ino(&bound);
        let connect = |ip: [u8; 4], net: &str| {
            let kept = kept(&dir, &l, "xxxx");
            let e = Endpoint {
                base: kept.replace(UNBOUND, &format!("{}\t", Ipv4Addr::from(ip))),
                ..ep(ip, net, "xxxx", &["x"])
            };
            add(&dir, &l, &e).unwrap()
        };
        // x on n2 as well, then off n1 (its first network, whose lines head the file): the
        // file stays, its own lines now on n2's address, still naming n2's others.
        connect([10, 92, 0, 3], "n2");
        remove(&dir, &l, x1.ip, LastFile::Keep);
        assert_eq!(
            read(&bound),
            "127.0.0.1\tlocalhost\n10.92.0.3\txxxx\n10.92.0.2\tpeer pppp\n"
        );
        // Off every network: the file stays bound with its own lines alone.
        remove(&dir, &l, Ipv4Addr::new(10, 92, 0, 3), LastFile::Keep);
        assert_eq!(read(&bound), "127.0.0.1\tlocalhost\n127.0.1.1\txxxx\n");
        // On n3 now: the same file, which names n3's others.
        assert_eq!(connect([10, 93, 0, 3], "n3"), bound);
        assert_eq!(
            read(&bound),
            "127.0.0.1\tlocalhost\n10.93.0.3\txxxx\n10.93.0.2\tlater llll\n"
        );
        assert_eq!(ino(&bound), ino0, "the bound inode");
        // The container's exit: endpoints gone with their files.
        remove(&dir, &l, Ipv4Addr::new(10, 93, 0, 3), LastFile::Remove);
        forget(&dir, &l, "xxxx");
        assert!(!bound.exists());
        drop(l);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
