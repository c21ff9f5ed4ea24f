//! `KvmContext`: one task's CPU state run on one vCPU, and how exits become
//! [`Exit`] values.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::address_space::{is_mapped, KvmAddressSpace};
use super::ring0::{self, has_error_code, PF_VECTOR, SPURIOUS_PORT, SYSCALL_PORT};
use super::vcpu::{from_kvm, Kick, RunExit, Vcpu};
use super::vm::Vm;
use crate::{Access, AddressSpace, Context, CpuState, Exit, FpState, PlatformError, Result, SignalInfo};

/// Linux `si_code`s.
const SI_KERNEL: i32 = 0x80;
const ILL_ILLOPN: i32 = 2;
const FPE_INTDIV: i32 = 1;
const FPE_FLTDIV: i32 = 3;
const FPE_FLTOVF: i32 = 4;
const FPE_FLTUND: i32 = 5;
const FPE_FLTRES: i32 = 6;
const FPE_FLTINV: i32 = 7;
const TRAP_BRKPT: i32 = 1;
const TRAP_TRACE: i32 = 2;
const BUS_ADRALN: i32 = 1;

const ENOSYS: u64 = 38;
const RFLAGS_TF: u64 = 0x100;

/// Page-fault error code bits.
const PF_PRESENT: u64 = 1;
const PF_WRITE: u64 = 1 << 1;
const PF_FETCH: u64 = 1 << 4;

/// One application thread, run on a vCPU it takes from the VM's pool on its
/// first switch and gives back when dropped.
pub struct KvmContext {
    vm: Arc<Vm>,
    kick: Arc<Kick>,
    interrupted: AtomicBool,
    vcpu: Mutex<Option<Box<Vcpu>>>,
}

fn current_tid() -> i32 {
    thread_local! {
        static TID: i32 = {
            // SAFETY: gettid has no preconditions.
            unsafe { libc::syscall(libc::SYS_gettid) as i32 }
        };
    }
    TID.with(|t| *t)
}

fn signal(signo: i32, code: i32, addr: u64) -> Exit {
    Exit::Signal(SignalInfo { signo, code, addr })
}

/// Where the application's own `in` or `out` (`input`) on `port` that
/// exited at `rip` starts. KVM exits from an `in` before advancing RIP;
/// from an `out`, some hosts (this PVM one) exit after it and others
/// before, so the instruction is looked for where each would leave RIP.
fn io_insn_start(as_: &KvmAddressSpace, rip: u64, port: u16, input: bool) -> u64 {
    let (imm, dx) = if input { (0xe4..=0xe5, 0xec..=0xed) } else { (0xe6..=0xe7, 0xee..=0xef) };
    let at = |a: u64, len: u64| {
        let mut b = [0u8; 2];
        as_.read(a, &mut b).is_some() && if len == 2 { imm.contains(&b[0]) && b[1] as u16 == port } else { dx.contains(&b[0]) }
    };
    let before = rip.wrapping_sub(2);
    let candidates = if input { [(rip, 2), (rip, 1), (before, 2)] } else { [(before, 2), (rip.wrapping_sub(1), 1), (rip, 2)] };
    candidates.iter().find(|&&(a, len)| at(a, len)).map_or(rip, |&(a, _)| a)
}

/// Linux's `fpu__exception_code` for the unmasked exception bits `err`.
fn fp_code(err: u32) -> i32 {
    if err & 0x001 != 0 {
        FPE_FLTINV
    } else if err & 0x004 != 0 {
        FPE_FLTDIV
    } else if err & 0x008 != 0 {
        FPE_FLTOVF
    } else if err & 0x012 != 0 {
        FPE_FLTUND
    } else if err & 0x020 != 0 {
        FPE_FLTRES
    } else {
        0
    }
}

impl KvmContext {
    pub(crate) fn new(vm: Arc<Vm>) -> Result<Self> {
        vm.reserve_context()?;
        Ok(KvmContext { vm, kick: Arc::new(Kick::new()), interrupted: AtomicBool::new(false), vcpu: Mutex::new(None) })
    }

