//! The control server: what the CLI asks of a booted sandbox.
//!
//! Two modes, told apart by the donated control descriptor's socket type
//! (see the `veil-control` crate):
//! - **connection** (`SOCK_STREAM`, a connected socketpair): `veil do`. The
//!   one connection is served on the calling thread; when it closes the
//!   sandbox kills everything and exits.
//! - **rendezvous** (`SOCK_DGRAM`, bound at the container's `sandbox.sock`):
//!   the lifecycle commands, one short-lived CLI process each. Every
//!   connection received is served on a thread of its own, closing one
//!   changes nothing, and the init's exit status is kept after it exits so
//!   that later `state` and `wait` still answer. Only `destroy` ends the
//!   sandbox, unless it was booted with `--exit-with-init`: an engine's
//!   shim waits on the pid-file process for the container's exit status,
//!   so that sandbox exits with the init's status once the replies in
//!   flight (the `wait`s it answers) are sent.
//!
//! A pod's further containers join with `createContainer` (see
//! [`crate::pod`]); each has its own init, tracked here under its id (the
//! root container's is "").

use crate::error::ServerError;
use control::{ProcessEntry, Request, Response, SandboxState, UnsupportedCall, WaitStatus};
use kernel::container::Container;
use kernel::task::{ExitStatus, Task};
use kernel::{Kernel, LaunchSpec};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long, once the init has exited, replies still being written may hold
/// up an `--exit-with-init` sandbox's exit.
const REPLY_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ControlMode {
    Connection,
    Rendezvous,
}

impl ControlMode {
    /// Must be asked before the seccomp filter is installed (no getsockopt).
    pub fn of(control: &OwnedFd) -> Result<ControlMode, ServerError> {
        let mut kind: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `kind` and `len` are valid out-pointers of the sizes given.
        let r = unsafe {
            libc::getsockopt(control.as_raw_fd(), libc::SOL_SOCKET, libc::SO_TYPE, (&mut kind as *mut libc::c_int).cast(), &mut len)
        };
        if r < 0 {
            return Err(ServerError::NotSocket(std::io::Error::last_os_error()));
        }
        match kind {
            libc::SOCK_STREAM => Ok(ControlMode::Connection),
            libc::SOCK_DGRAM => Ok(ControlMode::Rendezvous),
            other => Err(ServerError::SocketType(other)),
        }
    }
}

/// Where the container's init is in its life, as the sandbox sees it.
enum Init {
    /// Built from the spec at boot, not yet loaded (`create` loads it).
    Pending(LaunchSpec),
    /// Loaded; its code has not run.
    Created(Arc<Task>),
    /// `start` let it run (it may have exited since: see `Kernel::init_status`).
    Started,
    /// Transitional: taken while a request works on it.
    Busy,
}

pub struct Server {
    kernel: Arc<Kernel>,
    /// Each container's init, by container id ("" for the root container).
    inits: Mutex<BTreeMap<String, Init>>,
    /// Requests received and not yet answered, and a signal when none are.
    in_flight: Mutex<usize>,
    answered: Condvar,
}

/// The root container's key in `Server::inits`.
const ROOT: &str = "";

/// What handling one request produced.
enum Outcome {
    Reply(Response),
    /// Answered later, from a thread of its own, so that requests sent on the
    /// same connection meanwhile (a forwarded signal) are still served.
    Deferred(Box<dyn FnOnce() -> Response + Send>),
    /// Reply, then tear down and exit.
    Exit,
}

impl Server {
    pub fn new(kernel: Arc<Kernel>, launch: LaunchSpec) -> Arc<Server> {
        Arc::new(Server {
            kernel,
            inits: Mutex::new(BTreeMap::from([(ROOT.to_string(), Init::Pending(launch))])),
            in_flight: Mutex::new(0),
            answered: Condvar::new(),
        })
    }

    /// Exits the process with the init's shell status once the init has
    /// exited and the replies in flight are out (or `REPLY_GRACE` passed).
    pub fn exit_with_init(self: &Arc<Self>) -> Result<(), ServerError> {
        let server = self.clone();
        std::thread::Builder::new()
            .name("init-exit".into())
            .spawn(move || {
                let status = server.kernel.wait_init();
                server.wait_answered(REPLY_GRACE);
                server.kernel.shutdown();
                std::process::exit(shell_status(status));
            })
            .map(drop)
            .map_err(|source| ServerError::Thread { what: "the init-exit thread", source })
    }

