// The container state machine and what each lifecycle command does, after
// runsc's container.go: create → start → (pause ⇄ resume) → kill → delete,
// with state kept under --root and the sandbox as a daemon that outlives
// each CLI process. Commands on one container are serialised by its lock.

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Cgroup, cgroupPath, derivedLimits } from './cgroup';
import type { ProcessEntry, UnsupportedCall } from './control';
import { NotFoundError, SpecError, StateError, VeilError } from './errors';
import { runHooks, runHooksBestEffort } from './hooks';
import { debug, warn } from './log';
import { addon } from './native';
import { loadBundleSpec, type OciSpec, type ProcessSpec } from './oci';
import { isRootContainer, sandboxOomScoreAdj, setOomScoreAdj } from './oom';
import { isJoined, joiningSpec, podMembers, sandboxIdOf, sandboxOwner } from './pod';
import { isAlive, startTime, waitGone } from './proc';
import { SandboxClient, SandboxGoneError, spawnDaemon, startGofer, type Platform } from './sandbox';
import { ContainerMeta, ExitInfo, rfc3339Nano, StateDir, Status, validateId } from './state';

export interface RuntimeOptions {
  root: string;
  platform: Platform;
  debug?: boolean;
  strace?: boolean;
}

/** The OCI state of a container, as `veil state` prints it. */
export interface OciState {
  ociVersion: string;
  id: string;
  status: Status;
  pid: number;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  /** Descriptors for the init's stdin, stdout, stderr (default the CLI's). */
  stdio?: [number, number, number];
  /**
   * With process.terminal and no console socket, give the init the CLI's
   * own stdio (a foreground `run` whose stdio is the user's terminal).
   */
  terminalFromStdio?: boolean;
}

/** How long a sandbox may take to exit after `destroy` before it is killed. */
const DESTROY_GRACE_MS = 3000;

/** The seed's changeStatus table: which status each status may be entered from. */
const ALLOWED_FROM: Record<Status, Status[]> = {
  creating: [],
  created: ['creating'],
  running: ['created', 'paused'],
  paused: ['running'],
  stopped: ['creating', 'created', 'running', 'stopped'],
};

export function changeStatus(meta: ContainerMeta, to: Status): void {
  if (!ALLOWED_FROM[to].includes(meta.status)) throw new Error(`invalid state transition: ${meta.status} => ${to}`);
  meta.status = to;
}

function requireStatus(meta: ContainerMeta, action: string, ...allowed: Status[]): void {
  if (!allowed.includes(meta.status)) throw new StateError(`cannot ${action} container "${meta.id}" in state ${meta.status}`);
}

/** runc writes its pid file through a temporary file and a rename: readers never see half of it. */
function writePidFile(path: string, pid: number): void {
  const file = resolve(path);
  const temp = join(dirname(file), `.${process.pid}.pid.tmp`);
  writeFileSync(temp, String(pid));
  renameSync(temp, file);
}

function readOomScoreAdj(pid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim());
  } catch {
    return undefined;
  }
}

export class Runtime {
  readonly state: StateDir;

  constructor(readonly options: RuntimeOptions) {
    this.state = new StateDir(options.root);
  }

  /** The control socket of the sandbox `meta` runs in (a pod's is its root container's). */
  private client(meta: ContainerMeta): SandboxClient {
    return new SandboxClient(this.state.socketPath(sandboxOwner(meta)));
  }

  /** What names `meta` in requests to its sandbox (nothing for the root container). */
  private target(meta: ContainerMeta): { container?: string } {
    return isJoined(meta) ? { container: meta.id } : {};
  }

  ociState(meta: ContainerMeta): OciState {
    const state: OciState = {
      ociVersion: meta.spec.ociVersion ?? '1.0.2',
      id: meta.id,
      status: meta.status,
      pid: meta.status === 'stopped' || !meta.sandbox ? 0 : meta.sandbox.pid,
      bundle: meta.bundle,
      rootfs: meta.rootfs,
      created: meta.created,
      owner: meta.owner,
    };
    if (meta.spec.annotations) state.annotations = meta.spec.annotations;
    return state;
  }

  private sandboxAlive(meta: ContainerMeta): boolean {
    return meta.sandbox !== null && isAlive(meta.sandbox.pid, meta.sandbox.startTime);
  }

