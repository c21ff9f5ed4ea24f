//! POSIX signals: pending sets, sending, and delivery to the application
//! through an x86-64 `rt_sigframe`, as Linux lays it out.

use crate::fpframe;
use crate::task::{ExitStatus, Task, TaskCtx, ThreadGroup};
use crate::Kernel;
use abi::signal::{self, code, default_action, DefaultAction, SigSet};
use abi::types::{KSigaction, Pod, SigaltStack, Siginfo, SA_NODEFER, SA_ONSTACK, SA_RESETHAND, SA_RESTART, SA_RESTORER, SIG_DFL, SIG_IGN};
use abi::Errno;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Signal dispositions of a process (shared by CLONE_SIGHAND).
#[derive(Clone)]
pub struct SigHandlers {
    pub actions: [KSigaction; 64],
}

impl Default for SigHandlers {
    fn default() -> Self {
        SigHandlers { actions: [KSigaction::default(); 64] }
    }
}

impl SigHandlers {
    pub fn get(&self, signo: i32) -> KSigaction {
        self.actions[(signo - 1) as usize]
    }
    /// execve resets caught signals to their default; ignored stay ignored.
    pub fn reset_for_exec(&mut self) {
        for a in self.actions.iter_mut() {
            if a.handler != SIG_IGN {
                *a = KSigaction::default();
            }
        }
    }
    /// Whether a signal sent now would be discarded.
    fn ignored(&self, signo: i32) -> bool {
        let a = self.get(signo);
        a.handler == SIG_IGN || (a.handler == SIG_DFL && default_action(signo) == DefaultAction::Ignore)
    }
}

/// Pending signals: standard signals coalesce, real-time ones queue.
#[derive(Default, Clone)]
pub struct PendingSet {
    pub set: SigSet,
    infos: Vec<Siginfo>,
}

impl PendingSet {
    pub fn enqueue(&mut self, info: Siginfo) {
        if info.signo < signal::SIGRTMIN && self.set.contains(info.signo) {
            return;
        }
        self.set.add(info.signo);
        self.infos.push(info);
    }

    /// Takes the lowest-numbered pending signal not in `mask`.
    pub fn dequeue(&mut self, mask: SigSet) -> Option<Siginfo> {
        let signo = SigSet(self.set.0 & !mask.0).first()?;
        let i = self.infos.iter().position(|s| s.signo == signo)?;
        let info = self.infos.remove(i);
        if !self.infos.iter().any(|s| s.signo == signo) {
            self.set.remove(signo);
        }
        Some(info)
    }

    pub fn remove(&mut self, signo: i32) {
        self.set.remove(signo);
        self.infos.retain(|s| s.signo != signo);
    }
}

/// Per-thread signal state.
#[derive(Default, Clone)]
pub struct SignalState {
    pub mask: SigSet,
    pub pending: PendingSet,
    pub altstack: SigaltStack,
    /// The mask to restore after a handler run by rt_sigsuspend/ppoll.
    pub saved_mask: Option<SigSet>,
}

/// Takes a pending signal in `set` (thread's own first, then the
/// process's), for signalfd reads and rt_sigtimedwait.
pub fn dequeue_in(t: &Task, set: SigSet) -> Option<Siginfo> {
    let not_set = SigSet(!set.0);
    if let Some(i) = t.signals.lock().unwrap().pending.dequeue(not_set) {
        return Some(i);
    }
    t.tg.state.lock().unwrap().shared_pending.dequeue(not_set)
}

/// The signals pending for `t` (thread and process).
pub fn pending_set(t: &Task) -> SigSet {
    let mine = t.signals.lock().unwrap().pending.set.0;
    SigSet(mine | t.tg.state.lock().unwrap().shared_pending.set.0)
}

/// Whether `t` has a signal it would act on now.
pub fn has_deliverable(t: &Task) -> bool {
    let s = t.signals.lock().unwrap();
    let mask = s.mask;
    if s.pending.set.0 & !mask.0 != 0 {
        return true;
    }
    drop(s);
    let st = t.tg.state.lock().unwrap();
    st.shared_pending.set.0 & !mask.0 != 0 || st.group_exit.is_some()
}

/// Queues a signal for one thread.
pub fn send_to_task(t: &Arc<Task>, info: Siginfo) {
    if prepare_send(&t.kernel, &t.tg, info.signo) {
        t.signals.lock().unwrap().pending.enqueue(info);
        t.tg.signal_events.notify_all();
    }
    t.kick();
}

