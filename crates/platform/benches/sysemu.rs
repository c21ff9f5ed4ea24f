//! The cost of one application system call round trip under ptrace.
//!
//! * `raw_sysemu_round_trip`: the floor. A forked child loops on `getppid`
//!   under PTRACE_SYSEMU; per stop the tracer does GETREGS, SETREGS (rax =
//!   the result), SYSEMU and waitpid, nothing else.
//! * `platform_switch_round_trip`: the same loop run through
//!   `PtraceContext::switch` in a `PtraceAddressSpace`; the difference with
//!   the floor is the platform's overhead.
//!
//! One measured iteration is one system call round trip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use memfile::MemoryFile;
use veil_platform::ptrace::raw::RawTracee;
use veil_platform::ptrace::PtracePlatform;
use veil_platform::{AddressSpace, Context, CpuState, Exit, Perms, Platform, Regs};

fn raw(c: &mut Criterion) {
    let tracee = RawTracee::new();
    c.bench_function("raw_sysemu_round_trip", |b| b.iter_custom(|iters| tracee.time_round_trips(iters)));
}

fn platform(c: &mut Criterion) {
    let mf = MemoryFile::new(1 << 30).unwrap();
    let p = PtracePlatform::new(mf.fd()).unwrap();
    let as_: Arc<dyn AddressSpace> = p.new_address_space().unwrap();
    let ctx: Arc<dyn Context> = p.new_context().unwrap();
    const CODE: u64 = 0x40_0000;
    let code = mf.allocate(4096).unwrap();
    // loop: mov eax, 110 (getppid); syscall; jmp loop
    mf.write(code.start, &[0xb8, 110, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]);
    as_.map_file(CODE, code.start, 4096, Perms::READ | Perms::EXEC).unwrap();
    let mut cpu = CpuState::new(Regs { rip: CODE, ..Regs::default() });
    assert_eq!(ctx.switch(&mut cpu, &as_).unwrap(), Exit::Syscall);
    c.bench_function("platform_switch_round_trip", |b| {
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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = raw, platform
}
criterion_main!(benches);
