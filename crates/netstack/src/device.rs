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
