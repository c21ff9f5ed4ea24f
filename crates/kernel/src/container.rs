//! Containers of a pod and the PID namespaces they run in.
//!
//! One sandbox runs every container of a pod (the CRI's sandbox, or "pause",
//! container first). Each container has its own mount tree (a [`Vfs`] of
//! its own root filesystem with its own /proc, /dev and /sys) and its own
//! init process, whose exit is the container's exit; it runs either in the
//! sandbox's root PID namespace or, when its spec asks for one, in a PID
//! namespace of its own where its init is pid 1.
//!
//! Pids: the process tree is keyed by *global* pids (the root namespace's,
//! which are also what the control server reports). A process in a child
//! namespace also has a pid inside it; [`PidMaps`] holds both directions.
//! Only one level of nesting exists: applications cannot make namespaces.

use crate::fs::Vfs;
use crate::task::ExitStatus;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// A PID namespace; [`ROOT_PIDNS`] is the sandbox's own.
pub type PidNs = u32;
pub const ROOT_PIDNS: PidNs = 0;

pub struct Container {
    /// The OCI id; empty for the sandbox's root container.
    pub id: String,
    /// Its mount namespace.
    pub vfs: Arc<Vfs>,
    pub pidns: PidNs,
    /// Global pid of its init, 0 until it is created.
    init: AtomicI32,
    exit: Mutex<Option<ExitStatus>>,
    exited: Condvar,
    /// The credentials its spec gives its init: what `exec` runs with.
    pub(crate) spec_creds: Mutex<crate::creds::Creds>,
    /// Its process.oomScoreAdj (see /proc/PID/oom_score_adj).
    pub oom_score_adj: AtomicI32,
    /// Unimplemented system calls its processes made, by number: how often.
    unsupported: Mutex<BTreeMap<usize, u64>>,
}

impl Container {
    pub fn new(id: &str, vfs: Arc<Vfs>, pidns: PidNs) -> Arc<Container> {
        Arc::new(Container { id: id.into(), vfs, pidns, init: AtomicI32::new(0), exit: Mutex::new(None), exited: Condvar::new(), spec_creds: Mutex::default(), oom_score_adj: AtomicI32::new(0), unsupported: Mutex::default() })
    }

    pub fn is_root(&self) -> bool {
        self.id.is_empty()
    }

    /// The credentials of the container's process spec (see `spec_creds`).
    pub fn spec_creds(&self) -> crate::creds::Creds {
        self.spec_creds.lock().unwrap().clone()
    }

    pub fn init(&self) -> i32 {
        self.init.load(Ordering::SeqCst)
    }

    pub(crate) fn count_unsupported(&self, nr: usize) {
        *self.unsupported.lock().unwrap().entry(nr).or_insert(0) += 1;
    }

    /// The unimplemented system calls its processes made, by number, with
    /// how often each was made.
    pub fn unsupported_calls(&self) -> Vec<(usize, u64)> {
        self.unsupported.lock().unwrap().iter().map(|(&nr, &n)| (nr, n)).collect()
    }

    pub(crate) fn set_init(&self, pid: i32) {
        self.init.store(pid, Ordering::SeqCst);
    }

    /// How its init ended, once it has.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.lock().unwrap()
    }

    pub(crate) fn set_exited(&self, status: ExitStatus) {
        let mut e = self.exit.lock().unwrap();
        e.get_or_insert(status);
        self.exited.notify_all();
    }

    /// Blocks until its init has exited.
    pub fn wait(&self) -> ExitStatus {
        let mut e = self.exit.lock().unwrap();
        loop {
            if let Some(st) = *e {
                return st;
            }
            e = self.exited.wait(e).unwrap();
        }
    }
}

/// Pids inside the child PID namespaces, both ways. Entries stay until
/// their global pid is handed out again, so a process group whose leader
/// has gone keeps its number.
#[derive(Default)]
pub struct PidMaps {
    local: BTreeMap<i32, (PidNs, i32)>,
    global: BTreeMap<(PidNs, i32), i32>,
    next: BTreeMap<PidNs, i32>,
}

impl PidMaps {
    /// Records that the new global pid `pid` lives in `ns`; returns its pid
    /// there. `in_use` says whether a global pid still names something.
    pub fn assign(&mut self, pid: i32, ns: PidNs, in_use: impl Fn(i32) -> bool) -> i32 {
        // A previous holder of this global number is forgotten.
        if let Some(old) = self.local.remove(&pid) {
            if self.global.get(&old) == Some(&pid) {
                self.global.remove(&old);
            }
        }
        if ns == ROOT_PIDNS {
            return pid;
        }
        let next = self.next.entry(ns).or_insert(0);
        let local = loop {
            *next = if *next >= 4_194_304 { 1 } else { *next + 1 };
            match self.global.get(&(ns, *next)) {
                Some(&g) if in_use(g) => continue,
                Some(&g) => {
                    self.local.remove(&g);
                    break *next;
                }
                None => break *next,
            }
        };
        self.local.insert(pid, (ns, local));
        self.global.insert((ns, local), pid);
        local
    }

    /// `pid` (global) as seen from `ns`: 0 when it is outside `ns`.
    pub fn to_ns(&self, ns: PidNs, pid: i32) -> i32 {
        if ns == ROOT_PIDNS || pid <= 0 {
            return pid;
        }
        match self.local.get(&pid) {
            Some(&(n, l)) if n == ns => l,
            _ => 0,
        }
    }

    /// The global pid `local` names in `ns`.
    pub fn from_ns(&self, ns: PidNs, local: i32) -> Option<i32> {
        if ns == ROOT_PIDNS {
            return Some(local);
        }
        self.global.get(&(ns, local)).copied()
    }

    /// The namespace a global pid was handed out in.
    pub fn ns_of(&self, pid: i32) -> PidNs {
        self.local.get(&pid).map(|&(n, _)| n).unwrap_or(ROOT_PIDNS)
    }

    /// Whether `pid` (global) is visible from `ns`.
    pub fn visible(&self, ns: PidNs, pid: i32) -> bool {
        ns == ROOT_PIDNS || self.to_ns(ns, pid) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_namespace_numbers_from_one() {
        let mut m = PidMaps::default();
        assert_eq!(m.assign(1, ROOT_PIDNS, |_| true), 1);
        assert_eq!(m.assign(2, 7, |_| true), 1);
        assert_eq!(m.assign(3, 7, |_| true), 2);
        assert_eq!(m.to_ns(7, 3), 2);
        assert_eq!(m.to_ns(7, 1), 0, "the root's processes are invisible inside");
        assert_eq!(m.to_ns(ROOT_PIDNS, 3), 3, "the root sees everything by its global pid");
        assert_eq!(m.from_ns(7, 1), Some(2));
        assert_eq!(m.from_ns(7, 9), None);
        assert!(m.visible(7, 2) && !m.visible(7, 1) && m.visible(ROOT_PIDNS, 2));
        assert_eq!(m.ns_of(3), 7);
    }

    #[test]
    fn reused_global_pid_forgets_its_old_name() {
        let mut m = PidMaps::default();
        m.assign(5, 3, |_| true);
        // Global 5 exits and is handed out again in the root namespace.
        m.assign(5, ROOT_PIDNS, |_| false);
        assert_eq!(m.to_ns(3, 5), 0);
        assert_eq!(m.from_ns(3, 1), None);
    }
}
