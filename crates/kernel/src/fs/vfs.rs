//! The mount tree and path resolution.
//!
//! Mount points are sentry dentries: `/proc` and `/dev` are the sentry's
//! own file systems mounted over whatever the host root has there, so the
//! host's procfs and devices are never reachable. Resolution walks one
//! component at a time, follows symbolic links in the sentry (an absolute
//! link resolves against the *caller's* root, so no link can lead out of the
//! sandbox), and never lets `..` climb above the root.

use super::node::{Caller, Dentry, DirFile, EmptyDir, LinkTarget, Node, OpenFileNode, PathFile, SetAttr, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use super::tmpfs::TmpFs;
use super::{dev, devpts, host, hostfd, overlay, proc, sys, OpenFile};
use memfile::MemoryFile;
use crate::{Kernel, SysResult};
use abi::types::Stat;
use abi::Errno;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Linux's limit on symbolic links followed in one resolution.
pub const MAX_SYMLINKS: u32 = 40;
pub const NAME_MAX: usize = 255;
pub const PATH_MAX: usize = 4096;

/// One mounted file system.
pub struct Mount {
    pub id: u32,
    /// For /proc/mounts.
    pub fs_type: &'static str,
    /// What /proc/PID/mounts shows as the source: for the sentry's own
    /// file systems, the label the spec's mount gave (Linux shows a
    /// pseudo file system's source as given to mount(2)).
    pub source: Mutex<String>,
    pub root: Arc<Dentry>,
    /// mountinfo's root field: "/" but for a bind mount, whose is the
    /// host path it is of (as Linux shows the bound directory).
    pub root_path: String,
    /// Where it is mounted: the parent mount and the dentry covered.
    pub parent: Option<(Arc<Mount>, Arc<Dentry>)>,
    pub readonly: bool,
}

/// A place in the tree: a dentry as reached through a mount.
#[derive(Clone)]
pub struct Location {
    pub mount: Arc<Mount>,
    pub dentry: Arc<Dentry>,
}

impl Location {
    pub fn node(&self) -> &Arc<dyn Node> {
        &self.dentry.node
    }

    pub fn same(&self, other: &Location) -> bool {
        Arc::ptr_eq(&self.mount, &other.mount) && Arc::ptr_eq(&self.dentry, &other.dentry)
    }

    fn is_mount_root(&self) -> bool {
        Arc::ptr_eq(&self.dentry, &self.mount.root)
    }

    /// Absolute path inside the sandbox.
    pub fn path(&self) -> Vec<u8> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut mount = self.mount.clone();
        let mut dentry = self.dentry.clone();
        loop {
            if Arc::ptr_eq(&dentry, &mount.root) {
                match &mount.parent {
                    Some((m, d)) => {
                        let (m, d) = (m.clone(), d.clone());
                        mount = m;
                        dentry = d;
                        continue;
                    }
                    None => break,
                }
            }
            match dentry.parent() {
                Some(p) => {
                    names.push(dentry.name());
                    dentry = p;
                }
                // A detached dentry (an open pipe seen through /proc): its
                // name is all there is, e.g. "pipe:[12]".
                None => return dentry.name(),
            }
        }
        if names.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for n in names.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(n);
        }
        out
    }

    pub fn stat(&self, c: &Caller) -> SysResult<Stat> {
        self.dentry.node.stat(c)
    }

    pub fn is_dir(&self) -> bool {
        self.dentry.node.kind() == S_IFDIR
    }
}

/// A process's view of the tree: root, working directory and umask.
#[derive(Clone)]
pub struct FsContext {
    /// The mount namespace: the container's mount tree.
    pub vfs: Arc<Vfs>,
    pub root: Location,
    pub cwd: Location,
    pub umask: u32,
}

/// How to treat the last component of a path.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Follow {
    Yes,
    No,
}

pub struct Vfs {
    root: Arc<Mount>,
    mounts: Mutex<Vec<Arc<Mount>>>,
    /// Holds detached dentries for magic links to pipes and the like.
    anon: Arc<Mount>,
    next_ino: AtomicU64,
    memfd_fs: Arc<TmpFs>,
    memfile: Arc<MemoryFile>,
    /// The devpts instance at /dev/pts (controlling-terminal lookups).
    devpts: Arc<devpts::DevPts>,
    /// Device number for the next container mount.
    next_dev: AtomicU64,
}

/// What a container mount ([`Vfs::mount_at`]) is made of.
pub enum MountSource {
    /// A host directory tree (an `O_PATH` descriptor of its top) and its
    /// host path (what mountinfo shows as the mount's root, as for a bind
    /// mount on Linux).
    HostDir(OwnedFd, String),
    /// One host file, opened for I/O.
    HostFile(OwnedFd, String),
    /// A memory-backed tmpfs whose root has permission bits `mode`.
    Tmpfs { mode: u32 },
}

/// What linux.maskedPaths and linux.readonlyPaths do to a path.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Cover {
    /// Hidden: a directory gets an empty read-only tmpfs over it, anything
    /// else a read-only /dev/null (as runc does).
    Mask,
    /// The same tree mounted again over itself, read-only (without the
    /// mounts below it: apply these before masks and other mounts there).
    ReadOnly,
}

/// What the container's root is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RootMode {
    /// Copy-on-write: the host tree read-only below a tmpfs that takes
    /// every change (the default; nothing reaches the host).
    Overlay,
    /// The host tree alone, read-only: writes fail with EROFS.
    ReadOnly,
}

/// Device numbers the sentry's file systems report (major 0, like Linux's
/// anonymous devices).
pub const DEV_ROOT: u64 = 0x20;
pub const DEV_PROC: u64 = 0x21;
pub const DEV_DEV: u64 = 0x22;
pub const DEV_ANON: u64 = 0x23;
pub const DEV_SHM: u64 = 0x24;
pub const DEV_PTS: u64 = 0x25;
pub const DEV_SYS: u64 = 0x26;
pub const DEV_MEMFD: u64 = 0x27;
/// /dev/mqueue: POSIX message queues are not implemented (mq_open is
/// ENOSYS), so the mqueue file system there lists none and takes none.
pub const DEV_MQUEUE: u64 = 0x28;
/// Container mounts (binds, tmpfs) are numbered from here.
pub const DEV_FIRST_MOUNT: u64 = 0x30;
/// Inode numbers of the overlay's upper layer start here, clear of the
/// host's (so a new file never shares a number with a lower one).
pub const UPPER_INO_BASE: u64 = 1 << 48;

