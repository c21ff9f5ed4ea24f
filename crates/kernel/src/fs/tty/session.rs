//! Controlling terminals and job control.
//!
//! Linux keeps the controlling terminal in each process (`signal->tty`);
//! the sentry's process state has no such field, so the binding lives in
//! the terminal instead: a terminal records the session it controls (its
//! id and a weak reference to its leader), and a process's controlling
//! terminal is the terminal bound to its session. That gives the Linux
//! rules without hooks in the process code: `setsid` leaves the terminal
//! behind (a new session id has no terminal), and a binding whose leader
//! has exited, or whose pid now belongs to someone else, is stale and is
//! dropped when next looked at. What needs a hook is only the SIGHUP to the
//! foreground group when a session leader exits: [`session_leader_exited`].
//!
//! The container's own stdio may be a host terminal (`veil run` with
//! `terminal: true`); it is the controlling terminal of the sessions
//! started from outside (init's, and each `exec`'s) unless they took a pty:
//! /dev/tty then opens that host descriptor's description.

use super::terminal::{Session, Terminal};
use crate::fs::node::{Caller, SharedFile};
use crate::fs::{FileOps, OpenFile};
use crate::task::{TaskCtx, ThreadGroup};
use crate::{Kernel, SysResult};
use abi::signal::{SIGCONT, SIGHUP, SIGTTIN};
use abi::types::{Siginfo, Stat};
use abi::Errno;
use std::sync::Arc;

fn group(kernel: &Kernel, tgid: i32) -> Option<Arc<ThreadGroup>> {
    kernel.tree.lock().unwrap().groups.get(&tgid).cloned()
}

/// (sid, pgid) of a process.
fn ids(tg: &ThreadGroup) -> (i32, i32) {
    let st = tg.state.lock().unwrap();
    (st.sid, st.pgid)
}

fn kernel_signal(signo: i32) -> Siginfo {
    Siginfo::from_user(signo, abi::signal::code::SI_KERNEL, 0, 0)
}

/// Sends `signo` to every live process of group `pgid` (kill_pgrp).
pub fn send_to_pgrp(kernel: &Kernel, pgid: i32, signo: i32) {
    let members: Vec<Arc<ThreadGroup>> = {
        let tree = kernel.tree.lock().unwrap();
        tree.groups
            .values()
            .filter(|g| {
                let st = g.state.lock().unwrap();
                st.pgid == pgid && st.zombie.is_none()
            })
            .cloned()
            .collect()
    };
    for g in members {
        crate::signal::send_to_group(kernel, &g, kernel_signal(signo));
    }
}

/// Whether `s` still names a live session: its leader exists, has not
/// exited and still leads that session.
fn session_live(s: &Session) -> bool {
    match s.leader.upgrade() {
        Some(tg) => {
            let st = tg.state.lock().unwrap();
            tg.tgid == s.sid && st.sid == s.sid && st.zombie.is_none() && st.group_exit.is_none()
        }
        None => false,
    }
}

/// A process group is orphaned when no member has a parent in another
/// group of the same session (POSIX): nobody is left to continue it, so
/// job-control stops would be forever and Linux answers EIO instead.
fn pgrp_orphaned(kernel: &Kernel, pgid: i32, sid: i32) -> bool {
    let groups: Vec<Arc<ThreadGroup>> = kernel.tree.lock().unwrap().groups.values().cloned().collect();
    let find = |tgid: i32| groups.iter().find(|g| g.tgid == tgid);
    !groups.iter().any(|g| {
        let (ppid, gp) = {
            let st = g.state.lock().unwrap();
            (st.ppid, st.pgid)
        };
        if gp != pgid {
            return false;
        }
        find(ppid).is_some_and(|p| {
            let (psid, ppg) = ids(p);
            ppg != pgid && psid == sid
        })
    })
}

/// The pty that is `tg`'s controlling terminal, if any.
pub fn controlling_pty(kernel: &Kernel, tg: &Arc<ThreadGroup>) -> Option<Arc<Terminal>> {
    kernel.vfs.devpts().terminals().into_iter().find(|t| t.is_ctty_of(tg))
}

/// The host terminal (a stdio descriptor passed in from outside) that
/// controls `tg`'s session: only a session started from outside has one.
pub fn host_ctty(kernel: &Kernel, tg: &Arc<ThreadGroup>, tid: i32) -> Option<Arc<OpenFile>> {
    let (sid, _) = ids(tg);
    let leader = group(kernel, sid)?;
    {
        let st = leader.state.lock().unwrap();
        if st.ppid != 0 || st.sid != leader.tgid || st.zombie.is_some() {
            return None;
        }
    }
    let tasks: Vec<_> = {
        let tree = kernel.tree.lock().unwrap();
        [tid, sid].iter().filter_map(|t| tree.tasks.get(t).cloned()).collect()
    };
    for task in tasks {
        let files = task.files();
        for fd in 0..3 {
            let Ok(f) = files.get(fd) else { continue };
            // SAFETY: isatty only inspects the host descriptor.
            if f.ops.host_fd().is_some_and(|h| unsafe { libc::isatty(h) } == 1) {
                return Some(f);
            }
        }
    }
    None
}

