//! The KVM platform against real vCPUs. Every test is skipped (with a
//! printed reason) when /dev/kvm is absent.

use veil_platform as platform;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memfile::{FileRange, MemoryFile};
use platform::kvm::KvmPlatform;
use platform::{Access, AddressSpace, Context, CpuState, Exit, Perms, Platform, Regs, SignalInfo};

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x50_0000;
const PAGE: u64 = 4096;

struct Fixture {
    mf: Arc<MemoryFile>,
    platform: KvmPlatform,
    as_: Arc<dyn AddressSpace>,
    ctx: Arc<dyn Context>,
}

fn kvm_present() -> bool {
    if std::path::Path::new("/dev/kvm").exists() {
        return true;
    }
    eprintln!("skipped: /dev/kvm is absent");
    false
}

impl Fixture {
    /// A memory file, a platform, an address space with `code` mapped RX at
    /// CODE and one RW page at DATA. None (test skipped) without /dev/kvm.
    fn new(code: &[u8]) -> Option<(Fixture, FileRange, FileRange)> {
        if !kvm_present() {
            return None;
        }
        let mf = Arc::new(MemoryFile::new(1 << 30).unwrap());
        let platform = KvmPlatform::new(mf.clone()).unwrap();
        let as_ = platform.new_address_space().unwrap();
        let ctx = platform.new_context().unwrap();
        let code_r = mf.allocate(PAGE).unwrap();
        mf.write(code_r.start, code);
        let data_r = mf.allocate(PAGE).unwrap();
        as_.map_file(CODE, code_r.start, PAGE, Perms::READ | Perms::EXEC).unwrap();
        as_.map_file(DATA, data_r.start, PAGE, Perms::READ | Perms::WRITE).unwrap();
        Some((Fixture { mf, platform, as_, ctx }, code_r, data_r))
    }

    fn cpu(&self) -> CpuState {
        CpuState::new(Regs { rip: CODE, rsp: DATA + PAGE, ..Regs::default() })
    }

    fn switch(&self, cpu: &mut CpuState) -> Exit {
        self.ctx.switch(cpu, &self.as_).unwrap()
    }
}

fn mov_rax_imm64(v: u64) -> Vec<u8> {
    let mut c = vec![0x48, 0xb8];
    c.extend_from_slice(&v.to_le_bytes());
    c
}

const INT3: u8 = 0xcc;
const SIGTRAP_INT3: Exit = Exit::Signal(SignalInfo { signo: libc::SIGTRAP, code: 0x80, addr: 0 });

fn read_u64(mf: &MemoryFile, off: u64) -> u64 {
    let mut b = [0u8; 8];
    mf.read(off, &mut b);
    u64::from_le_bytes(b)
}

#[test]
fn platform_basics() {
    if !kvm_present() {
        return;
    }
    let mf = Arc::new(MemoryFile::new(8 << 20).unwrap());
    let p = KvmPlatform::new(mf).unwrap();
    assert_eq!(p.name(), "kvm");
    assert_eq!(p.max_user_address(), 0x7fff_ffff_f000);
    let as_ = p.new_address_space().unwrap();
    assert!(as_.map_file(p.max_user_address(), 0, PAGE, Perms::READ).is_err());
    assert!(as_.map_file(p.max_user_address() - PAGE, 0, PAGE, Perms::READ).is_ok());
    assert!(as_.map_file(0x1000, 8 << 20, PAGE, Perms::READ).is_err(), "beyond the memory file");
    assert!(as_.unmap(0x1001, PAGE).is_err());
}

