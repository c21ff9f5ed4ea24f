//! `PtraceAddressSpace`: one stub process, created lazily.

use std::any::Any;
use std::sync::{Arc, Mutex};

use super::stub::Stub;
use super::sys::{self, Pid};
use super::Shared;
use crate::{AddressSpace, PlatformError, Perms, Result};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Map { addr: u64, off: u64, len: u64, perms: Perms },
    Unmap { addr: u64, len: u64 },
    Protect { addr: u64, len: u64, perms: Perms },
}

fn prot(perms: Perms) -> u64 {
    let mut p = libc::PROT_NONE;
    if perms.contains(Perms::READ) {
        p |= libc::PROT_READ;
    }
    if perms.contains(Perms::WRITE) {
        p |= libc::PROT_WRITE;
    }
    if perms.contains(Perms::EXEC) {
        p |= libc::PROT_EXEC;
    }
    p as u64
}

#[derive(Debug, Default)]
pub(crate) struct AsState {
    /// None until the first switch on this address space.
    pub stub: Option<Stub>,
    /// Operations not yet applied to the stub, in order.
    pub pending: Vec<Op>,
    /// The context allowed to run in this address space (one stub thread per
    /// stub process for now).
    pub bound: Option<u64>,
    /// The stub died under us; every later switch fails.
    pub lost: Option<String>,
}

impl AsState {
    /// Applies the queued operations to the (stopped) stub.
    pub(crate) fn flush(&mut self, memfd: i32) -> Result<()> {
        let Some(stub) = &self.stub else { return Ok(()) };
        for (i, op) in self.pending.iter().enumerate() {
            if let Err(e) = apply(stub, memfd, *op) {
                self.pending.drain(..=i);
                return Err(e);
            }
        }
        self.pending.clear();
        Ok(())
    }
}

fn apply(stub: &Stub, memfd: i32, op: Op) -> Result<()> {
    let r = match op {
        Op::Map { addr, off, len, perms } => stub.syscall(
            libc::SYS_mmap,
            [addr, len, prot(perms), (libc::MAP_SHARED | libc::MAP_FIXED) as u64, memfd as u64, off],
        ),
        Op::Unmap { addr, len } => stub.syscall(libc::SYS_munmap, [addr, len, 0, 0, 0, 0]),
        Op::Protect { addr, len, perms } => stub.syscall(libc::SYS_mprotect, [addr, len, prot(perms), 0, 0, 0]),
    };
    r.map(drop).map_err(|e| PlatformError::host("stub address space operation", e))
}

/// An application address space: one ptrace'd stub process.
///
/// The stub is forked by the first `Context::switch` on this address space,
/// from that switch's host thread, because ptrace only lets the thread that
/// attached to a tracee drive it and the kernel runs each task from its own
/// thread. Until then map/unmap/protect are queued. Later, an operation made
/// by the tracing thread (while the stub is necessarily stopped: that thread
/// is not inside `switch`) is applied at once by injecting the system call
/// into the stub; one made by any other thread is queued and applied by the
/// next switch before application code runs.
pub struct PtraceAddressSpace {
    pub(crate) shared: Arc<Shared>,
    pub(crate) state: Mutex<AsState>,
    /// The stub's pid (0: none, or reaped), for `Context::interrupt`. Reaping
    /// happens under this lock so that an interrupt never signals a recycled
    /// pid.
    pub(crate) handle: Arc<Mutex<Pid>>,
}

impl PtraceAddressSpace {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        PtraceAddressSpace { shared, state: Mutex::new(AsState::default()), handle: Arc::new(Mutex::new(0)) }
    }

    /// The stub's host pid, once it exists.
    pub fn stub_pid(&self) -> Option<i32> {
        self.state.lock().unwrap().stub.as_ref().map(|s| s.pid)
    }

    fn check(&self, addr: u64, len: u64) -> Result<()> {
        let ok = addr % 4096 == 0
            && len % 4096 == 0
            && addr.checked_add(len).is_some_and(|end| end <= self.shared.stub_addr);
        if ok {
            Ok(())
        } else {
            Err(PlatformError::host("address space operation", std::io::Error::from_raw_os_error(libc::EINVAL)))
        }
    }

    fn submit(&self, op: Op) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        let synchronous = st.lost.is_none() && st.stub.as_ref().is_some_and(|s| s.tracer == sys::current_tid());
        st.pending.push(op);
        if synchronous {
            st.flush(self.shared.memfd)?;
        }
        Ok(())
    }
}

impl AddressSpace for PtraceAddressSpace {
    fn map_file(&self, addr: u64, file_offset: u64, len: u64, perms: Perms) -> Result<()> {
        self.check(addr, len)?;
        if file_offset % 4096 != 0 {
            return Err(PlatformError::host("map_file", std::io::Error::from_raw_os_error(libc::EINVAL)));
        }
        if len == 0 {
            return Ok(());
        }
        self.submit(Op::Map { addr, off: file_offset, len, perms })
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<()> {
        self.check(addr, len)?;
        if len == 0 {
            return Ok(());
        }
        self.submit(Op::Unmap { addr, len })
    }

    fn protect(&self, addr: u64, len: u64, perms: Perms) -> Result<()> {
        self.check(addr, len)?;
        if len == 0 {
            return Ok(());
        }
        self.submit(Op::Protect { addr, len, perms })
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl Drop for PtraceAddressSpace {
    fn drop(&mut self) {
        let mut handle = self.handle.lock().unwrap();
        // Stub::drop: SIGKILL + reap.
        drop(self.state.get_mut().unwrap().stub.take());
        *handle = 0;
    }
}
