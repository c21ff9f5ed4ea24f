//! Path arguments as handlers resolve them: where a relative path starts
//! (the cwd or a directory descriptor), the place a path names, and the
//! directory and last name of a path about to be created or removed.

use super::caller::caller;
use crate::fs::vfs::{Follow, FsContext, Location};
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub(crate) const AT_FDCWD: i32 = libc::AT_FDCWD;

/// The caller's root and cwd, copied out of the lock: resolution may read
/// them again (`/proc/self/cwd`).
pub(crate) fn fs_context(t: &TaskCtx) -> FsContext {
    t.fs().lock().unwrap().clone()
}

/// Where a relative path starts: the cwd, or a directory descriptor.
pub(crate) fn start_at(t: &TaskCtx, fs: &FsContext, dirfd: i32, path: &[u8]) -> SysResult<Location> {
    if path.first() == Some(&b'/') || dirfd == AT_FDCWD {
        return Ok(fs.cwd.clone());
    }
    let f = t.files().get(dirfd)?;
    match &f.location {
        Some(l) if l.is_dir() => Ok(l.clone()),
        _ => Err(Errno::ENOTDIR),
    }
}

/// Resolves (dirfd, path) to a place.
pub(crate) fn resolve_at(t: &TaskCtx, dirfd: i32, path: &[u8], follow: Follow) -> SysResult<Location> {
    let fs = fs_context(t);
    let start = start_at(t, &fs, dirfd, path)?;
    fs.vfs.resolve(&caller(t), &fs.root, &start, path, follow)
}

/// The directory and last name of a path that is about to be created or
/// removed; EROFS on a read-only mount.
pub(crate) fn parent_of(t: &TaskCtx, dirfd: i32, path: &[u8]) -> SysResult<(Location, Vec<u8>)> {
    let fs = fs_context(t);
    let start = start_at(t, &fs, dirfd, path)?;
    let (dir, name) = fs.vfs.resolve_parent(&caller(t), &fs.root, &start, path)?;
    let name = name.to_vec();
    if dir.mount.readonly {
        return Err(Errno::EROFS);
    }
    Ok((dir, name))
}

/// Names that cannot be created or removed ("/", ".", "..").
pub(crate) fn special(name: &[u8]) -> bool {
    name.is_empty() || name == b"." || name == b".."
}

/// The child `name` of `dir` as a location (for mount-point and type checks).
pub(crate) fn child_of(t: &TaskCtx, dir: &Location, name: &[u8]) -> SysResult<Location> {
    let d = dir.dentry.child(&caller(t), name)?;
    Ok(Location { mount: dir.mount.clone(), dentry: d })
}
