//! epoll: an interest list over other files, scanned for readiness.
//!
//! Interests are keyed by (description, fd) as Linux keys them, and hold
//! the description weakly: closing the last descriptor of a watched file
//! drops its interest, as on Linux. Readiness is computed by asking each
//! file (level-triggered by nature); edge-triggered interests are reported
//! again only after something changed: a notification on a watched queue
//! since their last report (the instance's own waiter sits on every watched
//! queue and counts them) or new readiness bits since the last scan.

use super::events::*;
use super::readiness::MAX_NESTS;
use super::{anon, FileOps, OpenFile};
use crate::wait::{WaitQueue, Waiter};
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};
use std::sync::{Arc, Mutex, Weak};

pub const EPOLLIN: u32 = 0x1;
pub const EPOLLPRI: u32 = 0x2;
pub const EPOLLOUT: u32 = 0x4;
pub const EPOLLERR: u32 = 0x8;
pub const EPOLLHUP: u32 = 0x10;
pub const EPOLLRDNORM: u32 = 0x40;
pub const EPOLLRDBAND: u32 = 0x80;
pub const EPOLLWRNORM: u32 = 0x100;
pub const EPOLLWRBAND: u32 = 0x200;
pub const EPOLLMSG: u32 = 0x400;
pub const EPOLLRDHUP: u32 = 0x2000;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;

pub const EPOLL_CTL_ADD: i32 = 1;
pub const EPOLL_CTL_DEL: i32 = 2;
pub const EPOLL_CTL_MOD: i32 = 3;

/// The events a file can report (the rest are flags).
const EVENT_BITS: u32 = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND | EPOLLMSG | EPOLLRDHUP;

struct Interest {
    file: Weak<OpenFile>,
    events: u32,
    data: u64,
    /// EPOLLONESHOT: disarmed after one report until EPOLL_CTL_MOD.
    armed: bool,
    /// For EPOLLET: the instance waiter's count at the last report, and
    /// the readiness seen by the last scan.
    seq_at_report: Option<u64>,
    last_ready: u32,
}

pub struct Epoll {
    interests: Mutex<BTreeMap<(usize, i32), Interest>>,
    /// Notified on every interest list change (a waiter then rescans).
    queue: WaitQueue,
    /// Registered on every watched file's queue; its count tells
    /// edge-triggered interests that something happened.
    edges: Arc<Waiter>,
    /// Where the next scan starts, so a small `maxevents` does not starve
    /// the interests after the first ones.
    cursor: Mutex<(usize, i32)>,
    ino: u64,
}

pub fn new(flags: u32) -> SysResult<Arc<OpenFile>> {
    let edges = Waiter::new().map_err(|_| Errno::EMFILE)?;
    let ep = Arc::new(Epoll { interests: Mutex::new(BTreeMap::new()), queue: WaitQueue::new(), edges, cursor: Mutex::new((0, 0)), ino: anon::next_ino() });
    Ok(anon::open(ep, libc::O_RDWR as u32 | flags))
}

/// What one `epoll_wait` reports: (events, data).
pub type Ready = (u32, u64);

/// Linux maps poll bits to epoll bits one to one; RDNORM/WRNORM follow
/// IN/OUT for files that only report the latter.
fn with_norm(ev: u32) -> u32 {
    let mut e = ev;
    if ev & POLLIN != 0 {
        e |= EPOLLRDNORM;
    }
    if ev & POLLOUT != 0 {
        e |= EPOLLWRNORM;
    }
    e
}

impl Epoll {
    /// Watched files and their interest events (for waiting on them).
    pub fn watched(&self) -> Vec<(Arc<OpenFile>, u32)> {
        self.interests.lock().unwrap().values().filter_map(|i| i.file.upgrade().map(|f| (f, i.events))).collect()
    }

    fn contains_epoll(&self, target: &Epoll, depth: usize) -> bool {
        if std::ptr::eq(self, target) {
            return true;
        }
        if depth > MAX_NESTS {
            return true;
        }
        for (f, _) in self.watched() {
            if let Some(inner) = anon::get::<Epoll>(&f) {
                if inner.contains_epoll(target, depth + 1) {
                    return true;
                }
            }
        }
        false
    }

