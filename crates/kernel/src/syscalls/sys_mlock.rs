//! Memory residency: mlock, mlock2, munlock, mlockall, munlockall and
//! mincore. The application's memory lives in the sentry's memory file,
//! which the sentry never pages out itself; these calls check what Linux
//! checks (the range is mapped, RLIMIT_MEMLOCK, CAP_IPC_LOCK) and answer
//! as Linux does, without pinning host pages.

use super::{Args, Entry};
use crate::creds::cap;
use crate::mm::page_up;
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;
use memfile::PAGE_SIZE;
use platform::Perms;

pub const SYSCALLS: &[Entry] = &[
    sys!(MLOCK, sys_mlock, [Hex, Int], partial "checks the range and RLIMIT_MEMLOCK; host pages are not pinned"),
    sys!(MLOCK2, sys_mlock2, [Hex, Int, Hex], partial "checks the range and RLIMIT_MEMLOCK; host pages are not pinned"),
    sys!(MUNLOCK, sys_munlock, [Hex, Int]),
    sys!(MLOCKALL, sys_mlockall, [Hex], partial "checks flags and RLIMIT_MEMLOCK; host pages are not pinned"),
    sys!(MUNLOCKALL, sys_munlockall, []),
    sys!(MINCORE, sys_mincore, [Hex, Int, Hex], partial "reports every mapped page resident"),
];

const MLOCK_ONFAULT: u64 = 1;
const MCL_CURRENT: u64 = 1;
const MCL_FUTURE: u64 = 2;
const MCL_ONFAULT: u64 = 4;

/// The page-aligned range `[addr, addr+len)` covers, ENOMEM unless every
/// page of it is mapped.
fn mapped_range(t: &TaskCtx, addr: u64, len: u64) -> SysResult<(u64, u64)> {
    let start = addr & !(PAGE_SIZE - 1);
    let end = addr.checked_add(len).and_then(page_up).ok_or(Errno::ENOMEM)?;
    if end > start {
        t.mm().check(start, (end - start) as usize, Perms::empty()).map_err(|_| Errno::ENOMEM)?;
    }
    Ok((start, end))
}

/// Locking `bytes` is allowed: CAP_IPC_LOCK, or within RLIMIT_MEMLOCK
/// (EPERM when the limit is zero, ENOMEM when it is exceeded).
fn may_lock(t: &TaskCtx, bytes: u64) -> SysResult<()> {
    if t.creds().capable(cap::IPC_LOCK) {
        return Ok(());
    }
    let limit = t.task.tg.rlimits.lock().unwrap().get(libc::RLIMIT_MEMLOCK)?.cur;
    if limit == 0 {
        return Err(Errno::EPERM);
    }
    if bytes > limit {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

fn lock(t: &TaskCtx, addr: u64, len: u64) -> SysResult<u64> {
    let (start, end) = mapped_range(t, addr, len)?;
    may_lock(t, end - start)?;
    Ok(0)
}

fn sys_mlock(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    lock(t, a[0], a[1])
}

fn sys_mlock2(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if a[2] & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL);
    }
    lock(t, a[0], a[1])
}

fn sys_munlock(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    mapped_range(t, a[0], a[1]).map(|_| 0)
}

fn sys_mlockall(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let flags = a[0];
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT {
        return Err(Errno::EINVAL);
    }
    let bytes = if flags & MCL_CURRENT != 0 { t.mm().vm_size() } else { 1 };
    may_lock(t, bytes)?;
    Ok(0)
}

fn sys_munlockall(_t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    Ok(0)
}

fn sys_mincore(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (addr, len, vec) = (a[0], a[1], a[2]);
    if addr % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    let (start, end) = mapped_range(t, addr, len)?;
    let pages = ((end - start) / PAGE_SIZE) as usize;
    t.copy_out(vec, &vec![1u8; pages])?;
    Ok(0)
}
