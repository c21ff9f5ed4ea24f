//! x86-64 4-level page tables built by the sentry in memory-file pages.
//!
//! Guest-physical addresses are memory-file offsets, so a table's entries
//! point straight at memory-file pages, and the sentry edits tables through
//! its own mapping of the file while vCPUs may be walking them (entries are
//! written with single aligned 64-bit stores).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memfile::MemoryFile;

use super::layout::PAGE;
use crate::{Perms, PlatformError, Result};

pub const PTE_P: u64 = 1;
pub const PTE_W: u64 = 1 << 1;
pub const PTE_U: u64 = 1 << 2;
pub const PTE_A: u64 = 1 << 5;
pub const PTE_D: u64 = 1 << 6;
pub const PTE_G: u64 = 1 << 8;
/// Software bit (ignored by the CPU): a mapping without any access
/// (PROT_NONE), kept non-present so that touching it faults, but remembered
/// so that the fault reports `mapped: true`.
pub const PTE_NONE: u64 = 1 << 9;
pub const PTE_NX: u64 = 1 << 63;
pub const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;

/// Flags of intermediate entries: permissions are decided by leaves.
const TABLE_FLAGS: u64 = PTE_P | PTE_W | PTE_U | PTE_A;

/// The leaf flags for `perms`.
pub fn leaf_flags(perms: Perms) -> u64 {
    if perms.is_empty() {
        return PTE_NONE;
    }
    let mut f = PTE_P | PTE_U | PTE_A | PTE_D;
    if perms.contains(Perms::WRITE) {
        f |= PTE_W;
    }
    if !perms.contains(Perms::EXEC) {
        f |= PTE_NX;
    }
    f
}

/// Does `pte` map a page (present, or PROT_NONE)?
pub fn is_mapped(pte: u64) -> bool {
    pte & (PTE_P | PTE_NONE) != 0
}

fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * level)) & 0x1ff) as usize
}

/// One address space's tables. Not internally locked: the owner serialises
/// changes.
pub struct PageTables {
    mf: Arc<MemoryFile>,
    root: u64,
    /// Every table page (root included), freed on drop.
    pages: Vec<u64>,
    /// Tables whose shadow copies a shadow-paging KVM may hold stale: leaf
    /// tables in which a present entry changed, and tables just allocated
    /// (the page may have been a table before). Drained by the owner, which
    /// makes KVM forget them (`Vm::zap_tables`).
    pub dirty: Vec<u64>,
}

impl PageTables {
    /// A root table whose last slot (511) is `kernel_pml4e`, the shared
    /// mapping of the ring-0 region.
    pub fn new(mf: Arc<MemoryFile>, kernel_pml4e: u64) -> Result<Self> {
        let mut pt = PageTables { mf, root: 0, pages: Vec::new(), dirty: Vec::new() };
        pt.root = pt.alloc_table()?;
        pt.entry(pt.root, 511).store(kernel_pml4e, Ordering::Release);
        Ok(pt)
    }

    /// The guest-physical address of the PML4 (the CR3 value).
    pub fn root(&self) -> u64 {
        self.root
    }

    fn alloc_table(&mut self) -> Result<u64> {
        let r = self.mf.allocate(PAGE).map_err(|e| PlatformError::Unusable(format!("page table page: {e}")))?;
        self.pages.push(r.start);
        self.dirty.push(r.start);
        Ok(r.start)
    }

    fn entry(&self, table: u64, i: usize) -> &AtomicU64 {
        let p = self.mf.as_ptr(table + i as u64 * 8);
        // SAFETY: `table` is a page of the memory file owned by these tables
        // (allocated by `alloc_table`, freed only on drop), `i < 512`, so the
        // pointer is 8-aligned and inside the mapping, which lives as long as
        // `self.mf`. Other accessors (vCPUs walking the tables) use atomic
        // 64-bit accesses as well.
        unsafe { &*(p as *const AtomicU64) }
    }

