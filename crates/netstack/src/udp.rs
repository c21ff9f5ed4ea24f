//! UDP: datagram sockets, bound on first use, optionally connected. A
//! bound socket has one smoltcp socket on each link it hears (its address
//! decides which); sending picks the link by destination.

use crate::events::*;
use crate::socket::{remote_endpoint, user_addr, Received, MAX_BUF, MIN_BUF};
use crate::stack::Inner;
use crate::{Errno, SockId};
use smoltcp::socket::udp::{self, PacketBuffer, PacketMetadata};
use smoltcp::wire::IpListenEndpoint;
use std::net::SocketAddr;

/// Datagrams a socket queues each way.
const QUEUE_LEN: usize = 256;
/// The largest UDP payload in one IPv4 datagram.
const MAX_PAYLOAD: usize = 65507;

impl Inner {
    /// Creates and binds the smoltcp sockets behind a bound datagram socket.
    pub fn udp_open(&mut self, id: SockId) {
        if !self.sock(id).udp.is_empty() {
            return;
        }
        let o = self.sock(id).opts;
        let (addr, port) = self.sock(id).bound.expect("bound before opened");
        for link in self.links_serving(addr) {
            let rx = PacketBuffer::new(vec![PacketMetadata::EMPTY; QUEUE_LEN], vec![0; o.rcvbuf.clamp(MIN_BUF, MAX_BUF)]);
            let tx = PacketBuffer::new(vec![PacketMetadata::EMPTY; QUEUE_LEN], vec![0; o.sndbuf.clamp(MIN_BUF, MAX_BUF).max(MAX_PAYLOAD)]);
            let mut s = udp::Socket::new(rx, tx);
            s.bind(IpListenEndpoint { addr, port }).expect("a bound port is non-zero");
            let h = self.add(link, s);
            self.sock(id).udp.push(h);
        }
    }

    fn udp_bind_any(&mut self, id: SockId) -> Result<(), Errno> {
        self.autobind(id)?;
        self.udp_open(id);
        Ok(())
    }

    pub fn udp_connect(&mut self, id: SockId, to: Option<SocketAddr>) -> Result<(), Errno> {
        let Some(to) = to else {
            self.sock(id).udp_peer = None;
            return Ok(());
        };
        let (v6, v6only) = (self.sock(id).v6, self.sock(id).opts.v6only);
        let peer = remote_endpoint(v6, v6only, to)?;
        if peer.port == 0 {
            return Err(Errno::EINVAL);
        }
        if !self.routable(peer.addr) {
            return Err(Errno::ENETUNREACH);
        }
        self.udp_bind_any(id)?;
        self.sock(id).udp_peer = Some(peer);
        Ok(())
    }

    pub fn udp_send(&mut self, id: SockId, data: &[u8], to: Option<SocketAddr>) -> Result<usize, Errno> {
        let (v6, v6only) = (self.sock(id).v6, self.sock(id).opts.v6only);
        let dst = match to {
            Some(a) => remote_endpoint(v6, v6only, a)?,
            None => self.sock(id).udp_peer.ok_or(Errno::EDESTADDRREQ)?,
        };
        if dst.port == 0 {
            return Err(Errno::EINVAL);
        }
        let link = self.link_for(dst.addr).ok_or(Errno::ENETUNREACH)?;
        if self.sock(id).shut_wr {
            return Err(Errno::EPIPE);
        }
        if data.len() > MAX_PAYLOAD {
            return Err(Errno::EMSGSIZE);
        }
        self.udp_bind_any(id)?;
        // Bound to an address another link holds: no way out from here.
        let h = self.sock(id).udp.iter().copied().find(|h| h.link == link).ok_or(Errno::ENETUNREACH)?;
        match self.get_mut::<udp::Socket>(h).send_slice(data, dst) {
            Ok(()) => Ok(data.len()),
            Err(udp::SendError::BufferFull) => Err(Errno::EAGAIN),
            Err(udp::SendError::Unaddressable) => Err(Errno::ENETUNREACH),
        }
    }

    pub fn udp_recv(&mut self, id: SockId, buf: &mut [u8], peek: bool) -> Result<Received, Errno> {
        let (v6, peer) = (self.sock(id).v6, self.sock(id).udp_peer);
        let hs = self.sock(id).udp.clone();
        for h in hs {
            let s = self.get_mut::<udp::Socket>(h);
            while let Some((from, full)) = s.peek().ok().map(|(data, meta)| (meta.endpoint, data.len())) {
                // A connected socket only hears its peer.
                if peer.is_some_and(|p| p != from) {
                    let _ = s.recv();
                    continue;
                }
                let len = full.min(buf.len());
                let data = if peek { s.peek().expect("peeked above").0 } else { s.recv().expect("peeked above").0 };
                buf[..len].copy_from_slice(&data[..len]);
                return Ok(Received { len, full, from: Some(user_addr(v6, Some(from.addr), from.port)) });
            }
        }
        Err(Errno::EAGAIN)
    }

    pub fn udp_close(&mut self, id: SockId) {
        for h in std::mem::take(&mut self.sock(id).udp) {
            self.remove(h);
        }
    }

    pub fn udp_readiness(&mut self, id: SockId) -> u32 {
        let sock = &self.socks[&id];
        let mut ev = if sock.err.is_some() { POLLERR } else { 0 };
        if sock.shut_rd {
            ev |= POLLIN | POLLRDHUP;
        }
        if sock.udp.is_empty() {
            return ev | POLLOUT;
        }
        for &h in &sock.udp {
            let s = self.get::<udp::Socket>(h);
            if s.can_recv() {
                ev |= POLLIN;
            }
            if s.can_send() {
                ev |= POLLOUT;
            }
        }
        ev
    }

    pub fn udp_queued(&mut self, id: SockId) -> (usize, usize) {
        let hs = self.sock(id).udp.clone();
        let (mut next, mut out) = (0, 0);
        for h in hs {
            let s = self.get_mut::<udp::Socket>(h);
            if next == 0 {
                next = s.peek().map(|(d, _)| d.len()).unwrap_or(0);
            }
            out += s.send_queue();
        }
        (next, out)
    }
}
