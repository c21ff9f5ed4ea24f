//! User and group ids: the get/set families of uid, gid, their real,
//! effective, saved and file-system forms, and supplementary groups.

use super::caller::change_creds;
use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[
    sys!(GETUID, sys_getuid, []),
    sys!(GETEUID, sys_geteuid, []),
    sys!(GETGID, sys_getgid, []),
    sys!(GETEGID, sys_getegid, []),
    sys!(GETGROUPS, sys_getgroups, [Int, Hex]),
    sys!(SETGROUPS, sys_setgroups, [Int, Hex]),
    sys!(SETUID, sys_setuid, [Int]),
    sys!(SETGID, sys_setgid, [Int]),
    sys!(SETRESUID, sys_setresuid, [Int, Int, Int]),
    sys!(SETRESGID, sys_setresgid, [Int, Int, Int]),
    sys!(SETREUID, sys_setreuid, [Int, Int]),
    sys!(SETREGID, sys_setregid, [Int, Int]),
    sys!(GETRESUID, sys_getresuid, [Hex, Hex, Hex]),
    sys!(GETRESGID, sys_getresgid, [Hex, Hex, Hex]),
    sys!(SETFSUID, sys_setfsuid, [Int]),
    sys!(SETFSGID, sys_setfsgid, [Int]),
];

fn sys_getuid(t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    Ok(t.creds().uid.real as u64)
}

fn sys_geteuid(t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    Ok(t.creds().uid.effective as u64)
}

fn sys_getgid(t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    Ok(t.creds().gid.real as u64)
}

fn sys_getegid(t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    Ok(t.creds().gid.effective as u64)
}

fn sys_setuid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    change_creds(t, |c| c.setuid(a[0] as u32))
}

fn sys_setgid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    change_creds(t, |c| c.setgid(a[0] as u32))
}

fn sys_setresuid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    change_creds(t, |c| c.setresuid(a[0] as u32, a[1] as u32, a[2] as u32))
}

fn sys_setresgid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    change_creds(t, |c| c.setresgid(a[0] as u32, a[1] as u32, a[2] as u32))
}

fn sys_setreuid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    change_creds(t, |c| c.setreuid(a[0] as u32, a[1] as u32))
}

fn sys_setregid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    change_creds(t, |c| c.setregid(a[0] as u32, a[1] as u32))
}

fn sys_getresuid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let c = t.creds();
    for (addr, v) in a[..3].iter().zip([c.uid.real, c.uid.effective, c.uid.saved]) {
        t.copy_out(*addr, &v.to_le_bytes())?;
    }
    Ok(0)
}

fn sys_getresgid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let c = t.creds();
    for (addr, v) in a[..3].iter().zip([c.gid.real, c.gid.effective, c.gid.saved]) {
        t.copy_out(*addr, &v.to_le_bytes())?;
    }
    Ok(0)
}

fn sys_setfsuid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    Ok(t.task.creds.lock().unwrap().setfsuid(a[0] as u32) as u64)
}

fn sys_setfsgid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    Ok(t.task.creds.lock().unwrap().setfsgid(a[0] as u32) as u64)
}

/// Most supplementary groups a task may have (Linux's NGROUPS_MAX).
const NGROUPS_MAX: usize = 65536;

fn sys_getgroups(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let size = a[0] as i32;
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    let groups = t.creds().groups;
    if size == 0 {
        return Ok(groups.len() as u64);
    }
    if (size as usize) < groups.len() {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    t.copy_out(a[1], &bytes)?;
    Ok(groups.len() as u64)
}

fn sys_setgroups(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let n = a[0] as usize;
    if n > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let raw = t.copy_in(a[1], n * 4)?;
    let groups: Vec<u32> = raw.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).collect();
    change_creds(t, |c| {
        if !c.capable(crate::creds::cap::SETGID) {
            return Err(Errno::EPERM);
        }
        c.groups = groups;
        Ok(())
    })
}
