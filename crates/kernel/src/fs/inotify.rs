//! inotify: file-system change notification.
//!
//! The kernel keeps one [`Watches`] registry: every watch, keyed by the
//! watched inode's identity (device and inode number, which survive an
//! overlay copy-up). The system call layer reports each change it makes
//! (a name created, removed or moved in a directory, a file written,
//! changed in its attributes, opened or closed) to the registry, which
//! queues an event on every instance watching the inode itself, and on
//! every instance watching its directory (with the name). An instance is a
//! file: `read` takes whole `struct inotify_event` records, and its
//! readiness feeds poll, select and epoll through its wait queue.

use super::events::POLLIN;
use super::node::{Caller, Node, S_IFDIR, S_IFMT};
use super::vfs::Location;
use super::{anon, FileOps, OpenFile};
use crate::task::TaskCtx;
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;
pub const IN_ALL_EVENTS: u32 = 0xfff;
/// The bits inotify_add_watch accepts.
pub const VALID_MASK: u32 = IN_ALL_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_CREATE | IN_MASK_ADD | IN_ONESHOT;

/// Linux's default /proc/sys/fs/inotify/max_queued_events.
pub const MAX_QUEUED: usize = 16384;
/// Size of the fixed part of `struct inotify_event`.
const HEADER: usize = 16;

/// An inode as the registry knows it: (st_dev, st_ino).
pub type Key = (u64, u64);

/// What [`Watches::removed`] needs of an inode about to lose a name:
/// its identity, whether it is a directory, and its link count (None
/// while nothing watches, so the common path states nothing).
pub fn before_removal(w: &Watches, node: &Arc<dyn Node>) -> Option<(Key, bool, u64)> {
    if !w.active() {
        return None;
    }
    let nobody = Caller { kernel: None, tgid: 0, tid: 0 };
    node.stat(&nobody).ok().map(|st| ((st.st_dev, st.st_ino), st.st_mode & S_IFMT == S_IFDIR, st.st_nlink))
}

/// The identity of `node` (None if it cannot be stated any more).
pub fn key_of(node: &Arc<dyn Node>) -> Option<(Key, bool)> {
    let nobody = Caller { kernel: None, tgid: 0, tid: 0 };
    node.stat(&nobody).ok().map(|st| ((st.st_dev, st.st_ino), st.st_mode & S_IFMT == S_IFDIR))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub wd: i32,
    pub mask: u32,
    pub cookie: u32,
    pub name: Vec<u8>,
}

impl Event {
    /// The record's length: the header plus the name, NUL-padded to a
    /// multiple of the header's size as Linux pads it.
    pub fn len(&self) -> usize {
        HEADER + name_space(&self.name)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let space = name_space(&self.name);
        out.extend_from_slice(&self.wd.to_ne_bytes());
        out.extend_from_slice(&self.mask.to_ne_bytes());
        out.extend_from_slice(&self.cookie.to_ne_bytes());
        out.extend_from_slice(&(space as u32).to_ne_bytes());
        out.extend_from_slice(&self.name);
        out.resize(out.len() + space - self.name.len(), 0);
    }
}

fn name_space(name: &[u8]) -> usize {
    if name.is_empty() {
        0
    } else {
        (name.len() + 1).div_ceil(HEADER) * HEADER
    }
}

/// One watch of one instance.
struct Watch {
    inst: Weak<Inotify>,
    wd: i32,
    mask: u32,
}

/// Every watch in the kernel, by watched inode.
#[derive(Default)]
pub struct Watches {
    /// How many watches exist: the change hooks cost nothing while zero.
    count: AtomicUsize,
    by_key: Mutex<HashMap<Key, Vec<Watch>>>,
    cookie: AtomicU32,
}

impl Watches {
    /// Whether any watch exists (the hooks check this first).
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// A fresh cookie tying an IN_MOVED_FROM to its IN_MOVED_TO.
    pub fn next_cookie(&self) -> u32 {
        self.cookie.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    }

