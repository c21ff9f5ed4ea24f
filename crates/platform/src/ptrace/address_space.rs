//! `PtraceAddressSpace`: one stub process, created lazily, with one stub
//! thread per context running in it.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::stub::{KillOnDrop, Leader};
use super::sys::{self, Pid};
use super::thread::StubThread;
use super::Shared;
use crate::{AddressSpace, PlatformError, Perms, Result};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Map { addr: u64, off: u64, len: u64, perms: Perms },
    Unmap { addr: u64, len: u64 },
    Protect { addr: u64, len: u64, perms: Perms },
}


#[derive(Debug, Default)]
pub(crate) struct AsState {
    /// None until the first switch on this address space.
    leader: Option<Leader>,
    /// The stub threads made in this process and not yet known to be gone
    /// (pruned when a thread is added), so that dropping the address space
    /// can reap them.
    threads: Vec<Arc<StubThread>>,
    /// Operations not yet applied to the stub, in order.
    pending: Vec<Op>,
    /// The stub died under us; every later switch fails.
    lost: Option<String>,
}

/// An application address space: one ptrace'd stub process.
///
/// The process is made (by the platform's factory thread) on the first
/// `Context::switch` on this address space; each context that switches in
/// gets its own stub thread in it, traced by the context's host thread (see
/// `thread.rs`). Until the first switch map/unmap/protect are queued. Later,
/// an operation made by a host thread that traces one of the stub threads
/// (which is then necessarily stopped: that thread is not inside `switch`)
/// is applied at once by injecting the system call into that stub thread,
/// and so for every thread of the process; one made by any other thread is
/// queued and applied by the next switch of any context, before application
/// code runs.
pub struct PtraceAddressSpace {
    /// Unique for the life of the sentry: contexts tell address spaces apart
    /// by it (an address could be reused).
    pub(crate) id: u64,
    pub(crate) shared: Arc<Shared>,
    state: Mutex<AsState>,
    /// `!state.pending.is_empty()`, readable without the lock by the switch
    /// path. Written under the lock.
    has_pending: AtomicBool,
    /// `state.lost.is_some()`, likewise.
    is_lost: AtomicBool,
}

