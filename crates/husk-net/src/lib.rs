//! Bridge networking for `husk run --network bridge`: the `husk0` bridge with husk's own nftables
//! table `inet husk` (masquerade and forwarding), a veth pair per container, and addresses from
//! `ipam`. Links, addresses and routes are programmed over rtnetlink by husk itself (`link`),
//! the container's end from the front end's own process while init sets up its mounts; rules
//! with `nft -f` (docs/architecture.md, "Networking").
#![forbid(unsafe_code)]

pub mod helper;
pub mod hosts;
pub mod ipam;
pub mod link;
mod netlink;
pub mod networks;
pub mod nft;
pub mod pasta;
pub mod ports;
pub mod slirp;
pub mod usermode;

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
pub use networks::Network;
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

/// One container's attachment: what the createRuntime hook configures and `release` undoes.
#[derive(Debug)]
pub struct Attachment {
    pub network: Network,
    pub ip: Ipv4Addr,
    /// The host side of the veth pair (named after the address: unique while leased).
    pub veth: String,
    pub mac: Option<[u8; 6]>,
    /// The publications with their host ports (chosen ones filled in).
    pub published: Vec<Publish>,
    /// The container's /etc/hosts, which husk rewrites as containers come and go.
    pub hosts_file: PathBuf,
    /// Its name inside the container (eth0, eth1, ... with more than one network), and whether
    /// the default route goes through it (the first network's).
    pub ifname: String,
    pub default_route: bool,
    lease: PathBuf,
    dir: PathBuf,
    id: String,
    /// The thread that removes the port rules when init exits (`rules_go_at_exit`), and the
    /// pipe whose closing asks it to remove them now.
    rules_at_exit: std::sync::Mutex<Option<(std::thread::JoinHandle<()>, std::io::PipeWriter)>>,
}

/// What a container asks of its network.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// `bridge` or a named network.
    pub network: String,
    pub id: String,
    /// Its name and `--network-alias`es, for the other containers' /etc/hosts.
    pub names: Vec<String>,
    pub publish: Vec<Publish>,
    pub ip: Option<Ipv4Addr>,
    pub mac: Option<[u8; 6]>,
    /// Its own /etc/hosts; the line `127.0.1.1\tHOSTNAME` gets its address.
    pub hosts: String,
    pub hostname: String,
    /// The lease's holder ("PID START") when it is not this process: a running container's
    /// monitor, whose exit releases the container's leases (`network connect`).
    pub holder: Option<String>,
}

pub fn net_dir(root: &Path) -> PathBuf {
    root.join(".net")
}

/// The veth's host-side name for an address: "hk" and the address in hex (≤ 15 bytes).
fn veth_name(ip: Ipv4Addr) -> String {
    format!("hk{:08x}", u32::from(ip))
}

/// `--mac-address`: six colon-separated hex bytes, unicast.
pub fn parse_mac(m: &str) -> Result<[u8; 6], Error> {
    let bytes: [u8; 6] = m
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok().filter(|_| b.len() == 2))
        .collect::<Option<Vec<u8>>>()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| {
            Error::Msg(format!(
                "--mac-address {m}: want six hex bytes like 02:42:ac:11:00:02"
            ))
        })?;
    if bytes[0] & 1 == 1 {
        return Err(Error::Msg(format!(
            "--mac-address {m}: a multicast address (the first byte is odd)"
        )));
    }
    Ok(bytes)
}

/// `delete --force`: the leases of husks that were killed (a foreground run SIGKILLed after its
/// lease, before its container existed) go now with their rules, not at the next bridge run.
/// Leases whose holder lives are left to it.
pub fn reclaim_dead(root: &Path) {
    let dir = net_dir(root);
    if !dir.join("leases").is_dir() {
        return;
    }
    if let Ok(locked) = ipam::lock(&dir) {
        reclaim(&dir, &locked);
    }
}