    /// The vCPU index this context runs on, once it has switched.
    pub fn vcpu_index(&self) -> Option<u64> {
        self.vcpu.lock().unwrap().as_ref().map(|v| v.index)
    }

    /// Builds the exit for an `out` from ring 0. `cpu.regs` gets the
    /// application's registers.
    fn classify(&self, v: &mut Vcpu, as_: &KvmAddressSpace, port: u16, input: bool, cpu: &mut CpuState) -> Result<Exit> {
        let vm = &*self.vm;
        let k = v.regs()?;
        let bases = (cpu.regs.fs_base, cpu.regs.gs_base);
        let syscall = |cpu: &mut CpuState| {
            cpu.regs.orig_rax = cpu.regs.rax;
            cpu.regs.rax = ENOSYS.wrapping_neg();
            Ok(Exit::Syscall)
        };
        if input || k.rip < super::layout::KERNEL_BASE {
            // An `in` or `out` the application ran itself on the one port
            // ring 3 may use (the LSTAR stub's): not an exit of ours. Linux
            // answers I/O from ring 3 with SIGSEGV (its #GP).
            from_kvm(&k, &mut cpu.regs);
            cpu.regs.rip = io_insn_start(as_, k.rip, port, input);
            (cpu.regs.fs_base, cpu.regs.gs_base) = bases;
            v.user_mode = true;
            return Ok(signal(libc::SIGSEGV, SI_KERNEL, 0));
        }
        if port == SYSCALL_PORT {
            // `syscall` reached the LSTAR stub: RCX/R11 hold the return RIP
            // and RFLAGS, RSP is still the application's. In ring 0 on
            // bare metal; in ring 3 where the host's `syscall` does not
            // change rings, and then the next entry only sets registers.
            from_kvm(&k, &mut cpu.regs);
            cpu.regs.rip = k.rcx;
            cpu.regs.eflags = k.r11;
            (cpu.regs.fs_base, cpu.regs.gs_base) = bases;
            v.user_mode = v.cpl()? == 3;
            return syscall(cpu);
        }
        v.user_mode = false;
        if port == SPURIOUS_PORT || port >= 32 {
            return Err(PlatformError::Unusable(format!("kvm: unexpected exit through port {port:#x}")));
        }
        let vector = port as u8;
        let bad_frame = || PlatformError::Unusable(format!("kvm: vector {vector}: exception frame not on the vCPU stack"));
        let mut sp = k.rsp;
        let word = |sp: &mut u64| {
            let w = v.read_stack(vm, *sp).ok_or_else(bad_frame);
            *sp += 8;
            w
        };
        let cr2 = if vector == PF_VECTOR { word(&mut sp)? } else { 0 };
        let err = if has_error_code(vector) { word(&mut sp)? } else { 0 };
        let (rip, cs, rflags, rsp) = (word(&mut sp)?, word(&mut sp)?, word(&mut sp)?, word(&mut sp)?);

        if cs & 3 == 0 {
            // The exception was raised in ring 0: only the resume code can
            // fault there, on an application state `iretq` refuses (say a
            // non-canonical RIP). Linux answers a bad return frame with
            // SIGSEGV; cpu.regs still holds the state that was refused.
            if (ring0::RESUME_CR3..ring0::RESUME + 2).contains(&rip) {
                v.need_sregs = true;
                return Ok(signal(libc::SIGSEGV, SI_KERNEL, 0));
            }
            return Err(PlatformError::Unusable(format!(
                "kvm: vector {vector} in ring 0 at {rip:#x} (error code {err:#x}, cr2 {cr2:#x})"
            )));
        }
        from_kvm(&k, &mut cpu.regs);
        cpu.regs.rip = rip;
        cpu.regs.rsp = rsp;
        cpu.regs.eflags = rflags;
        (cpu.regs.fs_base, cpu.regs.gs_base) = bases;

        Ok(match vector {
            PF_VECTOR | 13 if rip == ring0::LSTAR => {
                // `syscall` reached LSTAR in ring 3 on a host that keeps the
                // syscall page from ring 3 (#PF) or refuses the `out` there
                // (#GP).
                cpu.regs.rip = k.rcx;
                cpu.regs.eflags = k.r11;
                return syscall(cpu);
            }
            PF_VECTOR => {
                let access = if err & PF_FETCH != 0 {
                    Access::Exec
                } else if err & PF_WRITE != 0 {
                    Access::Write
                } else {
                    Access::Read
                };
                let mapped = err & PF_PRESENT != 0 || is_mapped(as_.lookup(cr2 & !0xfff));
                Exit::Fault { addr: cr2, access, mapped }
            }
            6 => {
                let mut insn = [0u8; 2];
                if as_.read(rip, &mut insn).is_some() && insn == [0x0f, 0x05] {
                    // `syscall` with EFER.SCE clear: do what it would have.
                    cpu.regs.rip = rip + 2;
                    cpu.regs.rcx = cpu.regs.rip;
                    cpu.regs.r11 = rflags;
                    return syscall(cpu);
                }
                signal(libc::SIGILL, ILL_ILLOPN, rip)
            }
            0 => signal(libc::SIGFPE, FPE_INTDIV, rip),
            1 => signal(libc::SIGTRAP, if rflags & RFLAGS_TF != 0 { TRAP_TRACE } else { TRAP_BRKPT }, rip),
            3 => signal(libc::SIGTRAP, SI_KERNEL, 0),
            4 | 5 | 7 | 10 | 13 => signal(libc::SIGSEGV, SI_KERNEL, 0),
            11 | 12 => signal(libc::SIGBUS, SI_KERNEL, 0),
            16 | 19 => {
                let fp = v.get_fp(vm)?;
                let b = &fp.bytes;
                let e = if vector == 16 {
                    let cwd = u16::from_le_bytes([b[0], b[1]]) as u32;
                    let swd = u16::from_le_bytes([b[2], b[3]]) as u32;
                    swd & !(cwd & 0x3f)
                } else {
                    let mxcsr = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
                    !(mxcsr >> 7) & mxcsr & 0x3f
                };
                signal(libc::SIGFPE, fp_code(e), rip)
            }
            17 => signal(libc::SIGBUS, BUS_ADRALN, 0),
            _ => {
                return Err(PlatformError::Unusable(format!(
                    "kvm: unexpected exception {vector} at {rip:#x} (error code {err:#x})"
                )))
            }
        })
    }
}

