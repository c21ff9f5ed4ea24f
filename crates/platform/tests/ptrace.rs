//! The ptrace platform against real stub processes.

use veil_platform as platform;

use std::sync::Arc;
use std::time::Duration;

use memfile::{FileRange, MemoryFile};
use platform::ptrace::{PtraceAddressSpace, PtracePlatform};
use platform::{AddressSpace, Context, Platform, CpuState, Exit, Perms, PlatformError, Regs, SignalInfo};

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x50_0000;
const PAGE: u64 = 4096;

struct Fixture {
    mf: MemoryFile,
    platform: PtracePlatform,
    as_: Arc<dyn AddressSpace>,
    ctx: Arc<dyn Context>,
}

impl Fixture {
    /// A memory file, a platform, an address space with `code` mapped RX at
    /// CODE and one RW page at DATA.
    fn new(code: &[u8]) -> (Fixture, FileRange, FileRange) {
        let mf = MemoryFile::new(1 << 30).unwrap();
        let platform = PtracePlatform::new(mf.fd()).unwrap();
        let as_ = platform.new_address_space().unwrap();
        let ctx = platform.new_context().unwrap();
        let code_r = mf.allocate(PAGE).unwrap();
        mf.write(code_r.start, code);
        let data_r = mf.allocate(PAGE).unwrap();
        as_.map_file(CODE, code_r.start, PAGE, Perms::READ | Perms::EXEC).unwrap();
        as_.map_file(DATA, data_r.start, PAGE, Perms::READ | Perms::WRITE).unwrap();
        (Fixture { mf, platform, as_, ctx }, code_r, data_r)
    }

    fn cpu(&self) -> CpuState {
        CpuState::new(Regs { rip: CODE, rsp: DATA + PAGE, ..Regs::default() })
    }

    fn switch(&self, cpu: &mut CpuState) -> Exit {
        self.ctx.switch(cpu, &self.as_).unwrap()
    }

    fn stub_pid(&self) -> i32 {
        let as_ = self.as_.as_any().unwrap().downcast_ref::<PtraceAddressSpace>().unwrap();
        as_.stub_pid().unwrap()
    }
}

fn mov_rax_imm64(v: u64) -> Vec<u8> {
    let mut c = vec![0x48, 0xb8];
    c.extend_from_slice(&v.to_le_bytes());
    c
}

const INT3: u8 = 0xcc;

fn sigtrap_at(cpu: &CpuState, exit: Exit) {
    assert_eq!(exit, Exit::Signal(SignalInfo { signo: libc::SIGTRAP, code: 0x80, addr: 0 }), "rip {:#x}", cpu.regs.rip);
}

#[test]
fn stub_address_is_high() {
    let mf = MemoryFile::new(1 << 20).unwrap();
    let p = PtracePlatform::new(mf.fd()).unwrap();

    assert!(p.max_user_address() > 0x7e00_0000_0000);
    assert_eq!(p.max_user_address(), p.stub_address());
    assert_eq!(p.name(), "ptrace");
}

#[test]
fn syscall_exit_then_int3() {
    // mov eax, 39 (getpid); syscall; int3
    let code = [0xb8, 39, 0, 0, 0, 0x0f, 0x05, INT3];
    let (f, _, _) = Fixture::new(&code);
    let mut cpu = f.cpu();
    cpu.regs.rbx = 0x1234;
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    assert_eq!(cpu.regs.orig_rax, 39);
    assert_eq!(cpu.regs.rip, CODE + 7);
    assert_eq!(cpu.regs.rbx, 0x1234);
    assert_eq!(cpu.regs.rax as i64, -(libc::ENOSYS as i64));
    // The kernel "serves" it: the result goes into rax.
    cpu.regs.rax = 4242;
    let exit = f.switch(&mut cpu);
    sigtrap_at(&cpu, exit);
    assert_eq!(cpu.regs.rip, CODE + 8);
    assert_eq!(cpu.regs.rax, 4242);
    assert_eq!(cpu.regs.rbx, 0x1234);
}

#[test]
fn syscalls_in_a_loop_are_not_executed_by_the_host() {
    // loop: mov eax, 62 (kill); syscall; jmp loop
    let code = [0xb8, 62, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7];
    let (f, _, _) = Fixture::new(&code);
    let mut cpu = f.cpu();
    // kill(0, SIGKILL) would kill our whole test process group if executed.
    cpu.regs.rdi = 0;
    cpu.regs.rsi = libc::SIGKILL as u64;
    for _ in 0..100 {
        assert_eq!(f.switch(&mut cpu), Exit::Syscall);
        assert_eq!(cpu.regs.orig_rax, 62);
        cpu.regs.rax = 0;
    }
}