    fn wait_answered(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let mut n = self.in_flight.lock().unwrap();
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            n = self.answered.wait_timeout(n, left).unwrap().0;
        }
    }

    fn answering(&self) {
        *self.in_flight.lock().unwrap() += 1;
    }

    fn answered(&self) {
        let mut n = self.in_flight.lock().unwrap();
        *n -= 1;
        if *n == 0 {
            self.answered.notify_all();
        }
    }

    /// Receives connections on the rendezvous socket, each served on its own
    /// thread, until a `destroy` request exits the process.
    pub fn serve_rendezvous(self: &Arc<Self>, rendezvous: OwnedFd) -> Result<(), ServerError> {
        loop {
            let conn = control::accept_rendezvous(&rendezvous).map_err(ServerError::Accept)?;
            let server = self.clone();
            std::thread::Builder::new()
                .name("control".into())
                .spawn(move || server.serve(Arc::new(conn)))
                .map_err(|source| ServerError::Thread { what: "a control thread", source })?;
        }
    }

    /// Serves one connection until the client closes it.
    pub fn serve(self: &Arc<Self>, conn: Arc<OwnedFd>) {
        // Replies go out under one lock: deferred ones come from other threads.
        let reply_lock = Arc::new(Mutex::new(()));
        let send = {
            let (conn, reply_lock) = (conn.clone(), reply_lock.clone());
            move |resp: &Response| {
                let _g = reply_lock.lock().unwrap();
                control::send(&*conn, resp).is_ok()
            }
        };
        loop {
            let (req, fds): (Request, Vec<OwnedFd>) = match control::recv_with_fds(&*conn) {
                Ok(r) => r,
                Err(control::ControlError::Closed) => return,
                Err(e) => {
                    self.kernel.log_line(&format!("veil: control: {e}"));
                    return;
                }
            };
            self.answering();
            match self.handle(req, fds) {
                Outcome::Reply(resp) => {
                    let sent = send(&resp);
                    self.answered();
                    if !sent {
                        return;
                    }
                }
                Outcome::Deferred(work) => {
                    let (send, server) = (send.clone(), self.clone());
                    std::thread::spawn(move || {
                        send(&work());
                        server.answered();
                    });
                }
                Outcome::Exit => {
                    self.kernel.shutdown();
                    send(&Response::Ok);
                    std::process::exit(0);
                }
            }
        }
    }

    fn handle(&self, req: Request, fds: Vec<OwnedFd>) -> Outcome {
        let error = |e: ServerError| Outcome::Reply(Response::Error { message: e.to_string() });
        let ok = |r: Result<(), ServerError>| match r {
            Ok(()) => Outcome::Reply(Response::Ok),
            Err(e) => error(e),
        };
        let container = |id: &Option<String>| {
            let id = id.as_deref().unwrap_or(ROOT);
            self.kernel.container(id).ok_or_else(|| ServerError::NoContainer(id.to_string()))
        };
        match req {
            Request::Create => ok(self.create()),
            Request::CreateContainer { id, spec } => ok(self.create_container(id, spec, fds)),
            Request::Start { container } => ok(self.start(container.as_deref().unwrap_or(ROOT))),
            Request::Wait { container: id } => match container(&id) {
                // Its init will never run: it went down with the root container.
                Ok(c) if self.never_ran(&c) => Outcome::Reply(Response::Waited(WaitStatus { exit_code: None, signal: Some(libc::SIGKILL) })),
                Ok(c) => Outcome::Deferred(Box::new(move || Response::Waited(wait_status(c.wait())))),
                Err(e) => error(e),
            },
            Request::Signal { signo, all, container: id } => ok(container(&id).and_then(|c| Ok(self.kernel.signal_container(&c, signo, all)?))),
            Request::SignalProcess { pid, signo } => ok(self.kernel.signal_process(pid, signo).map_err(ServerError::from)),
            Request::State { container: id } => match container(&id) {
                Ok(c) => Outcome::Reply(Response::State(self.state(&c))),
                Err(e) => error(e),
            },
            Request::DestroyContainer { id } => ok(self.destroy_container(&id)),
            Request::Exec { args, env, cwd, container: id } => {
                let c = match container(&id) {
                    Ok(c) => c,
                    Err(e) => return error(e),
                };
                let stdio: [OwnedFd; 3] = match fds.try_into() {
                    Ok(s) => s,
                    Err(got) => return error(ServerError::ExecStdio(got.len())),
                };
                if args.is_empty() {
                    return error(ServerError::ExecNoArgs);
                }
                let launch = LaunchSpec {
                    argv: args.into_iter().map(String::into_bytes).collect(),
                    envp: env.into_iter().map(String::into_bytes).collect(),
                    cwd: cwd.into_bytes(),
                    stdio,
                    creds: c.spec_creds(),
                    rlimits: Vec::new(),
                    oom_score_adj: 0,
                };
                match self.kernel.exec_in(&c, launch) {
                    Ok(pid) => Outcome::Reply(Response::Pid { pid }),
                    Err(e) => error(e.into()),
                }
            }
            Request::WaitPid { pid } => {
                let k = self.kernel.clone();
                Outcome::Deferred(Box::new(move || match k.wait_pid(pid) {
                    Ok(s) => Response::Waited(wait_status(s)),
                    Err(e) => Response::Error { message: e.to_string() },
                }))
            }
            Request::Pause => {
                self.kernel.pause();
                Outcome::Reply(Response::Ok)
            }
            Request::Resume => {
                self.kernel.resume();
                Outcome::Reply(Response::Ok)
            }
            Request::Ps { container: id } => match container(&id) {
                Ok(c) => Outcome::Reply(Response::Processes { processes: self.processes(&c) }),
                Err(e) => error(e),
            },
            Request::Stats { container: id } => match container(&id) {
                Ok(c) => {
                    let (memory, tasks) = self.kernel.usage();
                    let unsupported = c.unsupported_calls().into_iter().map(|(nr, count)| UnsupportedCall { name: kernel::syscalls::name(nr).into(), nr: nr as u32, count }).collect();
                    Outcome::Reply(Response::Stats { memory, tasks: tasks as u64, unsupported })
                }
                Err(message) => error(message),
            },
            Request::Destroy => Outcome::Exit,
        }
    }

    fn create(&self) -> Result<(), ServerError> {
        let mut inits = self.inits.lock().unwrap();
        let init = inits.get_mut(ROOT).expect("the root container's init");
        match std::mem::replace(init, Init::Busy) {
            Init::Pending(launch) => match self.kernel.create_init(launch) {
                Ok(task) => {
                    *init = Init::Created(task);
                    Ok(())
                }
                // The launch spec (and its stdio) is consumed: nothing to retry.
                Err(e) => {
                    *init = Init::Started;
                    Err(e.into())
                }
            },
            other => {
                *init = other;
                Err(ServerError::AlreadyCreated)
            }
        }
    }

    /// Adds a container of the pod and builds its init (see [`crate::pod`]).
    fn create_container(&self, id: String, spec: control::ContainerSpec, fds: Vec<OwnedFd>) -> Result<(), ServerError> {
        let mut inits = self.inits.lock().unwrap();
        if inits.contains_key(&id) {
            return Err(ServerError::ContainerExists(id));
        }
        let task = crate::pod::create_container(&self.kernel, &id, spec, fds)?;
        inits.insert(id, Init::Created(task));
        Ok(())
    }

    fn start(&self, id: &str) -> Result<(), ServerError> {
        let mut inits = self.inits.lock().unwrap();
        let init = inits.get_mut(id).ok_or_else(|| ServerError::NoContainer(id.to_string()))?;
        match std::mem::replace(init, Init::Busy) {
            Init::Created(task) => {
                self.kernel.start(task);
                *init = Init::Started;
                Ok(())
            }
            other => {
                *init = other;
                Err(ServerError::NotCreated)
            }
        }
    }

    /// Ends an added container: its processes are killed (an init that
    /// never ran is let run into its SIGKILL, so that it exits) and the
    /// sandbox forgets it.
    fn destroy_container(&self, id: &str) -> Result<(), ServerError> {
        let init = self.inits.lock().unwrap().remove(id);
        if id == ROOT || init.is_none() {
            return Err(ServerError::NoAddedContainer(id.to_string()));
        }
        let c = self.kernel.container(id);
        self.kernel.remove_container(id);
        if let Some(Init::Created(task)) = init {
            self.kernel.start(task);
        }
        // A paused sandbox's tasks take their SIGKILL when it resumes.
        if let Some(c) = c.filter(|_| !self.kernel.is_paused()) {
            c.wait();
        }
        Ok(())
    }

    /// Whether `c` is an added container whose init never ran and never
    /// will: the root container's end takes every container down.
    fn never_ran(&self, c: &Container) -> bool {
        let started = matches!(self.inits.lock().unwrap().get(&c.id), Some(Init::Started));
        !c.is_root() && !started && self.kernel.init_status().is_some()
    }

    fn state(&self, c: &Container) -> SandboxState {
        let exit = c.exit_status().map(wait_status);
        let started = matches!(self.inits.lock().unwrap().get(&c.id), Some(Init::Started));
        let status = if exit.is_some() || self.never_ran(c) {
            "stopped"
        } else if !started {
            "created"
        } else if self.kernel.is_paused() {
            "paused"
        } else {
            "running"
        };
        SandboxState { status: status.into(), pids: self.pids(c), exit }
    }

    fn pids(&self, c: &Container) -> Vec<i32> {
        self.kernel.container_pids(c)
    }

    fn processes(&self, c: &Container) -> Vec<ProcessEntry> {
        self.pids(c)
            .into_iter()
            .filter_map(|pid| self.kernel.proc_info(pid))
            .map(|p| {
                let cmd = p.cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).map(String::from_utf8_lossy).collect::<Vec<_>>().join(" ");
                ProcessEntry {
                    pid: p.pid,
                    ppid: p.ppid,
                    uid: p.creds.uid.effective,
                    state: p.state.to_string(),
                    start_ticks: p.start_ticks,
                    cmd: if cmd.is_empty() { p.comm } else { cmd },
                }
            })
            .collect()
    }
}

/// A shell's view of the init's exit: its code, or 128 + the signal (what a
/// shim reports for a signalled init).
fn shell_status(s: ExitStatus) -> i32 {
    match s {
        ExitStatus::Exited(c) => c & 0xff,
        ExitStatus::Signaled { signo, .. } => 128 + signo,
    }
}

fn wait_status(s: ExitStatus) -> WaitStatus {
    match s {
        ExitStatus::Exited(c) => WaitStatus { exit_code: Some(c), signal: None },
        ExitStatus::Signaled { signo, .. } => WaitStatus { exit_code: None, signal: Some(signo) },
    }
}
