//! futex(2) and the robust-list calls; the waiters live in the kernel's
//! futex table ([`crate::futex`]).

use super::{Args, Entry};
use crate::sys;
use crate::futex::{self, ROBUST_LIST_HEAD_SIZE};
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::Timespec;
use abi::Errno;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const SYSCALLS: &[Entry] = &[
    sys!(FUTEX, sys_futex, [Hex, Int, Int, Hex, Hex, Int], partial "WAIT, WAKE, *_BITSET, REQUEUE, CMP_REQUEUE; no PI or WAKE_OP"),
    sys!(SET_ROBUST_LIST, sys_set_robust_list, [Hex, Int]),
    sys!(GET_ROBUST_LIST, sys_get_robust_list, [Int, Hex, Hex]),
];

fn deadline(t: &TaskCtx, addr: u64, absolute: bool, realtime: bool) -> SysResult<Option<Instant>> {
    if addr == 0 {
        return Ok(None);
    }
    let ts: Timespec = t.read_obj(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    let d = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    if !absolute {
        return Ok(Some(Instant::now() + d));
    }
    let now = if realtime { SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() } else { crate::time::monotonic() };
    Ok(Some(Instant::now() + d.saturating_sub(now)))
}

fn sys_futex(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (addr, op, val, timeout, addr2, val3) = (a[0], a[1] as i32, a[2] as u32, a[3], a[4], a[5] as u32);
    let cmd = op & libc::FUTEX_CMD_MASK;
    let realtime = op & libc::FUTEX_CLOCK_REALTIME != 0;
    match cmd {
        libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET => {
            let bitset = if cmd == libc::FUTEX_WAIT { u32::MAX } else { val3 };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let dl = deadline(t, timeout, cmd == libc::FUTEX_WAIT_BITSET, realtime)?;
            let kernel = t.kernel().clone();
            kernel.futexes.wait(t, addr, val, bitset, dl)
        }
        libc::FUTEX_WAKE | libc::FUTEX_WAKE_BITSET => {
            let bitset = if cmd == libc::FUTEX_WAKE { u32::MAX } else { val3 };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(t.kernel().futexes.wake(futex::key(&t.task, addr)?, val as usize, bitset) as u64)
        }
        libc::FUTEX_REQUEUE | libc::FUTEX_CMP_REQUEUE => {
            let expected = (cmd == libc::FUTEX_CMP_REQUEUE).then_some(val3);
            // The timeout argument carries val2: how many to requeue.
            t.kernel().futexes.requeue(t, addr, addr2, val as usize, timeout as usize, expected)
        }
        _ => {
            t.kernel().report_unsupported_feature(abi::syscalls::nr::FUTEX, "futex operation");
            Err(Errno::ENOSYS)
        }
    }
}

fn sys_set_robust_list(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if a[1] != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    t.task.robust_list.store(a[0], Ordering::SeqCst);
    Ok(0)
}

fn sys_get_robust_list(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let target = if a[0] == 0 { t.task.clone() } else { t.kernel().task(a[0] as i32).ok_or(Errno::ESRCH)? };
    t.write_obj(a[1], &target.robust_list.load(Ordering::SeqCst))?;
    t.write_obj(a[2], &ROBUST_LIST_HEAD_SIZE)?;
    Ok(0)
}
