//! Starting a container's gofer and its sandbox, with their descriptors
//! donated.
//!
//! `veil-sandbox gofer` (`gofer.rs`) runs first, in a mount namespace of its own, and
//! sends the container's mount trees over a socket to `veil-sandbox boot`,
//! which runs in namespaces of its own (see `namespaces.rs`) and is told to
//! pivot into an empty root and drop its privileges (`--setup-root`).
//!
//! In the sandbox the descriptors sit at fixed numbers that the command line
//! names: 3 the control socket, 4 the spec (a memfd), 5/6/7 the
//! application's stdin/stdout/stderr, 8 the gofer's socket, 9 the
//! sandbox's own log when there is one, then the packet sockets of the
//! links it takes over; the gofer gets
//! 3 its own copy of the spec and 4 its end of that socket. In both, 0 is
//! /dev/null and 1 and 2 go where the application's stderr goes. Every
//! other descriptor is closed on exec, so nothing of Node's leaks.
//!
//! The control socket is either one end of a connected socketpair (the
//! other end is returned: `veil do`) or, with `controlSocketPath`, a
//! rendezvous socket bound at that path that later CLI processes reach
//! with `controlConnect` (the lifecycle, where the sandbox outlives the CLI).

use napi_derive::napi;
use std::ffi::CString;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;

use crate::js_error;
use crate::namespaces::{self, Launch};

/// Donated descriptors are duplicated at or above this number in the
/// parent, so no `dup2` onto the low numbers in the child can clobber a
/// source.
const SCRATCH_FD_FLOOR: RawFd = 16;

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
    /// `cgroup.procs` files the sandbox and the gofer write themselves into
    /// before exec, so that nothing of either ever runs outside the
    /// container's cgroup.
    pub cgroup_procs: Option<Vec<String>>,
    /// Start the sandbox as PID 1 of a new PID namespace (not for ptrace,
    /// whose stub processes must see their tracer).
    pub new_pid_namespace: Option<bool>,
    /// A network namespace (e.g. /var/run/netns/NAME) for the sandbox to
    /// join; a new, empty one otherwise.
    pub netns_path: Option<String>,
    /// Where the sandbox writes its own log (strace, unsupported system
    /// calls, debug lines): donated as descriptor 9 (`--log-fd 9`).
    /// Without it the sandbox keeps no log; it never writes one into the
    /// application's stderr.
    pub log_fd: Option<i32>,
    /// Hand the namespace's Ethernet links to the sandbox's own stack
    /// (`sandbox` network mode; default true when `netnsPath` is given).
    pub take_over_network: Option<bool>,
}

#[napi(object)]
pub struct SpawnedSandbox {
    pub pid: i32,
    /// Our end of the control socket; close it with `closeFd`. -1 with
    /// `controlSocketPath`.
    pub control_fd: i32,
    /// The gofer, which exits once it has handed over the mounts; the
    /// caller reaps it (`waitPid`).
    pub gofer_pid: i32,
}

