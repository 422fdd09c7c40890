//! The `nft` binary, and what /proc tells about this network namespace (/proc/net is
//! the reader's namespace; /sys/class/net would be the one sysfs was mounted in).

use crate::Subnet;
use husk_runtime::Error;
use std::io::Write;
use std::process::{Command, Stdio};

fn feed(mut cmd: Command, what: &str, script: &str) -> Result<(), Error> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::io("spawn", what))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(script.as_bytes())
            .map_err(Error::io("write", what))?;
    }
    let out = child.wait_with_output().map_err(Error::io("wait", what))?;
    if !out.status.success() {
        return Err(Error::Msg(format!(
            "{what} ({}) failed: {}; it was given:\n{script}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// `nft -f -`.
pub fn nft(script: &str) -> Result<(), Error> {
    let mut c = Command::new("nft");
    c.args(["-f", "-"]);
    crate::explain("nft -f", || feed(c, "nft -f", script))
}

pub fn link_exists(name: &str) -> bool {
    std::fs::read_to_string("/proc/net/dev")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(':').next().map(str::trim) == Some(name))
}

/// This namespace's IPv4 routes as subnets (/proc/net/route: little-endian hex).
pub fn routes() -> Vec<Subnet> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dst = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            let prefix = mask.count_ones() as u8;
            // The default route overlaps everything and says nothing about clashes.
            (prefix > 0).then(|| {
                let ip = std::net::Ipv4Addr::from(u32::from_be(dst));
                Subnet::parse(&format!("{ip}/{}", prefix.clamp(8, 30))).ok()
            })?
        })
        .collect()
}

/// The MTU of the interface carrying the default route (1500 without one).
pub fn default_route_mtu() -> u32 {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let dev = text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"00000000") && f.get(7) == Some(&"00000000")).then(|| f[0].to_string())
    });
    dev.and_then(|d| crate::link::Rtnl::open().ok()?.get(&d).ok()?)
        .map(|(_, mtu)| mtu)
        .unwrap_or(1500)
}
