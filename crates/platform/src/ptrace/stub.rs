//! Stub processes: an empty host process whose only mapping is the stub code
//! page, in which application code runs under ptrace.
//!
//! A stub process has one *leader* thread, forked and traced by the platform's
//! factory thread (see `factory.rs`), which never runs application code: it
//! only serves as the thread into which `clone` is injected to make *stub
//! threads*, one per context running in the address space (see `thread.rs`).
//!
//! A tracer drives a stub thread in two ways:
//! * running application code with `PTRACE_SYSEMU` (see `context.rs`);
//! * *injecting* a host system call into it: registers are set so that the
//!   thread executes a `syscall` of the stub page with our arguments, then an
//!   `int3` right after it stops it again with SIGTRAP and `rax` holds the
//!   result.

use std::io;

use super::sys::{self, Pid};
use crate::{PlatformError, Regs, Result};

/// Offset in the stub page of `syscall; int3`, for injected calls.
pub(crate) const SYSCALL_ENTRY: u64 = 0;
/// Offset of the `clone` entry: `syscall`, then the parent stops at an `int3`
/// and the child parks (see [`STUB_CODE`]).
pub(crate) const CLONE_ENTRY: u64 = 16;
/// Where a new stub thread starts: just after the `clone` system call.
pub(crate) const CLONE_CHILD_START: u64 = CLONE_ENTRY + 2;
/// Offset of the parked loop of a new stub thread.
#[cfg(test)]
const PARK_LOOP: u64 = 23;
/// Offset just after the `int3` that stops the parent of a `clone`.
pub(crate) const CLONE_PARENT_STOP: u64 = 42;

/// The stub code page, padded with `int3`.
///
/// ```text
///  0: syscall                 ; SYSCALL_ENTRY: any injected call
///  2: int3
/// 16: syscall                 ; CLONE_ENTRY: clone(CLONE_THREAD|CLONE_VM...)
/// 18: test rax, rax
/// 21: jnz 41                  ; parent (or error): stop
/// 23: mov eax, SYS_poll       ; PARK_LOOP, the new thread: poll(NULL, 0, -1)
/// 28: xor edi, edi            ;   blocks until a signal or PTRACE_INTERRUPT,
/// 30: xor esi, esi            ;   touches no memory, needs no stack
/// 32: mov edx, -1
/// 37: syscall
/// 39: jmp 23
/// 41: int3                    ; CLONE_PARENT_STOP - 1
/// ```
///
/// A new stub thread starts untraced (the factory does not trace clones, and
/// ptrace lets only the thread that attaches drive a tracee, which must be
/// the host thread of the context the stub thread is for). Until that thread
/// seizes it, it sits in the park loop: it depends on nothing the
/// application can write (no memory operand, no stack), so it is harmless.
pub(crate) const STUB_CODE: [u8; 42] = {
    let mut c = [0xcc; 42];
    let body: [u8; 26] = [
        0x0f, 0x05, // syscall
        0x48, 0x85, 0xc0, // test rax, rax
        0x75, 0x12, // jnz +0x12 (to 41)
        0xb8, 0x07, 0x00, 0x00, 0x00, // mov eax, 7 (poll)
        0x31, 0xff, // xor edi, edi
        0x31, 0xf6, // xor esi, esi
        0xba, 0xff, 0xff, 0xff, 0xff, // mov edx, -1
        0x0f, 0x05, // syscall
        0xeb, 0xee, // jmp -0x12 (to 23)
        0xcc, // int3
    ];
    c[0] = 0x0f;
    c[1] = 0x05;
    let mut i = 0;
    while i < body.len() {
        c[CLONE_ENTRY as usize + i] = body[i];
        i += 1;
    }
    c
};

/// One past the highest user address on x86-64 with 4-level paging
/// (`TASK_SIZE_MAX`); munmap beyond it fails with EINVAL.
const TASK_SIZE: u64 = 0x7fff_ffff_f000;

const PAGE: u64 = 4096;

