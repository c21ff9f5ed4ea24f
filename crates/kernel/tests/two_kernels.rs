//! Two kernels in one process keep their state apart: each has its own
//! futex waiters and its own unix socket names, so tests, pods and
//! restored sandboxes sharing a process cannot see each other.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use veil_kernel::task::ExitStatus;
use veil_kernel::{testing, Kernel};

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Machine code: binds a stream unix socket to the abstract name "\0v"
/// (exit_group(errno) if that fails), then waits on a futex word on its
/// stack until killed.
#[rustfmt::skip]
fn bind_then_wait() -> Vec<u8> {
    vec![
        0xb8, 0x29, 0x00, 0x00, 0x00,                   // mov eax, SYS_socket
        0xbf, 0x01, 0x00, 0x00, 0x00,                   // mov edi, AF_UNIX
        0xbe, 0x01, 0x00, 0x00, 0x00,                   // mov esi, SOCK_STREAM
        0x31, 0xd2,                                     // xor edx, edx
        0x0f, 0x05,                                     // syscall
        0x49, 0x89, 0xc4,                               // mov r12, rax
        0xc7, 0x44, 0x24, 0xf0, 0x01, 0x00, 0x00, 0x76, // mov dword [rsp-16], {AF_UNIX, "\0v"}
        0xb8, 0x31, 0x00, 0x00, 0x00,                   // mov eax, SYS_bind
        0x4c, 0x89, 0xe7,                               // mov rdi, r12
        0x48, 0x8d, 0x74, 0x24, 0xf0,                   // lea rsi, [rsp-16]
        0xba, 0x04, 0x00, 0x00, 0x00,                   // mov edx, 4
        0x0f, 0x05,                                     // syscall
        0x85, 0xc0,                                     // test eax, eax
        0x75, 0x22,                                     // jnz fail
        0xc7, 0x44, 0x24, 0xe0, 0x00, 0x00, 0x00, 0x00, // mov dword [rsp-32], 0
        0xb8, 0xca, 0x00, 0x00, 0x00,                   // mov eax, SYS_futex
        0x48, 0x8d, 0x7c, 0x24, 0xe0,                   // lea rdi, [rsp-32]
        0xbe, 0x80, 0x00, 0x00, 0x00,                   // mov esi, FUTEX_WAIT_PRIVATE
        0x31, 0xd2,                                     // xor edx, edx (expected value 0)
        0x45, 0x31, 0xd2,                               // xor r10d, r10d (no timeout)
        0x0f, 0x05,                                     // syscall
        0x31, 0xff,                                     // xor edi, edi
        0xeb, 0x04,                                     // jmp exit
        0xf7, 0xd8,                                     // fail: neg eax
        0x89, 0xc7,                                     // mov edi, eax
        0xb8, 0xe7, 0x00, 0x00, 0x00,                   // exit: mov eax, SYS_exit_group
        0x0f, 0x05,                                     // syscall
    ]
}

/// Boots a kernel running [`bind_then_wait`] and waits until its init
/// sleeps on the futex (its bind succeeded).
fn bound_and_waiting(root: &Dir) -> Arc<Kernel> {
    let kernel = testing::boot(&root.0).unwrap();
    let init = kernel.create_init(testing::launch(&["/bind"])).unwrap();
    kernel.start(init);
    let deadline = Instant::now() + Duration::from_secs(30);
    while kernel.futexes.waiters() == 0 {
        if let Some(status) = kernel.init_status() {
            panic!("init ended before waiting: {status:?} (errno from bind as its exit code)");
        }
        assert!(Instant::now() < deadline, "init never waited on its futex");
        std::thread::sleep(Duration::from_millis(10));
    }
    kernel
}

#[test]
fn two_kernels_keep_their_futexes_and_unix_socket_names_apart() {
    let d = std::env::temp_dir().join(format!("veil-kernel-two-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let root = Dir(d);
    let p = root.0.join("bind");
    std::fs::write(&p, testing::elf(&bind_then_wait())).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let a = bound_and_waiting(&root);
    // The same abstract name binds in the second kernel: names are per kernel.
    let b = bound_and_waiting(&root);
    // Each kernel sees its own waiter only.
    assert_eq!(a.futexes.waiters(), 1);
    assert_eq!(b.futexes.waiters(), 1);

    for k in [&a, &b] {
        k.signal(9, false).unwrap();
        assert_eq!(k.wait_init(), ExitStatus::Signaled { signo: 9, core: false });
        k.shutdown();
    }
    assert_eq!(a.futexes.waiters(), 0, "a killed waiter leaves the table");
}
