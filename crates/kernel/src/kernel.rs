//! The kernel object: configuration, the process tree, boot of the init
//! process, and what the control server asks of it.

use crate::container::{Container, PidMaps, PidNs, ROOT_PIDNS};
use crate::error::KernelError;
use crate::fs::{self, FdTable, FsContext, Vfs};
use crate::mm::MemoryManager;
use crate::signal::{SigHandlers, SignalState};
use crate::syscall_table::{self, SyscallTable};
use crate::task::{ExitStatus, ProcessState, Task, TaskCtx, ThreadGroup};
use crate::wait::{WaitQueue, Waiter};
use abi::Errno;
use memfile::MemoryFile;
use platform::Platform;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Instant, SystemTime};

#[derive(Clone, Debug)]
pub struct KernelConfig {
    pub hostname: String,
    /// What `uname -r` reports: the sentry's own release, not the host's.
    pub release: String,
    pub strace: bool,
    /// Most tasks the sandbox may hold at once (bounds fork bombs).
    pub max_tasks: usize,
    pub cpus: u32,
    pub total_memory: u64,
    /// The system calls the kernel serves (Linux x86-64's by default).
    pub syscalls: &'static SyscallTable,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            hostname: "veil".into(),
            release: "4.4.0-veil".into(),
            strace: false,
            max_tasks: 1024,
            cpus: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
            total_memory: 2 << 30,
            syscalls: crate::syscalls::linux64(),
        }
    }
}

/// What the init process runs.
pub struct LaunchSpec {
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub stdio: [OwnedFd; 3],
    /// Who it runs as (ids, groups, capabilities).
    pub creds: crate::creds::Creds,
    /// Resource limits other than the defaults (the spec's process.rlimits).
    pub rlimits: Vec<(u32, abi::types::Rlimit)>,
    /// process.oomScoreAdj (a container's init sets its container's).
    pub oom_score_adj: i32,
}

#[derive(Default)]
pub struct ProcessTree {
    next_pid: i32,
    /// Keyed by global pid (see [`crate::container`]).
    pub tasks: BTreeMap<i32, Arc<Task>>,
    pub groups: BTreeMap<i32, Arc<ThreadGroup>>,
    /// Pids inside child PID namespaces.
    pub pids: PidMaps,
}

impl ProcessTree {
    /// A new global pid for a task in `ns`: the lowest unused one above the
    /// last one handed out, as Linux does; it is also numbered inside `ns`.
    pub fn alloc_pid(&mut self, ns: PidNs) -> i32 {
        let pid = loop {
            self.next_pid = if self.next_pid >= 4_194_304 { 1 } else { self.next_pid + 1 };
            if !self.in_use(self.next_pid) {
                break self.next_pid;
            }
        };
        let (tasks, groups) = (&self.tasks, &self.groups);
        self.pids.assign(pid, ns, |p| tasks.contains_key(&p) || groups.contains_key(&p));
        pid
    }

    fn in_use(&self, pid: i32) -> bool {
        self.tasks.contains_key(&pid) || self.groups.contains_key(&pid)
    }
}

/// A snapshot of one process for /proc.
#[derive(Clone, Debug)]
pub struct ProcInfo {
    pub oom_score_adj: i32,
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub comm: String,
    /// R, S, T, Z.
    pub state: char,
    pub cmdline: Vec<u8>,
    pub exe: Vec<u8>,
    pub threads: Vec<i32>,
    pub vm_size: u64,
    pub vm_rss: u64,
    /// Clock ticks (100 Hz) since boot when the process started.
    pub start_ticks: u64,
    /// The leader's credentials.
    pub creds: crate::creds::Creds,
    /// Open descriptors and what they refer to.
    pub fds: Vec<(i32, Vec<u8>)>,
    /// /proc/PID/maps lines.
    pub maps: String,
}

