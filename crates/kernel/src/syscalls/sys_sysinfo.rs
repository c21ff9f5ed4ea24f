//! sysinfo(2): uptime, memory and task counts of the sandbox.

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::types::Sysinfo;

pub const SYSCALLS: &[Entry] = &[
    sys!(SYSINFO, sys_sysinfo, [Hex]),
];

fn sys_sysinfo(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let k = t.kernel();
    let used = k.memfile.usage().resident;
    let total = k.config.total_memory;
    let info = Sysinfo {
        uptime: k.boot_time.elapsed().as_secs() as i64,
        totalram: total,
        freeram: total.saturating_sub(used),
        procs: k.tree.lock().unwrap().tasks.len() as u16,
        mem_unit: 1,
        ..Default::default()
    };
    t.write_obj(a[0], &info)?;
    Ok(0)
}
