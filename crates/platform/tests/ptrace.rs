//! The ptrace platform against real stub processes.

use veil_platform as platform;

use std::sync::Arc;
use std::time::Duration;

use memfile::{FileRange, MemoryFile};
use platform::ptrace::{PtraceAddressSpace, PtraceContext, PtracePlatform};
use platform::{AddressSpace, Context, CpuState, Exit, Perms, Platform, PlatformError, Regs};

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


const INT3: u8 = 0xcc;


#[test]
fn stub_address_is_high() {
    let mf = MemoryFile::new(1 << 20).unwrap();
    let p = PtracePlatform::new(mf.fd()).unwrap();

    assert!(p.max_user_address() > 0x7e00_0000_0000);
    assert_eq!(p.max_user_address(), p.stub_address());
    assert_eq!(p.name(), "ptrace");
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
fn a_second_context_on_the_same_thread_gets_its_own_stub_thread() {
    let (f, _, _) = Fixture::new(&[0x0f, 0x05]);
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);

    let ctx2 = f.platform.new_ptrace_context();
    let mut cpu2 = f.cpu();
    assert_eq!(ctx2.switch(&mut cpu2, &f.as_).unwrap(), Exit::Syscall);
    let pid = f.stub_pid();
    assert_eq!(task_count(pid), 3, "leader + two stub threads");
    let tid2 = ctx2.stub_tid().unwrap();
    assert_ne!(tid2, pid);
    drop(ctx2);
    assert!(!task_exists(pid, tid2));
    assert_eq!(task_count(pid), 2);
    // The first context is not disturbed.
    let mut cpu = f.cpu();
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
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
fn map_file_rejects_the_stub_page() {
    let (f, _, _) = Fixture::new(&[0x0f, 0x05]);
    let top = f.platform.stub_address();
    assert!(f.as_.map_file(top, 0, PAGE, Perms::READ).is_err());
    assert!(f.as_.unmap(top - PAGE, 2 * PAGE).is_err());
    assert!(f.as_.map_file(top - PAGE, 0, PAGE, Perms::READ).is_ok());
}

// ---------------------------------------------------------------------------
// Multi-threaded address spaces: several contexts, each on its own host
// thread, each with its own stub thread in one stub process.

/// Threads of host process `pid` (`/proc/<pid>/task`).
fn task_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

fn task_exists(pid: i32, tid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists()
}

/// Polls `cond` for up to 10 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `mov rbx, imm64`
fn mov_rbx_imm64(v: u64) -> Vec<u8> {
    let mut c = vec![0x48, 0xbb];
    c.extend_from_slice(&v.to_le_bytes());
    c
}

/// Entry points of `threaded_code`, as offsets from CODE.
const WRITER: u64 = 0;
const READER: u64 = 0x100;
const SPINNER: u64 = 0x200;
const JMP_SELF: u64 = 0x300;

/// One code page with routines for two threads sharing the word at DATA:
/// * WRITER: `loop { [DATA] += 1; getpid() }`
/// * READER: `loop { rdi = [DATA]; getpid() }` (the syscall reports the word)
/// * SPINNER: `loop { rcx = [DATA] }`, no system call
/// * JMP_SELF: `jmp $`
fn threaded_code() -> Vec<u8> {
    let mut page = vec![INT3; PAGE as usize];
    let mut put = |at: u64, body: &[u8]| page[at as usize..at as usize + body.len()].copy_from_slice(body);
    let mut w = mov_rbx_imm64(DATA);
    // inc qword [rbx]; mov eax, 39; syscall; jmp -12
    w.extend_from_slice(&[0x48, 0xff, 0x03, 0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf4]);
    put(WRITER, &w);
    let mut r = mov_rbx_imm64(DATA);
    // mov rdi, [rbx]; mov eax, 39; syscall; jmp -12
    r.extend_from_slice(&[0x48, 0x8b, 0x3b, 0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf4]);
    put(READER, &r);
    let mut s = mov_rbx_imm64(DATA);
    // mov rcx, [rbx]; jmp -5
    s.extend_from_slice(&[0x48, 0x8b, 0x0b, 0xeb, 0xfb]);
    put(SPINNER, &s);
    put(JMP_SELF, &[0xeb, 0xfe]);
    page
}

fn cpu_at(entry: u64) -> CpuState {
    CpuState::new(Regs { rip: CODE + entry, rsp: DATA + PAGE, ..Regs::default() })
}

#[test]
fn two_threads_run_concurrently_and_share_memory() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (f, _, data) = Fixture::new(&threaded_code());
    let ctx_b = f.platform.new_context().unwrap();
    let stop = AtomicBool::new(false);
    let seen = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut cpu = cpu_at(WRITER);
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) && n < 100_000 {
                assert_eq!(f.ctx.switch(&mut cpu, &f.as_).unwrap(), Exit::Syscall);
                cpu.regs.rax = 0;
                n += 1;
            }
            n
        });
        let reader = s.spawn(|| {
            let mut cpu = cpu_at(READER);
            let mut seen = Vec::new();
            for _ in 0..100_000 {
                assert_eq!(ctx_b.switch(&mut cpu, &f.as_).unwrap(), Exit::Syscall);
                if seen.last() != Some(&cpu.regs.rdi) {
                    seen.push(cpu.regs.rdi);
                }
                if seen.len() >= 5 {
                    break;
                }
            }
            stop.store(true, Ordering::SeqCst);
            seen
        });
        let seen = reader.join().unwrap();
        let writes = writer.join().unwrap();
        assert!(writes > 0);
        seen
    });
    assert!(seen.len() >= 5, "the reader saw the writer's word change: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "monotonic: {seen:?}");
    let mut b = [0u8; 8];
    f.mf.read(data.start, &mut b);
    assert!(u64::from_le_bytes(b) >= *seen.last().unwrap());
    // Both host threads are gone, and their stub threads with them (released
    // as each host thread exited); the process stays for the address space.
    assert_eq!(task_count(f.stub_pid()), 1, "the leader only");
}

