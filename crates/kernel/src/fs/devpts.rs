//! devpts: pseudo-terminals. Opening `ptmx` (or /dev/ptmx, a link to it)
//! allocates the lowest free index N and returns a new master; its replica
//! is `N` here while the master is open (mode 0620, group tty). The index
//! is free again once every descriptor of the pair has closed.
//!
//! Inode numbers follow Linux's devpts: the root is 1, ptmx 2, replica N
//! is N + 3; ptmx is char device 5:2 and replica N is 136 + N / 256 : N % 256.

use super::node::{synthetic_stat, Caller, Node, SetAttr, S_IFCHR, S_IFDIR};
use super::tty::Terminal;
use super::vfs::DEV_PTS;
use super::{DirEntry, FileOps};
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

/// Linux's default /proc/sys/kernel/pty/max.
pub const PTY_MAX: u32 = 4096;

/// One devpts instance: the terminals by index.
pub struct DevPts {
    /// Weak: a terminal lives as long as descriptors of it do; a dead
    /// entry is a free index.
    terminals: Mutex<BTreeMap<u32, Weak<Terminal>>>,
}

impl DevPts {
    pub fn new() -> Arc<DevPts> {
        Arc::new(DevPts { terminals: Mutex::new(BTreeMap::new()) })
    }

    /// The root directory to mount.
    pub fn root(self: &Arc<Self>) -> Arc<dyn Node> {
        Arc::new(PtsRoot { pts: self.clone() })
    }

    /// Every terminal still referenced (for controlling-terminal lookups).
    pub fn terminals(&self) -> Vec<Arc<Terminal>> {
        let live: Vec<Arc<Terminal>> = self.terminals.lock().unwrap().values().filter_map(Weak::upgrade).collect();
        live
    }

    /// Terminal `index` while its master is open (when /dev/pts/N exists).
    fn visible(&self, index: u32) -> Option<Arc<Terminal>> {
        let t = self.terminals.lock().unwrap().get(&index).and_then(Weak::upgrade);
        t.filter(|t| t.master_open())
    }

    /// A new terminal at the lowest free index.
    fn allocate(&self, c: &Caller) -> SysResult<Arc<Terminal>> {
        let kernel = c.kernel.map(Arc::downgrade).unwrap_or_default();
        let mut map = self.terminals.lock().unwrap();
        let index = (0..PTY_MAX).find(|i| map.get(i).is_none_or(|w| w.strong_count() == 0)).ok_or(Errno::ENOSPC)?;
        let term = Terminal::new(index, kernel, c.owner().0);
        map.insert(index, Arc::downgrade(&term));
        Ok(term)
    }
}

fn ptmx_stat() -> Stat {
    let mut st = synthetic_stat(DEV_PTS, 2, S_IFCHR | 0o666, 1, 0, 0);
    st.st_rdev = libc::makedev(5, 2);
    st.st_blksize = 1024;
    st
}

struct PtsRoot {
    pts: Arc<DevPts>,
}

fn parse_index(name: &[u8]) -> Option<u32> {
    // Canonical decimal only: "01" is not replica 1.
    if name.is_empty() || (name.len() > 1 && name[0] == b'0') || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

impl Node for PtsRoot {
    fn kind(&self) -> u32 {
        S_IFDIR
    }
    fn stat(&self, _c: &Caller) -> SysResult<Stat> {
        Ok(synthetic_stat(DEV_PTS, 1, S_IFDIR | 0o755, 2, 0, 0))
    }
    fn lookup(&self, _c: &Caller, name: &[u8]) -> SysResult<Arc<dyn Node>> {
        if name == b"ptmx" {
            return Ok(Arc::new(PtmxNode { pts: self.pts.clone() }));
        }
        let term = parse_index(name).and_then(|i| self.pts.visible(i)).ok_or(Errno::ENOENT)?;
        Ok(Arc::new(PtsNode { term }))
    }
    fn readdir(&self, _c: &Caller) -> SysResult<Vec<DirEntry>> {
        let mut v = vec![DirEntry { ino: 2, kind: libc::DT_CHR, name: b"ptmx".to_vec() }];
        for t in self.pts.terminals() {
            if t.master_open() {
                v.push(DirEntry { ino: t.index as u64 + 3, kind: libc::DT_CHR, name: t.index.to_string().into_bytes() });
            }
        }
        Ok(v)
    }
    /// Replicas come and go with their masters: always ask.
    fn cache_children(&self) -> bool {
        false
    }
}

/// /dev/pts/ptmx: each open is a new terminal.
struct PtmxNode {
    pts: Arc<DevPts>,
}

impl Node for PtmxNode {
    fn kind(&self) -> u32 {
        S_IFCHR
    }
    fn stat(&self, _c: &Caller) -> SysResult<Stat> {
        Ok(ptmx_stat())
    }
    fn open(&self, c: &Caller, _flags: u32) -> SysResult<Box<dyn FileOps>> {
        // A master never becomes a controlling terminal, O_NOCTTY or not.
        Ok(self.pts.allocate(c)?.master_file(ptmx_stat()))
    }
}

/// /dev/pts/N.
struct PtsNode {
    term: Arc<Terminal>,
}

impl Node for PtsNode {
    fn kind(&self) -> u32 {
        S_IFCHR
    }
    fn stat(&self, _c: &Caller) -> SysResult<Stat> {
        Ok(self.term.replica_stat())
    }
    fn open(&self, c: &Caller, flags: u32) -> SysResult<Box<dyn FileOps>> {
        self.term.open_replica(c, flags, None)
    }
    fn setattr(&self, _c: &Caller, attr: &SetAttr) -> SysResult<()> {
        self.term.set_node_attr(attr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::OpenFile;

    const C: Caller<'static> = Caller { kernel: None, tgid: 1, tid: 1 };

    #[test]
    fn ptmx_allocates_the_lowest_free_index_and_names_appear_while_open() {
        let pts = DevPts::new();
        let root = pts.root();
        let ptmx = root.lookup(&C, b"ptmx").unwrap();
        assert_eq!(ptmx.stat(&C).unwrap().st_rdev, libc::makedev(5, 2));
        let open = |n: &Arc<dyn Node>| OpenFile::new(n.open(&C, libc::O_RDWR as u32).unwrap(), libc::O_RDWR as u32, None);
        let m0 = open(&ptmx);
        let m1 = open(&ptmx);
        let names = |r: &Arc<dyn Node>| r.readdir(&C).unwrap().into_iter().map(|e| e.name).collect::<Vec<_>>();
        assert_eq!(names(&root), vec![b"ptmx".to_vec(), b"0".to_vec(), b"1".to_vec()]);
        let n1 = root.lookup(&C, b"1").unwrap();
        let st = n1.stat(&C).unwrap();
        assert_eq!((st.st_mode, st.st_gid, st.st_ino, st.st_rdev), (S_IFCHR | 0o620, 5, 4, libc::makedev(136, 1)));
        assert!(root.lookup(&C, b"01").is_err());
        // A new master is locked: its replica cannot be opened yet.
        assert_eq!(n1.open(&C, libc::O_RDWR as u32).err(), Some(Errno::EIO));
        drop(m0);
        assert_eq!(root.lookup(&C, b"0").err(), Some(Errno::ENOENT));
        // Index 0 is free again.
        let _m = open(&ptmx);
        assert!(root.lookup(&C, b"0").is_ok());
        drop(m1);
    }
}
