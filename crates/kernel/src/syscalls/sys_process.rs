//! Process lifecycle: clone/fork/vfork, execve, exit, wait4, ids, process
//! groups and sessions.

use super::Entry;
use crate::kernel::errno_text;
use crate::signal::SignalState;
use crate::sys;
use crate::task::{ExitStatus, Task, TaskCtx, ThreadGroup};
use crate::SysResult;
use abi::Errno;
use std::sync::{Arc, Mutex};

pub const SYSCALLS: &[Entry] = &[
    sys!(CLONE, sys_clone, [Hex, Hex, Hex, Hex, Hex], partial "CLONE_VM without CLONE_THREAD gives the child a copy of memory; namespaces flags ignored"),
    sys!(CLONE3, sys_clone3, [Hex, Int], partial "as clone; no set_tid, cgroup or pidfd"),
    sys!(FORK, sys_fork, []),
    sys!(VFORK, sys_vfork, [], partial "the child gets a copy of the parent's memory, not a share"),
    sys!(EXECVE, sys_execve, [Str, Hex, Hex]),
    sys!(EXIT, sys_exit, [Int]),
    sys!(EXIT_GROUP, sys_exit_group, [Int]),
    sys!(WAIT4, sys_wait4, [Int, Hex, Hex, Hex], partial "rusage is zero"),
    sys!(WAITID, sys_waitid, [Int, Int, Hex, Hex, Hex], partial "no P_PIDFD; rusage is zero"),
    sys!(GETPID, sys_getpid, []),
    sys!(GETPPID, sys_getppid, []),
    sys!(GETTID, sys_gettid, []),
    sys!(SET_TID_ADDRESS, sys_set_tid_address, [Hex]),
    sys!(SETPGID, sys_setpgid, [Int, Int]),
    sys!(GETPGID, sys_getpgid, [Int]),
    sys!(GETPGRP, sys_getpgrp, []),
    sys!(SETSID, sys_setsid, []),
    sys!(GETSID, sys_getsid, [Int]),
];

const CLONE_VM: u64 = libc::CLONE_VM as u64;
const CLONE_FS: u64 = libc::CLONE_FS as u64;
const CLONE_FILES: u64 = libc::CLONE_FILES as u64;
const CLONE_SIGHAND: u64 = libc::CLONE_SIGHAND as u64;
const CLONE_VFORK: u64 = libc::CLONE_VFORK as u64;
const CLONE_PARENT: u64 = libc::CLONE_PARENT as u64;
const CLONE_THREAD: u64 = libc::CLONE_THREAD as u64;
const CLONE_SETTLS: u64 = libc::CLONE_SETTLS as u64;
const CLONE_PARENT_SETTID: u64 = libc::CLONE_PARENT_SETTID as u64;
const CLONE_CHILD_CLEARTID: u64 = libc::CLONE_CHILD_CLEARTID as u64;
const CLONE_CHILD_SETTID: u64 = libc::CLONE_CHILD_SETTID as u64;

fn sys_fork(t: &mut TaskCtx, _a: &super::Args) -> SysResult<u64> {
    do_clone(t, libc::SIGCHLD as u64, 0, 0, 0, 0)
}

fn sys_vfork(t: &mut TaskCtx, _a: &super::Args) -> SysResult<u64> {
    do_clone(t, CLONE_VM | CLONE_VFORK | libc::SIGCHLD as u64, 0, 0, 0, 0)
}

fn sys_clone(t: &mut TaskCtx, a: &super::Args) -> SysResult<u64> {
    // x86-64 order: flags, stack, parent_tid, child_tid, tls.
    do_clone(t, a[0], a[1], a[2], a[3], a[4])
}

