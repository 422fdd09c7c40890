//! `--network bridge` or a named network (husk-net) for the front end's containers, foreground
//! or detached: a lease per run, and /etc/hosts bound from the file husk-net keeps for the
//! container (its address for its host name, and on a named network the others' names). The
//! veth is made once init's network namespace exists (`Attachment::attach` as
//! launch_plan_with's step).

use crate::store::BridgeMeta;
use husk_runtime::Error;
use husk_runtime::launch::StateEntry;
use husk_spec::Plan;
use std::path::Path;

/// Leases an address on `b.network` (and publishes `b.publish`) for container `id` under
/// `b.root`'s network state, and points the plan's /etc/hosts bind at the container's hosts
/// file (the `hosts` entry of `files`, which launch would have written, goes).
pub fn lease(
    id: &str,
    b: &BridgeMeta,
    files: &mut Vec<(String, StateEntry)>,
    plan: &mut Plan,
    hostname: &str,
) -> Result<husk_net::Attachment, Error> {
    let hosts = files
        .iter()
        .find_map(|(n, e)| match e {
            StateEntry::File(t) if n == "hosts" => Some(String::from_utf8_lossy(t).into_owned()),
            _ => None,
        })
        .unwrap_or_default();
    let t = std::time::Instant::now();
    let att = husk_net::allocate(&b.root, &request(id, b, hosts, hostname, None)?)?;
    husk_runtime::explain::step(|| {
        format!(
            "network: leased {} on {} ({}): lock, stale leases, address, hosts files ({} µs)",
            att.ip,
            att.network.name,
            att.network.bridge,
            t.elapsed().as_micros()
        )
    });
    // The embedded default has no /etc/hosts bind: it shows the host's own.
    if let Some(op) = plan
        .mounts
        .iter_mut()
        .find(|m| m.dest == Path::new("etc/hosts"))
    {
        op.source = Some(att.hosts_file.clone());
        files.retain(|(n, _)| n != "hosts");
    }
    Ok(att)
}

/// One more network for container `id` (`network connect`, or the networks after the first at
/// a start): a lease held by `holder` (a running container's monitor; None: this process), the
/// link named `ifname` in the container, with the default route only when `default_route`. Its
/// /etc/hosts is the first network's file, which names this network's others too.
pub fn lease_more(
    id: &str,
    b: &BridgeMeta,
    hostname: &str,
    holder: Option<String>,
    ifname: String,
    default_route: bool,
) -> Result<husk_net::Attachment, Error> {
    let t = std::time::Instant::now();
    let mut att = husk_net::allocate(&b.root, &request(id, b, String::new(), hostname, holder)?)?;
    att.ifname = ifname;
    att.default_route = default_route;
    husk_runtime::explain::step(|| {
        format!(
            "network: leased {} on {} ({}) for {} ({} µs)",
            att.ip,
            att.network.name,
            att.network.bridge,
            att.ifname,
            t.elapsed().as_micros()
        )
    });
    Ok(att)
}

fn request(
    id: &str,
    b: &BridgeMeta,
    hosts: String,
    hostname: &str,
    holder: Option<String>,
) -> Result<husk_net::Request, Error> {
    let mut publish = vec![];
    for p in &b.publish {
        publish.extend(husk_net::Publish::parse(p)?);
    }
    Ok(husk_net::Request {
        network: b.network.clone(),
        id: id.to_string(),
        names: b.names.clone(),
        publish,
        ip: match &b.ip {
            Some(ip) => Some(ip.parse().map_err(|_| {
                Error::Msg(format!("--ip {ip}: not an IPv4 address (IPv6: not yet)"))
            })?),
            None => None,
        },
        mac: b.mac.as_deref().map(husk_net::parse_mac).transpose()?,
        hosts,
        hostname: hostname.to_string(),
        holder,
    })
}
