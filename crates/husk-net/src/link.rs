//! Links, addresses and routes over rtnetlink (what `ip link/addr/route` did, without their
//! exec()s): the bridge, and a container's veth pair made, enslaved, moved and configured.

use crate::netlink::{self, Msg, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, Socket};
use husk_runtime::Error;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_GATEWAY: u16 = 5;
const RTA_OIF: u16 = 4;
const IFF_UP: u32 = 1;
const AF_INET: u8 = 2;

/// struct ifinfomsg: family, type, index, flags, change.
fn ifinfo(index: i32, up: bool) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    if up {
        b[8..12].copy_from_slice(&IFF_UP.to_ne_bytes());
        b[12..16].copy_from_slice(&IFF_UP.to_ne_bytes());
    }
    b
}

/// rtnetlink in the calling thread's network namespace.
pub struct Rtnl(Socket);

impl Rtnl {
    pub fn open() -> Result<Rtnl, Error> {
        Socket::open(netlink::NETLINK_ROUTE).map(Rtnl)
    }

    /// rtnetlink in another network namespace (`/proc/PID/ns/net`): the socket is made there
    /// (a socket belongs to the namespace it was made in) and this thread comes back at once.
    pub fn open_in(ns: std::os::fd::BorrowedFd<'_>) -> Result<Rtnl, Error> {
        let own = std::fs::File::open("/proc/thread-self/ns/net")
            .map_err(Error::io("open", "/proc/thread-self/ns/net"))?;
        husk_sys::process::setns(ns, libc::CLONE_NEWNET)
            .map_err(Error::io("setns", "the container's network namespace"))?;
        let sock = husk_sys::net::netlink_socket(netlink::NETLINK_ROUTE);
        husk_sys::process::setns(own.as_fd(), libc::CLONE_NEWNET)
            .map_err(Error::io("setns back", "/proc/thread-self/ns/net"))?;
        Socket::from_fd(sock.map_err(Error::io("socket", "AF_NETLINK"))?).map(Rtnl)
    }

    /// A link's index and MTU, or None when there is no such link.
    pub fn get(&mut self, name: &str) -> Result<Option<(i32, u32)>, Error> {
        let mut m = Msg::new(
            RTM_GETLINK,
            NLM_F_ACK,
            &ifinfo(0, false),
            format!("look up link {name}"),
        );
        m.str(IFLA_IFNAME, name);
        let replies = match self.0.transact(&mut [m]) {
            Ok(r) => r,
            Err(f) if f.errno == Some(libc::ENODEV) => return Ok(None),
            Err(f) => return Err(f.error),
        };
        Ok(replies
            .iter()
            .find(|r| r.ty == RTM_NEWLINK && r.body.len() >= 16)
            .map(|r| {
                let index = i32::from_ne_bytes(r.body[4..8].try_into().expect("4 bytes"));
                let mtu = netlink::attrs(&r.body[16..])
                    .into_iter()
                    .find(|(t, _)| *t == IFLA_MTU)
                    .and_then(|(_, v)| Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?)))
                    .unwrap_or(1500);
                (index, mtu)
            }))
    }

    fn index(&mut self, name: &str) -> Result<i32, Error> {
        self.get(name)?
            .map(|(i, _)| i)
            .ok_or_else(|| Error::Msg(format!("network: link {name}: ENODEV (no such device)")))
    }

    /// Deletes a link (a veth takes its peer along); one that is already gone is no error.
    pub fn delete(&mut self, name: &str) -> Result<(), Error> {
        let mut m = Msg::new(
            RTM_DELLINK,
            NLM_F_ACK,
            &ifinfo(0, false),
            format!("delete link {name}"),
        );
        m.str(IFLA_IFNAME, name);
        match self.0.transact(&mut [m]) {
            Err(f) if f.errno == Some(libc::ENODEV) => Ok(()),
            r => r.map(drop).map_err(Error::from),
        }
    }

    fn addr(index: i32, ip: Ipv4Addr, prefix: u8, what: &str) -> Msg {
        let mut fixed = [0u8; 8];
        fixed[0] = AF_INET;
        fixed[1] = prefix;
        fixed[4..8].copy_from_slice(&(index as u32).to_ne_bytes());
        let mut m = Msg::new(
            RTM_NEWADDR,
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &fixed,
            format!("add address {ip}/{prefix} to {what}"),
        );
        m.attr(IFA_LOCAL, &ip.octets())
            .attr(IFA_ADDRESS, &ip.octets());
        m
    }

    /// `ip link add NAME mtu MTU type bridge; ip addr add GW/PREFIX dev NAME; ip link set NAME up`.
    pub fn create_bridge(
        &mut self,
        name: &str,
        mtu: u32,
        gw: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), Error> {
        let mut m = Msg::new(
            RTM_NEWLINK,
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &ifinfo(0, true),
            format!("create bridge {name}"),
        );
        m.str(IFLA_IFNAME, name).u32(IFLA_MTU, mtu);
        m.begin(IFLA_LINKINFO).str(IFLA_INFO_KIND, "bridge").end();
        self.0.transact(&mut [m])?;
        let r = self.index(name).and_then(|i| {
            self.0
                .transact(&mut [Self::addr(i, gw, prefix, name)])
                .map_err(Error::from)
        });
        if let Err(e) = r {
            let _ = self.delete(name);
            return Err(e);
        }
        Ok(())
    }
}

