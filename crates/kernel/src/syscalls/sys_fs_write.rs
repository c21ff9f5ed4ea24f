//! System calls that change the tree or inode metadata: mkdir, rmdir,
//! unlink, rename, link, symlink, mknod, chmod, chown, utimes, truncate,
//! fallocate, the sync family, statfs, memfd_create, copy_file_range,
//! flock and the extended attribute calls.

use super::sys_file::{caller, fs_context, resolve_at, start_at};
use super::{Args, Entry};
use crate::fs::lock::{self, Owner, Want};
use crate::fs::node::{Dentry, SetAttr, Time, S_IFDIR, S_IFMT};
use crate::fs::vfs::{Follow, Location};
use crate::fs::OpenFile;
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::{Pod, Timespec, Timeval};
use abi::Errno;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub const SYSCALLS: &[Entry] = &[
    sys!(MKDIR, sys_mkdir, [Str, Hex]),
    sys!(MKDIRAT, sys_mkdirat, [Int, Str, Hex]),
    sys!(RMDIR, sys_rmdir, [Str]),
    sys!(UNLINK, sys_unlink, [Str]),
    sys!(UNLINKAT, sys_unlinkat, [Int, Str, Hex]),
    sys!(RENAME, sys_rename, [Str, Str]),
    sys!(RENAMEAT, sys_renameat, [Int, Str, Int, Str]),
    sys!(RENAMEAT2, sys_renameat2, [Int, Str, Int, Str, Hex], partial "RENAME_WHITEOUT is refused (EINVAL)"),
    sys!(LINK, sys_link, [Str, Str]),
    sys!(LINKAT, sys_linkat, [Int, Str, Int, Str, Hex]),
    sys!(SYMLINK, sys_symlink, [Str, Str]),
    sys!(SYMLINKAT, sys_symlinkat, [Str, Int, Str]),
    sys!(MKNOD, sys_mknod, [Str, Hex, Hex]),
    sys!(MKNODAT, sys_mknodat, [Int, Str, Hex, Hex], partial "device nodes open only the devices the sentry serves (null, zero, full, random, urandom)"),
    sys!(CHMOD, sys_chmod, [Str, Hex]),
    sys!(FCHMOD, sys_fchmod, [Int, Hex]),
    sys!(FCHMODAT, sys_fchmodat, [Int, Str, Hex]),
    sys!(CHOWN, sys_chown, [Str, Int, Int]),
    sys!(FCHOWN, sys_fchown, [Int, Int, Int]),
    sys!(LCHOWN, sys_lchown, [Str, Int, Int]),
    sys!(FCHOWNAT, sys_fchownat, [Int, Str, Int, Int, Hex]),
    sys!(UTIME, sys_utime, [Str, Hex]),
    sys!(UTIMES, sys_utimes, [Str, Hex]),
    sys!(FUTIMESAT, sys_futimesat, [Int, Str, Hex]),
    sys!(UTIMENSAT, sys_utimensat, [Int, Str, Hex, Hex]),
    sys!(TRUNCATE, sys_truncate, [Str, Int]),
    sys!(FTRUNCATE, sys_ftruncate, [Int, Int]),
    sys!(FALLOCATE, sys_fallocate, [Int, Hex, Int, Int], partial "mode 0 and FALLOC_FL_KEEP_SIZE only (other modes: EOPNOTSUPP)"),
    sys!(FSYNC, sys_fsync, [Int]),
    sys!(FDATASYNC, sys_fsync, [Int]),
    sys!(SYNCFS, sys_fsync, [Int]),
    sys!(SYNC, sys_sync, []),
    sys!(SYNC_FILE_RANGE, sys_sync_file_range, [Int, Int, Int, Hex]),
    sys!(STATFS, sys_statfs, [Str, Hex]),
    sys!(FSTATFS, sys_fstatfs, [Int, Hex]),
    sys!(MEMFD_CREATE, sys_memfd_create, [Str, Hex], partial "no file seals (MFD_ALLOW_SEALING accepted, F_ADD_SEALS refused); no MFD_HUGETLB"),
    sys!(COPY_FILE_RANGE, sys_copy_file_range, [Int, Hex, Int, Hex, Int, Hex], partial "served by the sentry as read+write"),
    sys!(FLOCK, sys_flock, [Int, Hex]),
    sys!(GETXATTR, sys_getxattr, [Str, Str, Hex, Int], partial "no extended attributes are stored: ENODATA"),
    sys!(LGETXATTR, sys_lgetxattr, [Str, Str, Hex, Int], partial "no extended attributes are stored: ENODATA"),
    sys!(FGETXATTR, sys_fgetxattr, [Int, Str, Hex, Int], partial "no extended attributes are stored: ENODATA"),
    sys!(LISTXATTR, sys_listxattr, [Str, Hex, Int], partial "no extended attributes are stored: an empty list"),
    sys!(LLISTXATTR, sys_llistxattr, [Str, Hex, Int], partial "no extended attributes are stored: an empty list"),
    sys!(FLISTXATTR, sys_flistxattr, [Int, Hex, Int], partial "no extended attributes are stored: an empty list"),
    sys!(SETXATTR, sys_setxattr, [Str, Str, Hex, Int, Hex], partial "extended attributes are not supported: EOPNOTSUPP"),
    sys!(LSETXATTR, sys_setxattr, [Str, Str, Hex, Int, Hex], partial "extended attributes are not supported: EOPNOTSUPP"),
    sys!(FSETXATTR, sys_fsetxattr, [Int, Str, Hex, Int, Hex], partial "extended attributes are not supported: EOPNOTSUPP"),
    sys!(REMOVEXATTR, sys_removexattr, [Str, Str], partial "no extended attributes are stored: ENODATA"),
    sys!(LREMOVEXATTR, sys_lremovexattr, [Str, Str], partial "no extended attributes are stored: ENODATA"),
    sys!(FREMOVEXATTR, sys_fremovexattr, [Int, Str], partial "no extended attributes are stored: ENODATA"),
];

