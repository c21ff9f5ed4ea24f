//! `PtraceContext`: runs a task's registers in a stub with PTRACE_SYSEMU.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use super::address_space::PtraceAddressSpace;
use super::sys::{self, Pid, NT_X86_XSTATE};
use super::thread::{self, StubThread};
use super::{Shared, INTERRUPT_SIGNAL};
use crate::{
    Access, AddressSpace, Context, CpuState, Exit, FpState, PlatformError, Result, SignalInfo, FXSAVE_SIZE,
};

/// x86-64 user segment selectors (`__USER_CS`, `__USER_DS`).
const USER_CS: u64 = 0x33;
const USER_DS: u64 = 0x2b;

/// The stop status of a syscall-entry stop with `PTRACE_O_TRACESYSGOOD`.
const SYSCALL_STOP: i32 = libc::SIGTRAP | 0x80;

/// `si_code`s of SIGSEGV (asm-generic/siginfo.h).
const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;

/// Where a context runs: its own stub thread in one address space.
struct Bound {
    /// `PtraceAddressSpace::id` of the address space.
    as_id: u64,
    thread: Arc<StubThread>,
}

/// One application thread. Bound, on its first switch, to the calling host
/// thread (ptrace lets only the tracing thread drive a tracee) and, while it
/// runs in an address space, to a stub thread of its own in that address
/// space's stub process, which the bound host thread traces.
///
/// Switching into another address space (execve) releases the stub thread
/// in the previous one and makes a new one. Dropping the context releases
/// its stub thread: at once when dropped on its host thread, else when that
/// thread next switches or exits (only a tracer can make a single stub
/// thread exit; see `thread.rs`).
pub struct PtraceContext {
    shared: Arc<Shared>,
    /// Host tid of the bound thread, 0 before the first switch.
    thread: AtomicI32,
    interrupted: AtomicBool,
    /// Used by the bound thread only (switch, load_fp), so never contended.
    bound: Mutex<Option<Bound>>,
    /// The stub thread this context runs in, for `interrupt`.
    current: Mutex<Option<Arc<StubThread>>>,
}