#[test]
fn syscall_exit_then_int3() {
    // mov eax, 39 (getpid); syscall; int3
    let code = [0xb8, 39, 0, 0, 0, 0x0f, 0x05, INT3];
    let Some((f, _, _)) = Fixture::new(&code) else { return };
    let mut cpu = f.cpu();
    cpu.regs.rbx = 0x1234;
    cpu.regs.eflags = 0x246; // ZF PF IF
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    assert_eq!(cpu.regs.orig_rax, 39);
    assert_eq!(cpu.regs.rip, CODE + 7);
    assert_eq!(cpu.regs.rcx, CODE + 7, "rcx = return rip, as the syscall instruction sets it");
    assert_eq!(cpu.regs.r11 & 0xfff, 0x246, "r11 = rflags");
    assert_eq!(cpu.regs.eflags & 0xfff, 0x246);
    assert_eq!(cpu.regs.rsp, DATA + PAGE);
    assert_eq!(cpu.regs.rbx, 0x1234);
    assert_eq!(cpu.regs.rax as i64, -(libc::ENOSYS as i64));
    cpu.regs.rax = 4242;
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert_eq!(cpu.regs.rip, CODE + 8, "rip after the int3, as Linux reports");
    assert_eq!(cpu.regs.rax, 4242);
    assert_eq!(cpu.regs.rbx, 0x1234);
}

#[test]
fn syscalls_in_a_loop() {
    // loop: mov eax, 62 (kill); syscall; jmp loop
    let code = [0xb8, 62, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7];
    let Some((f, _, _)) = Fixture::new(&code) else { return };
    let mut cpu = f.cpu();
    cpu.regs.rdi = 0;
    cpu.regs.rsi = libc::SIGKILL as u64;
    for i in 0..200u64 {
        cpu.regs.r12 = i;
        assert_eq!(f.switch(&mut cpu), Exit::Syscall);
        assert_eq!(cpu.regs.orig_rax, 62);
        assert_eq!(cpu.regs.r12, i);
        assert_eq!(cpu.regs.rip, CODE + 7);
        cpu.regs.rax = 0;
    }
}

#[test]
fn a_syscall_round_trip_keeps_every_register_but_rcx_and_r11() {
    // syscall; syscall: the second exit shows what the first re-entry
    // installed (on a host whose `syscall` stays in ring 3, that re-entry
    // only sets registers).
    let Some((f, _, _)) = Fixture::new(&[0x0f, 0x05, 0x0f, 0x05, INT3]) else { return };
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    assert_eq!(cpu.regs.rip, CODE + 2);
    let want = Regs {
        rax: 39, // the result, which is also the next call's number
        rbx: 0x1111, rdx: 0x2222, rsi: 0x3333, rdi: 0x4444, rbp: 0x5555, rsp: 0x6666,
        r8: 0x8888, r9: 0x9999, r10: 0xaaaa, r12: 0xcccc, r13: 0xdddd, r14: 0xeeee, r15: 0xffff,
        eflags: 0x202 | 0x1 | 0x40 | 0x80 | 0x800, // IF, CF, ZF, SF, OF
        ..cpu.regs
    };
    cpu.regs = want;
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    let got = cpu.regs;
    assert_eq!(got.orig_rax, 39);
    assert_eq!((got.rip, got.rcx), (CODE + 4, CODE + 4));
    assert_eq!(got.r11 & 0xfff, want.eflags & 0xfff, "r11 holds the flags");
    assert_eq!(got.eflags & 0xfff, want.eflags & 0xfff);
    let gprs = |r: &Regs| [r.rbx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r12, r.r13, r.r14, r.r15];
    assert_eq!(gprs(&got), gprs(&want));
}

#[test]
fn write_to_unmapped_faults_then_resumes_once_mapped() {
    const TARGET: u64 = 0x70_0000;
    let mut code = mov_rax_imm64(TARGET);
    code.extend_from_slice(&[0xc6, 0x00, 0x2a]); // mov byte [rax], 42
    code.push(INT3);
    let Some((f, _, _)) = Fixture::new(&code) else { return };
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Fault { addr: TARGET, access: Access::Write, mapped: false });
    assert_eq!(cpu.regs.rip, CODE + 10, "rip at the faulting instruction");
    assert_eq!(cpu.regs.rax, TARGET);
    let r = f.mf.allocate(PAGE).unwrap();
    f.as_.map_file(TARGET, r.start, PAGE, Perms::READ | Perms::WRITE).unwrap();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    let mut b = [0u8];
    f.mf.read(r.start, &mut b);
    assert_eq!(b, [42], "the guest's write is visible through the memory file");
}

