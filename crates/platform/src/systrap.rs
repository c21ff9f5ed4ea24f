//! The systrap platform: application threads run in stub processes whose
//! seccomp filter turns every system call into a SIGSYS; a small handler in
//! the stub hands the thread's state to the sentry through shared memory and
//! returns to the application with whatever the sentry wrote back. No
//! ptrace anywhere: the host never executes an application system call and
//! a round trip costs two signal deliveries and two cache-line handoffs.
//!
//! * [`SystrapPlatform::new`] reserves a 4 GiB-aligned window at the top of
//!   the address space, puts the stub code page in it (`stub.rs`) and forks
//!   the *template* stub (`template.rs`), which forks every stub process.
//! * [`SystrapAddressSpace`] is one stub process. Its mappings are changed by
//!   its *control thread*, which makes `mmap`/`munmap`/`mprotect` of the
//!   memory file on request (the `CMD_SYSCALL` mailbox command).
//! * [`SystrapContext`] runs a task in a *stub thread* of its own, made by
//!   the control thread. At every trap or fault the thread's handler runs on
//!   the thread's slot stack in the shared region: the host's signal frame
//!   there holds the registers and the XSAVE state, which the sentry reads
//!   and edits in place (`frame.rs`); the handler reports through the slot's
//!   mailbox (`mailbox.rs`: spin, then futex) and `rt_sigreturn`s when told.
//!
//! Interrupts are a signal (`SIGUSR2`) sent to the stub thread with
//! `tgkill`: every signal that the CPU did not raise ends the switch with
//! `Exit::Interrupted` and is never seen by the application. What the stub
//! may do on the host is in `filter.rs`.

mod address_space;
mod context;
mod filter;
mod frame;
mod mailbox;
mod stub;
mod template;

pub use address_space::SystrapAddressSpace;
pub use context::SystrapContext;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use memfile::MemoryFile;

use crate::{AddressSpace, Context, Platform, PlatformError, Result};
use mailbox::Mailbox;
use stub::{PAGE, SLICE_SIZE};

/// The signal `Context::interrupt` sends to a running stub thread.
pub const INTERRUPT_SIGNAL: i32 = libc::SIGUSR2;

/// Stub processes (address spaces) a platform can hold at once, besides
/// the template.
const MAX_STUBS: u64 = 1023;

/// The window is searched for from here down.
const WINDOW_TOP: u64 = 0x7ff0_0000_0000;
const WINDOW_FLOOR: u64 = 0x4000_0000_0000;
const WINDOW: u64 = 1 << 32;

/// What every address space and context of a platform share.
pub(crate) struct Shared {
    /// The stub window: slices are mapped at `base`, the code page above.
    pub base: u64,
    /// The whole region, mapped in the sentry.
    region: *mut u8,
    region_len: u64,
    region_fd: OwnedFd,
    /// Slices no stub uses, oldest first, each with a pidfd of the stub that
    /// last had it (until that stub is seen gone, its futex waits and exit
    /// may still touch the slice).
    free_slices: Mutex<std::collections::VecDeque<(u32, Option<OwnedFd>)>>,
    /// The template's control slot, one request at a time.
    template_box: Mutex<Mailbox>,
    template: Option<template::Template>,
}

// SAFETY: `region` is a shared mapping owned by Shared for its lifetime;
// every access goes through mailboxes and frames whose rules are above.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    /// Slot `slot` of slice `slice` in the sentry's mapping.
    pub fn slot_ptr(&self, slice: u32, slot: u64) -> *mut u8 {
        debug_assert!((slice as u64) <= MAX_STUBS && slot < stub::SLOTS);
        // SAFETY: inside the region (checked above).
        unsafe { self.region.add((slice as u64 * SLICE_SIZE + slot * stub::SLOT_SIZE) as usize) }
    }

    pub fn max_user_address(&self) -> u64 {
        self.base - WINDOW
    }

    fn template_alive(&self) -> bool {
        self.template.as_ref().is_some_and(|t| t.alive())
    }

    /// Forks a stub process for slice `slice` from the template; returns its
    /// pid.
    fn fork_stub(&self, slice: u32) -> Result<i32> {
        let mb = self.template_box.lock().unwrap();
        let alive = || self.template_alive();
        let args = [stub::FORK_CLONE_FLAGS, 0, 0, 0, 0, slice as u64 * SLICE_SIZE];
        let r = mb.syscall(libc::SYS_clone, args, alive).map_err(|_| PlatformError::Unusable("the systrap template died".into()))?;
        if (r as i64) < 0 {
            return Err(PlatformError::host("fork of a systrap stub", std::io::Error::from_raw_os_error(-(r as i64) as i32)));
        }
        Ok(r as i32)
    }

    fn take_slice(&self) -> Result<u32> {
        let taken = self.free_slices.lock().unwrap().pop_front();
        let (slice, last_user) = taken.ok_or_else(|| PlatformError::Unusable(format!("more than {MAX_STUBS} systrap address spaces")))?;
        if let Some(pidfd) = last_user {
            let mut p = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd. A killed process exits promptly.
            unsafe { libc::poll(&mut p, 1, 5000) };
        }
        // Its pages go back to the host, and it starts zeroed.
        // SAFETY: punching a hole in our own region memfd.
        unsafe {
            libc::fallocate(
                self.region_fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                (slice as u64 * SLICE_SIZE) as i64,
                SLICE_SIZE as i64,
            )
        };
        Ok(slice)
    }

    /// Gives `slice` back; `last_user` is a pidfd of the stub that had it.
    fn give_back_slice(&self, slice: u32, last_user: Option<OwnedFd>) {
        self.free_slices.lock().unwrap().push_back((slice, last_user));
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Killing the template kills every stub (their PDEATHSIG).
        drop(self.template.take());
        // SAFETY: our own mappings, unused by now.
        unsafe {
            libc::munmap(self.region.cast(), self.region_len as usize);
            libc::munmap(self.base as *mut libc::c_void, (SLICE_SIZE + PAGE) as usize);
        }
    }
}

