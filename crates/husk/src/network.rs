//! `husk network create|ls|inspect|rm|prune` and `husk port`: docker's verbs over husk-net's
//! records (no daemon: each verb reads and writes them under husk-net's lock).

use clap::{Args, Subcommand};
use husk_net::{Network, networks};
use husk_runtime::Error;
use std::path::Path;

#[derive(Subcommand, Debug, Clone)]
pub enum NetworkCmd {
    /// Create a bridge network with a bridge, a subnet and nftables rules of its own
    Create(CreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls {
        /// Names only
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print networks' configuration and containers as JSON
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks (refused while a container is attached)
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Put a stopped detached container on a network (from its next start; one network each)
    Connect {
        /// Another name for it there (the network's others resolve it)
        #[arg(long)]
        alias: Vec<String>,
        /// Its IPv4 address there
        #[arg(long)]
        ip: Option<String>,
        network: String,
        container: String,
    },
    /// Take a stopped detached container off its network (it starts with none)
    Disconnect { network: String, container: String },
    /// Remove every named network no container is attached to
    Prune {
        /// Accepted for docker's command lines; husk never asks
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// IPv4 subnet in CIDR form (default: a free /24 of 10.91.0.0/16)
    #[arg(long)]
    pub subnet: Option<String>,
    /// The bridge's address (default: the subnet's first)
    #[arg(long)]
    pub gateway: Option<String>,
    /// No traffic to or from outside the network
    #[arg(long)]
    pub internal: bool,
    /// bridge, the only driver
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    pub name: String,
}

pub fn network(root: &Path, cmd: &NetworkCmd) -> Result<i32, Error> {
    match cmd {
        NetworkCmd::Create(c) => create(root, c)?,
        NetworkCmd::Ls { quiet } => list(root, *quiet)?,
        NetworkCmd::Inspect { networks: keys } => {
            let mut out = vec![];
            let mut code = 0;
            for k in keys {
                let n = if k == networks::DEFAULT {
                    husk_net::default_network(root).ok_or_else(|| {
                        Error::Msg("network bridge: husk0 is made at the first --network bridge run; none yet here".into())
                    })
                } else {
                    networks::find(&husk_net::net_dir(root), k)
                };
                match n {
                    Ok(n) => out.push(inspect_json(root, &n)?),
                    Err(e) => {
                        eprintln!("husk: {e}");
                        code = 1;
                    }
                }
            }
            crate::out::line(
                serde_json::to_string_pretty(&out).map_err(|e| Error::Msg(e.to_string()))?,
            )?;
            return Ok(code);
        }
        NetworkCmd::Rm { networks: keys } => {
            let mut code = 0;
            for k in keys {
                match refuse_if_kept(root, k).and_then(|()| husk_net::remove_network(root, k)) {
                    Ok(n) => crate::out::line(&n.name)?,
                    Err(e) => {
                        eprintln!("husk: {e}");
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        NetworkCmd::Connect {
            alias,
            ip,
            network,
            container,
        } => connect(root, network, container, alias, ip.clone())?,
        NetworkCmd::Disconnect { network, container } => disconnect(root, network, container)?,
        NetworkCmd::Prune { .. } => {
            let mut deleted = vec![];
            for n in networks::list(&husk_net::net_dir(root)) {
                // In use: kept (remove_network says so; prune stays quiet, as docker's).
                if let Ok(n) = refuse_if_kept(root, &n.name)
                    .and_then(|()| husk_net::remove_network(root, &n.name))
                {
                    deleted.push(n.name);
                }
            }
            if !deleted.is_empty() {
                crate::out::line(format!("Deleted Networks:\n{}", deleted.join("\n")))?;
            }
        }
    }
    Ok(0)
}

/// `network create`: a bridge network with the subnet and gateway asked for; prints its id.
fn create(root: &Path, c: &CreateArgs) -> Result<(), Error> {
    if c.driver != "bridge" {
        return Err(Error::Msg(format!(
            "network create -d {}: only the bridge driver exists in husk",
            c.driver
        )));
    }
    let o = networks::CreateOpts {
        subnet: c
            .subnet
            .as_deref()
            .map(husk_net::Subnet::parse)
            .transpose()?,
        gateway: match &c.gateway {
            Some(g) => Some(
                g.parse()
                    .map_err(|_| Error::Msg(format!("--gateway {g}: not an IPv4 address")))?,
            ),
            None => None,
        },
        internal: c.internal,
    };
    let n = husk_net::create_network(root, &c.name, &o, husk_containers::time::now_ns())?;
    crate::out::line(&n.id)?;
    Ok(())
}

/// `network ls`: the three built-in networks, then the named ones.
fn list(root: &Path, quiet: bool) -> Result<(), Error> {
    let named = networks::list(&husk_net::net_dir(root));
    if quiet {
        for n in ["bridge", "host", "none"]
            .into_iter()
            .chain(named.iter().map(|n| n.name.as_str()))
        {
            crate::out::line(n)?;
        }
        return Ok(());
    }
    crate::out::line(format!(
        "{:<14} {:<20} {:<8} {:<18} {}",
        "NETWORK ID", "NAME", "DRIVER", "SUBNET", "INTERNAL"
    ))?;
    let default = husk_net::default_network(root)
        .map(|d| d.subnet.to_string())
        .unwrap_or_else(|| "(first use)".into());
    for (id, name, driver, subnet, internal) in [
        ("-", "bridge", "bridge", default.as_str(), false),
        ("-", "host", "host", "", false),
        ("-", "none", "null", "", false),
    ] {
        crate::out::line(format!(
            "{id:<14} {name:<20} {driver:<8} {subnet:<18} {internal}"
        ))?;
    }
    for n in &named {
        crate::out::line(format!(
            "{:<14} {:<20} {:<8} {:<18} {}",
            &n.id[..12],
            n.name,
            "bridge",
            n.subnet.to_string(),
            n.internal
        ))?;
    }
    Ok(())
}

/// A container's store, its record, and its init's and monitor's pids when it runs.
type Target = (
    husk_containers::Store,
    husk_containers::Meta,
    Option<(i32, i32)>,
);

/// The detached container `word` (a running container's links change in place; a stopped
/// one's networks are read at its next start).
fn target(root: &Path, verb: &str, word: &str) -> Result<Target, Error> {
    let store = husk_containers::Store::for_root(root);
    let id = store.resolve(word)?;
    let meta = store.meta(&id)?;
    use husk_containers::store::Seen;
    let st = store.state(&id).unwrap_or_default();
    let running = match st.seen() {
        Seen::Running if meta.foreground.is_some() => {
            return Err(Error::Msg(format!(
                "network {verb} {word}: a foreground run's links are its husk's: run it with -d to change them while it runs"
            )));
        }
        Seen::Running => Some((st.pid, st.monitor_pid)),
        Seen::Restarting => {
            return Err(Error::Msg(format!(
                "network {verb} {word}: the container is restarting: try again once it runs"
            )));
        }
        _ => None,
    };
    Ok((store, meta, running))
}

fn save_meta(store: &husk_containers::Store, m: &husk_containers::Meta) -> Result<(), Error> {
    husk_containers::store::write_json(&store.ctr(&m.id).join("meta.json"), m)
}

/// `network connect NET CONTAINER`: a running container gets a link on NET now (eth0 with the
/// default route when it had no network, else the next ethN); every start leases on each of its
/// networks.
fn connect(
    root: &Path,
    network: &str,
    word: &str,
    alias: &[String],
    ip: Option<String>,
) -> Result<(), Error> {
    husk_runtime::fault::scope("connect");
    let name = if network == networks::DEFAULT {
        network.to_string()
    } else {
        networks::find(&husk_net::net_dir(root), network)?.name
    };
    let (store, mut meta, running) = target(root, "connect", word)?;
    if meta
        .bridge
        .iter()
        .chain(&meta.networks)
        .any(|b| b.network == name)
    {
        return Err(Error::Msg(format!(
            "network connect {name} {word}: already on {name}"
        )));
    }
    // Its own network namespace (none), not the host's or another container's.
    let spec = store.spec(&meta.id)?;
    let own_netns = spec.linux.as_ref().is_some_and(|l| {
        l.namespaces
            .iter()
            .any(|n| n.kind == "network" && n.path.is_none())
    });
    if !own_netns {
        return Err(Error::Msg(format!(
            "network connect {name} {word}: the container uses the host's or another container's network namespace"
        )));
    }
    let b = husk_containers::store::BridgeMeta {
        root: root.to_path_buf(),
        publish: vec![],
        network: name,
        names: (!meta.name.is_empty())
            .then(|| meta.name.clone())
            .into_iter()
            .chain(alias.iter().cloned())
            .collect(),
        ip,
        mac: None,
    };
    if let Some((pid, monitor)) = running {
        // A link that fails after its hosts file was written leaves that file kept (detach's),
        // a container on no network with nothing else to say where: recorded first.
        if meta.net_root().is_none() {
            meta.net_root = Some(root.to_path_buf());
            save_meta(&store, &meta)?;
        }
        // The monitor holds the lease: its exit (the container's) releases it with the rest.
        let (ifname, default_route) = husk_net::next_ifname(pid);
        let hostname = spec.hostname.clone().unwrap_or_default();
        let att = husk_containers::net::lease_more(
            &meta.id,
            &b,
            &hostname,
            Some(husk_net::ipam::holder(monitor as u32)),
            ifname,
            default_route,
        )?;
        let path = format!("/proc/{pid}/ns/net");
        let attached = std::fs::File::open(&path)
            .map_err(Error::io("open", &path))
            .and_then(|ns| att.attach(std::os::fd::AsFd::as_fd(&ns)))
            .and_then(|()| husk_runtime::fault::point("network.attached"));
        if let Err(e) = attached.and_then(|()| record_network(&store, &mut meta, b)) {
            let _ = husk_net::detach(root, &meta.id, &att.network.name);
            return Err(e);
        }
        return Ok(());
    }
    record_network(&store, &mut meta, b)
}

/// The first network is `bridge` in the record (its /etc/hosts is the bound one), the others
/// `networks`.
fn record_network(
    store: &husk_containers::Store,
    meta: &mut husk_containers::Meta,
    b: husk_containers::store::BridgeMeta,
) -> Result<(), Error> {
    if meta.bridge.is_none() {
        meta.bridge = Some(b);
    } else {
        meta.networks.push(b);
    }
    save_meta(store, meta)
}

/// `network disconnect NET CONTAINER`: a running container's link on NET goes now; its next
/// start leases on the networks left (none left: network none).
fn disconnect(root: &Path, network: &str, word: &str) -> Result<(), Error> {
    husk_runtime::fault::scope("disconnect");
    let (store, mut meta, running) = target(root, "disconnect", word)?;
    let on = |b: &husk_containers::store::BridgeMeta| {
        b.network == network
            || networks::find(&husk_net::net_dir(root), network).is_ok_and(|n| n.name == b.network)
    };
    let mut all: Vec<_> = meta
        .bridge
        .take()
        .into_iter()
        .chain(meta.networks.drain(..))
        .collect();
    let Some(i) = all.iter().position(on) else {
        return Err(Error::Msg(format!(
            "network disconnect {network} {word}: the container is not on {network}"
        )));
    };
    let gone = all.remove(i);
    if running.is_some() {
        husk_net::detach(root, &meta.id, &gone.network)?;
        husk_runtime::fault::point("network.detached")?;
    }
    let mut rest = all.into_iter();
    meta.bridge = rest.next();
    meta.networks = rest.collect();
    // The last one gone: the running container keeps its hosts file, released at its exit.
    if meta.bridge.is_none() && running.is_some() {
        meta.net_root = Some(gone.root);
    }
    save_meta(&store, &meta)
}

/// A detached container that names the network (stopped ones too: its next start joins it)
/// keeps it, as docker's containers do; husk-net's own check covers the running ones.
fn refuse_if_kept(root: &Path, key: &str) -> Result<(), Error> {
    let name = networks::find(&husk_net::net_dir(root), key)?.name;
    let store = husk_containers::Store::for_root(root);
    let users: Vec<String> = store
        .ids()
        .into_iter()
        .filter_map(|id| store.meta(&id).ok())
        .filter(|m| m.bridge.as_ref().is_some_and(|b| b.network == name))
        .map(|m| {
            if m.name.is_empty() {
                m.id[..12].to_string()
            } else {
                m.name
            }
        })
        .collect();
    if users.is_empty() {
        return Ok(());
    }
    Err(Error::Msg(format!(
        "network {name} is in use by container{} {}: remove {} first",
        if users.len() == 1 { "" } else { "s" },
        users.join(", "),
        if users.len() == 1 { "it" } else { "them" }
    )))
}

fn inspect_json(root: &Path, n: &Network) -> Result<serde_json::Value, Error> {
    let containers: serde_json::Map<String, serde_json::Value> =
        husk_net::endpoints(root, &n.name)?
            .into_iter()
            .map(|e| {
                (
                    e.id.clone(),
                    serde_json::json!({
                        "Name": e.names.first().cloned().unwrap_or_default(),
                        "Aliases": e.names,
                        "IPv4Address": format!("{}/{}", e.ip, n.subnet.prefix),
                    }),
                )
            })
            .collect();
    Ok(serde_json::json!({
        "Name": n.name,
        "Id": n.id,
        "Created": husk_containers::time::rfc3339(n.created_ns),
        "Driver": "bridge",
        "Internal": n.internal,
        "IPAM": {"Driver": "default", "Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}]},
        "Options": {"com.docker.network.bridge.name": n.bridge, "com.docker.network.driver.mtu": n.mtu.to_string()},
        "Containers": containers,
    }))
}

/// `husk port CONTAINER [PORT[/PROTO]]`: docker's lines, `80/tcp -> 0.0.0.0:49153`.
pub fn port(root: &Path, container: &str, filter: Option<&str>) -> Result<i32, Error> {
    // A foreground container's lease carries its name (its id); a detached one's its full id.
    let mut published = husk_net::published_of(root, container)?;
    if published.is_none()
        && let Ok((_, id)) = crate::containers::exec_target(root, container)
    {
        published = husk_net::published_of(root, &id)?;
    }
    let Some(published) = published else {
        return Err(Error::Msg(format!(
            "port {container}: no running container of that id or name on a bridge network"
        )));
    };
    let filter = filter.map(|f| {
        if f.contains('/') {
            f.to_string()
        } else {
            format!("{f}/tcp")
        }
    });
    let mut shown = 0;
    for p in published {
        let key = format!("{}/{}", p.port, p.proto);
        if filter.as_ref().is_some_and(|f| *f != key) {
            continue;
        }
        let ip = p.host_ip.map(|i| i.to_string()).unwrap_or("0.0.0.0".into());
        crate::out::line(if filter.is_some() {
            format!("{ip}:{}", p.host_port)
        } else {
            format!("{key} -> {ip}:{}", p.host_port)
        })?;
        shown += 1;
    }
    if shown == 0
        && let Some(f) = filter
    {
        return Err(Error::Msg(format!(
            "port {container} {f}: no public port published for {f}"
        )));
    }
    Ok(0)
}
