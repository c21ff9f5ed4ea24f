//! File and path system calls: open, close, the stat family, directory
//! listing, links, access checks, the working directory, descriptor
//! duplication, fcntl, ioctl, umask.

use super::caller::caller;
use super::path::{fs_context, resolve_at, start_at, AT_FDCWD};
use super::{Args, Entry};
use crate::fs::node::{LinkTarget, S_IFDIR, S_IFLNK, S_IFMT};
use crate::fs::vfs::Follow;
use crate::fs::{inotify, DirEntry, OpenFile};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::{Stat, Statx, StatxTimestamp};
use abi::Errno;
use std::sync::Arc;

pub const SYSCALLS: &[Entry] = &[
    sys!(OPEN, sys_open, [Str, Hex, Hex]),
    sys!(OPENAT, sys_openat, [Int, Str, Hex, Hex], partial "O_TMPFILE only on tmpfs and the overlay root; no leases"),
    sys!(CREAT, sys_creat, [Str, Hex]),
    sys!(CLOSE, sys_close, [Int]),
    sys!(STAT, sys_stat, [Str, Hex]),
    sys!(LSTAT, sys_lstat, [Str, Hex]),
    sys!(FSTAT, sys_fstat, [Int, Hex]),
    sys!(NEWFSTATAT, sys_newfstatat, [Int, Str, Hex, Hex]),
    sys!(STATX, sys_statx, [Int, Str, Hex, Hex, Hex], partial "reports the basic stats (STATX_BASIC_STATS); no birth time"),
    sys!(GETDENTS64, sys_getdents64, [Int, Hex, Int]),
    sys!(GETDENTS, sys_getdents, [Int, Hex, Int]),
    sys!(READLINK, sys_readlink, [Str, Hex, Int]),
    sys!(READLINKAT, sys_readlinkat, [Int, Str, Hex, Int]),
    sys!(ACCESS, sys_access, [Str, Hex]),
    sys!(FACCESSAT, sys_faccessat, [Int, Str, Hex]),
    sys!(FACCESSAT2, sys_faccessat2, [Int, Str, Hex, Hex]),
    sys!(GETCWD, sys_getcwd, [Hex, Int]),
    sys!(CHDIR, sys_chdir, [Str]),
    sys!(FCHDIR, sys_fchdir, [Int]),
    sys!(DUP, sys_dup, [Int]),
    sys!(DUP2, sys_dup2, [Int, Int]),
    sys!(DUP3, sys_dup3, [Int, Int, Hex]),
    sys!(FCNTL, sys_fcntl, [Int, Int, Hex], partial "F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL, F_SETFL (not O_ASYNC), F_GETPIPE_SZ, record locks F_[OFD_]GETLK/SETLK/SETLKW (no deadlock detection); no leases, owners or seals"),
    sys!(IOCTL, sys_ioctl, [Int, Hex, Hex], partial "FIOCLEX, FIONCLEX, FIONBIO, FIONREAD; terminal ioctls (TCGETS, TCSETS*, TIOC[GS]WINSZ, TIOC[GS]PGRP) on host stdio"),
    sys!(UMASK, sys_umask, [Hex]),
];

fn do_open(t: &TaskCtx, dirfd: i32, path_addr: u64, flags: u32, mode: u32) -> SysResult<u64> {
    let path = t.read_path(path_addr)?;
    let fs = fs_context(t);
    let start = start_at(t, &fs, dirfd, &path)?;
    let watches = &t.kernel().inotify;
    // Whether the open creates the file (IN_CREATE) or truncates one that
    // was there (IN_MODIFY); asked only while something watches.
    let changes = flags & (libc::O_CREAT | libc::O_TRUNC) as u32 != 0 && watches.active();
    let existed = changes && resolve_at(t, dirfd, &path, Follow::Yes).is_ok();
    let file = fs.vfs.open(&caller(t), &fs, &start, &path, flags, mode)?;
    if let Some(loc) = &file.location {
        file.report_close_to(watches);
        if changes && !existed && flags & libc::O_CREAT as u32 != 0 {
            watches.created(loc);
        }
        watches.file_event(loc, inotify::IN_OPEN);
        if existed && flags & libc::O_TRUNC as u32 != 0 && file.writable() && !loc.is_dir() {
            watches.file_event(loc, inotify::IN_MODIFY);
        }
    }
    let fd = t.files().install(file, flags & libc::O_CLOEXEC as u32 != 0)?;
    Ok(fd as u64)
}

fn sys_open(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_open(t, AT_FDCWD, a[0], a[1] as u32, a[2] as u32)
}

