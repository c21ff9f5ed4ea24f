//! A systrap address space: one stub process, its control thread serving
//! map/unmap/protect, and the slots of its stub threads.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use super::mailbox::{Mailbox, Waited};
use super::stub::{self, MEMFILE_FD, PAGE, SLOT_SIZE, THREAD_CLONE_FLAGS};
use super::{filter, Shared};
use crate::{AddressSpace, Perms, PlatformError, Result};

pub struct SystrapAddressSpace {
    pub(crate) inner: Arc<Stub>,
}

/// One stub process.
pub(crate) struct Stub {
    pub shared: Arc<Shared>,
    pub slice: u32,
    pub pid: i32,
    pidfd: Option<OwnedFd>,
    control: Mutex<Mailbox>,
    /// Slot numbers (1..SLOTS) not used by a stub thread.
    free_slots: Mutex<Vec<u64>>,
}

impl Stub {
    /// Is the process still there?
    pub fn alive(&self) -> bool {
        let mut p = libc::pollfd { fd: self.pidfd_raw(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, no wait.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        !(r > 0 && p.revents & libc::POLLIN != 0)
    }

    /// Kills the process (a broken protocol, or the end of the address space).
    pub fn kill(&self) {
        // SAFETY: a signal through our pidfd.
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, self.pidfd_raw(), libc::SIGKILL, 0usize, 0u32) };
    }

    fn pidfd_raw(&self) -> i32 {
        self.pidfd.as_ref().map_or(-1, |fd| fd.as_raw_fd())
    }

    pub fn mailbox(&self, slot: u64) -> Mailbox {
        Mailbox { ptr: self.shared.slot_ptr(self.slice, slot) }
    }

    /// Stub address of slot `slot`.
    pub fn slot_va(&self, slot: u64) -> u64 {
        self.shared.base + slot * SLOT_SIZE
    }

    /// Makes host system call `nr` in the stub (its control thread).
    fn syscall(&self, nr: i64, args: [u64; 6]) -> std::io::Result<u64> {
        let mb = self.control.lock().unwrap();
        match mb.syscall(nr, args, || self.alive()) {
            Ok(r) if (r as i64) < 0 && (r as i64) > -4096 => Err(std::io::Error::from_raw_os_error(-(r as i64) as i32)),
            Ok(r) => Ok(r),
            Err(_) => Err(std::io::Error::other("the stub process died")),
        }
    }

    /// A new stub thread, waiting in its handler: its slot and tid.
    pub fn new_thread(&self) -> Result<(u64, i32)> {
        let slot = self.free_slots.lock().unwrap().pop().ok_or_else(|| {
            PlatformError::Unusable(format!("more than {} threads in one systrap address space", stub::SLOTS - 1))
        })?;
        let mb = self.mailbox(slot);
        // A thread that had this slot may still be on its way out.
        mb.wait_thread_exit(|| self.alive());
        mb.reset_for_stub();
        let va = self.slot_va(slot);
        let args = [THREAD_CLONE_FLAGS, va + PAGE, 0, va + stub::TID as u64, 0, 0];
        let made = self.syscall(libc::SYS_clone, args).map_err(|e| self.lost("clone of a stub thread", e));
        let tid = match made {
            Ok(t) => t as i32,
            Err(e) => {
                self.free_slots.lock().unwrap().push(slot);
                return Err(e);
            }
        };
        if let Waited::Dead = mb.wait(|| self.alive()) {
            return Err(PlatformError::ContextLost("the stub process died".into()));
        }
        Ok((slot, tid))
    }

    /// Ends the stub thread of `slot` (waiting in its handler) and frees it.
    pub fn release_thread(&self, slot: u64) {
        let mb = self.mailbox(slot);
        if mb.owned_by_sentry() {
            mb.set(stub::NR, libc::SYS_exit as u64);
            for i in 0..6 {
                mb.set(stub::ARGS + 8 * i, 0);
            }
            mb.post(stub::CMD_SYSCALL);
        }
        self.free_slots.lock().unwrap().push(slot);
    }

