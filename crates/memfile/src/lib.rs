//! The memory file: every page of application memory lives in one memfd.
//!
//! The sentry maps the whole file once (`MAP_SHARED`) and reads and writes
//! application memory through that mapping; platforms map ranges of the same
//! file into application address spaces (ptrace: `mmap` of the memfd in the
//! stub; KVM: the file is the guest's physical memory).
//!
//! The file is sparse: a range costs host memory only once it is touched, and
//! freeing a range punches a hole so the host gets the pages back.

pub const PAGE_SIZE: u64 = 4096;

/// A page-aligned range of the memory file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileRange {
    pub start: u64,
    pub len: u64,
}

impl FileRange {
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MemFileError {
    #[error("memory file exhausted: {requested} bytes requested, {available} available")]
    Exhausted { requested: u64, available: u64 },
    #[error("{op}: {source}")]
    Host { op: &'static str, source: std::io::Error },
}

// API (implemented in this crate):
//
// pub struct MemoryFile { .. }                     Send + Sync
// impl MemoryFile {
//     pub fn new(size: u64) -> Result<MemoryFile, MemFileError>;
//         memfd_create("veil-memory", MFD_CLOEXEC), ftruncate(size), mmap whole MAP_SHARED|MAP_NORESERVE
//     pub fn fd(&self) -> std::os::fd::RawFd;
//     pub fn size(&self) -> u64;
//     pub fn allocate(&self, len: u64) -> Result<FileRange, MemFileError>;    // contiguous, page-aligned
//     pub fn free(&self, r: FileRange);                                      // punch hole, reuse later
//     pub fn as_ptr(&self, offset: u64) -> *mut u8;                          // sentry mapping
//     pub fn read(&self, offset: u64, buf: &mut [u8]);                      // bounds-checked copies
//     pub fn write(&self, offset: u64, buf: &[u8]);
//     pub fn zero(&self, r: FileRange);
//     pub fn copy_populated(&self, from: FileRange, to: u64);               // copies only pages that hold data (SEEK_DATA), for fork
//     pub fn usage(&self) -> Usage;                                         // allocated bytes, resident bytes (st_blocks)
// }
//! memfile