    /// Adds or updates `inst`'s watch on `key`; returns its descriptor.
    pub fn add(&self, inst: &Arc<Inotify>, key: Key, mask: u32) -> SysResult<i32> {
        let mut map = self.by_key.lock().unwrap();
        let list = map.entry(key).or_default();
        if let Some(w) = list.iter_mut().find(|w| w.inst.as_ptr() == Arc::as_ptr(inst)) {
            if mask & IN_MASK_CREATE != 0 {
                return Err(Errno::EEXIST);
            }
            w.mask = if mask & IN_MASK_ADD != 0 { w.mask | mask } else { mask };
            return Ok(w.wd);
        }
        let wd = inst.new_watch(key);
        list.push(Watch { inst: Arc::downgrade(inst), wd, mask });
        self.count.fetch_add(1, Ordering::Relaxed);
        Ok(wd)
    }

    /// Removes `inst`'s watch `wd` (queueing IN_IGNORED), EINVAL if none.
    pub fn remove(&self, inst: &Arc<Inotify>, wd: i32) -> SysResult<()> {
        let key = inst.forget_watch(wd).ok_or(Errno::EINVAL)?;
        self.drop_watch(key, |w| w.inst.as_ptr() == Arc::as_ptr(inst) && w.wd == wd);
        inst.push(Event { wd, mask: IN_IGNORED, cookie: 0, name: Vec::new() });
        Ok(())
    }

    fn drop_watch(&self, key: Key, which: impl Fn(&Watch) -> bool) {
        let mut map = self.by_key.lock().unwrap();
        if let Some(list) = map.get_mut(&key) {
            let before = list.len();
            list.retain(|w| !which(w));
            self.count.fetch_sub(before - list.len(), Ordering::Relaxed);
            if list.is_empty() {
                map.remove(&key);
            }
        }
    }

    /// Drops every watch of an instance being released.
    fn release(&self, inst: *const Inotify, keys: Vec<Key>) {
        for key in keys {
            self.drop_watch(key, |w| w.inst.as_ptr() == inst);
        }
    }

    /// Queues `mask` (with `name`, for a directory's child) on every watch
    /// of `key` that asked for it.
    pub fn notify(&self, key: Key, mask: u32, cookie: u32, name: &[u8]) {
        if !self.active() {
            return;
        }
        let mut fired: Vec<(Arc<Inotify>, i32)> = Vec::new();
        let mut oneshots = Vec::new();
        {
            let map = self.by_key.lock().unwrap();
            let Some(list) = map.get(&key) else { return };
            for w in list {
                if w.mask & mask & (IN_ALL_EVENTS | IN_IGNORED) == 0 && mask & (IN_IGNORED | IN_Q_OVERFLOW) == 0 {
                    continue;
                }
                if let Some(inst) = w.inst.upgrade() {
                    if w.mask & IN_ONESHOT != 0 {
                        oneshots.push((inst.clone(), w.wd));
                    }
                    fired.push((inst, w.wd));
                }
            }
        }
        for (inst, wd) in fired {
            inst.push(Event { wd, mask, cookie, name: name.to_vec() });
        }
        for (inst, wd) in oneshots {
            let _ = self.remove(&inst, wd);
        }
    }

    /// The inode `key` is gone: IN_DELETE_SELF, then IN_IGNORED, on each
    /// of its watches, which end.
    pub fn gone(&self, key: Key) {
        if !self.active() {
            return;
        }
        let list = self.by_key.lock().unwrap().remove(&key).unwrap_or_default();
        self.count.fetch_sub(list.len(), Ordering::Relaxed);
        for w in list {
            if let Some(inst) = w.inst.upgrade() {
                inst.forget_watch(w.wd);
                if w.mask & IN_DELETE_SELF != 0 {
                    inst.push(Event { wd: w.wd, mask: IN_DELETE_SELF, cookie: 0, name: Vec::new() });
                }
                inst.push(Event { wd: w.wd, mask: IN_IGNORED, cookie: 0, name: Vec::new() });
            }
        }
    }

