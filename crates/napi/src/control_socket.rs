//! The client side of the control protocol (see the `veil-control` crate).

use control::{Request, Response};
use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;
use std::os::fd::{BorrowedFd, RawFd};

use crate::js_error;

/// Sends `request` (if any), then reads one response, on the thread pool:
/// `wait` blocks until the container's init process exits.
pub struct ControlExchange {
    fd: RawFd,
    request: Option<Request>,
    /// Descriptors sent with the request (`SCM_RIGHTS`); the caller keeps
    /// them open until the Promise settles.
    fds: Vec<RawFd>,
}

impl Task for ControlExchange {
    type Output = Response;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<Response> {
        // SAFETY: the caller keeps `fd` open until the Promise settles.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        if let Some(request) = &self.request {
            control::send_with_fds(&fd, request, &self.fds).map_err(js_error)?;
        }
        control::recv(&fd).map_err(js_error)
    }

    fn resolve(&mut self, _env: Env, response: Response) -> napi::Result<String> {
        serde_json::to_string(&response).map_err(js_error)
    }
}

/// Parses on the JavaScript thread so that a malformed request throws at
/// the call site instead of rejecting later.
fn parse_request(json: &str) -> napi::Result<Request> {
    serde_json::from_str(json).map_err(|e| js_error(format!("invalid control request {json}: {e}")))
}

/// One request, one response: resolves with the response as JSON text.
/// `fds` travel with the request (e.g. the three stdio of `exec`).
#[napi(ts_return_type = "Promise<string>")]
pub fn control_call(fd: i32, request_json: String, fds: Option<Vec<i32>>) -> napi::Result<AsyncTask<ControlExchange>> {
    let request = Some(parse_request(&request_json)?);
    Ok(AsyncTask::new(ControlExchange { fd, request, fds: fds.unwrap_or_default() }))
}

/// Opens a connection to a sandbox's rendezvous socket (its `sandbox.sock`);
/// returns our end. Fails (ECONNREFUSED, ENOENT) when no sandbox serves it.
#[napi]
pub fn control_connect(path: String) -> napi::Result<i32> {
    let fd = control::connect_rendezvous(std::path::Path::new(&path)).map_err(|e| js_error(format!("connecting to {path}: {e}")))?;
    Ok(std::os::fd::IntoRawFd::into_raw_fd(fd))
}

/// Sends a request without reading its response, e.g. a `signal` forwarded
/// while a `wait` is outstanding on the same socket; the response is then
/// read by the pending receive (see `controlRecv`).
#[napi]
pub fn control_send(fd: i32, request_json: String) -> napi::Result<()> {
    let request = parse_request(&request_json)?;
    // SAFETY: the caller passes an open descriptor it owns.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    control::send(&fd, &request).map_err(js_error)
}

/// Reads one response: resolves with it as JSON text.
#[napi(ts_return_type = "Promise<string>")]
pub fn control_recv(fd: i32) -> AsyncTask<ControlExchange> {
    AsyncTask::new(ControlExchange { fd, request: None, fds: Vec::new() })
}

/// Closes a descriptor this addon handed out (the control socket). The
/// sandbox treats end-of-file on it as "kill everything and exit".
///
/// A socket is shut down first: a `controlRecv` still blocked in read(2)
/// on another thread keeps the socket alive past close(2), so without the
/// shutdown the sandbox would never see end-of-file and the read would hang.
#[napi]
pub fn close_fd(fd: i32) -> napi::Result<()> {
    // SAFETY: plain system calls; a bad fd is reported, never undefined
    // behaviour. shutdown fails harmlessly with ENOTSOCK on a non-socket.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    // SAFETY: the caller gives up `fd`; closing a bad one is EBADF, reported.
    if unsafe { libc::close(fd) } < 0 {
        return Err(js_error(format!("close({fd}): {}", std::io::Error::last_os_error())));
    }
    Ok(())
}
