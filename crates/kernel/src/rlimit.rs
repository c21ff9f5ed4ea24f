//! Resource limits (getrlimit(2)): kept per process, inherited by fork and
//! kept across execve. The sentry enforces RLIMIT_NOFILE (the descriptor
//! table's limit follows it); RLIMIT_NPROC is reported while the sandbox's
//! task limit is what is enforced; the others are recorded only.

use abi::types::Rlimit;
use abi::Errno;
use crate::SysResult;

pub const RLIM_INFINITY: u64 = u64::MAX;
/// RLIM_NLIMITS.
pub const COUNT: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits([Rlimit; COUNT]);

impl Limits {
    /// Linux's defaults for a process started by the sandbox, with
    /// `nproc` tasks at most.
    pub fn new(nproc: u64) -> Limits {
        let inf = Rlimit { cur: RLIM_INFINITY, max: RLIM_INFINITY };
        let mut l = [inf; COUNT];
        let mut set = |r: u32, cur: u64, max: u64| l[r as usize] = Rlimit { cur, max };
        set(libc::RLIMIT_NOFILE, 1024, 1024);
        set(libc::RLIMIT_STACK, crate::mm::STACK_SIZE, RLIM_INFINITY);
        set(libc::RLIMIT_NPROC, nproc, nproc);
        set(libc::RLIMIT_CORE, 0, RLIM_INFINITY);
        set(libc::RLIMIT_MEMLOCK, 8 << 20, 8 << 20);
        set(libc::RLIMIT_SIGPENDING, 63_000, 63_000);
        set(libc::RLIMIT_MSGQUEUE, 819_200, 819_200);
        set(libc::RLIMIT_NICE, 0, 0);
        set(libc::RLIMIT_RTPRIO, 0, 0);
        Limits(l)
    }

    pub fn get(&self, resource: u32) -> SysResult<Rlimit> {
        self.0.get(resource as usize).copied().ok_or(Errno::EINVAL)
    }

    /// setrlimit(2)'s rules: soft at most hard; raising the hard limit
    /// needs CAP_SYS_RESOURCE (`may_raise`); RLIMIT_NOFILE is capped at
    /// nr_open (1048576).
    pub fn set(&mut self, resource: u32, new: Rlimit, may_raise: bool) -> SysResult<()> {
        let old = self.get(resource)?;
        if new.cur > new.max {
            return Err(Errno::EINVAL);
        }
        if new.max > old.max && !may_raise {
            return Err(Errno::EPERM);
        }
        if resource == libc::RLIMIT_NOFILE && new.max > NR_OPEN {
            return Err(Errno::EPERM);
        }
        self.0[resource as usize] = new;
        Ok(())
    }

    /// Sets `resource` as a spec says, with no checks but soft <= hard.
    pub fn force(&mut self, resource: u32, new: Rlimit) -> Result<(), RlimitError> {
        if resource as usize >= COUNT {
            return Err(RlimitError::NoSuchResource(resource));
        }
        if new.cur > new.max {
            return Err(RlimitError::SoftAboveHard { soft: new.cur, hard: new.max });
        }
        self.0[resource as usize] = new;
        Ok(())
    }
}

/// Why a spec's limit cannot be set.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RlimitError {
    #[error("resource {0} does not exist")]
    NoSuchResource(u32),
    #[error("soft limit {soft} is above the hard limit {hard}")]
    SoftAboveHard { soft: u64, hard: u64 },
}

/// /proc/sys/fs/nr_open: the most descriptors a process may have.
pub const NR_OPEN: u64 = 1 << 20;

/// The resource an OCI spec names ("RLIMIT_NOFILE").
pub fn by_name(name: &str) -> Option<u32> {
    const NAMES: [&str; COUNT] = [
        "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
    ];
    let bare = name.strip_prefix("RLIMIT_")?;
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setrlimit_rules() {
        let mut l = Limits::new(100);
        assert_eq!(l.get(libc::RLIMIT_NPROC).unwrap(), Rlimit { cur: 100, max: 100 });
        let nofile = libc::RLIMIT_NOFILE;
        assert_eq!(l.set(nofile, Rlimit { cur: 10, max: 20 }, false), Ok(()));
        assert_eq!(l.set(nofile, Rlimit { cur: 10, max: 30 }, false), Err(Errno::EPERM), "raising the hard limit is privileged");
        assert_eq!(l.set(nofile, Rlimit { cur: 30, max: 20 }, true), Err(Errno::EINVAL));
        assert_eq!(l.set(nofile, Rlimit { cur: 10, max: 30 }, true), Ok(()));
        assert_eq!(l.get(16), Err(Errno::EINVAL));
        assert_eq!(by_name("RLIMIT_NOFILE"), Some(nofile));
        assert_eq!(by_name("RLIMIT_NOPE"), None);
    }
}