/// A container's link: the host end on a bridge, the other end `eth0` in the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Veth {
    pub host: String,
    pub bridge: String,
    pub mtu: u32,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// Its name in the container, and whether the default route goes through it.
    pub ifname: String,
    pub default_route: bool,
}

/// docker's rule for a MAC made from the address (02:42 and the IPv4 bytes, here 02:68): a
/// reused address keeps its MAC, so neighbour entries left from its last holder stay right.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x68, o[0], o[1], o[2], o[3]]
}

impl Veth {
    /// Makes the pair with `eth0` already in the network namespace `ns` (with its MAC),
    /// the host end enslaved and up, then gives `eth0` its address and default route from a
    /// socket made inside that namespace. Each part is narrated
    /// under `--explain`. On failure the pair is deleted.
    pub fn attach(&self, ns: std::os::fd::BorrowedFd<'_>) -> Result<(), Error> {
        let mut host = Rtnl::open()?;
        let master = crate::explain(&format!("look up bridge {}", self.bridge), || {
            host.index(&self.bridge)
        })?;
        let create = |host: &mut Rtnl| host.0.transact(&mut [self.new_pair(master, ns)]).map(drop);
        crate::explain(
            &format!("RTM_NEWLINK veth {} ↔ {}", self.host, self.ifname),
            || {
                match create(&mut host) {
                    // The name is the address's, which this container holds: a pair of that
                    // address's last holder whose namespace the kernel has not yet torn down
                    // (it is not deleted at exit: see `Attachment::release`).
                    Err(f) if f.errno == Some(libc::EEXIST) => {
                        host.delete(&self.host)?;
                        create(&mut host).map_err(Error::from)
                    }
                    r => r.map_err(Error::from),
                }
            },
        )?;
        let inside = (|| {
            husk_runtime::fault::point("net.veth")?;
            let mut c: Rtnl = crate::explain("rtnetlink socket in the container's netns", || {
                Rtnl::open_in(ns)
            })?;
            let eth = c.index(&self.ifname)?;
            let mut gw = [0u8; 12];
            gw[0] = AF_INET;
            gw[4] = 254; // RT_TABLE_MAIN
            gw[5] = 3; // RTPROT_BOOT, as `ip route add`
            gw[6] = 0; // RT_SCOPE_UNIVERSE
            gw[7] = 1; // RTN_UNICAST
            let mut route = Msg::new(
                RTM_NEWROUTE,
                NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                &gw,
                format!("add default route via {} on {}", self.gateway, self.ifname),
            );
            route
                .attr(RTA_GATEWAY, &self.gateway.octets())
                .u32(RTA_OIF, eth as u32);
            let up = Msg::new(
                RTM_NEWLINK,
                NLM_F_ACK,
                &ifinfo(eth, true),
                format!("set {} up", self.ifname),
            );
            let mut msgs = vec![up, Rtnl::addr(eth, self.ip, self.prefix, &self.ifname)];
            // A second network's link reaches its own subnet only; the first keeps the way out.
            let via = if self.default_route {
                msgs.push(route);
                format!(", RTM_NEWROUTE default via {}", self.gateway)
            } else {
                String::new()
            };
            crate::explain(
                &format!(
                    "{} up, RTM_NEWADDR {}/{}{via}",
                    self.ifname, self.ip, self.prefix
                ),
                || c.0.transact(&mut msgs),
            )
            .map_err(Error::from)?;
            husk_runtime::fault::point("net.addressed")
        })();
        if let Err(e) = inside {
            let _ = host.delete(&self.host);
            return Err(e);
        }
        Ok(())
    }

    fn new_pair(&self, master: i32, ns: std::os::fd::BorrowedFd<'_>) -> Msg {
        let mut m = Msg::new(
            RTM_NEWLINK,
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &ifinfo(0, true),
            format!(
                "create veth {} on {} (peer {} in the container)",
                self.host, self.bridge, self.ifname
            ),
        );
        m.str(IFLA_IFNAME, &self.host)
            .u32(IFLA_MTU, self.mtu)
            .u32(IFLA_MASTER, master as u32);
        m.begin(IFLA_LINKINFO)
            .str(IFLA_INFO_KIND, "veth")
            .begin(IFLA_INFO_DATA);
        // The peer: its own ifinfomsg, then its attributes. Not up yet: veth_open refuses
        // (ENOTCONN) until the pair is complete.
        m.begin(VETH_INFO_PEER).raw(&ifinfo(0, false));
        m.str(IFLA_IFNAME, &self.ifname)
            .u32(IFLA_MTU, self.mtu)
            .attr(IFLA_ADDRESS, &self.mac)
            .u32(IFLA_NET_NS_FD, ns.as_raw_fd() as u32);
        m.end().end().end();
        m
    }
}
