//! membarrier: a memory barrier on every thread that runs the process's
//! (or every process's) code. Application threads run on host threads
//! (ptrace stubs, KVM vCPU threads), so the sentry serves each command with
//! the host's global barrier, which orders memory on every host CPU: a
//! stronger barrier than the private commands promise, never a weaker one.

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;
use std::sync::atomic::Ordering;

pub const SYSCALLS: &[Entry] = &[sys!(MEMBARRIER, sys_membarrier, [Hex, Hex, Int], partial "no SYNC_CORE or RSEQ commands; every barrier is the host's global one")];

const CMD_QUERY: u64 = 0;
const CMD_GLOBAL: u64 = 1 << 0;
const CMD_GLOBAL_EXPEDITED: u64 = 1 << 1;
const CMD_REGISTER_GLOBAL_EXPEDITED: u64 = 1 << 2;
const CMD_PRIVATE_EXPEDITED: u64 = 1 << 3;
const CMD_REGISTER_PRIVATE_EXPEDITED: u64 = 1 << 4;

/// The commands served (what MEMBARRIER_CMD_QUERY answers).
pub const SUPPORTED: u64 = CMD_GLOBAL | CMD_GLOBAL_EXPEDITED | CMD_REGISTER_GLOBAL_EXPEDITED | CMD_PRIVATE_EXPEDITED | CMD_REGISTER_PRIVATE_EXPEDITED;

/// The host's MEMBARRIER_CMD_GLOBAL.
fn host_barrier() -> SysResult<()> {
    // SAFETY: membarrier takes no pointers; CMD_GLOBAL with flags 0 only
    // waits for every host CPU to pass a barrier.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, CMD_GLOBAL as libc::c_long, 0 as libc::c_long, 0 as libc::c_long) };
    if r < 0 {
        // A host without it: the caller learns the barrier is missing.
        return Err(Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::ENOSYS)));
    }
    Ok(())
}

fn sys_membarrier(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (cmd, flags) = (a[0], a[1] as u32);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let registered = &t.task.tg.membarrier_registered;
    match cmd {
        CMD_QUERY => Ok(SUPPORTED),
        CMD_GLOBAL | CMD_GLOBAL_EXPEDITED => host_barrier().map(|_| 0),
        CMD_PRIVATE_EXPEDITED => {
            if registered.load(Ordering::Acquire) as u64 & CMD_REGISTER_PRIVATE_EXPEDITED == 0 {
                return Err(Errno::EPERM);
            }
            host_barrier().map(|_| 0)
        }
        CMD_REGISTER_GLOBAL_EXPEDITED | CMD_REGISTER_PRIVATE_EXPEDITED => {
            registered.fetch_or(cmd as u32, Ordering::AcqRel);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
