//! Tasks (threads) and thread groups (processes).
//!
//! The process tree is guarded by [`Kernel::tree`](crate::Kernel) (Linux's
//! tasklist lock), each process's exit and signal state by its
//! `ThreadGroup::state`, each thread's signal state by `Task::signals`;
//! everything a task's own thread alone touches (its CPU state) lives in
//! [`TaskCtx`], on that thread.
//!
//! Lock order, never inverted: `Kernel::tree` → `ThreadGroup::state` →
//! `Task::signals`. Code holding a process's state never takes the tree.

use crate::fs::{FdTable, FsContext};
use crate::mm::MemoryManager;
use crate::signal::{SigHandlers, SignalState};
use crate::wait::{WaitQueue, Waiter};
use crate::{Kernel, SysResult};
use abi::signal::SigSet;
use abi::types::Pod;
use abi::Errno;
use crate::mm::FaultError;
use abi::signal::{code, SIGSEGV};
use abi::types::Siginfo;
use platform::{Context, CpuState, Exit};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How a process ended, as `wait4` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled { signo: i32, core: bool },
}

impl ExitStatus {
    /// The `wstatus` word of `wait4`.
    pub fn wstatus(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => (c & 0xff) << 8,
            ExitStatus::Signaled { signo, core } => signo | if core { 0x80 } else { 0 },
        }
    }
}

/// Per-process state, guarded by the kernel's tree lock.
pub struct ProcessState {
    /// Thread group id of the parent; 0 for init.
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub children: Vec<i32>,
    /// Live threads.
    pub threads: Vec<i32>,
    /// Set once the whole group is exiting (exit_group, fatal signal).
    pub group_exit: Option<ExitStatus>,
    /// Set when the last thread has gone: the process is a zombie until reaped.
    pub zombie: Option<ExitStatus>,
    /// Signals sent to the process as a whole.
    pub shared_pending: crate::signal::PendingSet,
    /// Stopped by a stop signal, waiting for SIGCONT.
    pub stopped: bool,
    /// A stop not yet reported to the parent's wait (the stop signal).
    pub stop_event: Option<i32>,
    /// A continue not yet reported to the parent's wait (WCONTINUED).
    pub continued: bool,
}

pub struct ThreadGroup {
    /// Global pid (see [`crate::container`]).
    pub tgid: i32,
    pub rlimits: Mutex<crate::rlimit::Limits>,
    /// The container the process belongs to (inherited by fork).
    pub container: Arc<crate::container::Container>,
    pub state: Mutex<ProcessState>,
    /// Woken when a child changes state (for wait4).
    pub child_events: WaitQueue,
    pub handlers: Mutex<Arc<Mutex<SigHandlers>>>,
    /// argv as given to execve, for /proc/PID/cmdline.
    pub cmdline: Mutex<Vec<u8>>,
    /// Absolute path of the executable, for /proc/PID/exe.
    pub exe: Mutex<Vec<u8>>,
    pub start_time: Instant,
    /// Woken when a vfork child execs or exits.
    pub vfork_done: WaitQueue,
    /// Woken whenever a signal is queued for the process or one of its
    /// threads (signalfd readiness).
    pub signal_events: WaitQueue,
    /// ITIMER_REAL / alarm(2): SIGALRM on expiry.
    pub real_timer: Arc<crate::time::SignalTimer>,
    /// ITIMER_VIRTUAL (SIGVTALRM) and ITIMER_PROF (SIGPROF).
    pub virtual_timer: crate::time::CpuTimer,
    pub prof_timer: crate::time::CpuTimer,
    /// CPU time of threads that have exited.
    pub exited_times: crate::time::CpuTimes,
    /// CPU time of reaped children (RUSAGE_CHILDREN, times' cutime).
    pub children_times: crate::time::CpuTimes,
    /// personality(2)'s execution domain and flags (inherited by fork).
    pub personality: std::sync::atomic::AtomicU32,
    /// The membarrier commands the process registered for (MEMBARRIER_CMD_REGISTER_*).
    pub membarrier_registered: std::sync::atomic::AtomicU32,
}

