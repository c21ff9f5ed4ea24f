//! Socket system calls: creation, names, connections, data transfer with
//! control messages, options. What is common to every family (the
//! descriptor, `msghdr`, iovecs, address buffers, SIGPIPE) is served here;
//! the rest goes to the socket's family through the [`Socket`] interface
//! (`net/socket.rs`), looked up by domain in the kernel's family table.

use super::iovec::{gather, read_iovecs, MAX_IO};
use super::{Args, Entry};
use crate::net::consts::*;
use crate::net::socket::{self, SendMsg, Socket};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::Iovec;
use abi::Errno;
use std::sync::Arc;

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

/// sizeof(struct sockaddr_storage): the longest address of any family.
const SOCKADDR_MAX: usize = 128;
const MSGHDR_LEN: usize = 56;
const MMSGHDR_LEN: usize = 64;
/// The most control-message bytes a sendmsg may carry.
const CONTROL_MAX: u64 = 64 * 1024;

/// The socket behind `fd` and whether its description is non-blocking:
/// EBADF, or ENOTSOCK for other files.
fn socket_of(t: &TaskCtx, fd: i32) -> SysResult<(Arc<dyn Socket>, bool)> {
    let f = t.files().get(fd)?;
    let s = socket::socket_of(&f).ok_or(Errno::ENOTSOCK)?;
    Ok((s, f.nonblocking()))
}

/// Installs a new socket's descriptor.
fn install(t: &TaskCtx, s: Arc<dyn Socket>, nonblock: u32, cloexec: bool) -> SysResult<i32> {
    t.files().install(socket::open(s, nonblock), cloexec)
}

fn sys_socket(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (domain, protocol) = (a[0] as i32, a[2] as i32);
    let (stype, nb, cloexec) = socket::split_type(a[1] as i32)?;
    let s = t.kernel().sockets.get(domain)?.socket(t, stype, protocol)?;
    Ok(install(t, s, nb, cloexec)? as u64)
}

