//! The stack: the interface and its link, the smoltcp socket set, the
//! socket table, and the thread that runs timers.

use crate::device::{Link, LoopbackLink, PacketLink};
use crate::ports::Ports;
use crate::socket::{Sock, Socket};
use crate::{Proto, SockId, Waker};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::AnySocket;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address, Ipv6Address};
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Longest the timer thread sleeps without being asked (it also notices a
/// dropped stack then).
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// Shortest: smoltcp may ask for an immediate poll it cannot satisfy yet.
const MIN_SLEEP: Duration = Duration::from_millis(1);
/// Bound on interface polls per operation (each moves at least a segment).
const MAX_ROUNDS: usize = 4096;

/// A smoltcp socket: which link's set holds it, and its handle there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct H {
    pub link: usize,
    pub h: SocketHandle,
}

/// A closed TCP connection finishing its FIN exchange (or sending its RST)
/// after the program let go of it; its ephemeral port stays taken until then.
pub(crate) struct Orphan {
    pub handle: H,
    pub port: Option<u16>,
    pub owner: SockId,
}

/// A link of the stack: its interface, its device and the smoltcp sockets
/// whose packets use it. Link 0 is loopback.
pub(crate) struct Net {
    pub name: String,
    pub iface: Interface,
    pub dev: Link,
    pub set: SocketSet<'static>,
}

/// A link as programs see it (netlink, /proc/net): index 1 is `lo`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// None for loopback.
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    pub addrs: Vec<(IpAddr, u8)>,
    pub gateways: Vec<IpAddr>,
}

/// An interface of the container's network namespace, as the sandbox
/// takes it over.
pub struct LinkSpec {
    pub name: String,
    /// An AF_PACKET socket bound to the interface.
    pub fd: OwnedFd,
    pub mac: [u8; 6],
    pub mtu: usize,
    /// Addresses with their prefix lengths.
    pub addrs: Vec<(IpAddr, u8)>,
    /// Default gateways (one per family at most).
    pub gateways: Vec<IpAddr>,
}

pub(crate) struct Inner {
    pub links: Vec<Net>,
    pub socks: HashMap<SockId, Sock>,
    pub ports: Ports,
    pub orphans: Vec<Orphan>,
    next_id: SockId,
    epoch: std::time::Instant,
    /// Bumped by every operation, so the timer thread knows to recompute
    /// its sleep.
    generation: u64,
    /// When the timer thread will next run by itself.
    wakes_at: Option<smoltcp::time::Instant>,
    stopped: bool,
}

pub(crate) struct Shared {
    pub inner: Mutex<Inner>,
    timer: Condvar,
    /// With packet links the timer thread sleeps in poll(2) on their
    /// sockets and this eventfd, written to wake it early.
    wake: Option<OwnedFd>,
    packet_fds: Vec<i32>,
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

fn loopback_iface(link: &mut Link, seed: u64, extra: &[(IpAddr, u8)]) -> Interface {
    let mut cfg = Config::new(HardwareAddress::Ip);
    cfg.random_seed = seed;
    let mut iface = Interface::new(cfg, link, smoltcp::time::Instant::ZERO);
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::Ipv4(Ipv4Address::new(127, 0, 0, 1)), 8)).expect("room for 127.0.0.1");
        a.push(IpCidr::new(IpAddress::Ipv6(Ipv6Address::LOCALHOST), 128)).expect("room for ::1");
        // The other links' addresses are reached through loopback too, as
        // on Linux (a connection to one's own address never leaves).
        for (ip, _) in extra {
            let full = if ip.is_ipv4() { 32 } else { 128 };
            let _ = a.push(IpCidr::new((*ip).into(), full));
        }
    });
    iface
}

fn packet_iface(link: &mut Link, seed: u64, spec: &LinkSpec) -> Interface {
    let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(spec.mac)));
    cfg.random_seed = seed;
    let mut iface = Interface::new(cfg, link, smoltcp::time::Instant::ZERO);
    iface.update_ip_addrs(|a| {
        for (ip, len) in &spec.addrs {
            let _ = a.push(IpCidr::new((*ip).into(), *len));
        }
    });
    for gw in &spec.gateways {
        let _ = match gw {
            IpAddr::V4(g) => iface.routes_mut().add_default_ipv4_route(*g).map(|_| ()),
            IpAddr::V6(g) => iface.routes_mut().add_default_ipv6_route(*g).map(|_| ()),
        };
    }
    iface
}

