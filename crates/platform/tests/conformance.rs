//! The platform contract, run against every platform of the registry.
//!
//! Each contract test below runs once per platform (test names are
//! `<contract>::<platform>`); a platform that cannot work on this host
//! (`PlatformError::Unusable` from its constructor, e.g. no /dev/kvm) prints
//! `skipped: …` and returns. What only one platform does (stub processes,
//! vCPU reuse, PVM quirks) stays in that platform's own test file.

use veil_platform as platform;

use std::sync::Arc;
use std::time::{Duration, Instant};

use memfile::{FileRange, MemoryFile};
use platform::registry;
use platform::{Access, AddressSpace, Context, CpuState, Exit, Perms, Platform, PlatformError, Regs, SignalInfo};

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x50_0000;
const PAGE: u64 = 4096;

/// The platforms the suite runs on: every registry entry (checked by
/// `every_registry_entry_runs_the_suite`).
macro_rules! on_every_platform {
    ($($test:ident),* $(,)?) => {
        $( on_every_platform!(@one $test [kvm ptrace systrap]); )*
        const SUITE_PLATFORMS: &[&str] = &["kvm", "ptrace", "systrap"];
    };
    (@one $test:ident [$($p:ident)*]) => {
        mod $test {
            $( #[test] fn $p() { super::run(stringify!($p), super::$test) } )*
        }
    };
}

on_every_platform!(
    syscall_exit_then_int3,
    syscalls_in_a_loop_are_not_executed_by_the_host,
    a_syscall_round_trip_keeps_every_register_but_rcx_and_r11,
    write_to_unmapped_faults_then_resumes_once_mapped,
    write_to_read_only_is_a_protection_fault,
    ud2_is_sigill,
    divide_by_zero_is_sigfpe,
    memory_is_shared_both_ways,
    unmap_then_touch_faults,
    remap_to_other_pages_is_seen,
    changes_from_another_thread_are_seen_at_the_next_switch,
    interrupt_from_another_thread,
    interrupt_before_first_switch,
    interrupted_state_resumes_exactly,
    fp_state_is_installed_and_loaded,
    fs_base_is_used_by_fs_relative_loads,
    contexts_and_address_spaces_come_and_go,
);

#[test]
fn every_registry_entry_runs_the_suite() {
    let mut entries: Vec<_> = registry::PLATFORMS.iter().map(|e| e.name).collect();
    let mut suite = SUITE_PLATFORMS.to_vec();
    entries.sort();
    suite.sort();
    assert_eq!(entries, suite);
}

/// A platform built from its registry entry over a 1 GiB memory file.
struct Under {
    mf: Arc<MemoryFile>,
    platform: Arc<dyn Platform>,
}

/// Runs `test` on platform `name`, or says why it is skipped.
fn run(name: &str, test: fn(&Under)) {
    let entry = registry::find(name).unwrap_or_else(|| panic!("{name} is not in the registry"));
    let mf = Arc::new(MemoryFile::new(1 << 30).unwrap());
    match (entry.build)(&mf) {
        Ok(platform) => {
            assert_eq!(platform.name(), name);
            test(&Under { mf, platform })
        }
        Err(PlatformError::Unusable(why)) => eprintln!("skipped: the {name} platform cannot run here: {why}"),
        Err(e) => panic!("building the {name} platform: {e}"),
    }
}

struct Fixture {
    mf: Arc<MemoryFile>,
    platform: Arc<dyn Platform>,
    as_: Arc<dyn AddressSpace>,
    ctx: Arc<dyn Context>,
}

impl Under {
    /// An address space with `code` mapped RX at CODE and one RW page at
    /// DATA, and a context.
    fn fixture(&self, code: &[u8]) -> (Fixture, FileRange, FileRange) {
        let (mf, platform) = (self.mf.clone(), self.platform.clone());
        let as_ = platform.new_address_space().unwrap();
        let ctx = platform.new_context().unwrap();
        let code_r = mf.allocate(PAGE).unwrap();
        mf.write(code_r.start, code);
        let data_r = mf.allocate(PAGE).unwrap();
        as_.map_file(CODE, code_r.start, PAGE, Perms::READ | Perms::EXEC).unwrap();
        as_.map_file(DATA, data_r.start, PAGE, Perms::READ | Perms::WRITE).unwrap();
        (Fixture { mf, platform, as_, ctx }, code_r, data_r)
    }
}

impl Fixture {
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

fn read_u64(mf: &MemoryFile, off: u64) -> u64 {
    let mut b = [0u8; 8];
    mf.read(off, &mut b);
    u64::from_le_bytes(b)
}

const INT3: u8 = 0xcc;
const SIGTRAP_INT3: Exit = Exit::Signal(SignalInfo { signo: libc::SIGTRAP, code: 0x80, addr: 0 });

/// A page fault at `addr` with `mapped`, whose access is `access` or, on a
/// platform that cannot see the error code, `Unknown`.
fn assert_fault(exit: Exit, addr: u64, access: Access, mapped: bool) {
    match exit {
        Exit::Fault { addr: a, access: got, mapped: m } if a == addr && m == mapped && (got == access || got == Access::Unknown) => {}
        other => panic!("expected a {access:?} fault at {addr:#x} (mapped: {mapped}), got {other:?}"),
    }
}

fn syscall_exit_then_int3(p: &Under) {
    // mov eax, 39 (getpid); syscall; int3
    let (f, _, _) = p.fixture(&[0xb8, 39, 0, 0, 0, 0x0f, 0x05, INT3]);
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
    // The kernel "serves" it: the result goes into rax.
    cpu.regs.rax = 4242;
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert_eq!(cpu.regs.rip, CODE + 8, "rip after the int3, as Linux reports");
    assert_eq!(cpu.regs.rax, 4242);
    assert_eq!(cpu.regs.rbx, 0x1234);
}

fn syscalls_in_a_loop_are_not_executed_by_the_host(p: &Under) {
    // loop: mov eax, 62 (kill); syscall; jmp loop
    let (f, _, _) = p.fixture(&[0xb8, 62, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]);
    let mut cpu = f.cpu();
    // kill(0, SIGKILL) would kill our whole test process group if executed.
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

fn a_syscall_round_trip_keeps_every_register_but_rcx_and_r11(p: &Under) {
    // syscall; syscall: the second exit shows what the first re-entry
    // installed.
    let (f, _, _) = p.fixture(&[0x0f, 0x05, 0x0f, 0x05, INT3]);
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

fn write_to_unmapped_faults_then_resumes_once_mapped(p: &Under) {
    const TARGET: u64 = 0x70_0000;
    let mut code = mov_rax_imm64(TARGET);
    code.extend_from_slice(&[0xc6, 0x00, 0x2a]); // mov byte [rax], 42
    code.push(INT3);
    let (f, _, _) = p.fixture(&code);
    let mut cpu = f.cpu();
    assert_fault(f.switch(&mut cpu), TARGET, Access::Write, false);
    assert_eq!(cpu.regs.rip, CODE + 10, "rip at the faulting instruction");
    assert_eq!(cpu.regs.rax, TARGET);
    // Resolve the fault the way the kernel will: back the page and retry.
    let r = f.mf.allocate(PAGE).unwrap();
    f.as_.map_file(TARGET, r.start, PAGE, Perms::READ | Perms::WRITE).unwrap();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    let mut b = [0u8];
    f.mf.read(r.start, &mut b);
    assert_eq!(b, [42], "the application's write is visible through the memory file");
}

fn write_to_read_only_is_a_protection_fault(p: &Under) {
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0xc6, 0x00, 0x2a]); // mov byte [rax], 42
    code.push(INT3);
    let (f, _, _) = p.fixture(&code);
    f.as_.protect(DATA, PAGE, Perms::READ).unwrap();
    let mut cpu = f.cpu();
    assert_fault(f.switch(&mut cpu), DATA, Access::Write, true);
    f.as_.protect(DATA, PAGE, Perms::READ | Perms::WRITE).unwrap();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    // PROT_NONE: any access faults, and the fault says something is mapped.
    f.as_.protect(DATA, PAGE, Perms::empty()).unwrap();
    let mut cpu = f.cpu();
    assert_fault(f.switch(&mut cpu), DATA, Access::Write, true);
}

fn ud2_is_sigill(p: &Under) {
    let (f, _, _) = p.fixture(&[0x90, 0x0f, 0x0b]); // nop; ud2
    let mut cpu = f.cpu();
    let exit = f.switch(&mut cpu);
    assert_eq!(exit, Exit::Signal(SignalInfo { signo: libc::SIGILL, code: 2 /* ILL_ILLOPN */, addr: CODE + 1 }));
    assert_eq!(cpu.regs.rip, CODE + 1);
}

fn divide_by_zero_is_sigfpe(p: &Under) {
    // xor ecx, ecx; mov eax, 1; xor edx, edx; div ecx
    let (f, _, _) = p.fixture(&[0x31, 0xc9, 0xb8, 1, 0, 0, 0, 0x31, 0xd2, 0xf7, 0xf1]);
    let mut cpu = f.cpu();
    let exit = f.switch(&mut cpu);
    assert_eq!(exit, Exit::Signal(SignalInfo { signo: libc::SIGFPE, code: 1 /* FPE_INTDIV */, addr: CODE + 9 }));
    assert_eq!(cpu.regs.rip, CODE + 9);
}

fn memory_is_shared_both_ways(p: &Under) {
    // mov rax, DATA; mov rbx, imm64; mov [rax], rbx; mov rcx, [rax+8]; int3
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0x48, 0xbb]);
    code.extend_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    code.extend_from_slice(&[0x48, 0x89, 0x18, 0x48, 0x8b, 0x48, 0x08, INT3]);
    let (f, _, data) = p.fixture(&code);
    f.mf.write(data.start + 8, &0xdead_beef_u64.to_le_bytes());
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert_eq!(cpu.regs.rcx, 0xdead_beef, "sentry write seen by the application");
    assert_eq!(read_u64(&f.mf, data.start), 0x1122_3344_5566_7788, "application write seen by the sentry");
}

