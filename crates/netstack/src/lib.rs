//! The sandbox's TCP/IP stack.
//!
//! One [`Stack`] per sandbox serves every AF_INET/AF_INET6 socket its
//! programs open. Packets are built and parsed by smoltcp (TCP with window
//! scaling, SACK-less Reno/Cubic congestion control, timestamps, Nagle,
//! keep-alive; UDP; IPv4 and IPv6 with reassembly); this crate adds what a
//! Linux program expects around it and smoltcp leaves to its user:
//!
//! - a socket table with Linux's rules for ports (EADDRINUSE,
//!   SO_REUSEADDR/SO_REUSEPORT, dual-stack wildcards, ephemeral ports);
//! - listening sockets with a backlog: smoltcp's TCP socket carries one
//!   connection, so a listener keeps a pool of smoltcp sockets in LISTEN
//!   and moves each one that completes its handshake to an accept queue;
//! - connection errors as errno (ECONNREFUSED, ECONNRESET, EPIPE, …),
//!   non-blocking connect, shutdown, close with reset on unread data;
//! - readiness as poll bits, with a waker per socket called whenever they
//!   or the queued byte counts change, which the sentry ties to its wait
//!   queues (epoll, poll, select, blocking calls);
//! - a timer thread that runs smoltcp's timers (retransmission, delayed
//!   ACK, keep-alive, TIME-WAIT) when no system call is driving the stack.
//!
//! Every operation runs the interface until the link is idle before it
//! returns, so an exchange over loopback completes inside the system call
//! that started it; the timer thread only handles what time triggers.

pub mod device;
mod ports;
mod socket;
mod stack;
mod tcp;
mod udp;

pub use abi::Errno;
pub use socket::{Opts, Socket};
pub use stack::{LinkInfo, LinkSpec, Stack};

use std::sync::Arc;

/// A socket's number in the stack's table.
pub type SockId = u64;

/// Called (without the stack's lock held) when a socket's readiness may
/// have changed.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

/// poll(2) bits as [`Socket::readiness`] reports them.
pub mod events {
    pub const POLLIN: u32 = 0x1;
    pub const POLLOUT: u32 = 0x4;
    pub const POLLERR: u32 = 0x8;
    pub const POLLHUP: u32 = 0x10;
    pub const POLLRDHUP: u32 = 0x2000;
}

#[cfg(test)]
mod tests;