    /// epoll_ctl.
    pub fn ctl(self: &Arc<Self>, op: i32, fd: i32, file: &Arc<OpenFile>, events: u32, data: u64) -> SysResult<()> {
        if let Some(inner) = anon::get::<Epoll>(file) {
            if Arc::ptr_eq(&inner, self) {
                return Err(Errno::EINVAL);
            }
            // Adding an epoll that (transitively) watches us would loop.
            if op == EPOLL_CTL_ADD && inner.contains_epoll(self, 0) {
                return Err(Errno::ELOOP);
            }
        }
        let key = (Arc::as_ptr(file) as usize, fd);
        let mut map = self.interests.lock().unwrap();
        match op {
            EPOLL_CTL_ADD => {
                if map.contains_key(&key) {
                    return Err(Errno::EEXIST);
                }
                if events & EPOLLEXCLUSIVE != 0 && (events & EPOLLONESHOT != 0 || anon::is::<Epoll>(file)) {
                    return Err(Errno::EINVAL);
                }
                if let Some(q) = file.ops.wait_queue() {
                    q.register(&self.edges);
                }
                map.insert(key, Interest { file: Arc::downgrade(file), events, data, armed: true, seq_at_report: None, last_ready: 0 });
            }
            EPOLL_CTL_MOD => {
                let i = map.get_mut(&key).ok_or(Errno::ENOENT)?;
                // EPOLLEXCLUSIVE can only be given on ADD.
                if events & EPOLLEXCLUSIVE != 0 || i.events & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                *i = Interest { file: i.file.clone(), events, data, armed: true, seq_at_report: None, last_ready: 0 };
            }
            EPOLL_CTL_DEL => {
                map.remove(&key).ok_or(Errno::ENOENT)?;
                if let Some(q) = file.ops.wait_queue() {
                    q.unregister(&self.edges);
                }
            }
            _ => return Err(Errno::EINVAL),
        }
        drop(map);
        self.queue.notify_all();
        Ok(())
    }

    /// Collects up to `max` ready events; with `consume`, applies the
    /// one-shot and edge-triggered bookkeeping (an epoll_wait report).
    pub fn collect(&self, max: usize, consume: bool) -> Vec<Ready> {
        let mut out = Vec::new();
        // Snapshot the interests: readiness() of a watched file may take
        // other locks (a nested epoll's), never ours while we hold it.
        let snapshot: Vec<((usize, i32), Arc<OpenFile>)> = {
            let mut map = self.interests.lock().unwrap();
            map.retain(|_, i| i.file.strong_count() > 0);
            let cursor = *self.cursor.lock().unwrap();
            let after = map.range((Excluded(cursor), Unbounded));
            let before = map.range(..=cursor);
            after.chain(before).filter(|(_, i)| i.armed).filter_map(|(k, i)| i.file.upgrade().map(|f| (*k, f))).collect()
        };
        let seq = self.edges.seq();
        for (key, f) in snapshot {
            if out.len() >= max {
                break;
            }
            let ready = with_norm(f.ops.readiness());
            let mut map = self.interests.lock().unwrap();
            let Some(i) = map.get_mut(&key) else { continue };
            let wanted = i.events & EVENT_BITS | EPOLLERR | EPOLLHUP;
            let ev = ready & wanted;
            let edge = i.events & EPOLLET != 0;
            let new_bits = ev & !i.last_ready;
            if consume {
                i.last_ready = ev;
            }
            if ev == 0 || !i.armed {
                continue;
            }
            if edge && new_bits == 0 && i.seq_at_report == Some(seq) {
                continue;
            }
            if consume {
                if edge {
                    i.seq_at_report = Some(seq);
                }
                if i.events & EPOLLONESHOT != 0 {
                    i.armed = false;
                }
                *self.cursor.lock().unwrap() = key;
            }
            out.push((ev, i.data));
        }
        out
    }
}

impl FileOps for Epoll {
    fn stat(&self) -> SysResult<Stat> {
        Ok(anon::anon_stat(self.ino))
    }

    /// Readable when an epoll_wait would report something.
    fn readiness(&self) -> u32 {
        if self.collect(1, false).is_empty() {
            0
        } else {
            POLLIN
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn release(&self) {
        let all = std::mem::take(&mut *self.interests.lock().unwrap());
        for i in all.values() {
            if let Some(f) = i.file.upgrade() {
                if let Some(q) = f.ops.wait_queue() {
                    q.unregister(&self.edges);
                }
            }
        }
    }
}
