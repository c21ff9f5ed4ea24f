//! The virtual file system: open files, descriptor tables, the mount tree
//! and the file systems the sentry serves (host-backed root, proc, dev,
//! pipes).

pub mod dev;
pub mod fdtable;
pub mod host;
pub mod hostfd;
pub mod node;
pub mod pipe;
pub mod proc;
pub mod tmpfs;
pub mod overlay;
pub mod lock;
pub mod sys;
pub mod devpts;
pub mod tty;
pub mod vfs;
pub mod anon;
pub mod epoll;
pub mod eventfd;
pub mod inotify;
pub mod readiness;
pub mod signalfd;
pub mod timerfd;

pub use fdtable::FdTable;
pub use vfs::{FsContext, Location, Vfs};

use crate::task::TaskCtx;
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// poll(2) event bits.
pub mod events {
    pub const POLLIN: u32 = 0x1;
    pub const POLLPRI: u32 = 0x2;
    pub const POLLOUT: u32 = 0x4;
    pub const POLLERR: u32 = 0x8;
    pub const POLLHUP: u32 = 0x10;
    pub const POLLNVAL: u32 = 0x20;
    pub const POLLRDHUP: u32 = 0x2000;
}

/// One directory entry as getdents64 reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    /// DT_* type.
    pub kind: u8,
    pub name: Vec<u8>,
}

/// What an open file does. `offset` is the description's file position for
/// seekable files (read and updated by the implementation); blocking
/// implementations use `t.block` and honour `nonblock`.
pub trait FileOps: Send + Sync {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        let _ = (t, file, buf);
        Err(Errno::EINVAL)
    }
    fn write(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        let _ = (t, file, buf);
        Err(Errno::EINVAL)
    }
    /// Positional read that does not move the offset (pread, exec, mmap).
    fn read_at(&self, t: Option<&TaskCtx>, buf: &mut [u8], offset: u64) -> SysResult<usize> {
        let _ = (t, buf, offset);
        Err(Errno::ESPIPE)
    }
    fn write_at(&self, t: &TaskCtx, buf: &[u8], offset: u64) -> SysResult<usize> {
        let _ = (t, buf, offset);
        Err(Errno::ESPIPE)
    }
    fn seek(&self, file: &OpenFile, offset: i64, whence: i32) -> SysResult<u64> {
        let _ = (file, offset, whence);
        Err(Errno::ESPIPE)
    }
    /// The description's file position, for the calls that take it
    /// without reading or writing through `read`/`write`
    /// (copy_file_range, splice, fcntl locks relative to SEEK_CUR).
    /// Files the sentry opened keep it in `OpenFile.offset`; a host
    /// descriptor passed in from outside overrides both methods with the
    /// host description's one offset, which the caller shares.
    fn position(&self, file: &OpenFile) -> SysResult<u64> {
        Ok(*file.offset.lock().unwrap())
    }
    fn set_position(&self, file: &OpenFile, pos: u64) -> SysResult<()> {
        *file.offset.lock().unwrap() = pos;
        Ok(())
    }
    fn stat(&self) -> SysResult<Stat>;
    /// Directory entries from the description's offset on; the offset
    /// counts entries (getdents64 advances it by the number it returns).
    fn getdents(&self, file: &OpenFile) -> SysResult<Vec<DirEntry>> {
        let _ = file;
        Err(Errno::ENOTDIR)
    }
    fn ioctl(&self, t: &TaskCtx, file: &OpenFile, cmd: u64, arg: u64) -> SysResult<u64> {
        let _ = (t, file, cmd, arg);
        Err(Errno::ENOTTY)
    }
    /// Currently ready poll events (POLLIN|POLLOUT|…).
    fn readiness(&self) -> u32 {
        events::POLLIN | events::POLLOUT
    }
    /// Where to wait for readiness changes; None if always ready.
    fn wait_queue(&self) -> Option<&WaitQueue> {
        None
    }
    /// A host descriptor to include in a host poll when the readiness can
    /// only be learned from the host (stdio passed from outside).
    fn host_fd(&self) -> Option<i32> {
        None
    }
    /// Called when the last descriptor referring to the description closes.
    fn release(&self) {}
    /// For files whose data lives in the memory file (tmpfs): the object
    /// holding it, which `mmap(MAP_SHARED)` maps directly so every mapping
    /// and every read/write sees the same pages.
    fn memory_object(&self) -> Option<Arc<crate::mm::MemObject>> {
        None
    }
    /// ftruncate/fchmod/fchown/futimens of a description with no place in
    /// the tree (a memfd); the others go to their location's node.
    fn setattr(&self, c: &node::Caller, attr: &node::SetAttr) -> SysResult<()> {
        let _ = (c, attr);
        Err(Errno::EINVAL)
    }
    /// The object itself, for code that needs its concrete type (epoll
    /// finding the epoll behind a descriptor, the socket calls their
    /// socket); None for files nobody looks into.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// An open file description (what `open` creates and `dup`/`fork` share).
