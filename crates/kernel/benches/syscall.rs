//! One application system call round trip through the sentry (a `getppid`
//! loop in an in-process sandbox) on each platform, next to each platform's
//! floor measured in the same run: the raw PTRACE_SYSEMU round trip for
//! ptrace, the raw trap round trip of the KVM platform's own guest set-up
//! (`KvmPlatform::measure_raw_trap_floor`) for kvm (skipped without a usable
//! /dev/kvm).
//!
//! A sandbox run of N calls costs a fixed start-up plus N round trips; each
//! measurement runs N+1 and 1 calls and keeps the difference, so one
//! measured iteration is one round trip.

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};
use veil_kernel::testing;
use platform::ptrace::raw::RawTracee;

fn raw(c: &mut Criterion) {
    let tracee = RawTracee::new();
    c.bench_function("raw_sysemu_round_trip", |b| b.iter_custom(|iters| tracee.time_round_trips(iters)));
}

fn kvm_usable() -> bool {
    let ok = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
    if !ok {
        eprintln!("kvm benches skipped: /dev/kvm is not usable");
    }
    ok
}

fn kvm_raw(c: &mut Criterion) {
    if !kvm_usable() {
        return;
    }
    let mf = std::sync::Arc::new(memfile::MemoryFile::new(1 << 30).unwrap());
    let p = platform::kvm::KvmPlatform::new(mf).unwrap();
    c.bench_function("kvm_raw_trap_round_trip", |b| b.iter_custom(|iters| p.measure_raw_trap_floor(iters).unwrap()));
}

fn sentry(c: &mut Criterion) {
    sentry_on(c, "ptrace", "sentry_getppid_round_trip");
}

fn sentry_kvm(c: &mut Criterion) {
    if kvm_usable() {
        sentry_on(c, "kvm", "sentry_getppid_round_trip_kvm");
    }
}

fn sentry_on(c: &mut Criterion, platform: &str, name: &str) {
    let dir = std::env::temp_dir().join(format!("veil-bench-{platform}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |n: u64| {
        let path = dir.join("loop");
        std::fs::write(&path, testing::elf(&testing::getppid_loop(n, 0))).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let start = Instant::now();
        let st = testing::run_in_process_on(platform, &dir, &["/loop"]).unwrap();
        assert_eq!(st, veil_kernel::task::ExitStatus::Exited(0));
        start.elapsed()
    };
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let base = run(1);
            let full = run(iters + 1);
            full.saturating_sub(base)
        })
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = raw, sentry, kvm_raw, sentry_kvm
}
criterion_main!(benches);