impl PtraceAddressSpace {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        PtraceAddressSpace {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shared,
            state: Mutex::new(AsState::default()),
            has_pending: AtomicBool::new(false),
            is_lost: AtomicBool::new(false),
        }
    }

    /// The stub process's host pid, once it exists.
    pub fn stub_pid(&self) -> Option<i32> {
        self.state.lock().unwrap().leader.as_ref().map(|l| l.pid)
    }

    /// A new stub thread for the calling host thread, which becomes its
    /// tracer; creates the stub process on first use. Queued operations are
    /// applied through it before it is returned.
    pub(crate) fn new_thread(&self) -> Result<Arc<StubThread>> {
        let mut st = self.state.lock().unwrap();
        if let Some(why) = &st.lost {
            return Err(PlatformError::ContextLost(why.clone()));
        }
        // The factory needs no lock of ours, so waiting for it here is safe;
        // it serializes concurrent first switches (one process only).
        let (leader, tid) = match st.leader {
            Some(leader) => (leader, self.shared.factory.clone_thread(&leader)?),
            None => {
                let (leader, tid) = self.shared.factory.spawn(self.shared.memfd, self.shared.stub_addr)?;
                st.leader = Some(leader);
                (leader, tid)
            }
        };
        let thread = StubThread::seize(leader.pid, tid, self.shared.stub_addr)?;
        // Listed before anything can fail, so that dropping the address
        // space reaps it whatever happens.
        st.threads.retain(|t| t.is_live());
        st.threads.push(thread.clone());
        if let Err(e) = thread.stop() {
            thread.release_and_forget();
            return Err(e);
        }
        if !st.pending.is_empty() {
            self.flush(&mut st, &thread)?;
        }
        Ok(thread)
    }

    /// Readies the address space for `thread` (traced by the calling thread)
    /// to run application code: fails if the stub died, applies queued
    /// operations. The switch path: two atomic loads when there is nothing
    /// to do.
    pub(crate) fn ready(&self, thread: &StubThread) -> Result<()> {
        if self.is_lost.load(Ordering::Acquire) {
            let st = self.state.lock().unwrap();
            return Err(PlatformError::ContextLost(st.lost.clone().unwrap_or_default()));
        }
        if self.has_pending.load(Ordering::Acquire) {
            let mut st = self.state.lock().unwrap();
            if st.lost.is_none() {
                self.flush(&mut st, thread)?;
            }
        }
        Ok(())
    }

    /// The stub process died: `why` says how. Every later switch fails.
    pub(crate) fn set_lost(&self, why: String) {
        let mut st = self.state.lock().unwrap();
        st.lost.get_or_insert(why);
        self.is_lost.store(true, Ordering::Release);
    }

    /// Applies the queued operations through `via` (stopped, traced by the
    /// calling thread). Injected into any one thread, they change the
    /// address space of the whole process.
    fn flush(&self, st: &mut AsState, via: &StubThread) -> Result<()> {
        let memfd = self.shared.memfd;
        let mut result = Ok(());
        let mut done = 0;
        for op in &st.pending {
            done += 1;
            if let Err(e) = apply(via, memfd, *op) {
                result = Err(e);
                break;
            }
        }
        st.pending.drain(..done);
        self.has_pending.store(!st.pending.is_empty(), Ordering::Release);
        result
    }

    fn check(&self, addr: u64, len: u64) -> Result<()> {
        let ok = addr.is_multiple_of(4096)
            && len.is_multiple_of(4096)
            && addr.checked_add(len).is_some_and(|end| end <= self.shared.stub_addr);
        if ok {
            Ok(())
        } else {
            Err(PlatformError::host("address space operation", std::io::Error::from_raw_os_error(libc::EINVAL)))
        }
    }

    fn submit(&self, op: Op) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        st.pending.push(op);
        self.has_pending.store(true, Ordering::Release);
        if st.lost.is_some() {
            return Ok(());
        }
        // A thread that traces any stub thread of this process applies the
        // operation at once through it. (A handful of threads at most: a
        // linear scan.)
        let me = sys::current_tid();
        let via = st.threads.iter().find(|t| t.tracer == me && t.is_live()).cloned();
        if let Some(via) = via {
            self.flush(&mut st, &via)?;
        }
        Ok(())
    }
}

fn apply(via: &StubThread, memfd: i32, op: Op) -> Result<()> {
    let r = match op {
        Op::Map { addr, off, len, perms } => via.syscall(
            libc::SYS_mmap,
            [addr, len, perms.host_prot(), (libc::MAP_SHARED | libc::MAP_FIXED) as u64, memfd as u64, off],
        ),
        Op::Unmap { addr, len } => via.syscall(libc::SYS_munmap, [addr, len, 0, 0, 0, 0]),
        Op::Protect { addr, len, perms } => via.syscall(libc::SYS_mprotect, [addr, len, perms.host_prot(), 0, 0, 0]),
    };
    r.map(drop).map_err(|e| PlatformError::host("stub address space operation", e))
}

impl AddressSpace for PtraceAddressSpace {
    fn map_file(&self, addr: u64, file_offset: u64, len: u64, perms: Perms) -> Result<()> {
        self.check(addr, len)?;
        if !file_offset.is_multiple_of(4096) {
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
    /// Kills the stub process (every thread: SIGKILL is process-wide) and
    /// reaps it. No context is inside `switch` on it (a switch holds an `Arc`
    /// to it); a context may still hold one of its stub threads, which then
    /// is found dead when released.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap();
        let Some(leader) = st.leader.take() else { return };
        let _ = sys::kill(leader.pid, libc::SIGKILL);
        // The leader is reported only once every other thread is reaped, so
        // the stub threads go first.
        for t in st.threads.drain(..) {
            t.reap_killed();
        }
        drop(KillOnDrop(leader.pid as Pid));
    }
}