pub struct Kernel {
    pub config: KernelConfig,
    pub platform: Arc<dyn Platform>,
    pub memfile: Arc<MemoryFile>,
    /// The root container's mount tree (/dev/pts and memfds are shared by all).
    pub vfs: Arc<Vfs>,
    pub tree: Mutex<ProcessTree>,
    pub boot_time: Instant,
    pub boot_wall: SystemTime,
    /// The sandbox's own container (the pod's first), then those added to it.
    root: Arc<Container>,
    containers: Mutex<BTreeMap<String, Arc<Container>>>,
    next_pidns: AtomicU32,
    /// Signalled when a process started by `exec` exits.
    orphans: Mutex<()>,
    orphan_exited: Condvar,
    reported: Mutex<HashSet<usize>>,
    reported_features: Mutex<HashSet<(usize, String)>>,
    /// The sandbox's TCP/IP stack, started by the first inet socket.
    net: std::sync::OnceLock<netstack::Stack>,
    log: Mutex<Box<dyn Write + Send>>,
    /// Set when the sandbox is being torn down: no new tasks.
    pub shutting_down: AtomicBool,
    paused: Mutex<bool>,
    resumed: Condvar,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    pub next_inode: AtomicU64,
    /// Waiters on futex words.
    pub futexes: crate::futex::Futexes,
    /// Advisory locks (fcntl record locks, OFD locks, flock).
    pub locks: Arc<crate::fs::lock::LockTable>,
    /// Wakes timerfd waiters at their timers' expiry.
    pub timerfds: crate::fs::timerfd::TimerWheel,
    /// The socket families this kernel serves, by domain (each holding its
    /// own state, such as the unix family's bound names).
    pub sockets: crate::net::socket::Families,
    /// Every inotify watch in the sandbox, by watched inode.
    pub inotify: Arc<crate::fs::inotify::Watches>,
}

impl Kernel {
    pub fn new(config: KernelConfig, platform: Arc<dyn Platform>, memfile: Arc<MemoryFile>, vfs: Arc<Vfs>, log: Box<dyn Write + Send>) -> Arc<Kernel> {
        Arc::new_cyclic(|me: &std::sync::Weak<Kernel>| Kernel {
            locks: Arc::new(crate::fs::lock::LockTable::new(process_alive(me.clone()))),
            timerfds: Default::default(),
            sockets: Default::default(),
            inotify: Default::default(),
            config,
            platform,
            memfile,
            root: Container::new("", vfs.clone(), ROOT_PIDNS),
            vfs,
            tree: Mutex::new(ProcessTree::default()),
            boot_time: Instant::now(),
            boot_wall: SystemTime::now(),
            containers: Mutex::new(BTreeMap::new()),
            next_pidns: AtomicU32::new(1),
            orphans: Mutex::new(()),
            orphan_exited: Condvar::new(),
            reported: Mutex::new(HashSet::new()),
            reported_features: Mutex::new(HashSet::new()),
            net: std::sync::OnceLock::new(),
            log: Mutex::new(log),
            shutting_down: AtomicBool::new(false),
            paused: Mutex::new(false),
            resumed: Condvar::new(),
            threads: Mutex::new(Vec::new()),
            next_inode: AtomicU64::new(1 << 32),
            futexes: Default::default(),
        })
    }

    /// The sandbox's network stack: the loopback link (`lo`, 127.0.0.1/8
    /// and ::1), served entirely in the sentry, and the links taken over
    /// from the container's network namespace, if any.
    pub fn net(&self) -> &netstack::Stack {
        self.net.get_or_init(netstack::Stack::loopback)
    }

    /// Starts the network stack with the container namespace's links
    /// besides loopback (the `sandbox` mode); before any socket exists.
    pub fn start_network(&self, links: Vec<netstack::LinkSpec>) {
        let _ = self.net.set(netstack::Stack::new(links));
    }

