//! Host pseudo-terminals for `process.terminal`, and runc's console-socket
//! protocol: the pty master travels to the engine over a unix socket as
//! `SCM_RIGHTS`, with the pty's name as the message; the slave becomes the
//! container's stdin, stdout and stderr.

use napi_derive::napi;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, IntoRawFd};

use crate::js_error;

#[napi(object)]
pub struct Pty {
    pub master: i32,
    pub slave: i32,
    /// The slave's path, e.g. /dev/pts/3.
    pub name: String,
}

fn last_error(what: &str) -> napi::Error {
    js_error(format!("{what}: {}", io::Error::last_os_error()))
}

/// A new pty pair; both descriptors are close-on-exec and the caller's to close.
#[napi]
pub fn open_pty() -> napi::Result<Pty> {
    // SAFETY: plain system calls; every result is checked, and each
    // descriptor is owned (closed on error) as soon as it exists.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if m < 0 {
            return Err(last_error("posix_openpt"));
        }
        let master = OwnedFd::from_raw_fd(m);
        if libc::grantpt(m) < 0 {
            return Err(last_error("grantpt"));
        }
        if libc::unlockpt(m) < 0 {
            return Err(last_error("unlockpt"));
        }
        let mut buf = [0 as libc::c_char; 128];
        if libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()) != 0 {
            return Err(last_error("ptsname"));
        }
        let name = CStr::from_ptr(buf.as_ptr());
        let s = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if s < 0 {
            return Err(last_error("opening the pty slave"));
        }
        Ok(Pty { master: master.into_raw_fd(), slave: s, name: name.to_string_lossy().into_owned() })
    }
}

/// Sends `fd` (a pty master) to the unix stream socket at `socket_path`,
/// as runc does for `--console-socket`.
#[napi]
pub fn send_console(socket_path: String, fd: i32, name: String) -> napi::Result<()> {
    use nix::sys::socket::{connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr};
    let fail = |e: nix::Error| js_error(format!("console socket {socket_path}: {}", e.desc()));
    let sock = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(fail)?;
    let addr = UnixAddr::new(socket_path.as_str()).map_err(fail)?;
    connect(sock.as_raw_fd(), &addr).map_err(fail)?;
    let fds = [fd];
    let iov = [io::IoSlice::new(name.as_bytes())];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::MSG_NOSIGNAL, None).map_err(fail)?;
    Ok(())
}