pub struct Task {
    pub kernel: Arc<Kernel>,
    pub tid: i32,
    pub tg: Arc<ThreadGroup>,
    /// None once the process has exited (its address space is gone).
    pub mm: Mutex<Option<Arc<MemoryManager>>>,
    pub files: Mutex<Arc<FdTable>>,
    pub fs: Mutex<Arc<Mutex<FsContext>>>,
    pub waiter: Arc<Waiter>,
    /// Replaced on execve (a new address space needs a fresh context).
    pub context: Mutex<Arc<dyn Context>>,
    /// Per-thread signal state (mask, pending, altstack); guarded by its own
    /// lock, taken after the tree lock when both are needed.
    pub signals: Mutex<SignalState>,
    /// Fast check for "something for this task to look at before it runs
    /// application code again" (a signal, an exit request).
    pub attention: AtomicBool,
    /// Set when this one thread must exit (another thread called execve).
    pub exit_requested: AtomicBool,
    pub clear_child_tid: AtomicU64,
    /// CPU time of this thread.
    pub times: crate::time::CpuTimes,
    /// User and group ids (per thread, as in Linux; inherited by clone).
    pub creds: Mutex<crate::creds::Creds>,
    /// Nice value and scheduling policy (inherited by clone).
    pub sched: Mutex<crate::sched::SchedAttrs>,
    /// set_robust_list(2): the head of the thread's robust futex list.
    pub robust_list: AtomicU64,
    pub comm: Mutex<[u8; 16]>,
    /// The CPU state a new task starts with; taken by its host thread.
    pub initial_cpu: Mutex<Option<CpuState>>,
    /// Set when this task was created by vfork and has not yet exec'd or exited.
    pub vfork_parent: Mutex<Option<Arc<ThreadGroup>>>,
}

impl Task {
    pub fn tgid(&self) -> i32 {
        self.tg.tgid
    }

    pub fn mm(&self) -> Option<Arc<MemoryManager>> {
        self.mm.lock().unwrap().clone()
    }

    pub fn context(&self) -> Arc<dyn Context> {
        self.context.lock().unwrap().clone()
    }

    pub fn files(&self) -> Arc<FdTable> {
        self.files.lock().unwrap().clone()
    }

    pub fn fs(&self) -> Arc<Mutex<FsContext>> {
        self.fs.lock().unwrap().clone()
    }

    pub fn comm_string(&self) -> String {
        let c = self.comm.lock().unwrap();
        let n = c.iter().position(|&b| b == 0).unwrap_or(16);
        String::from_utf8_lossy(&c[..n]).into_owned()
    }

    pub fn set_comm(&self, name: &[u8]) {
        let mut c = [0u8; 16];
        let n = name.len().min(15);
        c[..n].copy_from_slice(&name[..n]);
        *self.comm.lock().unwrap() = c;
    }

    /// Makes the task look at its pending work: wakes it if blocked in the
    /// sentry and kicks it out of application code if running there.
    pub fn kick(&self) {
        self.attention.store(true, Ordering::SeqCst);
        self.waiter.notify();
        self.context().interrupt();
    }
}

/// The running task, owned by its host thread: the task plus its CPU state.
/// System call handlers get `&mut TaskCtx`.
pub struct TaskCtx {
    pub task: Arc<Task>,
    pub cpu: CpuState,
    /// Set by exit(2): this thread leaves the run loop.
    pub exit: Option<ExitStatus>,
}

impl TaskCtx {
    pub fn kernel(&self) -> &Arc<Kernel> {
        &self.task.kernel
    }
    pub fn tid(&self) -> i32 {
        self.task.tid
    }
    pub fn tgid(&self) -> i32 {
        self.task.tg.tgid
    }
    /// The PID namespace the task runs in.
    pub fn pidns(&self) -> crate::container::PidNs {
        self.task.tg.container.pidns
    }
    /// Global pid `pid` as this task sees it (0 when outside its namespace).
    pub fn pid_seen(&self, pid: i32) -> i32 {
        self.kernel().tree.lock().unwrap().pids.to_ns(self.pidns(), pid)
    }
    /// The global pid that `pid` names for this task, if any.
    pub fn pid_named(&self, pid: i32) -> Option<i32> {
        self.kernel().tree.lock().unwrap().pids.from_ns(self.pidns(), pid)
    }
    /// The memory map; a running task always has one.
    pub fn mm(&self) -> Arc<MemoryManager> {
        self.task.mm().expect("running task without memory")
    }
    pub fn files(&self) -> Arc<FdTable> {
        self.task.files()
    }
    pub fn fs(&self) -> Arc<Mutex<FsContext>> {
        self.task.fs()
    }

