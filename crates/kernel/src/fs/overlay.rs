//! The copy-on-write root: an overlay whose lower layer is the host-backed
//! rootfs (never written) and whose upper layer is a tmpfs, as gVisor's
//! memory-backed root overlay.
//!
//! Reads fall through to the lower layer until an inode is copied up: a
//! write open, truncate, chmod/chown/utimes, link or rename copies the file
//! (and its ancestors) into the upper layer first. Deleting a name the
//! lower layer has leaves a whiteout in the upper directory (sentry memory,
//! never the host); a directory created over a deleted lower one is
//! opaque, so the old contents stay hidden. Renaming a directory copies its
//! whole tree up and makes it opaque, which is simpler than Linux's
//! redirects and fine for a memory-backed upper layer.
//!
//! Each directory node keeps its live children, so there is one node per
//! name while it is in use and a copy-up is seen by every user of it.

use super::node::{Caller, LinkTarget, Node, SetAttr, SocketSlot, S_IFDIR, S_IFLNK, S_IFREG};
use super::tmpfs::{TmpFs, TmpNode};
use super::{DirEntry, FileOps};
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

pub struct OverlayFs {
    pub dev: u64,
    pub upper: Arc<TmpFs>,
    /// Copy-ups run one at a time: a copy-up walks up to the root and two
    /// racing ones must not both create the same upper inode.
    copy_lock: Mutex<()>,
}

pub struct OvNode {
    fs: Arc<OverlayFs>,
    me: Weak<OvNode>,
    kind: u32,
    /// Parent and name (None for the root); rename moves the node.
    place: Mutex<(Option<Arc<OvNode>>, Vec<u8>)>,
    lower: Option<Arc<dyn Node>>,
    upper: Mutex<Option<Arc<TmpNode>>>,
    children: Mutex<HashMap<Vec<u8>, Weak<OvNode>>>,
}

const COPY_CHUNK: usize = 1 << 20;

impl OverlayFs {
    /// The root of an overlay over `lower` (a directory); the upper layer
    /// is a new tmpfs in `upper`.
    pub fn new_root(lower: Arc<dyn Node>, upper: Arc<TmpFs>, dev: u64) -> SysResult<Arc<OvNode>> {
        if lower.kind() != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let nobody = Caller { kernel: None, tgid: 0, tid: 0 };
        let st = lower.stat(&nobody)?;
        let up = upper.new_root(st.st_mode);
        up.copy_meta_from(&st);
        let fs = Arc::new(OverlayFs { dev, upper, copy_lock: Mutex::new(()) });
        Ok(OvNode::make(&fs, S_IFDIR, None, Vec::new(), Some(lower), Some(up)))
    }
}

fn tmp_of(n: &Arc<TmpNode>) -> Arc<dyn Node> {
    n.clone()
}

impl OvNode {
    fn make(fs: &Arc<OverlayFs>, kind: u32, parent: Option<Arc<OvNode>>, name: Vec<u8>, lower: Option<Arc<dyn Node>>, upper: Option<Arc<TmpNode>>) -> Arc<OvNode> {
        Arc::new_cyclic(|me| OvNode {
            fs: fs.clone(),
            me: me.clone(),
            kind,
            place: Mutex::new((parent, name)),
            lower,
            upper: Mutex::new(upper),
            children: Mutex::new(HashMap::new()),
        })
    }

    fn arc(&self) -> Arc<OvNode> {
        self.me.upgrade().expect("overlay node in use")
    }

    pub fn upper(&self) -> Option<Arc<TmpNode>> {
        self.upper.lock().unwrap().clone()
    }

    /// The lower directory's entries are part of this directory.
    fn lower_visible(&self) -> Option<&Arc<dyn Node>> {
        let l = self.lower.as_ref()?;
        match self.upper() {
            Some(u) if u.dir().map(|d| d.lock().unwrap().opaque).unwrap_or(true) => None,
            _ => Some(l),
        }
    }

