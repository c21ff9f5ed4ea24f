//! What every file system the sentry serves provides: [`Node`]s (its
//! inodes), cached by name in [`Dentry`]s, and the open-file types shared by
//! all of them (directories, `O_PATH` descriptors, re-opened descriptors).

use super::{DirEntry, FileOps, OpenFile};
use crate::{Kernel, SysResult};
use abi::types::Stat;
use abi::Errno;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// File type bits (S_IFMT) as u32.
pub const S_IFMT: u32 = libc::S_IFMT;
pub const S_IFDIR: u32 = libc::S_IFDIR;
pub const S_IFREG: u32 = libc::S_IFREG;
pub const S_IFLNK: u32 = libc::S_IFLNK;
pub const S_IFCHR: u32 = libc::S_IFCHR;
pub const S_IFIFO: u32 = libc::S_IFIFO;
pub const S_IFSOCK: u32 = libc::S_IFSOCK;
pub const S_IFBLK: u32 = libc::S_IFBLK;

/// Who is looking: procfs answers differently per caller (`/proc/self`)
/// and needs the kernel's process table. `kernel` is None only in unit
/// tests of the host file system.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub kernel: Option<&'a Arc<Kernel>>,
    pub tgid: i32,
    pub tid: i32,
}

impl<'a> Caller<'a> {
    pub fn new(kernel: &'a Arc<Kernel>, tgid: i32, tid: i32) -> Caller<'a> {
        Caller { kernel: Some(kernel), tgid, tid }
    }
    /// The kernel, or ENOENT when there is none (procfs in a unit test).
    pub fn kernel(&self) -> SysResult<&'a Arc<Kernel>> {
        self.kernel.ok_or(Errno::ENOENT)
    }
    /// The calling task's credentials (root for callers without a task:
    /// the sentry itself).
    pub fn creds(&self) -> crate::creds::Creds {
        self.kernel.and_then(|k| k.task(self.tid)).map(|t| t.creds.lock().unwrap().clone()).unwrap_or_default()
    }
    /// (fsuid, fsgid) new inodes get.
    pub fn owner(&self) -> (u32, u32) {
        let c = self.creds();
        (c.uid.fs, c.gid.fs)
    }
    /// The PID namespace the caller sees (the root one without a task).
    pub fn pidns(&self) -> crate::container::PidNs {
        self.kernel.and_then(|k| k.task(self.tid)).map(|t| t.tg.container.pidns).unwrap_or(crate::container::ROOT_PIDNS)
    }
    /// The calling task, for file systems that must block in open (fifos).
    pub fn task(&self) -> SysResult<Arc<crate::task::Task>> {
        self.kernel()?.task(self.tid).ok_or(Errno::ESRCH)
    }
}

/// What a symbolic link points at.
pub enum LinkTarget {
    /// A path, resolved like any other (absolute against the caller's root).
    Path(Vec<u8>),
    /// A "magic" link (`/proc/PID/cwd`, `/proc/PID/fd/N`): a place, not a
    /// string to parse.
    Location(super::Location),
    /// A magic link to an open file that has no place in the tree (a pipe).
    File(Arc<OpenFile>),
}

/// An inode of one of the sentry's file systems.
pub trait Node: Send + Sync {
    /// The S_IFMT bits; must be cheap (resolution asks at every step).
    fn kind(&self) -> u32;
    fn stat(&self, c: &Caller) -> SysResult<Stat>;
    fn lookup(&self, c: &Caller, name: &[u8]) -> SysResult<Arc<dyn Node>> {
        let _ = (c, name);
        Err(Errno::ENOTDIR)
    }
    /// Entries other than "." and "..".
    fn readdir(&self, c: &Caller) -> SysResult<Vec<DirEntry>> {
        let _ = c;
        Err(Errno::ENOTDIR)
    }
    fn readlink(&self, c: &Caller) -> SysResult<LinkTarget> {
        let _ = c;
        Err(Errno::EINVAL)
    }
    /// Opens a non-directory (directories are opened by the VFS).
    fn open(&self, c: &Caller, flags: u32) -> SysResult<Box<dyn FileOps>> {
        let _ = (c, flags);
        Err(Errno::ENXIO)
    }
    /// Creates a regular file `name` in this directory and opens it.
    fn create(&self, c: &Caller, name: &[u8], flags: u32, mode: u32) -> SysResult<(Arc<dyn Node>, Box<dyn FileOps>)> {
        let _ = (c, name, flags, mode);
        Err(Errno::EACCES)
    }
    /// Whether a child, once looked up, stays valid (procfs children come
    /// and go with processes, so they are looked up every time).
    fn cache_children(&self) -> bool {
        true
    }

