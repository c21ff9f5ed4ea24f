//! Advisory file locks: POSIX record locks (fcntl F_SETLK, owned by the
//! process), open-file-description locks (F_OFD_SETLK, owned by the
//! description; they share the byte-range space with POSIX locks, as on
//! Linux) and flock(2) locks (whole-file, owned by the description, in a
//! space of their own).
//!
//! Locks are keyed by inode (st_dev, st_ino), so every path and descriptor
//! to a file sees the same locks. Waiters block on one queue per inode,
//! woken whenever a lock there is released.

use crate::task::TaskCtx;
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::Errno;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Who holds a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A process (POSIX record locks): its thread group id.
    Process(i32),
    /// An open file description (OFD and flock locks): its address.
    File(usize),
}

/// One held byte range: [start, end), end = u64::MAX for "to the end".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub owner: Owner,
    pub start: u64,
    pub end: u64,
    pub write: bool,
}

impl Range {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start < end && start < self.end
    }
}

/// The locks of one inode.
#[derive(Default)]
pub struct InodeLocks {
    /// POSIX and OFD byte ranges.
    pub ranges: Vec<Range>,
    /// flock: holders and whether the lock is exclusive.
    pub flocks: Vec<(usize, bool)>,
}

impl InodeLocks {
    /// The first range of another owner that conflicts with [start, end).
    pub fn conflict(&self, owner: Owner, start: u64, end: u64, write: bool) -> Option<Range> {
        self.ranges.iter().find(|r| r.owner != owner && r.overlaps(start, end) && (write || r.write)).copied()
    }

    /// Sets (or with `write == None` clears) `owner`'s lock on [start,
    /// end), splitting and replacing its own ranges there. The caller has
    /// checked for conflicts.
    pub fn set(&mut self, owner: Owner, start: u64, end: u64, write: Option<bool>) {
        let mut kept = Vec::with_capacity(self.ranges.len() + 2);
        for r in self.ranges.drain(..) {
            if r.owner != owner || !r.overlaps(start, end) {
                kept.push(r);
                continue;
            }
            if r.start < start {
                kept.push(Range { end: start, ..r });
            }
            if r.end > end {
                kept.push(Range { start: end, ..r });
            }
        }
        if let Some(w) = write {
            kept.push(Range { owner, start, end, write: w });
        }
        self.ranges = kept;
    }

    pub fn flock_conflict(&self, file: usize, exclusive: bool) -> bool {
        self.flocks.iter().any(|&(f, ex)| f != file && (exclusive || ex))
    }

    fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.flocks.is_empty()
    }
}

/// A file's place in the lock table: its inode (st_dev, st_ino).
pub type Key = (u64, u64);

/// The lock-table key of an open file.
pub fn key_of(f: &crate::fs::OpenFile) -> SysResult<Key> {
    let st = f.ops.stat()?;
    Ok((st.st_dev, st.st_ino))
}

/// Whether a process (by thread group id) still exists.
pub type ProcessAlive = Box<dyn Fn(i32) -> bool + Send + Sync>;

/// The locks of one kernel's files.
pub struct LockTable {
    inodes: Mutex<HashMap<Key, InodeLocks>>,
    waiters: Mutex<HashMap<Key, Arc<WaitQueue>>>,
    /// How the table sees that a lock's process has exited (to purge the
    /// locks of a process that went without releasing them).
    process_alive: ProcessAlive,
}

impl Default for LockTable {
    fn default() -> Self {
        LockTable::new(Box::new(|_| true))
    }
}

/// What a lock request asks for.
#[derive(Clone, Copy, Debug)]
pub enum Want {
    /// A byte-range lock (POSIX or OFD); `write: None` unlocks.
    Range { start: u64, end: u64, write: Option<bool> },
    /// flock; `exclusive: None` unlocks.
    Flock { exclusive: Option<bool> },
}

impl LockTable {
    pub fn new(process_alive: ProcessAlive) -> LockTable {
        LockTable { inodes: Default::default(), waiters: Default::default(), process_alive }
    }

    fn queue(&self, key: Key) -> Arc<WaitQueue> {
        self.waiters.lock().unwrap().entry(key).or_default().clone()
    }

    /// F_GETLK: the lock that would block [start, end).
    pub fn test(&self, key: Key, owner: Owner, start: u64, end: u64, write: bool) -> Option<Range> {
        self.purge_dead(key);
        self.inodes.lock().unwrap().get(&key).and_then(|l| l.conflict(owner, start, end, write))
    }

    /// Tries once: Ok(true) when done, Ok(false) when another owner holds
    /// a conflicting lock.
    pub fn try_lock(&self, key: Key, owner: Owner, want: Want) -> bool {
        let mut all = self.inodes.lock().unwrap();
        let l = all.entry(key).or_default();
        let released = match want {
            Want::Range { start, end, write } => {
                if let Some(w) = write {
                    if l.conflict(owner, start, end, w).is_some() {
                        return false;
                    }
                }
                l.set(owner, start, end, write);
                write != Some(true)
            }
            Want::Flock { exclusive } => {
                let Owner::File(f) = owner else { return false };
                if let Some(ex) = exclusive {
                    if l.flock_conflict(f, ex) {
                        return false;
                    }
                }
                l.flocks.retain(|&(g, _)| g != f);
                if let Some(ex) = exclusive {
                    l.flocks.push((f, ex));
                }
                exclusive != Some(true)
            }
        };
        if l.is_empty() {
            all.remove(&key);
        }
        drop(all);
        if released {
            self.queue(key).notify_all();
        }
        true
    }

