//! The guest's ring-0 side: GDT, IDT, per-vCPU TSS and stack, and the few
//! hand-assembled instructions that leave the guest on every exception and
//! re-enter ring 3.
//!
//! Everything lives in one 2 MiB *ring-0 region* of the memory file, mapped
//! supervisor-only at [`KERNEL_BASE`] (PML4 slot 511) in every address space
//! through one shared page-directory-pointer table. Its pages:
//!
//! | page | holds |
//! | --- | --- |
//! | 0 | GDT |
//! | 1 | IDT (256 gates) |
//! | 2 | code: exception stubs, the resume sequence, the zap loop |
//! | 3 | the syscall page: the LSTAR stub, readable and executable from ring 3 |
//! | 4 + i | vCPU *i*: its TSS at offset 0, its ring-0 stack growing down from the page end |
//!
//! ## How the guest leaves and re-enters
//! Ring 0 never runs anything but the instructions below; all decisions are
//! taken by the sentry between `KVM_RUN`s.
//!
//! * An exception in ring 3 switches to the vCPU's TSS.RSP0 (its page end)
//!   and pushes the usual frame (SS, RSP, RFLAGS, CS, RIP, [error code]).
//!   Each vector's stub is `out <vector>, al` (port = vector, no register
//!   changed) so KVM exits with `KVM_EXIT_IO`; the sentry takes the general
//!   registers from the vCPU and RIP/RSP/RFLAGS from the frame in memory. The
//!   page-fault stub first pushes CR2 (without changing any register).
//! * `syscall`: EFER.SCE is set and LSTAR points at the LSTAR stub
//!   (`out 0x80, al`) on the syscall page. On bare-metal KVM that runs in
//!   ring 0 on the user stack (it touches no memory); RCX/R11 hold the return
//!   RIP/RFLAGS. Nested (PVM) hosts jump to LSTAR *without* switching to
//!   CPL 0: the stub then runs in ring 3 (its page is user-executable for
//!   that reason, and holds nothing else), and the `out` exits straight to
//!   the sentry: no exception, no ring change (the *fast path*). The sentry
//!   asks the vCPU which ring it is in after such an exit and, in ring 3,
//!   re-enters the application by setting its registers, with no `iretq`.
//!   Should a host refuse the `out` in ring 3 (#GP) or keep the page from
//!   ring 3 (#PF), the exception at RIP = LSTAR is taken as a system call
//!   too. With EFER.SCE clear a `syscall` would raise #UD; the sentry also
//!   recognises #UD on the bytes `0f 05`. No path depends on SYSRET.
//! * Re-entry: the sentry writes an IRET frame (RIP, CS, RFLAGS, RSP, SS of
//!   the application) at the top of the vCPU's stack, points the vCPU's RSP
//!   at it and RIP at [`RESUME`] (`iretq`), or at [`RESUME_CR3`]
//!   (`mov cr3, rax; pop rax; iretq`, with the application's RAX pushed below
//!   the frame) when the address space changed or must be flushed from the
//!   TLB.

use crate::kvm::layout::*;

/// Offsets of the code in the code page.
pub const STUB_STRIDE: u64 = 16;
/// Stub for vectors 32..255 (only reachable by `int n` from ring 0, which
/// never happens: `int n` from ring 3 raises #GP on the DPL-0 gates).
pub const SPURIOUS_OFFSET: u64 = 0x280;
pub const RESUME_CR3_OFFSET: u64 = 0x300;
/// `iretq`, 4 bytes into the RESUME_CR3 sequence.
pub const RESUME_OFFSET: u64 = RESUME_CR3_OFFSET + 4;

/// The shadow-page-table zap loop (see [`zap_code`]).
pub const ZAP_OFFSET: u64 = 0x380;
pub const ZAP: u64 = CODE_VA + ZAP_OFFSET;
pub const ZAP_PORT: u16 = 0xfd;

/// The benchmark floor handler: `out 0xfc, al; iretq`. Only reachable in a
/// VM whose IDT got the benchmark gate (`KvmPlatform::measure_raw_trap_floor`).
pub const FLOOR_OFFSET: u64 = 0x3c0;
pub const FLOOR_VECTOR: u8 = 0xfc;

/// Port the LSTAR stub writes to (not an exception vector).
pub const SYSCALL_PORT: u16 = 0x80;
pub const SPURIOUS_PORT: u16 = 0xfe;

/// Virtual addresses of the code.
pub const fn stub_addr(vector: u8) -> u64 {
    CODE_VA + vector as u64 * STUB_STRIDE
}
/// `out 0x80, al; hlt` — where LSTAR points: the start of the syscall page.
pub const LSTAR: u64 = SYSCALL_VA;
pub const RESUME_CR3: u64 = CODE_VA + RESUME_CR3_OFFSET;
pub const RESUME: u64 = CODE_VA + RESUME_OFFSET;
/// One past the last exception stub.
pub const STUBS_END: u64 = CODE_VA + 32 * STUB_STRIDE;