    // The write side. The VFS has already refused read-only mounts
    // (EROFS) and resolved `name` in this directory; file systems that
    // cannot change keep the defaults (EPERM, as Linux's procfs answers).

    /// Creates a directory `name`.
    fn mkdir(&self, c: &Caller, name: &[u8], mode: u32) -> SysResult<()> {
        let _ = (c, name, mode);
        Err(Errno::EPERM)
    }
    /// Creates a non-directory, non-symlink inode: `mode` carries the type
    /// (S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK) and `rdev` the device.
    fn mknod(&self, c: &Caller, name: &[u8], mode: u32, rdev: u64) -> SysResult<()> {
        let _ = (c, name, mode, rdev);
        Err(Errno::EPERM)
    }
    fn symlink(&self, c: &Caller, name: &[u8], target: &[u8]) -> SysResult<()> {
        let _ = (c, name, target);
        Err(Errno::EPERM)
    }
    /// Makes `name` a new hard link to `target` (EXDEV when `target` is
    /// not of this file system).
    fn link(&self, c: &Caller, name: &[u8], target: &Arc<dyn Node>) -> SysResult<()> {
        let _ = (c, name, target);
        Err(Errno::EPERM)
    }
    /// Removes the non-directory `name`.
    fn unlink(&self, c: &Caller, name: &[u8]) -> SysResult<()> {
        let _ = (c, name);
        Err(Errno::EPERM)
    }
    /// Removes the empty directory `name`.
    fn rmdir(&self, c: &Caller, name: &[u8]) -> SysResult<()> {
        let _ = (c, name);
        Err(Errno::EPERM)
    }
    /// Moves `old` of this directory to `new` of `new_dir` (same file
    /// system, else EXDEV). `flags` are renameat2's RENAME_* bits; the
    /// VFS has already checked that a directory is not moved into itself.
    fn rename(&self, c: &Caller, old: &[u8], new_dir: &Arc<dyn Node>, new: &[u8], flags: u32) -> SysResult<()> {
        let _ = (c, old, new_dir, new, flags);
        Err(Errno::EPERM)
    }
    /// chmod, chown, truncate, utimes.
    fn setattr(&self, c: &Caller, attr: &SetAttr) -> SysResult<()> {
        let _ = (c, attr);
        Err(Errno::EPERM)
    }
    /// An unnamed regular file in this directory's file system (O_TMPFILE).
    fn tmpfile(&self, c: &Caller, mode: u32) -> SysResult<Arc<dyn Node>> {
        let _ = (c, mode);
        Err(Errno::EOPNOTSUPP)
    }
    /// For downcasting to a file system's own node type (link, rename).
    fn as_any(&self) -> Option<&dyn Any> {
        None
    }
    /// For a socket inode (`mknod S_IFSOCK`, or `bind` of a unix socket):
    /// the slot where the socket layer keeps the bound endpoint. `connect`
    /// resolves the path, then reads this slot; `bind` creates the inode
    /// with `mknod(S_IFSOCK)` (EADDRINUSE on EEXIST) and stores its
    /// endpoint here. None for every other inode (ECONNREFUSED).
    fn socket_slot(&self) -> Option<&SocketSlot> {
        None
    }
}

