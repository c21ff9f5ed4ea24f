//! timerfd_create, timerfd_settime, timerfd_gettime.

use super::{Args, Entry};
use crate::fs::anon;
use crate::fs::timerfd::{self, to_duration, to_timespec, TimerFd, TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::Timespec;
use abi::Errno;
use std::sync::Arc;

pub const SYSCALLS: &[Entry] = &[
    sys!(TIMERFD_CREATE, sys_timerfd_create, [Int, Hex], partial "CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME (and the _ALARM forms, without waking a suspended host)"),
    sys!(TIMERFD_SETTIME, sys_timerfd_settime, [Int, Hex, Hex, Hex], partial "TFD_TIMER_CANCEL_ON_SET is accepted; the sandbox's clock is never set, so it never cancels"),
    sys!(TIMERFD_GETTIME, sys_timerfd_gettime, [Int, Hex]),
];

/// struct itimerspec: interval, then value.
fn write_itimerspec(t: &TaskCtx, addr: u64, value: Timespec, interval: Timespec) -> SysResult<()> {
    let mut b = Vec::with_capacity(32);
    for ts in [interval, value] {
        b.extend_from_slice(&ts.tv_sec.to_ne_bytes());
        b.extend_from_slice(&ts.tv_nsec.to_ne_bytes());
    }
    t.copy_out(addr, &b)
}

fn timer_of(t: &TaskCtx, fd: i32) -> SysResult<Arc<TimerFd>> {
    let f = t.files().get(fd)?;
    anon::get::<TimerFd>(&f).ok_or(Errno::EINVAL)
}

fn sys_timerfd_create(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (clock, flags) = (a[0] as i32, a[1] as u32);
    let host_clock = match clock {
        libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_ALARM => libc::CLOCK_REALTIME,
        libc::CLOCK_MONOTONIC => libc::CLOCK_MONOTONIC,
        libc::CLOCK_BOOTTIME | libc::CLOCK_BOOTTIME_ALARM => libc::CLOCK_BOOTTIME,
        _ => return Err(Errno::EINVAL),
    };
    if flags & !((libc::O_NONBLOCK | libc::O_CLOEXEC) as u32) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = timerfd::open(timerfd::new(host_clock, &t.kernel().timerfds), flags & libc::O_NONBLOCK as u32);
    Ok(t.files().install(f, flags & libc::O_CLOEXEC as u32 != 0)? as u64)
}

fn sys_timerfd_settime(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (fd, flags, new, old) = (a[0] as i32, a[1] as u32, a[2], a[3]);
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let tfd = timer_of(t, fd)?;
    let raw = t.copy_in(new, 32)?;
    let ts = |i: usize| Timespec { tv_sec: i64::from_ne_bytes(raw[i..i + 8].try_into().unwrap()), tv_nsec: i64::from_ne_bytes(raw[i + 8..i + 16].try_into().unwrap()) };
    let interval = to_duration(&ts(0))?;
    let value = to_duration(&ts(16))?;
    let (rem, ival) = tfd.settime(flags, value, interval)?;
    if old != 0 {
        write_itimerspec(t, old, to_timespec(rem), to_timespec(ival))?;
    }
    Ok(0)
}

fn sys_timerfd_gettime(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let tfd = timer_of(t, a[0] as i32)?;
    let (rem, ival) = tfd.gettime();
    write_itimerspec(t, a[1], to_timespec(rem), to_timespec(ival))?;
    Ok(0)
}
