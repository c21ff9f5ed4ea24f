//! The Linux x86-64 ABI served by the sentry: what applications see.
//!
//! Constants that merely coincide with the host's (open flags, clone flags)
//! are taken from `libc` by the kernel; this crate holds what the sentry
//! itself defines or lays out: errno, system call names, signals, and the
//! structures it writes into application memory.

#![warn(clippy::undocumented_unsafe_blocks)]

pub mod errno;
pub mod signal;
pub mod syscalls;
pub mod types;

pub use errno::Errno;
pub use syscalls::{NR_SYSCALLS, SYSCALL_NAMES};