/// What a bound unix socket leaves in its inode; the socket layer owns the
/// concrete type and downcasts (`Arc::downcast`).
pub type SocketSlot = Mutex<Option<Arc<dyn Any + Send + Sync>>>;

/// A time argument of utimensat, resolved by the system call layer
/// (UTIME_NOW already replaced by the current time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Time {
    pub sec: i64,
    pub nsec: i64,
}

impl Time {
    pub fn now() -> Time {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Time { sec: d.as_secs() as i64, nsec: d.subsec_nanos() as i64 }
    }
}

/// Attribute changes: each `Some` is applied; ctime is updated by the file
/// system whenever anything changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    /// Permission bits only (07777).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<Time>,
    pub mtime: Option<Time>,
}

/// A node in the sentry's name cache: a name, its parent and its inode.
/// Parents are held strongly (a location keeps its whole path alive, so
/// `..` and `Location::path` always work); children weakly, so the cache
/// never holds host descriptors nobody uses. Name and parent change when
/// rename moves the dentry, so a cwd or an open file follows its inode.
pub struct Dentry {
    place: Mutex<(Vec<u8>, Option<Arc<Dentry>>)>,
    pub node: Arc<dyn Node>,
    children: Mutex<HashMap<Vec<u8>, Weak<Dentry>>>,
}

impl Dentry {
    pub fn new(name: &[u8], parent: Option<Arc<Dentry>>, node: Arc<dyn Node>) -> Arc<Dentry> {
        Arc::new(Dentry { place: Mutex::new((name.to_vec(), parent)), node, children: Mutex::new(HashMap::new()) })
    }

    pub fn name(&self) -> Vec<u8> {
        self.place.lock().unwrap().0.clone()
    }

    pub fn parent(&self) -> Option<Arc<Dentry>> {
        self.place.lock().unwrap().1.clone()
    }

    /// The child called `name`, from the cache or looked up.
    pub fn child(self: &Arc<Self>, c: &Caller, name: &[u8]) -> SysResult<Arc<Dentry>> {
        let cache = self.node.cache_children();
        if cache {
            if let Some(d) = self.children.lock().unwrap().get(name).and_then(Weak::upgrade) {
                return Ok(d);
            }
        }
        let node = self.node.lookup(c, name)?;
        let d = Dentry::new(name, Some(self.clone()), node);
        if cache {
            let mut ch = self.children.lock().unwrap();
            ch.retain(|_, w| w.strong_count() > 0);
            // Another thread may have raced us; keep whichever is cached.
            if let Some(existing) = ch.get(name).and_then(Weak::upgrade) {
                return Ok(existing);
            }
            ch.insert(name.to_vec(), Arc::downgrade(&d));
        }
        Ok(d)
    }

    /// Makes `d` the cached child `name` (mount points that the host lacks).
    pub fn adopt(&self, name: &[u8], d: &Arc<Dentry>) {
        self.children.lock().unwrap().insert(name.to_vec(), Arc::downgrade(d));
    }

    /// Drops the cached child `name` (after unlink, rmdir, or a rename
    /// replaced it): the next lookup asks the file system again.
    pub fn forget(&self, name: &[u8]) {
        self.children.lock().unwrap().remove(name);
    }

    /// The cached child `name`, if any (no lookup).
    pub fn cached(&self, name: &[u8]) -> Option<Arc<Dentry>> {
        self.children.lock().unwrap().get(name).and_then(Weak::upgrade)
    }

    /// After a rename: `moved` (the cached child `old` of `from`, if any)
    /// becomes child `new` of `to`; whatever `to` cached as `new` is dropped.
    pub fn moved(from: &Arc<Dentry>, old: &[u8], to: &Arc<Dentry>, new: &[u8]) {
        let moved = from.children.lock().unwrap().remove(old).and_then(|w| w.upgrade());
        to.children.lock().unwrap().remove(new);
        if let Some(m) = moved {
            *m.place.lock().unwrap() = (new.to_vec(), Some(to.clone()));
            to.children.lock().unwrap().insert(new.to_vec(), Arc::downgrade(&m));
        }
    }

