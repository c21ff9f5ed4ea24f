#!/usr/bin/env node
// The `veil` command line. Start-up time matters (`veil do … true` is
// measured end to end), so only yargs loads eagerly; the addon and the
// sandbox code load inside the command that needs them.

import yargs from 'yargs';
import type { Argv } from 'yargs';

const PLATFORMS = ['ptrace'];

/** Prints the one-line error every failure ends in and exits non-zero. */
function fail(message: string, status = 1): never {
  process.stderr.write(`veil: ${message}\n`);
  process.exit(status);
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
  if (!PLATFORMS.includes(argv.platform)) {
    fail(`unknown platform "${argv.platform}" (valid platforms: ${PLATFORMS.join(', ')})`);
  }
  if (argv.command.length === 0) fail('no command given: usage is veil do [FLAGS] -- CMD [ARGS...]');
  const { buildDoSpec } = await import('./spec');
  const { runInSandbox, VeilError } = await import('./sandbox');
  const { debug } = await import('./log');
  const spec = buildDoSpec({ args: argv.command, rootfs: argv.rootfs, hostname: argv.hostname });
  debug(`spec ${JSON.stringify(spec)}`);
  try {
    const status = await runInSandbox({
      spec,
      platform: argv.platform as 'ptrace',
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

function globalFlags(cli: Argv) {
  return cli
    .option('root', { type: 'string', default: '/run/veil', describe: 'directory for container state' })
    .option('log', { type: 'string', describe: 'write the debug log to this file (default: stderr)' })
    .option('log-format', { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'debug log format' })
    .option('debug', { type: 'boolean', default: false, describe: 'log what veil and the sandbox do' })
    .option('platform', { type: 'string', default: 'ptrace', describe: `how application code runs: ${PLATFORMS.join(', ')}` })
    .option('strace', { type: 'boolean', default: false, describe: "print each application system call as the sentry serves it" });
}

export async function main(args: string[]): Promise<void> {
  const { version } = require('../package.json') as { version: string };
  await globalFlags(yargs(args))
    .scriptName('veil')
    .usage('$0 [global flags] <command>')
    .parserConfiguration({ 'populate--': true })
    .middleware(async (argv) => {
      const { configureLog } = await import('./log');
      configureLog({ file: argv.log, format: argv['log-format'], debug: argv.debug });
    })
    .command(
      'do [command..]',
      'run a command in a fresh sandbox whose root is the host\'s /, read-only',
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
    .demandCommand(1, 'no command given (try veil --help)')
    .strict()
    .version(version)
    .alias('version', 'v')
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