/// Queues a signal for a process and wakes a thread that can take it.
pub fn send_to_group(kernel: &Kernel, tg: &Arc<ThreadGroup>, info: Siginfo) {
    let queue = prepare_send(kernel, tg, info.signo);
    let threads: Vec<Arc<Task>> = {
        let tree = kernel.tree.lock().unwrap();
        let st = tg.state.lock().unwrap();
        st.threads.iter().filter_map(|t| tree.tasks.get(t).cloned()).collect()
    };
    if queue {
        tg.state.lock().unwrap().shared_pending.enqueue(info);
        tg.signal_events.notify_all();
    }
    // Wake a thread that does not block it (all of them for SIGKILL).
    let target = threads.iter().find(|t| !t.signals.lock().unwrap().mask.contains(info.signo));
    match (info.signo, target) {
        (signal::SIGKILL, _) => threads.iter().for_each(|t| t.kick()),
        (_, Some(t)) => t.kick(),
        (_, None) => {}
    }
}

/// Generation-time effects; returns whether the signal must be queued.
fn prepare_send(kernel: &Kernel, tg: &Arc<ThreadGroup>, signo: i32) -> bool {
    let ignored = {
        let h = tg.handlers.lock().unwrap().clone();
        let ignored = h.lock().unwrap().ignored(signo);
        ignored
    };
    // An ignored signal some thread blocks is still queued (Linux's
    // sig_ignored): the handler may change before it is unblocked, and
    // sigwait or a signalfd may take it.
    let blocked = ignored && {
        let tree = kernel.tree.lock().unwrap();
        let threads = tg.state.lock().unwrap().threads.clone();
        threads.iter().filter_map(|t| tree.tasks.get(t)).any(|t| t.signals.lock().unwrap().mask.contains(signo))
    };
    let mut st = tg.state.lock().unwrap();
    if st.zombie.is_some() || st.group_exit.is_some() {
        return false;
    }
    match signo {
        signal::SIGKILL => {
            st.group_exit = Some(ExitStatus::Signaled { signo, core: false });
            st.stopped = false;
            return false;
        }
        signal::SIGCONT => {
            for s in [signal::SIGSTOP, signal::SIGTSTP, signal::SIGTTIN, signal::SIGTTOU] {
                st.shared_pending.remove(s);
            }
            if st.stopped {
                st.stopped = false;
                st.stop_event = None;
                st.continued = true;
                drop(st);
                // Every stopped thread of the process resumes.
                let threads: Vec<Arc<Task>> = {
                    let tree = kernel.tree.lock().unwrap();
                    let ids = tg.state.lock().unwrap().threads.clone();
                    ids.iter().filter_map(|x| tree.tasks.get(x).cloned()).collect()
                };
                for th in threads {
                    th.kick();
                }
                notify_parent(kernel, tg, code::CLD_CONTINUED, signal::SIGCONT);
                st = tg.state.lock().unwrap();
            }
        }
        signal::SIGSTOP | signal::SIGTSTP | signal::SIGTTIN | signal::SIGTTOU => st.shared_pending.remove(signal::SIGCONT),
        _ => {}
    }
    drop(st);
    !ignored || blocked
}

/// Whether the init of a PID namespace drops `signo` sent to it. As on
/// Linux, a namespace's init receives only the signals it catches or
/// blocks (a blocked one stays queued: sigwait or a signalfd may take
/// it); from an ancestor namespace (`from_ancestor`: the runtime's `kill`,
/// a process of an enclosing container) SIGKILL and SIGSTOP always get
/// through. Any other process receives everything.
pub fn init_drops(kernel: &Kernel, g: &Arc<ThreadGroup>, signo: i32, from_ancestor: bool) -> bool {
    let ns_init = g.container.init() == g.tgid && kernel.tree.lock().unwrap().pids.to_ns(g.container.pidns, g.tgid) == 1;
    if !ns_init || (from_ancestor && (signo == signal::SIGKILL || signo == signal::SIGSTOP)) {
        return false;
    }
    let h = g.handlers.lock().unwrap().clone();
    if h.lock().unwrap().get(signo).handler != SIG_DFL {
        return false;
    }
    let tree = kernel.tree.lock().unwrap();
    let threads = g.state.lock().unwrap().threads.clone();
    !threads.iter().filter_map(|t| tree.tasks.get(t)).any(|t| t.signals.lock().unwrap().mask.contains(signo))
}

