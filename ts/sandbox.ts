// Spawning veil-sandbox and driving one container through it:
// create → start → wait, then close the control socket and reap.

import { ControlChannel, Request, Response } from './control';
import { debug, sandboxLog, warn } from './log';
import { addon, sandboxBinary, ExitStatus, SpawnOptions } from './native';
import type { OciSpec } from './oci';
import { goferOomScoreAdj, setOomScoreAdj } from './oom';
import type { RuntimeSpec } from './spec';

import { checkPlatform, type Platform } from './platform';
export { type Platform } from './platform';

import { VeilError } from './errors';
export { VeilError };

export interface SandboxOptions {
  spec: RuntimeSpec;
  platform: Platform;
  strace?: boolean;
  debug?: boolean;
  /** Host descriptors for the application's stdin, stdout, stderr. */
  stdio?: [number, number, number];
}

/** How long the sandbox may take to exit once its control socket closes. */
const EXIT_GRACE_MS = 3000;

export class Sandbox {
  private readonly control: ControlChannel;
  private closed = false;
  private reaped: Promise<ExitStatus> | undefined;

  private constructor(readonly pid: number, controlFd: number) {
    this.control = new ControlChannel(controlFd);
  }

  static spawn(options: SandboxOptions): Sandbox {
    checkPlatform(options.platform);
    const args = ['boot', '--platform', options.platform];
    if (options.strace) args.push('--strace');
    if (options.debug) args.push('--debug');
    const { pid, controlFd } = withSandboxLog(options, args, (logFd) =>
      spawnWithGofer(options.spec, {
        binary: sandboxBinary(),
        args,
        spec: JSON.stringify(options.spec),
        stdio: options.stdio ?? [0, 1, 2],
        dieWithParent: true,
        logFd,
        ...isolation(options.spec),
      }),
    );
    return new Sandbox(pid, controlFd);
  }

  private async request(request: Request): Promise<Response> {
    let response: Response;
    try {
      response = await this.control.call(request);
    } catch {
      throw new VeilError(await this.describeDeath(request.method));
    }
    if (response.type === 'error') throw new VeilError(response.message);
    return response;
  }

  async create(): Promise<void> {
    await this.request({ method: 'create' });
  }

  async start(): Promise<void> {
    await this.request({ method: 'start' });
  }

  /** Blocks until the init process exits; returns its wait status. */
  async wait(): Promise<ExitStatus> {
    const response = await this.request({ method: 'wait' });
    if (response.type !== 'waited') throw new VeilError(`unexpected reply to wait: ${JSON.stringify(response)}`);
    return { exitCode: response.exitCode, signal: response.signal };
  }

  /** Forwards a signal to the init process; never throws (the sandbox may be gone). */
  signal(signo: number, all = false): void {
    if (this.closed) return;
    this.control.call({ method: 'signal', signo, all }).catch(() => undefined);
  }

  /** Closing the control socket makes the sandbox kill what it runs and exit. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.control.close();
  }

  /** Closes the control socket and reaps the sandbox, killing it if it lingers. */
  async destroy(): Promise<ExitStatus> {
    this.close();
    const reaped = this.reap();
    const timer = setTimeout(() => {
      try {
        addon().kill(this.pid, 9);
      } catch {
        // Already gone.
      }
    }, EXIT_GRACE_MS);
    try {
      return await reaped;
    } finally {
      clearTimeout(timer);
    }
  }

  private reap(): Promise<ExitStatus> {
    this.reaped ??= addon().waitPid(this.pid);
    return this.reaped;
  }

  /** The control socket broke: say how the sandbox ended. */
  private async describeDeath(during: string): Promise<string> {
    const status = await this.destroy();
    const how = status.signal != null ? `was killed by signal ${status.signal}` : `exited with status ${status.exitCode}`;
    return `sandbox ${how} during ${during}`;
  }
}

/** A shell's view of a wait status: the exit code, or 128 + the signal. */
export function shellStatus(status: ExitStatus): number {
  if (status.signal != null) return 128 + status.signal;
  return status.exitCode ?? 255;
}

/**
 * The sandbox's namespaces beyond the ones it always gets new (user,
 * mount, IPC, UTS): a PID namespace of its own on every platform (the
 * sentry is PID 1 there; ptrace stubs are its children, inside it too);
 * the spec's network namespace when it names one, else a new one.
 */
function isolation(spec: RuntimeSpec | object): Pick<SpawnOptions, 'newPidNamespace' | 'netnsPath'> {
  const namespaces = (spec as OciSpec).linux?.namespaces ?? [];
  const netnsPath = namespaces.find((ns) => ns.type === 'network' && ns.path)?.path;
  return { newPidNamespace: true, netnsPath };
}

/** Runs `spawn` with the sandbox's own log (see sandboxLog) donated and named in `args`. */
function withSandboxLog<T>(options: { strace?: boolean }, args: string[], spawn: (logFd: number | undefined) => T): T {
  const log = sandboxLog(!!options.strace);
  if (log) args.push('--log-format', log.format);
  try {
    return spawn(log?.fd);
  } finally {
    log?.close();
  }
}

/**
 * Starts the gofer and the sandbox. The gofer gets its container's OOM
 * score and is reaped when it exits, which it does once the sandbox has
 * its mounts.
 */
function spawnWithGofer(spec: RuntimeSpec | object, options: SpawnOptions) {
  const spawned = addon().spawnSandbox(options);
  tendGofer(spec, spawned.goferPid);
  return spawned;
}

