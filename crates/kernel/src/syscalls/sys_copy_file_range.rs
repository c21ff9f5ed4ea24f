//! copy_file_range: copying between two regular files in the sentry.

use super::{Args, Entry};
use crate::fs::node::{S_IFDIR, S_IFMT};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[
    sys!(COPY_FILE_RANGE, sys_copy_file_range, [Int, Hex, Int, Hex, Int, Hex], partial "served by the sentry as read+write"),
];

fn sys_copy_file_range(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (fd_in, off_in_addr, fd_out, off_out_addr, len, flags) = (a[0] as i32, a[1], a[2] as i32, a[3], a[4] as usize, a[5]);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let input = t.files().get(fd_in)?;
    let output = t.files().get(fd_out)?;
    if !input.readable() || !output.writable() || output.flags() & libc::O_APPEND as u32 != 0 {
        return Err(Errno::EBADF);
    }
    for f in [&input, &output] {
        let k = f.ops.stat()?.st_mode & S_IFMT;
        if k == S_IFDIR {
            return Err(Errno::EISDIR);
        }
        if k != libc::S_IFREG {
            return Err(Errno::EINVAL);
        }
    }
    let read_off = |addr: u64| -> SysResult<Option<u64>> {
        if addr == 0 {
            return Ok(None);
        }
        let o: i64 = t.read_obj(addr)?;
        if o < 0 {
            return Err(Errno::EINVAL);
        }
        Ok(Some(o as u64))
    };
    // Without an offset pointer, the descriptions' own positions: for a
    // host descriptor (stdio redirected to a file) the host's, which the
    // caller and every other process holding it share.
    let mut pin = match read_off(off_in_addr)? {
        Some(o) => o,
        None => input.position()?,
    };
    let mut pout = match read_off(off_out_addr)? {
        Some(o) => o,
        None => output.position()?,
    };
    let len = len.min(1 << 30);
    let mut buf = vec![0u8; len.min(1 << 20)];
    let mut done = 0usize;
    while done < len {
        let want = buf.len().min(len - done);
        let n = input.ops.read_at(Some(t), &mut buf[..want], pin)?;
        if n == 0 {
            break;
        }
        let w = output.ops.write_at(t, &buf[..n], pout)?;
        pin += w as u64;
        pout += w as u64;
        done += w;
        if w < n {
            break;
        }
    }
    if done > 0 {
        t.kernel().inotify.file_io(&output, crate::fs::inotify::IN_MODIFY);
    }
    match off_in_addr {
        0 => input.set_position(pin)?,
        addr => t.write_obj(addr, &(pin as i64))?,
    }
    match off_out_addr {
        0 => output.set_position(pout)?,
        addr => t.write_obj(addr, &(pout as i64))?,
    }
    Ok(done as u64)
}