    /// Takes the lock, waiting (interruptibly: ERESTARTSYS) when `wait`,
    /// else failing with `busy`.
    pub fn lock(&self, t: &TaskCtx, key: Key, owner: Owner, want: Want, wait: bool, busy: Errno) -> SysResult<()> {
        let q = self.queue(key);
        loop {
            let seen = t.prepare_block(&[&q]);
            if self.try_lock(key, owner, want) {
                q.unregister(&t.task.waiter);
                return Ok(());
            }
            if !wait {
                q.unregister(&t.task.waiter);
                return Err(busy);
            }
            // A holder that exited without releasing (see release_process)
            // must not block us forever: purge, then re-check before sleeping.
            if self.purge_dead(key) {
                q.unregister(&t.task.waiter);
                continue;
            }
            t.block_since(&[&q], seen, None)?;
        }
    }

    /// Drops every lock `owner` holds on `key` (close of any descriptor of
    /// the file drops the process's POSIX locks on it).
    pub fn release(&self, key: Key, owner: Owner) {
        let mut all = self.inodes.lock().unwrap();
        let Some(l) = all.get_mut(&key) else { return };
        let before = l.ranges.len() + l.flocks.len();
        l.ranges.retain(|r| r.owner != owner);
        if let Owner::File(f) = owner {
            l.flocks.retain(|&(g, _)| g != f);
        }
        let changed = l.ranges.len() + l.flocks.len() != before;
        if l.is_empty() {
            all.remove(&key);
        }
        drop(all);
        if changed {
            self.queue(key).notify_all();
        }
    }

    /// Drops every lock held by a description (its last close).
    pub fn release_file(&self, file: usize) {
        let keys: Vec<Key> = self.inodes.lock().unwrap().iter().filter(|(_, l)| l.ranges.iter().any(|r| r.owner == Owner::File(file)) || l.flocks.iter().any(|&(f, _)| f == file)).map(|(k, _)| *k).collect();
        for k in keys {
            self.release(k, Owner::File(file));
        }
    }

    /// Drops every POSIX lock of a process (at its exit; locks of a
    /// process that is gone without this are purged lazily).
    pub fn release_process(&self, tgid: i32) {
        let keys: Vec<Key> = self.inodes.lock().unwrap().iter().filter(|(_, l)| l.ranges.iter().any(|r| r.owner == Owner::Process(tgid))).map(|(k, _)| *k).collect();
        for k in keys {
            self.release(k, Owner::Process(tgid));
        }
    }

    /// Removes POSIX locks whose process is gone; true if any were.
    fn purge_dead(&self, key: Key) -> bool {
        let alive = &self.process_alive;
        let dead: Vec<i32> = match self.inodes.lock().unwrap().get(&key) {
            Some(l) => l.ranges.iter().filter_map(|r| match r.owner {
                Owner::Process(p) if !alive(p) => Some(p),
                _ => None,
            }).collect(),
            None => return false,
        };
        for p in &dead {
            self.release(key, Owner::Process(*p));
        }
        !dead.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_merge_and_conflict() {
        let mut l = InodeLocks::default();
        let a = Owner::Process(1);
        let b = Owner::Process(2);
        l.set(a, 0, 100, Some(false));
        assert!(l.conflict(b, 50, 60, false).is_none(), "readers share");
        assert_eq!(l.conflict(b, 50, 60, true).map(|r| r.owner), Some(a));
        l.set(a, 40, 60, None);
        assert!(l.conflict(b, 45, 55, true).is_none(), "unlock splits the range");
        assert!(l.conflict(b, 30, 45, true).is_some());
        l.set(a, 0, u64::MAX, Some(true));
        assert_eq!(l.ranges.len(), 1);
        assert!(l.conflict(a, 0, 10, true).is_none(), "own locks never conflict");
        assert!(l.conflict(b, 1 << 40, u64::MAX, false).is_some());
    }

    #[test]
    fn flock_and_release() {
        let t = LockTable::default();
        let k = (1, 2);
        assert!(t.try_lock(k, Owner::File(1), Want::Flock { exclusive: Some(false) }));
        assert!(t.try_lock(k, Owner::File(2), Want::Flock { exclusive: Some(false) }));
        assert!(!t.try_lock(k, Owner::File(3), Want::Flock { exclusive: Some(true) }));
        t.release_file(1);
        assert!(!t.try_lock(k, Owner::File(3), Want::Flock { exclusive: Some(true) }));
        assert!(t.try_lock(k, Owner::File(2), Want::Flock { exclusive: None }));
        assert!(t.try_lock(k, Owner::File(3), Want::Flock { exclusive: Some(true) }));
        assert!(t.try_lock(k, Owner::Process(9), Want::Range { start: 0, end: 10, write: Some(true) }));
        assert!(!t.try_lock(k, Owner::File(4), Want::Range { start: 5, end: 6, write: Some(false) }));
        t.release_process(9);
        assert!(t.try_lock(k, Owner::File(4), Want::Range { start: 5, end: 6, write: Some(false) }));
    }
}
