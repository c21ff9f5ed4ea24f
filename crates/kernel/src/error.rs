//! Why the kernel refused what its control API was asked (create a
//! container's init, run a process, signal, wait). Each message names what
//! was wrong; the sandbox passes it on to the CLI as it is.

use crate::kernel::errno_text;
use crate::loader::LoadError;
use abi::Errno;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("container {0:?} already has an init")]
    AlreadyHasInit(String),
    #[error("the sandbox's root container has stopped")]
    RootStopped,
    #[error("container {0:?} already exists in the sandbox")]
    ContainerExists(String),
    #[error("container not running")]
    NotRunning,
    #[error("cwd {path:?}: {}", errno_text(*.errno))]
    Cwd { path: String, errno: Errno },
    #[error("process.args is empty")]
    NoArgs,
    #[error("process.args[0] is empty")]
    EmptyCommand,
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotInPath(String),
    #[error("{}", .error.describe(.command))]
    Load { command: String, error: LoadError },
    #[error("rlimit: {0}")]
    Rlimit(#[from] crate::rlimit::RlimitError),
    #[error("stdio {index}: {}", errno_text(*.errno))]
    Stdio { index: usize, errno: Errno },
    #[error("{}", errno_text(*.0))]
    Errno(Errno),
    #[error("the sandbox's task limit is reached")]
    TaskLimit,
    #[error("creating an address space: {0}")]
    AddressSpace(#[source] platform::PlatformError),
    #[error("{0}")]
    Memory(#[from] memfile::MemFileError),
    #[error("creating a task: {0}")]
    Context(#[source] platform::PlatformError),
    #[error("creating a task: {0}")]
    Waiter(#[source] std::io::Error),
    #[error("no process {0}")]
    NoProcess(i32),
    #[error("no process {0} in the container")]
    NoProcessInContainer(i32),
}
