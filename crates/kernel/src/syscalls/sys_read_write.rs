//! Data transfer: read, write and their positional and vectored forms,
//! lseek and sendfile.

use super::iovec::{gather, read_iovecs, MAX_IO};
use super::{Args, Entry};
use crate::fs::OpenFile;
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;
use std::sync::Arc;

pub const SYSCALLS: &[Entry] = &[
    sys!(READ, sys_read, [Int, Hex, Int], partial "at most 4 MiB per call (a short read)"),
    sys!(WRITE, sys_write, [Int, Hex, Int], partial "at most 4 MiB per call (a short write)"),
    sys!(PREAD64, sys_pread64, [Int, Hex, Int, Int]),
    sys!(PWRITE64, sys_pwrite64, [Int, Hex, Int, Int]),
    sys!(READV, sys_readv, [Int, Hex, Int]),
    sys!(WRITEV, sys_writev, [Int, Hex, Int]),
    sys!(LSEEK, sys_lseek, [Int, Int, Int]),
    sys!(SENDFILE, sys_sendfile, [Int, Int, Hex, Int], partial "served by the sentry as read+write"),
];

fn readable_file(t: &TaskCtx, fd: i32) -> SysResult<Arc<OpenFile>> {
    let f = t.files().get(fd)?;
    if !f.readable() || f.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

fn writable_file(t: &TaskCtx, fd: i32) -> SysResult<Arc<OpenFile>> {
    let f = t.files().get(fd)?;
    if !f.writable() || f.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

fn io_len(count: u64) -> SysResult<usize> {
    if (count as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok((count as usize).min(MAX_IO))
}

fn sys_read(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = readable_file(t, a[0] as i32)?;
    let len = io_len(a[2])?;
    t.check_writable(a[1], len)?;
    let mut buf = vec![0u8; len];
    let n = f.ops.read(t, &f, &mut buf)?;
    t.copy_out(a[1], &buf[..n])?;
    Ok(n as u64)
}

fn sys_write(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = writable_file(t, a[0] as i32)?;
    let buf = t.copy_in(a[1], io_len(a[2])?)?;
    Ok(f.ops.write(t, &f, &buf)? as u64)
}

fn offset_arg(v: u64) -> SysResult<u64> {
    if (v as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(v)
}

fn sys_pread64(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = readable_file(t, a[0] as i32)?;
    let off = offset_arg(a[3])?;
    let mut buf = vec![0u8; io_len(a[2])?];
    let n = f.ops.read_at(Some(t), &mut buf, off)?;
    t.copy_out(a[1], &buf[..n])?;
    Ok(n as u64)
}

fn sys_pwrite64(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = writable_file(t, a[0] as i32)?;
    let off = offset_arg(a[3])?;
    let buf = t.copy_in(a[1], io_len(a[2])?)?;
    Ok(f.ops.write_at(t, &buf, off)? as u64)
}

fn sys_readv(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = readable_file(t, a[0] as i32)?;
    let iov = read_iovecs(t, a[1], a[2], Errno::EINVAL)?;
    for v in &iov {
        t.check_writable(v.base, v.len as usize)?;
    }
    let total: u64 = iov.iter().map(|v| v.len).sum();
    let mut buf = vec![0u8; (total as usize).min(MAX_IO)];
    let n = f.ops.read(t, &f, &mut buf)?;
    let mut done = 0;
    for v in iov {
        if done == n {
            break;
        }
        let k = (v.len as usize).min(n - done);
        t.copy_out(v.base, &buf[done..done + k])?;
        done += k;
    }
    Ok(n as u64)
}

fn sys_writev(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = writable_file(t, a[0] as i32)?;
    let iov = read_iovecs(t, a[1], a[2], Errno::EINVAL)?;
    let buf = gather(t, &iov)?;
    Ok(f.ops.write(t, &f, &buf)? as u64)
}

fn sys_lseek(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = t.files().get(a[0] as i32)?;
    if f.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    f.ops.seek(&f, a[1] as i64, a[2] as i32)
}

fn sys_sendfile(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (out_fd, in_fd, off_addr) = (a[0] as i32, a[1] as i32, a[2]);
    let input = readable_file(t, in_fd)?;
    let output = writable_file(t, out_fd)?;
    if output.flags() & libc::O_APPEND as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    let count = io_len(a[3])?;
    let mut pos: Option<u64> = if off_addr != 0 {
        let o: i64 = t.read_obj(off_addr)?;
        if o < 0 {
            return Err(Errno::EINVAL);
        }
        Some(o as u64)
    } else {
        None
    };
    // Only a regular file is read more than once: a second read of a pipe
    // could block after data was already moved.
    let regular = input.ops.stat().map(|s| s.st_mode & libc::S_IFMT == libc::S_IFREG).unwrap_or(false);
    let mut buf = vec![0u8; count.min(64 * 1024)];
    let mut done = 0usize;
    let result = loop {
        if done == count {
            break Ok(());
        }
        let want = buf.len().min(count - done);
        let got = match pos {
            Some(p) => input.ops.read_at(Some(t), &mut buf[..want], p),
            None => input.ops.read(t, &input, &mut buf[..want]),
        };
        let got = match got {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        let mut written = 0;
        while written < got {
            match output.ops.write(t, &output, &buf[written..got]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) => {
                    if written == 0 && done == 0 {
                        return Err(e);
                    }
                    break;
                }
            }
        }
        if let Some(p) = pos.as_mut() {
            *p += written as u64;
        } else if written < got {
            // Put back what could not be written, when the input can seek.
            let _ = input.ops.seek(&input, -((got - written) as i64), libc::SEEK_CUR);
        }
        done += written;
        if written < got || got < want || !regular {
            break Ok(());
        }
    };
    if let Some(p) = pos {
        t.write_obj(off_addr, &(p as i64))?;
    }
    match result {
        Err(e) if done == 0 => Err(e),
        _ => Ok(done as u64),
    }
}
