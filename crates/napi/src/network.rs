//! Taking over the interfaces of a container's network namespace for the
//! sandbox's own stack (the `sandbox` network mode).
//!
//! Done here, by the caller (root), before the sandbox starts: the sentry
//! runs in a user namespace that holds no capability over a namespace the
//! engine made, and its seccomp filter refuses `socket()`. On a thread
//! that joins the namespace, for each Ethernet link: read its MAC, MTU,
//! addresses and default routes (rtnetlink), open an AF_PACKET socket
//! bound to it (non-blocking, ignoring its own outgoing frames), then
//! remove its addresses so the host kernel no longer answers for them (no
//! ARP replies, no resets for connections the sandbox serves). The
//! sockets are handed to the sandbox with the links' description.

use control::network::TakenLink;
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkLayerType, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The main routing table's number.
const RT_TABLE_MAIN: u8 = 254;
/// setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING).
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// Takes over every Ethernet link of the namespace `netns`.
pub fn take_over(netns: &OwnedFd) -> io::Result<Vec<(TakenLink, OwnedFd)>> {
    let ns = netns.try_clone()?;
    std::thread::spawn(move || {
        // SAFETY: setns on a namespace descriptor; only this thread moves.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        take_over_here()
    })
    .join()
    .map_err(|_| io::Error::other("the network take-over thread panicked"))?
}

struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    fn new() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Sends `msg` and collects the answers until the dump ends or the
    /// request is acknowledged.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        req.finalize();
        let mut buf = vec![0; req.buffer_len()];
        req.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..]).map_err(|e| io::Error::other(format!("rtnetlink: {e}")))?;
                let len = m.header.length as usize;
                match m.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(c) => Err(io::Error::from_raw_os_error(-c.get())),
                        };
                    }
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
            if flags & NLM_F_DUMP == 0 && flags & NLM_F_ACK == 0 {
                return Ok(out);
            }
        }
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn take_over_here() -> io::Result<Vec<(TakenLink, OwnedFd)>> {
    let mut nl = Rtnl::new()?;
    let links = nl.request(RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_DUMP)?;
    let addrs = nl.request(RouteNetlinkMessage::GetAddress(AddressMessage::default()), NLM_F_DUMP)?;
    let routes = nl.request(RouteNetlinkMessage::GetRoute(RouteMessage::default()), NLM_F_DUMP)?;
    let mut out = Vec::new();
    for l in links {
        let RouteNetlinkMessage::NewLink(l) = l else { continue };
        if l.header.link_layer_type != LinkLayerType::Ether {
            continue;
        }
        let index = l.header.index;
        let mut taken = TakenLink { name: String::new(), mac: [0; 6], mtu: 1500, addrs: Vec::new(), gateways: Vec::new() };
        for a in &l.attributes {
            match a {
                LinkAttribute::IfName(n) => taken.name = n.clone(),
                LinkAttribute::Address(m) if m.len() == 6 => taken.mac.copy_from_slice(m),
                LinkAttribute::Mtu(m) => taken.mtu = *m,
                _ => {}
            }
        }
        let mine: Vec<AddressMessage> = addrs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => Some(a.clone()),
                _ => None,
            })
            .collect();
        for a in &mine {
            let ip = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let ip = ip.or_else(|| {
                a.attributes.iter().find_map(|x| match x {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(ip) = ip {
                taken.addrs.push((ip, a.header.prefix_len));
            }
        }
        for r in &routes {
            let RouteNetlinkMessage::NewRoute(r) = r else { continue };
            if r.header.table != RT_TABLE_MAIN || r.header.destination_prefix_length != 0 {
                continue;
            }
            let oif = r.attributes.iter().find_map(|x| if let RouteAttribute::Oif(i) = x { Some(*i) } else { None });
            let gw = r.attributes.iter().find_map(|x| if let RouteAttribute::Gateway(g) = x { ip_of(g) } else { None });
            if let (Some(i), Some(g)) = (oif, gw) {
                if i == index {
                    taken.gateways.push(g);
                }
            }
        }
        let fd = packet_socket(index)?;
        // The sandbox answers for these addresses from now on.
        for a in mine {
            nl.request(RouteNetlinkMessage::DelAddress(a), NLM_F_ACK)?;
        }
        out.push((taken, fd));
    }
    Ok(out)
}

/// An AF_PACKET socket for every frame of link `index`.
fn packet_socket(index: u32) -> io::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: socket has no memory-safety preconditions.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, proto as i32) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socket just returned fd, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = index as i32;
    // SAFETY: sll is a valid sockaddr_ll of the given size.
    if unsafe { libc::bind(fd.as_raw_fd(), (&sll as *const libc::sockaddr_ll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let one: libc::c_int = 1;
    // SAFETY: passes a valid int of its size. Best effort: older kernels
    // lack the option, and frames we send then come back to us too.
    unsafe { libc::setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, (&one as *const libc::c_int).cast(), 4) };
    Ok(fd)
}
