//! Reading and writing socket option values in application memory, for
//! the families' getsockopt/setsockopt.

use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::{Pod, Timeval};
use abi::Errno;
use std::time::Duration;

/// An int option (EINVAL when the buffer is shorter than an int).
pub fn read_int(t: &TaskCtx, addr: u64, len: u32) -> SysResult<i32> {
    if (len as usize) < 4 {
        return Err(Errno::EINVAL);
    }
    t.read_obj(addr)
}

/// A `struct timeval` timeout option: None for zero (no timeout); EDOM for
/// microseconds out of range.
pub fn read_timeval(t: &TaskCtx, addr: u64, len: u32) -> SysResult<Option<Duration>> {
    if (len as usize) < std::mem::size_of::<Timeval>() {
        return Err(Errno::EINVAL);
    }
    let tv: Timeval = t.read_obj(addr)?;
    if !(0..1_000_000).contains(&tv.tv_usec) {
        return Err(Errno::EDOM);
    }
    if tv.tv_sec < 0 || (tv.tv_sec == 0 && tv.tv_usec == 0) {
        return Ok(None);
    }
    Ok(Some(Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000)))
}

/// The bytes of a `struct timeval` for `d` (None: zero).
pub fn timeval_bytes(d: Option<Duration>) -> Vec<u8> {
    let d = d.unwrap_or_default();
    Timeval { tv_sec: d.as_secs() as i64, tv_usec: d.subsec_micros() as i64 }.as_bytes().to_vec()
}

/// Reads getsockopt's length argument (EINVAL when negative).
pub fn read_len(t: &TaskCtx, len_ptr: u64) -> SysResult<usize> {
    let len: i32 = t.read_obj(len_ptr)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(len as usize)
}

/// Writes an option value: at most `room` bytes of it, and the length
/// written to `len_ptr`.
pub fn write(t: &TaskCtx, addr: u64, len_ptr: u64, room: usize, bytes: &[u8]) -> SysResult<()> {
    let n = bytes.len().min(room);
    t.copy_out(addr, &bytes[..n])?;
    t.write_obj(len_ptr, &(n as i32))
}
