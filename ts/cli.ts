#!/usr/bin/env node
// The `veil` command line. Start-up time matters (`veil do … true` is
// measured end to end), so only yargs loads eagerly; the addon and the
// sandbox code load inside the command that needs them.

import yargs from 'yargs';
import type { Argv } from 'yargs';

import { defaultPlatform } from './platform';

/** Prints the one-line error every failure ends in (logged too, with --log) and exits non-zero. */
function fail(message: string, status = 1): never {
  try {
    // Loaded lazily: log.ts is tiny, but `veil do` keeps its start-up lean.
    (require('./log') as typeof import('./log')).logError(message);
  } catch {
    // Logging is best effort.
  }
  process.stderr.write(`veil: ${message}\n`);
  process.exit(status);
}

/** Long flags engines may send with one dash (`-root`, `-no-subreaper`): Go's flag package allows it. */
const LONG_FLAGS = new Set([
  'root', 'log', 'log-format', 'debug', 'systemd-cgroup', 'platform', 'network', 'strace', 'rootless', 'criu',
  'bundle', 'pid-file', 'console-socket', 'no-pivot', 'no-new-keyring', 'no-subreaper', 'preserve-fds', 'detach',
  'keep', 'force', 'all', 'format', 'quiet', 'process', 'tty', 'env', 'cwd', 'user', 'cap', 'no-new-privs',
  'process-label', 'apparmor', 'stats', 'interval', 'version', 'help',
]);

/** A single-dash long flag (`-root`, `-bundle=/b`) as its double-dash form; anything else as is. */
function asLong(a: string): string {
  const m = /^-([a-z][a-z-]+)(=.*)?$/.exec(a);
  return m && LONG_FLAGS.has(m[1]) ? `-${a}` : a;
}

/** Rewrites single-dash long flags as double-dash ones, up to `--`. */
export function normalizeArgs(args: string[]): string[] {
  const end = args.indexOf('--');
  return end < 0 ? args.map(asLong) : [...args.slice(0, end).map(asLong), ...args.slice(end)];
}

/** exec's flags that take a value (the rest of its flags are booleans). */
const VALUED_EXEC_FLAGS = new Set(['--process', '-p', '--pid-file', '--console-socket', '--env', '-e', '--cwd', '--user', '-u', '--preserve-fds', '--cap', '-c', '--process-label', '--apparmor']);

/**
 * `exec ID CMD ARGS…` ends exec's own flags at ID, as runc's parser does:
 * `exec ID sh -c X` runs `sh -c X`. A `--` goes in after ID (unless one is
 * there) so that the command's flags stay the command's.
 */
export function endExecFlags(args: string[]): string[] {
  let i = 0;
  // The global flags, then the command name.
  while (i < args.length && args[i].startsWith('-') && args[i] !== '--') i += VALUED_GLOBALS.has(asLong(args[i])) ? 2 : 1;
  if (args[i] !== 'exec') return args;
  for (i++; i < args.length; i++) {
    const a = asLong(args[i]);
    if (a === '--') return args;
    if (!a.startsWith('-')) break;
    if (VALUED_EXEC_FLAGS.has(a)) i++;
  }
  // args[i] is the container id.
  if (i + 1 >= args.length || args[i + 1] === '--') return args;
  return [...args.slice(0, i + 1), '--', ...args.slice(i + 1)];
}

/** runc's three-line --version. */
function versionText(version: string): string {
  return `veil version ${version}\ncommit: ${process.env.VEIL_COMMIT ?? 'unknown'}\nspec: 1.1.0\n`;
}

/** Global flags that take a value (skipped when looking for the command name). */
const VALUED_GLOBALS = new Set(['--root', '--log', '--log-format', '--platform', '--network', '--rootless', '--criu']);

/** True when --version/-v comes before any command name. */
function asksVersion(args: string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--version' || a === '-v') return true;
    if (!a.startsWith('-')) return false;
    if (VALUED_GLOBALS.has(a)) i++;
  }
  return false;
}

/** runc's default state root: /run/veil for root, under XDG_RUNTIME_DIR otherwise. */
function defaultRoot(): string {
  if (process.getuid?.() === 0) return '/run/veil';
  return process.env.XDG_RUNTIME_DIR ? `${process.env.XDG_RUNTIME_DIR}/veil` : `/tmp/veil-${process.getuid?.()}`;
}

interface DoArgs {
  platform: string;
  strace: boolean;
  debug: boolean;
  rootfs?: string;
  hostname?: string;
  command: string[];
}

async function runDo(argv: DoArgs): Promise<never> {
  if (argv.command.length === 0) fail('no command given: usage is veil do [FLAGS] -- CMD [ARGS...]');
  const { buildDoSpec } = await import('./spec');
  return runForeground(argv, buildDoSpec({ args: argv.command, rootfs: argv.rootfs, hostname: argv.hostname }));
}

