//! prctl(2): process names, dumpable, no_new_privs, keepcaps, the
//! capability bounding and ambient sets, pdeathsig.

use super::caller::change_creds;
use super::{Args, Entry};
use crate::creds::cap;
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[
    sys!(PRCTL, sys_prctl, [Int, Hex, Hex, Hex, Hex], partial "names, dumpable, no_new_privs, pdeathsig, child subreaper, capabilities"),
];

/// A capability number argument: EINVAL past the last one.
fn cap_number(v: u64) -> SysResult<u32> {
    if v > cap::LAST as u64 {
        return Err(Errno::EINVAL);
    }
    Ok(v as u32)
}

/// prctl(PR_CAP_AMBIENT, op, cap): a capability may be raised in the
/// ambient set only while permitted and inheritable (and not with
/// SECBIT_NO_CAP_AMBIENT_RAISE, which the sandbox never sets).
fn cap_ambient(t: &TaskCtx, a: &Args) -> SysResult<u64> {
    let (op, arg) = (a[1] as i32, a[2]);
    if op == libc::PR_CAP_AMBIENT_CLEAR_ALL {
        if arg != 0 || a[3] != 0 || a[4] != 0 {
            return Err(Errno::EINVAL);
        }
        return change_creds(t, |c| {
            c.caps.ambient = 0;
            Ok(())
        });
    }
    if a[3] != 0 || a[4] != 0 {
        return Err(Errno::EINVAL);
    }
    let bit = 1u64 << cap_number(arg)?;
    match op {
        libc::PR_CAP_AMBIENT_IS_SET => Ok((t.creds().caps.ambient & bit != 0) as u64),
        libc::PR_CAP_AMBIENT_RAISE => change_creds(t, |c| {
            if c.caps.permitted & c.caps.inheritable & bit == 0 {
                return Err(Errno::EPERM);
            }
            c.caps.ambient |= bit;
            Ok(())
        }),
        libc::PR_CAP_AMBIENT_LOWER => change_creds(t, |c| {
            c.caps.ambient &= !bit;
            Ok(())
        }),
        _ => Err(Errno::EINVAL),
    }
}

fn sys_prctl(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    match a[0] as i32 {
        libc::PR_SET_NAME => {
            let mut n = t.read_cstr(a[1], 4096)?;
            n.truncate(15);
            t.task.set_comm(&n);
            Ok(0)
        }
        libc::PR_GET_NAME => {
            let c = *t.task.comm.lock().unwrap();
            t.copy_out(a[1], &c)?;
            Ok(0)
        }
        libc::PR_GET_DUMPABLE => Ok(1),
        libc::PR_SET_DUMPABLE if a[1] <= 1 => Ok(0),
        libc::PR_SET_NO_NEW_PRIVS if a[1] == 1 && a[2] == 0 && a[3] == 0 && a[4] == 0 => change_creds(t, |c| {
            c.no_new_privs = true;
            Ok(())
        }),
        libc::PR_GET_NO_NEW_PRIVS => Ok(t.creds().no_new_privs as u64),
        libc::PR_GET_KEEPCAPS => Ok(t.creds().keep_caps as u64),
        libc::PR_SET_KEEPCAPS if a[1] <= 1 => change_creds(t, |c| {
            c.keep_caps = a[1] == 1;
            Ok(())
        }),
        libc::PR_CAPBSET_READ => Ok(t.creds().caps.bounding >> cap_number(a[1])? & 1),
        libc::PR_CAPBSET_DROP => {
            let n = cap_number(a[1])?;
            change_creds(t, |c| {
                if !c.capable(cap::SETPCAP) {
                    return Err(Errno::EPERM);
                }
                c.caps.bounding &= !(1 << n);
                Ok(())
            })
        }
        libc::PR_CAP_AMBIENT => cap_ambient(t, a),
        libc::PR_SET_PDEATHSIG if a[1] <= 64 => Ok(0),
        libc::PR_GET_PDEATHSIG => {
            t.copy_out(a[1], &0i32.to_le_bytes())?;
            Ok(0)
        }
        libc::PR_SET_CHILD_SUBREAPER | libc::PR_GET_CHILD_SUBREAPER | libc::PR_SET_SECCOMP => {
            t.kernel().report_unsupported_feature(abi::syscalls::nr::PRCTL, "option");
            Err(Errno::EINVAL)
        }
        _ => Err(Errno::EINVAL),
    }
}
