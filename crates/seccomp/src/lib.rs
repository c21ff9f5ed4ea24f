//! The sentry's own host system call allow-list.
//!
//! Installed by the sentry before the first instruction of application code;
//! any host system call not listed here kills the whole sandbox
//! (`SECCOMP_RET_KILL_PROCESS`, the process dies of SIGSYS). The application
//! itself never reaches this filter: its system calls are intercepted by
//! `PTRACE_SYSEMU` before seccomp runs, and served by the sentry.
//!
//! Stub processes of the ptrace platform are forked from the sentry and so
//! inherit this filter; what the platform injects into them (mmap, munmap,
//! mprotect, rseq) and what they do before their first stop (prctl, getppid,
//! rt_sigprocmask, close_range, ptrace, kill, getpid) is on the list.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("building the seccomp filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("installing the seccomp filter: {0}")]
    Install(#[from] seccompiler::Error),
}

/// How a system call is allowed.
enum Allow {
    /// With any arguments.
    Always,
    /// Only when argument `index` (32-bit compare) is one of `values`.
    ArgIn { index: u8, values: &'static [u64] },
}
use Allow::*;

/// `ioctl` requests the sentry makes on host fds: terminal handling of the
/// console (TCGETS/TCSETS*, window size, foreground process group), FIONREAD,
/// and what Rust's std uses on any fd (FIONBIO for set_nonblocking, FIOCLEX).
const IOCTLS: &[u64] = &[
    libc::TCGETS,
    libc::TCSETS,
    libc::TCSETSW,
    libc::TCSETSF,
    libc::TIOCGWINSZ,
    libc::TIOCGPGRP,
    libc::TIOCSPGRP,
    libc::FIONREAD,
    libc::FIONBIO,
    libc::FIOCLEX,
    // The KVM platform at run time (vCPUs are created lazily, on a task's
    // first switch); numbers are _IO/_IOR/_IOW(0xAE, nr, size) from
    // linux/kvm.h.
    0xAE80,     // KVM_RUN
    0xAE41,     // KVM_CREATE_VCPU
    0xAE04,     // KVM_GET_VCPU_MMAP_SIZE
    0xAE03,     // KVM_CHECK_EXTENSION
    0x8090AE81, // KVM_GET_REGS
    0x4090AE82, // KVM_SET_REGS
    0x8138AE83, // KVM_GET_SREGS
    0x4138AE84, // KVM_SET_SREGS
    0x4008AE89, // KVM_SET_MSRS
    0x4008AE90, // KVM_SET_CPUID2
    0x9000AEA4, // KVM_GET_XSAVE
    0x5000AEA5, // KVM_SET_XSAVE
    0x4188AEA7, // KVM_SET_XCRS
];

/// The allow-list: one row per system call, grouped by why the sentry needs it.
#[rustfmt::skip]
const ALLOWED: &[(libc::c_long, Allow)] = &[
    // Threads (one host thread per task) and Rust std's thread machinery.
    (libc::SYS_clone, Always),          // threads; fork() of ptrace stubs
    (libc::SYS_clone3, Always),         // glibc >= 2.34 pthread_create
    (libc::SYS_futex, Always),
    (libc::SYS_set_robust_list, Always),
    (libc::SYS_rseq, Always),           // glibc registers it per thread; stubs unregister it
    (libc::SYS_sigaltstack, Always),    // std's stack-overflow guard
    (libc::SYS_rt_sigprocmask, Always),
    (libc::SYS_rt_sigtimedwait, Always), // the thread forwarding host signals to init (sigwait)
    (libc::SYS_rt_sigaction, Always),
    (libc::SYS_rt_sigreturn, Always),
    (libc::SYS_restart_syscall, Always),
    (libc::SYS_sched_yield, Always),
    (libc::SYS_sched_getaffinity, Always), // available_parallelism
    (libc::SYS_gettid, Always),
    (libc::SYS_getpid, Always),
    (libc::SYS_getppid, Always),        // stub child checks its parent is alive
    (libc::SYS_tgkill, Always),         // ptrace Context::interrupt
    (libc::SYS_kill, Always),           // killing stubs; a stub stopping itself
    (libc::SYS_exit, Always),
    (libc::SYS_exit_group, Always),
    (libc::SYS_prctl, Always),          // thread names, PDEATHSIG of stubs
    (libc::SYS_getrandom, Always),      // HashMap seeds

    // Memory: allocator, thread stacks, the memory file mapping; and the
    // calls injected into ptrace stubs to build application address spaces.
    (libc::SYS_mmap, Always),
    (libc::SYS_munmap, Always),
    (libc::SYS_mprotect, Always),
    (libc::SYS_madvise, Always),
    (libc::SYS_mremap, Always),
    (libc::SYS_brk, Always),            // glibc malloc's main arena

    // Time.
    (libc::SYS_clock_gettime, Always),  // vDSO fallback
    (libc::SYS_clock_nanosleep, Always),
    (libc::SYS_nanosleep, Always),

    // Files through fds the sentry holds (donated mounts, memfd, pipes).
    (libc::SYS_openat, Always),
    (libc::SYS_read, Always),
    (libc::SYS_write, Always),
    (libc::SYS_pread64, Always),
    (libc::SYS_pwrite64, Always),
    (libc::SYS_readv, Always),
    (libc::SYS_writev, Always),
    (libc::SYS_close, Always),
    (libc::SYS_close_range, Always),    // also: stubs drop every fd but the memfd
    (libc::SYS_fstat, Always),
    (libc::SYS_newfstatat, Always),
    (libc::SYS_statx, Always),
    (libc::SYS_getdents64, Always),
    (libc::SYS_readlinkat, Always),
    (libc::SYS_lseek, Always),          // also SEEK_DATA/SEEK_HOLE on the memory file
    (libc::SYS_fcntl, Always),
    (libc::SYS_dup, Always),
    (libc::SYS_dup3, Always),
    (libc::SYS_ioctl, ArgIn { index: 1, values: IOCTLS }),
    (libc::SYS_fallocate, Always),      // punching holes in the memory file
    (libc::SYS_ftruncate, Always),
    (libc::SYS_poll, Always),
    (libc::SYS_ppoll, Always),
    (libc::SYS_eventfd2, Always),
    (libc::SYS_pipe2, Always),
    (libc::SYS_sendfile, Always),

    // The control channel (a donated, connected unix socket; fds passed with
    // SCM_RIGHTS).
    (libc::SYS_sendmsg, Always),
    (libc::SYS_recvmsg, Always),
    (libc::SYS_sendto, Always),
    (libc::SYS_recvfrom, Always),
    (libc::SYS_shutdown, Always),

    // The ptrace platform: tracing stubs and reaping them.
    (libc::SYS_ptrace, Always),
    (libc::SYS_wait4, Always),
    (libc::SYS_waitid, Always),

    // Identity and system information shown inside the sandbox.
    (libc::SYS_uname, Always),
    (libc::SYS_sysinfo, Always),
    (libc::SYS_getuid, Always),
    (libc::SYS_geteuid, Always),
    (libc::SYS_getgid, Always),
    (libc::SYS_getegid, Always),
];

/// Compiles the sentry's allow-list. Anything else kills the process.
pub fn sentry_filter() -> Result<BpfProgram, Error> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, allow) in ALLOWED {
        let chain = match allow {
            // An empty chain matches the system call whatever its arguments.
            Always => Vec::new(),
            // One rule per value: rules of a chain are OR-ed.
            ArgIn { index, values } => values
                .iter()
                .map(|&v| {
                    let c = SeccompCondition::new(*index, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, v)?;
                    SeccompRule::new(vec![c])
                })
                .collect::<Result<_, _>>()?,
        };
        let previous = rules.insert(*nr, chain);
        debug_assert!(previous.is_none(), "system call {nr} listed twice");
    }
    let filter = SeccompFilter::new(rules, SeccompAction::KillProcess, SeccompAction::Allow, TargetArch::x86_64)?;
    Ok(filter.try_into()?)
}

/// Installs `prog` on every thread of the process (`SECCOMP_FILTER_FLAG_TSYNC`),
/// after setting `PR_SET_NO_NEW_PRIVS` (which seccompiler does first).
pub fn install(prog: &BpfProgram) -> Result<(), Error> {
    seccompiler::apply_filter_all_threads(prog)?;
    Ok(())
}

/// The system calls on the list, for documentation and `veil` diagnostics.
pub fn allowed_syscalls() -> impl Iterator<Item = i64> {
    ALLOWED.iter().map(|(nr, _)| *nr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles() {
        let prog = sentry_filter().unwrap();
        assert!(prog.len() > ALLOWED.len());
    }

    #[test]
    fn no_duplicates() {
        let mut v: Vec<_> = allowed_syscalls().collect();
        let n = v.len();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), n);
    }
}