fn do_clone(t: &mut TaskCtx, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> SysResult<u64> {
    let kernel = t.kernel().clone();
    let thread = flags & CLONE_THREAD != 0;
    // The combinations Linux rejects.
    if (thread && flags & CLONE_SIGHAND == 0) || (flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0) {
        return Err(Errno::EINVAL);
    }
    if kernel.shutting_down.load(std::sync::atomic::Ordering::SeqCst) || kernel.tree.lock().unwrap().tasks.len() >= kernel.config.max_tasks {
        return Err(Errno::EAGAIN);
    }
    let parent = t.task.clone();
    // Memory: threads share it; a new process gets a copy (CLONE_VM without
    // CLONE_THREAD is vfork-style: the child gets a copy and the parent
    // waits until it execs or exits).
    let mm = if thread { t.mm() } else { t.mm().fork(&kernel).map_err(|_| Errno::ENOMEM)? };
    let files = if flags & CLONE_FILES != 0 { parent.files() } else { parent.files().fork() };
    let fs = if flags & CLONE_FS != 0 { parent.fs() } else { Arc::new(Mutex::new(parent.fs().lock().unwrap().clone())) };
    let handlers = {
        let h = parent.tg.handlers.lock().unwrap().clone();
        if flags & CLONE_SIGHAND != 0 {
            h
        } else {
            Arc::new(Mutex::new(h.lock().unwrap().clone()))
        }
    };
    parent.context().load_fp(&mut t.cpu).map_err(|_| Errno::EAGAIN)?;
    let mut cpu = t.cpu.clone();
    cpu.regs.rax = 0;
    cpu.fp_dirty = true;
    cpu.fp_loaded = true;
    if stack != 0 {
        cpu.regs.rsp = stack;
    }
    if flags & CLONE_SETTLS != 0 {
        cpu.regs.fs_base = tls;
    }
    let sigstate = {
        let s = parent.signals.lock().unwrap();
        // A new thread shares nothing pending and starts without an alternate stack.
        SignalState { mask: s.mask, altstack: if thread { Default::default() } else { s.altstack }, ..Default::default() }
    };

    let (child, ns_tid) = {
        let mut tree = kernel.tree.lock().unwrap();
        let ns = parent.tg.container.pidns;
        let tid = tree.alloc_pid(ns);
        let ns_tid = tree.pids.to_ns(ns, tid);
        let tg = if thread {
            parent.tg.state.lock().unwrap().threads.push(tid);
            parent.tg.clone()
        } else {
            let pst = parent.tg.state.lock().unwrap();
            let ppid = if flags & CLONE_PARENT != 0 { pst.ppid } else { parent.tgid() };
            let tg = ThreadGroup::new(tid, ppid, pst.pgid, pst.sid, parent.tg.cmdline.lock().unwrap().clone(), parent.tg.exe.lock().unwrap().clone(), parent.tg.container.clone(), parent.tg.rlimits.lock().unwrap().clone());
            drop(pst);
            let personality = parent.tg.personality.load(std::sync::atomic::Ordering::Relaxed);
            tg.personality.store(personality, std::sync::atomic::Ordering::Relaxed);
            if let Some(p) = tree.groups.get(&ppid) {
                p.state.lock().unwrap().children.push(tid);
            }
            tree.groups.insert(tid, tg.clone());
            tg
        };
        let child = match Task::new(&kernel, tid, &tg, mm.clone(), files, fs, handlers, sigstate) {
            Ok(c) => c,
            Err(_) => {
                if thread {
                    tg.state.lock().unwrap().threads.retain(|&x| x != tid);
                } else {
                    tree.groups.remove(&tid);
                }
                return Err(Errno::EAGAIN);
            }
        };
        child.set_comm(parent.comm_string().as_bytes());
        *child.creds.lock().unwrap() = parent.creds.lock().unwrap().clone();
        *child.sched.lock().unwrap() = parent.sched.lock().unwrap().inherited();
        tree.tasks.insert(tid, child.clone());
        (child, ns_tid)
    };
    if flags & CLONE_PARENT_SETTID != 0 {
        t.copy_out(ptid, &(ns_tid as u32).to_le_bytes())?;
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        mm.copy_out(ctid, &(ns_tid as u32).to_le_bytes())?;
    }
    if flags & CLONE_CHILD_CLEARTID != 0 {
        child.clear_child_tid.store(ctid, std::sync::atomic::Ordering::SeqCst);
    }
    if flags & CLONE_VFORK != 0 {
        *child.vfork_parent.lock().unwrap() = Some(parent.tg.clone());
    }
    *child.initial_cpu.lock().unwrap() = Some(cpu);
    kernel.start_task(child.clone());
    if flags & CLONE_VFORK != 0 {
        // The parent sleeps until the child execs or exits (signals do not
        // end the wait, as in Linux).
        loop {
            let seen = t.prepare_block(&[&parent.tg.vfork_done]);
            if child.vfork_parent.lock().unwrap().is_none() || t.task_exiting() {
                parent.tg.vfork_done.unregister(&parent.waiter);
                break;
            }
            parent.waiter.wait(seen, Some(std::time::Instant::now() + std::time::Duration::from_millis(100)));
            parent.tg.vfork_done.unregister(&parent.waiter);
        }
    }
    Ok(ns_tid as u64)
}

/// clone3(2): `struct clone_args` translated to clone's arguments.
fn sys_clone3(t: &mut TaskCtx, a: &super::Args) -> SysResult<u64> {
    let size = a[1] as usize;
    // CLONE_ARGS_SIZE_VER0 is 64 bytes; later versions add set_tid and cgroup.
    if !(64..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let raw = t.copy_in(a[0], size)?;
    let f = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
    let (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls) = (f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7));
    if raw.len() > 64 && raw[64..].iter().any(|&b| b != 0) {
        // set_tid / cgroup: not supported.
        t.kernel().report_unsupported_feature(abi::syscalls::nr::CLONE3, "set_tid/cgroup");
        return Err(Errno::EINVAL);
    }
    // glibc's pthread_create fills `pidfd` without asking for one; only the
    // flag requests a pidfd.
    let _ = pidfd;
    if flags & libc::CLONE_PIDFD as u64 != 0 {
        t.kernel().report_unsupported_feature(abi::syscalls::nr::CLONE3, "CLONE_PIDFD");
        return Err(Errno::EINVAL);
    }
    if exit_signal > 64 || flags & 0xff != 0 {
        return Err(Errno::EINVAL);
    }
    let top = if stack != 0 { stack + stack_size } else { 0 };
    do_clone(t, flags | exit_signal, top, parent_tid, child_tid, tls)
}

/// Reads a NULL-terminated array of string pointers (argv, envp).
fn read_string_array(t: &TaskCtx, addr: u64) -> SysResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    let mut total = 0usize;
    for i in 0.. {
        let p: u64 = t.read_obj(addr + i * 8)?;
        if p == 0 {
            break;
        }
        let s = t.read_cstr(p, 128 << 10)?;
        total += s.len() + 1;
        if total > 2 << 20 {
            return Err(Errno::E2BIG);
        }
        out.push(s);
    }
    Ok(out)
}