    /// Reads `len` bytes of application memory at `addr` (EFAULT if any
    /// byte is not readable).
    pub fn copy_in(&self, addr: u64, len: usize) -> SysResult<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.mm().copy_in(addr, &mut v)?;
        Ok(v)
    }
    pub fn copy_in_into(&self, addr: u64, buf: &mut [u8]) -> SysResult<()> {
        self.mm().copy_in(addr, buf)
    }
    /// Writes `data` to application memory at `addr` (EFAULT if any byte is
    /// not writable).
    pub fn copy_out(&self, addr: u64, data: &[u8]) -> SysResult<()> {
        self.mm().copy_out(addr, data)
    }
    /// EFAULT unless `[addr, addr+len)` is writable application memory.
    pub fn check_writable(&self, addr: u64, len: usize) -> SysResult<()> {
        self.mm().check(addr, len, platform::Perms::WRITE)
    }
    pub fn read_obj<T: Pod>(&self, addr: u64) -> SysResult<T> {
        let mut v = vec![0u8; std::mem::size_of::<T>()];
        self.copy_in_into(addr, &mut v)?;
        Ok(T::from_bytes(&v))
    }
    pub fn write_obj<T: Pod>(&self, addr: u64, v: &T) -> SysResult<()> {
        self.copy_out(addr, v.as_bytes())
    }
    /// Reads a NUL-terminated string of at most `max` bytes (without the
    /// NUL): ENAMETOOLONG if longer, EFAULT if unreadable.
    pub fn read_cstr(&self, addr: u64, max: usize) -> SysResult<Vec<u8>> {
        self.mm().read_cstr(addr, max)
    }
    /// A path argument: at most PATH_MAX, ENOENT if empty.
    pub fn read_path(&self, addr: u64) -> SysResult<Vec<u8>> {
        let p = self.read_cstr(addr, 4096)?;
        Ok(p)
    }

    /// True when a signal the task has not blocked is pending (a blocking
    /// system call must then return ERESTARTSYS/EINTR).
    pub fn signal_pending(&self) -> bool {
        crate::signal::has_deliverable(&self.task)
    }

    /// Sleeps until one of `queues` is notified, a signal arrives
    /// (`Err(ERESTARTSYS)`), or `deadline` passes (`Err(ETIMEDOUT)`).
    /// Callers loop: check their condition, then block.
    pub fn block(&self, queues: &[&WaitQueue], deadline: Option<Instant>) -> SysResult<()> {
        let w = &self.task.waiter;
        for q in queues {
            q.register(w);
        }
        let seen = w.seq();
        let r = if self.signal_pending() || self.task_exiting() {
            Err(Errno::ERESTARTSYS)
        } else if w.wait(seen, deadline) {
            if self.signal_pending() || self.task_exiting() {
                Err(Errno::ERESTARTSYS)
            } else {
                Ok(())
            }
        } else {
            Err(Errno::ETIMEDOUT)
        };
        for q in queues {
            q.unregister(w);
        }
        r
    }

    /// Registers on `queues` and returns the sequence number to pass to
    /// [`TaskCtx::block_since`]; lets a caller check its condition *after*
    /// registering, so no notification is lost.
    pub fn prepare_block(&self, queues: &[&WaitQueue]) -> u64 {
        for q in queues {
            q.register(&self.task.waiter);
        }
        self.task.waiter.seq()
    }

    pub fn block_since(&self, queues: &[&WaitQueue], seen: u64, deadline: Option<Instant>) -> SysResult<()> {
        let w = &self.task.waiter;
        let r = if self.signal_pending() || self.task_exiting() {
            Err(Errno::ERESTARTSYS)
        } else if w.wait(seen, deadline) {
            Ok(())
        } else {
            Err(Errno::ETIMEDOUT)
        };
        for q in queues {
            q.unregister(w);
        }
        if r.is_ok() && (self.signal_pending() || self.task_exiting()) {
            return Err(Errno::ERESTARTSYS);
        }
        r
    }

    /// True once the task's process is exiting (it must not block).
    pub fn task_exiting(&self) -> bool {
        self.task.exit_requested.load(Ordering::SeqCst) || self.task.tg.state.lock().unwrap().group_exit.is_some()
    }

    /// Sends a signal to this thread (e.g. SIGPIPE on a broken pipe).
    pub fn signal_self(&self, signo: i32) {
        let info = abi::types::Siginfo::from_user(signo, abi::signal::code::SI_KERNEL, 0, 0);
        crate::signal::send_to_task(&self.task, info);
    }

    /// A copy of the task's credentials.
    pub fn creds(&self) -> crate::creds::Creds {
        self.task.creds.lock().unwrap().clone()
    }
    /// Real uid and gid (what access(2) checks with).
    pub fn uid(&self) -> u32 {
        self.task.creds.lock().unwrap().uid.real
    }
    pub fn gid(&self) -> u32 {
        self.task.creds.lock().unwrap().gid.real
    }
}

