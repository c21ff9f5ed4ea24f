// OCI hooks: each is run with the container's state JSON on stdin and
// killed after its `timeout` seconds. Which failures abort is the caller's
// choice (prestart/createRuntime/createContainer/startContainer abort;
// poststart/poststop only warn).

import { spawnSync } from 'node:child_process';
import { VeilError } from './errors';
import { warn } from './log';
import type { Hook, HookName, OciSpec } from './oci';

export class HookError extends VeilError {}

function runOne(name: HookName, hook: Hook, stateJson: string): void {
  const [argv0, ...rest] = hook.args && hook.args.length > 0 ? hook.args : [hook.path];
  const env: Record<string, string> = {};
  for (const pair of hook.env ?? []) {
    const eq = pair.indexOf('=');
    if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const result = spawnSync(hook.path, rest, {
    argv0,
    env,
    input: stateJson,
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: hook.timeout ? hook.timeout * 1000 : undefined,
    killSignal: 'SIGKILL',
  });
  const what = `${name} hook ${hook.path}`;
  // A hook need not read the state on its stdin: one that exits first makes
  // the write fail with EPIPE, and its own exit status is what counts.
  const code = (result.error as NodeJS.ErrnoException | undefined)?.code;
  const ranToTheEnd = result.status !== null || result.signal !== null;
  if (result.error && !(code === 'EPIPE' && ranToTheEnd)) {
    if (code === 'ETIMEDOUT') throw new HookError(`${what} timed out after ${hook.timeout}s`);
    throw new HookError(`${what}: ${result.error.message}`);
  }
  if (result.signal) throw new HookError(`${what} was killed by ${result.signal}`);
  if (result.status !== 0) {
    const stderr = result.stderr.toString().trim().split('\n').pop();
    throw new HookError(`${what} failed with status ${result.status}${stderr ? `: ${stderr}` : ''}`);
  }
}

/** Runs the hooks of `name` in order; the first failure throws. */
export function runHooks(spec: OciSpec, name: HookName, state: object): void {
  const json = JSON.stringify(state);
  for (const hook of spec.hooks?.[name] ?? []) runOne(name, hook, json);
}

/** Runs every hook of `name`; failures are warnings (poststart, poststop). */
export function runHooksBestEffort(spec: OciSpec, name: HookName, state: object): void {
  const json = JSON.stringify(state);
  for (const hook of spec.hooks?.[name] ?? []) {
    try {
      runOne(name, hook, json);
    } catch (error) {
      warn((error as Error).message);
    }
  }
}
