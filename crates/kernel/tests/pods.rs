//! A pod in one sentry: containers added beside the root one, each over its
//! own root directory, in the sandbox's PID namespace or one of their own.

use std::path::PathBuf;
use veil_kernel::task::ExitStatus;
use veil_kernel::testing;

struct Dir(PathBuf);

impl Dir {
    fn with(tag: &str, name: &str, code: &[u8]) -> Dir {
        let d = std::env::temp_dir().join(format!("veil-kernel-pod-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        std::fs::write(&p, testing::elf(code)).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn added_containers_have_their_own_root_init_and_pid_namespace() {
    let pause = Dir::with("pause", "pause", &testing::pause_forever());
    let app = Dir::with("app", "getpid", &testing::exit_with_pid());
    let kernel = testing::boot(&pause.0).unwrap();
    let init = kernel.create_init(testing::launch(&["/pause"])).unwrap();
    kernel.start(init);

    // A mount tree over the app's directory.
    let tree = || kernel.vfs.sibling(testing::open_root(&app.0).unwrap(), veil_kernel::fs::vfs::RootMode::ReadOnly).unwrap();
    // Its own PID namespace: its init is pid 1 there.
    let own = kernel.add_container("own", tree(), true).unwrap();
    let task = kernel.create_container_init(&own, testing::launch(&["/getpid"])).unwrap();
    kernel.start(task);
    assert_eq!(own.wait(), ExitStatus::Exited(1));

    // The sandbox's namespace: numbered after the pause process (pid 1).
    let shared = kernel.add_container("shared", tree(), false).unwrap();
    let task = kernel.create_container_init(&shared, testing::launch(&["/getpid"])).unwrap();
    let pid = task.tid;
    kernel.start(task);
    assert!(pid > 2, "global pid {pid}");
    assert_eq!(shared.wait(), ExitStatus::Exited(pid));

    // Each container sees its own root only.
    let other = kernel.add_container("other", tree(), true).unwrap();
    let e = kernel.create_container_init(&other, testing::launch(&["/pause"])).err().expect("no /pause in its root");
    assert!(e.to_string().contains("pause"), "{e}");
    kernel.remove_container("other");
    assert!(kernel.add_container("own", kernel.vfs.clone(), false).is_err(), "ids are unique in a sandbox");

    // The pause process runs on; the root container's end is the sandbox's.
    assert_eq!(kernel.init_status(), None);
    kernel.signal(9, false).unwrap();
    assert_eq!(kernel.wait_init(), ExitStatus::Signaled { signo: 9, core: false });
    kernel.shutdown();
}
