//! timerfd: a timer whose expirations are read as a count.
//!
//! Expirations are computed from the clock whenever the timer is looked
//! at (read, readiness, gettime), so the count is exact however late the
//! reader comes. Waking waiters at expiry needs a time source: each
//! kernel's [`TimerWheel`] has one sentry thread (started with the first
//! armed timer) that sleeps until the earliest armed deadline and notifies
//! that timer's queue (periodic timers are put back for their next expiry).

use super::events::POLLIN;
use super::{anon, FileOps, OpenFile};
use crate::task::TaskCtx;
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::types::{Stat, Timespec};
use abi::Errno;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

pub const TFD_TIMER_ABSTIME: u32 = 1;
pub const TFD_TIMER_CANCEL_ON_SET: u32 = 2;

/// The pure timer arithmetic: armed deadline (as an Instant), interval,
/// expirations not yet read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timer {
    pub next: Option<Instant>,
    pub interval: Duration,
    pub expired: u64,
    /// Taken from the wheel's counter at every settime, so the timer thread
    /// ignores stale entries (even of a timer since freed and replaced).
    pub generation: u64,
}

impl Timer {
    /// Accounts the expirations up to `now`.
    pub fn update(&mut self, now: Instant) {
        let Some(next) = self.next else { return };
        if now < next {
            return;
        }
        if self.interval.is_zero() {
            self.expired += 1;
            self.next = None;
            return;
        }
        let late = (now - next).as_nanos();
        let periods = late / self.interval.as_nanos();
        self.expired = self.expired.saturating_add(1 + periods.min(u64::MAX as u128 - 1) as u64);
        let k = (periods + 1).min(u32::MAX as u128) as u32;
        self.next = Some(next + self.interval * k);
    }

    /// (time to next expiry, interval) as timerfd_gettime reports them.
    pub fn remaining(&self, now: Instant) -> (Duration, Duration) {
        (self.next.map(|n| n.saturating_duration_since(now)).unwrap_or_default(), self.interval)
    }
}

pub struct TimerFd {
    pub clock: i32,
    state: Mutex<Timer>,
    queue: WaitQueue,
    ino: u64,
    /// The wheel of the kernel the timer was created in.
    wheel: Arc<Wheel>,
}

pub fn new(clock: i32, wheel: &TimerWheel) -> Arc<TimerFd> {
    Arc::new(TimerFd { clock, state: Mutex::new(Timer::default()), queue: WaitQueue::new(), ino: anon::next_ino(), wheel: wheel.0.clone() })
}

pub fn open(tfd: Arc<TimerFd>, flags: u32) -> Arc<OpenFile> {
    anon::open(tfd, libc::O_RDWR as u32 | flags)
}

/// The current time of `clock` as the application sees it.
pub fn clock_now(clock: i32) -> SysResult<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec to a valid pointer.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

pub fn to_duration(ts: &Timespec) -> SysResult<Duration> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

pub fn to_timespec(d: Duration) -> Timespec {
    Timespec { tv_sec: d.as_secs() as i64, tv_nsec: d.subsec_nanos() as i64 }
}

impl TimerFd {
    /// timerfd_settime: returns the old (remaining, interval).
    pub fn settime(self: &Arc<Self>, flags: u32, value: Duration, interval: Duration) -> SysResult<(Duration, Duration)> {
        let now = Instant::now();
        let next = if value.is_zero() {
            None
        } else if flags & TFD_TIMER_ABSTIME != 0 {
            // An absolute time of the timer's clock, as an Instant. The
            // sandbox cannot set the clocks, so the offset stays valid.
            let clock_now = clock_now(self.clock)?;
            Some(now + value.saturating_sub(clock_now))
        } else {
            Some(now + value)
        };
        let (old, generation) = {
            let mut st = self.state.lock().unwrap();
            st.update(now);
            let old = st.remaining(now);
            st.generation = self.wheel.new_generation();
            st.next = next;
            st.interval = if next.is_some() { interval } else { Duration::ZERO };
            st.expired = 0;
            (old, st.generation)
        };
        if let Some(at) = next {
            self.wheel.schedule(self, at, generation);
        }
        self.queue.notify_all();
        Ok(old)
    }

    pub fn gettime(&self) -> (Duration, Duration) {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap();
        st.update(now);
        st.remaining(now)
    }

    /// Called by the timer thread at `generation`'s expiry; returns the
    /// next time to fire, if the timer is still armed.
    fn fire(&self, generation: u64) -> Option<Instant> {
        let next = {
            let mut st = self.state.lock().unwrap();
            if st.generation != generation {
                return None;
            }
            st.update(Instant::now());
            st.next
        };
        self.queue.notify_all();
        next
    }
}

