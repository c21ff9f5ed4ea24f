//! Calls that act on the host machine itself (its clock, its kernel
//! modules, swap, I/O ports, reboot, process accounting, the kernel log).
//! Linux checks their capabilities in the initial user namespace, which
//! no process of a container (one with a user namespace of its own, as
//! every sandbox has) holds, so in a container they fail with EPERM after
//! the argument checks Linux makes first; the sentry answers the same.

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::{Timespec, Timeval};
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[
    sys!(CLOCK_SETTIME, sys_clock_settime, [Int, Hex]),
    sys!(SETTIMEOFDAY, sys_settimeofday, [Hex, Hex]),
    sys!(IOPL, sys_eperm, [Int]),
    sys!(IOPERM, sys_eperm, [Hex, Hex, Int]),
    sys!(SWAPON, sys_eperm, [Str, Hex]),
    sys!(SWAPOFF, sys_eperm, [Str]),
    sys!(ACCT, sys_eperm, [Str]),
    sys!(INIT_MODULE, sys_eperm, [Hex, Int, Str]),
    sys!(FINIT_MODULE, sys_eperm, [Int, Str, Hex]),
    sys!(DELETE_MODULE, sys_eperm, [Str, Hex]),
    sys!(KEXEC_LOAD, sys_eperm, [Hex, Int, Hex, Hex]),
    sys!(KEXEC_FILE_LOAD, sys_eperm, [Int, Int, Int, Str, Hex]),
    sys!(VHANGUP, sys_eperm, []),
    sys!(REBOOT, sys_reboot, [Hex, Hex, Hex, Hex]),
];

const CLOCK_REALTIME: u64 = 0;
const MAX_CLOCK: u64 = 11;

fn sys_eperm(_t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    Err(Errno::EPERM)
}

fn sys_clock_settime(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if a[0] > MAX_CLOCK {
        return Err(Errno::EINVAL);
    }
    let ts: Timespec = t.read_obj(a[1])?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    // Only CLOCK_REALTIME can be set at all; the others are EINVAL.
    if a[0] != CLOCK_REALTIME {
        return Err(Errno::EINVAL);
    }
    Err(Errno::EPERM)
}

fn sys_settimeofday(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if a[0] != 0 {
        let tv: Timeval = t.read_obj(a[0])?;
        if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
            return Err(Errno::EINVAL);
        }
    }
    if a[1] != 0 {
        // The time zone is read (EFAULT for a bad pointer) before the
        // permission check.
        let _: u64 = t.read_obj(a[1])?;
    }
    Err(Errno::EPERM)
}

const LINUX_REBOOT_MAGIC1: u64 = 0xfee1_dead;
const LINUX_REBOOT_MAGIC2: [u64; 4] = [672_274_793, 85_072_278, 369_367_448, 537_993_216];

fn sys_reboot(_t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    // Bad magic numbers are EINVAL even for the unprivileged.
    if a[0] as u32 as u64 != LINUX_REBOOT_MAGIC1 || !LINUX_REBOOT_MAGIC2.contains(&(a[1] as u32 as u64)) {
        return Err(Errno::EINVAL);
    }
    Err(Errno::EPERM)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reboot_magic_numbers_are_linuxs() {
        assert_eq!(super::LINUX_REBOOT_MAGIC1, libc::LINUX_REBOOT_MAGIC1 as u32 as u64);
        assert!(super::LINUX_REBOOT_MAGIC2.contains(&(libc::LINUX_REBOOT_MAGIC2 as u64)));
    }
}