fn unmap_then_touch_faults(p: &Under) {
    // mov rax, DATA; mov rcx, [rax]; int3
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0x48, 0x8b, 0x08, INT3]);
    let (f, _, _) = p.fixture(&code);
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    f.as_.unmap(DATA, PAGE).unwrap();
    let mut cpu = f.cpu();
    assert_fault(f.switch(&mut cpu), DATA, Access::Read, false);
}

fn remap_to_other_pages_is_seen(p: &Under) {
    // mov rax, DATA; mov rcx, [rax]; int3
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0x48, 0x8b, 0x08, INT3]);
    let (f, _, data) = p.fixture(&code);
    f.mf.write(data.start, &11u64.to_le_bytes());
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert_eq!(cpu.regs.rcx, 11);
    let other = f.mf.allocate(PAGE).unwrap();
    f.mf.write(other.start, &22u64.to_le_bytes());
    f.as_.map_file(DATA, other.start, PAGE, Perms::READ).unwrap();
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert_eq!(cpu.regs.rcx, 22);
}

fn changes_from_another_thread_are_seen_at_the_next_switch(p: &Under) {
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0x48, 0x8b, 0x08, INT3]); // mov rcx, [rax]
    let (f, _, data) = p.fixture(&code);
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    let other = f.mf.allocate(PAGE).unwrap();
    f.mf.write(other.start, &77u64.to_le_bytes());
    f.mf.write(data.start, &11u64.to_le_bytes());
    let as_ = f.as_.clone();
    std::thread::spawn(move || as_.map_file(DATA, other.start, PAGE, Perms::READ).unwrap()).join().unwrap();
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert_eq!(cpu.regs.rcx, 77);
}