/**
 * Starts the gofer of a container joining a running sandbox (its spec's
 * root.path absolute); returns the socket end to hand the sandbox with
 * `createContainer` (the caller closes it).
 */
export function startGofer(spec: OciSpec, stderr: number): number {
  const { pid, fd } = addon().spawnGofer({ binary: sandboxBinary(), spec: JSON.stringify(spec), stderr });
  tendGofer(spec, pid);
  return fd;
}

/** Gives the gofer its container's OOM score and reaps it when it exits. */
function tendGofer(spec: RuntimeSpec | object, pid: number): void {
  const score = goferOomScoreAdj(spec as OciSpec);
  try {
    if (score !== undefined) setOomScoreAdj(pid, score);
  } catch (error) {
    // Not worth failing (and unwinding) a start over a process that lives for milliseconds.
    warn(`gofer ${pid}: cannot set oom_score_adj ${score}: ${(error as Error).message}`);
  }
  addon()
    .waitPid(pid)
    .then((status) => debug(`gofer ${pid} exited: ${JSON.stringify(status)}`))
    .catch(() => undefined);
}

/** Signals the CLI passes on to the container instead of dying of them. */
const FORWARDED_SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;

/**
 * Runs the spec's process to completion in a fresh sandbox and returns its
 * shell status. The sandbox is gone when this settles, whatever happened.
 */
export async function runInSandbox(options: SandboxOptions): Promise<number> {
  // Forwarding starts before the sandbox does (the platform check and the
  // spawn take a while): a signal that arrives before the process runs is
  // passed on as soon as it does, never the death of the CLI.
  let sandbox: Sandbox | undefined;
  let running = false;
  const early: number[] = [];
  const forward = (name: keyof typeof FORWARDED_SIGNALS) => {
    const signo = FORWARDED_SIGNALS[name];
    if (sandbox && running) sandbox.signal(signo);
    else early.push(signo);
  };
  const names = Object.keys(FORWARDED_SIGNALS) as (keyof typeof FORWARDED_SIGNALS)[];
  for (const name of names) process.on(name, forward);
  try {
    sandbox = Sandbox.spawn(options);
    await sandbox.create();
    await sandbox.start();
    running = true;
    for (const signo of early.splice(0)) sandbox.signal(signo);
    return shellStatus(await sandbox.wait());
  } finally {
    for (const name of names) process.off(name, forward);
    await sandbox?.destroy();
  }
}

// ---------------------------------------------------------------------------
// The sandbox as a daemon (the create/start/… lifecycle): it outlives the
// CLI process that spawned it, and every later command reaches it through
// its rendezvous socket (`sandbox.sock` in the container's state directory).

export interface DaemonOptions {
  spec: RuntimeSpec | object;
  platform: Platform;
  strace?: boolean;
  debug?: boolean;
  /** Host descriptors for the init process's stdin, stdout, stderr. */
  stdio: [number, number, number];
  /** Where the sandbox's control socket is bound. */
  socketPath: string;
  /** cgroup.procs files the sandbox joins before it execs. */
  cgroupProcs?: string[];
  /** What the sentry shows as the machine's size (from the cgroup). */
  limits?: { cpus?: number; totalMemory?: number; maxTasks?: number };
  /** The sandbox exits with the init's status when the init exits (an engine waits on its pid). */
  exitWithInit?: boolean;
}

/** Starts `veil-sandbox boot` detached from the CLI; returns its pid. */
export function spawnDaemon(options: DaemonOptions): number {
  checkPlatform(options.platform);
  const args = ['boot', '--platform', options.platform];
  if (options.strace) args.push('--strace');
  if (options.debug) args.push('--debug');
  if (options.exitWithInit) args.push('--exit-with-init');
  const limits = options.limits ?? {};
  if (limits.cpus) args.push('--cpus', String(limits.cpus));
  if (limits.totalMemory) args.push('--total-memory', String(limits.totalMemory));
  if (limits.maxTasks) args.push('--max-tasks', String(limits.maxTasks));
  const { pid } = withSandboxLog(options, args, (logFd) =>
    spawnWithGofer(options.spec, {
      binary: sandboxBinary(),
      args,
      spec: JSON.stringify(options.spec),
      stdio: options.stdio,
      dieWithParent: false,
      controlSocketPath: options.socketPath,
      cgroupProcs: options.cgroupProcs,
      logFd,
      ...isolation(options.spec),
    }),
  );
  return pid;
}

/** Thrown when no sandbox answers on the socket (it has exited). */
export class SandboxGoneError extends VeilError {}

/** One connection per request to a daemon sandbox. */
export class SandboxClient {
  constructor(readonly socketPath: string) {}

  async call(request: Request, fds?: number[]): Promise<Response> {
    let fd: number;
    try {
      fd = addon().controlConnect(this.socketPath);
    } catch (error) {
      throw new SandboxGoneError(`sandbox is not running (${(error as Error).message})`);
    }
    try {
      const text = await addon().controlCall(fd, JSON.stringify(request), fds);
      return JSON.parse(text) as Response;
    } catch (error) {
      throw new SandboxGoneError(`sandbox exited during ${request.method}: ${(error as Error).message}`);
    } finally {
      addon().closeFd(fd);
    }
  }

  /** Like call, but an `error` response throws. */
  async request(request: Request, fds?: number[]): Promise<Response> {
    const response = await this.call(request, fds);
    if (response.type === 'error') throw new VeilError(response.message);
    return response;
  }
}
