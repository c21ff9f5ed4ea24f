//! personality: the process's execution domain and its flags, kept,
//! inherited by fork and reported back, as Linux does.

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use std::sync::atomic::Ordering;

pub const SYSCALLS: &[Entry] = &[sys!(PERSONALITY, sys_personality, [Hex], partial "flags are kept and reported; ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC and the others change nothing")];

/// The argument that only queries.
const QUERY: u64 = 0xffff_ffff;

fn sys_personality(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let current = &t.task.tg.personality;
    let old = current.load(Ordering::Relaxed);
    if a[0] == QUERY {
        return Ok(old as u64);
    }
    // Linux stores any value, as given, and answers with the old one.
    current.store(a[0] as u32, Ordering::Relaxed);
    Ok(old as u64)
}
