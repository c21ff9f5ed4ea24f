//! The shape of a system call table: one entry per implemented call, each
//! a name, a handler and a support level, indexed by number. The kernel
//! holds one table as a value ([`crate::KernelConfig::syscalls`]) and each
//! task reaches it through its kernel, so the core never names the
//! handler modules; the handlers (in [`crate::syscalls`]) build the table.
//! The table also produces the `veil syscalls` report, so the report
//! cannot drift from what the sentry serves.

use crate::task::TaskCtx;
use crate::SysResult;
use abi::{Errno, NR_SYSCALLS, SYSCALL_NAMES};

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
        $crate::syscall_table::Entry { nr: abi::syscalls::nr::$nr, handler: $h, support: $crate::syscall_table::Support::Full, args: &[$($crate::syscall_table::Arg::$a),*] }
    };
    ($nr:ident, $h:path, [$($a:ident),*], partial $note:expr) => {
        $crate::syscall_table::Entry { nr: abi::syscalls::nr::$nr, handler: $h, support: $crate::syscall_table::Support::Partial($note), args: &[$($crate::syscall_table::Arg::$a),*] }
    };
}

/// Every system call of one ABI, indexed by number.
pub struct SyscallTable {
    entries: Vec<Option<Entry>>,
}

impl std::fmt::Debug for SyscallTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SyscallTable({} calls)", self.entries.iter().flatten().count())
    }
}

impl SyscallTable {
    /// Gathers the families' entries; a number declared twice is a bug.
    pub fn new(families: &[&[Entry]]) -> SyscallTable {
        let mut entries: Vec<Option<Entry>> = vec![None; NR_SYSCALLS];
        for fam in families {
            for e in *fam {
                assert!(entries[e.nr].is_none(), "system call {} declared twice", SYSCALL_NAMES[e.nr]);
                entries[e.nr] = Some(*e);
            }
        }
        SyscallTable { entries }
    }

    /// The entry for number `nr`, if the sentry serves it.
    pub fn get(&self, nr: usize) -> Option<&Entry> {
        self.entries.get(nr).and_then(|e| e.as_ref())
    }

    /// Every number with what serves it (None: ENOSYS).
    pub fn entries(&self) -> &[Option<Entry>] {
        &self.entries
    }

    /// One line per x86-64 system call: number, name, support level.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for (nr, name) in SYSCALL_NAMES.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            let level = match self.get(nr).map(|e| e.support) {
                Some(Support::Full) => "supported".to_string(),
                Some(Support::Partial(note)) => format!("partial: {note}"),
                None => "ENOSYS".to_string(),
            };
            out.push_str(&format!("{nr:>3}  {name:<24} {level}\n"));
        }
        out
    }

    /// Runs the system call the task stopped at and returns what to put in
    /// rax (or an errno, including the ERESTART* family the signal code
    /// resolves).
    pub fn dispatch(&self, t: &mut TaskCtx) -> SysResult<u64> {
        let nr = t.cpu.regs.orig_rax as usize;
        let args = t.cpu.regs.syscall_args();
        let entry = self.get(nr).copied();
        let strace = t.kernel().config.strace;
        let prefix = if strace { Some(crate::strace::enter(t, nr, entry.as_ref(), &args)) } else { None };
        let result = match entry {
            Some(e) => (e.handler)(t, &args),
            None => {
                t.kernel().report_unsupported(&t.task.tg.container, nr);
                Err(Errno::ENOSYS)
            }
        };
        if let Some(p) = prefix {
            crate::strace::exit(t, p, &result);
        }
        result
    }
}

/// The name of system call `nr` ("unknown" past the known ones).
pub fn name(nr: usize) -> &'static str {
    SYSCALL_NAMES.get(nr).copied().filter(|n| !n.is_empty()).unwrap_or("unknown")
}
