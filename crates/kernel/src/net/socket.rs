//! The interface every socket family serves, and the table of families a
//! kernel knows. The socket system calls (`syscalls/sys_socket.rs`) parse
//! what is common to all families (descriptors, `msghdr`, iovecs, address
//! buffers) and hand the rest to the socket, which interprets addresses,
//! control messages and options of its own family. A family is a new file
//! under `net/` implementing [`SocketFamily`] and [`Socket`], plus one line
//! in [`default_families`] (or a [`Families::register`] call by code
//! outside this crate, such as a network stack).
//!
//! The default methods answer what Linux answers for an operation a
//! protocol does not have (its `sock_no_*` helpers).

use super::consts::*;
use crate::fs::{FileOps, OpenFile};
use crate::task::TaskCtx;
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// A message to send.
pub struct SendMsg {
    pub data: Vec<u8>,
    /// The destination address as the application wrote it (sendto's or
    /// msg_name), if any.
    pub to: Option<Vec<u8>>,
    /// The raw control messages (msg_control), possibly empty.
    pub control: Vec<u8>,
}

/// A received message.
pub struct RecvMsg {
    /// recvmsg's return value (with MSG_TRUNC, the full length of a record).
    pub ret: usize,
    /// msg_flags (MSG_TRUNC, MSG_CTRUNC, …).
    pub flags: u32,
    pub data: Vec<u8>,
    /// The sender's address; empty when it has none.
    pub from: Vec<u8>,
    /// Encoded control messages, at most the room the caller gave.
    pub control: Vec<u8>,
}

/// An accepted connection and its peer's address.
pub struct Accepted {
    pub socket: Arc<dyn Socket>,
    pub peer: Vec<u8>,
}

/// One socket. Reads, writes, readiness and ioctls come through
/// [`FileOps`]; `nonblock` is the description's O_NONBLOCK or the call's
/// MSG_DONTWAIT.
pub trait Socket: FileOps + Any {
    /// AF_UNIX, AF_INET, …
    fn domain(&self) -> i32;
    /// SOCK_STREAM, SOCK_DGRAM, …
    fn stype(&self) -> i32;
    /// SO_PROTOCOL.
    fn protocol(&self) -> i32 {
        0
    }
    /// bind(2) to `addr`, the `sockaddr` bytes the application passed.
    fn bind(&self, t: &TaskCtx, addr: &[u8]) -> SysResult<()> {
        let _ = (t, addr);
        Err(Errno::EOPNOTSUPP)
    }
    fn listen(&self, t: &TaskCtx, backlog: i32) -> SysResult<()> {
        let _ = (t, backlog);
        Err(Errno::EOPNOTSUPP)
    }
    fn accept(&self, t: &TaskCtx, nonblock: bool) -> SysResult<Accepted> {
        let _ = (t, nonblock);
        Err(Errno::EOPNOTSUPP)
    }
    fn connect(&self, t: &TaskCtx, addr: &[u8], nonblock: bool) -> SysResult<()> {
        let _ = (t, addr, nonblock);
        Err(Errno::EOPNOTSUPP)
    }
    fn shutdown(&self, t: &TaskCtx, how: i32) -> SysResult<()> {
        let _ = (t, how);
        Err(Errno::EOPNOTSUPP)
    }
    /// Sends one message; returns the bytes sent. EPIPE is returned
    /// without raising SIGPIPE: the caller raises it for stream sockets
    /// unless MSG_NOSIGNAL.
    fn sendmsg(&self, t: &TaskCtx, msg: SendMsg, flags: u32, nonblock: bool) -> SysResult<usize>;
    /// Receives one message of at most `max` bytes, with control messages
    /// fitting in `control_room` bytes.
    fn recvmsg(&self, t: &TaskCtx, max: usize, control_room: usize, flags: u32, nonblock: bool) -> SysResult<RecvMsg>;
    /// The socket's own address (getsockname).
    fn getsockname(&self, t: &TaskCtx) -> SysResult<Vec<u8>>;
    /// The peer's address (getpeername).
    fn getpeername(&self, t: &TaskCtx) -> SysResult<Vec<u8>> {
        let _ = t;
        Err(Errno::ENOTCONN)
    }
    /// getsockopt(2) with the application's buffer and length pointer.
    fn getsockopt(&self, t: &TaskCtx, level: i32, name: i32, optval: u64, optlen: u64) -> SysResult<()> {
        let _ = (t, level, name, optval, optlen);
        Err(Errno::ENOPROTOOPT)
    }
    /// setsockopt(2) with the application's buffer and its length.
    fn setsockopt(&self, t: &TaskCtx, level: i32, name: i32, optval: u64, optlen: u32) -> SysResult<()> {
        let _ = (t, level, name, optval, optlen);
        Err(Errno::ENOPROTOOPT)
    }
}

