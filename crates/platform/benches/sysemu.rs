//! The cost of one application system call round trip under ptrace.
//!
//! * `raw_sysemu_round_trip`: the floor. A forked child loops on `getppid`
//!   under PTRACE_SYSEMU; per stop the tracer does GETREGS, SETREGS (rax =
//!   the result), SYSEMU and waitpid, nothing else.
//! * `platform_switch_round_trip`: the same loop run through
//!   `PtraceContext::switch` in a `PtraceAddressSpace`; the difference with
//!   the floor is the platform's overhead.
//!
//! One measured iteration is one system call round trip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use memfile::MemoryFile;
use veil_platform::ptrace::PtracePlatform;
use veil_platform::{AddressSpace, Context, CpuState, Exit, Perms, Platform, Regs};

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
struct RawTracee {
    pid: libc::pid_t,
}

impl RawTracee {
    fn new() -> Self {
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

    fn round_trip(&self, regs: &mut libc::user_regs_struct) {
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

impl Drop for RawTracee {
    fn drop(&mut self) {
        // SAFETY: our child; reaping it.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), libc::__WALL);
        }
    }
}

fn raw(c: &mut Criterion) {
    let tracee = RawTracee::new();
    // SAFETY: plain data, zero is valid.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    c.bench_function("raw_sysemu_round_trip", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                tracee.round_trip(&mut regs);
            }
            start.elapsed()
        })
    });
}

fn platform(c: &mut Criterion) {
    let mf = MemoryFile::new(1 << 30).unwrap();
    let p = PtracePlatform::new(mf.fd()).unwrap();
    let as_: Arc<dyn AddressSpace> = p.new_address_space().unwrap();
    let ctx: Arc<dyn Context> = p.new_context().unwrap();
    const CODE: u64 = 0x40_0000;
    let code = mf.allocate(4096).unwrap();
    // loop: mov eax, 110 (getppid); syscall; jmp loop
    mf.write(code.start, &[0xb8, 110, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]);
    as_.map_file(CODE, code.start, 4096, Perms::READ | Perms::EXEC).unwrap();
    let mut cpu = CpuState::new(Regs { rip: CODE, ..Regs::default() });
    assert_eq!(ctx.switch(&mut cpu, &as_).unwrap(), Exit::Syscall);
    c.bench_function("platform_switch_round_trip", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                // SAFETY: getpid has no preconditions.
                cpu.regs.rax = unsafe { libc::getpid() } as u64;
                let exit = ctx.switch(&mut cpu, &as_).unwrap();
                debug_assert_eq!(exit, Exit::Syscall);
                let _ = exit;
            }
            start.elapsed()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = raw, platform
}
criterion_main!(benches);
