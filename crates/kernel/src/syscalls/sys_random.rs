//! getrandom(2).

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[
    sys!(GETRANDOM, sys_getrandom, [Hex, Int, Hex]),
];

fn sys_getrandom(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (buf, len, flags) = (a[0], a[1] as usize, a[2] as u32);
    if flags & !(libc::GRND_NONBLOCK | libc::GRND_RANDOM | 0x4 /* GRND_INSECURE */) != 0 {
        return Err(Errno::EINVAL);
    }
    let len = len.min(32 << 20);
    let mut v = vec![0u8; len];
    crate::loader::getrandom(&mut v);
    t.copy_out(buf, &v)?;
    Ok(len as u64)
}
