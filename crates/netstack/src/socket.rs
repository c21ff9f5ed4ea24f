//! A socket as the sentry sees it: the public handle and the table entry
//! behind it. Protocol-specific work is in tcp.rs and udp.rs.

use crate::stack::{Inner, Shared, H};
use crate::{Errno, Proto, SockId, Waker};
use smoltcp::wire::{IpAddress, IpEndpoint};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;

/// Default and bounds of a socket's buffers (SO_RCVBUF/SO_SNDBUF as the
/// stack applies them to connections made after they are set).
pub const DEFAULT_BUF: usize = 256 * 1024;
pub const MIN_BUF: usize = 4 * 1024;
pub const MAX_BUF: usize = 4 * 1024 * 1024;

/// Options a program sets that change the stack's behaviour.
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub v6only: bool,
    pub nodelay: bool,
    pub keepalive: bool,
    /// TCP_KEEPIDLE, seconds.
    pub keepidle: u32,
    /// SO_LINGER: Some(0) resets the connection at close.
    pub linger: Option<u32>,
    pub rcvbuf: usize,
    pub sndbuf: usize,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts { reuseaddr: false, reuseport: false, v6only: false, nodelay: false, keepalive: false, keepidle: 7200, linger: None, rcvbuf: DEFAULT_BUF, sndbuf: DEFAULT_BUF }
    }
}

/// What a TCP socket is doing.
pub(crate) enum Tcp {
    /// Created, maybe bound.
    Idle,
    Listening {
        backlog: usize,
        /// smoltcp sockets in LISTEN (or mid-handshake) for this port.
        pool: Vec<H>,
        /// Connections whose handshake completed, oldest first.
        ready: VecDeque<H>,
    },
    Conn(Conn),
}

pub(crate) struct Conn {
    pub handle: H,
    /// The smoltcp state seen at the last settle.
    pub last: smoltcp::socket::tcp::State,
    pub connecting: bool,
    pub local: IpEndpoint,
    pub peer: IpEndpoint,
    /// The ephemeral port this connection claimed itself (connect without bind).
    pub own_port: Option<u16>,
}

/// The readiness a socket last reported, with its queue sizes (so a
/// waker also fires when more data arrives: edge-triggered epoll).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sig(u32, usize, usize, usize);

pub(crate) struct Sock {
    pub proto: Proto,
    pub v6: bool,
    pub waker: Option<Waker>,
    pub sig: Sig,
    /// The bound local address (None: wildcard) and port.
    pub bound: Option<(Option<IpAddress>, u16)>,
    pub opts: Opts,
    pub shut_rd: bool,
    pub shut_wr: bool,
    /// A pending error (SO_ERROR), reported once.
    pub err: Option<Errno>,
    pub tcp: Tcp,
    /// A bound datagram socket's smoltcp sockets, one per link it hears.
    pub udp: Vec<H>,
    /// A connected datagram socket's peer.
    pub udp_peer: Option<IpEndpoint>,
}

impl Sock {
    pub fn new(proto: Proto, v6: bool) -> Sock {
        Sock { proto, v6, waker: None, sig: Sig::default(), bound: None, opts: Opts::default(), shut_rd: false, shut_wr: false, err: None, tcp: Tcp::Idle, udp: Vec::new(), udp_peer: None }
    }
}

/// An address as the stack uses it: IPv4-mapped IPv6 addresses of a
/// dual-stack socket become IPv4; the wildcard becomes None.
pub(crate) fn stack_addr(v6: bool, v6only: bool, a: IpAddr) -> Result<Option<IpAddress>, Errno> {
    let a = match a {
        IpAddr::V4(_) if v6 => return Err(Errno::EAFNOSUPPORT),
        IpAddr::V6(_) if !v6 => return Err(Errno::EAFNOSUPPORT),
        IpAddr::V6(x) => match x.to_ipv4_mapped() {
            Some(_) if v6only => return Err(Errno::EADDRNOTAVAIL),
            Some(m) => IpAddr::V4(m),
            None => IpAddr::V6(x),
        },
        a => a,
    };
    Ok(if a.is_unspecified() { None } else { Some(a.into()) })
}

/// An address as the program sees it: IPv4 shown to an AF_INET6 socket
/// as IPv4-mapped.
pub(crate) fn user_addr(v6: bool, addr: Option<IpAddress>, port: u16) -> SocketAddr {
    let ip: IpAddr = match addr {
        Some(a) => a.into(),
        None if v6 => Ipv6Addr::UNSPECIFIED.into(),
        None => std::net::Ipv4Addr::UNSPECIFIED.into(),
    };
    match ip {
        IpAddr::V4(x) if v6 => SocketAddr::V6(SocketAddrV6::new(x.to_ipv6_mapped(), port, 0, 0)),
        ip => SocketAddr::new(ip, port),
    }
}

