//! What `boot --setup-root` does to the sandbox process itself once it has
//! opened every host resource it needs (the mount trees, the memory file,
//! `/dev/kvm`): an empty read-only root, then the fewest privileges.
//!
//! The process starts in namespaces its spawner made (user, mount, IPC,
//! UTS, network, and PID where the platform allows), as root of its user
//! namespace. All of this runs before the sentry starts any thread, since
//! capabilities are per thread.

use crate::error::IsolationError;
use std::ffi::CStr;
use std::io;

/// The host's `nobody`, which the sentry runs as when its user namespace
/// maps it.
pub const NOBODY: libc::uid_t = 65534;

/// The error of the host call `what` that just failed.
fn failed(what: impl Into<String>) -> IsolationError {
    IsolationError { what: what.into(), source: io::Error::last_os_error() }
}

fn check(r: libc::c_int, what: &str) -> Result<(), IsolationError> {
    if r < 0 {
        return Err(failed(what));
    }
    Ok(())
}

fn mount(source: &CStr, target: &CStr, fstype: Option<&CStr>, flags: libc::c_ulong, data: Option<&CStr>, what: &str) -> Result<(), IsolationError> {
    let fstype = fstype.map_or(std::ptr::null(), CStr::as_ptr);
    let data = data.map_or(std::ptr::null(), |d| d.as_ptr().cast());
    // SAFETY: every pointer is a valid C string or null.
    check(unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype, flags, data) }, what)
}

/// A mount namespace of this process's own, so that nothing below can
/// touch the caller's. Must run while the process has one thread (a new
/// mount namespace applies to the calling thread).
pub fn private_mount_namespace() -> Result<(), IsolationError> {
    // SAFETY: plain system call.
    check(unsafe { libc::unshare(libc::CLONE_NEWNS) }, "unshare(CLONE_NEWNS)")?;
    mount(c"none", c"/", None, libc::MS_REC | libc::MS_PRIVATE, None, "making mounts private")
}

/// Host threads of this process, from /proc (read before the root goes).
pub fn thread_count() -> Result<usize, IsolationError> {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).map_err(|source| IsolationError { what: "/proc/self/task".into(), source })
}

/// Makes an empty read-only tmpfs the root of this mount namespace and
/// detaches everything else from it. The tmpfs exists only in this
/// namespace: nothing is created on the host, nothing is left behind.
pub fn pivot_to_empty_root() -> Result<(), IsolationError> {
    // Any directory will do as the mount point; /proc exists on every host
    // this runs on, and what it hides here is detached a moment later.
    let point = c"/proc";
    mount(c"veil-root", point, Some(c"tmpfs"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, Some(c"mode=0555,size=4k,nr_inodes=1"), "mounting the empty root")?;
    // SAFETY: plain system calls on valid C strings.
    unsafe {
        check(libc::chdir(point.as_ptr()), "chdir to the empty root")?;
        check(libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as libc::c_int, "pivot_root")?;
        // The old root now sits on top of the new one: detach it whole.
        check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH), "detaching the host root")?;
        check(libc::chdir(c"/".as_ptr()), "chdir /")?;
    }
    let ro = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount(c"none", c"/", None, ro, None, "making the empty root read-only")
}

// Capability numbers (linux/capability.h).
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_SYS_PTRACE: u32 = 19;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Drops to `nobody` (when the user namespace maps it) holding only
/// CAP_DAC_OVERRIDE — file access through the donated trees for whatever
/// user the container runs as, which the sentry checks itself — and, for
/// the ptrace platform, CAP_SYS_PTRACE, which attaching to the stub
/// processes needs once the sentry is no longer dumpable. Both count only
/// inside the sandbox's user namespace. The bounding and ambient sets are
/// emptied of everything else, so no exec could get more back.
pub fn drop_privileges(ptrace: bool) -> Result<(), IsolationError> {
    let mut keep = 1u64 << CAP_DAC_OVERRIDE;
    if ptrace {
        keep |= 1 << CAP_SYS_PTRACE;
    }
    // SAFETY: prctl, setgroups, setres[ug]id and capset with valid arguments.
    unsafe {
        for cap in (0..64u64).filter(|c| keep & (1 << c) == 0) {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 {
                match io::Error::last_os_error().raw_os_error() {
                    // Past the kernel's last capability.
                    Some(libc::EINVAL) => break,
                    _ => return Err(failed(format!("dropping capability {cap} from the bounding set"))),
                }
            }
        }
        check(libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clearing ambient capabilities")?;
        // Denied (EPERM) in a user namespace a non-root caller made; then
        // there are no supplementary groups worth dropping anyway.
        if libc::setgroups(0, std::ptr::null()) < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EPERM) {
            return Err(failed("setgroups"));
        }
        check(libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0), "PR_SET_KEEPCAPS")?;
        // EINVAL: nobody is not mapped (a non-root caller's namespace maps
        // only the caller); the sentry stays the caller then.
        if libc::setresgid(NOBODY, NOBODY, NOBODY) == 0 {
            check(libc::setresuid(NOBODY, NOBODY, NOBODY), "setresuid(nobody)")?;
        } else if io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            return Err(failed("setresgid(nobody)"));
        }
        check(libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0), "PR_SET_KEEPCAPS")?;
        let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
        let low = CapData { effective: keep as u32, permitted: keep as u32, inheritable: 0 };
        let data = [low, CapData::default()];
        check(libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) as libc::c_int, "capset")?;
    }
    Ok(())
}
