//! The `boot` command line (the CLI's addon is its only caller).

use std::os::fd::RawFd;
use crate::error::ArgsError;

#[derive(Debug, Clone, PartialEq)]
pub struct BootArgs {
    pub control_fd: RawFd,
    pub spec_fd: RawFd,
    pub stdio_fds: [RawFd; 3],
    pub platform: String,
    pub strace: bool,
    pub debug: bool,
    pub die_with_parent: bool,
    /// Exit, with the init's status, once the container's init has exited:
    /// the process an engine (a subreaper) waits on must end with the init.
    pub exit_with_init: bool,
    /// CPUs and memory the container may use (from its cgroup): what
    /// `nproc` and /proc/meminfo show inside. `None`: the host's.
    pub cpus: Option<u32>,
    pub total_memory: Option<u64>,
    /// Most tasks at once (the cgroup's pids limit).
    pub max_tasks: Option<usize>,
    /// The gofer's socket, on which the container's mounts arrive.
    pub mounts_fd: RawFd,
    /// Pivot into an empty read-only root and drop privileges (the
    /// spawner made the namespaces this needs).
    pub setup_root: bool,
    /// Where the sandbox's own log goes (strace, unsupported system calls,
    /// debug lines); none without it, and never the application's stderr.
    pub log_fd: Option<RawFd>,
    /// The log as JSON lines (`{"level","msg","time"}`), as the CLI's
    /// `--log-format json` writes it.
    pub log_json: bool,
    /// The container namespace's links the sandbox's stack takes over
    /// (JSON, `control::network::TakenLink`s) and their packet sockets.
    pub net_links: Option<String>,
    pub net_fds: Vec<RawFd>,
}

