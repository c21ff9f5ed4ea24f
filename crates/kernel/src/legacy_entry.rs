//! The legacy ways into the kernel that a 64-bit process may still use,
//! answered the same on every platform whatever the host made of them:
//!
//! * `int $0x80` (the i386 system call gate): ENOSYS in rax, execution
//!   continuing after the instruction. The sentry serves only the x86-64
//!   table; a host with i386 emulation reports it as a system call stop
//!   (ptrace), one without it or a VM as a #GP at the instruction (kvm).
//! * `sysenter`: SIGILL at the instruction (the #UD of AMD CPUs in 64-bit
//!   mode; an Intel host would otherwise enter its i386 table).
//! * the vsyscall page (`0xffffffffff600000`): a call to its
//!   gettimeofday, time or getcpu entry is served as that system call and
//!   returns to the caller, as Linux's emulation does; anything else there
//!   (a read, a call into the middle of an entry) faults with SIGSEGV. On
//!   ptrace the host emulates the call itself unless the stub's seccomp
//!   filter traps it: it then stops with SIGSYS, already returned.

use crate::task::TaskCtx;
use abi::signal::{self, code};
use abi::syscalls::nr;
use abi::types::Siginfo;
use platform::SignalInfo;

pub const VSYSCALL_PAGE: u64 = 0xffff_ffff_ff60_0000;
const INT80: [u8; 2] = [0xcd, 0x80];
const SYSENTER: [u8; 2] = [0x0f, 0x34];
const ENOSYS: u64 = (-(abi::Errno::ENOSYS.0 as i64)) as u64;
/// SIGSYS's si_code for a seccomp SECCOMP_RET_TRAP.
const SYS_SECCOMP: i32 = 1;
/// SIGILL's si_code for an illegal opcode.
const ILL_ILLOPN: i32 = 1;

/// The system call a vsyscall entry point stands for.
fn vsyscall_entry(addr: u64) -> Option<usize> {
    match addr.checked_sub(VSYSCALL_PAGE)? {
        0x000 => Some(nr::GETTIMEOFDAY),
        0x400 => Some(nr::TIME),
        0x800 => Some(nr::GETCPU),
        _ => None,
    }
}

fn insn_at(t: &TaskCtx, addr: u64) -> Option<[u8; 2]> {
    let mut b = [0u8; 2];
    t.copy_in_into(addr, &mut b).ok()?;
    Some(b)
}

/// A system call stop that a legacy instruction caused, served here
/// (true), or a 64-bit `syscall` for the table (false). `syscall` leaves
/// rcx equal to the return address, so only another rcx costs a look at
/// the instruction.
pub fn on_syscall(t: &mut TaskCtx) -> bool {
    let regs = &t.cpu.regs;
    if regs.rcx == regs.rip {
        return false;
    }
    let at = regs.rip.wrapping_sub(2);
    match insn_at(t, at) {
        Some(INT80) => {
            t.cpu.regs.rax = ENOSYS;
            true
        }
        Some(SYSENTER) => {
            t.cpu.regs.rip = at;
            crate::signal::force(t, Siginfo::fault(signal::SIGILL, ILL_ILLOPN, at));
            true
        }
        _ => false,
    }
}

/// A CPU exception (or the SIGSYS of a trapped vsyscall) that a legacy
/// entry caused, served here (true); false leaves it to the caller.
pub fn on_signal(t: &mut TaskCtx, si: &SignalInfo) -> bool {
    if si.signo == signal::SIGSYS && si.code == SYS_SECCOMP {
        if let Some(call) = vsyscall_entry(si.addr) {
            // The host already returned to the caller.
            serve_vsyscall(t, call);
            return true;
        }
        return false;
    }
    if !matches!(si.signo, signal::SIGSEGV | signal::SIGILL | signal::SIGBUS) {
        return false;
    }
    let rip = t.cpu.regs.rip;
    match insn_at(t, rip) {
        Some(INT80) => {
            t.cpu.regs.rip = rip + 2;
            t.cpu.regs.rax = ENOSYS;
            true
        }
        Some(SYSENTER) if si.signo != signal::SIGILL => {
            crate::signal::force(t, Siginfo::fault(signal::SIGILL, ILL_ILLOPN, rip));
            true
        }
        _ => false,
    }
}

/// A page fault that is a call into the vsyscall page, served here
/// (true); anything else there is left to fault (false).
pub fn on_fault(t: &mut TaskCtx, addr: u64) -> bool {
    if t.cpu.regs.rip != addr {
        return false;
    }
    let Some(call) = vsyscall_entry(addr) else {
        return false;
    };
    // Return to the caller first, as `ret` would; a bad stack is a fault.
    let Ok(caller) = t.read_obj::<u64>(t.cpu.regs.rsp) else {
        return false;
    };
    t.cpu.regs.rip = caller;
    t.cpu.regs.rsp += 8;
    serve_vsyscall(t, call);
    true
}

/// Runs system call `call` with the vsyscall's arguments (rdi, rsi; getcpu's
/// third is always NULL) and puts its result in rax; a bad pointer is a
/// SIGSEGV, as Linux's emulation makes it.
fn serve_vsyscall(t: &mut TaskCtx, call: usize) {
    let saved = (t.cpu.regs.orig_rax, t.cpu.regs.rdx);
    t.cpu.regs.orig_rax = call as u64;
    if call == nr::GETCPU {
        t.cpu.regs.rdx = 0;
    }
    let table = t.task.kernel.syscall_table();
    let result = table.dispatch(t);
    (t.cpu.regs.orig_rax, t.cpu.regs.rdx) = saved;
    match result {
        Ok(v) => t.cpu.regs.rax = v,
        Err(e) if e == abi::Errno::EFAULT => crate::signal::force(t, Siginfo::fault(signal::SIGSEGV, code::SEGV_MAPERR, 0)),
        Err(e) => t.cpu.regs.rax = (-(e.0 as i64)) as u64,
    }
}
