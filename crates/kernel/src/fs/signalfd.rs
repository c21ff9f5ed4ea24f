//! signalfd: reading signals as `signalfd_siginfo` records instead of
//! having them delivered. A read dequeues pending signals in the mask
//! (the reading thread's own first, then its process's); readiness looks
//! at what is pending for the task asking, as Linux looks at `current`.

use super::events::POLLIN;
use super::{anon, FileOps, OpenFile};
use crate::task::{Task, TaskCtx};
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::signal::{self, SigSet};
use abi::types::{Siginfo, Stat};
use abi::Errno;
use std::cell::RefCell;
use std::sync::{Arc, Mutex, Weak};

pub const SIGINFO_SIZE: usize = 128;

pub struct SignalFd {
    mask: Mutex<SigSet>,
    /// The creating task: whose pending signals readiness reports when it
    /// is asked outside a system call of ours (see [`with_current`]).
    owner: Weak<Task>,
    /// The creator's `signal_events`, for waiters that only see this file.
    owner_events: Arc<crate::task::ThreadGroup>,
    ino: u64,
}

thread_local! {
    /// The task whose system call is running on this host thread, when a
    /// readiness scan of ours runs (each task has its own host thread).
    static CURRENT: RefCell<Option<Weak<Task>>> = const { RefCell::new(None) };
}

/// Runs `f` with `t` as the task readiness is computed for.
pub fn with_current<R>(t: &TaskCtx, f: impl FnOnce() -> R) -> R {
    let prev = CURRENT.with(|c| c.replace(Some(Arc::downgrade(&t.task))));
    let r = f();
    CURRENT.with(|c| *c.borrow_mut() = prev);
    r
}

pub fn new(t: &TaskCtx, mask: SigSet) -> Arc<SignalFd> {
    Arc::new(SignalFd { mask: Mutex::new(settable(mask)), owner: Arc::downgrade(&t.task), owner_events: t.task.tg.clone(), ino: anon::next_ino() })
}

pub fn open(s: Arc<SignalFd>, flags: u32) -> Arc<OpenFile> {
    anon::open(s, libc::O_RDWR as u32 | flags)
}

/// SIGKILL and SIGSTOP cannot be read (silently dropped from the mask).
fn settable(mut m: SigSet) -> SigSet {
    m.remove(signal::SIGKILL);
    m.remove(signal::SIGSTOP);
    m
}

impl SignalFd {
    pub fn set_mask(&self, m: SigSet) {
        *self.mask.lock().unwrap() = settable(m);
        self.owner_events.signal_events.notify_all();
    }
}

/// Lays `info` out as `struct signalfd_siginfo`.
pub fn encode(info: &Siginfo) -> [u8; SIGINFO_SIZE] {
    let mut b = [0u8; SIGINFO_SIZE];
    let put32 = |b: &mut [u8; SIGINFO_SIZE], off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    let put64 = |b: &mut [u8; SIGINFO_SIZE], off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    put32(&mut b, 0, info.signo as u32);
    put32(&mut b, 4, info.errno as u32);
    put32(&mut b, 8, info.code as u32);
    let f = &info.fields;
    let is_fault = matches!(info.signo, signal::SIGSEGV | signal::SIGBUS | signal::SIGILL | signal::SIGFPE | signal::SIGTRAP) && info.code > 0;
    if is_fault {
        put64(&mut b, 72, f[0]); // ssi_addr
    } else {
        put32(&mut b, 12, f[0] as u32); // ssi_pid
        put32(&mut b, 16, (f[0] >> 32) as u32); // ssi_uid
        if info.signo == signal::SIGCHLD {
            put32(&mut b, 40, f[1] as u32); // ssi_status
            put64(&mut b, 56, f[2]); // ssi_utime
            put64(&mut b, 64, f[3]); // ssi_stime
        } else {
            // sigqueue's value: ssi_int and ssi_ptr.
            put32(&mut b, 44, f[1] as u32);
            put64(&mut b, 48, f[1]);
        }
    }
    b
}

impl FileOps for SignalFd {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        let room = buf.len() / SIGINFO_SIZE;
        if room == 0 {
            return Err(Errno::EINVAL);
        }
        let events = &t.task.tg.signal_events;
        let mut n = 0;
        loop {
            let seen = t.prepare_block(&[events]);
            let mask = *self.mask.lock().unwrap();
            while n < room {
                match crate::signal::dequeue_in(&t.task, mask) {
                    Some(info) => {
                        buf[n * SIGINFO_SIZE..(n + 1) * SIGINFO_SIZE].copy_from_slice(&encode(&info));
                        n += 1;
                    }
                    None => break,
                }
            }
            if n > 0 {
                events.unregister(&t.task.waiter);
                return Ok(n * SIGINFO_SIZE);
            }
            if file.nonblocking() {
                events.unregister(&t.task.waiter);
                return Err(Errno::EAGAIN);
            }
            t.block_since(&[events], seen, None)?;
        }
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(anon::anon_stat(self.ino))
    }

    fn readiness(&self) -> u32 {
        let task = CURRENT.with(|c| c.borrow().as_ref().and_then(Weak::upgrade)).or_else(|| self.owner.upgrade());
        let Some(task) = task else { return 0 };
        let mask = *self.mask.lock().unwrap();
        if crate::signal::pending_set(&task).0 & mask.0 != 0 {
            POLLIN
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.owner_events.signal_events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siginfo_layout() {
        let b = encode(&Siginfo::from_user(signal::SIGUSR1, 0, 42, 7));
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 10);
        assert_eq!(u32::from_ne_bytes(b[12..16].try_into().unwrap()), 42);
        assert_eq!(u32::from_ne_bytes(b[16..20].try_into().unwrap()), 7);
        let c = encode(&Siginfo::child(1, 5, 0, 3));
        assert_eq!(u32::from_ne_bytes(c[40..44].try_into().unwrap()), 3);
    }
}
