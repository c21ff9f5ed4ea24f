// What every OCI command shares: the runtime built from the global flags,
// and one way to turn a failure into runc's one-line error.

import type { ArgumentsCamelCase } from 'yargs';
import { Runtime } from '../container';
import { VeilError } from '../errors';
import { logError } from '../log';
import { parseSignal } from '../oci';

export interface GlobalArgs {
  root: string;
  platform: string;
  debug: boolean;
  strace: boolean;
}

/** Prints the one-line error every failure ends in (and logs it) and exits. */
export function fail(message: string, status = 1): never {
  logError(message);
  process.stderr.write(`veil: ${message}\n`);
  process.exit(status);
}

export function runtimeFrom(argv: GlobalArgs): Runtime {
  return new Runtime({ root: argv.root, platform: argv.platform, debug: argv.debug, strace: argv.strace });
}

/** Wraps a command body: VeilErrors become `veil: …` and status `status`. */
export function action<A>(body: (argv: ArgumentsCamelCase<A>) => Promise<void>, status = 1) {
  return async (argv: ArgumentsCamelCase<A>): Promise<void> => {
    try {
      await body(argv);
    } catch (error) {
      if (error instanceof VeilError) fail(error.message, status);
      fail(error instanceof Error ? error.message : String(error), status);
    }
  };
}

/** Signals a foreground `run` or `exec` passes on to what it runs instead of dying of them. */
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

/**
 * Runs `body` with the CLI's forwardable signals sent to `pid` of container
 * `id` (its init when `pid` is undefined), as runc forwards them to its
 * foreground process.
 */
export async function forwardingSignals<T>(runtime: Runtime, id: string, pid: number | undefined, body: () => Promise<T>): Promise<T> {
  const forward = (name: NodeJS.Signals) => void runtime.forwardSignal(id, parseSignal(name), pid);
  for (const name of FORWARDED) process.on(name, forward);
  try {
    return await body();
  } finally {
    for (const name of FORWARDED) process.off(name, forward);
  }
}