/// Opens /dev/tty: the caller's controlling terminal (ENXIO without one).
/// `tty` is /dev/tty's inode, which fstat of the new descriptor reports.
pub fn open_controlling(c: &Caller, flags: u32, tty: Stat) -> SysResult<Box<dyn FileOps>> {
    let kernel = c.kernel.ok_or(Errno::ENXIO)?;
    let tg = group(kernel, c.tgid).ok_or(Errno::ENXIO)?;
    if let Some(term) = controlling_pty(kernel, &tg) {
        return term.open_replica(c, flags | libc::O_NOCTTY as u32, Some(tty));
    }
    if let Some(f) = host_ctty(kernel, &tg, c.tid) {
        return Ok(Box::new(SharedFile(f)));
    }
    Err(Errno::ENXIO)
}

/// For the process code: call when a session leader's process exits (in
/// `exit_task`, once `tg` is the last thread out and before it becomes a
/// zombie, with no lock held; a no-op for other processes). As Linux's
/// disassociate_ctty(1): the foreground group gets SIGHUP (and SIGCONT, so
/// stopped members see it) and the terminal is free for a new session.
pub fn session_leader_exited(kernel: &Kernel, tg: &Arc<ThreadGroup>) {
    let (sid, _) = ids(tg);
    if sid != tg.tgid {
        return;
    }
    for term in kernel.vfs.devpts().terminals() {
        let pgrp = {
            let mut st = term.state();
            match &st.session {
                Some(s) if s.sid == sid && s.leader.as_ptr() == Arc::as_ptr(tg) => {}
                _ => continue,
            }
            st.session = None;
            st.detached.clear();
            std::mem::take(&mut st.pgrp)
        };
        if pgrp > 0 {
            send_to_pgrp(kernel, pgrp, SIGHUP);
            send_to_pgrp(kernel, pgrp, SIGCONT);
        }
    }
}

/// A hung-up terminal's session leader gets SIGHUP then SIGCONT.
pub(super) fn hangup_leader(kernel: &Kernel, s: &Session) {
    if !session_live(s) {
        return;
    }
    if let Some(leader) = s.leader.upgrade() {
        crate::signal::send_to_group(kernel, &leader, kernel_signal(SIGHUP));
        crate::signal::send_to_group(kernel, &leader, kernel_signal(SIGCONT));
    }
}

impl Terminal {
    /// The session this terminal controls, if it is still live (a stale
    /// binding is dropped here).
    fn live_session(&self) -> Option<Session> {
        let s = self.state().session.clone()?;
        if session_live(&s) {
            return Some(s);
        }
        let mut st = self.state();
        if st.session.as_ref().is_some_and(|cur| cur.leader.ptr_eq(&s.leader) && cur.sid == s.sid) {
            st.session = None;
            st.pgrp = 0;
            st.detached.clear();
        }
        None
    }

    /// Whether this is `tg`'s controlling terminal.
    pub fn is_ctty_of(&self, tg: &Arc<ThreadGroup>) -> bool {
        let (sid, _) = ids(tg);
        match self.live_session() {
            Some(s) if s.sid == sid => !self.state().detached.iter().any(|w| w.as_ptr() == Arc::as_ptr(tg)),
            _ => false,
        }
    }

    fn bind(&self, tg: &Arc<ThreadGroup>) {
        let (sid, pgid) = ids(tg);
        let mut st = self.state();
        st.session = Some(Session { sid, leader: Arc::downgrade(tg) });
        st.pgrp = pgid;
        st.detached.clear();
    }

    /// The first open of a terminal by a session leader without one makes
    /// it the session's controlling terminal (unless O_NOCTTY).
    pub(super) fn acquire_on_open(&self, c: &Caller) {
        let Some(kernel) = c.kernel else { return };
        let Some(tg) = group(kernel, c.tgid) else { return };
        let (sid, _) = ids(&tg);
        if sid != tg.tgid || self.live_session().is_some() {
            return;
        }
        if controlling_pty(kernel, &tg).is_some() || host_ctty(kernel, &tg, c.tid).is_some() {
            return;
        }
        self.bind(&tg);
    }

