//! Starting `veil-sandbox gofer`: for a new sandbox (with it, from
//! `spawn.rs`), or for a container joining a running one, whose gofer's
//! socket the caller passes on to the sandbox with the `createContainer`
//! request.

use napi_derive::napi;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::js_error;
use crate::spawn::{c_paths, check_executable, dev_null, join_cgroups, prepare_child, scratch_copies, spec_memfd};

#[napi(object)]
pub struct GoferOptions {
    /// Path of the `veil-sandbox` executable.
    pub binary: String,
    /// The container's OCI runtime spec as JSON text (root.path absolute).
    pub spec: String,
    /// Where the gofer's own diagnostics go.
    pub stderr: i32,
    /// `cgroup.procs` files it joins before exec.
    pub cgroup_procs: Option<Vec<String>>,
}

#[napi(object)]
pub struct SpawnedGofer {
    pub pid: i32,
    /// The sandbox's end of the gofer's socket, to pass on; close it with `closeFd`.
    pub fd: i32,
}

/// Starts a gofer whose mounts go to the returned socket end.
#[napi]
pub fn spawn_gofer(options: GoferOptions) -> napi::Result<SpawnedGofer> {
    check_executable(&options.binary)?;
    let cgroup_procs = c_paths(options.cgroup_procs.as_deref())?;
    let (gofer_end, sentry_end) = UnixStream::pair().map_err(|e| js_error(format!("socketpair: {e}")))?;
    let pid = spawn(&options.binary, &options.spec, options.stderr, gofer_end.into(), &cgroup_procs, false)?;
    Ok(SpawnedGofer { pid, fd: OwnedFd::from(sentry_end).into_raw_fd() })
}

/// `veil-sandbox gofer`, in a mount namespace of its own and the
/// container's cgroups.
pub(crate) fn spawn(binary: &str, spec: &str, stderr: RawFd, sock: OwnedFd, cgroup_procs: &[CString], die_with_parent: bool) -> napi::Result<i32> {
    let spec = spec_memfd(spec).map_err(|e| js_error(format!("spec memfd: {e}")))?;
    let null = dev_null()?;
    let scratch = scratch_copies(&[null.as_raw_fd(), stderr, stderr, spec.as_raw_fd(), sock.as_raw_fd()])?;
    let fds: Vec<RawFd> = scratch.iter().map(AsRawFd::as_raw_fd).collect();
    let cgroup_procs = cgroup_procs.to_vec();
    // SAFETY: getpid is always safe.
    let parent = unsafe { libc::getpid() };
    let mut command = Command::new(binary);
    command.args(["gofer", "--spec-fd", "3", "--mounts-fd", "4"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: the closure only makes async-signal-safe system calls and
    // touches no memory but values prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            join_cgroups(&cgroup_procs)?;
            // A non-root caller may not: its gofer only opens directories.
            if libc::geteuid() == 0 && libc::unshare(libc::CLONE_NEWNS) < 0 {
                return Err(io::Error::last_os_error());
            }
            prepare_child(&fds, die_with_parent.then_some(parent))
        });
    }
    let child = command.spawn().map_err(|e| js_error(format!("cannot start the gofer ({binary}): {e}")))?;
    Ok(child.id() as i32)
}

