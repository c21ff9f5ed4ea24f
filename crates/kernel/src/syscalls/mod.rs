//! The system call handlers, one module per family, and the Linux x86-64
//! table they make ([`linux64`]). Handlers share argument helpers (path
//! resolution, iovecs, the caller's identity) from modules of their own,
//! never from each other.

use crate::syscall_table::SyscallTable;
use std::sync::OnceLock;

pub use crate::syscall_table::{name, Arg, Args, Entry, Handler, Support};

mod caller;
mod iovec;
mod path;

pub mod sys_attr;
pub mod sys_capability;
pub mod sys_copy_file_range;
pub mod sys_epoll;
pub mod sys_eventfd;
pub mod sys_fd;
pub mod sys_file;
pub mod sys_flock;
pub mod sys_futex;
pub mod sys_identity;
pub mod sys_inotify;
pub mod sys_link;
pub mod sys_memfd;
pub mod sys_mm;
pub mod sys_pipe;
pub mod sys_poll;
pub mod sys_prctl;
pub mod sys_process;
pub mod sys_random;
pub mod sys_read_write;
pub mod sys_rlimit;
pub mod sys_sched;
pub mod sys_signal;
pub mod sys_signalfd;
pub mod sys_socket;
pub mod sys_statfs;
pub mod sys_sync;
pub mod sys_sysinfo;
pub mod sys_time;
pub mod sys_timer;
pub mod sys_timerfd;
pub mod sys_tls;
pub mod sys_usage;
pub mod sys_utsname;
pub mod sys_xattr;

/// Every family's entries; a new family adds one line here.
const FAMILIES: &[&[Entry]] = &[
    sys_process::SYSCALLS,
    sys_mm::SYSCALLS,
    sys_signal::SYSCALLS,
    sys_read_write::SYSCALLS,
    sys_file::SYSCALLS,
    sys_link::SYSCALLS,
    sys_attr::SYSCALLS,
    sys_statfs::SYSCALLS,
    sys_sync::SYSCALLS,
    sys_xattr::SYSCALLS,
    sys_flock::SYSCALLS,
    sys_memfd::SYSCALLS,
    sys_copy_file_range::SYSCALLS,
    sys_pipe::SYSCALLS,
    sys_futex::SYSCALLS,
    sys_time::SYSCALLS,
    sys_timer::SYSCALLS,
    sys_fd::SYSCALLS,
    sys_socket::SYSCALLS,
    sys_epoll::SYSCALLS,
    sys_eventfd::SYSCALLS,
    sys_timerfd::SYSCALLS,
    sys_signalfd::SYSCALLS,
    sys_poll::SYSCALLS,
    sys_sched::SYSCALLS,
    sys_identity::SYSCALLS,
    sys_capability::SYSCALLS,
    sys_prctl::SYSCALLS,
    sys_tls::SYSCALLS,
    sys_rlimit::SYSCALLS,
    sys_usage::SYSCALLS,
    sys_sysinfo::SYSCALLS,
    sys_utsname::SYSCALLS,
    sys_random::SYSCALLS,
    sys_inotify::SYSCALLS,
];

/// The Linux x86-64 system call table the sentry serves. Built once: it
/// is a constant of the program, not state of any kernel.
pub fn linux64() -> &'static SyscallTable {
    static TABLE: OnceLock<SyscallTable> = OnceLock::new();
    TABLE.get_or_init(|| SyscallTable::new(FAMILIES))
}

/// One line per x86-64 system call: number, name, support level (`veil
/// syscalls`).
pub fn report() -> String {
    linux64().report()
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::SYSCALL_NAMES;

    #[test]
    fn table_builds_without_duplicates_and_names_match() {
        let t = linux64();
        let mut n = 0;
        for (nr, e) in t.entries().iter().enumerate() {
            if let Some(e) = e {
                assert_eq!(e.nr, nr);
                assert!(!SYSCALL_NAMES[nr].is_empty());
                n += 1;
            }
        }
        assert!(n > 20);
        let r = report();
        assert!(r.contains("getppid") && r.contains("ENOSYS"));
    }
}