/// Stale leases (their holder was killed) go with their veth, rules and hosts file.
fn reclaim(dir: &Path, locked: &ipam::Locked) {
    for (ip, text) in ipam::reclaim(dir, locked) {
        husk_runtime::explain::step(|| {
            format!(
                "network: reclaimed lease {ip} of a husk that is gone ({})",
                text.trim()
            )
        });
        // Usually gone with the container's network namespace; a leftover goes now.
        let _ = drop_lease(dir, locked, ip, &text, VethEnd::IfLeft);
    }
}

/// What becomes of a lease's veth pair when the lease goes.
#[derive(Clone, Copy, PartialEq)]
enum VethEnd {
    /// `network disconnect`: the container lives on, so its link is deleted now.
    Delete,
    /// A reclaimed lease: its pair went with the dead container's network namespace, unless
    /// the kernel has not torn that down yet.
    IfLeft,
    /// An exited container's: its namespace takes the pair (deleting it here would wait for
    /// the kernel's RCU grace periods, see `Attachment::release`).
    WithNetns,
}

/// One lease's end, shared by `detach`, `release_id` and `reclaim`: its veth as `veth` says,
/// its port rules when the lease ("ID PID START [PORTS...]") records any (tagged with the id,
/// so none of another's), its hosts entries (the network's others updated) and its file.
fn drop_lease(
    dir: &Path,
    locked: &ipam::Locked,
    ip: Ipv4Addr,
    text: &str,
    veth: VethEnd,
) -> Result<(), Error> {
    let name = veth_name(ip);
    let delete = || {
        explain(
            &format!("delete veth {name} (and its peer in the container)"),
            || link::Rtnl::open().and_then(|mut r| r.delete(&name)),
        )
    };
    match veth {
        VethEnd::Delete => {
            delete()?;
            husk_runtime::fault::point("net.veth-deleted")?;
        }
        VethEnd::IfLeft if tools::link_exists(&name) => {
            let _ = delete();
        }
        _ => {}
    }
    let mut words = text.split_whitespace();
    let id = words.next().unwrap_or_default();
    let rules = match words.count() > 2 {
        true => remove_rules(id),
        false => Ok(()),
    };
    let last = match veth {
        VethEnd::Delete => hosts::LastFile::Keep,
        _ => hosts::LastFile::Remove,
    };
    hosts::remove(dir, locked, ip, last);
    let lease = dir.join("leases").join(ip.to_string());
    match std::fs::remove_file(&lease) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", &lease)(e)),
        _ => rules,
    }
}