fn interrupt_from_another_thread(p: &Under) {
    let (f, _, _) = p.fixture(&[0xeb, 0xfe]); // jmp $
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
    // Interrupt again while running, after a clear: still works.
    let ctx = f.ctx.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        ctx.interrupt();
    });
    assert_eq!(f.switch(&mut cpu), Exit::Interrupted);
    t.join().unwrap();
    f.ctx.clear_interrupt();
}

fn interrupt_before_first_switch(p: &Under) {
    let (f, _, _) = p.fixture(&[0xeb, 0xfe]);
    f.ctx.interrupt();
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Interrupted);
    f.ctx.clear_interrupt();
}

fn interrupted_state_resumes_exactly(p: &Under) {
    // loop: inc rbx; jmp loop
    let (f, _, _) = p.fixture(&[0x48, 0xff, 0xc3, 0xeb, 0xfb]);
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

fn fp_state_is_installed_and_loaded(p: &Under) {
    // movq rax, xmm0; mov rbx, imm64; movq xmm2, rbx; int3
    let mut code = vec![0x66, 0x48, 0x0f, 0x7e, 0xc0, 0x48, 0xbb];
    code.extend_from_slice(&0x0bad_cafe_f00d_u64.to_le_bytes());
    code.extend_from_slice(&[0x66, 0x48, 0x0f, 0x6e, 0xd3, INT3]);
    let (f, _, _) = p.fixture(&code);
    let mut cpu = f.cpu();
    // xmm0 lives at offset 160 of the FXSAVE area, 16 bytes per register.
    cpu.fp.bytes[160..168].copy_from_slice(&0x5555_6666_7777_u64.to_le_bytes());
    cpu.fp_dirty = true;
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    assert_eq!(cpu.regs.rax, 0x5555_6666_7777);
    assert!(!cpu.fp_loaded);
    f.ctx.load_fp(&mut cpu).unwrap();
    assert!(cpu.fp_loaded);
    assert!(cpu.fp.bytes.len() >= 512);
    assert_eq!(&cpu.fp.bytes[192..200], &0x0bad_cafe_f00d_u64.to_le_bytes());
    // MXCSR kept its initial value.
    assert_eq!(&cpu.fp.bytes[24..28], &0x1f80u32.to_le_bytes());
    // A loaded image installs again unchanged.
    cpu.fp_dirty = true;
    cpu.regs.rip = CODE;
    assert_eq!(f.switch(&mut cpu), SIGTRAP_INT3);
    f.ctx.load_fp(&mut cpu).unwrap();
    assert_eq!(&cpu.fp.bytes[192..200], &0x0bad_cafe_f00d_u64.to_le_bytes());
}

fn fs_base_is_used_by_fs_relative_loads(p: &Under) {
    // mov rax, fs:[0]; mov rcx, gs:[8]; int3
    let code = [0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0, 0x65, 0x48, 0x8b, 0x0c, 0x25, 8, 0, 0, 0, INT3];
    let (f, _, data) = p.fixture(&code);
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

fn contexts_and_address_spaces_come_and_go(p: &Under) {
    let (f, _, _) = p.fixture(&[0x0f, 0x05]);
    for _ in 0..20 {
        let ctx = f.platform.new_context().unwrap();
        let mut cpu = f.cpu();
        assert_eq!(ctx.switch(&mut cpu, &f.as_).unwrap(), Exit::Syscall);
    }
    // Address spaces give back what they took from the memory file.
    let trap = f.mf.allocate(PAGE).unwrap();
    f.mf.write(trap.start, &[INT3]);
    let before = f.mf.usage().allocated;
    for _ in 0..20 {
        let as_ = f.platform.new_address_space().unwrap();
        as_.map_file(CODE, trap.start, PAGE, Perms::READ | Perms::EXEC).unwrap();
        as_.map_file(0x7f00_0000_0000, trap.start, PAGE, Perms::READ).unwrap();
        let mut cpu = f.cpu();
        assert_eq!(f.ctx.switch(&mut cpu, &as_).unwrap(), SIGTRAP_INT3);
    }
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    assert_eq!(f.mf.usage().allocated, before);
}
