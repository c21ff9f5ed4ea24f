//! `veil-sandbox gofer`: prepares one container's mounts and hands them to
//! its sentry, then exits.
//!
//! It runs as the caller (host root for the lifecycle), in a mount
//! namespace of its own, before the sentry boots. Each host tree the
//! container sees — the root, every bind mount — becomes a *detached*
//! clone of the host mount (`open_tree(OPEN_TREE_CLONE)`), made read-only,
//! nosuid and nodev by `mount_setattr` as the spec asks (the root always
//! read-only: the sentry keeps a writable root's changes in memory). A
//! detached tree is its own mount namespace root, so `..` from its top
//! stays there even for a process that holds it with privileges; and it
//! lives exactly as long as a descriptor refers to it. A file bind mount
//! travels as the file opened for I/O. tmpfs mounts are the sentry's own.
//!
//! Nothing is left to do afterwards: the sentry opens files itself through
//! these descriptors (see docs/isolation.md), so the gofer exits.

use crate::mounts::{classify, Action, GoferMessage, Plan};
use crate::error::{ArgsError, GoferError};
use crate::spec::Spec;
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

pub struct GoferArgs {
    pub spec_fd: RawFd,
    pub mounts_fd: RawFd,
}

impl GoferArgs {
    pub fn parse(args: &[String]) -> Result<GoferArgs, ArgsError> {
        let (mut spec_fd, mut mounts_fd) = (None, None);
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) => (f, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            let value = inline.or_else(|| it.next().cloned()).ok_or_else(|| ArgsError::NeedsValue(flag.into()))?;
            let fd = crate::args::fd(flag, &value)?;
            match flag {
                "--spec-fd" => spec_fd = Some(fd),
                "--mounts-fd" => mounts_fd = Some(fd),
                other => return Err(ArgsError::UnknownFlag(other.into())),
            }
        }
        Ok(GoferArgs { spec_fd: spec_fd.ok_or(ArgsError::Required("--spec-fd"))?, mounts_fd: mounts_fd.ok_or(ArgsError::Required("--mounts-fd"))? })
    }
}

/// Runs the gofer. A failure goes to the sentry, which reports it as the
/// sandbox's error; it is returned (and printed) only when that fails too.
pub fn run(args: GoferArgs) -> Result<(), GoferError> {
    let sock = crate::boot::take_fd(args.mounts_fd, "mounts")?;
    match prepare_and_send(&sock, args.spec_fd) {
        Ok(()) => Ok(()),
        Err(e) => match control::send(&sock, &GoferMessage::Failed { message: e.to_string() }) {
            Ok(()) => std::process::exit(1),
            Err(_) => Err(e),
        },
    }
}

