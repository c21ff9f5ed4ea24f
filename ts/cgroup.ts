// cgroups v1 and v2 for the sandbox process: the spec's linux.resources
// applied at linux.cgroupsPath (default `/<id>`, as the seed does).
//
// The sandbox joins its cgroup in the forked child before exec (the addon
// writes "0" to each cgroup.procs it is given), so nothing of the sandbox
// — and so no application code — ever runs outside it. The CPU count and
// memory size derived from the limits are passed to the sentry
// (`--cpus`, `--total-memory`, `--max-tasks`) so that `nproc` and
// /proc/meminfo inside show them.

import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import { VeilError } from './errors';
import { debug } from './log';
import type { LinuxResources } from './oci';

/** v1 controllers veil configures or reads. */
const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'cpuset', 'pids'] as const;
type V1Controller = (typeof V1_CONTROLLERS)[number];

export type Hierarchy = { version: 1; mounts: Partial<Record<V1Controller, string>> } | { version: 2; mount: string };

/** Reads /proc/self/mountinfo: v1 when any v1 controller we use is mounted (hybrid hosts), else v2. */
export function detectHierarchy(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): Hierarchy | null {
  const mounts: Partial<Record<V1Controller, string>> = {};
  let v2: string | undefined;
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const mountPoint = left.split(' ')[4];
    const [fstype, , superOptions = ''] = right.split(' ');
    if (fstype === 'cgroup2') v2 ??= mountPoint;
    if (fstype !== 'cgroup') continue;
    for (const option of superOptions.split(',')) {
      if ((V1_CONTROLLERS as readonly string[]).includes(option)) mounts[option as V1Controller] ??= mountPoint;
    }
  }
  if (Object.keys(mounts).length > 0) return { version: 1, mounts };
  return v2 ? { version: 2, mount: v2 } : null;
}

/** linux.cgroupsPath as a path below each hierarchy's root. */
export function cgroupPath(cgroupsPath: string | undefined, id: string): string {
  if (!cgroupsPath) return `/${id}`;
  // systemd's "slice:prefix:name" (--systemd-cgroup): placed where systemd would put it.
  const parts = cgroupsPath.split(':');
  if (parts.length === 3 && !cgroupsPath.startsWith('/')) {
    const [slice, prefix, name] = parts;
    return `/${slice || 'system.slice'}/${prefix ? `${prefix}-` : ''}${name}.scope`;
  }
  return cgroupsPath.startsWith('/') ? cgroupsPath : `/${cgroupsPath}`;
}

/** CPU shares (v1, 2..262144) to cpu.weight (v2, 1..10000), as runc converts. */
export function sharesToWeight(shares: number): number {
  return shares === 0 ? 0 : 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** Counts a cpuset list such as "0-2,5". */
export function cpusetCount(list: string): number {
  let n = 0;
  for (const part of list.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    n += b === undefined ? 1 : b - a + 1;
  }
  return n;
}

/** What the sentry is told: CPUs, memory and task limit derived from the resources. */
export function derivedLimits(resources: LinuxResources | undefined, hostCpus = availableParallelism(), hostMemory = totalmem()) {
  let cpus = hostCpus;
  const cpu = resources?.cpu;
  if (cpu?.cpus) cpus = Math.min(cpus, cpusetCount(cpu.cpus));
  if (cpu?.quota && cpu.quota > 0) cpus = Math.min(cpus, Math.max(1, Math.ceil(cpu.quota / (cpu.period || 100000))));
  const limit = resources?.memory?.limit;
  const totalMemory = limit && limit > 0 && limit < hostMemory ? limit : undefined;
  const pids = resources?.pids?.limit;
  return { cpus: cpus < hostCpus ? cpus : undefined, totalMemory, maxTasks: pids && pids > 0 ? pids : undefined };
}

function write(dir: string, file: string, value: string | number): void {
  try {
    writeFileSync(join(dir, file), String(value));
  } catch (error) {
    throw new VeilError(`cgroup ${join(dir, file)} = ${value}: ${(error as Error).message}`);
  }
}

/** v1 cpuset needs cpus and mems set in every level before a task may join. */
function prepareCpuset(mount: string, path: string): void {
  let dir = mount;
  for (const part of path.split('/').filter(Boolean)) {
    const parent = dir;
    dir = join(dir, part);
    mkdirSync(dir, { recursive: true });
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if (readFileSync(join(dir, file), 'utf8').trim() === '') write(dir, file, readFileSync(join(parent, file), 'utf8').trim());
    }
  }
}

