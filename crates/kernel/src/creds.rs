//! Credentials: a task's user and group ids, as Linux keeps them (real,
//! effective, saved, file-system) and the rules for changing them. A task
//! whose effective uid is 0 holds every capability inside the sandbox
//! (there are no finer-grained capabilities yet), and loses them with it.

use crate::SysResult;
use abi::Errno;

/// One kind of id (user or group) as a task holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
    /// What file accesses are checked with; follows `effective`.
    pub fs: u32,
}

/// An id argument of -1: "leave this one unchanged".
const KEEP: u32 = u32::MAX;

impl Ids {
    fn of(id: u32) -> Ids {
        Ids { real: id, effective: id, saved: id, fs: id }
    }

    fn current(&self, v: u32) -> bool {
        v == self.real || v == self.effective || v == self.saved
    }

    /// setuid(2)/setgid(2): privileged tasks set all four, others may only
    /// take back their real or saved id as effective.
    fn set(&mut self, v: u32, privileged: bool) -> SysResult<()> {
        if v == KEEP {
            return Err(Errno::EINVAL);
        }
        if privileged {
            *self = Ids::of(v);
        } else if v == self.real || v == self.saved {
            (self.effective, self.fs) = (v, v);
        } else {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// setres[ug]id(2); -1 keeps an id. Unprivileged tasks may only move
    /// ids among their current real, effective and saved ones.
    fn set_res(&mut self, r: u32, e: u32, s: u32, privileged: bool) -> SysResult<()> {
        if ![r, e, s].iter().all(|&v| v == KEEP || privileged || self.current(v)) {
            return Err(Errno::EPERM);
        }
        for (slot, v) in [(&mut self.real, r), (&mut self.effective, e), (&mut self.saved, s)] {
            if v != KEEP {
                *slot = v;
            }
        }
        self.fs = self.effective;
        Ok(())
    }

    /// setre[ug]id(2): the saved id follows the effective one when the real
    /// id is set or the effective one moves away from the old real id.
    fn set_re(&mut self, r: u32, e: u32, privileged: bool) -> SysResult<()> {
        let old_real = self.real;
        if r != KEEP && !(privileged || r == self.real || r == self.effective) {
            return Err(Errno::EPERM);
        }
        if e != KEEP && !(privileged || self.current(e)) {
            return Err(Errno::EPERM);
        }
        if r != KEEP {
            self.real = r;
        }
        if e != KEEP {
            self.effective = e;
        }
        if r != KEEP || (e != KEEP && e != old_real) {
            self.saved = self.effective;
        }
        self.fs = self.effective;
        Ok(())
    }

    /// setfs[ug]id(2): returns the old fs id; changes it only when allowed.
    fn set_fs(&mut self, v: u32, privileged: bool) -> u32 {
        let old = self.fs;
        if privileged || self.current(v) || v == self.fs {
            self.fs = v;
        }
        old
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    pub uid: Ids,
    pub gid: Ids,
    pub groups: Vec<u32>,
}

impl Creds {
    /// Every user id `uid` and every group id `gid`, no supplementary groups.
    pub fn of(uid: u32, gid: u32) -> Creds {
        Creds { uid: Ids::of(uid), gid: Ids::of(gid), groups: Vec::new() }
    }

    /// CAP_SETUID / CAP_SETGID / CAP_DAC_OVERRIDE and the rest.
    pub fn privileged(&self) -> bool {
        self.uid.effective == 0
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid.fs == gid || self.groups.contains(&gid)
    }

    pub fn setuid(&mut self, v: u32) -> SysResult<()> {
        let p = self.privileged();
        self.uid.set(v, p)
    }

    pub fn setgid(&mut self, v: u32) -> SysResult<()> {
        let p = self.privileged();
        self.gid.set(v, p)
    }

    pub fn setresuid(&mut self, r: u32, e: u32, s: u32) -> SysResult<()> {
        let p = self.privileged();
        self.uid.set_res(r, e, s, p)
    }

    pub fn setresgid(&mut self, r: u32, e: u32, s: u32) -> SysResult<()> {
        let p = self.privileged();
        self.gid.set_res(r, e, s, p)
    }

    pub fn setreuid(&mut self, r: u32, e: u32) -> SysResult<()> {
        let p = self.privileged();
        self.uid.set_re(r, e, p)
    }

    pub fn setregid(&mut self, r: u32, e: u32) -> SysResult<()> {
        let p = self.privileged();
        self.gid.set_re(r, e, p)
    }

    pub fn setfsuid(&mut self, v: u32) -> u32 {
        let p = self.privileged();
        self.uid.set_fs(v, p)
    }

    pub fn setfsgid(&mut self, v: u32) -> u32 {
        let p = self.privileged();
        self.gid.set_fs(v, p)
    }

    /// Unix permission check of `want` (R=4, W=2, X=1) on a file with
    /// `st`'s owner and mode, with the file-system ids. fsuid 0 may do
    /// anything except execute a file with no execute bit at all.
    pub fn may_access(&self, st: &abi::types::Stat, want: u32) -> bool {
        if self.uid.fs == 0 {
            let kind = st.st_mode & libc::S_IFMT;
            return want & 0o1 == 0 || kind == libc::S_IFDIR || st.st_mode & 0o111 != 0;
        }
        let bits = if st.st_uid == self.uid.fs {
            (st.st_mode >> 6) & 7
        } else if self.in_group(st.st_gid) {
            (st.st_mode >> 3) & 7
        } else {
            st.st_mode & 7
        };
        bits & want == want
    }

    /// The same credentials with the real ids as file-system ids: what
    /// access(2) checks with (unless AT_EACCESS).
    pub fn with_real_ids(&self) -> Creds {
        let mut c = self.clone();
        c.uid.fs = c.uid.real;
        c.gid.fs = c.gid.real;
        c
    }

    /// May a task with these credentials signal one with `target`'s?
    /// (Linux's kill_ok_by_cred.)
    pub fn may_signal(&self, target: &Creds) -> bool {
        let (me, them) = (&self.uid, &target.uid);
        self.privileged() || [me.effective, me.real].iter().any(|&u| u == them.saved || u == them.real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_can_become_anyone_and_then_cannot_come_back() {
        let mut c = Creds::of(0, 0);
        c.setuid(1000).unwrap();
        assert_eq!(c.uid, Ids::of(1000));
        assert_eq!(c.setuid(0), Err(Errno::EPERM));
    }

    #[test]
    fn saved_uid_lets_a_task_drop_and_regain() {
        let mut c = Creds::of(0, 0);
        c.setresuid(KEEP, 1000, KEEP).unwrap();
        assert_eq!((c.uid.real, c.uid.effective, c.uid.saved), (0, 1000, 0));
        assert!(!c.privileged());
        c.setresuid(KEEP, 0, KEEP).unwrap();
        assert!(c.privileged());
        c.setresuid(1000, 1000, 1000).unwrap();
        assert_eq!(c.setresuid(KEEP, 0, KEEP), Err(Errno::EPERM));
    }

    #[test]
    fn setreuid_moves_the_saved_uid() {
        let mut c = Creds::of(0, 0);
        c.setreuid(KEEP, 1000).unwrap();
        assert_eq!((c.uid.real, c.uid.effective, c.uid.saved), (0, 1000, 1000));
        let mut u = Creds::of(1000, 1000);
        assert_eq!(u.setreuid(KEEP, 2000), Err(Errno::EPERM));
        assert_eq!(u.setgid(0), Err(Errno::EPERM));
    }

    #[test]
    fn file_permission_bits() {
        let st = abi::types::Stat { st_mode: libc::S_IFREG | 0o640, st_uid: 5, st_gid: 6, ..Default::default() };
        assert!(Creds::of(5, 0).may_access(&st, 6));
        assert!(!Creds::of(7, 6).may_access(&st, 2));
        assert!(Creds::of(7, 6).may_access(&st, 4));
        let mut other = Creds::of(7, 8);
        assert!(!other.may_access(&st, 4));
        other.groups = vec![6];
        assert!(other.may_access(&st, 4), "supplementary groups count");
        assert!(!Creds::of(0, 0).may_access(&st, 1));
        assert!(Creds::of(0, 0).may_access(&st, 6));
    }

    #[test]
    fn signal_permission_follows_uids() {
        let a = Creds::of(1000, 1000);
        assert!(a.may_signal(&Creds::of(1000, 5)));
        assert!(!a.may_signal(&Creds::of(1001, 1000)));
        assert!(Creds::of(0, 0).may_signal(&a));
    }
}
