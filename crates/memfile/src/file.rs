//! The memfd, the sentry's mapping of it, and the operations on its pages.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::Mutex;

use crate::alloc::Allocator;
use crate::{FileRange, MemFileError, PAGE_SIZE};

/// How much of the memory file is in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes handed out by [`MemoryFile::allocate`] and not yet freed.
    pub allocated: u64,
    /// Bytes the host actually backs with memory (`st_blocks * 512`): pages
    /// that were written and not punched out since.
    pub resident: u64,
}

/// One memfd holding all application memory, mapped whole into the sentry.
pub struct MemoryFile {
    fd: OwnedFd,
    base: NonNull<u8>,
    size: u64,
    alloc: Mutex<Allocator>,
}

// SAFETY: `base` points to a MAP_SHARED mapping that lives as long as the
// MemoryFile and is never remapped; it is plain memory that any thread may
// access. Races on the *contents* are the callers' business (as with
// application memory shared between threads); the allocator is behind a Mutex.
unsafe impl Send for MemoryFile {}
// SAFETY: see `Send`; every `&self` method is safe to call concurrently.
unsafe impl Sync for MemoryFile {}

fn host_err(op: &'static str) -> MemFileError {
    MemFileError::Host { op, source: std::io::Error::last_os_error() }
}

fn page_round_up(len: u64) -> Option<u64> {
    len.checked_add(PAGE_SIZE - 1).map(|l| l & !(PAGE_SIZE - 1))
}

