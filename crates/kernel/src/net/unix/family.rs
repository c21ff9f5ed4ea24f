//! The unix family behind the socket interface: `sockaddr_un` names
//! (abstract, path, autobind), SCM_RIGHTS and SCM_CREDENTIALS control
//! messages, and the SOL_SOCKET options of unix sockets.

use super::{unnamed, Key, Name, Names, UnixSocket};
use crate::fs::vfs::Follow;
use crate::fs::OpenFile;
use crate::net::consts::*;
use crate::net::socket::{Accepted, RecvMsg, SendMsg, Socket, SocketFamily};
use crate::net::{sockopt, Ucred};
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;
use std::sync::Arc;

/// sizeof(struct sockaddr_un).
const SOCKADDR_UN_LEN: usize = 110;
const CMSG_HDR: usize = 16;

fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// AF_UNIX: stream, datagram and seqpacket sockets, and the names bound
/// in this kernel.
#[derive(Default)]
pub struct UnixFamily {
    names: Arc<Names>,
}

impl UnixFamily {
    /// The names bound in this family.
    pub fn names(&self) -> &Arc<Names> {
        &self.names
    }
}

fn check_type(stype: i32, protocol: i32) -> SysResult<()> {
    if !matches!(stype, SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET) {
        return Err(Errno::ESOCKTNOSUPPORT);
    }
    if protocol != 0 && protocol != AF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok(())
}

impl SocketFamily for UnixFamily {
    fn domain(&self) -> i32 {
        AF_UNIX
    }

    fn socket(&self, _t: &TaskCtx, stype: i32, protocol: i32) -> SysResult<Arc<dyn Socket>> {
        check_type(stype, protocol)?;
        Ok(UnixSocket::new(stype, &self.names))
    }

    fn socketpair(&self, t: &TaskCtx, stype: i32, protocol: i32) -> SysResult<(Arc<dyn Socket>, Arc<dyn Socket>)> {
        check_type(stype, protocol)?;
        let (x, y) = UnixSocket::pair(stype, Ucred::of(t), &self.names);
        Ok((x, y))
    }
}

/// A parsed `sockaddr_un`.
enum Addr {
    /// Only the family: autobind (bind) / invalid (connect).
    Unnamed,
    Abstract(Vec<u8>),
    Path(Vec<u8>),
}

fn parse_addr(raw: &[u8]) -> SysResult<Addr> {
    if raw.len() < 2 || raw.len() > SOCKADDR_UN_LEN {
        return Err(Errno::EINVAL);
    }
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

fn caller(t: &TaskCtx) -> crate::fs::node::Caller<'_> {
    crate::fs::node::Caller::new(t.kernel(), t.tgid(), t.tid())
}

/// The table key of a path name: its parent resolved to an absolute path
/// (so `./s` and `/tmp/s` from /tmp name the same socket).
fn path_key(t: &TaskCtx, path: &[u8]) -> SysResult<Key> {
    let fs = t.fs().lock().unwrap().clone();
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
    let fs = t.fs().lock().unwrap().clone();
    fs.vfs.resolve(&caller(t), &fs.root, &fs.cwd, path, Follow::No).is_ok()
}

impl UnixSocket {
    /// The socket a name refers to (connect, sendto).
    fn find_target(&self, t: &TaskCtx, addr: Addr) -> SysResult<Arc<UnixSocket>> {
        match addr {
            Addr::Unnamed => Err(Errno::EINVAL),
            Addr::Abstract(n) => self.names.lookup(&Key::Abstract(n)).ok_or(Errno::ECONNREFUSED),
            Addr::Path(p) => {
                let key = path_key(t, &p)?;
                match self.names.lookup(&key) {
                    Some(s) => Ok(s),
                    // A file that is not a bound socket refuses; nothing there: ENOENT.
                    None if path_exists(t, &p) => Err(Errno::ECONNREFUSED),
                    None => Err(Errno::ENOENT),
                }
            }
        }
    }
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

impl Socket for UnixSocket {
    fn domain(&self) -> i32 {
        AF_UNIX
    }

    fn stype(&self) -> i32 {
        self.stype
    }

    fn bind(&self, t: &TaskCtx, addr: &[u8]) -> SysResult<()> {
        let mut raw = unnamed();
        match parse_addr(addr)? {
            Addr::Unnamed => self.autobind()?,
            Addr::Abstract(n) => {
                raw.push(0);
                raw.extend_from_slice(&n);
                self.bind_name(Name { key: Key::Abstract(n), raw })?;
            }
            Addr::Path(p) => {
                let key = path_key(t, &p)?;
                if self.is_bound() {
                    return Err(Errno::EINVAL);
                }
                // bind never replaces a file (Linux: mknod fails with EEXIST).
                if path_exists(t, &p) || self.names.lookup(&key).is_some() {
                    return Err(Errno::EADDRINUSE);
                }
                raw.extend_from_slice(&p);
                raw.push(0);
                self.bind_name(Name { key, raw })?;
            }
        }
        Ok(())
    }

    fn listen(&self, t: &TaskCtx, backlog: i32) -> SysResult<()> {
        self.listen_with(backlog, Ucred::of(t))
    }

    fn accept(&self, t: &TaskCtx, nonblock: bool) -> SysResult<Accepted> {
        if self.stype == SOCK_DGRAM {
            return Err(Errno::EOPNOTSUPP);
        }
        let conn = self.accept_next(t, nonblock)?;
        let peer = conn.peer_name().unwrap_or_else(|_| unnamed());
        Ok(Accepted { socket: conn, peer })
    }

