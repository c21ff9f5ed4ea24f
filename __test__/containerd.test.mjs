// containerd drives veil through its runc shim (containerd-shim-runc-v2):
// Debian's containerd, started here on a private socket, root and state
// directory, imports a busybox image this test builds (an OCI image layout
// in a tar), and `ctr run --runc-binary veil` runs containers from it. The
// shim is a subreaper that waits on the --pid-file process for the exit
// status, reads errors from --log (JSON), and sends start/kill/exec/delete.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNothingLeft, busybox, cli, eventually, startWatching, watchedEnv } from './helpers.mjs';

const which = (name) => spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
const CONTAINERD = which('containerd');
const CTR = which('ctr');
const skip =
  process.getuid() !== 0
    ? 'containerd and its runc shim need root'
    : !CONTAINERD || !CTR || !which('containerd-shim-runc-v2')
      ? 'containerd is not installed (apt-get install containerd; .ci/run installs it)'
      : false;
if (skip) console.log(`# containerd tests skipped: ${skip}`);

const IMAGE = 'docker.io/library/veil-busybox:test';
const NS = `veil-test-${process.pid}`;
/** Created by ctr and the shim (fixed paths in containerd 1.6): removed after if they were not there before. */
const SHIM_RUN_DIR = '/run/containerd';

const sha256 = (data) => createHash('sha256').update(data).digest('hex');

/**
 * An OCI image layout in a tar: one uncompressed layer holding static
 * busybox as /bin/busybox with a few applet links.
 */
function buildImage(work) {
  const layerDir = join(work, 'layer');
  mkdirSync(join(layerDir, 'bin'), { recursive: true });
  copyFileSync(busybox, join(layerDir, 'bin', 'busybox'));
  for (const applet of ['sh', 'echo', 'sleep', 'cat', 'hostname']) symlinkSync('busybox', join(layerDir, 'bin', applet));
  const layout = join(work, 'layout');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const layerTar = join(work, 'layer.tar');
  const tar = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-C', layerDir, '-cf', layerTar, '.']);
  assert.equal(tar.status, 0, String(tar.stderr));
  const blob = (data) => {
    const digest = sha256(data);
    writeFileSync(join(blobs, digest), data);
    return { digest: `sha256:${digest}`, size: data.length };
  };
  const layer = blob(readFileSync(layerTar));
  const config = blob(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] },
        rootfs: { type: 'layers', diff_ids: [layer.digest] },
      }),
    ),
  );
  const manifest = blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
      }),
    ),
  );
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'io.containerd.image.name': IMAGE, 'org.opencontainers.image.ref.name': 'test' },
        },
      ],
    }),
  );
  const image = join(work, 'image.tar');
  const pack = spawnSync('tar', ['-C', layout, '-cf', image, '.']);
  assert.equal(pack.status, 0, String(pack.stderr));
  return image;
}

