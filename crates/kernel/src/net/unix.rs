//! Unix domain sockets: stream, datagram and seqpacket, after gVisor's
//! `transport/unix` and Linux's `af_unix.c`.
//!
//! Every socket owns its receive queue; sending appends to the peer's
//! queue (connected) or to the addressed socket's (datagram). Each socket
//! has one wait queue, notified whenever its readiness may change: data or
//! a connection arrived, the peer read (room to write again), the peer
//! shut down or closed. A state lock is never held while another socket's
//! is taken, except connect (client, then listener), which no path takes
//! in the other order.
//!
//! Names: abstract names (`\0…`) live in a table of the kernel's unix
//! family ([`Names`]), as do path names (keyed by the resolved absolute
//! path). A bound path is not (yet) a socket inode in the file system:
//! stat and unlink do not see it.
//!
//! The socket calls reach this through the [`Socket`](super::socket::Socket)
//! interface (`unix/family.rs`), which parses `sockaddr_un` and control
//! messages.

mod family;
pub use family::UnixFamily;

use super::consts::*;
use super::Ucred;
use crate::fs::events::*;
use crate::fs::{anon, FileOps, OpenFile};
use crate::task::TaskCtx;
use crate::wait::WaitQueue;
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Linux's default SO_SNDBUF/SO_RCVBUF (net.core.wmem_default).
pub const DEFAULT_BUF: usize = 212_992;
/// net.unix.max_dgram_qlen: datagrams a receiver queues before senders wait.
pub const MAX_DGRAM_QLEN: usize = 10;
const MIN_SNDBUF: usize = 4608;
const MIN_RCVBUF: usize = 2304;
/// Linux's SOMAXCONN.
const SOMAXCONN: usize = 4096;

/// Where a name lives in the family's table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// The bytes after the leading NUL.
    Abstract(Vec<u8>),
    /// The absolute path inside the sandbox.
    Path(Vec<u8>),
}

/// A bound name: its table key and the `sockaddr_un` getsockname returns.
#[derive(Clone, Debug)]
pub struct Name {
    pub key: Key,
    pub raw: Vec<u8>,
}

/// The `sockaddr_un` of an unnamed socket: the family alone.
pub fn unnamed() -> Vec<u8> {
    (AF_UNIX as u16).to_ne_bytes().to_vec()
}

/// The names bound in one kernel's unix family.
#[derive(Default)]
pub struct Names {
    table: Mutex<HashMap<Key, Weak<UnixSocket>>>,
    /// Where the next autobind name is looked for.
    next_autobind: AtomicU32,
}

impl Names {
    /// The live socket bound to `key`.
    pub fn lookup(&self, key: &Key) -> Option<Arc<UnixSocket>> {
        self.table.lock().unwrap().get(key).and_then(Weak::upgrade).filter(|s| !s.state.lock().unwrap().closed)
    }
}

/// One queued message (a datagram, a seqpacket record, or a chunk of a
/// stream; stream chunks are read across, except past descriptors).
struct Msg {
    data: Vec<u8>,
    /// Bytes of `data` already read (streams).
    off: usize,
    rights: Vec<Arc<OpenFile>>,
    cred: Ucred,
    /// The sender's address; empty when it has no name.
    from: Vec<u8>,
}

impl Msg {
    fn left(&self) -> usize {
        self.data.len() - self.off
    }
}

struct Backlog {
    pending: VecDeque<Arc<UnixSocket>>,
    max: usize,
}