const AT_FDCWD: i32 = libc::AT_FDCWD;

/// The directory and last name of a path that is about to be created or
/// removed; EROFS on a read-only mount.
fn parent_of(t: &TaskCtx, dirfd: i32, path: &[u8]) -> SysResult<(Location, Vec<u8>)> {
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
fn special(name: &[u8]) -> bool {
    name.is_empty() || name == b"." || name == b".."
}

fn do_mkdir(t: &TaskCtx, dirfd: i32, path_addr: u64, mode: u32) -> SysResult<u64> {
    let path = t.read_path(path_addr)?;
    let (dir, name) = parent_of(t, dirfd, &path)?;
    if special(&name) {
        return Err(Errno::EEXIST);
    }
    let umask = fs_context(t).umask;
    dir.node().mkdir(&caller(t), &name, mode & 0o7777 & !umask)?;
    Ok(0)
}

fn sys_mkdir(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_mkdir(t, AT_FDCWD, a[0], a[1] as u32)
}

fn sys_mkdirat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_mkdir(t, a[0] as i32, a[1], a[2] as u32)
}

/// The child `name` of `dir` as a location (for mount-point and type checks).
fn child_of(t: &TaskCtx, dir: &Location, name: &[u8]) -> SysResult<Location> {
    let d = dir.dentry.child(&caller(t), name)?;
    Ok(Location { mount: dir.mount.clone(), dentry: d })
}

fn do_remove(t: &TaskCtx, dirfd: i32, path_addr: u64, dir_wanted: bool) -> SysResult<u64> {
    let path = t.read_path(path_addr)?;
    let (dir, name) = parent_of(t, dirfd, &path)?;
    if dir_wanted {
        if name == b"." {
            return Err(Errno::EINVAL);
        }
        if special(&name) {
            return Err(Errno::ENOTEMPTY);
        }
    } else if special(&name) {
        return Err(Errno::EISDIR);
    }
    let child = child_of(t, &dir, &name)?;
    if fs_context(t).vfs.is_mount_point(&child) {
        return Err(Errno::EBUSY);
    }
    if !dir_wanted && path.ends_with(b"/") {
        return Err(if child.is_dir() { Errno::EISDIR } else { Errno::ENOTDIR });
    }
    let c = caller(t);
    if dir_wanted {
        dir.node().rmdir(&c, &name)?;
    } else {
        dir.node().unlink(&c, &name)?;
    }
    dir.dentry.forget(&name);
    Ok(0)
}

