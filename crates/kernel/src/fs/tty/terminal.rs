//! A pseudo-terminal pair: one line discipline between a master (the
//! terminal emulator's end, opened through /dev/ptmx) and its replica
//! (the program's end, /dev/pts/N), after gVisor's devpts `Terminal`.
//!
//! Data typed at the master goes through the replica's input processing
//! to replica readers; replica output goes through output processing to
//! master readers. Both ends wait on one queue, notified on every change.
//! The master's own termios is kept (TCGETS returns what TCSETS stored) but
//! not applied: Linux's master starts raw and programs leave it so.
//!
//! Lock order: `st` before `ld`; neither is held while signalling.

use super::ldisc::LineDiscipline;
use super::termios::ioctl::*;
use super::termios::{Termios, Termios2, ICANON, IEXTEN, ISIG, OPOST, TOSTOP, VMIN, VSTART, VSTOP, VTIME};
use crate::fs::events::{POLLERR, POLLHUP, POLLIN, POLLOUT};
use crate::fs::node::{synthetic_stat, Caller, SetAttr, S_IFCHR};
use crate::fs::vfs::{Location, DEV_PTS};
use crate::fs::{FileOps, OpenFile};
use crate::task::{TaskCtx, ThreadGroup};
use crate::wait::WaitQueue;
use crate::{Kernel, SysResult};
use abi::signal::{SIGTTIN, SIGTTOU};
use abi::types::{Stat, Winsize};
use abi::Errno;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// Major number of the first block of pty replicas (136..=143).
pub const PTS_MAJOR: u32 = 136;
/// The "tty" group pty replicas belong to (devpts' gid=5, as Docker mounts it).
pub const TTY_GID: u32 = 5;

/// The session a terminal controls: its id and its leader, held weakly so
/// a leader that is gone (or a pid reused by another process) is noticed.
#[derive(Clone)]
pub(super) struct Session {
    pub sid: i32,
    pub leader: Weak<ThreadGroup>,
}

pub(super) struct PtyState {
    /// TIOCSPTLCK: the replica cannot be opened yet (a new master is locked).
    pub locked: bool,
    /// The master description is open; once it closes the replica is hung up.
    pub master_open: bool,
    /// Open replica descriptions (including /dev/tty ones).
    pub replicas: u32,
    /// A replica was opened at least once: only then does "no replica"
    /// mean EIO/POLLHUP for the master (Linux's TTY_OTHER_CLOSED).
    pub replica_opened: bool,
    pub winsize: Winsize,
    pub master_termios: Termios,
    /// (ispeed, ospeed) for termios2, replica then master.
    pub speeds: [(u32, u32); 2],
    /// TCOOFF on the master: its writes wait.
    pub master_stopped: bool,
    pub exclusive: bool,
    /// The session this is the controlling terminal of.
    pub session: Option<Session>,
    /// The foreground process group (0: none).
    pub pgrp: i32,
    /// Members of the session that dropped it with TIOCNOTTY.
    pub detached: Vec<Weak<ThreadGroup>>,
    /// Attributes of the /dev/pts/N inode (chmod/chown of the node).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

pub struct Terminal {
    pub index: u32,
    pub(super) ld: Mutex<LineDiscipline>,
    pub(super) st: Mutex<PtyState>,
    queue: WaitQueue,
    pub(super) kernel: Weak<Kernel>,
    created: i64,
}

impl Terminal {
    pub fn new(index: u32, kernel: Weak<Kernel>, uid: u32) -> Arc<Terminal> {
        Arc::new(Terminal {
            index,
            ld: Mutex::new(LineDiscipline::new(Termios::default_slave())),
            st: Mutex::new(PtyState {
                locked: true,
                master_open: true,
                replicas: 0,
                replica_opened: false,
                winsize: Winsize::default(),
                master_termios: Termios::default_master(),
                speeds: [(super::termios::BAUD_38400, super::termios::BAUD_38400); 2],
                master_stopped: false,
                exclusive: false,
                session: None,
                pgrp: 0,
                detached: Vec::new(),
                mode: 0o620,
                uid,
                gid: TTY_GID,
            }),
            queue: WaitQueue::new(),
            kernel,
            created: crate::fs::node::Time::now().sec,
        })
    }

    pub(super) fn state(&self) -> MutexGuard<'_, PtyState> {
        self.st.lock().unwrap()
    }