#[test]
fn interrupting_one_thread_leaves_the_other_running() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let (f, _, _) = Fixture::new(&threaded_code());
    let ctx_b = f.platform.new_context().unwrap();
    let b_syscalls = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let a = s.spawn(|| {
            let mut cpu = cpu_at(JMP_SELF);
            let exit = f.ctx.switch(&mut cpu, &f.as_).unwrap();
            (exit, cpu.regs.rip)
        });
        let b = s.spawn(|| {
            let mut cpu = cpu_at(READER);
            while !stop.load(Ordering::SeqCst) {
                // Never interrupted: the interrupt was for A's stub thread.
                assert_eq!(ctx_b.switch(&mut cpu, &f.as_).unwrap(), Exit::Syscall);
                b_syscalls.fetch_add(1, Ordering::SeqCst);
            }
        });
        eventually("B runs", || b_syscalls.load(Ordering::SeqCst) >= 10);
        // Let A reach its loop.
        std::thread::sleep(Duration::from_millis(100));
        f.ctx.interrupt();
        let (exit, rip) = a.join().unwrap();
        assert_eq!(exit, Exit::Interrupted);
        assert_eq!(rip, CODE + JMP_SELF, "A was running its loop");
        let after = b_syscalls.load(Ordering::SeqCst);
        eventually("B goes on", || b_syscalls.load(Ordering::SeqCst) >= after + 10);
        stop.store(true, Ordering::SeqCst);
        b.join().unwrap();
    });
    f.ctx.clear_interrupt();
}

