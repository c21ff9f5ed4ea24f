//! Capability sets: capget and capset.

use super::caller::change_creds;
use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[
    sys!(CAPGET, sys_capget, [Hex, Hex]),
    sys!(CAPSET, sys_capset, [Hex, Hex]),
];

/// linux/capability.h: _LINUX_CAPABILITY_VERSION_1 (one 32-bit word per
/// set) and _3 (two; _2 is the same layout, deprecated).
const CAP_V1: u32 = 0x1998_0330;
const CAP_V2: u32 = 0x2007_1026;
const CAP_V3: u32 = 0x2008_0522;

/// The header's version: how many 32-bit words each set has. An unknown
/// version is EINVAL, and the kernel writes its preferred one back.
fn cap_words(t: &mut TaskCtx, header: u64) -> SysResult<(usize, i32)> {
    let h = t.copy_in(header, 8)?;
    let version = u32::from_le_bytes(h[..4].try_into().unwrap());
    let pid = i32::from_le_bytes(h[4..].try_into().unwrap());
    match version {
        CAP_V1 => Ok((1, pid)),
        CAP_V2 | CAP_V3 => Ok((2, pid)),
        _ => {
            t.copy_out(header, &CAP_V3.to_le_bytes())?;
            Err(Errno::EINVAL)
        }
    }
}

/// capget(2): the effective, permitted and inheritable sets of `pid`
/// (0: the caller) as `struct __user_cap_data_struct[words]`.
fn sys_capget(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (words, pid) = match cap_words(t, a[0]) {
        // A null data pointer with an unknown version only asks the version.
        Err(Errno::EINVAL) if a[1] == 0 => return Ok(0),
        r => r?,
    };
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let caps = if pid == 0 {
        t.creds().caps
    } else {
        let g = t.pid_named(pid).and_then(|p| t.kernel().task(p)).ok_or(Errno::ESRCH)?;
        let c = g.creds.lock().unwrap().caps;
        c
    };
    if a[1] == 0 {
        return Ok(0);
    }
    let mut out = Vec::with_capacity(words * 12);
    for w in 0..words {
        for set in [caps.effective, caps.permitted, caps.inheritable] {
            out.extend_from_slice(&((set >> (32 * w)) as u32).to_le_bytes());
        }
    }
    t.copy_out(a[1], &out)?;
    Ok(0)
}

/// capset(2) on the caller (a pid other than its own is EPERM, as Linux).
fn sys_capset(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (words, pid) = cap_words(t, a[0])?;
    if pid != 0 && t.pid_named(pid) != Some(t.task.tid) {
        return Err(Errno::EPERM);
    }
    let raw = t.copy_in(a[1], words * 12)?;
    let word = |i: usize| u32::from_le_bytes(raw[i * 4..i * 4 + 4].try_into().unwrap()) as u64;
    let set = |k: usize| (0..words).fold(0u64, |acc, w| acc | word(w * 3 + k) << (32 * w));
    let (effective, permitted, inheritable) = (set(0), set(1), set(2));
    change_creds(t, |c| c.capset(effective, permitted, inheritable))
}
