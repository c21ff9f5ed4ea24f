//! `PtraceContext`: runs a task's registers in a stub with PTRACE_SYSEMU.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::address_space::PtraceAddressSpace;
use super::stub::Stub;
use super::sys::{self, Pid, NT_X86_XSTATE};
use super::{Shared, INTERRUPT_SIGNAL};
use crate::{
    Access, AddressSpace, Context, CpuState, Exit, FpState, PlatformError, Result, SignalInfo, FXSAVE_SIZE,
};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// x86-64 user segment selectors (`__USER_CS`, `__USER_DS`).
const USER_CS: u64 = 0x33;
const USER_DS: u64 = 0x2b;

/// The stop status of a syscall-entry stop with `PTRACE_O_TRACESYSGOOD`.
const SYSCALL_STOP: i32 = libc::SIGTRAP | 0x80;

/// `si_code`s of SIGSEGV (asm-generic/siginfo.h).
const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;

/// One application thread. Bound, on its first switch, to the calling host
/// thread (ptrace lets only the tracing thread drive a tracee) and, per
/// address space, to that address space's stub.
///
/// Limitation: one stub process runs one application thread. A second
/// context switching into an address space that another context already ran
/// gets `PlatformError::Unusable`: multi-threaded address spaces need several
/// stub threads in one stub process (a later step).
pub struct PtraceContext {
    id: u64,
    shared: Arc<Shared>,
    /// Host tid of the bound thread, 0 before the first switch.
    thread: AtomicI32,
    interrupted: AtomicBool,
    /// The stub this context last ran in, for `interrupt` (see
    /// `PtraceAddressSpace::handle`). Holding the Arc also keeps its address
    /// unique, which `last_handle` relies on.
    current: Mutex<Option<Arc<Mutex<Pid>>>>,
    last_handle: AtomicUsize,
    /// Pid of the stub this context last ran in (live FPU state is there).
    last_pid: AtomicI32,
}

impl PtraceContext {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        PtraceContext {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shared,
            thread: AtomicI32::new(0),
            interrupted: AtomicBool::new(false),
            current: Mutex::new(None),
            last_handle: AtomicUsize::new(0),
            last_pid: AtomicI32::new(0),
        }
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

    /// Gets (creating if needed) the stub of `as_`, applies queued
    /// operations, and returns the stub's pid.
    fn prepare(&self, as_: &PtraceAddressSpace, tid: Pid) -> Result<Pid> {
        let mut st = as_.state.lock().unwrap();
        if let Some(why) = &st.lost {
            return Err(PlatformError::ContextLost(why.clone()));
        }
        if st.bound.is_some_and(|id| id != self.id) {
            return Err(PlatformError::Unusable(
                "address space already runs another context: multi-threaded address spaces are not supported \
                 by the ptrace platform yet (one stub process per application thread)"
                    .into(),
            ));
        }
        if st.stub.is_none() {
            let stub = Stub::spawn(self.shared.memfd, self.shared.stub_addr)?;
            *as_.handle.lock().unwrap() = stub.pid;
            st.stub = Some(stub);
        }
        let stub = st.stub.as_ref().unwrap();
        if stub.tracer != tid {
            return Err(PlatformError::Unusable(format!(
                "stub {} is traced by host thread {}, not {tid}",
                stub.pid, stub.tracer
            )));
        }
        let pid = stub.pid;
        st.bound = Some(self.id);
        if !st.pending.is_empty() {
            st.flush(self.shared.memfd)?;
        }
        Ok(pid)
    }

