//! pipe(2) and pipe2(2).

use super::{Args, Entry};
use crate::fs::pipe::new_pipe;
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[
    sys!(PIPE, sys_pipe, [Hex]),
    sys!(PIPE2, sys_pipe2, [Hex, Hex], partial "O_DIRECT (packet mode) is refused with EINVAL"),
];

fn make_pipe(t: &TaskCtx, addr: u64, flags: u32) -> SysResult<u64> {
    if flags & !((libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_DIRECT) as u32) != 0 {
        return Err(Errno::EINVAL);
    }
    let (r, w) = new_pipe(flags)?;
    let cloexec = flags & libc::O_CLOEXEC as u32 != 0;
    let files = t.files();
    let rfd = files.install(r, cloexec)?;
    let wfd = match files.install(w, cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = files.close(rfd);
            return Err(e);
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&rfd.to_ne_bytes());
    out[4..].copy_from_slice(&wfd.to_ne_bytes());
    if let Err(e) = t.copy_out(addr, &out) {
        let _ = files.close(rfd);
        let _ = files.close(wfd);
        return Err(e);
    }
    Ok(0)
}

fn sys_pipe(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    make_pipe(t, a[0], 0)
}

fn sys_pipe2(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    make_pipe(t, a[0], a[1] as u32)
}