impl Vfs {
    /// Mounts the host directory `root` at `/` as `mode` says, then proc
    /// at /proc, dev at /dev (with a tmpfs at /dev/shm and devpts at
    /// /dev/pts) and sys at /sys. `memfile` holds every tmpfs's data.
    pub fn new(root: OwnedFd, mode: RootMode, memfile: Arc<MemoryFile>) -> SysResult<Arc<Vfs>> {
        let memfd_fs = TmpFs::new(&memfile, DEV_MEMFD, 1);
        Self::build(root, mode, memfile, memfd_fs, devpts::DevPts::new())
    }

    /// Another container's mount tree over the host directory `root`: its
    /// own root, proc, dev and sys, sharing this tree's pseudo-terminals
    /// and memfds (one sandbox, one set of those).
    pub fn sibling(&self, root: OwnedFd, mode: RootMode) -> SysResult<Arc<Vfs>> {
        Self::build(root, mode, self.memfile.clone(), self.memfd_fs.clone(), self.devpts.clone())
    }

    fn build(root: OwnedFd, mode: RootMode, memfile: Arc<MemoryFile>, memfd_fs: Arc<TmpFs>, devpts: Arc<devpts::DevPts>) -> SysResult<Arc<Vfs>> {
        let readonly = mode == RootMode::ReadOnly;
        let host_root = host::HostFs::new_root(root, true, DEV_ROOT)?;
        let (root_node, fs_type, source): (Arc<dyn Node>, &'static str, &'static str) = match mode {
            RootMode::Overlay => {
                let upper = TmpFs::new(&memfile, DEV_ROOT, UPPER_INO_BASE);
                (overlay::OverlayFs::new_root(host_root, upper, DEV_ROOT)?, "overlay", "overlay")
            }
            RootMode::ReadOnly => (host_root, "rootfs", "veil-root"),
        };
        let root_dentry = Dentry::new(b"", None, root_node);
        let root_mount = Arc::new(Mount { id: 1, fs_type, source: Mutex::new(source.into()), root: root_dentry.clone(), parent: None, readonly, root_path: "/".into() });
        let anon_root = Dentry::new(b"anon", None, Arc::new(EmptyDir { dev: DEV_ANON, ino: 1 }));
        let anon = Arc::new(Mount { id: 0, fs_type: "anon_inodefs", source: Mutex::new("none".into()), root: anon_root, parent: None, readonly: true, root_path: "/".into() });
        let vfs = Vfs {
            root: root_mount.clone(),
            mounts: Mutex::new(vec![root_mount.clone()]),
            anon,
            next_ino: AtomicU64::new(1 << 40),
            memfd_fs,
            memfile: memfile.clone(),
            devpts,
            next_dev: AtomicU64::new(DEV_FIRST_MOUNT),
        };
        let root_loc = vfs.root();
        vfs.mount_on(&root_loc, b"proc", "proc", "proc", proc::root())?;
        let dev = vfs.mount_on(&root_loc, b"dev", "tmpfs", "tmpfs", dev::root(&memfile))?;
        vfs.mount_on(&dev, b"pts", "devpts", "devpts", vfs.devpts.root())?;
        let shm = TmpFs::new(&memfile, DEV_SHM, 1).new_root(0o1777);
        vfs.mount_on(&dev, b"shm", "tmpfs", "shm", shm)?;
        vfs.mount_on(&dev, b"mqueue", "mqueue", "mqueue", Arc::new(EmptyDir { dev: DEV_MQUEUE, ino: 1 }))?;
        vfs.mount_on(&root_loc, b"sys", "sysfs", "sysfs", sys::root())?;
        Ok(Arc::new(vfs))
    }

    /// The child `name` of `at` to mount on: the existing one when it has
    /// the kind `kind`, else a sentry-only empty directory standing in (as
    /// for /proc in a minimal image, or a bind mount's missing point).
    fn mount_point(&self, at: &Location, name: &[u8], kind: u32) -> Arc<Dentry> {
        let nobody = Caller { kernel: None, tgid: 0, tid: 0 };
        match at.dentry.child(&nobody, name) {
            Ok(d) if d.node.kind() == kind => d,
            _ => {
                let d = Dentry::new(name, Some(at.dentry.clone()), Arc::new(EmptyDir { dev: DEV_ROOT, ino: self.next_ino.fetch_add(1, Ordering::Relaxed) }));
                at.dentry.adopt(name, &d);
                d
            }
        }
    }

    /// Mounts `node` on the child `name` of `at`; returns the new mount's root.
    fn mount_on(&self, at: &Location, name: &[u8], fs_type: &'static str, source: &'static str, node: Arc<dyn Node>) -> SysResult<Location> {
        self.mount_on_with(at, name, fs_type, source, node, false, "/".into())
    }

    #[allow(clippy::too_many_arguments)]
    fn mount_on_with(&self, at: &Location, name: &[u8], fs_type: &'static str, source: &'static str, node: Arc<dyn Node>, readonly: bool, root_path: String) -> SysResult<Location> {
        let point = self.mount_point(at, name, node.kind());
        let mut ms = self.mounts.lock().unwrap();
        let id = ms.iter().map(|m| m.id).max().unwrap_or(0) + 1;
        let m = Arc::new(Mount { id, fs_type, source: Mutex::new(source.into()), root: Dentry::new(name, None, node), parent: Some((at.mount.clone(), point)), readonly, root_path });
        ms.push(m.clone());
        Ok(Location { dentry: m.root.clone(), mount: m })
    }

