//! The inet family: AF_INET and AF_INET6 stream (TCP) and datagram (UDP)
//! sockets, served by the sandbox's own TCP/IP stack (the `netstack`
//! crate). This file speaks the socket ABI (sockaddr_in/in6, options,
//! blocking with timeouts and signals); the stack does the protocols.
//! [`InetFamily`] makes these sockets for the kernel's family table.
//!
//! Each socket has one wait queue; the stack calls the socket's waker
//! whenever its readiness may have changed, which notifies the queue, so
//! blocking calls, epoll, poll and select all wait the same way.

use super::consts::*;
use crate::fs::events::*;
use super::socket::{Accepted, RecvMsg, SendMsg, Socket, SocketFamily};
use crate::fs::{anon, FileOps, OpenFile};
use crate::task::TaskCtx;
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::types::{Pod, Stat, Timeval};
use abi::Errno;
use netstack::Proto;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const AF_INET: i32 = 2;
pub const AF_INET6: i32 = 10;
pub const AF_UNSPEC: i32 = 0;

pub const IPPROTO_IP: i32 = 0;
pub const IPPROTO_TCP: i32 = 6;
pub const IPPROTO_UDP: i32 = 17;
pub const IPPROTO_IPV6: i32 = 41;

const TCP_NODELAY: i32 = 1;
const TCP_MAXSEG: i32 = 2;
const TCP_KEEPIDLE: i32 = 4;
const TCP_INFO: i32 = 11;
const TCP_CONGESTION: i32 = 13;
const IPV6_V6ONLY: i32 = 26;
const SO_PRIORITY: i32 = 12;

/// Options of the socket layer that the stack does not need to know.
#[derive(Default)]
struct Local {
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
    /// Options accepted and reported back without changing the stack's
    /// behaviour (IP_TOS, TCP_CORK, …), as (level, name) -> value.
    stored: HashMap<(i32, i32), Vec<u8>>,
}

pub struct InetSocket {
    pub family: i32,
    pub stype: i32,
    sock: netstack::Socket,
    queue: Arc<WaitQueue>,
    local: Mutex<Local>,
    ino: u64,
}