/// GDT selectors (Linux's numbering, so that `mov ax, cs` reads what Linux
/// programs expect).
pub const KERNEL_CS: u16 = 0x08;
pub const KERNEL_DS: u16 = 0x10;
pub const USER32_CS: u16 = 0x23;
pub const USER_DS: u16 = 0x2b;
pub const USER_CS: u16 = 0x33;
pub const TSS_SEL: u16 = 0x38;
/// Entries: null, kernel CS, kernel DS, unused, user32 CS, user DS, user CS,
/// TSS (two slots).
pub const GDT_LIMIT: u16 = 9 * 8 - 1;
pub const IDT_LIMIT: u16 = 256 * 16 - 1;

/// Does the CPU push an error code for this vector?
pub const fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}

pub const PF_VECTOR: u8 = 14;

/// The exception stub for `vector`, documented instruction by instruction.
fn stub_code(vector: u8) -> Vec<u8> {
    let mut c = Vec::new();
    if vector == PF_VECTOR {
        c.extend_from_slice(&[0x50]); //               push rax
        c.extend_from_slice(&[0x0f, 0x20, 0xd0]); //   mov rax, cr2
        c.extend_from_slice(&[0x48, 0x87, 0x04, 0x24]); // xchg [rsp], rax  (rax restored, [rsp] = cr2)
    }
    c.extend_from_slice(&[0xe6, vector]); //           out <vector>, al   -> KVM_EXIT_IO, port = vector
    c.extend_from_slice(&[0xf4]); //                   hlt                (never resumed: the sentry sets RIP)
    assert!(c.len() as u64 <= STUB_STRIDE);
    c
}

/// The zap loop, run in ring 0 on the VM's maintenance vCPU: for each of
/// `rcx` addresses in the array at `rsi`, an atomic 2-byte `lock add 0` at
/// that address (a page-table page, through the direct map, offset 7: the
/// word straddles entries 0 and 1, values unchanged). A shadow-paging KVM
/// traps the write to the write-protected table, sees a write that is
/// misaligned for a page-table entry and drops every shadow page of that
/// table, so the next walk reads what the sentry wrote; with EPT/NPT it is a
/// plain store.
fn zap_code() -> Vec<u8> {
    let c: &[u8] = &[
        0x48, 0x85, 0xc9, //             0: test rcx, rcx
        0x74, 0x11, //                   3: jz 22
        0x48, 0x8b, 0x06, //             5: mov rax, [rsi]
        0xf0, 0x66, 0x83, 0x00, 0x00, // 8: lock add word [rax], 0
        0x48, 0x83, 0xc6, 0x08, //      13: add rsi, 8
        0x48, 0xff, 0xc9, //            17: dec rcx
        0xeb, 0xea, //                  20: jmp 0
        0xe6, ZAP_PORT as u8, //        22: out 0xfd, al
        0xf4, //                        24: hlt
    ];
    c.to_vec()
}

/// The code page's contents.
pub fn code_page() -> Vec<u8> {
    let mut page = vec![0xf4u8; PAGE as usize]; // hlt everywhere else
    for v in 0..32u8 {
        let c = stub_code(v);
        let off = (v as u64 * STUB_STRIDE) as usize;
        page[off..off + c.len()].copy_from_slice(&c);
    }
    // Spurious vectors: out 0xfe, al ; hlt
    let off = SPURIOUS_OFFSET as usize;
    page[off..off + 3].copy_from_slice(&[0xe6, SPURIOUS_PORT as u8, 0xf4]);
    let off = RESUME_CR3_OFFSET as usize;
    page[off..off + 3].copy_from_slice(&[0x0f, 0x22, 0xd8]); // mov cr3, rax   (flushes non-global TLB entries)
    page[off + 3] = 0x58; //                                    pop rax        (the application's rax)
    page[off + 4..off + 6].copy_from_slice(&[0x48, 0xcf]); //   iretq          (RESUME: to ring 3)
    let off = FLOOR_OFFSET as usize;
    page[off..off + 4].copy_from_slice(&[0xe6, FLOOR_VECTOR, 0x48, 0xcf]); // out 0xfc, al; iretq
    let z = zap_code();
    page[ZAP_OFFSET as usize..ZAP_OFFSET as usize + z.len()].copy_from_slice(&z);
    page
}

