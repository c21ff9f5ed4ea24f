//! The filter against real processes: each case forks a child that installs
//! it, so the test process itself stays unfiltered.

use std::sync::Arc;

use memfile::MemoryFile;
use platform::ptrace::PtracePlatform;
use platform::registry;
use platform::{AddressSpace, CpuState, Exit, Perms, Platform, Regs};
use veil_seccomp::{install, sentry_filter};

/// Runs `body` in a forked child after installing the sentry filter for
/// platform `platform` (None: the sentry's own list alone); returns the
/// child's raw wait status. `body` returns the child's exit code.
fn in_filtered_child(platform: Option<&str>, body: impl FnOnce() -> i32) -> i32 {
    let calls = platform.map_or(&[][..], |name| registry::find(name).unwrap().host_syscalls);
    // Compiled before fork: the child should do as little as possible.
    let prog = sentry_filter(calls).unwrap();
    // SAFETY: the child runs `body` and exits without returning into the test
    // harness; glibc's fork keeps malloc usable in the child.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = match install(&prog) {
            Ok(()) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101),
            Err(_) => 100,
        };
        // SAFETY: leaving the child without running the harness' destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: valid out pointer; our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    status
}

#[test]
fn listed_syscall_succeeds() {
    let status = in_filtered_child(None, || {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::syscall(libc::SYS_getpid) };
        if pid > 0 { 0 } else { 1 }
    });
    assert!(libc::WIFEXITED(status), "status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0);
}

#[test]
fn unlisted_syscall_kills_with_sigsys() {
    let status = in_filtered_child(None, || {
        // SAFETY: setns on an invalid fd would fail harmlessly if allowed.
        unsafe { libc::syscall(libc::SYS_setns, -1, 0) };
        0
    });
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
}

#[test]
fn unlisted_ioctl_kills_with_sigsys() {
    let status = in_filtered_child(None, || {
        // SAFETY: TIOCSTI on fd -1 would fail with EBADF if allowed.
        unsafe { libc::ioctl(-1, libc::TIOCSTI, 0) };
        0
    });
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
}

#[test]
fn listed_ioctl_is_allowed() {
    let status = in_filtered_child(None, || {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD on fd -1 fails with EBADF, writing nothing.
        let r = unsafe { libc::ioctl(-1, libc::FIONREAD, &mut n) };
        if r == -1 { 0 } else { 1 }
    });
    assert!(libc::WIFEXITED(status), "status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0);
}

/// The filter covers what the ptrace platform does: stub creation, running
/// application code, injected map_file, killing the stub. The application's
/// own system call (reboot, not on the list) is trapped by SYSEMU and never
/// reaches the filter.
#[test]
fn ptrace_platform_round_trip_under_the_filter() {
    // Boot-time work (memfd_create is not on the list) happens before the
    // filter, as in the sentry.
    let mf = MemoryFile::new(1 << 30).unwrap();
    let p = PtracePlatform::new(mf.fd()).unwrap();
    const CODE: u64 = 0x40_0000;
    const DATA: u64 = 0x50_0000;
    let code = mf.allocate(4096).unwrap();
    // mov eax, 169 (reboot); syscall; mov rax, DATA; mov rcx, [rax]; int3
    let mut bytes = vec![0xb8, 169, 0, 0, 0, 0x0f, 0x05, 0x48, 0xb8];
    bytes.extend_from_slice(&DATA.to_le_bytes());
    bytes.extend_from_slice(&[0x48, 0x8b, 0x08, 0xcc]);
    mf.write(code.start, &bytes);
    let data = mf.allocate(4096).unwrap();
    mf.write(data.start, &99u64.to_le_bytes());

    let status = in_filtered_child(Some("ptrace"), || {
        let as_: Arc<dyn AddressSpace> = p.new_address_space().unwrap();
        let ctx = p.new_context().unwrap();
        as_.map_file(CODE, code.start, 4096, Perms::READ | Perms::EXEC).unwrap();
        let mut cpu = CpuState::new(Regs { rip: CODE, ..Regs::default() });
        // Creates the stub and runs to the application's syscall.
        if ctx.switch(&mut cpu, &as_).unwrap() != Exit::Syscall || cpu.regs.orig_rax != 169 {
            return 2;
        }
        // Applied synchronously by injection (this thread traces the stub).
        as_.map_file(DATA, data.start, 4096, Perms::READ).unwrap();
        cpu.regs.rax = 0;
        match ctx.switch(&mut cpu, &as_).unwrap() {
            Exit::Signal(s) if s.signo == libc::SIGTRAP && cpu.regs.rcx == 99 => {}
            _ => return 3,
        }
        ctx.load_fp(&mut cpu).unwrap();
        ctx.interrupt();
        ctx.clear_interrupt();
        // Kills and reaps the stub.
        drop(as_);
        0
    });
    assert!(libc::WIFEXITED(status), "status {status:#x} (signal {})", libc::WTERMSIG(status));
    assert_eq!(libc::WEXITSTATUS(status), 0);
}

/// A platform's host calls are on the list only when that platform runs:
/// the sentry of a kvm sandbox cannot ptrace, nor one of a ptrace sandbox
/// drive a VM.
#[test]
fn one_platforms_calls_are_refused_to_another() {
    let status = in_filtered_child(Some("kvm"), || {
        // SAFETY: PTRACE_TRACEME would fail or succeed harmlessly if allowed.
        unsafe { libc::syscall(libc::SYS_ptrace, libc::PTRACE_PEEKUSER, 0, 0, 0) };
        0
    });
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS, "ptrace under kvm's list: status {status:#x}");
    let status = in_filtered_child(Some("ptrace"), || {
        // SAFETY: KVM_RUN on fd -1 fails with EBADF if allowed.
        unsafe { libc::ioctl(-1, 0xAE80, 0) };
        0
    });
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS, "KVM_RUN under ptrace's list: status {status:#x}");
    let status = in_filtered_child(Some("kvm"), || {
        // SAFETY: KVM_RUN on fd -1 fails with EBADF.
        let r = unsafe { libc::ioctl(-1, 0xAE80, 0) };
        if r == -1 { 0 } else { 1 }
    });
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "KVM_RUN under kvm's list: status {status:#x}");
}