/// socket(2) for AF_INET/AF_INET6: the new socket, or why not.
pub fn create(t: &TaskCtx, family: i32, stype: i32, protocol: i32) -> SysResult<Arc<InetSocket>> {
    let proto = match (stype, protocol) {
        (SOCK_STREAM, 0 | IPPROTO_TCP) => Proto::Tcp,
        (SOCK_DGRAM, 0 | IPPROTO_UDP) => Proto::Udp,
        (SOCK_STREAM | SOCK_DGRAM, _) => return Err(Errno::EPROTONOSUPPORT),
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    let sock = t.kernel().net().socket(proto, family == AF_INET6);
    Ok(InetSocket::wrap(family, stype, sock))
}

impl InetSocket {
    fn wrap(family: i32, stype: i32, sock: netstack::Socket) -> Arc<InetSocket> {
        let queue = Arc::new(WaitQueue::new());
        let q = queue.clone();
        sock.set_waker(Arc::new(move || q.notify_all()));
        Arc::new(InetSocket { family, stype, sock, queue, local: Mutex::default(), ino: anon::next_ino() })
    }

    fn timeout(&self, send: bool) -> Option<Instant> {
        let l = self.local.lock().unwrap();
        let d = if send { l.sndtimeo } else { l.rcvtimeo };
        d.map(|d| Instant::now() + d)
    }

    /// Runs `attempt` until it stops saying EAGAIN, sleeping on the
    /// socket's queue between tries (unless `nonblock`); a timeout ends
    /// it with EAGAIN, a signal with ERESTARTSYS.
    fn blocking<R>(&self, t: &TaskCtx, nonblock: bool, until: Option<Instant>, mut attempt: impl FnMut() -> SysResult<R>) -> SysResult<R> {
        loop {
            let seen = t.prepare_block(&[&self.queue]);
            match attempt() {
                Err(Errno::EAGAIN) if !nonblock => {}
                r => {
                    self.queue.unregister(&t.task.waiter);
                    return r;
                }
            }
            match t.block_since(&[&self.queue], seen, until) {
                Ok(()) => {}
                Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
                Err(e) => return Err(e),
            }
        }
    }

    pub fn bind(&self, raw: &[u8]) -> SysResult<()> {
        let addr = match parse_addr(self.family, raw)? {
            Some(a) => a,
            // AF_UNSPEC with INADDR_ANY is accepted for AF_INET (Linux keeps that for old programs).
            None if self.family == AF_INET => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
            None => return Err(Errno::EINVAL),
        };
        self.sock.bind(addr)
    }

    pub fn listen(&self, backlog: i32) -> SysResult<()> {
        if self.stype != SOCK_STREAM {
            return Err(Errno::EOPNOTSUPP);
        }
        self.sock.listen(backlog.max(0) as usize)
    }

    /// accept(2): the next connection and its peer's address.
    pub fn accept(&self, t: &TaskCtx, nonblock: bool) -> SysResult<(Arc<InetSocket>, Vec<u8>)> {
        if self.stype != SOCK_STREAM {
            return Err(Errno::EOPNOTSUPP);
        }
        let (s, peer) = self.blocking(t, nonblock, self.timeout(false), || self.sock.accept())?;
        Ok((InetSocket::wrap(self.family, self.stype, s), sockaddr(self.family, peer)))
    }

    /// connect(2): blocking waits for the handshake; non-blocking returns
    /// EINPROGRESS and the outcome comes as POLLOUT and SO_ERROR.
    pub fn connect(&self, t: &TaskCtx, raw: &[u8], nonblock: bool) -> SysResult<()> {
        let to = parse_addr(self.family, raw)?;
        match self.sock.connect(to, nonblock) {
            Err(Errno::EINPROGRESS) if !nonblock => {}
            // A blocking connect restarted after a signal keeps waiting.
            Err(Errno::EALREADY) if !nonblock => {}
            r => return r,
        }
        self.blocking(t, false, self.timeout(true), || {
            if self.sock.readiness() & (POLLOUT | POLLERR | POLLHUP) == 0 {
                return Err(Errno::EAGAIN);
            }
            match self.sock.take_error() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })
        .map_err(|e| if e == Errno::EAGAIN { Errno::EINPROGRESS } else { e })
    }

    pub fn shutdown(&self, how: i32) -> SysResult<()> {
        let (rd, wr) = match how {
            SHUT_RD => (true, false),
            SHUT_WR => (false, true),
            SHUT_RDWR => (true, true),
            _ => return Err(Errno::EINVAL),
        };
        self.sock.shutdown(rd, wr)
    }

    /// Sends `data` (to `to`, a datagram's destination). A blocking stream
    /// send returns once all of it is queued; EPIPE raises SIGPIPE unless
    /// MSG_NOSIGNAL.
    pub fn send(&self, t: &TaskCtx, data: &[u8], to: Option<&[u8]>, flags: u32, nonblock: bool) -> SysResult<usize> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let to = match to {
            None => None,
            // A connected stream socket ignores the address (Linux: tcp_sendmsg).
            Some(_) if self.stype == SOCK_STREAM && self.sock.peer_addr().is_ok() => None,
            Some(raw) => Some(parse_addr(self.family, raw)?.ok_or(Errno::EAFNOSUPPORT)?),
        };
        let until = self.timeout(true);
        let mut sent = 0;
        let r = self.blocking(t, nonblock, until, || loop {
            match self.sock.send(&data[sent..], to) {
                Ok(n) => {
                    sent += n;
                    if self.stype != SOCK_STREAM || sent == data.len() || nonblock {
                        return Ok(sent);
                    }
                }
                Err(Errno::EAGAIN) if sent > 0 && nonblock => return Ok(sent),
                Err(e) => return Err(e),
            }
        });
        match r {
            Err(_) if sent > 0 => Ok(sent),
            Err(Errno::EPIPE) => {
                if flags & MSG_NOSIGNAL == 0 && self.stype == SOCK_STREAM {
                    t.signal_self(abi::signal::SIGPIPE);
                }
                Err(Errno::EPIPE)
            }
            r => r,
        }
    }

    /// Receives up to `max` bytes: (data, the datagram's full length, the
    /// sender's sockaddr for datagrams).
    pub fn recv(&self, t: &TaskCtx, max: usize, flags: u32, nonblock: bool) -> SysResult<(Vec<u8>, usize, Vec<u8>)> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EINVAL);
        }
        if flags & 0x2000 != 0 {
            // MSG_ERRQUEUE: no queued errors (IP_RECVERR is not delivered).
            return Err(Errno::EAGAIN);
        }
        let peek = flags & MSG_PEEK != 0;
        let waitall = flags & MSG_WAITALL != 0 && self.stype == SOCK_STREAM && !peek && !nonblock;
        // What is there to read bounds the buffer (a zeroed megabyte per
        // call costs more than the copy); MSG_WAITALL needs all of it.
        let room = if waitall { max } else { max.min(self.sock.readable_bytes().max(64 * 1024)) };
        let mut buf = vec![0u8; room];
        let mut got = 0;
        let mut full = 0;
        let mut from = Vec::new();
        let r = self.blocking(t, nonblock, self.timeout(false), || {
            let r = self.sock.recv(&mut buf[got..], peek)?;
            got += r.len;
            full = r.full;
            if let Some(a) = r.from {
                from = sockaddr(self.family, a);
            }
            if waitall && r.len > 0 && got < room {
                return Err(Errno::EAGAIN);
            }
            Ok(())
        });
        match r {
            Ok(()) => {}
            Err(_) if got > 0 => {}
            Err(e) => return Err(e),
        }
        buf.truncate(got);
        let full = if self.stype == SOCK_STREAM { got } else { full };
        Ok((buf, full, from))
    }

    pub fn name(&self) -> Vec<u8> {
        sockaddr(self.family, self.sock.local_addr())
    }

    pub fn peer_name(&self) -> SysResult<Vec<u8>> {
        Ok(sockaddr(self.family, self.sock.peer_addr()?))
    }

    pub fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> SysResult<()> {
        let int = || -> SysResult<i32> {
            if val.len() < 4 {
                return Err(Errno::EINVAL);
            }
            Ok(i32::from_ne_bytes(val[..4].try_into().unwrap()))
        };
        match (level, name) {
            (SOL_SOCKET, SO_REUSEADDR) => self.sock.set_opts(|o| o.reuseaddr = int().unwrap_or(0) != 0),
            (SOL_SOCKET, SO_REUSEPORT) => self.sock.set_opts(|o| o.reuseport = int().unwrap_or(0) != 0),
            (SOL_SOCKET, SO_KEEPALIVE) => self.sock.set_opts(|o| o.keepalive = int().unwrap_or(0) != 0),
            (SOL_SOCKET, SO_RCVBUF | SO_RCVBUFFORCE) => {
                let v = int()?.max(0) as usize;
                self.sock.set_opts(|o| o.rcvbuf = v.saturating_mul(2));
            }
            (SOL_SOCKET, SO_SNDBUF | SO_SNDBUFFORCE) => {
                let v = int()?.max(0) as usize;
                self.sock.set_opts(|o| o.sndbuf = v.saturating_mul(2));
            }
            (SOL_SOCKET, SO_LINGER) => {
                if val.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                let on = i32::from_ne_bytes(val[..4].try_into().unwrap()) != 0;
                let secs = i32::from_ne_bytes(val[4..8].try_into().unwrap()).max(0) as u32;
                self.sock.set_opts(|o| o.linger = on.then_some(secs));
            }
            (SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO) => {
                let d = timeval_opt(val)?;
                let mut l = self.local.lock().unwrap();
                *(if name == SO_RCVTIMEO { &mut l.rcvtimeo } else { &mut l.sndtimeo }) = d;
            }
            (IPPROTO_TCP, TCP_NODELAY) if self.stype == SOCK_STREAM => self.sock.set_opts(|o| o.nodelay = int().unwrap_or(0) != 0),
            (IPPROTO_TCP, TCP_KEEPIDLE) if self.stype == SOCK_STREAM => {
                let v = int()?;
                if !(1..=32767).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                self.sock.set_opts(|o| o.keepidle = v as u32);
            }
            (IPPROTO_IPV6, IPV6_V6ONLY) if self.family == AF_INET6 => {
                let v = int()? != 0;
                // Linux refuses once bound.
                if self.sock.local_addr().port() != 0 {
                    return Err(Errno::EINVAL);
                }
                self.sock.set_opts(|o| o.v6only = v);
            }
            _ if accepted_without_effect(self.family, self.stype, level, name) => {
                if val.len() < 4 && name != TCP_CONGESTION {
                    return Err(Errno::EINVAL);
                }
                self.local.lock().unwrap().stored.insert((level, name), val.to_vec());
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    pub fn getsockopt(&self, level: i32, name: i32) -> SysResult<Vec<u8>> {
        let int = |v: i32| v.to_ne_bytes().to_vec();
        let o = self.sock.opts();
        let timeval = |d: Option<Duration>| {
            let d = d.unwrap_or_default();
            Timeval { tv_sec: d.as_secs() as i64, tv_usec: d.subsec_micros() as i64 }.as_bytes().to_vec()
        };
        Ok(match (level, name) {
            (SOL_SOCKET, SO_TYPE) => int(self.stype),
            (SOL_SOCKET, SO_DOMAIN) => int(self.family),
            (SOL_SOCKET, SO_PROTOCOL) => int(if self.stype == SOCK_STREAM { IPPROTO_TCP } else { IPPROTO_UDP }),
            (SOL_SOCKET, SO_ERROR) => int(self.sock.take_error().map_or(0, |e| e.0)),
            (SOL_SOCKET, SO_ACCEPTCONN) => int(self.sock.is_listening() as i32),
            (SOL_SOCKET, SO_REUSEADDR) => int(o.reuseaddr as i32),
            (SOL_SOCKET, SO_REUSEPORT) => int(o.reuseport as i32),
            (SOL_SOCKET, SO_KEEPALIVE) => int(o.keepalive as i32),
            (SOL_SOCKET, SO_RCVBUF) => int(o.rcvbuf.min(i32::MAX as usize) as i32),
            (SOL_SOCKET, SO_SNDBUF) => int(o.sndbuf.min(i32::MAX as usize) as i32),
            (SOL_SOCKET, SO_LINGER) => {
                let mut v = int(o.linger.is_some() as i32);
                v.extend_from_slice(&(o.linger.unwrap_or(0) as i32).to_ne_bytes());
                v
            }
            (SOL_SOCKET, SO_RCVTIMEO) => timeval(self.local.lock().unwrap().rcvtimeo),
            (SOL_SOCKET, SO_SNDTIMEO) => timeval(self.local.lock().unwrap().sndtimeo),
            (IPPROTO_TCP, TCP_NODELAY) if self.stype == SOCK_STREAM => int(o.nodelay as i32),
            (IPPROTO_TCP, TCP_KEEPIDLE) if self.stype == SOCK_STREAM => int(o.keepidle as i32),
            (IPPROTO_TCP, TCP_MAXSEG) if self.stype == SOCK_STREAM => int(536),
            (IPPROTO_TCP, TCP_INFO) if self.stype == SOCK_STREAM => self.tcp_info(),
            (IPPROTO_TCP, TCP_CONGESTION) if self.stype == SOCK_STREAM => {
                let mut v = b"cubic".to_vec();
                v.resize(16, 0);
                v
            }
            (IPPROTO_IPV6, IPV6_V6ONLY) if self.family == AF_INET6 => int(o.v6only as i32),
            _ if accepted_without_effect(self.family, self.stype, level, name) => {
                self.local.lock().unwrap().stored.get(&(level, name)).cloned().unwrap_or_else(|| int(default_of(level, name)))
            }
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    /// struct tcp_info with the fields the stack knows: the state and the
    /// queue sizes (the rest stay zero).
    fn tcp_info(&self) -> Vec<u8> {
        let mut v = vec![0u8; 104];
        let ev = self.sock.readiness();
        // TCP_ESTABLISHED = 1, TCP_LISTEN = 10, TCP_CLOSE = 7.
        v[0] = if self.sock.is_listening() {
            10
        } else if self.sock.peer_addr().is_ok() && ev & POLLHUP == 0 {
            1
        } else {
            7
        };
        v
    }
}

/// Options programs commonly set whose effect the stack does not model;
/// the value is kept so getsockopt reports what was set.
fn accepted_without_effect(family: i32, stype: i32, level: i32, name: i32) -> bool {
    match level {
        SOL_SOCKET => matches!(name, SO_BROADCAST | SO_DONTROUTE | SO_OOBINLINE | SO_RCVLOWAT | SO_SNDLOWAT | SO_PRIORITY | SO_PASSCRED),
        // TCP_CORK, KEEPINTVL, KEEPCNT, SYNCNT, LINGER2, DEFER_ACCEPT,
        // WINDOW_CLAMP, QUICKACK, CONGESTION, USER_TIMEOUT, FASTOPEN,
        // NOTSENT_LOWAT.
        IPPROTO_TCP => stype == SOCK_STREAM && matches!(name, 3 | 5..=10 | 12 | 13 | 18 | 23 | 25),
        // IP_TOS, IP_TTL, IP_PKTINFO, IP_MTU_DISCOVER, IP_RECVERR, IP_RECVTOS,
        // IP_FREEBIND, IP_BIND_ADDRESS_NO_PORT, IP_MULTICAST_IF/TTL/LOOP.
        IPPROTO_IP => family == AF_INET && matches!(name, 1 | 2 | 8 | 10 | 11 | 13 | 15 | 24 | 32..=34),
        // IPV6_UNICAST_HOPS, MULTICAST_IF/HOPS/LOOP, RECVERR, RECVPKTINFO, TCLASS.
        IPPROTO_IPV6 => family == AF_INET6 && matches!(name, 16..=19 | 25 | 49 | 67),
        _ => false,
    }
}

/// What Linux reports for an option never set.
fn default_of(level: i32, name: i32) -> i32 {
    match (level, name) {
        (SOL_SOCKET, SO_RCVLOWAT | SO_SNDLOWAT) => 1,
        (IPPROTO_IP, 2) | (IPPROTO_IPV6, 16) => 64,
        (IPPROTO_IP, 33) | (IPPROTO_IPV6, 18) => 1,
        (IPPROTO_IP, 34) | (IPPROTO_IPV6, 19) => 1,
        _ => 0,
    }
}

fn timeval_opt(val: &[u8]) -> SysResult<Option<Duration>> {
    if val.len() < std::mem::size_of::<Timeval>() {
        return Err(Errno::EINVAL);
    }
    let sec = i64::from_ne_bytes(val[..8].try_into().unwrap());
    let usec = i64::from_ne_bytes(val[8..16].try_into().unwrap());
    if !(0..1_000_000).contains(&usec) {
        return Err(Errno::EDOM);
    }
    if sec < 0 || (sec == 0 && usec == 0) {
        return Ok(None);
    }
    Ok(Some(Duration::new(sec as u64, usec as u32 * 1000)))
}

/// Parses a sockaddr for a socket of `family`: None for AF_UNSPEC.
pub fn parse_addr(family: i32, raw: &[u8]) -> SysResult<Option<SocketAddr>> {
    if raw.len() < 2 {
        return Err(Errno::EINVAL);
    }
    let fam = u16::from_ne_bytes([raw[0], raw[1]]) as i32;
    if fam == AF_UNSPEC {
        return Ok(None);
    }
    if fam != family {
        return Err(if family == AF_INET6 { Errno::EINVAL } else { Errno::EAFNOSUPPORT });
    }
    let port = u16::from_be_bytes([raw.get(2).copied().unwrap_or(0), raw.get(3).copied().unwrap_or(0)]);
    match fam {
        AF_INET => {
            if raw.len() < 16 {
                return Err(Errno::EINVAL);
            }
            let ip = Ipv4Addr::new(raw[4], raw[5], raw[6], raw[7]);
            Ok(Some(SocketAddr::V4(SocketAddrV4::new(ip, port))))
        }
        _ => {
            if raw.len() < 24 {
                return Err(Errno::EINVAL);
            }
            let ip: [u8; 16] = raw[8..24].try_into().unwrap();
            let scope = raw.get(24..28).map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap()));
            Ok(Some(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, scope))))
        }
    }
}

/// The sockaddr_in/sockaddr_in6 of `a` for a socket of `family`.
pub fn sockaddr(family: i32, a: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(28);
    out.extend_from_slice(&(family as u16).to_ne_bytes());
    out.extend_from_slice(&a.port().to_be_bytes());
    match (family, a.ip()) {
        (AF_INET, IpAddr::V4(ip)) => {
            out.extend_from_slice(&ip.octets());
            out.extend_from_slice(&[0; 8]);
        }
        (AF_INET, IpAddr::V6(ip)) => {
            out.extend_from_slice(&ip.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED).octets());
            out.extend_from_slice(&[0; 8]);
        }
        (_, ip) => {
            let v6 = match ip {
                IpAddr::V4(x) => x.to_ipv6_mapped(),
                IpAddr::V6(x) => x,
            };
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&v6.octets());
            let scope = if let SocketAddr::V6(s) = a { s.scope_id() } else { 0 };
            out.extend_from_slice(&scope.to_ne_bytes());
        }
    }
    out
}

