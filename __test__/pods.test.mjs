// Issue 4 item 8: multi-container pods. A CRI "sandbox" container boots the
// sandbox (a busybox `sleep` as the pause process); CRI "container"s join
// it, each with its own root filesystem, process, stdio and lifecycle, and
// a PID namespace of its own when their spec asks for one. Real sandboxes,
// real CLI, a private --root per test.

import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOneLineError, busybox, eventually, isAlive, privateRootPerTest, uniqueId, veilOci } from './helpers.mjs';

// Whatever a failed test left is deleted after it (containers that joined
// a pod first); nothing may survive.
const perTest = privateRootPerTest();
let root;
beforeEach(() => (root = perTest.root()));

const v = (args, options) => veilOci(root, args, options);

const CRI = {
  type: 'io.kubernetes.cri.container-type',
  sandboxId: 'io.kubernetes.cri.sandbox-id',
};

/** A bundle whose rootfs holds busybox and a marker file `/marker-NAME`. */
function bundle(name, { args, annotations, namespaces, oomScoreAdj }) {
  const config = { annotations };
  if (namespaces) config.linux = { namespaces };
  const b = perTest.bundle({ args, config, processExtra: oomScoreAdj === undefined ? {} : { oomScoreAdj } });
  writeFileSync(join(b.dir, 'rootfs', `marker-${name}`), `${name}\n`);
  return b;
}

/** The pod's root container: the pause process is `sleep 1000`. */
function podBundle(podId, extra = {}) {
  return bundle('pod', { args: [busybox, 'sleep', '1000'], annotations: { [CRI.type]: 'sandbox', [CRI.sandboxId]: podId }, ...extra });
}

/** A container of the pod `podId`. */
function memberBundle(name, podId, args, extra = {}) {
  return bundle(name, { args, annotations: { [CRI.type]: 'container', [CRI.sandboxId]: podId }, ...extra });
}

async function ok(args, options) {
  const r = await v(args, options);
  assert.equal(r.status, 0, `veil ${args.join(' ')}: ${r.stderr}`);
  return r;
}

async function state(id) {
  return JSON.parse((await ok(['state', id])).stdout);
}

async function createAndStart(id, b, extraArgs = []) {
  await ok(['create', '--bundle', b.dir, ...extraArgs, id], { stdout: b.out, stderr: b.err });
  await ok(['start', id]);
}

/** cgroup directories anywhere under /sys/fs/cgroup named after `id`. */
function cgroupsOf(id) {
  const found = [];
  for (const controller of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
    const dir = join('/sys/fs/cgroup', controller, id);
    if (existsSync(dir)) found.push(dir);
  }
  return found;
}