export class Cgroup {
  private constructor(readonly version: 1 | 2, readonly dirs: string[]) {}

  /** The cgroup.procs files the sandbox writes itself into. */
  procsFiles(): string[] {
    return this.dirs.map((d) => join(d, 'cgroup.procs'));
  }

  static reopen(state: { version: 1 | 2; dirs: string[] }): Cgroup {
    return new Cgroup(state.version, state.dirs);
  }

  toJSON() {
    return { version: this.version, dirs: this.dirs };
  }

  /** Creates the cgroup at `path` and applies `resources`; null where there are no cgroups. */
  static create(path: string, resources: LinuxResources | undefined, hierarchy = detectHierarchy()): Cgroup | null {
    if (!hierarchy) return null;
    const created: string[] = [];
    try {
      if (hierarchy.version === 1) {
        const byMount = new Map<string, V1Controller[]>();
        for (const c of V1_CONTROLLERS) {
          const m = hierarchy.mounts[c];
          if (m) byMount.set(m, [...(byMount.get(m) ?? []), c]);
        }
        for (const [mount, controllers] of byMount) {
          const dir = join(mount, path);
          if (existsSync(dir)) throw new VeilError(`cgroup ${dir} already exists`);
          if (controllers.includes('cpuset')) prepareCpuset(mount, path);
          else mkdirSync(dir, { recursive: true });
          created.push(dir);
          applyV1(dir, controllers, resources);
        }
      } else {
        const dir = join(hierarchy.mount, path);
        if (existsSync(dir)) throw new VeilError(`cgroup ${dir} already exists`);
        enableV2Controllers(hierarchy.mount, path);
        mkdirSync(dir, { recursive: true });
        created.push(dir);
        applyV2(dir, resources);
      }
    } catch (error) {
      new Cgroup(hierarchy.version, created).remove();
      throw error;
    }
    return new Cgroup(hierarchy.version, created);
  }

