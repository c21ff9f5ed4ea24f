//! An application's memory map.
//!
//! The map is a list of areas (VMAs). Each area's pages live in a
//! [`MemObject`]: pages of the memory file allocated on first touch, either
//! by a page fault the platform reports or by the sentry copying into the
//! area for a system call. A fault maps a window of pages around the fault
//! into the platform's address space at once, so a process does not pay one
//! trap per page.
//!
//! `fork` copies the pages of private areas eagerly (only pages that hold
//! data are copied) and shares the objects of shared areas.

use crate::error::KernelError;
use crate::fs::OpenFile;
use crate::{Kernel, SysResult};
use abi::Errno;
use memfile::{FileRange, MemoryFile, PAGE_SIZE};
use platform::{AddressSpace, Perms};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Pages mapped per fault (clipped to the area).
const FAULT_WINDOW: u64 = 64 * PAGE_SIZE;
pub const STACK_SIZE: u64 = 8 << 20;

pub fn page_down(a: u64) -> u64 {
    a & !(PAGE_SIZE - 1)
}
pub fn page_up(a: u64) -> Option<u64> {
    a.checked_add(PAGE_SIZE - 1).map(page_down)
}

/// Pages of the memory file backing one or more areas, by byte offset in
/// the object.
pub struct MemObject {
    memfile: Arc<MemoryFile>,
    pages: Mutex<BTreeMap<u64, u64>>,
}

impl MemObject {
    pub fn new(memfile: &Arc<MemoryFile>) -> Arc<MemObject> {
        Arc::new(MemObject { memfile: memfile.clone(), pages: Mutex::new(BTreeMap::new()) })
    }

    /// Frees the pages in `[start, end)` of the object.
    pub fn release(&self, start: u64, end: u64) {
        let freed: Vec<u64> = {
            let mut p = self.pages.lock().unwrap();
            let keys: Vec<u64> = p.range(start..end).map(|(&k, _)| k).collect();
            keys.iter().filter_map(|k| p.remove(k)).collect()
        };
        free_runs(&self.memfile, freed);
    }

    fn resident_pages(&self) -> u64 {
        self.pages.lock().unwrap().len() as u64
    }

    /// The memory-file page holding object offset `off` (page-aligned),
    /// allocated zeroed if absent.
    fn page(&self, pages: &mut BTreeMap<u64, u64>, off: u64) -> SysResult<u64> {
        if let Some(&f) = pages.get(&off) {
            return Ok(f);
        }
        let r = self.memfile.allocate(PAGE_SIZE).map_err(|_| Errno::ENOSPC)?;
        pages.insert(off, r.start);
        Ok(r.start)
    }

