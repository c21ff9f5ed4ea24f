//! tmpfs: a file system that lives in the sentry's memory. File data are
//! [`MemObject`]s (pages of the memory file), so `mmap(MAP_SHARED)` of a
//! tmpfs file maps the very pages read and write use. It serves /dev/shm,
//! memfd_create, O_TMPFILE and the upper layer of the copy-on-write root
//! (see overlay.rs, which also uses the whiteout set kept per directory).

use super::node::{dtype, Caller, LinkTarget, Node, SetAttr, SocketSlot, Time, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};
use super::pipe::Fifo;
use super::{DirEntry, FileOps, OpenFile};
use crate::mm::MemObject;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use memfile::MemoryFile;
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Largest file tmpfs accepts (Linux's MAX_LFS_FILESIZE).
const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// One tmpfs instance (one mount, one st_dev).
pub struct TmpFs {
    pub dev: u64,
    next_ino: AtomicU64,
    memfile: Arc<MemoryFile>,
    /// Serialises operations that lock two directories (rename, rmdir):
    /// single-directory operations hold one lock at a time, so with this
    /// held no lock order can cross.
    topology: Mutex<()>,
}

/// Inode metadata.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    /// Type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Links from directories (directories compute theirs).
    pub nlink: u64,
    pub size: u64,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
    pub rdev: u64,
}

/// A directory's entries, and what the overlay keeps in an upper directory.
#[derive(Default)]
pub struct TmpDir {
    pub entries: BTreeMap<Vec<u8>, Arc<TmpNode>>,
    /// Names deleted from the lower layer (overlay only).
    pub whiteouts: BTreeSet<Vec<u8>>,
    /// The lower directory of the same name is hidden (overlay only).
    pub opaque: bool,
    /// Set once removed: creating in a removed directory fails (ENOENT).
    pub dead: bool,
}

pub enum Body {
    Dir(Mutex<TmpDir>),
    Reg(Arc<MemObject>),
    Link(Vec<u8>),
    Fifo(Arc<Fifo>),
    Sock(SocketSlot),
    /// Character or block device; `Meta::rdev` says which.
    Dev,
}

pub struct TmpNode {
    pub fs: Arc<TmpFs>,
    me: Weak<TmpNode>,
    pub ino: u64,
    kind: u32,
    pub meta: Mutex<Meta>,
    pub body: Body,
}

impl TmpFs {
    /// A new instance; inode numbers start at `ino_base` (the overlay's
    /// upper layer starts high, clear of the host's numbers).
    pub fn new(memfile: &Arc<MemoryFile>, dev: u64, ino_base: u64) -> Arc<TmpFs> {
        Arc::new(TmpFs { dev, next_ino: AtomicU64::new(ino_base.max(1)), memfile: memfile.clone(), topology: Mutex::new(()) })
    }

    /// The root directory, owned by root.
    pub fn new_root(self: &Arc<Self>, mode: u32) -> Arc<TmpNode> {
        self.new_node(S_IFDIR | (mode & 0o7777), (0, 0), 0)
    }

    /// A new inode of type and mode `mode` (not linked anywhere yet).
    pub fn new_node(self: &Arc<Self>, mode: u32, owner: (u32, u32), rdev: u64) -> Arc<TmpNode> {
        let ino = self.next_ino.fetch_add(1, Ordering::Relaxed);
        self.new_node_ino(mode, owner, rdev, ino)
    }

    /// A new inode with a given number (an overlay copy-up keeps the
    /// lower file's, so fstat and stat agree and sqlite does not think its
    /// database moved).
    pub fn new_node_ino(self: &Arc<Self>, mode: u32, owner: (u32, u32), rdev: u64, ino: u64) -> Arc<TmpNode> {
        let kind = mode & S_IFMT;
        let body = match kind {
            S_IFDIR => Body::Dir(Mutex::new(TmpDir::default())),
            S_IFREG => Body::Reg(MemObject::new(&self.memfile)),
            S_IFIFO => Body::Fifo(Fifo::new(ino)),
            S_IFSOCK => Body::Sock(Mutex::new(None)),
            _ => Body::Dev,
        };
        self.node_with(kind, mode, owner, rdev, body, ino)
    }

    fn new_symlink(self: &Arc<Self>, target: &[u8], owner: (u32, u32)) -> Arc<TmpNode> {
        let ino = self.next_ino.fetch_add(1, Ordering::Relaxed);
        let n = self.node_with(S_IFLNK, S_IFLNK | 0o777, owner, 0, Body::Link(target.to_vec()), ino);
        n.meta.lock().unwrap().size = target.len() as u64;
        n
    }