/// Starts the gofer, then the sandbox. Each is put in a session of its own
/// so that a terminal's ^C reaches only the CLI, which forwards it as a
/// `signal` request.
#[napi]
pub fn spawn_sandbox(options: SpawnOptions) -> napi::Result<SpawnedSandbox> {
    let stdio: [RawFd; 3] = options
        .stdio
        .as_slice()
        .try_into()
        .map_err(|_| js_error("stdio must list exactly three descriptors"))?;
    check_executable(&options.binary)?;
    let netns = match &options.netns_path {
        Some(path) => Some(open_netns(path).map_err(|e| js_error(format!("network namespace {path}: {e}")))?),
        None => None,
    };
    let taken = match &netns {
        Some(ns) if options.take_over_network.unwrap_or(true) => {
            crate::network::take_over(ns).map_err(|e| js_error(format!("taking over the links of network namespace {}: {e}", options.netns_path.as_deref().unwrap_or(""))))?
        }
        _ => Vec::new(),
    };

    let (ours, theirs): (Option<OwnedFd>, OwnedFd) = match &options.control_socket_path {
        None => {
            let (ours, theirs) = UnixStream::pair().map_err(|e| js_error(format!("socketpair: {e}")))?;
            (Some(ours.into()), theirs.into())
        }
        Some(path) => (None, bind_rendezvous(path).map_err(|e| js_error(format!("control socket {path}: {e}")))?),
    };
    let cgroup_procs = c_paths(options.cgroup_procs.as_deref())?;
    let die_with_parent = options.die_with_parent.unwrap_or(false);
    let (gofer_end, sentry_end) = UnixStream::pair().map_err(|e| js_error(format!("socketpair: {e}")))?;
    let gofer_pid = crate::gofer::spawn(&options.binary, &options.spec, stdio[2], gofer_end.into(), &cgroup_procs, die_with_parent)?;

    let sandbox = (|| {
        let spec = spec_memfd(&options.spec).map_err(|e| js_error(format!("spec memfd: {e}")))?;
        let null = dev_null()?;
        let mut sources = vec![null.as_raw_fd(), stdio[2], stdio[2], theirs.as_raw_fd(), spec.as_raw_fd(), stdio[0], stdio[1], stdio[2], sentry_end.as_raw_fd()];
        sources.extend(options.log_fd);
        let first_link_fd = sources.len();
        sources.extend(taken.iter().map(|(_, fd)| fd.as_raw_fd()));
        let scratch = scratch_copies(&sources)?;
        let fds: Vec<RawFd> = scratch.iter().map(AsRawFd::as_raw_fd).collect();
        let mut args: Vec<&str> = options.args.iter().map(String::as_str).collect();
        args.extend(["--control-fd", "3", "--spec-fd", "4", "--stdio-fds", "5,6,7", "--mounts-fd", "8", "--setup-root"]);
        if die_with_parent {
            args.push("--die-with-parent");
        }
        if options.log_fd.is_some() {
            args.extend(["--log-fd", "9"]);
        }
        let links: Vec<&control::network::TakenLink> = taken.iter().map(|(l, _)| l).collect();
        let links_json = serde_json::to_string(&links).map_err(|e| js_error(format!("links: {e}")))?;
        let link_fds = (first_link_fd..first_link_fd + taken.len()).map(|n| n.to_string()).collect::<Vec<_>>().join(",");
        if !taken.is_empty() {
            args.extend(["--net-links", &links_json, "--net-fds", &link_fds]);
        }
        let exec = ExecImage::new(&options.binary, &args)?;
        let launch = Launch {
            binary: &exec.binary,
            argv: &exec.argv,
            envp: &exec.envp,
            cgroup_procs: &cgroup_procs,
            fds: &fds,
            die_with_parent,
            new_pid_namespace: options.new_pid_namespace.unwrap_or(false),
            netns: netns.as_ref(),
        };
        namespaces::spawn(&launch).map_err(|e| js_error(format!("cannot start {}: {e}", options.binary)))
    })();
    // Our copies of the donated descriptors close here; the children keep theirs.
    drop((theirs, sentry_end));
    match sandbox {
        Ok(pid) => Ok(SpawnedSandbox { pid, control_fd: ours.map_or(-1, |o| o.into_raw_fd()), gofer_pid }),
        Err(e) => {
            // SAFETY: plain system calls on our own child.
            unsafe {
                libc::kill(gofer_pid, libc::SIGKILL);
                libc::waitpid(gofer_pid, std::ptr::null_mut(), 0);
            }
            Err(e)
        }
    }
}

/// The executable, arguments and environment as C arrays, built before any
/// fork: the child may not allocate.
struct ExecImage {
    binary: CString,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    _strings: Vec<CString>,
}