pub(crate) fn fd(flag: &str, v: &str) -> Result<RawFd, ArgsError> {
    v.parse::<RawFd>().ok().filter(|&n| n >= 0).ok_or_else(|| ArgsError::NotFd { flag: flag.into(), value: v.into() })
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(flag: &str, v: &str) -> Result<T, ArgsError> {
    v.parse::<T>().ok().filter(|n| *n > T::default()).ok_or_else(|| ArgsError::NotPositive { flag: flag.into(), value: v.into() })
}

impl BootArgs {
    pub fn parse(args: &[String]) -> Result<BootArgs, ArgsError> {
        let mut control = None;
        let mut spec = None;
        let mut stdio = None;
        let mut mounts = None;
        let mut out = BootArgs {
            control_fd: -1,
            spec_fd: -1,
            stdio_fds: [-1; 3],
            platform: "auto".into(),
            strace: false,
            debug: false,
            die_with_parent: false,
            exit_with_init: false,
            cpus: None,
            total_memory: None,
            max_tasks: None,
            mounts_fd: -1,
            setup_root: false,
            log_fd: None,
            log_json: false,
            net_links: None,
            net_fds: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) => (f, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            let mut value = || inline.clone().or_else(|| it.next().cloned()).ok_or_else(|| ArgsError::NeedsValue(flag.into()));
            match flag {
                "--control-fd" => control = Some(fd(flag, &value()?)?),
                "--spec-fd" => spec = Some(fd(flag, &value()?)?),
                "--mounts-fd" => mounts = Some(fd(flag, &value()?)?),
                "--setup-root" => out.setup_root = true,
                "--net-links" => out.net_links = Some(value()?),
                "--net-fds" => out.net_fds = value()?.split(',').map(|n| fd(flag, n)).collect::<Result<_, _>>()?,
                "--stdio-fds" => {
                    let v = value()?;
                    let parts: Vec<&str> = v.split(',').collect();
                    if parts.len() != 3 {
                        return Err(ArgsError::StdioFds(v));
                    }
                    stdio = Some([fd(flag, parts[0])?, fd(flag, parts[1])?, fd(flag, parts[2])?]);
                }
                "--platform" => out.platform = value()?,
                "--log-fd" => out.log_fd = Some(fd(flag, &value()?)?),
                "--log-format" => {
                    out.log_json = match value()?.as_str() {
                        "text" => false,
                        "json" => true,
                        v => return Err(ArgsError::LogFormat(v.into())),
                    }
                }
                "--strace" => out.strace = true,
                "--debug" => out.debug = true,
                "--die-with-parent" => out.die_with_parent = true,
                "--exit-with-init" => out.exit_with_init = true,
                "--cpus" => out.cpus = Some(positive(flag, &value()?)?),
                "--total-memory" => out.total_memory = Some(positive(flag, &value()?)?),
                "--max-tasks" => out.max_tasks = Some(positive(flag, &value()?)?),
                other => return Err(ArgsError::UnknownFlag(other.into())),
            }
        }
        out.control_fd = control.ok_or(ArgsError::Required("--control-fd"))?;
        out.spec_fd = spec.ok_or(ArgsError::Required("--spec-fd"))?;
        out.stdio_fds = stdio.ok_or(ArgsError::Required("--stdio-fds"))?;
        out.mounts_fd = mounts.ok_or(ArgsError::Required("--mounts-fd"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_both_flag_forms() {
        let a = BootArgs::parse(&v("--control-fd 3 --spec-fd=4 --stdio-fds 5,6,7 --mounts-fd 8 --strace --setup-root")).unwrap();
        assert_eq!((a.control_fd, a.spec_fd, a.stdio_fds, a.mounts_fd, a.strace, a.setup_root), (3, 4, [5, 6, 7], 8, true, true));
        assert_eq!(a.platform, "auto");
        assert_eq!((a.cpus, a.total_memory, a.max_tasks), (None, None, None));
        let b = BootArgs::parse(&v("--control-fd 3 --spec-fd 4 --stdio-fds 5,6,7 --mounts-fd 8 --cpus 2 --total-memory=1048576 --max-tasks 10")).unwrap();
        assert_eq!((b.cpus, b.total_memory, b.max_tasks), (Some(2), Some(1 << 20), Some(10)));
        assert!(!b.exit_with_init);
        assert!(BootArgs::parse(&v("--control-fd 3 --spec-fd 4 --stdio-fds 5,6,7 --mounts-fd 8 --exit-with-init")).unwrap().exit_with_init);
        assert!(BootArgs::parse(&v("--control-fd 3 --spec-fd 4 --stdio-fds 5,6,7 --mounts-fd 8 --cpus 0")).unwrap_err().to_string().contains("--cpus"));
        let l = BootArgs::parse(&v("--control-fd 3 --spec-fd 4 --stdio-fds 5,6,7 --mounts-fd 8 --log-fd 9 --log-format json")).unwrap();
        assert_eq!((l.log_fd, l.log_json), (Some(9), true));
        assert_eq!((b.log_fd, b.log_json), (None, false));
        assert!(BootArgs::parse(&v("--control-fd 3 --spec-fd 4 --stdio-fds 5,6,7 --mounts-fd 8 --log-format xml")).unwrap_err().to_string().contains("--log-format"));
    }

    #[test]
    fn rejects_bad_input_naming_the_flag() {
        assert!(BootArgs::parse(&v("--spec-fd 4 --stdio-fds 5,6,7")).unwrap_err().to_string().contains("--control-fd"));
        assert!(BootArgs::parse(&v("--control-fd x --spec-fd 4 --stdio-fds 5,6,7")).unwrap_err().to_string().contains("--control-fd"));
        assert!(BootArgs::parse(&v("--control-fd 3 --spec-fd 4 --stdio-fds 5,6")).unwrap_err().to_string().contains("three"));
        assert!(BootArgs::parse(&v("--control-fd 3 --spec-fd 4 --stdio-fds 5,6,7 --bogus")).unwrap_err().to_string().contains("--bogus"));
        assert!(BootArgs::parse(&v("--control-fd 3 --spec-fd 4 --stdio-fds 5,6,7")).unwrap_err().to_string().contains("--mounts-fd"));
    }
}