    /// True when `self` is `other` or lies below it.
    pub fn is_within(self: &Arc<Self>, other: &Arc<Dentry>) -> bool {
        let mut cur = Some(self.clone());
        while let Some(d) = cur {
            if Arc::ptr_eq(&d, other) {
                return true;
            }
            cur = d.parent();
        }
        false
    }
}

/// DT_* for an S_IFMT value.
pub fn dtype(kind: u32) -> u8 {
    match kind & S_IFMT {
        libc::S_IFDIR => libc::DT_DIR,
        libc::S_IFREG => libc::DT_REG,
        libc::S_IFLNK => libc::DT_LNK,
        libc::S_IFCHR => libc::DT_CHR,
        libc::S_IFBLK => libc::DT_BLK,
        libc::S_IFIFO => libc::DT_FIFO,
        libc::S_IFSOCK => libc::DT_SOCK,
        _ => libc::DT_UNKNOWN,
    }
}

/// A synthetic stat for sentry-generated inodes.
pub fn synthetic_stat(dev: u64, ino: u64, mode: u32, nlink: u64, size: i64, time: i64) -> Stat {
    Stat {
        st_dev: dev,
        st_ino: ino,
        st_nlink: nlink,
        st_mode: mode,
        st_blksize: 4096,
        st_size: size,
        st_atime: time,
        st_mtime: time,
        st_ctime: time,
        ..Default::default()
    }
}

/// An open directory. The listing is taken when the offset is 0 (open, or
/// rewinddir) and served from that snapshot; the offset counts entries, so
/// `d_off` values can be passed back to lseek.
pub struct DirFile {
    node: Arc<dyn Node>,
    self_ino: u64,
    parent_ino: u64,
    kernel: Weak<Kernel>,
    tgid: i32,
    tid: i32,
    snapshot: Mutex<Vec<DirEntry>>,
}

impl DirFile {
    pub fn new(c: &Caller, node: Arc<dyn Node>, self_ino: u64, parent_ino: u64) -> DirFile {
        DirFile {
            node,
            self_ino,
            parent_ino,
            kernel: c.kernel.map(Arc::downgrade).unwrap_or_default(),
            tgid: c.tgid,
            tid: c.tid,
            snapshot: Mutex::new(Vec::new()),
        }
    }
}

impl FileOps for DirFile {
    fn read(&self, _t: &crate::task::TaskCtx, _f: &OpenFile, _buf: &mut [u8]) -> SysResult<usize> {
        Err(Errno::EISDIR)
    }
    fn read_at(&self, _t: Option<&crate::task::TaskCtx>, _buf: &mut [u8], _off: u64) -> SysResult<usize> {
        Err(Errno::EISDIR)
    }
    fn stat(&self) -> SysResult<Stat> {
        let k = self.kernel.upgrade();
        let c = Caller { kernel: k.as_ref(), tgid: self.tgid, tid: self.tid };
        self.node.stat(&c)
    }
    fn seek(&self, file: &OpenFile, offset: i64, whence: i32) -> SysResult<u64> {
        let mut off = file.offset.lock().unwrap();
        let new = match whence {
            libc::SEEK_SET => offset,
            libc::SEEK_CUR => (*off as i64).checked_add(offset).ok_or(Errno::EINVAL)?,
            _ => return Err(Errno::EINVAL),
        };
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        *off = new as u64;
        Ok(*off)
    }
    /// Entries from the description's offset on.
    fn getdents(&self, file: &OpenFile) -> SysResult<Vec<DirEntry>> {
        let off = *file.offset.lock().unwrap() as usize;
        let mut snap = self.snapshot.lock().unwrap();
        if off == 0 {
            let k = self.kernel.upgrade();
            let c = Caller { kernel: k.as_ref(), tgid: self.tgid, tid: self.tid };
            let mut v = vec![
                DirEntry { ino: self.self_ino, kind: libc::DT_DIR, name: b".".to_vec() },
                DirEntry { ino: self.parent_ino, kind: libc::DT_DIR, name: b"..".to_vec() },
            ];
            v.extend(self.node.readdir(&c)?);
            *snap = v;
        }
        Ok(snap.get(off..).map(|s| s.to_vec()).unwrap_or_default())
    }
}

