//! `--network bridge` (husk-net) for the front end's containers, foreground or detached: a lease
//! per run, with /etc/hosts naming the leased address. The veth is made once init's network
//! namespace exists (`Attachment::attach` as launch_plan_with's step).

use husk_runtime::Error;
use husk_runtime::launch::StateEntry;
use std::path::Path;

/// Leases an address (and publishes `publish`) for container `id` under `root`'s network
/// state, and writes it into the `hosts` entry of `files` in place of the 127.0.1.1 line.
pub fn lease(
    root: &Path,
    id: &str,
    publish: &[String],
    files: &mut [(String, StateEntry)],
    hostname: &str,
) -> Result<husk_net::Attachment, Error> {
    let publish = publish
        .iter()
        .map(|p| husk_net::Publish::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let att = husk_net::allocate(root, id, &publish)?;
    husk_runtime::explain::step(|| format!("network: leased {} on {}", att.ip, husk_net::BRIDGE));
    for (name, entry) in files.iter_mut() {
        if name == "hosts"
            && let StateEntry::File(bytes) = entry
        {
            let text = String::from_utf8_lossy(bytes).replace(
                &format!("127.0.1.1\t{hostname}\n"),
                &format!("{}\t{hostname}\n", att.ip),
            );
            *bytes = text.into_bytes();
        }
    }
    Ok(att)
}
