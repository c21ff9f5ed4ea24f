//! The sentry boots in-process on the ptrace platform and runs real
//! machine code: exit status, system call round trips, bad executables.

use std::path::PathBuf;
use veil_kernel::task::ExitStatus;
use veil_kernel::testing;

struct Root(PathBuf);

impl Root {
    fn new(tag: &str) -> Root {
        let d = std::env::temp_dir().join(format!("veil-kernel-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Root(d)
    }
    fn file(&self, name: &str, bytes: &[u8], mode: u32) {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn runs_a_static_program_to_its_exit_status() {
    let r = Root::new("exit");
    r.file("prog", &testing::elf(&testing::getppid_loop(100, 7)), 0o755);
    assert_eq!(testing::run_in_process(&r.0, &["/prog"]).unwrap(), ExitStatus::Exited(7));
}

#[test]
fn a_missing_command_is_named() {
    let r = Root::new("missing");
    let e = testing::run_in_process(&r.0, &["/nope"]).unwrap_err();
    assert!(e.contains("/nope") && e.contains("no such file"), "{e}");
    let e = testing::run_in_process(&r.0, &["nope"]).unwrap_err();
    assert!(e.contains("not found in $PATH"), "{e}");
}

#[test]
fn a_non_elf_file_is_an_exec_format_error() {
    let r = Root::new("notelf");
    r.file("text", b"hello, world\n", 0o755);
    let e = testing::run_in_process(&r.0, &["/text"]).unwrap_err();
    assert!(e.contains("exec format error"), "{e}");
}