    /// An event on the inode at `loc` (written, read, changed, opened,
    /// closed): to its own watches, and to its directory's with its name.
    pub fn file_event(&self, loc: &Location, mask: u32) {
        if !self.active() {
            return;
        }
        let Some((key, dir)) = key_of(loc.node()) else { return };
        let mask = if dir { mask | IN_ISDIR } else { mask };
        self.notify(key, mask, 0, &[]);
        if let Some(parent) = parent_node(loc) {
            if let Some((pkey, _)) = key_of(&parent) {
                self.notify(pkey, mask, 0, &loc.dentry.name());
            }
        }
    }

    /// An event on the file behind an open description, if it has a place
    /// in the tree (a write: IN_MODIFY; a read: IN_ACCESS).
    pub fn file_io(&self, f: &OpenFile, mask: u32) {
        if let (true, Some(loc)) = (self.active(), &f.location) {
            self.file_event(loc, mask);
        }
    }

    /// `loc` was just created: IN_CREATE to its directory's watches.
    pub fn created(&self, loc: &Location) {
        if !self.active() {
            return;
        }
        let Some(parent) = parent_node(loc) else { return };
        if let Some((pkey, _)) = key_of(&parent) {
            let mask = if loc.is_dir() { IN_CREATE | IN_ISDIR } else { IN_CREATE };
            self.notify(pkey, mask, 0, &loc.dentry.name());
        }
    }

    /// The name `name` of `dir`, which was the inode `gone` (key, whether a
    /// directory, its link count before), was removed: a non-directory's
    /// own watches hear IN_ATTRIB (its link count changed), the directory
    /// IN_DELETE, and the inode's watches its end (IN_DELETE_SELF) when
    /// that was its last link.
    pub fn removed(&self, dir: &Location, name: &[u8], gone: Option<(Key, bool, u64)>) {
        let Some((key, is_dir, nlink)) = gone else { return };
        if !is_dir {
            self.notify(key, IN_ATTRIB, 0, &[]);
        }
        self.child_event(dir, name, IN_DELETE, 0, is_dir);
        if is_dir || nlink <= 1 {
            self.gone(key);
        }
    }

    /// An event about the child `name` of the directory `dir` (created,
    /// deleted, moved); `is_dir` says what the child is.
    pub fn child_event(&self, dir: &Location, name: &[u8], mask: u32, cookie: u32, is_dir: bool) {
        if !self.active() {
            return;
        }
        if let Some((key, _)) = key_of(dir.node()) {
            self.notify(key, if is_dir { mask | IN_ISDIR } else { mask }, cookie, name);
        }
    }
}

/// The directory holding `loc`, across a mount boundary when `loc` is a
/// mount's root.
fn parent_node(loc: &Location) -> Option<Arc<dyn Node>> {
    if Arc::ptr_eq(&loc.dentry, &loc.mount.root) {
        let (_, covered) = loc.mount.parent.as_ref()?;
        return covered.parent().map(|d| d.node.clone());
    }
    loc.dentry.parent().map(|d| d.node.clone())
}

struct State {
    events: VecDeque<Event>,
    /// Bytes the queued events take when read.
    bytes: usize,
    next_wd: i32,
    /// wd → watched inode.
    watches: HashMap<i32, Key>,
}

/// One inotify instance (what inotify_init1 returns a descriptor of).
pub struct Inotify {
    state: Mutex<State>,
    queue: WaitQueue,
    registry: Weak<Watches>,
    ino: u64,
}

impl Inotify {
    pub fn new(registry: &Arc<Watches>) -> Arc<Inotify> {
        let state = State { events: VecDeque::new(), bytes: 0, next_wd: 1, watches: HashMap::new() };
        Arc::new(Inotify { state: Mutex::new(state), queue: WaitQueue::new(), registry: Arc::downgrade(registry), ino: anon::next_ino() })
    }