impl PtraceContext {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        PtraceContext {
            shared,
            thread: AtomicI32::new(0),
            interrupted: AtomicBool::new(false),
            bound: Mutex::new(None),
            current: Mutex::new(None),
        }
    }

    /// Host tid of the stub thread this context last ran in, if it is
    /// still alive (for tests and diagnostics).
    pub fn stub_tid(&self) -> Option<i32> {
        let current = self.current.lock().unwrap();
        current.as_ref().filter(|t| t.is_live()).map(|t| t.tid)
    }

    fn bind_thread(&self) -> Result<Pid> {
        let tid = sys::current_tid();
        match self.thread.compare_exchange(0, tid, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => Ok(tid),
            Err(t) if t == tid => Ok(tid),
            Err(t) => Err(PlatformError::Unusable(format!(
                "ptrace context is bound to host thread {t}, cannot be switched from thread {tid}"
            ))),
        }
    }

    /// Moves the context to a stub thread of its own in `as_` (first switch,
    /// exec), releasing the one it had elsewhere.
    fn rebind(&self, bound: &mut Option<Bound>, as_: &PtraceAddressSpace, cpu: &mut CpuState) -> Result<()> {
        // Not signalled any more: it is about to go.
        *self.current.lock().unwrap() = None;
        match bound.take() {
            Some(old) => {
                // The live FPU state may still be in the previous stub thread.
                if !cpu.fp_loaded && self.fetch_fp(old.thread.tid, cpu).is_err() {
                    cpu.fp = FpState::initial();
                    cpu.fp_loaded = true;
                }
                old.thread.release_and_forget();
            }
            None if !cpu.fp_loaded => {
                cpu.fp = FpState::initial();
                cpu.fp_loaded = true;
            }
            None => {}
        }
        // The new stub thread's FPU state is whatever the factory thread had.
        cpu.fp_dirty = true;
        let stub_thread = as_.new_thread()?;
        // Published under the lock that `interrupt` takes, before the flag is
        // checked again by the caller: an interrupt either sees this stub
        // thread and signals it, or its flag store is seen there.
        *self.current.lock().unwrap() = Some(stub_thread.clone());
        *bound = Some(Bound { as_id: as_.id, thread: stub_thread });
        Ok(())
    }

    /// The stub thread died: `status` is its reaped wait status, or None if
    /// it still has to be reaped (a ptrace call failed with ESRCH). A stub
    /// thread only dies with its whole process (signals are intercepted, it
    /// exits alone only when released), so the address space is lost.
    fn lost(&self, as_: &PtraceAddressSpace, t: &StubThread, status: Option<i32>) -> PlatformError {
        let tid = t.tid;
        let status = status.or_else(|| sys::wait(tid).ok());
        t.mark_reaped();
        let pid = t.pid;
        let why = match status {
            Some(s) if libc::WIFSIGNALED(s) => {
                format!("stub {pid} (thread {tid}) killed by signal {}", libc::WTERMSIG(s))
            }
            Some(s) if libc::WIFEXITED(s) => format!("stub {pid} (thread {tid}) exited with {}", libc::WEXITSTATUS(s)),
            _ => format!("stub {pid} (thread {tid}) vanished"),
        };
        as_.set_lost(why.clone());
        PlatformError::ContextLost(why)
    }

    /// Size of the host's XSAVE regset, probed once on a stub; None when the
    /// host has no XSAVE (then only the legacy FXSAVE area is used).
    fn xstate_len(&self, pid: Pid) -> Result<Option<usize>> {
        const UNKNOWN: usize = 0;
        const NONE: usize = usize::MAX;
        match self.shared.xstate_len.load(Ordering::Relaxed) {
            UNKNOWN => {}
            NONE => return Ok(None),
            n => return Ok(Some(n)),
        }
        // CPUID.(EAX=0DH,ECX=0).ECX: size of the XSAVE area for every
        // feature the CPU supports, an upper bound of what the host uses.
        let max = std::arch::x86_64::__cpuid_count(0xd, 0).ecx as usize;
        let mut buf = vec![0u8; max.max(FXSAVE_SIZE + 64)];
        let n = match sys::get_regset(pid, NT_X86_XSTATE, &mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENODEV)) => NONE,
            Err(e) => return Err(PlatformError::host("PTRACE_GETREGSET(NT_X86_XSTATE)", e)),
        };
        self.shared.xstate_len.store(n, Ordering::Relaxed);
        Ok((n != NONE).then_some(n))
    }

    /// Installs `fp` in the stub.
    fn install_fp(&self, pid: Pid, fp: &FpState) -> Result<()> {
        let err = |e| PlatformError::host("install FPU state", e);
        let Some(xlen) = self.xstate_len(pid)? else {
            return sys::set_fpregs(pid, &fp.bytes[..FXSAVE_SIZE]).map_err(err);
        };
        if fp.bytes.len() == xlen {
            return sys::set_regset(pid, NT_X86_XSTATE, &fp.bytes).map_err(err);
        }
        // A shorter state (typically the 512-byte FXSAVE image of
        // `FpState::initial`): extend it to a full XSAVE image whose header
        // marks only x87 and SSE as present, so that every other component
        // (AVX, AVX-512, ...) is reset to its initial state rather than left
        // with whatever the stub's registers held.
        let mut buf = vec![0u8; xlen];
        let n = fp.bytes.len().min(xlen);
        buf[..n].copy_from_slice(&fp.bytes[..n]);
        if fp.bytes.len() <= FXSAVE_SIZE {
            buf[FXSAVE_SIZE..FXSAVE_SIZE + 8].copy_from_slice(&3u64.to_le_bytes());
        }
        sys::set_regset(pid, NT_X86_XSTATE, &buf).map_err(err)
    }

    /// Copies the FPU state of stub thread `tid` (stopped, traced by the
    /// calling thread) into `cpu.fp`.
    fn fetch_fp(&self, tid: Pid, cpu: &mut CpuState) -> Result<()> {
        let err = |e| PlatformError::host("load FPU state", e);
        match self.xstate_len(tid)? {
            Some(xlen) => {
                let mut buf = vec![0u8; xlen];
                let n = sys::get_regset(tid, NT_X86_XSTATE, &mut buf).map_err(err)?;
                buf.truncate(n);
                cpu.fp.bytes = buf;
            }
            None => {
                let mut buf = [0u8; FXSAVE_SIZE];
                sys::get_fpregs(tid, &mut buf).map_err(err)?;
                cpu.fp.bytes = buf.to_vec();
            }
        }
        cpu.fp_loaded = true;
        Ok(())
    }

    /// Classifies a signal-delivery stop. None: a stale interrupt signal, to
    /// be suppressed while the application goes on.
    fn classify(&self, pid: Pid, sig: i32) -> Result<Option<Exit>> {
        if sig == INTERRUPT_SIGNAL {
            return Ok(self.interrupted.load(Ordering::SeqCst).then_some(Exit::Interrupted));
        }
        // SIGSYS: the seccomp trap of a call into the vsyscall page, which
        // the host would otherwise emulate itself (the kernel serves it).
        if !matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP | libc::SIGSYS) {
            // Some other host signal (sent from outside): never delivered.
            return Ok(Some(Exit::Interrupted));
        }
        let si = sys::get_siginfo(pid).map_err(|e| PlatformError::host("PTRACE_GETSIGINFO", e))?;
        if si.si_code <= 0 {
            // SI_USER, SI_TKILL, SI_QUEUE...: sent by a process, not raised by
            // the CPU.
            return Ok(Some(Exit::Interrupted));
        }
        // SAFETY: for SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP raised by the
        // kernel the union holds the `_sigfault` member; for SIGSYS
        // `_sigsys`, whose first field (si_call_addr) is at the same place.
        let addr = unsafe { si.si_addr() } as u64;
        Ok(Some(match (sig, si.si_code) {
            (libc::SIGSEGV, SEGV_MAPERR) => Exit::Fault { addr, access: Access::Unknown, mapped: false },
            (libc::SIGSEGV, SEGV_ACCERR) => Exit::Fault { addr, access: Access::Unknown, mapped: true },
            _ => Exit::Signal(SignalInfo { signo: sig, code: si.si_code, addr }),
        }))
    }
}

