//! The loopback link: frames the stack transmits come back in as received,
//! in order. Unlike smoltcp's own `Loopback`, it tells the pump whether
//! anything is still in flight, so one call can run an exchange to rest.

use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use std::collections::VecDeque;

/// The loopback MTU: the largest IPv4 packet (Linux says 65536, which no
/// IPv4 packet can fill).
pub const LOOPBACK_MTU: usize = 65535;

#[derive(Default)]
pub struct LoopbackLink {
    queue: VecDeque<Vec<u8>>,
}

impl LoopbackLink {
    pub fn idle(&self) -> bool {
        self.queue.is_empty()
    }
}

impl Device for LoopbackLink {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.max_transmission_unit = LOOPBACK_MTU;
        caps.medium = Medium::Ip;
        // Frames never leave the process: checksums cannot go wrong.
        caps.checksum = ChecksumCapabilities::ignored();
        caps
    }

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.queue.pop_front()?;
        Some((RxToken(frame), TxToken(&mut self.queue)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(TxToken(&mut self.queue))
    }
}

pub struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

pub struct TxToken<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.push_back(frame);
        r
    }
}

/// A link of the container's network namespace, taken over by the
/// sandbox: Ethernet frames through an AF_PACKET socket bound to it,
/// opened (non-blocking, ignoring its own outgoing frames) before the
/// sentry's seccomp filter, and driven with read and write only.
pub struct PacketLink {
    fd: std::os::fd::OwnedFd,
    /// The link's MTU (IP payload of a frame).
    mtu: usize,
}

/// Frames read at once: the largest a packet socket can hand over when
/// the host coalesced segments (GRO) before us.
const MAX_FRAME: usize = 65536 + 14;

impl PacketLink {
    pub fn new(fd: std::os::fd::OwnedFd, mtu: usize) -> PacketLink {
        PacketLink { fd, mtu }
    }

    pub fn raw_fd(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }

    fn read_frame(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; MAX_FRAME];
        // SAFETY: buf is valid for its length; the fd is non-blocking.
        let n = unsafe { libc::read(self.raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return None;
        }
        buf.truncate(n as usize);
        Some(buf)
    }
}

pub struct PacketTx<'a>(&'a PacketLink);

impl phy::TxToken for PacketTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        // A full queue drops the frame, as a NIC would; TCP resends it.
        // SAFETY: frame is valid for its length.
        unsafe { libc::write(self.0.raw_fd(), frame.as_ptr().cast(), frame.len()) };
        r
    }
}

/// The sandbox's links: loopback, or a taken-over interface.
pub enum Link {
    Loopback(LoopbackLink),
    Packet(PacketLink),
}

impl Link {
    /// Whether frames are still queued inside the sentry.
    pub fn idle(&self) -> bool {
        match self {
            Link::Loopback(l) => l.idle(),
            Link::Packet(_) => true,
        }
    }

    pub fn packet_fd(&self) -> Option<i32> {
        match self {
            Link::Packet(p) => Some(p.raw_fd()),
            Link::Loopback(_) => None,
        }
    }
}

pub enum AnyRx {
    Loopback(RxToken),
    Packet(Vec<u8>),
}

impl phy::RxToken for AnyRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        match self {
            AnyRx::Loopback(t) => t.consume(f),
            AnyRx::Packet(frame) => f(&frame),
        }
    }
}

pub enum AnyTx<'a> {
    Loopback(TxToken<'a>),
    Packet(PacketTx<'a>),
}

impl phy::TxToken for AnyTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        match self {
            AnyTx::Loopback(t) => t.consume(len, f),
            AnyTx::Packet(t) => t.consume(len, f),
        }
    }
}

impl Device for Link {
    type RxToken<'a> = AnyRx;
    type TxToken<'a> = AnyTx<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        match self {
            Link::Loopback(l) => l.capabilities(),
            Link::Packet(p) => {
                let mut caps = DeviceCapabilities::default();
                caps.medium = Medium::Ethernet;
                caps.max_transmission_unit = p.mtu + 14;
                // Frames from a veth peer may carry a checksum the sending
                // kernel left to "hardware" (offload): TCP and UDP checksums
                // are written on the way out and not verified on the way in.
                caps.checksum.tcp = phy::Checksum::Tx;
                caps.checksum.udp = phy::Checksum::Tx;
                caps
            }
        }
    }

    fn receive(&mut self, now: Instant) -> Option<(AnyRx, AnyTx<'_>)> {
        match self {
            Link::Loopback(l) => l.receive(now).map(|(r, t)| (AnyRx::Loopback(r), AnyTx::Loopback(t))),
            Link::Packet(p) => {
                let frame = p.read_frame()?;
                Some((AnyRx::Packet(frame), AnyTx::Packet(PacketTx(p))))
            }
        }
    }

    fn transmit(&mut self, now: Instant) -> Option<AnyTx<'_>> {
        match self {
            Link::Loopback(l) => l.transmit(now).map(AnyTx::Loopback),
            Link::Packet(p) => Some(AnyTx::Packet(PacketTx(p))),
        }
    }
}