    /// The leaf entry for `va`, creating missing tables when `create`.
    fn leaf(&mut self, va: u64, create: bool) -> Result<Option<(u64, &AtomicU64)>> {
        let mut table = self.root;
        for level in (1..4).rev() {
            let e = self.entry(table, index(va, level)).load(Ordering::Acquire);
            table = if e & PTE_P != 0 {
                e & PTE_ADDR
            } else if create {
                let t = self.alloc_table()?;
                self.entry(table, index(va, level)).store(t | TABLE_FLAGS, Ordering::Release);
                t
            } else {
                return Ok(None);
            };
        }
        Ok(Some((table, self.entry(table, index(va, 0)))))
    }

    fn mark_dirty(&mut self, table: u64) {
        if self.dirty.last() != Some(&table) {
            self.dirty.push(table);
        }
    }

    /// Looks up the leaf entry of `va` (0 when none).
    pub fn lookup(&self, va: u64) -> u64 {
        let mut table = self.root;
        for level in (1..4).rev() {
            let e = self.entry(table, index(va, level)).load(Ordering::Acquire);
            if e & PTE_P == 0 {
                return 0;
            }
            table = e & PTE_ADDR;
        }
        self.entry(table, index(va, 0)).load(Ordering::Acquire)
    }

    /// Translates `va` to a guest-physical (memory-file) address if it is
    /// mapped present.
    pub fn translate(&self, va: u64) -> Option<u64> {
        let e = self.lookup(va);
        (e & PTE_P != 0).then_some((e & PTE_ADDR) | (va & (PAGE - 1)))
    }

    /// Maps `[va, va+len)` to `[gpa, gpa+len)`. Returns whether a present
    /// entry was replaced (the TLBs must then be flushed).
    pub fn map(&mut self, va: u64, gpa: u64, len: u64, perms: Perms) -> Result<bool> {
        let flags = leaf_flags(perms);
        let mut flush = false;
        let mut off = 0;
        while off < len {
            let (table, old) = {
                let (table, e) = self.leaf(va + off, true)?.expect("created");
                (table, e.swap((gpa + off) | flags, Ordering::AcqRel))
            };
            if old & PTE_P != 0 {
                flush = true;
                self.mark_dirty(table);
            }
            off += PAGE;
        }
        Ok(flush)
    }

    /// Applies `f` to every existing leaf entry in `[va, end)`, skipping
    /// absent subtrees. Returns whether `f` changed a present entry.
    fn for_each_leaf(&mut self, va: u64, end: u64, f: &dyn Fn(u64) -> u64) -> bool {
        self.walk_range(self.root, 3, va, end, f)
    }

    fn walk_range(&mut self, table: u64, level: u32, start: u64, end: u64, f: &dyn Fn(u64) -> u64) -> bool {
        let span = 1u64 << (12 + 9 * level);
        let mut changed = false;
        let mut va = start;
        while va < end {
            let next = ((va & !(span - 1)) + span).min(end);
            let i = index(va, level);
            if level == 3 && i == 511 {
                break; // the shared ring-0 mapping is not ours to change
            }
            let old = self.entry(table, i).load(Ordering::Acquire);
            if level == 0 {
                let new = f(old);
                if new != old {
                    self.entry(table, i).store(new, Ordering::Release);
                    if old & PTE_P != 0 {
                        changed = true;
                        self.mark_dirty(table);
                    }
                }
            } else if old & PTE_P != 0 {
                changed |= self.walk_range(old & PTE_ADDR, level - 1, va, next, f);
            }
            if next == 0 {
                break;
            }
            va = next;
        }
        changed
    }

    /// Removes every mapping in `[va, va+len)`. Returns whether a present
    /// entry was removed.
    pub fn unmap(&mut self, va: u64, len: u64) -> bool {
        self.for_each_leaf(va, va + len, &|_| 0)
    }

