//! The sentry: a Linux kernel in user space.
//!
//! Each application thread is a [`task::Task`] driven by one host thread
//! (`loop { exit = context.switch(); handle(exit) }`); a blocking system call
//! blocks that host thread only. The kernel owns every task's registers and
//! memory map and reaches application memory through its own mapping of the
//! memory file, so the same code serves every platform.

#![warn(clippy::undocumented_unsafe_blocks)]

pub mod container;
mod fpframe;
pub mod fs;
pub mod futex;
pub mod creds;
pub mod error;
pub mod rlimit;
pub mod sched;
pub mod kernel;
pub mod legacy_entry;
pub mod loader;
pub mod mm;
pub mod net;
pub mod signal;
mod strace;
pub mod syscall_table;
pub mod syscalls;
pub mod task;
pub mod testing;
pub mod time;
pub mod wait;

pub use abi::Errno;
pub use error::KernelError;
pub use kernel::{Kernel, KernelConfig, LaunchSpec};

/// What a system call handler returns: the value for `rax`, or an errno.
pub type SysResult<T> = Result<T, Errno>;
