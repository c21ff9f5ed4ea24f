// The OCI runtime-tools validation suite against veil: the validations veil
// passes must keep passing. scripts/validate.sh builds the suite (from the Go
// module proxy, cached under /var/cache/veil) and runs all of it against
// veil and runc side by side; this runs the subset below, one test each.
// Each validation runs veil through a wrapper that gives it a private --root
// (so other runs of veil on the machine cannot disturb the check that nothing
// is left), creates containers with fresh uuids, and runs the Go
// `runtimetest` binary inside them.

import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNothingLeft, cli, repo, startWatching, watchedEnv } from './helpers.mjs';

/** Validations veil passes in full (see scripts/validate.sh for the rest and why they fail). */
const MUST_PASS = [
  'config_updates_without_affect',
  'create',
  'default',
  'delete_only_create_resources',
  'delete_resources',
  'hostname',
  'kill',
  'kill_no_effect',
  'linux_cgroups_cpus',
  'linux_cgroups_pids',
  'linux_devices',
  'linux_masked_paths',
  'linux_readonly_paths',
  'mounts',
  'process',
  'process_capabilities',
  'process_oom_score_adj',
  'process_user',
  'root_readonly_true',
  'state',
];

const hasGo = spawnSync('sh', ['-c', 'command -v go || ls /usr/lib/go-*/bin/go'], { stdio: 'ignore' }).status === 0;
const skip = process.getuid() !== 0 ? 'the validations create containers: they need root' : !hasGo ? 'no Go toolchain to build the suite (apt-get install golang-go; .ci/run installs it)' : false;
if (skip) console.log(`# validation tests skipped: ${skip}`);

// The wrapper the suite runs as its RUNTIME, and the --root it passes.
const scratch = skip ? '' : mkdtempSync(join(tmpdir(), 'vt-validation-'));
const VEIL_ROOT = join(scratch, 'root');
const RUNTIME = join(scratch, 'veil');
const rootEntries = () => (existsSync(VEIL_ROOT) ? readdirSync(VEIL_ROOT) : []);

/** Runs one validation binary; resolves with its exit status and TAP output. */
function validation(suite, name) {
  return new Promise((resolve, reject) => {
    const child = spawn(join(suite, 'bin', name), [], { cwd: suite, env: { ...process.env, ...watchedEnv(), RUNTIME }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} timed out:\n${output}`));
    }, 120000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}

describe('OCI runtime-tools validation suite', { skip }, () => {
  let suite;
  let before_;

  before(() => {
    writeFileSync(RUNTIME, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} --root ${JSON.stringify(VEIL_ROOT)} "$@"\n`);
    chmodSync(RUNTIME, 0o755);
    // First run: downloads the suite and its modules and builds ~60 binaries.
    const build = spawnSync(join(repo, 'scripts', 'validate.sh'), ['--build-only'], { encoding: 'utf8', timeout: 15 * 60000 });
    assert.equal(build.status, 0, `building the validation suite failed:\n${build.stderr}`);
    suite = build.stdout.trim().split('\n').pop();
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));
  beforeEach(() => {
    startWatching();
    before_ = new Set(rootEntries());
  });
  afterEach(async () => {
    // The suite leaves in TMPDIR the bundles (ocitestNNN) of the cases that
    // expect create to fail before it starts (linux_masked_paths' relative
    // and looping paths): its own leftovers, made before veil runs. The
    // containers check below still catches anything veil leaves.
    const tmp = watchedEnv().TMPDIR;
    for (const e of readdirSync(tmp).filter((n) => /^ocitest\d+$/.test(n))) rmSync(join(tmp, e), { recursive: true, force: true });
    await assertNothingLeft();
    assert.deepEqual(rootEntries().filter((e) => !before_.has(e)), [], `containers left in ${VEIL_ROOT}`);
  });

  for (const name of MUST_PASS) {
    test(name, async () => {
      const { status, output } = await validation(suite, name);
      const failures = output.split('\n').filter((l) => l.startsWith('not ok'));
      assert.deepEqual(failures, [], output);
      assert.match(output, /^ok /m, output);
      // runtimetest prints its plan last: without it, it stopped at an error
      // (an ENOSYS, a missing /proc file) before checking everything, which
      // the suite itself does not count as a failure.
      assert.match(output, /^1\.\.\d+$/m, `the validation did not run to its end:\n${output}`);
      assert.equal(status, 0, output);
    });
  }
});