    fn connect(&self, t: &TaskCtx, addr: &[u8], nonblock: bool) -> SysResult<()> {
        let addr = parse_addr(addr)?;
        if matches!(addr, Addr::Unnamed) {
            return Err(Errno::EINVAL);
        }
        let target = self.find_target(t, addr)?;
        self.connect_to(t, &target, Ucred::of(t), nonblock)
    }

    fn shutdown(&self, _t: &TaskCtx, how: i32) -> SysResult<()> {
        self.shut(how)
    }

    fn sendmsg(&self, t: &TaskCtx, msg: SendMsg, flags: u32, nonblock: bool) -> SysResult<usize> {
        let (rights, cred) = if msg.control.is_empty() { (Vec::new(), None) } else { parse_cmsgs(t, &msg.control)? };
        let dest = msg.to.as_deref().map(parse_addr).transpose()?;
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let to = match dest {
            Some(addr) if self.stype == SOCK_DGRAM => Some(self.find_target(t, addr)?),
            // Connection-oriented sockets refuse an address (EISCONN/EOPNOTSUPP).
            Some(_) => {
                return Err(if self.peer_name().is_ok() { Errno::EISCONN } else { Errno::EOPNOTSUPP });
            }
            None => None,
        };
        let cred = cred.unwrap_or_else(|| Ucred::of(t));
        self.send(t, &msg.data, rights, cred, to, nonblock)
    }

    fn recvmsg(&self, t: &TaskCtx, max: usize, ctl_room: usize, flags: u32, nonblock: bool) -> SysResult<RecvMsg> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        if flags & MSG_ERRQUEUE != 0 {
            // Unix sockets have no error queue.
            return Err(Errno::EAGAIN);
        }
        let r = self.recv(t, max, flags & MSG_PEEK != 0, flags & MSG_WAITALL != 0, nonblock)?;
        let mut msg_flags = 0;
        let full = if r.full_len == usize::MAX { 0 } else { r.full_len };
        if full > r.data.len() {
            msg_flags |= MSG_TRUNC;
        }
        let ret = if flags & MSG_TRUNC != 0 && self.stype != SOCK_STREAM { full } else { r.data.len() };
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
        if self.passcred() {
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
        Ok(RecvMsg { ret, flags: msg_flags, data: r.data, from: r.from, control: cmsgs })
    }

    fn getsockname(&self, _t: &TaskCtx) -> SysResult<Vec<u8>> {
        Ok(self.sockname())
    }

    fn getpeername(&self, _t: &TaskCtx) -> SysResult<Vec<u8>> {
        self.peer_name()
    }

    fn setsockopt(&self, t: &TaskCtx, level: i32, name: i32, val: u64, len: u32) -> SysResult<()> {
        if level != SOL_SOCKET {
            return Err(Errno::ENOPROTOOPT);
        }
        match name {
            SO_REUSEADDR => self.set_reuseaddr(sockopt::read_int(t, val, len)? != 0),
            SO_PASSCRED => self.set_passcred(sockopt::read_int(t, val, len)? != 0),
            SO_KEEPALIVE => self.set_keepalive(sockopt::read_int(t, val, len)? != 0),
            SO_SNDBUF | SO_SNDBUFFORCE => self.set_sndbuf(sockopt::read_int(t, val, len)?),
            SO_RCVBUF | SO_RCVBUFFORCE => self.set_rcvbuf(sockopt::read_int(t, val, len)?),
            SO_RCVTIMEO => self.set_timeout(false, sockopt::read_timeval(t, val, len)?),
            SO_SNDTIMEO => self.set_timeout(true, sockopt::read_timeval(t, val, len)?),
            // Accepted and without effect on unix sockets, as on Linux.
            SO_REUSEPORT | SO_BROADCAST | SO_DONTROUTE | SO_OOBINLINE | SO_LINGER | SO_RCVLOWAT | SO_SNDLOWAT | SO_PASSSEC => {
                if len < 4 {
                    return Err(Errno::EINVAL);
                }
                t.copy_in(val, len.min(16) as usize)?;
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn getsockopt(&self, t: &TaskCtx, level: i32, name: i32, val: u64, len_ptr: u64) -> SysResult<()> {
        if level != SOL_SOCKET {
            return Err(Errno::ENOPROTOOPT);
        }
        let len = sockopt::read_len(t, len_ptr)?;
        let int = |v: i32| v.to_ne_bytes().to_vec();
        let bytes = match name {
            SO_TYPE => int(self.stype),
            SO_ERROR => int(self.take_error()),
            SO_DOMAIN => int(AF_UNIX),
            SO_PROTOCOL => int(0),
            SO_ACCEPTCONN => int(self.is_listening() as i32),
            SO_REUSEADDR => int(self.reuseaddr() as i32),
            SO_PASSCRED => int(self.passcred() as i32),
            SO_KEEPALIVE => int(self.keepalive() as i32),
            SO_SNDBUF => int(self.sndbuf() as i32),
            SO_RCVBUF => int(self.rcvbuf() as i32),
            SO_REUSEPORT | SO_BROADCAST | SO_DONTROUTE | SO_OOBINLINE | SO_PASSSEC => int(0),
            SO_RCVLOWAT | SO_SNDLOWAT => int(1),
            SO_LINGER => [0u8; 8].to_vec(),
            SO_RCVTIMEO => sockopt::timeval_bytes(self.timeout(false)),
            SO_SNDTIMEO => sockopt::timeval_bytes(self.timeout(true)),
            // An unconnected socket has no peer: Linux reports pid 0 and ids -1.
            SO_PEERCRED => self.peer_cred().unwrap_or(Ucred { pid: 0, uid: u32::MAX, gid: u32::MAX }).to_bytes().to_vec(),
            _ => return Err(Errno::ENOPROTOOPT),
        };
        sockopt::write(t, val, len_ptr, len, &bytes)
    }
}
