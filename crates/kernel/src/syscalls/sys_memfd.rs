//! memfd_create: anonymous files in memory.

use super::caller::caller;
use super::{Args, Entry};
use crate::fs::OpenFile;
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;

pub const SYSCALLS: &[Entry] = &[
    sys!(MEMFD_CREATE, sys_memfd_create, [Str, Hex], partial "no file seals (MFD_ALLOW_SEALING accepted, F_ADD_SEALS refused); no MFD_HUGETLB"),
];

const MFD_CLOEXEC: u64 = 1;
const MFD_ALLOW_SEALING: u64 = 2;
const MFD_HUGETLB: u64 = 4;

fn sys_memfd_create(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let flags = a[1];
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MFD_HUGETLB != 0 {
        t.kernel().report_unsupported_feature(abi::syscalls::nr::MEMFD_CREATE, "MFD_HUGETLB");
        return Err(Errno::EINVAL);
    }
    let name = t.read_cstr(a[0], 250).map_err(|e| if e == Errno::ENAMETOOLONG { Errno::EINVAL } else { e })?;
    if name.len() > 249 {
        return Err(Errno::EINVAL);
    }
    let vfs = &t.kernel().vfs;
    let node = vfs.memfd_fs().new_node(libc::S_IFREG | 0o777, caller(t).owner(), 0);
    let ops = node.open_node(&caller(t), libc::O_RDWR as u32)?;
    let mut label = b"/memfd:".to_vec();
    label.extend_from_slice(&name);
    label.extend_from_slice(b" (deleted)");
    let loc = vfs.anon_location(&label, node);
    let file = OpenFile::new(ops, (libc::O_RDWR | libc::O_LARGEFILE) as u32, Some(loc));
    Ok(t.files().install(file, flags & MFD_CLOEXEC != 0)? as u64)
}
