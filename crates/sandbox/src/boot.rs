//! The sandbox boot, in order: read the spec, open the root, build the
//! memory file, platform and kernel, install the sentry's seccomp filter,
//! then serve the control socket. The filter is in place before `create`
//! loads any application code, so no application instruction ever runs in
//! a process the filter does not cover.

use crate::args::BootArgs;
use crate::error::{BootError, NotOpen};
use crate::server::{ControlMode, Server};
use crate::spec::Spec;
use kernel::{Kernel, KernelConfig, LaunchSpec};
use memfile::MemoryFile;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// Size of the sparse memory file: the most application memory one sandbox
/// can address. Pages cost host memory only once touched.
const MEMORY_FILE_SIZE: u64 = 64 << 30;

/// Host signals forwarded to the container's init, as runc forwards the
/// signals its foreground process receives.
const FORWARDED: [i32; 6] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2];

pub(crate) fn take_fd(fd: RawFd, what: &str) -> Result<OwnedFd, NotOpen> {
    // SAFETY: F_GETFD only queries the descriptor.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(NotOpen { what: what.into(), fd });
    }
    // SAFETY: the descriptor was donated to this process for this purpose and
    // nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sets FD_CLOEXEC on a descriptor we own.
    unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(owned)
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Blocks the forwarded signals (the forwarder thread takes them with
/// sigwait) and gives each a handler that is never run: a sandbox that is
/// PID 1 of its own PID namespace is otherwise not sent signals it has no
/// handler for from outside the namespace.
fn block_forwarded_signals() -> libc::sigset_t {
    // SAFETY: sigset_t and sigaction are plain data; the libc calls
    // initialise and use them; the handler does nothing.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        for s in FORWARDED {
            libc::sigaction(s, &sa, std::ptr::null_mut());
        }
        set
    }
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map(|kb| kb * 1024)
        .unwrap_or(2 << 30)
}

/// The links handed over with `--net-links`/`--net-fds`, as the stack takes them.
fn taken_links(args: &BootArgs) -> Result<Vec<netstack::LinkSpec>, BootError> {
    let Some(json) = &args.net_links else { return Ok(Vec::new()) };
    let links: Vec<control::network::TakenLink> = serde_json::from_str(json).map_err(BootError::NetLinks)?;
    if links.len() != args.net_fds.len() {
        return Err(BootError::NetLinkCount { links: links.len(), fds: args.net_fds.len() });
    }
    links
        .into_iter()
        .zip(&args.net_fds)
        .map(|(l, &fd)| {
            Ok(netstack::LinkSpec { fd: take_fd(fd, &l.name)?, name: l.name, mac: l.mac, mtu: l.mtu as usize, addrs: l.addrs, gateways: l.gateways })
        })
        .collect()
}

