//! Inode attributes: chmod, chown, the utime family, truncate and
//! fallocate, each with its descriptor and *at forms.

use super::caller::caller;
use super::path::{fs_context, resolve_at, AT_FDCWD};
use super::{Args, Entry};
use crate::fs::node::{SetAttr, Time, S_IFDIR, S_IFMT};
use crate::fs::vfs::{Follow, Location};
use crate::fs::{inotify, OpenFile};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::{Timespec, Timeval};
use abi::Errno;
use std::sync::Arc;

pub const SYSCALLS: &[Entry] = &[
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
];

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
    let what = if attr.size.is_some() { inotify::IN_MODIFY } else { inotify::IN_ATTRIB };
    t.kernel().inotify.file_event(loc, what);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_owners_parse() {
        let a = times_attr(Some([Timespec { tv_sec: 5, tv_nsec: UTIME_OMIT }, Timespec { tv_sec: 7, tv_nsec: 9 }])).unwrap();
        assert_eq!((a.atime, a.mtime), (None, Some(Time { sec: 7, nsec: 9 })));
        assert_eq!(times_attr(Some([Timespec { tv_sec: 0, tv_nsec: -3 }, Timespec::default()])).err(), Some(Errno::EINVAL));
        assert!(times_attr(None).unwrap().atime.is_some());
        assert_eq!(owner_attr(u32::MAX as u64, 5).uid, None);
    }
}