    /// The stub died: `status` is its reaped wait status, or None if it still
    /// has to be reaped (a ptrace call failed with ESRCH).
    fn lost(&self, as_: &PtraceAddressSpace, pid: Pid, status: Option<i32>) -> PlatformError {
        let status = status.or_else(|| sys::wait(pid).ok());
        let why = match status {
            Some(s) if libc::WIFSIGNALED(s) => format!("stub {pid} killed by signal {}", libc::WTERMSIG(s)),
            Some(s) if libc::WIFEXITED(s) => format!("stub {pid} exited with {}", libc::WEXITSTATUS(s)),
            _ => format!("stub {pid} vanished"),
        };
        let mut st = as_.state.lock().unwrap();
        *as_.handle.lock().unwrap() = 0;
        if let Some(stub) = st.stub.as_mut() {
            stub.pid = 0;
        }
        st.lost = Some(why.clone());
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

    /// Classifies a signal-delivery stop. None: a stale interrupt signal, to
    /// be suppressed while the application goes on.
    fn classify(&self, pid: Pid, sig: i32) -> Result<Option<Exit>> {
        if sig == INTERRUPT_SIGNAL {
            return Ok(self.interrupted.load(Ordering::SeqCst).then_some(Exit::Interrupted));
        }
        if !matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP) {
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
        // kernel the union holds the `_sigfault` member.
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
        let tid = self.bind_thread()?;
        if self.interrupted.load(Ordering::SeqCst) {
            return Ok(Exit::Interrupted);
        }
        let as_ = address_space
            .as_any()
            .and_then(|a| a.downcast_ref::<PtraceAddressSpace>())
            .ok_or_else(|| PlatformError::Unusable("not a ptrace address space".into()))?;
        let pid = self.prepare(as_, tid)?;

        let handle = Arc::as_ptr(&as_.handle) as usize;
        if handle != self.last_handle.load(Ordering::Relaxed) {
            // A new stub for this context (first switch, exec): the live FPU
            // state may still be in the previous stub, and the new stub's is
            // whatever the sentry thread that forked it had.
            if !cpu.fp_loaded && self.load_fp(cpu).is_err() {
                cpu.fp = FpState::initial();
                cpu.fp_loaded = true;
            }
            cpu.fp_dirty = true;
            // Published under the lock that `interrupt` takes, before the
            // flag is checked again below: an interrupt either sees this
            // stub and signals it, or its flag store is seen below.
            *self.current.lock().unwrap() = Some(as_.handle.clone());
            self.last_handle.store(handle, Ordering::Relaxed);
            self.last_pid.store(pid, Ordering::Relaxed);
        }
        if self.interrupted.load(Ordering::SeqCst) {
            return Ok(Exit::Interrupted);
        }
        if cpu.fp_dirty {
            self.install_fp(pid, &cpu.fp)?;
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
        let resumed = sys::set_regs(pid, &regs).and_then(|()| sys::sysemu(pid, 0));
        if let Err(e) = resumed {
            if e.raw_os_error() == Some(libc::ESRCH) {
                return Err(self.lost(as_, pid, None));
            }
            return Err(PlatformError::host("PTRACE_SETREGS/SYSEMU", e));
        }
        loop {
            let status = sys::wait(pid).map_err(|e| PlatformError::host("waitpid(stub)", e))?;
            if !libc::WIFSTOPPED(status) {
                return Err(self.lost(as_, pid, Some(status)));
            }
            let sig = libc::WSTOPSIG(status);
            let exit = if sig == SYSCALL_STOP { Some(Exit::Syscall) } else { self.classify(pid, sig)? };
            let Some(exit) = exit else {
                // Resuming with signal 0 suppresses the stale signal.
                sys::sysemu(pid, 0).map_err(|e| PlatformError::host("PTRACE_SYSEMU", e))?;
                continue;
            };
            sys::get_regs(pid, &mut cpu.regs).map_err(|e| PlatformError::host("PTRACE_GETREGS", e))?;
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
        let pid = self.last_pid.load(Ordering::Relaxed);
        if pid == 0 {
            return Err(PlatformError::Unusable("load_fp: context never ran".into()));
        }
        let err = |e| PlatformError::host("load FPU state", e);
        match self.xstate_len(pid)? {
            Some(xlen) => {
                let mut buf = vec![0u8; xlen];
                let n = sys::get_regset(pid, NT_X86_XSTATE, &mut buf).map_err(err)?;
                buf.truncate(n);
                cpu.fp.bytes = buf;
            }
            None => {
                let mut buf = [0u8; FXSAVE_SIZE];
                sys::get_fpregs(pid, &mut buf).map_err(err)?;
                cpu.fp.bytes = buf.to_vec();
            }
        }
        cpu.fp_loaded = true;
        Ok(())
    }

    fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        let current = self.current.lock().unwrap();
        if let Some(handle) = current.as_ref() {
            let pid = handle.lock().unwrap();
            if *pid > 0 {
                // The stub is single-threaded: its tid is its pid. Failure
                // (ESRCH: just died) is fine, the switch reports the death.
                let _ = sys::tgkill(*pid, *pid, INTERRUPT_SIGNAL);
            }
        }
    }

    fn clear_interrupt(&self) {
        self.interrupted.store(false, Ordering::SeqCst);
    }
}