    /// The system call table the kernel's tasks run against.
    pub fn syscall_table(&self) -> &'static SyscallTable {
        self.config.syscalls
    }

    /// One line on the sandbox's log (stderr): strace output, warnings.
    pub fn log_line(&self, line: &str) {
        let mut l = self.log.lock().unwrap();
        let _ = writeln!(l, "{line}");
        let _ = l.flush();
    }

    /// A system call the sentry does not implement, made by a process of
    /// container `c`: ENOSYS, counted for the container (`veil events
    /// --stats`), and reported once per sandbox in its log (never the
    /// application's stderr).
    pub fn report_unsupported(&self, c: &Container, nr: usize) {
        c.count_unsupported(nr);
        if self.reported.lock().unwrap().insert(nr) {
            self.log_line(&format!("veil: unsupported syscall {} ({nr})", syscall_table::name(nr)));
        }
    }

    /// A feature of an implemented call the sentry does not support, reported once.
    pub fn report_unsupported_feature(&self, nr: usize, what: &str) {
        if self.reported_features.lock().unwrap().insert((nr, what.to_string())) {
            self.log_line(&format!("veil: unsupported {what} in syscall {} ({nr})", syscall_table::name(nr)));
        }
    }

    /// Builds the init process (pid 1) from `spec`; its code runs once
    /// [`Kernel::start`] is called. The error names what was wrong.
    pub fn create_init(self: &Arc<Self>, spec: LaunchSpec) -> Result<Arc<Task>, KernelError> {
        let root = self.root.clone();
        self.create_container_init(&root, spec)
    }

    /// Builds the init of container `c` (see [`Kernel::create_init`]).
    pub fn create_container_init(self: &Arc<Self>, c: &Arc<Container>, spec: LaunchSpec) -> Result<Arc<Task>, KernelError> {
        if c.init() != 0 {
            return Err(KernelError::AlreadyHasInit(c.id.clone()));
        }
        *c.spec_creds.lock().unwrap() = spec.creds.clone();
        c.oom_score_adj.store(spec.oom_score_adj, std::sync::atomic::Ordering::Relaxed);
        let task = self.create_process(c, spec)?;
        c.set_init(task.tid);
        Ok(task)
    }

    /// The sandbox's own container.
    pub fn root_container(&self) -> &Arc<Container> {
        &self.root
    }

    /// A container by OCI id; "" is the root container.
    pub fn container(&self, id: &str) -> Option<Arc<Container>> {
        if id.is_empty() {
            return Some(self.root.clone());
        }
        self.containers.lock().unwrap().get(id).cloned()
    }

    /// Adds a container with its own mount tree `vfs`, in a PID namespace
    /// of its own or in the sandbox's.
    pub fn add_container(&self, id: &str, vfs: Arc<Vfs>, own_pidns: bool) -> Result<Arc<Container>, KernelError> {
        if self.root.exit_status().is_some() {
            return Err(KernelError::RootStopped);
        }
        let mut cs = self.containers.lock().unwrap();
        if id.is_empty() || cs.contains_key(id) {
            return Err(KernelError::ContainerExists(id.to_string()));
        }
        let ns = if own_pidns { self.next_pidns.fetch_add(1, std::sync::atomic::Ordering::SeqCst) } else { ROOT_PIDNS };
        let c = Container::new(id, vfs, ns);
        cs.insert(id.into(), c.clone());
        Ok(c)
    }

    /// Kills what is left of a container and forgets it.
    pub fn remove_container(&self, id: &str) {
        let c = self.containers.lock().unwrap().remove(id);
        if let Some(c) = c {
            self.kill_container(&c);
        }
    }

    /// Runs `spec` as a new process beside init (`veil exec`): a session of
    /// its own with no parent inside the sandbox, reaped by [`Kernel::wait_pid`].
    pub fn exec(self: &Arc<Self>, spec: LaunchSpec) -> Result<i32, KernelError> {
        let root = self.root.clone();
        self.exec_in(&root, spec)
    }

    /// [`Kernel::exec`] in container `c`.
    pub fn exec_in(self: &Arc<Self>, c: &Arc<Container>, spec: LaunchSpec) -> Result<i32, KernelError> {
        if c.exit_status().is_some() || c.init() == 0 {
            return Err(KernelError::NotRunning);
        }
        let task = self.create_process(c, spec)?;
        let pid = task.tid;
        self.start_task(task);
        Ok(pid)
    }

    fn create_process(self: &Arc<Self>, c: &Arc<Container>, spec: LaunchSpec) -> Result<Arc<Task>, KernelError> {
        let mut fsctx = FsContext::new(&c.vfs);
        fs::vfs::chdir(self, &mut fsctx, 1, &spec.cwd)
            .map_err(|errno| KernelError::Cwd { path: String::from_utf8_lossy(&spec.cwd).into_owned(), errno })?;
        let arg0 = spec.argv.first().ok_or(KernelError::NoArgs)?.clone();
        let path = self.lookup_command(&fsctx, &arg0, &spec.envp)?;
        let mm = MemoryManager::new(self)?;
        let image = crate::loader::load(self, &mm, &fsctx, 1, &path, &spec.argv, &spec.envp)
            .map_err(|error| KernelError::Load { command: String::from_utf8_lossy(&arg0).into_owned(), error })?;

        let mut rlimits = crate::rlimit::Limits::new(self.config.max_tasks as u64);
        for &(resource, limit) in &spec.rlimits {
            rlimits.force(resource, limit)?;
        }
        let files = FdTable::new();
        files.set_limit(rlimits.get(libc::RLIMIT_NOFILE).map_err(KernelError::Errno)?.cur);
        for (i, fd) in spec.stdio.into_iter().enumerate() {
            let f = fs::vfs::host_file(fd).map_err(|errno| KernelError::Stdio { index: i, errno })?;
            files.install_at(i as i32, f, false).map_err(KernelError::Errno)?;
        }

        let mut tree = self.tree.lock().unwrap();
        if tree.tasks.len() >= self.config.max_tasks {
            return Err(KernelError::TaskLimit);
        }
        let pid = tree.alloc_pid(c.pidns);
        let tg = ThreadGroup::new(pid, 0, pid, pid, image.cmdline.clone(), image.exe.clone(), c.clone(), rlimits);
        let task = Task::new(self, pid, &tg, mm, files, Arc::new(Mutex::new(fsctx)), Arc::new(Mutex::new(SigHandlers::default())), SignalState::default())
            ?;
        task.set_comm(&image.comm);
        *task.creds.lock().unwrap() = spec.creds;
        *task.initial_cpu.lock().unwrap() = Some(image.cpu);
        tree.groups.insert(pid, tg);
        tree.tasks.insert(pid, task.clone());
        Ok(task)
    }

    /// A process without a parent inside the sandbox (one started by
    /// [`Kernel::exec`]) has exited: wake whoever waits for it.
    pub fn orphan_exited(&self) {
        let _g = self.orphans.lock().unwrap();
        self.orphan_exited.notify_all();
    }

    /// Waits for a process started by [`Kernel::exec`] to exit and reaps it.
    pub fn wait_pid(&self, pid: i32) -> Result<ExitStatus, KernelError> {
        let mut g = self.orphans.lock().unwrap();
        loop {
            {
                let mut tree = self.tree.lock().unwrap();
                let tg = tree.groups.get(&pid).cloned().ok_or(KernelError::NoProcess(pid))?;
                let zombie = tg.state.lock().unwrap().zombie;
                if let Some(st) = zombie {
                    tree.groups.remove(&pid);
                    return Ok(st);
                }
            }
            g = self.orphan_exited.wait(g).unwrap();
        }
    }

    /// Stops every task before it next runs application code (`veil pause`).
    pub fn pause(&self) {
        *self.paused.lock().unwrap() = true;
        let tasks: Vec<Arc<Task>> = self.tree.lock().unwrap().tasks.values().cloned().collect();
        for t in tasks {
            t.kick();
        }
    }

    pub fn resume(&self) {
        *self.paused.lock().unwrap() = false;
        self.resumed.notify_all();
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.lock().unwrap()
    }

    /// Called by a task's thread before it runs application code.
    pub fn wait_while_paused(&self) {
        let mut p = self.paused.lock().unwrap();
        while *p && !self.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
            p = self.resumed.wait(p).unwrap();
        }
    }

    /// Memory the sandbox's applications use (bytes of the memory file in
    /// use) and its task count.
    pub fn usage(&self) -> (u64, usize) {
        (self.memfile.usage().resident, self.tree.lock().unwrap().tasks.len())
    }

    /// Resolves a command as runc and execvp do: a name without a slash is
    /// looked up in the spec's PATH.
    fn lookup_command(self: &Arc<Self>, fsctx: &FsContext, arg0: &[u8], envp: &[Vec<u8>]) -> Result<Vec<u8>, KernelError> {
        let shown = String::from_utf8_lossy(arg0).into_owned();
        if arg0.is_empty() {
            return Err(KernelError::EmptyCommand);
        }
        if arg0.contains(&b'/') {
            return Ok(arg0.to_vec());
        }
        let path_var = envp
            .iter()
            .find_map(|e| e.strip_prefix(b"PATH="))
            .map(|p| p.to_vec())
            .unwrap_or_else(|| b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_vec());
        for dir in path_var.split(|&b| b == b':').filter(|d| !d.is_empty()) {
            let mut cand = dir.to_vec();
            cand.push(b'/');
            cand.extend_from_slice(arg0);
            if fs::vfs::open_exec(self, fsctx, 1, &cand).is_ok() {
                return Ok(cand);
            }
        }
        Err(KernelError::NotInPath(shown))
    }

    /// Starts a task's host thread.
    pub fn start_task(self: &Arc<Self>, task: Arc<Task>) {
        let name = format!("task-{}", task.tid);
        let h = std::thread::Builder::new()
            .name(name)
            .spawn(move || crate::task::run(task))
            .expect("spawning a task thread");
        self.threads.lock().unwrap().push(h);
    }

    pub fn start(self: &Arc<Self>, init: Arc<Task>) {
        self.start_task(init);
    }

    /// Records the exit of container `c`'s init. What else runs in the
    /// container is killed, as when the init of a PID namespace dies; the
    /// root container's init takes the whole sandbox with it.
    pub fn container_exited(&self, c: &Container, status: ExitStatus) {
        c.set_exited(status);
        if c.is_root() {
            self.kill_all();
        } else {
            self.kill_container(c);
        }
    }

    /// Blocks until the root container's init has exited.
    pub fn wait_init(&self) -> ExitStatus {
        self.root.wait()
    }

    pub fn init_status(&self) -> Option<ExitStatus> {
        self.root.exit_status()
    }

    /// SIGKILL to every process.
    pub fn kill_all(&self) {
        let groups: Vec<Arc<ThreadGroup>> = self.tree.lock().unwrap().groups.values().cloned().collect();
        self.kill_groups(groups);
    }

    /// SIGKILL to every process of container `c`.
    pub fn kill_container(&self, c: &Container) {
        let groups = self.groups_of(c);
        self.kill_groups(groups);
    }

    fn kill_groups(&self, groups: Vec<Arc<ThreadGroup>>) {
        for tg in groups {
            crate::signal::send_to_group(self, &tg, abi::types::Siginfo::from_user(abi::signal::SIGKILL, abi::signal::code::SI_KERNEL, 0, 0));
        }
    }

    /// The processes of container `c`.
    fn groups_of(&self, c: &Container) -> Vec<Arc<ThreadGroup>> {
        self.tree.lock().unwrap().groups.values().filter(|g| std::ptr::eq(Arc::as_ptr(&g.container), c)).cloned().collect()
    }

    /// Global pids of container `c`'s processes (live and zombie), ascending.
    pub fn container_pids(&self, c: &Container) -> Vec<i32> {
        self.groups_of(c).iter().map(|g| g.tgid).collect()
    }

    /// Sends `signo` to init, or to every process with `all`.
    pub fn signal(&self, signo: i32, all: bool) -> Result<(), KernelError> {
        let root = self.root.clone();
        self.signal_container(&root, signo, all)
    }

    /// Sends `signo` to container `c`'s init, or to all its processes with `all`.
    pub fn signal_container(&self, c: &Container, signo: i32, all: bool) -> Result<(), KernelError> {
        let targets: Vec<Arc<ThreadGroup>> = if all {
            self.groups_of(c)
        } else {
            self.tree.lock().unwrap().groups.get(&c.init()).filter(|g| std::ptr::eq(Arc::as_ptr(&g.container), c)).cloned().into_iter().collect()
        };
        if targets.is_empty() {
            return Err(KernelError::NotRunning);
        }
        // From outside every namespace: a namespace's init drops what it
        // does not catch, except SIGKILL and SIGSTOP (as runc's kill).
        for tg in targets.iter().filter(|tg| !crate::signal::init_drops(self, tg, signo, true)) {
            crate::signal::send_to_group(self, tg, abi::types::Siginfo::from_user(signo, abi::signal::code::SI_USER, 0, 0));
        }
        Ok(())
    }

    /// Sends `signo` to process `pid`, as `kill(pid, signo)` from outside.
    pub fn signal_process(&self, pid: i32, signo: i32) -> Result<(), KernelError> {
        let tg = self.tree.lock().unwrap().groups.get(&pid).cloned().ok_or(KernelError::NoProcessInContainer(pid))?;
        if crate::signal::init_drops(self, &tg, signo, true) {
            return Ok(());
        }
        crate::signal::send_to_group(self, &tg, abi::types::Siginfo::from_user(signo, abi::signal::code::SI_USER, 0, 0));
        Ok(())
    }

    /// Tears the sandbox down: kills every task and waits for their threads.
    pub fn shutdown(&self) {
        self.shutting_down.store(true, std::sync::atomic::Ordering::SeqCst);
        self.resume();
        self.kill_all();
        loop {
            let hs: Vec<_> = std::mem::take(&mut *self.threads.lock().unwrap());
            if hs.is_empty() {
                break;
            }
            for h in hs {
                let _ = h.join();
            }
        }
    }

    /// Pids of live and zombie processes, ascending.
    pub fn proc_list(&self) -> Vec<i32> {
        self.tree.lock().unwrap().groups.keys().copied().collect()
    }

    pub fn proc_info(&self, pid: i32) -> Option<ProcInfo> {
        let tree = self.tree.lock().unwrap();
        let tg = tree.groups.get(&pid)?.clone();
        let leader = tree.tasks.get(&pid).cloned().or_else(|| {
            let st = tg.state.lock().unwrap();
            st.threads.first().and_then(|t| tree.tasks.get(t).cloned())
        });
        drop(tree);
        let st = tg.state.lock().unwrap();
        let state = if st.zombie.is_some() {
            'Z'
        } else if st.stopped {
            'T'
        } else {
            'S'
        };
        let (ppid, pgid, sid, threads) = (st.ppid, st.pgid, st.sid, st.threads.clone());
        drop(st);
        let (comm, vm_size, vm_rss, fds, maps) = match leader.as_ref().and_then(|t| t.mm().map(|mm| (t, mm))) {
            Some((t, mm)) => {
                let files = t.files();
                let fds = files
                    .fds()
                    .into_iter()
                    .filter_map(|fd| files.get(fd).ok().map(|f| (fd, describe_file(&f))))
                    .collect();
                (t.comm_string(), mm.vm_size(), mm.vm_rss(), fds, mm.maps_text())
            }
            None => (String::new(), 0, 0, Vec::new(), String::new()),
        };
        let cmdline = tg.cmdline.lock().unwrap().clone();
        let exe = tg.exe.lock().unwrap().clone();
        Some(ProcInfo {
            pid,
            ppid,
            pgid,
            sid,
            comm,
            state,
            cmdline,
            exe,
            threads,
            vm_size,
            vm_rss,
            start_ticks: (tg.start_time.duration_since(self.boot_time).as_millis() / 10) as u64,
            creds: leader.as_ref().map(|t| t.creds.lock().unwrap().clone()).unwrap_or_default(),
            oom_score_adj: tg.container.oom_score_adj.load(std::sync::atomic::Ordering::Relaxed),
            fds,
            maps,
        })
    }

    pub fn task(&self, tid: i32) -> Option<Arc<Task>> {
        self.tree.lock().unwrap().tasks.get(&tid).cloned()
    }
}

