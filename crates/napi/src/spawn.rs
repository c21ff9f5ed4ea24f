//! Starting `veil-sandbox boot` with its descriptors donated.
//!
//! In the child, the descriptors sit at fixed numbers that the command line
//! names: 3 the control socket, 4 the spec (a memfd), 5/6/7 the
//! application's stdin/stdout/stderr. Every other descriptor is closed on
//! exec, so nothing of Node's leaks into the sandbox.
//!
//! The control socket is either one end of a connected socketpair (the
//! other end is returned: `veil do`) or, with `controlSocketPath`, a
//! rendezvous socket bound at that path that later CLI processes reach
//! with `controlConnect` (the lifecycle, where the sandbox outlives the CLI).

use napi_derive::napi;
use std::ffi::CString;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::js_error;

/// Child descriptor numbers, in this order: control, spec, stdin, stdout, stderr.
const DONATED_FDS: [RawFd; 5] = [3, 4, 5, 6, 7];
/// The donated descriptors are duplicated at or above this number in the
/// parent, so no `dup2` onto 3..=7 in the child can clobber a source.
const SCRATCH_FD_FLOOR: RawFd = 16;
/// The first child descriptor that is not donated.
const FIRST_UNDONATED_FD: u32 = 8;

#[napi(object)]
pub struct SpawnOptions {
    /// Path of the `veil-sandbox` executable.
    pub binary: String,
    /// Arguments before the donated-descriptor flags, e.g. `["boot", "--platform", "ptrace"]`.
    pub args: Vec<String>,
    /// The OCI runtime spec (`config.json`) as JSON text.
    pub spec: String,
    /// Host descriptors that become the application's stdin, stdout, stderr.
    pub stdio: Vec<i32>,
    /// Kill the sandbox (SIGKILL) when the calling process dies, and pass
    /// `--die-with-parent` so the sandbox does the same for what it runs.
    pub die_with_parent: Option<bool>,
    /// Bind the control socket at this path (see the module comment); the
    /// returned `controlFd` is then -1.
    pub control_socket_path: Option<String>,
    /// `cgroup.procs` files the child writes itself into before exec, so
    /// that nothing of the sandbox ever runs outside the container's cgroup.
    pub cgroup_procs: Option<Vec<String>>,
}

#[napi(object)]
pub struct SpawnedSandbox {
    pub pid: i32,
    /// Our end of the control socket; close it with `closeFd`. -1 with
    /// `controlSocketPath`.
    pub control_fd: i32,
}

