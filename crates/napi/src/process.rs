//! Reaping and signalling the sandbox process.

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;
use std::io;

use crate::js_error;

/// How a process ended: exactly one field is set.
#[napi(object)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExitStatus {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitStatus {
    fn from_wait_status(status: libc::c_int) -> Self {
        if libc::WIFSIGNALED(status) {
            ExitStatus { exit_code: None, signal: Some(libc::WTERMSIG(status)) }
        } else {
            ExitStatus { exit_code: Some(libc::WEXITSTATUS(status)), signal: None }
        }
    }
}

/// `waitpid(pid, 0)` on the thread pool.
pub struct WaitPid {
    pid: libc::pid_t,
}

impl Task for WaitPid {
    type Output = ExitStatus;
    type JsValue = ExitStatus;

    fn compute(&mut self) -> napi::Result<ExitStatus> {
        let mut status = 0;
        loop {
            // SAFETY: `status` is a valid out-pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                return Ok(ExitStatus::from_wait_status(status));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(js_error(format!("waitpid({}): {err}", self.pid)));
            }
        }
    }

    fn resolve(&mut self, _env: Env, status: ExitStatus) -> napi::Result<ExitStatus> {
        Ok(status)
    }
}

/// Reaps a child started by `spawnSandbox`.
#[napi(ts_return_type = "Promise<ExitStatus>")]
pub fn wait_pid(pid: i32) -> AsyncTask<WaitPid> {
    AsyncTask::new(WaitPid { pid })
}

/// `kill(2)`; `signo` 0 only checks that the process exists.
#[napi]
pub fn kill(pid: i32, signo: i32) -> napi::Result<()> {
    // SAFETY: plain system call.
    if unsafe { libc::kill(pid, signo) } < 0 {
        return Err(js_error(format!("kill({pid}, {signo}): {}", io::Error::last_os_error())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_exit_and_signal() {
        assert_eq!(ExitStatus::from_wait_status(3 << 8), ExitStatus { exit_code: Some(3), signal: None });
        assert_eq!(ExitStatus::from_wait_status(15), ExitStatus { exit_code: None, signal: Some(15) });
    }
}
