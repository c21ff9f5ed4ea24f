//! One application system call round trip through the sentry on the
//! ptrace platform (a `getppid` loop in a sandbox), next to the raw
//! PTRACE_SYSEMU round trip measured in the same run.
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

fn sentry(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("veil-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |n: u64| {
        let path = dir.join("loop");
        std::fs::write(&path, testing::elf(&testing::getppid_loop(n, 0))).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let start = Instant::now();
        let st = testing::run_in_process(&dir, &["/loop"]).unwrap();
        assert_eq!(st, veil_kernel::task::ExitStatus::Exited(0));
        start.elapsed()
    };
    c.bench_function("sentry_getppid_round_trip", |b| {
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
    targets = raw, sentry
}
criterion_main!(benches);