    fn lds(&self) -> MutexGuard<'_, LineDiscipline> {
        self.ld.lock().unwrap()
    }

    pub fn master_open(&self) -> bool {
        self.state().master_open
    }

    pub fn rdev(&self) -> u64 {
        libc::makedev(PTS_MAJOR + self.index / 256, self.index % 256)
    }

    /// The /dev/pts/N inode (devpts numbers replicas from 3).
    pub fn replica_stat(&self) -> Stat {
        let st = self.state();
        let mut s = synthetic_stat(DEV_PTS, self.index as u64 + 3, S_IFCHR | st.mode, 1, 0, self.created);
        s.st_uid = st.uid;
        s.st_gid = st.gid;
        s.st_rdev = self.rdev();
        s.st_blksize = 1024;
        s
    }

    /// chmod/chown of /dev/pts/N.
    pub fn set_node_attr(&self, attr: &SetAttr) -> SysResult<()> {
        if attr.size.is_some() {
            return Err(Errno::EINVAL);
        }
        let mut st = self.state();
        if let Some(m) = attr.mode {
            st.mode = m & 0o7777;
        }
        if let Some(u) = attr.uid {
            st.uid = u;
        }
        if let Some(g) = attr.gid {
            st.gid = g;
        }
        Ok(())
    }

    pub(super) fn notify(&self) {
        self.queue.notify_all();
    }

    /// The master end for a new terminal; `ptmx` is what fstat reports.
    pub fn master_file(self: &Arc<Self>, ptmx: Stat) -> Box<dyn FileOps> {
        Box::new(MasterFile { term: self.clone(), stat: ptmx })
    }

    /// Opens the replica (/dev/pts/N, TIOCGPTPEER, or /dev/tty when this
    /// is the caller's controlling terminal: then `ident` is /dev/tty's
    /// inode, which fstat reports). Without O_NOCTTY a session leader
    /// with no controlling terminal acquires this one.
    pub fn open_replica(self: &Arc<Self>, c: &Caller, flags: u32, ident: Option<Stat>) -> SysResult<Box<dyn FileOps>> {
        {
            let mut st = self.state();
            if !st.master_open {
                return Err(Errno::EIO);
            }
            if st.locked && ident.is_none() {
                return Err(Errno::EIO);
            }
            st.replicas += 1;
            st.replica_opened = true;
        }
        let file = Box::new(ReplicaFile { term: self.clone(), ident });
        self.notify();
        if flags & libc::O_NOCTTY as u32 == 0 {
            self.acquire_on_open(c);
        }
        Ok(file)
    }

    /// Sends `signals` (from ISIG characters) to the foreground group.
    fn signal_foreground(&self, signals: &[i32]) {
        if signals.is_empty() {
            return;
        }
        let pgrp = self.state().pgrp;
        if let (Some(k), true) = (self.kernel.upgrade(), pgrp > 0) {
            for &s in signals {
                super::session::send_to_pgrp(&k, pgrp, s);
            }
        }
    }

    // ---- the master end ----

    fn master_read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let q = [&self.queue];
        loop {
            let seen = t.prepare_block(&q);
            let n = self.lds().take_output(buf);
            if n > 0 {
                self.queue.unregister(&t.task.waiter);
                self.notify();
                return Ok(n);
            }
            let st = self.state();
            if st.replica_opened && st.replicas == 0 {
                drop(st);
                self.queue.unregister(&t.task.waiter);
                return Err(Errno::EIO);
            }
            drop(st);
            if file.nonblocking() {
                self.queue.unregister(&t.task.waiter);
                return Err(Errno::EAGAIN);
            }
            t.block_since(&q, seen, None)?;
        }
    }

    fn master_write(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        self.write_blocking(t, file, buf, |rest| {
            let (gone, stopped) = {
                let st = self.state();
                // Linux refuses input for a replica nobody has open.
                (st.replicas == 0, st.master_stopped)
            };
            if gone {
                return None;
            }
            if stopped || rest.is_empty() {
                return Some(0);
            }
            let r = self.lds().receive(rest);
            self.signal_foreground(&r.signals);
            Some(r.consumed)
        })
    }

    /// The blocking loop both directions of writing share: `step` moves
    /// what it can of the rest of `buf` now and says how much, or None when
    /// the other side is gone (EIO, or a short count if some was written).
    fn write_blocking(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8], mut step: impl FnMut(&[u8]) -> Option<usize>) -> SysResult<usize> {
        let q = [&self.queue];
        let mut done = 0;
        loop {
            let seen = t.prepare_block(&q);
            let Some(n) = step(&buf[done..]) else {
                self.queue.unregister(&t.task.waiter);
                return if done > 0 { Ok(done) } else { Err(Errno::EIO) };
            };
            if n > 0 {
                done += n;
                self.notify();
            }
            if done == buf.len() {
                self.queue.unregister(&t.task.waiter);
                return Ok(done);
            }
            if file.nonblocking() {
                self.queue.unregister(&t.task.waiter);
                return if done > 0 { Ok(done) } else { Err(Errno::EAGAIN) };
            }
            match t.block_since(&q, seen, None) {
                Ok(()) => {}
                Err(_) if done > 0 => return Ok(done),
                Err(e) => return Err(e),
            }
        }
    }

    fn master_readiness(&self) -> u32 {
        let st = self.state();
        let mut ev = 0;
        if st.replica_opened && st.replicas == 0 {
            ev |= POLLHUP;
        }
        let stopped = st.master_stopped;
        drop(st);
        let ld = self.lds();
        if ld.pending_output() > 0 {
            ev |= POLLIN;
        }
        if !stopped && ld.input_room() {
            ev |= POLLOUT;
        }
        ev
    }

    /// The master's last close hangs the replica up: its readers see end
    /// of file, its writers EIO, and the session it controlled loses it
    /// (its leader gets SIGHUP and SIGCONT, as Linux's tty_vhangup does).
    fn master_closed(&self) {
        let session = {
            let mut st = self.state();
            st.master_open = false;
            st.pgrp = 0;
            st.detached.clear();
            st.session.take()
        };
        self.notify();
        if let (Some(s), Some(k)) = (session, self.kernel.upgrade()) {
            super::session::hangup_leader(&k, &s);
        }
    }

    // ---- the replica end ----

    fn replica_read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        if !self.master_open() {
            return Ok(0);
        }
        self.check_change(t, SIGTTIN)?;
        if buf.is_empty() {
            return Ok(0);
        }
        let q = [&self.queue];
        let mut deadline: Option<Instant> = None;
        let mut last_avail = 0;
        loop {
            let seen = t.prepare_block(&q);
            let outcome = if !self.master_open() {
                Some(0)
            } else {
                let mut ld = self.lds();
                if ld.canonical() {
                    ld.read(buf)
                } else {
                    // VMIN/VTIME as termios(3) describes them; VTIME is an
                    // overall timeout when VMIN is 0 and an inter-byte one
                    // (started by the first byte) otherwise.
                    let tio = *ld.termios();
                    let (vmin, vtime) = (tio.cc[VMIN] as usize, tio.cc[VTIME] as u64);
                    let avail = ld.available();
                    let now = Instant::now();
                    let timer = Duration::from_millis(100 * vtime);
                    if vtime > 0 {
                        if vmin == 0 {
                            deadline.get_or_insert(now + timer);
                        } else if avail > last_avail {
                            deadline = Some(now + timer);
                        }
                    }
                    last_avail = avail;
                    let expired = deadline.is_some_and(|d| now >= d);
                    let want = if vmin == 0 { 1 } else { vmin.min(buf.len()) };
                    if avail >= want || (expired && avail > 0) {
                        ld.read(buf)
                    } else if vmin == 0 && (vtime == 0 || expired) {
                        Some(0)
                    } else {
                        None
                    }
                }
            };
            if let Some(n) = outcome {
                self.queue.unregister(&t.task.waiter);
                if n > 0 {
                    self.notify();
                }
                return Ok(n);
            }
            if file.nonblocking() {
                self.queue.unregister(&t.task.waiter);
                return Err(Errno::EAGAIN);
            }
            match t.block_since(&q, seen, deadline) {
                Ok(()) | Err(Errno::ETIMEDOUT) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn replica_write(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        if !self.master_open() {
            return Err(Errno::EIO);
        }
        if self.lds().termios().l(TOSTOP) {
            self.check_change(t, SIGTTOU)?;
        }
        self.write_blocking(t, file, buf, |rest| self.master_open().then(|| self.lds().write(rest)))
    }

    fn replica_readiness(&self) -> u32 {
        if !self.master_open() {
            return POLLIN | POLLOUT | POLLERR | POLLHUP;
        }
        let ld = self.lds();
        let tio = ld.termios();
        // poll honours VMIN only when there is no timer (N_TTY's rule).
        let min = if tio.cc[VTIME] == 0 { (tio.cc[VMIN] as usize).max(1) } else { 1 };
        let mut ev = 0;
        if ld.readable(min) {
            ev |= POLLIN;
        }
        if ld.output_room() {
            ev |= POLLOUT;
        }
        ev
    }

    fn replica_closed(&self) {
        self.state().replicas -= 1;
        self.notify();
    }

    // ---- ioctls shared by both ends ----

    fn ioctl(self: &Arc<Self>, t: &TaskCtx, file: &OpenFile, master: bool, cmd: u64, arg: u64) -> SysResult<u64> {
        if !master && !self.master_open() {
            // A hung-up terminal (Linux's hung_up_tty_ioctl).
            return Err(if cmd == TIOCSPGRP { Errno::ENOTTY } else { Errno::EIO });
        }
        let side = if master { 1 } else { 0 };
        match cmd {
            TCGETS | TCGETS2 => {
                let tio = if master { self.state().master_termios } else { *self.lds().termios() };
                if cmd == TCGETS {
                    t.write_obj(arg, &tio)?;
                } else {
                    let (ispeed, ospeed) = self.state().speeds[side];
                    t.write_obj(arg, &Termios2 { t: tio, ispeed, ospeed })?;
                }
                Ok(0)
            }
            TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 => {
                let two = matches!(cmd, TCSETS2 | TCSETSW2 | TCSETSF2);
                let (tio, speeds) = if two {
                    let t2: Termios2 = t.read_obj(arg)?;
                    (t2.t, speeds_of(&t2.t, Some((t2.ispeed, t2.ospeed))))
                } else {
                    let tio: Termios = t.read_obj(arg)?;
                    (tio, speeds_of(&tio, None))
                };
                if !master {
                    self.check_change(t, SIGTTOU)?;
                }
                // TCSETSW would wait for output to drain: a pty's never
                // waits (Linux reports no characters in its buffer).
                let flush = matches!(cmd, TCSETSF | TCSETSF2);
                self.state().speeds[side] = speeds;
                if master {
                    if tio.lflag & (ICANON | ISIG | IEXTEN | super::termios::ECHO) != 0 || tio.oflag & OPOST != 0 || tio.iflag != 0 {
                        t.kernel().report_unsupported_feature(abi::syscalls::nr::IOCTL, "input/output processing on a pty master (stored, not applied)");
                    }
                    let mut st = self.state();
                    st.master_termios = tio;
                    drop(st);
                    if flush {
                        self.lds().flush_output();
                    }
                } else {
                    let mut ld = self.lds();
                    if flush {
                        ld.flush_input();
                    }
                    ld.set_termios(tio);
                }
                self.notify();
                Ok(0)
            }
            libc::TIOCGWINSZ => {
                let ws = self.state().winsize;
                t.write_obj(arg, &ws)?;
                Ok(0)
            }
            libc::TIOCSWINSZ => {
                let ws: Winsize = t.read_obj(arg)?;
                let (changed, pgrp) = {
                    let mut st = self.state();
                    let changed = st.winsize != ws;
                    st.winsize = ws;
                    (changed, st.pgrp)
                };
                if changed && pgrp > 0 {
                    super::session::send_to_pgrp(t.kernel(), pgrp, abi::signal::SIGWINCH);
                }
                Ok(0)
            }
            FIONREAD => {
                let ld = self.lds();
                let n = if master { ld.pending_output() } else { ld.available() } as i32;
                drop(ld);
                t.write_obj(arg, &n)?;
                Ok(0)
            }
            TIOCOUTQ => {
                let ld = self.lds();
                let n = if master { ld.available() } else { ld.pending_output() } as i32;
                drop(ld);
                t.write_obj(arg, &n)?;
                Ok(0)
            }
            TCFLSH => {
                if !master {
                    self.check_change(t, SIGTTOU)?;
                }
                // A master's input is the replica's output and vice versa.
                let (input, output) = match arg {
                    TCIFLUSH => (true, false),
                    TCOFLUSH => (false, true),
                    TCIOFLUSH => (true, true),
                    _ => return Err(Errno::EINVAL),
                };
                let (replica_in, replica_out) = if master { (output, input) } else { (input, output) };
                let mut ld = self.lds();
                if replica_in {
                    ld.flush_input();
                }
                if replica_out {
                    ld.flush_output();
                }
                drop(ld);
                self.notify();
                Ok(0)
            }
            TCXONC => {
                if !master {
                    self.check_change(t, SIGTTOU)?;
                }
                match (arg, master) {
                    (TCOOFF, false) => self.lds().stopped = true,
                    (TCOON, false) => self.lds().stopped = false,
                    (TCOOFF, true) => self.state().master_stopped = true,
                    (TCOON, true) => self.state().master_stopped = false,
                    (TCIOFF | TCION, _) => {
                        // "Transmit a STOP/START character" to the other end.
                        let idx = if arg == TCIOFF { VSTOP } else { VSTART };
                        let mut ld = self.lds();
                        let c = ld.termios().cc[idx];
                        if c != 0 {
                            if master {
                                let r = ld.receive(&[c]);
                                drop(ld);
                                self.signal_foreground(&r.signals);
                            } else {
                                ld.send_raw(&[c]);
                            }
                        }
                    }
                    _ => return Err(Errno::EINVAL),
                }
                self.notify();
                Ok(0)
            }
            // tcsendbreak/tcdrain: a pty has no break condition and never
            // holds output back, so these are done at once (as on Linux).
            TCSBRK | TCSBRKP | TIOCSBRK | TIOCCBRK => Ok(0),
            TIOCGETD => {
                t.write_obj(arg, &0i32)?;
                Ok(0)
            }
            TIOCSETD => {
                let ldisc: i32 = t.read_obj(arg)?;
                // Only N_TTY exists here.
                if ldisc == 0 {
                    Ok(0)
                } else {
                    Err(Errno::EINVAL)
                }
            }
            TIOCEXCL | TIOCNXCL => {
                // Exclusive mode refuses further opens without
                // CAP_SYS_ADMIN; every task here has it, so the flag only
                // reads back.
                self.state().exclusive = cmd == TIOCEXCL;
                Ok(0)
            }
            TIOCGEXCL => {
                let v = self.state().exclusive as i32;
                t.write_obj(arg, &v)?;
                Ok(0)
            }
            TIOCSCTTY => self.set_controlling(t, arg),
            TIOCNOTTY => self.drop_controlling(t, master),
            TIOCGPGRP => self.get_pgrp(t, master, arg),
            TIOCSPGRP => self.set_pgrp(t, arg),
            TIOCGSID => self.get_sid(t, master, arg),
            _ if master => self.master_ioctl(t, file, cmd, arg),
            _ => Err(Errno::ENOTTY),
        }
    }

    /// The ioctls only a master has (Linux's pty_unix98_ioctl).
    fn master_ioctl(self: &Arc<Self>, t: &TaskCtx, file: &OpenFile, cmd: u64, arg: u64) -> SysResult<u64> {
        match cmd {
            TIOCGPTN => {
                t.write_obj(arg, &self.index)?;
                Ok(0)
            }
            TIOCSPTLCK => {
                let v: i32 = t.read_obj(arg)?;
                self.state().locked = v != 0;
                Ok(0)
            }
            TIOCGPTLCK => {
                let v = self.state().locked as i32;
                t.write_obj(arg, &v)?;
                Ok(0)
            }
            TIOCPKT => {
                let on: i32 = t.read_obj(arg)?;
                if on == 0 {
                    // Packet mode is off and stays off.
                    return Ok(0);
                }
                t.kernel().report_unsupported_feature(abi::syscalls::nr::IOCTL, "TIOCPKT packet mode");
                Err(Errno::EINVAL)
            }
            TIOCGPKT => {
                t.write_obj(arg, &0i32)?;
                Ok(0)
            }
            TIOCGPTPEER => self.open_peer(t, file, arg as u32),
            _ => Err(Errno::ENOTTY),
        }
    }

    /// TIOCGPTPEER: opens the replica without a path lookup and installs
    /// it; its name is /dev/pts/N of the devpts mount the master came
    /// from, so ttyname() works on it.
    fn open_peer(self: &Arc<Self>, t: &TaskCtx, master: &OpenFile, flags: u32) -> SysResult<u64> {
        let c = Caller::new(t.kernel(), t.tgid(), t.tid());
        let ops = self.open_replica(&c, flags, None)?;
        let location = master.location.as_ref().and_then(|l| {
            let dir = l.dentry.parent()?;
            let d = dir.child(&c, self.index.to_string().as_bytes()).ok()?;
            Some(Location { mount: l.mount.clone(), dentry: d })
        });
        let keep = (libc::O_ACCMODE | libc::O_NONBLOCK | libc::O_APPEND | libc::O_LARGEFILE) as u32;
        let file = OpenFile::new(ops, flags & keep, location);
        let fd = t.files().install(file, flags & libc::O_CLOEXEC as u32 != 0)?;
        Ok(fd as u64)
    }
}

/// termios2 speeds for `tio`: the explicit ones with BOTHER, else those
/// its CBAUD/CIBAUD bits name.
fn speeds_of(tio: &Termios, explicit: Option<(u32, u32)>) -> (u32, u32) {
    const CBAUD: u32 = 0o10017;
    const BOTHER: u32 = 0o10000;
    const IBSHIFT: u32 = 16;
    const LOW: [u32; 16] = [0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400];
    const HIGH: [u32; 15] = [57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000];
    let decode = |bits: u32, given: Option<u32>| -> u32 {
        if bits & CBAUD == BOTHER {
            return given.unwrap_or(0);
        }
        if bits & BOTHER == 0 {
            LOW[(bits & 0o17) as usize]
        } else {
            HIGH.get((bits & 0o17) as usize - 1).copied().unwrap_or(0)
        }
    };
    let out = decode(tio.cflag & CBAUD, explicit.map(|e| e.1));
    let ibits = (tio.cflag >> IBSHIFT) & CBAUD;
    let inp = if ibits == 0 { out } else { decode(ibits, explicit.map(|e| e.0)) };
    (inp, out)
}

/// The master end (what /dev/ptmx opens).
pub struct MasterFile {
    term: Arc<Terminal>,
    stat: Stat,
}

impl MasterFile {
    pub fn terminal(&self) -> &Arc<Terminal> {
        &self.term
    }
}

impl FileOps for MasterFile {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        self.term.master_read(t, file, buf)
    }
    fn write(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        self.term.master_write(t, file, buf)
    }
    fn stat(&self) -> SysResult<Stat> {
        Ok(self.stat)
    }
    fn ioctl(&self, t: &TaskCtx, file: &OpenFile, cmd: u64, arg: u64) -> SysResult<u64> {
        self.term.ioctl(t, file, true, cmd, arg)
    }
    fn readiness(&self) -> u32 {
        self.term.master_readiness()
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.term.queue)
    }
    fn release(&self) {
        self.term.master_closed();
    }
}