    pub fn open(inst: Arc<Inotify>, flags: u32) -> Arc<OpenFile> {
        anon::open(inst, libc::O_RDONLY as u32 | flags)
    }

    fn new_watch(&self, key: Key) -> i32 {
        let mut s = self.state.lock().unwrap();
        let wd = s.next_wd;
        s.next_wd += 1;
        s.watches.insert(wd, key);
        wd
    }

    fn forget_watch(&self, wd: i32) -> Option<Key> {
        self.state.lock().unwrap().watches.remove(&wd)
    }

    /// Queues `ev`, merged into the last one when identical (as Linux
    /// does), or replaced by one IN_Q_OVERFLOW when the queue is full.
    pub fn push(&self, ev: Event) {
        {
            let mut s = self.state.lock().unwrap();
            if s.events.back() == Some(&ev) {
                return;
            }
            let ev = if s.events.len() >= MAX_QUEUED {
                let overflow = Event { wd: -1, mask: IN_Q_OVERFLOW, cookie: 0, name: Vec::new() };
                if s.events.back() == Some(&overflow) {
                    return;
                }
                overflow
            } else {
                ev
            };
            s.bytes += ev.len();
            s.events.push_back(ev);
        }
        self.queue.notify_all();
    }

    /// Takes as many whole events as fit in `size` bytes; EINVAL when not
    /// even the first fits.
    pub fn take(&self, size: usize) -> SysResult<Option<Vec<u8>>> {
        let mut s = self.state.lock().unwrap();
        let Some(first) = s.events.front() else { return Ok(None) };
        if first.len() > size {
            return Err(Errno::EINVAL);
        }
        let mut out = Vec::new();
        while let Some(ev) = s.events.front() {
            if out.len() + ev.len() > size {
                break;
            }
            let ev = s.events.pop_front().unwrap();
            s.bytes -= ev.len();
            ev.encode(&mut out);
        }
        Ok(Some(out))
    }
}

