//! Host descriptors passed in from outside: the container's stdio (a
//! terminal, a pipe to the caller, a file).
//!
//! The sentry never blocks in a host read or write it cannot interrupt: it
//! polls the host descriptor together with the task's wake-up eventfd, so a
//! signal for the task ends the wait (ERESTARTSYS) as Linux would.

use super::events::{POLLERR, POLLHUP, POLLIN, POLLOUT};
use super::{FileOps, OpenFile};
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::{Stat, Winsize};
use abi::Errno;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

/// Linux's `struct termios` as TCGETS/TCSETS copy it (not glibc's).
const KERNEL_TERMIOS_SIZE: usize = 36;

pub struct HostFile {
    fd: OwnedFd,
    /// The terminal's foreground process group, as the sandbox sees it.
    /// Host process groups mean nothing inside, so TIOCSPGRP/TIOCGPGRP are
    /// served from here (0: not set yet, reported as the caller's group).
    foreground: AtomicI32,
}

pub fn open(fd: OwnedFd) -> SysResult<Arc<OpenFile>> {
    // SAFETY: F_GETFL on a descriptor we own.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if fl < 0 {
        return Err(Errno::EBADF);
    }
    // The description's O_NONBLOCK is the sandbox's own; the host
    // descriptor's status flags (shared with the caller) are left alone.
    let flags = (fl & (libc::O_ACCMODE | libc::O_APPEND)) as u32;
    Ok(OpenFile::new(Box::new(HostFile { fd, foreground: AtomicI32::new(0) }), flags, None))
}

fn last_errno() -> Errno {
    Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
}

impl HostFile {
    fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Waits until the host descriptor has `events` (or an error/hangup),
    /// a signal arrives for the task (ERESTARTSYS), or, when `nonblock`,
    /// fails at once with EAGAIN.
    ///
    /// A descriptor that is ready goes through even with a signal pending:
    /// as on Linux, only a call that would block is interrupted. (Checking
    /// the signal first made a SIGCHLD that came in just before a write to
    /// a ready stderr pipe fail the write with EINTR, losing the message of
    /// a shell whose handler has no SA_RESTART.)
    fn wait_ready(&self, t: &TaskCtx, events: i16, nonblock: bool) -> SysResult<()> {
        let waiter = &t.task.waiter;
        loop {
            // Drain first, then check: a wake-up after the check stays
            // latched in the eventfd and ends the poll below.
            waiter.drain_event();
            if self.poll_ready(events, None)? {
                return Ok(());
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            if t.signal_pending() || t.task_exiting() {
                return Err(Errno::ERESTARTSYS);
            }
            // Sleeps until the descriptor is ready or the task is woken;
            // either way the loop checks again.
            self.poll_ready(events, Some(waiter.event_fd()))?;
        }
    }

    /// Whether the host descriptor has `events` (or an error/hangup) now
    /// (`wake` None) or, with `wake`, once it or the eventfd `wake` is
    /// readable, whichever comes first.
    fn poll_ready(&self, events: i16, wake: Option<i32>) -> SysResult<bool> {
        let mut fds = [
            libc::pollfd { fd: self.raw(), events, revents: 0 },
            libc::pollfd { fd: wake.unwrap_or(-1), events: libc::POLLIN, revents: 0 },
        ];
        let (n, timeout) = if wake.is_some() { (2, -1) } else { (1, 0) };
        loop {
            // SAFETY: fds is a valid array of at least n pollfds.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), n, timeout) };
            if r >= 0 {
                return Ok(fds[0].revents != 0);
            }
            let e = last_errno();
            if e != Errno::EINTR {
                return Err(e);
            }
        }
    }

    fn host_ioctl(&self, cmd: u64, arg: *mut u8) -> SysResult<i32> {
        // SAFETY: the caller passes a buffer large enough for `cmd`.
        let r = unsafe { libc::ioctl(self.raw(), cmd as _, arg) };
        if r < 0 {
            Err(last_errno())
        } else {
            Ok(r)
        }
    }

    fn is_tty(&self) -> bool {
        // SAFETY: isatty only inspects the descriptor.
        unsafe { libc::isatty(self.raw()) == 1 }
    }
}

impl FileOps for HostFile {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        loop {
            self.wait_ready(t, libc::POLLIN, file.nonblocking())?;
            // SAFETY: buf is valid for buf.len() bytes.
            let n = unsafe { libc::read(self.raw(), buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            match last_errno() {
                // Another reader of the same host file won the race.
                Errno::EAGAIN | Errno::EINTR => continue,
                e => return Err(e),
            }
        }
    }