/// Starts the sandbox process. It is put in a session of its own so that a
/// terminal's ^C reaches only the CLI, which forwards it as a `signal` request.
#[napi]
pub fn spawn_sandbox(options: SpawnOptions) -> napi::Result<SpawnedSandbox> {
    let stdio: [RawFd; 3] = options
        .stdio
        .as_slice()
        .try_into()
        .map_err(|_| js_error("stdio must list exactly three descriptors"))?;
    check_executable(&options.binary)?;

    let (ours, theirs): (Option<OwnedFd>, OwnedFd) = match &options.control_socket_path {
        None => {
            let (ours, theirs) = UnixStream::pair().map_err(|e| js_error(format!("socketpair: {e}")))?;
            (Some(ours.into()), theirs.into())
        }
        Some(path) => (None, bind_rendezvous(path).map_err(|e| js_error(format!("control socket {path}: {e}")))?),
    };
    let cgroup_procs: Vec<CString> = options
        .cgroup_procs
        .iter()
        .flatten()
        .map(|p| CString::new(p.as_str()).map_err(|_| js_error("cgroup path contains NUL")))
        .collect::<napi::Result<_>>()?;
    let spec = spec_memfd(&options.spec).map_err(|e| js_error(format!("spec memfd: {e}")))?;

    let sources = [theirs.as_raw_fd(), spec.as_raw_fd(), stdio[0], stdio[1], stdio[2]];
    let scratch: Vec<OwnedFd> = sources
        .iter()
        .map(|&fd| dup_above(fd, SCRATCH_FD_FLOOR))
        .collect::<io::Result<_>>()
        .map_err(|e| js_error(format!("cannot donate descriptor: {e}")))?;
    let scratch_raw: Vec<RawFd> = scratch.iter().map(AsRawFd::as_raw_fd).collect();
    // The sandbox's own diagnostics go wherever the application's stderr goes.
    let own_stderr = dup_above(stdio[2], SCRATCH_FD_FLOOR).map_err(js_error)?;
    let own_stdout = dup_above(stdio[2], SCRATCH_FD_FLOOR).map_err(js_error)?;

    let die_with_parent = options.die_with_parent.unwrap_or(false);
    let mut command = Command::new(&options.binary);
    command
        .args(&options.args)
        .args(["--control-fd", "3", "--spec-fd", "4", "--stdio-fds", "5,6,7"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(own_stdout))
        .stderr(Stdio::from(own_stderr));
    if die_with_parent {
        command.arg("--die-with-parent");
    }
    // SAFETY: getpid is always safe.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure only makes async-signal-safe system calls and
    // touches no memory but the copied descriptor list.
    unsafe {
        command.pre_exec(move || {
            join_cgroups(&cgroup_procs)?;
            prepare_child(&scratch_raw, die_with_parent, parent)
        });
    }
    let child = command
        .spawn()
        .map_err(|e| js_error(format!("cannot start {}: {e}", options.binary)))?;
    // Our copies of the donated descriptors close here; the child keeps its own.
    drop((scratch, theirs, spec));
    Ok(SpawnedSandbox { pid: child.id() as i32, control_fd: ours.map_or(-1, |o| o.into_raw_fd()) })
}

/// A `SOCK_DGRAM` socket bound at `path`, reachable only by its owner.
fn bind_rendezvous(path: &str) -> io::Result<OwnedFd> {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let sock = socket(AddressFamily::Unix, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    bind(sock.as_raw_fd(), &UnixAddr::new(path)?)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(sock)
}

/// In the forked child: moves it into each cgroup. Writing "0" to
/// `cgroup.procs` means "the writer", in v1 and v2 alike.
fn join_cgroups(procs: &[CString]) -> io::Result<()> {
    for path in procs {
        // SAFETY: open/write/close are async-signal-safe; `path` is a valid C string.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let r = libc::write(fd, b"0".as_ptr().cast(), 1);
            let err = io::Error::last_os_error();
            libc::close(fd);
            if r < 0 {
                return Err(err);
            }
        }
    }
    Ok(())
}

/// Fails in the parent with a clear message rather than in the child, where
/// an exec error is harder to report.
fn check_executable(path: &str) -> napi::Result<()> {
    let c = CString::new(path).map_err(|_| js_error("sandbox binary path contains NUL"))?;
    // SAFETY: `c` is a valid C string.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } < 0 {
        return Err(js_error(format!("sandbox binary {path}: {}", io::Error::last_os_error())));
    }
    Ok(())
}

/// The spec travels as a sealed-off in-memory file, read from offset 0.
fn spec_memfd(spec: &str) -> io::Result<OwnedFd> {
    // SAFETY: the name is a valid C string; the result is checked.
    let fd = unsafe { libc::memfd_create(c"veil-spec".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(spec.as_bytes())?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file.into())
}

fn dup_above(fd: RawFd, floor: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Runs in the forked child before exec: only async-signal-safe calls.
fn prepare_child(sources: &[RawFd], die_with_parent: bool, parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: every call below is a plain system call on values we own.
    unsafe {
        // Node ignores SIGPIPE and may block signals; ignored dispositions
        // and the signal mask survive execve, so give the sandbox defaults.
        for signo in 1..=64 {
            if signo != libc::SIGKILL && signo != libc::SIGSTOP {
                libc::signal(signo, libc::SIG_DFL);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        if die_with_parent {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        for (&source, &target) in sources.iter().zip(DONATED_FDS.iter()) {
            // dup2 clears close-on-exec on the target.
            if libc::dup2(source, target) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        close_undonated_on_exec();
    }
    Ok(())
}

/// Marks every descriptor from 8 up close-on-exec (not closed now: the
/// standard library still reports exec failures through one of them).
unsafe fn close_undonated_on_exec() {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: plain system calls.
    unsafe {
        if libc::syscall(libc::SYS_close_range, FIRST_UNDONATED_FD, u32::MAX, CLOSE_RANGE_CLOEXEC) == 0 {
            return;
        }
        // Kernels before 5.11: walk the descriptor table.
        let mut limit: libc::rlimit = std::mem::zeroed();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(1 << 20) as RawFd
        } else {
            4096
        };
        for fd in FIRST_UNDONATED_FD as RawFd..max {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}
