// exec: a new process in a running container, from --process FILE or the
// command line. In the foreground veil exits with the process's status
// (255 when exec itself fails). With --detach, a waiter process (`veil
// exec-wait`, hidden) stays behind holding the process's exit status: its
// pid goes to --pid-file, so the engine, a subreaper, waits on it like on
// runc's exec'd process.

import { spawn } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { isatty } from 'node:tty';
import type { Argv } from 'yargs';
import { exitShellStatus } from '../container';
import { SpecError, VeilError } from '../errors';
import { addon } from '../native';
import { checkExecUser, checkProcess, type ProcessSpec } from '../oci';
import { action, forwardingSignals, GlobalArgs, runtimeFrom } from './common';

/** runc's status when exec itself fails (not the process). */
const EXEC_FAILED = 255;

interface ExecArgs extends GlobalArgs {
  id: string;
  command?: string[];
  '--'?: string[];
  process?: string;
  detach: boolean;
  pidFile?: string;
  tty: boolean;
  consoleSocket?: string;
  env?: string | string[];
  cwd?: string;
  user?: string;
}

/** The process to run: --process FILE, or the command line over the container's defaults. */
function processFrom(argv: ExecArgs, base: ProcessSpec | undefined): ProcessSpec {
  if (argv.process) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(argv.process, 'utf8'));
    } catch (error) {
      throw new SpecError(`--process ${argv.process}: ${(error as Error).message}`);
    }
    const p = checkProcess(parsed, 'process');
    checkExecUser(p.user?.uid ?? 0, p.user?.gid ?? 0, base, 'process.user');
    return p;
  }
  const args = [...(argv.command ?? []), ...(argv['--'] ?? [])].map(String);
  if (args.length === 0) throw new VeilError('exec needs a command (or --process FILE)');
  const env = [...(base?.env ?? [])];
  for (const pair of [argv.env ?? []].flat()) {
    const name = pair.split('=')[0];
    const i = env.findIndex((e) => e.split('=')[0] === name);
    if (i >= 0) env[i] = pair;
    else env.push(pair);
  }
  if (argv.user !== undefined) {
    const [uid, gid = '0'] = argv.user.split(':');
    if (!/^\d+$/.test(uid) || !/^\d+$/.test(gid)) throw new SpecError(`--user ${argv.user}: expected UID[:GID] (numbers)`);
    checkExecUser(Number(uid), Number(gid), base, '--user');
  }
  return { args, env, cwd: argv.cwd ?? base?.cwd ?? '/', terminal: argv.tty };
}

function writePidFile(path: string, pid: number): void {
  const file = resolve(path);
  const temp = join(dirname(file), `.${process.pid}.pid.tmp`);
  writeFileSync(temp, String(pid));
  renameSync(temp, file);
}

export function execCommands(cli: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return cli
    .command(
      'exec <id> [command..]',
      'run a new process in a running container',
      (cmd) =>
        cmd
          .positional('id', { type: 'string', demandOption: true })
          .positional('command', { type: 'string', array: true })
          .option('process', { alias: 'p', type: 'string', describe: 'process.json with the process to run' })
          .option('detach', { alias: 'd', type: 'boolean', default: false })
          .option('pid-file', { type: 'string' })
          .option('tty', { alias: 't', type: 'boolean', default: false })
          .option('console-socket', { type: 'string' })
          .option('env', { alias: 'e', type: 'string', describe: 'NAME=VALUE (repeatable)' })
          .option('cwd', { type: 'string' })
          .option('user', { alias: 'u', type: 'string', describe: 'UID[:GID]; only 0 is supported' })
          .option('preserve-fds', { type: 'number', hidden: true })
          .option('cap', { alias: 'c', type: 'string', hidden: true })
          .option('no-new-privs', { type: 'boolean', hidden: true })
          .option('process-label', { type: 'string', hidden: true })
          .option('apparmor', { type: 'string', hidden: true }),
      action<ExecArgs>(async (argv) => {
        const runtime = runtimeFrom(argv);
        const id = String(argv.id);
        const proc = processFrom(argv, runtime.state.read(id).spec.process);
        let stdio: [number, number, number] = [0, 1, 2];
        let pty: { master: number; slave: number; name: string } | undefined;
        if (proc.terminal) {
          if (argv.consoleSocket) {
            pty = addon().openPty();
            addon().sendConsole(resolve(argv.consoleSocket), pty.master, pty.name);
            stdio = [pty.slave, pty.slave, pty.slave];
          } else if (!isatty(0)) {
            throw new VeilError('a terminal was asked for (--tty or process.terminal) but there is no --console-socket and stdin is not a terminal');
          }
        }
        let pid: number;
        try {
          pid = await runtime.exec(id, proc, stdio);
        } finally {
          if (pty) {
            addon().closeFd(pty.master);
            addon().closeFd(pty.slave);
          }
        }
        if (argv.detach) {
          const waiter = spawn(process.execPath, [join(__dirname, '..', 'cli.js'), '--root', argv.root, 'exec-wait', id, String(pid)], {
            stdio: 'ignore',
          });
          if (argv.pidFile) writePidFile(argv.pidFile, waiter.pid!);
          waiter.unref();
          return;
        }
        if (argv.pidFile) writePidFile(argv.pidFile, process.pid);
        process.exit(exitShellStatus(await forwardingSignals(runtime, id, pid, () => runtime.waitPid(id, pid))));
      }, EXEC_FAILED),
    )
    .command(
      'exec-wait <id> <pid>',
      false,
      (cmd) => cmd.positional('id', { type: 'string', demandOption: true }).positional('pid', { type: 'number', demandOption: true }),
      action(async (argv) => {
        process.exit(exitShellStatus(await runtimeFrom(argv).waitPid(String(argv.id), Number(argv.pid))));
      }, EXEC_FAILED),
    );
}