/// Tells the parent about a state change of `tg` (SIGCHLD and wait4 wake-up).
pub fn notify_parent(kernel: &Kernel, tg: &Arc<ThreadGroup>, why: i32, status: i32) {
    let ppid = tg.state.lock().unwrap().ppid;
    let parent = kernel.tree.lock().unwrap().groups.get(&ppid).cloned();
    let Some(parent) = parent else { return };
    parent.child_events.notify_all();
    let handlers = parent.handlers.lock().unwrap().clone();
    let act = handlers.lock().unwrap().get(signal::SIGCHLD);
    if (why == code::CLD_STOPPED || why == code::CLD_CONTINUED) && act.flags & abi::types::SA_NOCLDSTOP != 0 {
        return;
    }
    let pid = kernel.tree.lock().unwrap().pids.to_ns(parent.container.pidns, tg.tgid);
    send_to_group(kernel, &parent, Siginfo::child(why, pid, 0, status));
}

/// What the run loop must do after looking at pending signals.
pub enum Disposition {
    /// Nothing (more) to deliver; run application code.
    Run,
    /// The thread must exit (group exit in progress).
    Exit,
}

const FRAME_SIZE: u64 = 8 + UCONTEXT_SIZE + 128;
const UCONTEXT_SIZE: u64 = 304;

/// Delivers pending signals: runs default actions, or builds one handler
/// frame. `restart` is the interrupted system call's errno, if any, so the
/// restart rules can be applied.
pub fn deliver(t: &mut TaskCtx, restart: Option<Errno>) -> Disposition {
    let mut restart = restart;
    loop {
        if t.task.tg.state.lock().unwrap().group_exit.is_some() || t.task.exit_requested.load(Ordering::SeqCst) {
            return Disposition::Exit;
        }
        if t.task.tg.state.lock().unwrap().stopped {
            wait_while_stopped(t);
            continue;
        }
        let info = {
            let mut s = t.task.signals.lock().unwrap();
            let mask = s.mask;
            match s.pending.dequeue(mask) {
                Some(i) => Some(i),
                None => {
                    drop(s);
                    t.task.tg.state.lock().unwrap().shared_pending.dequeue(mask)
                }
            }
        };
        let Some(info) = info else {
            if let Some(e) = restart.take() {
                // No handler ran: the call restarts transparently.
                if is_restart(e) {
                    restart_syscall(t);
                }
            }
            restore_saved_mask(t);
            return Disposition::Run;
        };
        let signo = info.signo;
        let handlers = t.task.tg.handlers.lock().unwrap().clone();
        let act = handlers.lock().unwrap().get(signo);
        if act.handler == SIG_IGN {
            continue;
        }
        if act.handler == SIG_DFL {
            match default_action(signo) {
                DefaultAction::Ignore | DefaultAction::Continue => continue,
                DefaultAction::Stop => {
                    stop_group(t, signo);
                    continue;
                }
                DefaultAction::Terminate | DefaultAction::CoreDump => {
                    let core = default_action(signo) == DefaultAction::CoreDump;
                    group_exit(&t.task, ExitStatus::Signaled { signo, core });
                    return Disposition::Exit;
                }
            }
        }
        // A handler: resolve an interrupted system call first.
        if let Some(e) = restart.take() {
            let again = match e {
                Errno::ERESTARTNOINTR => true,
                Errno::ERESTARTSYS => act.flags & SA_RESTART != 0,
                _ => false,
            };
            if again {
                restart_syscall(t);
            } else if is_restart(e) {
                t.cpu.regs.rax = (-(Errno::EINTR.0 as i64)) as u64;
            }
        }
        if setup_frame(t, &info, &act).is_err() {
            // Linux kills the process with SIGSEGV when the frame cannot be written.
            group_exit(&t.task, ExitStatus::Signaled { signo: signal::SIGSEGV, core: true });
            return Disposition::Exit;
        }
        if act.flags & SA_RESETHAND != 0 {
            handlers.lock().unwrap().actions[(signo - 1) as usize] = KSigaction::default();
        }
        return Disposition::Run;
    }
}

fn is_restart(e: Errno) -> bool {
    matches!(e, Errno::ERESTARTSYS | Errno::ERESTARTNOINTR | Errno::ERESTARTNOHAND | Errno::ERESTART_RESTARTBLOCK)
}

/// Backs up over the `syscall` instruction so it runs again.
fn restart_syscall(t: &mut TaskCtx) {
    t.cpu.regs.rax = t.cpu.regs.orig_rax;
    t.cpu.regs.rip -= 2;
}

fn restore_saved_mask(t: &mut TaskCtx) {
    let mut s = t.task.signals.lock().unwrap();
    if let Some(m) = s.saved_mask.take() {
        s.mask = m;
    }
}

