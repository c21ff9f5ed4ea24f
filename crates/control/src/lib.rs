//! Control-server messages.
//!
//! Framing: each message is a 4-byte little-endian length followed by that
//! many bytes of JSON. File descriptors travel beside a message as
//! `SCM_RIGHTS` on the same `sendmsg` as its first byte.
//!
//! A client sends one [`Request`] and reads one [`Response`]; `wait` may
//! block until the container's init process exits.

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
    /// Let the init process run.
    Start,
    /// Block until the init process has exited.
    Wait,
    /// Send a signal to the init process (or every process with `all`).
    Signal { signo: i32, #[serde(default)] all: bool },
    /// Report the sandbox's view of the container.
    State,
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
    pub status: String,
    pub pids: Vec<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Response {
    Ok,
    Waited(WaitStatus),
    State(SandboxState),
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

/// Sends one framed message.
pub fn send<T: Serialize>(fd: &impl AsRawFd, msg: &T) -> Result<(), ControlError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_MESSAGE {
        return Err(ControlError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    write_all(fd.as_raw_fd(), &frame)?;
    Ok(())
}

/// Receives one framed message.
pub fn recv<T: for<'de> Deserialize<'de>>(fd: &impl AsRawFd) -> Result<T, ControlError> {
    let mut len = [0u8; 4];
    read_exact(fd.as_raw_fd(), &mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(ControlError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    read_exact(fd.as_raw_fd(), &mut body)?;
    Ok(serde_json::from_slice(&body)?)
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
        send(&a, &Request::Signal { signo: 15, all: true }).unwrap();
        let got: Request = recv(&b).unwrap();
        assert_eq!(got, Request::Signal { signo: 15, all: true });
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
    }

    #[test]
    fn closed_peer_is_reported() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        assert!(matches!(recv::<Request>(&a), Err(ControlError::Closed)));
    }
}
