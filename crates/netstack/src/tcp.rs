//! TCP: listeners with a backlog, connections, their errors and readiness.

use crate::events::*;
use crate::socket::{remote_endpoint, user_addr, Conn, Received, Tcp, MAX_BUF, MIN_BUF};
use crate::stack::{Inner, Orphan};
use crate::{Errno, Proto, SockId};
use crate::stack::H;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Duration;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};
use std::collections::VecDeque;
use std::net::SocketAddr;

/// Most smoltcp sockets a listener keeps in LISTEN at once: handshakes in
/// progress at the same moment (completed ones wait in the accept queue,
/// up to the backlog).
const MAX_POOL: usize = 32;
/// Linux's SOMAXCONN.
const SOMAXCONN: usize = 4096;

/// States in which the peer has sent its FIN (or the connection is gone).
fn peer_closed(s: State) -> bool {
    matches!(s, State::CloseWait | State::LastAck | State::Closing | State::TimeWait | State::Closed)
}

impl Inner {
    fn new_tcp(&self, id: SockId) -> tcp::Socket<'static> {
        let o = self.socks[&id].opts;
        let rx = tcp::SocketBuffer::new(vec![0; o.rcvbuf.clamp(MIN_BUF, MAX_BUF)]);
        let tx = tcp::SocketBuffer::new(vec![0; o.sndbuf.clamp(MIN_BUF, MAX_BUF)]);
        let mut s = tcp::Socket::new(rx, tx);
        s.set_congestion_control(tcp::CongestionControl::Cubic);
        // Frames on the loopback link cost nothing to send: acknowledge at
        // once instead of delaying (which, with Nagle, stalls a request
        // written in two pieces).
        s.set_ack_delay(None);
        configure(&mut s, &o);
        s
    }

    /// Applies the socket's options to its live connection.
    pub fn apply_opts(&mut self, id: SockId) {
        let o = self.socks[&id].opts;
        if let Tcp::Conn(c) = &self.socks[&id].tcp {
            configure(self.get_mut::<tcp::Socket>(c.handle), &o);
        }
    }

    pub fn tcp_listen(&mut self, id: SockId, backlog: usize) -> Result<(), Errno> {
        let backlog = backlog.min(SOMAXCONN);
        match &mut self.sock(id).tcp {
            Tcp::Conn(_) => return Err(Errno::EINVAL),
            Tcp::Listening { backlog: b, .. } => {
                *b = backlog;
                self.refill(id);
                return Ok(());
            }
            Tcp::Idle => {}
        }
        let port = self.autobind(id)?;
        self.ports.listen(Proto::Tcp, port, id)?;
        self.sock(id).tcp = Tcp::Listening { backlog, pool: Vec::new(), ready: VecDeque::new() };
        self.refill(id);
        Ok(())
    }

    /// Keeps enough smoltcp sockets in LISTEN, on every link the listener
    /// hears, for the room left in the accept queue.
    fn refill(&mut self, id: SockId) {
        let (addr, port) = self.sock(id).bound.expect("a listener is bound");
        let ep = IpListenEndpoint { addr, port };
        for link in self.links_serving(addr) {
            let want = match &self.sock(id).tcp {
                Tcp::Listening { backlog, pool, ready } => {
                    let here = pool.iter().filter(|h| h.link == link).count();
                    (backlog + 1).saturating_sub(ready.len()).min(MAX_POOL).saturating_sub(here)
                }
                _ => return,
            };
            for _ in 0..want {
                let mut s = self.new_tcp(id);
                s.listen(ep).expect("a fresh socket listens on a bound port");
                let h = self.add(link, s);
                if let Tcp::Listening { pool, .. } = &mut self.sock(id).tcp {
                    pool.push(h);
                }
            }
        }
    }

    pub fn tcp_accept(&mut self, id: SockId) -> Result<(SockId, SocketAddr), Errno> {
        let (v6, opts) = (self.sock(id).v6, self.sock(id).opts);
        let h = match &mut self.sock(id).tcp {
            Tcp::Listening { ready, .. } => ready.pop_front().ok_or(Errno::EAGAIN)?,
            _ => return Err(Errno::EINVAL),
        };
        self.refill(id);
        let s = self.get::<tcp::Socket>(h);
        let (local, peer) = (s.local_endpoint().expect("connected"), s.remote_endpoint().expect("connected"));
        let state = s.state();
        let nid = self.open_accepted(v6, opts);
        self.sock(nid).tcp = Tcp::Conn(Conn { handle: h, last: state, connecting: false, local, peer, own_port: None });
        Ok((nid, user_addr(v6, Some(peer.addr), peer.port)))
    }

    fn open_accepted(&mut self, v6: bool, opts: crate::Opts) -> SockId {
        let nid = self.open(Proto::Tcp, v6);
        self.sock(nid).opts = opts;
        nid
    }

    pub fn tcp_connect(&mut self, id: SockId, to: SocketAddr) -> Result<(), Errno> {
        let (v6, opts) = (self.sock(id).v6, self.sock(id).opts);
        match &mut self.sock(id).tcp {
            Tcp::Listening { .. } => return Err(Errno::EISCONN),
            Tcp::Conn(c) if c.connecting => return Err(Errno::EALREADY),
            Tcp::Conn(_) => {
                return match self.sock(id).err.take() {
                    Some(e) => Err(e),
                    None => Err(Errno::EISCONN),
                }
            }
            Tcp::Idle => {}
        }
        let remote = remote_endpoint(v6, opts.v6only, to)?;
        let link = self.link_for(remote.addr).ok_or(Errno::ENETUNREACH)?;
        let own = self.sock(id).bound.is_none();
        let port = self.autobind(id)?;
        let local_addr = self.sock(id).bound.and_then(|b| b.0);
        let mut s = self.new_tcp(id);
        let r = s.connect(self.links[link].iface.context(), remote, IpListenEndpoint { addr: local_addr, port });
        if r.is_err() {
            if own {
                self.release_port(Proto::Tcp, port, id);
                self.sock(id).bound = None;
            }
            return Err(Errno::ENETUNREACH);
        }
        let local = IpEndpoint::new(s.local_endpoint().map(|e| e.addr).expect("connect chose a source"), port);
        let handle = self.add(link, s);
        let sock = self.sock(id);
        if own {
            // The claim moves with the connection (released when it is reaped).
            sock.bound = None;
        }
        sock.tcp = Tcp::Conn(Conn { handle, last: State::SynSent, connecting: true, local, peer: remote, own_port: own.then_some(port) });
        Ok(())
    }

    /// How a connect started by [`Inner::tcp_connect`] stands after the
    /// stack ran: Ok, EINPROGRESS, or the error that ended it.
    pub fn tcp_connect_result(&mut self, id: SockId) -> Result<(), Errno> {
        let s = self.sock(id);
        match &s.tcp {
            Tcp::Conn(c) if c.connecting => Err(Errno::EINPROGRESS),
            Tcp::Conn(_) => match s.err.take() {
                Some(e) => Err(e),
                None => Ok(()),
            },
            _ => Err(Errno::EINVAL),
        }
    }

    /// Brings every TCP socket up to date after the interface ran: moves
    /// listeners' finished handshakes to their accept queues, and notes
    /// connections that completed, were refused or were reset.
    pub fn settle_tcp(&mut self) {
        let ids: Vec<SockId> = self.socks.iter().filter(|(_, s)| s.proto == Proto::Tcp && !matches!(s.tcp, Tcp::Idle)).map(|(id, _)| *id).collect();
        for id in ids {
            if matches!(self.sock(id).tcp, Tcp::Listening { .. }) {
                self.settle_listener(id);
            } else {
                self.settle_conn(id);
            }
        }
    }

    fn settle_listener(&mut self, id: SockId) {
        let v6 = self.sock(id).v6;
        let pool = match &mut self.sock(id).tcp {
            Tcp::Listening { pool, .. } => std::mem::take(pool),
            _ => return,
        };
        let mut keep = Vec::with_capacity(pool.len());
        let mut done = Vec::new();
        for h in pool {
            let s = self.get_mut::<tcp::Socket>(h);
            match s.state() {
                State::Listen | State::SynReceived => keep.push(h),
                State::Closed => {
                    // Reset during the handshake: listen again.
                    let ep = s.listen_endpoint();
                    if s.listen(ep).is_ok() {
                        keep.push(h);
                    } else {
                        self.remove(h);
                    }
                }
                _ => {
                    let wrong_family = !v6 && s.remote_endpoint().is_some_and(|e| matches!(e.addr, smoltcp::wire::IpAddress::Ipv6(_)));
                    if wrong_family {
                        // An AF_INET wildcard listener cannot hand out an
                        // IPv6 peer: refuse it as a missing listener would.
                        s.abort();
                        self.orphans.push(Orphan { handle: h, port: None, owner: id });
                    } else {
                        done.push(h);
                    }
                }
            }
        }
        if let Tcp::Listening { pool, ready, .. } = &mut self.sock(id).tcp {
            *pool = keep;
            ready.extend(done);
        }
        self.refill(id);
    }

    fn settle_conn(&mut self, id: SockId) {
        let Tcp::Conn(c) = &self.sock(id).tcp else { return };
        let h = c.handle;
        let last = c.last;
        let s = self.get::<tcp::Socket>(h);
        let now = s.state();
        if now == last {
            return;
        }
        let local = s.local_endpoint();
        let sock = self.sock(id);
        let Tcp::Conn(c) = &mut sock.tcp else { return };
        c.last = now;
        if let Some(l) = local {
            c.local = l;
        }
        if c.connecting && !matches!(now, State::SynSent | State::SynReceived) {
            c.connecting = false;
        }
        if now == State::Closed && sock.err.is_none() {
            sock.err = match last {
                State::SynSent | State::SynReceived => Some(Errno::ECONNREFUSED),
                State::TimeWait | State::LastAck | State::Closing => None,
                _ => Some(Errno::ECONNRESET),
            };
        }
    }

    pub fn reap_orphans(&mut self) {
        let mut i = 0;
        while i < self.orphans.len() {
            let h = self.orphans[i].handle;
            if self.get::<tcp::Socket>(h).state() == State::Closed {
                let o = self.orphans.swap_remove(i);
                self.remove(o.handle);
                if let Some(p) = o.port {
                    self.release_port(Proto::Tcp, p, o.owner);
                }
            } else {
                i += 1;
            }
        }
    }

    fn conn(&mut self, id: SockId) -> Result<H, Errno> {
        match &self.sock(id).tcp {
            Tcp::Conn(c) => Ok(c.handle),
            _ => Err(Errno::ENOTCONN),
        }
    }

    pub fn tcp_send(&mut self, id: SockId, data: &[u8], with_addr: bool) -> Result<usize, Errno> {
        let h = match self.conn(id) {
            Ok(h) => h,
            // Linux: sending on a socket that never connected is EPIPE.
            Err(_) => return Err(if with_addr { Errno::EOPNOTSUPP } else { Errno::EPIPE }),
        };
        if let Some(e) = self.sock(id).err.take() {
            return Err(e);
        }
        let connecting = matches!(&self.sock(id).tcp, Tcp::Conn(c) if c.connecting);
        let shut_wr = self.sock(id).shut_wr;
        let s = self.get_mut::<tcp::Socket>(h);
        if connecting {
            return Err(Errno::EAGAIN);
        }
        if shut_wr || !s.may_send() {
            return Err(Errno::EPIPE);
        }
        match s.send_slice(data) {
            Ok(0) if !data.is_empty() => Err(Errno::EAGAIN),
            Ok(n) => Ok(n),
            Err(_) => Err(Errno::EPIPE),
        }
    }

    pub fn tcp_recv(&mut self, id: SockId, buf: &mut [u8], peek: bool) -> Result<Received, Errno> {
        let h = self.conn(id)?;
        let (shut_rd, connecting) = (self.sock(id).shut_rd, matches!(&self.sock(id).tcp, Tcp::Conn(c) if c.connecting));
        let s = self.get_mut::<tcp::Socket>(h);
        if s.can_recv() && !buf.is_empty() {
            let n = if peek { s.peek_slice(buf) } else { s.recv_slice(buf) }.unwrap_or(0);
            return Ok(Received { len: n, full: n, from: None });
        }
        let open = s.may_recv();
        if let Some(e) = self.sock(id).err.take() {
            return Err(e);
        }
        if connecting {
            return Err(Errno::EAGAIN);
        }
        if shut_rd || !open || buf.is_empty() {
            return Ok(Received { len: 0, full: 0, from: None });
        }
        Err(Errno::EAGAIN)
    }

    pub fn tcp_shutdown(&mut self, id: SockId, rd: bool, wr: bool) -> Result<(), Errno> {
        match &self.sock(id).tcp {
            Tcp::Idle => Err(Errno::ENOTCONN),
            Tcp::Listening { .. } => {
                if rd {
                    self.drop_listener(id);
                    self.sock(id).tcp = Tcp::Idle;
                }
                Ok(())
            }
            Tcp::Conn(c) => {
                let h = c.handle;
                if wr {
                    self.get_mut::<tcp::Socket>(h).close();
                }
                let s = self.sock(id);
                s.shut_rd |= rd;
                s.shut_wr |= wr;
                Ok(())
            }
        }
    }

    fn drop_listener(&mut self, id: SockId) {
        if let Tcp::Listening { pool, ready, .. } = std::mem::replace(&mut self.sock(id).tcp, Tcp::Idle) {
            for h in pool.into_iter().chain(ready) {
                self.get_mut::<tcp::Socket>(h).abort();
                self.orphans.push(Orphan { handle: h, port: None, owner: id });
            }
        }
    }

    pub fn tcp_close(&mut self, id: SockId) {
        match &self.sock(id).tcp {
            Tcp::Idle => {}
            Tcp::Listening { .. } => self.drop_listener(id),
            Tcp::Conn(c) => {
                let (h, port) = (c.handle, c.own_port);
                let linger0 = self.sock(id).opts.linger == Some(0);
                let s = self.get_mut::<tcp::Socket>(h);
                // Unread data or SO_LINGER 0: reset, as Linux does.
                if linger0 || s.recv_queue() > 0 || s.state() == State::SynSent {
                    s.abort();
                } else {
                    s.close();
                }
                self.orphans.push(Orphan { handle: h, port, owner: id });
            }
        }
    }

    pub fn tcp_readiness(&mut self, id: SockId) -> u32 {
        let sock = &self.socks[&id];
        let err = if sock.err.is_some() { POLLERR } else { 0 };
        let c = match &sock.tcp {
            Tcp::Idle => return POLLOUT | POLLHUP,
            Tcp::Listening { ready, .. } => return if ready.is_empty() { 0 } else { POLLIN },
            Tcp::Conn(c) => c,
        };
        if c.connecting {
            return err;
        }
        let s = self.get::<tcp::Socket>(c.handle);
        let st = s.state();
        let mut ev = err;
        if s.can_recv() || !s.may_recv() || sock.shut_rd {
            ev |= POLLIN;
        }
        if peer_closed(st) || sock.shut_rd {
            ev |= POLLRDHUP;
        }
        let sent_fin = sock.shut_wr || !s.may_send();
        if st == State::Closed || (sent_fin && peer_closed(st)) {
            ev |= POLLHUP;
        }
        if sent_fin || s.send_queue() < s.send_capacity() {
            ev |= POLLOUT;
        }
        ev
    }

    pub fn tcp_queued(&mut self, id: SockId) -> (usize, usize) {
        match &self.socks[&id].tcp {
            Tcp::Conn(c) => {
                let s = self.get::<tcp::Socket>(c.handle);
                (s.recv_queue(), s.send_queue())
            }
            _ => (0, 0),
        }
    }
}

fn configure(s: &mut tcp::Socket<'static>, o: &crate::Opts) {
    s.set_nagle_enabled(!o.nodelay);
    s.set_keep_alive(o.keepalive.then(|| Duration::from_secs(o.keepidle.max(1) as u64)));
}