    fn lost(&self, op: &'static str, e: std::io::Error) -> PlatformError {
        if self.alive() {
            PlatformError::host(op, e)
        } else {
            PlatformError::ContextLost(format!("{op}: the stub process died"))
        }
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.kill();
        self.shared.give_back_slice(self.slice, self.pidfd.take());
    }
}

impl SystrapAddressSpace {
    pub(crate) fn new(shared: Arc<Shared>) -> Result<Self> {
        let slice = shared.take_slice()?;
        let control = Mailbox { ptr: shared.slot_ptr(slice, 0) };
        control.reset_for_stub();
        let prog = filter::program(shared.base);
        control.set(stub::FILTER_LEN, prog.len() as u64);
        // SAFETY: FILTER_MAX instructions fit below the clone stack (tested);
        // the slice is ours alone until the fork.
        unsafe {
            std::ptr::copy_nonoverlapping(prog.as_ptr(), control.ptr.add(stub::FILTER).cast(), prog.len());
        }
        let pid = match shared.fork_stub(slice) {
            Ok(p) => p,
            Err(e) => {
                shared.give_back_slice(slice, None);
                return Err(e);
            }
        };
        // SAFETY: pidfd_open of the stub just forked (it cannot have been
        // reaped: it runs no application code yet and nobody kills it).
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: killing the stub we just made.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            shared.give_back_slice(slice, None);
            return Err(PlatformError::host("pidfd_open(systrap stub)", e));
        }
        // SAFETY: a fresh fd we own.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let stub = Stub {
            shared,
            slice,
            pid,
            pidfd: Some(pidfd),
            control: Mutex::new(control),
            free_slots: Mutex::new((1..stub::SLOTS).rev().collect()),
        };
        if let Waited::Dead = control.wait(|| stub.alive()) {
            return Err(PlatformError::Unusable("systrap: a new stub died installing its seccomp filter".into()));
        }
        if control.get(stub::RET) != 0 {
            return Err(PlatformError::Unusable("systrap: a new stub could not start".into()));
        }
        Ok(SystrapAddressSpace { inner: Arc::new(stub) })
    }

    /// The stub process's pid.
    pub fn stub_pid(&self) -> i32 {
        self.inner.pid
    }

    fn check(&self, addr: u64, len: u64) -> Result<()> {
        let end = addr.checked_add(len);
        if !addr.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) || end.is_none_or(|e| e > self.inner.shared.max_user_address()) {
            return Err(PlatformError::host("systrap address space", std::io::Error::from_raw_os_error(libc::EINVAL)));
        }
        Ok(())
    }

    /// Runs `op` over `[addr, addr+len)` in pieces the stub filter accepts
    /// (shorter than 4 GiB).
    fn in_pieces(&self, addr: u64, len: u64, mut op: impl FnMut(u64, u64, u64) -> std::io::Result<u64>) -> std::io::Result<()> {
        const PIECE: u64 = 1 << 30;
        let mut done = 0;
        while done < len {
            let n = (len - done).min(PIECE);
            op(addr + done, n, done)?;
            done += n;
        }
        Ok(())
    }
}


impl AddressSpace for SystrapAddressSpace {
    fn map_file(&self, addr: u64, file_offset: u64, len: u64, perms: Perms) -> Result<()> {
        self.check(addr, len)?;
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let s = &self.inner;
        self.in_pieces(addr, len, |a, n, done| {
            s.syscall(libc::SYS_mmap, [a, n, perms.host_prot(), flags, MEMFILE_FD, file_offset + done])
        })
        .map_err(|e| s.lost("mmap in a systrap stub", e))
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<()> {
        self.check(addr, len)?;
        let s = &self.inner;
        self.in_pieces(addr, len, |a, n, _| s.syscall(libc::SYS_munmap, [a, n, 0, 0, 0, 0]))
            .map_err(|e| s.lost("munmap in a systrap stub", e))
    }

    fn protect(&self, addr: u64, len: u64, perms: Perms) -> Result<()> {
        self.check(addr, len)?;
        let s = &self.inner;
        self.in_pieces(addr, len, |a, n, _| s.syscall(libc::SYS_mprotect, [a, n, perms.host_prot(), 0, 0, 0]))
            .map_err(|e| s.lost("mprotect in a systrap stub", e))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
