//! Thin wrappers over the host calls the ptrace platform makes.
//!
//! Raw `libc` rather than `nix` here: these are on the hot path, and we want
//! exactly one host system call per wrapper, no conversion, no allocation.

use std::cell::Cell;
use std::io;

use crate::Regs;

pub(crate) type Pid = libc::pid_t;

/// `NT_X86_XSTATE`, the regset holding the XSAVE area.
pub(crate) const NT_X86_XSTATE: libc::c_int = 0x202;

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// # Safety
/// `addr` and `data` must be what `req` expects (valid pointers of the right
/// size for requests that read or write through them).
unsafe fn ptrace(req: libc::c_uint, pid: Pid, addr: usize, data: usize) -> io::Result<libc::c_long> {
    // SAFETY: forwarded to the caller's contract.
    check(unsafe { libc::ptrace(req, pid, addr, data) })
}

pub(crate) fn get_regs(pid: Pid, regs: &mut Regs) -> io::Result<()> {
    // SAFETY: `Regs` is `#[repr(C)]` with the exact layout of
    // `user_regs_struct`, so the kernel writes within the borrow.
    unsafe { ptrace(libc::PTRACE_GETREGS, pid, 0, regs as *mut Regs as usize) }.map(drop)
}

pub(crate) fn set_regs(pid: Pid, regs: &Regs) -> io::Result<()> {
    // SAFETY: as for `get_regs`; the kernel only reads.
    unsafe { ptrace(libc::PTRACE_SETREGS, pid, 0, regs as *const Regs as usize) }.map(drop)
}

/// Resumes the tracee until its next system call entry (not executed) or
/// signal, delivering `sig` (0: none).
pub(crate) fn sysemu(pid: Pid, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: no pointers involved.
    unsafe { ptrace(libc::PTRACE_SYSEMU, pid, 0, sig as usize) }.map(drop)
}

pub(crate) fn cont(pid: Pid, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: no pointers involved.
    unsafe { ptrace(libc::PTRACE_CONT, pid, 0, sig as usize) }.map(drop)
}

/// `PTRACE_EVENT_STOP`: the event of a stop caused by `PTRACE_INTERRUPT`
/// (or a group-stop) of a tracee attached with `PTRACE_SEIZE`.
pub(crate) const PTRACE_EVENT_STOP: libc::c_int = 128;

/// Attaches to `tid` without stopping it, setting `opts` at once (so that
/// `PTRACE_O_EXITKILL` covers the thread from the first moment it is traced).
pub(crate) fn seize(tid: Pid, opts: libc::c_int) -> io::Result<()> {
    // SAFETY: no pointers involved.
    unsafe { ptrace(libc::PTRACE_SEIZE, tid, 0, opts as usize) }.map(drop)
}

/// Stops a seized tracee: it reports a `PTRACE_EVENT_STOP` stop.
pub(crate) fn interrupt(tid: Pid) -> io::Result<()> {
    // SAFETY: no pointers involved.
    unsafe { ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0) }.map(drop)
}

/// The ptrace event of a stop status (`status >> 16`), 0 for signal-delivery
/// and syscall stops.
pub(crate) fn stop_event(status: libc::c_int) -> libc::c_int {
    status >> 16
}

pub(crate) fn set_options(pid: Pid, opts: libc::c_int) -> io::Result<()> {
    // SAFETY: no pointers involved.
    unsafe { ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts as usize) }.map(drop)
}

pub(crate) fn get_siginfo(pid: Pid) -> io::Result<libc::siginfo_t> {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one siginfo_t into `si`.
    unsafe { ptrace(libc::PTRACE_GETSIGINFO, pid, 0, &mut si as *mut _ as usize) }?;
    Ok(si)
}

/// `PTRACE_GETREGSET`: fills a prefix of `buf`, returns its length.
pub(crate) fn get_regset(pid: Pid, kind: libc::c_int, buf: &mut [u8]) -> io::Result<usize> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: `iov` describes `buf`, which outlives the call; the kernel
    // writes at most `iov_len` bytes and updates `iov_len`.
    unsafe { ptrace(libc::PTRACE_GETREGSET, pid, kind as usize, &mut iov as *mut _ as usize) }?;
    Ok(iov.iov_len)
}

pub(crate) fn set_regset(pid: Pid, kind: libc::c_int, buf: &[u8]) -> io::Result<()> {
    let mut iov = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: `iov` describes `buf`; for SETREGSET the kernel only reads it.
    unsafe { ptrace(libc::PTRACE_SETREGSET, pid, kind as usize, &mut iov as *mut _ as usize) }.map(drop)
}

/// `struct ptrace_rseq_configuration`.
#[repr(C)]
#[derive(Default, Debug)]
pub(crate) struct RseqConfig {
    pub rseq_abi_pointer: u64,
    pub rseq_abi_size: u32,
    pub signature: u32,
    pub flags: u32,
    pub pad: u32,
}

const PTRACE_GET_RSEQ_CONFIGURATION: libc::c_uint = 0x420f;

/// The tracee's registered rseq area (Linux 5.13+).
pub(crate) fn get_rseq_config(pid: Pid) -> io::Result<RseqConfig> {
    let mut c = RseqConfig::default();
    // SAFETY: the kernel writes at most `addr` bytes into `c`.
    unsafe {
        ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, std::mem::size_of::<RseqConfig>(), &mut c as *mut _ as usize)
    }?;
    Ok(c)
}

/// Legacy 512-byte FXSAVE area, for hosts without XSAVE.
pub(crate) fn get_fpregs(pid: Pid, buf: &mut [u8; 512]) -> io::Result<()> {
    // SAFETY: `user_fpregs_struct` is exactly 512 bytes.
    unsafe { ptrace(libc::PTRACE_GETFPREGS, pid, 0, buf.as_mut_ptr() as usize) }.map(drop)
}

pub(crate) fn set_fpregs(pid: Pid, buf: &[u8]) -> io::Result<()> {
    assert!(buf.len() >= 512);
    // SAFETY: the kernel reads 512 bytes; asserted above.
    unsafe { ptrace(libc::PTRACE_SETFPREGS, pid, 0, buf.as_ptr() as usize) }.map(drop)
}

/// `waitpid(pid, __WALL)`, retried on EINTR. Returns the raw status.
pub(crate) fn wait(pid: Pid) -> io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r >= 0 {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

pub(crate) fn tgkill(tgid: Pid, tid: Pid, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: no pointers involved.
    check(unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, sig) }).map(drop)
}

pub(crate) fn kill(pid: Pid, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: no pointers involved.
    check(unsafe { libc::kill(pid, sig) } as libc::c_long).map(drop)
}

thread_local! {
    static TID: Cell<Pid> = const { Cell::new(0) };
}

/// The calling thread's host tid, cached (one `gettid` per thread).
pub(crate) fn current_tid() -> Pid {
    TID.with(|t| {
        if t.get() == 0 {
            // SAFETY: gettid has no arguments and cannot fail.
            t.set(unsafe { libc::syscall(libc::SYS_gettid) } as Pid);
        }
        t.get()
    })
}
