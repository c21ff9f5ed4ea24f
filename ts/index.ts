// The programmatic API: what the CLI uses, for tools that embed veil.

export { buildDoSpec, DEFAULT_HOSTNAME } from './spec';
export type { RuntimeSpec, DoSpecOptions } from './spec';
export { Sandbox, runInSandbox, shellStatus, VeilError } from './sandbox';
export type { SandboxOptions, Platform } from './sandbox';
