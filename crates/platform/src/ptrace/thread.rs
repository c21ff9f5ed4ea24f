//! Stub threads: the host thread in a stub process that runs one context's
//! application code, traced by that context's host thread.
//!
//! Lifecycle:
//! 1. the factory clones it from the leader; it parks, untraced;
//! 2. [`StubThread::seize`] and [`StubThread::stop`], on the context's host
//!    thread: `PTRACE_SEIZE` + `PTRACE_INTERRUPT`, and the thread is ours;
//! 3. it runs application code (`context.rs`) and injected address-space
//!    operations (`address_space.rs`);
//! 4. it goes away by [`StubThread::release`] on its tracer (an injected
//!    `exit`: a signal could only kill the whole process), when its context
//!    is dropped or moves to another address space, or with its process
//!    ([`StubThread::reap_killed`]).
//!
//! A tracer that exits with a tracee still attached SIGKILLs it
//! (`PTRACE_O_EXITKILL`, which we need so that nothing outlives the sentry),
//! and that kills every thread of the stub. So every host thread keeps a
//! registry of the stub threads it traces and releases them when it exits;
//! a context dropped on another thread hands its stub thread to that
//! registry ("orphans"), which releases it at the tracer's next switch or
//! exit.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::stub::{self, SYSCALL_ENTRY};
use super::sys::{self, Pid};
use crate::{PlatformError, Regs, Result};

#[derive(Debug)]
pub(crate) struct StubThread {
    /// The stub process (thread group) id.
    pub pid: Pid,
    /// This thread's host tid. Only the tracer uses it for ptrace, and only
    /// while `live`; `signal` checks `live` under its lock.
    pub tid: Pid,
    /// The host thread that traces it: the only one ptrace lets drive it.
    pub tracer: Pid,
    /// Register template for injected calls, taken from the thread when
    /// first stopped.
    template: OnceLock<Regs>,
    stub_addr: u64,
    /// False once reaped (or handed back to the host in a state we cannot
    /// reap): nothing may signal or wait for `tid` any more, it may be
    /// recycled. Reaping happens under this lock.
    live: Mutex<bool>,
    /// Its context was dropped on another host thread than the tracer.
    orphaned: AtomicBool,
    /// The tracer's registry flag: raised with `orphaned`.
    tracer_flag: Arc<AtomicBool>,
}

impl StubThread {
    /// Seizes the parked stub thread `tid` of stub process `pid`: the calling
    /// thread becomes its tracer. [`StubThread::stop`] must follow.
    pub(crate) fn seize(pid: Pid, tid: Pid, stub_addr: u64) -> Result<Arc<StubThread>> {
        // EXITKILL from the first moment it is traced: if this thread dies
        // with the stub thread attached, the stub process dies too rather
        // than letting application code run untraced.
        sys::seize(tid, libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL)
            .map_err(|e| PlatformError::host("PTRACE_SEIZE(stub thread)", e))?;
        let thread = Arc::new(StubThread {
            pid,
            tid,
            tracer: sys::current_tid(),
            template: OnceLock::new(),
            stub_addr,
            live: Mutex::new(true),
            orphaned: AtomicBool::new(false),
            tracer_flag: REGISTRY.with(|r| r.flag.clone()),
        });
        // From now on this thread's exit releases it, whatever happens.
        REGISTRY.with(|r| r.threads.borrow_mut().push(thread.clone()));
        Ok(thread)
    }

    /// Stops the freshly seized thread and checks it is the one the factory
    /// made. On error the caller releases it.
    pub(crate) fn stop(&self) -> Result<()> {
        let tid = self.tid;
        let mut regs = Regs::default();
        sys::interrupt(tid)
            .and_then(|()| wait_interrupt_stop(tid))
            .and_then(|()| sys::get_regs(tid, &mut regs))
            .map_err(|e| PlatformError::host("stopping a new stub thread", e))?;
        // It must be between its return from clone and the end of the park
        // loop: anything else means the tid is not the thread the factory
        // made.
        let rip = regs.rip.wrapping_sub(self.stub_addr);
        if !(stub::CLONE_CHILD_START..stub::CLONE_PARENT_STOP - 1).contains(&rip) {
            return Err(PlatformError::Unusable(format!(
                "new stub thread {tid} stopped at {:#x}, not in its park loop",
                regs.rip
            )));
        }
        let _ = self.template.set(regs);
        Ok(())
    }

    /// Register template for injected calls: the thread's own registers
    /// once stopped; before that (releasing a thread that would not stop),
    /// valid user selectors and flags.
    fn template(&self) -> Regs {
        self.template.get().copied().unwrap_or(Regs { cs: 0x33, ss: 0x2b, eflags: 0x202, ..Regs::default() })
    }

    /// Injects system call `nr` into the (stopped) thread. Tracer only.
    pub(crate) fn syscall(&self, nr: libc::c_long, args: [u64; 6]) -> io::Result<u64> {
        stub::inject(self.tid, &self.template(), self.stub_addr, SYSCALL_ENTRY, SYSCALL_ENTRY + 3, nr, args)
    }

    /// Sends `sig` to the thread if it is still alive. Any thread.
    pub(crate) fn signal(&self, sig: libc::c_int) {
        let live = self.live.lock().unwrap();
        if *live {
            // Failure (ESRCH: it just died) is fine: its tracer's wait
            // reports the death.
            let _ = sys::tgkill(self.pid, self.tid, sig);
        }
    }

