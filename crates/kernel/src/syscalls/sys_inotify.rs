//! inotify: inotify_init, inotify_init1, inotify_add_watch and
//! inotify_rm_watch. The instance and the kernel's watch registry live in
//! [`crate::fs::inotify`]; the calls that change files report to it.

use super::path::resolve_at;
use super::path::AT_FDCWD;
use super::{Args, Entry};
use crate::fs::inotify::{self, Inotify, IN_ALL_EVENTS, IN_DONT_FOLLOW, IN_MASK_ADD, IN_MASK_CREATE, IN_ONLYDIR, VALID_MASK};
use crate::fs::{anon, vfs::Follow};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;
use std::sync::Arc;

pub const SYSCALLS: &[Entry] = &[
    sys!(INOTIFY_INIT, sys_inotify_init, []),
    sys!(INOTIFY_INIT1, sys_inotify_init1, [Hex]),
    sys!(INOTIFY_ADD_WATCH, sys_inotify_add_watch, [Int, Str, Hex], partial "changes made inside the sandbox only (not by the host or other sandboxes sharing a bind mount)"),
    sys!(INOTIFY_RM_WATCH, sys_inotify_rm_watch, [Int, Int]),
];

fn make(t: &TaskCtx, flags: u32) -> SysResult<u64> {
    let allowed = libc::IN_NONBLOCK as u32 | libc::IN_CLOEXEC as u32;
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    let inst = Inotify::new(&t.kernel().inotify);
    let file = Inotify::open(inst, flags & libc::O_NONBLOCK as u32);
    Ok(t.files().install(file, flags & libc::O_CLOEXEC as u32 != 0)? as u64)
}

fn sys_inotify_init(t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    make(t, 0)
}

fn sys_inotify_init1(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    make(t, a[0] as u32)
}

/// The instance behind descriptor `fd` (EINVAL for another kind of file).
fn instance(t: &TaskCtx, fd: i32) -> SysResult<Arc<Inotify>> {
    let f = t.files().get(fd)?;
    anon::get::<Inotify>(&f).ok_or(Errno::EINVAL)
}

fn sys_inotify_add_watch(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let inst = instance(t, a[0] as i32)?;
    let mask = a[2] as u32;
    if mask & !VALID_MASK != 0 || mask & IN_ALL_EVENTS == 0 || (mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0) {
        return Err(Errno::EINVAL);
    }
    let path = t.read_path(a[1])?;
    let follow = if mask & IN_DONT_FOLLOW != 0 { Follow::No } else { Follow::Yes };
    let loc = resolve_at(t, AT_FDCWD, &path, follow)?;
    if mask & IN_ONLYDIR != 0 && !loc.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    // Watching needs read permission on the inode, as on Linux.
    let st = loc.stat(&super::caller::caller(t))?;
    if !t.creds().may_access(&st, libc::R_OK as u32) {
        return Err(Errno::EACCES);
    }
    let (key, _) = inotify::key_of(loc.node()).ok_or(Errno::ENOENT)?;
    let wd = t.kernel().inotify.add(&inst, key, mask & !(IN_DONT_FOLLOW | IN_ONLYDIR))?;
    Ok(wd as u64)
}

fn sys_inotify_rm_watch(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let inst = instance(t, a[0] as i32)?;
    t.kernel().inotify.remove(&inst, a[1] as i32)?;
    Ok(0)
}