/// The SIOCGIF* ioctls on a `struct ifreq` (name[16], then a union):
/// index, name, flags, MTU, hardware address, IPv4 address and netmask,
/// transmit queue length of the sandbox's links. Setting is refused.
fn interface_ioctl(t: &TaskCtx, cmd: u64, arg: u64) -> SysResult<u64> {
    const SIOCGIFNAME: u64 = 0x8910;
    const SIOCGIFFLAGS: u64 = 0x8913;
    const SIOCGIFADDR: u64 = 0x8915;
    const SIOCGIFNETMASK: u64 = 0x891b;
    const SIOCGIFMTU: u64 = 0x8921;
    const SIOCGIFHWADDR: u64 = 0x8927;
    const SIOCGIFINDEX: u64 = 0x8933;
    const SIOCGIFTXQLEN: u64 = 0x8942;
    let mut ifr = t.copy_in(arg, 40)?;
    let links = t.kernel().net().interfaces();
    let link = if cmd == SIOCGIFNAME {
        let index = u32::from_ne_bytes(ifr[16..20].try_into().unwrap());
        links.iter().find(|l| l.index == index)
    } else {
        let end = ifr[..16].iter().position(|&b| b == 0).unwrap_or(16);
        links.iter().find(|l| l.name.as_bytes() == &ifr[..end])
    };
    let Some(l) = link else { return Err(Errno::ENODEV) };
    let v4 = l.addrs.iter().find_map(|(a, len)| if let IpAddr::V4(x) = a { Some((*x, *len)) } else { None });
    let sockaddr_in = |ip: Ipv4Addr| sockaddr(AF_INET, SocketAddr::new(IpAddr::V4(ip), 0));
    let u = &mut ifr[16..40];
    match cmd {
        SIOCGIFNAME => {
            let name = l.name.as_bytes();
            ifr[..16].fill(0);
            ifr[..name.len().min(15)].copy_from_slice(&name[..name.len().min(15)]);
        }
        SIOCGIFINDEX => u[..4].copy_from_slice(&(l.index as i32).to_ne_bytes()),
        SIOCGIFFLAGS => {
            // IFF_UP | IFF_RUNNING, and LOOPBACK or BROADCAST|MULTICAST.
            let flags: i16 = 0x1 | 0x40 | if l.mac.is_none() { 0x8 } else { 0x2 | 0x1000 };
            u[..2].copy_from_slice(&flags.to_ne_bytes());
        }
        SIOCGIFMTU => u[..4].copy_from_slice(&(l.mtu as i32).to_ne_bytes()),
        SIOCGIFTXQLEN => u[..4].copy_from_slice(&1000i32.to_ne_bytes()),
        SIOCGIFHWADDR => {
            // ARPHRD_ETHER or ARPHRD_LOOPBACK, then the address.
            let family: u16 = if l.mac.is_some() { 1 } else { 772 };
            u[..2].copy_from_slice(&family.to_ne_bytes());
            u[2..8].copy_from_slice(&l.mac.unwrap_or([0; 6]));
        }
        SIOCGIFADDR => {
            let (ip, _) = v4.ok_or(Errno::EADDRNOTAVAIL)?;
            u[..16].copy_from_slice(&sockaddr_in(ip));
        }
        SIOCGIFNETMASK => {
            let (_, len) = v4.ok_or(Errno::EADDRNOTAVAIL)?;
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len as u32) };
            u[..16].copy_from_slice(&sockaddr_in(Ipv4Addr::from(mask)));
        }
        _ => return Err(Errno::EINVAL),
    }
    t.copy_out(arg, &ifr)?;
    Ok(0)
}

