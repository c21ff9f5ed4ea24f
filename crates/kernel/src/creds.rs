//! Credentials: a task's user and group ids, as Linux keeps them (real,
//! effective, saved, file-system), its capability sets, and Linux's rules
//! for changing them (capabilities(7): what setuid and execve do to the
//! sets, and the checks each privileged operation makes).

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

/// Capability numbers (linux/capability.h) the sentry checks.
pub mod cap {
    pub const CHOWN: u32 = 0;
    pub const DAC_OVERRIDE: u32 = 1;
    pub const DAC_READ_SEARCH: u32 = 2;
    pub const FOWNER: u32 = 3;
    pub const FSETID: u32 = 4;
    pub const KILL: u32 = 5;
    pub const SETGID: u32 = 6;
    pub const SETUID: u32 = 7;
    pub const SETPCAP: u32 = 8;
    pub const LINUX_IMMUTABLE: u32 = 9;
    pub const IPC_LOCK: u32 = 14;
    pub const SYS_NICE: u32 = 23;
    pub const SYS_RESOURCE: u32 = 24;
    pub const MKNOD: u32 = 27;
    pub const MAC_OVERRIDE: u32 = 32;
    /// CAP_CHECKPOINT_RESTORE, the last one Linux 5.9+ has.
    pub const LAST: u32 = 40;

    /// Names in number order, as capabilities(7) lists them.
    const NAMES: [&str; LAST as usize + 1] = [
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT",
        "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
        "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
        "PERFMON", "BPF", "CHECKPOINT_RESTORE",
    ];

    /// The number of "CAP_NAME" (case-insensitive, as runc accepts it).
    pub fn by_name(name: &str) -> Option<u32> {
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_")?;
        NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
    }

    /// The set of the capabilities `names` names; the first unknown name
    /// is the error.
    pub fn set_of<S: AsRef<str>>(names: &[S]) -> Result<u64, String> {
        names.iter().try_fold(0u64, |set, n| by_name(n.as_ref()).map(|c| set | 1 << c).ok_or_else(|| n.as_ref().to_string()))
    }
}

/// Every capability, 0..=cap::LAST.
pub const ALL_CAPS: u64 = (1 << (cap::LAST + 1)) - 1;

/// The capabilities a change of fsuid to or from 0 drops or raises
/// (Linux's CAP_FS_MASK).
const FS_CAPS: u64 = 1 << cap::CHOWN | 1 << cap::DAC_OVERRIDE | 1 << cap::DAC_READ_SEARCH | 1 << cap::FOWNER | 1 << cap::FSETID | 1 << cap::LINUX_IMMUTABLE | 1 << cap::MAC_OVERRIDE | 1 << cap::MKNOD;

/// A task's five capability sets, one bit per capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub bounding: u64,
    pub ambient: u64,
}

