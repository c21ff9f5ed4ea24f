//! Memory system calls: brk, mmap, munmap, mprotect, madvise.

use super::{Args, Entry};
use crate::mm::{page_up, FileBacking, Vma};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use abi::Errno;
use memfile::PAGE_SIZE;
use platform::Perms;

pub const SYSCALLS: &[Entry] = &[
    sys!(BRK, sys_brk, [Hex]),
    sys!(MMAP, sys_mmap, [Hex, Hex, Hex, Hex, Int, Hex], partial "writable MAP_SHARED mappings need a file whose data the sentry holds (tmpfs, the overlay's upper layer); of a host file they fail with ENODEV"),
    sys!(MUNMAP, sys_munmap, [Hex, Hex]),
    sys!(MPROTECT, sys_mprotect, [Hex, Hex, Hex]),
    sys!(MADVISE, sys_madvise, [Hex, Hex, Int]),
    sys!(MSYNC, sys_msync, [Hex, Hex, Hex]),
    sys!(MREMAP, sys_mremap, [Hex, Hex, Hex, Hex, Hex], partial "no MREMAP_DONTUNMAP; old_size 0 (duplicating a shared mapping) fails with EINVAL"),
];

/// Lowest address an application may map (Linux's vm.mmap_min_addr).
const MMAP_MIN_ADDR: u64 = 0x10000;

fn perms(prot: u64) -> SysResult<Perms> {
    if prot & !(libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC | libc::PROT_GROWSDOWN | libc::PROT_GROWSUP) as u64 != 0 {
        return Err(Errno::EINVAL);
    }
    let mut p = Perms::empty();
    if prot & libc::PROT_READ as u64 != 0 {
        p |= Perms::READ;
    }
    if prot & libc::PROT_WRITE as u64 != 0 {
        // x86 page tables cannot express write-only.
        p |= Perms::WRITE | Perms::READ;
    }
    if prot & libc::PROT_EXEC as u64 != 0 {
        p |= Perms::EXEC | Perms::READ;
    }
    Ok(p)
}

fn sys_brk(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let mm = t.mm();
    if a[0] == 0 {
        return Ok(mm.brk_range().1);
    }
    Ok(mm.brk(a[0]))
}

fn sys_mmap(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (addr, len, prot, flags, fd, off) = (a[0], a[1], a[2], a[3] as i32, a[4] as i32, a[5]);
    if len == 0 || off % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let perms = perms(prot)?;
    let kind = flags & (libc::MAP_SHARED | libc::MAP_PRIVATE | libc::MAP_SHARED_VALIDATE);
    let shared = match kind {
        libc::MAP_PRIVATE => false,
        libc::MAP_SHARED | libc::MAP_SHARED_VALIDATE => true,
        _ => return Err(Errno::EINVAL),
    };
    let mm = t.mm();
    let fixed = flags & libc::MAP_FIXED != 0;
    let noreplace = flags & libc::MAP_FIXED_NOREPLACE != 0;
    let start = if fixed || noreplace {
        if addr % PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        if noreplace && mm.overlaps(addr, addr.saturating_add(len)) {
            return Err(Errno::EEXIST);
        }
        addr
    } else if addr != 0 && addr % PAGE_SIZE == 0 && addr >= MMAP_MIN_ADDR && addr.checked_add(len).is_some_and(|e| e <= mm.max_addr) && !mm.overlaps(addr, addr + len) {
        addr
    } else {
        mm.find_free(len).ok_or(Errno::ENOMEM)?
    };
    let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
    if start < MMAP_MIN_ADDR {
        return Err(Errno::EPERM);
    }
    if end > mm.max_addr {
        return Err(Errno::ENOMEM);
    }
    let mut vma: Vma = mm.anon_vma(start, end, perms, shared, "");
    if flags & libc::MAP_ANONYMOUS == 0 {
        let file = t.files().get(fd)?;
        if !file.readable() {
            return Err(Errno::EACCES);
        }
        if shared {
            if let Some(obj) = file.ops.memory_object() {
                // The file's own pages: every mapping shares them.
                if perms.contains(Perms::WRITE) && !file.writable() {
                    return Err(Errno::EACCES);
                }
                vma.obj = obj;
                vma.obj_off = off;
                vma.file = None;
                mm.insert(vma)?;
                return Ok(start);
            }
            if perms.contains(Perms::WRITE) {
                t.kernel().report_unsupported_feature(abi::syscalls::nr::MMAP, "writable MAP_SHARED mapping of a host file");
                return Err(Errno::ENODEV);
            }
        }
        let st = file.ops.stat()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG && st.st_mode & libc::S_IFMT != libc::S_IFBLK {
            return Err(Errno::ENODEV);
        }
        let path = file.location.as_ref().map(|l| l.path()).unwrap_or_default();
        // A read-only shared mapping reads the same as a private one.
        vma.shared = false;
        vma.file = Some(FileBacking { file, offset: off, file_end: u64::MAX, path });
    }
    mm.insert(vma)?;
    Ok(start)
}

