//! epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait,
//! epoll_pwait2 (fs/epoll.rs holds the instance; fs/readiness.rs the wait).

use super::{Args, Entry};
use crate::fs::epoll::{self, Epoll, EPOLLEXCLUSIVE, EPOLL_CTL_ADD, EPOLL_CTL_DEL};
use crate::fs::readiness::{self, Sources};
use crate::fs::{anon, node::S_IFMT};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::Timespec;
use abi::Errno;
use std::time::{Duration, Instant};

pub const SYSCALLS: &[Entry] = &[
    sys!(EPOLL_CREATE, sys_epoll_create, [Int]),
    sys!(EPOLL_CREATE1, sys_epoll_create1, [Hex]),
    sys!(EPOLL_CTL, sys_epoll_ctl, [Int, Int, Int, Hex], partial "EPOLLEXCLUSIVE and EPOLLWAKEUP are accepted and ignored; edge-triggered mode may report an event again after an unrelated wake-up"),
    sys!(EPOLL_WAIT, sys_epoll_wait, [Int, Hex, Int, Int]),
    sys!(EPOLL_PWAIT, sys_epoll_pwait, [Int, Hex, Int, Int, Hex, Int]),
    sys!(EPOLL_PWAIT2, sys_epoll_pwait2, [Int, Hex, Int, Hex, Hex, Int]),
];

/// sizeof(struct epoll_event) on x86-64 (packed: u32 events, u64 data).
const EVENT_SIZE: usize = 12;
/// Linux's EP_MAX_EVENTS.
const MAX_EVENTS: i32 = (i32::MAX as usize / EVENT_SIZE) as i32;

fn sys_epoll_create(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if (a[0] as i32) <= 0 {
        return Err(Errno::EINVAL);
    }
    Ok(t.files().install(epoll::new(0)?, false)? as u64)
}

fn sys_epoll_create1(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let flags = a[0] as i32;
    if flags & !libc::EPOLL_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(t.files().install(epoll::new(0)?, flags & libc::EPOLL_CLOEXEC != 0)? as u64)
}

fn sys_epoll_ctl(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (epfd, op, fd, ev_addr) = (a[0] as i32, a[1] as i32, a[2] as i32, a[3]);
    let files = t.files();
    let epf = files.get(epfd)?;
    let target = files.get(fd)?;
    let ep = anon::get::<Epoll>(&epf).ok_or(Errno::EINVAL)?;
    if epfd == fd {
        return Err(Errno::EINVAL);
    }
    // Files that are always ready (regular files, directories) cannot be
    // watched: Linux refuses them with EPERM.
    if target.ops.wait_queue().is_none() && target.ops.host_fd().is_none() {
        if let Ok(st) = target.ops.stat() {
            if matches!(st.st_mode & S_IFMT, libc::S_IFREG | libc::S_IFDIR) {
                return Err(Errno::EPERM);
            }
        }
    }
    let (events, data) = if op == EPOLL_CTL_DEL {
        (0, 0)
    } else {
        let b = t.copy_in(ev_addr, EVENT_SIZE)?;
        (u32::from_ne_bytes(b[0..4].try_into().unwrap()), u64::from_ne_bytes(b[4..12].try_into().unwrap()))
    };
    if op == EPOLL_CTL_ADD && events & EPOLLEXCLUSIVE != 0 && events & !(EPOLLEXCLUSIVE | epoll::EPOLLIN | epoll::EPOLLOUT | epoll::EPOLLERR | epoll::EPOLLHUP | epoll::EPOLLWAKEUP | epoll::EPOLLET | epoll::EPOLLRDNORM | epoll::EPOLLWRNORM) != 0 {
        return Err(Errno::EINVAL);
    }
    ep.ctl(op, fd, &target, events, data)?;
    Ok(0)
}

/// The wait shared by the three epoll_wait calls.
fn wait(t: &TaskCtx, epfd: i32, events: u64, max: i32, deadline: Option<Instant>) -> SysResult<u64> {
    if max <= 0 || max > MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let f = t.files().get(epfd)?;
    let ep = anon::get::<Epoll>(&f).ok_or(Errno::EINVAL)?;
    // The output array must be writable before anything is consumed.
    let size = max as usize * EVENT_SIZE;
    t.copy_out(events, &vec![0u8; size.min(EVENT_SIZE)])?;
    let mut src = Sources::default();
    src.add(&f, epoll::EPOLLIN);
    let mut ready = Vec::new();
    let r = readiness::wait(t, &src, deadline, || {
        ready = ep.collect(max as usize, true);
        !ready.is_empty()
    });
    match r {
        Ok(_) => {}
        // Interrupted: EINTR whatever the handler's SA_RESTART (Linux).
        Err(Errno::ERESTARTSYS) => return Err(Errno::EINTR),
        Err(e) => return Err(e),
    }
    let mut out = Vec::with_capacity(ready.len() * EVENT_SIZE);
    for (ev, data) in &ready {
        out.extend_from_slice(&ev.to_ne_bytes());
        out.extend_from_slice(&data.to_ne_bytes());
    }
    t.copy_out(events, &out)?;
    Ok(ready.len() as u64)
}

fn ms_deadline(ms: i32) -> Option<Instant> {
    if ms < 0 {
        None
    } else {
        Some(Instant::now() + Duration::from_millis(ms as u64))
    }
}

fn sys_epoll_wait(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    wait(t, a[0] as i32, a[1], a[2] as i32, ms_deadline(a[3] as i32))
}

fn with_mask(t: &TaskCtx, mask_addr: u64, size: u64, f: impl FnOnce() -> SysResult<u64>) -> SysResult<u64> {
    let mask = readiness::read_sigmask(t, mask_addr, size)?;
    readiness::swap_mask(t, mask);
    let r = f();
    readiness::restore_mask(t, mask.is_some(), &r);
    r
}

fn sys_epoll_pwait(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let t = &*t;
    with_mask(t, a[4], a[5], || wait(t, a[0] as i32, a[1], a[2] as i32, ms_deadline(a[3] as i32)))
}

fn sys_epoll_pwait2(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let t = &*t;
    let deadline = if a[3] == 0 {
        None
    } else {
        let ts: Timespec = t.read_obj(a[3])?;
        Some(Instant::now() + crate::fs::timerfd::to_duration(&ts)?)
    };
    with_mask(t, a[4], a[5], || wait(t, a[0] as i32, a[1], a[2] as i32, deadline))
}