  /**
   * Brings the stored status up to date with what happened meanwhile: the
   * init exited, or the sandbox died. The caller holds the lock.
   */
  private async refresh(meta: ContainerMeta): Promise<ContainerMeta> {
    if (meta.status === 'stopped' || meta.status === 'creating') return meta;
    let stopped: ExitInfo | undefined;
    if (!this.sandboxAlive(meta)) {
      stopped = meta.exit ?? {};
    } else if (meta.status !== 'created' || isJoined(meta)) {
      try {
        const response = await this.client(meta).call({ method: 'state', ...this.target(meta) });
        if (response.type === 'state' && response.status === 'stopped') stopped = response.exit ?? {};
        // The sandbox no longer knows a joined container: it was destroyed.
        if (response.type === 'error' && isJoined(meta)) stopped = meta.exit ?? {};
      } catch (error) {
        if (!(error instanceof SandboxGoneError)) throw error;
        stopped = {};
      }
    }
    if (stopped) {
      // Observed, not commanded: a paused container's sandbox may die too.
      meta.status = 'stopped';
      meta.exit = stopped;
      this.state.write(meta);
    }
    return meta;
  }

  /** Reads a container under its lock, up to date. */
  private async load(id: string): Promise<ContainerMeta> {
    return this.refresh(this.state.read(id));
  }

  async create(options: CreateOptions): Promise<ContainerMeta> {
    const { id } = options;
    validateId(id);
    const bundle = resolve(options.bundle);
    const { spec, rootfs } = loadBundleSpec(bundle);
    // A CRI "container" joins its pod's sandbox; anything else boots one.
    const sandboxId = isRootContainer(spec) ? undefined : sandboxIdOf(spec);
    const terminal = spec.process!.terminal === true;
    if (terminal && !options.consoleSocket && !options.terminalFromStdio) {
      throw new SpecError('process.terminal is true: --console-socket is required');
    }
    if (!terminal && options.consoleSocket) throw new SpecError('--console-socket given but process.terminal is false');

    const lock = this.state.claim(id);
    const meta: ContainerMeta = {
      id,
      bundle,
      rootfs,
      created: rfc3339Nano(),
      owner: userInfo().username,
      status: 'creating',
      spec,
      sandbox: null,
      sandboxId,
    };
    let cgroup: Cgroup | null = null;
    let pty: { master: number; slave: number; name: string } | undefined;
    let joined = false;
    try {
      let stdio = options.stdio ?? [0, 1, 2];
      if (terminal && options.consoleSocket) {
        pty = addon().openPty();
        addon().sendConsole(resolve(options.consoleSocket), pty.master, pty.name);
        stdio = [pty.slave, pty.slave, pty.slave];
      }
      if (sandboxId !== undefined) {
        meta.sandbox = this.sandboxToJoin(sandboxId);
        // The runtime environment is the pod's; the container's process is
        // built by the createContainer request after the hooks.
        runHooks(spec, 'prestart', this.ociState(meta));
        runHooks(spec, 'createRuntime', this.ociState(meta));
        runHooks(spec, 'createContainer', this.ociState(meta));
        await this.joinSandbox(meta, rootfs, stdio);
        joined = true;
        return this.finishCreate(meta, options.pidFile);
      }
      cgroup = this.createCgroup(id, spec);
      if (cgroup) meta.cgroup = cgroup.toJSON();
      const pid = spawnDaemon({
        spec: { ...spec, root: { ...spec.root, path: rootfs } },
        platform: this.options.platform,
        strace: this.options.strace,
        debug: this.options.debug,
        stdio,
        socketPath: this.state.socketPath(id),
        cgroupProcs: cgroup?.procsFiles(),
        limits: derivedLimits(spec.linux?.resources),
        // A --pid-file names the process an engine's shim (a subreaper)
        // waits on for the container's exit status: the sandbox must end
        // with the init, as runsc's does. Without one the sandbox stays
        // until delete, so that `wait` still answers after the exit.
        exitWithInit: options.pidFile !== undefined,
      });
      meta.sandbox = { pid, startTime: startTime(pid) ?? '' };
      meta.originalOomScoreAdj = readOomScoreAdj(pid);
      debug(`container ${id}: sandbox ${pid} spawned`);

      // The runtime environment exists; application code is not loaded yet.
      runHooks(spec, 'prestart', this.ociState(meta));
      runHooks(spec, 'createRuntime', this.ociState(meta));
      runHooks(spec, 'createContainer', this.ociState(meta));
      await this.client(meta).request({ method: 'create' });
      return this.finishCreate(meta, options.pidFile);
    } catch (error) {
      if (sandboxId === undefined) {
        // A sandbox that failed by itself closes its socket before it has
        // written why: let it finish rather than kill it mid-sentence.
        if (error instanceof SandboxGoneError && meta.sandbox) await waitGone(meta.sandbox.pid, meta.sandbox.startTime, DESTROY_GRACE_MS);
        await this.killSandbox(meta, true);
        await cgroup?.remove();
      } else if (joined) {
        await this.leaveSandbox(meta);
      }
      this.state.remove(id);
      throw error;
    } finally {
      if (pty) {
        addon().closeFd(pty.master);
        addon().closeFd(pty.slave);
      }
      lock.release();
    }
  }

