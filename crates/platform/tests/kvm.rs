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