/// An I/O error as strerror says it, without Rust's "(os error N)".
fn why(e: std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

fn prepare_and_send(sock: &OwnedFd, spec_fd: RawFd) -> Result<(), GoferError> {
    let mut text = Vec::new();
    std::fs::File::from(crate::boot::take_fd(spec_fd, "spec")?).read_to_end(&mut text).map_err(GoferError::ReadSpec)?;
    let spec = Spec::parse(&text)?;
    let root = spec.root.as_ref().ok_or(crate::error::SpecError::NoRoot)?;
    // Always read-only on the host: a writable root is copy-on-write in the sentry.
    let tree = clone_tree(&root.path, true, true).map_err(|e| GoferError::Source { field: "root.path".into(), path: root.path.clone(), why: why(e) })?;
    send(sock, &GoferMessage::Mount { plan: Plan::HostDir { destination: "/".into(), readonly: root.readonly, source: "/".into() } }, Some(&tree))?;
    for (i, m) in spec.mounts.iter().enumerate() {
        match classify(i, m)? {
            Action::Bind { destination, source, recursive, readonly } => {
                let meta = std::fs::metadata(&source).map_err(|e| GoferError::Source { field: format!("mounts[{i}].source"), path: source.clone(), why: why(e) })?;
                let (plan, fd) = if meta.is_dir() {
                    (Plan::HostDir { destination, readonly, source: source.clone() }, clone_tree(&source, recursive, readonly))
                } else if meta.is_file() {
                    (Plan::HostFile { destination, readonly, source: source.clone() }, open_file(&source, readonly))
                } else {
                    return Err(GoferError::NotDirOrFile { index: i, path: source });
                };
                let fd = fd.map_err(|e| GoferError::Source { field: format!("mounts[{i}].source"), path: source.clone(), why: why(e) })?;
                send(sock, &GoferMessage::Mount { plan }, Some(&fd))?;
            }
            Action::Tmpfs { destination, readonly, mode } => send(sock, &GoferMessage::Mount { plan: Plan::Tmpfs { destination, readonly, mode } }, None)?,
            Action::Own { destination, fs_type, source } => send(sock, &GoferMessage::Mount { plan: Plan::Own { destination, fs_type, source } }, None)?,
            Action::Skip { destination, why } => send(sock, &GoferMessage::Skipped { destination, why }, None)?,
        }
    }
    send(sock, &GoferMessage::Done, None)
}

fn send(sock: &OwnedFd, msg: &GoferMessage, fd: Option<&OwnedFd>) -> Result<(), GoferError> {
    let fds: Vec<RawFd> = fd.iter().map(|f| f.as_raw_fd()).collect();
    control::send_with_fds(sock, msg, &fds).map_err(GoferError::Send)
}

/// `mount_setattr`'s argument (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// A detached clone of the mount at `path` (with its submounts when
/// `recursive`), nosuid, nodev and, when asked, read-only.
fn clone_tree(path: &str, recursive: bool, readonly: bool) -> std::io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let rec = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: `c` is a valid C string; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | rec) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        // SAFETY: geteuid has no preconditions.
        if e.raw_os_error() == Some(libc::EPERM) && unsafe { libc::geteuid() } != 0 {
            // A non-root caller may not clone mounts: the directory itself,
            // whose read-only flag only the sentry then enforces.
            return open_dir(&c);
        }
        return Err(e);
    }
    // SAFETY: open_tree just returned this descriptor.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let attr = MountAttr { attr_set: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | if readonly { MOUNT_ATTR_RDONLY } else { 0 }, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: "" with AT_EMPTY_PATH names the tree itself; attr is valid for its size.
    let r = unsafe {
        libc::syscall(libc::SYS_mount_setattr, tree.as_raw_fd(), c"".as_ptr(), libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE, &attr as *const MountAttr, std::mem::size_of::<MountAttr>())
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(tree)
}

fn open_dir(path: &std::ffi::CStr) -> std::io::Result<OwnedFd> {
    // SAFETY: `path` is a valid C string; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: open just returned this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A bind-mounted file, opened for reading (and writing unless read-only).
fn open_file(path: &str, readonly: bool) -> std::io::Result<OwnedFd> {
    // O_NONBLOCK: a fifo swapped in after the type check cannot block us.
    let f = std::fs::OpenOptions::new().read(true).write(!readonly).custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK).open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("is not a regular file"));
    }
    Ok(f.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openat(dir: &OwnedFd, name: &std::ffi::CStr, flags: i32) -> std::io::Result<OwnedFd> {
        // SAFETY: valid C string; the result is checked.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: openat just returned this descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    #[test]
    fn a_cloned_tree_is_read_only_and_has_no_way_up() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: cloning mounts needs root");
            return;
        }
        let dir = std::env::temp_dir().join(format!("veil-gofer-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("top")).unwrap();
        std::fs::write(dir.join("top/marker"), b"x").unwrap();
        let tree = clone_tree(dir.join("top").to_str().unwrap(), true, true).unwrap();
        let up = openat(&tree, c"../..", libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        let names: Vec<_> = dir_names(&up);
        let created = openat(&tree, c"new", libc::O_WRONLY | libc::O_CREAT).map(drop).map_err(|e| e.raw_os_error());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["marker"], "`..` from the top of a detached tree is the top");
        assert_eq!(created, Err(Some(libc::EROFS)));
    }

    fn dir_names(dir: &OwnedFd) -> Vec<String> {
        let fd = openat(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        kernel::fs::host::read_host_dir(fd.as_raw_fd()).unwrap().into_iter().map(|e| String::from_utf8(e.name).unwrap()).collect()
    }
}
