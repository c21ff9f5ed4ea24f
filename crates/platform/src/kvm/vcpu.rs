//! One vCPU: its set-up (CPUID, XCR0, MSRs, ring-0 segment state, TSS), how
//! an application's state is installed for `KVM_RUN`, and how another thread
//! kicks it out of the guest ([`Kick`]).

use std::ptr::addr_of_mut;
use std::sync::atomic::{fence, AtomicI32, AtomicPtr, AtomicU64, Ordering};
use std::sync::Weak;

use kvm_bindings::{kvm_msr_entry, kvm_regs, kvm_run, kvm_segment, kvm_sregs, kvm_xcrs, kvm_xsave, Msrs};
use kvm_ioctls::{SyncReg, VcpuExit, VcpuFd};

use super::layout::*;
use super::ring0::{self, KERNEL_CS, KERNEL_DS, LSTAR, RESUME, RESUME_CR3, TSS_SEL, USER_CS, USER_DS};
use super::vm::Vm;
use super::INTERRUPT_SIGNAL;
use crate::{AddressSpace, FpState, PlatformError, Regs, Result, FXSAVE_SIZE};

const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;

const CR0_PE: u64 = 1;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_AM: u64 = 1 << 18;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_PGE: u64 = 1 << 7;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_OSXSAVE: u64 = 1 << 18;
const EFER_SCE: u64 = 1;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

/// RFLAGS bits an application may set (CF PF AF ZF SF TF DF OF AC ID).
const USER_FLAGS: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x4_0000 | 0x20_0000;
/// Always set in ring 3: bit 1 (reserved, 1) and IF (as on Linux).
const FIXED_FLAGS: u64 = 0x2 | 0x200;
/// RFLAGS bits `syscall` clears on its way to LSTAR (Linux's mask: TF, IF,
/// DF, IOPL, NT, RF, AC, ID and the arithmetic flags), so that the LSTAR stub
/// never single-steps.
const SYSCALL_MASK: u64 = 0x25_7fd5;

/// The part of a vCPU other threads use to get it out of `KVM_RUN`.
pub struct Kick {
    /// Odd while the owning thread is in (or about to enter) `KVM_RUN`.
    pub seq: AtomicU64,
    /// Host tid of the thread running the vCPU.
    pub tid: AtomicI32,
    /// The vCPU's `kvm_run` (null before the context got a vCPU).
    pub run: AtomicPtr<kvm_run>,
}

impl Kick {
    pub fn new() -> Self {
        Kick { seq: AtomicU64::new(0), tid: AtomicI32::new(0), run: AtomicPtr::new(std::ptr::null_mut()) }
    }

    fn set_immediate_exit(&self, v: u8) {
        let run = self.run.load(Ordering::SeqCst);
        if !run.is_null() {
            // SAFETY: `run` is the vCPU's kvm_run mapping, valid for as long
            // as the vCPU exists; the vCPU outlives its attachment to this
            // Kick (detached before it goes back to the pool). The kernel
            // reads the byte at KVM_RUN entry; a volatile byte store is what
            // the KVM API documents for this field from any thread.
            unsafe { addr_of_mut!((*run).immediate_exit).write_volatile(v) };
        }
        fence(Ordering::SeqCst);
    }

    /// Called by the owning thread before each `KVM_RUN`.
    pub fn clear(&self) {
        self.set_immediate_exit(0);
    }

    /// Makes a running (or about to run) `KVM_RUN` return.
    pub fn kick(&self) {
        self.set_immediate_exit(1);
        if self.seq.load(Ordering::SeqCst) & 1 == 1 {
            let tid = self.tid.load(Ordering::SeqCst);
            if tid > 0 {
                // SAFETY: plain syscall; the target is a thread of this
                // process, whose handler for INTERRUPT_SIGNAL does nothing.
                unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, INTERRUPT_SIGNAL) };
            }
        }
    }

    /// Kicks the vCPU out of the guest if it is in and waits until it has
    /// left (its next entry sees whatever the caller changed before).
    pub fn kick_and_wait(&self) {
        let s = self.seq.load(Ordering::SeqCst);
        if s & 1 == 0 {
            return;
        }
        let mut n = 0u32;
        while self.seq.load(Ordering::SeqCst) == s {
            if n.is_multiple_of(64) {
                self.kick();
            }
            n = n.wrapping_add(1);
            std::thread::yield_now();
        }
    }
}

