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