    /// Records that the tracer's wait reaped the thread.
    pub(crate) fn mark_reaped(&self) {
        *self.live.lock().unwrap() = false;
    }

    /// Makes the thread exit, alone, and reaps it. Tracer only; the thread
    /// must not be running (its tracer is not inside `switch` for it).
    pub(crate) fn release(&self) {
        let mut live = self.live.lock().unwrap();
        if !*live {
            return;
        }
        let mut regs = self.template();
        regs.rip = self.stub_addr + SYSCALL_ENTRY;
        regs.rax = libc::SYS_exit as u64;
        regs.rdi = 0;
        regs.orig_rax = u64::MAX;
        // Each time it stops (a stray signal may get in first), point it at
        // `exit` again: whatever happens it never runs anything else.
        let resume = || sys::set_regs(self.tid, &regs).and_then(|()| sys::cont(self.tid, 0));
        // On failure the thread stays `live`: it dies with its process, whose
        // drop reaps it.
        let resumed = |r: io::Result<()>| match r {
            Ok(()) => true,
            // Not stopped for us any more: it died with its process and is
            // a zombie for us to reap.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => true,
            // Cannot happen to a stopped tracee; do not wait for a thread
            // that may never exit.
            Err(e) => {
                log::warn!("releasing stub thread {}: {e}", self.tid);
                false
            }
        };
        if !resumed(resume()) {
            return;
        }
        loop {
            match sys::wait(self.tid) {
                Ok(status) if libc::WIFSTOPPED(status) => {
                    if !resumed(resume()) {
                        return;
                    }
                }
                // Exited (or killed with its process): reaped. ECHILD:
                // nothing left to reap.
                Ok(_) | Err(_) => break,
            }
        }
        *live = false;
    }

    /// `release`, then drops the thread from the calling thread's registry
    /// if it is gone. Tracer only.
    pub(crate) fn release_and_forget(self: &Arc<Self>) {
        self.release();
        if !self.is_live() {
            forget(self);
        }
    }

    /// Reaps the thread after its whole process was sent SIGKILL. Any thread
    /// (wait covers the tracees of every thread of the sentry).
    pub(crate) fn reap_killed(&self) {
        let mut live = self.live.lock().unwrap();
        if !*live {
            return;
        }
        *live = false;
        // SIGKILL ends any ptrace stop, and no event stop is enabled that
        // could come before the exit.
        while let Ok(status) = sys::wait(self.tid) {
            if !libc::WIFSTOPPED(status) {
                break;
            }
        }
    }

    /// Whether the thread may still be used.
    pub(crate) fn is_live(&self) -> bool {
        *self.live.lock().unwrap()
    }

    /// Whether some stub thread traced by this thread's tracer was orphaned.
    /// Cheap: for the switch path.
    pub(crate) fn tracer_has_orphans(&self) -> bool {
        self.tracer_flag.load(Ordering::Relaxed)
    }

    /// Releases the thread now if called on its tracer; otherwise hands it
    /// to its tracer's registry, which releases it at that thread's next
    /// switch or exit.
    pub(crate) fn release_or_orphan(self: &Arc<Self>) {
        if sys::current_tid() == self.tracer {
            self.release_and_forget();
        } else {
            self.orphaned.store(true, Ordering::Release);
            self.tracer_flag.store(true, Ordering::Release);
        }
    }
}

/// The stub threads a host thread traces.
struct Registry {
    threads: RefCell<Vec<Arc<StubThread>>>,
    /// Raised when one of `threads` is orphaned.
    flag: Arc<AtomicBool>,
}

impl Drop for Registry {
    /// The host thread is exiting: release every stub thread it still traces
    /// before the host kernel SIGKILLs them (EXITKILL), which would kill
    /// their whole process.
    fn drop(&mut self) {
        for t in self.threads.get_mut().drain(..) {
            t.release();
        }
    }
}

thread_local! {
    static REGISTRY: Registry = Registry { threads: RefCell::new(Vec::new()), flag: Arc::new(AtomicBool::new(false)) };
}

/// Removes a released thread from the calling thread's registry.
fn forget(thread: &Arc<StubThread>) {
    // `try_with`: during thread exit the registry may be gone already (its
    // drop released everything).
    let _ = REGISTRY.try_with(|r| {
        let mut threads = r.threads.borrow_mut();
        if let Some(i) = threads.iter().position(|t| Arc::ptr_eq(t, thread)) {
            threads.swap_remove(i);
        }
    });
}

/// Releases the orphaned stub threads of the calling thread.
pub(crate) fn release_orphans() {
    let _ = REGISTRY.try_with(|r| {
        if r.flag.swap(false, Ordering::Acquire) {
            r.threads.borrow_mut().retain(|t| {
                let orphan = t.orphaned.load(Ordering::Acquire);
                if orphan {
                    t.release();
                }
                !orphan
            });
        }
    });
}

/// Waits for the `PTRACE_EVENT_STOP` that `PTRACE_INTERRUPT` causes,
/// suppressing any signal-delivery stop that comes first.
fn wait_interrupt_stop(tid: Pid) -> io::Result<()> {
    loop {
        let status = sys::wait(tid)?;
        if !libc::WIFSTOPPED(status) {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, format!("stub thread died (status {status:#x})")));
        }
        if sys::stop_event(status) == sys::PTRACE_EVENT_STOP {
            return Ok(());
        }
        // A signal-delivery stop: suppress it; the interrupt is still
        // pending and stops it next.
        sys::cont(tid, 0)?;
    }
}
