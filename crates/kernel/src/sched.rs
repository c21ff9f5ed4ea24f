//! A thread's scheduling attributes (nice value, policy, priority, CPU
//! affinity). The sentry keeps them with Linux's rules so programs that set
//! and read them behave as on Linux; the host scheduler runs every task
//! alike.

pub const SCHED_OTHER: u32 = 0;
pub const SCHED_FIFO: u32 = 1;
pub const SCHED_RR: u32 = 2;
pub const SCHED_BATCH: u32 = 3;
pub const SCHED_IDLE: u32 = 5;
/// A flag or'ed into the policy: the children get the default policy.
pub const SCHED_RESET_ON_FORK: u32 = 0x4000_0000;

/// A thread's scheduling attributes, inherited by the threads it creates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedAttrs {
    /// -20 (most favoured) ..= 19.
    pub nice: i32,
    pub policy: u32,
    /// 1..=99 for the real-time policies, 0 otherwise.
    pub priority: u32,
    /// The CPUs sched_setaffinity chose (bit n: CPU n); 0 for all of them.
    pub affinity: u64,
}

impl SchedAttrs {
    /// A new task's attributes: its parent's, unless the parent asked for
    /// SCHED_RESET_ON_FORK (then the default policy and no negative nice).
    pub fn inherited(self) -> SchedAttrs {
        if self.policy & SCHED_RESET_ON_FORK == 0 {
            return self;
        }
        SchedAttrs { nice: self.nice.max(0), ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_on_fork_gives_children_the_default_policy() {
        let rt = SchedAttrs { nice: -5, policy: SCHED_FIFO | SCHED_RESET_ON_FORK, priority: 10, affinity: 3 };
        assert_eq!(rt.inherited(), SchedAttrs::default());
        let plain = SchedAttrs { nice: -5, policy: SCHED_RR, priority: 10, affinity: 3 };
        assert_eq!(plain.inherited(), plain);
    }
}