#[test]
fn dropping_a_context_on_its_thread_ends_only_its_stub_thread() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let (f, _, _) = Fixture::new(&threaded_code());
    let a_syscalls = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let a = s.spawn(|| {
            let mut cpu = cpu_at(READER);
            while !stop.load(Ordering::SeqCst) {
                assert_eq!(f.ctx.switch(&mut cpu, &f.as_).unwrap(), Exit::Syscall);
                a_syscalls.fetch_add(1, Ordering::SeqCst);
            }
        });
        eventually("A runs", || a_syscalls.load(Ordering::SeqCst) > 0);
        let pid = f.stub_pid();
        let (tx, rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let f = &f;
        let b = s.spawn(move || {
            let ctx_b = f.platform.new_ptrace_context();
            let mut cpu = cpu_at(READER);
            assert_eq!(ctx_b.switch(&mut cpu, &f.as_).unwrap(), Exit::Syscall);
            tx.send(ctx_b.stub_tid().unwrap()).unwrap();
            go_rx.recv().unwrap();
            drop(ctx_b);
        });
        let tid_b = rx.recv().unwrap();
        assert!(task_exists(pid, tid_b));
        assert_eq!(task_count(pid), 3);
        go_tx.send(()).unwrap();
        b.join().unwrap();
        assert!(!task_exists(pid, tid_b), "B's stub thread is gone");
        assert_eq!(task_count(pid), 2, "leader + A's stub thread");
        let before = a_syscalls.load(Ordering::SeqCst);
        eventually("A goes on", || a_syscalls.load(Ordering::SeqCst) >= before + 10);
        stop.store(true, Ordering::SeqCst);
        a.join().unwrap();
    });
}

#[test]
fn a_host_thread_exiting_releases_its_stub_threads_without_killing_the_process() {
    let (f, _, _) = Fixture::new(&threaded_code());
    let mut cpu = cpu_at(READER);
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    let pid = f.stub_pid();
    // B switches, then its host thread ends while the context lives on (as a
    // task's context may outlive its thread). Its tracer gone, the stub thread
    // would be SIGKILLed (EXITKILL), and with it the whole process.
    let (ctx_b, tid_b) = std::thread::scope(|s| {
        s.spawn(|| {
            let ctx_b = f.platform.new_ptrace_context();
            let mut cpu = cpu_at(READER);
            assert_eq!(ctx_b.switch(&mut cpu, &f.as_).unwrap(), Exit::Syscall);
            let tid = ctx_b.stub_tid().unwrap();
            (ctx_b, tid)
        })
        .join()
        .unwrap()
    });
    assert!(!task_exists(pid, tid_b));
    assert_eq!(ctx_b.stub_tid(), None);
    assert_eq!(task_count(pid), 2);
    // The process and A are fine.
    cpu.regs.rax = 0;
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    // A context whose thread is gone cannot switch anywhere else.
    let mut cpu_b = cpu_at(READER);
    assert!(matches!(ctx_b.switch(&mut cpu_b, &f.as_), Err(PlatformError::Unusable(_))));
    drop(ctx_b);
    assert_eq!(task_count(pid), 2);
}

#[test]
fn a_context_dropped_elsewhere_is_released_by_its_thread_next_switch() {
    let (f, _, _) = Fixture::new(&threaded_code());
    let mut cpu = cpu_at(READER);
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    let pid = f.stub_pid();
    let ctx_b = f.platform.new_ptrace_context();
    let mut cpu_b = cpu_at(READER);
    assert_eq!(ctx_b.switch(&mut cpu_b, &f.as_).unwrap(), Exit::Syscall);
    let tid_b = ctx_b.stub_tid().unwrap();
    // Dropped on another thread than its tracer (this one): deferred.
    std::thread::spawn(move || drop(ctx_b)).join().unwrap();
    assert!(task_exists(pid, tid_b));
    // This thread's next switch (of any context) releases it.
    cpu.regs.rax = 0;
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    assert!(!task_exists(pid, tid_b));
    assert_eq!(task_count(pid), 2);
}

