//! Data transfer: read, write and their positional and vectored forms,
//! lseek, sendfile, splice and vmsplice.
//!
//! Every call that uses a description's position goes through the
//! description (`read`/`write`/`seek`, or `OpenFile::position`), never a
//! copy of it: a host descriptor (stdio redirected to a file) shares its
//! one position with the caller and every process holding it.

use super::iovec::{gather, read_iovecs, MAX_IO};
use super::{Args, Entry};
use crate::fs::inotify::{IN_ACCESS, IN_MODIFY};
use crate::fs::OpenFile;
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::Iovec;
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
    sys!(PREADV, sys_preadv, [Int, Hex, Int, Int]),
    sys!(PWRITEV, sys_pwritev, [Int, Hex, Int, Int]),
    sys!(PREADV2, sys_preadv2, [Int, Hex, Int, Int, Int, Hex], partial "RWF_NOWAIT and RWF_APPEND fail with EOPNOTSUPP; RWF_DSYNC/RWF_SYNC add no flush"),
    sys!(PWRITEV2, sys_pwritev2, [Int, Hex, Int, Int, Int, Hex], partial "RWF_NOWAIT and RWF_APPEND fail with EOPNOTSUPP; RWF_DSYNC/RWF_SYNC add no flush"),
    sys!(SENDFILE, sys_sendfile, [Int, Int, Hex, Int], partial "served by the sentry as read+write"),
    sys!(SPLICE, sys_splice, [Int, Hex, Int, Hex, Int, Hex], partial "copies through the sentry"),
    sys!(VMSPLICE, sys_vmsplice, [Int, Hex, Int, Hex], partial "copies (SPLICE_F_GIFT moves nothing)"),
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
    if n > 0 {
        t.kernel().inotify.file_io(&f, IN_ACCESS);
    }
    Ok(n as u64)
}

fn sys_write(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = writable_file(t, a[0] as i32)?;
    let buf = t.copy_in(a[1], io_len(a[2])?)?;
    let n = f.ops.write(t, &f, &buf)?;
    if n > 0 {
        t.kernel().inotify.file_io(&f, IN_MODIFY);
    }
    Ok(n as u64)
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
    let n = f.ops.write_at(t, &buf, off)?;
    if n > 0 {
        t.kernel().inotify.file_io(&f, IN_MODIFY);
    }
    Ok(n as u64)
}

/// readv/preadv: one read (at `at`, or at the description's position) of
/// up to the iovecs' total, scattered over them.
fn read_iov(t: &TaskCtx, f: &OpenFile, iov: &[Iovec], at: Option<u64>) -> SysResult<u64> {
    for v in iov {
        t.check_writable(v.base, v.len as usize)?;
    }
    let total: u64 = iov.iter().map(|v| v.len).sum();
    let mut buf = vec![0u8; (total as usize).min(MAX_IO)];
    let n = match at {
        Some(off) => f.ops.read_at(Some(t), &mut buf, off)?,
        None => f.ops.read(t, f, &mut buf)?,
    };
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

/// writev/pwritev: one write of the gathered bytes.
fn write_iov(t: &TaskCtx, f: &OpenFile, iov: &[Iovec], at: Option<u64>) -> SysResult<u64> {
    let buf = gather(t, iov)?;
    let n = match at {
        Some(off) => f.ops.write_at(t, &buf, off)?,
        None => f.ops.write(t, f, &buf)?,
    };
    if n > 0 {
        t.kernel().inotify.file_io(f, IN_MODIFY);
    }
    Ok(n as u64)
}

fn sys_readv(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = readable_file(t, a[0] as i32)?;
    let iov = read_iovecs(t, a[1], a[2], Errno::EINVAL)?;
    read_iov(t, &f, &iov, None)
}

fn sys_writev(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = writable_file(t, a[0] as i32)?;
    let iov = read_iovecs(t, a[1], a[2], Errno::EINVAL)?;
    write_iov(t, &f, &iov, None)
}

// preadv2/pwritev2 flags.
const RWF_HIPRI: u64 = 0x1;
const RWF_DSYNC: u64 = 0x2;
const RWF_SYNC: u64 = 0x4;
const RWF_NOWAIT: u64 = 0x8;
const RWF_APPEND: u64 = 0x10;

/// The offset of preadv2/pwritev2: -1 is the description's position (as
/// readv/writev), another negative one EINVAL. On x86-64 the whole offset
/// is in the low argument; the high one is ignored, as Linux ignores it.
/// Flags Linux knows but the sentry does not serve fail with EOPNOTSUPP,
/// as Linux fails them on files that cannot honour them.
fn v2_offset(off: u64, flags: u64) -> SysResult<Option<u64>> {
    if flags & !(RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND) != 0 || flags & (RWF_NOWAIT | RWF_APPEND) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    match off as i64 {
        -1 => Ok(None),
        o if o < 0 => Err(Errno::EINVAL),
        o => Ok(Some(o as u64)),
    }
}

fn sys_preadv(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = readable_file(t, a[0] as i32)?;
    let iov = read_iovecs(t, a[1], a[2], Errno::EINVAL)?;
    read_iov(t, &f, &iov, Some(offset_arg(a[3])?))
}

fn sys_pwritev(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = writable_file(t, a[0] as i32)?;
    let iov = read_iovecs(t, a[1], a[2], Errno::EINVAL)?;
    write_iov(t, &f, &iov, Some(offset_arg(a[3])?))
}

fn sys_preadv2(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = readable_file(t, a[0] as i32)?;
    let iov = read_iovecs(t, a[1], a[2], Errno::EINVAL)?;
    read_iov(t, &f, &iov, v2_offset(a[3], a[5])?)
}

fn sys_pwritev2(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = writable_file(t, a[0] as i32)?;
    let iov = read_iovecs(t, a[1], a[2], Errno::EINVAL)?;
    write_iov(t, &f, &iov, v2_offset(a[3], a[5])?)
}

fn sys_lseek(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = t.files().get(a[0] as i32)?;
    if f.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    f.ops.seek(&f, a[1] as i64, a[2] as i32)
}

/// Reads the offset a pointer argument names (None for a null pointer).
fn offset_at(t: &TaskCtx, addr: u64) -> SysResult<Option<u64>> {
    if addr == 0 {
        return Ok(None);
    }
    let o: i64 = t.read_obj(addr)?;
    if o < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Some(o as u64))
}