impl FileOps for InetSocket {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        let (data, _, _) = self.recv(t, buf.len(), 0, file.nonblocking())?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    fn write(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        self.send(t, buf, None, 0, file.nonblocking())
    }

    fn stat(&self) -> SysResult<Stat> {
        let mut st = crate::fs::node::synthetic_stat(anon::DEV_SOCKFS, self.ino, libc::S_IFSOCK | 0o777, 1, 0, 0);
        st.st_blksize = 4096;
        Ok(st)
    }

    fn ioctl(&self, t: &TaskCtx, _file: &OpenFile, cmd: u64, arg: u64) -> SysResult<u64> {
        let n = match cmd {
            libc::FIONREAD => self.sock.readable_bytes(),
            libc::TIOCOUTQ => self.sock.unsent_bytes(),
            0x8910..=0x8950 => return interface_ioctl(t, cmd, arg),
            _ => return Err(Errno::ENOTTY),
        };
        t.write_obj(arg, &(n.min(i32::MAX as usize) as i32))?;
        Ok(0)
    }

    fn readiness(&self) -> u32 {
        self.sock.readiness()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }
}

/// AF_INET or AF_INET6: TCP and UDP sockets on the sandbox's stack.
pub struct InetFamily(pub i32);

impl SocketFamily for InetFamily {
    fn domain(&self) -> i32 {
        self.0
    }

