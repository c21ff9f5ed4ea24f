// Runs the end-to-end tests (node --test __test__/, or the files given as
// arguments) once per platform: ptrace and systrap where they work, kvm
// where /dev/kvm is usable (else says why it is skipped). The platform reaches every `veil` the tests
// run through $VEIL_PLATFORM, the CLI's default for --platform.
//
//   node scripts/e2e-matrix.mjs [TEST FILES...]
//   VEIL_E2E_PLATFORMS=kvm node scripts/e2e-matrix.mjs   (one platform only)
import { spawnSync } from 'node:child_process';
import { platformUnusable, repo } from '../__test__/helpers.mjs';

const files = process.argv.slice(2);
const platforms = (process.env.VEIL_E2E_PLATFORMS || 'ptrace,kvm,systrap').split(',').filter(Boolean);

const results = [];
for (const platform of platforms) {
  const why = platformUnusable(platform);
  if (why) {
    results.push(`${platform}: skipped (${why})`);
    continue;
  }
  process.stdout.write(`\n# end-to-end tests on platform ${platform}\n`);
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--test', ...(files.length ? files : ['__test__/'])], {
    cwd: repo,
    stdio: 'inherit',
    env: { ...process.env, VEIL_PLATFORM: platform },
  });
  const secs = Math.round((Date.now() - started) / 1000);
  results.push(`${platform}: ${r.status === 0 ? 'passed' : `FAILED (${r.signal ?? `status ${r.status}`})`} in ${secs} s`);
}
process.stdout.write(`\n# end-to-end matrix\n${results.map((l) => `#   ${l}`).join('\n')}\n`);
process.exit(results.some((l) => l.includes('FAILED')) ? 1 : 0);
