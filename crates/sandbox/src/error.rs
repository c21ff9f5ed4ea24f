//! What can go wrong in `veil-sandbox`, one enum per stage. Every message
//! names what was wrong (the flag, the spec field, the mount, the host call)
//! and is what the CLI shows.

use kernel::kernel::errno_text;
use kernel::{Errno, KernelError};
use std::io;

/// A bad `boot` or `gofer` command line.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("{flag}: {value:?} is not a file descriptor number")]
    NotFd { flag: String, value: String },
    #[error("{flag}: {value:?} is not a positive number")]
    NotPositive { flag: String, value: String },
    #[error("{0} needs a value")]
    NeedsValue(String),
    #[error("--stdio-fds: expected three descriptors, got {0:?}")]
    StdioFds(String),
    #[error("unknown flag {0:?}")]
    UnknownFlag(String),
    #[error("--log-format: {0:?} is neither text nor json")]
    LogFormat(String),
    #[error("{0} is required")]
    Required(&'static str),
}

/// A donated descriptor that is not there.
#[derive(Debug, thiserror::Error)]
#[error("{what} descriptor {fd} is not open")]
pub struct NotOpen {
    pub what: String,
    pub fd: i32,
}

/// A spec the sandbox cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("spec is not valid: {0}")]
    Json(#[source] serde_json::Error),
    #[error("spec: process is missing")]
    NoProcess,
    #[error("spec: process.args is empty")]
    NoArgs,
    #[error("spec: process.cwd {0:?} is not absolute")]
    RelativeCwd(String),
    #[error("spec: root is missing")]
    NoRoot,
    #[error("spec: root.path {0:?} is not absolute")]
    RelativeRoot(String),
    #[error("process.capabilities.{field}: unknown capability {name:?}")]
    UnknownCapability { field: &'static str, name: String },
    #[error("process.rlimits[{index}].type {kind:?} is not a resource limit")]
    UnknownRlimit { index: usize, kind: String },
    #[error("process.rlimits[{index}]: soft {soft} is above hard {hard}")]
    RlimitOrder { index: usize, soft: u64, hard: u64 },
}

/// A host call of the sandbox's own isolation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct IsolationError {
    pub what: String,
    #[source]
    pub source: io::Error,
}

/// A mount (or device, or covered path) the container cannot have.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("{field} {path:?} is not absolute")]
    Relative { field: String, path: String },
    #[error("{field} {path:?} contains \"..\"")]
    DotDot { field: String, path: String },
    #[error("{field}: mode={mode} is not an octal mode")]
    TmpfsMode { field: String, mode: String },
    #[error("{0}.source is missing")]
    NoSource(String),
    #[error("mounts from the gofer: {0}")]
    Receive(#[source] control::ControlError),
    #[error("mounts from the gofer: {0} came with the wrong descriptors")]
    WrongDescriptors(String),
    #[error("mounts from the gofer: the root did not come first")]
    RootNotFirst,
    #[error("mounts from the gofer: no root")]
    NoRoot,
    /// What the gofer reported.
    #[error("{0}")]
    Gofer(String),
    #[error("root filesystem: {}", errno_text(*.0))]
    RootFs(Errno),
    #[error("mount at {destination}: {}", errno_text(*.errno))]
    MountAt { destination: String, errno: Errno },
    #[error("linux.devices[{index}].type {kind:?} is not c, u, b or p")]
    DeviceType { index: usize, kind: String },
    #[error("linux.devices[{index}] {path:?}: {}", errno_text(*.errno))]
    Device { index: usize, path: String, errno: Errno },
    #[error("linux.{field}[{index}] {path:?}: {}", errno_text(*.errno))]
    Cover { field: &'static str, index: usize, path: String, errno: Errno },
}

/// What the gofer could not prepare.
#[derive(Debug, thiserror::Error)]
pub enum GoferError {
    #[error(transparent)]
    Args(#[from] ArgsError),
    #[error(transparent)]
    NotOpen(#[from] NotOpen),
    #[error("reading the spec: {0}")]
    ReadSpec(#[source] io::Error),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Mount(#[from] MountError),
    /// The root or a bind mount's source: the field, the path, strerror.
    #[error("{field} {path:?}: {why}")]
    Source { field: String, path: String, why: String },
    #[error("mounts[{index}].source {path:?} is neither a directory nor a regular file")]
    NotDirOrFile { index: usize, path: String },
    #[error("sending mounts to the sentry: {0}")]
    Send(#[source] control::ControlError),
}

/// What a control request was refused for.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("container {0:?} does not exist in the sandbox")]
    NoContainer(String),
    #[error("container {0:?} already exists in the sandbox")]
    ContainerExists(String),
    #[error("container already created")]
    AlreadyCreated,
    #[error("container is not created or already started")]
    NotCreated,
    #[error("no added container {0:?} in the sandbox")]
    NoAddedContainer(String),
    #[error("exec needs 3 stdio descriptors, got {0}")]
    ExecStdio(usize),
    #[error("exec: process.args is empty")]
    ExecNoArgs,
    #[error("createContainer needs 4 descriptors (stdin, stdout, stderr, gofer socket), got {0}")]
    PodDescriptors(usize),
    #[error("process.args is empty")]
    NoArgs,
    #[error("process.cwd {0:?} is not absolute")]
    RelativeCwd(String),
    #[error("control descriptor is not a socket: {0}")]
    NotSocket(#[source] io::Error),
    #[error("control socket has unsupported type {0}")]
    SocketType(i32),
    #[error("control socket: {0}")]
    Accept(#[source] io::Error),
    #[error("spawning {what}: {source}")]
    Thread { what: &'static str, source: io::Error },
}

/// Why the sandbox did not boot.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Args(#[from] ArgsError),
    #[error(transparent)]
    NotOpen(#[from] NotOpen),
    #[error(transparent)]
    Isolation(#[from] IsolationError),
    #[error("parent exited before the sandbox started")]
    ParentExited,
    #[error("--net-links: {0}")]
    NetLinks(#[source] serde_json::Error),
    #[error("--net-links names {links} links but --net-fds gives {fds} descriptors")]
    NetLinkCount { links: usize, fds: usize },
    #[error("reading the spec: {0}")]
    ReadSpec(#[source] io::Error),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("memory file: {0}")]
    MemoryFile(#[source] memfile::MemFileError),
    /// No platform could be built (the reason names it).
    #[error("{0}")]
    Platform(String),
    #[error("privileges must be dropped before any thread starts ({0} threads)")]
    Threads(usize),
    #[error("seccomp filter: {0}")]
    SeccompFilter(#[source] seccomp::Error),
    #[error("installing the seccomp filter: {0}")]
    SeccompInstall(#[source] seccomp::Error),
    #[error("spawning the signal thread: {0}")]
    SignalThread(#[source] io::Error),
    #[error(transparent)]
    Server(#[from] ServerError),
}
