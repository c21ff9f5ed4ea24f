//! The code every systrap stub process runs, and the layout of the pages it
//! shares with the sentry.
//!
//! A stub's address space holds, at a 4 GiB-aligned base `B` chosen by the
//! platform, its *slice* of the platform's shared region (a memfd the sentry
//! maps whole) and, right above it, the stub code page:
//!
//! ```text
//! B + 0                 slot 0: the control slot (header page; no app code)
//! B + n * SLOT_SIZE     slot n: header page, then the alternate signal stack
//!                       of the stub thread that runs one application thread
//! B + SLICE_SIZE        the stub code page (this file's code, read + exec)
//! ```
//!
//! Every slot's header is a small mailbox: whoever owns it (`STATE`) may
//! write it; the other side waits (spinning briefly, then on a futex). The
//! stub side only ever runs the code below; the application can read and
//! write its own slice (it is mapped in its address space), which lets it
//! confuse only its own threads: the sentry validates every pointer it reads
//! there, and the stub's seccomp filter lets the code page make only a few
//! system calls, with arguments that cannot reach beyond the stub.
//!
//! The code is position independent (it finds `B` from its own address) and
//! uses no stack but the one of the slot it runs for, so that it keeps
//! working after everything else of the process is unmapped.

use std::arch::global_asm;

/// One slot: a header page and an alternate signal stack below the next
/// slot. A signal frame with the full XSAVE state of this machine fits in it
/// many times over.
pub(crate) const SLOT_SIZE: u64 = 32 << 10;
/// Slots per stub process: the control slot and one per stub thread.
pub(crate) const SLOTS: u64 = 512;
/// A stub process's part of the shared region.
pub(crate) const SLICE_SIZE: u64 = SLOT_SIZE * SLOTS;
pub(crate) const PAGE: u64 = 4096;

// Header offsets (bytes).
/// u32: who owns the slot: [`OWNER_SENTRY`] or [`OWNER_STUB`].
pub(crate) const STATE: usize = 0;
/// u32: non-zero while the stub side sleeps on the `STATE` futex.
pub(crate) const STUB_SLEEPING: usize = 4;
/// u32: non-zero while the sentry side sleeps on the `STATE` futex.
pub(crate) const SENTRY_SLEEPING: usize = 8;
/// u32: [`CMD_RUN`] or [`CMD_SYSCALL`].
pub(crate) const CMD: usize = 12;
/// 6 x u64: the arguments of [`CMD_SYSCALL`].
pub(crate) const ARGS: usize = 16;
/// u64: a [`CMD_SYSCALL`] result (or -errno).
pub(crate) const RET: usize = 64;
/// u64: the signal that stopped the thread.
pub(crate) const SIGNO: usize = 72;
/// u64: stub addresses of the siginfo and the ucontext of the signal frame.
pub(crate) const INFO: usize = 80;
pub(crate) const UCONTEXT: usize = 88;
/// u64: fs and gs base of the application thread (read at the trap,
/// installed before the return to it).
pub(crate) const FS_BASE: usize = 96;
pub(crate) const GS_BASE: usize = 104;
/// u64: the system call number of [`CMD_SYSCALL`].
pub(crate) const NR: usize = 112;
/// u32: the stub thread's tid, cleared by the host when it exits
/// (CLONE_CHILD_CLEARTID), so that the slot is known free again.
pub(crate) const TID: usize = 120;
/// The template's control slot: the timespec of its futex waits.
pub(crate) const TEMPLATE_TIMEOUT: usize = 128;
/// Control slot of a new stub process: the length (u64) and instructions of
/// the seccomp filter it installs on itself.
pub(crate) const FILTER_LEN: usize = 1016;
pub(crate) const FILTER: usize = 1024;
/// Room for filter instructions (8 bytes each) below the clone stack.
pub(crate) const FILTER_MAX: usize = 256;

pub(crate) const OWNER_SENTRY: u32 = 0;
pub(crate) const OWNER_STUB: u32 = 1;
/// Return to the application (thread slots only): `rt_sigreturn` with the
/// signal frame the sentry edited.
pub(crate) const CMD_RUN: u32 = 1;
/// Make system call `NR` with `ARGS`, store the result in `RET`.
pub(crate) const CMD_SYSCALL: u32 = 2;