/// Flags of the `clone` that makes a stub thread: a thread of the stub
/// process sharing everything. No `CLONE_PTRACE`: the requesting host thread,
/// not the factory, becomes its tracer. No new stack: the park loop and every
/// injected call run on registers only.
pub(crate) const STUB_THREAD_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM) as u64;

fn host(op: &'static str) -> impl FnOnce(io::Error) -> PlatformError {
    move |e| PlatformError::host(op, e)
}

/// Makes the stopped tracee `tid` (traced by the calling thread) execute
/// system call `nr` at `stub_addr + entry`, and returns its result once it
/// stops at `stub_addr + stop` (just after an `int3`). The tracee's registers
/// are clobbered (the kernel owns the application's copy).
pub(crate) fn inject(
    tid: Pid,
    template: &Regs,
    stub_addr: u64,
    entry: u64,
    stop: u64,
    nr: libc::c_long,
    args: [u64; 6],
) -> io::Result<u64> {
    let mut regs = *template;
    regs.rip = stub_addr + entry;
    regs.rax = nr as u64;
    // Not in a system call: no host syscall-restart logic may apply.
    regs.orig_rax = u64::MAX;
    regs.rdi = args[0];
    regs.rsi = args[1];
    regs.rdx = args[2];
    regs.r10 = args[3];
    regs.r8 = args[4];
    regs.r9 = args[5];
    sys::set_regs(tid, &regs)?;
    sys::cont(tid, 0)?;
    loop {
        let status = sys::wait(tid)?;
        if !libc::WIFSTOPPED(status) {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, format!("stub died (status {status:#x})")));
        }
        match libc::WSTOPSIG(status) {
            // A ptrace event stop (e.g. a group-stop of a seized thread) is
            // not our int3 even when it reports SIGTRAP.
            _ if sys::stop_event(status) != 0 => sys::cont(tid, 0)?,
            libc::SIGTRAP => break,
            // A stray signal (e.g. our interrupt signal) stopped the stub
            // before or after the call: suppress it and go on; interrupts
            // are tracked by the context's flag, not by the signal.
            sig if !matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE) => sys::cont(tid, 0)?,
            sig => {
                return Err(io::Error::other(format!("stub faulted with signal {sig} during injected call")));
            }
        }
    }
    let mut out = Regs::default();
    sys::get_regs(tid, &mut out)?;
    if out.rip != stub_addr + stop {
        return Err(io::Error::other(format!("stub stopped at unexpected rip {:#x}", out.rip)));
    }
    let ret = out.rax as i64;
    if (-4095..0).contains(&ret) {
        return Err(io::Error::from_raw_os_error(-ret as i32));
    }
    Ok(out.rax)
}

/// The leader thread of a stub process, stopped in a ptrace stop under the
/// thread that forked it (the factory) whenever that thread is not injecting
/// into it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leader {
    /// The stub process's pid (= the leader's tid).
    pub pid: Pid,
    /// Register template for injected calls (valid segment selectors and
    /// flags, taken from the stub once at creation).
    pub template: Regs,
    pub stub_addr: u64,
}

