//! AF_NETLINK with NETLINK_ROUTE: what programs read about the sandbox's
//! network (`ip link`, `ip addr`, `ip route`, glibc's getifaddrs,
//! if_nameindex and getaddrinfo's AI_ADDRCONFIG probe) answered from the
//! sandbox's own stack. Requests are answered at once, into the socket's
//! receive queue; changes (`ip addr add`, …) are refused with EOPNOTSUPP,
//! and no multicast events are sent. Messages are built with
//! netlink-packet-route.

use super::consts::*;
use super::socket::{RecvMsg, SendMsg, Socket, SocketFamily};
use super::sockopt;
use crate::fs::events::*;
use crate::fs::{anon, FileOps, OpenFile};
use crate::task::TaskCtx;
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use netlink_packet_core::{DoneMessage, ErrorMessage, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_MULTIPART};
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope, CacheInfo};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage, State};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::num::NonZeroI32;
use std::sync::{Arc, Mutex};

pub const AF_NETLINK: i32 = 16;
const NETLINK_ROUTE: i32 = 0;
const SOCK_RAW: i32 = 3;
const SOL_NETLINK: i32 = 270;
/// The main routing table.
const RT_TABLE_MAIN: u8 = 254;

pub struct NetlinkFamily;

impl SocketFamily for NetlinkFamily {
    fn domain(&self) -> i32 {
        AF_NETLINK
    }

    fn socket(&self, _t: &TaskCtx, stype: i32, protocol: i32) -> SysResult<Arc<dyn Socket>> {
        if stype != SOCK_RAW && stype != SOCK_DGRAM {
            return Err(Errno::ESOCKTNOSUPPORT);
        }
        if protocol != NETLINK_ROUTE {
            return Err(Errno::EPROTONOSUPPORT);
        }
        Ok(Arc::new(NetlinkSocket { stype, state: Mutex::default(), queue: WaitQueue::new(), ino: anon::next_ino() }))
    }
}

#[derive(Default)]
struct State_ {
    /// nl_pid: ours once bound (or after the first send), 0 before.
    port: u32,
    /// Answers waiting to be read, one datagram each.
    rx: VecDeque<Vec<u8>>,
}

pub struct NetlinkSocket {
    stype: i32,
    state: Mutex<State_>,
    queue: WaitQueue,
    ino: u64,
}

fn sockaddr_nl(port: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    v.extend_from_slice(&(AF_NETLINK as u16).to_ne_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&port.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v
}

impl NetlinkSocket {
    /// The port a socket gets when it does not pick one: the caller's
    /// thread-group id, as Linux gives the first socket of a process.
    fn autobind(&self, t: &TaskCtx) -> u32 {
        let mut st = self.state.lock().unwrap();
        if st.port == 0 {
            st.port = t.pid_seen(t.tgid()) as u32;
        }
        st.port
    }

    fn answer(&self, t: &TaskCtx, data: &[u8]) -> Vec<Vec<u8>> {
        let port = self.autobind(t);
        let mut out = Vec::new();
        let mut off = 0;
        while off + 16 <= data.len() {
            let len = u32::from_ne_bytes(data[off..off + 4].try_into().unwrap()) as usize;
            if len < 16 || off + len > data.len() {
                break;
            }
            let raw = &data[off..off + len];
            let hdr = header_of(raw);
            match parse(raw) {
                Some(m) => out.extend(respond(t, m, port)),
                None => out.push(error(&hdr, raw, port, Errno::EINVAL)),
            }
            off += (len + 3) & !3;
        }
        out
    }
}

/// A request, as netlink-packet-route reads it. Dump requests may carry
/// only a `struct rtgenmsg` (the family byte) instead of the full header
/// of their type, as busybox and older programs send them: those are
/// widened first. The parser is also kept from taking the sentry down on
/// malformed input.
fn parse(raw: &[u8]) -> Option<NetlinkMessage<RouteNetlinkMessage>> {
    let hdr = header_of(raw);
    // RTM_GETLINK, GETADDR, GETROUTE, GETNEIGH, GETRULE, GETQDISC and the
    // size of their full headers.
    let full = match hdr.message_type {
        18 => 16,
        22 => 8,
        26 | 34 => 12,
        30 => 12,
        38 => 20,
        _ => 0,
    };
    let mut buf = raw.to_vec();
    if full > 0 && buf.len() < 16 + full {
        buf.resize(16 + full, 0);
        buf[0..4].copy_from_slice(&((16 + full) as u32).to_ne_bytes());
    }
    std::panic::catch_unwind(|| NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf).ok()).ok().flatten()
}