    /// Linux's __tty_check_change: a process of a background group that
    /// uses its controlling terminal in a way job control governs gets
    /// `sig` sent to its group and the call restarts once it is continued;
    /// an ignored or blocked signal lets the call go on (SIGTTOU) or fails
    /// it with EIO (SIGTTIN), as does an orphaned group.
    pub(super) fn check_change(&self, t: &TaskCtx, sig: i32) -> SysResult<()> {
        let tg = &t.task.tg;
        if !self.is_ctty_of(tg) {
            return Ok(());
        }
        let fg = self.state().pgrp;
        let (sid, pgid) = ids(tg);
        if fg == 0 || fg == pgid {
            return Ok(());
        }
        let blocked = t.task.signals.lock().unwrap().mask.contains(sig);
        let handlers = tg.handlers.lock().unwrap().clone();
        let ignored = handlers.lock().unwrap().get(sig).handler == abi::types::SIG_IGN;
        if blocked || ignored {
            return if sig == SIGTTIN { Err(Errno::EIO) } else { Ok(()) };
        }
        if pgrp_orphaned(t.kernel(), pgid, sid) {
            return Err(Errno::EIO);
        }
        send_to_pgrp(t.kernel(), pgid, sig);
        Err(Errno::ERESTARTSYS)
    }

    /// TIOCSCTTY: a session leader without a controlling terminal takes
    /// this one; stealing it from another session needs `arg` 1 and
    /// CAP_SYS_ADMIN (which every task in the sandbox holds).
    pub(super) fn set_controlling(&self, t: &TaskCtx, arg: u64) -> SysResult<u64> {
        let tg = &t.task.tg;
        let (sid, _) = ids(tg);
        if sid == tg.tgid && self.is_ctty_of(tg) {
            return Ok(0);
        }
        if sid != tg.tgid {
            return Err(Errno::EPERM);
        }
        let kernel = t.kernel();
        if controlling_pty(kernel, tg).is_some() || host_ctty(kernel, tg, t.tid()).is_some() {
            return Err(Errno::EPERM);
        }
        if self.live_session().is_some() && arg != 1 {
            return Err(Errno::EPERM);
        }
        self.bind(tg);
        Ok(0)
    }

    /// TIOCNOTTY: the caller gives up its controlling terminal; when the
    /// caller leads the session, the whole session does, and the
    /// foreground group gets SIGHUP and SIGCONT.
    pub(super) fn drop_controlling(&self, t: &TaskCtx, master: bool) -> SysResult<u64> {
        let tg = &t.task.tg;
        if master || !self.is_ctty_of(tg) {
            return Err(Errno::ENOTTY);
        }
        let (sid, _) = ids(tg);
        if sid != tg.tgid {
            // Only this process lets go (Linux clears its signal->tty; a
            // child forked later is not detached with it).
            self.state().detached.push(Arc::downgrade(tg));
            return Ok(0);
        }
        let pgrp = {
            let mut st = self.state();
            st.session = None;
            st.detached.clear();
            std::mem::take(&mut st.pgrp)
        };
        if pgrp > 0 {
            send_to_pgrp(t.kernel(), pgrp, SIGHUP);
            send_to_pgrp(t.kernel(), pgrp, SIGCONT);
        }
        Ok(0)
    }

    /// TIOCGPGRP: on the replica only for its controlling processes; the
    /// master may always ask.
    pub(super) fn get_pgrp(&self, t: &TaskCtx, master: bool, arg: u64) -> SysResult<u64> {
        if !master && !self.is_ctty_of(&t.task.tg) {
            return Err(Errno::ENOTTY);
        }
        self.live_session();
        let pg = self.state().pgrp;
        t.write_obj(arg, &t.pid_seen(pg))?;
        Ok(0)
    }

    /// TIOCSPGRP: only through the caller's controlling terminal, to a
    /// group of its session.
    pub(super) fn set_pgrp(&self, t: &TaskCtx, arg: u64) -> SysResult<u64> {
        let tg = &t.task.tg;
        if !self.is_ctty_of(tg) {
            return Err(Errno::ENOTTY);
        }
        self.check_change(t, abi::signal::SIGTTOU)?;
        let pg: i32 = t.read_obj(arg)?;
        if pg < 0 {
            return Err(Errno::EINVAL);
        }
        let pg = t.pid_named(pg).ok_or(Errno::ESRCH)?;
        let (sid, _) = ids(tg);
        let members: Vec<Arc<ThreadGroup>> = t.kernel().tree.lock().unwrap().groups.values().cloned().collect();
        let mut found = false;
        for g in &members {
            let st = g.state.lock().unwrap();
            if st.pgid == pg && st.zombie.is_none() {
                if st.sid != sid {
                    return Err(Errno::EPERM);
                }
                found = true;
            }
        }
        if !found {
            return Err(Errno::ESRCH);
        }
        self.state().pgrp = pg;
        Ok(0)
    }

    /// TIOCGSID: the session this terminal controls.
    pub(super) fn get_sid(&self, t: &TaskCtx, master: bool, arg: u64) -> SysResult<u64> {
        if !master && !self.is_ctty_of(&t.task.tg) {
            return Err(Errno::ENOTTY);
        }
        let s = self.live_session().ok_or(Errno::ENOTTY)?;
        t.write_obj(arg, &t.pid_seen(s.sid))?;
        Ok(0)
    }
}
