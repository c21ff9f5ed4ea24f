//! Signal system calls: dispositions, masks, sending, waiting, sigreturn.

use super::{Args, Entry};
use crate::sys;
use crate::task::{TaskCtx, ThreadGroup};
use crate::SysResult;
use abi::signal::{self, code, SigSet};
use abi::types::{KSigaction, SigaltStack, Siginfo};
use abi::Errno;
use std::sync::Arc;

pub const SYSCALLS: &[Entry] = &[
    sys!(RT_SIGACTION, sys_rt_sigaction, [Int, Hex, Hex, Int]),
    sys!(RT_SIGPROCMASK, sys_rt_sigprocmask, [Int, Hex, Hex, Int]),
    sys!(RT_SIGRETURN, sys_rt_sigreturn, []),
    sys!(RT_SIGPENDING, sys_rt_sigpending, [Hex, Int]),
    sys!(RT_SIGSUSPEND, sys_rt_sigsuspend, [Hex, Int]),
    sys!(PAUSE, sys_pause, []),
    sys!(SIGALTSTACK, sys_sigaltstack, [Hex, Hex]),
    sys!(KILL, sys_kill, [Int, Int]),
    sys!(TKILL, sys_tkill, [Int, Int]),
    sys!(TGKILL, sys_tgkill, [Int, Int, Int]),
    sys!(RT_SIGTIMEDWAIT, sys_rt_sigtimedwait, [Hex, Hex, Hex, Int]),
    sys!(RT_SIGQUEUEINFO, sys_rt_sigqueueinfo, [Int, Int, Hex]),
];

