//! Sockets: families behind one interface ([`socket::Socket`],
//! [`socket::SocketFamily`]), each kernel holding the table of the
//! families it serves: unix (unix.rs), inet (inet.rs, over the sandbox's
//! TCP/IP stack) and netlink's NETLINK_ROUTE (netlink.rs); a domain without
//! a family (packet, …) fails at `socket()` with EAFNOSUPPORT.

pub mod inet;
pub mod netlink;
pub mod socket;
pub mod sockopt;
pub mod unix;

/// Constants of the socket ABI (x86-64 Linux).
pub mod consts {
    pub const AF_UNIX: i32 = 1;
    pub const SOCK_STREAM: i32 = 1;
    pub const SOCK_DGRAM: i32 = 2;
    pub const SOCK_SEQPACKET: i32 = 5;
    pub const SOCK_NONBLOCK: i32 = libc::O_NONBLOCK;
    pub const SOCK_CLOEXEC: i32 = libc::O_CLOEXEC;
    pub const SOCK_TYPE_MASK: i32 = 0xf;

    pub const SOL_SOCKET: i32 = 1;
    pub const SO_REUSEADDR: i32 = 2;
    pub const SO_TYPE: i32 = 3;
    pub const SO_ERROR: i32 = 4;
    pub const SO_DONTROUTE: i32 = 5;
    pub const SO_BROADCAST: i32 = 6;
    pub const SO_SNDBUF: i32 = 7;
    pub const SO_RCVBUF: i32 = 8;
    pub const SO_KEEPALIVE: i32 = 9;
    pub const SO_OOBINLINE: i32 = 10;
    pub const SO_LINGER: i32 = 13;
    pub const SO_REUSEPORT: i32 = 15;
    pub const SO_PASSCRED: i32 = 16;
    pub const SO_PEERCRED: i32 = 17;
    pub const SO_RCVLOWAT: i32 = 18;
    pub const SO_SNDLOWAT: i32 = 19;
    pub const SO_RCVTIMEO: i32 = 20;
    pub const SO_SNDTIMEO: i32 = 21;
    pub const SO_ACCEPTCONN: i32 = 30;
    pub const SO_SNDBUFFORCE: i32 = 32;
    pub const SO_RCVBUFFORCE: i32 = 33;
    pub const SO_PASSSEC: i32 = 34;
    pub const SO_PROTOCOL: i32 = 38;
    pub const SO_DOMAIN: i32 = 39;

    pub const SCM_RIGHTS: i32 = 1;
    pub const SCM_CREDENTIALS: i32 = 2;
    /// Most descriptors in one SCM_RIGHTS message (Linux's SCM_MAX_FD).
    pub const SCM_MAX_FD: usize = 253;

    pub const MSG_OOB: u32 = 0x1;
    pub const MSG_PEEK: u32 = 0x2;
    pub const MSG_DONTROUTE: u32 = 0x4;
    pub const MSG_CTRUNC: u32 = 0x8;
    pub const MSG_TRUNC: u32 = 0x20;
    pub const MSG_DONTWAIT: u32 = 0x40;
    pub const MSG_EOR: u32 = 0x80;
    pub const MSG_WAITALL: u32 = 0x100;
    pub const MSG_ERRQUEUE: u32 = 0x2000;
    pub const MSG_NOSIGNAL: u32 = 0x4000;
    pub const MSG_MORE: u32 = 0x8000;
    pub const MSG_WAITFORONE: u32 = 0x10000;
    pub const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

    pub const SHUT_RD: i32 = 0;
    pub const SHUT_WR: i32 = 1;
    pub const SHUT_RDWR: i32 = 2;
}

/// `struct ucred`: who sent a message, as the sentry sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl Ucred {
    pub fn of(t: &crate::task::TaskCtx) -> Ucred {
        Ucred { pid: t.pid_seen(t.tgid()), uid: t.uid(), gid: t.gid() }
    }
    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&self.pid.to_ne_bytes());
        b[4..8].copy_from_slice(&self.uid.to_ne_bytes());
        b[8..12].copy_from_slice(&self.gid.to_ne_bytes());
        b
    }
    pub fn from_bytes(b: &[u8]) -> Ucred {
        let w = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
        Ucred { pid: w(0) as i32, uid: w(4), gid: w(8) }
    }
}
