//! The KVM platform: application code runs in guest ring 3 over page tables
//! the sentry builds from the memory file; every system call and exception
//! leaves the guest through a few ring-0 instructions and becomes an
//! [`Exit`](crate::Exit).
//!
//! * [`KvmPlatform::new`] opens `/dev/kvm` and creates one VM whose
//!   guest-physical memory *is* the memory file (slot 0 = the sentry's
//!   mapping of it: guest-physical address = memory-file offset). A 2 MiB
//!   ring-0 region (GDT, IDT, exception stubs, per-vCPU TSS and stack) is
//!   allocated from the memory file and mapped supervisor-only at
//!   [`layout::KERNEL_BASE`] in every address space (see [`ring0`]).
//! * [`KvmAddressSpace`]: 4-level page tables in memory-file pages
//!   ([`pagetable`]), with TLB shootdown on `unmap`/`protect`/remap.
//! * [`KvmContext`]: one vCPU (taken from the VM's pool on the first switch,
//!   from the switching thread), run until an exit the kernel must see
//!   ([`context`]).
//!
//! The design does not depend on SYSCALL/SYSRET working in a nested guest:
//! the sentry never uses SYSRET and recognises a system call in each of the
//! three ways a `syscall` can end up in ring 0 (see [`ring0`]).
//!
//! ## Interrupts
//! [`Context::interrupt`](crate::Context::interrupt) sets `immediate_exit`
//! in the vCPU's `kvm_run` and, if the vCPU is in `KVM_RUN`, sends
//! [`INTERRUPT_SIGNAL`] (SIGCHLD) to its thread with `tgkill`. The platform
//! installs a no-op handler for it (SA_RESTART) when it is created; the
//! signal must not be blocked in threads that switch contexts.
//!
//! ## Host system calls after the sandbox's seccomp filter
//! ioctl on the KVM fds (KVM_CREATE_VCPU, KVM_GET_VCPU_MMAP_SIZE,
//! KVM_SET_CPUID2, KVM_GET/SET_SREGS, KVM_GET/SET_REGS, KVM_SET_XCRS,
//! KVM_SET_MSRS, KVM_RUN, KVM_GET/SET_XSAVE), mmap of the vCPU's `kvm_run`,
//! tgkill, getpid, gettid.

mod address_space;
mod context;
pub mod layout;
mod pagetable;
pub mod ring0;
mod vcpu;
mod vm;

use std::os::fd::RawFd;
use std::sync::{Arc, Once};

use memfile::MemoryFile;

pub use address_space::KvmAddressSpace;
pub use context::KvmContext;

use crate::{AddressSpace, Context, Platform, PlatformError, Result};

/// The signal that kicks a vCPU's thread out of `KVM_RUN`.
pub const INTERRUPT_SIGNAL: i32 = libc::SIGCHLD;

extern "C" fn on_interrupt_signal(_: libc::c_int) {}

/// Installs the no-op handler for [`INTERRUPT_SIGNAL`] (once per process).
fn install_signal_handler() -> Result<()> {
    static ONCE: Once = Once::new();
    static mut RESULT: i32 = 0;
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction is valid; the handler is an
        // async-signal-safe function that does nothing.
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_interrupt_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(INTERRUPT_SIGNAL, &sa, std::ptr::null_mut())
        };
        if r != 0 {
            // SAFETY: written once, inside call_once, before any read.
            unsafe { RESULT = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL) };
        }
    });
    // SAFETY: only written inside call_once, which has completed.
    match unsafe { RESULT } {
        0 => Ok(()),
        e => Err(PlatformError::host("sigaction(INTERRUPT_SIGNAL)", std::io::Error::from_raw_os_error(e))),
    }
}

pub struct KvmPlatform {
    vm: Arc<vm::Vm>,
}

impl KvmPlatform {
    /// Opens `/dev/kvm` and creates the VM over `memfile`. Fails with
    /// `PlatformError::Unusable` saying why when KVM is missing or unusable.
    pub fn new(memfile: Arc<MemoryFile>) -> Result<Self> {
        Self::build(None, memfile)
    }