#[test]
fn write_to_unmapped_faults_then_resumes_once_mapped() {
    const TARGET: u64 = 0x70_0000;
    let mut code = mov_rax_imm64(TARGET);
    code.extend_from_slice(&[0xc6, 0x00, 0x2a]); // mov byte [rax], 42
    code.push(INT3);
    let (f, _, _) = Fixture::new(&code);
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Fault { addr: TARGET, access: platform::Access::Unknown, mapped: false });
    assert_eq!(cpu.regs.rip, CODE + 10, "rip at the faulting instruction");
    // Resolve the fault the way the kernel will: back the page and retry.
    let r = f.mf.allocate(PAGE).unwrap();
    f.as_.map_file(TARGET, r.start, PAGE, Perms::READ | Perms::WRITE).unwrap();
    let exit = f.switch(&mut cpu);
    sigtrap_at(&cpu, exit);
    let mut b = [0u8];
    f.mf.read(r.start, &mut b);
    assert_eq!(b, [42], "the stub's write is visible through the memory file");
}

#[test]
fn write_to_read_only_is_a_protection_fault() {
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0xc6, 0x00, 0x2a]); // mov byte [rax], 42
    code.push(INT3);
    let (f, _, _) = Fixture::new(&code);
    f.as_.protect(DATA, PAGE, Perms::READ).unwrap();
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Fault { addr: DATA, access: platform::Access::Unknown, mapped: true });
    f.as_.protect(DATA, PAGE, Perms::READ | Perms::WRITE).unwrap();
    let exit = f.switch(&mut cpu);
    sigtrap_at(&cpu, exit);
}

#[test]
fn ud2_is_sigill() {
    let (f, _, _) = Fixture::new(&[0x90, 0x0f, 0x0b]); // nop; ud2
    let mut cpu = f.cpu();
    let exit = f.switch(&mut cpu);
    assert_eq!(exit, Exit::Signal(SignalInfo { signo: libc::SIGILL, code: 2 /* ILL_ILLOPN */, addr: CODE + 1 }));
    assert_eq!(cpu.regs.rip, CODE + 1);
}

#[test]
fn memory_is_shared_both_ways() {
    // mov rax, DATA; mov rbx, imm64; mov [rax], rbx; mov rcx, [rax+8]; int3
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0x48, 0xbb]);
    code.extend_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    code.extend_from_slice(&[0x48, 0x89, 0x18, 0x48, 0x8b, 0x48, 0x08, INT3]);
    let (f, _, data) = Fixture::new(&code);
    f.mf.write(data.start + 8, &0xdead_beef_u64.to_le_bytes());
    let mut cpu = f.cpu();
    let exit = f.switch(&mut cpu);
    sigtrap_at(&cpu, exit);
    assert_eq!(cpu.regs.rcx, 0xdead_beef, "sentry write seen by the application");
    let mut b = [0u8; 8];
    f.mf.read(data.start, &mut b);
    assert_eq!(u64::from_le_bytes(b), 0x1122_3344_5566_7788, "application write seen by the sentry");
}

#[test]
fn unmap_then_touch_faults() {
    // mov rax, DATA; mov rcx, [rax]; int3
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0x48, 0x8b, 0x08, INT3]);
    let (f, _, _) = Fixture::new(&code);
    let mut cpu = f.cpu();
    let exit = f.switch(&mut cpu);
    sigtrap_at(&cpu, exit);
    // The stub exists and is stopped; this thread traces it: applied at once.
    f.as_.unmap(DATA, PAGE).unwrap();
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Fault { addr: DATA, access: platform::Access::Unknown, mapped: false });
}

#[test]
fn ops_from_another_thread_are_queued_until_the_next_switch() {
    let mut code = mov_rax_imm64(DATA);
    code.extend_from_slice(&[0x48, 0x8b, 0x08, INT3]); // mov rcx, [rax]
    let (f, _, data) = Fixture::new(&code);
    let mut cpu = f.cpu();
    let exit = f.switch(&mut cpu);
    sigtrap_at(&cpu, exit);
    let other = f.mf.allocate(PAGE).unwrap();
    f.mf.write(other.start, &77u64.to_le_bytes());
    f.mf.write(data.start, &11u64.to_le_bytes());
    let as_ = f.as_.clone();
    std::thread::spawn(move || as_.map_file(DATA, other.start, PAGE, Perms::READ).unwrap()).join().unwrap();
    let mut cpu = f.cpu();
    let exit = f.switch(&mut cpu);
    sigtrap_at(&cpu, exit);
    assert_eq!(cpu.regs.rcx, 77);
}

#[test]
fn interrupt_from_another_thread() {
    let (f, _, _) = Fixture::new(&[0xeb, 0xfe]); // jmp $
    let mut cpu = f.cpu();
    let ctx = f.ctx.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        ctx.interrupt();
    });
    assert_eq!(f.switch(&mut cpu), Exit::Interrupted);
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

