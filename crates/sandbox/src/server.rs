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

use control::{ProcessEntry, Request, Response, SandboxState, WaitStatus};
use kernel::task::{ExitStatus, Task};
use kernel::{Kernel, LaunchSpec};
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
    pub fn of(control: &OwnedFd) -> Result<ControlMode, String> {
        let mut kind: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `kind` and `len` are valid out-pointers of the sizes given.
        let r = unsafe {
            libc::getsockopt(control.as_raw_fd(), libc::SOL_SOCKET, libc::SO_TYPE, (&mut kind as *mut libc::c_int).cast(), &mut len)
        };
        if r < 0 {
            return Err(format!("control descriptor is not a socket: {}", std::io::Error::last_os_error()));
        }
        match kind {
            libc::SOCK_STREAM => Ok(ControlMode::Connection),
            libc::SOCK_DGRAM => Ok(ControlMode::Rendezvous),
            other => Err(format!("control socket has unsupported type {other}")),
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
    init: Mutex<Init>,
    /// Requests received and not yet answered, and a signal when none are.
    in_flight: Mutex<usize>,
    answered: Condvar,
}

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
        Arc::new(Server { kernel, init: Mutex::new(Init::Pending(launch)), in_flight: Mutex::new(0), answered: Condvar::new() })
    }

    /// Exits the process with the init's shell status once the init has
    /// exited and the replies in flight are out (or `REPLY_GRACE` passed).
    pub fn exit_with_init(self: &Arc<Self>) -> Result<(), String> {
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
            .map_err(|e| format!("spawning the init-exit thread: {e}"))
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
    pub fn serve_rendezvous(self: &Arc<Self>, rendezvous: OwnedFd) -> Result<(), String> {
        loop {
            let conn = control::accept_rendezvous(&rendezvous).map_err(|e| format!("control socket: {e}"))?;
            let server = self.clone();
            std::thread::Builder::new()
                .name("control".into())
                .spawn(move || server.serve(Arc::new(conn)))
                .map_err(|e| format!("spawning a control thread: {e}"))?;
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
        let error = |message: String| Outcome::Reply(Response::Error { message });
        let ok = |r: Result<(), String>| match r {
            Ok(()) => Outcome::Reply(Response::Ok),
            Err(message) => Outcome::Reply(Response::Error { message }),
        };
        match req {
            Request::Create => ok(self.create()),
            Request::Start => ok(self.start()),
            Request::Wait => {
                let k = self.kernel.clone();
                Outcome::Deferred(Box::new(move || Response::Waited(wait_status(k.wait_init()))))
            }
            Request::Signal { signo, all } => ok(self.kernel.signal(signo, all)),
            Request::State => Outcome::Reply(Response::State(self.state())),
            Request::Exec { args, env, cwd } => {
                let stdio: [OwnedFd; 3] = match fds.try_into() {
                    Ok(s) => s,
                    Err(got) => return error(format!("exec needs 3 stdio descriptors, got {}", got.len())),
                };
                if args.is_empty() {
                    return error("exec: process.args is empty".into());
                }
                let launch = LaunchSpec {
                    argv: args.into_iter().map(String::into_bytes).collect(),
                    envp: env.into_iter().map(String::into_bytes).collect(),
                    cwd: cwd.into_bytes(),
                    stdio,
                };
                match self.kernel.exec(launch) {
                    Ok(pid) => Outcome::Reply(Response::Pid { pid }),
                    Err(message) => error(message),
                }
            }
            Request::WaitPid { pid } => {
                let k = self.kernel.clone();
                Outcome::Deferred(Box::new(move || match k.wait_pid(pid) {
                    Ok(s) => Response::Waited(wait_status(s)),
                    Err(message) => Response::Error { message },
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
            Request::Ps => Outcome::Reply(Response::Processes { processes: self.processes() }),
            Request::Stats => {
                let (memory, tasks) = self.kernel.usage();
                Outcome::Reply(Response::Stats { memory, tasks: tasks as u64 })
            }
            Request::Destroy => Outcome::Exit,
        }
    }

    fn create(&self) -> Result<(), String> {
        let mut init = self.init.lock().unwrap();
        match std::mem::replace(&mut *init, Init::Busy) {
            Init::Pending(launch) => match self.kernel.create_init(launch) {
                Ok(task) => {
                    *init = Init::Created(task);
                    Ok(())
                }
                // The launch spec (and its stdio) is consumed: nothing to retry.
                Err(message) => {
                    *init = Init::Started;
                    Err(message)
                }
            },
            other => {
                *init = other;
                Err("container already created".into())
            }
        }
    }

    fn start(&self) -> Result<(), String> {
        let mut init = self.init.lock().unwrap();
        match std::mem::replace(&mut *init, Init::Busy) {
            Init::Created(task) => {
                self.kernel.start(task);
                *init = Init::Started;
                Ok(())
            }
            other => {
                *init = other;
                Err("container is not created or already started".into())
            }
        }
    }

    fn state(&self) -> SandboxState {
        let exit = self.kernel.init_status().map(wait_status);
        let status = if exit.is_some() {
            "stopped"
        } else if !matches!(*self.init.lock().unwrap(), Init::Started) {
            "created"
        } else if self.kernel.is_paused() {
            "paused"
        } else {
            "running"
        };
        SandboxState { status: status.into(), pids: self.kernel.proc_list(), exit }
    }

    fn processes(&self) -> Vec<ProcessEntry> {
        self.kernel
            .proc_list()
            .into_iter()
            .filter_map(|pid| self.kernel.proc_info(pid))
            .map(|p| {
                let cmd = p.cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).map(String::from_utf8_lossy).collect::<Vec<_>>().join(" ");
                ProcessEntry {
                    pid: p.pid,
                    ppid: p.ppid,
                    uid: p.uid,
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