/// Takes an address on the requested network for the container and publishes its ports,
/// creating the network's bridge and rules first when this network namespace has none.
pub fn allocate(root: &Path, req: &Request) -> Result<Attachment, Error> {
    let dir = net_dir(root);
    let locked = ipam::lock(&dir)?;
    reclaim(&dir, &locked);
    let network = if req.network == networks::DEFAULT {
        ensure_default(&dir)?
    } else {
        let n = networks::find(&dir, &req.network)?;
        ensure_network(&n)?;
        n
    };
    let held: Vec<Publish> = ipam::held(&dir, &locked)
        .iter()
        .flat_map(|l| {
            l.split_whitespace()
                .skip(3)
                .filter_map(|r| Publish::parse_record(r).ok())
        })
        .collect();
    let mut published: Vec<Publish> = vec![];
    for p in &req.publish {
        let taken: Vec<Publish> = held.iter().chain(&published).cloned().collect();
        let p = ports::choose(p, &taken)?;
        if let Some(q) = held.iter().find(|q| q.clashes(&p)) {
            let owner = ipam::held(&dir, &locked)
                .into_iter()
                .find(|l| l.split_whitespace().skip(3).any(|r| r == q.record()))
                .and_then(|l| l.split_whitespace().next().map(String::from))
                .unwrap_or_default();
            return Err(Error::Msg(format!(
                "-p {}: host port {} is already published by container {owner}",
                p.record(),
                p.host_port
            )));
        }
        ports::check_free(&p)?;
        published.push(p);
    }
    let mut holder = req.holder.clone().unwrap_or_else(ipam::me);
    for p in &published {
        holder.push(' ');
        holder.push_str(&p.record());
    }
    let lease = ipam::allocate(
        &dir,
        &locked,
        network.subnet,
        network.gateway,
        req.ip,
        &req.id,
        &holder,
    )?;
    let ip = lease.ip;
    let made = (|| {
        husk_runtime::fault::point("net.leased")?;
        let kept;
        let hosts = match req.hosts.is_empty() {
            true => {
                kept = hosts::kept(&dir, &locked, &req.id);
                &kept
            }
            false => &req.hosts,
        };
        let own = hosts.replace(
            &format!("127.0.1.1\t{}\n", req.hostname),
            &format!("{ip}\t{}\n", req.hostname),
        );
        let ep = hosts::Endpoint {
            ip,
            network: network.name.clone(),
            id: req.id.clone(),
            names: req.names.clone(),
            base: own,
        };
        let hosts_file = hosts::add(&dir, &locked, &ep)?;
        husk_runtime::fault::point("net.hosts")?;
        if !published.is_empty() {
            explain(
                &format!("nf_tables batch: {} DNAT rule(s)", published.len()),
                || nft::add_port_rules(&published, ip, &req.id),
            )?;
            husk_runtime::fault::point("net.ports")?;
        }
        Ok(hosts_file)
    })();
    let hosts_file = match made {
        Ok(f) => f,
        Err(e) => {
            // Whatever of it was made: the rules (tagged with the id, so none of another's),
            // the hosts entry and the lease.
            if !published.is_empty() {
                let _ = remove_rules(&req.id);
            }
            let _ = std::fs::remove_file(&lease.file);
            // A running container's (`network connect`) keeps the file bound into it.
            let last = match req.holder {
                Some(_) => hosts::LastFile::Keep,
                None => hosts::LastFile::Remove,
            };
            hosts::remove(&dir, &locked, ip, last);
            return Err(e);
        }
    };
    Ok(Attachment {
        veth: veth_name(ip),
        ip,
        mac: req.mac,
        published,
        hosts_file,
        ifname: IFNAME.to_string(),
        default_route: true,
        lease: lease.file.clone(),
        dir: dir.clone(),
        id: req.id.clone(),
        network,
        rules_at_exit: Default::default(),
    })
}

/// Deletes the rules commented `tag` from husk's table (a container's id: its port rules; a
/// network's `network NAME`: its forwarding and NAT rules).
fn remove_rules(tag: &str) -> Result<(), Error> {
    explain(
        &format!("nf_tables: delete the rules commented {tag:?}"),
        || nft::remove_tagged(tag).map(drop),
    )
}

/// The default network: husk0, made with the first free candidate subnet at its first use and
/// recorded in `<root>/.net/bridge` ("SUBNET MTU").
fn ensure_default(dir: &Path) -> Result<Network, Error> {
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
            let mut taken = tools::routes();
            taken.extend(networks::list(dir).iter().map(|n| n.subnet));
            CANDIDATES
                .iter()
                .filter_map(|c| Subnet::parse(c).ok())
                .find(|c| !taken.iter().any(|r| r.overlaps(c)))
                .ok_or_else(|| {
                    Error::Msg(format!(
                        "create bridge {BRIDGE}: every candidate subnet ({}) overlaps a route or a network here; set {SUBNET_ENV}",
                        CANDIDATES.join(", ")
                    ))
                })?
        }
    };
    let n = Network::default_from(subnet, tools::default_route_mtu());
    make_bridge(&n)?;
    if let Err(e) = std::fs::write(&record, format!("{subnet} {}\n", n.mtu)) {
        remove_bridge(&n);
        return Err(Error::io("write", &record)(e));
    }
    Ok(n)
}

/// The default network if husk0 exists here (for `husk network ls`).
pub fn default_network(root: &Path) -> Option<Network> {
    let text = std::fs::read_to_string(net_dir(root).join("bridge")).ok()?;
    parse_record(&text).filter(|_| tools::link_exists(BRIDGE))
}

