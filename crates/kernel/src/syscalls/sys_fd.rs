//! Descriptor-table operations that are not about one file: close_range.

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[sys!(CLOSE_RANGE, sys_close_range, [Int, Int, Hex])];

const CLOSE_RANGE_UNSHARE: u64 = 2;
const CLOSE_RANGE_CLOEXEC: u64 = 4;

fn sys_close_range(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (first, last, flags) = (a[0] as u32, a[1] as u32, a[2]);
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    if flags & CLOSE_RANGE_UNSHARE != 0 {
        // This task gets its own copy of the table before closing in it.
        let copy = t.files().fork();
        *t.task.files.lock().unwrap() = copy;
    }
    let files = t.files();
    for fd in files.fds().into_iter().filter(|&fd| fd as u32 >= first && fd as u32 <= last) {
        if flags & CLOSE_RANGE_CLOEXEC != 0 {
            files.set_cloexec(fd, true)?;
        } else {
            let _ = files.close(fd);
        }
    }
    Ok(0)
}