  private finishCreate(meta: ContainerMeta, pidFile: string | undefined): ContainerMeta {
    changeStatus(meta, 'created');
    this.state.write(meta);
    // containerd considers create complete once the pid file exists: last.
    // A joined container's pid is its sandbox's, as runsc reports it.
    if (pidFile) writePidFile(pidFile, meta.sandbox!.pid);
    return meta;
  }

  /** The sandbox of the pod whose root container is `sandboxId`, which must be running. */
  private sandboxToJoin(sandboxId: string): { pid: number; startTime: string } {
    let owner: ContainerMeta;
    try {
      owner = this.state.read(sandboxId);
    } catch (error) {
      if (error instanceof NotFoundError) throw new NotFoundError(sandboxId);
      throw error;
    }
    if (isJoined(owner)) throw new SpecError(`annotations: sandbox-id "${sandboxId}" names a container that joined another sandbox`);
    if (owner.status === 'stopped' || !this.sandboxAlive(owner)) throw new StateError(`sandbox container "${sandboxId}" is not running`);
    return owner.sandbox!;
  }

  /** Has the pod's sandbox build the container: its own root and mounts (from its gofer), process and stdio. */
  private async joinSandbox(meta: ContainerMeta, rootfs: string, stdio: [number, number, number]): Promise<void> {
    const goferFd = startGofer({ ...meta.spec, root: { ...meta.spec.root, path: rootfs } }, stdio[2]);
    try {
      await this.client(meta).request({ method: 'createContainer', id: meta.id, spec: joiningSpec(meta.spec) }, [...stdio, goferFd]);
    } finally {
      addon().closeFd(goferFd);
    }
  }

  /** Ends a joined container inside its sandbox; the pod goes on. */
  private async leaveSandbox(meta: ContainerMeta): Promise<void> {
    if (!this.sandboxAlive(meta)) return;
    try {
      await this.client(meta).call({ method: 'destroyContainer', id: meta.id });
    } catch (error) {
      if (!(error instanceof SandboxGoneError)) throw error;
    }
  }

  /** Stops what the container runs: its sandbox, or, for a joined one, its part of the pod. */
  private async destroy(meta: ContainerMeta): Promise<void> {
    if (isJoined(meta)) await this.leaveSandbox(meta);
    else await this.destroySandbox(meta);
  }

  /** The container's cgroup; none for an unprivileged caller that asked for no limits. */
  private createCgroup(id: string, spec: OciSpec): Cgroup | null {
    const resources = spec.linux?.resources;
    const limited = resources && (resources.memory || resources.cpu || resources.pids);
    if (process.getuid?.() !== 0 && !limited) return null;
    return Cgroup.create(cgroupPath(spec.linux?.cgroupsPath, id), resources);
  }

  /** SIGKILL for the sandbox, waiting until it is gone; `reap` when this process is its parent. */
  private async killSandbox(meta: ContainerMeta, reap = false): Promise<void> {
    if (!meta.sandbox) return;
    const { pid, startTime: start } = meta.sandbox;
    if (isAlive(pid, start)) {
      try {
        addon().kill(pid, 9);
      } catch {
        // Gone meanwhile.
      }
    }
    if (reap) {
      try {
        await addon().waitPid(pid);
      } catch {
        // Not our child (or reaped already).
      }
    }
    await waitGone(pid, start, DESTROY_GRACE_MS);
  }

  /** Asks the sandbox to tear down and exit; kills it if it does not. */
  private async destroySandbox(meta: ContainerMeta): Promise<void> {
    if (!this.sandboxAlive(meta)) return;
    const { pid, startTime: start } = meta.sandbox!;
    const timer = new Promise((r) => setTimeout(r, DESTROY_GRACE_MS, 'timeout'));
    try {
      await Promise.race([this.client(meta).call({ method: 'destroy' }), timer]);
    } catch (error) {
      debug(`destroy: ${(error as Error).message}`);
    }
    if (!(await waitGone(pid, start, DESTROY_GRACE_MS))) await this.killSandbox(meta);
  }

