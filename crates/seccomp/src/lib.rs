//! The sentry's own host system call allow-list.
//!
//! Installed by the sentry before the first instruction of application code;
//! any host system call not listed here kills the whole sandbox
//! (`SECCOMP_RET_KILL_PROCESS`, the process dies of SIGSYS). The application
//! itself never reaches this filter: its system calls are intercepted by
//! `PTRACE_SYSEMU` before seccomp runs, and served by the sentry.
//!
//! The list here is what the sentry needs whatever platform it runs; each
//! platform's registry entry adds the host calls that platform makes (the
//! KVM ioctls, ptrace and wait4, ...), so a sandbox on one platform cannot
//! make another's calls. Stub processes of the ptrace platform are forked
//! from the sentry and so inherit this filter; what the platform injects into
//! them (mmap, munmap, mprotect, rseq) and what they do before their first
//! stop (prctl, getppid, rt_sigprocmask, close_range, ptrace, kill, getpid)
//! is on the list.

use std::collections::BTreeMap;

use platform::registry::HostSyscall;

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
/// Platforms add their own (the KVM platform's) through the registry.
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
    (libc::SYS_membarrier, ArgIn { index: 0, values: &[1] }), // MEMBARRIER_CMD_GLOBAL, serving the application's membarrier

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

    // Identity and system information shown inside the sandbox.
    (libc::SYS_uname, Always),
    (libc::SYS_sysinfo, Always),
    (libc::SYS_getuid, Always),
    (libc::SYS_geteuid, Always),
    (libc::SYS_getgid, Always),
    (libc::SYS_getegid, Always),

    // Never made by the sentry: what a call into the vsyscall page becomes
    // when the host emulates it in a stub. Let through this list so that
    // the trap of `vsyscall_trap_filter` (which wins) decides.
    (libc::SYS_gettimeofday, Always),
    (libc::SYS_time, Always),
    (libc::SYS_getcpu, Always),
];

/// The system calls a call into the vsyscall page stands for.
const VSYSCALLS: [libc::c_long; 3] = [libc::SYS_gettimeofday, libc::SYS_time, libc::SYS_getcpu];

/// A second filter, installed after the allow-list, that turns gettimeofday,
/// time and getcpu into SIGSYS (`SECCOMP_RET_TRAP`). The host emulates a
/// call into the vsyscall page by running one of them through seccomp
/// before the tracer sees anything; with this trap, a ptrace stub stops
/// with SIGSYS instead, and the sentry serves the call as on every other
/// platform. The sentry itself never makes them (it reads clocks with
/// clock_gettime).
pub fn vsyscall_trap_filter() -> Result<BpfProgram, Error> {
    let rules = VSYSCALLS.iter().map(|&nr| (nr, Vec::new())).collect();
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Trap, TargetArch::x86_64)?;
    Ok(filter.try_into()?)
}

/// Compiles the sentry's allow-list plus the host system calls of the
/// platform it runs (`platform`: its registry entry's
/// [`host_syscalls`](platform::registry::Entry::host_syscalls)). Anything
/// else kills the process.
pub fn sentry_filter(platform: &[HostSyscall]) -> Result<BpfProgram, Error> {
    // None: allowed whatever the arguments; Some: one (argument, value) pair
    // per rule, the rules of a chain being OR-ed.
    let mut allowed: BTreeMap<i64, Option<Vec<(u8, u64)>>> = BTreeMap::new();
    let own = ALLOWED.iter().map(|(nr, allow)| match allow {
        Always => HostSyscall::any(*nr),
        ArgIn { index, values } => HostSyscall::arg_in(*nr, *index, values),
    });
    for call in own.chain(platform.iter().copied()) {
        let slot = allowed.entry(call.nr).or_insert_with(|| Some(Vec::new()));
        match (call.arg_in, slot.as_mut()) {
            (None, _) => *slot = None,
            (Some((index, values)), Some(pairs)) => pairs.extend(values.iter().map(|&v| (index, v))),
            (Some(_), None) => {}
        }
    }
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, pairs) in allowed {
        let chain = match pairs {
            // An empty chain matches the system call whatever its arguments.
            None => Vec::new(),
            Some(pairs) => pairs
                .into_iter()
                .map(|(index, v)| {
                    let c = SeccompCondition::new(index, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, v)?;
                    SeccompRule::new(vec![c])
                })
                .collect::<Result<_, _>>()?,
        };
        rules.insert(nr, chain);
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
    fn the_sentry_cannot_open_sockets() {
        // Its network stack works on packet sockets opened for it before
        // the filter (the `sandbox` mode) or on none at all.
        for nr in [libc::SYS_socket, libc::SYS_socketpair, libc::SYS_connect, libc::SYS_bind, libc::SYS_listen, libc::SYS_accept, libc::SYS_accept4] {
            assert!(!allowed_syscalls().any(|a| a == nr), "system call {nr} is allowed");
            for entry in platform::registry::PLATFORMS {
                assert!(!entry.host_syscalls.iter().any(|h| h.nr == nr), "{} allows system call {nr}", entry.name);
            }
        }
    }

    #[test]
    fn compiles() {
        let prog = sentry_filter(&[]).unwrap();
        assert!(prog.len() > ALLOWED.len());
    }

    #[test]
    fn every_platform_entry_compiles_and_adds_its_calls() {
        let base = sentry_filter(&[]).unwrap().len();
        for entry in platform::registry::PLATFORMS {
            let prog = sentry_filter(entry.host_syscalls).unwrap();
            assert!(entry.host_syscalls.is_empty() || prog.len() > base, "{} adds nothing", entry.name);
        }
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
