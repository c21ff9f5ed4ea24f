// state, list, ps, events, spec, features: what engines read, in runc's formats.

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { VeilError } from '../errors';
import { defaultSpec, HOOK_NAMES, SIGNALS } from '../oci';
import { action, GlobalArgs, runtimeFrom } from './common';

const print = (text: string): void => void process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);

/** Columns padded as Go's tabwriter does for runc (min width, 3 spaces of padding). */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] + 3))).join('')).join('\n') + '\n';
}

/** "5s", "500ms", "1m", "2" (seconds) → milliseconds. */
export function parseInterval(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new VeilError(`invalid --interval ${JSON.stringify(text)}`);
  const unit = { ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2] ?? 's']!;
  const ms = Number(m[1]) * unit;
  if (ms <= 0) throw new VeilError('--interval must be positive');
  return ms;
}

export function features(): object {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: '1.1.0',
    hooks: [...HOOK_NAMES],
    mountOptions: [],
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'],
      capabilities: [],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
      seccomp: { enabled: false },
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: { 'org.opencontainers.runtime-spec.features': 'veil: a user-space kernel runs the container' },
    potentiallyUnsafeConfigAnnotations: [],
  };
}

export function inspectCommands(cli: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return cli
    .command(
      'state <id>',
      'print the container\'s OCI state as JSON',
      (cmd) => cmd.positional('id', { type: 'string', demandOption: true }),
      action(async (argv) => print(JSON.stringify(await runtimeFrom(argv).stateOf(String(argv.id)), null, 2))),
    )
    .command(
      ['list', 'ls'],
      'list the containers under --root',
      (cmd) =>
        cmd
          .option('format', { alias: 'f', choices: ['table', 'json'] as const, default: 'table' as const })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'ids only' }),
      action(async (argv) => {
        const states = await runtimeFrom(argv).list();
        if (argv.quiet) return void (states.length && print(states.map((s) => s.id).join('\n')));
        if (argv.format === 'json') return print(JSON.stringify(states));
        const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']];
        for (const s of states) rows.push([s.id, String(s.pid), s.status, s.bundle, s.created, s.owner]);
        process.stdout.write(table(rows));
      }),
    )
    .command(
      'ps <id>',
      'list the container\'s processes (pids inside the sandbox)',
      (cmd) =>
        cmd
          .positional('id', { type: 'string', demandOption: true })
          .option('format', { alias: 'f', choices: ['table', 'json'] as const, default: 'table' as const }),
      action(async (argv) => {
        const processes = await runtimeFrom(argv).ps(String(argv.id));
        if (argv.format === 'json') return print(JSON.stringify(processes.map((p) => p.pid)));
        const rows = [['UID', 'PID', 'PPID', 'STAT', 'CMD']];
        for (const p of processes) rows.push([String(p.uid), String(p.pid), String(p.ppid), p.state, p.cmd]);
        process.stdout.write(table(rows));
      }),
    )
    .command(
      'events <id>',
      'resource usage: one stats event with --stats, else one every --interval until the container stops',
      (cmd) =>
        cmd
          .positional('id', { type: 'string', demandOption: true })
          .option('stats', { type: 'boolean', default: false, describe: 'print one stats event and exit' })
          .option('interval', { type: 'string', default: '5s', describe: 'time between stats events' }),
      action(async (argv) => {
        const runtime = runtimeFrom(argv);
        const id = String(argv.id);
        const event = async () => JSON.stringify({ type: 'stats', id, data: await runtime.stats(id) });
        if (argv.stats) return print(await event());
        const interval = parseInterval(argv.interval);
        for (;;) {
          let line: string;
          try {
            line = await event();
          } catch (error) {
            // The stream ends with the container.
            if ((error as Error).message === 'container not running') return;
            throw error;
          }
          print(line);
          await new Promise((r) => setTimeout(r, interval));
        }
      }),
    )
    .command(
      'spec',
      'write a default config.json (rootfs "rootfs") that `veil run` accepts',
      (cmd) =>
        cmd
          .option('bundle', { alias: 'b', type: 'string', default: '.', describe: 'where to write config.json' })
          .option('rootless', { type: 'boolean', default: false, describe: 'accepted: the spec is the same' }),
      action(async (argv) => {
        const file = join(argv.bundle, 'config.json');
        if (existsSync(file)) throw new VeilError(`File ${file} exists. Remove it first`);
        writeFileSync(file, JSON.stringify(defaultSpec(), null, '\t') + '\n');
      }),
    )
    .command(
      'features',
      'print the OCI features JSON',
      (cmd) => cmd,
      action(async () => print(JSON.stringify(features(), null, 2))),
    );
}

export { SIGNALS };
