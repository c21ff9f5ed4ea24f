//! futex(2): wait and wake keyed by the memory-file offset of the word, so
//! private and shared futexes are served by one table.

use super::{Args, Entry};
use crate::sys;
use crate::task::{Task, TaskCtx};
use crate::wait::Waiter;
use crate::SysResult;
use abi::types::Timespec;
use abi::Errno;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const SYSCALLS: &[Entry] = &[
    sys!(FUTEX, sys_futex, [Hex, Int, Int, Hex, Hex, Int], partial "WAIT, WAKE, *_BITSET, REQUEUE, CMP_REQUEUE; no PI or WAKE_OP"),
    sys!(SET_ROBUST_LIST, sys_set_robust_list, [Hex, Int]),
    sys!(GET_ROBUST_LIST, sys_get_robust_list, [Int, Hex, Hex]),
];

struct Sleeper {
    waiter: Arc<Waiter>,
    woken: Arc<AtomicBool>,
    bitset: u32,
}

type Key = (usize, u64);

fn table() -> &'static Mutex<HashMap<Key, Vec<Sleeper>>> {
    static T: OnceLock<Mutex<HashMap<Key, Vec<Sleeper>>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

fn key(t: &Task, addr: u64) -> SysResult<Key> {
    if addr % 4 != 0 {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm().ok_or(Errno::EFAULT)?;
    Ok((Arc::as_ptr(mm.memfile()) as usize, mm.translate(addr)?))
}

/// Wakes up to `n` waiters on `addr` (also used for CLONE_CHILD_CLEARTID).
pub fn wake_address(t: &Task, addr: u64, n: usize) -> usize {
    match key(t, addr) {
        Ok(k) => wake(k, n, u32::MAX),
        Err(_) => 0,
    }
}

fn wake(k: Key, n: usize, bitset: u32) -> usize {
    let mut tbl = table().lock().unwrap();
    let Some(list) = tbl.get_mut(&k) else { return 0 };
    let mut woken = 0;
    list.retain(|s| {
        if woken < n && s.bitset & bitset != 0 {
            s.woken.store(true, Ordering::SeqCst);
            s.waiter.notify();
            woken += 1;
            false
        } else {
            true
        }
    });
    if list.is_empty() {
        tbl.remove(&k);
    }
    woken
}

fn deadline(t: &TaskCtx, addr: u64, absolute: bool, realtime: bool) -> SysResult<Option<Instant>> {
    if addr == 0 {
        return Ok(None);
    }
    let ts: Timespec = t.read_obj(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    let d = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    if !absolute {
        return Ok(Some(Instant::now() + d));
    }
    let now = if realtime { SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() } else { crate::syscalls::sys_misc::monotonic() };
    Ok(Some(Instant::now() + d.saturating_sub(now)))
}

fn sys_futex(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (addr, op, val, timeout, addr2, val3) = (a[0], a[1] as i32, a[2] as u32, a[3], a[4], a[5] as u32);
    let cmd = op & libc::FUTEX_CMD_MASK;
    let realtime = op & libc::FUTEX_CLOCK_REALTIME != 0;
    match cmd {
        libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET => {
            let bitset = if cmd == libc::FUTEX_WAIT { u32::MAX } else { val3 };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let dl = deadline(t, timeout, cmd == libc::FUTEX_WAIT_BITSET, realtime)?;
            wait(t, addr, val, bitset, dl)
        }
        libc::FUTEX_WAKE | libc::FUTEX_WAKE_BITSET => {
            let bitset = if cmd == libc::FUTEX_WAKE { u32::MAX } else { val3 };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(wake(key(&t.task, addr)?, val as usize, bitset) as u64)
        }
        libc::FUTEX_REQUEUE | libc::FUTEX_CMP_REQUEUE => {
            let k1 = key(&t.task, addr)?;
            let k2 = key(&t.task, addr2)?;
            let mut tbl = table().lock().unwrap();
            if cmd == libc::FUTEX_CMP_REQUEUE {
                let cur: u32 = t.read_obj(addr)?;
                if cur != val3 {
                    return Err(Errno::EAGAIN);
                }
            }
            let mut list = tbl.remove(&k1).unwrap_or_default();
            let mut done = 0;
            while !list.is_empty() && done < val as usize {
                let s = list.remove(0);
                s.woken.store(true, Ordering::SeqCst);
                s.waiter.notify();
                done += 1;
            }
            let limit = timeout as usize; // val2: how many to requeue
            let moved: Vec<Sleeper> = list.drain(..limit.min(list.len())).collect();
            let moved_n = moved.len();
            if !list.is_empty() {
                tbl.insert(k1, list);
            }
            tbl.entry(k2).or_default().extend(moved);
            Ok((done + moved_n) as u64)
        }
        _ => {
            t.kernel().report_unsupported_feature(abi::syscalls::nr::FUTEX, "futex operation");
            Err(Errno::ENOSYS)
        }
    }
}

fn wait(t: &mut TaskCtx, addr: u64, val: u32, bitset: u32, dl: Option<Instant>) -> SysResult<u64> {
    let k = key(&t.task, addr)?;
    let woken = Arc::new(AtomicBool::new(false));
    {
        // The value is checked under the table lock: a waker changes the
        // word first and then takes the lock to wake, so no wake is lost.
        let mut tbl = table().lock().unwrap();
        let cur: u32 = t.read_obj(addr)?;
        if cur != val {
            return Err(Errno::EAGAIN);
        }
        tbl.entry(k).or_default().push(Sleeper { waiter: t.task.waiter.clone(), woken: woken.clone(), bitset });
    }
    loop {
        let seen = t.task.waiter.seq();
        if woken.load(Ordering::SeqCst) {
            return Ok(0);
        }
        let r = t.block_since(&[], seen, dl);
        if woken.load(Ordering::SeqCst) {
            return Ok(0);
        }
        if let Err(e) = r {
            let mut tbl = table().lock().unwrap();
            if let Some(list) = tbl.get_mut(&k) {
                list.retain(|s| !Arc::ptr_eq(&s.woken, &woken));
            }
            return Err(e);
        }
    }
}

/// `struct robust_list_head`: the list pointer, the offset from an entry to
/// its futex word, and the entry being acquired or released right now.
const ROBUST_LIST_HEAD_SIZE: u64 = 24;
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Linux's ROBUST_LIST_LIMIT: bounds the walk of a corrupt or cyclic list.
const ROBUST_LIST_LIMIT: usize = 2048;

fn sys_set_robust_list(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if a[1] != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    t.task.robust_list.store(a[0], Ordering::SeqCst);
    Ok(0)
}

fn sys_get_robust_list(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let target = if a[0] == 0 { t.task.clone() } else { t.kernel().task(a[0] as i32).ok_or(Errno::ESRCH)? };
    t.write_obj(a[1], &target.robust_list.load(Ordering::SeqCst))?;
    t.write_obj(a[2], &ROBUST_LIST_HEAD_SIZE)?;
    Ok(0)
}

/// A dying thread releases the robust mutexes it holds, as Linux's
/// exit_robust_list does: each futex word owned by `tid` gets
/// FUTEX_OWNER_DIED (keeping FUTEX_WAITERS), and one waiter is woken to
/// find it.
pub fn exit_robust_list(t: &TaskCtx) {
    let head = t.task.robust_list.swap(0, Ordering::SeqCst);
    if head == 0 {
        return;
    }
    let read_u64 = |addr: u64| t.read_obj::<u64>(addr).ok();
    let (Some(mut entry), Some(offset), Some(pending)) = (read_u64(head), read_u64(head + 8), read_u64(head + 16)) else { return };
    let offset = offset as i64;
    // The owner's tid as the application wrote it: in its PID namespace.
    let own_tid = t.pid_seen(t.tid()) as u32;
    let release = |entry: u64| {
        let word = entry.wrapping_add(offset as u64);
        if let Ok(v) = t.read_obj::<u32>(word) {
            if v & FUTEX_TID_MASK == own_tid {
                let nv = (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
                if t.copy_out(word, &nv.to_le_bytes()).is_ok() && v & FUTEX_WAITERS != 0 {
                    wake_address(&t.task, word, 1);
                }
            }
        }
    };
    for _ in 0..ROBUST_LIST_LIMIT {
        // The low bit of an entry pointer marks a PI futex; the address is the rest.
        let e = entry & !1;
        if e == head {
            break;
        }
        let Some(next) = read_u64(e) else { break };
        if e != pending & !1 {
            release(e);
        }
        entry = next;
    }
    if pending != 0 {
        release(pending & !1);
    }
}