fn header_of(raw: &[u8]) -> NetlinkHeader {
    let mut h = NetlinkHeader::default();
    h.length = u32::from_ne_bytes(raw[0..4].try_into().unwrap());
    h.message_type = u16::from_ne_bytes(raw[4..6].try_into().unwrap());
    h.flags = u16::from_ne_bytes(raw[6..8].try_into().unwrap());
    h.sequence_number = u32::from_ne_bytes(raw[8..12].try_into().unwrap());
    h.port_number = u32::from_ne_bytes(raw[12..16].try_into().unwrap());
    h
}

fn encode(msg: RouteNetlinkMessage, seq: u32, port: u32, flags: u16) -> Vec<u8> {
    control(NetlinkPayload::from(msg), seq, port, flags)
}

fn control(payload: NetlinkPayload<RouteNetlinkMessage>, seq: u32, port: u32, flags: u16) -> Vec<u8> {
    let mut h = NetlinkHeader::default();
    h.sequence_number = seq;
    h.port_number = port;
    h.flags = flags;
    let mut m = NetlinkMessage::new(h, payload);
    m.finalize();
    let mut buf = vec![0; m.buffer_len()];
    m.serialize(&mut buf);
    buf
}

/// NLMSG_ERROR for `req` (errno 0: an acknowledgement).
fn error(hdr: &NetlinkHeader, raw: &[u8], port: u32, e: Errno) -> Vec<u8> {
    let mut em = ErrorMessage::default();
    em.code = NonZeroI32::new(-e.0);
    // The request's header goes back in the error (its payload too, unless
    // NETLINK_CAP_ACK; Linux sends only the header on success).
    em.header = raw[..16.min(raw.len())].to_vec();
    control(NetlinkPayload::Error(em), hdr.sequence_number, port, 0)
}

fn respond(t: &TaskCtx, m: NetlinkMessage<RouteNetlinkMessage>, port: u32) -> Vec<Vec<u8>> {
    let seq = m.header.sequence_number;
    let dump = m.header.flags & NLM_F_DUMP == NLM_F_DUMP;
    let ack = m.header.flags & netlink_packet_core::NLM_F_ACK != 0;
    let mut raw = vec![0; m.buffer_len()];
    m.serialize(&mut raw);
    let links = t.kernel().net().interfaces();
    let answers: Result<Vec<RouteNetlinkMessage>, Errno> = match &m.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetLink(q)) => {
            let name = q.attributes.iter().find_map(|a| if let LinkAttribute::IfName(n) = a { Some(n.clone()) } else { None });
            let found: Vec<_> = links.iter().filter(|l| dump || (q.header.index == l.index || name.as_deref() == Some(&l.name))).map(link_message).collect();
            if !dump && found.is_empty() {
                Err(Errno::ENODEV)
            } else {
                Ok(found.into_iter().map(RouteNetlinkMessage::NewLink).collect())
            }
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetAddress(q)) => {
            let fam = q.header.family;
            Ok(links.iter().flat_map(address_messages).filter(|a| fam == AddressFamily::Unspec || a.header.family == fam).map(RouteNetlinkMessage::NewAddress).collect())
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(q)) => {
            let fam = q.header.address_family;
            Ok(links.iter().flat_map(route_messages).filter(|r| fam == AddressFamily::Unspec || r.header.address_family == fam).map(RouteNetlinkMessage::NewRoute).collect())
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetNeighbour(_) | RouteNetlinkMessage::GetRule(_) | RouteNetlinkMessage::GetQueueDiscipline(_)) if dump => Ok(Vec::new()),
        // Changing the sandbox's links is not served.
        _ => Err(Errno::EOPNOTSUPP),
    };
    let hdr = header_of(&raw);
    match answers {
        Err(e) => vec![error(&hdr, &raw, port, e)],
        Ok(msgs) if dump => {
            // One datagram: every answer, then NLMSG_DONE.
            let mut all = Vec::new();
            for a in msgs {
                all.extend(encode(a, seq, port, NLM_F_MULTIPART));
            }
            all.extend(control(NetlinkPayload::Done(DoneMessage::default()), seq, port, NLM_F_MULTIPART));
            vec![all]
        }
        Ok(msgs) => {
            let mut out: Vec<Vec<u8>> = msgs.into_iter().map(|a| encode(a, seq, port, 0)).collect();
            if ack {
                out.push(error(&hdr, &raw, port, Errno(0)));
            }
            out
        }
    }
}

