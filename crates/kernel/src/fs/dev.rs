//! devfs: the sandbox's /dev, served by the sentry (the host's device
//! nodes are never exposed).

use super::node::{synthetic_stat, Caller, LinkTarget, Node, StaticLink, S_IFCHR, S_IFDIR};
use super::vfs::DEV_DEV;
use super::{DirEntry, FileOps, OpenFile};
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Device {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
    Tty,
}

impl Device {
    /// (major, minor) as Linux numbers them.
    fn number(self) -> (u32, u32) {
        match self {
            Device::Null => (1, 3),
            Device::Zero => (1, 5),
            Device::Full => (1, 7),
            Device::Random => (1, 8),
            Device::Urandom => (1, 9),
            Device::Tty => (5, 0),
        }
    }
}

enum Entry {
    Dev(Device),
    Link(&'static [u8]),
    /// A mount point (shm, pts).
    Dir,
}

const ENTRIES: &[(&[u8], Entry)] = &[
    (b"null", Entry::Dev(Device::Null)),
    (b"zero", Entry::Dev(Device::Zero)),
    (b"full", Entry::Dev(Device::Full)),
    (b"random", Entry::Dev(Device::Random)),
    (b"urandom", Entry::Dev(Device::Urandom)),
    (b"tty", Entry::Dev(Device::Tty)),
    (b"fd", Entry::Link(b"/proc/self/fd")),
    (b"ptmx", Entry::Link(b"pts/ptmx")),
    (b"pts", Entry::Dir),
    (b"shm", Entry::Dir),
    (b"stdin", Entry::Link(b"/proc/self/fd/0")),
    (b"stdout", Entry::Link(b"/proc/self/fd/1")),
    (b"stderr", Entry::Link(b"/proc/self/fd/2")),
];

pub fn root() -> Arc<dyn Node> {
    Arc::new(DevRoot)
}

struct DevRoot;

impl Node for DevRoot {
    fn kind(&self) -> u32 {
        S_IFDIR
    }
    fn stat(&self, _c: &Caller) -> SysResult<Stat> {
        Ok(synthetic_stat(DEV_DEV, 1, S_IFDIR | 0o755, 2, 0, 0))
    }
    fn lookup(&self, _c: &Caller, name: &[u8]) -> SysResult<Arc<dyn Node>> {
        let (i, (_, e)) = ENTRIES.iter().enumerate().find(|(_, (n, _))| *n == name).ok_or(Errno::ENOENT)?;
        let ino = i as u64 + 2;
        Ok(match e {
            Entry::Dev(d) => Arc::new(DevNode { dev: *d, ino }),
            Entry::Link(t) => Arc::new(StaticLink { target: t.to_vec(), dev: DEV_DEV, ino }),
            Entry::Dir => Arc::new(super::node::EmptyDir { dev: DEV_DEV, ino }),
        })
    }
    fn readdir(&self, _c: &Caller) -> SysResult<Vec<DirEntry>> {
        Ok(ENTRIES
            .iter()
            .enumerate()
            .map(|(i, (n, e))| DirEntry { ino: i as u64 + 2, kind: match e {
                Entry::Dev(_) => libc::DT_CHR,
                Entry::Link(_) => libc::DT_LNK,
                Entry::Dir => libc::DT_DIR,
            }, name: n.to_vec() })
            .collect())
    }
}

struct DevNode {
    dev: Device,
    ino: u64,
}

fn dev_stat(dev: Device, ino: u64) -> Stat {
    let (maj, min) = dev.number();
    let mut st = synthetic_stat(DEV_DEV, ino, S_IFCHR | 0o666, 1, 0, 0);
    st.st_rdev = libc::makedev(maj, min);
    st
}

impl Node for DevNode {
    fn kind(&self) -> u32 {
        S_IFCHR
    }
    fn stat(&self, _c: &Caller) -> SysResult<Stat> {
        Ok(dev_stat(self.dev, self.ino))
    }
    fn readlink(&self, _c: &Caller) -> SysResult<LinkTarget> {
        Err(Errno::EINVAL)
    }
    fn open(&self, c: &Caller, flags: u32) -> SysResult<Box<dyn FileOps>> {
        if self.dev == Device::Tty {
            // The caller's controlling terminal: a pty of its session, or
            // the host terminal a session started from outside has as
            // stdio; ENXIO without one. fstat shows /dev/tty itself.
            return super::tty::open_controlling(c, flags, dev_stat(self.dev, self.ino));
        }
        Ok(Box::new(DevFile { dev: self.dev, ino: self.ino }))
    }
}

struct DevFile {
    dev: Device,
    ino: u64,
}

/// Opens the character device numbered `rdev` for a device node made by
/// mknod in a tmpfs (ENXIO for devices the sentry does not serve).
pub fn open_rdev(rdev: u64, ino: u64) -> SysResult<Box<dyn FileOps>> {
    let (maj, min) = (libc::major(rdev), libc::minor(rdev));
    let all = [Device::Null, Device::Zero, Device::Full, Device::Random, Device::Urandom];
    match all.into_iter().find(|d| d.number() == (maj, min)) {
        Some(dev) => Ok(Box::new(DevFile { dev, ino })),
        None => Err(Errno::ENXIO),
    }
}

fn fill_random(buf: &mut [u8]) -> SysResult<usize> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the destination is the unfilled tail of buf.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
            if e == libc::EINTR {
                continue;
            }
            return Err(Errno(e));
        }
        done += n as usize;
    }
    Ok(done)
}