#[test]
fn read_and_exec_faults_report_their_access() {
    const TARGET: u64 = 0x7000_1234;
    let mut code = mov_rax_imm64(TARGET);
    code.extend_from_slice(&[0x48, 0x8b, 0x08]); // mov rcx, [rax]
    code.extend_from_slice(&[0xff, 0xe0]); // jmp rax
    let Some((f, _, _)) = Fixture::new(&code) else { return };
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Fault { addr: TARGET, access: Access::Read, mapped: false });
    cpu.regs.rip += 3; // skip the load
    assert_eq!(f.switch(&mut cpu), Exit::Fault { addr: TARGET, access: Access::Exec, mapped: false });
    assert_eq!(cpu.regs.rip, TARGET);
    // Executing a mapped, non-executable page.
    cpu.regs.rip = DATA;
    assert_eq!(f.switch(&mut cpu), Exit::Fault { addr: DATA, access: Access::Exec, mapped: true });
}

#[test]
fn write_to_read_only_is_a_protection_fault() {
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0xc6, 0x00, 0x2a]); // mov byte [rax], 42
    code.push(INT3);
    let Some((f, _, _)) = Fixture::new(&code) else { return };
    f.as_.protect(DATA, PAGE, Perms::READ).unwrap();
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Fault { addr: DATA, access: Access::Write, mapped: true });
    f.as_.protect(DATA, PAGE, Perms::READ | Perms::WRITE).unwrap();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    // PROT_NONE: any access faults, and the fault says something is mapped.
    f.as_.protect(DATA, PAGE, Perms::empty()).unwrap();
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Fault { addr: DATA, access: Access::Write, mapped: true });
}

#[test]
fn ud2_is_sigill() {
    let Some((f, _, _)) = Fixture::new(&[0x90, 0x0f, 0x0b]) else { return }; // nop; ud2
    let mut cpu = f.cpu();
    let exit = f.switch(&mut cpu);
    assert_eq!(exit, Exit::Signal(SignalInfo { signo: libc::SIGILL, code: 2 /* ILL_ILLOPN */, addr: CODE + 1 }));
    assert_eq!(cpu.regs.rip, CODE + 1);
}

#[test]
fn divide_by_zero_is_sigfpe() {
    // xor ecx, ecx; mov eax, 1; xor edx, edx; div ecx
    let code = [0x31, 0xc9, 0xb8, 1, 0, 0, 0, 0x31, 0xd2, 0xf7, 0xf1];
    let Some((f, _, _)) = Fixture::new(&code) else { return };
    let mut cpu = f.cpu();
    let exit = f.switch(&mut cpu);
    assert_eq!(exit, Exit::Signal(SignalInfo { signo: libc::SIGFPE, code: 1 /* FPE_INTDIV */, addr: CODE + 9 }));
    assert_eq!(cpu.regs.rip, CODE + 9);
}

/// PVM (`kvm_pvm`, KVM without hardware virtualisation, as on this nested
/// host) emulates some faulting instructions differently from hardware: a
/// load from a non-canonical address does not raise #GP, `int 0x80` through
/// a DPL-0 gate gives #UD.
fn pvm_host() -> bool {
    let pvm = std::path::Path::new("/sys/module/kvm_pvm").exists();
    if pvm {
        eprintln!("note: PVM host, #GP checks relaxed");
    }
    pvm
}

#[test]
fn general_protection_is_sigsegv_and_int_n_too() {
    // mov rax, non-canonical; mov rcx, [rax]
    let mut code = mov_rax_imm64(0x8000_0000_0000);
    code.extend_from_slice(&[0x48, 0x8b, 0x08]);
    code.extend_from_slice(&[0xcd, 0x80]); // int 0x80
    let Some((f, _, _)) = Fixture::new(&code) else { return };
    let mut cpu = f.cpu();
    let e1 = f.switch(&mut cpu);
    eprintln!("non-canonical load: {e1:?} at {:#x}", cpu.regs.rip);
    if !pvm_host() {
        assert_eq!(e1, Exit::Signal(SignalInfo { signo: libc::SIGSEGV, code: 0x80, addr: 0 }));
        assert_eq!(cpu.regs.rip, CODE + 10);
        cpu.regs.rip += 3;
        assert_eq!(f.switch(&mut cpu), Exit::Signal(SignalInfo { signo: libc::SIGSEGV, code: 0x80, addr: 0 }));
    }
    // A non-canonical rip installed by the kernel (bad sigreturn): SIGSEGV,
    // not a platform error.
    cpu.regs.rip = 0x8000_0000_0000;
    assert_eq!(f.switch(&mut cpu), Exit::Signal(SignalInfo { signo: libc::SIGSEGV, code: 0x80, addr: 0 }));
    // And the vCPU still works afterwards.
    cpu.regs.rip = CODE;
    assert!(matches!(f.switch(&mut cpu), Exit::Signal(_)));
}