fn sys_openat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_open(t, a[0] as i32, a[1], a[2] as u32, a[3] as u32)
}

fn sys_creat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_open(t, AT_FDCWD, a[0], (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u32, a[1] as u32)
}

fn sys_close(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let fd = a[0] as i32;
    let f = t.files().get(fd)?;
    // Closing any descriptor of a file drops the process's record locks
    // on it (POSIX semantics sqlite works around, and relies on).
    if f.has_locks() {
        if let Ok(key) = crate::fs::lock::key_of(&f) {
            t.kernel().locks.release(key, crate::fs::lock::Owner::Process(t.tgid()));
        }
    }
    drop(f);
    t.files().close(fd)?;
    Ok(0)
}

/// stat of (dirfd, path) with AT_* flags.
fn stat_at(t: &TaskCtx, dirfd: i32, path_addr: u64, flags: i32) -> SysResult<Stat> {
    let path = t.read_path(path_addr)?;
    if path.is_empty() {
        if flags & libc::AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD {
            return fs_context(t).cwd.stat(&caller(t));
        }
        return t.files().get(dirfd)?.ops.stat();
    }
    let follow = if flags & libc::AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
    resolve_at(t, dirfd, &path, follow)?.stat(&caller(t))
}

fn sys_stat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let st = stat_at(t, AT_FDCWD, a[0], 0)?;
    t.write_obj(a[1], &st)?;
    Ok(0)
}

fn sys_lstat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let st = stat_at(t, AT_FDCWD, a[0], libc::AT_SYMLINK_NOFOLLOW)?;
    t.write_obj(a[1], &st)?;
    Ok(0)
}

fn sys_fstat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let st = t.files().get(a[0] as i32)?.ops.stat()?;
    t.write_obj(a[1], &st)?;
    Ok(0)
}

fn sys_newfstatat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let flags = a[3] as i32;
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH | libc::AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let st = stat_at(t, a[0] as i32, a[1], flags)?;
    t.write_obj(a[2], &st)?;
    Ok(0)
}

/// struct statx from struct stat.
pub fn statx_from(st: &Stat) -> Statx {
    let ts = |s: i64, ns: i64| StatxTimestamp { tv_sec: s, tv_nsec: ns as u32, __reserved: 0 };
    Statx {
        stx_mask: libc::STATX_BASIC_STATS,
        stx_blksize: st.st_blksize as u32,
        stx_nlink: st.st_nlink as u32,
        stx_uid: st.st_uid,
        stx_gid: st.st_gid,
        stx_mode: st.st_mode as u16,
        stx_ino: st.st_ino,
        stx_size: st.st_size as u64,
        stx_blocks: st.st_blocks as u64,
        stx_atime: ts(st.st_atime, st.st_atime_nsec),
        stx_ctime: ts(st.st_ctime, st.st_ctime_nsec),
        stx_mtime: ts(st.st_mtime, st.st_mtime_nsec),
        stx_rdev_major: libc::major(st.st_rdev),
        stx_rdev_minor: libc::minor(st.st_rdev),
        stx_dev_major: libc::major(st.st_dev),
        stx_dev_minor: libc::minor(st.st_dev),
        ..Default::default()
    }
}

fn sys_statx(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let flags = a[2] as i32;
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH | libc::AT_NO_AUTOMOUNT | libc::AT_STATX_SYNC_TYPE) != 0 {
        return Err(Errno::EINVAL);
    }
    if a[3] as u32 & libc::STATX__RESERVED as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    let st = stat_at(t, a[0] as i32, a[1], flags)?;
    t.write_obj(a[4], &statx_from(&st))?;
    Ok(0)
}

/// Serialises directory entries into `linux_dirent64` (or the old
/// `linux_dirent` with `old`) records fitting in `size` bytes; returns the
/// bytes and how many entries they hold. `first_off` is the offset of the
/// first entry.
pub fn encode_dirents(entries: &[DirEntry], size: usize, first_off: u64, old: bool) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut n = 0;
    for (i, e) in entries.iter().enumerate() {
        let head = if old { 18 } else { 19 };
        // The old format keeps d_type in the record's last byte.
        let reclen = (head + e.name.len() + 1 + usize::from(old) + 7) & !7;
        if out.len() + reclen > size {
            break;
        }
        let start = out.len();
        out.extend_from_slice(&e.ino.to_ne_bytes());
        out.extend_from_slice(&(first_off + i as u64 + 1).to_ne_bytes());
        out.extend_from_slice(&(reclen as u16).to_ne_bytes());
        if !old {
            out.push(e.kind);
        }
        out.extend_from_slice(&e.name);
        out.resize(start + reclen, 0);
        if old {
            out[start + reclen - 1] = e.kind;
        }
        n += 1;
    }
    (out, n)
}