    fn socket(&self, t: &TaskCtx, stype: i32, protocol: i32) -> SysResult<Arc<dyn Socket>> {
        Ok(create(t, self.0, stype, protocol)?)
    }
}

impl Socket for InetSocket {
    fn domain(&self) -> i32 {
        self.family
    }

    fn stype(&self) -> i32 {
        self.stype
    }

    fn bind(&self, _t: &TaskCtx, addr: &[u8]) -> SysResult<()> {
        InetSocket::bind(self, addr)
    }

    fn listen(&self, _t: &TaskCtx, backlog: i32) -> SysResult<()> {
        InetSocket::listen(self, backlog)
    }

    fn accept(&self, t: &TaskCtx, nonblock: bool) -> SysResult<Accepted> {
        let (socket, peer) = InetSocket::accept(self, t, nonblock)?;
        Ok(Accepted { socket, peer })
    }

    fn connect(&self, t: &TaskCtx, addr: &[u8], nonblock: bool) -> SysResult<()> {
        InetSocket::connect(self, t, addr, nonblock)
    }

    fn shutdown(&self, _t: &TaskCtx, how: i32) -> SysResult<()> {
        InetSocket::shutdown(self, how)
    }

    fn sendmsg(&self, t: &TaskCtx, msg: SendMsg, flags: u32, nonblock: bool) -> SysResult<usize> {
        // Control messages (IP_PKTINFO, IP_TOS, …) are not applied to inet
        // sends. SIGPIPE is the socket calls' to raise.
        self.send(t, &msg.data, msg.to.as_deref(), flags | MSG_NOSIGNAL, nonblock)
    }