impl DevFile {
    fn produce(&self, buf: &mut [u8]) -> SysResult<usize> {
        match self.dev {
            Device::Null => Ok(0),
            Device::Zero | Device::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            Device::Random | Device::Urandom => fill_random(buf),
            Device::Tty => Err(Errno::ENXIO),
        }
    }
    fn consume(&self, buf: &[u8]) -> SysResult<usize> {
        match self.dev {
            Device::Full => Err(Errno::ENOSPC),
            // Linux mixes what is written to random devices into its pool;
            // the host's pool needs nothing from us, so it is discarded.
            _ => Ok(buf.len()),
        }
    }
}

impl FileOps for DevFile {
    fn read(&self, _t: &TaskCtx, _f: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        self.produce(buf)
    }
    fn write(&self, _t: &TaskCtx, _f: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        self.consume(buf)
    }
    fn read_at(&self, _t: Option<&TaskCtx>, buf: &mut [u8], _off: u64) -> SysResult<usize> {
        self.produce(buf)
    }
    fn write_at(&self, _t: &TaskCtx, buf: &[u8], _off: u64) -> SysResult<usize> {
        self.consume(buf)
    }
    /// Seeking these devices always succeeds and lands at 0, as on Linux.
    fn seek(&self, file: &OpenFile, _offset: i64, _whence: i32) -> SysResult<u64> {
        *file.offset.lock().unwrap() = 0;
        Ok(0)
    }
    fn stat(&self) -> SysResult<Stat> {
        Ok(dev_stat(self.dev, self.ino))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_produce_and_consume_like_linux() {
        let mut b = [7u8; 8];
        assert_eq!(DevFile { dev: Device::Null, ino: 2 }.produce(&mut b), Ok(0));
        assert_eq!(DevFile { dev: Device::Zero, ino: 2 }.produce(&mut b), Ok(8));
        assert_eq!(b, [0; 8]);
        assert_eq!(DevFile { dev: Device::Full, ino: 2 }.consume(b"x"), Err(Errno::ENOSPC));
        assert_eq!(DevFile { dev: Device::Null, ino: 2 }.consume(b"xyz"), Ok(3));
        let mut r = [0u8; 64];
        assert_eq!(DevFile { dev: Device::Urandom, ino: 2 }.produce(&mut r), Ok(64));
        assert!(r.iter().any(|&x| x != 0));
        assert_eq!(dev_stat(Device::Null, 2).st_rdev, libc::makedev(1, 3));
    }
}
