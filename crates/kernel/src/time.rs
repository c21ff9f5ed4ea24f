//! Timers that deliver a signal to a process when they expire
//! (ITIMER_REAL / alarm). Each armed timer has one sentry thread sleeping
//! until its deadline; re-arming or disarming wakes it to look again.

use crate::task::ThreadGroup;
use crate::Kernel;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

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