impl Context for KvmContext {
    fn switch(&self, cpu: &mut CpuState, address_space: &Arc<dyn AddressSpace>) -> Result<Exit> {
        if self.interrupted.load(Ordering::SeqCst) {
            return Ok(Exit::Interrupted);
        }
        let as_ = address_space
            .as_any()
            .and_then(|a| a.downcast_ref::<KvmAddressSpace>())
            .ok_or_else(|| PlatformError::Unusable("not a kvm address space".into()))?;
        if !Arc::ptr_eq(&as_.vm, &self.vm) {
            return Err(PlatformError::Unusable("kvm address space of another platform".into()));
        }
        let mut guard = self.vcpu.lock().unwrap();
        if guard.is_none() {
            let mut v = self.vm.take_vcpu()?;
            self.kick.run.store(v.run_ptr(), Ordering::SeqCst);
            *guard = Some(v);
            if !cpu.fp_loaded {
                // Nothing live to fetch on a vCPU this task never ran on.
                cpu.fp = FpState::initial();
                cpu.fp_loaded = true;
            }
            cpu.fp_dirty = true;
        }
        let v = guard.as_mut().unwrap();
        self.kick.tid.store(current_tid(), Ordering::SeqCst);
        if v.as_id != as_.id {
            if let Some(old) = v.as_weak.take().and_then(|w| w.upgrade()) {
                if let Some(old) = old.as_any().and_then(|a| a.downcast_ref::<KvmAddressSpace>()) {
                    old.deregister(&self.kick);
                }
            }
            as_.register(&self.kick);
            v.as_weak = Some(Arc::downgrade(address_space));
            v.gen = u64::MAX;
            // The vCPU still holds the previous address space's CR3, whose
            // tables may be freed already: load the new one with SET_SREGS
            // rather than run the resume code under the old one.
            v.need_sregs = true;
        }
        if cpu.fp_dirty {
            v.set_fp(&self.vm, &cpu.fp)?;
            cpu.fp_dirty = false;
        }

        // Whether the next run must first enter through `install` (false:
        // an exception stub was interrupted half-way and must finish).
        let mut fresh = true;
        loop {
            self.kick.clear();
            self.kick.seq.fetch_add(1, Ordering::SeqCst);
            if fresh && self.interrupted.load(Ordering::SeqCst) {
                self.kick.seq.fetch_add(1, Ordering::SeqCst);
                return Ok(Exit::Interrupted);
            }
            let gen = as_.gen.load(Ordering::SeqCst);
            if fresh {
                let flush = v.as_id != as_.id || v.gen != gen;
                if let Err(e) = v.install(&self.vm, &cpu.regs, as_.cr3(), flush) {
                    self.kick.seq.fetch_add(1, Ordering::SeqCst);
                    return Err(e);
                }
                v.as_id = as_.id;
                v.gen = gen;
            }
            let r = v.run();
            self.kick.seq.fetch_add(1, Ordering::SeqCst);
            cpu.fp_loaded = false;
            match r {
                RunExit::Port(port) => return self.classify(v, as_, port, false, cpu),
                RunExit::PortIn(port) => return self.classify(v, as_, port, true, cpu),
                RunExit::Intr => {
                    // The CR3 load may not have happened: flush next time.
                    v.gen = u64::MAX;
                    let k = v.regs()?;
                    if k.rip < ring0::STUBS_END && k.rip >= super::layout::CODE_VA || k.rip == ring0::LSTAR {
                        // Stopped inside an exception stub (or the LSTAR
                        // stub): let it finish and report its exception.
                        fresh = false;
                        continue;
                    }
                    fresh = true;
                    if k.rip < super::layout::KERNEL_BASE {
                        // Stopped in the application: that is its state now,
                        // and the vCPU must be brought back to ring 0.
                        let bases = (cpu.regs.fs_base, cpu.regs.gs_base);
                        from_kvm(&k, &mut cpu.regs);
                        (cpu.regs.fs_base, cpu.regs.gs_base) = bases;
                        v.need_sregs = true;
                    }
                    // Else it never left the resume code: cpu.regs is still
                    // exactly the state being entered.
                    if self.interrupted.load(Ordering::SeqCst) {
                        return Ok(Exit::Interrupted);
                    }
                    // A TLB shootdown or a stray host signal: go on.
                }
                RunExit::Shutdown => {
                    v.need_sregs = true;
                    return Err(PlatformError::ContextLost("kvm: vCPU triple fault".into()));
                }
                RunExit::Other(why) => {
                    v.need_sregs = true;
                    return Err(PlatformError::Unusable(format!("kvm: unexpected vCPU exit: {why}")));
                }
            }
        }
    }

    fn load_fp(&self, cpu: &mut CpuState) -> Result<()> {
        if cpu.fp_loaded {
            return Ok(());
        }
        let guard = self.vcpu.lock().unwrap();
        let v = guard.as_ref().ok_or_else(|| PlatformError::Unusable("load_fp: context never ran".into()))?;
        cpu.fp = v.get_fp(&self.vm)?;
        cpu.fp_loaded = true;
        Ok(())
    }

    fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.kick.kick();
    }

    fn clear_interrupt(&self) {
        self.interrupted.store(false, Ordering::SeqCst);
    }
}

impl Drop for KvmContext {
    fn drop(&mut self) {
        self.vm.release_context();
        if let Some(mut v) = self.vcpu.get_mut().unwrap().take() {
            if let Some(old) = v.as_weak.take().and_then(|w| w.upgrade()) {
                if let Some(old) = old.as_any().and_then(|a| a.downcast_ref::<KvmAddressSpace>()) {
                    old.deregister(&self.kick);
                }
            }
            self.kick.run.store(std::ptr::null_mut(), Ordering::SeqCst);
            self.vm.put_vcpu(v);
        }
    }
}