impl ExecImage {
    fn new(binary: &str, args: &[&str]) -> napi::Result<ExecImage> {
        let nul = |_| js_error("an argument or environment variable contains NUL");
        let binary = CString::new(binary).map_err(nul)?;
        let mut strings = vec![binary.clone()];
        for a in args {
            strings.push(CString::new(*a).map_err(nul)?);
        }
        let argc = strings.len();
        for (k, v) in std::env::vars_os() {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            strings.push(CString::new(kv).map_err(nul)?);
        }
        let ptrs = |s: &[CString]| s.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect::<Vec<_>>();
        Ok(ExecImage { argv: ptrs(&strings[..argc]), envp: ptrs(&strings[argc..]), binary, _strings: strings })
    }
}

/// `cgroup.procs` paths as C strings, made before any fork.
pub(crate) fn c_paths(paths: Option<&[String]>) -> napi::Result<Vec<CString>> {
    paths.into_iter().flatten().map(|p| CString::new(p.as_str()).map_err(|_| js_error("cgroup path contains NUL"))).collect()
}

/// The network namespace file at `path`, checked to be one.
fn open_netns(path: &str) -> io::Result<OwnedFd> {
    let file = std::fs::File::open(path)?;
    // NS_GET_NSTYPE (linux/nsfs.h): fails on anything but a namespace file.
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: an ioctl with no argument on our own descriptor.
    let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE) };
    if kind != libc::CLONE_NEWNET {
        return Err(io::Error::other("not a network namespace"));
    }
    Ok(file.into())
}

pub(crate) fn dev_null() -> napi::Result<OwnedFd> {
    std::fs::File::open("/dev/null").map(OwnedFd::from).map_err(|e| js_error(format!("/dev/null: {e}")))
}

/// Copies of `sources` above [`SCRATCH_FD_FLOOR`].
pub(crate) fn scratch_copies(sources: &[RawFd]) -> napi::Result<Vec<OwnedFd>> {
    sources.iter().map(|&fd| dup_above(fd)).collect::<io::Result<_>>().map_err(|e| js_error(format!("cannot donate descriptor: {e}")))
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
pub(crate) fn join_cgroups(procs: &[CString]) -> io::Result<()> {
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
pub(crate) fn check_executable(path: &str) -> napi::Result<()> {
    let c = CString::new(path).map_err(|_| js_error("sandbox binary path contains NUL"))?;
    // SAFETY: `c` is a valid C string.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } < 0 {
        return Err(js_error(format!("sandbox binary {path}: {}", io::Error::last_os_error())));
    }
    Ok(())
}

/// The spec travels as a sealed-off in-memory file, read from offset 0.
pub(crate) fn spec_memfd(spec: &str) -> io::Result<OwnedFd> {
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

pub(crate) fn dup_above(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, SCRATCH_FD_FLOOR) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Runs in the forked child before exec: only async-signal-safe calls.
/// `sources[i]` becomes descriptor `i`; with `die_with_parent`, the child
/// dies with that parent (and fails if it is gone already).
pub(crate) fn prepare_child(sources: &[RawFd], die_with_parent: Option<libc::pid_t>) -> io::Result<()> {
    // SAFETY: every call below is a plain system call on values we own.
    unsafe {
        // Node ignores SIGPIPE and may block signals; ignored dispositions
        // and the signal mask survive execve, so give the child defaults.
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
        if let Some(parent) = die_with_parent {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        for (target, &source) in sources.iter().enumerate() {
            // dup2 clears close-on-exec on the target.
            if libc::dup2(source, target as RawFd) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        close_undonated_on_exec(sources.len() as u32);
    }
    Ok(())
}

/// Marks every descriptor from `first` up close-on-exec (not closed now:
/// exec failures are still reported through one of them).
unsafe fn close_undonated_on_exec(first: u32) {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: plain system calls.
    unsafe {
        if libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) == 0 {
            return;
        }
        // Kernels before 5.11: walk the descriptor table.
        let mut limit: libc::rlimit = std::mem::zeroed();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(1 << 20) as RawFd
        } else {
            4096
        };
        for fd in first as RawFd..max {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}