/// An `O_PATH` descriptor: names a place (for *at calls, fchdir, fstat)
/// but allows no I/O.
pub struct PathFile {
    pub stat: Box<dyn Fn() -> SysResult<Stat> + Send + Sync>,
}

impl FileOps for PathFile {
    fn read(&self, _t: &crate::task::TaskCtx, _f: &OpenFile, _b: &mut [u8]) -> SysResult<usize> {
        Err(Errno::EBADF)
    }
    fn write(&self, _t: &crate::task::TaskCtx, _f: &OpenFile, _b: &[u8]) -> SysResult<usize> {
        Err(Errno::EBADF)
    }
    fn read_at(&self, _t: Option<&crate::task::TaskCtx>, _b: &mut [u8], _o: u64) -> SysResult<usize> {
        Err(Errno::EBADF)
    }
    fn write_at(&self, _t: &crate::task::TaskCtx, _b: &[u8], _o: u64) -> SysResult<usize> {
        Err(Errno::EBADF)
    }
    fn seek(&self, _f: &OpenFile, _o: i64, _w: i32) -> SysResult<u64> {
        Err(Errno::EBADF)
    }
    fn getdents(&self, _f: &OpenFile) -> SysResult<Vec<DirEntry>> {
        Err(Errno::EBADF)
    }
    fn ioctl(&self, _t: &crate::task::TaskCtx, _f: &OpenFile, _c: u64, _a: u64) -> SysResult<u64> {
        Err(Errno::EBADF)
    }
    fn stat(&self) -> SysResult<Stat> {
        (self.stat)()
    }
}

/// The inode behind a magic link to an open file with no place in the
/// tree (`/proc/self/fd/0` when fd 0 is a pipe).
pub struct OpenFileNode(pub Arc<OpenFile>);

impl Node for OpenFileNode {
    fn kind(&self) -> u32 {
        self.0.ops.stat().map(|s| s.st_mode & S_IFMT).unwrap_or(S_IFREG)
    }
    fn stat(&self, _c: &Caller) -> SysResult<Stat> {
        self.0.ops.stat()
    }
    fn open(&self, _c: &Caller, _flags: u32) -> SysResult<Box<dyn FileOps>> {
        Ok(Box::new(SharedFile(self.0.clone())))
    }
}

/// Opening `/proc/self/fd/N` for a pipe or a host stdio file: Linux opens
/// the same inode afresh; the sentry shares the description instead (same
/// offset), which for pipes and terminals is indistinguishable.
pub struct SharedFile(pub Arc<OpenFile>);

impl FileOps for SharedFile {
    fn read(&self, t: &crate::task::TaskCtx, _f: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        self.0.ops.read(t, &self.0, buf)
    }
    fn write(&self, t: &crate::task::TaskCtx, _f: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        self.0.ops.write(t, &self.0, buf)
    }
    fn read_at(&self, t: Option<&crate::task::TaskCtx>, buf: &mut [u8], off: u64) -> SysResult<usize> {
        self.0.ops.read_at(t, buf, off)
    }
    fn write_at(&self, t: &crate::task::TaskCtx, buf: &[u8], off: u64) -> SysResult<usize> {
        self.0.ops.write_at(t, buf, off)
    }
    fn seek(&self, _f: &OpenFile, offset: i64, whence: i32) -> SysResult<u64> {
        self.0.ops.seek(&self.0, offset, whence)
    }
    fn stat(&self) -> SysResult<Stat> {
        self.0.ops.stat()
    }
    fn getdents(&self, _f: &OpenFile) -> SysResult<Vec<DirEntry>> {
        self.0.ops.getdents(&self.0)
    }
    fn ioctl(&self, t: &crate::task::TaskCtx, _f: &OpenFile, cmd: u64, arg: u64) -> SysResult<u64> {
        self.0.ops.ioctl(t, &self.0, cmd, arg)
    }
    fn readiness(&self) -> u32 {
        self.0.ops.readiness()
    }
    fn wait_queue(&self) -> Option<&crate::wait::WaitQueue> {
        self.0.ops.wait_queue()
    }
    fn host_fd(&self) -> Option<i32> {
        self.0.ops.host_fd()
    }
}