/// The memory file's and the shared region's descriptor numbers in stubs.
pub(crate) const MEMFILE_FD: u64 = 3;
pub(crate) const REGION_FD: u64 = 4;

/// Flags of the `clone` that makes a stub thread: a thread sharing
/// everything, whose slot's `TID` the host sets and clears.
pub(crate) const THREAD_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM
    | libc::CLONE_CHILD_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64;
/// Flags of the `clone` by which the template makes a stub process.
pub(crate) const FORK_CLONE_FLAGS: u64 = libc::SIGCHLD as u64;

/// How many times either side polls a mailbox before sleeping on its futex.
pub(crate) const SPIN: u32 = 30;

// The stub code. Registers kept across the loop: r12 = slot base, r13 = the
// signal frame's ucontext (thread slots), r15 = the template's pid and rbx =
// the sentry's (template only; 0 elsewhere). `syscall` clobbers rcx and r11
// only.
//
// Entry points (offsets from the page start, see the `*_OFFSET` statics):
// * template_entry: the freshly forked template, rsp unusable, r12 = B;
// * handler: every signal of a stub thread, on its alternate stack;
// * restorer: never reached (the handler never returns), for SA_RESTORER.
global_asm!(
    ".pushsection .text.veil_systrap_stub,\"ax\",@progbits",
    ".balign 4096",
    ".globl veil_systrap_stub_start",
    "veil_systrap_stub_start:",
    // --- the signal handler: rdi = signo, rsi = siginfo, rdx = ucontext.
    ".globl veil_systrap_handler",
    "veil_systrap_handler:",
    "lea rax, [rip + veil_systrap_stub_start]",
    "mov rcx, {slice}",
    "sub rax, rcx",                 // rax = B
    "mov rcx, rsp",
    "sub rcx, rax",                 // offset of the stack in the slice
    "cmp rcx, {slice}",
    "jae 9f",                       // not on a slot's stack: die
    "and rcx, -{slot}",
    "jz 9f",                        // the control slot never runs app code
    "lea r12, [rax + rcx]",
    "xor ebx, ebx",                 // not the template
    "mov [r12 + {signo}], rdi",
    "mov [r12 + {info}], rsi",
    "mov [r12 + {uc}], rdx",
    "mov r13, rdx",
    "rdfsbase rax",
    "mov [r12 + {fs}], rax",
    "rdgsbase rax",
    "mov [r12 + {gs}], rax",
    // --- report: hand the slot to the sentry, wake it if it sleeps.
    "2:",
    "xor eax, eax",
    "xchg [r12 + {state}], eax",
    "cmp dword ptr [r12 + {sentry_sleeping}], 0",
    "je 3f",
    "mov rdi, r12",
    "mov esi, 1",                   // FUTEX_WAKE (shared: another process),
    "mov edx, 0x7fffffff",          // every waiter
    "mov eax, 202",
    "syscall",
    // --- wait until the slot is ours again: spin, then sleep.
    "3:",
    "mov ecx, {spin}",
    "4:",
    "cmp dword ptr [r12 + {state}], 1",
    "je 5f",
    "pause",
    "dec ecx",
    "jnz 4b",
    "mov eax, 1",
    "xchg [r12 + {stub_sleeping}], eax",
    "cmp dword ptr [r12 + {state}], 1",
    "je 6f",
    "mov rdi, r12",
    "xor esi, esi",                 // FUTEX_WAIT while STATE == OWNER_SENTRY
    "xor edx, edx",
    "xor r10d, r10d",
    "test rbx, rbx",
    "jz 61f",
    "lea r10, [r12 + {timeout}]",   // the template: wakes up every second
    "61:",
    "mov eax, 202",
    "syscall",
    "test rbx, rbx",                // ...to die with the sentry (rbx = its pid)
    "jz 6f",
    "mov eax, 110",                 // getppid
    "syscall",
    "cmp rax, rbx",
    "je 6f",
    "mov edi, 1",
    "mov eax, 231",                 // exit_group
    "syscall",
    "6:",
    "mov dword ptr [r12 + {stub_sleeping}], 0",
    "jmp 3b",
    // --- dispatch a command.
    "5:",
    "mov eax, [r12 + {cmd}]",
    "cmp eax, {cmd_run}",
    "jne 7f",
    "mov rax, [r12 + {fs}]",
    "wrfsbase rax",
    "mov rax, [r12 + {gs}]",
    "wrgsbase rax",
    "mov rsp, r13",
    "mov eax, 15",                  // rt_sigreturn
    "syscall",
    "9:",
    "ud2",                          // (signals are blocked here: fatal)
    "7:",
    "mov rax, [r12 + {nr}]",
    "mov r14, rax",
    "mov rdi, [r12 + {args}]",
    "mov rsi, [r12 + {args} + 8]",
    "mov rdx, [r12 + {args} + 16]",
    "mov r10, [r12 + {args} + 24]",
    "mov r8, [r12 + {args} + 32]",
    "mov r9, [r12 + {args} + 40]",
    "syscall",
    "test rax, rax",
    "jnz 8f",
    "cmp r14, 56",                  // a child of clone?
    "jne 8f",
    "cmp rdi, {fork_flags}",
    "je 20f",
    "jmp 30f",
    "8:",
    "mov [r12 + {ret}], rax",
    "jmp 2b",
    // --- a new stub thread: rsp = its slot + PAGE (set by clone).
    "30:",
    "lea r12, [rsp - {page}]",
    "lea rax, [r12 + {page}]",
    "push {altsize}",               // stack_t { ss_sp, ss_flags, ss_size }
    "push 0",
    "push rax",
    "mov rdi, rsp",
    "xor esi, esi",
    "mov eax, 131",                 // sigaltstack
    "syscall",
    "push 0",                       // the empty signal mask
    "mov edi, 2",                   // SIG_SETMASK
    "mov rsi, rsp",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 14",                  // rt_sigprocmask
    "syscall",
    "int3",                         // into the handler: the thread is ready
    ".globl veil_systrap_thread_ready",
    "veil_systrap_thread_ready:",
    "ud2",
    // --- a new stub process, forked by the template: r9 = its slice's
    // offset in the region, r15 = the template's pid.
    "20:",
    "xor ebx, ebx",                 // not the template
    "mov rdi, r12",
    "mov esi, {slice}",
    "mov edx, 3",                   // PROT_READ | PROT_WRITE
    "mov r10d, 0x11",               // MAP_SHARED | MAP_FIXED
    "mov r8d, {region_fd}",
    "mov eax, 9",                   // mmap: our own slice replaces the template's
    "syscall",
    "cmp rax, r12",
    "jne 29f",
    "mov edi, {region_fd}",
    "mov eax, 3",                   // close
    "syscall",
    "mov edi, 1",                   // PR_SET_PDEATHSIG, SIGKILL: die with the template
    "mov esi, 9",
    "mov eax, 157",
    "syscall",
    "mov eax, 110",                 // getppid: the template died already?
    "syscall",
    "cmp rax, r15",
    "jne 29f",
    "lea rsp, [r12 + {page}]",
    "mov edi, 38",                  // PR_SET_NO_NEW_PRIVS
    "mov esi, 1",
    "xor edx, edx",
    "xor r10d, r10d",
    "xor r8d, r8d",
    "mov eax, 157",
    "syscall",
    "lea rax, [r12 + {filter}]",
    "push rax",                     // struct sock_fprog { len, filter }
    "push qword ptr [r12 + {filter_len}]",
    "mov edi, 22",                  // PR_SET_SECCOMP, SECCOMP_MODE_FILTER
    "mov esi, 2",
    "mov rdx, rsp",
    "mov eax, 157",
    "syscall",
    "test rax, rax",
    "jnz 29f",
    "mov qword ptr [r12 + {ret}], 0",
    "jmp 2b",
    "29:",
    "mov edi, 1",
    "mov eax, 231",                 // exit_group
    "syscall",
    "ud2",
    // --- the template, freshly forked: r12 = B, r15 = its pid, r13 = the
    // sentry's pid. Unmaps all but its slice and this page, then serves the
    // sentry.
    ".globl veil_systrap_template_entry",
    "veil_systrap_template_entry:",
    "lea rsp, [r12 + {page}]",
    "mov rbx, r13",
    "mov qword ptr [r12 + {timeout}], 1",
    "mov qword ptr [r12 + {timeout} + 8], 0",
    "xor edi, edi",
    "mov rsi, r12",
    "mov eax, 11",                  // munmap [0, B)
    "syscall",
    "lea rdi, [rip + veil_systrap_stub_start + {page}]",
    "mov rsi, {task_size}",
    "sub rsi, rdi",
    "mov eax, 11",                  // munmap (this page, TASK_SIZE)
    "syscall",
    "mov qword ptr [r12 + {ret}], 0",
    "jmp 2b",
    ".globl veil_systrap_restorer",
    "veil_systrap_restorer:",
    "mov eax, 15",
    "syscall",
    "ud2",
    ".globl veil_systrap_stub_end",
    "veil_systrap_stub_end:",
    ".popsection",
    slice = const SLICE_SIZE,
    slot = const SLOT_SIZE,
    page = const PAGE,
    altsize = const SLOT_SIZE - PAGE,
    signo = const SIGNO,
    info = const INFO,
    uc = const UCONTEXT,
    fs = const FS_BASE,
    gs = const GS_BASE,
    state = const STATE,
    sentry_sleeping = const SENTRY_SLEEPING,
    stub_sleeping = const STUB_SLEEPING,
    spin = const SPIN,
    cmd = const CMD,
    cmd_run = const CMD_RUN,
    nr = const NR,
    args = const ARGS,
    ret = const RET,
    fork_flags = const FORK_CLONE_FLAGS,
    region_fd = const REGION_FD,
    filter = const FILTER,
    filter_len = const FILTER_LEN,
    task_size = const TASK_SIZE,
    timeout = const TEMPLATE_TIMEOUT,
);

