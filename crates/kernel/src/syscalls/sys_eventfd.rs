//! eventfd and eventfd2.

use super::{Args, Entry};
use crate::fs::eventfd;
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[sys!(EVENTFD, sys_eventfd, [Int]), sys!(EVENTFD2, sys_eventfd2, [Int, Hex])];

const EFD_SEMAPHORE: u32 = 1;

fn make(t: &TaskCtx, initval: u32, flags: u32) -> SysResult<u64> {
    let allowed = EFD_SEMAPHORE | libc::O_NONBLOCK as u32 | libc::O_CLOEXEC as u32;
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    let f = eventfd::new(initval, flags & EFD_SEMAPHORE != 0, flags & libc::O_NONBLOCK as u32);
    Ok(t.files().install(f, flags & libc::O_CLOEXEC as u32 != 0)? as u64)
}

fn sys_eventfd(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    make(t, a[0] as u32, 0)
}

fn sys_eventfd2(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    make(t, a[0] as u32, a[1] as u32)
}
