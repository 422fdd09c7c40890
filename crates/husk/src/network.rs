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
        NetworkCmd::Create(c) => {
            if c.driver != "bridge" {
                return Err(Error::Msg(format!(
                    "network create -d {}: only the bridge driver exists in husk",
                    c.driver
                )));
            }
            let o =
                networks::CreateOpts {
                    subnet: c
                        .subnet
                        .as_deref()
                        .map(husk_net::Subnet::parse)
                        .transpose()?,
                    gateway: match &c.gateway {
                        Some(g) => Some(g.parse().map_err(|_| {
                            Error::Msg(format!("--gateway {g}: not an IPv4 address"))
                        })?),
                        None => None,
                    },
                    internal: c.internal,
                };
            let n = husk_net::create_network(root, &c.name, &o, husk_containers::time::now_ns())?;
            crate::out::line(&n.id)?;
        }
        NetworkCmd::Ls { quiet } => {
            let named = networks::list(&husk_net::net_dir(root));
            if *quiet {
                for n in ["bridge", "host", "none"]
                    .into_iter()
                    .chain(named.iter().map(|n| n.name.as_str()))
                {
                    crate::out::line(n)?;
                }
                return Ok(0);
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
        }
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
