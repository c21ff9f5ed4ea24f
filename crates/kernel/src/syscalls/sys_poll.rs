//! poll, ppoll, select and pselect6, on the readiness engine shared with
//! epoll (fs/readiness.rs).

use super::{Args, Entry};
use crate::fs::events::*;
use crate::fs::readiness::{self, Sources};
use crate::fs::OpenFile;
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::{PollFd, Pod, Timespec, Timeval};
use abi::Errno;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SYSCALLS: &[Entry] = &[
    sys!(POLL, sys_poll, [Hex, Int, Int], partial "an interrupted poll returns EINTR (Linux restarts it when the handler has SA_RESTART)"),
    sys!(PPOLL, sys_ppoll, [Hex, Int, Hex, Hex, Int]),
    sys!(SELECT, sys_select, [Int, Hex, Hex, Hex, Hex]),
    sys!(PSELECT6, sys_pselect6, [Int, Hex, Hex, Hex, Hex, Hex]),
];

/// What counts as readable, writable, exceptional (Linux's POLL*_SET).
const IN_SET: u32 = POLLIN | POLLHUP | POLLERR;
const OUT_SET: u32 = POLLOUT | POLLERR;
const EX_SET: u32 = POLLPRI;

/// An fd_set as a bit vector of `nfds` bits, in 64-bit words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdSet(pub Vec<u64>);

impl FdSet {
    pub fn bytes(nfds: usize) -> usize {
        nfds.div_ceil(64) * 8
    }
    pub fn from_bytes(b: &[u8], nfds: usize) -> FdSet {
        let mut v: Vec<u64> = b.chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().unwrap())).collect();
        // Bits at and past nfds are ignored (and cleared in the result).
        if nfds % 64 != 0 {
            if let Some(last) = v.last_mut() {
                *last &= (1u64 << (nfds % 64)) - 1;
            }
        }
        FdSet(v)
    }
    pub fn empty(nfds: usize) -> FdSet {
        FdSet(vec![0; nfds.div_ceil(64)])
    }
    pub fn get(&self, fd: usize) -> bool {
        self.0[fd / 64] & (1 << (fd % 64)) != 0
    }
    pub fn set(&mut self, fd: usize) {
        self.0[fd / 64] |= 1 << (fd % 64);
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }
}

/// The interest of one descriptor: (fd, file, which sets it is in).
struct Watch {
    fd: usize,
    file: Arc<OpenFile>,
    sets: [bool; 3],
}

/// The core of select: waits and fills the three result sets; returns the
/// number of bits set. Err(ERESTARTNOHAND) when interrupted.
fn do_select(t: &TaskCtx, nfds: usize, addrs: [u64; 3], deadline: Option<Instant>) -> SysResult<u64> {
    let size = FdSet::bytes(nfds);
    let mut ins = Vec::new();
    for &a in &addrs {
        ins.push(if a == 0 { None } else { Some(FdSet::from_bytes(&t.copy_in(a, size)?, nfds)) });
    }
    let table = t.files();
    let mut watches = Vec::new();
    let mut src = Sources::default();
    for fd in 0..nfds {
        let sets = [0, 1, 2].map(|i| ins[i].as_ref().is_some_and(|s| s.get(fd)));
        if !sets.iter().any(|&b| b) {
            continue;
        }
        let file = table.get(fd as i32)?;
        let mut ev = 0;
        if sets[0] {
            ev |= POLLIN;
        }
        if sets[1] {
            ev |= POLLOUT;
        }
        if sets[2] {
            ev |= POLLPRI;
        }
        src.add(&file, ev);
        watches.push(Watch { fd, file, sets });
    }
    let mut outs = [FdSet::empty(nfds), FdSet::empty(nfds), FdSet::empty(nfds)];
    let mut count = 0u64;
    let r = readiness::wait(t, &src, deadline, || {
        outs = [FdSet::empty(nfds), FdSet::empty(nfds), FdSet::empty(nfds)];
        count = 0;
        for w in &watches {
            let ev = w.file.ops.readiness();
            for (i, mask) in [IN_SET, OUT_SET, EX_SET].iter().enumerate() {
                if w.sets[i] && ev & mask != 0 {
                    outs[i].set(w.fd);
                    count += 1;
                }
            }
        }
        count > 0
    });
    match r {
        Ok(_) => {}
        Err(Errno::ERESTARTSYS) => return Err(Errno::ERESTARTNOHAND),
        Err(e) => return Err(e),
    }
    for i in 0..3 {
        if addrs[i] != 0 {
            t.copy_out(addrs[i], &outs[i].to_bytes())?;
        }
    }
    Ok(count)
}

fn check_nfds(t: &TaskCtx, n: u64) -> SysResult<usize> {
    let n = n as i32;
    if n < 0 {
        return Err(Errno::EINVAL);
    }
    // Linux clips nfds to the table's size.
    Ok((n as usize).min(t.files().limit() as usize))
}

