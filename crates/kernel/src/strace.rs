//! `--strace`: each application system call with its arguments and the
//! result the sentry served, one line on the sandbox's log (stderr).

use crate::syscall_table::{name, Arg, Args, Entry};
use crate::task::TaskCtx;
use crate::SysResult;
use std::fmt::Write;

fn quote(s: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in s.iter().take(64) {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    if s.len() > 64 {
        out.push_str("...");
    }
    out
}

/// Formats the call on entry (strings must be read before the call runs:
/// execve replaces the memory they live in).
pub fn enter(t: &TaskCtx, nr: usize, entry: Option<&Entry>, args: &Args) -> String {
    let kinds: &[Arg] = entry.map(|e| e.args).unwrap_or(&[Arg::Hex; 6]);
    let mut s = format!("[{:>4}] {}(", t.tid(), name(nr));
    for (i, k) in kinds.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let v = args[i];
        match k {
            Arg::Int => {
                let _ = write!(s, "{}", v as i64);
            }
            Arg::Hex => {
                let _ = write!(s, "{v:#x}");
            }
            Arg::Str => match t.read_cstr(v, 4096) {
                Ok(b) => s.push_str(&quote(&b)),
                Err(_) => {
                    let _ = write!(s, "{v:#x}");
                }
            },
        }
    }
    s.push(')');
    s
}

pub fn exit(t: &TaskCtx, prefix: String, result: &SysResult<u64>) {
    let line = match result {
        Ok(v) if (*v as i64) < 0x10000 && (*v as i64) > -0x10000 => format!("{prefix} = {}", *v as i64),
        Ok(v) => format!("{prefix} = {v:#x}"),
        Err(e) => format!("{prefix} = -1 {} ({})", e.name(), e.0),
    };
    t.kernel().log_line(&line);
}
