//! The stack over its loopback link, driven as the sentry drives it.

use crate::events::*;
use crate::{Errno, Proto, Socket, Stack};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn listener(st: &Stack, at: &str) -> Socket {
    let l = st.socket(Proto::Tcp, at.starts_with('['));
    l.bind(addr(at)).unwrap();
    l.listen(8).unwrap();
    l
}

/// Connects to `l` and accepts: (client, server side).
fn pair(st: &Stack, l: &Socket) -> (Socket, Socket) {
    let c = st.socket(Proto::Tcp, l.v6);
    c.connect(Some(l.local_addr()), false).unwrap();
    let (s, peer) = l.accept().unwrap();
    assert_eq!(peer, c.local_addr());
    (c, s)
}

fn read_all(s: &Socket, want: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0; 65536];
    while out.len() < want {
        match s.recv(&mut buf, false) {
            Ok(r) if r.len == 0 => break,
            Ok(r) => out.extend_from_slice(&buf[..r.len]),
            Err(Errno::EAGAIN) => std::thread::sleep(std::time::Duration::from_millis(1)),
            Err(e) => panic!("recv: {e:?}"),
        }
    }
    out
}

#[test]
fn tcp_exchange_over_loopback() {
    let st = Stack::loopback();
    let l = listener(&st, "127.0.0.1:8080");
    assert_eq!(l.readiness() & POLLIN, 0);
    let (c, s) = pair(&st, &l);
    assert_eq!(c.peer_addr().unwrap(), addr("127.0.0.1:8080"));
    assert!(c.local_addr().port() >= 32768);
    assert_eq!(c.send(b"GET / HTTP/1.0\r\n\r\n", None), Ok(18));
    assert_ne!(s.readiness() & POLLIN, 0);
    assert_eq!(s.readable_bytes(), 18);
    let mut buf = [0u8; 64];
    let r = s.recv(&mut buf[..4], true).unwrap();
    assert_eq!(&buf[..r.len], b"GET ");
    assert_eq!(read_all(&s, 18), b"GET / HTTP/1.0\r\n\r\n");
    s.send(b"HTTP/1.0 200 OK\r\n\r\nhi", None).unwrap();
    s.shutdown(false, true).unwrap();
    assert_eq!(read_all(&c, usize::MAX), b"HTTP/1.0 200 OK\r\n\r\nhi");
    assert_ne!(c.readiness() & POLLRDHUP, 0);
    assert_eq!(c.recv(&mut buf, false).unwrap().len, 0);
}

#[test]
fn refused_and_address_in_use() {
    let st = Stack::loopback();
    let c = st.socket(Proto::Tcp, false);
    assert_eq!(c.connect(Some(addr("127.0.0.1:9")), false), Err(Errno::ECONNREFUSED));
    let nb = st.socket(Proto::Tcp, false);
    assert_eq!(nb.connect(Some(addr("127.0.0.1:9")), true), Err(Errno::EINPROGRESS));
    assert_ne!(nb.readiness() & POLLERR, 0);
    assert_eq!(nb.take_error(), Some(Errno::ECONNREFUSED));
    let far = st.socket(Proto::Tcp, false);
    assert_eq!(far.connect(Some(addr("192.0.2.1:80")), false), Err(Errno::ENETUNREACH));
    let u = st.socket(Proto::Udp, true);
    assert_eq!(u.send(b"q", Some(addr("[2001:db8::1]:53"))), Err(Errno::ENETUNREACH));
    let _l = listener(&st, "127.0.0.1:7000");
    let b = st.socket(Proto::Tcp, false);
    assert_eq!(b.bind(addr("0.0.0.0:7000")), Err(Errno::EADDRINUSE));
    assert_eq!(b.bind(addr("10.1.2.3:7001")), Err(Errno::EADDRNOTAVAIL));
    let v6 = st.socket(Proto::Tcp, true);
    assert_eq!(v6.bind(addr("[::]:7000")), Err(Errno::EADDRINUSE));
    v6.set_opts(|o| o.v6only = true);
    v6.bind(addr("[::]:7000")).unwrap();
}

#[test]
fn close_with_unread_data_resets_the_peer() {
    let st = Stack::loopback();
    let l = listener(&st, "127.0.0.1:7100");
    let (c, s) = pair(&st, &l);
    c.send(b"unread", None).unwrap();
    drop(s);
    let mut buf = [0u8; 8];
    assert_eq!(c.recv(&mut buf, false).err(), Some(Errno::ECONNRESET));
    assert_eq!(c.send(b"x", None), Err(Errno::EPIPE));
}

