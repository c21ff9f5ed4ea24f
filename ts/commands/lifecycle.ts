// create, start, run, kill, delete, pause, resume, wait: runc's commands
// and flags, as containerd, podman and CRI-O send them.

import type { Argv } from 'yargs';
import { exitShellStatus } from '../container';
import { parseSignal } from '../oci';
import { action, forwardingSignals, GlobalArgs, runtimeFrom } from './common';

/** Flags runc accepts that change nothing here (veil has no pivot_root, no keyring). */
function acceptedNoops(cmd: Argv<GlobalArgs>) {
  return cmd
    .option('pivot', { type: 'boolean', hidden: true, describe: '--no-pivot: accepted' })
    .option('new-keyring', { type: 'boolean', hidden: true, describe: '--no-new-keyring: accepted' })
    .option('subreaper', { type: 'boolean', hidden: true, describe: '--no-subreaper: accepted' })
    .option('preserve-fds', { type: 'number', hidden: true, describe: 'accepted; no extra descriptors are passed' });
}

function createFlags(cmd: Argv<GlobalArgs>) {
  return acceptedNoops(cmd)
    .positional('id', { type: 'string', demandOption: true, describe: 'container id' })
    .option('bundle', { alias: 'b', type: 'string', default: '.', describe: 'the bundle directory (holds config.json)' })
    .option('pid-file', { type: 'string', describe: 'write the sandbox pid here (decimal, no newline)' })
    .option('console-socket', { type: 'string', describe: 'unix socket to send the pty master to (process.terminal)' });
}

export function lifecycleCommands(cli: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return cli
    .command(
      'create <id>',
      'create a container: its sandbox boots and loads the process, which waits for start',
      createFlags,
      action(async (argv) => {
        await runtimeFrom(argv).create({
          id: String(argv.id),
          bundle: argv.bundle,
          pidFile: argv.pidFile,
          consoleSocket: argv.consoleSocket,
        });
      }),
    )
    .command(
      'start <id>',
      'start a created container',
      (cmd) => cmd.positional('id', { type: 'string', demandOption: true }),
      action(async (argv) => runtimeFrom(argv).start(String(argv.id))),
    )
    .command(
      'run <id>',
      'create and start a container; in the foreground, wait for it and delete it',
      (cmd) =>
        createFlags(cmd)
          .option('detach', { alias: 'd', type: 'boolean', default: false, describe: 'return once the container runs' })
          .option('keep', { type: 'boolean', default: false, describe: 'do not delete the container after it exits' }),
      action(async (argv) => {
        const runtime = runtimeFrom(argv);
        const id = String(argv.id);
        await runtime.create({ id, bundle: argv.bundle, pidFile: argv.pidFile, consoleSocket: argv.consoleSocket, terminalFromStdio: !argv.detach });
        try {
          await runtime.start(id);
        } catch (error) {
          await runtime.delete(id, true).catch(() => undefined);
          throw error;
        }
        if (argv.detach) return;
        const exit = await forwardingSignals(runtime, id, undefined, () => runtime.wait(id));
        if (!argv.keep) await runtime.delete(id, true);
        process.exit(exitShellStatus(exit));
      }),
    )
    .command(
      'kill <id> [signal]',
      'send a signal (name or number, default SIGTERM) to the container\'s init',
      (cmd) =>
        cmd
          .positional('id', { type: 'string', demandOption: true })
          .positional('signal', { type: 'string', default: 'SIGTERM' })
          .option('all', { alias: 'a', type: 'boolean', default: false, describe: 'signal every process of the container' }),
      action(async (argv) => runtimeFrom(argv).kill(String(argv.id), parseSignal(String(argv.signal)), argv.all)),
    )
    .command(
      'delete <id>',
      'delete a stopped container (with --force, a running one too)',
      (cmd) =>
        cmd
          .positional('id', { type: 'string', demandOption: true })
          .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'kill a running container first' }),
      action(async (argv) => runtimeFrom(argv).delete(String(argv.id), argv.force)),
    )
    .command(
      'pause <id>',
      'suspend every process of a running container',
      (cmd) => cmd.positional('id', { type: 'string', demandOption: true }),
      action(async (argv) => runtimeFrom(argv).pause(String(argv.id))),
    )
    .command(
      'resume <id>',
      'resume a paused container',
      (cmd) => cmd.positional('id', { type: 'string', demandOption: true }),
      action(async (argv) => runtimeFrom(argv).resume(String(argv.id))),
    )
    .command(
      'wait <id>',
      'wait for the container\'s init to exit; prints {"id","exitStatus"}',
      (cmd) => cmd.positional('id', { type: 'string', demandOption: true }),
      action(async (argv) => {
        const exit = await runtimeFrom(argv).wait(String(argv.id));
        process.stdout.write(JSON.stringify({ id: String(argv.id), exitStatus: exitShellStatus(exit) }) + '\n');
      }),
    );
}