#[test]
fn io_by_the_application_is_sigsegv_whatever_the_port() {
    // out 14, al (the page-fault stub's port); out 0x80, al (the syscall
    // stub's, which ring 3 may use); in al, 0x80; then a syscall, to show
    // the vCPU carries on.
    let code = [0xe6, 14, 0xe6, 0x80, 0xe4, 0x80, 0x0f, 0x05];
    let Some((f, _, _)) = Fixture::new(&code) else { return };
    let mut cpu = f.cpu();
    let segv = Exit::Signal(SignalInfo { signo: libc::SIGSEGV, code: 0x80, addr: 0 });
    assert_eq!(f.switch(&mut cpu), segv);
    assert_eq!(cpu.regs.rip, CODE, "rip at the out");
    cpu.regs.rip += 2;
    assert_eq!(f.switch(&mut cpu), segv);
    assert_eq!(cpu.regs.rip, CODE + 2);
    cpu.regs.rip += 2;
    assert_eq!(f.switch(&mut cpu), segv);
    assert_eq!(cpu.regs.rip, CODE + 4);
    cpu.regs.rip += 2;
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    assert_eq!(cpu.regs.rip, CODE + 8);
}

#[test]
fn single_step_is_trap_trace() {
    let Some((f, _, _)) = Fixture::new(&[0x90, 0x90, INT3]) else { return };
    let mut cpu = f.cpu();
    cpu.regs.eflags = 0x302; // TF
    let exit = f.switch(&mut cpu);
    assert_eq!(exit, Exit::Signal(SignalInfo { signo: libc::SIGTRAP, code: 2 /* TRAP_TRACE */, addr: CODE + 1 }));
    assert_eq!(cpu.regs.rip, CODE + 1);
    cpu.regs.eflags &= !0x100;
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
}

#[test]
fn cpuid_and_rdtsc_run_in_the_guest() {
    // xor eax, eax; cpuid; int3; rdtsc; int3
    let Some((f, _, _)) = Fixture::new(&[0x31, 0xc0, 0x0f, 0xa2, INT3, 0x0f, 0x31, INT3]) else { return };
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    let host = std::arch::x86_64::__cpuid(0);
    assert_eq!((cpu.regs.rbx as u32, cpu.regs.rdx as u32, cpu.regs.rcx as u32), (host.ebx, host.edx, host.ecx));
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert!(cpu.regs.rax != 0 || cpu.regs.rdx != 0);
}

#[test]
fn memory_is_shared_both_ways() {
    // mov rax, DATA; mov rbx, imm64; mov [rax], rbx; mov rcx, [rax+8]; int3
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0x48, 0xbb]);
    code.extend_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    code.extend_from_slice(&[0x48, 0x89, 0x18, 0x48, 0x8b, 0x48, 0x08, INT3]);
    let Some((f, _, data)) = Fixture::new(&code) else { return };
    f.mf.write(data.start + 8, &0xdead_beef_u64.to_le_bytes());
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert_eq!(cpu.regs.rcx, 0xdead_beef, "sentry write seen by the application");
    assert_eq!(read_u64(&f.mf, data.start), 0x1122_3344_5566_7788, "application write seen by the sentry");
}

#[test]
fn unmap_then_touch_faults() {
    // mov rax, DATA; mov rcx, [rax]; int3
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0x48, 0x8b, 0x08, INT3]);
    let Some((f, _, _)) = Fixture::new(&code) else { return };
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    f.as_.unmap(DATA, PAGE).unwrap();
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Fault { addr: DATA, access: Access::Read, mapped: false });
}