    /// Whether the lower layer has `name` here at all (hidden or not):
    /// removing it from the upper layer then needs a whiteout.
    fn lower_has(&self, c: &Caller, name: &[u8]) -> bool {
        self.lower.as_ref().is_some_and(|l| l.lookup(c, name).is_ok())
    }

    fn child(&self, c: &Caller, name: &[u8]) -> SysResult<Arc<OvNode>> {
        let mut cache = self.children.lock().unwrap();
        if let Some(n) = cache.get(name).and_then(Weak::upgrade) {
            return Ok(n);
        }
        let mut hidden = false;
        let u = match self.upper() {
            Some(ud) => {
                let d = ud.dir()?.lock().unwrap();
                hidden = d.opaque || d.whiteouts.contains(name);
                d.entries.get(name).cloned()
            }
            None => None,
        };
        let wants_lower = match &u {
            None => true,
            Some(u) => u.kind() == S_IFDIR && !u.dir()?.lock().unwrap().opaque,
        };
        let l = match (&self.lower, hidden, wants_lower) {
            (Some(l), false, true) => match l.lookup(c, name) {
                Ok(n) => Some(n),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(e),
            },
            _ => None,
        };
        // A merged directory only merges with a lower directory.
        let l = match &u {
            Some(_) => l.filter(|l| l.kind() == S_IFDIR),
            None => l,
        };
        let kind = match (&u, &l) {
            (Some(u), _) => u.kind(),
            (None, Some(l)) => l.kind(),
            (None, None) => return Err(Errno::ENOENT),
        };
        let n = OvNode::make(&self.fs, kind, Some(self.arc()), name.to_vec(), l, u);
        cache.retain(|_, w| w.strong_count() > 0);
        cache.insert(name.to_vec(), Arc::downgrade(&n));
        Ok(n)
    }

