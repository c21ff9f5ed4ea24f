//! Pipes: a 64 KiB ring buffer between reader and writer descriptions.
//!
//! Writes of at most PIPE_BUF bytes are atomic (they wait for room for the
//! whole write); larger writes may be split. A read with no writers left
//! returns end of file; a write with no readers left fails with EPIPE and
//! raises SIGPIPE.

use super::events::{POLLERR, POLLHUP, POLLIN, POLLOUT};
use super::node::{synthetic_stat, S_IFIFO};
use super::{FileOps, OpenFile};
use crate::task::TaskCtx;
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const PIPE_SIZE: usize = 64 * 1024;
pub const PIPE_BUF: usize = 4096;

/// The buffer and the ends still open; pure, so it is tested on its own.
#[derive(Debug)]
pub struct Ring {
    buf: VecDeque<u8>,
    cap: usize,
    pub readers: u32,
    pub writers: u32,
}

impl Ring {
    pub fn new(cap: usize) -> Ring {
        Ring { buf: VecDeque::with_capacity(cap), cap, readers: 1, writers: 1 }
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn room(&self) -> usize {
        self.cap - self.buf.len()
    }
    /// Moves up to `out.len()` bytes out.
    pub fn take(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.buf.len());
        for (i, b) in self.buf.drain(..n).enumerate() {
            out[i] = b;
        }
        n
    }
    /// Moves as much of `data` in as fits.
    pub fn put(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.room());
        self.buf.extend(&data[..n]);
        n
    }
}

pub struct Pipe {
    ring: Mutex<Ring>,
    /// Notified on every change: data, room, an end closing.
    queue: WaitQueue,
    ino: u64,
}

static NEXT_PIPE_INO: AtomicU64 = AtomicU64::new(1);

impl Pipe {
    fn stat(&self) -> Stat {
        let mut st = synthetic_stat(super::vfs::DEV_ANON, self.ino, S_IFIFO | 0o600, 1, 0, 0);
        st.st_blksize = PIPE_BUF as i64;
        st
    }
}

/// One end of a pipe (a fifo opened O_RDWR is both ends at once).
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    reader: bool,
    writer: bool,
}

/// A new pipe: (read end, write end). `flags` may carry O_NONBLOCK
/// (and O_DIRECT, refused: packet mode is not implemented).
pub fn new_pipe(flags: u32) -> SysResult<(Arc<OpenFile>, Arc<OpenFile>)> {
    if flags & libc::O_DIRECT as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    let pipe = Arc::new(Pipe { ring: Mutex::new(Ring::new(PIPE_SIZE)), queue: WaitQueue::new(), ino: NEXT_PIPE_INO.fetch_add(1, Ordering::Relaxed) });
    let nb = flags & libc::O_NONBLOCK as u32;
    let r = OpenFile::new(Box::new(PipeEnd { pipe: pipe.clone(), reader: true, writer: false }), libc::O_RDONLY as u32 | nb, None);
    let w = OpenFile::new(Box::new(PipeEnd { pipe, reader: false, writer: true }), libc::O_WRONLY as u32 | nb, None);
    Ok((r, w))
}

impl FileOps for PipeEnd {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        if !self.reader {
            return Err(Errno::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let seen = t.prepare_block(&[&self.pipe.queue]);
            {
                let mut r = self.pipe.ring.lock().unwrap();
                if !r.is_empty() {
                    let n = r.take(buf);
                    drop(r);
                    self.pipe.queue.unregister(&t.task.waiter);
                    self.pipe.queue.notify_all();
                    return Ok(n);
                }
                if r.writers == 0 {
                    drop(r);
                    self.pipe.queue.unregister(&t.task.waiter);
                    return Ok(0);
                }
            }
            if file.nonblocking() {
                self.pipe.queue.unregister(&t.task.waiter);
                return Err(Errno::EAGAIN);
            }
            t.block_since(&[&self.pipe.queue], seen, None)?;
        }
    }

    fn write(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        if !self.writer {
            return Err(Errno::EBADF);
        }
        let mut done = 0;
        loop {
            let seen = t.prepare_block(&[&self.pipe.queue]);
            let outcome = {
                let mut r = self.pipe.ring.lock().unwrap();
                if r.readers == 0 {
                    Err(Errno::EPIPE)
                } else {
                    let rest = &buf[done..];
                    // Small writes go in whole or not at all.
                    if rest.len() <= PIPE_BUF && r.room() < rest.len() {
                        Ok(0)
                    } else {
                        Ok(r.put(rest))
                    }
                }
            };
            match outcome {
                Err(e) => {
                    self.pipe.queue.unregister(&t.task.waiter);
                    if done > 0 {
                        return Ok(done);
                    }
                    t.signal_self(abi::signal::SIGPIPE);
                    return Err(e);
                }
                Ok(n) => {
                    if n > 0 {
                        self.pipe.queue.notify_all();
                    }
                    done += n;
                }
            }
            if done == buf.len() {
                self.pipe.queue.unregister(&t.task.waiter);
                return Ok(done);
            }
            if file.nonblocking() {
                self.pipe.queue.unregister(&t.task.waiter);
                return if done > 0 { Ok(done) } else { Err(Errno::EAGAIN) };
            }
            match t.block_since(&[&self.pipe.queue], seen, None) {
                Ok(()) => {}
                // Interrupted after some bytes went in: report those.
                Err(_) if done > 0 => return Ok(done),
                Err(e) => return Err(e),
            }
        }
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(self.pipe.stat())
    }

