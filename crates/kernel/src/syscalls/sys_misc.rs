//! Identity, time, limits and process attributes: uname, clocks, sleeps,
//! getrandom, rlimits, prctl, arch_prctl, credentials.

use super::{Args, Entry};
use crate::sys;
use crate::task::TaskCtx;
use crate::SysResult;
use crate::creds::cap;
use abi::types::{set_cstr, Rlimit, Sysinfo, Timespec, Timeval, Utsname};
use abi::Errno;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const SYSCALLS: &[Entry] = &[
    sys!(UNAME, sys_uname, [Hex]),
    sys!(GETRANDOM, sys_getrandom, [Hex, Int, Hex]),
    sys!(CLOCK_GETTIME, sys_clock_gettime, [Int, Hex], partial "CPU-time clocks report the sentry thread's time"),
    sys!(CLOCK_GETRES, sys_clock_getres, [Int, Hex]),
    sys!(GETTIMEOFDAY, sys_gettimeofday, [Hex, Hex]),
    sys!(TIME, sys_time, [Hex]),
    sys!(NANOSLEEP, sys_nanosleep, [Hex, Hex]),
    sys!(CLOCK_NANOSLEEP, sys_clock_nanosleep, [Int, Hex, Hex, Hex]),
    sys!(PRLIMIT64, sys_prlimit64, [Int, Int, Hex, Hex], partial "limits are recorded, RLIMIT_NOFILE is enforced, RLIMIT_NPROC as the sandbox's task limit"),
    sys!(GETRLIMIT, sys_getrlimit, [Int, Hex]),
    sys!(SETRLIMIT, sys_setrlimit, [Int, Hex]),
    sys!(PRCTL, sys_prctl, [Int, Hex, Hex, Hex, Hex], partial "names, dumpable, no_new_privs, pdeathsig, child subreaper, capabilities"),
    sys!(CAPGET, sys_capget, [Hex, Hex]),
    sys!(CAPSET, sys_capset, [Hex, Hex]),
    sys!(ARCH_PRCTL, sys_arch_prctl, [Hex, Hex]),
    sys!(GETUID, sys_getuid, []),
    sys!(GETEUID, sys_geteuid, []),
    sys!(GETGID, sys_getgid, []),
    sys!(GETEGID, sys_getegid, []),
    sys!(GETGROUPS, sys_getgroups, [Int, Hex]),
    sys!(SETGROUPS, sys_setgroups, [Int, Hex]),
    sys!(SETUID, sys_setuid, [Int]),
    sys!(SETGID, sys_setgid, [Int]),
    sys!(SETRESUID, sys_setresuid, [Int, Int, Int]),
    sys!(SETRESGID, sys_setresgid, [Int, Int, Int]),
    sys!(SETREUID, sys_setreuid, [Int, Int]),
    sys!(SETREGID, sys_setregid, [Int, Int]),
    sys!(GETRESUID, sys_getresuid, [Hex, Hex, Hex]),
    sys!(GETRESGID, sys_getresgid, [Hex, Hex, Hex]),
    sys!(SETFSUID, sys_setfsuid, [Int]),
    sys!(SETFSGID, sys_setfsgid, [Int]),
    sys!(SYSINFO, sys_sysinfo, [Hex]),
    sys!(GETCPU, sys_getcpu, [Hex, Hex, Hex]),
    sys!(TIMES, sys_times, [Hex], partial "CPU time as the sentry accounts it: user = time in application code, system = time serving it"),
    sys!(GETRUSAGE, sys_getrusage, [Int, Hex], partial "CPU times as the sentry accounts them; the other counters are zero"),
];

/// Time since an arbitrary fixed point, like CLOCK_MONOTONIC.
pub fn monotonic() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec to a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn sys_uname(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let cfg = &t.kernel().config;
    let mut u = Utsname::default();
    set_cstr(&mut u.sysname, "Linux");
    set_cstr(&mut u.nodename, &cfg.hostname);
    set_cstr(&mut u.release, &cfg.release);
    set_cstr(&mut u.version, "#1 SMP veil");
    set_cstr(&mut u.machine, "x86_64");
    set_cstr(&mut u.domainname, "(none)");
    t.write_obj(a[0], &u)?;
    Ok(0)
}

fn sys_getrandom(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (buf, len, flags) = (a[0], a[1] as usize, a[2] as u32);
    if flags & !(libc::GRND_NONBLOCK | libc::GRND_RANDOM | 0x4 /* GRND_INSECURE */) != 0 {
        return Err(Errno::EINVAL);
    }
    let len = len.min(32 << 20);
    let mut v = vec![0u8; len];
    crate::loader::getrandom(&mut v);
    t.copy_out(buf, &v)?;
    Ok(len as u64)
}

