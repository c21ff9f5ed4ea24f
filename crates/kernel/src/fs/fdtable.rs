//! File descriptor tables: shared by threads (and by CLONE_FILES), copied
//! by fork.

use super::OpenFile;
use crate::SysResult;
use abi::Errno;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct FdEntry {
    pub file: Arc<OpenFile>,
    pub cloexec: bool,
}

pub struct FdTable {
    inner: Mutex<BTreeMap<i32, FdEntry>>,
    /// RLIMIT_NOFILE's soft limit (of the process that set it last).
    limit: AtomicI32,
}

impl FdTable {
    pub fn new() -> Arc<FdTable> {
        Arc::new(FdTable { inner: Mutex::new(BTreeMap::new()), limit: AtomicI32::new(1024) })
    }

    /// Descriptors are below this.
    pub fn limit(&self) -> i32 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Follows a new RLIMIT_NOFILE soft limit.
    pub fn set_limit(&self, n: u64) {
        self.limit.store(n.min(crate::rlimit::NR_OPEN) as i32, Ordering::Relaxed);
    }

    pub fn get(&self, fd: i32) -> SysResult<Arc<OpenFile>> {
        self.inner.lock().unwrap().get(&fd).map(|e| e.file.clone()).ok_or(Errno::EBADF)
    }

    pub fn entry(&self, fd: i32) -> SysResult<FdEntry> {
        self.inner.lock().unwrap().get(&fd).cloned().ok_or(Errno::EBADF)
    }

    /// Installs at the lowest free descriptor >= `min`.
    pub fn install_from(&self, file: Arc<OpenFile>, cloexec: bool, min: i32) -> SysResult<i32> {
        let mut t = self.inner.lock().unwrap();
        let mut fd = min.max(0);
        for (&k, _) in t.range(fd..) {
            if k != fd {
                break;
            }
            fd += 1;
        }
        if fd >= self.limit() {
            return Err(Errno::EMFILE);
        }
        t.insert(fd, FdEntry { file, cloexec });
        Ok(fd)
    }

    pub fn install(&self, file: Arc<OpenFile>, cloexec: bool) -> SysResult<i32> {
        self.install_from(file, cloexec, 0)
    }

    /// Installs at exactly `fd`, closing what was there (dup2/dup3).
    pub fn install_at(&self, fd: i32, file: Arc<OpenFile>, cloexec: bool) -> SysResult<()> {
        if fd < 0 || fd >= self.limit() {
            return Err(Errno::EBADF);
        }
        let old = self.inner.lock().unwrap().insert(fd, FdEntry { file, cloexec });
        drop(old);
        Ok(())
    }

    pub fn close(&self, fd: i32) -> SysResult<()> {
        let old = self.inner.lock().unwrap().remove(&fd);
        old.map(|_| ()).ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&self, fd: i32, on: bool) -> SysResult<()> {
        let mut t = self.inner.lock().unwrap();
        t.get_mut(&fd).map(|e| e.cloexec = on).ok_or(Errno::EBADF)
    }

    /// A copy for fork: same open file descriptions, new table.
    pub fn fork(&self) -> Arc<FdTable> {
        Arc::new(FdTable { inner: Mutex::new(self.inner.lock().unwrap().clone()), limit: AtomicI32::new(self.limit()) })
    }

    /// execve closes every close-on-exec descriptor.
    pub fn close_on_exec(&self) {
        let closed: Vec<FdEntry> = {
            let mut t = self.inner.lock().unwrap();
            let fds: Vec<i32> = t.iter().filter(|(_, e)| e.cloexec).map(|(&k, _)| k).collect();
            fds.iter().filter_map(|k| t.remove(k)).collect()
        };
        drop(closed);
    }

    pub fn fds(&self) -> Vec<i32> {
        self.inner.lock().unwrap().keys().copied().collect()
    }

    /// Closes everything (process exit). Descriptions are released outside the lock.
    pub fn clear(&self) {
        let all = std::mem::take(&mut *self.inner.lock().unwrap());
        drop(all);
    }
}
