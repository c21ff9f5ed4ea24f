//! Credentials: a task's user and group ids, as Linux keeps them (real,
//! effective, saved, file-system) and the rules for changing them. A task
//! whose effective uid is 0 holds every capability inside the sandbox
//! (there are no finer-grained capabilities yet), and loses them with it.

use crate::SysResult;
use abi::Errno;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    pub ruid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub rgid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
}

/// An id argument of -1: "leave this one unchanged".
const KEEP: u32 = u32::MAX;

impl Creds {
    /// Every id `id` (root starts with the empty group list).
    pub fn of(uid: u32, gid: u32) -> Creds {
        Creds { ruid: uid, euid: uid, suid: uid, fsuid: uid, rgid: gid, egid: gid, sgid: gid, fsgid: gid, groups: Vec::new() }
    }

    /// CAP_SETUID / CAP_SETGID / CAP_DAC_OVERRIDE and the rest.
    pub fn privileged(&self) -> bool {
        self.euid == 0
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.fsgid == gid || self.groups.contains(&gid)
    }

    /// setuid(2).
    pub fn setuid(&mut self, uid: u32) -> SysResult<()> {
        if uid == KEEP {
            return Err(Errno::EINVAL);
        }
        if self.privileged() {
            (self.ruid, self.euid, self.suid, self.fsuid) = (uid, uid, uid, uid);
        } else if uid == self.ruid || uid == self.suid {
            (self.euid, self.fsuid) = (uid, uid);
        } else {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// setresuid(2); -1 keeps an id. Unprivileged tasks may only move ids
    /// among their current real, effective and saved ones.
    pub fn setresuid(&mut self, r: u32, e: u32, s: u32) -> SysResult<()> {
        let allowed = |v: u32| v == KEEP || self.privileged() || v == self.ruid || v == self.euid || v == self.suid;
        if !(allowed(r) && allowed(e) && allowed(s)) {
            return Err(Errno::EPERM);
        }
        if r != KEEP {
            self.ruid = r;
        }
        if e != KEEP {
            self.euid = e;
        }
        if s != KEEP {
            self.suid = s;
        }
        self.fsuid = self.euid;
        Ok(())
    }

    /// setreuid(2): the saved uid follows the effective one when the real
    /// uid is set or the effective one moves away from the old real uid.
    pub fn setreuid(&mut self, r: u32, e: u32) -> SysResult<()> {
        let old_ruid = self.ruid;
        if r != KEEP && !(self.privileged() || r == self.ruid || r == self.euid) {
            return Err(Errno::EPERM);
        }
        if e != KEEP && !(self.privileged() || e == self.ruid || e == self.euid || e == self.suid) {
            return Err(Errno::EPERM);
        }
        if r != KEEP {
            self.ruid = r;
        }
        if e != KEEP {
            self.euid = e;
        }
        if r != KEEP || (e != KEEP && e != old_ruid) {
            self.suid = self.euid;
        }
        self.fsuid = self.euid;
        Ok(())
    }

    /// setgid(2): privilege is the uid's (CAP_SETGID follows euid 0).
    pub fn setgid(&mut self, gid: u32) -> SysResult<()> {
        if gid == KEEP {
            return Err(Errno::EINVAL);
        }
        if self.privileged() {
            (self.rgid, self.egid, self.sgid, self.fsgid) = (gid, gid, gid, gid);
        } else if gid == self.rgid || gid == self.sgid {
            (self.egid, self.fsgid) = (gid, gid);
        } else {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    pub fn setresgid(&mut self, r: u32, e: u32, s: u32) -> SysResult<()> {
        let allowed = |v: u32| v == KEEP || self.privileged() || v == self.rgid || v == self.egid || v == self.sgid;
        if !(allowed(r) && allowed(e) && allowed(s)) {
            return Err(Errno::EPERM);
        }
        if r != KEEP {
            self.rgid = r;
        }
        if e != KEEP {
            self.egid = e;
        }
        if s != KEEP {
            self.sgid = s;
        }
        self.fsgid = self.egid;
        Ok(())
    }

    pub fn setregid(&mut self, r: u32, e: u32) -> SysResult<()> {
        let old_rgid = self.rgid;
        if r != KEEP && !(self.privileged() || r == self.rgid || r == self.egid) {
            return Err(Errno::EPERM);
        }
        if e != KEEP && !(self.privileged() || e == self.rgid || e == self.egid || e == self.sgid) {
            return Err(Errno::EPERM);
        }
        if r != KEEP {
            self.rgid = r;
        }
        if e != KEEP {
            self.egid = e;
        }
        if r != KEEP || (e != KEEP && e != old_rgid) {
            self.sgid = self.egid;
        }
        self.fsgid = self.egid;
        Ok(())
    }

    /// setfsuid(2): returns the old fsuid; changes it only when allowed.
    pub fn setfsuid(&mut self, uid: u32) -> u32 {
        let old = self.fsuid;
        if self.privileged() || [self.ruid, self.euid, self.suid, self.fsuid].contains(&uid) {
            self.fsuid = uid;
        }
        old
    }

    pub fn setfsgid(&mut self, gid: u32) -> u32 {
        let old = self.fsgid;
        if self.privileged() || [self.rgid, self.egid, self.sgid, self.fsgid].contains(&gid) {
            self.fsgid = gid;
        }
        old
    }

    /// Unix permission check of `want` (R=4, W=2, X=1) on a file with
    /// `st`'s owner and mode, with the file-system ids. fsuid 0 may do
    /// anything except execute a file with no execute bit at all.
    pub fn may_access(&self, st: &abi::types::Stat, want: u32) -> bool {
        if self.fsuid == 0 {
            let kind = st.st_mode & libc::S_IFMT;
            return want & 0o1 == 0 || kind == libc::S_IFDIR || st.st_mode & 0o111 != 0;
        }
        let bits = if st.st_uid == self.fsuid {
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
        Creds { fsuid: self.ruid, fsgid: self.rgid, ..self.clone() }
    }

    /// May a task with these credentials signal one with `target`'s?
    /// (Linux's kill_ok_by_cred.)
    pub fn may_signal(&self, target: &Creds) -> bool {
        self.privileged() || self.euid == target.suid || self.euid == target.ruid || self.ruid == target.suid || self.ruid == target.ruid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_can_become_anyone_and_then_cannot_come_back() {
        let mut c = Creds::of(0, 0);
        c.setuid(1000).unwrap();
        assert_eq!((c.ruid, c.euid, c.suid, c.fsuid), (1000, 1000, 1000, 1000));
        assert_eq!(c.setuid(0), Err(Errno::EPERM));
    }

    #[test]
    fn saved_uid_lets_a_task_drop_and_regain() {
        let mut c = Creds::of(0, 0);
        c.setresuid(KEEP, 1000, KEEP).unwrap();
        assert_eq!((c.ruid, c.euid, c.suid), (0, 1000, 0));
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
        assert_eq!((c.ruid, c.euid, c.suid), (0, 1000, 1000));
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