/// Writes the time left back, as Linux does for select and pselect6.
fn remaining(deadline: Option<Instant>) -> Duration {
    deadline.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or_default()
}

fn sys_select(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let nfds = check_nfds(t, a[0])?;
    let tv_addr = a[4];
    let deadline = if tv_addr == 0 {
        None
    } else {
        let tv: Timeval = t.read_obj(tv_addr)?;
        if tv.tv_sec < 0 || tv.tv_usec < 0 {
            return Err(Errno::EINVAL);
        }
        // Linux normalises usec >= 1000000 into seconds.
        let us = (tv.tv_sec as u128) * 1_000_000 + tv.tv_usec as u128;
        Some(Instant::now() + Duration::from_micros(us.min(u64::MAX as u128) as u64))
    };
    let r = do_select(t, nfds, [a[1], a[2], a[3]], deadline);
    if tv_addr != 0 {
        let left = remaining(deadline);
        let tv = Timeval { tv_sec: left.as_secs() as i64, tv_usec: left.subsec_micros() as i64 };
        // A read-only timeout is not an error once the call has its result.
        let _ = t.write_obj(tv_addr, &tv);
    }
    r
}

fn sys_pselect6(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let nfds = check_nfds(t, a[0])?;
    let ts_addr = a[4];
    let deadline = if ts_addr == 0 {
        None
    } else {
        let ts: Timespec = t.read_obj(ts_addr)?;
        Some(Instant::now() + crate::fs::timerfd::to_duration(&ts)?)
    };
    // The sixth argument points at { const sigset_t *ss; size_t ss_len; }.
    let mask = if a[5] == 0 {
        None
    } else {
        let b = t.copy_in(a[5], 16)?;
        let ss = u64::from_ne_bytes(b[0..8].try_into().unwrap());
        let len = u64::from_ne_bytes(b[8..16].try_into().unwrap());
        readiness::read_sigmask(t, ss, len)?
    };
    readiness::swap_mask(t, mask);
    let r = do_select(t, nfds, [a[1], a[2], a[3]], deadline);
    readiness::restore_mask(t, mask.is_some(), &r);
    if ts_addr != 0 {
        let left = remaining(deadline);
        let ts = Timespec { tv_sec: left.as_secs() as i64, tv_nsec: left.subsec_nanos() as i64 };
        let _ = t.write_obj(ts_addr, &ts);
    }
    r
}

fn poll_common(t: &TaskCtx, addr: u64, nfds: u64, deadline: Option<Instant>, interrupted: Errno) -> SysResult<u64> {
    if nfds > t.files().limit() as u64 {
        return Err(Errno::EINVAL);
    }
    let size = std::mem::size_of::<PollFd>();
    let raw = t.copy_in(addr, nfds as usize * size)?;
    let mut fds: Vec<PollFd> = raw.chunks_exact(size).map(PollFd::from_bytes).collect();
    let n = match crate::fs::readiness::poll(t, &mut fds, deadline) {
        Err(e) if e == Errno::ERESTARTSYS => return Err(interrupted),
        r => r?,
    };
    let out: Vec<u8> = fds.iter().flat_map(|p| p.as_bytes().to_vec()).collect();
    t.copy_out(addr, &out)?;
    Ok(n as u64)
}

fn sys_poll(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let ms = a[2] as i32;
    let deadline = if ms < 0 { None } else { Some(Instant::now() + Duration::from_millis(ms as u64)) };
    poll_common(t, a[0], a[1], deadline, Errno::EINTR)
}

fn sys_ppoll(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let mask = crate::fs::readiness::read_sigmask(t, a[3], a[4])?;
    let deadline = if a[2] == 0 {
        None
    } else {
        let ts: Timespec = t.read_obj(a[2])?;
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Some(Instant::now() + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    };
    crate::fs::readiness::swap_mask(t, mask);
    let r = poll_common(t, a[0], a[1], deadline, Errno::ERESTARTNOHAND);
    crate::fs::readiness::restore_mask(t, mask.is_some(), &r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_set_round_trip_and_clipping() {
        let mut b = vec![0u8; 16];
        b[0] = 0b1010_0001;
        b[8] = 0xff;
        let s = FdSet::from_bytes(&b, 66);
        assert!(s.get(0) && s.get(5) && s.get(7) && !s.get(1));
        assert!(s.get(64) && s.get(65));
        assert_eq!(s.0[1], 0b11);
        let mut e = FdSet::empty(66);
        e.set(65);
        assert_eq!(e.to_bytes()[8], 0b10);
        assert_eq!(FdSet::bytes(1), 8);
        assert_eq!(FdSet::bytes(65), 16);
    }
}
