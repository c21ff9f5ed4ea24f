// config.json: loading a bundle's spec with precise, one-line errors that
// name the field, the default spec of `veil spec`, and signal names.

import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { SpecError } from './errors';
import { DEFAULT_PATH } from './spec';

export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface ProcessSpec {
  terminal?: boolean;
  user?: { uid: number; gid: number; additionalGids?: number[] };
  args: string[];
  env?: string[];
  cwd: string;
  oomScoreAdj?: number;
  [key: string]: unknown;
}

export interface LinuxResources {
  memory?: { limit?: number; reservation?: number; swap?: number };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string };
  pids?: { limit?: number };
  [key: string]: unknown;
}

/** The parts of the OCI runtime spec veil reads; the rest is carried along. */
export interface OciSpec {
  ociVersion: string;
  process?: ProcessSpec;
  root: { path: string; readonly?: boolean };
  hostname?: string;
  hooks?: Partial<Record<HookName, Hook[]>>;
  annotations?: Record<string, string>;
  linux?: {
    namespaces?: { type: string; path?: string }[];
    resources?: LinuxResources;
    cgroupsPath?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export const HOOK_NAMES = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

const NAMESPACE_TYPES = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'];

const fail = (message: string): never => {
  throw new SpecError(message);
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkStrings(v: unknown, field: string): void {
  if (v !== undefined && !(Array.isArray(v) && v.every((s) => typeof s === 'string'))) fail(`${field} must be an array of strings`);
}

/** Capability names, capabilities(7) (crates/kernel's creds::cap knows the same). */
const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT',
  'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE',
  'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ',
  'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
].map((n) => `CAP_${n}`);

/** Resource limit names, getrlimit(2). */
const RLIMITS = ['CPU', 'FSIZE', 'DATA', 'STACK', 'CORE', 'RSS', 'NPROC', 'NOFILE', 'MEMLOCK', 'AS', 'LOCKS', 'SIGPENDING', 'MSGQUEUE', 'NICE', 'RTPRIO', 'RTTIME'].map((n) => `RLIMIT_${n}`);

/** Checks a process object (config.json's, or `exec --process`'s). */
export function checkProcess(p: unknown, field = 'process'): ProcessSpec {
  if (p === undefined) fail(`${field} is missing`);
  if (!isObject(p)) fail(`${field} must be an object`);
  const proc = p as Record<string, unknown>;
  checkStrings(proc.args, `${field}.args`);
  if (!Array.isArray(proc.args) || proc.args.length === 0) fail(`${field}.args must name the program to run`);
  checkStrings(proc.env, `${field}.env`);
  if (typeof proc.cwd !== 'string' || !isAbsolute(proc.cwd)) fail(`${field}.cwd ${JSON.stringify(proc.cwd)} must be an absolute path`);
  const user = proc.user as { uid?: unknown; gid?: unknown; additionalGids?: unknown } | undefined;
  if (user !== undefined) {
    if (!isObject(user)) fail(`${field}.user must be an object`);
    for (const key of ['uid', 'gid'] as const) {
      const v = user[key];
      if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 32)) fail(`${field}.user.${key} must be an unsigned 32-bit integer`);
    }
    const gids = user.additionalGids;
    if (gids !== undefined && !(Array.isArray(gids) && gids.every((g) => Number.isInteger(g) && g >= 0 && g < 2 ** 32))) fail(`${field}.user.additionalGids must be an array of unsigned 32-bit integers`);
  }
  const caps = proc.capabilities;
  if (caps !== undefined) {
    if (!isObject(caps)) fail(`${field}.capabilities must be an object`);
    for (const set of ['bounding', 'effective', 'inheritable', 'permitted', 'ambient']) {
      const names = (caps as Record<string, unknown>)[set];
      checkStrings(names, `${field}.capabilities.${set}`);
      const unknown = ((names as string[] | undefined) ?? []).find((n) => !CAPABILITIES.includes(n.toUpperCase()));
      if (unknown !== undefined) fail(`${field}.capabilities.${set}: unknown capability ${JSON.stringify(unknown)}`);
    }
  }
  const rlimits = proc.rlimits;
  if (rlimits !== undefined) {
    if (!Array.isArray(rlimits)) fail(`${field}.rlimits must be an array`);
    (rlimits as unknown[]).forEach((r, i) => {
      const at = `${field}.rlimits[${i}]`;
      if (!isObject(r)) return fail(`${at} must be an object`);
      if (typeof r.type !== 'string' || !RLIMITS.includes(r.type)) fail(`${at}.type ${JSON.stringify(r.type)} is not a resource limit`);
      for (const k of ['soft', 'hard']) if (!Number.isInteger(r[k]) || (r[k] as number) < 0) fail(`${at}.${k} must be a non-negative integer`);
      if ((r.soft as number) > (r.hard as number)) fail(`${at}: soft ${r.soft} is above hard ${r.hard}`);
    });
  }
  if (proc.oomScoreAdj !== undefined && !Number.isInteger(proc.oomScoreAdj)) fail(`${field}.oomScoreAdj must be an integer`);
  return proc as unknown as ProcessSpec;
}

/**
 * `exec` runs its process with the credentials of the container's process
 * spec (user, groups, capabilities); say so instead of pretending when asked
 * for another user.
 */