/// A symbolic link with fixed text (`/dev/fd`, `/dev/stdin`).
pub struct StaticLink {
    pub target: Vec<u8>,
    pub dev: u64,
    pub ino: u64,
}

impl Node for StaticLink {
    fn kind(&self) -> u32 {
        S_IFLNK
    }
    fn stat(&self, _c: &Caller) -> SysResult<Stat> {
        Ok(synthetic_stat(self.dev, self.ino, S_IFLNK | 0o777, 1, self.target.len() as i64, 0))
    }
    fn readlink(&self, _c: &Caller) -> SysResult<LinkTarget> {
        Ok(LinkTarget::Path(self.target.clone()))
    }
}

/// An empty read-only directory (a mount point the host root lacks).
pub struct EmptyDir {
    pub dev: u64,
    pub ino: u64,
}

impl Node for EmptyDir {
    fn kind(&self) -> u32 {
        S_IFDIR
    }
    fn stat(&self, _c: &Caller) -> SysResult<Stat> {
        Ok(synthetic_stat(self.dev, self.ino, S_IFDIR | 0o555, 2, 0, 0))
    }
    fn lookup(&self, _c: &Caller, _name: &[u8]) -> SysResult<Arc<dyn Node>> {
        Err(Errno::ENOENT)
    }
    fn readdir(&self, _c: &Caller) -> SysResult<Vec<DirEntry>> {
        Ok(Vec::new())
    }
}

/// A read-only file whose whole content is produced when it is opened
/// (procfs files, as Linux's seq_file produces them on the first read).
pub struct BytesFile {
    pub data: Vec<u8>,
    pub stat: Stat,
}

impl FileOps for BytesFile {
    fn read(&self, _t: &crate::task::TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        let mut off = file.offset.lock().unwrap();
        let n = self.read_at(None, buf, *off)?;
        *off += n as u64;
        Ok(n)
    }
    fn write(&self, _t: &crate::task::TaskCtx, _f: &OpenFile, _b: &[u8]) -> SysResult<usize> {
        Err(Errno::EACCES)
    }
    fn read_at(&self, _t: Option<&crate::task::TaskCtx>, buf: &mut [u8], offset: u64) -> SysResult<usize> {
        let start = (offset as usize).min(self.data.len());
        let n = buf.len().min(self.data.len() - start);
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        Ok(n)
    }
    fn seek(&self, file: &OpenFile, offset: i64, whence: i32) -> SysResult<u64> {
        seek_in(file, offset, whence, self.data.len() as u64)
    }
    fn stat(&self) -> SysResult<Stat> {
        Ok(self.stat)
    }
}

/// lseek arithmetic for a file of `size` bytes (SEEK_SET/CUR/END).
pub fn seek_in(file: &OpenFile, offset: i64, whence: i32, size: u64) -> SysResult<u64> {
    let mut off = file.offset.lock().unwrap();
    let base: i64 = match whence {
        libc::SEEK_SET => 0,
        libc::SEEK_CUR => *off as i64,
        libc::SEEK_END => size as i64,
        _ => return Err(Errno::EINVAL),
    };
    let new = base.checked_add(offset).ok_or(Errno::EINVAL)?;
    if new < 0 {
        return Err(Errno::EINVAL);
    }
    *off = new as u64;
    Ok(*off)
}
