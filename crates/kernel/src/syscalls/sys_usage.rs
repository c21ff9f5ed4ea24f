//! CPU time used: times and getrusage, as the sentry accounts it.

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::Timeval;
use abi::Errno;
use std::time::Duration;

pub const SYSCALLS: &[Entry] = &[
    sys!(TIMES, sys_times, [Hex], partial "CPU time as the sentry accounts it: user = time in application code, system = time serving it"),
    sys!(GETRUSAGE, sys_getrusage, [Int, Hex], partial "CPU times as the sentry accounts them; the other counters are zero"),
];

/// Clock ticks (100 Hz) since the sandbox booted.
fn ticks(t: &TaskCtx) -> u64 {
    (t.kernel().boot_time.elapsed().as_millis() / 10) as u64
}

fn to_ticks(d: Duration) -> u64 {
    (d.as_millis() / 10) as u64
}

fn sys_times(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if a[0] != 0 {
        let (u, s) = crate::task::process_times(t.kernel(), &t.task.tg);
        let (cu, cs) = t.task.tg.children_times.get();
        let tms: Vec<u8> = [u, s, cu, cs].iter().flat_map(|d| to_ticks(*d).to_le_bytes()).collect();
        t.copy_out(a[0], &tms)?;
    }
    Ok(ticks(t))
}

fn sys_getrusage(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (u, s) = match a[0] as i32 {
        libc::RUSAGE_SELF => crate::task::process_times(t.kernel(), &t.task.tg),
        libc::RUSAGE_CHILDREN => t.task.tg.children_times.get(),
        libc::RUSAGE_THREAD => t.task.times.get(),
        _ => return Err(Errno::EINVAL),
    };
    let tv = |d: Duration| Timeval { tv_sec: d.as_secs() as i64, tv_usec: d.subsec_micros() as i64 };
    t.write_obj(a[1], &abi::types::Rusage { utime: tv(u), stime: tv(s), ..Default::default() })?;
    Ok(0)
}
