//! Adding a container to a running sandbox: the second and later
//! containers of a CRI pod (runsc's `createSubcontainer`). Each gets its
//! own mount tree over its own root filesystem, its own init and stdio,
//! and a PID namespace of its own when its spec asks for one.

use control::ContainerSpec;
use kernel::fs::vfs::RootMode;
use kernel::fs::Vfs;
use kernel::task::Task;
use kernel::{Kernel, LaunchSpec};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// Builds container `id` from `spec` and its descriptors (stdin, stdout,
/// stderr, root directory); its init runs once started. On failure
/// nothing of it is left in the sandbox.
pub fn create_container(kernel: &Arc<Kernel>, id: &str, spec: ContainerSpec, fds: Vec<OwnedFd>) -> Result<Arc<Task>, String> {
    let [stdin, stdout, stderr, root]: [OwnedFd; 4] =
        fds.try_into().map_err(|got: Vec<OwnedFd>| format!("createContainer needs 4 descriptors (stdin, stdout, stderr, root), got {}", got.len()))?;
    if spec.args.is_empty() {
        return Err("process.args is empty".into());
    }
    if !spec.cwd.starts_with('/') {
        return Err(format!("process.cwd {:?} is not absolute", spec.cwd));
    }
    let vfs = mount_tree(kernel, root, spec.readonly)?;
    let c = kernel.add_container(id, vfs, spec.own_pid_namespace)?;
    let launch = LaunchSpec {
        argv: spec.args.into_iter().map(String::into_bytes).collect(),
        envp: spec.env.into_iter().map(String::into_bytes).collect(),
        cwd: spec.cwd.into_bytes(),
        stdio: [stdin, stdout, stderr],
    };
    kernel.create_container_init(&c, launch).inspect_err(|_| kernel.remove_container(id))
}

/// The container's mount tree over its root directory: the one place a
/// container's root is opened (a gofer will hand over the mount roots).
fn mount_tree(kernel: &Kernel, root: OwnedFd, readonly: bool) -> Result<Arc<Vfs>, String> {
    // As for the root container: a writable root is copy-on-write in memory.
    let mode = if readonly { RootMode::ReadOnly } else { RootMode::Overlay };
    kernel.vfs.sibling(root, mode).map_err(|e| format!("root filesystem: {}", kernel::kernel::errno_text(e)))
}
