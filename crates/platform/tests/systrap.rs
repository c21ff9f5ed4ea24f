//! What only the systrap platform does: the application tries every way out
//! of its stub it has (removing or widening the filter, the stub's own
//! `syscall` instructions with arguments of its own, `int $0x80`,
//! `sysenter`, vsyscall) and each is served by the sentry or kills the stub;
//! none reaches the host. Each attempt would hurt the test process if the
//! host executed it (kill(0, SIGKILL) of our process group, mprotect of the
//! stub code, ...).

use veil_platform as platform;

use std::sync::Arc;

use memfile::MemoryFile;
use platform::systrap::{SystrapAddressSpace, SystrapPlatform};
use platform::{AddressSpace, Context, CpuState, Exit, Perms, Platform, PlatformError, Regs, SignalInfo};

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x50_0000;
const PAGE: u64 = 4096;

struct Fixture {
    _mf: Arc<MemoryFile>,
    platform: SystrapPlatform,
    as_: Arc<dyn AddressSpace>,
    ctx: Arc<dyn Context>,
}

impl Fixture {
    fn new(code: &[u8]) -> Fixture {
        Fixture::with_code(|_| code.to_vec())
    }

    /// Like `new`, with code that may depend on the platform (its stub page).
    fn with_code(code: impl FnOnce(&SystrapPlatform) -> Vec<u8>) -> Fixture {
        let mf = Arc::new(MemoryFile::new(1 << 30).unwrap());
        let platform = SystrapPlatform::new(&mf).unwrap();
        let code = code(&platform);
        let code = &code[..];
        let as_ = platform.new_address_space().unwrap();
        let ctx = platform.new_context().unwrap();
        let code_r = mf.allocate(PAGE).unwrap();
        mf.write(code_r.start, code);
        let data_r = mf.allocate(PAGE).unwrap();
        as_.map_file(CODE, code_r.start, PAGE, Perms::READ | Perms::EXEC).unwrap();
        as_.map_file(DATA, data_r.start, PAGE, Perms::READ | Perms::WRITE).unwrap();
        Fixture { _mf: mf, platform, as_, ctx }
    }

    fn cpu(&self) -> CpuState {
        CpuState::new(Regs { rip: CODE, rsp: DATA + PAGE, ..Regs::default() })
    }

    fn switch(&self, cpu: &mut CpuState) -> platform::Result<Exit> {
        self.ctx.switch(cpu, &self.as_)
    }

    fn stub_pid(&self) -> i32 {
        self.as_.as_any().unwrap().downcast_ref::<SystrapAddressSpace>().unwrap().stub_pid()
    }

}

/// Stub address of a `syscall` instruction on `p`'s stub code page (read
/// through the sentry's own copy of that page).
fn stub_syscall_instruction(p: &SystrapPlatform) -> u64 {
    let page = p.stub_code_address();
    // SAFETY: the platform keeps its stub code page mapped readable in this
    // process for its whole life.
    let code = unsafe { std::slice::from_raw_parts(page as *const u8, PAGE as usize) };
    let at = code.windows(2).position(|w| w == [0x0f, 0x05]).expect("a syscall instruction on the stub page");
    page + at as u64
}

fn mov_imm64(reg_rex_b: u8, v: u64) -> Vec<u8> {
    // REX.W (+B) B8+r imm64
    let (rex, op) = if reg_rex_b >= 8 { (0x49, 0xb8 + reg_rex_b - 8) } else { (0x48, 0xb8 + reg_rex_b) };
    let mut c = vec![rex, op];
    c.extend_from_slice(&v.to_le_bytes());
    c
}
const RAX: u8 = 0;
const RCX: u8 = 1;
const RDX: u8 = 2;
const RSI: u8 = 6;
const RDI: u8 = 7;
const R8: u8 = 8;
const R10: u8 = 10;

fn set(regs: &[(u8, u64)]) -> Vec<u8> {
    regs.iter().flat_map(|&(r, v)| mov_imm64(r, v)).collect()
}

/// The stub process is gone: the switch reports the context lost, and the
/// pid disappears.
fn assert_killed(f: &Fixture, result: platform::Result<Exit>) {
    let pid = f.stub_pid();
    assert!(matches!(result, Err(PlatformError::ContextLost(_))), "expected the stub to be killed, got {result:?}");
    // SAFETY: probing a pid.
    let gone = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        let r = unsafe { libc::kill(pid, 0) };
        r != 0
    });
    assert!(gone, "stub {pid} still exists");
}