impl Leader {
    /// Forks a stub from the calling thread, which becomes its tracer and
    /// its "parent" for `PR_SET_PDEATHSIG`, and empties its address space but
    /// for the stub page. The calling thread must outlive the stub (it is
    /// the factory thread).
    ///
    /// The sentry is multithreaded, so between `fork` and the stop the child
    /// may only make raw system calls: no allocation, no locks, no std.
    pub(crate) fn spawn(memfd: i32, stub_addr: u64) -> Result<Leader> {
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
        // From here on, dropping `guard` on an error path kills and reaps it.
        let mut guard = KillOnDrop(pid);
        let status = sys::wait(pid).map_err(host("waitpid(new stub)"))?;
        if !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != libc::SIGSTOP {
            guard.0 = 0; // already dead, nothing to kill
            return Err(PlatformError::Unusable(format!("stub did not stop as expected (status {status:#x})")));
        }
        // TRACESYSGOOD: syscall stops report SIGTRAP|0x80, distinct from int3.
        // EXITKILL: if the tracer goes away the stub dies too.
        sys::set_options(pid, libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL)
            .map_err(host("PTRACE_SETOPTIONS"))?;
        let mut leader = Leader { pid, template: Regs::default(), stub_addr };
        sys::get_regs(pid, &mut leader.template).map_err(host("PTRACE_GETREGS"))?;
        // glibc registers an rseq area for every thread, in its TLS; the
        // child inherits the registration, and once the TLS is unmapped the
        // host would SIGSEGV the stub at the next preemption. Unregister it.
        // (Threads cloned later start without one: CLONE_VM clears it.)
        match sys::get_rseq_config(pid) {
            Ok(c) if c.rseq_abi_pointer != 0 => {
                const RSEQ_FLAG_UNREGISTER: u64 = 1;
                leader
                    .syscall(
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
        leader.syscall(libc::SYS_munmap, [0, stub_addr, 0, 0, 0, 0]).map_err(host("stub munmap(low)"))?;
        let above = stub_addr + PAGE;
        if above < TASK_SIZE {
            leader
                .syscall(libc::SYS_munmap, [above, TASK_SIZE - above, 0, 0, 0, 0])
                .map_err(host("stub munmap(high)"))?;
        }
        guard.0 = 0;
        Ok(leader)
    }

    /// Injects system call `nr` into the (stopped) leader. Tracer only.
    pub(crate) fn syscall(&self, nr: libc::c_long, args: [u64; 6]) -> io::Result<u64> {
        inject(self.pid, &self.template, self.stub_addr, SYSCALL_ENTRY, SYSCALL_ENTRY + 3, nr, args)
    }

    /// Makes a new stub thread, parked and untraced, and returns its tid.
    /// Tracer only.
    pub(crate) fn clone_thread(&self) -> io::Result<Pid> {
        let args = [STUB_THREAD_CLONE_FLAGS, 0, 0, 0, 0, 0];
        let (entry, stop) = (CLONE_ENTRY, CLONE_PARENT_STOP);
        let tid = inject(self.pid, &self.template, self.stub_addr, entry, stop, libc::SYS_clone, args)?;
        Ok(tid as Pid)
    }
}

/// Kills and reaps a process on drop unless disarmed (pid 0). Any thread of
/// the sentry may reap it (wait covers the children and tracees of every
/// thread of the thread group).
pub(crate) struct KillOnDrop(pub Pid);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0 > 0 {
            let _ = sys::kill(self.0, libc::SIGKILL);
            let _ = sys::wait(self.0);
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
        // Die with the thread that forked us (the factory thread, which lives
        // as long as the platform)... The signal kills every thread of the
        // stub, including those cloned later.
        libc::syscall(libc::SYS_prctl, libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        // ...including if it died before the line above took effect.
        if libc::syscall(libc::SYS_getppid) as Pid != parent {
            libc::syscall(libc::SYS_exit_group, 1);
        }
        // The forking thread may block signals (our interrupt signal among
        // them); the stub must receive every signal so that ptrace sees it.
        // Stub threads inherit this empty mask.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_code_layout() {
        assert_eq!(&STUB_CODE[..3], &[0x0f, 0x05, 0xcc]);
        assert_eq!(&STUB_CODE[CLONE_ENTRY as usize..CLONE_ENTRY as usize + 2], &[0x0f, 0x05]);
        assert_eq!(STUB_CODE[PARK_LOOP as usize], 0xb8);
        assert_eq!(STUB_CODE[CLONE_PARENT_STOP as usize - 1], 0xcc);
        // jnz target: next instruction (23) + 0x12 = 41, the parent's int3.
        assert_eq!(PARK_LOOP + 0x12, CLONE_PARENT_STOP - 1);
        // jmp back: after it (41) - 0x12 = 23, the park loop.
        assert_eq!(41 - 0x12, PARK_LOOP);
    }
}
