//! uname(2): the system's name, release and host name as the sandbox
//! reports them.

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::{set_cstr, Utsname};

pub const SYSCALLS: &[Entry] = &[
    sys!(UNAME, sys_uname, [Hex]),
];

fn sys_uname(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let cfg = &t.kernel().config;
    let mut u = Utsname::default();
    set_cstr(&mut u.sysname, "Linux");
    set_cstr(&mut u.nodename, &cfg.hostname);
    set_cstr(&mut u.release, &cfg.release);
    set_cstr(&mut u.version, "#1 SMP veil");
    set_cstr(&mut u.machine, "x86_64");
    set_cstr(&mut u.domainname, "(none)");
    t.write_obj(a[0], &u)?;
    Ok(0)
}
