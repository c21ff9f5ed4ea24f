//! The `veil.node` addon: the few host operations the TypeScript control
//! plane cannot do from JavaScript (donating file descriptors to a child,
//! blocking on the control socket or on `waitpid` without freezing Node).
//!
//! Blocking calls are napi `AsyncTask`s: they run on the libuv thread pool
//! and settle a Promise on the JavaScript thread.

#![warn(clippy::undocumented_unsafe_blocks)]

mod console;
mod control_socket;
mod gofer;
mod lock;
mod namespaces;
mod network;
mod process;
mod spawn;

pub use console::{open_pty, send_console, Pty};
pub use control_socket::{close_fd, control_call, control_connect, control_recv, control_send};
pub use lock::lock_file;
pub use process::{kill, wait_pid, ExitStatus};
pub use spawn::{spawn_sandbox, SpawnOptions, SpawnedSandbox};

/// Turns any displayable error into the `Error` a JavaScript caller sees.
pub(crate) fn js_error(what: impl std::fmt::Display) -> napi::Error {
    napi::Error::from_reason(what.to_string())
}
