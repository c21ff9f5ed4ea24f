//! `veil-sandbox`: the sandbox process.
//!
//! `veil-sandbox boot …` builds the sentry from the spec and serves the
//! control socket; `veil-sandbox gofer …` prepares a container's mounts for
//! it; `veil-sandbox syscalls` prints the syscall support table;
//! `veil-sandbox platform NAME` builds platform NAME as `boot` would and
//! prints the one chosen (or why none can be, exit status 125);
//! `veil-sandbox platforms` lists the names `--platform` accepts.

#![warn(clippy::undocumented_unsafe_blocks)]

mod args;
mod boot;
mod error;
mod gofer;
mod isolation;
mod log;
mod mounts;
mod platforms;
mod pod;
mod seccomp_check;
mod server;
mod spec;

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        eprintln!("veil-sandbox{what}: {e}");
        ExitCode::from(125)
    };
    match argv.first().map(String::as_str) {
        Some("boot") => match args::BootArgs::parse(&argv[1..]).map_err(error::BootError::from).and_then(boot::run) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failed("", &e),
        },
        Some("gofer") => match gofer::GoferArgs::parse(&argv[1..]).map_err(error::GoferError::from).and_then(gofer::run) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failed(" gofer", &e),
        },
        Some("platform") if argv.len() == 2 => match platforms::probe(&argv[1]) {
            Ok(chosen) => {
                println!("{chosen}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(125)
            }
        },
        Some("platforms") if argv.len() == 1 => {
            for name in platform::registry::names() {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        Some("syscalls") => {
            print!("{}", kernel::syscalls::report());
            ExitCode::SUCCESS
        }
        // Hidden, for tests: the sentry's own filter, then one host call.
        Some("seccomp-check") => match seccomp_check::run(&argv[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failed(" seccomp-check", &e),
        },
        _ => {
            eprintln!("usage: veil-sandbox boot --control-fd N --spec-fd N --stdio-fds I,O,E --mounts-fd N [--setup-root] [--platform NAME] [--strace] [--debug] [--log-fd N] [--log-format text|json] [--die-with-parent] [--exit-with-init] [--cpus N] [--total-memory BYTES] [--max-tasks N]\n       veil-sandbox gofer --spec-fd N --mounts-fd N\n       veil-sandbox syscalls\n       veil-sandbox platforms\n       veil-sandbox platform NAME");
            ExitCode::from(2)
        }
    }
}