/// A named network's bridge and rules, made again when this namespace lacks them.
fn ensure_network(n: &Network) -> Result<(), Error> {
    if tools::link_exists(&n.bridge) {
        return Ok(());
    }
    make_bridge(n)
}

/// The bridge with the gateway's address, husk's table and the network's rules, and the
/// sysctls routing needs; on failure nothing of it is left.
fn make_bridge(n: &Network) -> Result<(), Error> {
    let br = &n.bridge;
    let mut rtnl = link::Rtnl::open()?;
    explain(
        &format!("create bridge {br} {} mtu {}", n.gateway, n.mtu),
        || rtnl.create_bridge(br, n.mtu, n.gateway, n.subnet.prefix),
    )?;
    let rest = (|| {
        husk_runtime::fault::point("net.bridge")?;
        let _ = remove_rules(&network_tag(&n.name));
        tools::nft(&(base_table() + &network_rules(n)))?;
        husk_runtime::fault::point("net.bridge-rules")?;
        // Routing between the bridge and the uplink, and 127.0.0.1 DNATed onto the bridge
        // (published ports from the host itself); in this network namespace only.
        for (path, v) in [
            ("/proc/sys/net/ipv4/ip_forward".to_string(), "1"),
            (format!("/proc/sys/net/ipv4/conf/{br}/route_localnet"), "1"),
        ] {
            std::fs::write(&path, v).map_err(Error::io("write", &path))?;
        }
        Ok(())
    })();
    if let Err(e) = rest {
        remove_bridge(n);
        return Err(e);
    }
    Ok(())
}

/// Removes a network's bridge and rules (the table and its other rules stay).
fn remove_bridge(n: &Network) {
    if tools::link_exists(&n.bridge) {
        let _ = link::Rtnl::open().and_then(|mut r| r.delete(&n.bridge));
    }
    let _ = remove_rules(&network_tag(&n.name));
}

fn parse_record(text: &str) -> Option<Network> {
    let mut w = text.split_whitespace();
    Some(Network::default_from(
        Subnet::parse(w.next()?).ok()?,
        w.next()?.parse().ok()?,
    ))
}

fn network_tag(name: &str) -> String {
    format!("network {name}")
}

/// husk's table and chains, made if missing and never replaced whole (other networks' and
/// containers' rules live in it); other tables are never touched. Traffic to a local address
/// goes through `ports` (the DNAT rules of `-p`), from outside (prerouting) and from this host
/// (output).
pub fn base_table() -> String {
    "add table inet husk
add chain inet husk forward { type filter hook forward priority filter; policy accept; }
add chain inet husk ports
add chain inet husk prerouting { type nat hook prerouting priority dstnat; policy accept; }
add chain inet husk output { type nat hook output priority -100; policy accept; }
add chain inet husk postrouting { type nat hook postrouting priority srcnat; policy accept; }
flush chain inet husk prerouting
flush chain inet husk output
add rule inet husk prerouting fib daddr type local jump ports
add rule inet husk output fib daddr type local jump ports
"
    .to_string()
}