  /** Removes the cgroup directories; retries while the exiting sandbox still counts as a member. */
  async remove(): Promise<void> {
    for (const dir of this.dirs) {
      for (let attempt = 0; ; attempt++) {
        try {
          rmdirSync(dir);
          break;
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (code !== 'EBUSY' || attempt >= 50) {
            debug(`removing cgroup ${dir}: ${(error as Error).message}`);
            break;
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  }

  /** Usage for `events --stats`, in runc's field names. */
  stats(): { cpu: object; memory: object; pids: object } {
    const read = (dir: string | undefined, file: string): number | undefined => {
      if (!dir) return undefined;
      try {
        const text = readFileSync(join(dir, file), 'utf8').trim();
        return text === 'max' ? undefined : Number(text);
      } catch {
        return undefined;
      }
    };
    const find = (file: string) => this.dirs.find((d) => existsSync(join(d, file)));
    if (this.version === 1) {
      const mem = find('memory.usage_in_bytes');
      const cpu = find('cpuacct.usage');
      const pids = find('pids.current');
      return {
        cpu: { usage: { total: read(cpu, 'cpuacct.usage') ?? 0, user: 0, kernel: 0 } },
        memory: { usage: { usage: read(mem, 'memory.usage_in_bytes') ?? 0, max: read(mem, 'memory.max_usage_in_bytes') ?? 0, limit: read(mem, 'memory.limit_in_bytes') ?? 0 } },
        pids: { current: read(pids, 'pids.current') ?? 0, limit: read(pids, 'pids.max') ?? 0 },
      };
    }
    const dir = this.dirs[0];
    let usec = 0;
    try {
      usec = Number(/usage_usec (\d+)/.exec(readFileSync(join(dir, 'cpu.stat'), 'utf8'))?.[1] ?? 0);
    } catch {
      // No cpu.stat: leave 0.
    }
    return {
      cpu: { usage: { total: usec * 1000, user: 0, kernel: 0 } },
      memory: { usage: { usage: read(dir, 'memory.current') ?? 0, max: read(dir, 'memory.peak') ?? 0, limit: read(dir, 'memory.max') ?? 0 } },
      pids: { current: read(dir, 'pids.current') ?? 0, limit: read(dir, 'pids.max') ?? 0 },
    };
  }
}

function applyV1(dir: string, controllers: V1Controller[], r: LinuxResources | undefined): void {
  if (!r) return;
  if (controllers.includes('memory') && r.memory) {
    if (r.memory.limit) write(dir, 'memory.limit_in_bytes', r.memory.limit);
    if (r.memory.reservation) write(dir, 'memory.soft_limit_in_bytes', r.memory.reservation);
    if (r.memory.swap && existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) write(dir, 'memory.memsw.limit_in_bytes', r.memory.swap);
  }
  if (controllers.includes('cpu') && r.cpu) {
    if (r.cpu.shares) write(dir, 'cpu.shares', r.cpu.shares);
    // The period first: a quota is checked against the current period.
    if (r.cpu.period) write(dir, 'cpu.cfs_period_us', r.cpu.period);
    if (r.cpu.quota) write(dir, 'cpu.cfs_quota_us', r.cpu.quota);
  }
  if (controllers.includes('cpuset') && r.cpu) {
    if (r.cpu.cpus) write(dir, 'cpuset.cpus', r.cpu.cpus);
    if (r.cpu.mems) write(dir, 'cpuset.mems', r.cpu.mems);
  }
  if (controllers.includes('pids') && r.pids?.limit !== undefined) {
    write(dir, 'pids.max', r.pids.limit > 0 ? r.pids.limit : 'max');
  }
}

/** Enables the controllers veil writes in every ancestor's subtree_control. */
function enableV2Controllers(mount: string, path: string): void {
  let dir = mount;
  for (const part of path.split('/').filter(Boolean)) {
    let available: string[] = [];
    try {
      available = readFileSync(join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
    } catch {
      // Unreadable: nothing to enable.
    }
    const wanted = ['memory', 'cpu', 'cpuset', 'pids'].filter((c) => available.includes(c));
    if (wanted.length > 0) {
      try {
        writeFileSync(join(dir, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
      } catch (error) {
        debug(`enabling ${wanted} in ${dir}: ${(error as Error).message}`);
      }
    }
    dir = join(dir, part);
    mkdirSync(dir, { recursive: true });
  }
}

function applyV2(dir: string, r: LinuxResources | undefined): void {
  if (!r) return;
  if (r.memory?.limit) write(dir, 'memory.max', r.memory.limit > 0 ? r.memory.limit : 'max');
  if (r.memory?.reservation) write(dir, 'memory.low', r.memory.reservation);
  if (r.memory?.swap && r.memory.limit && r.memory.swap > 0) write(dir, 'memory.swap.max', Math.max(0, r.memory.swap - r.memory.limit));
  if (r.cpu?.shares) write(dir, 'cpu.weight', sharesToWeight(r.cpu.shares));
  if (r.cpu?.quota || r.cpu?.period) write(dir, 'cpu.max', `${r.cpu.quota && r.cpu.quota > 0 ? r.cpu.quota : 'max'} ${r.cpu.period || 100000}`);
  if (r.cpu?.cpus) write(dir, 'cpuset.cpus', r.cpu.cpus);
  if (r.cpu?.mems) write(dir, 'cpuset.mems', r.cpu.mems);
  if (r.pids?.limit !== undefined) write(dir, 'pids.max', r.pids.limit > 0 ? r.pids.limit : 'max');
}