#[test]
fn unmap_from_one_thread_faults_the_other_at_once() {
    use std::sync::mpsc;
    let (f, _, _) = Fixture::new(&threaded_code());
    let f = &f;
    std::thread::scope(|s| {
        let (started_tx, started_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        // A spins on [DATA] with no system call: only an unmap applied to
        // the whole process right away can stop it.
        s.spawn(move || {
            let mut cpu = cpu_at(SPINNER);
            started_tx.send(()).unwrap();
            let exit = f.ctx.switch(&mut cpu, &f.as_).unwrap();
            done_tx.send(exit).unwrap();
        });
        started_rx.recv().unwrap();
        s.spawn(move || {
            let ctx_b = f.platform.new_context().unwrap();
            let mut cpu = cpu_at(READER);
            assert_eq!(ctx_b.switch(&mut cpu, &f.as_).unwrap(), Exit::Syscall);
            // Give A time to be inside its loop.
            std::thread::sleep(Duration::from_millis(200));
            // B's host thread traces a stub thread of the process: applied
            // synchronously through it.
            f.as_.unmap(DATA, PAGE).unwrap();
            let exit = done_rx.recv_timeout(Duration::from_secs(10));
            if exit.is_err() {
                f.ctx.interrupt();
            }
            assert_eq!(exit, Ok(Exit::Fault { addr: DATA, access: platform::Access::Unknown, mapped: false }));
            // And B faults too.
            cpu.regs.rax = 0;
            assert_eq!(
                ctx_b.switch(&mut cpu, &f.as_).unwrap(),
                Exit::Fault { addr: DATA, access: platform::Access::Unknown, mapped: false }
            );
        });
    });
}

#[test]
fn fifty_thread_contexts_come_and_go_without_leftovers() {
    let (f, _, _) = Fixture::new(&threaded_code());
    let mut cpu = cpu_at(WRITER);
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    let pid = f.stub_pid();
    assert_eq!(task_count(pid), 2);
    let mut kept = Vec::new();
    for i in 0..50 {
        let ctx = std::thread::scope(|s| {
            s.spawn(|| {
                let ctx = f.platform.new_ptrace_context();
                let mut cpu = cpu_at(READER);
                assert_eq!(ctx.switch(&mut cpu, &f.as_).unwrap(), Exit::Syscall);
                assert!(cpu.regs.rdi >= 1, "sees A's write");
                // Even: dropped on its thread; odd: outlives its thread.
                (i % 2 == 1).then_some(ctx)
            })
            .join()
            .unwrap()
        });
        kept.extend(ctx);
        cpu.regs.rax = 0;
        assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    }
    assert_eq!(task_count(pid), 2, "leader + A's stub thread only");
    drop(kept);
    assert_eq!(task_count(pid), 2);
}

#[test]
fn a_context_moves_to_a_new_address_space() {
    // movq rax, xmm0; syscall
    let (f, _, _) = Fixture::new(&[0x66, 0x48, 0x0f, 0x7e, 0xc0, 0x0f, 0x05]);
    let mut cpu = f.cpu();
    cpu.fp.bytes[160..168].copy_from_slice(&0x1234_5678_u64.to_le_bytes());
    cpu.fp_dirty = true;
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    assert_eq!(cpu.regs.orig_rax, 0x1234_5678);
    let pid1 = f.stub_pid();
    // A second context keeps the old process alive.
    let other = f.platform.new_context().unwrap();
    let mut cpu2 = f.cpu();
    assert_eq!(other.switch(&mut cpu2, &f.as_).unwrap(), Exit::Syscall);
    assert_eq!(task_count(pid1), 3);

    // "execve": a fresh address space with the same code.
    let as2 = f.platform.new_address_space().unwrap();
    let code = f.mf.allocate(PAGE).unwrap();
    f.mf.write(code.start, &[0x66, 0x48, 0x0f, 0x7e, 0xc0, 0x0f, 0x05]);
    as2.map_file(CODE, code.start, PAGE, Perms::READ | Perms::EXEC).unwrap();
    let mut cpu = CpuState { regs: Regs { rip: CODE, ..Regs::default() }, ..cpu };
    assert_eq!(f.ctx.switch(&mut cpu, &as2).unwrap(), Exit::Syscall);
    assert_eq!(cpu.regs.orig_rax, 0x1234_5678, "FPU state carried over");
    assert_eq!(task_count(pid1), 2, "its stub thread in the old process is gone");
    let pid2 = as2.as_any().unwrap().downcast_ref::<PtraceAddressSpace>().unwrap().stub_pid().unwrap();
    assert_ne!(pid1, pid2);
    assert_eq!(task_count(pid2), 2);
    // The old process still runs the other context.
    let mut cpu2 = f.cpu();
    assert_eq!(other.switch(&mut cpu2, &f.as_).unwrap(), Exit::Syscall);
}

#[test]
fn killing_a_multithreaded_stub_loses_every_context_and_leaves_nothing() {
    let (f, _, _) = Fixture::new(&threaded_code());
    let ctx_b: Arc<PtraceContext> = f.platform.new_ptrace_context();
    let mut cpu = cpu_at(READER);
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    let mut cpu_b = cpu_at(READER);
    assert_eq!(ctx_b.switch(&mut cpu_b, &f.as_).unwrap(), Exit::Syscall);
    let pid = f.stub_pid();
    // SAFETY: pid is our stub.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(matches!(f.ctx.switch(&mut cpu, &f.as_), Err(PlatformError::ContextLost(_))));
    assert!(matches!(ctx_b.switch(&mut cpu_b, &f.as_), Err(PlatformError::ContextLost(_))));
    let Fixture { as_, ctx, mf, platform } = f;
    drop(as_);
    // SAFETY: probing a pid; ESRCH expected as it was reaped.
    assert_eq!(unsafe { libc::kill(pid, 0) }, -1);
    drop((ctx, ctx_b, platform, mf));
}

#[test]
fn dropping_a_multithreaded_address_space_reaps_every_thread() {
    let (f, _, _) = Fixture::new(&threaded_code());
    let mut cpu = cpu_at(READER);
    assert_eq!(f.switch(&mut cpu), Exit::Syscall);
    let pid = f.stub_pid();
    // Contexts on other threads, alive but not switching.
    let ctxs: Vec<_> = (0..3)
        .map(|_| {
            let ctx = f.platform.new_context().unwrap();
            let mut c = cpu_at(READER);
            assert_eq!(ctx.switch(&mut c, &f.as_).unwrap(), Exit::Syscall);
            ctx
        })
        .collect();
    assert_eq!(task_count(pid), 5);
    let Fixture { as_, ctx, mf, platform } = f;
    drop(as_);
    // SAFETY: probing a pid; ESRCH expected as it was reaped.
    assert_eq!(unsafe { libc::kill(pid, 0) }, -1);
    assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::ESRCH));
    drop((ctxs, ctx, platform, mf));
}

