//! The signal frame a stub thread's handler runs on, read and edited by the
//! sentry in place: the host saved the application's registers and its whole
//! XSAVE state there at the trap, and restores them from there at the
//! handler's `rt_sigreturn`.

use crate::{Access, CpuState, Exit, FpState, Regs, SignalInfo, FXSAVE_SIZE};

/// Offsets in the kernel's `struct ucontext` (x86-64).
const UC_MCONTEXT: usize = 40;
const UC_SIGMASK: usize = 296;
const UC_SIZE: usize = 304;
/// `gregs` indices in the mcontext.
const R8: usize = 0;
const RDI: usize = 8;
const RSI: usize = 9;
const RBP: usize = 10;
const RBX: usize = 11;
const RDX: usize = 12;
const RAX: usize = 13;
const RCX: usize = 14;
const RSP: usize = 15;
const RIP: usize = 16;
const EFL: usize = 17;
const ERR: usize = 19;
const TRAPNO: usize = 20;
/// The mcontext's pointer to the XSAVE area.
const FPSTATE: usize = UC_MCONTEXT + 23 * 8;

/// `struct _fpx_sw_bytes` in the FXSAVE area's software-reserved bytes.
const SW_BYTES: usize = 464;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const XSAVE_HEADER: usize = 512;

const SYS_SECCOMP: i32 = 1;
const SEGV_ACCERR: i32 = 2;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const SI_KERNEL: i32 = 0x80;
const X86_TRAP_PF: u64 = 14;

/// A stub thread's signal frame, validated to lie in its slot.
pub(crate) struct Frame {
    uc: *mut u8,
    info: *const u8,
    fp: *mut u8,
    /// Bytes of the XSAVE area (512 when the frame holds FXSAVE only).
    fp_len: usize,
    /// Components the host saved (`xfeatures` of the software bytes).
    fp_features: u64,
}

impl Frame {
    /// The frame at stub addresses `uc_va`/`info_va` of the slot whose
    /// signal stack spans stub addresses `[stack_va, end_va)`, mapped at
    /// `stack` in the sentry. None when any part lies outside the stack.
    pub fn locate(stack: *mut u8, stack_va: u64, end_va: u64, uc_va: u64, info_va: u64) -> Option<Frame> {
        let inside = |va: u64, len: usize| va >= stack_va && va.checked_add(len as u64).is_some_and(|e| e <= end_va);
        if !inside(uc_va, UC_SIZE) || !inside(info_va, 128) {
            return None;
        }
        // SAFETY: both lie inside the slot's stack, mapped at `stack`.
        let (uc, info) = unsafe { (stack.add((uc_va - stack_va) as usize), stack.add((info_va - stack_va) as usize)) };
        let mut f = Frame { uc, info, fp: std::ptr::null_mut(), fp_len: 0, fp_features: 0 };
        let fp_va = f.u64(FPSTATE);
        if !inside(fp_va, FXSAVE_SIZE) {
            return None;
        }
        // SAFETY: inside the stack, checked above.
        f.fp = unsafe { stack.add((fp_va - stack_va) as usize) };
        let magic = f.fp_u32(SW_BYTES);
        let (len, features) = if magic == FP_XSTATE_MAGIC1 {
            (f.fp_u32(SW_BYTES + 16) as usize, f.fp_u64(SW_BYTES + 8))
        } else {
            (FXSAVE_SIZE, 3)
        };
        if len < FXSAVE_SIZE || !inside(fp_va, len) {
            return None;
        }
        f.fp_len = len;
        f.fp_features = features;
        Some(f)
    }

    fn u64(&self, off: usize) -> u64 {
        // SAFETY: off < UC_SIZE, inside the validated ucontext.
        unsafe { (self.uc.add(off) as *const u64).read_unaligned() }
    }

    fn set_u64(&self, off: usize, v: u64) {
        // SAFETY: as in u64.
        unsafe { (self.uc.add(off) as *mut u64).write_unaligned(v) }
    }

    fn greg(&self, i: usize) -> u64 {
        self.u64(UC_MCONTEXT + 8 * i)
    }

    fn set_greg(&self, i: usize, v: u64) {
        self.set_u64(UC_MCONTEXT + 8 * i, v)
    }

    fn fp_u32(&self, off: usize) -> u32 {
        // SAFETY: off + 4 <= FXSAVE_SIZE, inside the validated area.
        unsafe { (self.fp.add(off) as *const u32).read_unaligned() }
    }

    fn fp_u64(&self, off: usize) -> u64 {
        // SAFETY: as in fp_u32.
        unsafe { (self.fp.add(off) as *const u64).read_unaligned() }
    }

    fn info_i32(&self, off: usize) -> i32 {
        // SAFETY: off + 4 <= 128, inside the validated siginfo.
        unsafe { (self.info.add(off) as *const i32).read_unaligned() }
    }

    fn info_u64(&self, off: usize) -> u64 {
        // SAFETY: as in info_i32.
        unsafe { (self.info.add(off) as *const u64).read_unaligned() }
    }