fn sys_socketpair(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (domain, protocol) = (a[0] as i32, a[2] as i32);
    let (stype, nb, cloexec) = socket::split_type(a[1] as i32)?;
    let (x, y) = t.kernel().sockets.get(domain)?.socketpair(t, stype, protocol)?;
    let files = t.files();
    let fx = install(t, x, nb, cloexec)?;
    let fy = match install(t, y, nb, cloexec) {
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

/// Copies a socket address in (Linux's move_addr_to_kernel); its family
/// parses it.
fn read_addr(t: &TaskCtx, addr: u64, len: u64) -> SysResult<Vec<u8>> {
    let len = len as u32 as usize;
    if len > SOCKADDR_MAX {
        return Err(Errno::EINVAL);
    }
    t.copy_in(addr, len)
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
    let (s, _) = socket_of(t, a[0] as i32)?;
    let addr = read_addr(t, a[1], a[2])?;
    s.bind(t, &addr)?;
    Ok(0)
}

fn sys_listen(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (s, _) = socket_of(t, a[0] as i32)?;
    s.listen(t, a[1] as i32)?;
    Ok(0)
}

fn do_accept(t: &TaskCtx, fd: i32, addr: u64, len_ptr: u64, flags: i32) -> SysResult<u64> {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (s, nonblock) = socket_of(t, fd)?;
    let conn = s.accept(t, nonblock)?;
    let nb = if flags & SOCK_NONBLOCK != 0 { libc::O_NONBLOCK as u32 } else { 0 };
    let newfd = install(t, conn.socket, nb, flags & SOCK_CLOEXEC != 0)?;
    if let Err(e) = write_addr(t, addr, len_ptr, &conn.peer) {
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
    let (s, nonblock) = socket_of(t, a[0] as i32)?;
    let addr = read_addr(t, a[1], a[2])?;
    s.connect(t, &addr, nonblock)?;
    Ok(0)
}

fn sys_shutdown(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (s, _) = socket_of(t, a[0] as i32)?;
    s.shutdown(t, a[1] as i32)?;
    Ok(0)
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

/// The common send path: sends, and raises SIGPIPE when a stream socket's
/// send fails with EPIPE (unless MSG_NOSIGNAL).
fn do_send(t: &TaskCtx, s: &Arc<dyn Socket>, nonblock: bool, msg: SendMsg, flags: u32) -> SysResult<u64> {
    let nonblock = nonblock || flags & MSG_DONTWAIT != 0;
    match s.sendmsg(t, msg, flags, nonblock) {
        Err(Errno::EPIPE) => {
            // Only stream sockets raise SIGPIPE (Linux's dgram/seqpacket path does not).
            if flags & MSG_NOSIGNAL == 0 && s.stype() == SOCK_STREAM {
                t.signal_self(abi::signal::SIGPIPE);
            }
            Err(Errno::EPIPE)
        }
        r => r.map(|n| n as u64),
    }
}

fn sys_sendto(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (s, nonblock) = socket_of(t, a[0] as i32)?;
    let data = t.copy_in(a[1], (a[2] as usize).min(MAX_IO))?;
    let to = if a[4] != 0 { Some(read_addr(t, a[4], a[5])?) } else { None };
    do_send(t, &s, nonblock, SendMsg { data, to, control: Vec::new() }, a[3] as u32)
}

fn sendmsg_one(t: &TaskCtx, s: &Arc<dyn Socket>, nonblock: bool, hdr_addr: u64, flags: u32) -> SysResult<u64> {
    let h = read_msghdr(t, hdr_addr)?;
    let data = gather(t, &h.iov)?;
    if h.controllen > CONTROL_MAX {
        return Err(Errno::ENOBUFS);
    }
    let control = if h.control != 0 && h.controllen > 0 { t.copy_in(h.control, h.controllen as usize)? } else { Vec::new() };
    let to = if h.name != 0 && h.namelen > 0 { Some(read_addr(t, h.name, h.namelen as u64)?) } else { None };
    do_send(t, s, nonblock, SendMsg { data, to, control }, flags)
}

fn sys_sendmsg(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (s, nonblock) = socket_of(t, a[0] as i32)?;
    sendmsg_one(t, &s, nonblock, a[1], a[2] as u32)
}

fn sys_sendmmsg(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (fd, vec, vlen, flags) = (a[0] as i32, a[1], (a[2] as u32).min(1024), a[3] as u32);
    let (s, nonblock) = socket_of(t, fd)?;
    let mut sent = 0u32;
    while sent < vlen {
        let entry = vec + sent as u64 * MMSGHDR_LEN as u64;
        match sendmsg_one(t, &s, nonblock, entry, flags) {
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

/// Receives into a buffer of `max` bytes, with control messages for a
/// control buffer of `ctl_room` bytes.
fn do_recv(t: &TaskCtx, s: &Arc<dyn Socket>, nonblock: bool, max: usize, ctl_room: usize, flags: u32) -> SysResult<socket::RecvMsg> {
    let nonblock = nonblock || flags & MSG_DONTWAIT != 0;
    s.recvmsg(t, max.min(MAX_IO), ctl_room, flags, nonblock)
}

fn sys_recvfrom(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (fd, buf, len, flags) = (a[0] as i32, a[1], a[2] as usize, a[3] as u32);
    let (s, nonblock) = socket_of(t, fd)?;
    let r = do_recv(t, &s, nonblock, len, 0, flags)?;
    t.copy_out(buf, &r.data)?;
    write_addr(t, a[4], a[5], &r.from)?;
    Ok(r.ret as u64)
}

fn recvmsg_one(t: &TaskCtx, s: &Arc<dyn Socket>, nonblock: bool, hdr_addr: u64, flags: u32) -> SysResult<u64> {
    let h = read_msghdr(t, hdr_addr)?;
    let max: u64 = h.iov.iter().map(|v| v.len).sum();
    let r = do_recv(t, s, nonblock, max as usize, h.controllen.min(1 << 20) as usize, flags)?;
    scatter(t, &h.iov, &r.data)?;
    if h.name != 0 {
        let n = r.from.len().min(h.namelen as usize);
        t.copy_out(h.name, &r.from[..n])?;
        t.write_obj(hdr_addr + 8, &(r.from.len() as u32))?;
    } else {
        t.write_obj(hdr_addr + 8, &0u32)?;
    }
    if h.control != 0 {
        t.copy_out(h.control, &r.control)?;
    }
    t.write_obj(hdr_addr + 40, &(r.control.len() as u64))?;
    t.write_obj(hdr_addr + 48, &(r.flags as i32))?;
    Ok(r.ret as u64)
}

fn sys_recvmsg(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (s, nonblock) = socket_of(t, a[0] as i32)?;
    recvmsg_one(t, &s, nonblock, a[1], a[2] as u32)
}

fn sys_recvmmsg(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (fd, vec, vlen, mut flags) = (a[0] as i32, a[1], (a[2] as u32).min(1024), a[3] as u32);
    let (s, nonblock) = socket_of(t, fd)?;
    let deadline = if a[4] != 0 {
        let ts: abi::types::Timespec = t.read_obj(a[4])?;
        Some(std::time::Instant::now() + crate::fs::timerfd::to_duration(&ts)?)
    } else {
        None
    };
    let mut got = 0u32;
    while got < vlen {
        let entry = vec + got as u64 * MMSGHDR_LEN as u64;
        match recvmsg_one(t, &s, nonblock, entry, flags & !MSG_WAITFORONE) {
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
    let (s, _) = socket_of(t, a[0] as i32)?;
    let name = s.getsockname(t)?;
    write_addr(t, a[1], a[2], &name)?;
    Ok(0)
}

fn sys_getpeername(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (s, _) = socket_of(t, a[0] as i32)?;
    let name = s.getpeername(t)?;
    write_addr(t, a[1], a[2], &name)?;
    Ok(0)
}

fn sys_setsockopt(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (s, _) = socket_of(t, a[0] as i32)?;
    s.setsockopt(t, a[1] as i32, a[2] as i32, a[3], a[4] as u32)?;
    Ok(0)
}

fn sys_getsockopt(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (s, _) = socket_of(t, a[0] as i32)?;
    s.getsockopt(t, a[1] as i32, a[2] as i32, a[3], a[4])?;
    Ok(0)
}
