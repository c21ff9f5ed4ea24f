//! The one readiness/wait engine behind select, pselect6, epoll_wait (and,
//! once wired, poll/ppoll): wait until a caller-supplied scan finds
//! something ready, the deadline passes, or a signal arrives.
//!
//! Sentry files are waited on through their wait queues; files whose
//! readiness only the host knows (stdio) through a host `poll` that also
//! watches the task's wake-up eventfd, so signals and sentry queues end it.
//! An epoll file stands for everything it watches (nested epoll), and a
//! signalfd for the thread group's signal-queued events.

use super::events::*;
use super::OpenFile;
use crate::signal::SignalState;
use crate::task::TaskCtx;
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::signal::SigSet;
use abi::types::PollFd;
use abi::Errno;
use std::sync::Arc;
use std::time::Instant;

/// How deep epoll files may nest (Linux's EP_MAX_NESTS).
pub const MAX_NESTS: usize = 4;

/// What to wait on: the files (with the events of interest, used for
/// host descriptors) plus any extra queues.
#[derive(Default)]
pub struct Sources {
    files: Vec<Arc<OpenFile>>,
    host: Vec<(i32, i16)>,
    signals: bool,
}

impl Sources {
    /// Adds `file`, expanding epoll files into what they watch.
    pub fn add(&mut self, file: &Arc<OpenFile>, events: u32) {
        self.add_nested(file, events, 0);
    }

    fn add_nested(&mut self, file: &Arc<OpenFile>, events: u32, depth: usize) {
        if let Some(h) = file.ops.host_fd() {
            self.host.push((h, to_host_events(events)));
        }
        if let Some(ep) = super::anon::get::<super::epoll::Epoll>(file) {
            if depth <= MAX_NESTS {
                for (f, ev) in ep.watched() {
                    self.add_nested(&f, ev, depth + 1);
                }
            }
        }
        if super::anon::is::<super::signalfd::SignalFd>(file) {
            self.signals = true;
        }
        self.files.push(file.clone());
    }
}

fn to_host_events(ev: u32) -> i16 {
    let mut h = 0;
    if ev & POLLIN != 0 {
        h |= libc::POLLIN;
    }
    if ev & POLLOUT != 0 {
        h |= libc::POLLOUT;
    }
    if ev & POLLPRI != 0 {
        h |= libc::POLLPRI;
    }
    h
}

/// Waits until `scan` returns true (Ok(true)), `deadline` passes
/// (Ok(false)) or a signal or exit interrupts (Err(ERESTARTSYS)).
/// `scan` runs after the task is registered on every queue, so a change
/// between the scan and the sleep is never lost.
pub fn wait(t: &TaskCtx, src: &Sources, deadline: Option<Instant>, mut scan: impl FnMut() -> bool) -> SysResult<bool> {
    let mut queues: Vec<&WaitQueue> = src.files.iter().filter_map(|f| f.ops.wait_queue()).collect();
    if src.signals {
        queues.push(&t.task.tg.signal_events);
    }
    let waiter = &t.task.waiter;
    let unregister = |qs: &[&WaitQueue]| qs.iter().for_each(|q| q.unregister(waiter));
    loop {
        waiter.drain_event();
        let seen = t.prepare_block(&queues);
        if super::signalfd::with_current(t, &mut scan) {
            unregister(&queues);
            return Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            unregister(&queues);
            return Ok(false);
        }
        if src.host.is_empty() {
            match t.block_since(&queues, seen, deadline) {
                Ok(()) | Err(Errno::ETIMEDOUT) => continue,
                Err(e) => return Err(e),
            }
        }
        if t.signal_pending() || t.task_exiting() {
            unregister(&queues);
            return Err(Errno::ERESTARTSYS);
        }
        let mut pfds: Vec<libc::pollfd> = src.host.iter().map(|&(fd, ev)| libc::pollfd { fd, events: ev, revents: 0 }).collect();
        pfds.push(libc::pollfd { fd: waiter.event_fd(), events: libc::POLLIN, revents: 0 });
        let timeout = match deadline {
            None => -1,
            Some(d) => d.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128 - 1) as i32 + 1,
        };
        // SAFETY: pfds is a valid array of pfds.len() pollfds.
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout) };
        unregister(&queues);
    }
}

/// poll(2) over `fds` on the shared engine: fills `revents` and returns
/// how many are non-zero; Err(ERESTARTSYS) when interrupted (poll maps it
/// to ERESTARTNOHAND, as Linux does). poll/ppoll in sys_read_write can
/// call this instead of their own loop.
pub fn poll(t: &TaskCtx, fds: &mut [PollFd], deadline: Option<Instant>) -> SysResult<usize> {
    let table = t.files();
    let files: Vec<Option<Arc<OpenFile>>> = fds.iter().map(|p| if p.fd < 0 { None } else { table.get(p.fd).ok() }).collect();
    let mut src = Sources::default();
    for (p, f) in fds.iter().zip(&files) {
        if let Some(f) = f {
            src.add(f, p.events as u16 as u32);
        }
    }
    let mut n = 0;
    wait(t, &src, deadline, || {
        n = 0;
        for (p, f) in fds.iter_mut().zip(&files) {
            p.revents = 0;
            if p.fd < 0 {
                continue;
            }
            let ev = match f {
                None => POLLNVAL,
                Some(f) => f.ops.readiness() & (p.events as u16 as u32 | POLLERR | POLLHUP),
            };
            p.revents = ev as i16;
            n += (ev != 0) as usize;
        }
        n > 0
    })?;
    Ok(n)
}

/// A temporary signal mask for the length of a call (ppoll, pselect6,
/// epoll_pwait), as Linux's set_user_sigmask/restore_saved_sigmask_unless:
/// when the call ends interrupted, the old mask stays in `saved_mask` so a
/// handler for a signal the temporary mask let through runs first and the
/// old mask comes back after it (signal delivery does that); otherwise the
/// old mask is restored at once.
pub fn swap_mask(t: &TaskCtx, mask: Option<SigSet>) {
    if let Some(m) = mask {
        let mut s = t.task.signals.lock().unwrap();
        if s.saved_mask.is_none() {
            s.saved_mask = Some(s.mask);
        }
        s.mask = m.blockable();
    }
}

/// Ends what [`swap_mask`] started, given the call's result.
pub fn restore_mask<T>(t: &TaskCtx, swapped: bool, result: &SysResult<T>) {
    if !swapped {
        return;
    }
    let interrupted = matches!(result, Err(e) if *e == Errno::EINTR || *e == Errno::ERESTARTNOHAND || *e == Errno::ERESTARTSYS);
    if !interrupted {
        let mut s: std::sync::MutexGuard<'_, SignalState> = t.task.signals.lock().unwrap();
        if let Some(m) = s.saved_mask.take() {
            s.mask = m;
        }
    }
}

/// Reads the sigset argument of ppoll/pselect6/epoll_pwait (NULL: none).
pub fn read_sigmask(t: &TaskCtx, addr: u64, size: u64) -> SysResult<Option<SigSet>> {
    if addr == 0 {
        return Ok(None);
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    Ok(Some(SigSet(t.read_obj::<u64>(addr)?)))
}
