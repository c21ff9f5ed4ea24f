//! Control-server messages.
//!
//! Framing: each message is a 4-byte little-endian length followed by that
//! many bytes of JSON. File descriptors travel beside a message as
//! `SCM_RIGHTS` on the same `sendmsg` as its first byte.
//!
//! A client sends one [`Request`] and reads one [`Response`]; `wait` and
//! `waitPid` may block until the process exits.
//!
//! A sandbox runs every container of a pod: the one it booted with (the
//! root container) and those `createContainer` adds. Requests about one
//! container name it in `container`; without it they mean the root one.
//!
//! Two ways to reach a sandbox:
//! - a connected socketpair donated at spawn (`veil do`): the sandbox serves
//!   that one connection and tears everything down when it closes;
//! - a *rendezvous* socket (`SOCK_DGRAM`, bound at `sandbox.sock` in the
//!   container's state directory) for the lifecycle commands, where the
//!   sandbox outlives the CLI. A client makes a stream socketpair and sends
//!   one end to the rendezvous socket as `SCM_RIGHTS` on a one-byte datagram
//!   ([`connect_rendezvous`]); the sandbox serves each end it receives on a
//!   thread of its own. This needs no `accept(2)`, which the sentry's
//!   seccomp allow-list does not grant: receiving a connection is a
//!   `recvmsg`, a call the sentry already makes.

#![warn(clippy::undocumented_unsafe_blocks)]

pub mod network;

use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Largest message either side accepts.
pub const MAX_MESSAGE: usize = 16 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "method", rename_all = "camelCase")]
pub enum Request {
    /// Build the kernel and the init process from the spec; its code does
    /// not run until `start`.
    Create,
    /// Add a container to the sandbox and build its init, which does not
    /// run until `start`. Its stdin, stdout, stderr and the socket on which
    /// its gofer sends its root and mounts travel with the request as four
    /// `SCM_RIGHTS` descriptors, in that order.
    CreateContainer { id: String, spec: ContainerSpec },
    /// Let the init process run.
    Start { #[serde(default, skip_serializing_if = "Option::is_none")] container: Option<String> },
    /// Block until the init process has exited.
    Wait { #[serde(default, skip_serializing_if = "Option::is_none")] container: Option<String> },
    /// Send a signal to the init process (or every process with `all`).
    Signal {
        signo: i32,
        #[serde(default)]
        all: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<String>,
    },
    /// Send a signal to one process (a foreground `exec` forwards the
    /// signals its CLI receives to the process it started).
    SignalProcess { pid: i32, signo: i32 },
    /// Report the sandbox's view of the container.
    State { #[serde(default, skip_serializing_if = "Option::is_none")] container: Option<String> },
    /// Start a new process beside init (`veil exec`); its stdin, stdout and
    /// stderr travel with the request as three `SCM_RIGHTS` descriptors.
    Exec {
        args: Vec<String>,
        #[serde(default)]
        env: Vec<String>,
        #[serde(default = "slash")]
        cwd: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<String>,
    },
    /// Block until a process started by `exec` exits, and reap it.
    WaitPid { pid: i32 },
    /// Stop every task before it next runs application code.
    Pause,
    Resume,
    /// The processes of the container (of the whole sandbox for the root one).
    Ps { #[serde(default, skip_serializing_if = "Option::is_none")] container: Option<String> },
    /// Resource usage as the sentry counts it, and the unimplemented
    /// system calls the container made.
    Stats { #[serde(default, skip_serializing_if = "Option::is_none")] container: Option<String> },
    /// Kill everything, reply, and exit (rendezvous mode).
    Destroy,
    /// Kill what is left of an added container and forget it; the sandbox
    /// and its other containers go on.
    DestroyContainer { id: String },
}

/// What the sandbox needs of an added container's OCI spec.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default = "slash")]
    pub cwd: String,
    /// linux.namespaces has a pid namespace without a path: the container
    /// gets one of its own (its init is pid 1); otherwise it shares the
    /// sandbox's.
    #[serde(default)]
    pub own_pid_namespace: bool,
    #[serde(flatten)]
    pub identity: ProcessIdentity,
    #[serde(flatten)]
    pub covers: PathCovers,
}

/// The spec's linux.maskedPaths, linux.readonlyPaths and linux.devices.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PathCovers {
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    #[serde(default)]
    pub devices: Vec<LinuxDevice>,
}

/// One of linux.devices: `type` is "c" (or "u"), "b" or "p".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LinuxDevice {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub major: u32,
    #[serde(default)]
    pub minor: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// Who an OCI process runs as and with what limits: the spec's
/// `process.user`, `process.capabilities`, `process.noNewPrivileges` and
/// `process.rlimits`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProcessIdentity {
    #[serde(default)]
    pub user: ProcessUser,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<ProcessCapabilities>,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<ProcessRlimit>,
    #[serde(default)]
    pub oom_score_adj: i32,
}

/// One of `process.rlimits`: `type` is "RLIMIT_NOFILE" and the like.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ProcessRlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProcessUser {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
}

/// The five capability sets, by name ("CAP_CHOWN", ...).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ProcessCapabilities {
    #[serde(default)]
    pub bounding: Vec<String>,
    #[serde(default)]
    pub effective: Vec<String>,
    #[serde(default)]
    pub inheritable: Vec<String>,
    #[serde(default)]
    pub permitted: Vec<String>,
    #[serde(default)]
    pub ambient: Vec<String>,
}