    /// The application's registers at the trap (fs/gs base come from the
    /// slot header, not the frame).
    pub fn regs(&self, regs: &mut Regs) {
        let g = |i| self.greg(i);
        regs.r8 = g(R8);
        regs.r9 = g(R8 + 1);
        regs.r10 = g(R8 + 2);
        regs.r11 = g(R8 + 3);
        regs.r12 = g(R8 + 4);
        regs.r13 = g(R8 + 5);
        regs.r14 = g(R8 + 6);
        regs.r15 = g(R8 + 7);
        regs.rdi = g(RDI);
        regs.rsi = g(RSI);
        regs.rbp = g(RBP);
        regs.rbx = g(RBX);
        regs.rdx = g(RDX);
        regs.rax = g(RAX);
        regs.rcx = g(RCX);
        regs.rsp = g(RSP);
        regs.rip = g(RIP);
        regs.eflags = g(EFL);
        regs.cs = 0x33;
        regs.ss = 0x2b;
        regs.orig_rax = u64::MAX;
    }

    /// Writes `regs` into the frame for the return to the application, with
    /// every host signal unblocked.
    pub fn set_regs(&self, regs: &Regs) {
        let s = |i, v| self.set_greg(i, v);
        s(R8, regs.r8);
        s(R8 + 1, regs.r9);
        s(R8 + 2, regs.r10);
        s(R8 + 3, regs.r11);
        s(R8 + 4, regs.r12);
        s(R8 + 5, regs.r13);
        s(R8 + 6, regs.r14);
        s(R8 + 7, regs.r15);
        s(RDI, regs.rdi);
        s(RSI, regs.rsi);
        s(RBP, regs.rbp);
        s(RBX, regs.rbx);
        s(RDX, regs.rdx);
        s(RAX, regs.rax);
        s(RCX, regs.rcx);
        s(RSP, regs.rsp);
        s(RIP, regs.rip);
        s(EFL, regs.eflags);
        self.set_u64(UC_SIGMASK, 0);
    }

    /// The FPU state saved in the frame.
    pub fn fp(&self) -> FpState {
        // SAFETY: fp_len bytes at fp were validated to lie in the stack.
        let bytes = unsafe { std::slice::from_raw_parts(self.fp, self.fp_len) };
        let mut bytes = bytes.to_vec();
        // The software bytes describe this frame, not the task's state.
        bytes[SW_BYTES..FXSAVE_SIZE].fill(0);
        FpState { bytes }
    }

    /// Writes `fp` into the frame, for the host to restore at the return.
    pub fn set_fp(&self, fp: &FpState) {
        // SAFETY: fp_len bytes at fp lie in the stack (validated).
        let dst = unsafe { std::slice::from_raw_parts_mut(self.fp, self.fp_len) };
        dst[..SW_BYTES].copy_from_slice(&fp.bytes[..SW_BYTES]);
        if self.fp_len < XSAVE_HEADER + 64 {
            return;
        }
        let mut bv = 3;
        if fp.is_xsave() {
            let n = fp.bytes.len().min(self.fp_len);
            dst[XSAVE_HEADER..n].copy_from_slice(&fp.bytes[XSAVE_HEADER..n]);
            bv = u64::from_le_bytes(fp.bytes[XSAVE_HEADER..XSAVE_HEADER + 8].try_into().unwrap()) & fp.xfeatures();
        }
        bv &= self.fp_features;
        dst[XSAVE_HEADER..XSAVE_HEADER + 8].copy_from_slice(&bv.to_le_bytes());
        // The standard (non-compacted) format.
        dst[XSAVE_HEADER + 8..XSAVE_HEADER + 16].fill(0);
    }

    /// Why the thread stopped, as the platform contract says it, given the
    /// signal the handler reported; fixes `cpu.regs` for a system call.
    pub fn exit(&self, signo: i32, regs: &mut Regs) -> Exit {
        let code = self.info_i32(8);
        let addr = self.info_u64(16);
        // A signal someone sent (kill, tgkill, our interrupt) rather than
        // one the CPU raised: the application never sees it.
        if code <= 0 {
            return Exit::Interrupted;
        }
        match signo {
            libc::SIGSYS if code == SYS_SECCOMP => {
                let nr = self.info_i32(24);
                let arch = self.info_i32(28) as u32;
                if arch != AUDIT_ARCH_X86_64 {
                    // `int $0x80` on a 64-bit-only Linux: a #GP at the
                    // instruction.
                    regs.rip -= 2;
                    return Exit::Signal(SignalInfo { signo: libc::SIGSEGV, code: SI_KERNEL, addr: 0 });
                }
                regs.orig_rax = nr as u32 as u64;
                regs.rax = -(libc::ENOSYS as i64) as u64;
                Exit::Syscall
            }
            libc::SIGSEGV if self.greg(TRAPNO) == X86_TRAP_PF => {
                let err = self.greg(ERR);
                let access = if err & 0x10 != 0 {
                    Access::Exec
                } else if err & 2 != 0 {
                    Access::Write
                } else {
                    Access::Read
                };
                Exit::Fault { addr, access, mapped: code == SEGV_ACCERR }
            }
            libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL | libc::SIGTRAP => {
                Exit::Signal(SignalInfo { signo, code, addr })
            }
            _ => Exit::Interrupted,
        }
    }
}

/// Installs what the kernel changed in `cpu` into `frame` for the return.
pub(crate) fn install(frame: &Frame, cpu: &mut CpuState, fp_in_frame: bool) {
    frame.set_regs(&cpu.regs);
    if cpu.fp_dirty || (cpu.fp_loaded && !fp_in_frame) {
        frame.set_fp(&cpu.fp);
        cpu.fp_dirty = false;
    }
}
