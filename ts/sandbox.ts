// Spawning veil-sandbox and driving one container through it:
// create → start → wait, then close the control socket and reap.

import { ControlChannel, Request, Response } from './control';
import { addon, sandboxBinary, ExitStatus } from './native';
import type { RuntimeSpec } from './spec';

export const PLATFORMS = ['ptrace'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** A problem to report as `veil: <message>`, without a stack trace. */
export class VeilError extends Error {}

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
    const args = ['boot', '--platform', options.platform];
    if (options.strace) args.push('--strace');
    if (options.debug) args.push('--debug');
    const { pid, controlFd } = addon().spawnSandbox({
      binary: sandboxBinary(),
      args,
      spec: JSON.stringify(options.spec),
      stdio: options.stdio ?? [0, 1, 2],
      dieWithParent: true,
    });
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

/** Signals the CLI passes on to the container instead of dying of them. */
const FORWARDED_SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;

/**
 * Runs the spec's process to completion in a fresh sandbox and returns its
 * shell status. The sandbox is gone when this settles, whatever happened.
 */
export async function runInSandbox(options: SandboxOptions): Promise<number> {
  const sandbox = Sandbox.spawn(options);
  const forward = (name: keyof typeof FORWARDED_SIGNALS) => sandbox.signal(FORWARDED_SIGNALS[name]);
  const names = Object.keys(FORWARDED_SIGNALS) as (keyof typeof FORWARDED_SIGNALS)[];
  for (const name of names) process.on(name, forward);
  try {
    await sandbox.create();
    await sandbox.start();
    return shellStatus(await sandbox.wait());
  } finally {
    for (const name of names) process.off(name, forward);
    await sandbox.destroy();
  }
}
