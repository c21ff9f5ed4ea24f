//! The system call table: one entry per implemented call, each a name, a
//! handler and a support level, gathered from one module per family. The
//! table also produces the `veil syscalls` report, so the report cannot
//! drift from what the sentry serves.

use crate::task::TaskCtx;
use crate::SysResult;
use abi::{Errno, NR_SYSCALLS, SYSCALL_NAMES};
use std::sync::OnceLock;

pub mod sys_process;
pub mod sys_mm;
pub mod sys_signal;
pub mod sys_misc;
pub mod sys_read_write;
pub mod sys_file;
pub mod sys_pipe;
pub mod sys_futex;
pub mod sys_timer;
pub mod sys_fd;
pub mod sys_fs_write;
pub mod sys_socket;
pub mod sys_epoll;
pub mod sys_eventfd;
pub mod sys_timerfd;
pub mod sys_signalfd;
pub mod sys_select;
pub mod sys_sched;
pub mod strace;

pub type Args = [u64; 6];
pub type Handler = fn(&mut TaskCtx, &Args) -> SysResult<u64>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    Full,
    /// Implemented with the limits the note describes.
    Partial(&'static str),
}

/// How `--strace` prints an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Signed decimal.
    Int,
    /// Hexadecimal (flags, addresses).
    Hex,
    /// A NUL-terminated string read from application memory.
    Str,
}

#[derive(Clone, Copy)]
pub struct Entry {
    pub nr: usize,
    pub handler: Handler,
    pub support: Support,
    pub args: &'static [Arg],
}

/// Declares a table entry: `sys!(READ, sys_read, [Int, Hex, Int])`, with an
/// optional `partial "note"`.
#[macro_export]
macro_rules! sys {
    ($nr:ident, $h:path, [$($a:ident),*]) => {
        $crate::syscalls::Entry { nr: abi::syscalls::nr::$nr, handler: $h, support: $crate::syscalls::Support::Full, args: &[$($crate::syscalls::Arg::$a),*] }
    };
    ($nr:ident, $h:path, [$($a:ident),*], partial $note:expr) => {
        $crate::syscalls::Entry { nr: abi::syscalls::nr::$nr, handler: $h, support: $crate::syscalls::Support::Partial($note), args: &[$($crate::syscalls::Arg::$a),*] }
    };
}

/// Every family's table; a new family adds one line here.
fn families() -> Vec<&'static [Entry]> {
    vec![
        sys_process::SYSCALLS,
        sys_mm::SYSCALLS,
        sys_signal::SYSCALLS,
        sys_misc::SYSCALLS,
        sys_read_write::SYSCALLS,
        sys_file::SYSCALLS,
        sys_pipe::SYSCALLS,
        sys_futex::SYSCALLS,
        sys_timer::SYSCALLS,
        sys_fd::SYSCALLS,
        sys_fs_write::SYSCALLS,
        sys_socket::SYSCALLS,
        sys_epoll::SYSCALLS,
        sys_eventfd::SYSCALLS,
        sys_timerfd::SYSCALLS,
        sys_signalfd::SYSCALLS,
        sys_select::SYSCALLS,
        sys_sched::SYSCALLS,
    ]
}

/// The table indexed by number.
pub fn table() -> &'static [Option<Entry>] {
    static TABLE: OnceLock<Vec<Option<Entry>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t: Vec<Option<Entry>> = vec![None; NR_SYSCALLS];
        for fam in families() {
            for e in fam {
                assert!(t[e.nr].is_none(), "system call {} declared twice", SYSCALL_NAMES[e.nr]);
                t[e.nr] = Some(*e);
            }
        }
        t
    })
}

pub fn name(nr: usize) -> &'static str {
    SYSCALL_NAMES.get(nr).copied().filter(|n| !n.is_empty()).unwrap_or("unknown")
}

/// One line per x86-64 system call: number, name, support level.
pub fn report() -> String {
    let mut out = String::new();
    let t = table();
    for (nr, name) in SYSCALL_NAMES.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        let level = match t[nr].map(|e| e.support) {
            Some(Support::Full) => "supported".to_string(),
            Some(Support::Partial(note)) => format!("partial: {note}"),
            None => "ENOSYS".to_string(),
        };
        out.push_str(&format!("{nr:>3}  {name:<24} {level}\n"));
    }
    out
}

/// Runs the system call the task stopped at and returns what to put in rax
/// (or an errno, including the ERESTART* family the signal code resolves).
pub fn dispatch(t: &mut TaskCtx) -> SysResult<u64> {
    let nr = t.cpu.regs.orig_rax as usize;
    let args = t.cpu.regs.syscall_args();
    let entry = table().get(nr).copied().flatten();
    let strace = t.kernel().config.strace;
    let prefix = if strace { Some(strace::enter(t, nr, entry.as_ref(), &args)) } else { None };
    let result = match entry {
        Some(e) => (e.handler)(t, &args),
        None => {
            t.kernel().report_unsupported(nr);
            Err(Errno::ENOSYS)
        }
    };
    if let Some(p) = prefix {
        strace::exit(t, p, &result);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_builds_without_duplicates_and_names_match() {
        let t = table();
        let mut n = 0;
        for (nr, e) in t.iter().enumerate() {
            if let Some(e) = e {
                assert_eq!(e.nr, nr);
                assert!(!SYSCALL_NAMES[nr].is_empty());
                n += 1;
            }
        }
        assert!(n > 20);
        let r = report();
        assert!(r.contains("getppid") && r.contains("ENOSYS"));
    }
}