fn sys_rmdir(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_remove(t, AT_FDCWD, a[0], true)
}

fn sys_unlink(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_remove(t, AT_FDCWD, a[0], false)
}

fn sys_unlinkat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let flags = a[2] as i32;
    if flags & !libc::AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    do_remove(t, a[0] as i32, a[1], flags & libc::AT_REMOVEDIR != 0)
}

fn do_rename(t: &TaskCtx, olddirfd: i32, old_addr: u64, newdirfd: i32, new_addr: u64, flags: u32) -> SysResult<u64> {
    if flags & !(libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE) != 0 || (flags & libc::RENAME_NOREPLACE != 0 && flags & libc::RENAME_EXCHANGE != 0) {
        return Err(Errno::EINVAL);
    }
    let old = t.read_path(old_addr)?;
    let new = t.read_path(new_addr)?;
    let (odir, oname) = parent_of(t, olddirfd, &old)?;
    let (ndir, nname) = parent_of(t, newdirfd, &new)?;
    if special(&oname) || special(&nname) {
        return Err(Errno::EBUSY);
    }
    if !Arc::ptr_eq(&odir.mount, &ndir.mount) {
        return Err(Errno::EXDEV);
    }
    let src = child_of(t, &odir, &oname)?;
    let fsc = fs_context(t);
    let vfs = &fsc.vfs;
    if vfs.is_mount_point(&src) {
        return Err(Errno::EBUSY);
    }
    // A directory cannot move below itself.
    if src.is_dir() && ndir.dentry.is_within(&src.dentry) {
        return Err(Errno::EINVAL);
    }
    let dst = match child_of(t, &ndir, &nname) {
        Ok(d) => Some(d),
        Err(Errno::ENOENT) => None,
        Err(e) => return Err(e),
    };
    if let Some(d) = &dst {
        if vfs.is_mount_point(d) {
            return Err(Errno::EBUSY);
        }
        if flags & libc::RENAME_EXCHANGE != 0 && d.is_dir() && odir.dentry.is_within(&d.dentry) {
            return Err(Errno::EINVAL);
        }
    }
    if !src.is_dir() && (old.ends_with(b"/") || new.ends_with(b"/")) && dst.as_ref().map_or(true, |d| !d.is_dir()) {
        return Err(Errno::ENOTDIR);
    }
    drop(dst);
    drop(src);
    odir.node().rename(&caller(t), &oname, ndir.node(), &nname, flags)?;
    if flags & libc::RENAME_EXCHANGE != 0 {
        // Both names still exist, with each other's inodes: drop both.
        odir.dentry.forget(&oname);
        ndir.dentry.forget(&nname);
    } else {
        Dentry::moved(&odir.dentry, &oname, &ndir.dentry, &nname);
    }
    Ok(0)
}

fn sys_rename(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_rename(t, AT_FDCWD, a[0], AT_FDCWD, a[1], 0)
}

fn sys_renameat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_rename(t, a[0] as i32, a[1], a[2] as i32, a[3], 0)
}

fn sys_renameat2(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_rename(t, a[0] as i32, a[1], a[2] as i32, a[3], a[4] as u32)
}

fn do_link(t: &TaskCtx, olddirfd: i32, old_addr: u64, newdirfd: i32, new_addr: u64, flags: i32) -> SysResult<u64> {
    if flags & !(libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old = t.read_path(old_addr)?;
    let new = t.read_path(new_addr)?;
    let target = if old.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        let f = t.files().get(olddirfd)?;
        f.location.clone().ok_or(Errno::ENOENT)?
    } else {
        let follow = if flags & libc::AT_SYMLINK_FOLLOW != 0 { Follow::Yes } else { Follow::No };
        resolve_at(t, olddirfd, &old, follow)?
    };
    if target.is_dir() {
        return Err(Errno::EPERM);
    }
    let (dir, name) = parent_of(t, newdirfd, &new)?;
    if special(&name) || new.ends_with(b"/") {
        return Err(Errno::EEXIST);
    }
    if !Arc::ptr_eq(&dir.mount, &target.mount) {
        return Err(Errno::EXDEV);
    }
    dir.node().link(&caller(t), &name, target.node())?;
    Ok(0)
}