/// The replica end (/dev/pts/N, or /dev/tty naming it).
pub struct ReplicaFile {
    term: Arc<Terminal>,
    /// The inode fstat reports when opened as /dev/tty.
    ident: Option<Stat>,
}

impl FileOps for ReplicaFile {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        self.term.replica_read(t, file, buf)
    }
    fn write(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        self.term.replica_write(t, file, buf)
    }
    fn stat(&self) -> SysResult<Stat> {
        Ok(self.ident.unwrap_or_else(|| self.term.replica_stat()))
    }
    fn ioctl(&self, t: &TaskCtx, file: &OpenFile, cmd: u64, arg: u64) -> SysResult<u64> {
        self.term.ioctl(t, file, false, cmd, arg)
    }
    fn readiness(&self) -> u32 {
        self.term.replica_readiness()
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.term.queue)
    }
    fn release(&self) {
        self.term.replica_closed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn termios2_speeds_follow_cbaud_and_bother() {
        let tio = Termios::default_slave();
        assert_eq!(speeds_of(&tio, None), (38400, 38400));
        let mut hi = tio;
        hi.cflag = (hi.cflag & !0o10017) | 0o10002;
        assert_eq!(speeds_of(&hi, None), (115200, 115200));
        let mut other = tio;
        other.cflag = (other.cflag & !0o10017) | 0o10000;
        assert_eq!(speeds_of(&other, Some((0, 31250))), (31250, 31250));
    }

    #[test]
    fn replica_numbers_follow_linux() {
        let t = Terminal::new(3, Weak::new(), 0);
        let st = t.replica_stat();
        assert_eq!(st.st_rdev, libc::makedev(136, 3));
        assert_eq!(st.st_ino, 6);
        assert_eq!(st.st_mode, S_IFCHR | 0o620);
        assert_eq!(st.st_gid, TTY_GID);
        assert_eq!(Terminal::new(300, Weak::new(), 0).rdev(), libc::makedev(137, 44));
    }
}
