//! The container's mounts: what the gofer makes of the spec's `mounts`,
//! and the messages that carry them (with their descriptors) to the sentry.
//!
//! The gofer sends, over a stream socket, the root first, then one message
//! per mount in spec order, then `Done` (or `Failed` at the first error).
//! Host trees travel as descriptors (`SCM_RIGHTS`, one per message); a
//! tmpfs is the sentry's own and carries none.

use crate::spec;
use abi::Errno;
use control::PathCovers;
use kernel::fs::vfs::{Cover, MountSource, RootMode};
use kernel::fs::Vfs;
use crate::error::MountError;
use kernel::SysResult;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

/// A mount as the sentry builds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Plan {
    /// A host directory tree; its descriptor comes with the message.
    HostDir {
        destination: String,
        readonly: bool,
        /// The host path it is of (mountinfo's root field, as Linux shows a bind mount's).
        #[serde(default)]
        source: String,
    },
    /// One host file, opened for I/O; its descriptor comes with the message.
    HostFile {
        destination: String,
        readonly: bool,
        #[serde(default)]
        source: String,
    },
    /// A memory-backed tmpfs of the sentry's own.
    Tmpfs { destination: String, readonly: bool, mode: u32 },
    /// One of the file systems the sentry always mounts (`OWN`), as the
    /// spec lists it: its source label and its place in mount order.
    Own { destination: String, fs_type: String, source: String },
}

impl Plan {
    pub fn destination(&self) -> &str {
        match self {
            Plan::HostDir { destination, .. } | Plan::HostFile { destination, .. } | Plan::Tmpfs { destination, .. } | Plan::Own { destination, .. } => destination,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum GoferMessage {
    Mount { plan: Plan },
    /// A spec mount the sandbox does not take from the host, and why.
    Skipped { destination: String, why: String },
    Done,
    Failed { message: String },
}

/// What the gofer does with one spec mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Clone (or, for a file, open) the host `source`.
    Bind { destination: String, source: String, recursive: bool, readonly: bool },
    Tmpfs { destination: String, readonly: bool, mode: u32 },
    /// Describe the sentry's own file system there (see [`Plan::Own`]).
    Own { destination: String, fs_type: String, source: String },
    Skip { destination: String, why: String },
}

/// Destinations the sentry always serves with its own file systems, and
/// their types (kernel::fs::Vfs mounts them).
const OWN: [(&str, &str); 6] = [("/proc", "proc"), ("/dev", "tmpfs"), ("/dev/pts", "devpts"), ("/dev/shm", "tmpfs"), ("/dev/mqueue", "mqueue"), ("/sys", "sysfs")];
/// File system types that only make sense as the sentry's own.
const SENTRY_TYPES: [&str; 6] = ["proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"];

/// `path` without empty and `.` components; errors on a relative path or `..`.
fn clean_destination(path: &str, field: &str) -> Result<String, MountError> {
    if !path.starts_with('/') {
        return Err(MountError::Relative { field: field.into(), path: path.into() });
    }
    let mut out = String::new();
    for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            return Err(MountError::DotDot { field: field.into(), path: path.into() });
        }
        out.push('/');
        out.push_str(c);
    }
    Ok(if out.is_empty() { "/".into() } else { out })
}