fn sys_link(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_link(t, AT_FDCWD, a[0], AT_FDCWD, a[1], 0)
}

fn sys_linkat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_link(t, a[0] as i32, a[1], a[2] as i32, a[3], a[4] as i32)
}

fn do_symlink(t: &TaskCtx, target_addr: u64, dirfd: i32, path_addr: u64) -> SysResult<u64> {
    let target = t.read_path(target_addr)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = t.read_path(path_addr)?;
    let (dir, name) = parent_of(t, dirfd, &path)?;
    if special(&name) || path.ends_with(b"/") {
        return Err(Errno::EEXIST);
    }
    dir.node().symlink(&caller(t), &name, &target)?;
    Ok(0)
}

fn sys_symlink(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_symlink(t, a[0], AT_FDCWD, a[1])
}

fn sys_symlinkat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_symlink(t, a[0], a[1] as i32, a[2])
}

fn do_mknod(t: &TaskCtx, dirfd: i32, path_addr: u64, mode: u32, dev: u64) -> SysResult<u64> {
    let path = t.read_path(path_addr)?;
    let kind = match mode & S_IFMT {
        0 => libc::S_IFREG,
        k @ (libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK) => k,
        libc::S_IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    };
    let (dir, name) = parent_of(t, dirfd, &path)?;
    if special(&name) {
        return Err(Errno::EEXIST);
    }
    let umask = fs_context(t).umask;
    let rdev = if kind == libc::S_IFCHR || kind == libc::S_IFBLK { dev } else { 0 };
    dir.node().mknod(&caller(t), &name, kind | (mode & 0o7777 & !umask), rdev)?;
    Ok(0)
}

fn sys_mknod(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_mknod(t, AT_FDCWD, a[0], a[1] as u32, a[2])
}

fn sys_mknodat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_mknod(t, a[0] as i32, a[1], a[2] as u32, a[3])
}

/// Applies `attr` to the inode a path names.
fn setattr_path(t: &TaskCtx, dirfd: i32, path: &[u8], follow: Follow, attr: &SetAttr) -> SysResult<u64> {
    let loc = resolve_at(t, dirfd, path, follow)?;
    setattr_loc(t, &loc, attr)
}

fn setattr_loc(t: &TaskCtx, loc: &Location, attr: &SetAttr) -> SysResult<u64> {
    if loc.mount.readonly {
        return Err(Errno::EROFS);
    }
    loc.node().setattr(&caller(t), attr)?;
    Ok(0)
}

/// Applies `attr` to the inode behind a descriptor.
fn setattr_fd(t: &TaskCtx, fd: i32, attr: &SetAttr) -> SysResult<u64> {
    let f = t.files().get(fd)?;
    setattr_file(t, &f, attr)
}

fn setattr_file(t: &TaskCtx, f: &Arc<OpenFile>, attr: &SetAttr) -> SysResult<u64> {
    match &f.location {
        Some(l) => setattr_loc(t, l, attr),
        None => f.ops.setattr(&caller(t), attr).map(|_| 0),
    }
}

fn mode_attr(mode: u64) -> SetAttr {
    SetAttr { mode: Some(mode as u32 & 0o7777), ..Default::default() }
}

fn sys_chmod(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let path = t.read_path(a[0])?;
    setattr_path(t, AT_FDCWD, &path, Follow::Yes, &mode_attr(a[1]))
}

fn sys_fchmod(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    setattr_fd(t, a[0] as i32, &mode_attr(a[1]))
}

fn sys_fchmodat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let path = t.read_path(a[1])?;
    setattr_path(t, a[0] as i32, &path, Follow::Yes, &mode_attr(a[2]))
}

/// chown's (uid, gid), where -1 leaves a field alone.
fn owner_attr(uid: u64, gid: u64) -> SetAttr {
    let keep = |v: u64| if v as u32 == u32::MAX { None } else { Some(v as u32) };
    SetAttr { uid: keep(uid), gid: keep(gid), ..Default::default() }
}

fn sys_chown(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let path = t.read_path(a[0])?;
    setattr_path(t, AT_FDCWD, &path, Follow::Yes, &owner_attr(a[1], a[2]))
}

