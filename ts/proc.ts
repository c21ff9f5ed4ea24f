// Host process identity from /proc: a pid alone may be reused, so a
// process is named by its pid and start time (field 22 of /proc/PID/stat).

import { readFileSync } from 'node:fs';

function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: split after its ')'.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The start time of `pid`, or undefined when there is no such process. */
export function startTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/** True while the process runs (a zombie has finished running). */
export function isAlive(pid: number, start: string): boolean {
  const f = statFields(pid);
  return f !== undefined && f[19] === start && f[0] !== 'Z' && f[0] !== 'X';
}

/** Waits until the process is gone (or a zombie); false after `timeoutMs`. */
export async function waitGone(pid: number, start: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid, start)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}