fn stop_group(t: &mut TaskCtx, signo: i32) {
    let others: Vec<Arc<Task>> = {
        let tree = t.task.kernel.tree.lock().unwrap();
        let mut st = t.task.tg.state.lock().unwrap();
        st.stopped = true;
        st.stop_event = Some(signo);
        st.continued = false;
        st.threads.iter().filter(|&&x| x != t.task.tid).filter_map(|x| tree.tasks.get(x).cloned()).collect()
    };
    // Every thread of the process stops: the others notice at their next
    // look at pending work.
    for o in others {
        o.kick();
    }
    notify_parent(&t.task.kernel, &t.task.tg, code::CLD_STOPPED, signo);
    wait_while_stopped(t);
}

/// Sleeps while the process is stopped (until SIGCONT or SIGKILL).
fn wait_while_stopped(t: &TaskCtx) {
    loop {
        let seen = t.task.waiter.seq();
        {
            let st = t.task.tg.state.lock().unwrap();
            if !st.stopped || st.group_exit.is_some() {
                return;
            }
        }
        t.task.waiter.wait(seen, None);
    }
}

/// Starts the exit of every thread of the process.
pub fn group_exit(task: &Arc<Task>, status: ExitStatus) {
    let threads: Vec<Arc<Task>> = {
        // Lock order: the process tree before any process's state.
        let tree = task.kernel.tree.lock().unwrap();
        let mut st = task.tg.state.lock().unwrap();
        if st.group_exit.is_none() {
            st.group_exit = Some(status);
        }
        st.threads.iter().filter_map(|t| tree.tasks.get(t).cloned()).collect()
    };
    for th in threads {
        if th.tid != task.tid {
            th.kick();
        }
    }
}

/// A synchronous fault signal: delivered even if blocked or ignored (the
/// disposition is reset to default then), as Linux's force_sig does.
pub fn force(t: &mut TaskCtx, info: Siginfo) {
    let handlers = t.task.tg.handlers.lock().unwrap().clone();
    let mut h = handlers.lock().unwrap();
    let mut s = t.task.signals.lock().unwrap();
    let blocked = s.mask.contains(info.signo);
    if blocked || h.get(info.signo).handler == SIG_IGN {
        h.actions[(info.signo - 1) as usize] = KSigaction::default();
        s.mask.remove(info.signo);
    }
    s.pending.enqueue(info);
    t.task.attention.store(true, Ordering::SeqCst);
}

fn setup_frame(t: &mut TaskCtx, info: &Siginfo, act: &KSigaction) -> Result<(), Errno> {
    if act.flags & SA_RESTORER == 0 || act.restorer == 0 {
        return Err(Errno::EFAULT);
    }
    t.task.context().load_fp(&mut t.cpu).map_err(|_| Errno::EFAULT)?;
    let (old_mask, alt) = {
        let s = t.task.signals.lock().unwrap();
        (s.saved_mask.unwrap_or(s.mask), s.altstack)
    };
    let regs = t.cpu.regs;
    let on_alt = alt.ss_size > 0 && regs.rsp > alt.ss_sp && regs.rsp <= alt.ss_sp + alt.ss_size;
    let mut sp = if act.flags & SA_ONSTACK != 0 && alt.ss_size > 0 && alt.ss_flags & 2 == 0 && !on_alt {
        alt.ss_sp + alt.ss_size
    } else {
        regs.rsp - 128
    };
    sp = (sp - fpframe::frame_size(&t.cpu.fp)) & !63;
    let fp_addr = sp;
    sp = ((sp - FRAME_SIZE) & !15) - 8;
    let frame = sp;

    t.copy_out(fp_addr, &fpframe::encode(&t.cpu.fp))?;

    let mut uc = Vec::with_capacity(UCONTEXT_SIZE as usize);
    let w = |v: &mut Vec<u8>, x: u64| v.extend_from_slice(&x.to_le_bytes());
    w(&mut uc, if t.cpu.fp.is_xsave() { fpframe::UC_FP_XSTATE } else { 0 }); // uc_flags
    w(&mut uc, 0); // uc_link
    w(&mut uc, alt.ss_sp);
    w(&mut uc, if on_alt { 1 } else if alt.ss_size == 0 { 2 } else { 0 });
    w(&mut uc, alt.ss_size);
    for r in [regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15, regs.rdi, regs.rsi, regs.rbp, regs.rbx, regs.rdx, regs.rax, regs.rcx, regs.rsp, regs.rip, regs.eflags] {
        w(&mut uc, r);
    }
    w(&mut uc, 0x33 | (0x2b << 48)); // cs, gs, fs, ss
    w(&mut uc, 0); // err
    w(&mut uc, 0); // trapno
    w(&mut uc, old_mask.0); // oldmask
    w(&mut uc, if info.signo == signal::SIGSEGV || info.signo == signal::SIGBUS { info.addr() } else { 0 }); // cr2
    w(&mut uc, fp_addr);
    uc.resize(uc.len() + 64, 0); // reserved1
    w(&mut uc, old_mask.0); // uc_sigmask
    debug_assert_eq!(uc.len() as u64, UCONTEXT_SIZE);

    let mut bytes = act.restorer.to_le_bytes().to_vec();
    bytes.extend_from_slice(&uc);
    bytes.extend_from_slice(info.as_bytes());
    t.copy_out(frame, &bytes)?;

    let r = &mut t.cpu.regs;
    r.rsp = frame;
    r.rip = act.handler;
    r.rdi = info.signo as u64;
    r.rsi = frame + 8 + UCONTEXT_SIZE;
    r.rdx = frame + 8;
    r.rax = 0;
    r.eflags &= !(0x400 | 0x100); // DF, TF
    t.cpu.fp = platform::FpState::initial();
    t.cpu.fp_loaded = true;
    t.cpu.fp_dirty = true;

    let mut s = t.task.signals.lock().unwrap();
    let mut m = SigSet(s.mask.0 | act.mask);
    if act.flags & SA_NODEFER == 0 {
        m.add(info.signo);
    }
    s.mask = m.blockable();
    s.saved_mask = None;
    Ok(())
}