    /// Copies object bytes at `off` into `buf`; absent pages read as zeros.
    /// (The caller bounds reads by the file size.)
    pub fn read_at(&self, off: u64, buf: &mut [u8]) {
        let pages = self.pages.lock().unwrap();
        let mut done = 0usize;
        while done < buf.len() {
            let at = off + done as u64;
            let in_page = (at % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(buf.len() - done);
            match pages.get(&page_down(at)) {
                Some(&f) => self.memfile.read(f + in_page as u64, &mut buf[done..done + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
    }

    /// Writes `data` at object offset `off`, allocating pages as needed.
    pub fn write_at(&self, off: u64, data: &[u8]) -> SysResult<()> {
        let mut pages = self.pages.lock().unwrap();
        let mut done = 0usize;
        while done < data.len() {
            let at = off + done as u64;
            let in_page = (at % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(data.len() - done);
            let f = self.page(&mut pages, page_down(at))?;
            self.memfile.write(f + in_page as u64, &data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Drops every page at or after `len` and zeroes the tail of the page
    /// holding `len` (ftruncate).
    pub fn truncate(&self, len: u64) {
        let tail = len % PAGE_SIZE;
        if tail != 0 {
            let pages = self.pages.lock().unwrap();
            if let Some(&f) = pages.get(&page_down(len)) {
                let zeros = vec![0u8; (PAGE_SIZE - tail) as usize];
                self.memfile.write(f + tail, &zeros);
            }
        }
        let start = page_up(len).unwrap_or(u64::MAX);
        self.release(start, u64::MAX);
    }

    /// Bytes of memory the object holds.
    pub fn resident_bytes(&self) -> u64 {
        self.resident_pages() * PAGE_SIZE
    }
}

impl Drop for MemObject {
    fn drop(&mut self) {
        let all: Vec<u64> = std::mem::take(&mut *self.pages.lock().unwrap()).into_values().collect();
        free_runs(&self.memfile, all);
    }
}

/// Frees memory-file pages, coalescing contiguous ones.
fn free_runs(mf: &MemoryFile, mut offs: Vec<u64>) {
    offs.sort_unstable();
    let mut i = 0;
    while i < offs.len() {
        let start = offs[i];
        let mut len = PAGE_SIZE;
        while i + 1 < offs.len() && offs[i + 1] == start + len {
            len += PAGE_SIZE;
            i += 1;
        }
        mf.free(FileRange { start, len });
        i += 1;
    }
}

/// Initial contents of a private file mapping.
#[derive(Clone)]
pub struct FileBacking {
    pub file: Arc<OpenFile>,
    /// File offset corresponding to the area's start.
    pub offset: u64,
    /// File offset from which the mapping reads as zeros (end of the ELF
    /// segment's file part).
    pub file_end: u64,
    pub path: Vec<u8>,
}

#[derive(Clone)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub perms: Perms,
    pub shared: bool,
    pub obj: Arc<MemObject>,
    /// Offset in `obj` of the page at `start`.
    pub obj_off: u64,
    pub file: Option<FileBacking>,
    /// "[heap]", "[stack]", or empty.
    pub label: &'static str,
}

impl Vma {
    fn split_at(&mut self, at: u64) -> Vma {
        let mut hi = self.clone();
        hi.start = at;
        hi.obj_off = self.obj_off + (at - self.start);
        if let Some(f) = &mut hi.file {
            f.offset += at - self.start;
        }
        self.end = at;
        hi
    }
}

/// Disjoint half-open ranges.
#[derive(Default, Clone)]
struct RangeSet(BTreeMap<u64, u64>);

impl RangeSet {
    fn contains(&self, a: u64) -> bool {
        self.0.range(..=a).next_back().is_some_and(|(_, &e)| a < e)
    }
    fn remove(&mut self, start: u64, end: u64) {
        let over: Vec<(u64, u64)> = self.0.range(..end).filter(|(_, &e)| e > start).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in over {
            self.0.remove(&s);
            if s < start {
                self.0.insert(s, start);
            }
            if e > end {
                self.0.insert(end, e);
            }
        }
    }
    fn insert(&mut self, start: u64, end: u64) {
        self.remove(start, end);
        let mut s = start;
        let mut e = end;
        if let Some((&ps, &pe)) = self.0.range(..=s).next_back() {
            if pe == s {
                self.0.remove(&ps);
                s = ps;
            }
        }
        if let Some(&ne) = self.0.get(&e) {
            self.0.remove(&e);
            e = ne;
        }
        self.0.insert(s, e);
    }
    fn intersect(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        self.0.range(..end).filter(|(_, &e)| e > start).map(|(&s, &e)| (s.max(start), e.min(end))).collect()
    }
}

struct MmInner {
    vmas: BTreeMap<u64, Vma>,
    /// What has been mapped into the platform address space.
    mapped: RangeSet,
    brk_start: u64,
    brk: u64,
}

pub struct MemoryManager {
    memfile: Arc<MemoryFile>,
    pub address_space: Arc<dyn AddressSpace>,
    inner: Mutex<MmInner>,
    pub max_addr: u64,
    pub stack_top: u64,
    pub mmap_base: u64,
}

/// Why a fault could not be resolved: the signal code for SIGSEGV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// No area there (SEGV_MAPERR).
    Unmapped,
    /// The area forbids the access (SEGV_ACCERR).
    Protection,
    /// The memory file is exhausted or the platform failed (SIGBUS).
    NoMemory,
}

impl MemoryManager {
    pub fn new(kernel: &Kernel) -> Result<Arc<MemoryManager>, KernelError> {
        let address_space = kernel.platform.new_address_space().map_err(KernelError::AddressSpace)?;
        let max_addr = page_down(kernel.platform.max_user_address());
        let stack_top = max_addr - 16 * PAGE_SIZE;
        Ok(Arc::new(MemoryManager {
            memfile: kernel.memfile.clone(),
            address_space,
            inner: Mutex::new(MmInner { vmas: BTreeMap::new(), mapped: RangeSet::default(), brk_start: 0, brk: 0 }),
            max_addr,
            stack_top,
            mmap_base: stack_top - STACK_SIZE - (256 << 20),
        }))
    }

    pub fn memfile(&self) -> &Arc<MemoryFile> {
        &self.memfile
    }

    /// Adds an area, replacing anything in its range.
    pub fn insert(&self, vma: Vma) -> SysResult<()> {
        let mut m = self.inner.lock().unwrap();
        self.remove_locked(&mut m, vma.start, vma.end)?;
        m.vmas.insert(vma.start, vma);
        Ok(())
    }

    /// A new anonymous private area.
    pub fn anon_vma(&self, start: u64, end: u64, perms: Perms, shared: bool, label: &'static str) -> Vma {
        Vma { start, end, perms, shared, obj: MemObject::new(&self.memfile), obj_off: 0, file: None, label }
    }

    pub fn set_brk_start(&self, at: u64) {
        let mut m = self.inner.lock().unwrap();
        m.brk_start = at;
        m.brk = at;
    }

    /// brk(2): returns the new break (the old one on failure, as Linux).
    pub fn brk(&self, want: u64) -> u64 {
        let mut m = self.inner.lock().unwrap();
        let (start, cur) = (m.brk_start, m.brk);
        if want < start || want > self.mmap_base {
            return cur;
        }
        let old_end = page_up(cur).unwrap_or(cur);
        let Some(new_end) = page_up(want) else { return cur };
        if new_end > old_end {
            if m.vmas.range(..new_end).any(|(_, v)| v.end > old_end) {
                return cur;
            }
            // Extend the heap area if it ends where we grow from.
            let heap = m.vmas.range(..old_end).next_back().map(|(&s, v)| (s, v.end, v.label));
            match heap {
                Some((s, e, "[heap]")) if e == old_end => m.vmas.get_mut(&s).unwrap().end = new_end,
                _ => {
                    let v = self.anon_vma(old_end, new_end, Perms::READ | Perms::WRITE, false, "[heap]");
                    m.vmas.insert(old_end, v);
                }
            }
        } else if new_end < old_end && self.remove_locked(&mut m, new_end, old_end).is_err() {
            return cur;
        }
        m.brk = want;
        want
    }

    /// Finds a free range of `len` bytes, highest first below the mmap base.
    pub fn find_free(&self, len: u64) -> Option<u64> {
        let m = self.inner.lock().unwrap();
        let mut top = self.mmap_base;
        for (_, v) in m.vmas.range(..self.mmap_base).rev() {
            if v.end <= top && top - v.end >= len {
                return Some(top - len);
            }
            top = top.min(v.start);
        }
        (top >= len + 0x10000).then(|| top - len)
    }

    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        let m = self.inner.lock().unwrap();
        m.vmas.range(..end).any(|(_, v)| v.end > start)
    }

    /// munmap(2).
    pub fn unmap(&self, start: u64, end: u64) -> SysResult<()> {
        let mut m = self.inner.lock().unwrap();
        self.remove_locked(&mut m, start, end)
    }

    fn split_locked(m: &mut MmInner, at: u64) {
        let hit = m.vmas.range(..at).next_back().filter(|(_, v)| v.end > at).map(|(&s, _)| s);
        if let Some(s) = hit {
            let hi = m.vmas.get_mut(&s).unwrap().split_at(at);
            m.vmas.insert(at, hi);
        }
    }

    fn remove_locked(&self, m: &mut MmInner, start: u64, end: u64) -> SysResult<()> {
        if start >= end {
            return Ok(());
        }
        Self::split_locked(m, start);
        Self::split_locked(m, end);
        let keys: Vec<u64> = m.vmas.range(start..end).map(|(&k, _)| k).collect();
        for k in keys {
            let v = m.vmas.remove(&k).unwrap();
            if !v.shared {
                v.obj.release(v.obj_off, v.obj_off + (v.end - v.start));
            }
        }
        let mapped = m.mapped.intersect(start, end);
        m.mapped.remove(start, end);
        for (s, e) in mapped {
            self.address_space.unmap(s, e - s).map_err(|_| Errno::ENOMEM)?;
        }
        Ok(())
    }

    /// mremap(2): shrinks, grows in place, or moves an area (its pages move
    /// with it: the object and offsets are kept, only the addresses change).
    pub fn remap(&self, old: u64, old_len: u64, new_len: u64, may_move: bool, fixed: Option<u64>) -> SysResult<u64> {
        let mut m = self.inner.lock().unwrap();
        let old_end = old.checked_add(old_len).ok_or(Errno::EINVAL)?;
        Self::split_locked(&mut m, old);
        Self::split_locked(&mut m, old_end);
        let v = m.vmas.get(&old).cloned().ok_or(Errno::EFAULT)?;
        if v.end != old_end {
            // The range is not exactly one area (a hole or several areas).
            return Err(Errno::EFAULT);
        }
        if fixed.is_none() && new_len <= old_len {
            self.remove_locked(&mut m, old + new_len, old_end)?;
            return Ok(old);
        }
        let new_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
        let grow_in_place = fixed.is_none() && new_end <= self.max_addr && !m.vmas.range(old_end..new_end).any(|_| true);
        if grow_in_place {
            m.vmas.get_mut(&old).unwrap().end = old + new_len;
            return Ok(old);
        }
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        let dest = match fixed {
            Some(d) => {
                if d % PAGE_SIZE != 0 || d.checked_add(new_len).is_none_or(|e| e > self.max_addr) || (d < old_end && old < d + new_len) {
                    return Err(Errno::EINVAL);
                }
                self.remove_locked(&mut m, d, d + new_len)?;
                d
            }
            None => {
                drop(m);
                let d = self.find_free(new_len).ok_or(Errno::ENOMEM)?;
                m = self.inner.lock().unwrap();
                d
            }
        };
        // Take the area out without freeing its pages, then put it back at
        // `dest` with the same object and offsets.
        let mut moved = m.vmas.remove(&old).ok_or(Errno::EFAULT)?;
        let mapped = m.mapped.intersect(old, old_end);
        m.mapped.remove(old, old_end);
        for (s, e) in mapped {
            self.address_space.unmap(s, e - s).map_err(|_| Errno::ENOMEM)?;
        }
        if new_len < old_len && !moved.shared {
            moved.obj.release(moved.obj_off + new_len, moved.obj_off + old_len);
        }
        moved.start = dest;
        moved.end = dest + new_len;
        m.vmas.insert(dest, moved);
        Ok(dest)
    }

    /// madvise(MADV_DONTNEED): private pages in the range are dropped and
    /// read back as zeros (or the file's contents) on the next touch.
    pub fn discard(&self, start: u64, end: u64) -> SysResult<()> {
        let mut m = self.inner.lock().unwrap();
        for (_, v) in m.vmas.range(..end).filter(|(_, v)| v.end > start) {
            if !v.shared {
                let s = start.max(v.start);
                let e = end.min(v.end);
                v.obj.release(v.obj_off + (s - v.start), v.obj_off + (e - v.start));
            }
        }
        let mapped = m.mapped.intersect(start, end);
        m.mapped.remove(start, end);
        for (s, e) in mapped {
            self.address_space.unmap(s, e - s).map_err(|_| Errno::ENOMEM)?;
        }
        Ok(())
    }

    /// The memory-file offset backing `addr` (materialising the page), used
    /// as a futex key: the same for every process sharing the page.
    pub fn translate(&self, addr: u64) -> SysResult<u64> {
        let m = self.inner.lock().unwrap();
        let page = page_down(addr);
        let v = m.vmas.range(..=page).next_back().map(|(_, v)| v).filter(|v| v.end > page).ok_or(Errno::EFAULT)?;
        let pages = self.materialize(v, page, page + PAGE_SIZE)?;
        Ok(pages[0].1 + (addr - page))
    }

    /// mprotect(2).
    pub fn protect(&self, start: u64, end: u64, perms: Perms) -> SysResult<()> {
        let mut m = self.inner.lock().unwrap();
        // Every page of the range must be mapped (ENOMEM otherwise).
        let mut at = start;
        for (_, v) in m.vmas.range(..end).filter(|(_, v)| v.end > start) {
            if v.start > at {
                return Err(Errno::ENOMEM);
            }
            at = v.end;
        }
        if at < end {
            return Err(Errno::ENOMEM);
        }
        Self::split_locked(&mut m, start);
        Self::split_locked(&mut m, end);
        for (_, v) in m.vmas.range_mut(start..end) {
            v.perms = perms;
        }
        for (s, e) in m.mapped.intersect(start, end) {
            if perms == Perms::empty() {
                self.address_space.unmap(s, e - s).map_err(|_| Errno::ENOMEM)?;
            } else {
                self.address_space.protect(s, e - s, perms).map_err(|_| Errno::ENOMEM)?;
            }
        }
        if perms == Perms::empty() {
            m.mapped.remove(start, end);
        }
        Ok(())
    }

    /// Resolves an application page fault at `addr` by mapping the pages
    /// around it.
    pub fn handle_fault(&self, addr: u64) -> Result<(), FaultError> {
        let mut m = self.inner.lock().unwrap();
        let page = page_down(addr);
        let v = m.vmas.range(..=page).next_back().map(|(_, v)| v.clone()).filter(|v| v.end > page).ok_or(FaultError::Unmapped)?;
        if v.perms == Perms::empty() || m.mapped.contains(page) {
            // Already mapped with the area's permissions: the access itself
            // is not allowed.
            return Err(FaultError::Protection);
        }
        let wstart = page_down(page.saturating_sub(FAULT_WINDOW / 2)).max(v.start);
        let wend = (wstart + FAULT_WINDOW).min(v.end);
        // Do not remap pages already mapped in the window.
        let mut runs = Vec::new();
        let mut a = wstart;
        while a < wend {
            if m.mapped.contains(a) {
                a += PAGE_SIZE;
                continue;
            }
            let mut b = a;
            while b < wend && !m.mapped.contains(b) {
                b += PAGE_SIZE;
            }
            runs.push((a, b));
            a = b;
        }
        for (s, e) in runs {
            let pages = self.materialize(&v, s, e).map_err(|_| FaultError::NoMemory)?;
            for (va, off, n) in contiguous(&pages) {
                self.address_space.map_file(va, off, n * PAGE_SIZE, v.perms).map_err(|_| FaultError::NoMemory)?;
            }
            m.mapped.insert(s, e);
        }
        Ok(())
    }

    /// Makes sure pages `[start, end)` of `v` have memory-file pages and
    /// returns (address, file offset) for each.
    fn materialize(&self, v: &Vma, start: u64, end: u64) -> SysResult<Vec<(u64, u64)>> {
        let mut pages = v.obj.pages.lock().unwrap();
        let mut out = Vec::with_capacity(((end - start) / PAGE_SIZE) as usize);
        let missing: Vec<u64> = (start..end).step_by(PAGE_SIZE as usize).filter(|a| !pages.contains_key(&(v.obj_off + a - v.start))).collect();
        if !missing.is_empty() {
            let r = self.memfile.allocate(missing.len() as u64 * PAGE_SIZE).map_err(|_| Errno::ENOMEM)?;
            for (i, &a) in missing.iter().enumerate() {
                let off = r.start + i as u64 * PAGE_SIZE;
                pages.insert(v.obj_off + a - v.start, off);
            }
            if let Some(f) = &v.file {
                for (i, &a) in missing.iter().enumerate() {
                    let foff = f.offset + (a - v.start);
                    if foff >= f.file_end {
                        continue;
                    }
                    let n = (f.file_end - foff).min(PAGE_SIZE) as usize;
                    let dst = r.start + i as u64 * PAGE_SIZE;
                    // SAFETY: `dst` is a page this call just allocated in the
                    // memory file, mapped in the sentry for its whole size,
                    // and `n` <= PAGE_SIZE.
                    let buf = unsafe { std::slice::from_raw_parts_mut(self.memfile.as_ptr(dst), n) };
                    let mut done = 0;
                    while done < n {
                        match f.file.ops.read_at(None, &mut buf[done..], foff + done as u64) {
                            Ok(0) => break,
                            Ok(k) => done += k,
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
        for a in (start..end).step_by(PAGE_SIZE as usize) {
            out.push((a, pages[&(v.obj_off + a - v.start)]));
        }
        Ok(out)
    }

    /// Calls `f(area, from, to)` for each area covering `[addr, addr+len)`
    /// in order; EFAULT if a byte is outside every area or an area lacks
    /// `need`.
    fn walk(&self, m: &MmInner, addr: u64, len: usize, need: Perms, mut f: impl FnMut(&Vma, u64, u64) -> SysResult<()>) -> SysResult<()> {
        let end = addr.checked_add(len as u64).filter(|&e| e <= self.max_addr).ok_or(Errno::EFAULT)?;
        let mut a = addr;
        while a < end {
            let v = m.vmas.range(..=a).next_back().map(|(_, v)| v).filter(|v| v.end > a).ok_or(Errno::EFAULT)?;
            if !v.perms.contains(need) {
                return Err(Errno::EFAULT);
            }
            let to = end.min(v.end);
            f(v, a, to)?;
            a = to;
        }
        Ok(())
    }

    /// Copies between the sentry and application memory, page by page,
    /// checking the areas' permissions as the hardware would.
    fn access(&self, addr: u64, len: usize, need: Perms, mut f: impl FnMut(*mut u8, usize, usize)) -> SysResult<()> {
        if len == 0 {
            return Ok(());
        }
        let m = self.inner.lock().unwrap();
        self.walk(&m, addr, len, need, |v, from, to| {
            for (va, off) in self.materialize(v, page_down(from), page_up(to).unwrap())? {
                let s = from.max(va);
                let e = to.min(va + PAGE_SIZE);
                if s < e {
                    f(self.memfile.as_ptr(off + (s - va)), (s - addr) as usize, (e - s) as usize);
                }
            }
            Ok(())
        })
    }

    /// EFAULT unless areas with `need` cover `[addr, addr+len)`; lets a
    /// call fail before it consumes anything (a read from a pipe into a bad
    /// buffer leaves the data in the pipe, as on Linux).
    pub fn check(&self, addr: u64, len: usize, need: Perms) -> SysResult<()> {
        if len == 0 {
            return Ok(());
        }
        let m = self.inner.lock().unwrap();
        self.walk(&m, addr, len, need, |_, _, _| Ok(()))
    }

    pub fn copy_in(&self, addr: u64, buf: &mut [u8]) -> SysResult<()> {
        let dst = buf.as_mut_ptr();
        self.access(addr, buf.len(), Perms::READ, |p, at, n| {
            // SAFETY: `p` points at `n` bytes of a materialised memory-file
            // page mapped in the sentry; `at + n <= buf.len()` by construction.
            unsafe { std::ptr::copy_nonoverlapping(p, dst.add(at), n) }
        })
    }

    pub fn copy_out(&self, addr: u64, data: &[u8]) -> SysResult<()> {
        self.copy_out_with(addr, data, Perms::WRITE)
    }

    /// Writes regardless of the area's protection (the ELF loader filling
    /// in a read-only segment).
    pub fn copy_out_force(&self, addr: u64, data: &[u8]) -> SysResult<()> {
        self.copy_out_with(addr, data, Perms::empty())
    }

    fn copy_out_with(&self, addr: u64, data: &[u8], need: Perms) -> SysResult<()> {
        let src = data.as_ptr();
        self.access(addr, data.len(), need, |p, at, n| {
            // SAFETY: as in copy_in, with the roles swapped.
            unsafe { std::ptr::copy_nonoverlapping(src.add(at), p, n) }
        })
    }

    pub fn read_cstr(&self, addr: u64, max: usize) -> SysResult<Vec<u8>> {
        let mut out = Vec::new();
        let mut a = addr;
        loop {
            // Read up to the end of the page so we never touch the next one
            // unless the string continues there.
            let n = (PAGE_SIZE - (a % PAGE_SIZE)) as usize;
            let mut buf = vec![0u8; n];
            self.copy_in(a, &mut buf)?;
            if let Some(z) = buf.iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..z]);
                if out.len() > max {
                    return Err(Errno::ENAMETOOLONG);
                }
                return Ok(out);
            }
            out.extend_from_slice(&buf);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            a += n as u64;
        }
    }

    /// The child's memory for fork: private areas copied, shared shared.
    pub fn fork(&self, kernel: &Kernel) -> Result<Arc<MemoryManager>, KernelError> {
        let child = MemoryManager::new(kernel)?;
        let m = self.inner.lock().unwrap();
        let mut cm = child.inner.lock().unwrap();
        cm.brk_start = m.brk_start;
        cm.brk = m.brk;
        for (&k, v) in &m.vmas {
            let mut nv = v.clone();
            if !v.shared {
                nv.obj = MemObject::new(&self.memfile);
                let src = v.obj.pages.lock().unwrap();
                let lo = v.obj_off;
                let hi = v.obj_off + (v.end - v.start);
                let entries: Vec<(u64, u64)> = src.range(lo..hi).map(|(&o, &f)| (o, f)).collect();
                drop(src);
                if !entries.is_empty() {
                    let r = self.memfile.allocate(entries.len() as u64 * PAGE_SIZE)?;
                    let mut dst = nv.obj.pages.lock().unwrap();
                    let mut i = 0;
                    while i < entries.len() {
                        // Copy runs contiguous in both object and file at once.
                        let mut j = i + 1;
                        while j < entries.len() && entries[j].0 == entries[j - 1].0 + PAGE_SIZE && entries[j].1 == entries[j - 1].1 + PAGE_SIZE {
                            j += 1;
                        }
                        let to = r.start + i as u64 * PAGE_SIZE;
                        self.memfile.copy_populated(FileRange { start: entries[i].1, len: (j - i) as u64 * PAGE_SIZE }, to);
                        for (n, e) in entries[i..j].iter().enumerate() {
                            dst.insert(e.0 - lo, to + n as u64 * PAGE_SIZE);
                        }
                        i = j;
                    }
                }
                nv.obj_off = 0;
            }
            cm.vmas.insert(k, nv);
        }
        drop(cm);
        Ok(child)
    }

    pub fn vm_size(&self) -> u64 {
        self.inner.lock().unwrap().vmas.values().map(|v| v.end - v.start).sum()
    }

    pub fn vm_rss(&self) -> u64 {
        let m = self.inner.lock().unwrap();
        let mut seen = std::collections::HashSet::new();
        m.vmas.values().filter(|v| seen.insert(Arc::as_ptr(&v.obj))).map(|v| v.obj.resident_pages() * PAGE_SIZE).sum()
    }

    /// /proc/PID/maps.
    pub fn maps_text(&self) -> String {
        let m = self.inner.lock().unwrap();
        let mut s = String::new();
        for v in m.vmas.values() {
            let p = |b: bool, c: char| if b { c } else { '-' };
            let (off, name) = match &v.file {
                Some(f) => (f.offset, String::from_utf8_lossy(&f.path).into_owned()),
                None => (0, v.label.to_string()),
            };
            s.push_str(&format!(
                "{:08x}-{:08x} {}{}{}{} {:08x} 00:00 0{}{}\n",
                v.start,
                v.end,
                p(v.perms.contains(Perms::READ), 'r'),
                p(v.perms.contains(Perms::WRITE), 'w'),
                p(v.perms.contains(Perms::EXEC), 'x'),
                if v.shared { 's' } else { 'p' },
                off,
                if name.is_empty() { "" } else { "                          " },
                name
            ));
        }
        s
    }

    pub fn brk_range(&self) -> (u64, u64) {
        let m = self.inner.lock().unwrap();
        (m.brk_start, m.brk)
    }
}

/// Groups (address, offset) pages into runs contiguous in both.
fn contiguous(pages: &[(u64, u64)]) -> Vec<(u64, u64, u64)> {
    let mut out: Vec<(u64, u64, u64)> = Vec::new();
    for &(va, off) in pages {
        if let Some(last) = out.last_mut() {
            if last.0 + last.2 * PAGE_SIZE == va && last.1 + last.2 * PAGE_SIZE == off {
                last.2 += 1;
                continue;
            }
        }
        out.push((va, off, 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_set_merges_and_splits() {
        let mut r = RangeSet::default();
        r.insert(0x1000, 0x3000);
        r.insert(0x3000, 0x5000);
        assert_eq!(r.0.len(), 1);
        r.remove(0x2000, 0x4000);
        assert!(r.contains(0x1000) && !r.contains(0x2000) && !r.contains(0x3fff) && r.contains(0x4000));
        assert_eq!(r.intersect(0, 0x10000), vec![(0x1000, 0x2000), (0x4000, 0x5000)]);
    }

    #[test]
    fn contiguous_runs() {
        let p = [(0x1000, 0x8000), (0x2000, 0x9000), (0x3000, 0x20000)];
        assert_eq!(contiguous(&p), vec![(0x1000, 0x8000, 2), (0x3000, 0x20000, 1)]);
    }
}
