//! Scheduling system calls: nice values, policies, priorities, CPU
//! affinity, yield and getcpu. The attributes themselves, and their
//! inheritance at clone, are the kernel's ([`crate::sched`]).

use super::{Args, Entry};
use crate::sched::{SCHED_BATCH, SCHED_FIFO, SCHED_IDLE, SCHED_OTHER, SCHED_RESET_ON_FORK, SCHED_RR};
use crate::sys;
use crate::task::{Task, TaskCtx};
use crate::SysResult;
use abi::Errno;
use std::sync::Arc;

pub const SYSCALLS: &[Entry] = &[
    sys!(SCHED_YIELD, sys_sched_yield, []),
    sys!(SCHED_GETAFFINITY, sys_sched_getaffinity, [Int, Int, Hex]),
    sys!(SCHED_SETAFFINITY, sys_sched_setaffinity, [Int, Int, Hex], partial "the mask is kept for sched_getaffinity, not applied: tasks run on every CPU"),
    sys!(GETPRIORITY, sys_getpriority, [Int, Int]),
    sys!(SETPRIORITY, sys_setpriority, [Int, Int, Int], partial "nice values are kept, not applied: the host schedules every task alike"),
    sys!(SCHED_GETSCHEDULER, sys_sched_getscheduler, [Int]),
    sys!(SCHED_SETSCHEDULER, sys_sched_setscheduler, [Int, Int, Hex], partial "policies are kept, not applied: the host schedules every task alike"),
    sys!(SCHED_GETPARAM, sys_sched_getparam, [Int, Hex]),
    sys!(SCHED_SETPARAM, sys_sched_setparam, [Int, Hex], partial "priorities are kept, not applied"),
    sys!(SCHED_GET_PRIORITY_MAX, sys_sched_get_priority_max, [Int]),
    sys!(SCHED_GET_PRIORITY_MIN, sys_sched_get_priority_min, [Int]),
    sys!(SCHED_RR_GET_INTERVAL, sys_sched_rr_get_interval, [Int, Hex]),
    sys!(GETCPU, sys_getcpu, [Hex, Hex, Hex]),
];

const PRIO_PROCESS: u64 = 0;
const PRIO_PGRP: u64 = 1;
const PRIO_USER: u64 = 2;

/// The round-robin time slice Linux reports (its RR_TIMESLICE, 100 ms).
const RR_INTERVAL_NS: i64 = 100_000_000;

fn sys_sched_yield(_t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    std::thread::yield_now();
    Ok(0)
}

/// The bytes of a CPU mask covering the sandbox's CPUs.
fn mask_len(t: &TaskCtx) -> usize {
    (t.kernel().config.cpus as usize).div_ceil(64) * 8
}

fn sys_sched_getaffinity(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (len, need) = (a[1] as usize, mask_len(t));
    if len < need || len % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    let chosen = target(t, a[0] as i32)?.sched.lock().unwrap().affinity;
    let mut mask = vec![0u8; need];
    for c in 0..t.kernel().config.cpus as usize {
        if chosen == 0 || (c < 64 && chosen & (1 << c) != 0) {
            mask[c / 8] |= 1 << (c % 8);
        }
    }
    t.copy_out(a[2], &mask)?;
    Ok(need as u64)
}

fn sys_sched_setaffinity(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let task = target(t, a[0] as i32)?;
    may_change(t, &task)?;
    let mask = t.copy_in(a[2], (a[1] as usize).min(mask_len(t)))?;
    let cpus = t.kernel().config.cpus as usize;
    let named: Vec<usize> = (0..cpus).filter(|&c| mask.get(c / 8).is_some_and(|b| b & (1 << (c % 8)) != 0)).collect();
    // Linux refuses a mask naming none of the CPUs the task may use.
    if named.is_empty() {
        return Err(Errno::EINVAL);
    }
    // Kept for sched_getaffinity; more than 64 CPUs are always all of them.
    let all = named.len() == cpus || cpus > 64;
    task.sched.lock().unwrap().affinity = if all { 0 } else { named.iter().fold(0, |m, &c| m | 1 << c) };
    Ok(0)
}

/// The thread `tid` names (0: the caller), as sched_* calls look it up.
fn target(t: &TaskCtx, tid: i32) -> SysResult<Arc<Task>> {
    if tid < 0 {
        return Err(Errno::EINVAL);
    }
    if tid == 0 {
        return Ok(t.task.clone());
    }
    t.pid_named(tid).and_then(|g| t.kernel().task(g)).ok_or(Errno::ESRCH)
}