describe('multi-container pods', () => {
  test('a container joins the pod sandbox with its own root, sharing the sandbox PID namespace', async () => {
    const pod = uniqueId('pod');
    const app = uniqueId('app');
    const p = podBundle(pod);
    await createAndStart(pod, p);
    const sandboxPid = (await state(pod)).pid;

    const a = memberBundle('app', pod, [busybox, 'sh', '-c', 'echo app-started; cat /marker-app; exec sleep 999']);
    const pidFile = join(a.dir, 'pid');
    await ok(['create', '--bundle', a.dir, '--pid-file', pidFile, app], { stdout: a.out, stderr: a.err });
    assert.equal(readFileSync(pidFile, 'utf8'), String(sandboxPid), 'the pid file names the pod sandbox');
    const created = await state(app);
    assert.equal(created.status, 'created');
    assert.equal(created.pid, sandboxPid, 'same sandbox');
    assert.equal(created.annotations[CRI.sandboxId], pod);
    assert.equal(readFileSync(a.out, 'utf8'), '', 'nothing runs before start');

    await ok(['start', app]);
    await eventually(() => readFileSync(a.out, 'utf8') === 'app-started\napp\n', 5000, 'the app output');
    assert.equal((await state(app)).status, 'running');
    assert.equal((await state(pod)).status, 'running');

    // Each container sees its own root filesystem.
    const inApp = await ok(['exec', app, '--', busybox, 'sh', '-c', 'cat /marker-app; ls /marker-pod 2>&1; true']);
    assert.match(inApp.stdout, /^app\n/);
    assert.match(inApp.stdout, /marker-pod: No such file or directory/);
    const inPod = await ok(['exec', pod, '--', busybox, 'sh', '-c', 'cat /marker-pod; ls /marker-app 2>&1; true']);
    assert.match(inPod.stdout, /^pod\n/);
    assert.match(inPod.stdout, /marker-app: No such file or directory/);

    // One PID namespace: the app sees the pause process as pid 1.
    const ps = await ok(['exec', app, '--', busybox, 'ps', '-o', 'pid,args']);
    assert.match(ps.stdout, /^\s*1\s+\/bin\/busybox sleep 1000$/m, ps.stdout);
    assert.match(ps.stdout, /sleep 999$/m, ps.stdout);

    // veil ps lists each container's own processes.
    const podPids = JSON.parse((await ok(['ps', '--format', 'json', pod])).stdout);
    const appPids = JSON.parse((await ok(['ps', '--format', 'json', app])).stdout);
    assert.deepEqual(podPids, [1]);
    assert.equal(appPids.length, 1);
    assert.notEqual(appPids[0], 1);

    // The app's lifecycle is its own: kill, wait, delete leave the pod running.
    const waited = v(['wait', app]);
    await ok(['kill', app, 'KILL']);
    const w = await waited;
    assert.equal(w.status, 0, w.stderr);
    assert.deepEqual(JSON.parse(w.stdout), { id: app, exitStatus: 137 });
    assert.equal((await state(app)).status, 'stopped');
    assert.equal((await state(pod)).status, 'running');
    await ok(['delete', app]);
    assert.ok(!existsSync(join(root, app)), 'the app state is gone');
    assert.equal((await state(pod)).status, 'running');
    assert.ok(isAlive(sandboxPid));
    assert.deepEqual(JSON.parse((await ok(['ps', '--format', 'json', pod])).stdout), [1]);
    assert.match((await ok(['exec', pod, '--', busybox, 'cat', '/marker-pod'])).stdout, /^pod\n$/);
  });

  test('a container with its own PID namespace is pid 1 there; the sandbox sees it', async () => {
    const pod = uniqueId('pod');
    const app = uniqueId('own');
    const p = podBundle(pod);
    await createAndStart(pod, p);
    const a = memberBundle('own', pod, [busybox, 'sh', '-c', 'echo "pid=$$ ppid=$PPID"; exec sleep 999'], { namespaces: [{ type: 'pid' }, { type: 'mount' }] });
    await createAndStart(app, a);
    await eventually(() => readFileSync(a.out, 'utf8') !== '', 5000, 'the app output');
    assert.equal(readFileSync(a.out, 'utf8'), 'pid=1 ppid=0\n');

    const ps = await ok(['exec', app, '--', busybox, 'ps', '-o', 'pid,args']);
    assert.match(ps.stdout, /^\s*1\s+.*sleep 999$/m, ps.stdout);
    assert.doesNotMatch(ps.stdout, /sleep 1000/, 'the pause process is outside its namespace');
    const self = await ok(['exec', app, '--', busybox, 'sh', '-c', 'echo $$; readlink /proc/self; kill -0 1 && echo init-visible']);
    const [pid, procSelf, visible] = self.stdout.trim().split('\n');
    assert.ok(Number(pid) > 1 && Number(pid) < 10, `a small pid inside its namespace: ${pid}`);
    assert.equal(procSelf, String(Number(pid) + 1), '/proc/self is the readlink process, numbered in the namespace');
    assert.equal(visible, 'init-visible');

    // The sandbox's own namespace contains the child namespace.
    const podPs = await ok(['exec', pod, '--', busybox, 'ps', '-o', 'pid,args']);
    assert.match(podPs.stdout, /^\s*1\s+\/bin\/busybox sleep 1000$/m);
    assert.match(podPs.stdout, /^\s*\d+\s+.*sleep 999$/m, podPs.stdout);

    // The init of the namespace ignores signals without a handler, from
    // inside as from outside, as Linux's PID namespace init does; SIGKILL
    // from outside (`veil kill`) ends it.
    await ok(['exec', app, '--', busybox, 'kill', '-TERM', '1']);
    await ok(['kill', app, 'TERM']);
    assert.equal((await state(app)).status, 'running');
    await ok(['kill', app, 'KILL']);
    assert.deepEqual(JSON.parse((await ok(['wait', app])).stdout), { id: app, exitStatus: 137 });
    assert.equal((await state(pod)).status, 'running');
  });

  test('delete --force of the root container stops the whole pod and leaves nothing', async () => {
    const pod = uniqueId('pod');
    const app = uniqueId('app');
    const idle = uniqueId('idle');
    await createAndStart(pod, podBundle(pod));
    const sandboxPid = (await state(pod)).pid;
    await createAndStart(app, memberBundle('app', pod, [busybox, 'sleep', '999']));
    // One created and never started: it goes with the sandbox too.
    await ok(['create', '--bundle', memberBundle('idle', pod, [busybox, 'sleep', '998']).dir, idle]);

    assertOneLineError(await v(['delete', pod]), /cannot delete container .* that is not stopped: running/);
    await ok(['delete', '--force', pod]);
    await eventually(() => !isAlive(sandboxPid), 5000, 'the sandbox to exit');
    assert.equal((await state(app)).status, 'stopped');
    assert.equal((await state(app)).pid, 0);
    assert.equal((await state(idle)).status, 'stopped');
    await ok(['delete', app]);
    await ok(['delete', idle]);
    assert.deepEqual(readdirSync(root), []);
    assert.deepEqual([pod, app, idle].flatMap(cgroupsOf), [], 'no cgroup left');
  });

  test('the sandbox takes the lowest oom_score_adj of its containers, the pause container aside', async () => {
    const pod = uniqueId('pod');
    const low = uniqueId('low');
    const high = uniqueId('high');
    await createAndStart(pod, podBundle(pod, { oomScoreAdj: -998 }));
    const sandboxPid = (await state(pod)).pid;
    const score = () => Number(readFileSync(`/proc/${sandboxPid}/oom_score_adj`, 'utf8'));
    const original = score();
    assert.notEqual(original, -998, 'the pause container is not counted');

    await createAndStart(high, memberBundle('high', pod, [busybox, 'sleep', '999'], { oomScoreAdj: 500 }));
    assert.equal(score(), 500);
    await createAndStart(low, memberBundle('low', pod, [busybox, 'sleep', '999'], { oomScoreAdj: 300 }));
    assert.equal(score(), 300);
    await ok(['delete', '--force', low]);
    assert.equal(score(), 500);
    await ok(['delete', '--force', high]);
    assert.equal(score(), original, 'the original value comes back with the last scored container');
  });

  test('bad CRI annotations get one line naming the problem and leave nothing', async () => {
    const pod = uniqueId('pod');
    const noId = bundle('x', { args: [busybox, 'true'], annotations: { [CRI.type]: 'container' } });
    assertOneLineError(await v(['create', '--bundle', noId.dir, uniqueId('x')]), /annotations: .*io\.kubernetes\.cri\.sandbox-id/);
    const missing = memberBundle('y', pod, [busybox, 'true']);
    assertOneLineError(await v(['create', '--bundle', missing.dir, uniqueId('y')]), new RegExp(`container "${pod}" does not exist`));
    // CRI-O's annotations work the same way.
    const crio = bundle('z', { args: [busybox, 'true'], annotations: { 'io.kubernetes.cri-o.ContainerType': 'container', 'io.kubernetes.cri-o.SandboxID': pod } });
    assertOneLineError(await v(['create', '--bundle', crio.dir, uniqueId('z')]), new RegExp(`container "${pod}" does not exist`));
    // A joining container whose program does not exist: the pod stays, the container does not.
    await createAndStart(pod, podBundle(pod));
    const bad = memberBundle('bad', pod, ['/no/such/program']);
    const badId = uniqueId('bad');
    assertOneLineError(await v(['create', '--bundle', bad.dir, badId]), /no\/such\/program/);
    assert.deepEqual(readdirSync(root), [pod]);
    assert.deepEqual(JSON.parse((await ok(['ps', '--format', 'json', pod])).stdout), [1]);
  });
});