    fn node_with(self: &Arc<Self>, kind: u32, mode: u32, owner: (u32, u32), rdev: u64, body: Body, ino: u64) -> Arc<TmpNode> {
        let now = Time::now();
        let meta = Meta { mode, uid: owner.0, gid: owner.1, nlink: 0, size: 0, atime: now, mtime: now, ctime: now, rdev };
        Arc::new_cyclic(|me| TmpNode { fs: self.clone(), me: me.clone(), ino, kind, meta: Mutex::new(meta), body })
    }

    /// Bytes of file data held (for statfs).
    pub fn memfile(&self) -> &Arc<MemoryFile> {
        &self.memfile
    }
}

fn valid_name(name: &[u8]) -> SysResult<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl TmpNode {
    pub fn arc(&self) -> Arc<TmpNode> {
        self.me.upgrade().expect("tmpfs node in use")
    }

    pub fn dir(&self) -> SysResult<&Mutex<TmpDir>> {
        match &self.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    pub fn mem(&self) -> Option<&Arc<MemObject>> {
        match &self.body {
            Body::Reg(m) => Some(m),
            _ => None,
        }
    }

    pub fn size(&self) -> u64 {
        self.meta.lock().unwrap().size
    }

    fn touch_dir(&self) {
        let now = Time::now();
        let mut m = self.meta.lock().unwrap();
        m.mtime = now;
        m.ctime = now;
    }

    /// Links `node` as `name` (EEXIST if taken).
    pub fn insert(&self, name: &[u8], node: Arc<TmpNode>) -> SysResult<()> {
        valid_name(name)?;
        {
            let mut d = self.dir()?.lock().unwrap();
            if d.dead {
                return Err(Errno::ENOENT);
            }
            if d.entries.contains_key(name) {
                return Err(Errno::EEXIST);
            }
            node.meta.lock().unwrap().nlink += 1;
            d.entries.insert(name.to_vec(), node);
        }
        self.touch_dir();
        Ok(())
    }

    /// The entry `name`, if present.
    pub fn get(&self, name: &[u8]) -> Option<Arc<TmpNode>> {
        self.dir().ok()?.lock().unwrap().entries.get(name).cloned()
    }

    /// Unlinks `name` whatever it is (the overlay removes upper directories
    /// that hold nothing but whiteouts this way).
    pub fn remove_entry(&self, name: &[u8]) -> SysResult<Arc<TmpNode>> {
        let n = self.dir()?.lock().unwrap().entries.remove(name).ok_or(Errno::ENOENT)?;
        drop_link(&n);
        self.touch_dir();
        Ok(n)
    }

    /// Writes `data` at `off`, growing the file.
    pub fn write_data(&self, off: u64, data: &[u8]) -> SysResult<usize> {
        let mem = self.mem().ok_or(Errno::EINVAL)?;
        let end = off.checked_add(data.len() as u64).filter(|&e| e <= MAX_FILE_SIZE).ok_or(Errno::EFBIG)?;
        mem.write_at(off, data)?;
        let now = Time::now();
        let mut m = self.meta.lock().unwrap();
        m.size = m.size.max(end);
        m.mtime = now;
        m.ctime = now;
        Ok(data.len())
    }

    /// Reads at `off`, bounded by the size.
    pub fn read_data(&self, off: u64, buf: &mut [u8]) -> usize {
        let Some(mem) = self.mem() else { return 0 };
        let size = self.size();
        if off >= size {
            return 0;
        }
        let n = (buf.len() as u64).min(size - off) as usize;
        mem.read_at(off, &mut buf[..n]);
        n
    }

    fn set_size(&self, len: u64) -> SysResult<()> {
        let mem = self.mem().ok_or(Errno::EINVAL)?;
        if len > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let mut m = self.meta.lock().unwrap();
        if len < m.size {
            mem.truncate(len);
        }
        m.size = len;
        let now = Time::now();
        m.mtime = now;
        m.ctime = now;
        Ok(())
    }

    /// Opens this inode (not a directory).
    pub fn open_node(&self, c: &Caller, flags: u32) -> SysResult<Box<dyn FileOps>> {
        match &self.body {
            Body::Reg(_) => {
                if flags as i32 & libc::O_TRUNC != 0 && flags as i32 & libc::O_ACCMODE != libc::O_RDONLY {
                    self.set_size(0)?;
                }
                Ok(Box::new(TmpFile { node: self.arc() }))
            }
            Body::Fifo(f) => f.open(c, flags),
            Body::Dev if self.kind == S_IFCHR => super::dev::open_rdev(c, flags, self.stat_now()),
            Body::Sock(_) => Err(Errno::ENXIO),
            _ => Err(Errno::ENXIO),
        }
    }

    fn nlink(&self) -> u64 {
        match &self.body {
            Body::Dir(d) => {
                let d = d.lock().unwrap();
                if d.dead {
                    return 0;
                }
                2 + d.entries.values().filter(|n| n.kind == S_IFDIR).count() as u64
            }
            _ => self.meta.lock().unwrap().nlink,
        }
    }

    pub fn stat_now(&self) -> Stat {
        let nlink = self.nlink();
        let m = *self.meta.lock().unwrap();
        let blocks = self.mem().map(|o| o.resident_bytes() / 512).unwrap_or(0);
        let size = if self.kind == S_IFDIR { 4096 } else { m.size };
        Stat {
            st_dev: self.fs.dev,
            st_ino: self.ino,
            st_nlink: nlink,
            st_mode: m.mode,
            st_uid: m.uid,
            st_gid: m.gid,
            st_rdev: m.rdev,
            st_size: size as i64,
            st_blksize: 4096,
            st_blocks: blocks as i64,
            st_atime: m.atime.sec,
            st_atime_nsec: m.atime.nsec,
            st_mtime: m.mtime.sec,
            st_mtime_nsec: m.mtime.nsec,
            st_ctime: m.ctime.sec,
            st_ctime_nsec: m.ctime.nsec,
            ..Default::default()
        }
    }

    /// Copies `meta`'s ownership, permissions and times (overlay copy-up).
    pub fn copy_meta_from(&self, st: &Stat) {
        let mut m = self.meta.lock().unwrap();
        m.mode = (m.mode & S_IFMT) | (st.st_mode & 0o7777);
        m.uid = st.st_uid;
        m.gid = st.st_gid;
        m.atime = Time { sec: st.st_atime, nsec: st.st_atime_nsec };
        m.mtime = Time { sec: st.st_mtime, nsec: st.st_mtime_nsec };
    }

    fn create_child(&self, c: &Caller, name: &[u8], mode: u32, rdev: u64) -> SysResult<Arc<TmpNode>> {
        valid_name(name)?;
        let n = self.fs.new_node(mode, c.owner(), rdev);
        self.insert(name, n.clone())?;
        Ok(n)
    }
}

fn drop_link(n: &TmpNode) {
    if let Body::Dir(d) = &n.body {
        d.lock().unwrap().dead = true;
    }
    let mut m = n.meta.lock().unwrap();
    m.nlink = m.nlink.saturating_sub(1);
    m.ctime = Time::now();
}

fn as_tmp(n: &Arc<dyn Node>) -> SysResult<Arc<TmpNode>> {
    n.as_any().and_then(|a| a.downcast_ref::<TmpNode>()).map(|t| t.arc()).ok_or(Errno::EXDEV)
}

impl Node for TmpNode {
    fn kind(&self) -> u32 {
        self.kind
    }
    fn stat(&self, _c: &Caller) -> SysResult<Stat> {
        Ok(self.stat_now())
    }
    fn lookup(&self, _c: &Caller, name: &[u8]) -> SysResult<Arc<dyn Node>> {
        let d = self.dir()?.lock().unwrap();
        d.entries.get(name).map(|n| n.clone() as Arc<dyn Node>).ok_or(Errno::ENOENT)
    }
    fn readdir(&self, _c: &Caller) -> SysResult<Vec<DirEntry>> {
        let d = self.dir()?.lock().unwrap();
        Ok(d.entries.iter().map(|(name, n)| DirEntry { ino: n.ino, kind: dtype(n.kind), name: name.clone() }).collect())
    }
    fn readlink(&self, _c: &Caller) -> SysResult<LinkTarget> {
        match &self.body {
            Body::Link(t) => Ok(LinkTarget::Path(t.clone())),
            _ => Err(Errno::EINVAL),
        }
    }
    fn open(&self, c: &Caller, flags: u32) -> SysResult<Box<dyn FileOps>> {
        self.open_node(c, flags)
    }
    fn create(&self, c: &Caller, name: &[u8], flags: u32, mode: u32) -> SysResult<(Arc<dyn Node>, Box<dyn FileOps>)> {
        let n = self.create_child(c, name, S_IFREG | (mode & 0o7777), 0)?;
        let ops = n.open_node(c, flags)?;
        Ok((n, ops))
    }
    fn mkdir(&self, c: &Caller, name: &[u8], mode: u32) -> SysResult<()> {
        self.create_child(c, name, S_IFDIR | (mode & 0o7777), 0).map(|_| ())
    }
    fn mknod(&self, c: &Caller, name: &[u8], mode: u32, rdev: u64) -> SysResult<()> {
        match mode & S_IFMT {
            S_IFREG | S_IFIFO | S_IFSOCK | S_IFCHR | S_IFBLK => {}
            _ => return Err(Errno::EINVAL),
        }
        self.create_child(c, name, mode, rdev).map(|_| ())
    }
    fn symlink(&self, c: &Caller, name: &[u8], target: &[u8]) -> SysResult<()> {
        valid_name(name)?;
        let n = self.fs.new_symlink(target, c.owner());
        self.insert(name, n)
    }
    fn link(&self, _c: &Caller, name: &[u8], target: &Arc<dyn Node>) -> SysResult<()> {
        let t = as_tmp(target)?;
        if !Arc::ptr_eq(&t.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        if t.kind == S_IFDIR {
            return Err(Errno::EPERM);
        }
        // An unlinked file may be linked again only if it was an O_TMPFILE
        // (Linux refuses the others with ENOENT; we cannot tell them
        // apart, so both are allowed).
        self.insert(name, t.clone())?;
        t.meta.lock().unwrap().ctime = Time::now();
        Ok(())
    }
    fn unlink(&self, _c: &Caller, name: &[u8]) -> SysResult<()> {
        let mut d = self.dir()?.lock().unwrap();
        let n = d.entries.get(name).ok_or(Errno::ENOENT)?;
        if n.kind == S_IFDIR {
            return Err(Errno::EISDIR);
        }
        let n = d.entries.remove(name).expect("present");
        drop(d);
        drop_link(&n);
        self.touch_dir();
        Ok(())
    }
    fn rmdir(&self, _c: &Caller, name: &[u8]) -> SysResult<()> {
        let _g = self.fs.topology.lock().unwrap();
        let mut d = self.dir()?.lock().unwrap();
        let n = d.entries.get(name).ok_or(Errno::ENOENT)?;
        let child = n.dir().map_err(|_| Errno::ENOTDIR)?;
        if !child.lock().unwrap().entries.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        let n = d.entries.remove(name).expect("present");
        drop(d);
        drop_link(&n);
        self.touch_dir();
        Ok(())
    }
    fn rename(&self, _c: &Caller, old: &[u8], new_dir: &Arc<dyn Node>, new: &[u8], flags: u32) -> SysResult<()> {
        let to = as_tmp(new_dir)?;
        if !Arc::ptr_eq(&to.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        valid_name(new)?;
        let _g = self.fs.topology.lock().unwrap();
        let same = std::ptr::eq(self, &*to);
        let mut src = self.dir()?.lock().unwrap();
        let mut dst_guard = if same { None } else { Some(to.dir()?.lock().unwrap()) };
        let s = src.entries.get(old).cloned().ok_or(Errno::ENOENT)?;
        let d = {
            let dst: &TmpDir = dst_guard.as_deref().unwrap_or(&*src);
            if dst.dead {
                return Err(Errno::ENOENT);
            }
            dst.entries.get(new).cloned()
        };
        let exchange = flags & libc::RENAME_EXCHANGE != 0;
        match &d {
            None if exchange => return Err(Errno::ENOENT),
            None => {}
            Some(_) if exchange => {}
            Some(d) => {
                if flags & libc::RENAME_NOREPLACE != 0 {
                    return Err(Errno::EEXIST);
                }
                if Arc::ptr_eq(d, &s) {
                    return Ok(());
                }
                match (s.kind == S_IFDIR, d.kind == S_IFDIR) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !d.dir()?.lock().unwrap().entries.is_empty() => return Err(Errno::ENOTEMPTY),
                    _ => {}
                }
            }
        }
        if !exchange {
            src.entries.remove(old);
        }
        match dst_guard.as_mut() {
            Some(g) => g.entries.insert(new.to_vec(), s.clone()),
            None => src.entries.insert(new.to_vec(), s.clone()),
        };
        let now = Time::now();
        match (&d, exchange) {
            (Some(d), true) => {
                src.entries.insert(old.to_vec(), d.clone());
                d.meta.lock().unwrap().ctime = now;
            }
            (Some(d), false) => drop_link(d),
            _ => {}
        }
        s.meta.lock().unwrap().ctime = now;
        drop(dst_guard);
        drop(src);
        self.touch_dir();
        if !same {
            to.touch_dir();
        }
        Ok(())
    }
    fn setattr(&self, _c: &Caller, a: &SetAttr) -> SysResult<()> {
        if let Some(len) = a.size {
            if self.kind == S_IFDIR {
                return Err(Errno::EISDIR);
            }
            if self.kind != S_IFREG {
                return Err(Errno::EINVAL);
            }
            self.set_size(len)?;
        }
        let mut m = self.meta.lock().unwrap();
        if let Some(mode) = a.mode {
            m.mode = (m.mode & S_IFMT) | (mode & 0o7777);
        }
        if let Some(u) = a.uid {
            m.uid = u;
        }
        if let Some(g) = a.gid {
            m.gid = g;
        }
        if let Some(t) = a.atime {
            m.atime = t;
        }
        if let Some(t) = a.mtime {
            m.mtime = t;
        }
        m.ctime = Time::now();
        Ok(())
    }
    fn tmpfile(&self, c: &Caller, mode: u32) -> SysResult<Arc<dyn Node>> {
        self.dir()?;
        Ok(self.fs.new_node(S_IFREG | (mode & 0o7777), c.owner(), 0))
    }
    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
    fn socket_slot(&self) -> Option<&SocketSlot> {
        match &self.body {
            Body::Sock(s) => Some(s),
            _ => None,
        }
    }
}

/// An open tmpfs regular file.
pub struct TmpFile {
    pub node: Arc<TmpNode>,
}

impl TmpFile {
    /// A tmpfs file linked nowhere (memfd_create).
    pub fn anonymous(fs: &Arc<TmpFs>, mode: u32) -> TmpFile {
        TmpFile { node: fs.new_node(S_IFREG | (mode & 0o7777), (0, 0), 0) }
    }
}

impl FileOps for TmpFile {
    fn read(&self, _t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        let mut off = file.offset.lock().unwrap();
        let n = self.node.read_data(*off, buf);
        *off += n as u64;
        Ok(n)
    }
    fn write(&self, _t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        let mut off = file.offset.lock().unwrap();
        if file.flags() & libc::O_APPEND as u32 != 0 {
            *off = self.node.size();
        }
        let n = self.node.write_data(*off, buf)?;
        *off += n as u64;
        Ok(n)
    }
    fn read_at(&self, _t: Option<&TaskCtx>, buf: &mut [u8], offset: u64) -> SysResult<usize> {
        Ok(self.node.read_data(offset, buf))
    }
    fn write_at(&self, _t: &TaskCtx, buf: &[u8], offset: u64) -> SysResult<usize> {
        self.node.write_data(offset, buf)
    }
    fn seek(&self, file: &OpenFile, offset: i64, whence: i32) -> SysResult<u64> {
        let size = self.node.size();
        match whence {
            // The whole file counts as data: holes read as zeros anyway.
            libc::SEEK_DATA | libc::SEEK_HOLE => {
                if offset < 0 || offset as u64 >= size {
                    return Err(Errno::ENXIO);
                }
                let at = if whence == libc::SEEK_DATA { offset as u64 } else { size };
                *file.offset.lock().unwrap() = at;
                Ok(at)
            }
            _ => super::node::seek_in(file, offset, whence, size),
        }
    }
    fn stat(&self) -> SysResult<Stat> {
        Ok(self.node.stat_now())
    }
    fn memory_object(&self) -> Option<Arc<MemObject>> {
        self.node.mem().cloned()
    }
    fn setattr(&self, c: &Caller, a: &SetAttr) -> SysResult<()> {
        self.node.setattr(c, a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn memfile() -> Arc<MemoryFile> {
        Arc::new(MemoryFile::new(64 << 20).unwrap())
    }

    const C: Caller<'static> = Caller { kernel: None, tgid: 1, tid: 1 };

    #[test]
    fn files_hold_data_and_metadata() {
        let fs = TmpFs::new(&memfile(), 0x40, 1);
        let root = fs.new_root(0o1777);
        let (n, _ops) = root.create(&C, b"f", libc::O_RDWR as u32, 0o640).unwrap();
        let f = n.as_any().unwrap().downcast_ref::<TmpNode>().unwrap().arc();
        f.write_data(5000, b"hello").unwrap();
        let mut b = [1u8; 8];
        assert_eq!(f.read_data(4998, &mut b), 7);
        assert_eq!(&b[..7], b"\0\0hello");
        let st = f.stat_now();
        assert_eq!((st.st_size, st.st_mode, st.st_nlink, st.st_dev), (5005, S_IFREG | 0o640, 1, 0x40));
        f.setattr(&C, &SetAttr { size: Some(2), mode: Some(0o600), mtime: Some(Time { sec: 7, nsec: 8 }), ..Default::default() }).unwrap();
        let st = f.stat_now();
        assert_eq!((st.st_size, st.st_mode, st.st_mtime, st.st_mtime_nsec), (2, S_IFREG | 0o600, 7, 8));
        f.setattr(&C, &SetAttr { size: Some(5003), ..Default::default() }).unwrap();
        let mut b = [1u8; 3];
        assert_eq!(f.read_data(5000, &mut b), 3);
        assert_eq!(b, [0, 0, 0], "truncation zeroes what was cut off");
    }

    #[test]
    fn directories_links_and_errors() {
        let fs = TmpFs::new(&memfile(), 0x40, 1);
        let root = fs.new_root(0o755);
        root.mkdir(&C, b"d", 0o755).unwrap();
        assert_eq!(root.mkdir(&C, b"d", 0o755), Err(Errno::EEXIST));
        assert_eq!(root.stat_now().st_nlink, 3);
        let d: Arc<dyn Node> = root.lookup(&C, b"d").unwrap();
        d.mknod(&C, b"fifo", S_IFIFO | 0o644, 0).unwrap();
        d.symlink(&C, b"l", b"fifo").unwrap();
        assert_eq!(root.rmdir(&C, b"d"), Err(Errno::ENOTEMPTY));
        assert_eq!(root.unlink(&C, b"d"), Err(Errno::EISDIR));
        let fifo = d.lookup(&C, b"fifo").unwrap();
        root.link(&C, b"hard", &fifo).unwrap();
        assert_eq!(fifo.stat(&C).unwrap().st_nlink, 2);
        d.unlink(&C, b"fifo").unwrap();
        assert_eq!(fifo.stat(&C).unwrap().st_nlink, 1);
        assert_eq!(d.rmdir(&C, b"l"), Err(Errno::ENOTDIR));
        d.unlink(&C, b"l").unwrap();
        let names: Vec<Vec<u8>> = root.readdir(&C).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, vec![b"d".to_vec(), b"hard".to_vec()]);
        root.rmdir(&C, b"d").unwrap();
        assert_eq!(d.stat(&C).unwrap().st_nlink, 0);
        assert_eq!(d.mkdir(&C, b"x", 0o755), Err(Errno::ENOENT));
        root.mknod(&C, b"sock", S_IFSOCK | 0o755, 0).unwrap();
        assert!(root.lookup(&C, b"sock").unwrap().socket_slot().is_some());
    }

    #[test]
    fn rename_moves_replaces_and_exchanges() {
        let fs = TmpFs::new(&memfile(), 0x40, 1);
        let root: Arc<dyn Node> = fs.new_root(0o755);
        root.mkdir(&C, b"a", 0o755).unwrap();
        root.mkdir(&C, b"b", 0o755).unwrap();
        let a = root.lookup(&C, b"a").unwrap();
        a.create(&C, b"f", 0, 0o644).unwrap();
        root.create(&C, b"g", 0, 0o644).unwrap();
        assert_eq!(root.rename(&C, b"g", &root, b"a", 0), Err(Errno::EISDIR));
        assert_eq!(root.rename(&C, b"a", &root, b"g", 0), Err(Errno::ENOTDIR));
        assert_eq!(root.rename(&C, b"a", &root, b"b", libc::RENAME_NOREPLACE), Err(Errno::EEXIST));
        assert_eq!(root.rename(&C, b"b", &root, b"a", 0), Err(Errno::ENOTEMPTY));
        root.rename(&C, b"a", &root, b"b", 0).unwrap();
        let b = root.lookup(&C, b"b").unwrap();
        assert!(b.lookup(&C, b"f").is_ok());
        b.rename(&C, b"f", &root, b"g", 0).unwrap();
        assert_eq!(b.lookup(&C, b"f").err(), Some(Errno::ENOENT));
        root.rename(&C, b"g", &root, b"b", libc::RENAME_EXCHANGE).unwrap();
        assert_eq!(root.lookup(&C, b"b").unwrap().kind(), S_IFREG);
        assert_eq!(root.lookup(&C, b"g").unwrap().kind(), S_IFDIR);
    }
}