#[test]
fn dual_stack_listener_accepts_ipv4_as_mapped() {
    let st = Stack::loopback();
    let l = listener(&st, "[::]:7200");
    let c = st.socket(Proto::Tcp, false);
    c.connect(Some(addr("127.0.0.1:7200")), false).unwrap();
    let (_s, peer) = l.accept().unwrap();
    assert_eq!(peer.ip().to_string(), "::ffff:127.0.0.1");
    let c6 = st.socket(Proto::Tcp, true);
    c6.connect(Some(addr("[::1]:7200")), false).unwrap();
    let (_s6, peer6) = l.accept().unwrap();
    assert_eq!(peer6.ip().to_string(), "::1");
    assert_eq!(l.accept().err(), Some(Errno::EAGAIN));
}

#[test]
fn backlog_holds_connections_until_accepted() {
    let st = Stack::loopback();
    let l = listener(&st, "127.0.0.1:7300");
    let clients: Vec<Socket> = (0..9)
        .map(|_| {
            let c = st.socket(Proto::Tcp, false);
            c.connect(Some(addr("127.0.0.1:7300")), false).unwrap();
            c
        })
        .collect();
    for c in &clients {
        let (_s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr());
    }
}

#[test]
fn bulk_transfer_arrives_intact() {
    let st = Stack::loopback();
    let l = listener(&st, "127.0.0.1:7400");
    let (c, s) = pair(&st, &l);
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0; 100_000];
    while got.len() < data.len() {
        if sent < data.len() {
            match c.send(&data[sent..], None) {
                Ok(n) => sent += n,
                Err(Errno::EAGAIN) => {}
                Err(e) => panic!("send: {e:?}"),
            }
        }
        match s.recv(&mut buf, false) {
            Ok(r) => got.extend_from_slice(&buf[..r.len]),
            Err(Errno::EAGAIN) => {}
            Err(e) => panic!("recv: {e:?}"),
        }
    }
    assert!(got == data, "bytes differ");
}

#[test]
fn nonblocking_connect_and_waker() {
    let st = Stack::loopback();
    let l = listener(&st, "127.0.0.1:7500");
    let woken = Arc::new(AtomicUsize::new(0));
    let w = woken.clone();
    l.set_waker(Arc::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    }));
    let c = st.socket(Proto::Tcp, false);
    assert_eq!(c.connect(Some(addr("127.0.0.1:7500")), true), Err(Errno::EINPROGRESS));
    assert_eq!(c.take_error(), None);
    assert!(woken.load(Ordering::SeqCst) > 0, "the listener's waker ran");
    assert_ne!(l.readiness() & POLLIN, 0);
    assert_eq!(c.connect(Some(addr("127.0.0.1:7500")), false), Err(Errno::EISCONN));
    assert_ne!(c.readiness() & POLLOUT, 0);
}

#[test]
fn udp_datagrams_both_families() {
    let st = Stack::loopback();
    for (v6, at) in [(false, "127.0.0.1:5353"), (true, "[::1]:5353")] {
        let srv = st.socket(Proto::Udp, v6);
        srv.bind(addr(at)).unwrap();
        let cli = st.socket(Proto::Udp, v6);
        assert_eq!(cli.send(b"query", Some(addr(at))), Ok(5));
        let mut buf = [0u8; 3];
        let r = srv.recv(&mut buf, true).unwrap();
        assert_eq!((r.len, r.full), (3, 5));
        let r = srv.recv(&mut buf, false).unwrap();
        assert_eq!((r.len, r.full, &buf), (3, 5, b"que"));
        let from = r.from.unwrap();
        assert_eq!(from.port(), cli.local_addr().port());
        srv.send(b"answer", Some(from)).unwrap();
        let mut big = [0u8; 64];
        let r = cli.recv(&mut big, false).unwrap();
        assert_eq!(&big[..r.len], b"answer");
        assert_eq!(cli.recv(&mut big, false).err(), Some(Errno::EAGAIN));
    }
}

#[test]
fn connected_udp_hears_only_its_peer() {
    let st = Stack::loopback();
    let a = st.socket(Proto::Udp, false);
    a.bind(addr("127.0.0.1:6000")).unwrap();
    a.connect(Some(addr("127.0.0.1:6001")), false).unwrap();
    let other = st.socket(Proto::Udp, false);
    other.send(b"stranger", Some(addr("127.0.0.1:6000"))).unwrap();
    let peer = st.socket(Proto::Udp, false);
    peer.bind(addr("127.0.0.1:6001")).unwrap();
    peer.send(b"friend", Some(addr("127.0.0.1:6000"))).unwrap();
    let mut buf = [0u8; 16];
    let r = a.recv(&mut buf, false).unwrap();
    assert_eq!(&buf[..r.len], b"friend");
    assert_eq!(a.send(b"x", None), Ok(1));
}