#[test]
fn removing_or_widening_the_filter_is_a_system_call_the_sentry_serves() {
    // prctl(PR_SET_SECCOMP, ...); seccomp(SECCOMP_SET_MODE_FILTER, ...);
    // then kill(0, SIGKILL): all three come back as system calls.
    let mut code = set(&[(RAX, 157), (RDI, libc::PR_SET_SECCOMP as u64), (RSI, 0)]);
    code.extend_from_slice(&[0x0f, 0x05]);
    code.extend(set(&[(RAX, libc::SYS_seccomp as u64), (RDI, 1), (RSI, 0), (RDX, 0)]));
    code.extend_from_slice(&[0x0f, 0x05]);
    code.extend(set(&[(RAX, 62), (RDI, 0), (RSI, libc::SIGKILL as u64)]));
    code.extend_from_slice(&[0x0f, 0x05, 0xcc]);
    let f = Fixture::new(&code);
    let mut cpu = f.cpu();
    for nr in [libc::SYS_prctl, libc::SYS_seccomp, libc::SYS_kill] {
        assert_eq!(f.switch(&mut cpu).unwrap(), Exit::Syscall);
        assert_eq!(cpu.regs.orig_rax, nr as u64);
        cpu.regs.rax = 0;
    }
}

/// Runs `regs` (given the stub code page's address) then jumps to the stub
/// page's `syscall` instruction.
fn jump_into_the_stub(regs: impl FnOnce(u64) -> Vec<(u8, u64)>) -> (Fixture, platform::Result<Exit>) {
    let f = Fixture::with_code(|p| {
        let mut code = set(&regs(p.stub_code_address()));
        code.extend(mov_imm64(RCX, stub_syscall_instruction(p)));
        code.extend_from_slice(&[0xff, 0xe1]); // jmp rcx
        code
    });
    let mut cpu = f.cpu();
    let r = f.switch(&mut cpu);
    (f, r)
}

#[test]
fn the_stub_syscall_instruction_with_a_forbidden_call_kills_the_stub() {
    let (f, r) = jump_into_the_stub(|_| vec![(RAX, 62), (RDI, 0), (RSI, libc::SIGKILL as u64)]);
    assert_killed(&f, r);
}

#[test]
fn the_stub_syscall_instruction_cannot_make_the_stub_code_writable() {
    let rwx = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64;
    let (f, r) = jump_into_the_stub(|page| vec![(RAX, 10), (RDI, page), (RSI, PAGE), (RDX, rwx)]);
    assert_killed(&f, r);
}

#[test]
fn the_stub_syscall_instruction_cannot_map_over_the_stub() {
    let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
    let (f, r) = jump_into_the_stub(|page| vec![(RAX, 9), (RDI, page), (RSI, PAGE), (RDX, 7), (R10, flags), (R8, 3)]);
    assert_killed(&f, r);
}

#[test]
fn the_stub_syscall_instruction_cannot_futex_outside_the_stub_slice() {
    let (f, r) = jump_into_the_stub(|_| vec![(RAX, 202), (RDI, DATA), (RSI, 1), (RDX, 1)]);
    assert_killed(&f, r);
}

#[test]
fn the_stub_syscall_instruction_cannot_fork() {
    let (f, r) = jump_into_the_stub(|_| vec![(RAX, 56), (RDI, libc::SIGCHLD as u64), (RSI, 0)]);
    assert_killed(&f, r);
}

#[test]
fn int_0x80_is_a_sigsegv_not_a_host_call() {
    // mov eax, 37 (i386 kill); xor ebx, ebx; mov ecx, 9; int 0x80
    let code = [0xb8, 37, 0, 0, 0, 0x31, 0xdb, 0xb9, 9, 0, 0, 0, 0xcd, 0x80];
    let f = Fixture::new(&code);
    let mut cpu = f.cpu();
    let exit = f.switch(&mut cpu).unwrap();
    assert_eq!(exit, Exit::Signal(SignalInfo { signo: libc::SIGSEGV, code: 0x80, addr: 0 }));
    assert_eq!(cpu.regs.rip, CODE + 12, "at the int instruction");
}