fn sys_execve(t: &mut TaskCtx, a: &super::Args) -> SysResult<u64> {
    let path = t.read_path(a[0])?;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let argv = read_string_array(t, a[1])?;
    let envp = read_string_array(t, a[2])?;
    let kernel = t.kernel().clone();
    let mm = crate::mm::MemoryManager::new(&kernel).map_err(|_| Errno::ENOMEM)?;
    let fsctx = t.fs().lock().unwrap().clone();
    let image = match crate::loader::load(&kernel, &mm, &fsctx, t.tgid(), &path, &argv, &envp) {
        Ok(i) => i,
        Err(e) => return Err(e.errno()),
    };
    // Past the point of no return: the other threads of the process go,
    // and robust futexes held in the old memory are released (Linux's
    // exec_mm_release).
    let task = t.task.clone();
    end_other_threads(&task);
    crate::futex::exit_robust_list(t);
    let context = kernel.platform.new_context().map_err(|_| Errno::ENOMEM)?;
    *task.mm.lock().unwrap() = Some(mm);
    *task.context.lock().unwrap() = context;
    task.files().close_on_exec();
    {
        let h = task.tg.handlers.lock().unwrap().clone();
        let mut fresh = h.lock().unwrap().clone();
        fresh.reset_for_exec();
        *task.tg.handlers.lock().unwrap() = Arc::new(Mutex::new(fresh));
    }
    {
        let mut s = task.signals.lock().unwrap();
        s.altstack = Default::default();
    }
    task.creds.lock().unwrap().exec();
    task.set_comm(&image.comm);
    *task.tg.cmdline.lock().unwrap() = image.cmdline;
    *task.tg.exe.lock().unwrap() = image.exe;
    task.clear_child_tid.store(0, std::sync::atomic::Ordering::SeqCst);
    t.cpu = image.cpu;
    if let Some(parent) = task.vfork_parent.lock().unwrap().take() {
        parent.vfork_done.notify_all();
    }
    Ok(0)
}

