//! Which local ports are taken, by whom, and the ephemeral range.
//!
//! smoltcp lets any number of its sockets use one endpoint; the rules a
//! program sees (EADDRINUSE, SO_REUSEADDR, SO_REUSEPORT, dual-stack
//! wildcards) are Linux's and are kept here.

use crate::{Proto, SockId};
use abi::Errno;
use smoltcp::wire::IpAddress;
use std::collections::HashMap;

/// Linux's net.ipv4.ip_local_port_range default.
pub const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;

/// One bound socket's claim on a port.
#[derive(Clone, Copy, Debug)]
pub struct Claim {
    pub owner: SockId,
    /// None: the wildcard of `v6`'s family.
    pub addr: Option<IpAddress>,
    /// An AF_INET6 socket (its wildcard also covers IPv4 unless v6only).
    pub v6: bool,
    pub v6only: bool,
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub listening: bool,
}

impl Claim {
    /// Whether the two claims can receive the same packets.
    fn overlaps(&self, o: &Claim) -> bool {
        match (self.addr, o.addr) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.v6 == o.v6 || (!self.v6only && !o.v6only),
            (None, Some(b)) => covers(self, b),
            (Some(a), None) => covers(o, a),
        }
    }
}

/// Whether the wildcard claim `w` covers address `a`.
fn covers(w: &Claim, a: IpAddress) -> bool {
    match a {
        IpAddress::Ipv4(_) => !w.v6 || !w.v6only,
        IpAddress::Ipv6(_) => w.v6,
    }
}

pub struct Ports {
    taken: HashMap<(Proto, u16), Vec<Claim>>,
    next: u16,
}

impl Ports {
    pub fn new(seed: u64) -> Ports {
        let span = (EPHEMERAL.end() - EPHEMERAL.start()) as u64 + 1;
        Ports { taken: HashMap::new(), next: EPHEMERAL.start() + (seed % span) as u16 }
    }

    /// Claims `port` (0: an ephemeral one) and returns it.
    pub fn claim(&mut self, proto: Proto, port: u16, c: Claim) -> Result<u16, Errno> {
        if port != 0 {
            let list = self.taken.entry((proto, port)).or_default();
            let clash = list.iter().any(|o| {
                o.owner != c.owner
                    && o.overlaps(&c)
                    && !(o.reuseport && c.reuseport)
                    && !(o.reuseaddr && c.reuseaddr && !(proto == Proto::Tcp && o.listening))
            });
            if clash {
                return Err(Errno::EADDRINUSE);
            }
            list.push(c);
            return Ok(port);
        }
        let span = *EPHEMERAL.end() as u32 - *EPHEMERAL.start() as u32 + 1;
        for _ in 0..span {
            let p = self.next;
            self.next = if p == *EPHEMERAL.end() { *EPHEMERAL.start() } else { p + 1 };
            if self.taken.get(&(proto, p)).is_none_or(|l| l.is_empty()) {
                self.taken.entry((proto, p)).or_default().push(c);
                return Ok(p);
            }
        }
        Err(Errno::EADDRINUSE)
    }

    /// Marks `owner`'s claim on `port` as a listener (SO_REUSEADDR no
    /// longer lets another socket share it); EADDRINUSE when another
    /// listener already holds the same address without SO_REUSEPORT.
    pub fn listen(&mut self, proto: Proto, port: u16, owner: SockId) -> Result<(), Errno> {
        let Some(list) = self.taken.get_mut(&(proto, port)) else { return Ok(()) };
        let Some(me) = list.iter().find(|c| c.owner == owner).copied() else { return Ok(()) };
        if list.iter().any(|o| o.owner != owner && o.listening && o.overlaps(&me) && !(o.reuseport && me.reuseport)) {
            return Err(Errno::EADDRINUSE);
        }
        list.iter_mut().filter(|c| c.owner == owner).for_each(|c| c.listening = true);
        Ok(())
    }

    pub fn release(&mut self, proto: Proto, port: u16, owner: SockId) {
        if let Some(list) = self.taken.get_mut(&(proto, port)) {
            list.retain(|c| c.owner != owner);
            if list.is_empty() {
                self.taken.remove(&(proto, port));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::Ipv4Address;

    fn claim(owner: SockId, addr: Option<IpAddress>, v6: bool) -> Claim {
        Claim { owner, addr, v6, v6only: false, reuseaddr: false, reuseport: false, listening: false }
    }

    #[test]
    fn wildcards_and_families_clash_as_on_linux() {
        let mut p = Ports::new(0);
        let lo = Some(IpAddress::Ipv4(Ipv4Address::new(127, 0, 0, 1)));
        p.claim(Proto::Tcp, 80, claim(1, lo, false)).unwrap();
        assert_eq!(p.claim(Proto::Tcp, 80, claim(2, None, false)), Err(Errno::EADDRINUSE));
        // A dual-stack wildcard covers IPv4; a v6only one does not.
        assert_eq!(p.claim(Proto::Tcp, 80, claim(3, None, true)), Err(Errno::EADDRINUSE));
        p.claim(Proto::Tcp, 80, Claim { v6only: true, ..claim(4, None, true) }).unwrap();
        // Another protocol is another port space.
        p.claim(Proto::Udp, 80, claim(5, None, false)).unwrap();
        p.release(Proto::Tcp, 80, 1);
        p.claim(Proto::Tcp, 80, claim(6, None, false)).unwrap();
    }

    #[test]
    fn reuse_options() {
        let mut p = Ports::new(0);
        let ra = |o| Claim { reuseaddr: true, ..claim(o, None, false) };
        p.claim(Proto::Tcp, 8080, ra(1)).unwrap();
        p.claim(Proto::Tcp, 8080, ra(2)).unwrap();
        p.listen(Proto::Tcp, 8080, 1).unwrap();
        assert_eq!(p.listen(Proto::Tcp, 8080, 2), Err(Errno::EADDRINUSE));
        assert_eq!(p.claim(Proto::Tcp, 8080, ra(3)), Err(Errno::EADDRINUSE));
        let rp = |o| Claim { reuseport: true, ..claim(o, None, false) };
        p.claim(Proto::Tcp, 9090, rp(4)).unwrap();
        p.listen(Proto::Tcp, 9090, 4).unwrap();
        p.claim(Proto::Tcp, 9090, rp(5)).unwrap();
        p.listen(Proto::Tcp, 9090, 5).unwrap();
    }

    #[test]
    fn ephemeral_ports_are_distinct_and_in_range() {
        let mut p = Ports::new(12345);
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            let port = p.claim(Proto::Udp, 0, claim(i, None, false)).unwrap();
            assert!(EPHEMERAL.contains(&port));
            assert!(seen.insert(port));
        }
    }
}
