//! Extended attributes: the get, list, set and remove families (path,
//! no-follow and descriptor forms).

use super::path::{resolve_at, AT_FDCWD};
use super::{Args, Entry};
use crate::fs::vfs::Follow;
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[
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