#[test]
fn remap_to_other_pages_is_seen() {
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0x48, 0x8b, 0x08, INT3]); // mov rcx, [rax]
    let Some((f, _, data)) = Fixture::new(&code) else { return };
    f.mf.write(data.start, &11u64.to_le_bytes());
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert_eq!(cpu.regs.rcx, 11);
    let other = f.mf.allocate(PAGE).unwrap();
    f.mf.write(other.start, &77u64.to_le_bytes());
    let as_ = f.as_.clone();
    std::thread::spawn(move || as_.map_file(DATA, other.start, PAGE, Perms::READ).unwrap()).join().unwrap();
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert_eq!(cpu.regs.rcx, 77);
}

/// What mremap does: a run of pages unmapped, then the same addresses mapped
/// again to other pages of the memory file; the guest must see the new ones.
#[test]
fn unmap_then_map_other_pages_at_the_same_addresses() {
    const N: u64 = 16;
    let base = DATA + 0x10_0000;
    // mov rax, base + 8 pages; mov rcx, [rax]; int3
    let mut code = mov_rax_imm64(base + 8 * PAGE);
    code.extend_from_slice(&[0x48, 0x8b, 0x08, INT3]);
    let Some((f, _, _)) = Fixture::new(&code) else { return };
    let a = f.mf.allocate(N * PAGE).unwrap();
    let b = f.mf.allocate(N * PAGE).unwrap();
    for i in 0..N {
        f.mf.write(a.start + i * PAGE, &(100 + i).to_le_bytes());
        f.mf.write(b.start + i * PAGE, &(200 + i).to_le_bytes());
    }
    for round in 0..20 {
        let (r, first) = if round % 2 == 0 { (a, 100) } else { (b, 200) };
        f.as_.unmap(base, N * PAGE).unwrap();
        f.as_.map_file(base, r.start, N * PAGE, Perms::READ | Perms::WRITE).unwrap();
        let mut cpu = f.cpu();
        assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
        assert_eq!(cpu.regs.rcx, first + 8, "round {round}: a stale translation");
    }
}

/// Processes come and go: a new address space may be built in page-table
/// pages a dropped one used, mapping the same addresses to other pages;
/// one context (one vCPU) runs them in turn, as a task does across exec.
#[test]
fn a_new_address_space_in_reused_page_table_pages_is_seen() {
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0x48, 0x8b, 0x08, INT3]); // mov rcx, [rax]; int3
    let Some((f, code_r, _)) = Fixture::new(&code) else { return };
    for round in 0..30u64 {
        let as_ = f.platform.new_address_space().unwrap();
        let data = f.mf.allocate(PAGE).unwrap();
        f.mf.write(data.start, &(1000 + round).to_le_bytes());
        as_.map_file(CODE, code_r.start, PAGE, Perms::READ | Perms::EXEC).unwrap();
        as_.map_file(DATA, data.start, PAGE, Perms::READ | Perms::WRITE).unwrap();
        let mut cpu = f.cpu();
        assert_eq!(f.ctx.switch(&mut cpu, &as_).unwrap(), SIGTRAP_INT3);
        assert_eq!(cpu.regs.rcx, 1000 + round, "round {round}: a stale translation");
        drop(as_);
        f.mf.free(data);
    }
}

/// Code for a second vCPU: `loop: inc qword [DATA]; jmp loop`, at CODE + 0x100.
fn counter_loop() -> Vec<u8> {
    let mut code = vec![0x90; 0x100];
    code.extend_from_slice(&mov_rax_imm64(DATA));
    code.extend_from_slice(&[0x48, 0xff, 0x00, 0xeb, 0xfb]); // inc qword [rax]; jmp -5
    code
}

