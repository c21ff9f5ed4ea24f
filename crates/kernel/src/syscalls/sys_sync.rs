//! Flushing: fsync, fdatasync, syncfs, sync and sync_file_range.

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[
    sys!(FSYNC, sys_fsync, [Int]),
    sys!(FDATASYNC, sys_fsync, [Int]),
    sys!(SYNCFS, sys_fsync, [Int]),
    sys!(SYNC, sys_sync, []),
    sys!(SYNC_FILE_RANGE, sys_sync_file_range, [Int, Int, Int, Hex]),
];

/// Every file is in memory or on a host the sentry only reads: there is
/// nothing to flush.
fn sys_fsync(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    t.files().get(a[0] as i32)?;
    Ok(0)
}

fn sys_sync(_t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    Ok(0)
}

fn sys_sync_file_range(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if (a[1] as i64) < 0 || (a[2] as i64) < 0 || a[3] & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    t.files().get(a[0] as i32)?;
    Ok(0)
}