/// Whether process `pid` of the kernel `k` still exists (not yet a zombie).
fn process_alive(k: std::sync::Weak<Kernel>) -> crate::fs::lock::ProcessAlive {
    Box::new(move |pid| {
        let Some(k) = k.upgrade() else { return false };
        let g = k.tree.lock().unwrap().groups.get(&pid).cloned();
        g.is_some_and(|g| g.state.lock().unwrap().zombie.is_none())
    })
}

fn describe_file(f: &fs::OpenFile) -> Vec<u8> {
    match &f.location {
        Some(l) => l.path(),
        None => match f.ops.stat() {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFIFO => format!("pipe:[{}]", st.st_ino).into_bytes(),
            Ok(st) => format!("anon_inode:[{}]", st.st_ino).into_bytes(),
            Err(_) => b"anon_inode:[unknown]".to_vec(),
        },
    }
}

/// "No such file or directory"-style text for an errno.
pub fn errno_text(e: Errno) -> String {
    std::io::Error::from_raw_os_error(e.0).to_string().split(" (os error").next().unwrap_or("").to_lowercase()
}

impl ThreadGroup {
    #[allow(clippy::too_many_arguments)]
    pub fn new(tgid: i32, ppid: i32, pgid: i32, sid: i32, cmdline: Vec<u8>, exe: Vec<u8>, container: Arc<Container>, rlimits: crate::rlimit::Limits) -> Arc<ThreadGroup> {
        Arc::new(ThreadGroup {
            tgid,
            rlimits: Mutex::new(rlimits),
            container,
            state: Mutex::new(ProcessState {
                ppid,
                pgid,
                sid,
                children: Vec::new(),
                threads: vec![tgid],
                group_exit: None,
                zombie: None,
                shared_pending: Default::default(),
                stopped: false,
                stop_event: None,
                continued: false,
            }),
            child_events: WaitQueue::new(),
            handlers: Mutex::new(Arc::new(Mutex::new(SigHandlers::default()))),
            cmdline: Mutex::new(cmdline),
            exe: Mutex::new(exe),
            start_time: Instant::now(),
            vfork_done: WaitQueue::new(),
            signal_events: WaitQueue::new(),
            real_timer: Default::default(),
            virtual_timer: Default::default(),
            prof_timer: Default::default(),
            exited_times: Default::default(),
            children_times: Default::default(),
        })
    }
}

