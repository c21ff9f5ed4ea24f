//! `flock(2)` on a container's lock file: serialises the CLI processes
//! that work on one container (see ts/state.ts).

use napi_derive::napi;
use std::ffi::CString;
use std::io;

use crate::js_error;

/// Opens (creating it, mode 0600) and locks `path` exclusively; returns the
/// descriptor, which holds the lock until `closeFd`. With `wait` false a
/// lock held elsewhere fails at once (EWOULDBLOCK) instead of blocking.
#[napi]
pub fn lock_file(path: String, wait: Option<bool>) -> napi::Result<i32> {
    let c = CString::new(path.as_str()).map_err(|_| js_error("lock path contains NUL"))?;
    // SAFETY: `c` is a valid C string; the result is checked.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC, 0o600) };
    if fd < 0 {
        return Err(js_error(format!("lock {path}: {}", io::Error::last_os_error())));
    }
    let op = if wait.unwrap_or(true) { libc::LOCK_EX } else { libc::LOCK_EX | libc::LOCK_NB };
    loop {
        // SAFETY: `fd` is the descriptor opened above.
        if unsafe { libc::flock(fd, op) } == 0 {
            return Ok(fd);
        }
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        // SAFETY: closing the descriptor opened above, used nowhere else.
        unsafe { libc::close(fd) };
        return Err(js_error(format!("lock {path}: {err}")));
    }
}
