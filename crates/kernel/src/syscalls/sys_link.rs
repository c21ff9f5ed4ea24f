//! Names in directories: mkdir, rmdir, unlink, rename, link, symlink and
//! mknod (each with its *at form).

use super::caller::caller;
use super::path::{child_of, fs_context, parent_of, resolve_at, special, AT_FDCWD};
use super::{Args, Entry};
use crate::fs::node::{Dentry, S_IFMT};
use crate::fs::inotify::{self, IN_CREATE, IN_MOVED_FROM, IN_MOVED_TO, IN_MOVE_SELF};
use crate::fs::vfs::Follow;
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;
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
];

fn do_mkdir(t: &TaskCtx, dirfd: i32, path_addr: u64, mode: u32) -> SysResult<u64> {
    let path = t.read_path(path_addr)?;
    let (dir, name) = parent_of(t, dirfd, &path)?;
    if special(&name) {
        return Err(Errno::EEXIST);
    }
    let umask = fs_context(t).umask;
    dir.node().mkdir(&caller(t), &name, mode & 0o7777 & !umask)?;
    t.kernel().inotify.child_event(&dir, &name, IN_CREATE, 0, true);
    Ok(0)
}

fn sys_mkdir(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_mkdir(t, AT_FDCWD, a[0], a[1] as u32)
}

fn sys_mkdirat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_mkdir(t, a[0] as i32, a[1], a[2] as u32)
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
    let watched = inotify::before_removal(&t.kernel().inotify, child.node());
    drop(child);
    if dir_wanted {
        dir.node().rmdir(&c, &name)?;
    } else {
        dir.node().unlink(&c, &name)?;
    }
    dir.dentry.forget(&name);
    t.kernel().inotify.removed(&dir, &name, watched);
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
    if !src.is_dir() && (old.ends_with(b"/") || new.ends_with(b"/")) && !dst.as_ref().is_some_and(|d| d.is_dir()) {
        return Err(Errno::ENOTDIR);
    }
    let watches = &t.kernel().inotify;
    let moved = inotify::before_removal(watches, src.node());
    let replaced = dst.as_ref().and_then(|d| inotify::before_removal(watches, d.node()));
    drop(dst);
    drop(src);
    odir.node().rename(&caller(t), &oname, ndir.node(), &nname, flags)?;
    if let Some((key, is_dir, _)) = moved {
        let cookie = watches.next_cookie();
        watches.child_event(&odir, &oname, IN_MOVED_FROM, cookie, is_dir);
        watches.child_event(&ndir, &nname, IN_MOVED_TO, cookie, is_dir);
        watches.notify(key, IN_MOVE_SELF, 0, &[]);
        if let Some((rkey, rdir, nlink)) = replaced {
            if flags & libc::RENAME_EXCHANGE != 0 {
                watches.child_event(&ndir, &nname, IN_MOVED_FROM, cookie, rdir);
                watches.child_event(&odir, &oname, IN_MOVED_TO, cookie, rdir);
                watches.notify(rkey, IN_MOVE_SELF, 0, &[]);
            } else if rdir || nlink <= 1 {
                watches.gone(rkey);
            }
        }
    }
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
    let watches = &t.kernel().inotify;
    watches.child_event(&dir, &name, IN_CREATE, 0, false);
    // A link count changed: the inode's own watches hear of it, its
    // directories' do not (as on Linux).
    if let Some((key, _)) = watches.active().then(|| inotify::key_of(target.node())).flatten() {
        watches.notify(key, inotify::IN_ATTRIB, 0, &[]);
    }
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
    t.kernel().inotify.child_event(&dir, &name, IN_CREATE, 0, false);
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
    t.kernel().inotify.child_event(&dir, &name, IN_CREATE, 0, false);
    Ok(0)
}

fn sys_mknod(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_mknod(t, AT_FDCWD, a[0], a[1] as u32, a[2])
}

fn sys_mknodat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_mknod(t, a[0] as i32, a[1], a[2] as u32, a[3])
}
