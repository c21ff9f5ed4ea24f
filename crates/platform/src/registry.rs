//! Every platform the sentry can run applications on, in one table.
//!
//! An entry says what the rest of veil needs to know about a platform
//! without naming it: how to build it (which also answers whether it works
//! here), the host system calls it makes from the sentry (added to the
//! sentry's seccomp allow-list only when it runs), whether the sandbox must
//! keep `CAP_SYS_PTRACE`, and how many tasks it can run at once. The order of
//! [`PLATFORMS`] is the order in which `auto` tries them.

use std::sync::Arc;

use memfile::MemoryFile;

use crate::{Platform, PlatformError, Result};

/// A host system call a platform makes (from the sentry, or from stub
/// processes that inherit the sentry's filter), for the seccomp allow-list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostSyscall {
    pub nr: i64,
    /// `Some((index, values))`: allowed only when argument `index` (a 32-bit
    /// compare) is one of `values`; `None`: with any arguments.
    pub arg_in: Option<(u8, &'static [u64])>,
}

impl HostSyscall {
    /// Allowed with any arguments.
    pub const fn any(nr: i64) -> Self {
        HostSyscall { nr, arg_in: None }
    }

    /// Allowed only when argument `index` is one of `values`.
    pub const fn arg_in(nr: i64, index: u8, values: &'static [u64]) -> Self {
        HostSyscall { nr, arg_in: Some((index, values)) }
    }
}

/// One platform: what `--platform NAME` builds and what it needs.
pub struct Entry {
    pub name: &'static str,
    /// One line for `veil-sandbox platforms` and `--help`.
    pub summary: &'static str,
    /// Builds the platform over the sandbox's memory file; fails with
    /// [`PlatformError::Unusable`] (saying why) where it cannot work here.
    pub build: fn(&Arc<MemoryFile>) -> Result<Arc<dyn Platform>>,
    /// Host system calls the platform makes while it runs, beyond the
    /// sentry's own list.
    pub host_syscalls: &'static [HostSyscall],
    /// The sandbox must keep `CAP_SYS_PTRACE` (to trace its stubs).
    pub needs_ptrace_cap: bool,
    /// The most tasks it can run at once, when bounded.
    pub max_tasks: Option<usize>,
}

impl Entry {
    /// Builds the platform over a small memory file and drops it: `Ok` when
    /// it works here, else why not.
    pub fn probe(&self) -> Result<()> {
        let memfile = Arc::new(MemoryFile::new(64 << 20).map_err(|e| PlatformError::Unusable(format!("memory file: {e}")))?);
        (self.build)(&memfile).map(drop)
    }
}

/// `ioctl` requests the KVM platform makes at run time (vCPUs are created
/// lazily, on a task's first switch): `_IO/_IOR/_IOW(0xAE, nr, size)` from
/// linux/kvm.h. Building the VM happens before the filter is installed.
const KVM_IOCTLS: &[u64] = &[
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

/// KVM keeps one vCPU per running task and a VM holds at most this many.
const KVM_MAX_TASKS: usize = 500;

fn build_kvm(memfile: &Arc<MemoryFile>) -> Result<Arc<dyn Platform>> {
    Ok(Arc::new(crate::kvm::KvmPlatform::new(memfile.clone())?))
}

fn build_ptrace(memfile: &Arc<MemoryFile>) -> Result<Arc<dyn Platform>> {
    Ok(Arc::new(crate::ptrace::PtracePlatform::new(memfile.fd())?))
}

fn build_systrap(memfile: &Arc<MemoryFile>) -> Result<Arc<dyn Platform>> {
    Ok(Arc::new(crate::systrap::SystrapPlatform::new(memfile)?))
}

/// Every platform, in the order `auto` prefers them.
pub const PLATFORMS: &[Entry] = &[
    Entry {
        name: "systrap",
        summary: "each application thread in a stub process whose seccomp filter traps every system call to a handler that hands it to the sentry through shared memory",
        build: build_systrap,
        host_syscalls: &[
            // Stub processes: watching and killing them through pidfds.
            HostSyscall::any(libc::SYS_pidfd_open),
            HostSyscall::any(libc::SYS_pidfd_send_signal),
            // Reaping the template stub when the platform goes.
            HostSyscall::any(libc::SYS_wait4),
        ],
        needs_ptrace_cap: false,
        max_tasks: None,
    },
    Entry {
        name: "kvm",
        summary: "application code in guest ring 3 of a VM whose page tables the sentry builds",
        build: build_kvm,
        host_syscalls: &[HostSyscall::arg_in(libc::SYS_ioctl, 1, KVM_IOCTLS)],
        needs_ptrace_cap: false,
        max_tasks: Some(KVM_MAX_TASKS),
    },
    Entry {
        name: "ptrace",
        summary: "each application thread in a stub process stopped at every system call by PTRACE_SYSEMU",
        build: build_ptrace,
        host_syscalls: &[
            HostSyscall::any(libc::SYS_ptrace),
            // Reaping stubs.
            HostSyscall::any(libc::SYS_wait4),
            HostSyscall::any(libc::SYS_waitid),
        ],
        needs_ptrace_cap: true,
        max_tasks: None,
    },
];

/// The entry named `name`.
pub fn find(name: &str) -> Option<&'static Entry> {
    PLATFORMS.iter().find(|e| e.name == name)
}

/// The names `--platform` accepts: `auto`, then every entry.
pub fn names() -> impl Iterator<Item = &'static str> {
    std::iter::once("auto").chain(PLATFORMS.iter().map(|e| e.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_auto_is_not_an_entry() {
        let mut v: Vec<_> = names().collect();
        let n = v.len();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), n);
        assert!(find("auto").is_none());
    }

    #[test]
    fn every_entry_is_found_by_its_name() {
        for e in PLATFORMS {
            assert_eq!(find(e.name).map(|f| f.name), Some(e.name));
        }
    }
}
