//! Stub processes: an empty host process whose only mapping is the stub code
//! page (`syscall; int3`), in which application code runs under ptrace.
//!
//! The tracer drives the stub in two ways:
//! * running application code with `PTRACE_SYSEMU` (see `context.rs`);
//! * *injecting* a host system call into the stub to change its address
//!   space: registers are set so that the stub executes the `syscall` of the
//!   stub page with our arguments, then the `int3` right after it stops it
//!   again with SIGTRAP and `rax` holds the result.

use std::io;

use super::sys::{self, Pid};
use crate::{PlatformError, Regs, Result};

/// `syscall; int3`
pub(crate) const STUB_CODE: [u8; 3] = [0x0f, 0x05, 0xcc];

/// One past the highest user address on x86-64 with 4-level paging
/// (`TASK_SIZE_MAX`); munmap beyond it fails with EINVAL.
const TASK_SIZE: u64 = 0x7fff_ffff_f000;

const PAGE: u64 = 4096;

/// A live stub process, stopped in a ptrace stop whenever its tracer is not
/// inside `Context::switch`.
#[derive(Debug)]
pub(crate) struct Stub {
    /// 0 once the stub has been reaped (then there is nothing to kill).
    pub pid: Pid,
    /// Host tid of the thread that traces the stub: the only thread ptrace
    /// lets drive it.
    pub tracer: Pid,
    /// Register template for injected calls (valid segment selectors and
    /// flags, taken from the stub once at creation).
    template: Regs,
    stub_addr: u64,
}

fn host(op: &'static str) -> impl FnOnce(io::Error) -> PlatformError {
    move |e| PlatformError::host(op, e)
}

impl Stub {
    /// Forks a stub from the calling thread, which becomes its tracer, and
    /// empties its address space but for the stub page.
    ///
    /// The sentry is multithreaded, so between `fork` and the stop the child
    /// may only make raw system calls: no allocation, no locks, no std.
    pub(crate) fn spawn(memfd: i32, stub_addr: u64) -> Result<Stub> {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the child only runs `stub_child`, which is async-signal-safe
        // (raw system calls on stack values), as required after fork in a
        // multithreaded process.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(PlatformError::host("fork", io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: we are the freshly forked child.
            unsafe { stub_child(parent, memfd) }
        }
        let mut stub = Stub { pid, tracer: sys::current_tid(), template: Regs::default(), stub_addr };
        // From here on, dropping `stub` on an error path kills and reaps it.
        let status = sys::wait(pid).map_err(host("waitpid(new stub)"))?;
        if !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != libc::SIGSTOP {
            stub.pid = 0; // already dead, nothing to kill
            return Err(PlatformError::Unusable(format!("stub did not stop as expected (status {status:#x})")));
        }
        // TRACESYSGOOD: syscall stops report SIGTRAP|0x80, distinct from int3.
        // EXITKILL: if the tracer goes away the stub dies too.
        sys::set_options(pid, libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL)
            .map_err(host("PTRACE_SETOPTIONS"))?;
        sys::get_regs(pid, &mut stub.template).map_err(host("PTRACE_GETREGS"))?;
        // glibc registers an rseq area for every thread, in its TLS; the
        // child inherits the registration, and once the TLS is unmapped the
        // host would SIGSEGV the stub at the next preemption. Unregister it.
        match sys::get_rseq_config(pid) {
            Ok(c) if c.rseq_abi_pointer != 0 => {
                const RSEQ_FLAG_UNREGISTER: u64 = 1;
                stub.syscall(
                    libc::SYS_rseq,
                    [c.rseq_abi_pointer, c.rseq_abi_size as u64, RSEQ_FLAG_UNREGISTER, c.signature as u64, 0, 0],
                )
                .map_err(host("stub rseq(UNREGISTER)"))?;
            }
            Ok(_) => {}
            // Hosts older than 5.13 cannot tell; glibc's rseq needs 5.3+ and
            // unmapping below will surface any problem as a stub fault.
            Err(e) => log::debug!("PTRACE_GET_RSEQ_CONFIGURATION: {e}"),
        }
        // Everything the child inherited from the sentry goes, except the stub
        // page. (The vsyscall page, if any, cannot be unmapped and is harmless.)
        stub.syscall(libc::SYS_munmap, [0, stub_addr, 0, 0, 0, 0]).map_err(host("stub munmap(low)"))?;
        let above = stub_addr + PAGE;
        if above < TASK_SIZE {
            stub.syscall(libc::SYS_munmap, [above, TASK_SIZE - above, 0, 0, 0, 0])
                .map_err(host("stub munmap(high)"))?;
        }
        Ok(stub)
    }

    /// Makes the (stopped) stub execute system call `nr` and returns its
    /// result. Leaves the stub stopped at the `int3`; its registers are
    /// clobbered (the kernel owns the application's copy).
    pub(crate) fn syscall(&self, nr: libc::c_long, args: [u64; 6]) -> io::Result<u64> {
        let mut regs = self.template;
        regs.rip = self.stub_addr;
        regs.rax = nr as u64;
        // Not in a system call: no host syscall-restart logic may apply.
        regs.orig_rax = u64::MAX;
        regs.rdi = args[0];
        regs.rsi = args[1];
        regs.rdx = args[2];
        regs.r10 = args[3];
        regs.r8 = args[4];
        regs.r9 = args[5];
        sys::set_regs(self.pid, &regs)?;
        sys::cont(self.pid, 0)?;
        loop {
            let status = sys::wait(self.pid)?;
            if !libc::WIFSTOPPED(status) {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, format!("stub died (status {status:#x})")));
            }
            match libc::WSTOPSIG(status) {
                libc::SIGTRAP => break,
                // A stray signal (e.g. our interrupt signal) stopped the stub
                // before or after the call: suppress it and go on; interrupts
                // are tracked by the context's flag, not by the signal.
                sig if !matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE) => {
                    sys::cont(self.pid, 0)?
                }
                sig => {
                    return Err(io::Error::other(format!("stub faulted with signal {sig} during injected call")));
                }
            }
        }
        let mut out = Regs::default();
        sys::get_regs(self.pid, &mut out)?;
        if out.rip != self.stub_addr + STUB_CODE.len() as u64 {
            return Err(io::Error::other(format!("stub stopped at unexpected rip {:#x}", out.rip)));
        }
        let ret = out.rax as i64;
        if (-4095..0).contains(&ret) {
            return Err(io::Error::from_raw_os_error(-ret as i32));
        }
        Ok(out.rax)
    }
}

