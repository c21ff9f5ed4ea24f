//! The VM: `/dev/kvm`, one VM whose guest-physical memory is the memory file,
//! the ring-0 region, the CPUID and XSAVE configuration every vCPU gets, and
//! the pool of vCPUs (KVM cannot destroy a vCPU before its VM, so vCPUs of
//! finished contexts are reused).

use std::os::fd::{FromRawFd, RawFd};
use std::sync::{Arc, Mutex};

use kvm_bindings::{kvm_userspace_memory_region, CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Cap, Kvm, VmFd};
use memfile::{FileRange, MemoryFile};

use super::layout::*;
use super::pagetable::KernelTables;
use super::ring0;
use super::vcpu::Vcpu;
use crate::{PlatformError, Result};

pub struct Vm {
    /// Kept open for the life of the VM (the VM fd does not need it, but a
    /// donated fd is owned here).
    #[allow(dead_code)]
    pub kvm: Kvm,
    pub fd: VmFd,
    pub mf: Arc<MemoryFile>,
    /// Memory-file offset of the ring-0 region.
    pub region: FileRange,
    pub kernel: KernelTables,
    pub cpuid: CpuId,
    /// XCR0 given to the guest (0: the CPU has no XSAVE).
    pub xcr0: u64,
    /// Size of the XSAVE image for `xcr0` (512 without XSAVE).
    pub xsave_size: usize,
    /// KVM_CAP_SYNC_REGS: general registers travel in `kvm_run`.
    pub sync_regs: bool,
    max_vcpus: u64,
    next_vcpu: Mutex<u64>,
    // Boxed: a vCPU moves whole between this pool and the context running
    // it (`take_vcpu`/`put_vcpu`), and a box makes each move a pointer copy.
    #[allow(clippy::vec_box)]
    pool: Mutex<Vec<Box<Vcpu>>>,
    /// Contexts alive now: each will hold a vCPU once it runs, so their
    /// number is capped when they are made (where a task limit can refuse
    /// cleanly) rather than when they first switch.
    contexts: std::sync::atomic::AtomicU64,
    /// A vCPU that only runs the ring-0 zap loop, for whichever thread
    /// changes page tables (see `zap_tables`).
    maint: Mutex<Option<Box<Vcpu>>>,
}

fn unusable(what: &str, e: impl std::fmt::Display) -> PlatformError {
    PlatformError::Unusable(format!("kvm: {what}: {e}"))
}

/// Size of a standard-format XSAVE image holding the components of `xcr0`.
fn xsave_size(xcr0: u64) -> usize {
    let mut size = if xcr0 != 0 { crate::FXSAVE_SIZE + 64 } else { crate::FXSAVE_SIZE };
    for i in 2..63 {
        if xcr0 & (1 << i) != 0 {
            let (off, len) = crate::xsave_component(i);
            size = size.max(off + len);
        }
    }
    size
}

