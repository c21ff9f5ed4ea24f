//! flock(2): whole-file advisory locks, owned by the open file description.

use super::{Args, Entry};
use crate::fs::lock::{self, Owner, Want};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;
use std::sync::Arc;

pub const SYSCALLS: &[Entry] = &[
    sys!(FLOCK, sys_flock, [Int, Hex]),
];

fn sys_flock(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let op = a[1] as i32;
    let f = t.files().get(a[0] as i32)?;
    if f.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    let exclusive = match op & !libc::LOCK_NB {
        libc::LOCK_SH => Some(false),
        libc::LOCK_EX => Some(true),
        libc::LOCK_UN => None,
        _ => return Err(Errno::EINVAL),
    };
    let key = lock::key_of(&f)?;
    f.took_lock(&t.kernel().locks);
    let owner = Owner::File(Arc::as_ptr(&f) as usize);
    t.kernel().locks.lock(t, key, owner, Want::Flock { exclusive }, op & libc::LOCK_NB == 0, Errno::EAGAIN)?;
    Ok(0)
}