fn link_message(l: &netstack::LinkInfo) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = l.index;
    let up = LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp;
    match l.mac {
        None => {
            m.header.link_layer_type = LinkLayerType::Loopback;
            m.header.flags = up | LinkFlags::Loopback;
            m.attributes.push(LinkAttribute::Address(vec![0; 6]));
            m.attributes.push(LinkAttribute::Broadcast(vec![0; 6]));
        }
        Some(mac) => {
            m.header.link_layer_type = LinkLayerType::Ether;
            m.header.flags = up | LinkFlags::Broadcast | LinkFlags::Multicast;
            m.attributes.push(LinkAttribute::Address(mac.to_vec()));
            m.attributes.push(LinkAttribute::Broadcast(vec![0xff; 6]));
        }
    }
    m.attributes.push(LinkAttribute::IfName(l.name.clone()));
    m.attributes.push(LinkAttribute::Mtu(l.mtu));
    m.attributes.push(LinkAttribute::TxQueueLen(1000));
    m.attributes.push(LinkAttribute::Qdisc("noqueue".into()));
    m.attributes.push(LinkAttribute::Group(0));
    // Linux reports loopback's operational state as unknown.
    m.attributes.push(LinkAttribute::OperState(if l.mac.is_none() { State::Unknown } else { State::Up }));
    m
}

fn address_messages(l: &netstack::LinkInfo) -> Vec<AddressMessage> {
    l.addrs
        .iter()
        .map(|(ip, len)| {
            let mut m = AddressMessage::default();
            m.header.family = if ip.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
            m.header.prefix_len = *len;
            m.header.index = l.index;
            m.header.scope = if ip.is_loopback() {
                AddressScope::Host
            } else if matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80) {
                AddressScope::Link
            } else {
                AddressScope::Universe
            };
            m.header.flags = AddressHeaderFlags::Permanent;
            m.attributes.push(AddressAttribute::Address(*ip));
            if ip.is_ipv4() {
                m.attributes.push(AddressAttribute::Local(*ip));
                m.attributes.push(AddressAttribute::Label(l.name.clone()));
            }
            // Permanent: valid and preferred forever.
            let mut forever = CacheInfo::default();
            forever.ifa_preferred = u32::MAX;
            forever.ifa_valid = u32::MAX;
            m.attributes.push(AddressAttribute::CacheInfo(forever));
            m
        })
        .collect()
}

fn subnet(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len as u32) };
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len as u32) };
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// The main table as Linux fills it: a route to each non-loopback link's
/// subnets, and the default routes.
fn route_messages(l: &netstack::LinkInfo) -> Vec<RouteMessage> {
    if l.mac.is_none() {
        return Vec::new();
    }
    let base = |v6: bool| {
        let mut m = RouteMessage::default();
        m.header.address_family = if v6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
        m.header.table = RT_TABLE_MAIN;
        m.header.kind = RouteType::Unicast;
        m.attributes.push(RouteAttribute::Oif(l.index));
        m
    };
    let mut out = Vec::new();
    for (ip, len) in &l.addrs {
        let mut m = base(ip.is_ipv6());
        m.header.destination_prefix_length = *len;
        m.header.protocol = RouteProtocol::Kernel;
        m.header.scope = RouteScope::Link;
        m.attributes.push(RouteAttribute::Destination(RouteAddress::from(subnet(*ip, *len))));
        if ip.is_ipv4() {
            m.attributes.push(RouteAttribute::PrefSource(RouteAddress::from(*ip)));
        }
        out.push(m);
    }
    for gw in &l.gateways {
        let mut m = base(gw.is_ipv6());
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.attributes.push(RouteAttribute::Gateway(RouteAddress::from(*gw)));
        out.push(m);
    }
    out
}

impl Socket for NetlinkSocket {
    fn domain(&self) -> i32 {
        AF_NETLINK
    }

    fn stype(&self) -> i32 {
        self.stype
    }

    fn bind(&self, t: &TaskCtx, addr: &[u8]) -> SysResult<()> {
        if addr.len() < 12 || u16::from_ne_bytes([addr[0], addr[1]]) as i32 != AF_NETLINK {
            return Err(Errno::EINVAL);
        }
        let want = u32::from_ne_bytes(addr[4..8].try_into().unwrap());
        let mut st = self.state.lock().unwrap();
        if st.port == 0 {
            st.port = if want != 0 { want } else { t.pid_seen(t.tgid()) as u32 };
        }
        Ok(())
    }

