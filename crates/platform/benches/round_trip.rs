//! The cost of one application system call round trip on each platform,
//! against each platform's floor, in one run.
//!
//! * `kvm_raw_trap_round_trip`: the floor, measured here on the platform's
//!   own guest set-up: ring-3 `int3` -> ring-0 `out` -> exit -> KVM_RUN
//!   -> `iretq`, no other host work (`KvmPlatform::measure_raw_trap_floor`).
//! * `kvm_switch_round_trip`: a `getppid` loop through `KvmContext::switch`.
//! * `raw_sysemu_round_trip`: the ptrace floor: a forked child loops on
//!   `getppid` under PTRACE_SYSEMU; per stop the tracer does GETREGS,
//!   SETREGS, SYSEMU and waitpid, nothing else (`RawTracee`).
//! * `platform_switch_round_trip`: the same loop through
//!   `PtraceContext::switch`; the difference is the platform's overhead.
//! * `seccomp_trap_floor`: the systrap floor: a forked child whose own
//!   seccomp filter traps `getppid` loops on it; its SIGSYS handler sets the
//!   result and returns, all in one process (no sentry).
//! * `systrap_switch_round_trip`: the `getppid` loop through
//!   `SystrapContext::switch`: the trap in the stub, the handoff to the
//!   sentry and back, `rt_sigreturn`.
//!
//! One measured iteration is one round trip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use memfile::MemoryFile;
use veil_platform::kvm::KvmPlatform;
use veil_platform::ptrace::raw::RawTracee;
use veil_platform::ptrace::PtracePlatform;
use veil_platform::systrap::SystrapPlatform;
use veil_platform::{AddressSpace, Context, CpuState, Exit, Perms, Platform, Regs};

const CODE: u64 = 0x40_0000;
/// loop: mov eax, 110 (getppid); syscall; jmp loop
const GETPPID_LOOP: [u8; 9] = [0xb8, 110, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7];

fn kvm_available() -> bool {
    let ok = std::path::Path::new("/dev/kvm").exists();
    if !ok {
        eprintln!("kvm benches skipped: /dev/kvm is absent");
    }
    ok
}

fn kvm_raw(c: &mut Criterion) {
    if !kvm_available() {
        return;
    }
    let mf = Arc::new(MemoryFile::new(1 << 30).unwrap());
    let p = KvmPlatform::new(mf).unwrap();
    c.bench_function("kvm_raw_trap_round_trip", |b| b.iter_custom(|iters| p.measure_raw_trap_floor(iters).unwrap()));
}

fn switch_loop(c: &mut Criterion, name: &str, ctx: Arc<dyn Context>, as_: Arc<dyn AddressSpace>) {
    let mut cpu = CpuState::new(Regs { rip: CODE, ..Regs::default() });
    assert_eq!(ctx.switch(&mut cpu, &as_).unwrap(), Exit::Syscall);
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                // SAFETY: getpid has no preconditions.
                cpu.regs.rax = unsafe { libc::getpid() } as u64;
                let exit = ctx.switch(&mut cpu, &as_).unwrap();
                debug_assert_eq!(exit, Exit::Syscall);
                let _ = exit;
            }
            start.elapsed()
        })
    });
}

fn kvm_switch(c: &mut Criterion) {
    if !kvm_available() {
        return;
    }
    let mf = Arc::new(MemoryFile::new(1 << 30).unwrap());
    let p = KvmPlatform::new(mf.clone()).unwrap();
    let as_ = p.new_address_space().unwrap();
    let code = mf.allocate(4096).unwrap();
    mf.write(code.start, &GETPPID_LOOP);
    as_.map_file(CODE, code.start, 4096, Perms::READ | Perms::EXEC).unwrap();
    switch_loop(c, "kvm_switch_round_trip", p.new_context().unwrap(), as_);
}

fn ptrace_raw(c: &mut Criterion) {
    let tracee = RawTracee::new();
    c.bench_function("raw_sysemu_round_trip", |b| b.iter_custom(|iters| tracee.time_round_trips(iters)));
}

fn ptrace_switch(c: &mut Criterion) {
    let mf = MemoryFile::new(1 << 30).unwrap();
    let p = PtracePlatform::new(mf.fd()).unwrap();
    let as_ = p.new_address_space().unwrap();
    let code = mf.allocate(4096).unwrap();
    mf.write(code.start, &GETPPID_LOOP);
    as_.map_file(CODE, code.start, 4096, Perms::READ | Perms::EXEC).unwrap();
    switch_loop(c, "platform_switch_round_trip", p.new_context().unwrap(), as_);
}

fn systrap_switch(c: &mut Criterion) {
    let mf = Arc::new(MemoryFile::new(1 << 30).unwrap());
    let p = SystrapPlatform::new(&mf).unwrap();
    let as_ = p.new_address_space().unwrap();
    let code = mf.allocate(4096).unwrap();
    mf.write(code.start, &GETPPID_LOOP);
    as_.map_file(CODE, code.start, 4096, Perms::READ | Perms::EXEC).unwrap();
    switch_loop(c, "systrap_switch_round_trip", p.new_context().unwrap(), as_);
}

extern "C" fn trap_floor_handler(_sig: libc::c_int, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: the kernel passes the interrupted context, ours to edit.
    unsafe { (*(uc as *mut libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RAX as usize] = 42 };
}

/// `iters` trapped `getppid` calls in a forked child that filters itself;
/// the time the child measured.
fn seccomp_trap_floor_once(iters: u64) -> Duration {
    let mut fds = [0; 2];
    // SAFETY: a pipe into a local array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child makes raw calls only and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY (whole block): the forked child installs a handler and a
        // filter on itself, then measures; nothing of the parent is touched.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = trap_floor_handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
            let nr_off = 0u32;
            let f = [
                libc::sock_filter { code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, jt: 0, jf: 0, k: nr_off },
                libc::sock_filter { code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, jt: 0, jf: 1, k: libc::SYS_getppid as u32 },
                libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: libc::SECCOMP_RET_TRAP },
                libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: libc::SECCOMP_RET_ALLOW },
            ];
            let prog = libc::sock_fprog { len: f.len() as u16, filter: f.as_ptr() as *mut _ };
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const libc::sock_fprog);
            let start = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(libc::syscall(libc::SYS_getppid));
            }
            let ns = start.elapsed().as_nanos() as u64;
            libc::write(fds[1], &ns as *const u64 as *const libc::c_void, 8);
            libc::_exit(0);
        }
    }
    let mut ns = 0u64;
    // SAFETY: reading 8 bytes into a local; waiting for our child.
    unsafe {
        libc::close(fds[1]);
        assert_eq!(libc::read(fds[0], &mut ns as *mut u64 as *mut libc::c_void, 8), 8);
        libc::close(fds[0]);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    Duration::from_nanos(ns)
}

fn seccomp_trap_floor(c: &mut Criterion) {
    c.bench_function("seccomp_trap_floor", |b| b.iter_custom(seccomp_trap_floor_once));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = kvm_raw, kvm_switch, ptrace_raw, ptrace_switch, seccomp_trap_floor, systrap_switch
}
criterion_main!(benches);