    /// Mounts a container mount at the absolute `path`, making sentry-only
    /// directories for components the tree lacks (nothing reaches the host).
    /// Symbolic links on the way are not followed: a mount lands where its
    /// path says, never where the image's links would send it.
    pub fn mount_at(&self, path: &[u8], source: MountSource, readonly: bool) -> SysResult<()> {
        let root_path = match &source {
            MountSource::HostDir(_, root) | MountSource::HostFile(_, root) => root.clone(),
            MountSource::Tmpfs { .. } => "/".into(),
        };
        let names: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|n| !n.is_empty()).collect();
        let (last, dirs) = names.split_last().ok_or(Errno::EBUSY)?;
        let mut at = self.root();
        for name in dirs {
            if *name == b".." || *name == b"." {
                return Err(Errno::EINVAL);
            }
            let d = self.mount_point(&at, name, S_IFDIR);
            at = Location { mount: at.mount.clone(), dentry: d };
            while let Some(m) = self.mounted_on(&at) {
                at = Location { dentry: m.root.clone(), mount: m };
            }
        }
        let dev = self.next_dev.fetch_add(1, Ordering::Relaxed);
        let (node, fs_type, src): (Arc<dyn Node>, &'static str, &'static str) = match source {
            MountSource::HostDir(fd, _) => (host::HostFs::new_root(fd, readonly, dev)?, "bind", "veil-bind"),
            MountSource::HostFile(fd, _) => (host::HostFs::new_file_root(fd, readonly, dev)?, "bind", "veil-bind"),
            MountSource::Tmpfs { mode } => (TmpFs::new(&self.memfile, dev, 1).new_root(mode), "tmpfs", "tmpfs"),
        };
        self.mount_on_with(&at, last, fs_type, src, node, readonly, root_path)?;
        Ok(())
    }

    /// Covers the absolute `path` as `how` says (see [`Cover`]). Symbolic
    /// links on the way resolve inside the container's tree; ENOENT when
    /// nothing is there (runc skips those), EBUSY for the root itself.
    pub fn cover(&self, path: &[u8], how: Cover) -> SysResult<()> {
        let nobody = Caller { kernel: None, tgid: 0, tid: 0 };
        let root = self.root();
        let at = self.resolve(&nobody, &root, &root, path, Follow::Yes)?;
        if at.is_mount_root() && at.mount.parent.is_none() {
            return Err(Errno::EBUSY);
        }
        let blank = || TmpFs::new(&self.memfile, self.next_dev.fetch_add(1, Ordering::Relaxed), 1);
        let (node, fs_type, source): (Arc<dyn Node>, &'static str, String) = match how {
            Cover::Mask if at.is_dir() => (blank().new_root(0o755), "tmpfs", "tmpfs".into()),
            Cover::Mask => (blank().new_node(libc::S_IFCHR | 0o666, (0, 0), libc::makedev(1, 3)), "tmpfs", "tmpfs".into()),
            Cover::ReadOnly => (at.dentry.node.clone(), at.mount.fs_type, at.mount.source.lock().unwrap().clone()),
        };
        let mut ms = self.mounts.lock().unwrap();
        let id = ms.iter().map(|m| m.id).max().unwrap_or(0) + 1;
        let root = Dentry::new(&at.dentry.name(), None, node);
        let root_path = if how == Cover::ReadOnly { at.mount.root_path.clone() } else { "/".into() };
        ms.push(Arc::new(Mount { id, fs_type, source: Mutex::new(source), root, parent: Some((at.mount.clone(), at.dentry.clone())), readonly: true, root_path }));
        Ok(())
    }

    /// Makes the device node (or fifo) `path` of type and permissions
    /// `mode` owned by `owner`, as linux.devices asks: missing directories
    /// on the way are made, and what was at `path` is replaced.
    pub fn make_device(&self, path: &[u8], mode: u32, rdev: u64, owner: (u32, u32)) -> SysResult<()> {
        let nobody = Caller { kernel: None, tgid: 0, tid: 0 };
        let names: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|n| !n.is_empty()).collect();
        let (last, dirs) = names.split_last().ok_or(Errno::EEXIST)?;
        let mut at = self.root();
        for name in dirs {
            at = match self.step(&nobody, &at, name) {
                Err(Errno::ENOENT) => {
                    at.node().mkdir(&nobody, name, 0o755)?;
                    self.step(&nobody, &at, name)?
                }
                r => r?,
            };
            if !at.is_dir() {
                return Err(Errno::ENOTDIR);
            }
        }
        match at.node().unlink(&nobody, last) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        at.node().mknod(&nobody, last, mode, rdev)?;
        at.dentry.forget(last);
        let node = self.step(&nobody, &at, last)?;
        node.node().setattr(&nobody, &SetAttr { uid: Some(owner.0), gid: Some(owner.1), ..Default::default() })
    }

    /// The pseudo-terminals of /dev/pts.
    pub fn devpts(&self) -> &Arc<devpts::DevPts> {
        &self.devpts
    }

    /// The file system memfd_create makes its files in.
    pub fn memfd_fs(&self) -> &Arc<TmpFs> {
        &self.memfd_fs
    }

    pub fn memfile(&self) -> &Arc<MemoryFile> {
        &self.memfile
    }

    pub fn root(&self) -> Location {
        Location { mount: self.root.clone(), dentry: self.root.root.clone() }
    }

    /// Takes the spec's mount of one of the sentry's own file systems
    /// (/proc, /dev, /dev/shm, ...) as the description of the one there:
    /// its `source` label, and its place in mount order (after the mounts
    /// described or made before it), as runc's mounts would be listed.
    /// EINVAL when nothing of type `fs_type` is mounted at `path`.
    pub fn describe_own_mount(&self, path: &[u8], fs_type: &str, source: &str) -> SysResult<()> {
        let mut ms = self.mounts.lock().unwrap();
        let at = ms
            .iter()
            .position(|m| m.parent.is_some() && m.fs_type == fs_type && Location { mount: m.clone(), dentry: m.root.clone() }.path() == path)
            .ok_or(Errno::EINVAL)?;
        let m = ms.remove(at);
        *m.source.lock().unwrap() = source.to_string();
        ms.push(m);
        Ok(())
    }

    /// Mounts, in mount order (for /proc/mounts).
    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        self.mounts.lock().unwrap().clone()
    }

    /// The mount covering `(mount, dentry)`, if any (the latest wins).
    fn mounted_on(&self, l: &Location) -> Option<Arc<Mount>> {
        let ms = self.mounts.lock().unwrap();
        ms.iter()
            .rev()
            .find(|m| matches!(&m.parent, Some((pm, pd)) if Arc::ptr_eq(pm, &l.mount) && Arc::ptr_eq(pd, &l.dentry)))
            .cloned()
    }

    /// A location for an open file that has no place in the tree.
    pub fn detached(&self, file: Arc<OpenFile>) -> Location {
        let name = match file.ops.stat() {
            Ok(st) if st.st_mode & S_IFMT == libc::S_IFIFO => format!("pipe:[{}]", st.st_ino),
            Ok(st) => format!("anon_inode:[{}]", st.st_ino),
            Err(_) => "anon_inode:[unknown]".to_string(),
        };
        Location { mount: self.anon.clone(), dentry: Dentry::new(name.as_bytes(), None, Arc::new(OpenFileNode(file))) }
    }

    /// True when something is mounted on `l` (it cannot be removed or
    /// renamed: EBUSY).
    pub fn is_mount_point(&self, l: &Location) -> bool {
        self.mounted_on(l).is_some()
    }

    /// A place outside the tree for an inode with no name (a memfd):
    /// `/proc/PID/fd` shows `name`.
    pub fn anon_location(&self, name: &[u8], node: Arc<dyn Node>) -> Location {
        Location { mount: self.anon.clone(), dentry: Dentry::new(name, None, node) }
    }

    /// `..` of `l`, never above `root`.
    fn parent_of(&self, l: &Location, root: &Location) -> Location {
        let mut cur = l.clone();
        loop {
            if cur.same(root) {
                return cur;
            }
            if cur.is_mount_root() {
                match &cur.mount.parent {
                    Some((m, d)) => {
                        cur = Location { mount: m.clone(), dentry: d.clone() };
                        continue;
                    }
                    None => return cur,
                }
            }
            return match cur.dentry.parent() {
                Some(p) => Location { mount: cur.mount.clone(), dentry: p },
                None => cur,
            };
        }
    }

    /// The child `name` of directory `dir`, crossing onto anything mounted there.
    fn step(&self, c: &Caller, dir: &Location, name: &[u8]) -> SysResult<Location> {
        let d = dir.dentry.child(c, name)?;
        let mut l = Location { mount: dir.mount.clone(), dentry: d };
        while let Some(m) = self.mounted_on(&l) {
            l = Location { dentry: m.root.clone(), mount: m };
        }
        Ok(l)
    }

    fn follow_link(&self, c: &Caller, root: &Location, dir: &Location, link: &Location, hops: &mut u32) -> SysResult<Location> {
        *hops += 1;
        if *hops > MAX_SYMLINKS {
            return Err(Errno::ELOOP);
        }
        match link.node().readlink(c)? {
            LinkTarget::Path(p) => {
                if p.is_empty() {
                    return Err(Errno::ENOENT);
                }
                self.walk(c, root, dir, &p, Follow::Yes, hops)
            }
            LinkTarget::Location(l) => Ok(l),
            LinkTarget::File(f) => Ok(self.detached(f)),
        }
    }

    fn walk(&self, c: &Caller, root: &Location, start: &Location, path: &[u8], follow: Follow, hops: &mut u32) -> SysResult<Location> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut cur = if path[0] == b'/' { root.clone() } else { start.clone() };
        let trailing_slash = path.ends_with(b"/");
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|s| !s.is_empty()).collect();
        for (i, comp) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            if cur.node().kind() != S_IFDIR {
                return Err(Errno::ENOTDIR);
            }
            if comp.len() > NAME_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            match *comp {
                b"." => continue,
                b".." => {
                    cur = self.parent_of(&cur, root);
                    continue;
                }
                _ => {}
            }
            let next = self.step(c, &cur, comp)?;
            if next.node().kind() == S_IFLNK && (!last || follow == Follow::Yes || trailing_slash) {
                cur = self.follow_link(c, root, &cur, &next, hops)?;
            } else {
                cur = next;
            }
        }
        if trailing_slash && cur.node().kind() != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }

    /// Resolves `path` from `start` (the cwd or a dirfd's location).
    pub fn resolve(&self, c: &Caller, root: &Location, start: &Location, path: &[u8], follow: Follow) -> SysResult<Location> {
        let mut hops = 0;
        self.walk(c, root, start, path, follow, &mut hops)
    }

    /// Resolves all but the last component: (parent directory, last name).
    /// The name is "" for "/", "." or ".." for paths ending so.
    pub fn resolve_parent<'p>(&self, c: &Caller, root: &Location, start: &Location, path: &'p [u8]) -> SysResult<(Location, &'p [u8])> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let trimmed = {
            let mut e = path.len();
            while e > 1 && path[e - 1] == b'/' {
                e -= 1;
            }
            &path[..e]
        };
        let (dir_part, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (&trimmed[..i + 1], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let dir = if dir_part.is_empty() { start.clone() } else { self.resolve(c, root, start, dir_part, Follow::Yes)? };
        if !dir.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok((dir, name))
    }

    /// open(2) minus descriptor allocation. `flags` are the caller's open
    /// flags; the returned description keeps the status and access bits.
    pub fn open(&self, c: &Caller, fs: &FsContext, start: &Location, path: &[u8], flags: u32, mode: u32) -> SysResult<Arc<OpenFile>> {
        let f = flags as i32;
        let creat = f & libc::O_CREAT != 0;
        let excl = creat && f & libc::O_EXCL != 0;
        let follow = if f & libc::O_NOFOLLOW != 0 || excl { Follow::No } else { Follow::Yes };
        let acc = f & libc::O_ACCMODE;
        if f & libc::O_TMPFILE == libc::O_TMPFILE {
            return self.open_tmpfile(c, fs, start, path, flags, mode);
        }
        let loc = match self.resolve(c, &fs.root, start, path, follow) {
            Ok(l) => {
                if excl {
                    return Err(Errno::EEXIST);
                }
                l
            }
            Err(Errno::ENOENT) if creat => {
                let (dir, name) = self.resolve_parent(c, &fs.root, start, path)?;
                if path.ends_with(b"/") || name.is_empty() || name == b"." || name == b".." {
                    return Err(Errno::EISDIR);
                }
                if dir.mount.readonly {
                    return Err(Errno::EROFS);
                }
                let (node, ops) = dir.node().create(c, name, flags, mode & 0o7777 & !fs.umask)?;
                let d = Dentry::new(name, Some(dir.dentry.clone()), node);
                let loc = Location { mount: dir.mount.clone(), dentry: d };
                return Ok(OpenFile::new(ops, status_flags(flags), Some(loc)));
            }
            Err(e) => return Err(e),
        };
        let kind = loc.node().kind();
        if f & libc::O_PATH != 0 {
            if f & libc::O_DIRECTORY != 0 && kind != S_IFDIR {
                return Err(Errno::ENOTDIR);
            }
            let (node, k) = (loc.node().clone(), c.kernel.map(Arc::downgrade).unwrap_or_default());
            let (tgid, tid) = (c.tgid, c.tid);
            let stat = Box::new(move || {
                let kk = k.upgrade();
                node.stat(&Caller { kernel: kk.as_ref(), tgid, tid })
            });
            return Ok(OpenFile::new(Box::new(PathFile { stat }), flags & (libc::O_PATH | libc::O_ACCMODE) as u32, Some(loc)));
        }
        if kind == S_IFLNK {
            // Only reached with O_NOFOLLOW (or O_CREAT|O_EXCL).
            return Err(Errno::ELOOP);
        }
        let want = match acc {
            libc::O_WRONLY => 2,
            libc::O_RDWR => 6,
            _ => 4,
        } | if f & libc::O_TRUNC != 0 { 2 } else { 0 };
        if !c.creds().may_access(&loc.stat(c)?, want) {
            return Err(Errno::EACCES);
        }
        if f & libc::O_DIRECTORY != 0 && kind != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let wants_write = acc != libc::O_RDONLY || f & libc::O_TRUNC != 0;
        if kind == S_IFDIR {
            if acc != libc::O_RDONLY {
                return Err(Errno::EISDIR);
            }
            let ino = loc.stat(c).map(|s| s.st_ino).unwrap_or(0);
            let parent = self.parent_of(&loc, &fs.root);
            let pino = parent.stat(c).map(|s| s.st_ino).unwrap_or(ino);
            return Ok(OpenFile::new(Box::new(DirFile::new(c, loc.node().clone(), ino, pino)), status_flags(flags), Some(loc)));
        }
        if wants_write && loc.mount.readonly && kind == S_IFREG {
            return Err(Errno::EROFS);
        }
        let ops = loc.node().open(c, flags)?;
        Ok(OpenFile::new(ops, status_flags(flags), Some(loc)))
    }
}

