//! Socket system calls: creation, names, connections, data transfer with
//! control messages (SCM_RIGHTS, SCM_CREDENTIALS), options.
//!
//! AF_UNIX is served by net/unix.rs, AF_INET and AF_INET6 by net/inet.rs
//! (the sandbox's TCP/IP stack); every other family fails at
//! socket()/socketpair() with EAFNOSUPPORT, which is what glibc and
//! python expect from a kernel without that family (getaddrinfo's netlink
//! probe, for one, falls back quietly).

use super::caller::caller;
use super::iovec::{gather, read_iovecs, MAX_IO};
use super::path::fs_context;
use super::{Args, Entry};
use crate::fs::vfs::Follow;
use crate::fs::{anon, OpenFile};
use crate::net::consts::*;
use crate::net::inet::{self, InetSocket};
use crate::net::unix::{self, Key, Name, UnixSocket};
use crate::net::Ucred;
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::{Iovec, Pod, Timeval};
use abi::Errno;
use std::sync::Arc;
use std::time::Duration;

pub const SYSCALLS: &[Entry] = &[
    sys!(SOCKET, sys_socket, [Int, Int, Int], partial "AF_UNIX (stream, datagram, seqpacket), AF_INET and AF_INET6 (TCP, UDP); other families fail with EAFNOSUPPORT"),
    sys!(SOCKETPAIR, sys_socketpair, [Int, Int, Int, Hex], partial "AF_UNIX only (AF_INET fails with EOPNOTSUPP, as on Linux)"),
    sys!(BIND, sys_bind, [Int, Hex, Int], partial "AF_UNIX; a bound path is kept in a sentry table, not yet as a socket inode (stat/unlink do not see it)"),
    sys!(LISTEN, sys_listen, [Int, Int]),
    sys!(ACCEPT, sys_accept, [Int, Hex, Hex]),
    sys!(ACCEPT4, sys_accept4, [Int, Hex, Hex, Hex]),
    sys!(CONNECT, sys_connect, [Int, Hex, Int]),
    sys!(SHUTDOWN, sys_shutdown, [Int, Int]),
    sys!(SENDTO, sys_sendto, [Int, Hex, Int, Hex, Hex, Int], partial "MSG_OOB is refused (EOPNOTSUPP), as for unix sockets on Linux"),
    sys!(RECVFROM, sys_recvfrom, [Int, Hex, Int, Hex, Hex, Hex], partial "MSG_OOB and MSG_ERRQUEUE are refused"),
    sys!(SENDMSG, sys_sendmsg, [Int, Hex, Hex], partial "SCM_RIGHTS and SCM_CREDENTIALS control messages"),
    sys!(RECVMSG, sys_recvmsg, [Int, Hex, Hex], partial "SCM_RIGHTS and SCM_CREDENTIALS control messages"),
    sys!(SENDMMSG, sys_sendmmsg, [Int, Hex, Int, Hex]),
    sys!(RECVMMSG, sys_recvmmsg, [Int, Hex, Int, Hex, Hex], partial "the timeout is checked between messages, as on Linux"),
    sys!(GETSOCKNAME, sys_getsockname, [Int, Hex, Hex]),
    sys!(GETPEERNAME, sys_getpeername, [Int, Hex, Hex]),
    sys!(SETSOCKOPT, sys_setsockopt, [Int, Int, Int, Hex, Int], partial "SOL_SOCKET options; inet: TCP_NODELAY, TCP_KEEPIDLE, IPV6_V6ONLY act, IP_TOS/IP_TTL/TCP_CORK and other common ones are kept and reported back without effect; others fail with ENOPROTOOPT"),
    sys!(GETSOCKOPT, sys_getsockopt, [Int, Int, Int, Hex, Hex], partial "SOL_SOCKET options; inet: as setsockopt, TCP_INFO with the state only; others fail with ENOPROTOOPT"),
];

/// sizeof(struct sockaddr_un).
const SOCKADDR_UN_LEN: usize = 110;
const MSGHDR_LEN: usize = 56;
const MMSGHDR_LEN: usize = 64;
const CMSG_HDR: usize = 16;

fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// The unix socket behind `fd`: EBADF, or ENOTSOCK for other files.
fn socket_of(t: &TaskCtx, fd: i32) -> SysResult<(Arc<OpenFile>, Arc<UnixSocket>)> {
    let f = t.files().get(fd)?;
    let s = anon::get::<UnixSocket>(&f).ok_or(Errno::ENOTSOCK)?;
    Ok((f, s))
}

