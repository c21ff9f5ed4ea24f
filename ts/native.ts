// Loads the veil.node addon and locates the veil-sandbox executable that
// ships beside it.
//
// Search order: a build in this checkout (npm/<platform>/, where
// `npm run build` puts both files), then the per-platform package
// (veil-linux-x64-gnu) that npm installs as an optional dependency.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface ExitStatus {
  exitCode?: number | null;
  signal?: number | null;
}

export interface SpawnOptions {
  binary: string;
  args: string[];
  spec: string;
  stdio: number[];
  dieWithParent?: boolean;
  /** Bind the control socket here (the lifecycle); controlFd is then -1. */
  controlSocketPath?: string;
  /** cgroup.procs files the sandbox and the gofer join before exec. */
  cgroupProcs?: string[];
  /** Start the sandbox as PID 1 of a new PID namespace (not for ptrace). */
  newPidNamespace?: boolean;
  /** A network namespace for the sandbox to join; a new one otherwise. */
  netnsPath?: string;
  /** The sandbox's own log (donated as descriptor 9); none without it. */
  logFd?: number;
}

export interface SpawnedSandbox {
  pid: number;
  controlFd: number;
  /** The gofer, which exits once the sandbox has its mounts; reap it with waitPid. */
  goferPid: number;
}

export interface GoferOptions {
  binary: string;
  spec: string;
  /** Where the gofer's own diagnostics go. */
  stderr: number;
  cgroupProcs?: string[];
}

/** What crates/napi exports (napi build also writes dist/native.generated.d.ts). */
export interface Addon {
  spawnSandbox(options: SpawnOptions): SpawnedSandbox;
  /** A gofer for a container joining a running sandbox; `fd` is the socket end to pass it. */
  spawnGofer(options: GoferOptions): { pid: number; fd: number };
  controlCall(fd: number, requestJson: string, fds?: number[]): Promise<string>;
  controlConnect(path: string): number;
  lockFile(path: string, wait?: boolean): number;
  openPty(): { master: number; slave: number; name: string };
  sendConsole(socketPath: string, fd: number, name: string): void;
  controlSend(fd: number, requestJson: string): void;
  controlRecv(fd: number): Promise<string>;
  closeFd(fd: number): void;
  waitPid(pid: number): Promise<ExitStatus>;
  kill(pid: number, signo: number): void;
}

/** napi-rs's platform name for this host, e.g. linux-x64-gnu. */
export function platformTriple(): string {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`no prebuilt veil for ${process.platform}-${process.arch} (only linux-x64-gnu exists)`);
  }
  return 'linux-x64-gnu';
}

let cached: { addon: Addon; path: string } | undefined;

function locateAddon(): string {
  const triple = platformTriple();
  const file = `veil.${triple}.node`;
  const checkout = join(__dirname, '..', 'npm', triple, file);
  if (existsSync(checkout)) return checkout;
  try {
    return require.resolve(`veil-${triple}/${file}`);
  } catch {
    throw new Error(`the veil addon is missing: install veil-${triple} or run \`npm run build\``);
  }
}

export function addon(): Addon {
  if (!cached) {
    const path = locateAddon();
    cached = { addon: require(path) as Addon, path };
  }
  return cached.addon;
}

/** $VEIL_SANDBOX_BINARY, else veil-sandbox in the addon's directory. */
export function sandboxBinary(): string {
  const override = process.env.VEIL_SANDBOX_BINARY;
  if (override) return override;
  addon();
  return join(dirname(cached!.path), 'veil-sandbox');
}
