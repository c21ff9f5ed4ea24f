//! The sentry's side of a slot's mailbox (see `stub.rs` for the layout):
//! post a command, then wait for the stub to hand the slot back.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::stub::*;

/// A slot header as the sentry sees it through its mapping of the region.
#[derive(Clone, Copy)]
pub(crate) struct Mailbox {
    /// The header in the sentry's mapping.
    pub ptr: *mut u8,
}

// SAFETY: the header lives in a shared mapping that outlives every mailbox
// (the platform's region); all accesses are atomic or made while the sentry
// owns the slot.
unsafe impl Send for Mailbox {}
// SAFETY: as above.
unsafe impl Sync for Mailbox {}

/// How a wait ended.
pub(crate) enum Waited {
    Done,
    /// The stub process is gone.
    Dead,
}

impl Mailbox {
    fn u32_at(&self, off: usize) -> &AtomicU32 {
        // SAFETY: `off` is a 4-aligned offset inside the header page, which
        // stays mapped as long as the region.
        unsafe { &*(self.ptr.add(off) as *const AtomicU32) }
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        // SAFETY: as in u32_at, 8-aligned.
        unsafe { &*(self.ptr.add(off) as *const AtomicU64) }
    }

    pub fn get(&self, off: usize) -> u64 {
        self.u64_at(off).load(Ordering::Relaxed)
    }

    pub fn set(&self, off: usize, v: u64) {
        self.u64_at(off).store(v, Ordering::Relaxed)
    }

    /// A fresh slot: owned by the stub side until it reports.
    pub fn reset_for_stub(&self) {
        for off in [STUB_SLEEPING, SENTRY_SLEEPING, CMD] {
            self.u32_at(off).store(0, Ordering::Relaxed);
        }
        self.u32_at(STATE).store(OWNER_STUB, Ordering::SeqCst);
    }

    pub fn owned_by_sentry(&self) -> bool {
        self.u32_at(STATE).load(Ordering::Acquire) == OWNER_SENTRY
    }

    /// Hands the slot to the stub with command `cmd`.
    pub fn post(&self, cmd: u32) {
        self.u32_at(CMD).store(cmd, Ordering::Relaxed);
        // xchg: a full barrier, so that the stub either sees the new state
        // or has announced its sleep before we look.
        self.u32_at(STATE).swap(OWNER_STUB, Ordering::SeqCst);
        if self.u32_at(STUB_SLEEPING).load(Ordering::SeqCst) != 0 {
            // Every waiter: a stub that had this slice before may still be
            // queued on the word while it dies.
            futex(self.u32_at(STATE), libc::FUTEX_WAKE, i32::MAX as u32, None);
        }
    }

    /// Posts system call `nr` and waits for its result.
    pub fn syscall(&self, nr: i64, args: [u64; 6], alive: impl Fn() -> bool) -> Result<u64, Waited> {
        self.set(NR, nr as u64);
        for (i, a) in args.iter().enumerate() {
            self.set(ARGS + 8 * i, *a);
        }
        self.post(CMD_SYSCALL);
        match self.wait(alive) {
            Waited::Done => Ok(self.get(RET)),
            dead => Err(dead),
        }
    }

    /// Waits until the stub hands the slot back, or `alive` says it cannot.
    pub fn wait(&self, alive: impl Fn() -> bool) -> Waited {
        let state = self.u32_at(STATE);
        for _ in 0..SPIN {
            if state.load(Ordering::Acquire) == OWNER_SENTRY {
                return Waited::Done;
            }
            std::hint::spin_loop();
        }
        let sleeping = self.u32_at(SENTRY_SLEEPING);
        sleeping.swap(1, Ordering::SeqCst);
        let result = loop {
            if state.load(Ordering::SeqCst) == OWNER_SENTRY {
                break Waited::Done;
            }
            if futex(state, libc::FUTEX_WAIT, OWNER_STUB, Some(Duration::from_millis(100))) == -libc::ETIMEDOUT as i64
                && !alive()
            {
                break Waited::Dead;
            }
        };
        sleeping.store(0, Ordering::Relaxed);
        result
    }

    /// Waits until the stub thread of this slot has exited (its `TID` was
    /// cleared by the host), or the process is gone.
    pub fn wait_thread_exit(&self, alive: impl Fn() -> bool) {
        let tid = self.u32_at(TID);
        loop {
            let t = tid.load(Ordering::SeqCst);
            if t == 0 {
                return;
            }
            if futex(tid, libc::FUTEX_WAIT, t, Some(Duration::from_millis(100))) == -libc::ETIMEDOUT as i64 && !alive() {
                return;
            }
        }
    }
}

/// A shared (cross-process) futex operation; returns the result or -errno.
fn futex(word: &AtomicU32, op: i32, val: u32, timeout: Option<Duration>) -> i64 {
    let ts = timeout.map(|d| libc::timespec { tv_sec: d.as_secs() as i64, tv_nsec: d.subsec_nanos() as i64 });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid u32 in shared memory; the timeout pointer is
    // null or points to a local.
    let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, val, ts_ptr, 0usize, 0u32) };
    if r < 0 {
        -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64)
    } else {
        r
    }
}