    fn recvmsg(&self, t: &TaskCtx, max: usize, _control_room: usize, flags: u32, nonblock: bool) -> SysResult<RecvMsg> {
        let (data, full, from) = self.recv(t, max, flags, nonblock)?;
        let truncated = full > data.len();
        let ret = if flags & MSG_TRUNC != 0 && self.stype != SOCK_STREAM { full } else { data.len() };
        Ok(RecvMsg { ret, flags: if truncated { MSG_TRUNC } else { 0 }, data, from, control: Vec::new() })
    }

    fn getsockname(&self, _t: &TaskCtx) -> SysResult<Vec<u8>> {
        Ok(self.name())
    }

    fn getpeername(&self, _t: &TaskCtx) -> SysResult<Vec<u8>> {
        self.peer_name()
    }

    fn setsockopt(&self, t: &TaskCtx, level: i32, name: i32, optval: u64, optlen: u32) -> SysResult<()> {
        let len = optlen as i32;
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let val = t.copy_in(optval, (len as usize).min(256))?;
        InetSocket::setsockopt(self, level, name, &val)
    }

    fn getsockopt(&self, t: &TaskCtx, level: i32, name: i32, optval: u64, optlen: u64) -> SysResult<()> {
        let len = super::sockopt::read_len(t, optlen)?;
        let bytes = InetSocket::getsockopt(self, level, name)?;
        super::sockopt::write(t, optval, optlen, len, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddrs_round_trip() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let raw = sockaddr(AF_INET, a);
        assert_eq!(raw.len(), 16);
        assert_eq!(&raw[2..4], &[0x1f, 0x90]);
        assert_eq!(parse_addr(AF_INET, &raw).unwrap(), Some(a));
        let b: SocketAddr = "[::1]:53".parse().unwrap();
        let raw6 = sockaddr(AF_INET6, b);
        assert_eq!(raw6.len(), 28);
        assert_eq!(parse_addr(AF_INET6, &raw6).unwrap(), Some(b));
        // An IPv4 peer of an AF_INET6 socket is shown IPv4-mapped.
        let mapped = sockaddr(AF_INET6, a);
        assert_eq!(parse_addr(AF_INET6, &mapped).unwrap().unwrap().ip().to_string(), "::ffff:127.0.0.1");
        assert_eq!(parse_addr(AF_INET, &raw6), Err(Errno::EAFNOSUPPORT));
        assert_eq!(parse_addr(AF_INET6, &raw), Err(Errno::EINVAL));
        assert_eq!(parse_addr(AF_INET, &[0, 0]).unwrap(), None);
    }
}