/// Linux's check for changing another thread's scheduling: the caller's
/// effective uid is the target's real or effective uid, or it is privileged.
fn may_change(t: &TaskCtx, task: &Task) -> SysResult<()> {
    let me = t.creds();
    let them = task.creds.lock().unwrap().uid;
    if me.capable(crate::creds::cap::SYS_NICE) || me.uid.effective == them.real || me.uid.effective == them.effective {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// The threads a getpriority/setpriority `which`/`who` pair names.
fn priority_targets(t: &TaskCtx, which: u64, who: i32) -> SysResult<Vec<Arc<Task>>> {
    let kernel = t.kernel();
    let tasks: Vec<Arc<Task>> = match which {
        PRIO_PROCESS => vec![target(t, who)?],
        PRIO_PGRP => {
            let pgid = if who == 0 { t.task.tg.state.lock().unwrap().pgid } else { t.pid_named(who).ok_or(Errno::ESRCH)? };
            let tree = kernel.tree.lock().unwrap();
            let groups: Vec<_> = tree.groups.values().filter(|g| g.state.lock().unwrap().pgid == pgid).cloned().collect();
            groups.iter().flat_map(|g| g.state.lock().unwrap().threads.clone()).filter_map(|tid| tree.tasks.get(&tid).cloned()).collect()
        }
        PRIO_USER => {
            let uid = if who == 0 { t.creds().uid.real } else { who as u32 };
            let tree = kernel.tree.lock().unwrap();
            tree.tasks.values().filter(|task| task.creds.lock().unwrap().uid.real == uid).cloned().collect()
        }
        _ => return Err(Errno::EINVAL),
    };
    // Only what the caller's PID namespace can see.
    let visible: Vec<Arc<Task>> = tasks.into_iter().filter(|task| Arc::ptr_eq(&task.tg, &t.task.tg) || t.pid_seen(task.tid) != 0).collect();
    if visible.is_empty() {
        return Err(Errno::ESRCH);
    }
    Ok(visible)
}

fn sys_getpriority(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let tasks = priority_targets(t, a[0], a[1] as i32)?;
    let best = tasks.iter().map(|task| task.sched.lock().unwrap().nice).min().unwrap_or(0);
    // The raw syscall returns 20 - nice so that it is never negative.
    Ok((20 - best) as u64)
}

fn sys_setpriority(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let nice = (a[2] as i32).clamp(-20, 19);
    let privileged = t.creds().capable(crate::creds::cap::SYS_NICE);
    let mut result = Ok(0);
    for task in priority_targets(t, a[0], a[1] as i32)? {
        if let Err(e) = may_change(t, &task) {
            result = Err(e);
            continue;
        }
        let mut sched = task.sched.lock().unwrap();
        // Favouring a task more needs CAP_SYS_NICE (RLIMIT_NICE is 0).
        if nice < sched.nice && !privileged {
            result = Err(Errno::EACCES);
            continue;
        }
        sched.nice = nice;
    }
    result
}

fn sys_sched_getscheduler(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let task = target(t, a[0] as i32)?;
    let policy = task.sched.lock().unwrap().policy;
    Ok(policy as u64)
}

/// Checks `policy` (or the task's own with None) and `priority` against
/// Linux's rules and stores them.
fn set_scheduler(t: &TaskCtx, tid: i32, policy: Option<u32>, param: u64) -> SysResult<u64> {
    if param == 0 {
        return Err(Errno::EINVAL);
    }
    let task = target(t, tid)?;
    let priority: i32 = t.read_obj(param)?;
    let policy = policy.unwrap_or_else(|| task.sched.lock().unwrap().policy);
    let realtime = match policy & !SCHED_RESET_ON_FORK {
        SCHED_FIFO | SCHED_RR => true,
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => false,
        _ => return Err(Errno::EINVAL),
    };
    let valid = if realtime { (1..=99).contains(&priority) } else { priority == 0 };
    if !valid {
        return Err(Errno::EINVAL);
    }
    may_change(t, &task)?;
    // RLIMIT_RTPRIO is 0: only a privileged caller gets a real-time policy.
    if realtime && !t.creds().capable(crate::creds::cap::SYS_NICE) {
        return Err(Errno::EPERM);
    }
    let mut sched = task.sched.lock().unwrap();
    sched.policy = policy;
    sched.priority = priority as u32;
    Ok(0)
}

fn sys_sched_setscheduler(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let policy = i32::try_from(a[1] as i64).ok().filter(|p| *p >= 0).ok_or(Errno::EINVAL)?;
    set_scheduler(t, a[0] as i32, Some(policy as u32), a[2])
}

fn sys_sched_setparam(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    set_scheduler(t, a[0] as i32, None, a[1])
}

fn sys_sched_getparam(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if a[1] == 0 {
        return Err(Errno::EINVAL);
    }
    let task = target(t, a[0] as i32)?;
    let priority = task.sched.lock().unwrap().priority as i32;
    t.write_obj(a[1], &priority)?;
    Ok(0)
}

/// The static priorities `policy` allows.
fn priority_range(policy: u64) -> SysResult<(u64, u64)> {
    match policy as u32 {
        SCHED_FIFO | SCHED_RR => Ok((1, 99)),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Ok((0, 0)),
        _ => Err(Errno::EINVAL),
    }
}

fn sys_sched_get_priority_max(_t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    Ok(priority_range(a[0])?.1)
}

fn sys_sched_get_priority_min(_t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    Ok(priority_range(a[0])?.0)
}

fn sys_sched_rr_get_interval(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let task = target(t, a[0] as i32)?;
    // SCHED_FIFO runs without a slice: Linux reports 0 for it.
    let ns = if task.sched.lock().unwrap().policy & !SCHED_RESET_ON_FORK == SCHED_FIFO { 0 } else { RR_INTERVAL_NS };
    let ts = abi::types::Timespec { tv_sec: ns / 1_000_000_000, tv_nsec: ns % 1_000_000_000 };
    t.write_obj(a[1], &ts)?;
    Ok(0)
}

fn sys_getcpu(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if a[0] != 0 {
        t.copy_out(a[0], &0u32.to_le_bytes())?;
    }
    if a[1] != 0 {
        t.copy_out(a[1], &0u32.to_le_bytes())?;
    }
    Ok(0)
}