/// One network's rules, each commented `network NAME`. Inserted first: nothing crosses from this
/// bridge to another husk bridge (docker's isolation between networks), and an internal network
/// forwards nothing at all. Appended: its traffic leaving the subnet is masqueraded and
/// forwarded both ways; connections from 127.0.0.1 and hairpin connections (a container to a
/// published port) are masqueraded so that replies come back the same way.
pub fn network_rules(n: &Network) -> String {
    let (br, sub) = (&n.bridge, n.subnet);
    let c = format!("comment \"{}\"", network_tag(&n.name));
    let mut s = format!(
        "insert rule inet husk forward iifname \"{br}\" oifname \"hk-*\" oifname != \"{br}\" drop {c}
insert rule inet husk forward iifname \"{br}\" oifname \"{BRIDGE}\" oifname != \"{br}\" drop {c}
"
    );
    if n.internal {
        s.push_str(&format!(
            "insert rule inet husk forward iifname \"{br}\" oifname != \"{br}\" drop {c}
insert rule inet husk forward oifname \"{br}\" iifname != \"{br}\" drop {c}
"
        ));
        return s;
    }
    s.push_str(&format!(
        "add rule inet husk forward ip daddr {sub} ct state established,related accept {c}
add rule inet husk forward ip daddr {sub} ct status dnat accept {c}
add rule inet husk forward ip saddr {sub} accept {c}
add rule inet husk postrouting ip saddr {sub} ip daddr != {sub} masquerade {c}
add rule inet husk postrouting ip saddr 127.0.0.0/8 oifname \"{br}\" masquerade {c}
add rule inet husk postrouting ip saddr {sub} ip daddr {sub} ct status dnat masquerade {c}
"
    ));
    s
}

/// `husk network create`: the record, the bridge and the rules, or nothing.
pub fn create_network(
    root: &Path,
    name: &str,
    o: &networks::CreateOpts,
    now_ns: u64,
) -> Result<Network, Error> {
    let dir = net_dir(root);
    let locked = ipam::lock(&dir)?;
    let mut taken: Vec<Subnet> = default_network(root)
        .map(|d| d.subnet)
        .into_iter()
        .collect();
    if let Ok(s) = std::env::var(SUBNET_ENV).map(|s| Subnet::parse(&s)) {
        taken.extend(s.ok());
    }
    let routes = tools::routes();
    let mut n = networks::plan(&dir, &locked, name, o, &taken, &routes)?;
    n.mtu = tools::default_route_mtu();
    n.created_ns = now_ns;
    make_bridge(&n)?;
    if let Err(e) = networks::save(&dir, &locked, &n) {
        remove_bridge(&n);
        return Err(e);
    }
    Ok(n)
}

/// The containers attached to a network, after stale leases are reclaimed.
pub fn endpoints(root: &Path, network: &str) -> Result<Vec<hosts::Endpoint>, Error> {
    let dir = net_dir(root);
    let locked = ipam::lock(&dir)?;
    reclaim(&dir, &locked);
    Ok(hosts::on_network(&dir, &locked, network))
}

/// `husk network rm`: refused while a container holds an address on it.
pub fn remove_network(root: &Path, key: &str) -> Result<Network, Error> {
    let dir = net_dir(root);
    let locked = ipam::lock(&dir)?;
    reclaim(&dir, &locked);
    let n = networks::find(&dir, key)?;
    let users = networks::users(&dir, &locked, &n);
    if !users.is_empty() {
        return Err(Error::Msg(format!(
            "network {} is in use by container{} {}: stop {} first",
            n.name,
            if users.len() == 1 { "" } else { "s" },
            users.join(", "),
            if users.len() == 1 { "it" } else { "them" }
        )));
    }
    remove_bridge(&n);
    networks::remove_record(&dir, &locked, &n.name)?;
    Ok(n)
}

/// The published ports of a container (by id) as its lease records them.
pub fn published_of(root: &Path, id: &str) -> Result<Option<Vec<Publish>>, Error> {
    let dir = net_dir(root);
    let locked = ipam::lock(&dir)?;
    reclaim(&dir, &locked);
    Ok(ipam::held(&dir, &locked)
        .into_iter()
        .find(|l| l.split_whitespace().next() == Some(id))
        .map(|l| {
            l.split_whitespace()
                .skip(3)
                .filter_map(|r| Publish::parse_record(r).ok())
                .collect()
        }))
}

impl Attachment {
    /// What `link::Veth::attach` makes for this attachment.
    pub fn veth(&self) -> link::Veth {
        link::Veth {
            host: self.veth.clone(),
            bridge: self.network.bridge.clone(),
            mtu: self.network.mtu,
            mac: self.mac.unwrap_or_else(|| link::mac_for(self.ip)),
            ip: self.ip,
            prefix: self.network.subnet.prefix,
            gateway: self.network.gateway,
            ifname: self.ifname.clone(),
            default_route: self.default_route,
        }
    }

