//! Guest virtual and physical layout constants.

pub const PAGE: u64 = 4096;

/// Where the ring-0 region is mapped in every address space: the start of
/// the last PML4 slot (511), supervisor-only.
pub const KERNEL_BASE: u64 = 0xffff_ff80_0000_0000;
/// The ring-0 region: 512 pages, mapped by one page table.
pub const REGION_PAGES: u64 = 512;
pub const REGION_SIZE: u64 = REGION_PAGES * PAGE;

/// Where the maintenance vCPU sees the whole memory file (PML4 slot 510,
/// supervisor-only; never in application address spaces).
pub const DIRECT_BASE: u64 = 0xffff_ff00_0000_0000;
/// Largest memory file the direct map covers (one PML4 slot).
pub const DIRECT_SIZE: u64 = 1 << 39;

pub const GDT_VA: u64 = KERNEL_BASE;
pub const IDT_VA: u64 = KERNEL_BASE + PAGE;
pub const CODE_VA: u64 = KERNEL_BASE + 2 * PAGE;
/// Page index (in the region) of the syscall page, the one page of the
/// region ring 3 may execute (see `ring0`).
pub const SYSCALL_PAGE: u64 = 3;
pub const SYSCALL_VA: u64 = KERNEL_BASE + SYSCALL_PAGE * PAGE;
/// Page index (in the region) of vCPU 0's TSS + stack page.
pub const FIRST_VCPU_PAGE: u64 = 4;
/// vCPUs per VM: one region page each.
pub const MAX_VCPUS: u64 = REGION_PAGES - FIRST_VCPU_PAGE;

pub const fn vcpu_page_offset(index: u64) -> u64 {
    (FIRST_VCPU_PAGE + index) * PAGE
}

/// Applications may map `[0, MAX_USER_ADDRESS)`: the lower canonical half
/// minus its last page, like Linux's TASK_SIZE (the page just below the
/// non-canonical hole stays unmapped).
pub const MAX_USER_ADDRESS: u64 = 0x7fff_ffff_f000;
