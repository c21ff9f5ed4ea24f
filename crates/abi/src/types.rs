//! Structures the sentry copies to and from application memory, laid out as
//! Linux x86-64 lays them out.

/// Plain old data: any bit pattern is a valid value and there is no padding
/// that could leak sentry memory, so it may be copied to and from raw bytes.
///
/// # Safety
/// Implement only for `#[repr(C)]` types made of integers and arrays of
/// integers, with every padding byte spelled out as a field.
pub unsafe trait Pod: Copy + Default {
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: Pod types have no uninitialised padding (trait contract).
        unsafe { std::slice::from_raw_parts((self as *const Self).cast(), std::mem::size_of::<Self>()) }
    }
    fn from_bytes(b: &[u8]) -> Self {
        let mut v = Self::default();
        let n = b.len().min(std::mem::size_of::<Self>());
        // SAFETY: any bit pattern is valid for a Pod type (trait contract), and
        // at most size_of::<Self>() bytes are written.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), (&mut v as *mut Self).cast::<u8>(), n) };
        v
    }
}

macro_rules! pod {
    ($($t:ty),*) => { $(
        // SAFETY: the type is repr(C), integers only, padding explicit.
        unsafe impl Pod for $t {}
    )* };
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeval {
    pub tv_sec: i64,
    pub tv_usec: i64,
}

/// `struct stat` on x86-64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_nlink: u64,
    pub st_mode: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub __pad0: u32,
    pub st_rdev: u64,
    pub st_size: i64,
    pub st_blksize: i64,
    pub st_blocks: i64,
    pub st_atime: i64,
    pub st_atime_nsec: i64,
    pub st_mtime: i64,
    pub st_mtime_nsec: i64,
    pub st_ctime: i64,
    pub st_ctime_nsec: i64,
    pub __unused: [i64; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatxTimestamp {
    pub tv_sec: i64,
    pub tv_nsec: u32,
    pub __reserved: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statx {
    pub stx_mask: u32,
    pub stx_blksize: u32,
    pub stx_attributes: u64,
    pub stx_nlink: u32,
    pub stx_uid: u32,
    pub stx_gid: u32,
    pub stx_mode: u16,
    pub __spare0: u16,
    pub stx_ino: u64,
    pub stx_size: u64,
    pub stx_blocks: u64,
    pub stx_attributes_mask: u64,
    pub stx_atime: StatxTimestamp,
    pub stx_btime: StatxTimestamp,
    pub stx_ctime: StatxTimestamp,
    pub stx_mtime: StatxTimestamp,
    pub stx_rdev_major: u32,
    pub stx_rdev_minor: u32,
    pub stx_dev_major: u32,
    pub stx_dev_minor: u32,
    pub __spare2: [u64; 14],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utsname {
    pub sysname: [u8; 65],
    pub nodename: [u8; 65],
    pub release: [u8; 65],
    pub version: [u8; 65],
    pub machine: [u8; 65],
    pub domainname: [u8; 65],
}

impl Default for Utsname {
    fn default() -> Self {
        Utsname { sysname: [0; 65], nodename: [0; 65], release: [0; 65], version: [0; 65], machine: [0; 65], domainname: [0; 65] }
    }
}

/// Copies `s` into a NUL-terminated fixed field, truncating if needed.
pub fn set_cstr(field: &mut [u8], s: &str) {
    field.fill(0);
    let n = s.len().min(field.len() - 1);
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// The kernel's `struct sigaction` for `rt_sigaction` (not glibc's).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KSigaction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

pub const SA_NOCLDSTOP: u64 = 0x1;
pub const SA_NOCLDWAIT: u64 = 0x2;
pub const SA_SIGINFO: u64 = 0x4;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

/// `siginfo_t`: 128 bytes; the union is laid out by the constructors.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Siginfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    pub __pad: i32,
    pub fields: [u64; 14],
}

impl Siginfo {
    /// kill(2)/tgkill(2): sender pid and uid.
    pub fn from_user(signo: i32, code: i32, pid: i32, uid: u32) -> Self {
        let mut s = Siginfo { signo, code, ..Default::default() };
        s.fields[0] = (pid as u32 as u64) | ((uid as u64) << 32);
        s
    }
    /// A fault: `si_addr`.
    pub fn fault(signo: i32, code: i32, addr: u64) -> Self {
        let mut s = Siginfo { signo, code, ..Default::default() };
        s.fields[0] = addr;
        s
    }
    /// SIGCHLD: pid, uid, status, utime, stime.
    pub fn child(code: i32, pid: i32, uid: u32, status: i32) -> Self {
        let mut s = Siginfo { signo: crate::signal::SIGCHLD, code, ..Default::default() };
        s.fields[0] = (pid as u32 as u64) | ((uid as u64) << 32);
        s.fields[1] = status as u32 as u64;
        s
    }
    pub fn pid(&self) -> i32 {
        self.fields[0] as u32 as i32
    }
    pub fn addr(&self) -> u64 {
        self.fields[0]
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigaltStack {
    pub ss_sp: u64,
    pub ss_flags: i32,
    pub __pad: i32,
    pub ss_size: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Iovec {
    pub base: u64,
    pub len: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Winsize {
    pub ws_row: u16,
    pub ws_col: u16,
    pub ws_xpixel: u16,
    pub ws_ypixel: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rusage {
    pub utime: Timeval,
    pub stime: Timeval,
    pub rest: [i64; 14],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sysinfo {
    pub uptime: i64,
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    pub procs: u16,
    pub __pad: [u16; 3],
    pub totalhigh: u64,
    pub freehigh: u64,
    pub mem_unit: u32,
    pub __pad2: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollFd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}

pod!(Timespec, Timeval, Stat, Statx, StatxTimestamp, Utsname, KSigaction, Siginfo, SigaltStack, Rlimit, Iovec, Winsize, Rusage, Sysinfo, PollFd);
// SAFETY: integers are Pod.
unsafe impl Pod for u64 {}
// SAFETY: integers are Pod.
unsafe impl Pod for i64 {}
// SAFETY: integers are Pod.
unsafe impl Pod for u32 {}
// SAFETY: integers are Pod.
unsafe impl Pod for i32 {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn sizes_match_linux_x86_64() {
        assert_eq!(size_of::<Stat>(), 144);
        assert_eq!(size_of::<Statx>(), 256);
        assert_eq!(size_of::<Utsname>(), 390);
        assert_eq!(size_of::<KSigaction>(), 32);
        assert_eq!(size_of::<Siginfo>(), 128);
        assert_eq!(size_of::<SigaltStack>(), 24);
        assert_eq!(size_of::<Rusage>(), 144);
        assert_eq!(size_of::<Sysinfo>(), 112);
    }
}