fn do_getdents(t: &TaskCtx, a: &Args, old: bool) -> SysResult<u64> {
    let file = t.files().get(a[0] as i32)?;
    let entries = file.ops.getdents(&file)?;
    let first = *file.offset.lock().unwrap();
    let (buf, n) = encode_dirents(&entries, a[2] as u32 as usize, first, old);
    if n == 0 && !entries.is_empty() {
        return Err(Errno::EINVAL);
    }
    t.copy_out(a[1], &buf)?;
    *file.offset.lock().unwrap() = first + n as u64;
    Ok(buf.len() as u64)
}

fn sys_getdents64(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_getdents(t, a, false)
}

fn sys_getdents(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_getdents(t, a, true)
}

/// The text of a link target.
pub(crate) fn link_text(t: &TaskCtx, target: LinkTarget) -> Vec<u8> {
    match target {
        LinkTarget::Path(p) => p,
        LinkTarget::Location(l) => l.path(),
        LinkTarget::File(f) => t.kernel().vfs.detached(f).path(),
    }
}

fn do_readlink(t: &TaskCtx, dirfd: i32, path_addr: u64, buf: u64, size: u64) -> SysResult<u64> {
    let path = t.read_path(path_addr)?;
    if (size as i64) <= 0 {
        return Err(Errno::EINVAL);
    }
    let loc = resolve_at(t, dirfd, &path, Follow::No)?;
    if loc.node().kind() != S_IFLNK {
        return Err(Errno::EINVAL);
    }
    let text = link_text(t, loc.node().readlink(&caller(t))?);
    let n = text.len().min(size as usize);
    t.copy_out(buf, &text[..n])?;
    Ok(n as u64)
}

fn sys_readlink(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_readlink(t, AT_FDCWD, a[0], a[1], a[2])
}

fn sys_readlinkat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_readlink(t, a[0] as i32, a[1], a[2], a[3])
}

fn do_access(t: &TaskCtx, dirfd: i32, path_addr: u64, mode: u64, flags: i32) -> SysResult<u64> {
    if mode & !0o7 != 0 || flags & !(libc::AT_EACCESS | libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.read_path(path_addr)?;
    let c = caller(t);
    let (st, readonly) = if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        if dirfd == AT_FDCWD {
            let l = fs_context(t).cwd;
            (l.stat(&c)?, l.mount.readonly)
        } else {
            let f = t.files().get(dirfd)?;
            (f.ops.stat()?, f.location.as_ref().map(|l| l.mount.readonly).unwrap_or(false))
        }
    } else {
        let follow = if flags & libc::AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
        let l = resolve_at(t, dirfd, &path, follow)?;
        (l.stat(&c)?, l.mount.readonly)
    };
    let mode = mode as u32;
    let kind = st.st_mode & S_IFMT;
    if mode & 0o2 != 0 && readonly && (kind == libc::S_IFREG || kind == S_IFDIR || kind == S_IFLNK) {
        return Err(Errno::EROFS);
    }
    let creds = if flags & libc::AT_EACCESS != 0 { t.creds() } else { t.creds().with_real_ids() };
    if creds.may_access(&st, mode) {
        Ok(0)
    } else {
        Err(Errno::EACCES)
    }
}


fn sys_access(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_access(t, AT_FDCWD, a[0], a[1], 0)
}

fn sys_faccessat(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_access(t, a[0] as i32, a[1], a[2], 0)
}

fn sys_faccessat2(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    do_access(t, a[0] as i32, a[1], a[2], a[3] as i32)
}

fn sys_getcwd(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let mut p = fs_context(t).cwd.path();
    p.push(0);
    if (a[1] as usize) < p.len() {
        return Err(Errno::ERANGE);
    }
    t.copy_out(a[0], &p)?;
    Ok(p.len() as u64)
}

fn sys_chdir(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let path = t.read_path(a[0])?;
    let mut fs = fs_context(t);
    crate::fs::vfs::chdir(t.kernel(), &mut fs, t.tgid(), &path)?;
    t.fs().lock().unwrap().cwd = fs.cwd;
    Ok(0)
}

fn sys_fchdir(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let f = t.files().get(a[0] as i32)?;
    match &f.location {
        Some(l) if l.is_dir() => {
            t.fs().lock().unwrap().cwd = l.clone();
            Ok(0)
        }
        _ => Err(Errno::ENOTDIR),
    }
}

