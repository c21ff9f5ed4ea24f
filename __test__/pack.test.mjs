// Issue 2, item 6: the packed packages install from their tarballs alone and
// run `veil do` where no Rust toolchain is on the PATH.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { repo } from './helpers.mjs';

test('npm pack → npm install --offline → npx veil do, without cargo', { timeout: 180000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'vtest-pack-'));
  try {
    const out = join(work, 'tarballs');
    const tarballs = execFileSync(join(repo, 'scripts', 'pack.sh'), ['--no-build', out], {
      encoding: 'utf8',
      env: { ...process.env, TMPDIR: work },
    })
      .trim()
      .split('\n');
    assert.equal(tarballs.length, 2, tarballs.join('\n'));
    tarballs.forEach((t) => assert.ok(existsSync(t), t));

    const app = join(work, 'app');
    execFileSync('mkdir', [app]);
    writeFileSync(join(app, 'package.json'), '{"name":"veil-pack-test","private":true}\n');
    // Only the system directories and node's own: no cargo, no rustc.
    const PATH = ['/usr/bin', '/bin', dirname(process.execPath)].join(':');
    const env = { ...process.env, PATH, TMPDIR: work, npm_config_cache: join(work, 'npm-cache') };
    delete env.VEIL_SANDBOX_BINARY;
    for (const tool of ['cargo', 'rustc']) {
      assert.throws(() => execFileSync('sh', ['-c', `command -v ${tool}`], { env }), `${tool} is on the test PATH`);
    }
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', ...tarballs], { cwd: app, env, stdio: 'pipe' });
    // Installed, nothing compiled: the addon comes from the platform package.
    const installed = readdirSync(join(app, 'node_modules')).sort();
    assert.deepEqual(installed, ['.bin', '.package-lock.json', 'veil', 'veil-linux-x64-gnu'].sort());
    assert.ok(!existsSync(join(app, 'node_modules', 'veil', 'npm')), 'the checkout build leaked into the package');

    const output = execFileSync('npx', ['veil', 'do', '--', '/bin/busybox', 'echo', 'ok'], { cwd: app, env, encoding: 'utf8' });
    assert.equal(output, 'ok\n');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
