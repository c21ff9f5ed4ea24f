//! The seccomp filter of a systrap stub process.
//!
//! Every system call of the application traps (`SECCOMP_RET_TRAP`: a SIGSYS
//! the stub's handler hands to the sentry). Only code on the stub code page
//! may make host system calls, and only those the stub needs, with arguments
//! that cannot reach beyond the stub process:
//!
//! | call | allowed when |
//! | --- | --- |
//! | futex | the address is in the stub's own slice |
//! | rt_sigreturn, exit, sigaltstack, rt_sigprocmask | always (they act on the calling thread only) |
//! | mmap | `MAP_SHARED|MAP_FIXED` of the memory file, below the stub's 4 GiB window |
//! | munmap, mprotect | below the stub's 4 GiB window, shorter than 4 GiB |
//! | clone | with exactly the flags of a stub thread |
//!
//! Anything else from the code page kills the process: the application
//! jumping into the stub's `syscall` instruction with arguments of its own
//! gets nothing. A system call of another architecture (`int $0x80`) traps
//! too, wherever it comes from, and the sentry turns it into the SIGSEGV a
//! 64-bit-only Linux gives. Hand-written BPF: seccompiler cannot compare the
//! instruction pointer.

use super::stub::{FILTER_MAX, MEMFILE_FD, PAGE, SLICE_SIZE, THREAD_CLONE_FLAGS};

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

// struct seccomp_data offsets.
const NR: u32 = 0;
const ARCH: u32 = 4;
const IP_LO: u32 = 8;
const IP_HI: u32 = 12;
const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn arg_hi(i: u32) -> u32 {
    20 + 8 * i
}

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

const TRAP: u32 = libc::SECCOMP_RET_TRAP;
const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;

/// A check on the loaded word: go on if it holds, else kill.
enum Check {
    Eq(u32, u32),
    Below(u32, u32),
}

/// Builds the program; `base` is the stub's 4 GiB-aligned window.
pub(crate) fn program(base: u64) -> Vec<libc::sock_filter> {
    assert_eq!(base & 0xffff_ffff, 0, "the stub window is 4 GiB aligned");
    let base_hi = (base >> 32) as u32;
    let code_page_lo = SLICE_SIZE as u32;
    let mut p: Vec<libc::sock_filter> = Vec::new();
    let stmt = |code, k| libc::sock_filter { code, jt: 0, jf: 0, k };
    let jump = |code, k, jt, jf| libc::sock_filter { code, jt, jf, k };

    // Anything not x86-64, or not from the stub code page: trap.
    p.push(stmt(BPF_LD_W_ABS, ARCH));
    p.push(jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0));
    p.push(stmt(BPF_RET_K, TRAP));
    p.push(stmt(BPF_LD_W_ABS, IP_HI));
    p.push(jump(BPF_JEQ_K, base_hi, 1, 0));
    p.push(stmt(BPF_RET_K, TRAP));
    p.push(stmt(BPF_LD_W_ABS, IP_LO));
    p.push(stmt(BPF_AND_K, !(PAGE as u32 - 1)));
    p.push(jump(BPF_JEQ_K, code_page_lo, 1, 0));
    p.push(stmt(BPF_RET_K, TRAP));

    // From the stub: one block per allowed call, each a list of checks.
    let below_window = base_hi - 1;
    let rules: Vec<(i64, Vec<Check>)> = vec![
        (libc::SYS_futex, vec![Check::Eq(arg_hi(0), base_hi), Check::Below(arg_lo(0), SLICE_SIZE as u32)]),
        (libc::SYS_rt_sigreturn, vec![]),
        (libc::SYS_exit, vec![]),
        (libc::SYS_sigaltstack, vec![]),
        (libc::SYS_rt_sigprocmask, vec![]),
        (
            libc::SYS_mmap,
            vec![
                Check::Below(arg_hi(0), below_window),
                Check::Eq(arg_hi(1), 0),
                Check::Eq(arg_lo(3), (libc::MAP_SHARED | libc::MAP_FIXED) as u32),
                Check::Eq(arg_hi(3), 0),
                Check::Eq(arg_lo(4), MEMFILE_FD as u32),
                Check::Eq(arg_hi(4), 0),
            ],
        ),
        (libc::SYS_munmap, vec![Check::Below(arg_hi(0), below_window), Check::Eq(arg_hi(1), 0)]),
        (libc::SYS_mprotect, vec![Check::Below(arg_hi(0), below_window), Check::Eq(arg_hi(1), 0)]),
        (
            libc::SYS_clone,
            vec![Check::Eq(arg_lo(0), THREAD_CLONE_FLAGS as u32), Check::Eq(arg_hi(0), (THREAD_CLONE_FLAGS >> 32) as u32)],
        ),
    ];
    for (nr, checks) in rules {
        // ld nr; jeq nr ? on : past the block. The block: a load and a jump
        // per check, ALLOW, then (with checks) the KILL a failed check
        // jumps to.
        let k = checks.len();
        let block = 2 * k + 1 + usize::from(k > 0);
        p.push(stmt(BPF_LD_W_ABS, NR));
        p.push(jump(BPF_JEQ_K, nr as u32, 0, block as u8));
        for (j, c) in checks.iter().enumerate() {
            // From this check's jump (block index 2j+1) to the KILL (2k+1).
            let to_kill = (2 * (k - j) - 1) as u8;
            match *c {
                Check::Eq(off, v) => {
                    p.push(stmt(BPF_LD_W_ABS, off));
                    p.push(jump(BPF_JEQ_K, v, 0, to_kill));
                }
                Check::Below(off, v) => {
                    p.push(stmt(BPF_LD_W_ABS, off));
                    p.push(jump(BPF_JGE_K, v, to_kill, 0));
                }
            }
        }
        p.push(stmt(BPF_RET_K, ALLOW));
        if k > 0 {
            p.push(stmt(BPF_RET_K, KILL));
        }
    }
    p.push(stmt(BPF_RET_K, KILL));
    assert!(p.len() <= FILTER_MAX, "the stub filter outgrew its room");
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_stay_inside_the_program() {
        let p = program(0x7ff0_0000_0000);
        for (i, ins) in p.iter().enumerate() {
            if ins.code & 0x07 == libc::BPF_JMP as u16 {
                assert!(i + 1 + (ins.jt as usize) < p.len() && i + 1 + (ins.jf as usize) < p.len(), "instruction {i}");
            }
        }
    }
}
