//! Signal numbers, names and default actions.

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGUSR1: i32 = 10;
pub const SIGSEGV: i32 = 11;
pub const SIGUSR2: i32 = 12;
pub const SIGPIPE: i32 = 13;
pub const SIGALRM: i32 = 14;
pub const SIGTERM: i32 = 15;
pub const SIGSTKFLT: i32 = 16;
pub const SIGCHLD: i32 = 17;
pub const SIGCONT: i32 = 18;
pub const SIGSTOP: i32 = 19;
pub const SIGTSTP: i32 = 20;
pub const SIGTTIN: i32 = 21;
pub const SIGTTOU: i32 = 22;
pub const SIGURG: i32 = 23;
pub const SIGXCPU: i32 = 24;
pub const SIGXFSZ: i32 = 25;
pub const SIGVTALRM: i32 = 26;
pub const SIGPROF: i32 = 27;
pub const SIGWINCH: i32 = 28;
pub const SIGIO: i32 = 29;
pub const SIGPWR: i32 = 30;
pub const SIGSYS: i32 = 31;
pub const SIGRTMIN: i32 = 32;
pub const SIGRTMAX: i32 = 64;
pub const NSIG: i32 = 64;

const NAMES: [&str; 32] = [
    "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU",
    "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// `SIGTERM` → "SIGTERM"; real-time signals as `SIGRT<n>`.
pub fn name(signo: i32) -> String {
    match signo {
        1..=31 => format!("SIG{}", NAMES[signo as usize]),
        32..=64 => format!("SIGRT{}", signo - 32),
        _ => format!("signal {signo}"),
    }
}

/// Parses "TERM", "SIGTERM", "sigterm" or "15".
pub fn parse(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=NSIG).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let bare = up.strip_prefix("SIG").unwrap_or(&up);
    NAMES.iter().position(|n| !n.is_empty() && *n == bare).map(|i| i as i32)
}

/// What happens to a process that receives a signal it has not caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    CoreDump,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(signo: i32) -> DefaultAction {
    use DefaultAction::*;
    match signo {
        SIGCHLD | SIGURG | SIGWINCH => Ignore,
        SIGCONT => Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ | SIGSYS => {
            CoreDump
        }
        _ => Terminate,
    }
}

/// A set of signals, bit `n-1` for signal `n`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigSet(pub u64);

impl SigSet {
    pub const fn bit(signo: i32) -> u64 {
        1u64 << (signo - 1)
    }
    pub fn contains(self, signo: i32) -> bool {
        self.0 & Self::bit(signo) != 0
    }
    pub fn add(&mut self, signo: i32) {
        self.0 |= Self::bit(signo);
    }
    pub fn remove(&mut self, signo: i32) {
        self.0 &= !Self::bit(signo);
    }
    /// SIGKILL and SIGSTOP can never be blocked.
    pub fn blockable(self) -> SigSet {
        SigSet(self.0 & !(Self::bit(SIGKILL) | Self::bit(SIGSTOP)))
    }
    /// The lowest-numbered signal in the set (Linux delivers in that order).
    pub fn first(self) -> Option<i32> {
        (self.0 != 0).then(|| self.0.trailing_zeros() as i32 + 1)
    }
}

pub mod code {
    //! `si_code` values.
    pub const SI_USER: i32 = 0;
    pub const SI_KERNEL: i32 = 0x80;
    pub const SI_QUEUE: i32 = -1;
    pub const SI_TIMER: i32 = -2;
    pub const SI_TKILL: i32 = -6;
    pub const SEGV_MAPERR: i32 = 1;
    pub const SEGV_ACCERR: i32 = 2;
    pub const CLD_EXITED: i32 = 1;
    pub const CLD_KILLED: i32 = 2;
    pub const CLD_DUMPED: i32 = 3;
    pub const CLD_TRAPPED: i32 = 4;
    pub const CLD_STOPPED: i32 = 5;
    pub const CLD_CONTINUED: i32 = 6;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in 1..32 {
            assert_eq!(parse(&name(s)), Some(s));
        }
        assert_eq!(parse("term"), Some(SIGTERM));
        assert_eq!(parse("9"), Some(SIGKILL));
        assert_eq!(parse("NOPE"), None);
        assert_eq!(parse("65"), None);
    }

    #[test]
    fn sigset_orders_and_protects() {
        let mut s = SigSet::default();
        s.add(SIGTERM);
        s.add(SIGINT);
        assert_eq!(s.first(), Some(SIGINT));
        let mut all = SigSet(!0);
        all = all.blockable();
        assert!(!all.contains(SIGKILL) && !all.contains(SIGSTOP) && all.contains(SIGTERM));
    }
}