/// Runs `counter_loop` on a second context in another thread until the
/// counter moves, applies `change` from this thread while it runs, checks
/// that the counter stops at once, and returns the second vCPU's exit.
fn change_under_a_running_vcpu(change: impl FnOnce(&Fixture)) -> Option<Exit> {
    let (f, _, data) = Fixture::new(&counter_loop())?;
    let ctx2 = f.platform.new_context().unwrap();
    let as2 = f.as_.clone();
    let t = std::thread::spawn(move || {
        let mut cpu = CpuState::new(Regs { rip: CODE + 0x100, rsp: DATA + PAGE, ..Regs::default() });
        ctx2.switch(&mut cpu, &as2).unwrap()
    });
    let start = Instant::now();
    while read_u64(&f.mf, data.start) < 1000 {
        assert!(start.elapsed() < Duration::from_secs(20), "second vCPU never ran");
        std::thread::yield_now();
    }
    change(&f);
    let after = read_u64(&f.mf, data.start);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(read_u64(&f.mf, data.start), after, "the running vCPU still writes through a stale translation");
    Some(t.join().unwrap())
}

#[test]
fn unmap_is_coherent_with_a_vcpu_running_in_another_thread() {
    let Some(exit) = change_under_a_running_vcpu(|f| f.as_.unmap(DATA, PAGE).unwrap()) else { return };
    match exit {
        Exit::Fault { addr: DATA, mapped: false, access } => assert!(matches!(access, Access::Read | Access::Write)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn protect_is_coherent_with_a_vcpu_running_in_another_thread() {
    let Some(exit) = change_under_a_running_vcpu(|f| f.as_.protect(DATA, PAGE, Perms::READ).unwrap()) else { return };
    assert_eq!(exit, Exit::Fault { addr: DATA, access: Access::Write, mapped: true });
}

#[test]
fn two_vcpus_run_one_address_space_at_once() {
    let Some((f, _, data)) = Fixture::new(&counter_loop()) else { return };
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let mut ctxs = Vec::new();
    for _ in 0..2 {
        let ctx = f.platform.new_context().unwrap();
        ctxs.push(ctx.clone());
        let as_ = f.as_.clone();
        threads.push(std::thread::spawn(move || {
            let mut cpu = CpuState::new(Regs { rip: CODE + 0x100, rsp: DATA + PAGE, ..Regs::default() });
            ctx.switch(&mut cpu, &as_).unwrap()
        }));
    }
    let start = Instant::now();
    while read_u64(&f.mf, data.start) < 10_000 && start.elapsed() < Duration::from_secs(20) {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::SeqCst);
    for c in &ctxs {
        c.interrupt();
    }
    for t in threads {
        assert_eq!(t.join().unwrap(), Exit::Interrupted);
    }
    assert!(read_u64(&f.mf, data.start) >= 10_000);
}

#[test]
fn interrupt_from_another_thread() {
    let Some((f, _, _)) = Fixture::new(&[0xeb, 0xfe]) else { return }; // jmp $
    let mut cpu = f.cpu();
    let ctx = f.ctx.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        ctx.interrupt();
    });
    let start = Instant::now();
    assert_eq!(f.switch(&mut cpu), Exit::Interrupted);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(cpu.regs.rip, CODE, "the application was running its loop");
    t.join().unwrap();
    // Still pending: the next switch does not run.
    assert_eq!(f.switch(&mut cpu), Exit::Interrupted);
    f.ctx.clear_interrupt();
    let ctx = f.ctx.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        ctx.interrupt();
    });
    assert_eq!(f.switch(&mut cpu), Exit::Interrupted);
    t.join().unwrap();
    f.ctx.clear_interrupt();
}

#[test]
fn interrupt_before_first_switch() {
    let Some((f, _, _)) = Fixture::new(&[0xeb, 0xfe]) else { return };
    f.ctx.interrupt();
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Interrupted);
    f.ctx.clear_interrupt();
}

#[test]
fn interrupted_state_resumes_exactly() {
    // loop: inc rbx; jmp loop
    let Some((f, _, _)) = Fixture::new(&[0x48, 0xff, 0xc3, 0xeb, 0xfb]) else { return };
    let mut cpu = f.cpu();
    for round in 0..5 {
        let ctx = f.ctx.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            ctx.interrupt();
        });
        let before = cpu.regs.rbx;
        assert_eq!(f.switch(&mut cpu), Exit::Interrupted, "round {round}");
        t.join().unwrap();
        assert!(cpu.regs.rbx >= before, "rbx went backwards");
        assert!(cpu.regs.rip == CODE || cpu.regs.rip == CODE + 3);
        f.ctx.clear_interrupt();
    }
    assert!(cpu.regs.rbx > 0);
}