/// The inet socket behind `fd`, if it is one.
fn inet_of(t: &TaskCtx, fd: i32) -> Option<(Arc<OpenFile>, Arc<InetSocket>)> {
    let f = t.files().get(fd).ok()?;
    let s = anon::get::<InetSocket>(&f)?;
    Some((f, s))
}

/// A socket address argument as raw bytes (Linux refuses more than a
/// sockaddr_storage).
fn raw_addr(t: &TaskCtx, addr: u64, len: u64) -> SysResult<Vec<u8>> {
    let len = len as u32 as usize;
    if len > 128 {
        return Err(Errno::EINVAL);
    }
    t.copy_in(addr, len)
}

/// EBADF or ENOTSOCK unless `fd` is a socket of some family.
fn check_socket(t: &TaskCtx, fd: i32) -> SysResult<()> {
    if inet_of(t, fd).is_some() {
        return Ok(());
    }
    socket_of(t, fd).map(|_| ())
}

/// Splits socket()'s type argument: (type, O_NONBLOCK|O_CLOEXEC flags).
fn split_type(ty: i32) -> SysResult<(i32, u32, bool)> {
    if ty & !(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let nb = if ty & SOCK_NONBLOCK != 0 { libc::O_NONBLOCK as u32 } else { 0 };
    Ok((ty & SOCK_TYPE_MASK, nb, ty & SOCK_CLOEXEC != 0))
}

fn check_family_type(family: i32, stype: i32, protocol: i32) -> SysResult<()> {
    if family != AF_UNIX {
        // Unknown to Linux too when out of range; a known family without a
        // stack here is refused the same way, so callers fall back.
        return Err(Errno::EAFNOSUPPORT);
    }
    if !matches!(stype, SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET) {
        return Err(Errno::ESOCKTNOSUPPORT);
    }
    if protocol != 0 && protocol != AF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok(())
}

fn sys_socket(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (family, protocol) = (a[0] as i32, a[2] as i32);
    let (stype, nb, cloexec) = split_type(a[1] as i32)?;
    if family == inet::AF_INET || family == inet::AF_INET6 {
        let s = inet::create(t, family, stype, protocol)?;
        return Ok(t.files().install(InetSocket::open(s, nb), cloexec)? as u64);
    }
    check_family_type(family, stype, protocol)?;
    let f = UnixSocket::open(UnixSocket::new(stype), nb);
    Ok(t.files().install(f, cloexec)? as u64)
}

fn sys_socketpair(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (family, protocol) = (a[0] as i32, a[2] as i32);
    let (stype, nb, cloexec) = split_type(a[1] as i32)?;
    if family == inet::AF_INET || family == inet::AF_INET6 {
        return Err(Errno::EOPNOTSUPP);
    }
    check_family_type(family, stype, protocol)?;
    let (x, y) = UnixSocket::pair(stype, Ucred::of(t));
    let files = t.files();
    let fx = files.install(UnixSocket::open(x, nb), cloexec)?;
    let fy = match files.install(UnixSocket::open(y, nb), cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = files.close(fx);
            return Err(e);
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&fx.to_ne_bytes());
    out[4..].copy_from_slice(&fy.to_ne_bytes());
    if let Err(e) = t.copy_out(a[3], &out) {
        let _ = files.close(fx);
        let _ = files.close(fy);
        return Err(e);
    }
    Ok(0)
}

/// A parsed `sockaddr_un`.
enum Addr {
    /// Only the family: autobind (bind) / invalid (connect).
    Unnamed,
    Abstract(Vec<u8>),
    Path(Vec<u8>),
}

fn read_addr(t: &TaskCtx, addr: u64, len: u64) -> SysResult<Addr> {
    let len = len as u32 as usize;
    if len < 2 || len > SOCKADDR_UN_LEN {
        return Err(Errno::EINVAL);
    }
    let raw = t.copy_in(addr, len)?;
    if u16::from_ne_bytes([raw[0], raw[1]]) as i32 != AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let path = &raw[2..];
    Ok(match path.first() {
        None => Addr::Unnamed,
        Some(0) => Addr::Abstract(path[1..].to_vec()),
        Some(_) => {
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            Addr::Path(path[..end].to_vec())
        }
    })
}

/// The table key of a path name: its parent resolved to an absolute path
/// (so `./s` and `/tmp/s` from /tmp name the same socket).
fn path_key(t: &TaskCtx, path: &[u8]) -> SysResult<Key> {
    let fs = fs_context(t);
    let c = caller(t);
    let (dir, name) = fs.vfs.resolve_parent(&c, &fs.root, &fs.cwd, path)?;
    if name.is_empty() || name == b"." || name == b".." {
        return Err(Errno::EINVAL);
    }
    let mut key = Vec::new();
    // Another container's tree is another set of files: its names are apart.
    if !Arc::ptr_eq(&fs.vfs, &t.kernel().vfs) {
        key.extend_from_slice(format!("{:p}:", Arc::as_ptr(&fs.vfs)).as_bytes());
    }
    key.extend_from_slice(&dir.path());
    if dir.path() != b"/" {
        key.push(b'/');
    }
    key.extend_from_slice(name);
    Ok(Key::Path(key))
}

fn path_exists(t: &TaskCtx, path: &[u8]) -> bool {
    let fs = fs_context(t);
    fs.vfs.resolve(&caller(t), &fs.root, &fs.cwd, path, Follow::No).is_ok()
}

/// The socket a name refers to (connect, sendto).
fn find_target(t: &TaskCtx, addr: Addr) -> SysResult<Arc<UnixSocket>> {
    match addr {
        Addr::Unnamed => Err(Errno::EINVAL),
        Addr::Abstract(n) => unix::lookup(&Key::Abstract(n)).ok_or(Errno::ECONNREFUSED),
        Addr::Path(p) => {
            let key = path_key(t, &p)?;
            match unix::lookup(&key) {
                Some(s) => Ok(s),
                // A file that is not a bound socket refuses; nothing there: ENOENT.
                None if path_exists(t, &p) => Err(Errno::ECONNREFUSED),
                None => Err(Errno::ENOENT),
            }
        }
    }
}

/// Copies a socket address out: at most the caller's buffer, and the full
/// length into `*len_ptr` (Linux's move_addr_to_user).
fn write_addr(t: &TaskCtx, addr: u64, len_ptr: u64, raw: &[u8]) -> SysResult<()> {
    if addr == 0 || len_ptr == 0 {
        return Ok(());
    }
    let room: i32 = t.read_obj(len_ptr)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let n = raw.len().min(room as usize);
    t.copy_out(addr, &raw[..n])?;
    t.write_obj(len_ptr, &(raw.len() as i32))
}

fn sys_bind(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if let Some((_, s)) = inet_of(t, a[0] as i32) {
        return s.bind(&raw_addr(t, a[1], a[2])?).map(|_| 0);
    }
    let (_, s) = socket_of(t, a[0] as i32)?;
    let addr = read_addr(t, a[1], a[2])?;
    let mut raw = unix::unnamed();
    match addr {
        Addr::Unnamed => s.autobind()?,
        Addr::Abstract(n) => {
            raw.push(0);
            raw.extend_from_slice(&n);
            s.bind(Name { key: Key::Abstract(n), raw })?;
        }
        Addr::Path(p) => {
            let key = path_key(t, &p)?;
            if s.is_bound() {
                return Err(Errno::EINVAL);
            }
            // bind never replaces a file (Linux: mknod fails with EEXIST).
            if path_exists(t, &p) || unix::lookup(&key).is_some() {
                return Err(Errno::EADDRINUSE);
            }
            raw.extend_from_slice(&p);
            raw.push(0);
            s.bind(Name { key, raw })?;
        }
    }
    Ok(0)
}

fn sys_listen(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if let Some((_, s)) = inet_of(t, a[0] as i32) {
        return s.listen(a[1] as i32).map(|_| 0);
    }
    let (_, s) = socket_of(t, a[0] as i32)?;
    s.listen(a[1] as i32, Ucred::of(t))?;
    Ok(0)
}

fn do_accept(t: &TaskCtx, fd: i32, addr: u64, len_ptr: u64, flags: i32) -> SysResult<u64> {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let nb = if flags & SOCK_NONBLOCK != 0 { libc::O_NONBLOCK as u32 } else { 0 };
    if let Some((f, s)) = inet_of(t, fd) {
        let (conn, peer) = s.accept(t, f.nonblocking())?;
        let newfd = t.files().install(InetSocket::open(conn, nb), flags & SOCK_CLOEXEC != 0)?;
        if let Err(e) = write_addr(t, addr, len_ptr, &peer) {
            let _ = t.files().close(newfd);
            return Err(e);
        }
        return Ok(newfd as u64);
    }
    let (f, s) = socket_of(t, fd)?;
    if s.stype == SOCK_DGRAM {
        return Err(Errno::EOPNOTSUPP);
    }
    let conn = s.accept(t, f.nonblocking())?;
    let peer_name = conn.peer_name().unwrap_or_else(|_| unix::unnamed());
    let nf = UnixSocket::open(conn, nb);
    let newfd = t.files().install(nf, flags & SOCK_CLOEXEC != 0)?;
    if let Err(e) = write_addr(t, addr, len_ptr, &peer_name) {
        let _ = t.files().close(newfd);
        return Err(e);
    }
    Ok(newfd as u64)
}

fn sys_accept(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_accept(t, a[0] as i32, a[1], a[2], 0)
}

fn sys_accept4(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_accept(t, a[0] as i32, a[1], a[2], a[3] as i32)
}

fn sys_connect(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if let Some((f, s)) = inet_of(t, a[0] as i32) {
        return s.connect(t, &raw_addr(t, a[1], a[2])?, f.nonblocking()).map(|_| 0);
    }
    let (f, s) = socket_of(t, a[0] as i32)?;
    let addr = read_addr(t, a[1], a[2])?;
    if matches!(addr, Addr::Unnamed) {
        return Err(Errno::EINVAL);
    }
    let target = find_target(t, addr)?;
    s.connect(t, &target, Ucred::of(t), f.nonblocking())?;
    Ok(0)
}

fn sys_shutdown(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if let Some((_, s)) = inet_of(t, a[0] as i32) {
        return s.shutdown(a[1] as i32).map(|_| 0);
    }
    let (_, s) = socket_of(t, a[0] as i32)?;
    s.shutdown(a[1] as i32)?;
    Ok(0)
}

/// A message to send, gathered from user memory.
struct Outgoing {
    data: Vec<u8>,
    rights: Vec<Arc<OpenFile>>,
    cred: Option<Ucred>,
}

fn scatter(t: &TaskCtx, iov: &[Iovec], data: &[u8]) -> SysResult<()> {
    let mut done = 0;
    for v in iov {
        if done == data.len() {
            break;
        }
        let k = (v.len as usize).min(data.len() - done);
        t.copy_out(v.base, &data[done..done + k])?;
        done += k;
    }
    Ok(())
}

/// Parses the control messages of a sendmsg.
fn parse_cmsgs(t: &TaskCtx, ctl: &[u8]) -> SysResult<(Vec<Arc<OpenFile>>, Option<Ucred>)> {
    let mut rights = Vec::new();
    let mut cred = None;
    let mut off = 0;
    while off + CMSG_HDR <= ctl.len() {
        let len = u64::from_ne_bytes(ctl[off..off + 8].try_into().unwrap()) as usize;
        let level = i32::from_ne_bytes(ctl[off + 8..off + 12].try_into().unwrap());
        let ty = i32::from_ne_bytes(ctl[off + 12..off + 16].try_into().unwrap());
        if len < CMSG_HDR || off + len > ctl.len() {
            return Err(Errno::EINVAL);
        }
        let data = &ctl[off + CMSG_HDR..off + len];
        if level == SOL_SOCKET {
            match ty {
                SCM_RIGHTS => {
                    let n = data.len() / 4;
                    if rights.len() + n > SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    let files = t.files();
                    for c in data.chunks_exact(4) {
                        let fd = i32::from_ne_bytes(c.try_into().unwrap());
                        rights.push(files.get(fd)?);
                    }
                }
                SCM_CREDENTIALS => {
                    if data.len() != 12 {
                        return Err(Errno::EINVAL);
                    }
                    let c = Ucred::from_bytes(data);
                    let me = Ucred::of(t);
                    // Root in the sandbox may claim any ids, but the pid
                    // must name a process (we only accept our own).
                    if c.pid != me.pid {
                        return Err(Errno::EPERM);
                    }
                    cred = Some(c);
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        off += cmsg_align(len);
    }
    Ok((rights, cred))
}

/// What a sendmsg/recvmsg's `struct msghdr` holds.
struct MsgHdr {
    name: u64,
    namelen: u32,
    iov: Vec<Iovec>,
    control: u64,
    controllen: u64,
}

fn read_msghdr(t: &TaskCtx, addr: u64) -> SysResult<MsgHdr> {
    let b = t.copy_in(addr, MSGHDR_LEN)?;
    let q = |i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap());
    let iov = read_iovecs(t, q(16), q(24), Errno::EMSGSIZE)?;
    Ok(MsgHdr { name: q(0), namelen: u32::from_ne_bytes(b[8..12].try_into().unwrap()), iov, control: q(32), controllen: q(40) })
}

fn check_send_flags(flags: u32) -> SysResult<()> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(())
}

/// The common send path: resolves the destination, sends, raises SIGPIPE.
fn do_send(t: &TaskCtx, fd: i32, out: Outgoing, dest: Option<Addr>, flags: u32) -> SysResult<u64> {
    check_send_flags(flags)?;
    let (f, s) = socket_of(t, fd)?;
    let to = match dest {
        Some(addr) if s.stype == SOCK_DGRAM => Some(find_target(t, addr)?),
        // Connection-oriented sockets refuse an address (EISCONN/EOPNOTSUPP).
        Some(_) => {
            return Err(if s.peer_name().is_ok() { Errno::EISCONN } else { Errno::EOPNOTSUPP });
        }
        None => None,
    };
    let nonblock = f.nonblocking() || flags & MSG_DONTWAIT != 0;
    let cred = out.cred.unwrap_or_else(|| Ucred::of(t));
    match s.send(t, &out.data, out.rights, cred, to, nonblock) {
        Err(Errno::EPIPE) => {
            // Only stream sockets raise SIGPIPE (Linux's dgram/seqpacket path does not).
            if flags & MSG_NOSIGNAL == 0 && s.stype == SOCK_STREAM {
                t.signal_self(abi::signal::SIGPIPE);
            }
            Err(Errno::EPIPE)
        }
        r => r.map(|n| n as u64),
    }
}

fn sys_sendto(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let data = t.copy_in(a[1], (a[2] as usize).min(MAX_IO))?;
    if let Some((f, s)) = inet_of(t, a[0] as i32) {
        let to = if a[4] != 0 { Some(raw_addr(t, a[4], a[5])?) } else { None };
        let flags = a[3] as u32;
        return s.send(t, &data, to.as_deref(), flags, f.nonblocking() || flags & MSG_DONTWAIT != 0).map(|n| n as u64);
    }
    let dest = if a[4] != 0 { Some(read_addr(t, a[4], a[5])?) } else { None };
    do_send(t, a[0] as i32, Outgoing { data, rights: Vec::new(), cred: None }, dest, a[3] as u32)
}

fn sendmsg_one(t: &TaskCtx, fd: i32, hdr_addr: u64, flags: u32) -> SysResult<u64> {
    let h = read_msghdr(t, hdr_addr)?;
    let data = gather(t, &h.iov)?;
    if let Some((f, s)) = inet_of(t, fd) {
        // Control messages (IP_PKTINFO, IP_TOS, …) are not applied to inet sends.
        let to = if h.name != 0 && h.namelen > 0 { Some(raw_addr(t, h.name, h.namelen as u64)?) } else { None };
        return s.send(t, &data, to.as_deref(), flags, f.nonblocking() || flags & MSG_DONTWAIT != 0).map(|n| n as u64);
    }
    if h.controllen > 64 * 1024 {
        return Err(Errno::ENOBUFS);
    }
    let (rights, cred) = if h.control != 0 && h.controllen > 0 { parse_cmsgs(t, &t.copy_in(h.control, h.controllen as usize)?)? } else { (Vec::new(), None) };
    let dest = if h.name != 0 && h.namelen > 0 { Some(read_addr(t, h.name, h.namelen as u64)?) } else { None };
    do_send(t, fd, Outgoing { data, rights, cred }, dest, flags)
}

fn sys_sendmsg(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    sendmsg_one(t, a[0] as i32, a[1], a[2] as u32)
}

fn sys_sendmmsg(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (fd, vec, vlen, flags) = (a[0] as i32, a[1], (a[2] as u32).min(1024), a[3] as u32);
    check_socket(t, fd)?;
    let mut sent = 0u32;
    while sent < vlen {
        let entry = vec + sent as u64 * MMSGHDR_LEN as u64;
        match sendmsg_one(t, fd, entry, flags) {
            Ok(n) => {
                t.write_obj(entry + MSGHDR_LEN as u64, &(n as u32))?;
                sent += 1;
            }
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent as u64)
}

/// Receives one message and fills in user memory: data, address, control
/// messages; returns (bytes for the return value, msg_flags).
struct Incoming {
    ret: usize,
    flags: u32,
    data: Vec<u8>,
    from: Vec<u8>,
    cmsgs: Vec<u8>,
}

fn check_recv_flags(flags: u32) -> SysResult<()> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if flags & 0x2000 != 0 {
        // MSG_ERRQUEUE: unix sockets have no error queue.
        return Err(Errno::EAGAIN);
    }
    Ok(())
}

/// Receives into a buffer of `max` bytes; builds control messages for a
/// control buffer of `ctl_room` bytes, installing received descriptors.
fn do_recv(t: &TaskCtx, fd: i32, max: usize, ctl_room: usize, flags: u32) -> SysResult<Incoming> {
    if let Some((f, s)) = inet_of(t, fd) {
        let nonblock = f.nonblocking() || flags & MSG_DONTWAIT != 0;
        let (data, full, from) = s.recv(t, max.min(MAX_IO), flags, nonblock)?;
        let truncated = full > data.len();
        let ret = if flags & MSG_TRUNC != 0 && s.stype != SOCK_STREAM { full } else { data.len() };
        return Ok(Incoming { ret, flags: if truncated { MSG_TRUNC } else { 0 }, data, from, cmsgs: Vec::new() });
    }
    check_recv_flags(flags)?;
    let (f, s) = socket_of(t, fd)?;
    let nonblock = f.nonblocking() || flags & MSG_DONTWAIT != 0;
    let r = s.recv(t, max.min(MAX_IO), flags & MSG_PEEK != 0, flags & MSG_WAITALL != 0, nonblock)?;
    let mut msg_flags = 0;
    let full = if r.full_len == usize::MAX { 0 } else { r.full_len };
    if full > r.data.len() {
        msg_flags |= MSG_TRUNC;
    }
    let ret = if flags & MSG_TRUNC != 0 && s.stype != SOCK_STREAM { full } else { r.data.len() };
    let mut cmsgs = Vec::new();
    let put = |cmsgs: &mut Vec<u8>, ty: i32, payload: &[u8]| -> bool {
        let len = CMSG_HDR + payload.len();
        if cmsgs.len() + len > ctl_room {
            return false;
        }
        cmsgs.extend_from_slice(&(len as u64).to_ne_bytes());
        cmsgs.extend_from_slice(&SOL_SOCKET.to_ne_bytes());
        cmsgs.extend_from_slice(&ty.to_ne_bytes());
        cmsgs.extend_from_slice(payload);
        // Pad to the next header, but only if there is room (Linux's put_cmsg).
        let pad = cmsg_align(len) - len;
        if cmsgs.len() + pad <= ctl_room {
            cmsgs.resize(cmsgs.len() + pad, 0);
        }
        true
    };
    if s.passcred() {
        let c = r.cred.unwrap_or(Ucred { pid: 0, uid: 65534, gid: 65534 });
        if !put(&mut cmsgs, SCM_CREDENTIALS, &c.to_bytes()) {
            msg_flags |= MSG_CTRUNC;
        }
    }
    if !r.rights.is_empty() {
        let room = ctl_room.saturating_sub(cmsgs.len());
        let fit = if room < CMSG_HDR { 0 } else { ((room - CMSG_HDR) / 4).min(r.rights.len()) };
        if fit < r.rights.len() {
            msg_flags |= MSG_CTRUNC;
        }
        let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
        let files = t.files();
        let mut fds = Vec::new();
        for file in r.rights.into_iter().take(fit) {
            match files.install(file, cloexec) {
                Ok(n) => fds.push(n),
                Err(_) => {
                    msg_flags |= MSG_CTRUNC;
                    break;
                }
            }
        }
        // Descriptors that did not fit are closed (dropped), as on Linux.
        if !fds.is_empty() {
            let payload: Vec<u8> = fds.iter().flat_map(|f| f.to_ne_bytes()).collect();
            put(&mut cmsgs, SCM_RIGHTS, &payload);
        }
    }
    Ok(Incoming { ret, flags: msg_flags, data: r.data, from: r.from, cmsgs })
}

fn sys_recvfrom(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (fd, buf, len, flags) = (a[0] as i32, a[1], a[2] as usize, a[3] as u32);
    let r = do_recv(t, fd, len, 0, flags)?;
    t.copy_out(buf, &r.data)?;
    write_addr(t, a[4], a[5], &r.from)?;
    Ok(r.ret as u64)
}

fn recvmsg_one(t: &TaskCtx, fd: i32, hdr_addr: u64, flags: u32) -> SysResult<u64> {
    let h = read_msghdr(t, hdr_addr)?;
    let max: u64 = h.iov.iter().map(|v| v.len).sum();
    let r = do_recv(t, fd, max as usize, h.controllen.min(1 << 20) as usize, flags)?;
    scatter(t, &h.iov, &r.data)?;
    if h.name != 0 {
        let n = r.from.len().min(h.namelen as usize);
        t.copy_out(h.name, &r.from[..n])?;
        t.write_obj(hdr_addr + 8, &(r.from.len() as u32))?;
    } else {
        t.write_obj(hdr_addr + 8, &0u32)?;
    }
    if h.control != 0 {
        t.copy_out(h.control, &r.cmsgs)?;
    }
    t.write_obj(hdr_addr + 40, &(r.cmsgs.len() as u64))?;
    t.write_obj(hdr_addr + 48, &(r.flags as i32))?;
    Ok(r.ret as u64)
}

fn sys_recvmsg(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    recvmsg_one(t, a[0] as i32, a[1], a[2] as u32)
}

fn sys_recvmmsg(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (fd, vec, vlen, mut flags) = (a[0] as i32, a[1], (a[2] as u32).min(1024), a[3] as u32);
    check_socket(t, fd)?;
    let deadline = if a[4] != 0 {
        let ts: abi::types::Timespec = t.read_obj(a[4])?;
        Some(std::time::Instant::now() + crate::fs::timerfd::to_duration(&ts)?)
    } else {
        None
    };
    let mut got = 0u32;
    while got < vlen {
        let entry = vec + got as u64 * MMSGHDR_LEN as u64;
        match recvmsg_one(t, fd, entry, flags & !MSG_WAITFORONE) {
            Ok(n) => {
                t.write_obj(entry + MSGHDR_LEN as u64, &(n as u32))?;
                got += 1;
            }
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
        if flags & MSG_WAITFORONE != 0 {
            flags |= MSG_DONTWAIT;
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            break;
        }
    }
    Ok(got as u64)
}

fn sys_getsockname(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if let Some((_, s)) = inet_of(t, a[0] as i32) {
        return write_addr(t, a[1], a[2], &s.name()).map(|_| 0);
    }
    let (_, s) = socket_of(t, a[0] as i32)?;
    write_addr(t, a[1], a[2], &s.name())?;
    Ok(0)
}

fn sys_getpeername(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if let Some((_, s)) = inet_of(t, a[0] as i32) {
        return write_addr(t, a[1], a[2], &s.peer_name()?).map(|_| 0);
    }
    let (_, s) = socket_of(t, a[0] as i32)?;
    let name = s.peer_name()?;
    write_addr(t, a[1], a[2], &name)?;
    Ok(0)
}

fn read_int_opt(t: &TaskCtx, addr: u64, len: u32) -> SysResult<i32> {
    if (len as usize) < 4 {
        return Err(Errno::EINVAL);
    }
    t.read_obj(addr)
}

fn read_timeval_opt(t: &TaskCtx, addr: u64, len: u32) -> SysResult<Option<Duration>> {
    if (len as usize) < std::mem::size_of::<Timeval>() {
        return Err(Errno::EINVAL);
    }
    let tv: Timeval = t.read_obj(addr)?;
    if !(0..1_000_000).contains(&tv.tv_usec) {
        return Err(Errno::EDOM);
    }
    if tv.tv_sec < 0 || (tv.tv_sec == 0 && tv.tv_usec == 0) {
        return Ok(None);
    }
    Ok(Some(Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000)))
}

fn sys_setsockopt(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if let Some((_, s)) = inet_of(t, a[0] as i32) {
        let len = a[4] as u32 as i32;
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let val = t.copy_in(a[3], (len as usize).min(256))?;
        return s.setsockopt(a[1] as i32, a[2] as i32, &val).map(|_| 0);
    }
    let (_, s) = socket_of(t, a[0] as i32)?;
    let (level, name, val, len) = (a[1] as i32, a[2] as i32, a[3], a[4] as u32);
    if level != SOL_SOCKET {
        return Err(Errno::ENOPROTOOPT);
    }
    match name {
        SO_REUSEADDR => s.set_reuseaddr(read_int_opt(t, val, len)? != 0),
        SO_PASSCRED => s.set_passcred(read_int_opt(t, val, len)? != 0),
        SO_KEEPALIVE => s.set_keepalive(read_int_opt(t, val, len)? != 0),
        SO_SNDBUF | SO_SNDBUFFORCE => s.set_sndbuf(read_int_opt(t, val, len)?),
        SO_RCVBUF | SO_RCVBUFFORCE => s.set_rcvbuf(read_int_opt(t, val, len)?),
        SO_RCVTIMEO => s.set_timeout(false, read_timeval_opt(t, val, len)?),
        SO_SNDTIMEO => s.set_timeout(true, read_timeval_opt(t, val, len)?),
        // Accepted and without effect on unix sockets, as on Linux.
        SO_REUSEPORT | SO_BROADCAST | SO_DONTROUTE | SO_OOBINLINE | SO_LINGER | SO_RCVLOWAT | SO_SNDLOWAT | SO_PASSSEC => {
            if len < 4 {
                return Err(Errno::EINVAL);
            }
            t.copy_in(val, len.min(16) as usize)?;
        }
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(0)
}

fn sys_getsockopt(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if let Some((_, s)) = inet_of(t, a[0] as i32) {
        let len: i32 = t.read_obj(a[4])?;
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let bytes = s.getsockopt(a[1] as i32, a[2] as i32)?;
        let n = bytes.len().min(len as usize);
        t.copy_out(a[3], &bytes[..n])?;
        t.write_obj(a[4], &(n as i32))?;
        return Ok(0);
    }
    let (_, s) = socket_of(t, a[0] as i32)?;
    let (level, name, val, len_ptr) = (a[1] as i32, a[2] as i32, a[3], a[4]);
    if level != SOL_SOCKET {
        return Err(Errno::ENOPROTOOPT);
    }
    let len: i32 = t.read_obj(len_ptr)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let int = |v: i32| v.to_ne_bytes().to_vec();
    let timeval = |d: Option<Duration>| {
        let d = d.unwrap_or_default();
        Timeval { tv_sec: d.as_secs() as i64, tv_usec: d.subsec_micros() as i64 }.as_bytes().to_vec()
    };
    let bytes = match name {
        SO_TYPE => int(s.stype),
        SO_ERROR => int(s.take_error()),
        SO_DOMAIN => int(AF_UNIX),
        SO_PROTOCOL => int(0),
        SO_ACCEPTCONN => int(s.is_listening() as i32),
        SO_REUSEADDR => int(s.reuseaddr() as i32),
        SO_PASSCRED => int(s.passcred() as i32),
        SO_KEEPALIVE => int(s.keepalive() as i32),
        SO_SNDBUF => int(s.sndbuf() as i32),
        SO_RCVBUF => int(s.rcvbuf() as i32),
        SO_REUSEPORT | SO_BROADCAST | SO_DONTROUTE | SO_OOBINLINE | SO_PASSSEC => int(0),
        SO_RCVLOWAT | SO_SNDLOWAT => int(1),
        SO_LINGER => [0u8; 8].to_vec(),
        SO_RCVTIMEO => timeval(s.timeout(false)),
        SO_SNDTIMEO => timeval(s.timeout(true)),
        // An unconnected socket has no peer: Linux reports pid 0 and ids -1.
        SO_PEERCRED => s.peer_cred().unwrap_or(Ucred { pid: 0, uid: u32::MAX, gid: u32::MAX }).to_bytes().to_vec(),
        _ => return Err(Errno::ENOPROTOOPT),
    };
    let n = bytes.len().min(len as usize);
    t.copy_out(val, &bytes[..n])?;
    t.write_obj(len_ptr, &(n as i32))?;
    Ok(0)
}
