//! devfs: the sandbox's /dev, served by the sentry (the host's device
//! nodes are never exposed).

use super::node::{Caller, Node, S_IFCHR, S_IFDIR};
use super::tmpfs::TmpFs;
use super::vfs::DEV_DEV;
use memfile::MemoryFile;
use super::{FileOps, OpenFile};
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

/// Symbolic links every /dev has (runc's and the runtime spec's defaults).
const LINKS: &[(&[u8], &[u8])] = &[
    (b"fd", b"/proc/self/fd"),
    (b"ptmx", b"pts/ptmx"),
    (b"stdin", b"/proc/self/fd/0"),
    (b"stdout", b"/proc/self/fd/1"),
    (b"stderr", b"/proc/self/fd/2"),
];

const DEVICES: &[(&[u8], Device)] = &[
    (b"null", Device::Null),
    (b"zero", Device::Zero),
    (b"full", Device::Full),
    (b"random", Device::Random),
    (b"urandom", Device::Urandom),
    (b"tty", Device::Tty),
];

/// The sandbox's /dev: a tmpfs (as runc makes it) holding the default
/// device nodes, links, and the mount points of pts, shm and mqueue.
pub fn root(memfile: &Arc<MemoryFile>) -> Arc<dyn Node> {
    let root = TmpFs::new(memfile, DEV_DEV, 1).new_root(S_IFDIR | 0o755);
    let kernel = Caller { kernel: None, tgid: 0, tid: 0 };
    for (name, dev) in DEVICES {
        let (maj, min) = dev.number();
        root.mknod(&kernel, name, S_IFCHR | 0o666, libc::makedev(maj, min)).expect("a fresh tmpfs takes device nodes");
    }
    for (name, target) in LINKS {
        root.symlink(&kernel, name, target).expect("a fresh tmpfs takes links");
    }
    for name in [&b"pts"[..], b"shm", b"mqueue"] {
        root.mkdir(&kernel, name, 0o755).expect("a fresh tmpfs takes directories");
    }
    root
}

struct DevFile {
    dev: Device,
    /// The node's, as fstat shows it.
    st: Stat,
}

/// Opens the character device node `st` of a tmpfs (/dev's or one made
/// by mknod): ENXIO for devices the sentry does not serve.
pub fn open_rdev(c: &Caller, flags: u32, st: Stat) -> SysResult<Box<dyn FileOps>> {
    let (maj, min) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
    match DEVICES.iter().map(|(_, d)| *d).find(|d| d.number() == (maj, min)) {
        // The caller's controlling terminal: a pty of its session, or
        // the host terminal a session started from outside has as
        // stdio; ENXIO without one. fstat shows /dev/tty itself.
        Some(Device::Tty) => super::tty::open_controlling(c, flags, st),
        Some(dev) => Ok(Box::new(DevFile { dev, st })),
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
        Ok(self.st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_produce_and_consume_like_linux() {
        let mut b = [7u8; 8];
        assert_eq!(file(Device::Null).produce(&mut b), Ok(0));
        assert_eq!(file(Device::Zero).produce(&mut b), Ok(8));
        assert_eq!(b, [0; 8]);
        assert_eq!(file(Device::Full).consume(b"x"), Err(Errno::ENOSPC));
        assert_eq!(file(Device::Null).consume(b"xyz"), Ok(3));
        let mut r = [0u8; 64];
        assert_eq!(file(Device::Urandom).produce(&mut r), Ok(64));
        assert!(r.iter().any(|&x| x != 0));
    }

    fn file(dev: Device) -> DevFile {
        DevFile { dev, st: Stat::default() }
    }

    #[test]
    fn dev_is_a_tmpfs_with_the_default_nodes_and_links() {
        let memfile = Arc::new(MemoryFile::new(1 << 20).unwrap());
        let root = root(&memfile);
        let c = Caller { kernel: None, tgid: 0, tid: 0 };
        let null = root.lookup(&c, b"null").unwrap().stat(&c).unwrap();
        assert_eq!((null.st_mode, null.st_rdev), (S_IFCHR | 0o666, libc::makedev(1, 3)));
        assert!(root.lookup(&c, b"ptmx").unwrap().readlink(&c).is_ok());
        let zero = root.lookup(&c, b"zero").unwrap().open(&c, libc::O_RDONLY as u32).unwrap();
        assert_eq!(zero.stat().unwrap().st_rdev, libc::makedev(1, 5));
        root.mknod(&c, b"extra", S_IFCHR | 0o600, libc::makedev(1, 7)).unwrap();
        assert!(root.lookup(&c, b"extra").unwrap().open(&c, libc::O_WRONLY as u32).is_ok());
    }
}