fn host_clock(id: i32) -> SysResult<Timespec> {
    let host_id = match id {
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_MONOTONIC_RAW | libc::CLOCK_REALTIME_COARSE | libc::CLOCK_MONOTONIC_COARSE | libc::CLOCK_BOOTTIME => id,
        libc::CLOCK_PROCESS_CPUTIME_ID | libc::CLOCK_THREAD_CPUTIME_ID => libc::CLOCK_THREAD_CPUTIME_ID,
        _ => return Err(Errno::EINVAL),
    };
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec to a valid pointer.
    if unsafe { libc::clock_gettime(host_id, &mut ts) } != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Timespec { tv_sec: ts.tv_sec, tv_nsec: ts.tv_nsec })
}

fn sys_clock_gettime(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let ts = host_clock(a[0] as i32)?;
    t.write_obj(a[1], &ts)?;
    Ok(0)
}

fn sys_clock_getres(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    host_clock(a[0] as i32)?;
    if a[1] != 0 {
        t.write_obj(a[1], &Timespec { tv_sec: 0, tv_nsec: 1 })?;
    }
    Ok(0)
}

fn sys_gettimeofday(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if a[0] != 0 {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        t.write_obj(a[0], &Timeval { tv_sec: d.as_secs() as i64, tv_usec: d.subsec_micros() as i64 })?;
    }
    if a[1] != 0 {
        t.copy_out(a[1], &[0u8; 8])?;
    }
    Ok(0)
}

fn sys_time(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    if a[0] != 0 {
        t.write_obj(a[0], &(now as i64))?;
    }
    Ok(now)
}

