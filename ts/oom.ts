// oom_score_adj of the sandbox (and, once there is one, the gofer), by the
// seed's rules (container.2021.go.txt: adjustSandboxOOMScoreAdj,
// adjustGoferOOMScoreAdj):
// - the sandbox gets the lowest process.oomScoreAdj among its containers,
//   ignoring the CRI "sandbox" (pause) container;
// - when a container is destroyed and no remaining one has a score, the
//   sandbox's original value (saved with the root container) comes back;
// - destroying the root container changes nothing (the sandbox goes too);
// - no score anywhere: leave what the sandbox inherited;
// - a process that has exited is not an error.

import { writeFileSync } from 'node:fs';
import { debug } from './log';
import type { OciSpec } from './oci';

/** CRI container type of a spec, from containerd's or CRI-O's annotation. */
export function containerType(spec: OciSpec): 'sandbox' | 'container' | undefined {
  const a = spec.annotations ?? {};
  const t = a['io.kubernetes.cri.container-type'] ?? a['io.kubernetes.cri-o.ContainerType'];
  return t === 'sandbox' || t === 'container' ? t : undefined;
}

/** A root container starts its own sandbox: anything but type "container". */
export const isRootContainer = (spec: OciSpec) => containerType(spec) !== 'container';

export interface ScoredContainer {
  spec: OciSpec;
  /** What the sandbox's oom_score_adj was before veil touched it (the root container's record). */
  originalOomScoreAdj?: number;
}

/**
 * The value the sandbox's oom_score_adj should take, or undefined to leave it.
 * `changed` is the container being started or destroyed; `remaining` the
 * sandbox's containers as now stored (without a destroyed one), the root first.
 */
export function sandboxOomScoreAdj(changed: OciSpec, remaining: ScoredContainer[], destroying: boolean): number | undefined {
  if (isRootContainer(changed) && destroying) return undefined;
  if (remaining.length === 0) return undefined;
  let low: number | undefined;
  for (const c of remaining) {
    if (containerType(c.spec) === 'sandbox') continue;
    const score = c.spec.process?.oomScoreAdj;
    if (score !== undefined && (low === undefined || score < low)) low = score;
  }
  if (low === undefined && destroying) return remaining[0].originalOomScoreAdj;
  return low;
}

/** The gofer gets its own container's score, when it has one. */
export function goferOomScoreAdj(spec: OciSpec): number | undefined {
  return spec.process?.oomScoreAdj;
}

/** Writes /proc/PID/oom_score_adj; a process that has gone is not an error. */
export function setOomScoreAdj(pid: number, score: number): void {
  try {
    writeFileSync(`/proc/${pid}/oom_score_adj`, String(score));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') {
      debug(`process ${pid} exited before its oom_score_adj was set`);
      return;
    }
    throw error;
  }
}