/// How one `KVM_RUN` ended.
#[derive(Debug)]
pub enum RunExit {
    /// `out` to this port from a ring-0 stub (an exception vector, or
    /// `SPURIOUS_PORT`) or from the LSTAR stub (`SYSCALL_PORT`); or an `out`
    /// on `SYSCALL_PORT` by the application itself.
    Port(u16),
    /// `in` from this port: only the application runs `in` (on the one port
    /// ring 3 may use).
    PortIn(u16),
    /// A signal or `immediate_exit`.
    Intr,
    /// Triple fault.
    Shutdown,
    Other(String),
}

pub struct Vcpu {
    pub fd: VcpuFd,
    pub index: u64,
    /// Memory-file offset and guest address of its TSS + stack page.
    page_gpa: u64,
    page_va: u64,
    sync_regs: bool,
    /// Ring-0 segment/control register state, installed when `need_sregs`.
    sregs: kvm_sregs,
    /// The vCPU is not in ring 0 at a stub (fresh, reused, or interrupted in
    /// ring 3): the next entry installs `sregs` first.
    pub need_sregs: bool,
    /// The vCPU stopped in ring 3 on the syscall page (a host whose
    /// `syscall` does not change rings): the next entry, unless it must also
    /// flush or change FS/GS bases, just sets the application's registers.
    pub user_mode: bool,
    /// The FS/GS bases in `sregs` as last installed.
    installed_bases: (u64, u64),
    /// The address space whose CR3 the vCPU holds, and its generation at
    /// the last flush (`u64::MAX`: flush on next entry).
    pub as_id: u64,
    pub gen: u64,
    pub as_weak: Option<Weak<dyn AddressSpace>>,
}

fn host(op: &'static str) -> impl Fn(kvm_ioctls::Error) -> PlatformError {
    move |e| PlatformError::host(op, std::io::Error::from_raw_os_error(e.errno()))
}

