//! The platform contract, after gVisor's `pkg/sentry/platform`.
//!
//! The kernel owns every task's register and FPU state and its memory map.
//! A platform only *runs* application code and reports why it stopped:
//!
//! * [`Platform::new_address_space`] gives an empty address space into which
//!   the kernel maps ranges of the memory file ([`AddressSpace::map_file`]).
//! * [`Platform::new_context`] gives a context on which the kernel runs a
//!   task's CPU state in an address space until the next [`Exit`].
//!
//! The kernel never reads application memory through the platform: it uses
//! its own mapping of the memory file, so ptrace and KVM share all of the
//! kernel above this trait.

use std::sync::Arc;

pub mod kvm;
pub mod ptrace;
pub mod registry;
pub mod systrap;

/// x86-64 general purpose registers, laid out as Linux's `user_regs_struct`
/// so that the ptrace platform can pass it to `PTRACE_GETREGS` unchanged.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    /// The system call number at a syscall exit (`rax` holds -ENOSYS then).
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

impl Regs {
    /// The six system call arguments in ABI order.
    pub fn syscall_args(&self) -> [u64; 6] {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9]
    }
}

/// Size of the legacy FXSAVE area, the part of the XSAVE layout every x86-64
/// CPU has.
pub const FXSAVE_SIZE: usize = 512;

/// Floating point / SSE / AVX state in the XSAVE standard layout: the first
/// 512 bytes are the legacy FXSAVE area, followed by the XSAVE header and
/// extended components when the platform provides them.
#[derive(Clone, PartialEq, Eq)]
pub struct FpState {
    pub bytes: Vec<u8>,
}

impl FpState {
    /// The state a fresh process starts with: x87 control word 0x37f, MXCSR
    /// 0x1f80, every register zero.
    pub fn initial() -> Self {
        let mut bytes = vec![0u8; FXSAVE_SIZE];
        bytes[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        bytes[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        bytes[28..32].copy_from_slice(&0xffffu32.to_le_bytes());
        FpState { bytes }
    }
}

/// `xgetbv(0)`: the state components the host enabled for XSAVE, or 0 when
/// the OS has not enabled XSAVE.
pub fn host_xcr0() -> u64 {
    let c = std::arch::x86_64::__cpuid(1);
    if c.ecx & (1 << 27) == 0 {
        return 0; // OSXSAVE clear
    }
    // SAFETY: OSXSAVE is set, so XGETBV with ECX=0 is valid in user mode.
    unsafe { std::arch::x86_64::_xgetbv(0) }
}

/// Offset and size of XSAVE state component `i` (>= 2) in the standard
/// (non-compacted) layout, from CPUID leaf 0xd.
pub fn xsave_component(i: u32) -> (usize, usize) {
    let c = std::arch::x86_64::__cpuid_count(0xd, i);
    (c.ebx as usize, c.eax as usize)
}

impl FpState {
    /// Is this a full XSAVE image (legacy area, header, extended components)
    /// rather than a bare FXSAVE image?
    pub fn is_xsave(&self) -> bool {
        self.bytes.len() >= FXSAVE_SIZE + 64
    }

    /// The state components this image can hold: the host's XCR0 components
    /// whose standard-layout slot fits in it (x87 and SSE always).
    pub fn xfeatures(&self) -> u64 {
        if !self.is_xsave() {
            return 3;
        }
        let xcr0 = host_xcr0();
        (2..63).filter(|&i| xcr0 & (1 << i) != 0).filter(|&i| {
            let (off, size) = xsave_component(i);
            off + size <= self.bytes.len()
        }).fold(3, |m, i| m | (1 << i))
    }
}

impl std::fmt::Debug for FpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FpState({} bytes)", self.bytes.len())
    }
}

/// A task's CPU state, owned by the kernel.
#[derive(Clone, Debug)]
pub struct CpuState {
    pub regs: Regs,
    /// Valid only when `fp_loaded` is true; otherwise the live copy is still
    /// in the context that last ran the task ([`Context::load_fp`] fetches it).
    pub fp: FpState,
    pub fp_loaded: bool,
    /// Set by the kernel when it changed `fp` (signal delivery, sigreturn,
    /// exec) so that the next switch installs it.
    pub fp_dirty: bool,
}

impl CpuState {
    pub fn new(regs: Regs) -> Self {
        CpuState { regs, fp: FpState::initial(), fp_loaded: true, fp_dirty: true }
    }
}

