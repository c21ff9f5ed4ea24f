//! Adding a container to a running sandbox: the second and later
//! containers of a CRI pod (runsc's `createSubcontainer`). Each gets its
//! own mount tree over its own root filesystem, its own init and stdio,
//! and a PID namespace of its own when its spec asks for one.

use crate::error::ServerError;
use control::ContainerSpec;
use kernel::task::Task;
use kernel::{Kernel, LaunchSpec};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// Builds container `id` from `spec` and its descriptors (stdin, stdout,
/// stderr, and the socket on which its gofer sends its root and mounts);
/// its init runs once started. On failure nothing of it is left in the
/// sandbox.
pub fn create_container(kernel: &Arc<Kernel>, id: &str, spec: ContainerSpec, fds: Vec<OwnedFd>) -> Result<Arc<Task>, ServerError> {
    let [stdin, stdout, stderr, gofer]: [OwnedFd; 4] =
        fds.try_into().map_err(|got: Vec<OwnedFd>| ServerError::PodDescriptors(got.len()))?;
    if spec.args.is_empty() {
        return Err(ServerError::NoArgs);
    }
    if !spec.cwd.starts_with('/') {
        return Err(ServerError::RelativeCwd(spec.cwd));
    }
    let creds = crate::spec::creds_of(&spec.identity)?;
    let rlimits = crate::spec::rlimits_of(&spec.identity)?;
    // Its own mount tree, sharing the sandbox's pseudo-terminals and memfds.
    let mounts = crate::mounts::receive(&gofer)?;
    let vfs = crate::mounts::container_fs(mounts, &spec.covers, |root, mode| kernel.vfs.sibling(root, mode))?;
    let c = kernel.add_container(id, vfs, spec.own_pid_namespace)?;
    let launch = LaunchSpec {
        argv: spec.args.into_iter().map(String::into_bytes).collect(),
        envp: spec.env.into_iter().map(String::into_bytes).collect(),
        cwd: spec.cwd.into_bytes(),
        stdio: [stdin, stdout, stderr],
        creds,
        rlimits,
        oom_score_adj: spec.identity.oom_score_adj,
    };
    Ok(kernel.create_container_init(&c, launch).inspect_err(|_| kernel.remove_container(id))?)
}
