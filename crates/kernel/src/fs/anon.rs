//! Sentry objects behind descriptors (sockets, epoll, eventfd, timerfd,
//! signalfd) and the way back from a descriptor to its object: each is
//! opened through [`open`], whose `FileOps` answers `as_any` with itself,
//! so [`get`] downcasts to the object's concrete type.

use super::{FileOps, OpenFile};
use crate::task::TaskCtx;
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::types::Stat;
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

/// The `FileOps` of a sentry object: delegates to the object and lets
/// [`get`] find it again through `as_any`.
struct Handle<T: FileOps + Any + Send + Sync> {
    obj: Arc<T>,
}

/// Opens `obj` as a new description with status `flags`.
pub fn open<T: FileOps + Any + Send + Sync>(obj: Arc<T>, flags: u32) -> Arc<OpenFile> {
    OpenFile::new(Box::new(Handle { obj }), flags, None)
}

/// The object behind `file`, if it was opened by [`open`] with type `T`.
pub fn get<T: FileOps + Any + Send + Sync>(file: &OpenFile) -> Option<Arc<T>> {
    file.ops.as_any()?.downcast_ref::<Handle<T>>().map(|h| h.obj.clone())
}

/// Whether `file` is one of ours with type `T`.
pub fn is<T: FileOps + Any + Send + Sync>(file: &OpenFile) -> bool {
    file.ops.as_any().is_some_and(|a| a.is::<Handle<T>>())
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
        self.obj.release();
    }
    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}