/// execve in a multi-threaded process: every other thread exits first.
fn end_other_threads(task: &Arc<Task>) {
    let others: Vec<Arc<Task>> = {
        let tree = task.kernel.tree.lock().unwrap();
        let st = task.tg.state.lock().unwrap();
        st.threads.iter().filter(|&&x| x != task.tid).filter_map(|x| tree.tasks.get(x).cloned()).collect()
    };
    if others.is_empty() {
        return;
    }
    for o in &others {
        o.exit_requested.store(true, std::sync::atomic::Ordering::SeqCst);
        o.kick();
    }
    while task.tg.state.lock().unwrap().threads.len() > 1 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn sys_exit(t: &mut TaskCtx, a: &super::Args) -> SysResult<u64> {
    t.exit = Some(ExitStatus::Exited(a[0] as i32 & 0xff));
    Ok(0)
}

fn sys_exit_group(t: &mut TaskCtx, a: &super::Args) -> SysResult<u64> {
    let status = ExitStatus::Exited(a[0] as i32 & 0xff);
    crate::signal::group_exit(&t.task, status);
    t.exit = Some(status);
    Ok(0)
}

/// Does child `c` match wait4's pid argument?
fn wait_matches(pid: i32, caller_pgid: i32, c: &ThreadGroup) -> bool {
    match pid {
        -1 => true,
        0 => c.state.lock().unwrap().pgid == caller_pgid,
        p if p > 0 => c.tgid == p,
        p => c.state.lock().unwrap().pgid == -p,
    }
}

/// What wait4/waitid report about a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WaitEvent {
    Exited(ExitStatus),
    Stopped(i32),
    Continued,
}

impl WaitEvent {
    fn wstatus(self) -> i32 {
        match self {
            WaitEvent::Exited(st) => st.wstatus(),
            WaitEvent::Stopped(sig) => (sig << 8) | 0x7f,
            WaitEvent::Continued => 0xffff,
        }
    }
}

/// Which events a wait asks for, and whether it consumes them.
#[derive(Clone, Copy)]
struct WaitFor {
    exited: bool,
    stopped: bool,
    continued: bool,
    nohang: bool,
    consume: bool,
}

/// Waits for a child matching `pid` (wait4's convention) to exit, stop or
/// continue, as `want` asks; reaps an exited child when consuming. None
/// when `nohang` and nothing happened yet.
fn wait_for_child(t: &mut TaskCtx, pid: i32, want: WaitFor) -> SysResult<Option<(i32, WaitEvent)>> {
    // pid and process-group arguments name processes in the caller's PID namespace.
    let pid = match pid {
        -1 | 0 => pid,
        p if p > 0 => t.pid_named(p).ok_or(Errno::ECHILD)?,
        p => -t.pid_named(-p).ok_or(Errno::ECHILD)?,
    };
    let found = wait_for_global(t, pid, want)?;
    Ok(found.map(|(cpid, ev)| (t.pid_seen(cpid), ev)))
}

fn wait_for_global(t: &mut TaskCtx, pid: i32, want: WaitFor) -> SysResult<Option<(i32, WaitEvent)>> {
    let kernel = t.kernel().clone();
    let me = t.task.tg.clone();
    loop {
        let seen = t.prepare_block(&[&me.child_events]);
        let found = {
            let mut tree = kernel.tree.lock().unwrap();
            let my_pgid = me.state.lock().unwrap().pgid;
            let children = me.state.lock().unwrap().children.clone();
            let matching: Vec<Arc<ThreadGroup>> = children.iter().filter_map(|c| tree.groups.get(c).cloned()).filter(|c| wait_matches(pid, my_pgid, c)).collect();
            if matching.is_empty() {
                me.child_events.unregister(&t.task.waiter);
                return Err(Errno::ECHILD);
            }
            let event = matching.iter().find_map(|c| {
                let mut st = c.state.lock().unwrap();
                if let (true, Some(z)) = (want.exited, st.zombie) {
                    return Some((c.tgid, WaitEvent::Exited(z)));
                }
                if let (true, Some(sig)) = (want.stopped, st.stop_event) {
                    if want.consume {
                        st.stop_event = None;
                    }
                    return Some((c.tgid, WaitEvent::Stopped(sig)));
                }
                if want.continued && st.continued {
                    if want.consume {
                        st.continued = false;
                    }
                    return Some((c.tgid, WaitEvent::Continued));
                }
                None
            });
            if let Some((cpid, WaitEvent::Exited(_))) = event {
                if want.consume {
                    if let Some(child) = tree.groups.remove(&cpid) {
                        // A reaped child's time, and its own reaped children's, are ours now.
                        me.children_times.add_from(&child.exited_times);
                        me.children_times.add_from(&child.children_times);
                    }
                    me.state.lock().unwrap().children.retain(|&x| x != cpid);
                }
            }
            event
        };
        if found.is_some() || want.nohang {
            me.child_events.unregister(&t.task.waiter);
            return Ok(found);
        }
        t.block_since(&[&me.child_events], seen, None)?;
    }
}