impl Task {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kernel: &Arc<Kernel>,
        tid: i32,
        tg: &Arc<ThreadGroup>,
        mm: Arc<MemoryManager>,
        files: Arc<FdTable>,
        fs: Arc<Mutex<FsContext>>,
        handlers: Arc<Mutex<SigHandlers>>,
        signals: SignalState,
    ) -> Result<Arc<Task>, KernelError> {
        *tg.handlers.lock().unwrap() = handlers;
        let context = kernel.platform.new_context().map_err(KernelError::Context)?;
        Ok(Arc::new(Task {
            kernel: kernel.clone(),
            tid,
            tg: tg.clone(),
            mm: Mutex::new(Some(mm)),
            files: Mutex::new(files),
            fs: Mutex::new(fs),
            waiter: Waiter::new().map_err(KernelError::Waiter)?,
            context: Mutex::new(context),
            signals: Mutex::new(signals),
            attention: AtomicBool::new(false),
            exit_requested: AtomicBool::new(false),
            clear_child_tid: AtomicU64::new(0),
            robust_list: AtomicU64::new(0),
            sched: Mutex::new(Default::default()),
            creds: Mutex::new(crate::creds::Creds::default()),
            times: Default::default(),
            comm: Mutex::new([0; 16]),
            initial_cpu: Mutex::new(None),
            vfork_parent: Mutex::new(None),
        }))
    }
}

/// The task a syscall handler runs for, by tid (for tests and /proc).
pub fn current_pid(t: &TaskCtx) -> i32 {
    t.tgid()
}