/// The blocked set a new task inherits.
pub fn inherit_mask(parent: &Task) -> SigSet {
    parent.signals.lock().unwrap().mask
}

/// A task's host thread: run application code, serve what stops it.
pub fn run(task: Arc<Task>) {
    let cpu = task.initial_cpu.lock().unwrap().take().expect("task started twice");
    let mut t = TaskCtx { task, cpu, exit: None };
    let mut restart: Option<Errno> = None;
    loop {
        let ctx = t.task.context();
        ctx.clear_interrupt();
        t.task.attention.store(false, Ordering::SeqCst);
        if let crate::signal::Disposition::Exit = crate::signal::deliver(&mut t, restart.take()) {
            break;
        }
        t.task.kernel.wait_while_paused();
        let mm = t.mm();
        let entered = Instant::now();
        let exit = ctx.switch(&mut t.cpu, &mm.address_space);
        let left = Instant::now();
        let user = left - entered;
        match exit {
            Ok(Exit::Syscall) if crate::legacy_entry::on_syscall(&mut t) => {}
            Ok(Exit::Syscall) => match t.task.kernel.syscall_table().dispatch(&mut t) {
                Ok(v) => t.cpu.regs.rax = v,
                Err(e) => {
                    t.cpu.regs.rax = (-(e.0 as i64)) as u64;
                    if e.0 >= 512 {
                        restart = Some(e);
                    }
                }
            },
            Ok(Exit::Fault { addr, .. }) if crate::legacy_entry::on_fault(&mut t, addr) => {}
            Ok(Exit::Fault { addr, .. }) => {
                if let Err(why) = mm.handle_fault(addr) {
                    let info = match why {
                        FaultError::Unmapped => Siginfo::fault(SIGSEGV, code::SEGV_MAPERR, addr),
                        FaultError::Protection => Siginfo::fault(SIGSEGV, code::SEGV_ACCERR, addr),
                        FaultError::NoMemory => Siginfo::fault(abi::signal::SIGBUS, 2 /* BUS_ADRERR */, addr),
                    };
                    crate::signal::force(&mut t, info);
                }
            }
            Ok(Exit::Signal(si)) if crate::legacy_entry::on_signal(&mut t, &si) => {}
            Ok(Exit::Signal(si)) => crate::signal::force(&mut t, Siginfo::fault(si.signo, si.code, si.addr)),
            Ok(Exit::Interrupted) => {}
            Err(e) => {
                t.task.kernel.log_line(&format!("veil: task {}: {e}", t.task.tid));
                crate::signal::group_exit(&t.task, ExitStatus::Signaled { signo: abi::signal::SIGKILL, core: false });
                break;
            }
        }
        account(&t.task, user, left.elapsed());
        if t.exit.is_some() {
            break;
        }
    }
    exit_task(&mut t);
}

/// Charges CPU time to the thread and runs the process's CPU-time timers.
fn account(task: &Arc<Task>, user: std::time::Duration, system: std::time::Duration) {
    task.times.add(user, system);
    let tg = &task.tg;
    if tg.virtual_timer.charge(user) {
        crate::signal::send_to_group(&task.kernel, tg, Siginfo::from_user(abi::signal::SIGVTALRM, code::SI_KERNEL, 0, 0));
    }
    if tg.prof_timer.charge(user + system) {
        crate::signal::send_to_group(&task.kernel, tg, Siginfo::from_user(abi::signal::SIGPROF, code::SI_KERNEL, 0, 0));
    }
}

/// CPU time of a whole process: its live threads and those gone.
pub fn process_times(kernel: &crate::Kernel, tg: &ThreadGroup) -> (std::time::Duration, std::time::Duration) {
    let (mut u, mut s) = tg.exited_times.get();
    let tree = kernel.tree.lock().unwrap();
    let threads = tg.state.lock().unwrap().threads.clone();
    for t in threads.iter().filter_map(|x| tree.tasks.get(x)) {
        let (tu, ts) = t.times.get();
        u += tu;
        s += ts;
    }
    (u, s)
}

