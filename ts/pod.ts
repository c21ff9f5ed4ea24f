// Multi-container pods, as CRI runtimes ask for them (runsc's behaviour):
// a spec whose container type is "container" joins the sandbox of the pod
// named by its sandbox-id annotation instead of booting one of its own.
// The sandbox is the root container's (its state directory holds the
// sandbox's socket); every container keeps its own state directory.

import { SpecError } from './errors';
import type { OciSpec } from './oci';
import { containerType } from './oom';
import type { ContainerMeta } from './state';

const SANDBOX_ID_ANNOTATIONS = ['io.kubernetes.cri.sandbox-id', 'io.kubernetes.cri-o.SandboxID'];

/** The id of the pod's root container a CRI "container" joins. */
export function sandboxIdOf(spec: OciSpec): string {
  const a = spec.annotations ?? {};
  const id = SANDBOX_ID_ANNOTATIONS.map((k) => a[k]).find((v) => typeof v === 'string' && v !== '');
  if (id === undefined) {
    throw new SpecError(`annotations: a CRI container (container-type "container") needs ${SANDBOX_ID_ANNOTATIONS.join(' or ')}`);
  }
  return id;
}

/** linux.namespaces asks for a new PID namespace (a pid entry without a path). */
export function wantsOwnPidNamespace(spec: OciSpec): boolean {
  return (spec.linux?.namespaces ?? []).some((ns) => ns.type === 'pid' && !ns.path);
}

/** What the sandbox is told of a joining container (crates/control's ContainerSpec). */
export function joiningSpec(spec: OciSpec) {
  const p = spec.process!;
  return {
    args: p.args,
    env: p.env ?? [],
    cwd: p.cwd,
    ownPidNamespace: wantsOwnPidNamespace(spec),
    user: { uid: p.user?.uid ?? 0, gid: p.user?.gid ?? 0, additionalGids: p.user?.additionalGids ?? [] },
    ...(p.capabilities ? { capabilities: p.capabilities } : {}),
    noNewPrivileges: p.noNewPrivileges === true,
    oomScoreAdj: p.oomScoreAdj ?? 0,
    ...(p.rlimits ? { rlimits: p.rlimits } : {}),
    maskedPaths: (spec.linux?.maskedPaths as string[] | undefined) ?? [],
    readonlyPaths: (spec.linux?.readonlyPaths as string[] | undefined) ?? [],
    devices: (spec.linux?.devices as unknown[] | undefined) ?? [],
  };
}

/** The id of the container whose sandbox `meta` runs in. */
export const sandboxOwner = (meta: ContainerMeta): string => meta.sandboxId ?? meta.id;

/** Whether `meta` joined another container's sandbox. */
export const isJoined = (meta: ContainerMeta): boolean => meta.sandboxId !== undefined;

/** The sandbox's containers as stored: the root one first (the OOM rule reads it so). */
export function podMembers(all: ContainerMeta[], sandboxId: string): ContainerMeta[] {
  const members = all.filter((m) => sandboxOwner(m) === sandboxId);
  return [...members.filter((m) => !isJoined(m)), ...members.filter(isJoined)];
}

export { containerType };