  async start(id: string): Promise<void> {
    const meta = await this.state.withLock(id, async () => {
      const meta = await this.load(id);
      requireStatus(meta, 'start', 'created');
      try {
        runHooks(meta.spec, 'startContainer', this.ociState(meta));
      } catch (error) {
        await this.destroy(meta);
        changeStatus(meta, 'stopped');
        this.state.write(meta);
        throw error;
      }
      await this.client(meta).request({ method: 'start', ...this.target(meta) });
      changeStatus(meta, 'running');
      this.state.write(meta);
      runHooksBestEffort(meta.spec, 'poststart', this.ociState(meta));
      return meta;
    });
    // After the save, as the seed does: the rule reads the stored containers.
    this.adjustOomScore(meta, false);
  }

  /**
   * The seed's adjustSandboxOOMScoreAdj over the sandbox's containers as
   * stored (a destroyed one's state is gone by now), the root one first.
   */
  private adjustOomScore(meta: ContainerMeta, destroying: boolean): void {
    if (!meta.sandbox) return;
    const remaining = podMembers(this.storedContainers(), sandboxOwner(meta)).filter((m) => !(destroying && m.id === meta.id));
    const score = sandboxOomScoreAdj(meta.spec, remaining, destroying);
    if (score !== undefined && isAlive(meta.sandbox.pid, meta.sandbox.startTime)) setOomScoreAdj(meta.sandbox.pid, score);
  }