fn sys_dup(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let files = t.files();
    let f = files.get(a[0] as i32)?;
    Ok(files.install(f, false)? as u64)
}

fn dup_to(t: &TaskCtx, old: i32, new: i32, cloexec: bool) -> SysResult<u64> {
    let files = t.files();
    let f = files.get(old)?;
    files.install_at(new, f, cloexec)?;
    Ok(new as u64)
}

fn sys_dup2(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (old, new) = (a[0] as i32, a[1] as i32);
    if old == new {
        t.files().get(old)?;
        return Ok(new as u64);
    }
    dup_to(t, old, new, false)
}

fn sys_dup3(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (old, new, flags) = (a[0] as i32, a[1] as i32, a[2] as i32);
    if flags & !libc::O_CLOEXEC != 0 || old == new {
        return Err(Errno::EINVAL);
    }
    dup_to(t, old, new, flags & libc::O_CLOEXEC != 0)
}

/// Status flags F_SETFL may change.
const SETFL_MASK: u32 = (libc::O_APPEND | libc::O_NONBLOCK | libc::O_DIRECT | libc::O_NOATIME) as u32;

fn set_status_flags(f: &OpenFile, new: u32) {
    let old = f.flags();
    f.flags.store((old & !SETFL_MASK) | (new & SETFL_MASK), std::sync::atomic::Ordering::Relaxed);
}

fn sys_fcntl(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (fd, cmd, arg) = (a[0] as i32, a[1] as i32, a[2]);
    let files = t.files();
    let entry = files.entry(fd)?;
    match cmd {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let min = arg as i64;
            if min < 0 || min >= files.limit() as i64 {
                return Err(Errno::EINVAL);
            }
            Ok(files.install_from(entry.file, cmd == libc::F_DUPFD_CLOEXEC, min as i32)? as u64)
        }
        libc::F_GETFD => Ok(if entry.cloexec { libc::FD_CLOEXEC as u64 } else { 0 }),
        libc::F_SETFD => {
            files.set_cloexec(fd, arg & libc::FD_CLOEXEC as u64 != 0)?;
            Ok(0)
        }
        libc::F_GETFL => Ok(entry.file.flags() as u64),
        libc::F_SETFL => {
            if arg as i32 & libc::O_ASYNC != 0 {
                // SIGIO delivery is not implemented: refuse rather than
                // pretend signals will come.
                t.kernel().report_unsupported_feature(abi::syscalls::nr::FCNTL, "O_ASYNC");
                return Err(Errno::EINVAL);
            }
            set_status_flags(&entry.file, arg as u32);
            Ok(0)
        }
        libc::F_GETPIPE_SZ => match entry.file.ops.stat() {
            Ok(st) if st.st_mode & S_IFMT == libc::S_IFIFO && entry.file.location.is_none() => Ok(crate::fs::pipe::PIPE_SIZE as u64),
            _ => Err(Errno::EBADF),
        },
        libc::F_GETLK | libc::F_SETLK | libc::F_SETLKW | libc::F_OFD_GETLK | libc::F_OFD_SETLK | libc::F_OFD_SETLKW => record_lock(t, &entry.file, cmd, arg),
        _ => {
            t.kernel().report_unsupported_feature(abi::syscalls::nr::FCNTL, &format!("command {cmd}"));
            Err(Errno::EINVAL)
        }
    }
}

/// struct flock.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Flock {
    pub l_type: i16,
    pub l_whence: i16,
    pub pad0: i32,
    pub l_start: i64,
    pub l_len: i64,
    pub l_pid: i32,
    pub pad1: i32,
}

// SAFETY: repr(C), integers only, padding spelled out.
unsafe impl abi::types::Pod for Flock {}

/// [start, end) of a struct flock, relative to `file`.
pub fn flock_range(fl: &Flock, file: &OpenFile) -> SysResult<(u64, u64)> {
    let base: i64 = match fl.l_whence as i32 {
        libc::SEEK_SET => 0,
        libc::SEEK_CUR => file.position()? as i64,
        libc::SEEK_END => file.ops.stat()?.st_size,
        _ => return Err(Errno::EINVAL),
    };
    let start = base.checked_add(fl.l_start).ok_or(Errno::EOVERFLOW)?;
    let (start, end) = match fl.l_len {
        0 => (start, i64::MAX),
        n if n > 0 => (start, start.checked_add(n).ok_or(Errno::EOVERFLOW)?),
        n => (start.checked_add(n).ok_or(Errno::EINVAL)?, start),
    };
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    let end = if end == i64::MAX { u64::MAX } else { end as u64 };
    Ok((start as u64, end))
}