/// Linux connects to the wildcard as to loopback.
pub(crate) fn remote_endpoint(v6: bool, v6only: bool, to: SocketAddr) -> Result<IpEndpoint, Errno> {
    let addr = match stack_addr(v6, v6only, to.ip())? {
        Some(a) => a,
        None if to.is_ipv4() => IpAddress::Ipv4(std::net::Ipv4Addr::LOCALHOST),
        None => IpAddress::Ipv6(Ipv6Addr::LOCALHOST),
    };
    Ok(IpEndpoint::new(addr, to.port()))
}

/// What a receive returned.
#[derive(Debug)]
pub struct Received {
    /// Bytes copied into the buffer.
    pub len: usize,
    /// The datagram's full length (larger than `len` when truncated).
    pub full: usize,
    pub from: Option<SocketAddr>,
}

/// A socket of the stack, as a file of the sentry holds it. Closing is
/// dropping.
pub struct Socket {
    shared: Arc<Shared>,
    id: SockId,
    pub proto: Proto,
    /// AF_INET6.
    pub v6: bool,
}

impl Socket {
    pub(crate) fn new(shared: Arc<Shared>, id: SockId, proto: Proto, v6: bool) -> Socket {
        Socket { shared, id, proto, v6 }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner, SockId) -> R) -> R {
        self.shared.with(|i| f(i, self.id))
    }

    /// Asks for `w` to be called whenever readiness may have changed.
    pub fn set_waker(&self, w: Waker) {
        self.shared.lock().sock(self.id).waker = Some(w);
    }

    pub fn bind(&self, addr: SocketAddr) -> Result<(), Errno> {
        self.with(|i, id| i.bind(id, addr))
    }

    pub fn listen(&self, backlog: usize) -> Result<(), Errno> {
        self.with(|i, id| i.tcp_listen(id, backlog))
    }

    /// A connection that completed its handshake, and its peer; EAGAIN
    /// when none is waiting.
    pub fn accept(&self) -> Result<(Socket, SocketAddr), Errno> {
        let (id, peer) = self.with(|i, id| i.tcp_accept(id))?;
        Ok((Socket::new(self.shared.clone(), id, self.proto, self.v6), peer))
    }

    /// Starts (or, for datagrams, sets) a connection: Ok when connected,
    /// EINPROGRESS while the handshake runs (readiness then shows POLLOUT
    /// or POLLERR, and [`Socket::take_error`] says how it ended). A
    /// `nonblock` connect always answers EINPROGRESS, as Linux does even
    /// when loopback settles it at once. None (AF_UNSPEC) dissolves a
    /// datagram socket's association.
    pub fn connect(&self, to: Option<SocketAddr>, nonblock: bool) -> Result<(), Errno> {
        match self.proto {
            Proto::Tcp => {
                let to = to.ok_or(Errno::EAFNOSUPPORT)?;
                self.with(|i, id| i.tcp_connect(id, to))?;
                if nonblock {
                    return Err(Errno::EINPROGRESS);
                }
                self.with(|i, id| i.tcp_connect_result(id))
            }
            Proto::Udp => self.with(|i, id| i.udp_connect(id, to)),
        }
    }

    /// Queues `data`; returns how much was taken (EAGAIN when nothing fits).
    pub fn send(&self, data: &[u8], to: Option<SocketAddr>) -> Result<usize, Errno> {
        match self.proto {
            Proto::Tcp => self.with(|i, id| i.tcp_send(id, data, to.is_some())),
            Proto::Udp => self.with(|i, id| i.udp_send(id, data, to)),
        }
    }

    /// Reads into `buf` (EAGAIN when nothing is there yet; 0 at end of stream).
    pub fn recv(&self, buf: &mut [u8], peek: bool) -> Result<Received, Errno> {
        match self.proto {
            Proto::Tcp => self.with(|i, id| i.tcp_recv(id, buf, peek)),
            Proto::Udp => self.with(|i, id| i.udp_recv(id, buf, peek)),
        }
    }

    pub fn shutdown(&self, rd: bool, wr: bool) -> Result<(), Errno> {
        self.with(|i, id| i.shutdown(id, rd, wr))
    }

    /// poll(2) bits (see [`crate::events`]).
    pub fn readiness(&self) -> u32 {
        let mut g = self.shared.lock();
        g.readiness(self.id)
    }

    pub fn local_addr(&self) -> SocketAddr {
        let mut g = self.shared.lock();
        let (a, p) = g.local(self.id);
        user_addr(self.v6, a, p)
    }

    pub fn peer_addr(&self) -> Result<SocketAddr, Errno> {
        let mut g = self.shared.lock();
        let ep = g.peer(self.id)?;
        Ok(user_addr(self.v6, Some(ep.addr), ep.port))
    }

    /// SO_ERROR: the pending error, cleared.
    pub fn take_error(&self) -> Option<Errno> {
        self.shared.lock().sock(self.id).err.take()
    }

    pub fn opts(&self) -> Opts {
        self.shared.lock().sock(self.id).opts
    }

    /// Changes options; those of a live connection apply at once.
    pub fn set_opts(&self, f: impl FnOnce(&mut Opts)) {
        self.with(|i, id| {
            f(&mut i.sock(id).opts);
            i.apply_opts(id);
        })
    }

    pub fn is_listening(&self) -> bool {
        matches!(self.shared.lock().sock(self.id).tcp, Tcp::Listening { .. })
    }

    /// FIONREAD: bytes readable (a datagram socket: the next datagram's size).
    pub fn readable_bytes(&self) -> usize {
        self.shared.lock().queued(self.id).0
    }

    /// SIOCOUTQ: bytes sent but not yet acknowledged or not yet sent.
    pub fn unsent_bytes(&self) -> usize {
        self.shared.lock().queued(self.id).1
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.shared.with(|i| i.close(self.id));
    }
}