impl Vfs {
    /// open(O_TMPFILE): an unnamed file in the directory's file system,
    /// which linkat(AT_EMPTY_PATH) may name later.
    fn open_tmpfile(&self, c: &Caller, fs: &FsContext, start: &Location, path: &[u8], flags: u32, mode: u32) -> SysResult<Arc<OpenFile>> {
        let acc = flags as i32 & libc::O_ACCMODE;
        if acc == libc::O_RDONLY {
            return Err(Errno::EINVAL);
        }
        let dir = self.resolve(c, &fs.root, start, path, Follow::Yes)?;
        if !dir.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if dir.mount.readonly {
            return Err(Errno::EROFS);
        }
        let node = dir.node().tmpfile(c, mode & 0o7777 & !fs.umask)?;
        let ops = node.open(c, (flags as i32 & !(libc::O_TMPFILE | libc::O_CREAT)) as u32)?;
        let ino = node.stat(c).map(|s| s.st_ino).unwrap_or(0);
        let name = format!("#{ino} (deleted)");
        let d = Dentry::new(name.as_bytes(), Some(dir.dentry.clone()), node);
        let loc = Location { mount: dir.mount.clone(), dentry: d };
        Ok(OpenFile::new(ops, status_flags(flags & !(libc::O_DIRECTORY as u32)), Some(loc)))
    }
}