/** Runs SPEC's process in a fresh sandbox and exits with its shell status. */
async function runForeground(
  argv: { platform: string; strace: boolean; debug: boolean },
  spec: import('./spec').RuntimeSpec,
): Promise<never> {
  const { runInSandbox, VeilError } = await import('./sandbox');
  const { debug } = await import('./log');
  debug(`spec ${JSON.stringify(spec)}`);
  try {
    const status = await runInSandbox({
      spec,
      platform: argv.platform,
      strace: argv.strace,
      debug: argv.debug,
    });
    debug(`container exited with shell status ${status}`);
    process.exit(status);
  } catch (error) {
    if (error instanceof VeilError) fail(error.message);
    fail(error instanceof Error ? error.message : String(error));
  }
}

/** `veil syscalls`: the sentry's own syscall table, as veil-sandbox prints it. */
async function printSyscalls(): Promise<never> {
  const { spawnSync } = await import('node:child_process');
  const { sandboxBinary } = await import('./native');
  const binary = sandboxBinary();
  const result = spawnSync(binary, ['syscalls'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.error) fail(`cannot run ${binary}: ${result.error.message}`);
  if (result.status !== 0) fail(`${binary} syscalls failed (${result.signal ?? `status ${result.status}`})`);
  process.exit(0);
}

function globalFlags(cli: Argv) {
  return cli
    .option('root', { type: 'string', default: defaultRoot(), describe: 'directory for container state' })
    .option('log', { type: 'string', describe: 'write the debug log to this file (default: stderr)' })
    .option('log-format', { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'debug log format' })
    .option('debug', { type: 'boolean', default: false, describe: 'log what veil and the sandbox do' })
    .option('platform', { type: 'string', default: defaultPlatform(), describe: 'how application code runs: auto (the first platform that works here) or a name `veil-sandbox platforms` lists; default $VEIL_PLATFORM or auto' })
    .option('strace', { type: 'boolean', default: false, describe: "print each application system call as the sentry serves it" })
    .option('network', { choices: ['none', 'sandbox', 'host'] as const, default: 'sandbox' as const, describe: 'network of the sandbox: loopback in the sentry, plus the interfaces of the spec\'s network namespace, which the sentry\'s stack takes over (the modes do not differ yet)' })
    .option('systemd-cgroup', { type: 'boolean', default: false, describe: 'accepted: cgroupsPath "slice:prefix:name" is placed below the slice' })
    .option('rootless', { type: 'string', hidden: true, describe: 'accepted (true|false|auto)' })
    .option('criu', { type: 'string', hidden: true, describe: 'accepted and ignored' });
}

export async function main(rawArgs: string[]): Promise<void> {
  const { version } = require('../package.json') as { version: string };
  const args = normalizeArgs(endExecFlags(rawArgs));
  if (asksVersion(args)) {
    process.stdout.write(versionText(version));
    return;
  }
  // The OCI commands load with their module only when one is named.
  const oci = ['create', 'start', 'run', 'kill', 'delete', 'pause', 'resume', 'wait', 'state', 'list', 'ls', 'ps', 'events', 'spec', 'features', 'exec', 'exec-wait'];
  const wantsOci = args.some((a) => oci.includes(a)) || args.includes('--help') || args.includes('-h') || args.length === 0;
  let cli = globalFlags(yargs(args));
  if (wantsOci) {
    const { lifecycleCommands } = await import('./commands/lifecycle');
    const { inspectCommands } = await import('./commands/inspect');
    const { execCommands } = await import('./commands/exec');
    cli = execCommands(inspectCommands(lifecycleCommands(cli as never) as never) as never) as never;
  }
  await cli
    .scriptName('veil')
    .usage('$0 [global flags] <command>')
    .parserConfiguration({ 'populate--': true })
    .middleware(async (argv) => {
      const { configureLog } = await import('./log');
      configureLog({ file: argv.log, format: argv['log-format'], debug: argv.debug });
    })
    .command(
      'do [command..]',
      'run a command in a fresh sandbox whose root is the host\'s / behind a copy-on-write overlay',
      (cmd) =>
        cmd
          .option('rootfs', { type: 'string', describe: 'host directory to use as / instead of the host\'s /' })
          .option('hostname', { type: 'string', describe: 'hostname inside the sandbox (default: veil)' })
          .positional('command', { type: 'string', array: true, describe: 'the command and its arguments (after --)' })
          .example('$0 do -- /bin/busybox echo hello', ''),
      (argv) =>
        runDo({
          platform: argv.platform,
          strace: argv.strace,
          debug: argv.debug,
          rootfs: argv.rootfs,
          hostname: argv.hostname,
          command: [...((argv.command as string[] | undefined) ?? []), ...((argv['--'] as string[] | undefined) ?? [])].map(String),
        }),
    )
    .command(
      'syscalls',
      'list every x86-64 system call with the sentry\'s support level (supported, partial: note, ENOSYS)',
      (cmd) => cmd,
      () => printSyscalls(),
    )
    .demandCommand(1, 'no command given (try veil --help)')
    .strict()
    .version(false)
    .option('version', { alias: 'v', type: 'boolean', describe: 'print the version' })
    .help()
    .alias('help', 'h')
    .fail((message, error) => {
      fail(message ?? error?.message ?? 'invalid command line', 2);
    })
    .parseAsync();
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error) => fail(error instanceof Error ? error.message : String(error)));
}
