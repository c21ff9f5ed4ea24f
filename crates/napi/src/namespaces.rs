//! Starting the sandbox in namespaces of its own.
//!
//! The child is cloned (in a new PID namespace when asked), joins the
//! container's cgroups and the spec's network namespace while it still has
//! the caller's privileges, then unshares user, mount, IPC, UTS (and
//! network, when none was given) namespaces and waits. The parent — still
//! in the caller's user namespace, as writing a map other than one's own
//! uid requires — writes its uid and gid maps, then lets it go on to exec.
//!
//! Maps: for a root caller every id maps to itself, so the sentry can hold
//! CAP_DAC_OVERRIDE over the container's files whoever owns them (it drops
//! to `nobody` with just that; see docs/isolation.md). A non-root caller
//! can map only itself, as root of the namespace.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// What the child needs, all prepared before the clone: between clone and
/// exec it may only make async-signal-safe system calls.
pub struct Launch<'a> {
    pub binary: &'a CStr,
    /// Null-terminated pointer arrays over live `CString`s.
    pub argv: &'a [*const libc::c_char],
    pub envp: &'a [*const libc::c_char],
    pub cgroup_procs: &'a [CString],
    /// Sources for descriptors 0, 1, 2, 3, … in the child.
    pub fds: &'a [RawFd],
    pub die_with_parent: bool,
    pub new_pid_namespace: bool,
    /// The network namespace to join (else a new one).
    pub netns: Option<&'a OwnedFd>,
}

/// Where the child failed, reported through the error pipe.
const STAGES: [&str; 6] = ["joining the cgroup", "joining the network namespace", "creating namespaces", "preparing descriptors", "exec", "waiting for the parent"];

/// A close-on-exec pipe whose ends sit above the numbers the child's
/// descriptors are moved to, so that moving them cannot clobber an end.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out-array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these descriptors.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((crate::spawn::dup_above(r.as_raw_fd())?, crate::spawn::dup_above(w.as_raw_fd())?))
}

fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return n as usize;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return 0;
        }
    }
}

/// Clones and execs the sandbox as the module comment says; returns its pid.
pub fn spawn(l: &Launch) -> io::Result<libc::pid_t> {
    let (ready_r, ready_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // A PID namespace owned by the caller's user namespace needs root there.
    // SAFETY: geteuid has no preconditions.
    let pid_ns = l.new_pid_namespace && unsafe { libc::geteuid() } == 0;
    let flags = libc::SIGCHLD as libc::c_ulong | if pid_ns { libc::CLONE_NEWPID as libc::c_ulong } else { 0 };
    // SAFETY: a fork-like clone (no CLONE_VM, no new stack); the child runs
    // only `child`, which makes async-signal-safe calls and never returns.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child; see `child`.
        unsafe { child(l, [ready_r.as_raw_fd(), go_w.as_raw_fd(), err_r.as_raw_fd()], ready_w.as_raw_fd(), go_r.as_raw_fd(), err_w.as_raw_fd()) }
    }
    let pid = pid as libc::pid_t;
    drop((ready_w, go_r, err_w));
    let result = (|| {
        let mut byte = [0u8; 1];
        if read_some(&ready_r, &mut byte) == 1 {
            write_id_maps(pid)?;
            // SAFETY: writes one byte from a valid buffer.
            if unsafe { libc::write(go_w.as_raw_fd(), byte.as_ptr().cast(), 1) } != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        drop(go_w);
        // Nothing before the exec closed it (close-on-exec): started.
        let mut report = [0u8; 5];
        match read_some(&err_r, &mut report) {
            0 => Ok(()),
            _ => {
                let stage = STAGES.get(report[0] as usize).copied().unwrap_or("starting");
                let errno = i32::from_ne_bytes(report[1..5].try_into().unwrap());
                let e = io::Error::from_raw_os_error(errno);
                Err(io::Error::new(e.kind(), format!("sandbox process, {stage}: {e}")))
            }
        }
    })();
    if let Err(e) = result {
        // SAFETY: plain system calls on our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(e);
    }
    Ok(pid)
}

/// Writes the child's uid and gid maps (see the module comment).
fn write_id_maps(pid: libc::pid_t) -> io::Result<()> {
    // SAFETY: plain system calls.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let write = |file: &str, text: &str| {
        std::fs::write(format!("/proc/{pid}/{file}"), text).map_err(|e| io::Error::new(e.kind(), format!("writing /proc/{pid}/{file}: {e}")))
    };
    if uid == 0 {
        write("uid_map", "0 0 4294967295\n")?;
        write("gid_map", "0 0 4294967295\n")
    } else {
        write("uid_map", &format!("0 {uid} 1\n"))?;
        write("setgroups", "deny")?;
        write("gid_map", &format!("0 {gid} 1\n"))
    }
}

/// Reports `stage` and errno to the parent and exits.
unsafe fn fail(err_w: RawFd, stage: u8) -> ! {
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
    let mut report = [stage, 0, 0, 0, 0];
    report[1..5].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: plain system calls; the buffer is valid.
    unsafe {
        libc::write(err_w, report.as_ptr().cast(), report.len());
        libc::_exit(127)
    }
}

/// The child between clone and exec.
unsafe fn child(l: &Launch, parent_ends: [RawFd; 3], ready_w: RawFd, go_r: RawFd, err_w: RawFd) -> ! {
    // SAFETY: only async-signal-safe system calls on values prepared before
    // the clone.
    unsafe {
        // Our copy of the parent's ends would keep the pipes open forever.
        for fd in parent_ends {
            libc::close(fd);
        }
        if l.die_with_parent {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        }
        if crate::spawn::join_cgroups(l.cgroup_procs).is_err() {
            fail(err_w, 0);
        }
        let mut flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
        match l.netns {
            Some(ns) if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) < 0 => fail(err_w, 1),
            Some(_) => {}
            None => flags |= libc::CLONE_NEWNET,
        }
        if libc::unshare(flags) < 0 {
            fail(err_w, 2);
        }
        let mut byte = [1u8];
        libc::write(ready_w, byte.as_ptr().cast(), 1);
        // EOF: the parent died or gave up (the PID namespace hides it from getppid).
        if libc::read(go_r, byte.as_mut_ptr().cast(), 1) != 1 {
            fail(err_w, 5);
        }
        if crate::spawn::prepare_child(l.fds, None).is_err() {
            fail(err_w, 3);
        }
        libc::execve(l.binary.as_ptr(), l.argv.as_ptr(), l.envp.as_ptr());
        fail(err_w, 4)
    }
}