impl MemoryFile {
    /// Creates a sparse memory file of `size` bytes (rounded up to pages) and
    /// maps it into the sentry. Nothing is backed by host memory until used.
    pub fn new(size: u64) -> Result<MemoryFile, MemFileError> {
        let size = page_round_up(size).ok_or(MemFileError::Exhausted { requested: size, available: 0 })?;
        const NAME: &CStr = c"veil-memory";
        // SAFETY: NAME is a valid NUL-terminated string; the call has no
        // memory effects on our side.
        let raw = unsafe { libc::memfd_create(NAME.as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(host_err("memfd_create"));
        }
        // SAFETY: `raw` is a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: plain syscall on an fd we own.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) } < 0 {
            return Err(host_err("ftruncate"));
        }
        // SAFETY: a new mapping at an address the kernel picks cannot alias
        // any existing Rust object. MAP_NORESERVE: the file is sparse, so we
        // do not want the whole size charged up front.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(host_err("mmap"));
        }
        Ok(MemoryFile {
            fd,
            base: NonNull::new(base.cast()).expect("mmap returned NULL"),
            size,
            alloc: Mutex::new(Allocator::new(size)),
        })
    }

    /// The memfd, for platforms to map into application address spaces.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Allocates `len` bytes (rounded up to whole pages) of contiguous,
    /// page-aligned file space. The pages read as zero.
    pub fn allocate(&self, len: u64) -> Result<FileRange, MemFileError> {
        let mut a = self.alloc.lock().unwrap();
        let exhausted = |a: &Allocator| MemFileError::Exhausted { requested: len, available: a.available() };
        let rounded = match page_round_up(len) {
            Some(0) => return Ok(FileRange { start: 0, len: 0 }),
            Some(l) => l,
            None => return Err(exhausted(&a)),
        };
        a.allocate(rounded).ok_or_else(|| exhausted(&a))
    }

    /// Frees `r` (as returned by [`allocate`](Self::allocate)): its pages go
    /// back to the host and the range may be handed out again.
    pub fn free(&self, r: FileRange) {
        if r.len == 0 {
            return;
        }
        self.check_range(r.start, r.len);
        assert!(r.start.is_multiple_of(PAGE_SIZE) && r.len.is_multiple_of(PAGE_SIZE), "memfile: unaligned free {r:?}");
        // Punch before the range becomes allocatable again, so that the next
        // owner finds zeros.
        self.punch(r);
        self.alloc.lock().unwrap().free(r);
    }

    /// The sentry's address of byte `offset` of the file.
    ///
    /// Panics if `offset` is past the end of the file.
    pub fn as_ptr(&self, offset: u64) -> *mut u8 {
        assert!(offset <= self.size, "memfile: offset {offset:#x} past end {:#x}", self.size);
        // SAFETY: offset <= size, so the result is inside the mapping or one
        // past its end.
        unsafe { self.base.as_ptr().add(offset as usize) }
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`. Panics when the
    /// range leaves the file. Note that reading a hole through the mapping
    /// makes the host allocate the page (shmem read faults allocate).
    pub fn read(&self, offset: u64, buf: &mut [u8]) {
        self.check_range(offset, buf.len() as u64);
        // SAFETY: the source range is inside the mapping (checked above) and
        // cannot overlap `buf`, which is ordinary Rust memory; volatile-free
        // copy is fine because the mapping is plain shared memory.
        unsafe { std::ptr::copy_nonoverlapping(self.as_ptr(offset), buf.as_mut_ptr(), buf.len()) }
    }

    /// Copies `buf` to `offset`. Panics when the range leaves the file.
    pub fn write(&self, offset: u64, buf: &[u8]) {
        self.check_range(offset, buf.len() as u64);
        // SAFETY: the destination range is inside the mapping (checked above)
        // and cannot overlap `buf`.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), self.as_ptr(offset), buf.len()) }
    }

    /// Makes `r` read as zeros and returns its memory to the host.
    pub fn zero(&self, r: FileRange) {
        self.check_range(r.start, r.len);
        assert!(r.start.is_multiple_of(PAGE_SIZE) && r.len.is_multiple_of(PAGE_SIZE), "memfile: unaligned zero {r:?}");
        self.punch(r);
    }

    /// Copies `from` to `[to, to + from.len)`, touching only the pages of
    /// `from` that hold data: holes stay holes in the destination (which is
    /// zeroed first), so copying a mostly untouched range (fork) does not
    /// materialise it.
    pub fn copy_populated(&self, from: FileRange, to: u64) {
        self.check_range(from.start, from.len);
        self.check_range(to, from.len);
        assert!(
            to >= from.end() || to + from.len <= from.start,
            "memfile: copy_populated between overlapping ranges {from:?} -> {to:#x}"
        );
        assert!(to.is_multiple_of(PAGE_SIZE) && from.start.is_multiple_of(PAGE_SIZE), "memfile: unaligned copy");
        if from.len == 0 {
            return;
        }
        self.punch(FileRange { start: to, len: page_round_up(from.len).unwrap() });
        let mut pos = from.start;
        while pos < from.end() {
            let Some(data) = self.seek(pos, libc::SEEK_DATA) else { break };
            if data >= from.end() {
                break;
            }
            // There is always a hole at the end of the file, so SEEK_HOLE
            // succeeds whenever SEEK_DATA did.
            let hole = self.seek(data, libc::SEEK_HOLE).unwrap_or(self.size).min(from.end());
            let len = (hole - data) as usize;
            // SAFETY: [data, hole) lies within `from`, [to + (data - from.start), ..)
            // within the destination; both are inside the mapping (checked)
            // and do not overlap (asserted).
            unsafe {
                std::ptr::copy_nonoverlapping(self.as_ptr(data), self.as_ptr(to + (data - from.start)), len)
            };
            pos = hole;
        }
    }

    /// Allocated and host-resident bytes.
    pub fn usage(&self) -> Usage {
        let allocated = self.alloc.lock().unwrap().allocated();
        // SAFETY: zeroed `stat` is a valid value; fstat fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is a valid out pointer, the fd is ours.
        let resident = if unsafe { libc::fstat(self.fd(), &mut st) } == 0 { st.st_blocks as u64 * 512 } else { 0 };
        Usage { allocated, resident }
    }

    fn check_range(&self, offset: u64, len: u64) {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.size),
            "memfile: range [{offset:#x}, +{len:#x}) outside the file ({:#x} bytes)",
            self.size
        );
    }

    /// Deallocates the pages of `r` in the host (they read as zeros after).
    fn punch(&self, r: FileRange) {
        if r.len == 0 {
            return;
        }
        // SAFETY: plain syscall on our fd; the range is within the file.
        let rc = unsafe {
            libc::fallocate(
                self.fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                r.start as libc::off_t,
                r.len as libc::off_t,
            )
        };
        if rc < 0 {
            // shmem always supports hole punching; failing here means the
            // pages would not read as zero, which must never go unnoticed.
            panic!("memfile: fallocate(PUNCH_HOLE, {r:?}): {}", std::io::Error::last_os_error());
        }
    }

    /// `lseek(SEEK_DATA / SEEK_HOLE)`; None when there is no more data.
    fn seek(&self, pos: u64, whence: libc::c_int) -> Option<u64> {
        // SAFETY: plain syscall on our fd. The file position is shared by
        // concurrent callers but we only use the return value, never the
        // position itself (no read/write without offset on this fd).
        let r = unsafe { libc::lseek(self.fd(), pos as libc::off_t, whence) };
        (r >= 0).then_some(r as u64)
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: the mapping was created in `new` with this size and no
        // reference into it can outlive `self` (as_ptr hands out raw pointers
        // whose use after drop is the caller's responsibility).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.size as usize) };
    }
}

impl std::fmt::Debug for MemoryFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryFile").field("fd", &self.fd()).field("size", &self.size).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn allocate_write_read_free() {
        let mf = MemoryFile::new(64 * GIB).unwrap();
        assert_eq!(mf.size(), 64 * GIB);
        let r = mf.allocate(10).unwrap();
        assert_eq!(r.len, PAGE_SIZE);
        mf.write(r.start + 5, b"hello");
        let mut buf = [0u8; 5];
        mf.read(r.start + 5, &mut buf);
        assert_eq!(&buf, b"hello");
        // SAFETY: the offset was written above and is inside the mapping.
        assert_eq!(unsafe { *mf.as_ptr(r.start + 5) }, b'h');
        assert!(mf.usage().resident >= PAGE_SIZE);
        assert_eq!(mf.usage().allocated, PAGE_SIZE);
        mf.free(r);
        assert_eq!(mf.usage(), Usage { allocated: 0, resident: 0 });
        // Reused, and reads as zero.
        let r2 = mf.allocate(PAGE_SIZE).unwrap();
        assert_eq!(r2.start, r.start);
        mf.read(r2.start + 5, &mut buf);
        assert_eq!(buf, [0; 5]);
    }

    #[test]
    fn exhausted() {
        let mf = MemoryFile::new(4 * PAGE_SIZE).unwrap();
        let _a = mf.allocate(3 * PAGE_SIZE).unwrap();
        match mf.allocate(2 * PAGE_SIZE) {
            Err(MemFileError::Exhausted { requested, available }) => {
                assert_eq!((requested, available), (2 * PAGE_SIZE, PAGE_SIZE))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn zero_punches() {
        let mf = MemoryFile::new(GIB).unwrap();
        let r = mf.allocate(4 * PAGE_SIZE).unwrap();
        mf.write(r.start, &[7u8; 4 * PAGE_SIZE as usize]);
        assert_eq!(mf.usage().resident, 4 * PAGE_SIZE);
        mf.zero(FileRange { start: r.start + PAGE_SIZE, len: 2 * PAGE_SIZE });
        assert_eq!(mf.usage().resident, 2 * PAGE_SIZE);
        let mut b = [1u8; 1];
        mf.read(r.start + PAGE_SIZE, &mut b);
        assert_eq!(b, [0]);
        mf.read(r.start + 3 * PAGE_SIZE, &mut b);
        assert_eq!(b, [7]);
    }

    #[test]
    fn copy_populated_copies_only_data() {
        let mf = MemoryFile::new(GIB).unwrap();
        let src = mf.allocate(256 * PAGE_SIZE).unwrap();
        let dst = mf.allocate(256 * PAGE_SIZE).unwrap();
        // Data in pages 3 and 200 only.
        mf.write(src.start + 3 * PAGE_SIZE + 1, b"abc");
        mf.write(src.start + 200 * PAGE_SIZE, b"xyz");
        // Stale data in the destination must not survive the copy.
        mf.write(dst.start + 50 * PAGE_SIZE, b"old");
        mf.copy_populated(src, dst.start);
        // 2 source pages + 2 destination pages resident, not 256. (Checked
        // before reading holes below: a read fault on a shmem hole allocates.)
        assert_eq!(mf.usage().resident, 4 * PAGE_SIZE);
        let mut b = [0u8; 3];
        mf.read(dst.start + 3 * PAGE_SIZE + 1, &mut b);
        assert_eq!(&b, b"abc");
        mf.read(dst.start + 200 * PAGE_SIZE, &mut b);
        assert_eq!(&b, b"xyz");
        mf.read(dst.start + 50 * PAGE_SIZE, &mut b);
        assert_eq!(b, [0; 3]);
    }

    #[test]
    #[should_panic(expected = "outside the file")]
    fn out_of_bounds_write_panics() {
        let mf = MemoryFile::new(PAGE_SIZE).unwrap();
        mf.write(PAGE_SIZE - 2, b"abc");
    }
}