bitflags::bitflags! {
    /// Page permissions of a mapping.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct Perms: u8 {
        const READ = 1;
        const WRITE = 2;
        const EXEC = 4;
    }
}

impl Perms {
    /// The `PROT_*` bits a host mmap/mprotect of these permissions takes,
    /// for the platforms whose stubs map memory-file ranges with host calls.
    pub fn host_prot(self) -> u64 {
        let mut p = libc::PROT_NONE;
        if self.contains(Perms::READ) {
            p |= libc::PROT_READ;
        }
        if self.contains(Perms::WRITE) {
            p |= libc::PROT_WRITE;
        }
        if self.contains(Perms::EXEC) {
            p |= libc::PROT_EXEC;
        }
        p as u64
    }
}

/// What kind of access caused a fault, when the platform can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Exec,
    /// ptrace cannot see the page-fault error code.
    Unknown,
}

/// A synchronous signal raised by the CPU (other than a page fault on an
/// address the kernel may be able to map), for the kernel to deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    pub signo: i32,
    pub code: i32,
    /// `si_addr`: the faulting address or instruction.
    pub addr: u64,
}

/// Why [`Context::switch`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The application executed `syscall`; `regs.orig_rax` holds the number,
    /// `regs.rip` points after the instruction. The host did not execute it.
    Syscall,
    /// A page fault at `addr` that the kernel may resolve by mapping memory.
    /// `mapped` says whether some page was mapped there (a protection fault).
    Fault { addr: u64, access: Access, mapped: bool },
    /// Any other CPU exception, as the signal Linux would send for it.
    Signal(SignalInfo),
    /// [`Context::interrupt`] was called (or a host signal arrived) while the
    /// application ran.
    Interrupted,
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{op}: {source}")]
    Host { op: &'static str, source: std::io::Error },
    #[error("{0}")]
    Unusable(String),
    /// The application's host process or vCPU is gone (killed from outside).
    #[error("application context died: {0}")]
    ContextLost(String),
}

impl PlatformError {
    pub fn host(op: &'static str, source: impl Into<std::io::Error>) -> Self {
        PlatformError::Host { op, source: source.into() }
    }
}

pub type Result<T> = std::result::Result<T, PlatformError>;

/// An application address space. Operations may be applied lazily, but are
/// in effect before any context on this address space next runs application
/// code (and so before the system call that caused them returns).
pub trait AddressSpace: Send + Sync {
    /// Maps `len` bytes of the memory file at `file_offset` at `addr` with
    /// `perms`, replacing whatever was mapped there. All values page-aligned.
    fn map_file(&self, addr: u64, file_offset: u64, len: u64, perms: Perms) -> Result<()>;
    /// Removes any mapping in `[addr, addr+len)`.
    fn unmap(&self, addr: u64, len: u64) -> Result<()>;
    /// Changes the permissions of what is mapped in `[addr, addr+len)`.
    fn protect(&self, addr: u64, len: u64, perms: Perms) -> Result<()>;
    /// Lets a platform recover its own address space type from an
    /// `Arc<dyn AddressSpace>` handed back to its `Context::switch`.
    /// Implementations outside a platform (test doubles) keep the default.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// Runs one task's CPU state. A context is bound to the host thread that
/// first switches it (ptrace allows only the tracing thread to drive a
/// tracee), so the kernel always switches a task from its own thread.
pub trait Context: Send + Sync {
    /// Runs `cpu` in `address_space` until the next exit. On return `cpu.regs`
    /// holds the application's registers at the exit.
    fn switch(&self, cpu: &mut CpuState, address_space: &Arc<dyn AddressSpace>) -> Result<Exit>;
    /// Copies the live FPU state into `cpu.fp` if it is not loaded there.
    fn load_fp(&self, cpu: &mut CpuState) -> Result<()>;
    /// Makes a running (or the next) `switch` return [`Exit::Interrupted`]
    /// promptly. Callable from any thread.
    fn interrupt(&self);
    /// Clears a pending interrupt that the kernel has already acted on.
    fn clear_interrupt(&self);
}

pub trait Platform: Send + Sync {
    fn name(&self) -> &'static str;
    /// One past the highest address applications may map.
    fn max_user_address(&self) -> u64;
    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>>;
    fn new_context(&self) -> Result<Arc<dyn Context>>;
}