/// One past the highest user address with 4-level paging.
pub(crate) const TASK_SIZE: u64 = 0x7fff_ffff_f000;

unsafe extern "C" {
    static veil_systrap_stub_start: u8;
    static veil_systrap_stub_end: u8;
    static veil_systrap_handler: u8;
    #[cfg(test)]
    static veil_systrap_thread_ready: u8;
    static veil_systrap_template_entry: u8;
    static veil_systrap_restorer: u8;
}

fn offset(sym: &u8) -> u64 {
    // SAFETY: only the address of a linker symbol is taken.
    let start = unsafe { &veil_systrap_stub_start } as *const u8 as u64;
    sym as *const u8 as u64 - start
}

/// The stub code's bytes, to copy to the start of the stub code page.
pub(crate) fn code() -> &'static [u8] {
    // SAFETY: start and end delimit the bytes of the section emitted above,
    // which is code in the (readable) text of this binary.
    unsafe {
        let start = &veil_systrap_stub_start as *const u8;
        let end = &veil_systrap_stub_end as *const u8;
        std::slice::from_raw_parts(start, end as usize - start as usize)
    }
}

/// Offsets of the entry points in the stub code page.
pub(crate) struct Offsets {
    pub handler: u64,
    #[cfg(test)]
    pub thread_ready: u64,
    pub template_entry: u64,
    pub restorer: u64,
}

pub(crate) fn offsets() -> Offsets {
    // SAFETY: taking the addresses of the symbols defined above.
    unsafe {
        Offsets {
            handler: offset(&veil_systrap_handler),
            #[cfg(test)]
            thread_ready: offset(&veil_systrap_thread_ready),
            template_entry: offset(&veil_systrap_template_entry),
            restorer: offset(&veil_systrap_restorer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_fits_in_its_page_and_has_its_entry_points() {
        let code = code();
        assert!(!code.is_empty() && code.len() as u64 <= PAGE);
        let o = offsets();
        assert_eq!(o.handler, 0);
        // thread_ready is right after the int3 that announces a new thread.
        assert_eq!(code[o.thread_ready as usize - 1], 0xcc);
        assert!(o.template_entry < code.len() as u64 && o.restorer < code.len() as u64);
        assert!(FILTER + FILTER_MAX * 8 <= (PAGE as usize) - 256, "filter below the clone stack");
    }
}