fn read_timespec(t: &TaskCtx, addr: u64) -> SysResult<Duration> {
    let ts: Timespec = t.read_obj(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Sleeps until `until`; on a signal writes the time left to `rem`.
fn sleep_until(t: &mut TaskCtx, until: Instant, rem: u64) -> SysResult<u64> {
    loop {
        match t.block(&[], Some(until)) {
            Err(e) if e == Errno::ETIMEDOUT => return Ok(0),
            Err(e) => {
                if rem != 0 {
                    let left = until.saturating_duration_since(Instant::now());
                    t.write_obj(rem, &Timespec { tv_sec: left.as_secs() as i64, tv_nsec: left.subsec_nanos() as i64 })?;
                }
                // Interrupted: EINTR if a handler runs, else restarted.
                return Err(if e == Errno::ERESTARTSYS { Errno::ERESTARTNOHAND } else { e });
            }
            Ok(()) => {
                if Instant::now() >= until {
                    return Ok(0);
                }
            }
        }
    }
}

fn sys_nanosleep(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let d = read_timespec(t, a[0])?;
    sleep_until(t, Instant::now() + d, a[1])
}

fn sys_clock_nanosleep(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (clock, flags) = (a[0] as i32, a[1] as i32);
    let d = read_timespec(t, a[2])?;
    let until = if flags & libc::TIMER_ABSTIME != 0 {
        let now = host_clock(clock)?;
        let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
        Instant::now() + d.saturating_sub(now)
    } else {
        host_clock(clock)?;
        Instant::now() + d
    };
    let rem = if flags & libc::TIMER_ABSTIME != 0 { 0 } else { a[3] };
    sleep_until(t, until, rem)
}

/// prlimit64(2) (and getrlimit/setrlimit): reads and sets the limits of
/// a process; Linux's check (same real/effective/saved uids and gids, or
/// CAP_SYS_RESOURCE) applies to another process.
fn sys_prlimit64(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (pid, res, new, old) = (a[0] as i32, a[1] as u32, a[2], a[3]);
    let target = if pid == 0 { t.task.clone() } else { t.pid_named(pid).and_then(|p| t.kernel().task(p)).ok_or(Errno::ESRCH)? };
    let me = t.creds();
    if !std::sync::Arc::ptr_eq(&target.tg, &t.task.tg) && !me.capable(cap::SYS_RESOURCE) {
        let them = target.creds.lock().unwrap().clone();
        let same = |m: &crate::creds::Ids, o: &crate::creds::Ids| m.real == o.real && m.real == o.effective && m.real == o.saved;
        if !(same(&me.uid, &them.uid) && same(&me.gid, &them.gid)) {
            return Err(Errno::EPERM);
        }
    }
    let new = if new != 0 { Some(t.read_obj::<Rlimit>(new)?) } else { None };
    let mut limits = target.tg.rlimits.lock().unwrap();
    let cur = limits.get(res)?;
    if let Some(n) = new {
        limits.set(res, n, me.capable(cap::SYS_RESOURCE))?;
        if res == libc::RLIMIT_NOFILE {
            target.files().set_limit(n.cur);
        }
    }
    drop(limits);
    if old != 0 {
        t.write_obj(old, &cur)?;
    }
    Ok(0)
}

fn sys_getrlimit(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    sys_prlimit64(t, &[0, a[0], 0, a[1], 0, 0])
}

fn sys_setrlimit(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    sys_prlimit64(t, &[0, a[0], a[1], 0, 0, 0])
}

/// A capability number argument: EINVAL past the last one.
fn cap_number(v: u64) -> SysResult<u32> {
    if v > cap::LAST as u64 {
        return Err(Errno::EINVAL);
    }
    Ok(v as u32)
}

/// prctl(PR_CAP_AMBIENT, op, cap): a capability may be raised in the
/// ambient set only while permitted and inheritable (and not with
/// SECBIT_NO_CAP_AMBIENT_RAISE, which the sandbox never sets).
fn cap_ambient(t: &TaskCtx, a: &Args) -> SysResult<u64> {
    let (op, arg) = (a[1] as i32, a[2]);
    if op == libc::PR_CAP_AMBIENT_CLEAR_ALL {
        if arg != 0 || a[3] != 0 || a[4] != 0 {
            return Err(Errno::EINVAL);
        }
        return change_creds(t, |c| {
            c.caps.ambient = 0;
            Ok(())
        });
    }
    if a[3] != 0 || a[4] != 0 {
        return Err(Errno::EINVAL);
    }
    let bit = 1u64 << cap_number(arg)?;
    match op {
        libc::PR_CAP_AMBIENT_IS_SET => Ok((t.creds().caps.ambient & bit != 0) as u64),
        libc::PR_CAP_AMBIENT_RAISE => change_creds(t, |c| {
            if c.caps.permitted & c.caps.inheritable & bit == 0 {
                return Err(Errno::EPERM);
            }
            c.caps.ambient |= bit;
            Ok(())
        }),
        libc::PR_CAP_AMBIENT_LOWER => change_creds(t, |c| {
            c.caps.ambient &= !bit;
            Ok(())
        }),
        _ => Err(Errno::EINVAL),
    }
}

/// linux/capability.h: _LINUX_CAPABILITY_VERSION_1 (one 32-bit word per
/// set) and _3 (two; _2 is the same layout, deprecated).
const CAP_V1: u32 = 0x1998_0330;
const CAP_V2: u32 = 0x2007_1026;
const CAP_V3: u32 = 0x2008_0522;

/// The header's version: how many 32-bit words each set has. An unknown
/// version is EINVAL, and the kernel writes its preferred one back.
fn cap_words(t: &mut TaskCtx, header: u64) -> SysResult<(usize, i32)> {
    let h = t.copy_in(header, 8)?;
    let version = u32::from_le_bytes(h[..4].try_into().unwrap());
    let pid = i32::from_le_bytes(h[4..].try_into().unwrap());
    match version {
        CAP_V1 => Ok((1, pid)),
        CAP_V2 | CAP_V3 => Ok((2, pid)),
        _ => {
            t.copy_out(header, &CAP_V3.to_le_bytes())?;
            Err(Errno::EINVAL)
        }
    }
}

/// capget(2): the effective, permitted and inheritable sets of `pid`
/// (0: the caller) as `struct __user_cap_data_struct[words]`.
fn sys_capget(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (words, pid) = match cap_words(t, a[0]) {
        // A null data pointer with an unknown version only asks the version.
        Err(Errno::EINVAL) if a[1] == 0 => return Ok(0),
        r => r?,
    };
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let caps = if pid == 0 {
        t.creds().caps
    } else {
        let g = t.pid_named(pid).and_then(|p| t.kernel().task(p)).ok_or(Errno::ESRCH)?;
        let c = g.creds.lock().unwrap().caps;
        c
    };
    if a[1] == 0 {
        return Ok(0);
    }
    let mut out = Vec::with_capacity(words * 12);
    for w in 0..words {
        for set in [caps.effective, caps.permitted, caps.inheritable] {
            out.extend_from_slice(&((set >> (32 * w)) as u32).to_le_bytes());
        }
    }
    t.copy_out(a[1], &out)?;
    Ok(0)
}

/// capset(2) on the caller (a pid other than its own is EPERM, as Linux).
fn sys_capset(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (words, pid) = cap_words(t, a[0])?;
    if pid != 0 && t.pid_named(pid) != Some(t.task.tid) {
        return Err(Errno::EPERM);
    }
    let raw = t.copy_in(a[1], words * 12)?;
    let word = |i: usize| u32::from_le_bytes(raw[i * 4..i * 4 + 4].try_into().unwrap()) as u64;
    let set = |k: usize| (0..words).fold(0u64, |acc, w| acc | word(w * 3 + k) << (32 * w));
    let (effective, permitted, inheritable) = (set(0), set(1), set(2));
    change_creds(t, |c| c.capset(effective, permitted, inheritable))
}

fn sys_prctl(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    match a[0] as i32 {
        libc::PR_SET_NAME => {
            let mut n = t.read_cstr(a[1], 4096)?;
            n.truncate(15);
            t.task.set_comm(&n);
            Ok(0)
        }
        libc::PR_GET_NAME => {
            let c = *t.task.comm.lock().unwrap();
            t.copy_out(a[1], &c)?;
            Ok(0)
        }
        libc::PR_GET_DUMPABLE => Ok(1),
        libc::PR_SET_DUMPABLE if a[1] <= 1 => Ok(0),
        libc::PR_SET_NO_NEW_PRIVS if a[1] == 1 && a[2] == 0 && a[3] == 0 && a[4] == 0 => change_creds(t, |c| {
            c.no_new_privs = true;
            Ok(())
        }),
        libc::PR_GET_NO_NEW_PRIVS => Ok(t.creds().no_new_privs as u64),
        libc::PR_GET_KEEPCAPS => Ok(t.creds().keep_caps as u64),
        libc::PR_SET_KEEPCAPS if a[1] <= 1 => change_creds(t, |c| {
            c.keep_caps = a[1] == 1;
            Ok(())
        }),
        libc::PR_CAPBSET_READ => Ok(t.creds().caps.bounding >> cap_number(a[1])? & 1),
        libc::PR_CAPBSET_DROP => {
            let n = cap_number(a[1])?;
            change_creds(t, |c| {
                if !c.capable(cap::SETPCAP) {
                    return Err(Errno::EPERM);
                }
                c.caps.bounding &= !(1 << n);
                Ok(())
            })
        }
        libc::PR_CAP_AMBIENT => cap_ambient(t, a),
        libc::PR_SET_PDEATHSIG if a[1] <= 64 => Ok(0),
        libc::PR_GET_PDEATHSIG => {
            t.copy_out(a[1], &0i32.to_le_bytes())?;
            Ok(0)
        }
        libc::PR_SET_CHILD_SUBREAPER | libc::PR_GET_CHILD_SUBREAPER | libc::PR_SET_SECCOMP => {
            t.kernel().report_unsupported_feature(abi::syscalls::nr::PRCTL, "option");
            Err(Errno::EINVAL)
        }
        _ => Err(Errno::EINVAL),
    }
}

const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;

fn sys_arch_prctl(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let canonical = |v: u64| v < 0x0000_8000_0000_0000;
    match a[0] {
        ARCH_SET_FS if canonical(a[1]) => {
            t.cpu.regs.fs_base = a[1];
            Ok(0)
        }
        ARCH_SET_GS if canonical(a[1]) => {
            t.cpu.regs.gs_base = a[1];
            Ok(0)
        }
        ARCH_SET_FS | ARCH_SET_GS => Err(Errno::EPERM),
        ARCH_GET_FS => {
            let v = t.cpu.regs.fs_base;
            t.write_obj(a[1], &v)?;
            Ok(0)
        }
        ARCH_GET_GS => {
            let v = t.cpu.regs.gs_base;
            t.write_obj(a[1], &v)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}




fn sys_sysinfo(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let k = t.kernel();
    let used = k.memfile.usage().resident;
    let total = k.config.total_memory;
    let info = Sysinfo {
        uptime: k.boot_time.elapsed().as_secs() as i64,
        totalram: total,
        freeram: total.saturating_sub(used),
        procs: k.tree.lock().unwrap().tasks.len() as u16,
        mem_unit: 1,
        ..Default::default()
    };
    t.write_obj(a[0], &info)?;
    Ok(0)
}

fn sys_getcpu(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if a[0] != 0 {
        t.copy_out(a[0], &0u32.to_le_bytes())?;
    }
    if a[1] != 0 {
        t.copy_out(a[1], &0u32.to_le_bytes())?;
    }
    Ok(0)
}

/// Clock ticks (100 Hz) since the sandbox booted.
fn ticks(t: &TaskCtx) -> u64 {
    (t.kernel().boot_time.elapsed().as_millis() / 10) as u64
}

fn to_ticks(d: Duration) -> u64 {
    (d.as_millis() / 10) as u64
}

fn sys_times(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    if a[0] != 0 {
        let (u, s) = crate::task::process_times(t.kernel(), &t.task.tg);
        let (cu, cs) = t.task.tg.children_times.get();
        let tms: Vec<u8> = [u, s, cu, cs].iter().flat_map(|d| to_ticks(*d).to_le_bytes()).collect();
        t.copy_out(a[0], &tms)?;
    }
    Ok(ticks(t))
}

fn sys_getrusage(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let (u, s) = match a[0] as i32 {
        libc::RUSAGE_SELF => crate::task::process_times(t.kernel(), &t.task.tg),
        libc::RUSAGE_CHILDREN => t.task.tg.children_times.get(),
        libc::RUSAGE_THREAD => t.task.times.get(),
        _ => return Err(Errno::EINVAL),
    };
    let tv = |d: Duration| Timeval { tv_sec: d.as_secs() as i64, tv_usec: d.subsec_micros() as i64 };
    t.write_obj(a[1], &abi::types::Rusage { utime: tv(u), stime: tv(s), ..Default::default() })?;
    Ok(0)
}


fn sys_getuid(t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    Ok(t.creds().uid.real as u64)
}

fn sys_geteuid(t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    Ok(t.creds().uid.effective as u64)
}

fn sys_getgid(t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    Ok(t.creds().gid.real as u64)
}

fn sys_getegid(t: &mut TaskCtx, _a: &Args) -> SysResult<u64> {
    Ok(t.creds().gid.effective as u64)
}

/// Changes the task's credentials with `f` (all-or-nothing).
fn change_creds(t: &TaskCtx, f: impl FnOnce(&mut crate::creds::Creds) -> SysResult<()>) -> SysResult<u64> {
    let mut c = t.task.creds.lock().unwrap();
    let mut new = c.clone();
    f(&mut new)?;
    *c = new;
    Ok(0)
}

fn sys_setuid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    change_creds(t, |c| c.setuid(a[0] as u32))
}

fn sys_setgid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    change_creds(t, |c| c.setgid(a[0] as u32))
}

fn sys_setresuid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    change_creds(t, |c| c.setresuid(a[0] as u32, a[1] as u32, a[2] as u32))
}

fn sys_setresgid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    change_creds(t, |c| c.setresgid(a[0] as u32, a[1] as u32, a[2] as u32))
}

