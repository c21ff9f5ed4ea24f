//! File system statistics: statfs and fstatfs.

use super::path::{resolve_at, AT_FDCWD};
use super::{Args, Entry};
use crate::fs::vfs::{Follow, Location};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::Pod;

pub const SYSCALLS: &[Entry] = &[
    sys!(STATFS, sys_statfs, [Str, Hex]),
    sys!(FSTATFS, sys_fstatfs, [Int, Hex]),
];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statfs_is_laid_out_as_on_x86_64_linux() {
        assert_eq!(std::mem::size_of::<Statfs>(), 120);
    }
}
