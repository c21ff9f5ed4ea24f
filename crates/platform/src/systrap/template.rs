//! The template stub: a process forked from the sentry once, before the
//! sentry's own seccomp filter exists, that makes every stub process by
//! forking itself on request (so stubs carry no sentry filter, and no
//! ptrace is needed to build them).
//!
//! The template runs only the stub code. It keeps the memory file (fd 3) and
//! the shared region (fd 4); a stub it forks maps its own slice of the
//! region, closes fd 4, installs the stub filter and waits for the sentry.
//! The template checks every second that the sentry is still its parent
//! and exits when not (PDEATHSIG would tie it to the forking thread, and the
//! sandbox drops privileges only while it has one thread); stubs die with
//! the template (their PDEATHSIG).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::stub::{self, MEMFILE_FD, REGION_FD};
use crate::{PlatformError, Result};

/// What the forked child needs, computed before `fork` (the child may only
/// make raw system calls).
pub(crate) struct Plan {
    pub memfd: i32,
    pub region_fd: i32,
    pub base: u64,
    pub handler: u64,
    pub restorer: u64,
    pub entry: u64,
    /// glibc's rseq registration of the forking thread (address, size).
    pub rseq: Option<(u64, u32)>,
}

/// The template process. It is a child of the sentry (of whichever thread
/// made it) and dies with it: it checks every second that its parent is
/// still the sentry, and stubs die with it (their PDEATHSIG).
pub(crate) struct Template {
    pid: i32,
    /// Readable once the template is gone (a zombie included).
    pidfd: OwnedFd,
}

impl Template {
    /// Forks the template from the calling thread.
    pub(crate) fn start(mut plan: Plan) -> Result<Template> {
        plan.rseq = rseq_area();
        let pid = fork_template(&plan)?;
        // SAFETY: pidfd_open of our child, reaped only by Drop.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if fd < 0 {
            let e = io::Error::last_os_error();
            // SAFETY: our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            return Err(PlatformError::host("pidfd_open(systrap template)", e));
        }
        // SAFETY: a fresh fd we own.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Template { pid, pidfd })
    }

    /// Is the template still running?
    pub(crate) fn alive(&self) -> bool {
        let mut p = libc::pollfd { fd: self.pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, no wait.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        !(r > 0 && p.revents & libc::POLLIN != 0)
    }
}

impl Drop for Template {
    fn drop(&mut self) {
        // SAFETY: a signal through our pidfd, then reaping our own child.
        unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, self.pidfd.as_raw_fd(), libc::SIGKILL, 0usize, 0u32);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// The calling thread's rseq area as glibc registered it.
fn rseq_area() -> Option<(u64, u32)> {
    unsafe extern "C" {
        static __rseq_offset: isize;
        static __rseq_size: u32;
    }
    // SAFETY: glibc (2.35+) exports these as constants after start-up.
    let (offset, size) = unsafe { (__rseq_offset, __rseq_size) };
    if size == 0 {
        return None;
    }
    let tp: u64;
    // SAFETY: on x86-64 glibc keeps the thread pointer at fs:0.
    unsafe { std::arch::asm!("mov {}, fs:0", out(reg) tp) };
    // glibc registers the area with the original 32-byte length, whatever
    // feature size it announces; unregistering needs the same length.
    Some((tp.wrapping_add(offset as u64), size.max(32)))
}

fn fork_template(plan: &Plan) -> Result<i32> {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child only runs `template_child`: raw system calls on
    // values computed before the fork, as required in a multithreaded
    // process.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(PlatformError::host("fork (systrap template)", io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: we are the freshly forked child.
        unsafe { template_child(parent, plan) }
    }
    Ok(pid)
}

fn die() -> ! {
    // SAFETY: exit_group has no preconditions.
    unsafe { libc::syscall(libc::SYS_exit_group, 1) };
    unreachable!()
}

