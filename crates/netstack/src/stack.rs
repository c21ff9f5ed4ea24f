//! The stack: the interface and its link, the smoltcp socket set, the
//! socket table, and the thread that runs timers.

use crate::device::LoopbackLink;
use crate::ports::Ports;
use crate::socket::{Sock, Socket};
use crate::{Proto, SockId, Waker};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, Ipv4Address, Ipv6Address};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Longest the timer thread sleeps without being asked (it also notices a
/// dropped stack then).
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// Shortest: smoltcp may ask for an immediate poll it cannot satisfy yet.
const MIN_SLEEP: Duration = Duration::from_millis(1);
/// Bound on interface polls per operation (each moves at least a segment).
const MAX_ROUNDS: usize = 4096;

/// A closed TCP connection finishing its FIN exchange (or sending its RST)
/// after the program let go of it; its ephemeral port stays taken until then.
pub(crate) struct Orphan {
    pub handle: SocketHandle,
    pub port: Option<u16>,
    pub owner: SockId,
}

pub(crate) struct Inner {
    pub iface: Interface,
    pub link: LoopbackLink,
    pub set: SocketSet<'static>,
    pub socks: HashMap<SockId, Sock>,
    pub ports: Ports,
    pub orphans: Vec<Orphan>,
    next_id: SockId,
    epoch: std::time::Instant,
    /// Bumped by every operation, so the timer thread knows to recompute
    /// its sleep.
    generation: u64,
    stopped: bool,
}

pub(crate) struct Shared {
    pub inner: Mutex<Inner>,
    timer: Condvar,
}

/// The sandbox's network stack. Dropping it stops its timer thread;
/// sockets still open keep their state until they are dropped.
pub struct Stack {
    shared: Arc<Shared>,
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

impl Stack {
    /// A stack with only the loopback link: `lo` with 127.0.0.1/8 and ::1.
    pub fn loopback() -> Stack {
        let mut link = LoopbackLink::default();
        let seed = seed();
        let mut cfg = Config::new(HardwareAddress::Ip);
        cfg.random_seed = seed;
        let epoch = std::time::Instant::now();
        let mut iface = Interface::new(cfg, &mut link, smoltcp::time::Instant::ZERO);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::Ipv4(Ipv4Address::new(127, 0, 0, 1)), 8)).expect("room for 127.0.0.1");
            a.push(IpCidr::new(IpAddress::Ipv6(Ipv6Address::LOCALHOST), 128)).expect("room for ::1");
        });
        let inner = Inner {
            iface,
            link,
            set: SocketSet::new(Vec::new()),
            socks: HashMap::new(),
            ports: Ports::new(seed >> 16),
            orphans: Vec::new(),
            next_id: 1,
            epoch,
            generation: 0,
            stopped: false,
        };
        let shared = Arc::new(Shared { inner: Mutex::new(inner), timer: Condvar::new() });
        let t = shared.clone();
        std::thread::Builder::new()
            .name("veil-netstack".into())
            .spawn(move || t.run_timers())
            .expect("spawn the network stack's timer thread");
        Stack { shared }
    }

    /// A new socket of `proto`; `v6` for AF_INET6.
    pub fn socket(&self, proto: Proto, v6: bool) -> Socket {
        let id = self.shared.lock().open(proto, v6);
        Socket::new(self.shared.clone(), id, proto, v6)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.timer.notify_all();
    }
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the stack, then the interface until the link is idle,
    /// then the wakers of every socket whose readiness changed.
    pub fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = self.lock();
        let r = f(&mut g);
        g.run();
        g.generation += 1;
        let wakers = g.changed();
        drop(g);
        self.timer.notify_one();
        wakers.iter().for_each(|w| w());
        r
    }

    fn run_timers(&self) {
        let mut g = self.lock();
        while !g.stopped {
            g.run();
            let wakers = g.changed();
            if !wakers.is_empty() {
                drop(g);
                wakers.iter().for_each(|w| w());
                g = self.lock();
            }
            let now = g.now();
            let inner = &mut *g;
            let sleep = inner.iface.poll_delay(now, &inner.set).map(Duration::from).unwrap_or(MAX_SLEEP);
            let sleep = sleep.clamp(MIN_SLEEP, MAX_SLEEP);
            let seen = g.generation;
            let (next, _) = self.timer.wait_timeout_while(g, sleep, |i| i.generation == seen && !i.stopped).unwrap_or_else(|e| e.into_inner());
            g = next;
        }
    }
}

impl Inner {
    pub fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.epoch.elapsed().as_micros() as i64)
    }

    pub fn open(&mut self, proto: Proto, v6: bool) -> SockId {
        let id = self.next_id;
        self.next_id += 1;
        self.socks.insert(id, Sock::new(proto, v6));
        id
    }

    /// Polls the interface until nothing is in flight on the link, then
    /// brings the socket table up to date with what happened.
    pub fn run(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let now = self.now();
            self.iface.poll(now, &mut self.link, &mut self.set);
            if self.link.idle() {
                break;
            }
        }
        self.settle_tcp();
        self.reap_orphans();
    }

    /// The wakers of the sockets whose readiness signature changed.
    fn changed(&mut self) -> Vec<Waker> {
        let ids: Vec<SockId> = self.socks.keys().copied().collect();
        let mut out = Vec::new();
        for id in ids {
            let sig = self.signature(id);
            let s = self.socks.get_mut(&id).expect("listed");
            if s.sig != sig {
                s.sig = sig;
                if let Some(w) = &s.waker {
                    out.push(w.clone());
                }
            }
        }
        out
    }

    /// Whether a packet to `dst` has a way out: an interface's subnet or
    /// a route (Linux fails connect and sendto with ENETUNREACH otherwise).
    pub fn routable(&mut self, dst: IpAddress) -> bool {
        if self.iface.ip_addrs().iter().any(|c| c.contains_addr(&dst)) {
            return true;
        }
        let mut via_route = false;
        self.iface.routes_mut().update(|r| via_route = r.iter().any(|route| route.cidr.contains_addr(&dst)));
        via_route
    }

    pub fn is_local(&self, addr: IpAddress) -> bool {
        self.iface.has_ip_addr(addr)
    }

    pub fn sock(&mut self, id: SockId) -> &mut Sock {
        self.socks.get_mut(&id).expect("a socket's id stays in the table until it is dropped")
    }

    pub fn release_port(&mut self, proto: Proto, port: u16, owner: SockId) {
        self.ports.release(proto, port, owner);
    }
}