impl Vm {
    /// `kvm_fd`: an open `/dev/kvm` (donated by the sandbox's parent), or
    /// None to open it here.
    pub fn new(kvm_fd: Option<RawFd>, mf: Arc<MemoryFile>) -> Result<Arc<Vm>> {
        let kvm = match kvm_fd {
            // SAFETY: the caller hands over ownership of an open /dev/kvm fd.
            Some(fd) => unsafe { Kvm::from_raw_fd(fd) },
            None => Kvm::new().map_err(|e| unusable("cannot open /dev/kvm", e))?,
        };
        match kvm.get_api_version() {
            12 => {}
            v if v < 0 => return Err(unusable("KVM_GET_API_VERSION failed (not a KVM device?)", std::io::Error::last_os_error())),
            v => return Err(unusable("unsupported API version", v)),
        }
        for (cap, name) in [(Cap::UserMemory, "KVM_CAP_USER_MEMORY"), (Cap::ImmediateExit, "KVM_CAP_IMMEDIATE_EXIT")] {
            if !kvm.check_extension(cap) {
                return Err(unusable("missing capability", name));
            }
        }
        let fd = kvm.create_vm().map_err(|e| unusable("KVM_CREATE_VM", e))?;
        let region_mem = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: mf.size(),
            userspace_addr: mf.as_ptr(0) as u64,
        };
        // SAFETY: the memory file's mapping is valid for its whole size and
        // lives as long as `mf`, which the Vm (and so the VM fd) keeps.
        unsafe { fd.set_user_memory_region(region_mem) }.map_err(|e| unusable("KVM_SET_USER_MEMORY_REGION", e))?;

        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| unusable("KVM_GET_SUPPORTED_CPUID", e))?;
        let mut kvm_xcr0 = 0u64;
        for e in cpuid.as_slice() {
            if e.function == 0xd && e.index == 0 {
                kvm_xcr0 = e.eax as u64 | ((e.edx as u64) << 32);
            }
        }
        let xcr0 = crate::host_xcr0() & kvm_xcr0;
        let xsave_size = xsave_size(xcr0).min(4096);

        let region = mf.allocate(REGION_SIZE).map_err(|e| unusable("ring-0 region", e))?;
        let gb_pages = cpuid.as_slice().iter().any(|e| e.function == 0x8000_0001 && e.edx & (1 << 26) != 0);
        let kernel = match KernelTables::new(&mf, region.start, gb_pages) {
            Ok(k) => k,
            Err(e) => {
                mf.free(region);
                return Err(e);
            }
        };
        let first_tss = KERNEL_BASE + vcpu_page_offset(0);
        mf.write(region.start, &ring0::gdt_page(first_tss));
        mf.write(region.start + PAGE, &ring0::idt_page());
        mf.write(region.start + 2 * PAGE, &ring0::code_page());
        mf.write(region.start + SYSCALL_PAGE * PAGE, &ring0::syscall_page());

        let max_vcpus = (kvm.get_max_vcpus() as u64).min(MAX_VCPUS);
        let sync_regs = kvm.check_extension(Cap::SyncRegs);
        Ok(Arc::new(Vm {
            kvm,
            fd,
            mf,
            region,
            kernel,
            cpuid,
            xcr0,
            xsave_size,
            sync_regs,
            max_vcpus,
            next_vcpu: Mutex::new(0),
            pool: Mutex::new(Vec::new()),
            contexts: std::sync::atomic::AtomicU64::new(0),
            maint: Mutex::new(None),
        }))
    }

    /// Counts a new context against the VM's vCPUs (one stays for the
    /// page-table maintenance vCPU).
    pub fn reserve_context(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        let n = self.contexts.fetch_add(1, Ordering::SeqCst);
        if n + 1 >= self.max_vcpus {
            self.contexts.fetch_sub(1, Ordering::SeqCst);
            return Err(PlatformError::Unusable(format!("kvm: all {} vCPUs are in use", self.max_vcpus - 1)));
        }
        Ok(())
    }

    pub fn release_context(&self) {
        self.contexts.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// A vCPU from the pool, or a new one.
    pub fn take_vcpu(&self) -> Result<Box<Vcpu>> {
        if let Some(v) = self.pool.lock().unwrap().pop() {
            return Ok(v);
        }
        self.new_vcpu()
    }

    fn new_vcpu(&self) -> Result<Box<Vcpu>> {
        let index = {
            let mut n = self.next_vcpu.lock().unwrap();
            if *n >= self.max_vcpus {
                return Err(PlatformError::Unusable(format!("kvm: all {} vCPUs are in use", self.max_vcpus)));
            }
            *n += 1;
            *n - 1
        };
        Vcpu::new(self, index).map(Box::new)
    }

    /// Makes KVM forget any shadow copy it holds of the page-table pages
    /// `tables` (memory-file offsets), before they are used again.
    ///
    /// A KVM using shadow paging (no EPT/NPT: nested hosts such as this
    /// one) write-protects guest page tables and only notices changes the
    /// *guest* makes to them; the sentry edits them from the host. So after
    /// an edit the maintenance vCPU writes (unchanged values, misaligned) to
    /// each changed table, which makes KVM drop its shadow pages of it and
    /// flush the other vCPUs' TLBs. With EPT/NPT this costs one `KVM_RUN`.
    pub fn zap_tables(&self, tables: &[u64]) -> Result<()> {
        if tables.is_empty() {
            return Ok(());
        }
        let mut m = self.maint.lock().unwrap();
        if m.is_none() {
            *m = Some(self.new_vcpu()?);
        }
        let v = m.as_mut().unwrap();
        let addrs: Vec<u64> = tables.iter().map(|t| DIRECT_BASE + t + 7).collect();
        for chunk in addrs.chunks(Vcpu::ZAP_BATCH) {
            v.run_zap(self, chunk)?;
        }
        Ok(())
    }

    pub fn put_vcpu(&self, mut v: Box<Vcpu>) {
        v.reset_for_reuse();
        self.pool.lock().unwrap().push(v);
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kernel.free(&self.mf);
        self.mf.free(self.region);
    }
}
