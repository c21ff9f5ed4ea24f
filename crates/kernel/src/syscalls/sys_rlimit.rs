//! Resource limits: prlimit64, getrlimit and setrlimit.

use super::{Args, Entry};
use crate::creds::cap;
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::Rlimit;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[
    sys!(PRLIMIT64, sys_prlimit64, [Int, Int, Hex, Hex], partial "limits are recorded, RLIMIT_NOFILE is enforced, RLIMIT_NPROC as the sandbox's task limit"),
    sys!(GETRLIMIT, sys_getrlimit, [Int, Hex]),
    sys!(SETRLIMIT, sys_setrlimit, [Int, Hex]),
];

/// prlimit64(2) (and getrlimit/setrlimit): reads and sets the limits of
/// a process; Linux's check (same real/effective/saved uids and gids, or
/// CAP_SYS_RESOURCE) applies to another process.
fn sys_prlimit64(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (pid, res, new, old) = (a[0] as i32, a[1] as u32, a[2], a[3]);
    let target = if pid == 0 { t.task.clone() } else { t.pid_named(pid).and_then(|p| t.kernel().task(p)).ok_or(Errno::ESRCH)? };
    let me = t.creds();
    if !std::sync::Arc::ptr_eq(&target.tg, &t.task.tg) && !me.capable(cap::SYS_RESOURCE) {
        let them = target.creds.lock().unwrap().clone();
        let same = |m: &crate::creds::Ids, o: &crate::creds::Ids| m.real == o.real && m.real == o.effective && m.real == o.saved;
        if !(same(&me.uid, &them.uid) && same(&me.gid, &them.gid)) {
            return Err(Errno::EPERM);
        }
    }
    let new = if new != 0 { Some(t.read_obj::<Rlimit>(new)?) } else { None };
    let mut limits = target.tg.rlimits.lock().unwrap();
    let cur = limits.get(res)?;
    if let Some(n) = new {
        limits.set(res, n, me.capable(cap::SYS_RESOURCE))?;
        if res == libc::RLIMIT_NOFILE {
            target.files().set_limit(n.cur);
        }
    }
    drop(limits);
    if old != 0 {
        t.write_obj(old, &cur)?;
    }
    Ok(0)
}

fn sys_getrlimit(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    sys_prlimit64(t, &[0, a[0], 0, a[1], 0, 0])
}

fn sys_setrlimit(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    sys_prlimit64(t, &[0, a[0], a[1], 0, 0, 0])
}
