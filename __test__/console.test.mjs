// --console-socket, end to end: with process.terminal, `create` (and
// `exec --tty`) open a pty, send its master over SCM_RIGHTS to the unix
// socket an engine listens on, and give the replica to the container as
// stdin, stdout and stderr. The engine here is console-receiver.py (Python's
// socket.recv_fds), which checks what arrives and reads the container's
// output from the master.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { busybox, privateRootPerTest, uniqueId, veilOci } from './helpers.mjs';

const RECEIVER = fileURLToPath(new URL('console-receiver.py', import.meta.url));
const python = spawnSync('python3', ['-c', 'import socket; socket.recv_fds'], { stdio: 'ignore' });
const skip = python.status !== 0 ? 'python3 (3.9+, for socket.recv_fds) is not installed; .ci/run installs it' : false;
if (skip) console.log(`# console tests skipped: ${skip}`);

const perTest = privateRootPerTest();
const v = (args, options) => veilOci(perTest.root(), args, options);
const bundle = (options) => perTest.bundle(options);

/**
 * Starts the receiver on a socket in DIR; resolves once it listens, with
 * `result`, a promise of what it received and read.
 */
async function listen(dir, input) {
  const socket = join(dir, 'console.sock');
  const child = spawn('python3', [RECEIVER, socket, ...(input ? [input] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('close', resolve));
  await new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
      if (stdout.startsWith('listening\n')) resolve();
    });
    child.on('close', () => reject(new Error(`the console receiver exited: ${stderr}`)));
  });
  const result = exited.then((status) => {
    assert.equal(status, 0, `console receiver failed: ${stderr}`);
    return JSON.parse(stdout.slice('listening\n'.length));
  });
  return { socket, result };
}

describe('--console-socket', { skip }, () => {
  test('create sends the pty master; the container\'s output and input go through it', async () => {
    const b = bundle({
      args: [busybox, 'sh', '-c', 'read line; echo "got $line"; [ -t 0 ] && [ -t 1 ] && echo "stdio is a terminal"; echo END'],
      processExtra: { terminal: true },
    });
    const id = uniqueId('console');
    const { socket, result } = await listen(b.dir, 'typed words\n');
    const c = await v(['create', '--bundle', b.dir, '--console-socket', socket, id]);
    assert.equal(c.status, 0, c.stderr);
    assert.equal((await v(['start', id])).status, 0);
    const received = await result;
    assert.equal(received.name, `/dev/pts/${received.pts}`, 'the message names the pty whose master was sent');
    assert.equal(received.isatty, true);
    // The terminal echoes what was typed, then the output with \r\n (onlcr).
    assert.match(received.output, /typed words\r\n/);
    assert.match(received.output, /got typed words\r\n/);
    assert.match(received.output, /stdio is a terminal\r\n/);
    assert.deepEqual(JSON.parse((await v(['wait', id])).stdout), { id, exitStatus: 0 });
    assert.equal((await v(['delete', id])).status, 0);
  });

  test('exec --tty --console-socket: the exec\'d process runs on a pty of its own', async () => {
    const b = bundle({ args: [busybox, 'sleep', '30'] });
    const id = uniqueId('exectty');
    assert.equal((await v(['create', '--bundle', b.dir, id])).status, 0);
    assert.equal((await v(['start', id])).status, 0);
    const { socket, result } = await listen(b.dir);
    const e = await v(['exec', '--tty', '--console-socket', socket, id, busybox, 'sh', '-c', '[ -t 1 ] && echo "exec on a terminal"; echo END; exit 3']);
    assert.equal(e.status, 3, e.stderr);
    const received = await result;
    assert.equal(received.name, `/dev/pts/${received.pts}`);
    assert.match(received.output, /exec on a terminal\r\nEND/);
    assert.equal((await v(['delete', '--force', id])).status, 0);
  });

  test('process.terminal without --console-socket, or a socket nobody listens on: one-line errors, nothing left', async () => {
    const b = bundle({ args: [busybox, 'true'], processExtra: { terminal: true } });
    const id = uniqueId('noconsole');
    const r = await v(['create', '--bundle', b.dir, id]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /^veil: process.terminal is true: --console-socket is required\n$/);
    const dead = await v(['create', '--bundle', b.dir, '--console-socket', join(b.dir, 'nobody.sock'), id]);
    assert.notEqual(dead.status, 0);
    assert.match(dead.stderr, /^veil: console socket .*nobody\.sock: .*\n$/);
    assert.deepEqual(readdirSync(perTest.root()), []);
  });
});
