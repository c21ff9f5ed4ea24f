//! signalfd and signalfd4.

use super::{Args, Entry};
use crate::fs::anon;
use crate::fs::signalfd::{self, SignalFd};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::signal::SigSet;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[sys!(SIGNALFD, sys_signalfd, [Int, Hex, Int]), sys!(SIGNALFD4, sys_signalfd4, [Int, Hex, Int, Hex])];

fn make(t: &TaskCtx, fd: i32, mask_addr: u64, size: u64, flags: u32) -> SysResult<u64> {
    if flags & !((libc::O_NONBLOCK | libc::O_CLOEXEC) as u32) != 0 {
        return Err(Errno::EINVAL);
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = SigSet(t.read_obj::<u64>(mask_addr)?);
    if fd != -1 {
        // An existing signalfd: only its mask changes.
        let f = t.files().get(fd)?;
        let s = anon::get::<SignalFd>(&f).ok_or(Errno::EINVAL)?;
        s.set_mask(mask);
        return Ok(fd as u64);
    }
    let f = signalfd::open(signalfd::new(t, mask), flags & libc::O_NONBLOCK as u32);
    Ok(t.files().install(f, flags & libc::O_CLOEXEC as u32 != 0)? as u64)
}

fn sys_signalfd(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    make(t, a[0] as i32, a[1], a[2], 0)
}

fn sys_signalfd4(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    make(t, a[0] as i32, a[1], a[2], a[3] as u32)
}