    fn connect(&self, t: &TaskCtx, addr: &[u8], _nonblock: bool) -> SysResult<()> {
        if addr.len() < 12 || u16::from_ne_bytes([addr[0], addr[1]]) as i32 != AF_NETLINK {
            return Err(Errno::EINVAL);
        }
        self.autobind(t);
        Ok(())
    }

    fn sendmsg(&self, t: &TaskCtx, msg: SendMsg, _flags: u32, _nonblock: bool) -> SysResult<usize> {
        let answers = self.answer(t, &msg.data);
        self.state.lock().unwrap().rx.extend(answers);
        self.queue.notify_all();
        Ok(msg.data.len())
    }

    fn recvmsg(&self, t: &TaskCtx, max: usize, _control_room: usize, flags: u32, nonblock: bool) -> SysResult<RecvMsg> {
        loop {
            let seen = t.prepare_block(&[&self.queue]);
            {
                let mut st = self.state.lock().unwrap();
                if let Some(d) = st.rx.front() {
                    let full = d.len();
                    let data = d[..full.min(max)].to_vec();
                    if flags & MSG_PEEK == 0 {
                        st.rx.pop_front();
                    }
                    drop(st);
                    self.queue.unregister(&t.task.waiter);
                    let ret = if flags & MSG_TRUNC != 0 { full } else { data.len() };
                    return Ok(RecvMsg { ret, flags: if full > max { MSG_TRUNC } else { 0 }, data, from: sockaddr_nl(0), control: Vec::new() });
                }
            }
            if nonblock {
                self.queue.unregister(&t.task.waiter);
                return Err(Errno::EAGAIN);
            }
            t.block_since(&[&self.queue], seen, None)?;
        }
    }

    fn getsockname(&self, _t: &TaskCtx) -> SysResult<Vec<u8>> {
        Ok(sockaddr_nl(self.state.lock().unwrap().port))
    }

    fn getpeername(&self, _t: &TaskCtx) -> SysResult<Vec<u8>> {
        Ok(sockaddr_nl(0))
    }

    fn setsockopt(&self, t: &TaskCtx, level: i32, name: i32, optval: u64, optlen: u32) -> SysResult<()> {
        match (level, name) {
            // Buffer sizes, and netlink's extended acks, strict checking,
            // group membership: accepted (answers are small; no events).
            (SOL_SOCKET, SO_SNDBUF | SO_RCVBUF | SO_SNDBUFFORCE | SO_RCVBUFFORCE | SO_PASSCRED) | (SOL_NETLINK, 1..=12) => {
                sockopt::read_int(t, optval, optlen)?;
                Ok(())
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn getsockopt(&self, t: &TaskCtx, level: i32, name: i32, optval: u64, optlen: u64) -> SysResult<()> {
        let v: i32 = match (level, name) {
            (SOL_SOCKET, SO_TYPE) => self.stype,
            (SOL_SOCKET, SO_DOMAIN) => AF_NETLINK,
            (SOL_SOCKET, SO_PROTOCOL) => NETLINK_ROUTE,
            (SOL_SOCKET, SO_SNDBUF | SO_RCVBUF) => 212_992,
            (SOL_SOCKET, SO_ERROR) => 0,
            _ => return Err(Errno::ENOPROTOOPT),
        };
        let room = sockopt::read_len(t, optlen)?;
        sockopt::write(t, optval, optlen, room, &v.to_ne_bytes())
    }
}

impl FileOps for NetlinkSocket {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        let r = self.recvmsg(t, buf.len(), 0, 0, file.nonblocking())?;
        buf[..r.data.len()].copy_from_slice(&r.data);
        Ok(r.data.len())
    }

    fn write(&self, t: &TaskCtx, _file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        self.sendmsg(t, SendMsg { data: buf.to_vec(), to: None, control: Vec::new() }, 0, false)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(crate::fs::node::synthetic_stat(anon::DEV_SOCKFS, self.ino, libc::S_IFSOCK | 0o777, 1, 0, 0))
    }

    fn readiness(&self) -> u32 {
        if self.state.lock().unwrap().rx.is_empty() {
            POLLOUT
        } else {
            POLLIN | POLLOUT
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }
}
