//! Clocks and sleeps: clock_gettime, clock_getres, gettimeofday, time,
//! nanosleep and clock_nanosleep.

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::time::host_clock;
use crate::SysResult;
use abi::types::{Timespec, Timeval};
use abi::Errno;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const SYSCALLS: &[Entry] = &[
    sys!(CLOCK_GETTIME, sys_clock_gettime, [Int, Hex], partial "CPU-time clocks report the sentry thread's time"),
    sys!(CLOCK_GETRES, sys_clock_getres, [Int, Hex]),
    sys!(GETTIMEOFDAY, sys_gettimeofday, [Hex, Hex]),
    sys!(TIME, sys_time, [Hex]),
    sys!(NANOSLEEP, sys_nanosleep, [Hex, Hex]),
    sys!(CLOCK_NANOSLEEP, sys_clock_nanosleep, [Int, Hex, Hex, Hex]),
];

fn sys_clock_gettime(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let ts = host_clock(a[0] as i32)?;
    t.write_obj(a[1], &ts)?;
    Ok(0)
}

fn sys_clock_getres(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    host_clock(a[0] as i32)?;
    if a[1] != 0 {
        t.write_obj(a[1], &Timespec { tv_sec: 0, tv_nsec: 1 })?;
    }
    Ok(0)
}

fn sys_gettimeofday(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if a[0] != 0 {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        t.write_obj(a[0], &Timeval { tv_sec: d.as_secs() as i64, tv_usec: d.subsec_micros() as i64 })?;
    }
    if a[1] != 0 {
        t.copy_out(a[1], &[0u8; 8])?;
    }
    Ok(0)
}

fn sys_time(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    if a[0] != 0 {
        t.write_obj(a[0], &(now as i64))?;
    }
    Ok(now)
}

fn read_timespec(t: &TaskCtx, addr: u64) -> SysResult<Duration> {
    let ts: Timespec = t.read_obj(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Sleeps until `until`; on a signal writes the time left to `rem`.
fn sleep_until(t: &mut TaskCtx, until: Instant, rem: u64) -> SysResult<u64> {
    loop {
        match t.block(&[], Some(until)) {
            Err(e) if e == Errno::ETIMEDOUT => return Ok(0),
            Err(e) => {
                if rem != 0 {
                    let left = until.saturating_duration_since(Instant::now());
                    t.write_obj(rem, &Timespec { tv_sec: left.as_secs() as i64, tv_nsec: left.subsec_nanos() as i64 })?;
                }
                // Interrupted: EINTR if a handler runs, else restarted.
                return Err(if e == Errno::ERESTARTSYS { Errno::ERESTARTNOHAND } else { e });
            }
            Ok(()) => {
                if Instant::now() >= until {
                    return Ok(0);
                }
            }
        }
    }
}

fn sys_nanosleep(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let d = read_timespec(t, a[0])?;
    sleep_until(t, Instant::now() + d, a[1])
}

fn sys_clock_nanosleep(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (clock, flags) = (a[0] as i32, a[1] as i32);
    let d = read_timespec(t, a[2])?;
    let until = if flags & libc::TIMER_ABSTIME != 0 {
        let now = host_clock(clock)?;
        let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
        Instant::now() + d.saturating_sub(now)
    } else {
        host_clock(clock)?;
        Instant::now() + d
    };
    let rem = if flags & libc::TIMER_ABSTIME != 0 { 0 } else { a[3] };
    sleep_until(t, until, rem)
}
