//! Interval timers: alarm, setitimer, getitimer.

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::Timeval;
use abi::Errno;
use std::time::Duration;

pub const SYSCALLS: &[Entry] = &[
    sys!(ALARM, sys_alarm, [Int]),
    sys!(SETITIMER, sys_setitimer, [Int, Hex, Hex], partial "ITIMER_VIRTUAL/PROF count CPU time as the sentry accounts it (time in application code; plus serving it)"),
    sys!(GETITIMER, sys_getitimer, [Int, Hex]),
];

const ITIMER_REAL: u64 = 0;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Itimerval {
    interval: Timeval,
    value: Timeval,
}
// SAFETY: two Timevals of integers, no padding.
unsafe impl abi::types::Pod for Itimerval {}

fn to_timeval(d: Duration) -> Timeval {
    Timeval { tv_sec: d.as_secs() as i64, tv_usec: d.subsec_micros() as i64 }
}

fn from_timeval(tv: Timeval) -> SysResult<Duration> {
    if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000))
}

const ITIMER_VIRTUAL: u64 = 1;
const ITIMER_PROF: u64 = 2;

fn sys_alarm(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let tg = t.task.tg.clone();
    let (left, _) = tg.real_timer.set(t.kernel(), &tg, abi::signal::SIGALRM, Duration::from_secs(a[0] as u32 as u64), Duration::ZERO);
    // Remaining seconds, rounded to nearest, at least 1 if any time was left.
    let secs = left.as_secs() + u64::from(left.subsec_micros() >= 500_000);
    Ok(if left.is_zero() { 0 } else { secs.max(1) })
}

fn sys_setitimer(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let new: Itimerval = if a[1] != 0 { t.read_obj(a[1])? } else { Itimerval::default() };
    let (value, interval) = (from_timeval(new.value)?, from_timeval(new.interval)?);
    let tg = t.task.tg.clone();
    let (left, ival) = match a[0] {
        ITIMER_REAL => tg.real_timer.set(t.kernel(), &tg, abi::signal::SIGALRM, value, interval),
        ITIMER_VIRTUAL => tg.virtual_timer.set(value, interval),
        ITIMER_PROF => tg.prof_timer.set(value, interval),
        _ => return Err(Errno::EINVAL),
    };
    if a[2] != 0 {
        t.write_obj(a[2], &Itimerval { interval: to_timeval(ival), value: to_timeval(left) })?;
    }
    Ok(0)
}

fn sys_getitimer(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let tg = &t.task.tg;
    let (left, ival) = match a[0] {
        ITIMER_REAL => tg.real_timer.get(),
        ITIMER_VIRTUAL => tg.virtual_timer.get(),
        ITIMER_PROF => tg.prof_timer.get(),
        _ => return Err(Errno::EINVAL),
    };
    t.write_obj(a[1], &Itimerval { interval: to_timeval(ival), value: to_timeval(left) })?;
    Ok(0)
}