fn sys_wait4(t: &mut TaskCtx, a: &super::Args) -> SysResult<u64> {
    let (pid, status_addr, options) = (a[0] as i32, a[1], a[2] as i32);
    if options & !(libc::WNOHANG | libc::WUNTRACED | libc::WCONTINUED | libc::__WALL | libc::__WCLONE | libc::__WNOTHREAD) != 0 {
        return Err(Errno::EINVAL);
    }
    let want = WaitFor {
        exited: true,
        stopped: options & libc::WUNTRACED != 0,
        continued: options & libc::WCONTINUED != 0,
        nohang: options & libc::WNOHANG != 0,
        consume: true,
    };
    match wait_for_child(t, pid, want)? {
        Some((cpid, ev)) => {
            if status_addr != 0 {
                t.copy_out(status_addr, &ev.wstatus().to_le_bytes())?;
            }
            if a[3] != 0 {
                t.write_obj(a[3], &abi::types::Rusage::default())?;
            }
            Ok(cpid as u64)
        }
        None => Ok(0),
    }
}

fn sys_getpid(t: &mut TaskCtx, _a: &super::Args) -> SysResult<u64> {
    Ok(t.pid_seen(t.tgid()) as u64)
}

fn sys_getppid(t: &mut TaskCtx, _a: &super::Args) -> SysResult<u64> {
    let ppid = t.task.tg.state.lock().unwrap().ppid;
    Ok(t.pid_seen(ppid) as u64)
}

fn sys_gettid(t: &mut TaskCtx, _a: &super::Args) -> SysResult<u64> {
    Ok(t.pid_seen(t.tid()) as u64)
}

fn sys_set_tid_address(t: &mut TaskCtx, a: &super::Args) -> SysResult<u64> {
    t.task.clear_child_tid.store(a[0], std::sync::atomic::Ordering::SeqCst);
    Ok(t.pid_seen(t.tid()) as u64)
}

/// The process `pid` names for the caller (0: the caller).
fn group_of(t: &TaskCtx, pid: i32) -> SysResult<Arc<ThreadGroup>> {
    if pid == 0 {
        return Ok(t.task.tg.clone());
    }
    let tree = t.kernel().tree.lock().unwrap();
    let global = tree.pids.from_ns(t.pidns(), pid).ok_or(Errno::ESRCH)?;
    tree.groups.get(&global).cloned().ok_or(Errno::ESRCH)
}

fn sys_setpgid(t: &mut TaskCtx, a: &super::Args) -> SysResult<u64> {
    let (pid, pgid) = (a[0] as i32, a[1] as i32);
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let pgid = if pgid == 0 { 0 } else { t.pid_named(pgid).ok_or(Errno::EPERM)? };
    let target = group_of(t, pid)?;
    let me = t.tgid();
    let (tsid, tppid) = {
        let st = target.state.lock().unwrap();
        (st.sid, st.ppid)
    };
    if target.tgid != me && tppid != me {
        return Err(Errno::ESRCH);
    }
    let my_sid = t.task.tg.state.lock().unwrap().sid;
    if tsid != my_sid || tsid == target.tgid {
        return Err(Errno::EPERM);
    }
    let pgid = if pgid == 0 { target.tgid } else { pgid };
    if pgid != target.tgid {
        // Joining an existing group: it must exist in the same session.
        let tree = t.kernel().tree.lock().unwrap();
        let ok = tree.groups.values().any(|g| {
            let s = g.state.lock().unwrap();
            s.pgid == pgid && s.sid == my_sid
        });
        if !ok {
            return Err(Errno::EPERM);
        }
    }
    target.state.lock().unwrap().pgid = pgid;
    Ok(0)
}