export function checkExecUser(uid: number, gid: number, base: ProcessSpec | undefined, field: string): void {
  const want = { uid: base?.user?.uid ?? 0, gid: base?.user?.gid ?? 0 };
  if (uid !== want.uid || gid !== want.gid) {
    fail(`${field} ${uid}:${gid} is not supported: veil exec runs processes as the container's process.user (${want.uid}:${want.gid}) for now`);
  }
}

/**
 * Reads and checks BUNDLE/config.json. The root path, which the spec allows
 * relative to the bundle, comes back absolute.
 */
export function loadBundleSpec(bundle: string): { spec: OciSpec; rootfs: string } {
  const file = resolve(bundle, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return fail(`${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (error) {
    return fail(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(spec)) return fail(`${file} must hold a JSON object`);
  if (typeof spec.ociVersion !== 'string') fail('ociVersion is missing');
  checkProcess(spec.process);
  const root = spec.root as { path?: unknown } | undefined;
  if (!isObject(root) || typeof root.path !== 'string' || root.path === '') fail('root.path is missing');
  const rootfs = resolve(bundle, root!.path as string);
  try {
    if (!statSync(rootfs).isDirectory()) fail(`root.path ${JSON.stringify(root!.path)}: ${rootfs} is not a directory`);
  } catch (error) {
    if (error instanceof SpecError) throw error;
    fail(`root.path ${JSON.stringify(root!.path)}: ${rootfs} does not exist`);
  }
  const linux = spec.linux;
  if (linux !== undefined) {
    if (!isObject(linux)) fail('linux must be an object');
    for (const key of ['maskedPaths', 'readonlyPaths']) {
      const paths = (linux as Record<string, unknown>)[key];
      checkStrings(paths, `linux.${key}`);
      ((paths as string[] | undefined) ?? []).forEach((p, i) => {
        if (!isAbsolute(p)) fail(`linux.${key}[${i}] ${JSON.stringify(p)} is not an absolute path`);
      });
    }
    const devices = (linux as Record<string, unknown>).devices;
    if (devices !== undefined) {
      if (!Array.isArray(devices)) fail('linux.devices must be an array');
      (devices as unknown[]).forEach((d, i) => {
        if (!isObject(d)) return fail(`linux.devices[${i}] must be an object`);
        if (typeof d.path !== 'string' || !isAbsolute(d.path)) fail(`linux.devices[${i}].path ${JSON.stringify(d.path)} is not an absolute path`);
        if (!['c', 'u', 'b', 'p'].includes(d.type as string)) fail(`linux.devices[${i}].type ${JSON.stringify(d.type)} is not c, u, b or p`);
        for (const k of ['major', 'minor', 'fileMode', 'uid', 'gid']) {
          if (d[k] !== undefined && !(Number.isInteger(d[k]) && (d[k] as number) >= 0)) fail(`linux.devices[${i}].${k} must be a non-negative integer`);
        }
      });
    }
    const namespaces = (linux as Record<string, unknown>).namespaces;
    if (namespaces !== undefined) {
      if (!Array.isArray(namespaces)) fail('linux.namespaces must be an array');
      (namespaces as unknown[]).forEach((ns, i) => {
        const type = isObject(ns) ? ns.type : undefined;
        if (typeof type !== 'string' || !NAMESPACE_TYPES.includes(type)) {
          fail(`linux.namespaces[${i}].type ${JSON.stringify(type)} is not a namespace type (${NAMESPACE_TYPES.join(', ')})`);
        }
      });
    }
  }
  const hooks = spec.hooks;
  if (hooks !== undefined) {
    if (!isObject(hooks)) fail('hooks must be an object');
    for (const [name, list] of Object.entries(hooks as Record<string, unknown>)) {
      if (!Array.isArray(list)) fail(`hooks.${name} must be an array`);
      (list as unknown[]).forEach((h, i) => {
        if (!isObject(h) || typeof h.path !== 'string' || !isAbsolute(h.path)) fail(`hooks.${name}[${i}].path must be an absolute path`);
        if (isObject(h) && h.timeout !== undefined && !(Number.isInteger(h.timeout) && (h.timeout as number) > 0)) {
          fail(`hooks.${name}[${i}].timeout must be a positive integer`);
        }
      });
    }
  }
  return { spec: spec as unknown as OciSpec, rootfs };
}

/** `veil spec`: runc's default config.json, trimmed to what veil serves. */
export function defaultSpec(): OciSpec {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: [`PATH=${DEFAULT_PATH}`, 'TERM=xterm'],
      cwd: '/',
      capabilities: {},
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'veil',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
    },
  };
}

/** Linux x86-64 signal numbers by name. */
export const SIGNALS: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11,
  USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21,
  TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};

/** `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+3` → a signal number. */
export function parseSignal(text: string): number {
  const t = text.trim().toUpperCase().replace(/^SIG/, '');
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (n >= 1 && n <= 64) return n;
  } else if (t in SIGNALS) {
    return SIGNALS[t];
  } else {
    const rt = /^RTM(IN|AX)([+-]\d+)?$/.exec(t);
    if (rt) {
      const n = (rt[1] === 'IN' ? 34 : 64) + Number(rt[2] ?? 0);
      if (n >= 34 && n <= 64) return n;
    }
  }
  throw new SpecError(`unknown signal ${JSON.stringify(text)}`);
}