    /// Like [`new`](Self::new) with an already open `/dev/kvm` (for a
    /// sandbox that cannot open it any more); takes ownership of `kvm_fd`.
    pub fn with_kvm_fd(kvm_fd: RawFd, memfile: Arc<MemoryFile>) -> Result<Self> {
        Self::build(Some(kvm_fd), memfile)
    }

    fn build(kvm_fd: Option<RawFd>, memfile: Arc<MemoryFile>) -> Result<Self> {
        if kvm_fd.is_none() && !std::path::Path::new("/dev/kvm").exists() {
            return Err(PlatformError::Unusable("kvm: /dev/kvm does not exist".into()));
        }
        install_signal_handler()?;
        Ok(KvmPlatform { vm: vm::Vm::new(kvm_fd, memfile)? })
    }

    /// Like `new_address_space`, with the concrete type.
    pub fn new_kvm_address_space(&self) -> Result<Arc<KvmAddressSpace>> {
        Ok(Arc::new(KvmAddressSpace::new(self.vm.clone())?))
    }

    /// Like `new_context`, with the concrete type.
    pub fn new_kvm_context(&self) -> Result<Arc<KvmContext>> {
        Ok(Arc::new(KvmContext::new(self.vm.clone())?))
    }

    /// The floor of a trap round trip on this guest set-up, for benchmarks:
    /// ring-3 code `loop: int3; jmp loop` whose #BP gate is pointed (in this
    /// VM only) at `out 0xfc, al; iretq`. (`int3` rather than `int n`:
    /// PVM hosts emulate `int n` as #UD.) Each iteration is one ring 3 ->
    /// ring 0 trap, one exit to the host, one `KVM_RUN` re-entry and the
    /// `iretq` back to ring 3, with no other host work. Installs that gate in
    /// this VM's IDT (so do not use the platform for anything else after).
    #[doc(hidden)]
    pub fn measure_raw_trap_floor(&self, iters: u64) -> Result<std::time::Duration> {
        use vcpu::RunExit;
        let vm = &*self.vm;
        let g = ring0::gate(layout::CODE_VA + ring0::FLOOR_OFFSET, 3);
        let idt_entry = vm.region.start + layout::PAGE + 3 * 16;
        vm.mf.write(idt_entry, &g[0].to_le_bytes());
        vm.mf.write(idt_entry + 8, &g[1].to_le_bytes());
        let as_ = self.new_kvm_address_space()?;
        let code = vm.mf.allocate(layout::PAGE).map_err(|e| PlatformError::Unusable(e.to_string()))?;
        vm.mf.write(code.start, &[0xcc, 0xeb, 0xfd]); // int3; jmp -3
        as_.map_file(0x40_0000, code.start, layout::PAGE, crate::Perms::READ | crate::Perms::EXEC)?;
        let mut v = vm.take_vcpu()?;
        let regs = crate::Regs { rip: 0x40_0000, ..Default::default() };
        v.install(vm, &regs, as_.cr3(), true)?;
        let run = |v: &mut vcpu::Vcpu| loop {
            match v.run() {
                RunExit::Port(p) if p == ring0::FLOOR_VECTOR as u16 => return Ok(()),
                RunExit::Intr => continue,
                other => return Err(PlatformError::Unusable(format!("kvm floor: {other:?}"))),
            }
        };
        run(&mut v)?;
        let start = std::time::Instant::now();
        for _ in 0..iters {
            run(&mut v)?;
        }
        let t = start.elapsed();
        vm.put_vcpu(v);
        vm.mf.free(code);
        Ok(t)
    }

    /// Whether general registers travel through `kvm_run` (KVM_CAP_SYNC_REGS).
    pub fn uses_sync_regs(&self) -> bool {
        self.vm.sync_regs
    }
}

impl Platform for KvmPlatform {
    fn name(&self) -> &'static str {
        "kvm"
    }

    fn max_user_address(&self) -> u64 {
        layout::MAX_USER_ADDRESS
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>> {
        Ok(self.new_kvm_address_space()?)
    }

    fn new_context(&self) -> Result<Arc<dyn Context>> {
        Ok(self.new_kvm_context()?)
    }
}