fn sys_getpgid(t: &mut TaskCtx, a: &super::Args) -> SysResult<u64> {
    let pgid = group_of(t, a[0] as i32)?.state.lock().unwrap().pgid;
    Ok(t.pid_seen(pgid) as u64)
}

fn sys_getpgrp(t: &mut TaskCtx, _a: &super::Args) -> SysResult<u64> {
    let pgid = t.task.tg.state.lock().unwrap().pgid;
    Ok(t.pid_seen(pgid) as u64)
}

fn sys_setsid(t: &mut TaskCtx, _a: &super::Args) -> SysResult<u64> {
    let me = t.tgid();
    let tree = t.kernel().tree.lock().unwrap();
    // A process-group leader cannot start a session.
    if tree.groups.values().any(|g| g.tgid != me && g.state.lock().unwrap().pgid == me) {
        return Err(Errno::EPERM);
    }
    drop(tree);
    let mut st = t.task.tg.state.lock().unwrap();
    if st.pgid == me {
        return Err(Errno::EPERM);
    }
    st.pgid = me;
    st.sid = me;
    drop(st);
    Ok(t.pid_seen(me) as u64)
}

fn sys_getsid(t: &mut TaskCtx, a: &super::Args) -> SysResult<u64> {
    let sid = group_of(t, a[0] as i32)?.state.lock().unwrap().sid;
    Ok(t.pid_seen(sid) as u64)
}

#[allow(dead_code)]
fn describe(e: Errno) -> String {
    errno_text(e)
}

const P_ALL: u64 = 0;
const P_PID: u64 = 1;
const P_PGID: u64 = 2;
const WNOWAIT: i32 = 0x0100_0000;

/// waitid(2): like wait4, reporting through a siginfo.
fn sys_waitid(t: &mut TaskCtx, a: &super::Args) -> SysResult<u64> {
    let (idtype, id, infop, options) = (a[0], a[1] as i32, a[2], a[3] as i32);
    if options & !(libc::WNOHANG | libc::WEXITED | libc::WSTOPPED | libc::WCONTINUED | WNOWAIT | libc::__WALL | libc::__WCLONE | libc::__WNOTHREAD) != 0 {
        return Err(Errno::EINVAL);
    }
    if options & (libc::WEXITED | libc::WSTOPPED | libc::WCONTINUED) == 0 {
        return Err(Errno::EINVAL);
    }
    let pid = match idtype {
        P_ALL => -1,
        P_PID if id > 0 => id,
        P_PGID if id >= 0 => if id == 0 { 0 } else { -id },
        _ => return Err(Errno::EINVAL),
    };
    let want = WaitFor {
        exited: options & libc::WEXITED != 0,
        stopped: options & libc::WSTOPPED != 0,
        continued: options & libc::WCONTINUED != 0,
        nohang: options & libc::WNOHANG != 0,
        consume: options & WNOWAIT == 0,
    };
    match wait_for_child(t, pid, want)? {
        Some((cpid, ev)) => {
            let (code, status) = match ev {
                WaitEvent::Exited(ExitStatus::Exited(c)) => (abi::signal::code::CLD_EXITED, c),
                WaitEvent::Exited(ExitStatus::Signaled { signo, core: false }) => (abi::signal::code::CLD_KILLED, signo),
                WaitEvent::Exited(ExitStatus::Signaled { signo, core: true }) => (abi::signal::code::CLD_DUMPED, signo),
                WaitEvent::Stopped(sig) => (abi::signal::code::CLD_STOPPED, sig),
                WaitEvent::Continued => (abi::signal::code::CLD_CONTINUED, abi::signal::SIGCONT),
            };
            if infop != 0 {
                t.write_obj(infop, &abi::types::Siginfo::child(code, cpid, 0, status))?;
            }
        }
        None => {
            if infop != 0 {
                t.write_obj(infop, &abi::types::Siginfo::default())?;
            }
        }
    }
    if a[4] != 0 {
        t.write_obj(a[4], &abi::types::Rusage::default())?;
    }
    Ok(0)
}