    /// Changes the permissions of the mappings in `[va, va+len)`.
    pub fn protect(&mut self, va: u64, len: u64, perms: Perms) -> bool {
        let flags = leaf_flags(perms);
        self.for_each_leaf(va, va + len, &|old| if is_mapped(old) { (old & PTE_ADDR) | flags } else { old })
    }
}

impl Drop for PageTables {
    fn drop(&mut self) {
        for &p in &self.pages {
            self.mf.free(memfile::FileRange { start: p, len: PAGE });
        }
    }
}

/// The ring-0 region's tables, shared by every address space: a PDPT, PD and
/// PT mapping `REGION_PAGES` pages at `KERNEL_BASE`, global and
/// supervisor-only, except the syscall page, which ring 3 may read and
/// execute (so the intermediate entries allow user access and the leaves
/// decide); only the code and syscall pages are executable. Also the maintenance
/// vCPU's root: the ring-0 region plus a writable, non-executable direct map
/// of the whole memory file at `DIRECT_BASE`.
pub struct KernelTables {
    pub pdpt: u64,
    /// CR3 of the maintenance vCPU.
    pub maint_root: u64,
    pages: Vec<u64>,
}

impl KernelTables {
    pub fn new(mf: &MemoryFile, region: u64, gb_pages: bool) -> Result<Self> {
        use super::layout::{DIRECT_SIZE, REGION_PAGES, SYSCALL_PAGE};
        let code_page = (super::layout::CODE_VA - super::layout::KERNEL_BASE) / PAGE;
        if mf.size() > DIRECT_SIZE {
            return Err(PlatformError::Unusable(format!("kvm: memory file larger than {DIRECT_SIZE:#x}")));
        }
        let mut pages = Vec::new();
        let mut alloc = || -> Result<u64> {
            let p = mf
                .allocate(PAGE)
                .map(|r| r.start)
                .map_err(|e| PlatformError::Unusable(format!("ring-0 page table: {e}")))?;
            pages.push(p);
            Ok(p)
        };
        let (pdpt, pd, pt, maint_root, direct) = (alloc()?, alloc()?, alloc()?, alloc()?, alloc()?);
        let put = |table: u64, i: u64, v: u64| mf.write(table + i * 8, &v.to_le_bytes());
        put(pdpt, 0, pd | TABLE_FLAGS);
        put(pd, 0, pt | TABLE_FLAGS);
        for i in 0..REGION_PAGES {
            let e = match i {
                _ if i == code_page => PTE_P | PTE_W | PTE_A | PTE_D | PTE_G,
                _ if i == SYSCALL_PAGE => PTE_P | PTE_U | PTE_A | PTE_G,
                _ => PTE_P | PTE_W | PTE_A | PTE_D | PTE_G | PTE_NX,
            };
            put(pt, i, (region + i * PAGE) | e);
        }
        const PS: u64 = 1 << 7;
        let leaf = PTE_P | PTE_W | PTE_A | PTE_D | PTE_NX | PS;
        let gib = 1u64 << 30;
        for g in 0..mf.size().div_ceil(gib) {
            if gb_pages {
                put(direct, g, (g * gib) | leaf);
            } else {
                let dpd = alloc()?;
                for m in 0..512 {
                    put(dpd, m, (g * gib + m * (2 << 20)) | leaf);
                }
                put(direct, g, dpd | PTE_P | PTE_W | PTE_A);
            }
        }
        put(maint_root, 510, direct | PTE_P | PTE_W | PTE_A);
        put(maint_root, 511, pdpt | PTE_P | PTE_W | PTE_A);
        Ok(KernelTables { pdpt, maint_root, pages })
    }

    /// The PML4 entry every address space uses for slot 511.
    pub fn pml4e(&self) -> u64 {
        self.pdpt | TABLE_FLAGS
    }

    pub fn free(&self, mf: &MemoryFile) {
        for &p in &self.pages {
            mf.free(memfile::FileRange { start: p, len: PAGE });
        }
    }
}