/// Two stacks joined by a datagram socketpair standing in for a veth
/// pair: each end is the "packet socket" of one stack's eth0.
fn wired() -> (Stack, Stack) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out-array of two ints.
    assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) }, 0);
    let end = |fd: i32, last: u8| crate::LinkSpec {
        name: "eth0".into(),
        // SAFETY: socketpair just created fd and nothing else owns it.
        fd: unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) },
        mac: [2, 0, 0, 0, 0, last],
        mtu: 1500,
        addrs: vec![(format!("10.9.0.{last}").parse().unwrap(), 24), (format!("fd00::{last}").parse().unwrap(), 64)],
        gateways: vec![],
    };
    (Stack::new(vec![end(fds[0], 1)]), Stack::new(vec![end(fds[1], 2)]))
}

fn eventually<T>(mut f: impl FnMut() -> Result<T, Errno>) -> T {
    for _ in 0..5000 {
        match f() {
            Ok(v) => return v,
            Err(Errno::EAGAIN) | Err(Errno::EINPROGRESS) => std::thread::sleep(std::time::Duration::from_millis(1)),
            Err(e) => panic!("{e:?}"),
        }
    }
    panic!("timed out");
}

/// Sends all of `data` on `c` while `s` reads it; returns what `s` read.
fn transfer(c: &Socket, s: &Socket, data: &[u8]) -> Vec<u8> {
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0; 65536];
    for _ in 0..100_000 {
        if got.len() == data.len() {
            return got;
        }
        if sent < data.len() {
            match c.send(&data[sent..], None) {
                Ok(n) => sent += n,
                Err(Errno::EAGAIN) => {}
                Err(e) => panic!("send: {e:?}"),
            }
        }
        match s.recv(&mut buf, false) {
            Ok(r) => got.extend_from_slice(&buf[..r.len]),
            Err(Errno::EAGAIN) => std::thread::sleep(std::time::Duration::from_micros(200)),
            Err(e) => panic!("recv: {e:?}"),
        }
    }
    panic!("transfer stalled at {} of {} bytes", got.len(), data.len());
}

#[test]
fn tcp_and_udp_across_an_ethernet_link() {
    let (a, b) = wired();
    assert_eq!(a.link_names(), vec!["lo", "eth0"]);
    let links = a.interfaces();
    assert_eq!(links[0].addrs, vec![("127.0.0.1".parse().unwrap(), 8), ("::1".parse().unwrap(), 128)]);
    assert_eq!((links[1].index, links[1].mtu, links[1].mac), (2, 1500, Some([2, 0, 0, 0, 0, 1])));
    assert_eq!(links[1].addrs[0], ("10.9.0.1".parse().unwrap(), 24));
    let l = b.socket(Proto::Tcp, true);
    l.bind(addr("[::]:80")).unwrap();
    l.listen(4).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for (server, v6) in [("10.9.0.2:80", false), ("[fd00::2]:80", true)] {
        let c = a.socket(Proto::Tcp, v6);
        assert_eq!(c.connect(Some(addr(server)), true), Err(Errno::EINPROGRESS));
        eventually(|| if c.readiness() & POLLOUT != 0 { Ok(()) } else { Err(Errno::EAGAIN) });
        assert_eq!(c.take_error(), None);
        let (s, peer) = eventually(|| l.accept());
        let want = if v6 { "fd00::1" } else { "::ffff:10.9.0.1" };
        assert_eq!(peer.ip().to_string(), want);
        assert!(transfer(&c, &s, &data) == data, "bytes differ over {server}");
    }
    // Nothing listens on 81: the peer stack resets, the connect is refused.
    let r = a.socket(Proto::Tcp, false);
    assert_eq!(r.connect(Some(addr("10.9.0.2:81")), true), Err(Errno::EINPROGRESS));
    eventually(|| if r.readiness() & POLLERR != 0 { Ok(()) } else { Err(Errno::EAGAIN) });
    assert_eq!(r.take_error(), Some(Errno::ECONNREFUSED));
    // Our own address goes through loopback.
    let own = a.socket(Proto::Tcp, false);
    own.bind(addr("10.9.0.1:90")).unwrap();
    own.listen(1).unwrap();
    let me = a.socket(Proto::Tcp, false);
    me.connect(Some(addr("10.9.0.1:90")), false).unwrap();
    assert_eq!(me.local_addr().ip().to_string(), "10.9.0.1");
    // No route to elsewhere.
    assert_eq!(a.socket(Proto::Tcp, false).connect(Some(addr("192.0.2.1:80")), true), Err(Errno::ENETUNREACH));

    let u = b.socket(Proto::Udp, false);
    u.bind(addr("0.0.0.0:53")).unwrap();
    let q = a.socket(Proto::Udp, false);
    q.send(b"query", Some(addr("10.9.0.2:53"))).unwrap();
    let mut buf = [0u8; 16];
    let got = eventually(|| u.recv(&mut buf, false));
    assert_eq!(&buf[..got.len], b"query");
    assert_eq!(got.from.unwrap().ip().to_string(), "10.9.0.1");
    u.send(b"answer", got.from).unwrap();
    let back = eventually(|| q.recv(&mut buf, false));
    assert_eq!(&buf[..back.len], b"answer");
}