impl Context for PtraceContext {
    fn switch(&self, cpu: &mut CpuState, address_space: &Arc<dyn AddressSpace>) -> Result<Exit> {
        self.bind_thread()?;
        if self.interrupted.load(Ordering::SeqCst) {
            return Ok(Exit::Interrupted);
        }
        let as_ = address_space
            .as_any()
            .and_then(|a| a.downcast_ref::<PtraceAddressSpace>())
            .ok_or_else(|| PlatformError::Unusable("not a ptrace address space".into()))?;
        let mut bound = self.bound.lock().unwrap();
        if bound.as_ref().map(|b| b.as_id) != Some(as_.id) {
            self.rebind(&mut bound, as_, cpu)?;
        }
        let Some(Bound { thread: t, .. }) = bound.as_ref() else { unreachable!("bound by rebind") };
        if t.tracer_has_orphans() {
            thread::release_orphans();
        }
        as_.ready(t)?;
        if self.interrupted.load(Ordering::SeqCst) {
            return Ok(Exit::Interrupted);
        }
        let tid = t.tid;
        if cpu.fp_dirty {
            self.install_fp(tid, &cpu.fp)?;
            cpu.fp_dirty = false;
        }

        let mut regs = cpu.regs;
        // Not in a host system call: keep the host's syscall-restart logic
        // away from the application's registers.
        regs.orig_rax = u64::MAX;
        if regs.cs == 0 {
            regs.cs = USER_CS;
        }
        if regs.ss == 0 {
            regs.ss = USER_DS;
        }
        let resumed = sys::set_regs(tid, &regs).and_then(|()| sys::sysemu(tid, 0));
        if let Err(e) = resumed {
            if e.raw_os_error() == Some(libc::ESRCH) {
                return Err(self.lost(as_, t, None));
            }
            return Err(PlatformError::host("PTRACE_SETREGS/SYSEMU", e));
        }
        loop {
            let status = sys::wait(tid).map_err(|e| PlatformError::host("waitpid(stub)", e))?;
            if !libc::WIFSTOPPED(status) {
                return Err(self.lost(as_, t, Some(status)));
            }
            let sig = libc::WSTOPSIG(status);
            let exit = if sig == SYSCALL_STOP {
                Some(Exit::Syscall)
            } else if sys::stop_event(status) != 0 {
                // A ptrace event stop: a group-stop (SIGSTOP & co. sent from
                // outside) of the seized thread. Like any host signal.
                Some(Exit::Interrupted)
            } else {
                self.classify(tid, sig)?
            };
            let Some(exit) = exit else {
                // Resuming with signal 0 suppresses the stale signal.
                sys::sysemu(tid, 0).map_err(|e| PlatformError::host("PTRACE_SYSEMU", e))?;
                continue;
            };
            sys::get_regs(tid, &mut cpu.regs).map_err(|e| PlatformError::host("PTRACE_GETREGS", e))?;
            cpu.fp_loaded = false;
            // Any signal that stopped the stub is suppressed: the next resume
            // passes signal 0.
            return Ok(exit);
        }
    }

    fn load_fp(&self, cpu: &mut CpuState) -> Result<()> {
        if cpu.fp_loaded {
            return Ok(());
        }
        let bound = self.bound.lock().unwrap();
        let Some(b) = bound.as_ref() else {
            return Err(PlatformError::Unusable("load_fp: context never ran".into()));
        };
        self.fetch_fp(b.thread.tid, cpu)
    }

    fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        let current = self.current.lock().unwrap();
        if let Some(t) = current.as_ref() {
            // This context's own stub thread only (tgkill with its tid):
            // other threads of the process go on.
            t.signal(INTERRUPT_SIGNAL);
        }
    }

    fn clear_interrupt(&self) {
        self.interrupted.store(false, Ordering::SeqCst);
    }
}

impl Drop for PtraceContext {
    /// The stub thread goes with the context (its process stays, for the
    /// other threads, until the address space is dropped).
    fn drop(&mut self) {
        *self.current.get_mut().unwrap() = None;
        if let Some(b) = self.bound.get_mut().unwrap().take() {
            b.thread.release_or_orphan();
        }
    }
}
