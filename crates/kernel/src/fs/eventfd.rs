//! eventfd: a 64-bit counter as a file. A read takes the whole count (or 1
//! in semaphore mode) and blocks while it is zero; a write adds and blocks
//! while the sum would pass the maximum.

use super::events::{POLLERR, POLLIN, POLLOUT};
use super::{anon, FileOps, OpenFile};
use crate::task::TaskCtx;
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use std::sync::{Arc, Mutex};

/// The largest value the counter holds.
pub const MAX: u64 = u64::MAX - 1;

pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    queue: WaitQueue,
    ino: u64,
}

/// The pure counter rules, tested on their own.
pub fn take(count: &mut u64, semaphore: bool) -> Option<u64> {
    if *count == 0 {
        return None;
    }
    let v = if semaphore { 1 } else { *count };
    *count -= v;
    Some(v)
}

pub fn add(count: &mut u64, v: u64) -> bool {
    if MAX - *count < v {
        return false;
    }
    *count += v;
    true
}

pub fn new(initval: u32, semaphore: bool, flags: u32) -> Arc<OpenFile> {
    let e = Arc::new(EventFd { count: Mutex::new(initval as u64), semaphore, queue: WaitQueue::new(), ino: anon::next_ino() });
    anon::open(e, libc::O_RDWR as u32 | flags)
}

impl FileOps for EventFd {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        loop {
            let seen = t.prepare_block(&[&self.queue]);
            let got = take(&mut self.count.lock().unwrap(), self.semaphore);
            if let Some(v) = got {
                self.queue.unregister(&t.task.waiter);
                self.queue.notify_all();
                buf[..8].copy_from_slice(&v.to_ne_bytes());
                return Ok(8);
            }
            if file.nonblocking() {
                self.queue.unregister(&t.task.waiter);
                return Err(Errno::EAGAIN);
            }
            t.block_since(&[&self.queue], seen, None)?;
        }
    }

    fn write(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let v = u64::from_ne_bytes(buf[..8].try_into().unwrap());
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        loop {
            let seen = t.prepare_block(&[&self.queue]);
            if add(&mut self.count.lock().unwrap(), v) {
                self.queue.unregister(&t.task.waiter);
                self.queue.notify_all();
                return Ok(8);
            }
            if file.nonblocking() {
                self.queue.unregister(&t.task.waiter);
                return Err(Errno::EAGAIN);
            }
            t.block_since(&[&self.queue], seen, None)?;
        }
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(anon::anon_stat(self.ino))
    }

    fn readiness(&self) -> u32 {
        let c = *self.count.lock().unwrap();
        let mut ev = 0;
        if c > 0 {
            ev |= POLLIN;
        }
        if c < MAX {
            ev |= POLLOUT;
        }
        if c == u64::MAX {
            ev |= POLLERR;
        }
        ev
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_and_semaphore_rules() {
        let mut c = 3;
        assert_eq!(take(&mut c, true), Some(1));
        assert_eq!(take(&mut c, false), Some(2));
        assert_eq!(take(&mut c, false), None);
        assert!(add(&mut c, MAX));
        assert!(!add(&mut c, 1));
        assert_eq!(c, MAX);
    }
}