pub struct SystrapPlatform {
    shared: Arc<Shared>,
}

/// Is user-mode FSGSBASE enabled (the handler reads and writes the
/// application's fs and gs base with it)?
fn has_fsgsbase() -> bool {
    const HWCAP2_FSGSBASE: u64 = 1 << 1;
    // SAFETY: getauxval has no preconditions.
    let hwcap2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
    hwcap2 & HWCAP2_FSGSBASE != 0
}

/// Reserves the stub window and maps the stub code page in it.
fn map_window() -> Result<u64> {
    let len = (SLICE_SIZE + PAGE) as usize;
    let mut base = WINDOW_TOP;
    while base > WINDOW_FLOOR {
        // SAFETY: MAP_FIXED_NOREPLACE never replaces a mapping of ours.
        let p = unsafe {
            libc::mmap(base as *mut _, len, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE, -1, 0)
        };
        if p != libc::MAP_FAILED && p as u64 == base {
            let code_page = base + SLICE_SIZE;
            // SAFETY: replaces a page of the reservation just made.
            let c = unsafe {
                libc::mmap(
                    code_page as *mut _,
                    PAGE as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if c as u64 != code_page {
                return Err(PlatformError::host("mmap(systrap stub page)", std::io::Error::last_os_error()));
            }
            let code = stub::code();
            // SAFETY: a fresh writable page; the code is shorter (tested).
            unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), c.cast::<u8>(), code.len()) };
            // SAFETY: our own page.
            if unsafe { libc::mprotect(c, PAGE as usize, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
                return Err(PlatformError::host("mprotect(systrap stub page)", std::io::Error::last_os_error()));
            }
            return Ok(base);
        }
        if p != libc::MAP_FAILED {
            // SAFETY: a mapping just made by us elsewhere (hint semantics).
            unsafe { libc::munmap(p, len) };
        }
        base -= WINDOW;
    }
    Err(PlatformError::Unusable("no free 4 GiB window for the systrap stubs".into()))
}

impl SystrapPlatform {
    /// Builds the platform over `memfile`: the stub window, the shared
    /// region and the template stub; then makes one stub process and drops
    /// it, so that a host whose seccomp cannot trap fails here, saying why.
    pub fn new(memfile: &Arc<MemoryFile>) -> Result<Self> {
        if !has_fsgsbase() {
            return Err(PlatformError::Unusable("systrap: the host does not enable FSGSBASE for user mode".into()));
        }
        let base = map_window()?;
        let region_len = (MAX_STUBS + 1) * SLICE_SIZE;
        // SAFETY: memfd_create with a static name.
        let fd = unsafe { libc::memfd_create(c"veil-systrap".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(PlatformError::host("memfd_create(systrap region)", std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh fd we own.
        let region_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sizing and mapping our own memfd.
        let region = unsafe {
            if libc::ftruncate(fd, region_len as i64) != 0 {
                return Err(PlatformError::host("ftruncate(systrap region)", std::io::Error::last_os_error()));
            }
            libc::mmap(
                std::ptr::null_mut(),
                region_len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd,
                0,
            )
        };
        if region == libc::MAP_FAILED {
            return Err(PlatformError::host("mmap(systrap region)", std::io::Error::last_os_error()));
        }
        let offsets = stub::offsets();
        let code_page = base + SLICE_SIZE;
        let template_box = Mailbox { ptr: region.cast() };
        template_box.reset_for_stub();
        let plan = template::Plan {
            memfd: memfile.fd(),
            region_fd: fd,
            base,
            handler: code_page + offsets.handler,
            restorer: code_page + offsets.restorer,
            entry: code_page + offsets.template_entry,
            rseq: None,
        };
        let mut shared = Shared {
            base,
            region: region.cast(),
            region_len,
            region_fd,
            free_slices: Mutex::new((1..=MAX_STUBS as u32).map(|s| (s, None)).collect()),
            template_box: Mutex::new(template_box),
            template: None,
        };
        shared.template = Some(template::Template::start(plan)?);
        if let mailbox::Waited::Dead = template_box.wait(|| shared.template_alive()) {
            return Err(PlatformError::Unusable("systrap: the template stub died starting".into()));
        }
        let platform = SystrapPlatform { shared: Arc::new(shared) };
        drop(platform.new_systrap_address_space()?);
        Ok(platform)
    }

    /// Like `new_address_space`, with the concrete type.
    pub fn new_systrap_address_space(&self) -> Result<Arc<SystrapAddressSpace>> {
        Ok(Arc::new(SystrapAddressSpace::new(self.shared.clone())?))
    }

    /// Like `new_context`, with the concrete type.
    pub fn new_systrap_context(&self) -> Arc<SystrapContext> {
        Arc::new(SystrapContext::new())
    }

    /// The stub code page's address (the filter lets only code there make
    /// host system calls).
    pub fn stub_code_address(&self) -> u64 {
        self.shared.base + SLICE_SIZE
    }
}

impl Platform for SystrapPlatform {
    fn name(&self) -> &'static str {
        "systrap"
    }

    fn max_user_address(&self) -> u64 {
        self.shared.max_user_address()
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>> {
        Ok(self.new_systrap_address_space()?)
    }

    fn new_context(&self) -> Result<Arc<dyn Context>> {
        Ok(self.new_systrap_context())
    }
}