fn check_sigsetsize(n: u64) -> SysResult<()> {
    if n != 8 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn valid_signo(s: i32) -> SysResult<()> {
    if !(1..=signal::NSIG).contains(&s) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn sys_rt_sigaction(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let signo = a[0] as i32;
    valid_signo(signo)?;
    check_sigsetsize(a[3])?;
    let new = if a[1] != 0 { Some(t.read_obj::<KSigaction>(a[1])?) } else { None };
    if new.is_some() && (signo == signal::SIGKILL || signo == signal::SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let handlers = t.task.tg.handlers.lock().unwrap().clone();
    let old = {
        let mut h = handlers.lock().unwrap();
        let old = h.get(signo);
        if let Some(mut n) = new {
            n.mask = SigSet(n.mask).blockable().0;
            h.actions[(signo - 1) as usize] = n;
        }
        old
    };
    // Setting SIG_IGN discards what is pending (POSIX).
    if let Some(n) = new {
        if n.handler == abi::types::SIG_IGN || (n.handler == abi::types::SIG_DFL && signal::default_action(signo) == signal::DefaultAction::Ignore) {
            t.task.tg.state.lock().unwrap().shared_pending.remove(signo);
            t.task.signals.lock().unwrap().pending.remove(signo);
        }
    }
    if a[2] != 0 {
        t.write_obj(a[2], &old)?;
    }
    Ok(0)
}

fn sys_rt_sigprocmask(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    check_sigsetsize(a[3])?;
    let how = a[0] as i32;
    let set = if a[1] != 0 { Some(SigSet(t.read_obj::<u64>(a[1])?)) } else { None };
    let old = {
        let mut s = t.task.signals.lock().unwrap();
        let old = s.mask;
        if let Some(set) = set {
            s.mask = match how {
                libc::SIG_BLOCK => SigSet(old.0 | set.0),
                libc::SIG_UNBLOCK => SigSet(old.0 & !set.0),
                libc::SIG_SETMASK => set,
                _ => return Err(Errno::EINVAL),
            }
            .blockable();
        }
        old
    };
    if a[2] != 0 {
        t.write_obj(a[2], &old.0)?;
    }
    Ok(0)
}

fn sys_rt_sigreturn(t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    match crate::signal::sigreturn(t) {
        Ok(rax) => Ok(rax),
        Err(_) => {
            crate::signal::force(t, Siginfo::fault(signal::SIGSEGV, code::SI_KERNEL, 0));
            Ok(t.cpu.regs.rax)
        }
    }
}

fn sys_rt_sigpending(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    check_sigsetsize(a[1])?;
    let mine = t.task.signals.lock().unwrap().pending.set.0;
    let shared = t.task.tg.state.lock().unwrap().shared_pending.set.0;
    let mask = t.task.signals.lock().unwrap().mask.0;
    t.write_obj(a[0], &((mine | shared) & mask))?;
    Ok(0)
}

fn sys_rt_sigsuspend(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    check_sigsetsize(a[1])?;
    let mask = SigSet(t.read_obj::<u64>(a[0])?).blockable();
    {
        let mut s = t.task.signals.lock().unwrap();
        s.saved_mask = Some(s.mask);
        s.mask = mask;
    }
    wait_for_signal(t)
}

fn sys_pause(t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    wait_for_signal(t)
}

/// Sleeps until a signal is delivered; the call then fails with EINTR
/// (ERESTARTNOHAND: restarted if no handler runs).
fn wait_for_signal(t: &mut TaskCtx) -> SysResult<u64> {
    loop {
        match t.block(&[], None) {
            Err(e) if e == Errno::ERESTARTSYS => return Err(Errno::ERESTARTNOHAND),
            Err(e) => return Err(e),
            Ok(()) => {}
        }
    }
}

fn sys_sigaltstack(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let new = if a[0] != 0 { Some(t.read_obj::<SigaltStack>(a[0])?) } else { None };
    let rsp = t.cpu.regs.rsp;
    let old = t.task.signals.lock().unwrap().altstack;
    let on = old.ss_size > 0 && rsp > old.ss_sp && rsp <= old.ss_sp + old.ss_size;
    if a[1] != 0 {
        let mut o = old;
        o.ss_flags = if on { 1 } else if old.ss_size == 0 { 2 } else { 0 };
        t.write_obj(a[1], &o)?;
    }
    if let Some(n) = new {
        if on {
            return Err(Errno::EPERM);
        }
        const SS_DISABLE: i32 = 2;
        let st = if n.ss_flags & SS_DISABLE != 0 {
            SigaltStack::default()
        } else {
            if n.ss_flags & !(SS_DISABLE | (1 << 31)) != 0 {
                return Err(Errno::EINVAL);
            }
            if n.ss_size < 2048 {
                return Err(Errno::ENOMEM);
            }
            SigaltStack { ss_flags: 0, ..n }
        };
        t.task.signals.lock().unwrap().altstack = st;
    }
    Ok(0)
}

fn sys_kill(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (pid, signo) = (a[0] as i32, a[1] as i32);
    if signo != 0 {
        valid_signo(signo)?;
    }
    let kernel = t.kernel().clone();
    let me = t.tgid();
    let ns = t.pidns();
    let targets: Vec<Arc<ThreadGroup>> = {
        let tree = kernel.tree.lock().unwrap();
        // Only processes of the caller's PID namespace (and those below it).
        let alive = |g: &&Arc<ThreadGroup>| g.state.lock().unwrap().zombie.is_none() && tree.pids.visible(ns, g.tgid);
        let in_group = |pg: Option<i32>| {
            tree.groups.values().filter(alive).filter(|g| Some(g.state.lock().unwrap().pgid) == pg).cloned().collect()
        };
        match pid {
            p if p > 0 => tree.pids.from_ns(ns, p).and_then(|p| tree.groups.get(&p)).into_iter().cloned().collect(),
            0 => in_group(Some(t.task.tg.state.lock().unwrap().pgid)),
            -1 => tree.groups.values().filter(alive).filter(|g| tree.pids.to_ns(ns, g.tgid) != 1 && g.tgid != me).cloned().collect(),
            p => in_group(tree.pids.from_ns(ns, -p)),
        }
    };
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    // Only processes the sender's credentials may signal (EPERM if none).
    let me_creds = t.creds();
    let targets: Vec<Arc<ThreadGroup>> = targets.into_iter().filter(|g| may_signal(&kernel, &me_creds, g)).collect();
    if targets.is_empty() {
        return Err(Errno::EPERM);
    }
    if signo == 0 {
        return Ok(0);
    }
    for g in targets {
        // A PID namespace's init only receives signals it has a handler for
        // (see init_drops); a process may always signal itself.
        if g.tgid != me && crate::signal::init_drops(&kernel, &g, signo, ns != g.container.pidns) {
            continue;
        }
        crate::signal::send_to_group(&kernel, &g, Siginfo::from_user(signo, code::SI_USER, sender_seen_by(&kernel, me, &g), 0));
    }
    Ok(0)
}

/// The sender's pid as the receiving process sees it.
fn sender_seen_by(kernel: &crate::Kernel, sender: i32, receiver: &ThreadGroup) -> i32 {
    kernel.tree.lock().unwrap().pids.to_ns(receiver.container.pidns, sender)
}

/// Whether credentials `c` may signal process `g` (its first thread's ids).
fn may_signal(kernel: &crate::Kernel, c: &crate::creds::Creds, g: &Arc<ThreadGroup>) -> bool {
    let tree = kernel.tree.lock().unwrap();
    let first = g.state.lock().unwrap().threads.first().copied();
    match first.and_then(|tid| tree.tasks.get(&tid)) {
        Some(task) => c.may_signal(&task.creds.lock().unwrap()),
        // A zombie: signalling it is allowed and does nothing.
        None => true,
    }
}

fn send_to_thread(t: &TaskCtx, tgid: Option<i32>, tid: i32, signo: i32) -> SysResult<u64> {
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    if signo != 0 {
        valid_signo(signo)?;
    }
    let target = t.pid_named(tid).and_then(|tid| t.kernel().task(tid)).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| t.pid_named(g) != Some(target.tgid())) {
        return Err(Errno::ESRCH);
    }
    if !t.creds().may_signal(&target.creds.lock().unwrap()) {
        return Err(Errno::EPERM);
    }
    if signo != 0 {
        let from = sender_seen_by(t.kernel(), t.tgid(), &target.tg);
        crate::signal::send_to_task(&target, Siginfo::from_user(signo, code::SI_TKILL, from, 0));
    }
    Ok(0)
}

fn sys_tkill(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    send_to_thread(t, None, a[0] as i32, a[1] as i32)
}

fn sys_tgkill(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if (a[0] as i32) <= 0 {
        return Err(Errno::EINVAL);
    }
    send_to_thread(t, Some(a[0] as i32), a[1] as i32, a[2] as i32)
}

/// rt_sigtimedwait(2): takes a pending signal in `set` (normally blocked
/// ones), waiting up to the timeout for one to arrive.
fn sys_rt_sigtimedwait(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    check_sigsetsize(a[3])?;
    let set = SigSet(t.read_obj::<u64>(a[0])?).blockable();
    let deadline = if a[2] != 0 {
        let ts: abi::types::Timespec = t.read_obj(a[2])?;
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Some(std::time::Instant::now() + std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    } else {
        None
    };
    let tg = t.task.tg.clone();
    loop {
        let seen = t.prepare_block(&[&tg.signal_events]);
        if let Some(info) = crate::signal::dequeue_in(&t.task, set) {
            tg.signal_events.unregister(&t.task.waiter);
            if a[1] != 0 {
                t.write_obj(a[1], &info)?;
            }
            return Ok(info.signo as u64);
        }
        match t.block_since(&[&tg.signal_events], seen, deadline) {
            Ok(()) => {}
            Err(e) if e == Errno::ETIMEDOUT => return Err(Errno::EAGAIN),
            // Another (unblocked) signal arrived: it interrupts the wait.
            Err(e) if e == Errno::ERESTARTSYS => return Err(Errno::EINTR),
            Err(e) => return Err(e),
        }
    }
}

fn sys_rt_sigqueueinfo(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (pid, signo) = (a[0] as i32, a[1] as i32);
    valid_signo(signo)?;
    let mut info: Siginfo = t.read_obj(a[2])?;
    // Applications may not forge kernel-originated codes (Linux: EPERM).
    if info.code >= 0 || info.code == code::SI_TKILL {
        return Err(Errno::EPERM);
    }
    info.signo = signo;
    let tg = t.pid_named(pid).and_then(|p| t.kernel().tree.lock().unwrap().groups.get(&p).cloned()).ok_or(Errno::ESRCH)?;
    crate::signal::send_to_group(t.kernel(), &tg, info);
    Ok(0)
}