impl Stack {
    /// A stack with only the loopback link: `lo` with 127.0.0.1/8 and ::1.
    pub fn loopback() -> Stack {
        Stack::new(Vec::new())
    }

    /// A stack with loopback and the given taken-over links.
    pub fn new(specs: Vec<LinkSpec>) -> Stack {
        let seed = seed();
        let epoch = std::time::Instant::now();
        let own: Vec<(IpAddr, u8)> = specs.iter().flat_map(|s| s.addrs.iter().copied()).collect();
        let mut lo = Link::Loopback(LoopbackLink::default());
        let lo_iface = loopback_iface(&mut lo, seed, &own);
        let mut links = vec![Net { name: "lo".into(), iface: lo_iface, dev: lo, set: SocketSet::new(Vec::new()) }];
        let mut packet_fds = Vec::new();
        for (i, spec) in specs.into_iter().enumerate() {
            let mut dev = Link::Packet(PacketLink::new(spec.fd.try_clone().expect("dup a packet socket"), spec.mtu));
            let iface = packet_iface(&mut dev, seed.wrapping_add(i as u64 + 1), &spec);
            packet_fds.extend(dev.packet_fd());
            links.push(Net { name: spec.name, iface, dev, set: SocketSet::new(Vec::new()) });
        }
        let wake = if packet_fds.is_empty() {
            None
        } else {
            // SAFETY: eventfd has no memory-safety preconditions.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            assert!(fd >= 0, "eventfd for the network stack: {}", std::io::Error::last_os_error());
            // SAFETY: fd was just created and is owned by nobody else.
            Some(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        let inner = Inner {
            links,
            socks: HashMap::new(),
            ports: Ports::new(seed >> 16),
            orphans: Vec::new(),
            next_id: 1,
            epoch,
            generation: 0,
            wakes_at: None,
            stopped: false,
        };
        let shared = Arc::new(Shared { inner: Mutex::new(inner), timer: Condvar::new(), wake, packet_fds });
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

    /// The links' names, in order (loopback first).
    pub fn link_names(&self) -> Vec<String> {
        self.shared.lock().links.iter().map(|l| l.name.clone()).collect()
    }

    /// The links as `ip link`/`ip addr`/`ip route` show them.
    pub fn interfaces(&self) -> Vec<LinkInfo> {
        let mut g = self.shared.lock();
        let mut out = Vec::new();
        for (i, l) in g.links.iter_mut().enumerate() {
            let mac = match &l.dev {
                Link::Packet(_) => match l.iface.hardware_addr() {
                    HardwareAddress::Ethernet(m) => Some(m.0),
                    _ => None,
                },
                Link::Loopback(_) => None,
            };
            let mtu = match &l.dev {
                Link::Loopback(_) => 65536,
                Link::Packet(_) => smoltcp::phy::Device::capabilities(&l.dev).max_transmission_unit - 14,
            };
            let addrs: Vec<(IpAddr, u8)> = l
                .iface
                .ip_addrs()
                .iter()
                .map(|c| (IpAddr::from(c.address()), c.prefix_len()))
                // The other links' addresses that loopback also carries are theirs.
                .filter(|(a, len)| i != 0 || a.is_loopback() || (*len != 32 && *len != 128))
                .collect();
            let mut gateways = Vec::new();
            l.iface.routes_mut().update(|r| gateways.extend(r.iter().map(|route| IpAddr::from(route.via_router))));
            out.push(LinkInfo { index: i as u32 + 1, name: l.name.clone(), mac, mtu: mtu as u32, addrs, gateways });
        }
        out
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.kick();
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
        // Wake the timer thread only when a timer now falls before the
        // moment it sleeps until.
        let due = g.poll_at();
        let kick = match (due, g.wakes_at) {
            (Some(d), Some(w)) => d < w,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if kick {
            g.generation += 1;
        }
        let wakers = g.changed();
        drop(g);
        if kick {
            self.kick();
        }
        wakers.iter().for_each(|w| w());
        r
    }

    fn kick(&self) {
        self.timer.notify_one();
        if let Some(fd) = &self.wake {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to our own eventfd.
            unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
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
            let sleep = g.poll_at().map(|at| Duration::from(at - now.min(at))).unwrap_or(MAX_SLEEP);
            let sleep = sleep.clamp(MIN_SLEEP, MAX_SLEEP);
            g.wakes_at = Some(now + smoltcp::time::Duration::from(sleep));
            let seen = g.generation;
            match &self.wake {
                None => {
                    let (next, _) = self.timer.wait_timeout_while(g, sleep, |i| i.generation == seen && !i.stopped).unwrap_or_else(|e| e.into_inner());
                    g = next;
                }
                Some(wake) => {
                    drop(g);
                    self.wait_frames(wake, sleep);
                    g = self.lock();
                }
            }
        }
    }

    /// Sleeps until a frame arrives on a packet link, a kick, or `sleep` passes.
    fn wait_frames(&self, wake: &OwnedFd, sleep: Duration) {
        let mut fds: Vec<libc::pollfd> = self.packet_fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
        fds.push(libc::pollfd { fd: wake.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        let ms = sleep.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: fds is a valid array of fds.len() pollfds.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms.max(1)) };
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our own non-blocking eventfd.
        unsafe { libc::read(wake.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
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
        let now = self.now();
        for l in &mut self.links {
            for _ in 0..MAX_ROUNDS {
                l.iface.poll(now, &mut l.dev, &mut l.set);
                if l.dev.idle() {
                    break;
                }
            }
        }
        self.settle_tcp();
        self.reap_orphans();
    }

    /// When the next timer of any link falls due.
    pub fn poll_at(&mut self) -> Option<smoltcp::time::Instant> {
        let now = self.now();
        self.links.iter_mut().filter_map(|l| l.iface.poll_at(now, &l.set)).min()
    }

    /// The link a packet to `dst` leaves by: loopback for our own
    /// addresses, else the link on its subnet, else one with a route.
    pub fn link_for(&mut self, dst: IpAddress) -> Option<usize> {
        if self.links[0].iface.ip_addrs().iter().any(|c| c.contains_addr(&dst)) {
            return Some(0);
        }
        if let Some(i) = (1..self.links.len()).find(|&i| self.links[i].iface.ip_addrs().iter().any(|c| c.contains_addr(&dst))) {
            return Some(i);
        }
        (1..self.links.len()).find(|&i| {
            let mut via = false;
            self.links[i].iface.routes_mut().update(|r| via = r.iter().any(|route| route.cidr.contains_addr(&dst)));
            via
        })
    }

    /// The links that carry packets to `addr` (None: every address).
    pub fn links_serving(&self, addr: Option<IpAddress>) -> Vec<usize> {
        (0..self.links.len()).filter(|&i| addr.is_none_or(|a| self.links[i].iface.has_ip_addr(a))).collect()
    }

    pub fn get<T: AnySocket<'static>>(&self, h: H) -> &T {
        self.links[h.link].set.get::<T>(h.h)
    }

    pub fn get_mut<T: AnySocket<'static>>(&mut self, h: H) -> &mut T {
        self.links[h.link].set.get_mut::<T>(h.h)
    }

    pub fn add<T: AnySocket<'static>>(&mut self, link: usize, s: T) -> H {
        H { link, h: self.links[link].set.add(s) }
    }

    pub fn remove(&mut self, h: H) {
        self.links[h.link].set.remove(h.h);
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
        self.link_for(dst).is_some()
    }

    pub fn is_local(&self, addr: IpAddress) -> bool {
        self.links[0].iface.has_ip_addr(addr)
    }

    pub fn sock(&mut self, id: SockId) -> &mut Sock {
        self.socks.get_mut(&id).expect("a socket's id stays in the table until it is dropped")
    }

    pub fn release_port(&mut self, proto: Proto, port: u16, owner: SockId) {
        self.ports.release(proto, port, owner);
    }
}