fn sys_munmap(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (addr, len) = (a[0], a[1]);
    if addr % PAGE_SIZE != 0 || len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = page_up(len).and_then(|l| addr.checked_add(l)).ok_or(Errno::EINVAL)?;
    t.mm().unmap(addr, end)?;
    Ok(0)
}

fn sys_mprotect(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (addr, len) = (a[0], a[1]);
    if addr % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let end = page_up(len).and_then(|l| addr.checked_add(l)).ok_or(Errno::ENOMEM)?;
    t.mm().protect(addr, end, perms(a[2])?)?;
    Ok(0)
}

fn sys_madvise(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (addr, len, advice) = (a[0], a[1], a[2] as i32);
    if addr % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    let end = page_up(len).and_then(|l| addr.checked_add(l)).ok_or(Errno::EINVAL)?;
    match advice {
        // Dropping private pages is what these promise (MADV_FREE may).
        libc::MADV_DONTNEED | libc::MADV_FREE => t.mm().discard(addr, end).map(|_| 0),
        // Pure hints: no effect on what the application observes.
        libc::MADV_NORMAL | libc::MADV_RANDOM | libc::MADV_SEQUENTIAL | libc::MADV_WILLNEED | libc::MADV_HUGEPAGE | libc::MADV_NOHUGEPAGE | libc::MADV_DONTDUMP | libc::MADV_DODUMP | libc::MADV_MERGEABLE | libc::MADV_UNMERGEABLE | libc::MADV_COLD | libc::MADV_PAGEOUT => Ok(0),
        _ => {
            t.kernel().report_unsupported_feature(abi::syscalls::nr::MADVISE, "advice");
            Err(Errno::EINVAL)
        }
    }
}

fn sys_mremap(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (old, old_len, new_len, flags, new_addr) = (a[0], a[1], a[2], a[3] as i32, a[4]);
    if old % PAGE_SIZE != 0 || flags & !(libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED) != 0 {
        return Err(Errno::EINVAL);
    }
    let fixed = flags & libc::MREMAP_FIXED != 0;
    if fixed && flags & libc::MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
    let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
    if old_len == 0 || new_len == 0 {
        return Err(Errno::EINVAL);
    }
    t.mm().remap(old, old_len, new_len, flags & libc::MREMAP_MAYMOVE != 0, fixed.then_some(new_addr))
}

/// msync(2): shared mappings the sentry serves are the file's own pages, so
/// there is nothing to write back; what remains is checking the arguments
/// and that the range is mapped (ENOMEM otherwise), as Linux does.
fn sys_msync(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (addr, len, flags) = (a[0], a[1], a[2] as i32);
    if addr % PAGE_SIZE != 0 || flags & !(libc::MS_ASYNC | libc::MS_SYNC | libc::MS_INVALIDATE) != 0 || (flags & libc::MS_ASYNC != 0 && flags & libc::MS_SYNC != 0) {
        return Err(Errno::EINVAL);
    }
    let end = page_up(len).and_then(|l| addr.checked_add(l)).ok_or(Errno::ENOMEM)?;
    t.mm().check(addr, (end - addr) as usize, Perms::empty()).map_err(|_| Errno::ENOMEM)?;
    Ok(0)
}