describe('containerd (ctr and the runc v2 shim) running veil', { skip }, () => {
  let work;
  let daemon;
  let daemonExited;
  let socket;
  let runcRoot;
  let fifoDir;
  let hadShimRunDir;
  const ids = [];

  /** `ctr --address SOCKET -n NS ARGS…`: resolves with status, stdout, stderr. */
  const ctr = (args, { timeoutMs = 60000 } = {}) =>
    new Promise((resolve) => {
      execFile(CTR, ['--address', socket, '-n', NS, ...args], { timeout: timeoutMs, env: { ...process.env, ...watchedEnv() } }, (error, stdout, stderr) => {
        resolve({ status: error ? (error.code ?? error.signal) : 0, stdout, stderr });
      });
    });

  /** The flags that make the runc shim run veil, with its state in our directory. */
  const runtimeFlags = () => ['--snapshotter', 'native', '--fifo-dir', fifoDir, '--runc-binary', cli, '--runc-root', runcRoot];

  const newId = (name) => {
    const id = `${name}-${Math.random().toString(36).slice(2, 8)}`;
    ids.push(id);
    return id;
  };

  /** veil's state directories under the shim's --runc-root for our namespace. */
  const veilContainers = () => (existsSync(join(runcRoot, NS)) ? readdirSync(join(runcRoot, NS)) : []);

  before(async () => {
    startWatching();
    hadShimRunDir = existsSync(SHIM_RUN_DIR);
    work = mkdtempSync(join(tmpdir(), 'vctd-'));
    socket = join(work, 'containerd.sock');
    runcRoot = join(work, 'runc');
    fifoDir = join(work, 'fifo');
    mkdirSync(fifoDir);
    const config = join(work, 'config.toml');
    // Nothing here is shared with a system containerd: own socket, root,
    // state and plugin directories; the CRI plugin (which wants CNI) is off.
    writeFileSync(
      config,
      [
        'version = 2',
        `root = "${join(work, 'root')}"`,
        `state = "${join(work, 'state')}"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = "${socket}"`,
        '[ttrpc]',
        `  address = "${socket}.ttrpc"`,
        '[plugins."io.containerd.internal.v1.opt"]',
        `  path = "${join(work, 'opt')}"`,
        '',
      ].join('\n'),
    );
    const log = join(work, 'containerd.log');
    daemon = spawn(CONTAINERD, ['--config', config, '--log-level', 'info'], {
      env: { ...process.env, ...watchedEnv() },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let daemonLog = '';
    daemon.stderr.setEncoding('utf8').on('data', (d) => (daemonLog += d));
    daemonExited = new Promise((resolve) => daemon.on('exit', resolve));
    await eventually(async () => existsSync(socket) && (await ctr(['version'])).status === 0, 20000, `containerd to serve ${socket}:\n${daemonLog}`);
    writeFileSync(log, daemonLog);

    const imported = await ctr(['images', 'import', '--snapshotter', 'native', buildImage(work)]);
    assert.equal(imported.status, 0, imported.stderr);
    assert.match((await ctr(['images', 'ls', '-q'])).stdout, new RegExp(IMAGE.replace(/[.:]/g, '\\$&')));
  });

  after(async () => {
    // Whatever a failed test left, then containerd itself.
    for (const id of ids) {
      await ctr(['task', 'delete', '--force', id]);
      await ctr(['containers', 'delete', id]);
    }
    await ctr(['images', 'rm', IMAGE]);
    daemon?.kill('SIGTERM');
    await daemonExited;
    const leftInRoot = veilContainers();
    rmSync(work, { recursive: true, force: true });
    // veil creates the container's cgroup at ctr's cgroupsPath /NS/ID and
    // removes the leaf on delete; the namespace level is ours to remove, as
    // with runc.
    for (const controller of readdirSync('/sys/fs/cgroup')) {
      const dir = join('/sys/fs/cgroup', controller, NS);
      if (existsSync(dir)) rmdirSync(dir);
    }
    if (!hadShimRunDir && existsSync(SHIM_RUN_DIR)) {
      for (const sub of readdirSync(SHIM_RUN_DIR)) rmdirSync(join(SHIM_RUN_DIR, sub));
      rmdirSync(SHIM_RUN_DIR);
    }
    await assertNothingLeft();
    assert.deepEqual(leftInRoot, [], 'containers left in veil\'s --root');
  });

  test('ctr run --rm: the output and the exit status come back through the shim; nothing stays', async () => {
    const id = newId('run');
    const script = 'echo $GREETING from pid $$; echo to stderr >&2; exit 3';
    const r = await ctr(['run', '--rm', ...runtimeFlags(), '--env', 'GREETING=hello', IMAGE, id, '/bin/sh', '-c', script]);
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stdout, 'hello from pid 1\n');
    assert.match(r.stderr, /to stderr/);
    assert.equal((await ctr(['containers', 'ls', '-q'])).stdout.trim(), '');
    assert.deepEqual(veilContainers(), []);
  });

  test('ctr run -d, task exec, task kill, task delete: the runc shim\'s whole cycle', async () => {
    const id = newId('detached');
    const r = await ctr(['run', '-d', ...runtimeFlags(), IMAGE, id, '/bin/sleep', '300']);
    assert.equal(r.status, 0, r.stderr);
    const tasks = (await ctr(['task', 'ls'])).stdout;
    const row = tasks.split('\n').find((l) => l.startsWith(`${id} `));
    assert.match(row ?? '', /RUNNING/, tasks);
    const pid = Number(row.trim().split(/\s+/)[1]);
    const veilState = JSON.parse(spawnSync(process.execPath, [cli, '--root', join(runcRoot, NS), 'state', id], { encoding: 'utf8' }).stdout);
    assert.deepEqual([veilState.status, veilState.pid], ['running', pid], 'the shim\'s pid is the one veil reports');

    // exec: veil exec --process FILE --detach --pid-file, with stdio from the shim.
    const e = await ctr(['task', 'exec', '--fifo-dir', fifoDir, '--exec-id', 'e1', id, '/bin/sh', '-c', 'echo exec says hi; exit 2']);
    assert.equal(e.status, 2, e.stderr);
    assert.equal(e.stdout, 'exec says hi\n');

    // sleep, the init, has no handler for ctr's default SIGTERM: it ignores
    // it, as the init of a PID namespace does under runc.
    assert.equal((await ctr(['task', 'kill', id])).status, 0);
    await new Promise((r) => setTimeout(r, 500));
    assert.match((await ctr(['task', 'ls'])).stdout, new RegExp(`^${id}\\s+\\d+\\s+RUNNING`, 'm'), 'SIGTERM ignored');
    assert.equal((await ctr(['task', 'kill', '--signal', 'SIGKILL', id])).status, 0);
    await eventually(async () => /STOPPED/.test((await ctr(['task', 'ls'])).stdout), 15000, 'the task to stop after SIGKILL');
    assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the sandbox exited with the init');
    const d = await ctr(['task', 'delete', id]);
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stderr, /exit code 137/, 'SIGKILL: 128 + 9');
    assert.equal((await ctr(['containers', 'delete', id])).status, 0);
    assert.deepEqual(veilContainers(), []);
  });
});