pub fn run(args: BootArgs) -> Result<(), BootError> {
    if args.setup_root {
        // First, while this is the only thread.
        crate::isolation::private_mount_namespace()?;
    }
    if args.die_with_parent {
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } == 1 {
            return Err(BootError::ParentExited);
        }
    }
    let control = take_fd(args.control_fd, "control")?;
    // Asked now: the seccomp filter installed below does not allow getsockopt.
    let mode = ControlMode::of(&control)?;
    let mut spec_file = std::fs::File::from(take_fd(args.spec_fd, "spec")?);
    let stdio = [take_fd(args.stdio_fds[0], "stdin")?, take_fd(args.stdio_fds[1], "stdout")?, take_fd(args.stdio_fds[2], "stderr")?];
    let gofer = take_fd(args.mounts_fd, "mounts")?;
    let links = taken_links(&args)?;
    let mut text = Vec::new();
    spec_file.read_to_end(&mut text).map_err(BootError::ReadSpec)?;
    drop(spec_file);
    let spec = Spec::parse(&text)?;
    let mounts = crate::mounts::receive(&gofer)?;
    drop(gofer);

    let log_fd = args.log_fd.map(|fd| take_fd(fd, "log")).transpose()?;
    let log = crate::log::writer(log_fd, args.log_json);

    let sigset = block_forwarded_signals();
    let memfile = Arc::new(MemoryFile::new(MEMORY_FILE_SIZE).map_err(BootError::MemoryFile)?);
    // Before the seccomp filter: building a VM needs ioctls the filter
    // refuses; and before the root goes: it opens /dev/kvm.
    let chosen = crate::platforms::create(&args.platform, &memfile).map_err(BootError::Platform)?;
    let skipped = mounts.skipped.clone();
    let vfs = crate::mounts::container_fs(mounts, &spec.linux.covers, |root, mode| kernel::fs::Vfs::new(root, mode, memfile.clone()))?;
    let config = KernelConfig {
        hostname: spec.hostname.clone().unwrap_or_else(|| "veil".into()),
        strace: args.strace,
        total_memory: args.total_memory.unwrap_or_else(host_memory),
        ..KernelConfig::default()
    };
    let config = KernelConfig {
        cpus: args.cpus.unwrap_or(config.cpus),
        max_tasks: args.max_tasks.unwrap_or(config.max_tasks).min(chosen.entry.max_tasks.unwrap_or(usize::MAX)),
        ..config
    };
    if args.setup_root {
        let threads = crate::isolation::thread_count()?;
        if threads != 1 {
            return Err(BootError::Threads(threads));
        }
        crate::isolation::pivot_to_empty_root()?;
        crate::isolation::drop_privileges(chosen.entry.needs_ptrace_cap)?;
    }
    let platform_calls = chosen.entry.host_syscalls;
    let kernel = Kernel::new(config, chosen.platform, memfile, vfs, log);
    if !links.is_empty() {
        // Now, so the links answer (ARP, NDP, ping) before any socket exists.
        kernel.start_network(links);
    }
    if args.debug {
        kernel.log_line(&format!("veil: sandbox {} on platform {}", std::process::id(), chosen.entry.name));
        if let Some(why) = &chosen.note {
            kernel.log_line(&format!("veil: {why}"));
        }
        for s in &skipped {
            kernel.log_line(&format!("veil: mount {s}"));
        }
    }
    spawn_signal_forwarder(kernel.clone(), sigset)?;

    if std::env::var_os("VEIL_UNSAFE_NO_SECCOMP").is_none() {
        // The trap first: once the allow-list is in, seccomp(2) is refused.
        let trap = seccomp::vsyscall_trap_filter().map_err(BootError::SeccompFilter)?;
        seccomp::install(&trap).map_err(BootError::SeccompInstall)?;
        let filter = seccomp::sentry_filter(platform_calls).map_err(BootError::SeccompFilter)?;
        seccomp::install(&filter).map_err(BootError::SeccompInstall)?;
    } else {
        kernel.log_line("veil: WARNING: the sentry runs without its seccomp filter");
    }

    let process = spec.process.ok_or(crate::error::SpecError::NoProcess)?;
    let creds = crate::spec::creds_of(&process.identity)?;
    let rlimits = crate::spec::rlimits_of(&process.identity)?;
    let launch = LaunchSpec {
        argv: process.args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        envp: process.env.iter().map(|a| a.as_bytes().to_vec()).collect(),
        cwd: process.cwd.into_bytes(),
        stdio,
        creds,
        rlimits,
        oom_score_adj: process.identity.oom_score_adj,
    };
    let server = Server::new(kernel.clone(), launch);
    match mode {
        ControlMode::Connection => {
            // `veil do`: the one connection's end is the sandbox's end.
            server.serve(Arc::new(control));
            kernel.shutdown();
        }
        // The lifecycle: serve until a `destroy` request exits the process.
        ControlMode::Rendezvous => {
            if args.exit_with_init {
                server.exit_with_init()?;
            }
            server.serve_rendezvous(control)?
        }
    }
    Ok(())
}

/// Forwards the host signals the sandbox process receives to the init
/// process inside.
fn spawn_signal_forwarder(kernel: Arc<Kernel>, set: libc::sigset_t) -> Result<(), BootError> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is an initialised sigset and `sig` a valid out-pointer.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                let _ = kernel.signal(sig, false);
            }
        })
        .map(drop)
        .map_err(BootError::SignalThread)
}
