//! `veil-sandbox`: the sandbox process.
//!
//! `veil-sandbox boot …` builds the sentry from the spec and serves the
//! control socket; `veil-sandbox syscalls` prints the syscall support table.

mod args;
mod boot;
mod platforms;
mod server;
mod spec;

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match argv.first().map(String::as_str) {
        Some("boot") => match args::BootArgs::parse(&argv[1..]).and_then(boot::run) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("veil-sandbox: {e}");
                ExitCode::from(125)
            }
        },
        Some("syscalls") => {
            print!("{}", kernel::syscalls::report());
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: veil-sandbox boot --control-fd N --spec-fd N --stdio-fds I,O,E [--platform auto|kvm|ptrace] [--strace] [--debug] [--die-with-parent] [--exit-with-init] [--cpus N] [--total-memory BYTES] [--max-tasks N]\n       veil-sandbox syscalls");
            ExitCode::from(2)
        }
    }
}
