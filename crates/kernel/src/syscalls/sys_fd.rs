//! Descriptor operations that are not about one file system: close_range,
//! fadvise64.

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[
    sys!(CLOSE_RANGE, sys_close_range, [Int, Int, Hex]),
    sys!(FADVISE64, sys_fadvise64, [Int, Int, Int, Int]),
];

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

/// fadvise64(2): advice about future access. The sentry keeps no page
/// cache for host files, so every valid advice is served by doing nothing,
/// which is what the call promises to observers.
fn sys_fadvise64(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let file = t.files().get(a[0] as i32)?;
    if (a[2] as i64) < 0 || !(0..=5).contains(&(a[3] as i32)) {
        return Err(Errno::EINVAL);
    }
    let st = file.ops.stat()?;
    if st.st_mode & libc::S_IFMT == libc::S_IFIFO {
        return Err(Errno::ESPIPE);
    }
    Ok(0)
}