impl CapSets {
    /// What uid `uid` holds in a fresh user namespace: root everything,
    /// others nothing (the bounding set is full for both).
    pub fn of_uid(uid: u32) -> CapSets {
        let held = if uid == 0 { ALL_CAPS } else { 0 };
        CapSets { effective: held, permitted: held, inheritable: 0, bounding: ALL_CAPS, ambient: 0 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creds {
    pub uid: Ids,
    pub gid: Ids,
    pub groups: Vec<u32>,
    pub caps: CapSets,
    /// PR_SET_KEEPCAPS: leaving uid 0 keeps the permitted set (until execve).
    pub keep_caps: bool,
    /// PR_SET_NO_NEW_PRIVS: inherited, never cleared.
    pub no_new_privs: bool,
}

impl Default for Creds {
    fn default() -> Creds {
        Creds::of(0, 0)
    }
}

impl Creds {
    /// Every user id `uid` and every group id `gid`, no supplementary
    /// groups, and the capabilities that uid starts with.
    pub fn of(uid: u32, gid: u32) -> Creds {
        Creds { uid: Ids::of(uid), gid: Ids::of(gid), groups: Vec::new(), caps: CapSets::of_uid(uid), keep_caps: false, no_new_privs: false }
    }

    /// Holds capability `c` in its effective set (Linux's capable()).
    pub fn capable(&self, c: u32) -> bool {
        c <= cap::LAST && self.caps.effective & (1 << c) != 0
    }

    /// What a change of user ids does to the capability sets (Linux's
    /// cap_emulate_setxuid and the fsuid fixup): leaving uid 0 in all of
    /// real, effective and saved drops permitted and effective (unless
    /// keep_caps) and ambient; the effective uid leaving 0 drops the
    /// effective set, coming back to 0 restores it from permitted.
    fn fix_caps_after_setuid(&mut self, old: Ids) {
        let new = self.uid;
        let c = &mut self.caps;
        if [old.real, old.effective, old.saved].contains(&0) && ![new.real, new.effective, new.saved].contains(&0) {
            if !self.keep_caps {
                c.permitted = 0;
                c.effective = 0;
            }
            c.ambient = 0;
        }
        if old.effective == 0 && new.effective != 0 {
            c.effective = 0;
        }
        if old.effective != 0 && new.effective == 0 {
            c.effective = c.permitted;
        }
        if old.fs == 0 && new.fs != 0 {
            c.effective &= !FS_CAPS;
        }
        if old.fs != 0 && new.fs == 0 {
            c.effective |= c.permitted & FS_CAPS;
        }
    }

    /// execve: the new sets from the old ones (capabilities(7), for files
    /// without file capabilities; the sandbox honours no set-user-id bits).
    /// Root (real or effective uid 0) gets the bounding set and its
    /// inheritable ones as permitted, effective too when its effective uid
    /// is 0; others keep only their ambient set.
    pub fn exec(&mut self) {
        self.keep_caps = false;
        let c = &mut self.caps;
        let root = self.uid.effective == 0 || self.uid.real == 0;
        c.permitted = if root { c.bounding | c.inheritable } else { 0 };
        c.permitted |= c.ambient;
        c.effective = if self.uid.effective == 0 { c.permitted } else { c.ambient };
    }

    /// capset(2): the new effective, permitted and inheritable sets, with
    /// Linux's rules (cap_capset): permitted may only shrink, effective
    /// must be within it, inheritable may gain only what is in the bounding
    /// set and, without CAP_SETPCAP, in permitted. Ambient capabilities no
    /// longer both permitted and inheritable go.
    pub fn capset(&mut self, effective: u64, permitted: u64, inheritable: u64) -> SysResult<()> {
        let c = self.caps;
        if !self.capable(cap::SETPCAP) && inheritable & !(c.inheritable | c.permitted) != 0 {
            return Err(Errno::EPERM);
        }
        if inheritable & !(c.inheritable | c.bounding) != 0 {
            return Err(Errno::EPERM);
        }
        if permitted & !c.permitted != 0 || effective & !permitted != 0 {
            return Err(Errno::EPERM);
        }
        self.caps = CapSets { effective, permitted, inheritable, ambient: c.ambient & permitted & inheritable, ..c };
        Ok(())
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid.fs == gid || self.groups.contains(&gid)
    }

    /// Runs a change of user ids (allowed with CAP_SETUID) and then
    /// Linux's capability fixups.
    fn change_uid<R>(&mut self, f: impl FnOnce(&mut Ids, bool) -> R) -> R {
        let (old, p) = (self.uid, self.capable(cap::SETUID));
        let r = f(&mut self.uid, p);
        self.fix_caps_after_setuid(old);
        r
    }

    pub fn setuid(&mut self, v: u32) -> SysResult<()> {
        self.change_uid(|ids, p| ids.set(v, p))
    }

    pub fn setgid(&mut self, v: u32) -> SysResult<()> {
        let p = self.capable(cap::SETGID);
        self.gid.set(v, p)
    }

    pub fn setresuid(&mut self, r: u32, e: u32, s: u32) -> SysResult<()> {
        self.change_uid(|ids, p| ids.set_res(r, e, s, p))
    }

    pub fn setresgid(&mut self, r: u32, e: u32, s: u32) -> SysResult<()> {
        let p = self.capable(cap::SETGID);
        self.gid.set_res(r, e, s, p)
    }

    pub fn setreuid(&mut self, r: u32, e: u32) -> SysResult<()> {
        self.change_uid(|ids, p| ids.set_re(r, e, p))
    }

    pub fn setregid(&mut self, r: u32, e: u32) -> SysResult<()> {
        let p = self.capable(cap::SETGID);
        self.gid.set_re(r, e, p)
    }

    pub fn setfsuid(&mut self, v: u32) -> u32 {
        self.change_uid(|ids, p| ids.set_fs(v, p))
    }

    pub fn setfsgid(&mut self, v: u32) -> u32 {
        let p = self.capable(cap::SETGID);
        self.gid.set_fs(v, p)
    }

    /// Unix permission check of `want` (R=4, W=2, X=1) on a file with
    /// `st`'s owner and mode, with the file-system ids, as Linux's
    /// generic_permission: CAP_DAC_OVERRIDE may do anything except execute
    /// a file with no execute bit at all; CAP_DAC_READ_SEARCH may read any
    /// file and search any directory.
    pub fn may_access(&self, st: &abi::types::Stat, want: u32) -> bool {
        let kind = st.st_mode & libc::S_IFMT;
        if self.capable(cap::DAC_OVERRIDE) && (want & 0o1 == 0 || kind == libc::S_IFDIR || st.st_mode & 0o111 != 0) {
            return true;
        }
        if self.capable(cap::DAC_READ_SEARCH) && (want == 0o4 || (kind == libc::S_IFDIR && want & 0o2 == 0)) {
            return true;
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
        self.capable(cap::KILL) || [me.effective, me.real].iter().any(|&u| u == them.saved || u == them.real)
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
        assert!(!c.capable(cap::SETUID));
        assert_eq!(c.caps.permitted, ALL_CAPS, "the saved uid 0 keeps the permitted set");
        c.setresuid(KEEP, 0, KEEP).unwrap();
        assert!(c.capable(cap::SETUID));
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
    fn capabilities_follow_uid_changes_like_linux() {
        let mut c = Creds::of(0, 0);
        c.setfsuid(1000);
        assert!(!c.capable(cap::DAC_OVERRIDE) && c.capable(cap::SETUID), "fsuid != 0 drops only the file-system ones");
        c.setfsuid(0);
        assert!(c.capable(cap::DAC_OVERRIDE));
        c.keep_caps = true;
        c.setresuid(1000, 1000, 1000).unwrap();
        assert_eq!((c.caps.effective, c.caps.permitted), (0, ALL_CAPS), "keep_caps keeps permitted, never effective");
        c.capset(1 << cap::KILL, 1 << cap::KILL, 0).unwrap();
        assert!(c.capable(cap::KILL) && !c.capable(cap::SETUID));
        assert_eq!(c.capset(1 << cap::SETUID, 1 << cap::SETUID, 0), Err(Errno::EPERM), "permitted cannot grow");
        c.exec();
        assert_eq!((c.caps.effective, c.caps.permitted, c.keep_caps), (0, 0, false), "a non-root execve keeps only ambient");
        let mut r = Creds::of(0, 0);
        r.caps.bounding = 1 << cap::CHOWN;
        r.exec();
        assert_eq!((r.caps.effective, r.caps.permitted), (1 << cap::CHOWN, 1 << cap::CHOWN), "root's execve takes the bounding set");
    }

    #[test]
    fn capability_names() {
        assert_eq!(cap::by_name("CAP_SYS_NICE"), Some(cap::SYS_NICE));
        assert_eq!(cap::by_name("cap_checkpoint_restore"), Some(cap::LAST));
        assert_eq!(cap::set_of(&["CAP_CHOWN", "CAP_KILL"]), Ok(1 << cap::CHOWN | 1 << cap::KILL));
        assert_eq!(cap::set_of(&["CAP_CHOWN", "CAP_NOPE"]), Err("CAP_NOPE".to_string()));
    }

    #[test]
    fn signal_permission_follows_uids() {
        let a = Creds::of(1000, 1000);
        assert!(a.may_signal(&Creds::of(1000, 5)));
        assert!(!a.may_signal(&Creds::of(1001, 1000)));
        assert!(Creds::of(0, 0).may_signal(&a));
    }
}