fn is_pipe(f: &OpenFile) -> bool {
    f.ops.stat().map(|s| s.st_mode & libc::S_IFMT == libc::S_IFIFO).unwrap_or(false)
}

/// Moves up to `count` bytes from `input` to `output` through the sentry:
/// at `*from`/`*to` when given (positional; advanced by what moved), else
/// through the descriptions' own positions (`read`/`write`). Bytes read
/// but not written are put back (a seekable input) so none is lost.
/// `once`: one chunk only (a pipe output must not block on a full pipe
/// after data moved). Returns the bytes moved, or the error of a transfer
/// that moved none.
fn transfer(t: &TaskCtx, input: &OpenFile, from: &mut Option<u64>, output: &OpenFile, to: &mut Option<u64>, count: usize, once: bool) -> SysResult<usize> {
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
        let got = match *from {
            Some(p) => input.ops.read_at(Some(t), &mut buf[..want], p),
            None => input.ops.read(t, input, &mut buf[..want]),
        };
        let got = match got {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        let mut written = 0;
        let mut failed = None;
        while written < got {
            let r = match *to {
                Some(p) => output.ops.write_at(t, &buf[written..got], p + written as u64),
                None => output.ops.write(t, output, &buf[written..got]),
            };
            match r {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        match from.as_mut() {
            Some(p) => *p += written as u64,
            None if written < got => {
                let _ = input.ops.seek(input, -((got - written) as i64), libc::SEEK_CUR);
            }
            None => {}
        }
        if let Some(p) = to.as_mut() {
            *p += written as u64;
        }
        done += written;
        if let Some(e) = failed {
            break Err(e);
        }
        if written < got || got < want || !regular || once {
            break Ok(());
        }
    };
    if done > 0 {
        t.kernel().inotify.file_io(output, IN_MODIFY);
    }
    match result {
        Err(e) if done == 0 => Err(e),
        _ => Ok(done),
    }
}

fn sys_sendfile(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (out_fd, in_fd, off_addr) = (a[0] as i32, a[1] as i32, a[2]);
    let input = readable_file(t, in_fd)?;
    let output = writable_file(t, out_fd)?;
    if output.flags() & libc::O_APPEND as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    let count = io_len(a[3])?;
    let mut from = offset_at(t, off_addr)?;
    let once = is_pipe(&output);
    let r = transfer(t, &input, &mut from, &output, &mut None, count, once);
    if let Some(p) = from {
        t.write_obj(off_addr, &(p as i64))?;
    }
    Ok(r? as u64)
}

const SPLICE_F_NONBLOCK: u64 = 2;
const SPLICE_F_ALL: u64 = 0xf;

fn sys_splice(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (in_fd, off_in, out_fd, off_out, flags) = (a[0] as i32, a[1], a[2] as i32, a[3], a[5]);
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let input = readable_file(t, in_fd)?;
    let output = writable_file(t, out_fd)?;
    let (in_pipe, out_pipe) = (is_pipe(&input), is_pipe(&output));
    if !in_pipe && !out_pipe {
        return Err(Errno::EINVAL);
    }
    if (in_pipe && off_in != 0) || (out_pipe && off_out != 0) {
        return Err(Errno::ESPIPE);
    }
    if !out_pipe && output.flags() & libc::O_APPEND as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    if Arc::ptr_eq(&input, &output) {
        return Err(Errno::EINVAL);
    }
    let count = io_len(a[4])?;
    if count == 0 {
        return Ok(0);
    }
    if flags & SPLICE_F_NONBLOCK != 0 {
        // Only the pipe side is non-blocking, as on Linux.
        use crate::fs::events::{POLLHUP, POLLIN, POLLOUT};
        let empty = in_pipe && input.ops.readiness() & (POLLIN | POLLHUP) == 0;
        let full = out_pipe && output.ops.readiness() & POLLOUT == 0;
        if empty || full {
            return Err(Errno::EAGAIN);
        }
    }
    let mut from = offset_at(t, off_in)?;
    let mut to = offset_at(t, off_out)?;
    let r = transfer(t, &input, &mut from, &output, &mut to, count, out_pipe);
    if let Some(p) = from {
        t.write_obj(off_in, &(p as i64))?;
    }
    if let Some(p) = to {
        t.write_obj(off_out, &(p as i64))?;
    }
    Ok(r? as u64)
}

/// vmsplice: the pipe's write end takes the iovecs' bytes (writev), its
/// read end fills them (readv).
fn sys_vmsplice(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if a[3] & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let f = t.files().get(a[0] as i32)?;
    if !is_pipe(&f) {
        return Err(Errno::EBADF);
    }
    let iov = read_iovecs(t, a[1], a[2], Errno::EINVAL)?;
    if f.writable() {
        write_iov(t, &f, &iov, None)
    } else if f.readable() {
        read_iov(t, &f, &iov, None)
    } else {
        Err(Errno::EBADF)
    }
}