fn slash() -> String {
    "/".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WaitStatus {
    /// Exit code when the process exited normally.
    pub exit_code: Option<i32>,
    /// Signal number when it was killed by a signal.
    pub signal: Option<i32>,
}

impl WaitStatus {
    /// What a shell reports: the exit code, or 128 + the signal number.
    pub fn shell_status(&self) -> i32 {
        match (self.exit_code, self.signal) {
            (_, Some(s)) => 128 + s,
            (Some(c), None) => c,
            (None, None) => 255,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SandboxState {
    /// `created` (init built, not started), `running`, `paused` or `stopped`.
    pub status: String,
    pub pids: Vec<i32>,
    /// How init ended, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<WaitStatus>,
}

/// A system call the sandbox does not implement, and how often its
/// processes made it (each time it failed with ENOSYS).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UnsupportedCall {
    pub name: String,
    pub nr: u32,
    pub count: u64,
}

/// One row of `veil ps`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProcessEntry {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    /// Process state letter as in /proc/PID/stat (S, T, Z…).
    pub state: String,
    /// Start time in clock ticks (1/100 s) since the sandbox booted.
    pub start_ticks: u64,
    pub cmd: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Response {
    Ok,
    Waited(WaitStatus),
    State(SandboxState),
    /// The sandbox pid of a process started by `exec`.
    Pid { pid: i32 },
    Processes { processes: Vec<ProcessEntry> },
    /// Bytes of application memory in use, the number of tasks, and the
    /// unimplemented system calls made so far.
    Stats {
        memory: u64,
        tasks: u64,
        #[serde(default)]
        unsupported: Vec<UnsupportedCall>,
    },
    Error { message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    #[error("control message is malformed: {0}")]
    Json(#[from] serde_json::Error),
    #[error("control message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("control socket closed by peer")]
    Closed,
}

fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid readable slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

fn read_exact(fd: RawFd, mut buf: &mut [u8]) -> Result<(), ControlError> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid writable slice for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        if n == 0 {
            return Err(ControlError::Closed);
        }
        let n = n as usize;
        buf = &mut buf[n..];
    }
    Ok(())
}

/// `msg` as one frame: its length, then its JSON.
fn frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, ControlError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_MESSAGE {
        return Err(ControlError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Sends one framed message.
pub fn send<T: Serialize>(fd: &impl AsRawFd, msg: &T) -> Result<(), ControlError> {
    write_all(fd.as_raw_fd(), &frame(msg)?)?;
    Ok(())
}

/// Receives one framed message.
pub fn recv<T: for<'de> Deserialize<'de>>(fd: &impl AsRawFd) -> Result<T, ControlError> {
    let mut len = [0u8; 4];
    read_exact(fd.as_raw_fd(), &mut len)?;
    read_body(fd.as_raw_fd(), len)
}

/// Reads and parses the body a frame's length prefix announced.
fn read_body<T: for<'de> Deserialize<'de>>(fd: RawFd, len: [u8; 4]) -> Result<T, ControlError> {
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(ControlError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    read_exact(fd, &mut body)?;
    Ok(serde_json::from_slice(&body)?)
}

/// Most descriptors one message carries.
pub const MAX_FDS: usize = 8;

/// Sends one framed message with `fds` attached (`SCM_RIGHTS`) to its first byte.
pub fn send_with_fds<T: Serialize>(fd: &impl AsRawFd, msg: &T, fds: &[RawFd]) -> Result<(), ControlError> {
    if fds.is_empty() {
        return send(fd, msg);
    }
    if fds.len() > MAX_FDS {
        return Err(ControlError::Io(io::Error::new(io::ErrorKind::InvalidInput, "too many descriptors for one message")));
    }
    let frame = frame(msg)?;
    let sent = send_fds_raw(fd.as_raw_fd(), &frame, fds)?;
    write_all(fd.as_raw_fd(), &frame[sent..])?;
    Ok(())
}

/// One `sendmsg` of (a prefix of) `data` with `fds` as `SCM_RIGHTS`;
/// returns how many bytes went out.
fn send_fds_raw(sock: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let iov = [io::IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    loop {
        match sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// One `recvmsg` into `buf`; returns the byte count and any descriptors
/// that arrived (close-on-exec).
fn recv_fds_raw(sock: RawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FDS]);
    loop {
        let mut iov = [io::IoSliceMut::new(buf)];
        match recvmsg::<()>(sock, &mut iov, Some(&mut cmsg_space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for c in msg.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(list) = c {
                        // SAFETY: SCM_RIGHTS just installed these descriptors
                        // in this process; nothing else refers to them.
                        fds.extend(list.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                    }
                }
                return Ok((msg.bytes, fds));
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one framed message and the descriptors sent with it.
pub fn recv_with_fds<T: for<'de> Deserialize<'de>>(fd: &impl AsRawFd) -> Result<(T, Vec<OwnedFd>), ControlError> {
    let mut len = [0u8; 4];
    let (n, fds) = recv_fds_raw(fd.as_raw_fd(), &mut len)?;
    if n == 0 {
        return Err(ControlError::Closed);
    }
    read_exact(fd.as_raw_fd(), &mut len[n..])?;
    Ok((read_body(fd.as_raw_fd(), len)?, fds))
}

/// Client side of the rendezvous socket: returns a connected stream whose
/// other end now belongs to the sandbox.
pub fn connect_rendezvous(path: &std::path::Path) -> io::Result<OwnedFd> {
    use nix::sys::socket::{sendmsg, socket, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr};
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)?;
    let dgram = socket(AddressFamily::Unix, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    let addr = UnixAddr::new(path)?;
    let fds = [theirs.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [io::IoSlice::new(b"c")];
    loop {
        match sendmsg(dgram.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, Some(&addr)) {
            Ok(_) => return Ok(ours),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Server side of the rendezvous socket: blocks until a client sends the
/// end of a connection.
pub fn accept_rendezvous(rendezvous: &impl AsRawFd) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    loop {
        let (_, fds) = recv_fds_raw(rendezvous.as_raw_fd(), &mut byte)?;
        // A datagram without exactly one descriptor is not a connection: drop it.
        let mut fds = fds.into_iter();
        if let (Some(fd), None) = (fds.next(), fds.next()) {
            return Ok(fd);
        }
    }
}

/// One request, one response.
pub fn call(fd: &impl AsRawFd, req: &Request) -> Result<Response, ControlError> {
    send(fd, req)?;
    recv(fd)
}

/// Takes ownership of an inherited descriptor number.
///
/// # Safety
/// `fd` must be open and owned by nobody else in this process.
pub unsafe fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: guaranteed by the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn round_trip_over_a_socketpair() {
        let (a, b) = UnixStream::pair().unwrap();
        send(&a, &Request::Signal { signo: 15, all: true, container: None }).unwrap();
        let got: Request = recv(&b).unwrap();
        assert_eq!(got, Request::Signal { signo: 15, all: true, container: None });
        send(&b, &Response::Waited(WaitStatus { exit_code: None, signal: Some(15) })).unwrap();
        match recv::<Response>(&a).unwrap() {
            Response::Waited(w) => assert_eq!(w.shell_status(), 143),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn wire_format_is_tagged_json() {
        let v = serde_json::to_string(&Request::Create).unwrap();
        assert_eq!(v, r#"{"method":"create"}"#);
        // The root container is the one meant when none is named.
        assert_eq!(serde_json::to_string(&Request::Start { container: None }).unwrap(), r#"{"method":"start"}"#);
        let r: Request = serde_json::from_str(r#"{"method":"wait","container":"b"}"#).unwrap();
        assert_eq!(r, Request::Wait { container: Some("b".into()) });
        let r: Request = serde_json::from_str(
            r#"{"method":"createContainer","id":"b","spec":{"args":["sh"],"ownPidNamespace":true}}"#,
        )
        .unwrap();
        let Request::CreateContainer { id, spec } = r else { panic!("not createContainer") };
        assert_eq!((id.as_str(), spec.cwd.as_str(), spec.own_pid_namespace), ("b", "/", true));
    }

    #[test]
    fn descriptors_travel_with_a_message() {
        let (a, b) = UnixStream::pair().unwrap();
        let (p, q) = UnixStream::pair().unwrap();
        let req = Request::Exec { args: vec!["sh".into()], env: vec![], cwd: "/".into(), container: None };
        send_with_fds(&a, &req, &[p.as_raw_fd(), p.as_raw_fd(), p.as_raw_fd()]).unwrap();
        let (got, fds): (Request, _) = recv_with_fds(&b).unwrap();
        assert_eq!(got, req);
        assert_eq!(fds.len(), 3);
        // The received descriptor is the same socket: what q writes, it reads.
        use std::io::{Read, Write};
        (&q).write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        std::fs::File::from(fds.into_iter().next().unwrap()).read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
        // A message without descriptors is received the same way.
        send(&a, &Request::Ps { container: None }).unwrap();
        let (got, fds): (Request, _) = recv_with_fds(&b).unwrap();
        assert_eq!((got, fds.len()), (Request::Ps { container: None }, 0));
    }

    #[test]
    fn rendezvous_hands_over_a_connection() {
        use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, UnixAddr};
        let dir = std::env::temp_dir().join(format!("veil-control-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.sock");
        let server = socket(AddressFamily::Unix, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).unwrap();
        bind(server.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
        let client = connect_rendezvous(&path).unwrap();
        let conn = accept_rendezvous(&server).unwrap();
        send(&client, &Request::Stats { container: None }).unwrap();
        assert_eq!(recv::<Request>(&conn).unwrap(), Request::Stats { container: None });
        let stats = Response::Stats { memory: 1, tasks: 2, unsupported: vec![UnsupportedCall { name: "rseq".into(), nr: 334, count: 3 }] };
        send(&conn, &stats).unwrap();
        assert_eq!(recv::<Response>(&client).unwrap(), stats);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn closed_peer_is_reported() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        assert!(matches!(recv::<Request>(&a), Err(ControlError::Closed)));
    }
}