    fn write(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        loop {
            self.wait_ready(t, libc::POLLOUT, file.nonblocking())?;
            // SAFETY: buf is valid for buf.len() bytes.
            let n = unsafe { libc::write(self.raw(), buf.as_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            match last_errno() {
                Errno::EAGAIN | Errno::EINTR => continue,
                Errno::EPIPE => {
                    t.signal_self(abi::signal::SIGPIPE);
                    return Err(Errno::EPIPE);
                }
                e => return Err(e),
            }
        }
    }

    fn read_at(&self, _t: Option<&TaskCtx>, buf: &mut [u8], offset: u64) -> SysResult<usize> {
        // SAFETY: buf is valid for buf.len() bytes; pread on a pipe or
        // terminal fails with ESPIPE, as it should.
        let n = unsafe { libc::pread(self.raw(), buf.as_mut_ptr().cast(), buf.len(), offset as i64) };
        if n < 0 {
            Err(last_errno())
        } else {
            Ok(n as usize)
        }
    }

    fn write_at(&self, _t: &TaskCtx, buf: &[u8], offset: u64) -> SysResult<usize> {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::pwrite(self.raw(), buf.as_ptr().cast(), buf.len(), offset as i64) };
        if n < 0 {
            Err(last_errno())
        } else {
            Ok(n as usize)
        }
    }

    fn seek(&self, _file: &OpenFile, offset: i64, whence: i32) -> SysResult<u64> {
        // Stdio redirected from a file shares its offset with the caller,
        // as it would with a process the caller spawned.
        // SAFETY: lseek on our own descriptor.
        let r = unsafe { libc::lseek(self.raw(), offset, whence) };
        if r < 0 {
            Err(last_errno())
        } else {
            Ok(r as u64)
        }
    }

    fn position(&self, file: &OpenFile) -> SysResult<u64> {
        self.seek(file, 0, libc::SEEK_CUR)
    }

    fn set_position(&self, file: &OpenFile, pos: u64) -> SysResult<()> {
        let pos = i64::try_from(pos).map_err(|_| Errno::EINVAL)?;
        self.seek(file, pos, libc::SEEK_SET).map(drop)
    }

    fn stat(&self) -> SysResult<Stat> {
        super::host::host_fstat(self.raw())
    }

    fn ioctl(&self, t: &TaskCtx, _file: &OpenFile, cmd: u64, arg: u64) -> SysResult<u64> {
        let mut buf = [0u8; 64];
        match cmd {
            libc::TCGETS => {
                self.host_ioctl(cmd, buf.as_mut_ptr())?;
                t.copy_out(arg, &buf[..KERNEL_TERMIOS_SIZE])?;
                Ok(0)
            }
            libc::TCSETS | libc::TCSETSW | libc::TCSETSF => {
                t.copy_in_into(arg, &mut buf[..KERNEL_TERMIOS_SIZE])?;
                self.host_ioctl(cmd, buf.as_mut_ptr())?;
                Ok(0)
            }
            libc::TIOCGWINSZ => {
                let mut ws = Winsize::default();
                self.host_ioctl(cmd, (&mut ws as *mut Winsize).cast())?;
                t.write_obj(arg, &ws)?;
                Ok(0)
            }
            libc::TIOCSWINSZ => {
                let mut ws: Winsize = t.read_obj(arg)?;
                self.host_ioctl(cmd, (&mut ws as *mut Winsize).cast())?;
                Ok(0)
            }
            libc::FIONREAD => {
                let mut n: i32 = 0;
                self.host_ioctl(cmd, (&mut n as *mut i32).cast())?;
                t.write_obj(arg, &n)?;
                Ok(0)
            }
            libc::TIOCGPGRP => {
                if !self.is_tty() {
                    return Err(Errno::ENOTTY);
                }
                let mut pg = self.foreground.load(Ordering::Relaxed);
                if pg == 0 {
                    pg = t.task.tg.state.lock().unwrap().pgid;
                }
                t.write_obj(arg, &t.pid_seen(pg))?;
                Ok(0)
            }
            libc::TIOCSPGRP => {
                if !self.is_tty() {
                    return Err(Errno::ENOTTY);
                }
                let pg: i32 = t.read_obj(arg)?;
                if pg < 0 {
                    return Err(Errno::EINVAL);
                }
                let pg = t.pid_named(pg).ok_or(Errno::ESRCH)?;
                self.foreground.store(pg, Ordering::Relaxed);
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    fn readiness(&self) -> u32 {
        let mut p = libc::pollfd { fd: self.raw(), events: libc::POLLIN | libc::POLLOUT, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        if r <= 0 {
            return 0;
        }
        let rv = p.revents;
        let mut ev = 0;
        for (h, s) in [(libc::POLLIN, POLLIN), (libc::POLLOUT, POLLOUT), (libc::POLLERR, POLLERR), (libc::POLLHUP, POLLHUP)] {
            if rv & h != 0 {
                ev |= s;
            }
        }
        ev
    }

    fn host_fd(&self) -> Option<i32> {
        Some(self.raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::os::fd::FromRawFd;

    #[test]
    fn position_is_the_host_descriptions_shared_offset() {
        let mut caller = tempfile_in_tmp();
        caller.write_all(b"written by the caller\n").unwrap();
        // SAFETY: dup of a descriptor we own; the copy shares its description.
        let shared = unsafe { OwnedFd::from_raw_fd(libc::dup(caller.as_raw_fd())) };
        let file = open(shared).unwrap();
        assert_eq!(file.position().unwrap(), 22);
        file.set_position(5).unwrap();
        assert_eq!(caller.stream_position().unwrap(), 5, "the caller sees the sandbox's move");
        caller.seek(SeekFrom::End(0)).unwrap();
        assert_eq!(file.position().unwrap(), 22, "the sandbox sees the caller's move");
        assert_eq!(*file.offset.lock().unwrap(), 0, "no private copy is kept");
    }

    fn tempfile_in_tmp() -> std::fs::File {
        let path = std::env::temp_dir().join(format!("veil-hostfd-{}", std::process::id()));
        let f = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }
}
