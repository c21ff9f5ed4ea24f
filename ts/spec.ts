// Builds the OCI runtime spec (config.json) that `veil do` hands the sandbox.

import { resolve } from 'node:path';

/** The subset of the OCI runtime spec that veil reads today. */
export interface RuntimeSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number };
    args: string[];
    env: string[];
    cwd: string;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
}

export interface DoSpecOptions {
  args: string[];
  /** Host directory to use as /; the host's own / when absent. */
  rootfs?: string;
  hostname?: string;
}

export const DEFAULT_HOSTNAME = 'veil';
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The environment a login shell in a fresh container would expect. */
function defaultEnv(): string[] {
  return [`PATH=${DEFAULT_PATH}`, `TERM=${process.env.TERM || 'xterm'}`, 'HOME=/root'];
}

export function buildDoSpec(options: DoSpecOptions): RuntimeSpec {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: options.args,
      env: defaultEnv(),
      cwd: '/',
    },
    // Writable: the sentry puts a copy-on-write overlay over the root, so
    // writes land in sandbox memory and never reach the host.
    root: { path: resolve(options.rootfs ?? '/'), readonly: false },
    hostname: options.hostname ?? DEFAULT_HOSTNAME,
  };
}
