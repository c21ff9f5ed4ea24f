//! `veil-sandbox seccomp-check allowed|forbidden` (hidden, for tests):
//! installs the sentry's real seccomp filter (its own list, without a
//! platform's additions) as `boot` does, then makes one host system call — `getpid`, which the list allows, or
//! `socket`, which it does not and which must kill the process with SIGSYS
//! before it returns.

pub fn run(args: &[String]) -> Result<(), String> {
    let forbidden = match args.first().map(String::as_str) {
        Some("allowed") => false,
        Some("forbidden") => true,
        _ => return Err("expected \"allowed\" or \"forbidden\"".into()),
    };
    let filter = seccomp::sentry_filter(&[]).map_err(|e| format!("seccomp filter: {e}"))?;
    seccomp::install(&filter).map_err(|e| format!("installing the seccomp filter: {e}"))?;
    // SAFETY: plain system calls with integer arguments.
    let r = unsafe {
        if forbidden {
            libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0)
        } else {
            libc::syscall(libc::SYS_getpid)
        }
    };
    println!("survived: the call returned {r}");
    Ok(())
}
