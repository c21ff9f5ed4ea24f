//! The stub factory: one host thread per platform that forks every stub
//! process and clones every stub thread.
//!
//! Why a dedicated thread:
//! * `PR_SET_PDEATHSIG` fires when the *thread* that forked the stub exits,
//!   and `PTRACE_O_EXITKILL` when the leader's tracer (that same thread)
//!   does; both kill the whole stub process. Forking from a task's host
//!   thread would kill every other application thread when that task exits.
//!   The factory lives as long as the platform, so a stub dies exactly when
//!   its address space is dropped or the sentry goes away.
//! * A stub thread is made by injecting `clone` into a thread of the stub
//!   process, which only that thread's tracer may do; the factory traces
//!   every leader, so it can serve a request from any host thread. The new
//!   thread parks itself untraced (see `stub::STUB_CODE`) until the
//!   requesting thread seizes it and becomes its tracer.
//!
//! Requests are rare (a new address space, a new thread in one) and never on
//! the switch path; they are served one at a time.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Mutex;
use std::thread::JoinHandle;

use super::stub::{KillOnDrop, Leader};
use super::sys::Pid;
use crate::{PlatformError, Result};

enum Request {
    /// Fork a stub process and clone its first stub thread.
    Spawn { memfd: i32, stub_addr: u64, reply: SyncSender<Result<(Leader, Pid)>> },
    /// Clone one more stub thread in the process of `leader`.
    Clone { leader: Box<Leader>, reply: SyncSender<Result<Pid>> },
}

struct Running {
    tx: Sender<Request>,
    thread: JoinHandle<()>,
}

/// Handle on the factory thread, started on first use (so that a platform
/// that is never used costs no thread).
#[derive(Default)]
pub(crate) struct Factory {
    running: Mutex<Option<Running>>,
}

impl std::fmt::Debug for Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Factory")
    }
}

impl Factory {
    /// A new stub process: its leader, traced by the factory, and the tid of
    /// its first stub thread, parked and untraced.
    pub(crate) fn spawn(&self, memfd: i32, stub_addr: u64) -> Result<(Leader, Pid)> {
        self.call(|reply| Request::Spawn { memfd, stub_addr, reply })
    }

    /// The tid of a new stub thread in `leader`'s process, parked and
    /// untraced.
    pub(crate) fn clone_thread(&self, leader: &Leader) -> Result<Pid> {
        self.call(|reply| Request::Clone { leader: Box::new(*leader), reply })
    }

    fn call<T>(&self, make: impl FnOnce(SyncSender<Result<T>>) -> Request) -> Result<T> {
        let (reply, rx) = mpsc::sync_channel(1);
        {
            let mut running = self.running.lock().unwrap();
            if running.is_none() {
                *running = Some(start()?);
            }
            let tx = &running.as_ref().unwrap().tx;
            tx.send(make(reply)).map_err(|_| PlatformError::Unusable("ptrace stub factory thread is gone".into()))?;
        }
        rx.recv().map_err(|_| PlatformError::Unusable("ptrace stub factory thread died".into()))?
    }
}

impl Drop for Factory {
    /// Stops the factory thread. Runs when the platform and everything made
    /// from it are gone, so that no stub is left for its exit to kill.
    fn drop(&mut self) {
        if let Some(Running { tx, thread }) = self.running.get_mut().unwrap().take() {
            drop(tx);
            let _ = thread.join();
        }
    }
}

fn start() -> Result<Running> {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("veil-stub-factory".into())
        .spawn(move || serve(rx))
        .map_err(|e| PlatformError::host("spawning the ptrace stub factory thread", e))?;
    Ok(Running { tx, thread })
}

fn serve(rx: Receiver<Request>) {
    for req in rx {
        match req {
            Request::Spawn { memfd, stub_addr, reply } => {
                let made = Leader::spawn(memfd, stub_addr).and_then(|leader| {
                    let guard = KillOnDrop(leader.pid);
                    let tid = clone_thread(&leader)?;
                    std::mem::forget(guard);
                    Ok((leader, tid))
                });
                if let Err(mpsc::SendError(Ok((leader, _)))) = reply.send(made) {
                    // The requester is gone: nobody will ever drop this stub.
                    drop(KillOnDrop(leader.pid));
                }
            }
            Request::Clone { leader, reply } => {
                // If the requester is gone the parked thread stays unused and
                // dies with its process.
                let _ = reply.send(clone_thread(&leader));
            }
        }
    }
}

fn clone_thread(leader: &Leader) -> Result<Pid> {
    leader.clone_thread().map_err(|e| PlatformError::host("clone of a stub thread", e))
}
