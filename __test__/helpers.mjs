// Shared by the end-to-end tests: runs the real CLI (dist/cli.js) against
// the real veil-sandbox, and checks that nothing is left behind.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

export const repo = fileURLToPath(new URL('..', import.meta.url));
export const cli = join(repo, 'dist', 'cli.js');
export const busybox = '/bin/busybox';

/** Every process started by one test carries this in its environment. */
let mark = '';
/** A private TMPDIR for the CLI and the sandbox: must stay empty. */
let privateTmp = '';
let tmpBefore = new Set();

const veilTmpEntries = () => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('veil')));

/** Call from beforeEach. */
export function startWatching() {
  mark = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  privateTmp = mkdtempSync(join(tmpdir(), 'vtest-'));
  tmpBefore = veilTmpEntries();
}

/** Host processes whose environment holds this test's mark. */
function markedProcesses() {
  const found = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').includes(`VEIL_TEST_MARK=${mark}`)) {
        found.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ')}`);
      }
    } catch {
      // Exited while we looked, or a kernel thread.
    }
  }
  return found;
}

/** Call from afterEach: no sandbox process and no temporary file survive a run. */
export async function assertNothingLeft() {
  let left = markedProcesses();
  // The CLI reaps the sandbox before it exits, so a short grace is plenty.
  for (let i = 0; i < 20 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = markedProcesses();
  }
  const leftovers = readdirSync(privateTmp);
  rmSync(privateTmp, { recursive: true, force: true });
  assert.deepEqual(left, [], 'sandbox processes left behind');
  assert.deepEqual(leftovers, [], 'files left in TMPDIR');
  const newVeilTmp = [...veilTmpEntries()].filter((n) => !tmpBefore.has(n));
  assert.deepEqual(newVeilTmp, [], `veil* entries left in ${tmpdir()}`);
}

/**
 * Runs `veil ARGS…` and resolves with its status and output.
 * `onSpawn(child)` may signal it; `input` is written to its stdin.
 */
export function veil(args, { input, onSpawn, timeoutMs = 30000, env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, ...env, VEIL_TEST_MARK: mark, TMPDIR: privateTmp },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`veil ${args.join(' ')} timed out after ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      assertUnsupportedReportedOnce(stderr);
      resolve({ status, signal, stdout, stderr });
    });
    onSpawn?.(child);
  });
}

/** `veil do -- ARGS…` */
export const veilDo = (cmd, options) => veil(['do', '--', ...cmd], options);

/** An unimplemented syscall is reported on stderr, once per syscall. */
function assertUnsupportedReportedOnce(stderr) {
  const reports = stderr.split('\n').filter((l) => l.includes('unsupported syscall'));
  assert.deepEqual(reports, [...new Set(reports)], `a syscall was reported twice:\n${stderr}`);
}

/** The file name column of `ls -l` output (symlink targets dropped). */
export function namesFromLsLong(text) {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('total'))
    .map((l) => {
      const fields = l.trim().split(/\s+/);
      const arrow = fields.indexOf('->');
      return arrow > 0 ? fields[arrow - 1] : fields[fields.length - 1];
    });
}

/** Asserts a failed run printed exactly one `veil: …` line matching `pattern`. */
export function assertOneLineError(result, pattern) {
  assert.notEqual(result.status, 0, `expected failure, got status 0; stdout: ${result.stdout}`);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0], /^veil: /);
  assert.match(lines[0], pattern);
}
