//! Support for tests and benchmarks: minimal static x86-64 executables
//! built in memory, and a sentry booted in-process over a directory.

use crate::{Kernel, KernelConfig, LaunchSpec};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

/// Where [`elf`] loads its code.
pub const LOAD_ADDR: u64 = 0x40_0000;
const HEADERS: usize = 64 + 56;

/// A static ELF executable whose single read+execute segment holds `code`,
/// entered at its first byte.
pub fn elf(code: &[u8]) -> Vec<u8> {
    let size = (HEADERS + code.len()) as u64;
    let mut e = Vec::with_capacity(size as usize);
    e.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(LOAD_ADDR + HEADERS as u64).to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 56, 1, 64, 0, 0] {
        e.extend_from_slice(&v.to_le_bytes()); // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
    }
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // PF_R | PF_X
    e.extend_from_slice(&0u64.to_le_bytes()); // offset
    e.extend_from_slice(&LOAD_ADDR.to_le_bytes()); // vaddr
    e.extend_from_slice(&LOAD_ADDR.to_le_bytes()); // paddr
    e.extend_from_slice(&size.to_le_bytes()); // filesz
    e.extend_from_slice(&size.to_le_bytes()); // memsz
    e.extend_from_slice(&4096u64.to_le_bytes()); // align
    e.extend_from_slice(code);
    e
}

/// Machine code: `n` (>= 1) getppid system calls, then exit_group(status).
pub fn getppid_loop(n: u64, status: u8) -> Vec<u8> {
    assert!(n >= 1);
    let mut c = vec![0x49, 0xbc]; // mov r12, imm64
    c.extend_from_slice(&n.to_le_bytes());
    c.extend_from_slice(&[0xb8, 110, 0, 0, 0]); // loop: mov eax, SYS_getppid
    c.extend_from_slice(&[0x0f, 0x05]); // syscall
    c.extend_from_slice(&[0x49, 0xff, 0xcc]); // dec r12
    c.extend_from_slice(&[0x75, 0xf4]); // jnz loop
    c.extend_from_slice(&[0xb8, 231, 0, 0, 0]); // mov eax, SYS_exit_group
    c.extend_from_slice(&[0xbf, status, 0, 0, 0]); // mov edi, status
    c.extend_from_slice(&[0x0f, 0x05]); // syscall
    c
}

/// Machine code, 64 bytes, for rt_sigaction(signo, {handler, SA_RESTORER,
/// restorer, empty mask}, NULL, 8), the sigaction built at [rsp, rsp+32).
/// `handler` and `restorer` are offsets from the first byte of this code.
#[rustfmt::skip]
pub fn install_handler(signo: u8, handler: i32, restorer: i32) -> Vec<u8> {
    let h = (handler - 7).to_le_bytes(); // rip-relative: from the end of the first lea
    let r = (restorer - 27).to_le_bytes(); // from the end of the second lea
    vec![
        0x48, 0x8d, 0x05, h[0], h[1], h[2], h[3],       // 00: lea rax, [rip+handler]
        0x48, 0x89, 0x04, 0x24,                         // 07: mov [rsp], rax        sa_handler
        0x48, 0xc7, 0x44, 0x24, 0x08, 0x00, 0x00, 0x00, 0x04, // 0b: mov qword [rsp+8], SA_RESTORER
        0x48, 0x8d, 0x05, r[0], r[1], r[2], r[3],       // 14: lea rax, [rip+restorer]
        0x48, 0x89, 0x44, 0x24, 0x10,                   // 1b: mov [rsp+16], rax     sa_restorer
        0x48, 0xc7, 0x44, 0x24, 0x18, 0x00, 0x00, 0x00, 0x00, // 20: mov qword [rsp+24], 0   sa_mask
        0xb8, 0x0d, 0x00, 0x00, 0x00,                   // 29: mov eax, SYS_rt_sigaction
        0xbf, signo, 0x00, 0x00, 0x00,                  // 2e: mov edi, signo
        0x48, 0x89, 0xe6,                               // 33: mov rsi, rsp
        0x31, 0xd2,                                     // 36: xor edx, edx
        0x41, 0xba, 0x08, 0x00, 0x00, 0x00,             // 38: mov r10d, 8
        0x0f, 0x05,                                     // 3e: syscall
    ]
}