#[test]
fn interrupt_before_first_switch() {
    let (f, _, _) = Fixture::new(&[0xeb, 0xfe]);
    f.ctx.interrupt();
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Interrupted);
    f.ctx.clear_interrupt();
}

#[test]
fn stub_killed_from_outside_is_context_lost() {
    let (f, _, _) = Fixture::new(&[0x0f, 0x05, 0xeb, 0xfe]); // syscall; jmp $
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    let pid = f.stub_pid();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: pid is our stub.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    match f.ctx.switch(&mut cpu, &f.as_) {
        Err(PlatformError::ContextLost(_)) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(f.ctx.switch(&mut cpu, &f.as_), Err(PlatformError::ContextLost(_))));
}

#[test]
fn signals_sent_from_outside_are_suppressed() {
    let (f, _, _) = Fixture::new(&[0x0f, 0x05, 0xeb, 0xfe]); // syscall; jmp $
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    let pid = f.stub_pid();
    let ctx = f.ctx.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: pid is our stub. Would kill it if delivered.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        std::thread::sleep(Duration::from_millis(100));
        ctx.interrupt();
    });
    // SIGTERM: reported as a host signal (Interrupted), never delivered.
    assert_eq!(f.switch(&mut cpu), Exit::Interrupted);
    // The stub is alive and goes on until the real interrupt.
    assert_eq!(f.switch(&mut cpu), Exit::Interrupted);
    t.join().unwrap();
    // SAFETY: probing our own child.
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "stub still alive");
}

#[test]
fn dropping_the_address_space_kills_the_stub() {
    let (f, _, _) = Fixture::new(&[0x0f, 0x05]);
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    let pid = f.stub_pid();
    let Fixture { as_, ctx, mf, platform } = f;
    drop(as_);
    // SAFETY: probing a pid; ESRCH expected as it was reaped.
    assert_eq!(unsafe { libc::kill(pid, 0) }, -1);
    assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::ESRCH));
    drop((ctx, platform, mf));
}

#[test]
fn second_context_on_a_bound_address_space_is_refused() {
    let (f, _, _) = Fixture::new(&[0x0f, 0x05]);
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);

    let ctx2 = f.platform.new_context().unwrap();
    let mut cpu2 = f.cpu();
    assert!(matches!(ctx2.switch(&mut cpu2, &f.as_), Err(PlatformError::Unusable(_))));
}

#[test]
fn context_is_bound_to_its_thread() {
    let (f, _, _) = Fixture::new(&[0x0f, 0x05]);
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    let (ctx, as_) = (f.ctx.clone(), f.as_.clone());
    let r = std::thread::spawn(move || {
        let mut cpu = CpuState::new(Regs { rip: CODE, ..Regs::default() });
        matches!(ctx.switch(&mut cpu, &as_), Err(PlatformError::Unusable(_)))
    })
    .join()
    .unwrap();
    assert!(r);
}

#[test]
fn fp_state_is_installed_and_loaded() {
    // movq rax, xmm0; mov rbx, imm64; movq xmm2, rbx; int3
    let mut code = vec![0x66, 0x48, 0x0f, 0x7e, 0xc0, 0x48, 0xbb];
    code.extend_from_slice(&0x0bad_cafe_f00d_u64.to_le_bytes());
    code.extend_from_slice(&[0x66, 0x48, 0x0f, 0x6e, 0xd3, INT3]);
    let (f, _, _) = Fixture::new(&code);
    let mut cpu = f.cpu();
    // xmm0 lives at offset 160 of the FXSAVE area, 16 bytes per register.
    cpu.fp.bytes[160..168].copy_from_slice(&0x5555_6666_7777_u64.to_le_bytes());
    cpu.fp_dirty = true;
    let exit = f.switch(&mut cpu);
    sigtrap_at(&cpu, exit);
    assert_eq!(cpu.regs.rax, 0x5555_6666_7777);
    assert!(!cpu.fp_loaded);
    f.ctx.load_fp(&mut cpu).unwrap();
    assert!(cpu.fp_loaded);
    assert!(cpu.fp.bytes.len() >= 512);
    assert_eq!(&cpu.fp.bytes[192..200], &0x0bad_cafe_f00d_u64.to_le_bytes());
    // MXCSR kept its initial value.
    assert_eq!(&cpu.fp.bytes[24..28], &0x1f80u32.to_le_bytes());
}

#[test]
fn map_file_rejects_the_stub_page() {
    let (f, _, _) = Fixture::new(&[0x0f, 0x05]);
    let top = f.platform.stub_address();
    assert!(f.as_.map_file(top, 0, PAGE, Perms::READ).is_err());
    assert!(f.as_.unmap(top - PAGE, 2 * PAGE).is_err());
    assert!(f.as_.map_file(top - PAGE, 0, PAGE, Perms::READ).is_ok());
}