fn sys_lchown(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let path = t.read_path(a[0])?;
    setattr_path(t, AT_FDCWD, &path, Follow::No, &owner_attr(a[1], a[2]))
}

fn sys_fchown(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    setattr_fd(t, a[0] as i32, &owner_attr(a[1], a[2]))
}

fn sys_fchownat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let flags = a[4] as i32;
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.read_path(a[1])?;
    let attr = owner_attr(a[2], a[3]);
    if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        if a[0] as i32 == AT_FDCWD {
            return setattr_loc(t, &fs_context(t).cwd, &attr);
        }
        return setattr_fd(t, a[0] as i32, &attr);
    }
    let follow = if flags & libc::AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
    setattr_path(t, a[0] as i32, &path, follow, &attr)
}

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// The times utimensat's array asks for (None: both now).
fn times_attr(times: Option<[Timespec; 2]>) -> SysResult<SetAttr> {
    let now = Time::now();
    let Some(ts) = times else {
        return Ok(SetAttr { atime: Some(now), mtime: Some(now), ..Default::default() });
    };
    let pick = |t: Timespec| -> SysResult<Option<Time>> {
        match t.tv_nsec {
            UTIME_OMIT => Ok(None),
            UTIME_NOW => Ok(Some(now)),
            n if (0..1_000_000_000).contains(&n) => Ok(Some(Time { sec: t.tv_sec, nsec: n })),
            _ => Err(Errno::EINVAL),
        }
    };
    Ok(SetAttr { atime: pick(ts[0])?, mtime: pick(ts[1])?, ..Default::default() })
}

fn read_timespecs(t: &TaskCtx, addr: u64) -> SysResult<Option<[Timespec; 2]>> {
    if addr == 0 {
        return Ok(None);
    }
    let a: Timespec = t.read_obj(addr)?;
    let b: Timespec = t.read_obj(addr + std::mem::size_of::<Timespec>() as u64)?;
    Ok(Some([a, b]))
}

fn read_timevals(t: &TaskCtx, addr: u64) -> SysResult<Option<[Timespec; 2]>> {
    if addr == 0 {
        return Ok(None);
    }
    let mut out = [Timespec::default(); 2];
    for (i, o) in out.iter_mut().enumerate() {
        let tv: Timeval = t.read_obj(addr + (i * std::mem::size_of::<Timeval>()) as u64)?;
        if !(0..1_000_000).contains(&tv.tv_usec) {
            return Err(Errno::EINVAL);
        }
        *o = Timespec { tv_sec: tv.tv_sec, tv_nsec: tv.tv_usec * 1000 };
    }
    Ok(Some(out))
}

fn sys_utimensat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (dirfd, path_addr, flags) = (a[0] as i32, a[1], a[3] as i32);
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let attr = times_attr(read_timespecs(t, a[2])?)?;
    // A NULL path is futimens(dirfd).
    if path_addr == 0 {
        if dirfd == AT_FDCWD {
            return Err(Errno::EFAULT);
        }
        return setattr_fd(t, dirfd, &attr);
    }
    let path = t.read_path(path_addr)?;
    if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        return setattr_fd(t, dirfd, &attr);
    }
    let follow = if flags & libc::AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
    setattr_path(t, dirfd, &path, follow, &attr)
}

fn sys_futimesat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let attr = times_attr(read_timevals(t, a[2])?)?;
    if a[1] == 0 {
        return setattr_fd(t, a[0] as i32, &attr);
    }
    let path = t.read_path(a[1])?;
    setattr_path(t, a[0] as i32, &path, Follow::Yes, &attr)
}

fn sys_utimes(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let attr = times_attr(read_timevals(t, a[1])?)?;
    let path = t.read_path(a[0])?;
    setattr_path(t, AT_FDCWD, &path, Follow::Yes, &attr)
}

fn sys_utime(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    // struct utimbuf { time_t actime, modtime; }
    let times = if a[1] == 0 {
        None
    } else {
        let at: i64 = t.read_obj(a[1])?;
        let mt: i64 = t.read_obj(a[1] + 8)?;
        Some([Timespec { tv_sec: at, tv_nsec: 0 }, Timespec { tv_sec: mt, tv_nsec: 0 }])
    };
    let attr = times_attr(times)?;
    let path = t.read_path(a[0])?;
    setattr_path(t, AT_FDCWD, &path, Follow::Yes, &attr)
}

