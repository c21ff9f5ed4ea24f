// Which platform runs application code: the default (`--platform`, else
// $VEIL_PLATFORM, else auto) and the early check that a named platform
// exists and can run here at all, so that `--platform kvm` without a usable
// /dev/kvm fails with one line instead of a sandbox dying mid-create. The
// names come from the sandbox binary's platform registry
// (`veil-sandbox platforms` lists them), never from a list kept here.

// Loaded by the CLI at start-up: keep its imports light (the child-process
// and addon modules load inside checkPlatform).
import { VeilError } from './errors';

/** `auto` or a name `veil-sandbox platforms` lists. */
export type Platform = string;

/** The platform used when `--platform` is not given. */
export function defaultPlatform(): string {
  return process.env.VEIL_PLATFORM || 'auto';
}

/**
 * Throws a VeilError saying why when `platform` is unknown or cannot run
 * here. `auto` always can (the sandbox falls back to the next platform that
 * works); any other name is asked of the sandbox binary, which builds the
 * platform exactly as `boot` would.
 */
export function checkPlatform(platform: Platform): void {
  if (platform === 'auto') return;
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const { sandboxBinary } = require('./native') as typeof import('./native');
  const binary = sandboxBinary();
  const r = spawnSync(binary, ['platform', platform], { encoding: 'utf8' });
  if (r.error) throw new VeilError(`cannot run ${binary}: ${r.error.message}`);
  if (r.status !== 0) throw new VeilError(r.stderr.trim().split('\n')[0] || `${binary} platform ${platform} failed`);
}