fn seg(selector: u16, code: bool, dpl: u8, base: u64) -> kvm_segment {
    kvm_segment {
        base,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 11 } else { 3 },
        present: 1,
        dpl,
        db: (!code) as u8,
        s: 1,
        l: code as u8,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

impl Vcpu {
    pub fn new(vm: &Vm, index: u64) -> Result<Vcpu> {
        let mut fd = vm.fd.create_vcpu(index).map_err(host("KVM_CREATE_VCPU"))?;
        fd.set_cpuid2(&vm.cpuid).map_err(host("KVM_SET_CPUID2"))?;

        let page_gpa = vm.region.start + vcpu_page_offset(index);
        let page_va = KERNEL_BASE + vcpu_page_offset(index);
        let mut tss = vec![0u8; ring0::TSS_SIZE as usize];
        ring0::write_tss(&mut tss, page_va + PAGE);
        vm.mf.write(page_gpa, &tss);

        let mut sregs = fd.get_sregs().map_err(host("KVM_GET_SREGS"))?;
        sregs.cs = seg(KERNEL_CS, true, 0, 0);
        sregs.ss = seg(KERNEL_DS, false, 0, 0);
        // Data segments are user (DPL 3) descriptors so that `iretq` to ring
        // 3 keeps them (and the FS/GS bases) rather than nulling them.
        sregs.ds = seg(USER_DS, false, 3, 0);
        sregs.es = sregs.ds;
        sregs.fs = sregs.ds;
        sregs.gs = sregs.ds;
        sregs.tr = kvm_segment {
            base: page_va,
            limit: ring0::TSS_LIMIT,
            selector: TSS_SEL,
            type_: 11, // 64-bit busy TSS
            present: 1,
            ..Default::default()
        };
        sregs.gdt.base = GDT_VA;
        sregs.gdt.limit = ring0::GDT_LIMIT;
        sregs.idt.base = IDT_VA;
        sregs.idt.limit = ring0::IDT_LIMIT;
        sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
        sregs.cr4 = CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT | if vm.xcr0 != 0 { CR4_OSXSAVE } else { 0 };
        sregs.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
        // A valid CR3 for the initial SET_SREGS: the first switch sets the
        // address space's own.
        sregs.cr3 = vm.kernel.pdpt;
        fd.set_sregs(&sregs).map_err(host("KVM_SET_SREGS"))?;

        if vm.xcr0 != 0 {
            let mut xcrs = kvm_xcrs { nr_xcrs: 1, ..Default::default() };
            xcrs.xcrs[0].xcr = 0;
            xcrs.xcrs[0].value = vm.xcr0;
            fd.set_xcrs(&xcrs).map_err(host("KVM_SET_XCRS"))?;
        }
        let msr = |index, data| kvm_msr_entry { index, data, ..Default::default() };
        let msrs = Msrs::from_entries(&[
            msr(MSR_STAR, (KERNEL_CS as u64) << 32),
            msr(MSR_LSTAR, LSTAR),
            msr(MSR_CSTAR, LSTAR),
            msr(MSR_SYSCALL_MASK, SYSCALL_MASK),
        ])
        .map_err(|e| PlatformError::Unusable(format!("kvm: MSR list: {e:?}")))?;
        let n = fd.set_msrs(&msrs).map_err(host("KVM_SET_MSRS"))?;
        if n != 4 {
            return Err(PlatformError::Unusable(format!("kvm: KVM_SET_MSRS set {n} of 4 syscall MSRs")));
        }
        if vm.sync_regs {
            fd.set_sync_valid_reg(SyncReg::Register);
        }
        Ok(Vcpu {
            fd,
            index,
            page_gpa,
            page_va,
            sync_regs: vm.sync_regs,
            sregs,
            need_sregs: true,
            user_mode: false,
            installed_bases: (0, 0),
            as_id: 0,
            gen: u64::MAX,
            as_weak: None,
        })
    }

    pub fn run_ptr(&mut self) -> *mut kvm_run {
        self.fd.get_kvm_run() as *mut kvm_run
    }

    pub fn reset_for_reuse(&mut self) {
        self.need_sregs = true;
        self.user_mode = false;
        self.as_id = 0;
        self.gen = u64::MAX;
        self.as_weak = None;
    }

    /// The guest address of the top of the ring-0 stack.
    pub fn stack_top(&self) -> u64 {
        self.page_va + PAGE
    }

    /// Reads a word of the ring-0 stack page at guest address `va`.
    pub fn read_stack(&self, vm: &Vm, va: u64) -> Option<u64> {
        if va < self.page_va + ring0::TSS_SIZE || va + 8 > self.page_va + PAGE {
            return None;
        }
        let mut b = [0u8; 8];
        vm.mf.read(self.page_gpa + (va - self.page_va), &mut b);
        Some(u64::from_le_bytes(b))
    }

    fn write_stack(&self, vm: &Vm, va: u64, words: &[u64]) {
        let mut b = Vec::with_capacity(words.len() * 8);
        for w in words {
            b.extend_from_slice(&w.to_le_bytes());
        }
        vm.mf.write(self.page_gpa + (va - self.page_va), &b);
    }

    /// The vCPU's current privilege level (0 or 3).
    pub fn cpl(&self) -> Result<u8> {
        Ok((self.fd.get_sregs().map_err(host("KVM_GET_SREGS"))?.cs.selector & 3) as u8)
    }

    /// The vCPU's general registers after an exit.
    pub fn regs(&self) -> Result<kvm_regs> {
        if self.sync_regs {
            Ok(self.fd.sync_regs().regs)
        } else {
            self.fd.get_regs().map_err(host("KVM_GET_REGS"))
        }
    }

    fn set_regs(&mut self, r: &kvm_regs) -> Result<()> {
        if self.sync_regs {
            self.fd.sync_regs_mut().regs = *r;
            self.fd.set_sync_dirty_reg(SyncReg::Register);
            Ok(())
        } else {
            self.fd.set_regs(r).map_err(host("KVM_SET_REGS"))
        }
    }

    /// Prepares the vCPU to enter `regs` in ring 3 through the resume code,
    /// loading `cr3` (and so flushing the TLB) first when `flush`.
    pub fn install(&mut self, vm: &Vm, regs: &Regs, cr3: u64, flush: bool) -> Result<()> {
        let bases = (regs.fs_base, regs.gs_base);
        let rflags = (regs.eflags & USER_FLAGS) | FIXED_FLAGS;
        if self.user_mode {
            self.user_mode = false;
            if !flush && !self.need_sregs && bases == self.installed_bases {
                // Already in ring 3 on this address space: nothing to do
                // in ring 0.
                return self.set_regs(&kvm_regs { rflags, ..to_kvm(regs) });
            }
            // Back to ring 0 (SET_SREGS) for the resume code.
            self.need_sregs = true;
        }
        if self.need_sregs || bases != self.installed_bases {
            self.sregs.fs.base = bases.0;
            self.sregs.gs.base = bases.1;
            self.sregs.cr3 = cr3;
            self.fd.set_sregs(&self.sregs).map_err(host("KVM_SET_SREGS"))?;
            self.installed_bases = bases;
            self.need_sregs = false;
        }
        let top = self.stack_top();
        // The IRET frame: RIP, CS, RFLAGS, RSP, SS.
        self.write_stack(vm, top - 40, &[regs.rip, USER_CS as u64, rflags, regs.rsp, USER_DS as u64]);
        let mut k = to_kvm(regs);
        k.rflags = 0x2;
        if flush {
            // mov cr3, rax; pop rax; iretq
            self.write_stack(vm, top - 48, &[regs.rax]);
            k.rax = cr3;
            k.rsp = top - 48;
            k.rip = RESUME_CR3;
        } else {
            k.rsp = top - 40;
            k.rip = RESUME;
        }
        self.set_regs(&k)
    }

    /// Addresses one zap run takes (they live in the vCPU's page, between
    /// its TSS and its stack).
    pub const ZAP_BATCH: usize = 256;
    const ZAP_LIST: u64 = 0x100;

    /// Runs the ring-0 zap loop over `addrs` (guest virtual addresses in the
    /// direct map) on this (maintenance) vCPU.
    pub fn run_zap(&mut self, vm: &Vm, addrs: &[u64]) -> Result<()> {
        assert!(addrs.len() <= Self::ZAP_BATCH);
        if self.need_sregs {
            self.sregs.cr3 = vm.kernel.maint_root;
            self.fd.set_sregs(&self.sregs).map_err(host("KVM_SET_SREGS"))?;
            self.need_sregs = false;
        }
        self.write_stack(vm, self.page_va + Self::ZAP_LIST, addrs);
        let k = kvm_regs {
            rip: ring0::ZAP,
            rsi: self.page_va + Self::ZAP_LIST,
            rcx: addrs.len() as u64,
            rsp: self.stack_top(),
            rflags: 0x2,
            ..Default::default()
        };
        self.set_regs(&k)?;
        loop {
            // SAFETY: see Kick::set_immediate_exit; this vCPU is only run
            // here, under the VM's maintenance lock, and never kicked.
            unsafe { addr_of_mut!((*self.run_ptr()).immediate_exit).write_volatile(0) };
            match self.run() {
                RunExit::Port(p) if p == ring0::ZAP_PORT => return Ok(()),
                // A stray signal: the loop goes on where it stopped.
                RunExit::Intr => continue,
                other => {
                    self.need_sregs = true;
                    return Err(PlatformError::Unusable(format!("kvm: zap loop ended with {other:?}")));
                }
            }
        }
    }

    /// One `KVM_RUN`.
    pub fn run(&mut self) -> RunExit {
        match self.fd.run() {
            Ok(VcpuExit::IoOut(port, _)) => RunExit::Port(port),
            Ok(VcpuExit::IoIn(port, _)) => RunExit::PortIn(port),
            Ok(VcpuExit::Intr) => RunExit::Intr,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => RunExit::Intr,
            Ok(VcpuExit::Shutdown) => RunExit::Shutdown,
            Ok(other) => RunExit::Other(format!("{other:?}")),
            Err(e) => RunExit::Other(format!("KVM_RUN: {e}")),
        }
    }

    /// Installs `fp` (XSAVE or FXSAVE layout).
    pub fn set_fp(&self, vm: &Vm, fp: &FpState) -> Result<()> {
        let mut x = kvm_xsave::default();
        // SAFETY: `region` is 4096 bytes of plain integers; viewing it as
        // bytes is always valid.
        let bytes = unsafe { std::slice::from_raw_parts_mut(x.region.as_mut_ptr().cast::<u8>(), 4096) };
        let n = fp.bytes.len().min(4096);
        bytes[..n].copy_from_slice(&fp.bytes[..n]);
        if vm.xcr0 != 0 {
            let mut bv = u64::from_le_bytes(bytes[FXSAVE_SIZE..FXSAVE_SIZE + 8].try_into().unwrap());
            if fp.bytes.len() <= FXSAVE_SIZE {
                // A legacy image: x87 and SSE present, everything else in
                // its initial state.
                bv = 3;
            }
            bytes[FXSAVE_SIZE..FXSAVE_SIZE + 8].copy_from_slice(&(bv & vm.xcr0).to_le_bytes());
            bytes[FXSAVE_SIZE + 8..FXSAVE_SIZE + 16].fill(0); // XCOMP_BV: standard format
        }
        // SAFETY: `x` is a whole kvm_xsave (4096 bytes); the VM's XCR0 was
        // capped so that its XSAVE image fits in it (`Vm::xsave_size`).
        unsafe { self.fd.set_xsave(&x) }.map_err(host("KVM_SET_XSAVE"))
    }

    pub fn get_fp(&self, vm: &Vm) -> Result<FpState> {
        let x = self.fd.get_xsave().map_err(host("KVM_GET_XSAVE"))?;
        // SAFETY: as in `set_fp`.
        let bytes = unsafe { std::slice::from_raw_parts(x.region.as_ptr().cast::<u8>(), 4096) };
        Ok(FpState { bytes: bytes[..vm.xsave_size].to_vec() })
    }
}

pub fn to_kvm(r: &Regs) -> kvm_regs {
    kvm_regs {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rsp: r.rsp,
        rbp: r.rbp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rip: r.rip,
        rflags: r.eflags,
    }
}

/// Copies the general registers of `k` into `r` (RIP, RSP, RFLAGS too; the
/// caller overrides them when they come from an exception frame).
pub fn from_kvm(k: &kvm_regs, r: &mut Regs) {
    r.rax = k.rax;
    r.rbx = k.rbx;
    r.rcx = k.rcx;
    r.rdx = k.rdx;
    r.rsi = k.rsi;
    r.rdi = k.rdi;
    r.rsp = k.rsp;
    r.rbp = k.rbp;
    r.r8 = k.r8;
    r.r9 = k.r9;
    r.r10 = k.r10;
    r.r11 = k.r11;
    r.r12 = k.r12;
    r.r13 = k.r13;
    r.r14 = k.r14;
    r.r15 = k.r15;
    r.rip = k.rip;
    r.eflags = k.rflags;
    r.cs = USER_CS as u64;
    r.ss = USER_DS as u64;
}