impl FileOps for Inotify {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        loop {
            let seen = t.prepare_block(&[&self.queue]);
            if let Some(data) = self.take(buf.len()).inspect_err(|_| self.queue.unregister(&t.task.waiter))? {
                self.queue.unregister(&t.task.waiter);
                buf[..data.len()].copy_from_slice(&data);
                return Ok(data.len());
            }
            if file.nonblocking() {
                self.queue.unregister(&t.task.waiter);
                return Err(Errno::EAGAIN);
            }
            t.block_since(&[&self.queue], seen, None)?;
        }
    }

    fn ioctl(&self, t: &TaskCtx, _file: &OpenFile, cmd: u64, arg: u64) -> SysResult<u64> {
        if cmd != libc::FIONREAD {
            return Err(Errno::ENOTTY);
        }
        let n = self.state.lock().unwrap().bytes as i32;
        t.write_obj(arg, &n)?;
        Ok(0)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(anon::anon_stat(self.ino))
    }

    fn readiness(&self) -> u32 {
        if self.state.lock().unwrap().events.is_empty() {
            0
        } else {
            POLLIN
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn release(&self) {
        let keys: Vec<Key> = self.state.lock().unwrap().watches.drain().map(|(_, k)| k).collect();
        if let Some(r) = self.registry.upgrade() {
            r.release(self as *const Inotify, keys);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(i: &Inotify) -> Vec<(i32, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let Some(data) = i.take(1 << 16).unwrap() else { return out };
        let mut p = 0;
        while p < data.len() {
            let word = |o: usize| u32::from_ne_bytes(data[p + o..p + o + 4].try_into().unwrap());
            let len = word(12) as usize;
            let name: Vec<u8> = data[p + HEADER..p + HEADER + len].iter().copied().take_while(|&b| b != 0).collect();
            out.push((word(0) as i32, word(4), word(8), name));
            p += HEADER + len;
        }
        out
    }

    #[test]
    fn events_reach_the_watches_that_asked_for_them() {
        let reg = Arc::new(Watches::default());
        let a = Inotify::new(&reg);
        let b = Inotify::new(&reg);
        let dir = (1, 10);
        let wa = reg.add(&a, dir, IN_CREATE | IN_DELETE).unwrap();
        let wb = reg.add(&b, dir, IN_MODIFY).unwrap();
        assert_eq!(reg.add(&a, dir, IN_MODIFY | IN_MASK_ADD).unwrap(), wa, "one watch per inode and instance");
        assert_eq!(reg.add(&a, dir, IN_MODIFY | IN_MASK_CREATE), Err(Errno::EEXIST));
        reg.notify(dir, IN_CREATE, 0, b"new");
        reg.notify(dir, IN_MODIFY, 0, b"new");
        reg.notify(dir, IN_MODIFY, 0, b"new");
        reg.notify(dir, IN_ATTRIB, 0, b"new");
        assert_eq!(drain(&a), vec![(wa, IN_CREATE, 0, b"new".to_vec()), (wa, IN_MODIFY, 0, b"new".to_vec())], "identical events merge");
        assert_eq!(drain(&b), vec![(wb, IN_MODIFY, 0, b"new".to_vec())]);
        assert_eq!(a.readiness(), 0);
    }

    #[test]
    fn records_are_padded_and_a_short_buffer_is_refused() {
        let reg = Arc::new(Watches::default());
        let a = Inotify::new(&reg);
        let wd = reg.add(&a, (1, 2), IN_ALL_EVENTS).unwrap();
        reg.notify((1, 2), IN_CREATE, 0, b"abcdefghijklmnop");
        assert_eq!(a.readiness(), POLLIN);
        assert_eq!(a.take(HEADER + 16), Err(Errno::EINVAL), "16 name bytes need 32 with the NUL");
        let data = a.take(HEADER + 32).unwrap().unwrap();
        assert_eq!(data.len(), 48);
        assert_eq!(u32::from_ne_bytes(data[12..16].try_into().unwrap()), 32);
        assert_eq!(i32::from_ne_bytes(data[0..4].try_into().unwrap()), wd);
        assert_eq!(a.take(64).unwrap(), None);
    }

    #[test]
    fn removal_oneshot_and_deletion_end_watches_with_in_ignored() {
        let reg = Arc::new(Watches::default());
        let a = Inotify::new(&reg);
        let w1 = reg.add(&a, (1, 1), IN_MODIFY).unwrap();
        let w2 = reg.add(&a, (1, 2), IN_MODIFY | IN_ONESHOT).unwrap();
        let w3 = reg.add(&a, (1, 3), IN_DELETE_SELF).unwrap();
        reg.remove(&a, w1).unwrap();
        assert_eq!(reg.remove(&a, w1), Err(Errno::EINVAL));
        reg.notify((1, 2), IN_MODIFY, 0, b"");
        reg.notify((1, 2), IN_MODIFY | IN_ISDIR, 0, b"");
        reg.gone((1, 3));
        let got: Vec<(i32, u32)> = drain(&a).into_iter().map(|e| (e.0, e.1)).collect();
        assert_eq!(got, vec![(w1, IN_IGNORED), (w2, IN_MODIFY), (w2, IN_IGNORED), (w3, IN_DELETE_SELF), (w3, IN_IGNORED)]);
        assert!(!reg.active(), "no watch is left");
    }

    #[test]
    fn a_released_instance_leaves_no_watch_and_a_full_queue_overflows_once() {
        let reg = Arc::new(Watches::default());
        let a = Inotify::new(&reg);
        reg.add(&a, (1, 1), IN_MODIFY).unwrap();
        for i in 0..MAX_QUEUED + 5 {
            reg.notify((1, 1), IN_MODIFY, 0, format!("f{i}").as_bytes());
        }
        let s = a.state.lock().unwrap();
        assert_eq!(s.events.len(), MAX_QUEUED + 1);
        assert_eq!(s.events.back().unwrap().mask, IN_Q_OVERFLOW);
        drop(s);
        a.release();
        assert!(!reg.active());
    }
}
