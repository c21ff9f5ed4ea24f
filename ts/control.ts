// The client side of the control protocol (crates/control): JSON requests
// and responses over the socket shared with the sandbox.
//
// Requests are answered in order, except `wait`, which blocks in the sandbox
// until the init process exits: a `signal` forwarded meanwhile is answered
// first. One reader therefore serves every outstanding request and matches a
// `waited` response to the pending `wait` and anything else to the oldest
// other request.

import { addon } from './native';

/** Names a container of the sandbox other than its root one. */
type Target = { container?: string };

/** A joining container's spec, as the sandbox reads it. */
export interface JoiningSpec {
  args: string[];
  env: string[];
  cwd: string;
  ownPidNamespace: boolean;
  /** crates/control's ProcessIdentity. */
  user: { uid: number; gid: number; additionalGids: number[] };
  capabilities?: unknown;
  noNewPrivileges: boolean;
  oomScoreAdj: number;
  rlimits?: unknown;
  maskedPaths: string[];
  readonlyPaths: string[];
  devices: unknown[];
}

export type Request =
  | { method: 'create' }
  | { method: 'createContainer'; id: string; spec: JoiningSpec }
  | ({ method: 'start' } & Target)
  | ({ method: 'wait' } & Target)
  | ({ method: 'signal'; signo: number; all: boolean } & Target)
  | { method: 'signalProcess'; pid: number; signo: number }
  | ({ method: 'state' } & Target)
  | ({ method: 'exec'; args: string[]; env: string[]; cwd: string } & Target)
  | { method: 'waitPid'; pid: number }
  | { method: 'pause' }
  | { method: 'resume' }
  | ({ method: 'ps' } & Target)
  | ({ method: 'stats' } & Target)
  | { method: 'destroy' }
  | { method: 'destroyContainer'; id: string };

/** A system call the sandbox does not implement, and how often the container made it. */
export interface UnsupportedCall {
  name: string;
  nr: number;
  count: number;
}

export interface ProcessEntry {
  pid: number;
  ppid: number;
  uid: number;
  state: string;
  startTicks: number;
  cmd: string;
}

export type Response =
  | { type: 'ok' }
  | { type: 'waited'; exitCode: number | null; signal: number | null }
  | { type: 'state'; status: string; pids: number[]; exit?: { exitCode: number | null; signal: number | null } }
  | { type: 'pid'; pid: number }
  | { type: 'processes'; processes: ProcessEntry[] }
  | { type: 'stats'; memory: number; tasks: number; unsupported?: UnsupportedCall[] }
  | { type: 'error'; message: string };

interface Pending {
  method: Request['method'];
  resolve(response: Response): void;
  reject(error: unknown): void;
}

export class ControlChannel {
  private pending: Pending[] = [];
  private reading = false;

  constructor(readonly fd: number) {}

  call(request: Request): Promise<Response> {
    return new Promise((resolve, reject) => {
      try {
        addon().controlSend(this.fd, JSON.stringify(request));
      } catch (error) {
        reject(error);
        return;
      }
      this.pending.push({ method: request.method, resolve, reject });
      this.readNext();
    });
  }

  private readNext(): void {
    if (this.reading || this.pending.length === 0) return;
    this.reading = true;
    addon()
      .controlRecv(this.fd)
      .then(
        (text) => {
          this.reading = false;
          const response = JSON.parse(text) as Response;
          this.takeFor(response).resolve(response);
          this.readNext();
        },
        (error) => {
          this.reading = false;
          for (const p of this.pending.splice(0)) p.reject(error);
        },
      );
  }

  private takeFor(response: Response): Pending {
    const matches = (p: Pending) => (response.type === 'waited' ? p.method === 'wait' : p.method !== 'wait');
    const index = Math.max(0, this.pending.findIndex(matches));
    return this.pending.splice(index, 1)[0];
  }

  close(): void {
    addon().closeFd(this.fd);
  }
}