#[derive(Default)]
struct State {
    name: Option<Name>,
    /// The connected peer (stream, seqpacket), or the default destination
    /// (datagram).
    peer: Option<Arc<UnixSocket>>,
    /// A connection-oriented socket that has been connected (stays true
    /// after the peer goes: reads then see end of file).
    connected: bool,
    listening: Option<Backlog>,
    rcv: VecDeque<Msg>,
    rcv_bytes: usize,
    /// RCV_SHUTDOWN: nothing more will arrive (our SHUT_RD, the peer's
    /// SHUT_WR or close).
    shut_rd: bool,
    /// SEND_SHUTDOWN: we may not send (our SHUT_WR, the peer's SHUT_RD or close).
    shut_wr: bool,
    /// A pending error (SO_ERROR), reported once.
    err: Option<Errno>,
    closed: bool,
    /// Accepted but not yet: a connection waiting in a listener's backlog.
    embryo: bool,
    passcred: bool,
    reuseaddr: bool,
    keepalive: bool,
    sndbuf: usize,
    rcvbuf: usize,
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
    /// The peer's credentials (SO_PEERCRED): taken at connect/listen time.
    peercred: Option<Ucred>,
    /// The credentials a listener hands to the clients that connect.
    listen_cred: Option<Ucred>,
}

pub struct UnixSocket {
    pub stype: i32,
    state: Mutex<State>,
    queue: WaitQueue,
    ino: u64,
    /// The table the socket's name is bound in (its family's).
    names: Arc<Names>,
    /// The socket itself, for the links peers and names keep to it.
    me: Weak<UnixSocket>,
}

/// What a receive returns.
pub struct Received {
    pub data: Vec<u8>,
    /// The message's full length (datagrams truncated into a short buffer).
    pub full_len: usize,
    pub rights: Vec<Arc<OpenFile>>,
    pub cred: Option<Ucred>,
    pub from: Vec<u8>,
}

fn deadline(d: Option<Duration>) -> Option<Instant> {
    d.map(|d| Instant::now() + d)
}

impl UnixSocket {
    pub fn new(stype: i32, names: &Arc<Names>) -> Arc<UnixSocket> {
        let st = State { sndbuf: DEFAULT_BUF, rcvbuf: DEFAULT_BUF, ..Default::default() };
        Arc::new_cyclic(|me| UnixSocket { stype, state: Mutex::new(st), queue: WaitQueue::new(), ino: anon::next_ino(), names: names.clone(), me: me.clone() })
    }

    /// This socket as the `Arc` its descriptions hold.
    fn arc(&self) -> Arc<UnixSocket> {
        self.me.upgrade().expect("a socket in use has a reference")
    }

    fn connection_oriented(&self) -> bool {
        self.stype != SOCK_DGRAM
    }

    /// socketpair(2): two sockets connected to each other.
    pub fn pair(stype: i32, cred: Ucred, names: &Arc<Names>) -> (Arc<UnixSocket>, Arc<UnixSocket>) {
        let (a, b) = (UnixSocket::new(stype, names), UnixSocket::new(stype, names));
        for (x, y) in [(&a, &b), (&b, &a)] {
            let mut s = x.state.lock().unwrap();
            s.peer = Some(y.clone());
            s.connected = true;
            s.peercred = Some(cred);
        }
        (a, b)
    }

    /// bind(2) to `name` (already parsed and, for paths, resolved).
    pub fn bind_name(&self, name: Name) -> SysResult<()> {
        let mut st = self.state.lock().unwrap();
        if st.name.is_some() || st.closed {
            return Err(Errno::EINVAL);
        }
        let mut table = self.names.table.lock().unwrap();
        if table.get(&name.key).and_then(Weak::upgrade).is_some_and(|s| !std::ptr::eq(Arc::as_ptr(&s), self) && !s.state.try_lock().map(|x| x.closed).unwrap_or(false)) {
            return Err(Errno::EADDRINUSE);
        }
        table.insert(name.key.clone(), self.me.clone());
        st.name = Some(name);
        Ok(())
    }