/// The syscall page's contents: `out 0x80, al; hlt` at LSTAR, `hlt`
/// everywhere else (whatever ring runs it, nothing here touches memory or
/// registers).
pub fn syscall_page() -> Vec<u8> {
    let mut page = vec![0xf4u8; PAGE as usize];
    page[..2].copy_from_slice(&[0xe6, SYSCALL_PORT as u8]);
    page
}

/// A segment descriptor with base 0 and limit 4 GiB; `access` is the access
/// byte (P, DPL, S, type with the accessed bit set), `flags` the high nibble
/// (G, D/B, L).
const fn segment(access: u64, flags: u64) -> u64 {
    0xffff | (0xf << 48) | (access << 40) | (flags << 52)
}

/// The GDT page's contents. `tss` is the address of vCPU 0's TSS (the
/// descriptor is only there for completeness: TR is loaded by KVM_SET_SREGS
/// with each vCPU's own TSS).
pub fn gdt_page(tss: u64) -> Vec<u8> {
    let entries: [u64; 9] = [
        0,
        segment(0x9b, 0xa), // 0x08 kernel code: P, DPL0, code exec/read accessed; G, L
        segment(0x93, 0xc), // 0x10 kernel data: P, DPL0, data r/w accessed; G, D
        0,
        segment(0xfb, 0xc), // 0x23 user32 code: DPL3; G, D
        segment(0xf3, 0xc), // 0x2b user data: DPL3; G, D
        segment(0xfb, 0xa), // 0x33 user code: DPL3; G, L
        // 0x38 TSS (64-bit available TSS, type 9), limit TSS_LIMIT.
        TSS_LIMIT as u64 | ((tss & 0xff_ffff) << 16) | (0x89 << 40) | (((tss >> 24) & 0xff) << 56),
        tss >> 32,
    ];
    let mut page = vec![0u8; PAGE as usize];
    for (i, e) in entries.iter().enumerate() {
        page[i * 8..i * 8 + 8].copy_from_slice(&e.to_le_bytes());
    }
    page
}

/// A 64-bit interrupt gate to `handler` (kernel CS, no IST).
pub fn gate(handler: u64, dpl: u64) -> [u64; 2] {
    let attr = 0x80 | (dpl << 5) | 0xe; // P, DPL, 64-bit interrupt gate
    [
        (handler & 0xffff) | ((KERNEL_CS as u64) << 16) | (attr << 40) | (((handler >> 16) & 0xffff) << 48),
        handler >> 32,
    ]
}

/// The IDT page's contents. #BP and #OF gates have DPL 3 so that `int3` and
/// `into` from ring 3 reach them, as on Linux; `int n` for anything else
/// raises #GP.
pub fn idt_page() -> Vec<u8> {
    let mut page = vec![0u8; PAGE as usize];
    for v in 0..256usize {
        let (handler, dpl) = match v {
            3 | 4 => (stub_addr(v as u8), 3),
            0..=31 => (stub_addr(v as u8), 0),
            _ => (CODE_VA + SPURIOUS_OFFSET, 0),
        };
        let g = gate(handler, dpl);
        page[v * 16..v * 16 + 8].copy_from_slice(&g[0].to_le_bytes());
        page[v * 16 + 8..v * 16 + 16].copy_from_slice(&g[1].to_le_bytes());
    }
    page
}

/// Where the I/O permission bitmap starts in the TSS (right after it).
const IOMAP: usize = 0x68;
/// The bitmap covers ports 0..=SYSCALL_PORT|7 (one byte per 8 ports) plus
/// the byte after, which the CPU also reads for a port in the last byte.
const IOMAP_LEN: usize = SYSCALL_PORT as usize / 8 + 2;
/// Bytes of a vCPU page the TSS and its bitmap take.
pub const TSS_SIZE: u64 = (IOMAP + IOMAP_LEN) as u64;
pub const TSS_LIMIT: u32 = TSS_SIZE as u32 - 1;

/// Writes vCPU `i`'s TSS (RSP0 = its page end) into `page`, with an I/O
/// bitmap that lets ring 3 use one port, `SYSCALL_PORT`: the LSTAR stub's
/// `out` where `syscall` does not change rings. Every other port is denied
/// (#GP); the sentry also refuses an `out 0x80` the application runs itself
/// (see `KvmContext::classify`).
pub fn write_tss(page: &mut [u8], rsp0: u64) {
    page[..TSS_SIZE as usize].fill(0);
    page[4..12].copy_from_slice(&rsp0.to_le_bytes());
    page[0x66..0x68].copy_from_slice(&(IOMAP as u16).to_le_bytes());
    let map = &mut page[IOMAP..IOMAP + IOMAP_LEN];
    map.fill(0xff);
    map[SYSCALL_PORT as usize / 8] &= !(1 << (SYSCALL_PORT % 8));
}