fn dev_null() -> OwnedFd {
    let fd = nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).expect("open /dev/null");
    // SAFETY: open just returned this descriptor.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A directory opened as a container's root.
pub fn open_root(root: &Path) -> Result<OwnedFd, String> {
    let fd = nix::fcntl::open(root, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).map_err(|e| e.to_string())?;
    // SAFETY: open just returned this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Boots a sentry over `root` (copy-on-write) on the ptrace platform.
pub fn boot(root: &Path) -> Result<Arc<Kernel>, String> {
    boot_on("ptrace", root)
}

/// Like [`boot`] on the platform named `platform` ("ptrace" or "kvm").
pub fn boot_on(platform: &str, root: &Path) -> Result<Arc<Kernel>, String> {
    let memfile = Arc::new(memfile::MemoryFile::new(1 << 30).map_err(|e| e.to_string())?);
    let platform: Arc<dyn platform::Platform> = match platform {
        "ptrace" => Arc::new(platform::ptrace::PtracePlatform::new(memfile.fd()).map_err(|e| e.to_string())?),
        "kvm" => Arc::new(platform::kvm::KvmPlatform::new(memfile.clone()).map_err(|e| e.to_string())?),
        other => return Err(format!("unknown platform {other:?}")),
    };
    let vfs = crate::fs::Vfs::new(open_root(root)?, crate::fs::vfs::RootMode::Overlay, memfile.clone()).map_err(|e| e.to_string())?;
    Ok(Kernel::new(KernelConfig::default(), platform, memfile, vfs, Box::new(std::io::sink())))
}

/// `argv` with PATH=/bin, cwd / and stdio on /dev/null.
pub fn launch(argv: &[&str]) -> LaunchSpec {
    LaunchSpec {
        argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        envp: vec![b"PATH=/bin".to_vec()],
        cwd: b"/".to_vec(),
        stdio: [dev_null(), dev_null(), dev_null()],
        creds: crate::creds::Creds::default(),
        rlimits: Vec::new(),
        oom_score_adj: 0,
    }
}

/// Boots a sentry over `root` on the ptrace platform and runs `argv` as
/// init with stdio on /dev/null; returns its exit status.
pub fn run_in_process(root: &Path, argv: &[&str]) -> Result<crate::task::ExitStatus, String> {
    run_in_process_on("ptrace", root, argv)
}

/// Like [`run_in_process`] on the platform named `platform`.
pub fn run_in_process_on(platform: &str, root: &Path, argv: &[&str]) -> Result<crate::task::ExitStatus, String> {
    let kernel = boot_on(platform, root)?;
    let init = kernel.create_init(launch(argv)).map_err(|e| e.to_string())?;
    kernel.start(init);
    let status = kernel.wait_init();
    kernel.shutdown();
    Ok(status)
}

/// Machine code: exit_group(getpid()) (the low byte of the pid it sees).
pub fn exit_with_pid() -> Vec<u8> {
    let mut c = vec![0xb8, 39, 0, 0, 0]; // mov eax, SYS_getpid
    c.extend_from_slice(&[0x0f, 0x05]); // syscall
    c.extend_from_slice(&[0x89, 0xc7]); // mov edi, eax
    c.extend_from_slice(&[0xb8, 231, 0, 0, 0]); // mov eax, SYS_exit_group
    c.extend_from_slice(&[0x0f, 0x05]); // syscall
    c
}

/// Machine code: pause(2) forever (a pod's pause process).
pub fn pause_forever() -> Vec<u8> {
    let mut c = vec![0xb8, 34, 0, 0, 0]; // loop: mov eax, SYS_pause
    c.extend_from_slice(&[0x0f, 0x05]); // syscall
    c.extend_from_slice(&[0xeb, 0xf7]); // jmp loop
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_elf_is_parseable() {
        let e = elf(&getppid_loop(3, 7));
        let h = goblin::elf::Elf::parse(&e).unwrap();
        assert_eq!(h.entry, LOAD_ADDR + HEADERS as u64);
        assert_eq!(h.program_headers.len(), 1);
    }
}