/// fcntl record locks: process-owned (F_*LK) and description-owned
/// (F_OFD_*LK) byte ranges of one shared space.
fn record_lock(t: &TaskCtx, file: &Arc<OpenFile>, cmd: i32, arg: u64) -> SysResult<u64> {
    use crate::fs::lock::{Owner, Want};
    let mut fl: Flock = t.read_obj(arg)?;
    let ofd = matches!(cmd, libc::F_OFD_GETLK | libc::F_OFD_SETLK | libc::F_OFD_SETLKW);
    if ofd && fl.l_pid != 0 {
        return Err(Errno::EINVAL);
    }
    if file.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    let owner = if ofd { Owner::File(Arc::as_ptr(file) as usize) } else { Owner::Process(t.tgid()) };
    let (start, end) = flock_range(&fl, file)?;
    let key = crate::fs::lock::key_of(file)?;
    let write = match fl.l_type as i32 {
        libc::F_RDLCK => Some(false),
        libc::F_WRLCK => Some(true),
        libc::F_UNLCK => None,
        _ => return Err(Errno::EINVAL),
    };
    if matches!(cmd, libc::F_GETLK | libc::F_OFD_GETLK) {
        let w = write.ok_or(Errno::EINVAL)?;
        match t.kernel().locks.test(key, owner, start, end, w) {
            None => fl.l_type = libc::F_UNLCK as i16,
            Some(r) => {
                fl.l_type = if r.write { libc::F_WRLCK } else { libc::F_RDLCK } as i16;
                fl.l_whence = libc::SEEK_SET as i16;
                fl.l_start = r.start as i64;
                fl.l_len = if r.end == u64::MAX { 0 } else { (r.end - r.start) as i64 };
                fl.l_pid = match r.owner {
                    Owner::Process(p) => p,
                    Owner::File(_) => -1,
                };
            }
        }
        t.write_obj(arg, &fl)?;
        return Ok(0);
    }
    match write {
        Some(false) if !file.readable() => return Err(Errno::EBADF),
        Some(true) if !file.writable() => return Err(Errno::EBADF),
        _ => {}
    }
    file.took_lock(&t.kernel().locks);
    let wait = matches!(cmd, libc::F_SETLKW | libc::F_OFD_SETLKW);
    t.kernel().locks.lock(t, key, owner, Want::Range { start, end, write }, wait, Errno::EAGAIN)?;
    Ok(0)
}

fn sys_ioctl(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (fd, cmd, arg) = (a[0] as i32, a[1] as u32 as u64, a[2]);
    let files = t.files();
    let f: Arc<OpenFile> = files.get(fd)?;
    if f.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    match cmd {
        libc::FIOCLEX => files.set_cloexec(fd, true).map(|_| 0),
        libc::FIONCLEX => files.set_cloexec(fd, false).map(|_| 0),
        libc::FIONBIO => {
            let on: i32 = t.read_obj(arg)?;
            let fl = f.flags();
            let nb = libc::O_NONBLOCK as u32;
            set_status_flags(&f, if on != 0 { fl | nb } else { fl & !nb });
            Ok(0)
        }
        _ => f.ops.ioctl(t, &f, cmd, arg),
    }
}

fn sys_umask(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let fs = t.fs();
    let mut fs = fs.lock().unwrap();
    let old = fs.umask;
    fs.umask = a[0] as u32 & 0o777;
    Ok(old as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirents_are_aligned_and_stop_at_the_buffer_size() {
        let e = vec![
            DirEntry { ino: 1, kind: libc::DT_DIR, name: b".".to_vec() },
            DirEntry { ino: 2, kind: libc::DT_REG, name: b"hello".to_vec() },
        ];
        let (b, n) = encode_dirents(&e, 4096, 0, false);
        assert_eq!(n, 2);
        assert_eq!(b.len(), 24 + 32);
        let v = crate::fs::host::parse_dirents64(&b);
        assert_eq!(v, e);
        assert_eq!(u64::from_ne_bytes(b[8..16].try_into().unwrap()), 1);
        let (b, n) = encode_dirents(&e, 30, 5, false);
        assert_eq!((b.len(), n), (24, 1));
        assert_eq!(u64::from_ne_bytes(b[8..16].try_into().unwrap()), 6);
        // Old format: type in the last byte of the record.
        let (b, _) = encode_dirents(&e[1..], 4096, 0, true);
        assert_eq!(b.len(), 32);
        assert_eq!(b[31], libc::DT_REG);
        assert_eq!(&b[18..23], b"hello");
    }

}
