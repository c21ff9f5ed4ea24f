//! The ptrace platform: application threads run in stub processes under
//! `PTRACE_SYSEMU`, so that the host never executes an application system
//! call; the sentry serves each one.
//!
//! * [`PtracePlatform::new`] maps the *stub code page* at a fixed high
//!   address in the sentry. Every stub process inherits it by `fork` and
//!   keeps nothing else; applications may use every address below it
//!   ([`Platform::max_user_address`]).
//! * [`PtraceAddressSpace`] is one stub process, made lazily by the first
//!   switch on it, whose mappings are changed by injecting
//!   `mmap`/`munmap`/`mprotect` into any of its threads.
//! * [`PtraceContext`] runs a task's registers until the next system call,
//!   fault or signal, in a *stub thread* of its own in the address space's
//!   stub process, traced by the context's host thread. Several contexts,
//!   each on its own host thread, run concurrently in one address space:
//!   a multi-threaded application.
//!
//! Who traces what (ptrace lets only the attaching thread drive a tracee):
//!
//! ```text
//! factory thread (one per platform) ── forks & traces ──> stub leader (never runs app code)
//!                                                          │ clone (injected by the factory)
//! context A's host thread ── seizes & traces ──> stub thread A ┤
//! context B's host thread ── seizes & traces ──> stub thread B ┘  (one process, one mm)
//! ```
//!
//! The stub dies with its address space, with the factory (PDEATHSIG, and
//! EXITKILL on the leader) and so with the sentry; a stub thread exits alone
//! when its context is dropped or moves (see `thread.rs`), and with the
//! whole process if its tracer exits without releasing it (EXITKILL).
//!
//! Seizing a stub thread is a ptrace *attach*: the host must allow it (Yama
//! `ptrace_scope` 0 or 1, stubs being descendants of the sentry; 2 needs
//! CAP_SYS_PTRACE in the stubs' user namespace; 3 makes this platform
//! unusable, `PTRACE_SEIZE` failing with EPERM).
//!
//! Interrupts use [`INTERRUPT_SIGNAL`] (SIGCHLD, as gVisor does), sent to
//! the context's own stub thread with `tgkill`: a stub has no children, so
//! it never receives SIGCHLD for any other reason, and its default action
//! (ignore) makes a stray one harmless.
//!
//! Host system calls made here (all in the sentry's seccomp allow-list):
//! mmap/mprotect/munmap (stub page), clone (the factory thread, fork),
//! ptrace, wait4, tgkill, kill, gettid, getpid, futex; in the forked child
//! before it stops: prctl, getppid, rt_sigprocmask, close_range, ptrace,
//! kill, getpid, exit_group; injected into stubs: munmap, mmap, mprotect,
//! rseq, clone, exit; run by a new stub thread before it is traced: poll.

mod address_space;
mod context;
mod factory;
mod stub;
mod sys;
mod thread;
pub mod raw;

use std::os::fd::RawFd;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

pub use address_space::PtraceAddressSpace;
pub use context::PtraceContext;

use crate::{AddressSpace, Context, Platform, PlatformError, Result};

/// The signal `Context::interrupt` sends to a stub.
pub const INTERRUPT_SIGNAL: i32 = libc::SIGCHLD;

/// Where the search for a free stub page address starts, and the lowest
/// address acceptable (applications must keep a large address space below).
const STUB_SEARCH_TOP: u64 = 0x7fff_0000_0000;
const STUB_SEARCH_FLOOR: u64 = 0x7e00_0000_0000;
const STUB_SEARCH_STEP: u64 = 1 << 30;

/// State shared by the platform, its address spaces and contexts.
#[derive(Debug)]
pub(crate) struct Shared {
    pub stub_addr: u64,
    pub memfd: RawFd,
    /// Host XSAVE regset size: 0 unknown yet, usize::MAX no XSAVE.
    pub xstate_len: AtomicUsize,
    /// Forks stub processes and clones stub threads. Dropped (its thread
    /// joined) with the last address space or context.
    pub factory: factory::Factory,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: the page was mapped by `map_stub_page` and nothing in the
        // sentry references it (only stubs execute it, in their own copy).
        unsafe { libc::munmap(self.stub_addr as *mut libc::c_void, 4096) };
    }
}

/// Maps the stub code page at the highest free 1 GiB-aligned address below
/// `STUB_SEARCH_TOP` and above `STUB_SEARCH_FLOOR`.
fn map_stub_page() -> Result<u64> {
    let mut addr = STUB_SEARCH_TOP;
    while addr > STUB_SEARCH_FLOOR {
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping, so
        // no memory of the sentry can be affected.
        let p = unsafe {
            libc::mmap(
                addr as *mut libc::c_void,
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED && p as u64 == addr {
            let code = stub::STUB_CODE;
            // SAFETY: `p` is a fresh, writable, page-sized mapping.
            unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), p.cast::<u8>(), code.len()) };
            // SAFETY: changes only the protection of our own page.
            if unsafe { libc::mprotect(p, 4096, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
                let e = std::io::Error::last_os_error();
                // SAFETY: our own page, unused.
                unsafe { libc::munmap(p, 4096) };
                return Err(PlatformError::host("mprotect(stub page)", e));
            }
            return Ok(addr);
        }
        if p != libc::MAP_FAILED {
            // A kernel without MAP_FIXED_NOREPLACE treated it as a hint.
            // SAFETY: the mapping was just created by us and is unused.
            unsafe { libc::munmap(p, 4096) };
        }
        addr -= STUB_SEARCH_STEP;
    }
    Err(PlatformError::Unusable("no free address for the ptrace stub page".into()))
}

pub struct PtracePlatform {
    shared: Arc<Shared>,
}

impl PtracePlatform {
    /// `memfile_fd`: the memory file's memfd, which stubs keep (at the same fd
    /// number) to map application memory.
    pub fn new(memfile_fd: RawFd) -> Result<Self> {
        let stub_addr = map_stub_page()?;
        let xstate_len = AtomicUsize::new(0);
        let shared = Shared { stub_addr, memfd: memfile_fd, xstate_len, factory: Default::default() };
        Ok(PtracePlatform { shared: Arc::new(shared) })
    }

    /// The address of the stub code page (= `max_user_address`).
    pub fn stub_address(&self) -> u64 {
        self.shared.stub_addr
    }

    /// Like `new_address_space`, with the concrete type.
    pub fn new_ptrace_address_space(&self) -> Arc<PtraceAddressSpace> {
        Arc::new(PtraceAddressSpace::new(self.shared.clone()))
    }

    /// Like `new_context`, with the concrete type.
    pub fn new_ptrace_context(&self) -> Arc<PtraceContext> {
        Arc::new(PtraceContext::new(self.shared.clone()))
    }
}

impl Platform for PtracePlatform {
    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn max_user_address(&self) -> u64 {
        self.shared.stub_addr
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>> {
        Ok(self.new_ptrace_address_space())
    }

    fn new_context(&self) -> Result<Arc<dyn Context>> {
        Ok(self.new_ptrace_context())
    }
}
