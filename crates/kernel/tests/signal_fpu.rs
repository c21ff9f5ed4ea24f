//! A signal handler must not cost the interrupted code its vector
//! registers: `rt_sigreturn` restores the whole XSAVE state (AVX, AVX-512),
//! not just the legacy FXSAVE area. glibc's `memmove` keeps the head of a
//! copy in `zmm16` across `rep movsb`; a SIGCHLD landing there used to
//! zero it, which lost the first 64 bytes of bash's command-substitution
//! buffer (`$(seq 1 20000)` in a here-document came out empty).

use std::path::PathBuf;
use veil_kernel::task::ExitStatus;
use veil_kernel::testing;

/// A static program that fills a vector register with bytes 1..=64, has a
/// SIGUSR1 handler overwrite it with all ones (kill(getpid(), SIGUSR1) so
/// the handler runs on the way out of that system call), then stores the
/// register and exits 0 if it still holds 1..=64, 1 if not.
///
/// Hand-assembled; the register-specific instructions go in fixed-size
/// slots (NOP-padded) so every other offset stays put.
fn program(r: &Register) -> Vec<u8> {
    let mut c = vec![0x48, 0x81, 0xec, 0x00, 0x01, 0x00, 0x00]; // 00: sub rsp, 256
    c.extend(testing::install_handler(0x0a, 0x99 - 0x07, 0xa1 - 0x07)); // 07: SIGUSR1
    #[rustfmt::skip]
    c.extend([
        0xb9, 0x40, 0x00, 0x00, 0x00,                   // 47: mov ecx, 64
        0x88, 0x4c, 0x0c, 0x3f,                         // 4c: fill: mov [rsp+63+rcx], cl
        0xe2, 0xfa,                                     // 50: loop fill
        0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, // 52: LOAD slot: reg <- [rsp+64]
        0xb8, 0x27, 0x00, 0x00, 0x00,                   // 5a: mov eax, SYS_getpid
        0x0f, 0x05,                                     // 5f: syscall
        0x89, 0xc7,                                     // 61: mov edi, eax
        0xbe, 0x0a, 0x00, 0x00, 0x00,                   // 63: mov esi, SIGUSR1
        0xb8, 0x3e, 0x00, 0x00, 0x00,                   // 68: mov eax, SYS_kill
        0x0f, 0x05,                                     // 6d: syscall (the handler runs here)
        0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, // 6f: STORE slot: [rsp+128] <- reg
        0xb9, 0x40, 0x00, 0x00, 0x00,                   // 78: mov ecx, <register size>
        0x8a, 0x44, 0x0c, 0x3f,                         // 7d: cmp: mov al, [rsp+63+rcx]
        0x3a, 0x44, 0x0c, 0x7f,                         // 81: cmp al, [rsp+127+rcx]
        0x75, 0x06,                                     // 85: jne fail
        0xe2, 0xf4,                                     // 87: loop cmp
        0x31, 0xff,                                     // 89: xor edi, edi
        0xeb, 0x05,                                     // 8b: jmp exit
        0xbf, 0x01, 0x00, 0x00, 0x00,                   // 8d: fail: mov edi, 1
        0xb8, 0xe7, 0x00, 0x00, 0x00,                   // 92: exit: mov eax, SYS_exit_group
        0x0f, 0x05,                                     // 97: syscall
        0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,       // 99: handler: CLOBBER slot: reg <- all ones
        0xc3,                                           // a0: ret
        0xb8, 0x0f, 0x00, 0x00, 0x00,                   // a1: restorer: mov eax, SYS_rt_sigreturn
        0x0f, 0x05,                                     // a6: syscall
    ]);
    for (at, bytes) in [(0x52, r.load), (0x6f, r.store), (0x99, r.clobber)] {
        c[at..at + bytes.len()].copy_from_slice(bytes);
    }
    c[0x79] = r.size;
    c
}

struct Register {
    name: &'static str,
    load: &'static [u8],
    store: &'static [u8],
    clobber: &'static [u8],
    size: u8,
}

/// ymm1: its upper 128 bits live outside the FXSAVE area.
const YMM1: Register = Register {
    name: "ymm1",
    load: &[0xc5, 0xfe, 0x6f, 0x4c, 0x24, 0x40],                   // vmovdqu ymm1, [rsp+64]
    store: &[0xc5, 0xfe, 0x7f, 0x8c, 0x24, 0x80, 0x00, 0x00, 0x00], // vmovdqu [rsp+128], ymm1
    clobber: &[0xc5, 0xf5, 0x76, 0xc9],                             // vpcmpeqd ymm1, ymm1, ymm1
    size: 32,
};

/// zmm16: wholly outside the FXSAVE area (what glibc's memmove uses).
const ZMM16: Register = Register {
    name: "zmm16",
    load: &[0x62, 0xe1, 0xfe, 0x48, 0x6f, 0x44, 0x24, 0x01],     // vmovdqu64 zmm16, [rsp+64]
    store: &[0x62, 0xe1, 0xfe, 0x48, 0x7f, 0x44, 0x24, 0x02],    // vmovdqu64 [rsp+128], zmm16
    clobber: &[0x62, 0xa3, 0x7d, 0x40, 0x25, 0xc0, 0xff],        // vpternlogd zmm16, zmm16, zmm16, 0xff
    size: 64,
};

struct Root(PathBuf);

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check(platform: &str, r: &Register) {
    let root = Root(std::env::temp_dir().join(format!("veil-kernel-fpu-{platform}-{}-{}", r.name, std::process::id())));
    std::fs::create_dir_all(&root.0).unwrap();
    let prog = root.0.join("prog");
    std::fs::write(&prog, testing::elf(&program(r))).unwrap();
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let status = testing::run_in_process_on(platform, &root.0, &["/prog"]).unwrap();
    assert_eq!(status, ExitStatus::Exited(0), "{platform}: {} changed across a signal handler", r.name);
}

fn registers() -> Vec<&'static Register> {
    let mut v = Vec::new();
    if std::arch::is_x86_feature_detected!("avx") {
        v.push(&YMM1);
    }
    if std::arch::is_x86_feature_detected!("avx512f") {
        v.push(&ZMM16);
    }
    if v.is_empty() {
        eprintln!("skipped: this CPU has neither AVX nor AVX-512");
    }
    v
}

fn kvm_usable() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

#[test]
fn vector_registers_survive_a_signal_handler_on_ptrace() {
    for r in registers() {
        check("ptrace", r);
    }
}

#[test]
fn vector_registers_survive_a_signal_handler_on_kvm() {
    if !kvm_usable() {
        eprintln!("skipped: /dev/kvm is not usable here");
        return;
    }
    for r in registers() {
        check("kvm", r);
    }
}
