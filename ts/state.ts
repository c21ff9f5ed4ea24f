// The root directory (`--root`): one directory per container holding its
// metadata (`meta.json`, replaced atomically by temp file + rename), the
// lock file that serialises the CLI processes working on it, and the
// sandbox's rendezvous socket (`sandbox.sock`).

import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NotFoundError, VeilError } from './errors';
import { addon } from './native';
import type { OciSpec } from './oci';

/** libcontainer's id rule, as the seed checks it. */
export const ID_PATTERN = /^[\w+-\.]+$/;

export type Status = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

/** Who ended the container's init, once it has ended. */
export interface ExitInfo {
  exitCode?: number | null;
  signal?: number | null;
}

/** What veil keeps about a container (our format, not the OCI's). */
export interface ContainerMeta {
  id: string;
  bundle: string;
  /** Absolute path of the root filesystem. */
  rootfs: string;
  /** RFC 3339 with nanoseconds. */
  created: string;
  owner: string;
  status: Status;
  spec: OciSpec;
  /** The sandbox process, identified by pid and start time (pids are reused). */
  sandbox: { pid: number; startTime: string } | null;
  /**
   * For a container that joined a pod's sandbox (CRI container-type
   * "container"): the id of the pod's root container, whose sandbox it is.
   */
  sandboxId?: string;
  /** Set when the container stopped without its sandbox reporting it (e.g. killed before start). */
  exit?: ExitInfo;
  /** The cgroup the sandbox runs in, to read stats from and remove on delete. */
  cgroup?: { version: 1 | 2; dirs: string[] };
  /** oom_score_adj the sandbox started with, restored when scores go away. */
  originalOomScoreAdj?: number;
}

export function defaultRoot(): string {
  if (process.getuid?.() === 0) return '/run/veil';
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime ? join(runtime, 'veil') : `/tmp/veil-${process.getuid?.()}`;
}

export function validateId(id: string): void {
  if (!ID_PATTERN.test(id)) throw new VeilError(`invalid container id: ${JSON.stringify(id)}`);
}

/** RFC 3339 with nanoseconds, as Go's time.RFC3339Nano prints it (UTC). */
export function rfc3339Nano(date = new Date(), extraNanos = Math.floor((performance.now() % 1) * 1e6)): string {
  const iso = date.toISOString(); // …T12:34:56.789Z
  const nanos = (date.getUTCMilliseconds() * 1e6 + extraNanos).toString().padStart(9, '0').replace(/0+$/, '');
  return iso.slice(0, 19) + (nanos ? `.${nanos}` : '') + 'Z';
}

/** An flock held on one container's lock file. */
export class Lock {
  private constructor(private fd: number) {}

  static acquire(path: string): Lock {
    return new Lock(addon().lockFile(path, true));
  }

  release(): void {
    if (this.fd >= 0) addon().closeFd(this.fd);
    this.fd = -1;
  }
}

export class StateDir {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return join(this.root, id);
  }

  socketPath(id: string): string {
    return join(this.dir(id), 'sandbox.sock');
  }

  private metaPath(id: string): string {
    return join(this.dir(id), 'meta.json');
  }

  /**
   * Claims `id` for a new container and locks it. mkdir is atomic, so of
   * concurrent creates of one id exactly one gets past this point.
   */
  claim(id: string): Lock {
    validateId(id);
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    try {
      mkdirSync(this.dir(id), { mode: 0o711 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new VeilError(`container "${id}" already exists`);
      throw error;
    }
    return Lock.acquire(join(this.dir(id), 'lock'));
  }

  /** Locks an existing container; its metadata is read after the lock is held. */
  lock(id: string): Lock {
    validateId(id);
    let lock: Lock;
    try {
      lock = Lock.acquire(join(this.dir(id), 'lock'));
    } catch {
      throw new NotFoundError(id);
    }
    return lock;
  }

  /** The metadata; NotFoundError when the container is gone (or never finished create). */
  read(id: string): ContainerMeta {
    validateId(id);
    try {
      return JSON.parse(readFileSync(this.metaPath(id), 'utf8')) as ContainerMeta;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') {
        throw new NotFoundError(id);
      }
      throw new VeilError(`reading the state of "${id}": ${(error as Error).message}`);
    }
  }

  write(meta: ContainerMeta): void {
    const path = this.metaPath(meta.id);
    const temp = `${path}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(meta), { mode: 0o600 });
    renameSync(temp, path);
  }

  remove(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }

  /** Ids of the containers whose create completed. */
  ids(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return [];
    }
    return names.filter((n) => ID_PATTERN.test(n)).filter((n) => {
      try {
        readFileSync(this.metaPath(n));
        return true;
      } catch {
        return false;
      }
    }).sort();
  }

  /** Runs `fn` holding the container's lock. */
  async withLock<T>(id: string, fn: () => Promise<T> | T): Promise<T> {
    const lock = this.lock(id);
    try {
      return await fn();
    } finally {
      lock.release();
    }
  }
}
