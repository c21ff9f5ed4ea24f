//! The host-backed file system: the container's root directory on the host,
//! reached only through descriptors rooted at the root's fd.
//!
//! Each node holds an `O_PATH|O_NOFOLLOW` descriptor opened relative to its
//! parent's, one component at a time; the sentry follows symbolic links
//! itself. No absolute host path is used after boot, so nothing the
//! application names can lead outside the root.

use super::node::{dtype, Caller, LinkTarget, Node, S_IFDIR, S_IFMT, S_IFREG};
use super::{DirEntry, FileOps, OpenFile};
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// Per-mount facts every node needs.
pub struct HostFs {
    pub dev: u64,
    pub readonly: bool,
}

pub struct HostNode {
    fs: Arc<HostFs>,
    /// `O_PATH|O_NOFOLLOW` descriptor of this inode.
    fd: Arc<OwnedFd>,
    /// The parent directory's descriptor: regular files are re-opened for
    /// I/O as (parent, name), since an O_PATH descriptor cannot be
    /// upgraded without /proc/self/fd.
    parent: Option<Arc<OwnedFd>>,
    name: CString,
    kind: u32,
}

fn errno() -> Errno {
    Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
}

/// Retries a host call interrupted by a host signal.
fn retry<T: PartialOrd + Default>(mut f: impl FnMut() -> T) -> Result<T, Errno> {
    loop {
        let r = f();
        if r >= T::default() {
            return Ok(r);
        }
        let e = errno();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

fn cname(name: &[u8]) -> SysResult<CString> {
    CString::new(name).map_err(|_| Errno::EINVAL)
}

/// fstatat(fd, "", AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW), converted.
pub fn host_fstat(fd: RawFd) -> SysResult<Stat> {
    // SAFETY: an all-zero libc::stat is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: "" is a valid C string and st is a valid out-pointer.
    retry(|| unsafe { libc::fstatat(fd, c"".as_ptr(), &mut st, libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(Stat {
        st_dev: st.st_dev,
        st_ino: st.st_ino,
        st_nlink: st.st_nlink,
        st_mode: st.st_mode,
        st_uid: st.st_uid,
        st_gid: st.st_gid,
        __pad0: 0,
        st_rdev: st.st_rdev,
        st_size: st.st_size,
        st_blksize: st.st_blksize,
        st_blocks: st.st_blocks,
        st_atime: st.st_atime,
        st_atime_nsec: st.st_atime_nsec,
        st_mtime: st.st_mtime,
        st_mtime_nsec: st.st_mtime_nsec,
        st_ctime: st.st_ctime,
        st_ctime_nsec: st.st_ctime_nsec,
        __unused: [0; 3],
    })
}

fn openat(dir: RawFd, name: &std::ffi::CStr, flags: i32, mode: u32) -> SysResult<OwnedFd> {
    // SAFETY: name is a valid C string; the result is checked.
    let fd = retry(|| unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: fd was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl HostFs {
    /// The root node over `root` (an O_PATH|O_DIRECTORY descriptor).
    pub fn new_root(root: OwnedFd, readonly: bool, dev: u64) -> SysResult<Arc<HostNode>> {
        let st = host_fstat(root.as_raw_fd())?;
        if st.st_mode & S_IFMT != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let fs = Arc::new(HostFs { dev, readonly });
        Ok(Arc::new(HostNode { fs, fd: Arc::new(root), parent: None, name: c".".to_owned(), kind: S_IFDIR }))
    }

    /// A one-file mount over `file`, a descriptor open for I/O (for
    /// writing too unless `readonly`).
    pub fn new_file_root(file: OwnedFd, readonly: bool, dev: u64) -> SysResult<Arc<HostNode>> {
        if host_fstat(file.as_raw_fd())?.st_mode & S_IFMT != S_IFREG {
            return Err(Errno::EINVAL);
        }
        let fs = Arc::new(HostFs { dev, readonly });
        Ok(Arc::new(HostNode { fs, fd: Arc::new(file), parent: None, name: c".".to_owned(), kind: S_IFREG }))
    }
}

impl HostNode {
    /// Opens this inode for I/O with `flags` (never following a link the
    /// host might have swapped in meanwhile).
    fn reopen(&self, flags: i32) -> SysResult<OwnedFd> {
        let flags = flags | libc::O_NOFOLLOW;
        match &self.parent {
            Some(p) => openat(p.as_raw_fd(), &self.name, flags, 0),
            // A one-file mount holds the file open already: share it (all
            // I/O is positional, so the shared offset never matters).
            None if self.kind == S_IFREG => {
                // SAFETY: F_DUPFD_CLOEXEC on our own descriptor; checked.
                let fd = retry(|| unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })?;
                // SAFETY: fcntl just returned this descriptor.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                if flags & libc::O_TRUNC != 0 {
                    // SAFETY: ftruncate on our own descriptor.
                    retry(|| unsafe { libc::ftruncate(fd.as_raw_fd(), 0) })?;
                }
                Ok(fd)
            }
            // A directory root: "." relative to itself.
            None => openat(self.fd.as_raw_fd(), c".", flags, 0),
        }
    }
}

impl Node for HostNode {
    fn kind(&self) -> u32 {
        self.kind
    }

    fn stat(&self, _c: &Caller) -> SysResult<Stat> {
        let mut st = host_fstat(self.fd.as_raw_fd())?;
        st.st_dev = self.fs.dev;
        Ok(st)
    }

    fn lookup(&self, _c: &Caller, name: &[u8]) -> SysResult<Arc<dyn Node>> {
        if self.kind != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let name = cname(name)?;
        let fd = openat(self.fd.as_raw_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        let kind = host_fstat(fd.as_raw_fd())?.st_mode & S_IFMT;
        Ok(Arc::new(HostNode { fs: self.fs.clone(), fd: Arc::new(fd), parent: Some(self.fd.clone()), name, kind }))
    }

    fn readdir(&self, _c: &Caller) -> SysResult<Vec<DirEntry>> {
        let dir = openat(self.fd.as_raw_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        read_host_dir(dir.as_raw_fd())
    }

    fn readlink(&self, _c: &Caller) -> SysResult<LinkTarget> {
        if self.kind != libc::S_IFLNK {
            return Err(Errno::EINVAL);
        }
        let mut buf = vec![0u8; 4096];
        // SAFETY: buf is valid for buf.len() bytes; "" with an O_PATH link
        // fd reads the link itself.
        let n = retry(|| unsafe { libc::readlinkat(self.fd.as_raw_fd(), c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })?;
        buf.truncate(n as usize);
        Ok(LinkTarget::Path(buf))
    }

    fn open(&self, _c: &Caller, flags: u32) -> SysResult<Box<dyn FileOps>> {
        if self.kind != S_IFREG {
            // Host fifos, sockets and device nodes are not served: the
            // sandbox's devices are the sentry's /dev.
            return Err(Errno::ENXIO);
        }
        let f = flags as i32;
        let acc = f & libc::O_ACCMODE;
        if (acc != libc::O_RDONLY || f & libc::O_TRUNC != 0) && self.fs.readonly {
            return Err(Errno::EROFS);
        }
        let fd = self.reopen(acc | (f & libc::O_TRUNC))?;
        Ok(Box::new(HostRegularFile { fd, dev: self.fs.dev }))
    }

    fn create(&self, _c: &Caller, name: &[u8], flags: u32, mode: u32) -> SysResult<(Arc<dyn Node>, Box<dyn FileOps>)> {
        if self.fs.readonly {
            return Err(Errno::EROFS);
        }
        let name = cname(name)?;
        let acc = flags as i32 & libc::O_ACCMODE;
        let fd = openat(self.fd.as_raw_fd(), &name, acc | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW, mode)?;
        let path_fd = openat(self.fd.as_raw_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        let node = Arc::new(HostNode { fs: self.fs.clone(), fd: Arc::new(path_fd), parent: Some(self.fd.clone()), name, kind: S_IFREG });
        Ok((node, Box::new(HostRegularFile { fd, dev: self.fs.dev })))
    }
}

/// All entries of a host directory except "." and "..".
pub fn read_host_dir(fd: RawFd) -> SysResult<Vec<DirEntry>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = retry(|| unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) })? as usize;
        if n == 0 {
            return Ok(out);
        }
        out.extend(parse_dirents64(&buf[..n]).into_iter().filter(|e| e.name != b"." && e.name != b".."));
    }
}

/// Parses `linux_dirent64` records.
pub fn parse_dirents64(mut b: &[u8]) -> Vec<DirEntry> {
    let mut out = Vec::new();
    while b.len() >= 19 {
        let ino = u64::from_ne_bytes(b[0..8].try_into().unwrap());
        let reclen = u16::from_ne_bytes(b[16..18].try_into().unwrap()) as usize;
        if reclen < 19 || reclen > b.len() {
            break;
        }
        let kind = b[18];
        let name = &b[19..reclen];
        let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
        out.push(DirEntry { ino, kind, name: name.to_vec() });
        b = &b[reclen..];
    }
    out
}

/// An open regular host file. The sentry keeps the offset (in the
/// description) and uses positional host I/O, so the host descriptor's own
/// offset never matters and descriptions can be shared freely.
pub struct HostRegularFile {
    fd: OwnedFd,
    dev: u64,
}

impl HostRegularFile {
    fn size(&self) -> SysResult<u64> {
        Ok(host_fstat(self.fd.as_raw_fd())?.st_size as u64)
    }
}

impl FileOps for HostRegularFile {
    fn read(&self, _t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        let mut off = file.offset.lock().unwrap();
        let n = self.read_at(None, buf, *off)?;
        *off += n as u64;
        Ok(n)
    }
    fn write(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        let mut off = file.offset.lock().unwrap();
        if file.flags() & libc::O_APPEND as u32 != 0 {
            *off = self.size()?;
        }
        let n = self.write_at(t, buf, *off)?;
        *off += n as u64;
        Ok(n)
    }
    fn read_at(&self, _t: Option<&TaskCtx>, buf: &mut [u8], offset: u64) -> SysResult<usize> {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = retry(|| unsafe { libc::pread(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), offset as i64) })?;
        Ok(n as usize)
    }
    fn write_at(&self, _t: &TaskCtx, buf: &[u8], offset: u64) -> SysResult<usize> {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = retry(|| unsafe { libc::pwrite(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), offset as i64) })?;
        Ok(n as usize)
    }
    fn seek(&self, file: &OpenFile, offset: i64, whence: i32) -> SysResult<u64> {
        match whence {
            libc::SEEK_DATA | libc::SEEK_HOLE => {
                // The host knows where the holes are; its own offset is unused.
                // SAFETY: lseek on our own descriptor.
                let r = retry(|| unsafe { libc::lseek(self.fd.as_raw_fd(), offset, whence) })?;
                *file.offset.lock().unwrap() = r as u64;
                Ok(r as u64)
            }
            _ => super::node::seek_in(file, offset, whence, self.size()?),
        }
    }
    fn stat(&self) -> SysResult<Stat> {
        let mut st = host_fstat(self.fd.as_raw_fd())?;
        st.st_dev = self.dev;
        Ok(st)
    }
}

/// The DT_* type of a host entry, for synthetic listings.
pub fn entry_type(mode: u32) -> u8 {
    dtype(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dirent_records() {
        let mut b = Vec::new();
        for (ino, name) in [(7u64, &b"abc"[..]), (9, b"de")] {
            let reclen = (19 + name.len() + 1 + 7) & !7;
            let start = b.len();
            b.extend_from_slice(&ino.to_ne_bytes());
            b.extend_from_slice(&0i64.to_ne_bytes());
            b.extend_from_slice(&(reclen as u16).to_ne_bytes());
            b.push(libc::DT_REG);
            b.extend_from_slice(name);
            b.resize(start + reclen, 0);
        }
        let v = parse_dirents64(&b);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0], DirEntry { ino: 7, kind: libc::DT_REG, name: b"abc".to_vec() });
        assert_eq!(v[1].name, b"de");
    }
}