fn size_attr(len: u64) -> SysResult<SetAttr> {
    if (len as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(SetAttr { size: Some(len), ..Default::default() })
}

fn sys_truncate(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let attr = size_attr(a[1])?;
    let path = t.read_path(a[0])?;
    let loc = resolve_at(t, AT_FDCWD, &path, Follow::Yes)?;
    if loc.is_dir() {
        return Err(Errno::EISDIR);
    }
    setattr_loc(t, &loc, &attr)
}

fn writable_regular(t: &TaskCtx, fd: i32) -> SysResult<Arc<OpenFile>> {
    let f = t.files().get(fd)?;
    if f.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    if !f.writable() {
        return Err(Errno::EINVAL);
    }
    let st = f.ops.stat()?;
    if st.st_mode & S_IFMT != libc::S_IFREG {
        return Err(if st.st_mode & S_IFMT == S_IFDIR { Errno::EISDIR } else { Errno::EINVAL });
    }
    Ok(f)
}

fn sys_ftruncate(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let attr = size_attr(a[1])?;
    let f = writable_regular(t, a[0] as i32)?;
    setattr_file(t, &f, &attr)
}

fn sys_fallocate(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (mode, off, len) = (a[1] as i32, a[2] as i64, a[3] as i64);
    if off < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    let f = t.files().get(a[0] as i32)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    let end = off.checked_add(len).ok_or(Errno::EFBIG)? as u64;
    match mode {
        // Memory is allocated on first write anyway: only the size matters.
        0 => {
            let st = f.ops.stat()?;
            if st.st_mode & S_IFMT != libc::S_IFREG {
                return Err(Errno::ENODEV);
            }
            if end > st.st_size as u64 {
                setattr_file(t, &f, &SetAttr { size: Some(end), ..Default::default() })?;
            }
            Ok(0)
        }
        libc::FALLOC_FL_KEEP_SIZE => Ok(0),
        _ => {
            t.kernel().report_unsupported_feature(abi::syscalls::nr::FALLOCATE, "mode");
            Err(Errno::EOPNOTSUPP)
        }
    }
}

/// Every file is in memory or on a host the sentry only reads: there is
/// nothing to flush.
fn sys_fsync(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    t.files().get(a[0] as i32)?;
    Ok(0)
}

fn sys_sync(_t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    Ok(0)
}

fn sys_sync_file_range(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if (a[1] as i64) < 0 || (a[2] as i64) < 0 || a[3] & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    t.files().get(a[0] as i32)?;
    Ok(0)
}

/// struct statfs as x86-64 Linux lays it out.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Statfs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}

// SAFETY: repr(C), integers only, no implicit padding (all fields 8-byte
// aligned multiples).
unsafe impl Pod for Statfs {}

/// statfs of the mount `loc` is on. Memory-backed file systems report the
/// sandbox's memory as their size and the memory file's free part as free.
pub fn statfs_of(t: &TaskCtx, loc: &Location) -> Statfs {
    let magic: i64 = match loc.mount.fs_type {
        "overlay" => 0x794c_7630,
        "tmpfs" | "devtmpfs" => 0x0102_1994,
        "proc" => 0x9fa0,
        "devpts" => 0x1cd1,
        "sysfs" => 0x6265_6572,
        "rootfs" => 0x8584_58f6,
        _ => 0x0904_1934,
    };
    let total = t.kernel().config.total_memory / 4096;
    let used = t.kernel().vfs.memfile().usage().allocated / 4096;
    let memory_backed = matches!(loc.mount.fs_type, "overlay" | "tmpfs" | "rootfs");
    let (blocks, free) = if memory_backed { (total, total.saturating_sub(used)) } else { (0, 0) };
    let mut flags = 0x20 | 0x1000; // ST_VALID-ish bits Linux reports: ST_RELATIME, and "valid"
    if loc.mount.readonly {
        flags |= 1; // ST_RDONLY
    }
    Statfs {
        f_type: magic,
        f_bsize: 4096,
        f_blocks: blocks,
        f_bfree: free,
        f_bavail: free,
        f_files: if memory_backed { total } else { 0 },
        f_ffree: if memory_backed { total.saturating_sub(used) } else { 0 },
        f_fsid: [loc.mount.id as i32, 0],
        f_namelen: 255,
        f_frsize: 4096,
        f_flags: flags,
        f_spare: [0; 4],
    }
}

fn sys_statfs(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let path = t.read_path(a[0])?;
    let loc = resolve_at(t, AT_FDCWD, &path, Follow::Yes)?;
    let st = statfs_of(t, &loc);
    t.write_obj(a[1], &st)?;
    Ok(0)
}

fn sys_fstatfs(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = t.files().get(a[0] as i32)?;
    let loc = f.location.clone().unwrap_or_else(|| t.kernel().vfs.detached(f.clone()));
    let st = statfs_of(t, &loc);
    t.write_obj(a[1], &st)?;
    Ok(0)
}

const MFD_CLOEXEC: u64 = 1;
const MFD_ALLOW_SEALING: u64 = 2;
const MFD_HUGETLB: u64 = 4;

fn sys_memfd_create(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let flags = a[1];
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MFD_HUGETLB != 0 {
        t.kernel().report_unsupported_feature(abi::syscalls::nr::MEMFD_CREATE, "MFD_HUGETLB");
        return Err(Errno::EINVAL);
    }
    let name = t.read_cstr(a[0], 250).map_err(|e| if e == Errno::ENAMETOOLONG { Errno::EINVAL } else { e })?;
    if name.len() > 249 {
        return Err(Errno::EINVAL);
    }
    let vfs = &t.kernel().vfs;
    let node = vfs.memfd_fs().new_node(libc::S_IFREG | 0o777, caller(t).owner(), 0);
    let ops = node.open_node(&caller(t), libc::O_RDWR as u32)?;
    let mut label = b"/memfd:".to_vec();
    label.extend_from_slice(&name);
    label.extend_from_slice(b" (deleted)");
    let loc = vfs.anon_location(&label, node);
    let file = OpenFile::new(ops, (libc::O_RDWR | libc::O_LARGEFILE) as u32, Some(loc));
    Ok(t.files().install(file, flags & MFD_CLOEXEC != 0)? as u64)
}

fn sys_copy_file_range(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (fd_in, off_in_addr, fd_out, off_out_addr, len, flags) = (a[0] as i32, a[1], a[2] as i32, a[3], a[4] as usize, a[5]);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let input = t.files().get(fd_in)?;
    let output = t.files().get(fd_out)?;
    if !input.readable() || !output.writable() || output.flags() & libc::O_APPEND as u32 != 0 {
        return Err(Errno::EBADF);
    }
    for f in [&input, &output] {
        let k = f.ops.stat()?.st_mode & S_IFMT;
        if k == S_IFDIR {
            return Err(Errno::EISDIR);
        }
        if k != libc::S_IFREG {
            return Err(Errno::EINVAL);
        }
    }
    let read_off = |addr: u64| -> SysResult<Option<u64>> {
        if addr == 0 {
            return Ok(None);
        }
        let o: i64 = t.read_obj(addr)?;
        if o < 0 {
            return Err(Errno::EINVAL);
        }
        Ok(Some(o as u64))
    };
    // Without an offset pointer, the descriptions' own positions: for a
    // host descriptor (stdio redirected to a file) the host's, which the
    // caller and every other process holding it share.
    let mut pin = match read_off(off_in_addr)? {
        Some(o) => o,
        None => input.position()?,
    };
    let mut pout = match read_off(off_out_addr)? {
        Some(o) => o,
        None => output.position()?,
    };
    let len = len.min(1 << 30);
    let mut buf = vec![0u8; len.min(1 << 20)];
    let mut done = 0usize;
    while done < len {
        let want = buf.len().min(len - done);
        let n = input.ops.read_at(Some(t), &mut buf[..want], pin)?;
        if n == 0 {
            break;
        }
        let w = output.ops.write_at(t, &buf[..n], pout)?;
        pin += w as u64;
        pout += w as u64;
        done += w;
        if w < n {
            break;
        }
    }
    match off_in_addr {
        0 => input.set_position(pin)?,
        addr => t.write_obj(addr, &(pin as i64))?,
    }
    match off_out_addr {
        0 => output.set_position(pout)?,
        addr => t.write_obj(addr, &(pout as i64))?,
    }
    Ok(done as u64)
}

/// The lock-table key of an open file: its inode.
pub fn lock_key(f: &OpenFile) -> SysResult<lock::Key> {
    let st = f.ops.stat()?;
    Ok((st.st_dev, st.st_ino))
}

fn sys_flock(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let op = a[1] as i32;
    let f = t.files().get(a[0] as i32)?;
    if f.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    let exclusive = match op & !libc::LOCK_NB {
        libc::LOCK_SH => Some(false),
        libc::LOCK_EX => Some(true),
        libc::LOCK_UN => None,
        _ => return Err(Errno::EINVAL),
    };
    let key = lock_key(&f)?;
    f.has_locks.store(true, Ordering::Relaxed);
    let owner = Owner::File(Arc::as_ptr(&f) as usize);
    lock::table().lock(t, key, owner, Want::Flock { exclusive }, op & libc::LOCK_NB == 0, Errno::EAGAIN)?;
    Ok(0)
}

/// Extended attributes: the sentry stores none. Reads say "no such
/// attribute" on an existing file; writes say the file system does not
/// support them (what Linux answers for a file system without xattrs).
fn xattr_target(t: &TaskCtx, path_addr: u64, follow: Follow) -> SysResult<()> {
    let path = t.read_path(path_addr)?;
    resolve_at(t, AT_FDCWD, &path, follow)?;
    Ok(())
}

fn xattr_name(t: &TaskCtx, addr: u64) -> SysResult<()> {
    let n = t.read_cstr(addr, 256).map_err(|e| if e == Errno::ENAMETOOLONG { Errno::ERANGE } else { e })?;
    if n.is_empty() || n.len() > 255 {
        return Err(Errno::ERANGE);
    }
    Ok(())
}

fn sys_getxattr(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    xattr_target(t, a[0], Follow::Yes)?;
    xattr_name(t, a[1])?;
    Err(Errno::ENODATA)
}

fn sys_lgetxattr(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    xattr_target(t, a[0], Follow::No)?;
    xattr_name(t, a[1])?;
    Err(Errno::ENODATA)
}

fn sys_fgetxattr(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    t.files().get(a[0] as i32)?;
    xattr_name(t, a[1])?;
    Err(Errno::ENODATA)
}

fn sys_listxattr(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    xattr_target(t, a[0], Follow::Yes)?;
    Ok(0)
}

fn sys_llistxattr(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    xattr_target(t, a[0], Follow::No)?;
    Ok(0)
}

fn sys_flistxattr(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    t.files().get(a[0] as i32)?;
    Ok(0)
}

fn sys_setxattr(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    xattr_target(t, a[0], Follow::Yes)?;
    xattr_name(t, a[1])?;
    Err(Errno::EOPNOTSUPP)
}

fn sys_fsetxattr(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    t.files().get(a[0] as i32)?;
    xattr_name(t, a[1])?;
    Err(Errno::EOPNOTSUPP)
}

fn sys_removexattr(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    xattr_target(t, a[0], Follow::Yes)?;
    xattr_name(t, a[1])?;
    Err(Errno::ENODATA)
}

fn sys_lremovexattr(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    xattr_target(t, a[0], Follow::No)?;
    xattr_name(t, a[1])?;
    Err(Errno::ENODATA)
}

fn sys_fremovexattr(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    t.files().get(a[0] as i32)?;
    xattr_name(t, a[1])?;
    Err(Errno::ENODATA)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statfs_is_120_bytes_and_times_parse() {
        assert_eq!(std::mem::size_of::<Statfs>(), 120);
        let a = times_attr(Some([Timespec { tv_sec: 5, tv_nsec: UTIME_OMIT }, Timespec { tv_sec: 7, tv_nsec: 9 }])).unwrap();
        assert_eq!((a.atime, a.mtime), (None, Some(Time { sec: 7, nsec: 9 })));
        assert_eq!(times_attr(Some([Timespec { tv_sec: 0, tv_nsec: -3 }, Timespec::default()])).err(), Some(Errno::EINVAL));
        assert!(times_attr(None).unwrap().atime.is_some());
        assert_eq!(owner_attr(u32::MAX as u64, 5).uid, None);
    }
}