/// The child side of the fork. Raw system calls only; ends in the stub
/// code, which unmaps everything of the sentry.
///
/// # Safety
/// Must only be called in a freshly forked child.
unsafe fn template_child(parent: i32, plan: &Plan) -> ! {
    use libc::syscall as sys;
    // SAFETY (whole block): raw system calls whose pointer arguments point to
    // locals of this frame or to the plan, which the fork copied.
    unsafe {
        if sys(libc::SYS_getppid) as i32 != parent {
            die();
        }
        // Everything blocked: the template and every stub's control thread
        // run with all signals blocked; stub threads unblock them.
        let all: u64 = !0;
        sys(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK as u64, &all as *const u64, 0usize, 8usize);
        // The memory file at fd 3 and the region at fd 4, nothing else.
        if sys(libc::SYS_dup3, plan.memfd as u64, 1000u64, libc::O_CLOEXEC as u64) < 0
            || sys(libc::SYS_dup3, plan.region_fd as u64, 1001u64, libc::O_CLOEXEC as u64) < 0 {
            die();
        }
        if sys(libc::SYS_dup3, 1000u64, MEMFILE_FD, 0u64) < 0 || sys(libc::SYS_dup3, 1001u64, REGION_FD, 0u64) < 0 {
            die();
        }
        sys(libc::SYS_close_range, 0u64, 2u64, 0u64);
        sys(libc::SYS_close_range, REGION_FD + 1, u32::MAX as u64, 0u64);
        // No privileges: stubs run as nobody where it is mapped, with no
        // capabilities, and cannot be traced or dumped.
        if sys(libc::SYS_setresgid, 65534u64, 65534u64, 65534u64) == 0 {
            sys(libc::SYS_setresuid, 65534u64, 65534u64, 65534u64);
        }
        #[repr(C)]
        struct CapData(u32, u32, u32);
        let mut header = [0x2008_0522u32, 0]; // _LINUX_CAPABILITY_VERSION_3
        let data = [CapData(0, 0, 0), CapData(0, 0, 0)];
        sys(libc::SYS_capset, header.as_mut_ptr(), data.as_ptr());
        sys(libc::SYS_prctl, libc::PR_SET_DUMPABLE as u64, 0u64, 0u64, 0u64, 0u64);
        if let Some((area, size)) = plan.rseq {
            const RSEQ_FLAG_UNREGISTER: u64 = 1;
            const RSEQ_SIG: u64 = 0x5305_3053;
            sys(libc::SYS_rseq, area, size as u64, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
        }
        // Every signal to the stub handler, on the alternate stack, with all
        // signals blocked while it runs; children reaped by the host.
        #[repr(C)]
        struct KSigaction {
            handler: u64,
            flags: u64,
            restorer: u64,
            mask: u64,
        }
        const SA_RESTORER: u64 = 0x0400_0000;
        let act = KSigaction {
            handler: plan.handler,
            flags: (libc::SA_SIGINFO | libc::SA_ONSTACK) as u64 | SA_RESTORER,
            restorer: plan.restorer,
            mask: !0,
        };
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let ignore = KSigaction { handler: libc::SIG_IGN as u64, flags: SA_RESTORER, restorer: plan.restorer, mask: 0 };
            let a = if sig == libc::SIGCHLD { &ignore } else { &act };
            sys(libc::SYS_rt_sigaction, sig as u64, a as *const KSigaction, 0usize, 8usize);
        }
        // The template's own slice (slot 0 of the region) at the base.
        let r = sys(
            libc::SYS_mmap,
            plan.base,
            stub::SLICE_SIZE,
            (libc::PROT_READ | libc::PROT_WRITE) as u64,
            (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
            REGION_FD,
            0u64,
        );
        if r as u64 != plan.base {
            die();
        }
        let pid = sys(libc::SYS_getpid);
        std::arch::asm!(
            "jmp {entry}",
            entry = in(reg) plan.entry,
            in("r12") plan.base,
            in("r15") pid,
            in("r13") parent as u64,
            options(noreturn),
        );
    }
}