/// Octal `mode=` of a tmpfs, as mount(8) reads it.
fn tmpfs_mode(options: &[String], field: &str) -> Result<u32, MountError> {
    match options.iter().find_map(|o| o.strip_prefix("mode=")) {
        None => Ok(0o1777),
        Some(m) => u32::from_str_radix(m, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(|| MountError::TmpfsMode { field: field.into(), mode: m.into() }),
    }
}

/// Decides what becomes of the spec's mount number `index`.
pub fn classify(index: usize, m: &spec::Mount) -> Result<Action, MountError> {
    let field = format!("mounts[{index}]");
    let destination = clean_destination(&m.destination, &format!("{field}.destination"))?;
    let kind = m.kind.as_deref().unwrap_or("");
    let readonly = m.options.iter().any(|o| o == "ro");
    let skip = |why: &str| Ok(Action::Skip { destination: destination.clone(), why: why.into() });
    if destination == "/" {
        return skip("served by the sentry's own file system");
    }
    let bind = kind == "bind" || m.options.iter().any(|o| o == "bind" || o == "rbind");
    if let Some((_, own)) = OWN.iter().find(|(d, _)| *d == destination) {
        return match kind {
            k if k == *own && !bind => Ok(Action::Own { fs_type: k.into(), source: m.source.clone().unwrap_or_else(|| k.into()), destination }),
            _ => skip(&format!("served by the sentry's own {own} file system")),
        };
    }
    if bind {
        let source = m.source.as_deref().ok_or_else(|| MountError::NoSource(field.clone()))?;
        if !source.starts_with('/') {
            return Err(MountError::Relative { field: format!("{field}.source"), path: source.into() });
        }
        let recursive = m.options.iter().any(|o| o == "rbind");
        return Ok(Action::Bind { destination, source: source.into(), recursive, readonly });
    }
    match kind {
        "tmpfs" => Ok(Action::Tmpfs { mode: tmpfs_mode(&m.options, &field)?, destination, readonly }),
        t if SENTRY_TYPES.contains(&t) => skip(&format!("type {t} is not served under {destination}")),
        t => skip(&format!("type {t:?} is not supported")),
    }
}

/// The sentry's side: the root tree and every mount, in spec order.
pub struct Received {
    pub root: OwnedFd,
    pub readonly_root: bool,
    pub mounts: Vec<(Plan, Option<OwnedFd>)>,
    pub skipped: Vec<String>,
}

/// Reads the gofer's messages until `Done`.
pub fn receive(sock: &impl AsRawFd) -> Result<Received, MountError> {
    let mut root = None;
    let mut mounts = Vec::new();
    let mut skipped = Vec::new();
    loop {
        let (msg, mut fds) = control::recv_with_fds::<GoferMessage>(sock).map_err(MountError::Receive)?;
        match msg {
            GoferMessage::Mount { plan } => {
                let fd = fds.pop();
                let needs_fd = !matches!(plan, Plan::Tmpfs { .. } | Plan::Own { .. });
                if needs_fd != fd.is_some() {
                    return Err(MountError::WrongDescriptors(plan.destination().to_string()));
                }
                match (&plan, root.is_none()) {
                    (Plan::HostDir { destination, readonly, .. }, true) if destination == "/" => root = Some((fd.unwrap(), *readonly)),
                    (_, true) => return Err(MountError::RootNotFirst),
                    _ => mounts.push((plan, fd)),
                }
            }
            GoferMessage::Skipped { destination, why } => skipped.push(format!("{destination}: {why}")),
            GoferMessage::Failed { message } => return Err(MountError::Gofer(message)),
            GoferMessage::Done => {
                let (root, readonly_root) = root.ok_or(MountError::NoRoot)?;
                return Ok(Received { root, readonly_root, mounts, skipped });
            }
        }
    }
}

/// The container's file system from what the gofer sent: `tree` makes the
/// tree over the root (copy-on-write in memory unless read-only), then the
/// mounts go on in spec order, then, as runc does, the devices, the
/// read-only paths and the masked paths (a path that does not exist is
/// skipped).
pub fn container_fs(m: Received, covers: &PathCovers, tree: impl FnOnce(OwnedFd, RootMode) -> SysResult<Arc<Vfs>>) -> Result<Arc<Vfs>, MountError> {
    let mode = if m.readonly_root { RootMode::ReadOnly } else { RootMode::Overlay };
    let vfs = tree(m.root, mode).map_err(MountError::RootFs)?;
    for (plan, fd) in m.mounts {
        let (source, readonly) = match (&plan, fd) {
            (Plan::HostDir { readonly, source, .. }, Some(fd)) => (MountSource::HostDir(fd, source.clone()), *readonly),
            (Plan::HostFile { readonly, source, .. }, Some(fd)) => (MountSource::HostFile(fd, source.clone()), *readonly),
            (Plan::Tmpfs { readonly, mode, .. }, _) => (MountSource::Tmpfs { mode: *mode }, *readonly),
            (Plan::Own { destination, fs_type, source }, _) => {
                vfs.describe_own_mount(destination.as_bytes(), fs_type, source).map_err(|errno| MountError::MountAt { destination: destination.clone(), errno })?;
                continue;
            }
            _ => unreachable!("receive checked the descriptors"),
        };
        vfs.mount_at(plan.destination().as_bytes(), source, readonly).map_err(|errno| MountError::MountAt { destination: plan.destination().to_string(), errno })?;
    }
    for (i, d) in covers.devices.iter().enumerate() {
        let kind = match d.kind.as_str() {
            "c" | "u" => libc::S_IFCHR,
            "b" => libc::S_IFBLK,
            "p" => libc::S_IFIFO,
            t => return Err(MountError::DeviceType { index: i, kind: t.into() }),
        };
        let mode = kind | d.file_mode.unwrap_or(0o666) & 0o7777;
        let rdev = if kind == libc::S_IFIFO { 0 } else { libc::makedev(d.major, d.minor) };
        vfs.make_device(d.path.as_bytes(), mode, rdev, (d.uid.unwrap_or(0), d.gid.unwrap_or(0)))
            .map_err(|errno| MountError::Device { index: i, path: d.path.clone(), errno })?;
    }
    for (paths, how, field) in [(&covers.readonly_paths, Cover::ReadOnly, "readonlyPaths"), (&covers.masked_paths, Cover::Mask, "maskedPaths")] {
        for (i, path) in paths.iter().enumerate() {
            match vfs.cover(path.as_bytes(), how) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(errno) => return Err(MountError::Cover { field, index: i, path: path.clone(), errno }),
            }
        }
    }
    Ok(vfs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(dest: &str, kind: &str, source: Option<&str>, options: &[&str]) -> spec::Mount {
        spec::Mount { destination: dest.into(), kind: Some(kind.into()), source: source.map(String::from), options: options.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn classifies_what_runc_specs_hold() {
        assert_eq!(
            classify(0, &m("/proc", "proc", Some("proc"), &[])).unwrap(),
            Action::Own { destination: "/proc".into(), fs_type: "proc".into(), source: "proc".into() }
        );
        assert_eq!(
            classify(0, &m("/dev/shm", "tmpfs", Some("shm"), &["mode=1777"])).unwrap(),
            Action::Own { destination: "/dev/shm".into(), fs_type: "tmpfs".into(), source: "shm".into() }
        );
        assert!(matches!(classify(0, &m("/dev", "devtmpfs", Some("udev"), &[])).unwrap(), Action::Skip { .. }));
        assert!(matches!(classify(0, &m("/dev/shm", "bind", Some("/dev/shm"), &["rbind"])).unwrap(), Action::Skip { .. }));
        assert!(matches!(classify(0, &m("/sys/fs/cgroup", "cgroup", None, &[])).unwrap(), Action::Skip { .. }));
        assert_eq!(
            classify(0, &m("/run//x/", "tmpfs", None, &["nosuid", "mode=0700", "ro"])).unwrap(),
            Action::Tmpfs { destination: "/run/x".into(), readonly: true, mode: 0o700 }
        );
        assert_eq!(
            classify(0, &m("/data", "none", Some("/srv"), &["rbind", "ro"])).unwrap(),
            Action::Bind { destination: "/data".into(), source: "/srv".into(), recursive: true, readonly: true }
        );
        assert_eq!(
            classify(0, &m("/etc/hosts", "bind", Some("/h"), &[])).unwrap(),
            Action::Bind { destination: "/etc/hosts".into(), source: "/h".into(), recursive: false, readonly: false }
        );
    }

    #[test]
    fn bad_mounts_name_the_field() {
        assert!(classify(2, &m("data", "tmpfs", None, &[])).unwrap_err().to_string().contains("mounts[2].destination"));
        assert!(classify(1, &m("/a/../b", "tmpfs", None, &[])).unwrap_err().to_string().contains(".."));
        assert!(classify(3, &m("/a", "bind", Some("rel"), &[])).unwrap_err().to_string().contains("mounts[3].source"));
        assert!(classify(3, &m("/a", "bind", None, &[])).unwrap_err().to_string().contains("mounts[3].source"));
        assert!(classify(0, &m("/t", "tmpfs", None, &["mode=9"])).unwrap_err().to_string().contains("mode=9"));
    }
}