/// rt_sigreturn: restores the context saved by `setup_frame`.
pub fn sigreturn(t: &mut TaskCtx) -> Result<u64, Errno> {
    let uc_addr = t.cpu.regs.rsp; // the handler's `ret` popped pretcode
    let uc = t.copy_in(uc_addr, UCONTEXT_SIZE as usize)?;
    let q = |i: usize| u64::from_le_bytes(uc[i..i + 8].try_into().unwrap());
    let mc = 40;
    let g = |n: usize| q(mc + n * 8);
    let r = &mut t.cpu.regs;
    r.r8 = g(0);
    r.r9 = g(1);
    r.r10 = g(2);
    r.r11 = g(3);
    r.r12 = g(4);
    r.r13 = g(5);
    r.r14 = g(6);
    r.r15 = g(7);
    r.rdi = g(8);
    r.rsi = g(9);
    r.rbp = g(10);
    r.rbx = g(11);
    r.rdx = g(12);
    r.rax = g(13);
    r.rcx = g(14);
    r.rsp = g(15);
    r.rip = g(16);
    // Only the flags an application may change (AC, OF, DF, TF, SF, ZF, AF, PF, CF, RF).
    const USER_FLAGS: u64 = 0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000;
    r.eflags = (r.eflags & !USER_FLAGS) | (g(17) & USER_FLAGS);
    r.orig_rax = u64::MAX; // never restart after sigreturn
    let rax = r.rax;
    let fp_addr = q(mc + 184);
    let mask = SigSet(q(mc + 256));
    if fp_addr != 0 {
        // The live state only tells the image size the platform uses.
        t.task.context().load_fp(&mut t.cpu).map_err(|_| Errno::EFAULT)?;
        t.cpu.fp = fpframe::decode(t, fp_addr, &t.cpu.fp)?;
        t.cpu.fp_loaded = true;
        t.cpu.fp_dirty = true;
    }
    t.task.signals.lock().unwrap().mask = mask.blockable();
    Ok(rax)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_signals_coalesce_realtime_queue() {
        let mut p = PendingSet::default();
        p.enqueue(Siginfo::from_user(signal::SIGTERM, 0, 1, 0));
        p.enqueue(Siginfo::from_user(signal::SIGTERM, 0, 2, 0));
        p.enqueue(Siginfo::from_user(40, 0, 3, 0));
        p.enqueue(Siginfo::from_user(40, 0, 4, 0));
        assert_eq!(p.dequeue(SigSet::default()).unwrap().pid(), 1);
        assert!(p.dequeue(SigSet::default()).unwrap().signo == 40);
        assert_eq!(p.dequeue(SigSet::default()).unwrap().pid(), 4);
        assert!(p.dequeue(SigSet::default()).is_none());
    }

    #[test]
    fn masked_signals_stay_pending() {
        let mut p = PendingSet::default();
        p.enqueue(Siginfo::from_user(signal::SIGINT, 0, 1, 0));
        let mut m = SigSet::default();
        m.add(signal::SIGINT);
        assert!(p.dequeue(m).is_none());
        assert!(p.dequeue(SigSet::default()).is_some());
    }

    #[test]
    fn frame_layout_matches_linux() {
        assert_eq!(FRAME_SIZE, 440);
        assert_eq!(std::mem::size_of::<Siginfo>(), 128);
    }
}