#[test]
fn sysenter_never_reaches_the_host() {
    // mov eax, 37; sysenter
    let f = Fixture::new(&[0xb8, 37, 0, 0, 0, 0x0f, 0x34]);
    let mut cpu = f.cpu();
    match f.switch(&mut cpu).unwrap() {
        Exit::Signal(SignalInfo { signo, .. }) if signo == libc::SIGILL || signo == libc::SIGSEGV => {}
        other => panic!("sysenter: {other:?}"),
    }
}

#[test]
fn a_vsyscall_is_served_by_the_sentry_or_faults() {
    // mov rdi, DATA; xor esi, esi; mov rax, VSYSCALL_GETTIMEOFDAY; call rax; int3
    let mut code = set(&[(RDI, DATA), (RSI, 0), (RAX, 0xffff_ffff_ff60_0000)]);
    code.extend_from_slice(&[0xff, 0xd0, 0xcc]);
    let f = Fixture::new(&code);
    let mut cpu = f.cpu();
    match f.switch(&mut cpu).unwrap() {
        // Emulated by the host, trapped by the filter: the sentry serves it
        // and the application resumes after its call.
        Exit::Syscall => {
            assert_eq!(cpu.regs.orig_rax, libc::SYS_gettimeofday as u64);
            assert_eq!(cpu.regs.rip, CODE + code.len() as u64 - 1);
        }
        // vsyscall=none: a fault the kernel turns into SIGSEGV.
        Exit::Fault { .. } | Exit::Signal(_) => {}
        other => panic!("vsyscall: {other:?}"),
    }
}

/// The region of one stub: its own slice of a memfd private to its
/// platform, and no descriptor but the memory file's.
#[test]
fn a_stub_maps_only_its_own_slice_and_keeps_only_the_memory_file() {
    let a = Fixture::new(&[0xcc]);
    let b_as = a.platform.new_address_space().unwrap();
    let b = b_as.as_any().unwrap().downcast_ref::<SystrapAddressSpace>().unwrap().stub_pid();
    let other = Fixture::new(&[0xcc]);
    let slices = |pid: i32| -> Vec<(String, String)> {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        maps.lines()
            .filter(|l| l.contains("veil-systrap"))
            .map(|l| {
                let f: Vec<_> = l.split_whitespace().collect();
                (f[2].to_string(), f[4].to_string()) // offset, inode
            })
            .collect()
    };
    let (sa, sb, so) = (slices(a.stub_pid()), slices(b), slices(other.stub_pid()));
    assert_eq!(sa.len(), 1, "{sa:?}");
    assert_eq!(sb.len(), 1, "{sb:?}");
    assert_ne!(sa[0].0, sb[0].0, "two stubs of one platform share a slice");
    assert_ne!(sa[0].1, so[0].1, "two platforms share a region");
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{}/fd", a.stub_pid())).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(fds, vec![std::ffi::OsString::from("3")]);
}

#[test]
fn a_stub_killed_from_outside_is_context_lost() {
    let f = Fixture::new(&[0xeb, 0xfe]); // jmp $
    let pid = f.stub_pid();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        // SAFETY: pid is our stub.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let mut cpu = f.cpu();
    assert!(matches!(f.switch(&mut cpu), Err(PlatformError::ContextLost(_))));
}

#[test]
fn signals_sent_from_outside_are_suppressed() {
    let f = Fixture::new(&[0x0f, 0x05, 0xeb, 0xfe]); // syscall; jmp $
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu).unwrap(), Exit::Syscall);
    let pid = f.stub_pid();
    let ctx = f.ctx.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        // SAFETY: pid is our stub; SIGTERM would kill it if delivered.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        std::thread::sleep(std::time::Duration::from_millis(100));
        ctx.interrupt();
    });
    assert_eq!(f.switch(&mut cpu).unwrap(), Exit::Interrupted);
    assert_eq!(f.switch(&mut cpu).unwrap(), Exit::Interrupted);
    t.join().unwrap();
    // SAFETY: probing our stub.
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "stub still alive");
}

#[test]
fn dropping_the_address_space_kills_the_stub() {
    let f = Fixture::new(&[0x0f, 0x05]);
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu).unwrap(), Exit::Syscall);
    let pid = f.stub_pid();
    let Fixture { as_, ctx, .. } = f;
    drop(ctx);
    drop(as_);
    // SAFETY: probing a pid.
    let gone = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        let r = unsafe { libc::kill(pid, 0) };
        r != 0
    });
    assert!(gone);
}