/// The flags an open file description keeps (F_GETFL shows these).
fn status_flags(flags: u32) -> u32 {
    let keep = libc::O_ACCMODE | libc::O_APPEND | libc::O_NONBLOCK | libc::O_DIRECT | libc::O_NOATIME | libc::O_SYNC | libc::O_DSYNC | libc::O_ASYNC | libc::O_LARGEFILE | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    flags & keep as u32
}

impl FsContext {
    pub fn new(vfs: &Arc<Vfs>) -> FsContext {
        FsContext { vfs: vfs.clone(), root: vfs.root(), cwd: vfs.root(), umask: 0o022 }
    }
}

/// Opens `path` for execution (following symlinks; EACCES unless a regular
/// file with an execute bit) and returns it with its absolute path.
pub fn open_exec(kernel: &Arc<Kernel>, fs: &FsContext, caller_tgid: i32, path: &[u8]) -> SysResult<(Arc<OpenFile>, Vec<u8>)> {
    let c = Caller::new(kernel, caller_tgid, caller_tgid);
    let loc = fs.vfs.resolve(&c, &fs.root, &fs.cwd, path, Follow::Yes)?;
    let st = loc.stat(&c)?;
    if st.st_mode & S_IFMT != S_IFREG || !c.creds().may_access(&st, 0o1) {
        return Err(Errno::EACCES);
    }
    let ops = loc.node().open(&c, libc::O_RDONLY as u32)?;
    let file = OpenFile::new(ops, libc::O_RDONLY as u32, Some(loc.clone()));
    Ok((file, loc.path()))
}

