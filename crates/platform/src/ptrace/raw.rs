//! The floor every ptrace measurement is compared with: a forked child
//! looping on `getppid` under PTRACE_SYSEMU, served by a tracer that does
//! nothing but GETREGS, SETREGS (rax = the result), SYSEMU and waitpid.
//! Benchmarks use it so that the floor and what is measured against it run
//! in the same process, on the same machine state.

fn check(rc: libc::c_long, what: &str) {
    assert!(rc >= 0, "{what}: {}", std::io::Error::last_os_error());
}

fn wait_stop(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: valid out pointer.
    check(unsafe { libc::waitpid(pid, &mut status, libc::__WALL) } as _, "waitpid");
    assert!(libc::WIFSTOPPED(status), "tracee did not stop: {status:#x}");
    libc::WSTOPSIG(status)
}

/// A forked child looping on getppid, stopped at its first syscall entry.
pub struct RawTracee {
    pid: libc::pid_t,
}

impl RawTracee {
    /// Forks the child and stops it at its first system call.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        // SAFETY: the child only makes raw system calls (async-signal-safe).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: raw system calls with no pointer arguments.
            unsafe {
                libc::syscall(libc::SYS_prctl, libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0);
                libc::syscall(libc::SYS_kill, libc::syscall(libc::SYS_getpid), libc::SIGSTOP);
                loop {
                    libc::syscall(libc::SYS_getppid);
                }
            }
        }
        assert_eq!(wait_stop(pid), libc::SIGSTOP);
        // SAFETY: no pointers.
        check(
            unsafe {
                libc::ptrace(
                    libc::PTRACE_SETOPTIONS,
                    pid,
                    0,
                    libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL,
                )
            },
            "SETOPTIONS",
        );
        // SAFETY: no pointers; signal 0 suppresses the SIGSTOP.
        check(unsafe { libc::ptrace(libc::PTRACE_SYSEMU, pid, 0, 0) }, "SYSEMU");
        assert_eq!(wait_stop(pid), libc::SIGTRAP | 0x80);
        RawTracee { pid }
    }

    /// One application system call round trip.
    pub fn round_trip(&self, regs: &mut libc::user_regs_struct) {
        // SAFETY: `regs` is a valid user_regs_struct for GETREGS/SETREGS.
        unsafe {
            check(libc::ptrace(libc::PTRACE_GETREGS, self.pid, 0, regs as *mut _), "GETREGS");
            regs.rax = libc::getpid() as u64;
            check(libc::ptrace(libc::PTRACE_SETREGS, self.pid, 0, regs as *mut _), "SETREGS");
            check(libc::ptrace(libc::PTRACE_SYSEMU, self.pid, 0, 0), "SYSEMU");
        }
        let sig = wait_stop(self.pid);
        debug_assert_eq!(sig, libc::SIGTRAP | 0x80);
    }
}

impl RawTracee {
    /// Runs `n` round trips and returns how long they took.
    pub fn time_round_trips(&self, n: u64) -> std::time::Duration {
        // SAFETY: plain data, zero is valid.
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        let start = std::time::Instant::now();
        for _ in 0..n {
            self.round_trip(&mut regs);
        }
        start.elapsed()
    }
}

impl Drop for RawTracee {
    fn drop(&mut self) {
        // SAFETY: our child; reaping it.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), libc::__WALL);
        }
    }
}

