//! arch_prctl(2): the FS and GS base registers (thread-local storage).

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[
    sys!(ARCH_PRCTL, sys_arch_prctl, [Hex, Hex]),
];

const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;

fn sys_arch_prctl(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let canonical = |v: u64| v < 0x0000_8000_0000_0000;
    match a[0] {
        ARCH_SET_FS if canonical(a[1]) => {
            t.cpu.regs.fs_base = a[1];
            Ok(0)
        }
        ARCH_SET_GS if canonical(a[1]) => {
            t.cpu.regs.gs_base = a[1];
            Ok(0)
        }
        ARCH_SET_FS | ARCH_SET_GS => Err(Errno::EPERM),
        ARCH_GET_FS => {
            let v = t.cpu.regs.fs_base;
            t.write_obj(a[1], &v)?;
            Ok(0)
        }
        ARCH_GET_GS => {
            let v = t.cpu.regs.gs_base;
            t.write_obj(a[1], &v)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