    /// An autobind name (bind with only the family): five hex digits in
    /// the abstract namespace, as Linux picks them.
    pub fn autobind(&self) -> SysResult<()> {
        for _ in 0..0x100000 {
            let n = (self.names.next_autobind.fetch_add(1, Ordering::Relaxed) + 1) & 0xfffff;
            let id = format!("{n:05x}").into_bytes();
            let mut raw = unnamed();
            raw.push(0);
            raw.extend_from_slice(&id);
            match self.bind_name(Name { key: Key::Abstract(id), raw }) {
                Err(Errno::EADDRINUSE) => continue,
                r => return r,
            }
        }
        Err(Errno::ENOSPC)
    }

    pub fn is_bound(&self) -> bool {
        self.state.lock().unwrap().name.is_some()
    }

    pub fn sockname(&self) -> Vec<u8> {
        self.state.lock().unwrap().name.as_ref().map(|n| n.raw.clone()).unwrap_or_else(unnamed)
    }

    /// getpeername(2): ENOTCONN when not connected.
    pub fn peer_name(&self) -> SysResult<Vec<u8>> {
        let peer = self.state.lock().unwrap().peer.clone().ok_or(Errno::ENOTCONN)?;
        Ok(peer.sockname())
    }

    pub fn listen_with(&self, backlog: i32, cred: Ucred) -> SysResult<()> {
        if !self.connection_oriented() {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut st = self.state.lock().unwrap();
        if st.name.is_none() || st.connected {
            return Err(Errno::EINVAL);
        }
        let max = (backlog.max(0) as usize).min(SOMAXCONN);
        match &mut st.listening {
            // listen again: only the backlog changes.
            Some(b) => b.max = max,
            None => st.listening = Some(Backlog { pending: VecDeque::new(), max }),
        }
        st.listen_cred = Some(cred);
        Ok(())
    }

    /// connect(2) for connection-oriented sockets: queues a new server-side
    /// socket on the listener's backlog and connects to it at once.
    pub fn connect_to(&self, t: &TaskCtx, target: &Arc<UnixSocket>, cred: Ucred, nonblock: bool) -> SysResult<()> {
        if !self.connection_oriented() {
            // A datagram socket's connect only sets the default destination.
            if target.stype != self.stype {
                return Err(Errno::EPROTOTYPE);
            }
            let old = {
                let mut st = self.state.lock().unwrap();
                st.peercred = Some(cred);
                st.peer.replace(target.clone())
            };
            drop(old);
            self.queue.notify_all();
            return Ok(());
        }
        {
            let st = self.state.lock().unwrap();
            if st.connected {
                return Err(Errno::EISCONN);
            }
            if st.listening.is_some() {
                return Err(Errno::EINVAL);
            }
        }
        if target.stype != self.stype {
            return Err(Errno::EPROTOTYPE);
        }
        let sndtimeo = self.state.lock().unwrap().sndtimeo;
        let until = deadline(sndtimeo);
        loop {
            let seen = t.prepare_block(&[&target.queue]);
            let outcome = {
                let mut ls = target.state.lock().unwrap();
                let listen_cred = ls.listen_cred;
                let name = ls.name.clone();
                let closed = ls.closed;
                match &mut ls.listening {
                    None => Err(Errno::ECONNREFUSED),
                    _ if closed => Err(Errno::ECONNREFUSED),
                    Some(b) if b.pending.len() > b.max => Ok(None),
                    Some(b) => {
                        let server = UnixSocket::new(self.stype, &self.names);
                        {
                            let mut ss = server.state.lock().unwrap();
                            ss.peer = Some(self.arc());
                            ss.connected = true;
                            ss.embryo = true;
                            ss.peercred = Some(cred);
                            // An accepted socket reports the listener's name.
                            ss.name = name;
                        }
                        b.pending.push_back(server.clone());
                        Ok(Some((server, listen_cred)))
                    }
                }
            };
            match outcome {
                Err(e) => {
                    target.queue.unregister(&t.task.waiter);
                    return Err(e);
                }
                Ok(Some((server, listen_cred))) => {
                    target.queue.unregister(&t.task.waiter);
                    {
                        let mut st = self.state.lock().unwrap();
                        st.peer = Some(server);
                        st.connected = true;
                        st.peercred = listen_cred;
                    }
                    target.queue.notify_all();
                    self.queue.notify_all();
                    return Ok(());
                }
                Ok(None) => {}
            }
            if nonblock {
                target.queue.unregister(&t.task.waiter);
                return Err(Errno::EAGAIN);
            }
            match t.block_since(&[&target.queue], seen, until) {
                Ok(()) => {}
                Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
                Err(e) => return Err(e),
            }
        }
    }

    /// accept(2): the next queued connection.
    pub fn accept_next(&self, t: &TaskCtx, nonblock: bool) -> SysResult<Arc<UnixSocket>> {
        let until = deadline(self.state.lock().unwrap().rcvtimeo);
        loop {
            let seen = t.prepare_block(&[&self.queue]);
            let got = {
                let mut st = self.state.lock().unwrap();
                match &mut st.listening {
                    None => Err(Errno::EINVAL),
                    Some(b) => Ok(b.pending.pop_front()),
                }
            };
            match got {
                Err(e) => {
                    self.queue.unregister(&t.task.waiter);
                    return Err(e);
                }
                Ok(Some(s)) => {
                    self.queue.unregister(&t.task.waiter);
                    s.state.lock().unwrap().embryo = false;
                    // Room in the backlog for a waiting connect.
                    self.queue.notify_all();
                    return Ok(s);
                }
                Ok(None) => {}
            }
            if nonblock {
                self.queue.unregister(&t.task.waiter);
                return Err(Errno::EAGAIN);
            }
            match t.block_since(&[&self.queue], seen, until) {
                Ok(()) => {}
                Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
                Err(e) => return Err(e),
            }
        }
    }

    /// shutdown(2).
    pub fn shut(&self, how: i32) -> SysResult<()> {
        if !(SHUT_RD..=SHUT_RDWR).contains(&how) {
            return Err(Errno::EINVAL);
        }
        let (rd, wr) = (how != SHUT_WR, how != SHUT_RD);
        let peer = {
            let mut st = self.state.lock().unwrap();
            if self.connection_oriented() && !st.connected {
                return Err(Errno::ENOTCONN);
            }
            st.shut_rd |= rd;
            st.shut_wr |= wr;
            st.peer.clone()
        };
        // The peer of a connection sees the mirror image.
        if let Some(p) = peer.filter(|_| self.connection_oriented()) {
            {
                let mut ps = p.state.lock().unwrap();
                ps.shut_rd |= wr;
                ps.shut_wr |= rd;
            }
            p.queue.notify_all();
        }
        self.queue.notify_all();
        Ok(())
    }

    /// Sends one message. `to` is the destination of an unconnected
    /// datagram socket; `nonblock` is MSG_DONTWAIT or O_NONBLOCK.
    /// EPIPE is returned without raising SIGPIPE (the caller does that).
    pub fn send(&self, t: &TaskCtx, data: &[u8], rights: Vec<Arc<OpenFile>>, cred: Ucred, to: Option<Arc<UnixSocket>>, nonblock: bool) -> SysResult<usize> {
        let (peer, from, sndbuf, until) = {
            let st = self.state.lock().unwrap();
            if st.shut_wr {
                return Err(Errno::EPIPE);
            }
            let peer = match (&to, self.connection_oriented()) {
                (Some(_), true) => return Err(if st.connected { Errno::EISCONN } else { Errno::EOPNOTSUPP }),
                (Some(p), false) => p.clone(),
                (None, _) => match &st.peer {
                    Some(p) => p.clone(),
                    None if self.connection_oriented() && st.connected => return Err(Errno::EPIPE),
                    None => return Err(Errno::ENOTCONN),
                },
            };
            // An unnamed sender is reported with an empty address.
            let from = st.name.as_ref().map(|n| n.raw.clone()).unwrap_or_default();
            (peer, from, st.sndbuf, deadline(st.sndtimeo))
        };
        if !self.connection_oriented() && peer.stype != self.stype {
            return Err(Errno::EPROTOTYPE);
        }
        let record = self.stype != SOCK_STREAM;
        if record && data.len() > sndbuf.saturating_sub(32).max(MIN_SNDBUF) {
            return Err(Errno::EMSGSIZE);
        }
        let mut rights = Some(rights);
        let mut done = 0;
        loop {
            let seen = t.prepare_block(&[&self.queue, &peer.queue]);
            let unregister = || {
                self.queue.unregister(&t.task.waiter);
                peer.queue.unregister(&t.task.waiter);
            };
            let outcome = {
                let mut ps = peer.state.lock().unwrap();
                if ps.closed {
                    Err(if self.connection_oriented() { Errno::EPIPE } else { Errno::ECONNREFUSED })
                } else if self.connection_oriented() && ps.shut_rd {
                    Err(Errno::EPIPE)
                } else if !self.connection_oriented() && ps.peer.as_ref().is_some_and(|pp| !std::ptr::eq(Arc::as_ptr(pp), self)) && to.is_none() {
                    // A datagram socket connected elsewhere takes nothing from us.
                    Err(Errno::EPERM)
                } else if record {
                    let full = !ps.rcv.is_empty() && (ps.rcv_bytes + data.len() > ps.rcvbuf.max(sndbuf) || (self.stype == SOCK_DGRAM && ps.rcv.len() > MAX_DGRAM_QLEN));
                    if full {
                        Ok(0)
                    } else {
                        ps.rcv_bytes += data.len();
                        ps.rcv.push_back(Msg { data: data.to_vec(), off: 0, rights: rights.take().unwrap_or_default(), cred, from: from.clone() });
                        Ok(data.len().max(1))
                    }
                } else {
                    let room = sndbuf.saturating_sub(ps.rcv_bytes);
                    let n = room.min(data.len() - done);
                    if n == 0 && !(data.is_empty() && done == 0) {
                        Ok(0)
                    } else {
                        ps.rcv_bytes += n;
                        ps.rcv.push_back(Msg { data: data[done..done + n].to_vec(), off: 0, rights: rights.take().unwrap_or_default(), cred, from: from.clone() });
                        Ok(n.max(1))
                    }
                }
            };
            match outcome {
                Err(e) => {
                    unregister();
                    if done > 0 {
                        return Ok(done);
                    }
                    return Err(e);
                }
                Ok(0) => {}
                Ok(n) => {
                    peer.queue.notify_all();
                    if record || data.is_empty() {
                        unregister();
                        return Ok(data.len());
                    }
                    done += n;
                    if done == data.len() {
                        unregister();
                        return Ok(done);
                    }
                }
            }
            if nonblock {
                unregister();
                return if done > 0 { Ok(done) } else { Err(Errno::EAGAIN) };
            }
            match t.block_since(&[&self.queue, &peer.queue], seen, until) {
                Ok(()) => {}
                Err(_) if done > 0 => return Ok(done),
                Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives up to `max` bytes. `peek` leaves the data queued (and
    /// duplicates any descriptors); `waitall` keeps a stream read going
    /// until `max` bytes came (or EOF, a signal, an error).
    pub fn recv(&self, t: &TaskCtx, max: usize, peek: bool, waitall: bool, nonblock: bool) -> SysResult<Received> {
        let mut out = Received { data: Vec::new(), full_len: 0, rights: Vec::new(), cred: None, from: Vec::new() };
        let until = deadline(self.state.lock().unwrap().rcvtimeo);
        loop {
            let seen = t.prepare_block(&[&self.queue]);
            let (progress, finished, peer) = {
                let mut st = self.state.lock().unwrap();
                if self.stype == SOCK_STREAM {
                    let r = self.take_stream(&mut st, &mut out, max, peek);
                    if let Some(e) = r {
                        drop(st);
                        self.queue.unregister(&t.task.waiter);
                        return Err(e);
                    }
                } else if out.full_len == 0 && out.data.is_empty() {
                    if let Some(e) = self.take_record(&mut st, &mut out, max, peek) {
                        drop(st);
                        self.queue.unregister(&t.task.waiter);
                        return Err(e);
                    }
                }
                let got = !out.data.is_empty() || out.full_len > 0 || !out.rights.is_empty();
                let eof = st.rcv.is_empty() && (st.shut_rd || (self.connection_oriented() && st.connected && st.peer.is_none()));
                let stop_here = !out.rights.is_empty() || !waitall || peek || self.stype != SOCK_STREAM || out.data.len() >= max;
                (got, (got && stop_here) || eof, st.peer.clone())
            };
            if progress && !peek {
                // Room for the peer's writes.
                if let Some(p) = peer {
                    p.queue.notify_all();
                }
                self.queue.notify_all();
            }
            if finished {
                self.queue.unregister(&t.task.waiter);
                return Ok(out);
            }
            if nonblock {
                self.queue.unregister(&t.task.waiter);
                return if progress { Ok(out) } else { Err(Errno::EAGAIN) };
            }
            match t.block_since(&[&self.queue], seen, until) {
                Ok(()) => {}
                Err(_) if progress => return Ok(out),
                Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves stream bytes into `out`; Some(errno) for an error to report.
    fn take_stream(&self, st: &mut State, out: &mut Received, max: usize, peek: bool) -> Option<Errno> {
        if st.listening.is_some() || (!st.connected && st.rcv.is_empty()) {
            return Some(Errno::EINVAL);
        }
        if st.rcv.is_empty() && out.data.is_empty() {
            if let Some(e) = st.err.take() {
                return Some(e);
            }
        }
        let passcred = st.passcred;
        let mut taken = 0;
        let mut i = 0;
        while out.data.len() < max && i < st.rcv.len() {
            let m = &mut st.rcv[i];
            // Messages from different senders are not merged when the
            // receiver asked for credentials.
            if passcred && out.cred.is_some_and(|c| c != m.cred) {
                break;
            }
            out.cred = Some(m.cred);
            if out.from.is_empty() {
                out.from = m.from.clone();
            }
            let n = m.left().min(max - out.data.len());
            out.data.extend_from_slice(&m.data[m.off..m.off + n]);
            let had_rights = !m.rights.is_empty();
            if peek {
                out.rights.extend(m.rights.iter().cloned());
                i += 1;
            } else {
                out.rights.append(&mut m.rights);
                m.off += n;
                taken += n;
                if m.left() == 0 {
                    st.rcv.remove(i);
                }
            }
            // A read stops after a message that carried descriptors.
            if had_rights {
                break;
            }
        }
        st.rcv_bytes -= taken;
        out.full_len = out.data.len();
        None
    }

    /// Takes one datagram or record into `out`.
    fn take_record(&self, st: &mut State, out: &mut Received, max: usize, peek: bool) -> Option<Errno> {
        if self.stype == SOCK_SEQPACKET && (st.listening.is_some() || (!st.connected && st.rcv.is_empty())) {
            return Some(Errno::EINVAL);
        }
        if st.rcv.is_empty() {
            return st.err.take();
        }
        let m = if peek {
            let m = &st.rcv[0];
            Msg { data: m.data.clone(), off: 0, rights: m.rights.clone(), cred: m.cred, from: m.from.clone() }
        } else {
            let m = st.rcv.pop_front().unwrap();
            st.rcv_bytes -= m.data.len();
            m
        };
        out.full_len = m.data.len();
        out.data = m.data[..m.data.len().min(max)].to_vec();
        out.rights = m.rights;
        out.cred = Some(m.cred);
        out.from = m.from;
        // A zero-length record still counts as one message.
        if out.full_len == 0 {
            out.full_len = usize::MAX;
        }
        None
    }

    /// Bytes waiting to be read (FIONREAD): the whole queue for a stream,
    /// the next message for the others.
    pub fn queued(&self) -> usize {
        let st = self.state.lock().unwrap();
        if self.stype == SOCK_STREAM {
            st.rcv_bytes
        } else {
            st.rcv.front().map(|m| m.data.len()).unwrap_or(0)
        }
    }

    /// Bytes we sent that the peer has not read yet (TIOCOUTQ/SIOCOUTQ),
    /// approximated by what waits in the peer's queue.
    pub fn unread_by_peer(&self) -> usize {
        let peer = self.state.lock().unwrap().peer.clone();
        peer.map(|p| p.state.lock().unwrap().rcv_bytes).unwrap_or(0)
    }

    // Socket options.

    pub fn take_error(&self) -> i32 {
        self.state.lock().unwrap().err.take().map(|e| e.0).unwrap_or(0)
    }
    pub fn is_listening(&self) -> bool {
        self.state.lock().unwrap().listening.is_some()
    }
    pub fn peer_cred(&self) -> Option<Ucred> {
        self.state.lock().unwrap().peercred
    }
    pub fn passcred(&self) -> bool {
        self.state.lock().unwrap().passcred
    }
    pub fn set_passcred(&self, on: bool) {
        self.state.lock().unwrap().passcred = on;
    }
    pub fn reuseaddr(&self) -> bool {
        self.state.lock().unwrap().reuseaddr
    }
    pub fn set_reuseaddr(&self, on: bool) {
        self.state.lock().unwrap().reuseaddr = on;
    }
    pub fn keepalive(&self) -> bool {
        self.state.lock().unwrap().keepalive
    }
    pub fn set_keepalive(&self, on: bool) {
        self.state.lock().unwrap().keepalive = on;
    }
    pub fn sndbuf(&self) -> usize {
        self.state.lock().unwrap().sndbuf
    }
    pub fn rcvbuf(&self) -> usize {
        self.state.lock().unwrap().rcvbuf
    }
    /// SO_SNDBUF: Linux doubles the value (room for its bookkeeping) and
    /// caps it at wmem_max (also 212992 by default).
    pub fn set_sndbuf(&self, v: i32) {
        self.state.lock().unwrap().sndbuf = ((v.max(0) as usize).min(DEFAULT_BUF) * 2).max(MIN_SNDBUF);
        self.queue.notify_all();
    }
    pub fn set_rcvbuf(&self, v: i32) {
        self.state.lock().unwrap().rcvbuf = ((v.max(0) as usize).min(DEFAULT_BUF) * 2).max(MIN_RCVBUF);
    }
    pub fn timeout(&self, send: bool) -> Option<Duration> {
        let st = self.state.lock().unwrap();
        if send {
            st.sndtimeo
        } else {
            st.rcvtimeo
        }
    }
    pub fn set_timeout(&self, send: bool, d: Option<Duration>) {
        let mut st = self.state.lock().unwrap();
        if send {
            st.sndtimeo = d;
        } else {
            st.rcvtimeo = d;
        }
    }

    /// The end of the socket: its last description closed (or, for a
    /// connection never accepted, its listener closed).
    fn close(&self) {
        let (peer, name, rcv, backlog, unread) = {
            let mut st = self.state.lock().unwrap();
            st.closed = true;
            st.shut_rd = true;
            st.shut_wr = true;
            let unread = !st.rcv.is_empty() || st.embryo;
            st.rcv_bytes = 0;
            (st.peer.take(), st.name.take(), std::mem::take(&mut st.rcv), st.listening.take(), unread)
        };
        if let Some(n) = name {
            let mut table = self.names.table.lock().unwrap();
            if table.get(&n.key).is_some_and(|w| std::ptr::eq(w.as_ptr(), self)) {
                table.remove(&n.key);
            }
        }
        if let Some(p) = peer {
            if self.connection_oriented() {
                {
                    let mut ps = p.state.lock().unwrap();
                    ps.shut_rd = true;
                    ps.shut_wr = true;
                    // Data we never read, or a connection never accepted:
                    // the peer learns the connection was reset.
                    if unread {
                        ps.err = Some(Errno::ECONNRESET);
                    }
                }
                p.queue.notify_all();
            }
        }
        // Descriptors in flight to us are released here, outside our lock.
        drop(rcv);
        if let Some(b) = backlog {
            for s in b.pending {
                s.close();
            }
        }
        self.queue.notify_all();
    }
}

impl FileOps for UnixSocket {
    fn read(&self, t: &TaskCtx, file: &OpenFile, buf: &mut [u8]) -> SysResult<usize> {
        if buf.is_empty() && self.stype == SOCK_STREAM {
            return Ok(0);
        }
        let r = self.recv(t, buf.len(), false, false, file.nonblocking())?;
        // Descriptors read with read(2) are dropped, as Linux does.
        buf[..r.data.len()].copy_from_slice(&r.data);
        Ok(r.data.len())
    }

    fn write(&self, t: &TaskCtx, file: &OpenFile, buf: &[u8]) -> SysResult<usize> {
        match self.send(t, buf, Vec::new(), Ucred::of(t), None, file.nonblocking()) {
            // Only stream sockets raise SIGPIPE (Linux's dgram/seqpacket path does not).
            Err(Errno::EPIPE) if self.stype == SOCK_STREAM => {
                t.signal_self(abi::signal::SIGPIPE);
                Err(Errno::EPIPE)
            }
            r => r,
        }
    }

    fn stat(&self) -> SysResult<Stat> {
        let mut st = crate::fs::node::synthetic_stat(anon::DEV_SOCKFS, self.ino, libc::S_IFSOCK | 0o777, 1, 0, 0);
        st.st_blksize = 4096;
        Ok(st)
    }

    fn ioctl(&self, t: &TaskCtx, _file: &OpenFile, cmd: u64, arg: u64) -> SysResult<u64> {
        match cmd {
            libc::FIONREAD => {
                let n = self.queued().min(i32::MAX as usize) as i32;
                t.write_obj(arg, &n)?;
                Ok(0)
            }
            libc::TIOCOUTQ => {
                let n = self.unread_by_peer().min(i32::MAX as usize) as i32;
                t.write_obj(arg, &n)?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    fn readiness(&self) -> u32 {
        let (mut ev, peer, check_room) = {
            let st = self.state.lock().unwrap();
            let mut ev = 0;
            if st.err.is_some() {
                ev |= POLLERR;
            }
            if st.shut_rd && st.shut_wr {
                ev |= POLLHUP;
            }
            if st.shut_rd {
                ev |= POLLRDHUP | POLLIN;
            }
            if !st.rcv.is_empty() || st.listening.as_ref().is_some_and(|b| !b.pending.is_empty()) {
                ev |= POLLIN;
            }
            if self.connection_oriented() && !st.connected && st.listening.is_none() {
                ev |= POLLHUP;
            }
            let writable = st.listening.is_none();
            let check_room = writable && !st.shut_wr && st.peer.is_some();
            if writable && !check_room {
                ev |= POLLOUT;
            }
            (ev, st.peer.clone(), (check_room, st.sndbuf))
        };
        if let (Some(p), (true, sndbuf)) = (peer, check_room) {
            let ps = p.state.lock().unwrap();
            let full = if self.stype == SOCK_DGRAM {
                ps.rcv.len() > MAX_DGRAM_QLEN || ps.rcv_bytes >= ps.rcvbuf
            } else {
                ps.rcv_bytes >= sndbuf
            };
            if !full || ps.closed {
                ev |= POLLOUT;
            }
        }
        ev
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn release(&self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_unnamed_and_abstract() {
        assert_eq!(unnamed(), vec![1, 0]);
    }
}