impl Drop for Stub {
    /// Kills and reaps the stub. Any thread of the sentry may reap it (wait
    /// covers the children and tracees of every thread of the thread group).
    fn drop(&mut self) {
        if self.pid > 0 {
            let _ = sys::kill(self.pid, libc::SIGKILL);
            let _ = sys::wait(self.pid);
        }
    }
}

/// The child side of `spawn`. Raw system calls only.
///
/// # Safety
/// Must only be called in a freshly forked child.
unsafe fn stub_child(parent: Pid, memfd: i32) -> ! {
    // SAFETY (whole block): raw system calls whose pointer arguments point to
    // locals of this frame; nothing here touches shared state of the sentry.
    unsafe {
        // Die with the thread that forked us (our tracer)...
        libc::syscall(libc::SYS_prctl, libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        // ...including if it died before the line above took effect.
        if libc::syscall(libc::SYS_getppid) as Pid != parent {
            libc::syscall(libc::SYS_exit_group, 1);
        }
        // The forking thread may block signals (our interrupt signal among
        // them); the stub must receive every signal so that ptrace sees it.
        let empty: u64 = 0;
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &empty as *const u64, 0usize, 8usize);
        // Keep only the memory file: the application must not reach any
        // other sentry fd, even by a bug of ours.
        if memfd > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, (memfd - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (memfd + 1) as u32, u32::MAX, 0u32);
        libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0);
        libc::syscall(libc::SYS_kill, libc::syscall(libc::SYS_getpid), libc::SIGSTOP);
        // The tracer never resumes us here: it redirects us to the stub page.
        loop {
            libc::syscall(libc::SYS_exit_group, 1);
        }
    }
}
