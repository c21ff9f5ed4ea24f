//! Terminals: the line discipline, pseudo-terminal pairs (served by devpts,
//! `fs/devpts.rs`) and controlling terminals with job control.

pub mod ldisc;
pub mod session;
pub mod terminal;
pub mod termios;

pub use session::{open_controlling, session_leader_exited};
pub use terminal::{MasterFile, ReplicaFile, Terminal};
