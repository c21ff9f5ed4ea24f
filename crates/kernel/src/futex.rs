//! Futexes: wait and wake keyed by the memory-file offset of the word, so
//! private and shared futexes are served by one table, which the kernel
//! owns (two kernels in one process never see each other's waiters). Also
//! the robust-list walk a dying thread does.

use crate::task::{Task, TaskCtx};
use crate::wait::Waiter;
use crate::SysResult;
use abi::Errno;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

struct Sleeper {
    waiter: Arc<Waiter>,
    woken: Arc<AtomicBool>,
    bitset: u32,
}

/// A futex word: the memory file and the offset in it.
pub type Key = (usize, u64);

/// The waiters of every futex word of one kernel.
#[derive(Default)]
pub struct Futexes {
    table: Mutex<HashMap<Key, Vec<Sleeper>>>,
}

/// The key of the futex word at `addr` in `t`'s address space.
pub fn key(t: &Task, addr: u64) -> SysResult<Key> {
    if addr % 4 != 0 {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm().ok_or(Errno::EFAULT)?;
    Ok((Arc::as_ptr(mm.memfile()) as usize, mm.translate(addr)?))
}

impl Futexes {
    /// Wakes up to `n` waiters on `k` whose bitset meets `bitset`.
    pub fn wake(&self, k: Key, n: usize, bitset: u32) -> usize {
        let mut tbl = self.table.lock().unwrap();
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

    /// Sleeps on the word at `addr` while it holds `val`, until woken, a
    /// signal, or `deadline`.
    pub fn wait(&self, t: &mut TaskCtx, addr: u64, val: u32, bitset: u32, deadline: Option<Instant>) -> SysResult<u64> {
        let k = key(&t.task, addr)?;
        let woken = Arc::new(AtomicBool::new(false));
        {
            // The value is checked under the table lock: a waker changes the
            // word first and then takes the lock to wake, so no wake is lost.
            let mut tbl = self.table.lock().unwrap();
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
            let r = t.block_since(&[], seen, deadline);
            if woken.load(Ordering::SeqCst) {
                return Ok(0);
            }
            if let Err(e) = r {
                let mut tbl = self.table.lock().unwrap();
                if let Some(list) = tbl.get_mut(&k) {
                    list.retain(|s| !Arc::ptr_eq(&s.woken, &woken));
                }
                return Err(e);
            }
        }
    }

    /// FUTEX_REQUEUE / FUTEX_CMP_REQUEUE: wakes up to `wake` waiters on
    /// `addr` and moves up to `requeue` of the rest to `addr2`; with
    /// `expected`, only while the word at `addr` still holds it.
    pub fn requeue(&self, t: &TaskCtx, addr: u64, addr2: u64, wake: usize, requeue: usize, expected: Option<u32>) -> SysResult<u64> {
        let k1 = key(&t.task, addr)?;
        let k2 = key(&t.task, addr2)?;
        let mut tbl = self.table.lock().unwrap();
        if let Some(want) = expected {
            let cur: u32 = t.read_obj(addr)?;
            if cur != want {
                return Err(Errno::EAGAIN);
            }
        }
        let mut list = tbl.remove(&k1).unwrap_or_default();
        let mut done = 0;
        while !list.is_empty() && done < wake {
            let s = list.remove(0);
            s.woken.store(true, Ordering::SeqCst);
            s.waiter.notify();
            done += 1;
        }
        let moved: Vec<Sleeper> = list.drain(..requeue.min(list.len())).collect();
        let moved_n = moved.len();
        if !list.is_empty() {
            tbl.insert(k1, list);
        }
        tbl.entry(k2).or_default().extend(moved);
        Ok((done + moved_n) as u64)
    }

    /// How many tasks wait on futex words (for tests).
    pub fn waiters(&self) -> usize {
        self.table.lock().unwrap().values().map(Vec::len).sum()
    }
}

/// Wakes up to `n` waiters on `addr` (also used for CLONE_CHILD_CLEARTID).
pub fn wake_address(t: &Task, addr: u64, n: usize) -> usize {
    match key(t, addr) {
        Ok(k) => t.kernel.futexes.wake(k, n, u32::MAX),
        Err(_) => 0,
    }
}

/// `struct robust_list_head`: the list pointer, the offset from an entry to
/// its futex word, and the entry being acquired or released right now.
pub const ROBUST_LIST_HEAD_SIZE: u64 = 24;
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Linux's ROBUST_LIST_LIMIT: bounds the walk of a corrupt or cyclic list.
const ROBUST_LIST_LIMIT: usize = 2048;

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
