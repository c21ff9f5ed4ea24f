//! Sentry objects behind descriptors (sockets, epoll, eventfd, timerfd,
//! signalfd) and the way back from a descriptor to its object.
//!
//! `FileOps` has no downcast, so each object is opened through [`open`],
//! which records `OpenFile address -> object` in a registry. The registry
//! keeps a `Weak<OpenFile>`, which keeps the allocation (not the file)
//! alive, so an address in the registry can never be reused by another
//! description while its entry exists: a hit is always the right file.
//! The entry goes when the description is released.

use super::{FileOps, OpenFile};
use crate::task::TaskCtx;
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::types::Stat;
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Device number of sockets (Linux's sockfs) and of anonymous inodes
/// (anon_inodefs); major 0 like Linux's, away from the VFS's 0x20.. range.
pub const DEV_SOCKFS: u64 = 0x40;
pub const DEV_ANON_INODE: u64 = 0x41;

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// A fresh inode number for a sentry object.
pub fn next_ino() -> u64 {
    NEXT_INO.fetch_add(1, Ordering::Relaxed)
}

/// The stat of an anonymous-inode file (epoll, eventfd, …): Linux reports
/// mode 0600 with no file type bits.
pub fn anon_stat(ino: u64) -> Stat {
    super::node::synthetic_stat(DEV_ANON_INODE, ino, 0o600, 1, 0, 0)
}

type Entry = (Weak<OpenFile>, Arc<dyn Any + Send + Sync>);

fn registry() -> &'static Mutex<HashMap<usize, Entry>> {
    static R: OnceLock<Mutex<HashMap<usize, Entry>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// The `FileOps` of a registered object: delegates to the object and
/// drops the registry entry on release.
struct Handle<T: FileOps + Any + Send + Sync> {
    obj: Arc<T>,
    /// The description's address (the registry key), set right after the
    /// description is created.
    key: Arc<AtomicUsize>,
}

/// Opens `obj` as a new description with status `flags`.
pub fn open<T: FileOps + Any + Send + Sync>(obj: Arc<T>, flags: u32) -> Arc<OpenFile> {
    let slot = Arc::new(AtomicUsize::new(0));
    let file = OpenFile::new(Box::new(Handle { obj: obj.clone(), key: slot.clone() }), flags, None);
    let key = Arc::as_ptr(&file) as usize;
    registry().lock().unwrap().insert(key, (Arc::downgrade(&file), obj as Arc<dyn Any + Send + Sync>));
    // release() cannot run before our reference goes, so it sees the key.
    slot.store(key, Ordering::Relaxed);
    file
}

/// The object behind `file`, if it was opened by [`open`] with type `T`.
pub fn get<T: Any + Send + Sync>(file: &Arc<OpenFile>) -> Option<Arc<T>> {
    let obj = registry().lock().unwrap().get(&(Arc::as_ptr(file) as usize)).map(|e| e.1.clone())?;
    obj.downcast::<T>().ok()
}

/// Whether `file` is one of ours with type `T`.
pub fn is<T: Any + Send + Sync>(file: &Arc<OpenFile>) -> bool {
    registry().lock().unwrap().get(&(Arc::as_ptr(file) as usize)).is_some_and(|e| e.1.is::<T>())
}

impl<T: FileOps + Any + Send + Sync> FileOps for Handle<T> {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        self.obj.read(t, file, buf)
    }
    fn write(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        self.obj.write(t, file, buf)
    }
    fn stat(&self) -> SysResult<Stat> {
        self.obj.stat()
    }
    fn ioctl(&self, t: &TaskCtx, file: &OpenFile, cmd: u64, arg: u64) -> SysResult<u64> {
        self.obj.ioctl(t, file, cmd, arg)
    }
    fn readiness(&self) -> u32 {
        self.obj.readiness()
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        self.obj.wait_queue()
    }
    fn host_fd(&self) -> Option<i32> {
        self.obj.host_fd()
    }
    fn release(&self) {
        let key = self.key.load(Ordering::Relaxed);
        // Taken out under the lock, dropped outside it: dropping an object
        // may release further descriptions (fds queued in a socket).
        let entry = registry().lock().unwrap().remove(&key);
        drop(entry);
        self.obj.release();
    }
}
