//! `KvmAddressSpace`: page tables plus TLB coherence for the vCPUs running
//! them.
//!
//! Coherence: every change that removes or alters a present entry bumps
//! `gen`, then kicks every vCPU currently in the guest on this address space
//! and waits until it has left. A vCPU reloads CR3 (flushing its non-global
//! TLB entries) on entry whenever the generation differs from the one it
//! last flushed at, so no vCPU runs with a stale translation once
//! `unmap`/`protect`/`map_file` returns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::layout::{MAX_USER_ADDRESS, PAGE};
use super::pagetable::{self, PageTables};
use super::vcpu::Kick;
use super::vm::Vm;
use crate::{AddressSpace, Perms, PlatformError, Result};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub struct KvmAddressSpace {
    pub(crate) id: u64,
    pub(crate) vm: Arc<Vm>,
    tables: Mutex<PageTables>,
    root: u64,
    pub(crate) gen: AtomicU64,
    /// Kicks of the vCPUs that hold this address space's CR3.
    active: Mutex<Vec<Arc<Kick>>>,
}

impl KvmAddressSpace {
    pub(crate) fn new(vm: Arc<Vm>) -> Result<Self> {
        let mut tables = PageTables::new(vm.mf.clone(), vm.kernel.pml4e())?;
        vm.zap_tables(&std::mem::take(&mut tables.dirty))?;
        Ok(KvmAddressSpace {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            root: tables.root(),
            vm,
            tables: Mutex::new(tables),
            gen: AtomicU64::new(0),
            active: Mutex::new(Vec::new()),
        })
    }

    /// The CR3 value (guest-physical address of the PML4).
    pub fn cr3(&self) -> u64 {
        self.root
    }

    pub(crate) fn register(&self, k: &Arc<Kick>) {
        let mut a = self.active.lock().unwrap();
        if !a.iter().any(|x| Arc::ptr_eq(x, k)) {
            a.push(k.clone());
        }
    }

    pub(crate) fn deregister(&self, k: &Arc<Kick>) {
        self.active.lock().unwrap().retain(|x| !Arc::ptr_eq(x, k));
    }

    /// Leaf entry of `va` (0 if none).
    pub(crate) fn lookup(&self, va: u64) -> u64 {
        self.tables.lock().unwrap().lookup(va)
    }

    /// Reads application memory at `va` through the page tables (for the
    /// instruction bytes of a #UD). None if not mapped present.
    pub(crate) fn read(&self, va: u64, buf: &mut [u8]) -> Option<()> {
        let t = self.tables.lock().unwrap();
        for (i, b) in buf.iter_mut().enumerate() {
            let gpa = t.translate(va.checked_add(i as u64)?)?;
            let mut one = [0u8];
            self.vm.mf.read(gpa, &mut one);
            *b = one[0];
        }
        Some(())
    }

    fn check(&self, addr: u64, len: u64) -> Result<()> {
        let bad = |why: &str| Err(PlatformError::Unusable(format!("kvm address space: {why}: {addr:#x}+{len:#x}")));
        if !addr.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) {
            return bad("unaligned range");
        }
        match addr.checked_add(len) {
            Some(end) if end <= MAX_USER_ADDRESS => Ok(()),
            _ => bad("range beyond the user address space"),
        }
    }

    /// Runs `op` on the tables, then makes KVM forget stale shadow copies of
    /// the tables it changed or allocated; returns `op`'s result.
    fn edit<T>(&self, op: impl FnOnce(&mut PageTables) -> Result<T>) -> Result<T> {
        let mut t = self.tables.lock().unwrap();
        let r = op(&mut t);
        let dirty = std::mem::take(&mut t.dirty);
        // Zapped under the lock so that no vCPU can pick up a table this
        // call allocated before KVM has forgotten what it held before.
        self.vm.zap_tables(&dirty)?;
        r
    }

    /// Makes the change just made to the tables visible to every vCPU.
    fn shootdown(&self) {
        self.gen.fetch_add(1, Ordering::SeqCst);
        let active: Vec<Arc<Kick>> = self.active.lock().unwrap().clone();
        for k in active {
            k.kick_and_wait();
        }
    }

    /// Number of page-table pages (for tests and accounting).
    pub fn cr3_for_tests(&self) -> u64 {
        self.root
    }
}

impl AddressSpace for KvmAddressSpace {
    fn map_file(&self, addr: u64, file_offset: u64, len: u64, perms: Perms) -> Result<()> {
        self.check(addr, len)?;
        if !file_offset.is_multiple_of(PAGE) || file_offset.checked_add(len).is_none_or(|e| e > self.vm.mf.size()) {
            return Err(PlatformError::Unusable(format!(
                "kvm address space: file range {file_offset:#x}+{len:#x} outside the memory file"
            )));
        }
        let flush = self.edit(|t| t.map(addr, file_offset, len, perms))?;
        if flush {
            self.shootdown();
        }
        Ok(())
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<()> {
        self.check(addr, len)?;
        if self.edit(|t| Ok(t.unmap(addr, len)))? {
            self.shootdown();
        }
        Ok(())
    }

    fn protect(&self, addr: u64, len: u64, perms: Perms) -> Result<()> {
        self.check(addr, len)?;
        if self.edit(|t| Ok(t.protect(addr, len, perms)))? {
            self.shootdown();
        }
        Ok(())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

pub(crate) use pagetable::is_mapped;