/// A socket family: makes the sockets of one domain.
pub trait SocketFamily: Send + Sync {
    /// The domain socket(2) names it by (AF_UNIX, AF_INET, …).
    fn domain(&self) -> i32;
    /// socket(2): a new socket of `stype` (SOCK_STREAM, … without the
    /// NONBLOCK/CLOEXEC flags) and `protocol`.
    fn socket(&self, t: &TaskCtx, stype: i32, protocol: i32) -> SysResult<Arc<dyn Socket>>;
    /// socketpair(2): two sockets connected to each other.
    fn socketpair(&self, t: &TaskCtx, stype: i32, protocol: i32) -> SysResult<(Arc<dyn Socket>, Arc<dyn Socket>)> {
        let _ = (t, stype, protocol);
        Err(Errno::EOPNOTSUPP)
    }
}

/// The families one kernel serves, by domain. A domain without a family
/// fails at socket() with EAFNOSUPPORT, which is what glibc and python
/// expect from a kernel without that family (getaddrinfo's netlink probe,
/// for one, falls back quietly).
pub struct Families {
    by_domain: RwLock<BTreeMap<i32, Arc<dyn SocketFamily>>>,
}

impl Default for Families {
    fn default() -> Self {
        let f = Families { by_domain: RwLock::new(BTreeMap::new()) };
        for family in default_families() {
            f.register(family);
        }
        f
    }
}

impl Families {
    /// Adds (or replaces) the family of `family.domain()`.
    pub fn register(&self, family: Arc<dyn SocketFamily>) {
        self.by_domain.write().unwrap().insert(family.domain(), family);
    }

    /// The family of `domain`: EAFNOSUPPORT when the kernel has none.
    pub fn get(&self, domain: i32) -> SysResult<Arc<dyn SocketFamily>> {
        self.by_domain.read().unwrap().get(&domain).cloned().ok_or(Errno::EAFNOSUPPORT)
    }
}

/// The families every kernel starts with; a new family adds one line.
fn default_families() -> Vec<Arc<dyn SocketFamily>> {
    use super::inet::{InetFamily, AF_INET, AF_INET6};
    vec![Arc::new(super::unix::UnixFamily::default()), Arc::new(InetFamily(AF_INET)), Arc::new(InetFamily(AF_INET6)), Arc::new(super::netlink::NetlinkFamily)]
}

/// The description of a socket: its `FileOps` are the socket's, and
/// [`socket_of`] finds the socket again.
struct SocketFile(Arc<dyn Socket>);

/// Opens `socket` as a new description (read-write) with status `flags`.
pub fn open(socket: Arc<dyn Socket>, flags: u32) -> Arc<OpenFile> {
    OpenFile::new(Box::new(SocketFile(socket)), libc::O_RDWR as u32 | flags, None)
}

/// The socket behind `file`, if it is one.
pub fn socket_of(file: &OpenFile) -> Option<Arc<dyn Socket>> {
    file.ops.as_any()?.downcast_ref::<SocketFile>().map(|s| s.0.clone())
}

impl FileOps for SocketFile {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        self.0.read(t, file, buf)
    }
    fn write(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        self.0.write(t, file, buf)
    }
    fn stat(&self) -> SysResult<Stat> {
        self.0.stat()
    }
    fn ioctl(&self, t: &TaskCtx, file: &OpenFile, cmd: u64, arg: u64) -> SysResult<u64> {
        self.0.ioctl(t, file, cmd, arg)
    }
    fn readiness(&self) -> u32 {
        self.0.readiness()
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        self.0.wait_queue()
    }
    fn host_fd(&self) -> Option<i32> {
        self.0.host_fd()
    }
    fn release(&self) {
        self.0.release()
    }
    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

/// socket()'s type argument split: (type, O_NONBLOCK status flag,
/// close-on-exec).
pub fn split_type(ty: i32) -> SysResult<(i32, u32, bool)> {
    if ty & !(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let nb = if ty & SOCK_NONBLOCK != 0 { libc::O_NONBLOCK as u32 } else { 0 };
    Ok((ty & SOCK_TYPE_MASK, nb, ty & SOCK_CLOEXEC != 0))
}