#[test]
fn dropping_the_address_space_while_other_threads_trace_its_stub_threads() {
    use std::sync::Barrier;
    let (f, _, _) = Fixture::new(&threaded_code());
    let pid = {
        let mut cpu = cpu_at(READER);
        assert_eq!(f.switch(&mut cpu), Exit::Syscall);
        f.stub_pid()
    };
    let Fixture { as_, ctx, mf, platform } = f;
    let (switched, dropped) = (Barrier::new(4), Barrier::new(4));
    let platform = &platform;
    std::thread::scope(|s| {
        for _ in 0..3 {
            let as_ = as_.clone();
            let (switched, dropped) = (&switched, &dropped);
            s.spawn(move || {
                let c = platform.new_context().unwrap();
                let mut cpu = cpu_at(READER);
                assert_eq!(c.switch(&mut cpu, &as_).unwrap(), Exit::Syscall);
                drop(as_);
                switched.wait();
                // The address space goes while this thread traces a stub
                // thread in it; releasing that thread later is a no-op.
                dropped.wait();
                drop(c);
            });
        }
        switched.wait();
        assert_eq!(task_count(pid), 5);
        drop(as_);
        // SAFETY: probing a pid; ESRCH expected as it was reaped.
        assert_eq!(unsafe { libc::kill(pid, 0) }, -1);
        dropped.wait();
    });
    drop((ctx, mf));
}
