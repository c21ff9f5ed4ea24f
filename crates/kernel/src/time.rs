//! Time as the kernel keeps it: the clocks it reads, timers that deliver
//! a signal to a process when they expire (ITIMER_REAL / alarm), and CPU
//! time accounting. Each armed signal timer has one sentry thread sleeping
//! until its deadline; re-arming or disarming wakes it to look again.

use crate::task::ThreadGroup;
use crate::{Kernel, SysResult};
use abi::types::Timespec;
use abi::Errno;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// Time since an arbitrary fixed point, like CLOCK_MONOTONIC.
pub fn monotonic() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec to a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The clock `id` as the application asked for it (EINVAL for a clock the
/// sentry does not serve). CPU-time clocks read the sentry thread's time.
pub fn host_clock(id: i32) -> SysResult<Timespec> {
    let host_id = match id {
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_MONOTONIC_RAW | libc::CLOCK_REALTIME_COARSE | libc::CLOCK_MONOTONIC_COARSE | libc::CLOCK_BOOTTIME => id,
        libc::CLOCK_PROCESS_CPUTIME_ID | libc::CLOCK_THREAD_CPUTIME_ID => libc::CLOCK_THREAD_CPUTIME_ID,
        _ => return Err(Errno::EINVAL),
    };
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec to a valid pointer.
    if unsafe { libc::clock_gettime(host_id, &mut ts) } != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Timespec { tv_sec: ts.tv_sec, tv_nsec: ts.tv_nsec })
}

#[derive(Default)]
struct State {
    deadline: Option<Instant>,
    interval: Duration,
    /// Whether a thread is currently waiting on this timer.
    running: bool,
}

#[derive(Default)]
pub struct SignalTimer {
    state: Mutex<State>,
    cond: Condvar,
}

impl SignalTimer {
    /// Time left and interval, as getitimer reports them.
    pub fn get(&self) -> (Duration, Duration) {
        let s = self.state.lock().unwrap();
        let left = s.deadline.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or_default();
        (left, s.interval)
    }

    /// Arms (value > 0) or disarms (value == 0) the timer; returns the
    /// previous (left, interval). On expiry `signo` goes to `tg`.
    pub fn set(self: &Arc<Self>, kernel: &Arc<Kernel>, tg: &Arc<ThreadGroup>, signo: i32, value: Duration, interval: Duration) -> (Duration, Duration) {
        let old = self.get();
        let mut s = self.state.lock().unwrap();
        s.deadline = (!value.is_zero()).then(|| Instant::now() + value);
        s.interval = interval;
        if s.deadline.is_some() && !s.running {
            s.running = true;
            let (me, k, g) = (Arc::downgrade(self), Arc::downgrade(kernel), Arc::downgrade(tg));
            std::thread::Builder::new().name("itimer".into()).spawn(move || run(me, k, g, signo)).expect("spawning a timer thread");
        }
        drop(s);
        self.cond.notify_all();
        old
    }
}

fn run(timer: Weak<SignalTimer>, kernel: Weak<Kernel>, tg: Weak<ThreadGroup>, signo: i32) {
    loop {
        let Some(t) = timer.upgrade() else { return };
        let mut s = t.state.lock().unwrap();
        let Some(deadline) = s.deadline else {
            s.running = false;
            return;
        };
        let now = Instant::now();
        if now < deadline {
            // Wake at the deadline or when re-armed; the timer is re-read then.
            let _ = t.cond.wait_timeout(s, deadline - now).unwrap();
            continue;
        }
        s.deadline = (!s.interval.is_zero()).then(|| deadline + s.interval);
        drop(s);
        let (Some(k), Some(g)) = (kernel.upgrade(), tg.upgrade()) else {
            t.state.lock().unwrap().running = false;
            return;
        };
        if g.state.lock().unwrap().zombie.is_some() {
            t.state.lock().unwrap().running = false;
            return;
        }
        let info = abi::types::Siginfo::from_user(signo, abi::signal::code::SI_KERNEL, 0, 0);
        crate::signal::send_to_group(&k, &g, info);
    }
}

/// CPU time the sentry accounts to a task or process: `user` is time in
/// application code (between entering and leaving the platform's switch),
/// `system` is time the sentry spent serving it.
#[derive(Default)]
pub struct CpuTimes {
    user_ns: std::sync::atomic::AtomicU64,
    system_ns: std::sync::atomic::AtomicU64,
}

impl CpuTimes {
    pub fn add(&self, user: Duration, system: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.user_ns.fetch_add(user.as_nanos() as u64, Relaxed);
        self.system_ns.fetch_add(system.as_nanos() as u64, Relaxed);
    }
    pub fn add_from(&self, other: &CpuTimes) {
        let (u, s) = other.get();
        self.add(u, s);
    }
    /// (user, system).
    pub fn get(&self) -> (Duration, Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        (Duration::from_nanos(self.user_ns.load(Relaxed)), Duration::from_nanos(self.system_ns.load(Relaxed)))
    }
}

/// ITIMER_VIRTUAL / ITIMER_PROF: count down with the process's CPU time
/// (user; user + system) rather than the clock.
#[derive(Default)]
pub struct CpuTimer {
    /// (left, interval); left zero = disarmed.
    state: Mutex<(Duration, Duration)>,
}

impl CpuTimer {
    pub fn get(&self) -> (Duration, Duration) {
        *self.state.lock().unwrap()
    }
    /// Arms or disarms; returns the previous (left, interval).
    pub fn set(&self, value: Duration, interval: Duration) -> (Duration, Duration) {
        std::mem::replace(&mut *self.state.lock().unwrap(), (value, interval))
    }
    /// Counts `spent` down; true when the timer expired (it is re-armed
    /// with its interval, or disarmed).
    pub fn charge(&self, spent: Duration) -> bool {
        let mut s = self.state.lock().unwrap();
        if s.0.is_zero() {
            return false;
        }
        if spent < s.0 {
            s.0 -= spent;
            return false;
        }
        s.0 = s.1;
        true
    }
}