pub struct OpenFile {
    pub ops: Box<dyn FileOps>,
    /// O_APPEND, O_NONBLOCK, O_RDONLY/O_WRONLY/O_RDWR …
    pub flags: AtomicU32,
    pub offset: Mutex<u64>,
    /// Where it was opened, for /proc/PID/fd and fchdir; None for pipes etc.
    pub location: Option<Location>,
    /// The lock table an OFD or flock lock was taken in through this
    /// description, so its last close releases them there.
    locks: std::sync::OnceLock<std::sync::Weak<lock::LockTable>>,
    /// The inotify registry to tell of the last close (IN_CLOSE_WRITE or
    /// IN_CLOSE_NOWRITE), for descriptions opened at a place in the tree.
    watches: std::sync::OnceLock<std::sync::Weak<inotify::Watches>>,
}

impl OpenFile {
    pub fn new(ops: Box<dyn FileOps>, flags: u32, location: Option<Location>) -> Arc<OpenFile> {
        Arc::new(OpenFile { ops, flags: AtomicU32::new(flags), offset: Mutex::new(0), location, locks: Default::default(), watches: Default::default() })
    }
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }
    pub fn nonblocking(&self) -> bool {
        self.flags() & libc::O_NONBLOCK as u32 != 0
    }
    pub fn readable(&self) -> bool {
        let acc = self.flags() & libc::O_ACCMODE as u32;
        acc == libc::O_RDONLY as u32 || acc == libc::O_RDWR as u32
    }
    /// Notes that a lock was taken in `table` through this description.
    pub fn took_lock(&self, table: &Arc<lock::LockTable>) {
        let _ = self.locks.set(Arc::downgrade(table));
    }
    /// Whether a lock was ever taken through this description.
    pub fn has_locks(&self) -> bool {
        self.locks.get().is_some()
    }
    /// Reports this description's last close to `watches`.
    pub fn report_close_to(&self, watches: &Arc<inotify::Watches>) {
        let _ = self.watches.set(Arc::downgrade(watches));
    }
    /// The file position (see [`FileOps::position`]).
    pub fn position(&self) -> SysResult<u64> {
        self.ops.position(self)
    }
    pub fn set_position(&self, pos: u64) -> SysResult<()> {
        self.ops.set_position(self, pos)
    }
    pub fn writable(&self) -> bool {
        let acc = self.flags() & libc::O_ACCMODE as u32;
        acc == libc::O_WRONLY as u32 || acc == libc::O_RDWR as u32
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if let Some(table) = self.locks.get().and_then(std::sync::Weak::upgrade) {
            table.release_file(self as *const OpenFile as usize);
        }
        self.ops.release();
        if let (Some(w), Some(loc)) = (self.watches.get().and_then(std::sync::Weak::upgrade), &self.location) {
            w.file_event(loc, if self.writable() { inotify::IN_CLOSE_WRITE } else { inotify::IN_CLOSE_NOWRITE });
        }
    }
}