    /// Attaches the container whose network namespace is `netns` (init's, which exists from
    /// the clone on): called in-process by `husk run` (`launch_plan_with`).
    pub fn attach(&self, netns: std::os::fd::BorrowedFd<'_>) -> Result<(), Error> {
        self.veth().attach(netns)
    }

    /// Removes the port rules on a thread of its own as soon as init (`pid`) exits, while husk
    /// tears the container down: deleting a rule costs an RCU grace period (10-16 ms measured
    /// here) when its netlink socket is closed (nf_tables waits for the deleted rules to be
    /// freed then), which this overlaps with removing the cgroup and the state dir. `release`
    /// waits for it, asking it to go on at once if init still runs. Only for a process that
    /// clones nothing after this (the foreground `husk run`): the monitor forks again.
    pub fn rules_go_at_exit(&self, pid: i32) -> Result<(), Error> {
        if self.published.is_empty() {
            return Ok(());
        }
        let pidfd = husk_sys::process::pidfd_open(pid)
            .map_err(Error::io("pidfd_open", format!("init {pid}")))?;
        let (now_r, now_w) = std::io::pipe().map_err(Error::io("make pipe", "port rules"))?;
        let id = self.id.clone();
        let t = std::thread::Builder::new()
            .name("port-rules".into())
            .spawn(move || {
                use std::os::fd::AsFd;
                let _ = husk_sys::sock::poll_in(&[pidfd.as_fd(), now_r.as_fd()], -1);
                let _ = remove_rules(&id);
            })
            .map_err(Error::io(
                "spawn",
                "the thread removing the port rules at exit",
            ))?;
        *self.rules_at_exit.lock().unwrap_or_else(|e| e.into_inner()) = Some((t, now_w));
        Ok(())
    }

    /// Removes the port rules, the hosts file (updating the network's others) and the lease.
    /// The veth pair goes with the container's network namespace, which the kernel tears down
    /// after init's exit on a worker of its own: deleting it here waits for the same RCU grace
    /// periods in husk's exit path (~10-40 ms measured). A pair not yet gone when its address
    /// is leased again is deleted then (`link::Veth::attach`, EEXIST).
    pub fn release(self) {
        let at_exit = self
            .rules_at_exit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match at_exit {
            Some((t, now)) => {
                drop(now);
                let _ = t.join();
            }
            None if !self.published.is_empty() => {
                let _ = remove_rules(&self.id);
            }
            None => {}
        }
        if let Ok(locked) = ipam::lock(&self.dir) {
            hosts::remove(&self.dir, &locked, self.ip, hosts::LastFile::Remove);
            hosts::forget(&self.dir, &locked, &self.id);
            let _ = std::fs::remove_file(&self.lease);
            drop(locked);
        }
    }
}

/// The interface name for one more network in the network namespace of process `pid`: the
/// first ethN it lacks, and whether it gets the default route (none there yet).
pub fn next_ifname(pid: i32) -> (String, bool) {
    let read =
        |f: &str| std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).unwrap_or_default();
    let dev = read("dev");
    let have: Vec<&str> = dev
        .lines()
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()))
        .collect();
    let name = (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !have.contains(&n.as_str()))
        .expect("some ethN is free");
    let routed = read("route").lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1) == Some(&"00000000") && f.get(7) == Some(&"00000000")
    });
    (name, !routed)
}

/// `network disconnect` of a running container: its link on `network` deleted (its peer in the
/// container goes with it), and that network's lease and hosts entries released. Returns the
/// address it had, None when it held none.
pub fn detach(root: &Path, id: &str, network: &str) -> Result<Option<Ipv4Addr>, Error> {
    let dir = net_dir(root);
    let locked = ipam::lock(&dir)?;
    // None held: detached already (a disconnect that failed after this, before its record).
    let Some(ep) = hosts::on_network(&dir, &locked, network)
        .into_iter()
        .find(|e| e.id == id)
    else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(dir.join("leases").join(ep.ip.to_string()))
        .unwrap_or_else(|_| id.to_string());
    drop_lease(&dir, &locked, ep.ip, &text, VethEnd::Delete)?;
    Ok(Some(ep.ip))
}