    /// The upper inode, copying this one (and its ancestors) up if needed.
    pub fn copy_up(&self, c: &Caller) -> SysResult<Arc<TmpNode>> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        let _g = self.fs.copy_lock.lock().unwrap();
        self.copy_up_locked(c, true)
    }

    fn copy_up_locked(&self, c: &Caller, with_data: bool) -> SysResult<Arc<TmpNode>> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        let (parent, name) = self.place.lock().unwrap().clone();
        let parent = parent.ok_or(Errno::EIO)?;
        let pu = parent.copy_up_locked(c, true)?;
        let lower = self.lower.as_ref().ok_or(Errno::EIO)?;
        let st = lower.stat(c)?;
        let upper = &self.fs.upper;
        let n = match self.kind {
            S_IFREG => {
                let n = upper.new_node_ino(S_IFREG | (st.st_mode & 0o7777), (st.st_uid, st.st_gid), 0, st.st_ino);
                if with_data {
                    let ops = lower.open(c, libc::O_RDONLY as u32)?;
                    let mut buf = vec![0u8; COPY_CHUNK.min(st.st_size.max(0) as usize).max(1)];
                    let mut off = 0u64;
                    loop {
                        let k = ops.read_at(None, &mut buf, off)?;
                        if k == 0 {
                            break;
                        }
                        n.write_data(off, &buf[..k])?;
                        off += k as u64;
                    }
                }
                n
            }
            S_IFLNK => match lower.readlink(c)? {
                LinkTarget::Path(p) => {
                    pu.symlink(c, &name, &p)?;
                    let n = pu.get(&name).ok_or(Errno::EIO)?;
                    n.copy_meta_from(&st);
                    *self.upper.lock().unwrap() = Some(n.clone());
                    return Ok(n);
                }
                _ => return Err(Errno::EXDEV),
            },
            _ => upper.new_node_ino(st.st_mode, (st.st_uid, st.st_gid), st.st_rdev, st.st_ino),
        };
        n.copy_meta_from(&st);
        pu.insert(&name, n.clone())?;
        *self.upper.lock().unwrap() = Some(n.clone());
        Ok(n)
    }

    /// Copies the whole tree below this node up and makes directories
    /// opaque, so the node no longer depends on where its lower layer was
    /// (rename of directories).
    fn copy_up_tree(&self, c: &Caller) -> SysResult<Arc<TmpNode>> {
        let u = self.copy_up(c)?;
        if self.kind == S_IFDIR && self.lower_visible().is_some() {
            for e in self.readdir(c)? {
                self.child(c, &e.name)?.copy_up_tree(c)?;
            }
            let mut d = u.dir()?.lock().unwrap();
            d.opaque = true;
            d.whiteouts.clear();
        }
        Ok(u)
    }

    fn node_of(n: &Arc<dyn Node>) -> Option<Arc<OvNode>> {
        n.as_any().and_then(|a| a.downcast_ref::<OvNode>()).map(|o| o.arc())
    }

    /// The created upper inode as an overlay node, cached as `name`.
    fn adopt(&self, name: &[u8], u: Arc<TmpNode>) -> Arc<OvNode> {
        let n = OvNode::make(&self.fs, u.kind(), Some(self.arc()), name.to_vec(), None, Some(u));
        self.children.lock().unwrap().insert(name.to_vec(), Arc::downgrade(&n));
        n
    }

    fn exists(&self, c: &Caller, name: &[u8]) -> SysResult<bool> {
        match self.child(c, name) {
            Ok(_) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `name` (already checked) from the merged view.
    fn remove(&self, c: &Caller, name: &[u8], child: &OvNode) -> SysResult<()> {
        let pu = self.copy_up(c)?;
        if child.upper().is_some() {
            pu.remove_entry(name)?;
        }
        if self.lower_has(c, name) {
            pu.dir()?.lock().unwrap().whiteouts.insert(name.to_vec());
        }
        self.children.lock().unwrap().remove(name);
        Ok(())
    }
}

impl Node for OvNode {
    fn kind(&self) -> u32 {
        self.kind
    }

    fn stat(&self, c: &Caller) -> SysResult<Stat> {
        let mut st = match (self.upper(), &self.lower) {
            (Some(u), Some(l)) => {
                let mut st = u.stat_now();
                // Inode numbers stay those of the lower layer across a copy-up.
                if let Ok(ls) = l.stat(c) {
                    st.st_ino = ls.st_ino;
                    if self.kind == S_IFDIR {
                        // A merged directory's size and blocks are a detail of
                        // the host file system holding its lower half; the
                        // memory-backed upper half has none worth showing.
                        st.st_nlink = st.st_nlink.max(ls.st_nlink);
                        st.st_size = ls.st_size;
                        st.st_blocks = ls.st_blocks;
                        st.st_blksize = ls.st_blksize;
                    }
                }
                st
            }
            (Some(u), None) => u.stat_now(),
            (None, Some(l)) => l.stat(c)?,
            (None, None) => return Err(Errno::ENOENT),
        };
        st.st_dev = self.fs.dev;
        Ok(st)
    }

    fn lookup(&self, c: &Caller, name: &[u8]) -> SysResult<Arc<dyn Node>> {
        if self.kind != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        Ok(self.child(c, name)?)
    }

    fn readdir(&self, c: &Caller) -> SysResult<Vec<DirEntry>> {
        let mut out: Vec<DirEntry> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let upper = self.upper();
        let whiteouts = match &upper {
            Some(u) => u.dir()?.lock().unwrap().whiteouts.clone(),
            None => Default::default(),
        };
        if let Some(l) = self.lower_visible() {
            for e in l.readdir(c)? {
                if !whiteouts.contains(&e.name) {
                    index.insert(e.name.clone(), out.len());
                    out.push(e);
                }
            }
        }
        if let Some(u) = upper {
            for e in u.readdir(c)? {
                match index.get(&e.name) {
                    // Same name, same type: a copied-up inode keeps its number.
                    Some(&i) if out[i].kind == e.kind => {}
                    Some(&i) => out[i] = e,
                    None => out.push(e),
                }
            }
        }
        Ok(out)
    }

    fn readlink(&self, c: &Caller) -> SysResult<LinkTarget> {
        match (self.upper(), &self.lower) {
            (Some(u), _) => u.readlink(c),
            (None, Some(l)) => l.readlink(c),
            _ => Err(Errno::EINVAL),
        }
    }

    fn open(&self, c: &Caller, flags: u32) -> SysResult<Box<dyn FileOps>> {
        let f = flags as i32;
        let writes = f & libc::O_ACCMODE != libc::O_RDONLY || f & libc::O_TRUNC != 0;
        if let Some(u) = self.upper() {
            return u.open_node(c, flags);
        }
        match self.kind {
            S_IFREG if writes => {
                let u = if f & libc::O_TRUNC != 0 {
                    // Its data would be thrown away at once.
                    let _g = self.fs.copy_lock.lock().unwrap();
                    self.copy_up_locked(c, false)?
                } else {
                    self.copy_up(c)?
                };
                u.open_node(c, flags)
            }
            S_IFREG => self.lower.as_ref().ok_or(Errno::ENOENT)?.open(c, flags),
            // Fifos and device nodes of the image work as the sentry's own.
            _ => self.copy_up(c)?.open_node(c, flags),
        }
    }

    fn create(&self, c: &Caller, name: &[u8], flags: u32, mode: u32) -> SysResult<(Arc<dyn Node>, Box<dyn FileOps>)> {
        if self.exists(c, name)? {
            return Err(Errno::EEXIST);
        }
        let pu = self.copy_up(c)?;
        let (_, ops) = pu.create(c, name, flags, mode)?;
        let u = pu.get(name).ok_or(Errno::EIO)?;
        Ok((self.adopt(name, u), ops))
    }

    fn mkdir(&self, c: &Caller, name: &[u8], mode: u32) -> SysResult<()> {
        if self.exists(c, name)? {
            return Err(Errno::EEXIST);
        }
        let pu = self.copy_up(c)?;
        pu.mkdir(c, name, mode)?;
        let u = pu.get(name).ok_or(Errno::EIO)?;
        if self.lower_has(c, name) {
            u.dir()?.lock().unwrap().opaque = true;
        }
        self.children.lock().unwrap().remove(name);
        Ok(())
    }

    fn mknod(&self, c: &Caller, name: &[u8], mode: u32, rdev: u64) -> SysResult<()> {
        if self.exists(c, name)? {
            return Err(Errno::EEXIST);
        }
        self.copy_up(c)?.mknod(c, name, mode, rdev)?;
        self.children.lock().unwrap().remove(name);
        Ok(())
    }

    fn symlink(&self, c: &Caller, name: &[u8], target: &[u8]) -> SysResult<()> {
        if self.exists(c, name)? {
            return Err(Errno::EEXIST);
        }
        self.copy_up(c)?.symlink(c, name, target)?;
        self.children.lock().unwrap().remove(name);
        Ok(())
    }

    fn link(&self, c: &Caller, name: &[u8], target: &Arc<dyn Node>) -> SysResult<()> {
        let tu: Arc<dyn Node> = match OvNode::node_of(target) {
            Some(o) if Arc::ptr_eq(&o.fs, &self.fs) => {
                if o.kind == S_IFDIR {
                    return Err(Errno::EPERM);
                }
                tmp_of(&o.copy_up(c)?)
            }
            Some(_) => return Err(Errno::EXDEV),
            // An O_TMPFILE made in the upper layer.
            None => target.clone(),
        };
        if self.exists(c, name)? {
            return Err(Errno::EEXIST);
        }
        self.copy_up(c)?.link(c, name, &tu)?;
        self.children.lock().unwrap().remove(name);
        Ok(())
    }

    fn unlink(&self, c: &Caller, name: &[u8]) -> SysResult<()> {
        let child = self.child(c, name)?;
        if child.kind == S_IFDIR {
            return Err(Errno::EISDIR);
        }
        self.remove(c, name, &child)
    }

    fn rmdir(&self, c: &Caller, name: &[u8]) -> SysResult<()> {
        let child = self.child(c, name)?;
        if child.kind != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        // Empty across both layers (whiteouts alone do not count).
        if !child.readdir(c)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.remove(c, name, &child)
    }

    fn rename(&self, c: &Caller, old: &[u8], new_dir: &Arc<dyn Node>, new: &[u8], flags: u32) -> SysResult<()> {
        if flags & !(libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE) != 0 {
            return Err(Errno::EINVAL);
        }
        let to = OvNode::node_of(new_dir).filter(|t| Arc::ptr_eq(&t.fs, &self.fs)).ok_or(Errno::EXDEV)?;
        let exchange = flags & libc::RENAME_EXCHANGE != 0;
        let s = self.child(c, old)?;
        let d = match to.child(c, new) {
            Ok(d) => Some(d),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        match &d {
            None if exchange => return Err(Errno::ENOENT),
            Some(_) if flags & libc::RENAME_NOREPLACE != 0 => return Err(Errno::EEXIST),
            Some(d) if Arc::ptr_eq(d, &s) => return Ok(()),
            Some(d) if !exchange => match (s.kind == S_IFDIR, d.kind == S_IFDIR) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !d.readdir(c)?.is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            },
            _ => {}
        }
        s.copy_up_tree(c)?;
        if exchange {
            d.as_ref().expect("checked").copy_up_tree(c)?;
        }
        let from_u = self.copy_up(c)?;
        let to_u = to.copy_up(c)?;
        if let Some(d) = &d {
            if !exchange && d.kind == S_IFDIR {
                // Empty in the merged view: only whiteouts may be left.
                if let Some(du) = d.upper() {
                    du.dir()?.lock().unwrap().whiteouts.clear();
                }
            }
        }
        from_u.rename(c, old, &tmp_of(&to_u), new, flags)?;
        if !exchange && self.lower_has(c, old) {
            from_u.dir()?.lock().unwrap().whiteouts.insert(old.to_vec());
        }
        // The nodes move with their names.
        self.children.lock().unwrap().remove(old);
        to.children.lock().unwrap().remove(new);
        *s.place.lock().unwrap() = (Some(to.clone()), new.to_vec());
        to.children.lock().unwrap().insert(new.to_vec(), Arc::downgrade(&s));
        if let (true, Some(d)) = (exchange, &d) {
            *d.place.lock().unwrap() = (Some(self.arc()), old.to_vec());
            self.children.lock().unwrap().insert(old.to_vec(), Arc::downgrade(d));
        }
        Ok(())
    }

    fn setattr(&self, c: &Caller, a: &SetAttr) -> SysResult<()> {
        let u = match (self.upper(), a.size) {
            (Some(u), _) => u,
            (None, Some(0)) if self.kind == S_IFREG => {
                let _g = self.fs.copy_lock.lock().unwrap();
                self.copy_up_locked(c, false)?
            }
            _ => self.copy_up(c)?,
        };
        u.setattr(c, a)
    }

    fn tmpfile(&self, c: &Caller, mode: u32) -> SysResult<Arc<dyn Node>> {
        self.copy_up(c)?.tmpfile(c, mode)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }

    fn socket_slot(&self) -> Option<&SocketSlot> {
        // The slot lives in the upper inode, which outlives this node only
        // through the upper directory; sockets are only ever created there.
        None
    }
}

impl OvNode {
    /// The upper inode's socket slot (sockets bound in the overlay root are
    /// created in the upper layer by mknod).
    pub fn socket_inode(&self) -> Option<Arc<TmpNode>> {
        self.upper().filter(|u| u.socket_slot().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::host::HostFs;
    use std::os::fd::{FromRawFd, OwnedFd};

    const C: Caller<'static> = Caller { kernel: None, tgid: 1, tid: 1 };

    fn open_dir(p: &std::path::Path) -> OwnedFd {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: plain open of a NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: fd was just opened and is owned here.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    fn setup(tag: &str) -> (std::path::PathBuf, Arc<OvNode>) {
        let dir = std::env::temp_dir().join(format!("veil-ov-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("d/e")).unwrap();
        std::fs::write(dir.join("d/f"), b"lower f").unwrap();
        std::fs::write(dir.join("d/e/g"), b"g").unwrap();
        std::fs::write(dir.join("top"), b"top").unwrap();
        let lower = HostFs::new_root(open_dir(&dir), true, 9).unwrap();
        let mf = Arc::new(memfile::MemoryFile::new(64 << 20).unwrap());
        let upper = TmpFs::new(&mf, 10, 1 << 40);
        (dir.clone(), OverlayFs::new_root(lower, upper, 10).unwrap())
    }

    fn names(n: &Arc<dyn Node>) -> Vec<String> {
        let mut v: Vec<String> = n.readdir(&C).unwrap().into_iter().map(|e| String::from_utf8(e.name).unwrap()).collect();
        v.sort();
        v
    }

    fn read_all(n: &Arc<dyn Node>) -> Vec<u8> {
        let f = n.open(&C, libc::O_RDONLY as u32).unwrap();
        let mut b = vec![0u8; 100];
        let k = f.read_at(None, &mut b, 0).unwrap();
        b.truncate(k);
        b
    }

    #[test]
    fn copy_up_whiteouts_and_merged_listing() {
        let (dir, root) = setup("a");
        let root: Arc<dyn Node> = root;
        let d = root.lookup(&C, b"d").unwrap();
        let f = d.lookup(&C, b"f").unwrap();
        let ino = f.stat(&C).unwrap().st_ino;
        let w = f.open(&C, libc::O_WRONLY as u32).unwrap();
        assert_eq!(f.stat(&C).unwrap().st_ino, ino, "inode number survives copy-up");
        let o = w.memory_object().unwrap();
        o.write_at(0, b"UPPER").unwrap();
        assert_eq!(read_all(&f), b"UPPER f");
        d.unlink(&C, b"f").unwrap();
        assert_eq!(d.lookup(&C, b"f").err(), Some(Errno::ENOENT));
        assert_eq!(names(&d), vec!["e"]);
        d.create(&C, b"new", libc::O_RDWR as u32, 0o600).unwrap();
        assert_eq!(names(&d), vec!["e", "new"]);
        assert_eq!(d.rmdir(&C, b"e"), Err(Errno::ENOTEMPTY));
        let e = d.lookup(&C, b"e").unwrap();
        e.unlink(&C, b"g").unwrap();
        d.rmdir(&C, b"e").unwrap();
        d.mkdir(&C, b"e", 0o700).unwrap();
        assert!(names(&d.lookup(&C, b"e").unwrap()).is_empty(), "a new dir over a deleted one is opaque");
        root.lookup(&C, b"top").unwrap().setattr(&C, &SetAttr { mode: Some(0o600), ..Default::default() }).unwrap();
        assert_eq!(root.lookup(&C, b"top").unwrap().stat(&C).unwrap().st_mode, S_IFREG | 0o600);
        assert_eq!(std::fs::read(dir.join("d/f")).unwrap(), b"lower f");
        assert!(dir.join("d/e/g").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rename_of_lower_directories() {
        let (dir, root) = setup("b");
        let root: Arc<dyn Node> = root;
        root.rename(&C, b"d", &root, b"moved", 0).unwrap();
        assert_eq!(root.lookup(&C, b"d").err(), Some(Errno::ENOENT));
        let m = root.lookup(&C, b"moved").unwrap();
        assert_eq!(names(&m), vec!["e", "f"]);
        assert_eq!(read_all(&m.lookup(&C, b"e").unwrap().lookup(&C, b"g").unwrap()), b"g");
        root.mkdir(&C, b"d", 0o755).unwrap();
        assert!(names(&root.lookup(&C, b"d").unwrap()).is_empty());
        root.rename(&C, b"top", &m, b"f", 0).unwrap();
        assert_eq!(read_all(&m.lookup(&C, b"f").unwrap()), b"top");
        assert_eq!(names(&root), vec!["d", "moved"]);
        assert!(dir.join("d/f").exists() && dir.join("top").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