fn sys_setreuid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    change_creds(t, |c| c.setreuid(a[0] as u32, a[1] as u32))
}

fn sys_setregid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    change_creds(t, |c| c.setregid(a[0] as u32, a[1] as u32))
}

fn sys_getresuid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let c = t.creds();
    for (addr, v) in a[..3].iter().zip([c.uid.real, c.uid.effective, c.uid.saved]) {
        t.copy_out(*addr, &v.to_le_bytes())?;
    }
    Ok(0)
}

fn sys_getresgid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let c = t.creds();
    for (addr, v) in a[..3].iter().zip([c.gid.real, c.gid.effective, c.gid.saved]) {
        t.copy_out(*addr, &v.to_le_bytes())?;
    }
    Ok(0)
}

fn sys_setfsuid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    Ok(t.task.creds.lock().unwrap().setfsuid(a[0] as u32) as u64)
}

fn sys_setfsgid(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    Ok(t.task.creds.lock().unwrap().setfsgid(a[0] as u32) as u64)
}

/// Most supplementary groups a task may have (Linux's NGROUPS_MAX).
const NGROUPS_MAX: usize = 65536;

fn sys_getgroups(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let size = a[0] as i32;
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    let groups = t.creds().groups;
    if size == 0 {
        return Ok(groups.len() as u64);
    }
    if (size as usize) < groups.len() {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    t.copy_out(a[1], &bytes)?;
    Ok(groups.len() as u64)
}

fn sys_setgroups(t: &mut TaskCtx, a: &Args) -> SysResult<u64> {
    let n = a[0] as usize;
    if n > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let raw = t.copy_in(a[1], n * 4)?;
    let groups: Vec<u32> = raw.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).collect();
    change_creds(t, |c| {
        if !c.capable(crate::creds::cap::SETGID) {
            return Err(Errno::EPERM);
        }
        c.groups = groups;
        Ok(())
    })
}