impl FileOps for TimerFd {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        loop {
            let seen = t.prepare_block(&[&self.queue]);
            let (n, next) = {
                let mut st = self.state.lock().unwrap();
                st.update(Instant::now());
                (std::mem::take(&mut st.expired), st.next)
            };
            if n > 0 {
                self.queue.unregister(&t.task.waiter);
                buf[..8].copy_from_slice(&n.to_ne_bytes());
                return Ok(8);
            }
            if file.nonblocking() {
                self.queue.unregister(&t.task.waiter);
                return Err(Errno::EAGAIN);
            }
            // Sleep until the expiry itself (no need for the thread's wake-up).
            match t.block_since(&[&self.queue], seen, next) {
                Ok(()) | Err(Errno::ETIMEDOUT) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(anon::anon_stat(self.ino))
    }

    fn ioctl(&self, t: &TaskCtx, _file: &OpenFile, cmd: u64, arg: u64) -> SysResult<u64> {
        // TFD_IOC_SET_TICKS (_IOW('T', 0, u64)): sets the expiration count.
        const TFD_IOC_SET_TICKS: u64 = 0x4008_5400;
        if cmd == TFD_IOC_SET_TICKS {
            let n: u64 = t.read_obj(arg)?;
            if n == 0 {
                return Err(Errno::EINVAL);
            }
            self.state.lock().unwrap().expired = n;
            self.queue.notify_all();
            return Ok(0);
        }
        Err(Errno::ENOTTY)
    }

    fn readiness(&self) -> u32 {
        let mut st = self.state.lock().unwrap();
        st.update(Instant::now());
        if st.expired > 0 {
            POLLIN
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn release(&self) {
        // Disarm: the timer thread drops stale generations.
        self.state.lock().unwrap().generation = self.wheel.new_generation();
    }
}

/// One kernel's timer thread and what it waits for; ended when the
/// kernel drops it.
#[derive(Default)]
pub struct TimerWheel(Arc<Wheel>);

impl Drop for TimerWheel {
    fn drop(&mut self) {
        self.0.heap.lock().unwrap().closed = true;
        self.0.cond.notify_all();
    }
}

#[derive(Default)]
struct Heap {
    /// (deadline, generation, timer address).
    entries: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    /// The kernel is gone: the thread ends.
    closed: bool,
}

#[derive(Default)]
struct Wheel {
    heap: Mutex<Heap>,
    timers: Mutex<std::collections::HashMap<usize, Weak<TimerFd>>>,
    cond: Condvar,
    next_generation: AtomicU64,
    started: OnceLock<()>,
}

impl Wheel {
    /// A generation no entry of this wheel has had (never 0, a disarmed
    /// timer's).
    fn new_generation(&self) -> u64 {
        self.next_generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn schedule(self: &Arc<Self>, t: &Arc<TimerFd>, at: Instant, generation: u64) {
        self.started.get_or_init(|| {
            let w = self.clone();
            std::thread::Builder::new().name("veil-timerfd".into()).spawn(move || w.run()).expect("timer thread");
        });
        let key = Arc::as_ptr(t) as usize;
        self.timers.lock().unwrap().insert(key, Arc::downgrade(t));
        self.heap.lock().unwrap().entries.push(Reverse((at, generation, key)));
        self.cond.notify_one();
    }

    fn run(&self) {
        let mut heap = self.heap.lock().unwrap();
        loop {
            if heap.closed {
                return;
            }
            let Some(&Reverse((at, generation, key))) = heap.entries.peek() else {
                heap = self.cond.wait(heap).unwrap();
                continue;
            };
            let now = Instant::now();
            if at > now {
                heap = self.cond.wait_timeout(heap, at - now).unwrap().0;
                continue;
            }
            heap.entries.pop();
            drop(heap);
            let timer = {
                let mut timers = self.timers.lock().unwrap();
                let t = timers.get(&key).and_then(Weak::upgrade);
                if t.is_none() {
                    timers.remove(&key);
                }
                t
            };
            let again = timer.as_ref().and_then(|t| t.fire(generation));
            heap = self.heap.lock().unwrap();
            if let Some(next) = again {
                heap.entries.push(Reverse((next, generation, key)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_expires_once() {
        let t0 = Instant::now();
        let mut t = Timer { next: Some(t0 + Duration::from_millis(10)), ..Default::default() };
        t.update(t0);
        assert_eq!(t.expired, 0);
        t.update(t0 + Duration::from_millis(50));
        assert_eq!(t.expired, 1);
        assert!(t.next.is_none());
    }

    #[test]
    fn periodic_counts_every_period() {
        let t0 = Instant::now();
        let mut t = Timer { next: Some(t0 + Duration::from_millis(10)), interval: Duration::from_millis(10), ..Default::default() };
        t.update(t0 + Duration::from_millis(35));
        assert_eq!(t.expired, 3);
        assert_eq!(t.next, Some(t0 + Duration::from_millis(40)));
        assert_eq!(t.remaining(t0 + Duration::from_millis(35)).0, Duration::from_millis(5));
    }
}
