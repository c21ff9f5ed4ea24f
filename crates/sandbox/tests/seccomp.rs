//! The sentry's seccomp filter, installed for real by the hidden
//! `veil-sandbox seccomp-check`: a host system call outside the allow-list
//! kills the process with SIGSYS, one on it does not.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

fn check(mode: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_veil-sandbox")).args(["seccomp-check", mode]).output().expect("running veil-sandbox")
}

#[test]
fn a_forbidden_host_call_kills_the_process_with_sigsys() {
    let out = check("forbidden");
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "status {:?}, stdout {:?}", out.status, String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty(), "the call returned: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn an_allowed_host_call_returns() {
    let out = check("allowed");
    assert!(out.status.success(), "status {:?}, stderr {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("survived"));
}
