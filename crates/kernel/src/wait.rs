//! Blocking: how a task sleeps until something it waits for happens, or a
//! signal arrives.
//!
//! Every task has one [`Waiter`]. Objects that can be waited on (pipes,
//! child exits, futexes) own a [`WaitQueue`]; a blocking operation registers
//! its waiter on the queues it cares about, re-checks its condition, and
//! sleeps. Notifying a queue (or sending the task a signal) bumps the
//! waiter's sequence number and wakes it, so no wake-up is lost between the
//! check and the sleep.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Instant;

pub struct Waiter {
    seq: Mutex<u64>,
    cond: Condvar,
    /// Written on every wake-up so that a task blocked in `poll` on a host
    /// file descriptor wakes too.
    event: OwnedFd,
}

impl Waiter {
    pub fn new() -> std::io::Result<Arc<Waiter>> {
        // SAFETY: eventfd has no memory-safety preconditions.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just created and is owned by nobody else.
        let event = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(Arc::new(Waiter { seq: Mutex::new(0), cond: Condvar::new(), event }))
    }

    /// The current sequence number; pass it to [`Waiter::wait`].
    pub fn seq(&self) -> u64 {
        *self.seq.lock().unwrap()
    }

    pub fn notify(&self) {
        *self.seq.lock().unwrap() += 1;
        self.cond.notify_all();
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd.
        unsafe { libc::write(self.event.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Sleeps until the sequence number differs from `seen` or `deadline`
    /// passes. Returns false on timeout.
    pub fn wait(&self, seen: u64, deadline: Option<Instant>) -> bool {
        let mut seq = self.seq.lock().unwrap();
        while *seq == seen {
            match deadline {
                None => seq = self.cond.wait(seq).unwrap(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    seq = self.cond.wait_timeout(seq, d - now).unwrap().0;
                }
            }
        }
        true
    }

    /// The eventfd to include in a host `poll`; drain it with [`Waiter::drain_event`].
    pub fn event_fd(&self) -> i32 {
        self.event.as_raw_fd()
    }

    pub fn drain_event(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our own non-blocking eventfd.
        unsafe { libc::read(self.event.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

/// A list of waiters interested in one object.
#[derive(Default)]
pub struct WaitQueue {
    waiters: Mutex<Vec<Weak<Waiter>>>,
}

impl WaitQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&self, w: &Arc<Waiter>) {
        let mut v = self.waiters.lock().unwrap();
        v.retain(|x| x.strong_count() > 0);
        if !v.iter().any(|x| std::ptr::eq(x.as_ptr(), Arc::as_ptr(w))) {
            v.push(Arc::downgrade(w));
        }
    }

    pub fn unregister(&self, w: &Arc<Waiter>) {
        self.waiters.lock().unwrap().retain(|x| x.strong_count() > 0 && !std::ptr::eq(x.as_ptr(), Arc::as_ptr(w)));
    }

    pub fn notify_all(&self) {
        let list: Vec<Arc<Waiter>> = self.waiters.lock().unwrap().iter().filter_map(Weak::upgrade).collect();
        for w in list {
            w.notify();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn notify_between_check_and_sleep_is_not_lost() {
        let w = Waiter::new().unwrap();
        let q = Arc::new(WaitQueue::new());
        q.register(&w);
        let seen = w.seq();
        q.notify_all();
        assert!(w.wait(seen, Some(Instant::now() + Duration::from_secs(5))));
    }

    #[test]
    fn times_out() {
        let w = Waiter::new().unwrap();
        let seen = w.seq();
        assert!(!w.wait(seen, Some(Instant::now() + Duration::from_millis(10))));
    }

    #[test]
    fn wakes_from_another_thread() {
        let w = Waiter::new().unwrap();
        let seen = w.seq();
        let w2 = w.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w2.notify();
        });
        assert!(w.wait(seen, None));
        h.join().unwrap();
    }
}