    fn ioctl(&self, t: &TaskCtx, _file: &OpenFile, cmd: u64, arg: u64) -> SysResult<u64> {
        if cmd == libc::FIONREAD {
            let n = self.pipe.ring.lock().unwrap().len() as i32;
            t.write_obj(arg, &n)?;
            return Ok(0);
        }
        Err(Errno::ENOTTY)
    }

    fn readiness(&self) -> u32 {
        let r = self.pipe.ring.lock().unwrap();
        let mut ev = 0;
        if self.reader {
            ev |= pipe_readiness(&r, true);
        }
        if self.writer {
            ev |= pipe_readiness(&r, false);
        }
        ev
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pipe.queue)
    }

    fn release(&self) {
        {
            let mut r = self.pipe.ring.lock().unwrap();
            if self.reader {
                r.readers -= 1;
            }
            if self.writer {
                r.writers -= 1;
            }
        }
        self.pipe.queue.notify_all();
    }
}

/// A named pipe (a fifo inode of tmpfs): one pipe shared by every open.
/// Opening for reading waits for a writer and opening for writing waits
/// for a reader, unless O_NONBLOCK (then a writer with no reader gets
/// ENXIO), as fifo(7) describes.
pub struct Fifo {
    pipe: Arc<Pipe>,
    /// Opens of each kind so far: a waiting opener is satisfied by any
    /// open of the other kind, even one that has closed again.
    opened: Mutex<(u64, u64)>,
}

impl Fifo {
    pub fn new(ino: u64) -> Arc<Fifo> {
        let mut ring = Ring::new(PIPE_SIZE);
        ring.readers = 0;
        ring.writers = 0;
        Arc::new(Fifo { pipe: Arc::new(Pipe { ring: Mutex::new(ring), queue: WaitQueue::new(), ino }), opened: Mutex::new((0, 0)) })
    }

    pub fn open(&self, c: &super::node::Caller, flags: u32) -> SysResult<Box<dyn FileOps>> {
        let f = flags as i32;
        let nonblock = f & libc::O_NONBLOCK != 0;
        let (reader, writer) = match f & libc::O_ACCMODE {
            libc::O_RDONLY => (true, false),
            libc::O_WRONLY => (false, true),
            _ => (true, true),
        };
        if writer && !reader && nonblock && self.pipe.ring.lock().unwrap().readers == 0 {
            return Err(Errno::ENXIO);
        }
        let before = {
            let mut r = self.pipe.ring.lock().unwrap();
            let mut o = self.opened.lock().unwrap();
            if reader {
                r.readers += 1;
                o.0 += 1;
            }
            if writer {
                r.writers += 1;
                o.1 += 1;
            }
            *o
        };
        self.pipe.queue.notify_all();
        let end = Box::new(PipeEnd { pipe: self.pipe.clone(), reader, writer });
        if (reader && writer) || nonblock {
            return Ok(end);
        }
        // Wait for the other side; dropping `end` on failure undoes the count.
        let task = c.task()?;
        let w = &task.waiter;
        loop {
            self.pipe.queue.register(w);
            let seen = w.seq();
            let now = *self.opened.lock().unwrap();
            let met = if reader { now.1 > before.1 || self.pipe.ring.lock().unwrap().writers > 0 } else { now.0 > before.0 || self.pipe.ring.lock().unwrap().readers > 0 };
            if met {
                self.pipe.queue.unregister(w);
                return Ok(end);
            }
            if crate::signal::has_deliverable(&task) {
                self.pipe.queue.unregister(w);
                return Err(Errno::ERESTARTSYS);
            }
            w.wait(seen, None);
        }
    }
}

/// poll events of one end, as Linux's pipe_poll computes them.
pub fn pipe_readiness(r: &Ring, reader: bool) -> u32 {
    let mut ev = 0;
    if reader {
        if !r.is_empty() {
            ev |= POLLIN;
        }
        if r.writers == 0 {
            ev |= POLLHUP;
        }
    } else {
        if r.room() > 0 {
            ev |= POLLOUT;
        }
        if r.readers == 0 {
            ev |= POLLERR;
        }
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_moves_bytes_in_order_and_respects_capacity() {
        let mut r = Ring::new(8);
        assert_eq!(r.put(b"hello"), 5);
        assert_eq!(r.put(b"world"), 3);
        assert_eq!(r.room(), 0);
        let mut out = [0u8; 6];
        assert_eq!(r.take(&mut out), 6);
        assert_eq!(&out, b"hellow");
        assert_eq!(r.put(b"xyz"), 3);
        let mut out = [0u8; 16];
        let n = r.take(&mut out);
        assert_eq!(&out[..n], b"orxyz");
        assert!(r.is_empty());
    }

    #[test]
    fn readiness_follows_contents_and_ends() {
        let mut r = Ring::new(4);
        assert_eq!(pipe_readiness(&r, true), 0);
        assert_eq!(pipe_readiness(&r, false), POLLOUT);
        r.put(b"abcd");
        assert_eq!(pipe_readiness(&r, true), POLLIN);
        assert_eq!(pipe_readiness(&r, false), 0);
        r.writers = 0;
        assert_eq!(pipe_readiness(&r, true), POLLIN | POLLHUP);
        r.readers = 0;
        assert_eq!(pipe_readiness(&r, false), POLLERR);
    }
}
