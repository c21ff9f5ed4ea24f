//! The memory file: every page of application memory lives in one memfd.
//!
//! The sentry maps the whole file once (`MAP_SHARED`) and reads and writes
//! application memory through that mapping; platforms map ranges of the same
//! file into application address spaces (ptrace: `mmap` of the memfd in the
//! stub; KVM: the file is the guest's physical memory).
//!
//! The file is sparse: a range costs host memory only once it is touched, and
//! freeing a range punches a hole so the host gets the pages back.

#![warn(clippy::undocumented_unsafe_blocks)]

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

mod alloc;
mod file;

pub use file::{MemoryFile, Usage};