/// `Attachment::release` for a process other than the one that allocated (a detached
/// container's monitor, which records the exit in a fresh image): the lease of container `id`
/// under `root` and its port rules.
pub fn release_id(root: &Path, id: &str) {
    let dir = net_dir(root);
    let Ok(locked) = ipam::lock(&dir) else { return };
    for (ip, text) in ipam::held_by_ip(&dir, &locked) {
        if text.split_whitespace().next() == Some(id) {
            let _ = drop_lease(&dir, &locked, ip, &text, VethEnd::WithNetns);
        }
    }
    // Kept by `network disconnect` of its every network.
    hosts::forget(&dir, &locked, id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_id_drops_every_lease_of_its_container_and_no_others() {
        let root = std::env::temp_dir().join(format!("husk-release-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = net_dir(&root);
        std::fs::create_dir_all(dir.join("leases")).unwrap();
        let locked = ipam::lock(&dir).unwrap();
        let lease = |ip: [u8; 4], net: &str, id: &str| {
            let ip = Ipv4Addr::from(ip);
            std::fs::write(dir.join("leases").join(ip.to_string()), format!("{id} 1 1")).unwrap();
            let ep = hosts::Endpoint {
                ip,
                network: net.into(),
                id: id.into(),
                names: vec![id.into()],
                base: format!("{ip}\t{id}\n"),
            };
            hosts::add(&dir, &locked, &ep).unwrap()
        };
        let mine = lease([10, 91, 0, 2], "n1", "aaaa");
        lease([10, 92, 0, 2], "n2", "aaaa");
        let other = lease([10, 91, 0, 3], "n1", "bbbb");
        drop(locked);
        release_id(&root, "aaaa");
        let left: Vec<String> = std::fs::read_dir(dir.join("leases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["10.91.0.3"]);
        assert!(!mine.exists());
        // The other's file no longer names it.
        assert_eq!(
            std::fs::read_to_string(&other).unwrap(),
            "10.91.0.3\tbbbb\n"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn records_names_and_rules() {
        let b = parse_record("10.89.0.0/16 1500\n").unwrap();
        assert_eq!((b.subnet.to_string(), b.mtu), ("10.89.0.0/16".into(), 1500));
        assert_eq!((b.name.as_str(), b.bridge.as_str()), ("bridge", BRIDGE));
        assert!(parse_record("10.89.0.0/16").is_none());
        assert_eq!(veth_name(Ipv4Addr::new(10, 89, 0, 2)), "hk0a590002");
        let r = base_table() + &network_rules(&b);
        assert!(r.contains(
            "add rule inet husk postrouting ip saddr 10.89.0.0/16 ip daddr != 10.89.0.0/16 masquerade comment \"network bridge\""
        ));
        // Only husk's own table is ever named.
        assert!(
            r.lines()
                .filter(|l| l.contains("table") || l.contains("rule") || l.contains("chain"))
                .all(|l| l.contains("inet husk"))
        );
        let internal = Network {
            internal: true,
            name: "i".into(),
            bridge: "hk-0123456789ab".into(),
            ..b
        };
        let r = network_rules(&internal);
        assert!(!r.contains("masquerade"), "{r}");
        assert!(r.contains("insert rule inet husk forward iifname \"hk-0123456789ab\" oifname != \"hk-0123456789ab\" drop comment \"network i\""));
        assert_eq!(
            parse_mac("02:42:AC:11:00:02").unwrap(),
            [0x02, 0x42, 0xac, 0x11, 0, 2]
        );
        for bad in [
            "02:42:ac:11:00",
            "01:00:5e:00:00:01",
            "0242ac110002",
            "02:42:ac:11:00:2",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }
}
