//! A signal must not fail a write to a host descriptor (the container's
//! stdio) that is ready: as on Linux, only a call that would block is
//! interrupted. The sentry used to check for a pending signal before
//! looking at the descriptor, so a SIGCHLD that came in just as busybox
//! sh wrote an error message to a stderr pipe made that write fail with
//! EINTR (its handler has no SA_RESTART) and the message came out empty.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use veil_kernel::task::ExitStatus;
use veil_kernel::{testing, Kernel};

/// How many one-byte writes the program makes.
const WRITES: usize = 2_000;

/// A static program that installs a SIGUSR1 handler without SA_RESTART
/// (it writes one byte to fd 2, so that the test can count deliveries),
/// then writes one byte to fd 1 `WRITES` times and exits 1 if any of those
/// writes did not write it, else 0.
#[rustfmt::skip]
fn program() -> Vec<u8> {
    let n = (WRITES as u32).to_le_bytes();
    let mut c = vec![0x48, 0x81, 0xec, 0x00, 0x01, 0x00, 0x00]; // 00: sub rsp, 256
    c.extend(testing::install_handler(libc::SIGUSR1 as u8, 0x89 - 0x07, 0xa2 - 0x07)); // 07
    c.extend([
        0xc6, 0x44, 0x24, 0x40, 0x2e,                   // 47: mov byte [rsp+64], '.'
        0x41, 0xbc, n[0], n[1], n[2], n[3],             // 4c: mov r12d, WRITES
        0x45, 0x31, 0xed,                               // 52: xor r13d, r13d         failures
        0xb8, 0x01, 0x00, 0x00, 0x00,                   // 55: again: mov eax, SYS_write
        0xbf, 0x01, 0x00, 0x00, 0x00,                   // 5a: mov edi, 1
        0x48, 0x8d, 0x74, 0x24, 0x40,                   // 5f: lea rsi, [rsp+64]
        0xba, 0x01, 0x00, 0x00, 0x00,                   // 64: mov edx, 1
        0x0f, 0x05,                                     // 69: syscall
        0x48, 0x83, 0xf8, 0x01,                         // 6b: cmp rax, 1
        0x74, 0x03,                                     // 6f: je ok
        0x41, 0xff, 0xc5,                               // 71: inc r13d
        0x41, 0xff, 0xcc,                               // 74: ok: dec r12d
        0x75, 0xdc,                                     // 77: jnz again
        0x31, 0xff,                                     // 79: xor edi, edi
        0x45, 0x85, 0xed,                               // 7b: test r13d, r13d
        0x40, 0x0f, 0x95, 0xc7,                         // 7e: setnz dil
        0xb8, 0xe7, 0x00, 0x00, 0x00,                   // 82: mov eax, SYS_exit_group
        0x0f, 0x05,                                     // 87: syscall
        0xb8, 0x01, 0x00, 0x00, 0x00,                   // 89: handler: mov eax, SYS_write
        0xbf, 0x02, 0x00, 0x00, 0x00,                   // 8e: mov edi, 2
        0x48, 0x8d, 0x35, 0xef, 0xff, 0xff, 0xff,       // 93: lea rsi, [rip+handler] (any byte)
        0xba, 0x01, 0x00, 0x00, 0x00,                   // 9a: mov edx, 1
        0x0f, 0x05,                                     // 9f: syscall
        0xc3,                                           // a1: ret
        0xb8, 0x0f, 0x00, 0x00, 0x00,                   // a2: restorer: mov eax, SYS_rt_sigreturn
        0x0f, 0x05,                                     // a7: syscall
    ]);
    c
}

struct Root(PathBuf);

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A host pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2")
}

/// Counts in `n` the bytes that come out of `r` until every write end is
/// closed.
fn count(r: OwnedFd, n: Arc<AtomicUsize>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(r);
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => n.fetch_add(k, Ordering::SeqCst),
                Err(e) => panic!("read pipe: {e}"),
            };
        }
    })
}

fn check(platform: &str) {
    let root = Root(std::env::temp_dir().join(format!("veil-kernel-host-write-{platform}-{}", std::process::id())));
    std::fs::create_dir_all(&root.0).unwrap();
    let prog = root.0.join("prog");
    std::fs::write(&prog, testing::elf(&program())).unwrap();
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let kernel: Arc<Kernel> = testing::boot_on(platform, &root.0).unwrap();
    let (out_r, out_w) = pipe();
    let (sig_r, sig_w) = pipe();
    let mut spec = testing::launch(&["/prog"]);
    spec.stdio[1] = out_w;
    spec.stdio[2] = sig_w;
    let init = kernel.create_init(spec).unwrap();
    let (out, handled) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let readers = [count(out_r, out.clone()), count(sig_r, handled.clone())];
    kernel.start(init);
    // Its first byte out says the handler is in place.
    while out.load(Ordering::SeqCst) == 0 && kernel.init_status().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    // SIGUSR1 after SIGUSR1 while the program writes: some land between
    // the entry of a write and its look at the descriptor.
    while kernel.init_status().is_none() {
        let _ = kernel.signal(libc::SIGUSR1, false);
        std::thread::sleep(Duration::from_micros(200));
    }
    let status = kernel.wait_init();
    kernel.shutdown();
    drop(kernel);
    readers.into_iter().for_each(|r| r.join().unwrap());
    let (out, handled) = (out.load(Ordering::SeqCst), handled.load(Ordering::SeqCst));
    assert!(handled > 0, "{platform}: no SIGUSR1 was handled ({status:?}, {out} bytes), the test proves nothing");
    assert_eq!(
        (status, out),
        (ExitStatus::Exited(0), WRITES),
        "{platform}: writes to a ready host pipe failed with {handled} signals handled"
    );
    eprintln!("{platform}: {WRITES} writes, {handled} signals handled");
}

fn kvm_usable() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

#[test]
fn a_signal_does_not_fail_a_ready_host_write_on_ptrace() {
    check("ptrace");
}

#[test]
fn a_signal_does_not_fail_a_ready_host_write_on_kvm() {
    if !kvm_usable() {
        eprintln!("skipped: /dev/kvm is not usable here");
        return;
    }
    check("kvm");
}
