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
//!
//! One measured iteration is one round trip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use memfile::MemoryFile;
use veil_platform::kvm::KvmPlatform;
use veil_platform::ptrace::raw::RawTracee;
use veil_platform::ptrace::PtracePlatform;
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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = kvm_raw, kvm_switch, ptrace_raw, ptrace_switch
}
criterion_main!(benches);
