//! UDP: datagram sockets, bound on first use, optionally connected.

use crate::events::*;
use crate::socket::{remote_endpoint, user_addr, Received, MAX_BUF, MIN_BUF};
use crate::stack::Inner;
use crate::{Errno, SockId};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp::{self, PacketBuffer, PacketMetadata};
use smoltcp::wire::IpListenEndpoint;
use std::net::SocketAddr;

/// Datagrams a socket queues each way.
const QUEUE_LEN: usize = 256;
/// The largest UDP payload in one IPv4 datagram.
const MAX_PAYLOAD: usize = 65507;

impl Inner {
    /// Creates and binds the smoltcp socket behind a bound datagram socket.
    pub fn udp_open(&mut self, id: SockId) -> SocketHandle {
        if let Some(h) = self.sock(id).udp {
            return h;
        }
        let o = self.sock(id).opts;
        let (addr, port) = self.sock(id).bound.expect("bound before opened");
        let rx = PacketBuffer::new(vec![PacketMetadata::EMPTY; QUEUE_LEN], vec![0; o.rcvbuf.clamp(MIN_BUF, MAX_BUF)]);
        let tx = PacketBuffer::new(vec![PacketMetadata::EMPTY; QUEUE_LEN], vec![0; o.sndbuf.clamp(MIN_BUF, MAX_BUF).max(MAX_PAYLOAD)]);
        let mut s = udp::Socket::new(rx, tx);
        s.bind(IpListenEndpoint { addr, port }).expect("a bound port is non-zero");
        let h = self.set.add(s);
        self.sock(id).udp = Some(h);
        h
    }

    fn udp_handle(&mut self, id: SockId) -> Result<SocketHandle, Errno> {
        self.autobind(id)?;
        Ok(self.udp_open(id))
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
        self.udp_handle(id)?;
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
        if !self.routable(dst.addr) {
            return Err(Errno::ENETUNREACH);
        }
        if self.sock(id).shut_wr {
            return Err(Errno::EPIPE);
        }
        if data.len() > MAX_PAYLOAD {
            return Err(Errno::EMSGSIZE);
        }
        let h = self.udp_handle(id)?;
        let s = self.set.get_mut::<udp::Socket>(h);
        match s.send_slice(data, dst) {
            Ok(()) => Ok(data.len()),
            Err(udp::SendError::BufferFull) => Err(Errno::EAGAIN),
            Err(udp::SendError::Unaddressable) => Err(Errno::ENETUNREACH),
        }
    }

    pub fn udp_recv(&mut self, id: SockId, buf: &mut [u8], peek: bool) -> Result<Received, Errno> {
        let (v6, peer) = (self.sock(id).v6, self.sock(id).udp_peer);
        let Some(h) = self.sock(id).udp else { return Err(Errno::EAGAIN) };
        let s = self.set.get_mut::<udp::Socket>(h);
        loop {
            let (from, full) = match s.peek() {
                Ok((data, meta)) => (meta.endpoint, data.len()),
                Err(_) => return Err(Errno::EAGAIN),
            };
            // A connected socket only hears its peer.
            if peer.is_some_and(|p| p != from) {
                let _ = s.recv();
                continue;
            }
            let len = full.min(buf.len());
            if peek {
                let (data, _) = s.peek().expect("peeked above");
                buf[..len].copy_from_slice(&data[..len]);
            } else {
                let (data, _) = s.recv().expect("peeked above");
                buf[..len].copy_from_slice(&data[..len]);
            }
            return Ok(Received { len, full, from: Some(user_addr(v6, Some(from.addr), from.port)) });
        }
    }

    pub fn udp_close(&mut self, id: SockId) {
        if let Some(h) = self.sock(id).udp.take() {
            self.set.remove(h);
        }
    }

    pub fn udp_readiness(&mut self, id: SockId) -> u32 {
        let sock = &self.socks[&id];
        let mut ev = if sock.err.is_some() { POLLERR } else { 0 };
        if sock.shut_rd {
            ev |= POLLIN | POLLRDHUP;
        }
        match sock.udp {
            None => ev | POLLOUT,
            Some(h) => {
                let s = self.set.get::<udp::Socket>(h);
                if s.can_recv() {
                    ev |= POLLIN;
                }
                if s.can_send() {
                    ev |= POLLOUT;
                }
                ev
            }
        }
    }

    pub fn udp_queued(&mut self, id: SockId) -> (usize, usize) {
        let Some(h) = self.sock(id).udp else { return (0, 0) };
        let s = self.set.get_mut::<udp::Socket>(h);
        let next = s.peek().map(|(d, _)| d.len()).unwrap_or(0);
        (next, s.send_queue())
    }
}