#[test]
fn fp_state_is_installed_and_loaded() {
    // movq rax, xmm0; mov rbx, imm64; movq xmm2, rbx; int3
    let mut code = vec![0x66, 0x48, 0x0f, 0x7e, 0xc0, 0x48, 0xbb];
    code.extend_from_slice(&0x0bad_cafe_f00d_u64.to_le_bytes());
    code.extend_from_slice(&[0x66, 0x48, 0x0f, 0x6e, 0xd3, INT3]);
    let Some((f, _, _)) = Fixture::new(&code) else { return };
    let mut cpu = f.cpu();
    cpu.fp.bytes[160..168].copy_from_slice(&0x5555_6666_7777_u64.to_le_bytes());
    cpu.fp_dirty = true;
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert_eq!(cpu.regs.rax, 0x5555_6666_7777);
    assert!(!cpu.fp_loaded);
    f.ctx.load_fp(&mut cpu).unwrap();
    assert!(cpu.fp_loaded);
    assert!(cpu.fp.bytes.len() >= 512);
    assert_eq!(&cpu.fp.bytes[192..200], &0x0bad_cafe_f00d_u64.to_le_bytes());
    assert_eq!(&cpu.fp.bytes[24..28], &0x1f80u32.to_le_bytes());
    // A loaded full image installs again unchanged.
    cpu.fp_dirty = true;
    cpu.regs.rip = CODE;
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    f.ctx.load_fp(&mut cpu).unwrap();
    assert_eq!(&cpu.fp.bytes[192..200], &0x0bad_cafe_f00d_u64.to_le_bytes());
}

#[test]
fn fs_base_is_used_by_fs_relative_loads() {
    // mov rax, fs:[0]; mov rcx, gs:[8]; int3
    let code = [0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0, 0x65, 0x48, 0x8b, 0x0c, 0x25, 8, 0, 0, 0, INT3];
    let Some((f, _, data)) = Fixture::new(&code) else { return };
    f.mf.write(data.start + 0x10, &0xf5f5_u64.to_le_bytes());
    f.mf.write(data.start + 0x28, &0x6565_u64.to_le_bytes());
    let mut cpu = f.cpu();
    cpu.regs.fs_base = DATA + 0x10;
    cpu.regs.gs_base = DATA + 0x20;
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert_eq!(cpu.regs.rax, 0xf5f5);
    assert_eq!(cpu.regs.rcx, 0x6565);
    assert_eq!(cpu.regs.fs_base, DATA + 0x10);
    // A changed fs_base is installed on the next switch.
    f.mf.write(data.start + 0x100, &0xabc_u64.to_le_bytes());
    cpu.regs.fs_base = DATA + 0x100;
    cpu.regs.rip = CODE;
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert_eq!(cpu.regs.rax, 0xabc);
}

#[test]
fn contexts_and_address_spaces_come_and_go() {
    let Some((f, _, _)) = Fixture::new(&[0x0f, 0x05]) else { return };
    // More contexts over time than a VM has vCPUs at once: vCPUs are reused.
    for _ in 0..600 {
        let ctx = f.platform.new_context().unwrap();
        let mut cpu = f.cpu();
        assert_eq!(ctx.switch(&mut cpu, &f.as_).unwrap(), Exit::Syscall);
    }
    // Address spaces free their tables.
    let before = f.mf.usage().allocated;
    for _ in 0..50 {
        let as_ = f.platform.new_address_space().unwrap();
        as_.map_file(CODE, 0, PAGE, Perms::READ | Perms::EXEC).unwrap();
        as_.map_file(0x7f00_0000_0000, 0, PAGE, Perms::READ).unwrap();
        let mut cpu = f.cpu();
        assert!(matches!(f.ctx.switch(&mut cpu, &as_).unwrap(), Exit::Signal(_) | Exit::Fault { .. }));
    }
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    assert_eq!(f.mf.usage().allocated, before);
}
