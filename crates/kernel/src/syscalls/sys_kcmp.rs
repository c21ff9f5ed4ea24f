//! kcmp: whether two tasks share a kernel object (an open file, the
//! address space, the descriptor table, the file-system context, the
//! signal handlers). Objects are ordered by address, as Linux orders them
//! (by obfuscated address), so callers can sort by the answer.

use super::{Args, Entry};
use crate::creds::Creds;
use crate::sys;
use crate::task::{Task, TaskCtx};
use crate::SysResult;
use abi::Errno;
use std::sync::Arc;

pub const SYSCALLS: &[Entry] = &[sys!(KCMP, sys_kcmp, [Int, Int, Int, Hex, Hex], partial "KCMP_FILE, KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND; KCMP_IO, KCMP_SYSVSEM and KCMP_EPOLL_TFD fail with EOPNOTSUPP")];

const KCMP_FILE: u64 = 0;
const KCMP_VM: u64 = 1;
const KCMP_FILES: u64 = 2;
const KCMP_FS: u64 = 3;
const KCMP_SIGHAND: u64 = 4;
const KCMP_IO: u64 = 5;
const KCMP_SYSVSEM: u64 = 6;
const KCMP_EPOLL_TFD: u64 = 7;
const CAP_SYS_PTRACE: u32 = 19;

/// Linux's answer for two object addresses: 0 equal, 1 less, 2 greater.
pub fn order(a: usize, b: usize) -> u64 {
    match a.cmp(&b) {
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Less => 1,
        std::cmp::Ordering::Greater => 2,
    }
}

/// PTRACE_MODE_READ, on credentials: the same user throughout, or
/// CAP_SYS_PTRACE.
fn may_inspect(me: &Creds, them: &Creds) -> bool {
    let u = &them.uid;
    let g = &them.gid;
    me.capable(CAP_SYS_PTRACE) || ([u.real, u.effective, u.saved].iter().all(|&x| x == me.uid.fs) && [g.real, g.effective, g.saved].iter().all(|&x| x == me.gid.fs))
}

fn target(t: &TaskCtx, pid: i32) -> SysResult<Arc<Task>> {
    let global = t.pid_named(pid).ok_or(Errno::ESRCH)?;
    let task = t.kernel().task(global).ok_or(Errno::ESRCH)?;
    if !may_inspect(&t.creds(), &task.creds.lock().unwrap()) {
        return Err(Errno::EPERM);
    }
    Ok(task)
}

fn sys_kcmp(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (t1, t2) = (target(t, a[0] as i32)?, target(t, a[1] as i32)?);
    let addr = |p: *const ()| p as usize;
    let (x, y) = match a[2] {
        KCMP_FILE => {
            let f1 = t1.files().get(a[3] as i32)?;
            let f2 = t2.files().get(a[4] as i32)?;
            (addr(Arc::as_ptr(&f1).cast()), addr(Arc::as_ptr(&f2).cast()))
        }
        KCMP_VM => {
            let (m1, m2) = (t1.mm().ok_or(Errno::ESRCH)?, t2.mm().ok_or(Errno::ESRCH)?);
            (addr(Arc::as_ptr(&m1).cast()), addr(Arc::as_ptr(&m2).cast()))
        }
        KCMP_FILES => (addr(Arc::as_ptr(&t1.files()).cast()), addr(Arc::as_ptr(&t2.files()).cast())),
        KCMP_FS => (addr(Arc::as_ptr(&t1.fs()).cast()), addr(Arc::as_ptr(&t2.fs()).cast())),
        KCMP_SIGHAND => {
            let (h1, h2) = (t1.tg.handlers.lock().unwrap().clone(), t2.tg.handlers.lock().unwrap().clone());
            (addr(Arc::as_ptr(&h1).cast()), addr(Arc::as_ptr(&h2).cast()))
        }
        KCMP_IO | KCMP_SYSVSEM | KCMP_EPOLL_TFD => return Err(Errno::EOPNOTSUPP),
        _ => return Err(Errno::EINVAL),
    };
    Ok(order(x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_order_like_linux() {
        assert_eq!(order(5, 5), 0);
        assert_eq!(order(4, 5), 1);
        assert_eq!(order(6, 5), 2);
        let root = Creds::default();
        assert!(may_inspect(&root, &root));
    }
}