/// Changes `fs.cwd` to `path` (ENOTDIR, ENOENT…).
pub fn chdir(kernel: &Arc<Kernel>, fs: &mut FsContext, caller_tgid: i32, path: &[u8]) -> SysResult<()> {
    let c = Caller::new(kernel, caller_tgid, caller_tgid);
    let loc = fs.vfs.resolve(&c, &fs.root, &fs.cwd, path, Follow::Yes)?;
    if !loc.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    fs.cwd = loc;
    Ok(())
}

/// Wraps a host descriptor passed in from outside (the container's stdio).
pub fn host_file(fd: OwnedFd) -> SysResult<Arc<OpenFile>> {
    hostfd::open(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::fs::symlink;

    fn open_dir(p: &std::path::Path) -> OwnedFd {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: plain open of a NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: fd was just opened and is owned here.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    struct Tree {
        dir: std::path::PathBuf,
    }
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn tree() -> Tree {
        let dir = std::env::temp_dir().join(format!("veil-vfs-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/f"), b"hello").unwrap();
        std::fs::write(dir.join("top"), b"top").unwrap();
        symlink("b/f", dir.join("a/rel")).unwrap();
        symlink("/a/b", dir.join("abs")).unwrap();
        symlink("../../../../../../etc", dir.join("a/escape")).unwrap();
        symlink("/../../..", dir.join("rootup")).unwrap();
        symlink("loop2", dir.join("loop1")).unwrap();
        symlink("loop1", dir.join("loop2")).unwrap();
        Tree { dir }
    }

    fn setup() -> (Tree, Arc<Vfs>, FsContext) {
        let t = tree();
        let vfs = Vfs::new(open_dir(&t.dir), RootMode::ReadOnly, memfile()).unwrap();
        let fs = FsContext::new(&vfs);
        (t, vfs, fs)
    }

    const C: Caller<'static> = Caller { kernel: None, tgid: 1, tid: 1 };

    fn memfile() -> Arc<MemoryFile> {
        Arc::new(MemoryFile::new(64 << 20).unwrap())
    }

    fn path_of(vfs: &Vfs, fs: &FsContext, p: &str, follow: Follow) -> SysResult<Vec<u8>> {
        vfs.resolve(&C, &fs.root, &fs.cwd, p.as_bytes(), follow).map(|l| l.path())
    }

    #[test]
    fn container_mounts_land_at_their_paths() {
        let (t, vfs, fs) = setup();
        // A tmpfs under directories the image lacks, a host tree over an
        // existing one, and a one-file mount.
        vfs.mount_at(b"/new/deep/tmp", MountSource::Tmpfs { mode: 0o1777 }, false).unwrap();
        vfs.mount_at(b"/a", MountSource::HostDir(open_dir(&t.dir.join("a/b")), "/srv/b".into()), true).unwrap();
        let file = std::fs::File::open(t.dir.join("top")).unwrap();
        vfs.mount_at(b"/new/one", MountSource::HostFile(file.into(), "/srv/file".into()), true).unwrap();
        let rw = (libc::O_RDWR | libc::O_CREAT) as u32;
        vfs.open(&C, &fs, &fs.cwd, b"/new/deep/tmp/x", rw, 0o644).unwrap();
        assert_eq!(vfs.resolve(&C, &fs.root, &fs.cwd, b"/new/deep/tmp", Follow::Yes).unwrap().stat(&C).unwrap().st_mode & 0o7777, 0o1777);
        assert_eq!(path_of(&vfs, &fs, "/a/f", Follow::Yes).unwrap(), b"/a/f");
        assert_eq!(vfs.open(&C, &fs, &fs.cwd, b"/a/f", (libc::O_WRONLY) as u32, 0).err(), Some(Errno::EROFS));
        assert_eq!(vfs.open(&C, &fs, &fs.cwd, b"/a/g", rw, 0o644).err(), Some(Errno::EROFS));
        let one = vfs.open(&C, &fs, &fs.cwd, b"/new/one", libc::O_RDONLY as u32, 0).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(one.ops.read_at(None, &mut buf, 0).unwrap(), 3);
        assert_eq!(&buf[..3], b"top");
        assert!(!vfs.is_mount_point(&vfs.resolve(&C, &fs.root, &fs.cwd, b"/new/deep", Follow::Yes).unwrap()));
        assert_eq!(vfs.mount_at(b"/", MountSource::Tmpfs { mode: 0o755 }, false).err(), Some(Errno::EBUSY));
        // Nothing was made on the host.
        assert!(!t.dir.join("new").exists());
    }

    #[test]
    fn resolves_plain_paths_and_dotdot_at_root() {
        let (_t, vfs, fs) = setup();
        assert_eq!(path_of(&vfs, &fs, "/a/b/f", Follow::Yes).unwrap(), b"/a/b/f");
        assert_eq!(path_of(&vfs, &fs, "/..", Follow::Yes).unwrap(), b"/");
        assert_eq!(path_of(&vfs, &fs, "/../../a/./b/..", Follow::Yes).unwrap(), b"/a");
        assert_eq!(path_of(&vfs, &fs, "a//b/", Follow::Yes).unwrap(), b"/a/b");
        assert_eq!(path_of(&vfs, &fs, "/nope", Follow::Yes), Err(Errno::ENOENT));
        assert_eq!(path_of(&vfs, &fs, "/top/x", Follow::Yes), Err(Errno::ENOTDIR));
        assert_eq!(path_of(&vfs, &fs, "/top/", Follow::Yes), Err(Errno::ENOTDIR));
        assert_eq!(path_of(&vfs, &fs, "", Follow::Yes), Err(Errno::ENOENT));
        let long = format!("/{}", "x".repeat(256));
        assert_eq!(path_of(&vfs, &fs, &long, Follow::Yes), Err(Errno::ENAMETOOLONG));
    }

    #[test]
    fn follows_symlinks_inside_the_sandbox() {
        let (_t, vfs, fs) = setup();
        assert_eq!(path_of(&vfs, &fs, "/a/rel", Follow::Yes).unwrap(), b"/a/b/f");
        assert_eq!(path_of(&vfs, &fs, "/a/rel", Follow::No).unwrap(), b"/a/rel");
        // An absolute target resolves against the sandbox root.
        assert_eq!(path_of(&vfs, &fs, "/abs/f", Follow::Yes).unwrap(), b"/a/b/f");
        // "../" past the root stays at the root: this lands on the
        // sandbox's /etc (absent here), never the host's.
        assert_eq!(path_of(&vfs, &fs, "/a/escape", Follow::Yes), Err(Errno::ENOENT));
        assert_eq!(path_of(&vfs, &fs, "/rootup/a", Follow::Yes).unwrap(), b"/a");
        assert_eq!(path_of(&vfs, &fs, "/loop1", Follow::Yes), Err(Errno::ELOOP));
        assert_eq!(path_of(&vfs, &fs, "/loop1", Follow::No).unwrap(), b"/loop1");
    }

    #[test]
    fn mounts_proc_and_dev_over_the_host() {
        let (_t, vfs, fs) = setup();
        // The temp tree has no /dev: a sentry directory stands in for it.
        let l = vfs.resolve(&C, &fs.root, &fs.cwd, b"/dev/null", Follow::Yes).unwrap();
        assert_eq!(l.path(), b"/dev/null");
        assert_eq!(l.stat(&C).unwrap().st_mode & S_IFMT, libc::S_IFCHR);
        assert_eq!(path_of(&vfs, &fs, "/dev/..", Follow::Yes).unwrap(), b"/");
        assert_eq!(path_of(&vfs, &fs, "/proc/../a", Follow::Yes).unwrap(), b"/a");
    }

    #[test]
    fn devices_are_made_in_dev() {
        let (_t, vfs, fs) = setup();
        vfs.make_device(b"/dev/net/tun", libc::S_IFCHR | 0o660, libc::makedev(10, 200), (5, 6)).unwrap();
        vfs.make_device(b"/dev/null", libc::S_IFCHR | 0o600, libc::makedev(1, 3), (0, 0)).unwrap();
        let st = vfs.resolve(&C, &fs.root, &fs.cwd, b"/dev/net/tun", Follow::Yes).unwrap().stat(&C).unwrap();
        assert_eq!((st.st_mode, st.st_rdev, st.st_uid, st.st_gid), (libc::S_IFCHR | 0o660, libc::makedev(10, 200), 5, 6));
        let null = vfs.resolve(&C, &fs.root, &fs.cwd, b"/dev/null", Follow::Yes).unwrap().stat(&C).unwrap();
        assert_eq!(null.st_mode, libc::S_IFCHR | 0o600, "what was there is replaced");
        assert_eq!(vfs.open(&C, &fs, &fs.cwd, b"/dev/net/tun", libc::O_RDWR as u32, 0).err(), Some(Errno::ENXIO), "a device the sentry does not serve");
    }

    #[test]
    fn masked_and_readonly_paths() {
        let t = tree();
        let vfs = Vfs::new(open_dir(&t.dir), RootMode::Overlay, memfile()).unwrap();
        let fs = FsContext::new(&vfs);
        let open = |p: &str, flags: i32| vfs.open(&C, &fs, &fs.cwd, p.as_bytes(), flags as u32, 0o644);
        // As runc: read-only paths first, then the masks over them.
        vfs.cover(b"/a", Cover::ReadOnly).unwrap();
        assert_eq!(open("/a/rel", libc::O_WRONLY).err(), Some(Errno::EROFS));
        assert_eq!(open("/a/new", libc::O_WRONLY | libc::O_CREAT).err(), Some(Errno::EROFS));
        assert!(open("/a/rel", libc::O_RDONLY).is_ok(), "read-only paths stay readable");
        assert!(open("/new", libc::O_WRONLY | libc::O_CREAT).is_ok(), "the rest stays writable");
        vfs.cover(b"/top", Cover::Mask).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(open("/top", libc::O_RDONLY).unwrap().ops.read_at(None, &mut buf, 0), Ok(0), "a masked file reads as /dev/null");
        vfs.cover(b"/a/b", Cover::Mask).unwrap();
        assert_eq!(open("/a/rel", libc::O_RDONLY).err(), Some(Errno::ENOENT), "a masked directory is empty");
        assert_eq!(open("/a/b/new", libc::O_WRONLY | libc::O_CREAT).err(), Some(Errno::EROFS));
        assert_eq!(vfs.cover(b"/nothing", Cover::Mask), Err(Errno::ENOENT));
        assert_eq!(vfs.cover(b"/", Cover::ReadOnly), Err(Errno::EBUSY));
    }

    #[test]
    fn reads_host_files_and_refuses_writes_on_a_readonly_root() {
        let (_t, vfs, fs) = setup();
        let f = vfs.open(&C, &fs, &fs.cwd, b"/a/rel", libc::O_RDONLY as u32, 0).unwrap();
        let mut buf = [0u8; 16];
        let n = f.ops.read_at(None, &mut buf, 1).unwrap();
        assert_eq!(&buf[..n], b"ello");
        assert_eq!(f.ops.stat().unwrap().st_size, 5);
        assert_eq!(vfs.open(&C, &fs, &fs.cwd, b"/top", libc::O_WRONLY as u32, 0).err(), Some(Errno::EROFS));
        assert_eq!(vfs.open(&C, &fs, &fs.cwd, b"/new", (libc::O_WRONLY | libc::O_CREAT) as u32, 0o644).err(), Some(Errno::EROFS));
        assert_eq!(vfs.open(&C, &fs, &fs.cwd, b"/a", libc::O_WRONLY as u32, 0).err(), Some(Errno::EISDIR));
        assert_eq!(vfs.open(&C, &fs, &fs.cwd, b"/a/rel", (libc::O_RDONLY | libc::O_NOFOLLOW) as u32, 0).err(), Some(Errno::ELOOP));
        let d = vfs.open(&C, &fs, &fs.cwd, b"/a", (libc::O_RDONLY | libc::O_DIRECTORY) as u32, 0).unwrap();
        let mut names: Vec<Vec<u8>> = d.ops.getdents(&d).unwrap().into_iter().map(|e| e.name).collect();
        names.sort();
        assert_eq!(names, vec![b".".to_vec(), b"..".to_vec(), b"b".to_vec(), b"escape".to_vec(), b"rel".to_vec()]);
    }

    #[test]
    fn writes_land_in_memory_on_an_overlay_root() {
        let t = tree();
        let vfs = Vfs::new(open_dir(&t.dir), RootMode::Overlay, memfile()).unwrap();
        let fs = FsContext::new(&vfs);
        let f = vfs.open(&C, &fs, &fs.cwd, b"/a/new", (libc::O_RDWR | libc::O_CREAT | libc::O_EXCL) as u32, 0o644).unwrap();
        assert_eq!(f.location.as_ref().unwrap().path(), b"/a/new");
        assert_eq!(vfs.open(&C, &fs, &fs.cwd, b"/a/new", (libc::O_RDWR | libc::O_CREAT | libc::O_EXCL) as u32, 0o644).err(), Some(Errno::EEXIST));
        assert!(!t.dir.join("a/new").exists());
        let f = vfs.open(&C, &fs, &fs.cwd, b"/top", (libc::O_WRONLY | libc::O_TRUNC) as u32, 0).unwrap();
        assert_eq!(f.ops.stat().unwrap().st_size, 0);
        assert_eq!(std::fs::read(t.dir.join("top")).unwrap(), b"top");
        let shm = vfs.open(&C, &fs, &fs.cwd, b"/dev/shm/x", (libc::O_RDWR | libc::O_CREAT) as u32, 0o600).unwrap();
        assert!(shm.ops.memory_object().is_some());
        let tmp = vfs.open(&C, &fs, &fs.cwd, b"/a", (libc::O_RDWR | libc::O_TMPFILE) as u32, 0o600).unwrap();
        assert!(tmp.location.as_ref().unwrap().path().ends_with(b" (deleted)"));
        assert!(vfs.resolve(&C, &fs.root, &fs.cwd, b"/sys/devices/system/cpu/online", Follow::Yes).is_ok());
    }
}

/// The copy-on-write root end to end through the VFS: every kind of change
/// lands in memory and the host tree stays byte for byte what it was.
#[cfg(test)]
mod overlay_host_tests {
    use super::*;
    use crate::fs::node::SetAttr;
    use std::collections::BTreeMap;
    use std::os::fd::FromRawFd;

    const C: Caller<'static> = Caller { kernel: None, tgid: 1, tid: 1 };

    /// path → (mode, content or link target) of everything below `dir`.
    fn snapshot(dir: &std::path::Path) -> BTreeMap<String, (u32, Vec<u8>)> {
        use std::os::unix::fs::PermissionsExt;
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let md = std::fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                let body = if md.file_type().is_symlink() {
                    std::fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()
                } else if md.is_dir() {
                    stack.push(p.clone());
                    Vec::new()
                } else {
                    std::fs::read(&p).unwrap()
                };
                out.insert(rel, (md.permissions().mode(), body));
            }
        }
        out
    }

    #[test]
    fn host_tree_is_unchanged_by_every_kind_of_write() {
        let dir = std::env::temp_dir().join(format!("veil-cow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc/sub")).unwrap();
        std::fs::write(dir.join("etc/passwd"), b"root:x:0:0\n").unwrap();
        std::fs::write(dir.join("etc/sub/conf"), b"a=1\n").unwrap();
        std::fs::write(dir.join("bin"), b"\x7fELF").unwrap();
        std::os::unix::fs::symlink("etc/passwd", dir.join("link")).unwrap();
        let before = snapshot(&dir);

        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: plain open of a NUL-terminated path; the fd is owned below.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        // SAFETY: fd was just opened.
        let vfs = Vfs::new(unsafe { OwnedFd::from_raw_fd(fd) }, RootMode::Overlay, Arc::new(MemoryFile::new(64 << 20).unwrap())).unwrap();
        let fs = FsContext::new(&vfs);
        let at = |p: &str| vfs.resolve(&C, &fs.root, &fs.cwd, p.as_bytes(), Follow::No).unwrap();
        let rw = (libc::O_RDWR | libc::O_CREAT) as u32;
        // Create and write.
        let f = vfs.open(&C, &fs, &fs.cwd, b"/etc/new", rw, 0o644).unwrap();
        f.ops.memory_object().unwrap().write_at(0, b"x").unwrap();
        at("/etc/new").node().setattr(&C, &SetAttr { size: Some(10), ..Default::default() }).unwrap();
        // Overwrite a host file.
        let p = vfs.open(&C, &fs, &fs.cwd, b"/etc/passwd", (libc::O_WRONLY | libc::O_TRUNC) as u32, 0).unwrap();
        assert_eq!(p.ops.stat().unwrap().st_size, 0);
        p.ops.memory_object().unwrap().write_at(0, b"changed").unwrap();
        // Delete, rename, mkdir, rmdir, symlink, chmod, link.
        at("/").node().unlink(&C, b"bin").unwrap();
        at("/etc").node().rename(&C, b"sub", at("/").node(), b"moved", 0).unwrap();
        at("/").node().mkdir(&C, b"d", 0o755).unwrap();
        at("/d").node().mkdir(&C, b"e", 0o755).unwrap();
        at("/d").node().rmdir(&C, b"e").unwrap();
        at("/d").node().symlink(&C, b"s", b"/etc").unwrap();
        at("/link").node().setattr(&C, &SetAttr { mode: Some(0o600), ..Default::default() }).unwrap();
        at("/etc/passwd").node().setattr(&C, &SetAttr { mode: Some(0o600), uid: Some(5), ..Default::default() }).unwrap();
        at("/d").node().link(&C, b"hard", at("/etc/passwd").node()).unwrap();
        at("/").node().unlink(&C, b"link").unwrap();
        // The sandbox sees its changes…
        assert_eq!(vfs.resolve(&C, &fs.root, &fs.cwd, b"/bin", Follow::No).err(), Some(Errno::ENOENT));
        assert!(at("/moved/conf").stat(&C).is_ok());
        assert_eq!(at("/d/hard").stat(&C).unwrap().st_nlink, 2);
        // …the host sees none.
        assert_eq!(snapshot(&dir), before);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