/// The end of a thread; the last one out turns the process into a zombie
/// (or, for init, ends the sandbox).
fn exit_task(t: &mut TaskCtx) {
    let task = t.task.clone();
    let kernel = task.kernel.clone();
    crate::futex::exit_robust_list(t);
    let ctid = task.clear_child_tid.swap(0, Ordering::SeqCst);
    if ctid != 0 {
        let _ = t.copy_out(ctid, &0u32.to_le_bytes());
        crate::futex::wake_address(&task, ctid, 1);
    }
    let tg = task.tg.clone();
    let last = {
        let mut tree = kernel.tree.lock().unwrap();
        tree.tasks.remove(&task.tid);
        // Under the tree lock, so process_times never counts it twice.
        tg.exited_times.add_from(&task.times);
        let mut st = tg.state.lock().unwrap();
        st.threads.retain(|&x| x != task.tid);
        st.threads.is_empty()
    };
    if !last {
        return;
    }
    let status = {
        let st = tg.state.lock().unwrap();
        st.group_exit.or(t.exit).unwrap_or(ExitStatus::Exited(0))
    };
    // Release what the process holds: descriptors (so pipe readers see EOF)
    // and its memory (which ends the platform's address space).
    task.files().clear();
    kernel.locks.release_process(tg.tgid);
    *task.mm.lock().unwrap() = None;
    if let Some(parent) = task.vfork_parent.lock().unwrap().take() {
        parent.vfork_done.notify_all();
    }

    // A session leader's terminal hangs up its foreground group.
    crate::fs::tty::session_leader_exited(&kernel, &tg);
    let container = tg.container.clone();
    // Orphans go to the init of their PID namespace.
    let reaper_pid = if container.pidns == crate::container::ROOT_PIDNS { kernel.root_container().init() } else { container.init() };
    let reaper = kernel.tree.lock().unwrap().groups.get(&reaper_pid).cloned();
    let orphans: Vec<i32> = std::mem::take(&mut tg.state.lock().unwrap().children);
    if tg.tgid != reaper_pid {
        if let Some(init) = &reaper {
            let tree = kernel.tree.lock().unwrap();
            let mut zombie_orphan = false;
            for c in &orphans {
                if let Some(ctg) = tree.groups.get(c) {
                    let mut cs = ctg.state.lock().unwrap();
                    cs.ppid = reaper_pid;
                    zombie_orphan |= cs.zombie.is_some();
                }
            }
            drop(tree);
            init.state.lock().unwrap().children.extend(orphans);
            if zombie_orphan {
                init.child_events.notify_all();
            }
        }
    }

    if container.init() == tg.tgid {
        kernel.tree.lock().unwrap().groups.remove(&tg.tgid);
        kernel.container_exited(&container, status);
        return;
    }
    if tg.state.lock().unwrap().ppid == 0 {
        // Started by `exec` from outside: the control server reaps it.
        tg.state.lock().unwrap().zombie = Some(status);
        kernel.orphan_exited();
        return;
    }
    let (ppid, auto_reap) = {
        let ppid = tg.state.lock().unwrap().ppid;
        let parent = kernel.tree.lock().unwrap().groups.get(&ppid).cloned();
        let auto = parent.map(|p| {
            let h = p.handlers.lock().unwrap().clone();
            let a = h.lock().unwrap().get(abi::signal::SIGCHLD);
            a.handler == abi::types::SIG_IGN || a.flags & abi::types::SA_NOCLDWAIT != 0
        });
        (ppid, auto.unwrap_or(true))
    };
    if auto_reap {
        let mut tree = kernel.tree.lock().unwrap();
        tree.groups.remove(&tg.tgid);
        if let Some(p) = tree.groups.get(&ppid) {
            p.state.lock().unwrap().children.retain(|&c| c != tg.tgid);
            p.child_events.notify_all();
        }
        return;
    }
    tg.state.lock().unwrap().zombie = Some(status);
    let (why, code) = match status {
        ExitStatus::Exited(c) => (abi::signal::code::CLD_EXITED, c),
        ExitStatus::Signaled { signo, core: false } => (abi::signal::code::CLD_KILLED, signo),
        ExitStatus::Signaled { signo, core: true } => (abi::signal::code::CLD_DUMPED, signo),
    };
    crate::signal::notify_parent(&kernel, &tg, why, code);
}
