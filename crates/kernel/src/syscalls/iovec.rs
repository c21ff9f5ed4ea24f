//! Vectored I/O arguments: reading an iovec array and gathering the bytes
//! it names, shared by readv/writev and sendmsg/recvmsg.

use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::{Iovec, Pod};
use abi::Errno;

/// Most bytes moved by one read or write (Linux allows ~2 GiB; a shorter
/// transfer is always legal and bounds the sentry's buffer).
pub(crate) const MAX_IO: usize = 4 << 20;
const IOV_MAX: u64 = 1024;

/// Reads an iovec array; `too_many` is the errno for more than IOV_MAX
/// entries (EINVAL for readv/writev, EMSGSIZE for sendmsg/recvmsg).
pub(crate) fn read_iovecs(t: &TaskCtx, addr: u64, count: u64, too_many: Errno) -> SysResult<Vec<Iovec>> {
    if count > IOV_MAX {
        return Err(too_many);
    }
    let raw = t.copy_in(addr, count as usize * std::mem::size_of::<Iovec>())?;
    let v: Vec<Iovec> = raw.chunks_exact(std::mem::size_of::<Iovec>()).map(Iovec::from_bytes).collect();
    let mut total: u64 = 0;
    for iov in &v {
        total = total.checked_add(iov.len).filter(|&x| (x as i64) >= 0).ok_or(Errno::EINVAL)?;
    }
    Ok(v)
}

/// The bytes of `iov` in order, at most MAX_IO of them: one write of the
/// gathered bytes keeps small writev/sendmsg calls atomic, as on Linux.
pub(crate) fn gather(t: &TaskCtx, iov: &[Iovec]) -> SysResult<Vec<u8>> {
    let mut buf = Vec::new();
    for v in iov {
        let room = MAX_IO - buf.len();
        if room == 0 {
            break;
        }
        buf.extend(t.copy_in(v.base, (v.len as usize).min(room))?);
    }
    Ok(buf)
}