  /** Every container whose metadata is stored (read without their locks: writes are atomic). */
  private storedContainers(): ContainerMeta[] {
    const metas: ContainerMeta[] = [];
    for (const id of this.state.ids()) {
      try {
        metas.push(this.state.read(id));
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    }
    return metas;
  }

  async kill(id: string, signo: number, all: boolean): Promise<void> {
    await this.state.withLock(id, async () => {
      const meta = await this.load(id);
      if (meta.status === 'created') {
        if (signo === 0) return;
        // The init has not run: there is nothing to deliver the signal to
        // but the sandbox itself. Stopped, with that signal as the cause.
        await this.destroy(meta);
        changeStatus(meta, 'stopped');
        meta.exit = { signal: signo };
        this.state.write(meta);
        return;
      }
      if (meta.status !== 'running' && meta.status !== 'paused') throw new StateError('container not running');
      await this.client(meta).request({ method: 'signal', signo, all, ...this.target(meta) });
    });
  }

  async delete(id: string, force: boolean): Promise<void> {
    let lock;
    try {
      lock = this.state.lock(id);
    } catch (error) {
      if (force && error instanceof NotFoundError) return;
      throw error;
    }
    let meta: ContainerMeta;
    try {
      try {
        meta = await this.load(id);
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
        // A directory without metadata: a create that never finished.
        if (!force) throw error;
        this.state.remove(id);
        return;
      }
      if ((meta.status === 'running' || meta.status === 'paused') && !force) {
        throw new StateError(`cannot delete container "${id}" that is not stopped: ${meta.status}`);
      }
      await this.destroy(meta);
      if (meta.cgroup) await Cgroup.reopen(meta.cgroup).remove();
      this.state.remove(id);
      if (meta.status !== 'stopped') changeStatus(meta, 'stopped');
    } finally {
      lock.release();
    }
    this.adjustOomScore(meta, true);
    // "called after the container is deleted but before the delete operation returns"
    runHooksBestEffort(meta.spec, 'poststop', this.ociState(meta));
  }

  async stateOf(id: string): Promise<OciState> {
    return this.state.withLock(id, async () => this.ociState(await this.load(id)));
  }

  async list(): Promise<OciState[]> {
    const states: OciState[] = [];
    for (const id of this.state.ids()) {
      try {
        states.push(await this.stateOf(id));
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    }
    return states;
  }

  async pause(id: string): Promise<void> {
    await this.state.withLock(id, async () => {
      const meta = await this.load(id);
      requireStatus(meta, 'pause', 'running');
      await this.client(meta).request({ method: 'pause' });
      changeStatus(meta, 'paused');
      this.state.write(meta);
    });
  }

  async resume(id: string): Promise<void> {
    await this.state.withLock(id, async () => {
      const meta = await this.load(id);
      requireStatus(meta, 'resume', 'paused');
      await this.client(meta).request({ method: 'resume' });
      changeStatus(meta, 'running');
      this.state.write(meta);
    });
  }

  async ps(id: string): Promise<ProcessEntry[]> {
    return this.state.withLock(id, async () => {
      const meta = await this.load(id);
      requireStatus(meta, 'get processes of', 'running', 'paused');
      const response = await this.client(meta).request({ method: 'ps', ...this.target(meta) });
      if (response.type !== 'processes') throw new VeilError(`unexpected reply to ps: ${response.type}`);
      return response.processes;
    });
  }

  /**
   * runc's stats event data (from the cgroup when there is one, else the
   * sentry's counts), and the system calls the container made that the
   * sandbox does not implement (why a program may have failed).
   */
  async stats(id: string): Promise<{ cpu: object; memory: object; pids: object; unsupported: UnsupportedCall[] }> {
    return this.state.withLock(id, async () => {
      const meta = await this.load(id);
      if (meta.status === 'stopped') throw new StateError('container not running');
      const response = await this.client(meta).request({ method: 'stats', ...this.target(meta) });
      if (response.type !== 'stats') throw new VeilError(`unexpected reply to stats: ${response.type}`);
      const unsupported = response.unsupported ?? [];
      if (meta.cgroup) return { ...Cgroup.reopen(meta.cgroup).stats(), unsupported };
      return { cpu: { usage: { total: 0 } }, memory: { usage: { usage: response.memory } }, pids: { current: response.tasks }, unsupported };
    });
  }

  /** Blocks until the init exits (without holding the lock); its exit status. */
  async wait(id: string): Promise<ExitInfo> {
    const meta = this.state.read(id);
    if (meta.status !== 'stopped' && this.sandboxAlive(meta)) {
      try {
        const response = await this.client(meta).call({ method: 'wait', ...this.target(meta) });
        if (response.type === 'waited') return { exitCode: response.exitCode, signal: response.signal };
      } catch (error) {
        if (!(error instanceof SandboxGoneError)) throw error;
      }
    }
    const latest = await this.stateOrGone(id);
    return latest?.exit ?? meta.exit ?? {};
  }

  private async stateOrGone(id: string): Promise<ContainerMeta | undefined> {
    try {
      return await this.state.withLock(id, () => this.load(id));
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  /**
   * Starts `proc` beside the init; returns its pid inside the sandbox.
   * `stdio` travel to the sandbox with the request.
   */
  async exec(id: string, proc: ProcessSpec, stdio: [number, number, number]): Promise<number> {
    return this.state.withLock(id, async () => {
      const meta = await this.load(id);
      if (meta.status !== 'running') {
        throw new StateError(meta.status === 'stopped' ? 'container not running' : `cannot exec in container "${id}" in state ${meta.status}`);
      }
      const request = { method: 'exec', args: proc.args, env: proc.env ?? [], cwd: proc.cwd, ...this.target(meta) } as const;
      const response = await this.client(meta).request(request, stdio);
      if (response.type !== 'pid') throw new VeilError(`unexpected reply to exec: ${response.type}`);
      return response.pid;
    });
  }

  /** Waits for a process started by exec (no lock held). */
  async waitPid(id: string, pid: number): Promise<ExitInfo> {
    const response = await this.client(this.state.read(id)).request({ method: 'waitPid', pid });
    if (response.type !== 'waited') throw new VeilError(`unexpected reply to waitPid: ${response.type}`);
    return { exitCode: response.exitCode, signal: response.signal };
  }

  /**
   * Forwards a signal without the state checks of kill (a foreground run):
   * to the init, or to `pid` (a foreground exec).
   */
  async forwardSignal(id: string, signo: number, pid?: number): Promise<void> {
    try {
      const meta = this.state.read(id);
      const request = pid === undefined ? { method: 'signal', signo, all: false, ...this.target(meta) } as const : { method: 'signalProcess', pid, signo } as const;
      await this.client(meta).call(request);
    } catch (error) {
      warn(`forwarding signal ${signo}: ${(error as Error).message}`);
    }
  }
}

/** A shell's view of an exit: the code, or 128 + the signal. */
export function exitShellStatus(exit: ExitInfo): number {
  if (exit.signal != null) return 128 + exit.signal;
  return exit.exitCode ?? 255;
}