impl Inner {
    pub fn bind(&mut self, id: SockId, addr: SocketAddr) -> Result<(), Errno> {
        let (proto, v6, opts) = {
            let s = self.sock(id);
            if s.bound.is_some() || !matches!(s.tcp, Tcp::Idle) {
                return Err(Errno::EINVAL);
            }
            (s.proto, s.v6, s.opts)
        };
        let a = stack_addr(v6, opts.v6only, addr.ip())?;
        if let Some(a) = a {
            if !self.is_local(a) {
                return Err(Errno::EADDRNOTAVAIL);
            }
        }
        let port = self.claim(id, a, addr.port())?;
        self.sock(id).bound = Some((a, port));
        if proto == Proto::Udp {
            self.udp_open(id);
        }
        Ok(())
    }

    /// Claims `port` (0: ephemeral) on `addr` for `id`.
    pub fn claim(&mut self, id: SockId, addr: Option<IpAddress>, port: u16) -> Result<u16, Errno> {
        let s = self.sock(id);
        let c = crate::ports::Claim { owner: id, addr, v6: s.v6, v6only: s.opts.v6only, reuseaddr: s.opts.reuseaddr, reuseport: s.opts.reuseport, listening: false };
        let proto = s.proto;
        self.ports.claim(proto, port, c)
    }

    /// Binds an unbound socket to an ephemeral port (connect, sendto, listen).
    pub fn autobind(&mut self, id: SockId) -> Result<u16, Errno> {
        if let Some((_, p)) = self.sock(id).bound {
            return Ok(p);
        }
        let port = self.claim(id, None, 0)?;
        self.sock(id).bound = Some((None, port));
        Ok(port)
    }

    pub fn shutdown(&mut self, id: SockId, rd: bool, wr: bool) -> Result<(), Errno> {
        match self.sock(id).proto {
            Proto::Tcp => self.tcp_shutdown(id, rd, wr),
            Proto::Udp => {
                let s = self.sock(id);
                if s.udp_peer.is_none() {
                    return Err(Errno::ENOTCONN);
                }
                s.shut_rd |= rd;
                s.shut_wr |= wr;
                Ok(())
            }
        }
    }

    pub fn close(&mut self, id: SockId) {
        match self.sock(id).proto {
            Proto::Tcp => self.tcp_close(id),
            Proto::Udp => self.udp_close(id),
        }
        if let Some(s) = self.socks.remove(&id) {
            if let Some((_, port)) = s.bound {
                self.release_port(s.proto, port, id);
            }
        }
    }

    pub fn readiness(&mut self, id: SockId) -> u32 {
        match self.sock(id).proto {
            Proto::Tcp => self.tcp_readiness(id),
            Proto::Udp => self.udp_readiness(id),
        }
    }

    pub(crate) fn signature(&mut self, id: SockId) -> Sig {
        let ev = self.readiness(id);
        let (r, w) = self.queued(id);
        let pending = match &self.sock(id).tcp {
            Tcp::Listening { ready, .. } => ready.len(),
            _ => 0,
        };
        Sig(ev, r, w, pending)
    }

    pub fn queued(&mut self, id: SockId) -> (usize, usize) {
        match self.sock(id).proto {
            Proto::Tcp => self.tcp_queued(id),
            Proto::Udp => self.udp_queued(id),
        }
    }

    pub fn local(&mut self, id: SockId) -> (Option<IpAddress>, u16) {
        let s = self.sock(id);
        if let Tcp::Conn(c) = &s.tcp {
            return (Some(c.local.addr), c.local.port);
        }
        s.bound.unwrap_or((None, 0))
    }

    pub fn peer(&mut self, id: SockId) -> Result<IpEndpoint, Errno> {
        let s = self.sock(id);
        match (&s.tcp, s.udp_peer) {
            (Tcp::Conn(c), _) if !c.connecting => Ok(c.peer),
            (_, Some(p)) => Ok(p),
            _ => Err(Errno::ENOTCONN),
        }
    }
}
