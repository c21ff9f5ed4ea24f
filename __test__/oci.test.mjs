// Issue 4: the runc-compatible lifecycle, end to end, with real bundles
// (static busybox as the rootfs) and a private --root per test.

import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOneLineError, busybox, eventually, isAlive, privateRootPerTest, uniqueId, veilOci } from './helpers.mjs';

// Whatever a failed test left is deleted after it; nothing may survive.
const perTest = privateRootPerTest();
const bundle = (options) => perTest.bundle(options);
let root;
beforeEach(() => (root = perTest.root()));

const v = (args, options) => veilOci(root, args, options);

async function state(id) {
  const r = await v(['state', id]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** A one-line `veil: …` failure matching `pattern`. */
const assertFails = assertOneLineError;
const sandboxAlive = isAlive;

describe('create, start, state, wait, delete', () => {
  test('the full lifecycle with a pid file, OCI state and the exit status', async () => {
    const b = bundle({ args: [busybox, 'sh', '-c', 'echo started; sleep 2; exit 7'] });
    const id = uniqueId('life');
    const pidFile = join(b.dir, 'pid');
    const c = await v(['create', '--bundle', b.dir, '--pid-file', pidFile, id], { stdout: b.out, stderr: b.err });
    assert.equal(c.status, 0, readFileSync(b.err, 'utf8'));
    const pidText = readFileSync(pidFile, 'utf8');
    assert.match(pidText, /^\d+$/, 'decimal digits, no newline');

    const created = await state(id);
    assert.deepEqual(
      { ...created, created: undefined },
      { ociVersion: '1.0.2', id, status: 'created', pid: Number(pidText), bundle: b.dir, rootfs: join(b.dir, 'rootfs'), created: undefined, owner: 'root' },
    );
    assert.match(created.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
    assert.ok(sandboxAlive(Number(pidText)), 'the sandbox outlives create');
    assert.equal(readFileSync(b.out, 'utf8'), '', 'nothing runs before start');

    assert.equal((await v(['start', id])).status, 0);
    assert.equal((await state(id)).status, 'running');
    assertFails(await v(['start', id]), new RegExp(`cannot start container "${id}" in state running`));

    const w = await v(['wait', id]);
    assert.deepEqual(JSON.parse(w.stdout), { id, exitStatus: 7 });
    const stopped = await state(id);
    assert.equal(stopped.status, 'stopped');
    assert.equal(stopped.pid, 0);
    assert.equal(readFileSync(b.out, 'utf8'), 'started\n', 'stdout went to the fds create was given');

    assert.equal((await v(['delete', id])).status, 0);
    assert.deepEqual(readdirSync(root), []);
    await eventually(() => !sandboxAlive(Number(pidText)), 5000, 'the sandbox to exit');
    assertFails(await v(['state', id]), new RegExp(`container "${id}" does not exist`));
  });

  test('list: table and json', async () => {
    const b = bundle({ args: [busybox, 'sleep', '5'] });
    const id = uniqueId('list');
    assert.equal((await v(['create', '-b', b.dir, id])).status, 0);
    const json = JSON.parse((await v(['list', '--format', 'json'])).stdout);
    assert.deepEqual(json.map((s) => [s.id, s.status]), [[id, 'created']]);
    const table = (await v(['list'])).stdout.split('\n');
    assert.match(table[0], /^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER$/);
    assert.match(table[1], new RegExp(`^${id}\\s+\\d+\\s+created\\s+${b.dir}`));
    assert.equal((await v(['delete', id])).status, 0, 'a created container deletes without --force');
  });

  test('ids are validated; unknown containers "do not exist"', async () => {
    assertFails(await v(['state', 'bad/id']), /invalid container id/);
    assertFails(await v(['start', 'nope']), /container "nope" does not exist/);
    assertFails(await v(['delete', 'nope']), /container "nope" does not exist/);
    assert.equal((await v(['delete', '--force', 'nope'])).status, 0, 'delete --force of nothing succeeds');
  });

  test('20 concurrent creates of one id: exactly one wins, the others fail cleanly', async () => {
    const b = bundle({ args: [busybox, 'sleep', '5'] });
    const id = uniqueId('race');
    const results = await Promise.all(Array.from({ length: 20 }, () => v(['create', '-b', b.dir, id], { timeoutMs: 60000 })));
    const ok = results.filter((r) => r.status === 0);
    assert.equal(ok.length, 1, results.map((r) => r.stderr).join(''));
    for (const r of results.filter((r) => r.status !== 0)) assertFails(r, new RegExp(`container "${id}" already exists`));
    assert.equal((await state(id)).status, 'created');
    assert.equal((await v(['delete', id])).status, 0);
  });
});

describe('kill, delete --force, run', () => {
  test('kill takes names with and without SIG, and numbers; the status says how init died', async () => {
    // The init catches TERM and INT; SIGKILL always ends it.
    const script = 'trap "exit 3" TERM; trap "exit 4" INT; echo ready; while :; do sleep 0.1; done';
    for (const [signal, expected] of [['TERM', 3], ['2', 4], ['SIGKILL', 137]]) {
      const b = bundle({ args: [busybox, 'sh', '-c', script] });
      const id = uniqueId('kill');
      await v(['create', '-b', b.dir, id], { stdout: b.out });
      await v(['start', id]);
      await eventually(() => readFileSync(b.out, 'utf8').includes('ready'), 10000, 'the traps to be set');
      const k = await v(['kill', id, signal]);
      assert.equal(k.status, 0, k.stderr);
      assert.deepEqual(JSON.parse((await v(['wait', id])).stdout), { id, exitStatus: expected });
      assertFails(await v(['kill', id, 'TERM']), /container not running/);
      await v(['delete', id]);
    }
  });

  test('the init ignores signals it has no handler for, as the init of a PID namespace; SIGKILL still ends it', async () => {
    const b = bundle({ args: [busybox, 'sh', '-c', 'sleep 100'] });
    const id = uniqueId('initsig');
    await v(['create', '-b', b.dir, id]);
    await v(['start', id]);
    for (const signal of ['TERM', 'INT', 'HUP', 'USR1']) {
      const k = await v(['kill', id, signal]);
      assert.equal(k.status, 0, k.stderr);
    }
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await state(id)).status, 'running', 'the init survived TERM, INT, HUP and USR1');
    assert.equal((await v(['kill', id, 'KILL'])).status, 0);
    assert.deepEqual(JSON.parse((await v(['wait', id])).stdout), { id, exitStatus: 137 });
    await v(['delete', id]);
  });

  test('kill --all, and an unknown signal', async () => {
    const b = bundle({ args: [busybox, 'sh', '-c', 'sleep 30 & wait'] });
    const id = uniqueId('killall');
    await v(['create', '-b', b.dir, id]);
    await v(['start', id]);
    assertFails(await v(['kill', id, 'SIGBOGUS']), /unknown signal "SIGBOGUS"/);
    assert.equal((await v(['kill', '-a', id, 'KILL'])).status, 0);
    assert.equal(JSON.parse((await v(['wait', id])).stdout).exitStatus, 137);
    await v(['delete', id]);
  });

  test('kill of a created container stops it', async () => {
    const b = bundle({ args: [busybox, 'sleep', '30'] });
    const id = uniqueId('killcreated');
    await v(['create', '-b', b.dir, id]);
    const { pid } = await state(id);
    assert.equal((await v(['kill', id, 'KILL'])).status, 0);
    const s = await state(id);
    assert.equal(s.status, 'stopped');
    assert.ok(!sandboxAlive(pid));
    assert.equal(JSON.parse((await v(['wait', id])).stdout).exitStatus, 137);
    await v(['delete', id]);
  });

  test('delete of a running container needs --force, which kills it', async () => {
    const b = bundle({ args: [busybox, 'sleep', '30'] });
    const id = uniqueId('force');
    await v(['create', '-b', b.dir, id]);
    await v(['start', id]);
    const { pid } = await state(id);
    assertFails(await v(['delete', id]), /not stopped: running/);
    assert.equal((await v(['delete', '-f', id])).status, 0);
    assert.ok(!sandboxAlive(pid));
    assert.deepEqual(readdirSync(root), []);
  });

  test('a sandbox that died is reported as stopped', async () => {
    const b = bundle({ args: [busybox, 'sleep', '30'] });
    const id = uniqueId('died');
    await v(['create', '-b', b.dir, id]);
    await v(['start', id]);
    const { pid } = await state(id);
    process.kill(pid, 'SIGKILL');
    await eventually(() => !sandboxAlive(pid), 5000, 'the sandbox to die');
    assert.equal((await state(id)).status, 'stopped');
    await v(['delete', id]);
  });

  test('run in the foreground exits with the status and deletes; run --detach returns', async () => {
    const b = bundle({ args: [busybox, 'sh', '-c', 'echo out; exit 4'] });
    const id = uniqueId('run');
    const r = await v(['run', '-b', b.dir, id]);
    assert.equal(r.status, 4, r.stderr);
    assert.equal(r.stdout, 'out\n');
    assert.deepEqual(readdirSync(root), []);

    const d = bundle({ args: [busybox, 'sleep', '30'] });
    const id2 = uniqueId('rund');
    const rd = await v(['run', '--detach', '--bundle', d.dir, id2]);
    assert.equal(rd.status, 0, rd.stderr);
    assert.equal((await state(id2)).status, 'running');
    await v(['delete', '--force', id2]);
  });
  test('process.rlimits are the process\'s limits; RLIMIT_NOFILE is enforced', async () => {
    const b = bundle({ args: [busybox, 'sh', '-c', 'ulimit -n; ulimit -Hn; ulimit -Hu; exec 9</dev/null && echo opened-9; (exec 12</dev/null) 2>/dev/null || echo refused-12'] });
    const spec = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8'));
    spec.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 20 }, { type: 'RLIMIT_NPROC', soft: 50, hard: 60 }];
    writeFileSync(join(b.dir, 'config.json'), JSON.stringify(spec));
    const r = await v(['run', '-b', b.dir, uniqueId('rlimits')]);
    assert.equal(r.stdout, '10\n20\n60\nopened-9\nrefused-12\n', r.stderr);
  });

  test('process.user, capabilities and noNewPrivileges are what the process has, and what exec gets', async () => {
    // The shell's own sets ($$), then a child's after its execve: as uid 1000
    // without ambient capabilities it has none, as on Linux.
    const show = 'id -u; id -g; id -G; grep -E "^Cap" /proc/$$/status; grep CapEff /proc/self/status; kill -0 1 && echo may-kill';
    const b = bundle({ args: [busybox, 'sh', '-c', `${show}; sleep 30`] });
    const spec = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8'));
    const caps = ['CAP_KILL', 'CAP_NET_BIND_SERVICE'];
    spec.process.user = { uid: 1000, gid: 100, additionalGids: [5, 7] };
    spec.process.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] };
    spec.process.noNewPrivileges = true;
    writeFileSync(join(b.dir, 'config.json'), JSON.stringify(spec));
    const id = uniqueId('creds');
    const c = await v(['create', '-b', b.dir, id], { stdout: b.out, stderr: b.err });
    assert.equal(c.status, 0, readFileSync(b.err, 'utf8'));
    await v(['start', id]);
    // CAP_KILL (5) and CAP_NET_BIND_SERVICE (10); kill -0 of init (uid 0) needs CAP_KILL.
    const bits = '0000000000000420';
    const zero = '0000000000000000';
    const expected = `1000\n100\n100 5 7\nCapInh:\t${zero}\nCapPrm:\t${bits}\nCapEff:\t${bits}\nCapBnd:\t${bits}\nCapAmb:\t${zero}\nCapEff:\t${zero}\nmay-kill\n`;
    await eventually(() => readFileSync(b.out, 'utf8').includes('may-kill'), 10000, 'init to print its credentials');
    assert.equal(readFileSync(b.out, 'utf8'), expected);
    // exec runs its process with the spec's credentials too.
    const e = await v(['exec', id, busybox, 'sh', '-c', show]);
    assert.equal(e.status, 0, e.stderr);
    assert.equal(e.stdout, expected);
    await v(['delete', '-f', id]);
  });
});

describe('exec, ps, pause, resume, events', () => {
  test('exec in the foreground exits with the process\'s status; 255 when exec fails; users other than 0 are refused', async () => {
    const b = bundle({ args: [busybox, 'sleep', '30'] });
    const id = uniqueId('exec');
    await v(['create', '-b', b.dir, id]);
    await v(['start', id]);
    const e = await v(['exec', '--env', 'GREETING=hi', id, '--', busybox, 'sh', '-c', 'echo $GREETING from $$; exit 5']);
    assert.equal(e.status, 5, e.stderr);
    assert.match(e.stdout, /^hi from \d+\n$/);
    const missing = await v(['exec', id, '/bin/no-such-program']);
    assert.equal(missing.status, 255);
    assert.match(missing.stderr, /no-such-program/);
    const user = await v(['exec', '--user', '1000:1000', id, busybox, 'true']);
    assert.equal(user.status, 255);
    assert.match(user.stderr, /--user 1000:1000 is not supported/);
    await v(['delete', '-f', id]);
  });

  test('a foreground exec passes the signals it receives to its process, not to init', async () => {
    const b = bundle({ args: [busybox, 'sleep', '30'] });
    const id = uniqueId('execsig');
    await v(['create', '-b', b.dir, id]);
    await v(['start', id]);
    const script = 'trap "echo caught TERM; exit 3" TERM; echo ready; while :; do sleep 0.1; done';
    const out = join(b.dir, 'exec.out');
    const e = await v(['exec', id, '--', busybox, 'sh', '-c', script], {
      stdout: out,
      onSpawn: (child) => void eventually(() => existsSync(out) && readFileSync(out, 'utf8').includes('ready'), 20000, 'ready').then(() => child.kill('SIGTERM')),
    });
    assert.equal(e.status, 3, e.stderr);
    assert.equal(readFileSync(out, 'utf8'), 'ready\ncaught TERM\n');
    assert.equal((await state(id)).status, 'running', 'init did not get the signal');
    await v(['delete', '-f', id]);
  });

  test('exec --process FILE --detach --pid-file: the pid file names a waiter that exits with the status', async () => {
    const b = bundle({ args: [busybox, 'sleep', '30'] });
    const id = uniqueId('execd');
    await v(['create', '-b', b.dir, id]);
    await v(['start', id]);
    const processFile = join(b.dir, 'process.json');
    writeFileSync(processFile, JSON.stringify({ args: [busybox, 'sh', '-c', 'sleep 3; exit 6'], env: [], cwd: '/' }));
    const pidFile = join(b.dir, 'exec.pid');
    const e = await v(['exec', '--process', processFile, '--detach', '--pid-file', pidFile, id]);
    assert.equal(e.status, 0, e.stderr);
    assert.match(readFileSync(pidFile, 'utf8'), /^\d+$/);
    const ps = JSON.parse((await v(['ps', '--format', 'json', id])).stdout);
    assert.ok(ps.length >= 2, `init and the exec'd process: ${ps}`);
    await v(['delete', '-f', id]);
  });

  test('pause and resume change the state; ps lists processes', async () => {
    const b = bundle({ args: [busybox, 'sleep', '30'] });
    const id = uniqueId('pause');
    await v(['create', '-b', b.dir, id]);
    assertFails(await v(['pause', id]), /cannot pause container .* in state created/);
    await v(['start', id]);
    assert.equal((await v(['pause', id])).status, 0);
    assert.equal((await state(id)).status, 'paused');
    assertFails(await v(['pause', id]), /in state paused/);
    assert.equal((await v(['resume', id])).status, 0);
    assert.equal((await state(id)).status, 'running');
    const table = (await v(['ps', id])).stdout;
    assert.match(table, /^UID\s+PID\s+PPID\s+STAT\s+CMD\n0\s+1\s+0\s+\S+\s+\/bin\/busybox sleep 30\n$/);
    await v(['delete', '-f', id]);
  });

  test('events --stats prints one stats event; a stopped container has none', async () => {
    const b = bundle({ args: [busybox, 'sleep', '30'] });
    const id = uniqueId('events');
    await v(['create', '-b', b.dir, id]);
    await v(['start', id]);
    const e = await v(['events', '--stats', id]);
    assert.equal(e.status, 0, e.stderr);
    const lines = e.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const event = JSON.parse(lines[0]);
    assert.equal(event.type, 'stats');
    assert.equal(event.id, id);
    assert.ok(event.data.memory.usage.usage > 0, JSON.stringify(event));
    assert.ok(event.data.pids.current >= 1, JSON.stringify(event));
    assert.ok(Array.isArray(event.data.unsupported), JSON.stringify(event));
    await v(['kill', id, 'KILL']);
    await v(['wait', id]);
    assertFails(await v(['events', '--stats', id]), /container not running/);
    await v(['delete', id]);
  });

  test('events --stats lists the unimplemented system calls the container made, and how often', async () => {
    // Static glibc registers rseq (unimplemented) at each of the three execs.
    const b = bundle({ args: [busybox, 'sh', '-c', `${busybox} true; ${busybox} true; echo ready; exec ${busybox} sleep 30`] });
    const id = uniqueId('unsupported');
    await v(['create', '-b', b.dir, id], { stdout: b.out, stderr: b.err });
    await v(['start', id]);
    await eventually(() => readFileSync(b.out, 'utf8').includes('ready'), 10000, 'the container to be ready');
    const e = await v(['events', '--stats', id]);
    assert.equal(e.status, 0, e.stderr);
    const { unsupported } = JSON.parse(e.stdout).data;
    const rseq = unsupported.find((u) => u.name === 'rseq');
    assert.deepEqual({ ...rseq, count: undefined }, { name: 'rseq', nr: 334, count: undefined }, JSON.stringify(unsupported));
    assert.ok(rseq.count >= 3, `rseq at each of 3 execs: ${JSON.stringify(rseq)}`);
    assert.doesNotMatch(readFileSync(b.err, 'utf8'), /unsupported/, 'nothing in the application\'s stderr');
    await v(['delete', '--force', id]);
  });
});

describe('cgroups and oom_score_adj', { skip: process.getuid() !== 0 && 'needs root (cgroupfs, oom_score_adj below 0)' }, () => {
  test('linux.resources are applied; nproc and MemTotal inside show them; the cgroup goes with delete', async () => {
    const id = uniqueId('cg');
    const b = bundle({
      args: [busybox, 'sh', '-c', 'nproc; grep MemTotal /proc/meminfo'],
      config: { linux: { resources: { memory: { limit: 256 * 1024 * 1024 }, cpu: { cpus: '0', shares: 512 }, pids: { limit: 64 } } } },
    });
    await v(['create', '-b', b.dir, id], { stdout: b.out, stderr: b.err });
    const { pid } = await state(id);
    const memDir = `/sys/fs/cgroup/memory/${id}`;
    assert.equal(readFileSync(join(memDir, 'memory.limit_in_bytes'), 'utf8').trim(), String(256 * 1024 * 1024));
    assert.equal(readFileSync(`/sys/fs/cgroup/cpu/${id}/cpu.shares`, 'utf8').trim(), '512');
    assert.equal(readFileSync(`/sys/fs/cgroup/pids/${id}/pids.max`, 'utf8').trim(), '64');
    assert.ok(readFileSync(join(memDir, 'cgroup.procs'), 'utf8').split('\n').includes(String(pid)), 'the sandbox is in its cgroup');
    await v(['start', id]);
    await v(['wait', id]);
    assert.match(readFileSync(b.out, 'utf8'), new RegExp(`^1\nMemTotal:\\s+${256 * 1024} kB\n$`), readFileSync(b.err, 'utf8'));
    await v(['delete', id]);
    assert.ok(!existsSync(memDir), 'cgroup removed');
  });

  test('process.oomScoreAdj becomes the sandbox\'s oom_score_adj', async () => {
    const id = uniqueId('oom');
    const b = bundle({ args: [busybox, 'sleep', '30'], processExtra: { oomScoreAdj: 432 } });
    await v(['create', '-b', b.dir, id]);
    const { pid } = await state(id);
    await v(['start', id]);
    assert.equal(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim(), '432');
    await v(['delete', '-f', id]);
  });
});

describe('hooks', () => {
  test('each hook gets the state on stdin; poststop runs in delete', async () => {
    const b0 = bundle();
    const log = join(b0.dir, 'hooks.log');
    const hook = (name) => ({ path: busybox, args: ['sh', '-c', `cat >> ${log}; echo " ${name}" >> ${log}`] });
    const b = bundle({
      args: [busybox, 'true'],
      config: { hooks: Object.fromEntries(['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'].map((n) => [n, [hook(n)]])) },
    });
    const id = uniqueId('hooks');
    assert.equal((await v(['create', '-b', b.dir, id])).status, 0);
    await v(['start', id]);
    await v(['wait', id]);
    await v(['delete', id]);
    const entries = readFileSync(log, 'utf8').trim().split('\n').map((l) => {
      const m = /^(\{.*\}) (\w+)$/.exec(l);
      return [m[2], JSON.parse(m[1]).status, JSON.parse(m[1]).id];
    });
    assert.deepEqual(entries.map((e) => e[0]), ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
    assert.ok(entries.every((e) => e[2] === id));
    assert.equal(entries.find((e) => e[0] === 'poststop')[1], 'stopped');
  });

  test('a failing prestart aborts create and leaves nothing; a timeout counts as failure; poststop only warns', async () => {
    const b = bundle({ config: { hooks: { prestart: [{ path: busybox, args: ['sh', '-c', 'exit 3'] }] } } });
    const id = uniqueId('hookfail');
    assertFails(await v(['create', '-b', b.dir, id]), /prestart hook .* failed with status 3/);
    assert.deepEqual(readdirSync(root), []);
    const t = bundle({ config: { hooks: { createRuntime: [{ path: busybox, args: ['sleep', '10'], timeout: 1 }] } } });
    assertFails(await v(['create', '-b', t.dir, id]), /createRuntime hook .* timed out after 1s/);
    assert.deepEqual(readdirSync(root), []);
    const p = bundle({ config: { hooks: { poststop: [{ path: busybox, args: ['false'] }] } } });
    await v(['create', '-b', p.dir, id]);
    const d = await v(['delete', id]);
    assert.equal(d.status, 0);
    assert.match(d.stderr, /warning: poststop hook/);
  });
});

describe('bad input leaves nothing behind', () => {
  const cases = [
    ['config.json that is not JSON', (b) => writeFileSync(join(b.dir, 'config.json'), '{ nope'), /config.json is not valid JSON/],
    ['no process', (b) => writeFileSync(join(b.dir, 'config.json'), JSON.stringify({ ...b.spec, process: undefined })), /process is missing/],
    ['a root path that does not exist', (b) => writeFileSync(join(b.dir, 'config.json'), JSON.stringify({ ...b.spec, root: { path: 'nowhere' } })), /root.path "nowhere"/],
    ['an unknown namespace type', (b) => writeFileSync(join(b.dir, 'config.json'), JSON.stringify({ ...b.spec, linux: { namespaces: [{ type: 'pid' }, { type: 'bogus' }] } })), /linux.namespaces\[1\].type "bogus"/],
    ['a negative uid', (b) => writeFileSync(join(b.dir, 'config.json'), JSON.stringify({ ...b.spec, process: { ...b.spec.process, user: { uid: -1, gid: 0 } } })), /process.user.uid must be an unsigned 32-bit integer/],
    ['an unknown rlimit', (b) => writeFileSync(join(b.dir, 'config.json'), JSON.stringify({ ...b.spec, process: { ...b.spec.process, rlimits: [{ type: 'RLIMIT_NOPE', soft: 1, hard: 1 }] } })), /process.rlimits\[0\].type "RLIMIT_NOPE" is not a resource limit/],
    ['an unknown capability', (b) => writeFileSync(join(b.dir, 'config.json'), JSON.stringify({ ...b.spec, process: { ...b.spec.process, capabilities: { bounding: ['CAP_FLY'] } } })), /process.capabilities.bounding: unknown capability "CAP_FLY"/],
    ['a program that does not exist', (b) => writeFileSync(join(b.dir, 'config.json'), JSON.stringify({ ...b.spec, process: { ...b.spec.process, args: ['/bin/nothing-here'] } })), /nothing-here/],
  ];
  for (const [name, spoil, pattern] of cases) {
    test(name, async () => {
      const b = bundle();
      spoil(b);
      const id = uniqueId('bad');
      assertFails(await v(['create', '-b', b.dir, id]), pattern);
      assert.deepEqual(readdirSync(root), []);
      assert.ok(!existsSync(`/sys/fs/cgroup/memory/${id}`), 'no cgroup left');
    });
  }
});

describe('the command line as engines use it', () => {
  test('single-dash long flags, --flag=value, and a JSON log with the error', async () => {
    const b = bundle({ args: [busybox, 'true'] });
    const id = uniqueId('flags');
    const c = await veilOci(root, ['-log-format=json', '-log', join(b.dir, 'log.json'), 'create', '-bundle', b.dir, '-no-pivot', '--no-new-keyring', id]);
    assert.equal(c.status, 0, c.stderr);
    const bad = await veilOci(root, ['--log-format', 'json', '--log', join(b.dir, 'log.json'), 'start', 'missing']);
    assert.notEqual(bad.status, 0);
    const lines = readFileSync(join(b.dir, 'log.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const last = lines.at(-1);
    assert.equal(last.level, 'error');
    assert.match(last.msg, /container "missing" does not exist/);
    assert.match(last.time, /Z$/);
    await v(['delete', '-f', id]);
  });

  test('--version has runc\'s three lines; features is the OCI features JSON', async () => {
    const ver = await v(['--version']);
    assert.match(ver.stdout, /^veil version \d+\.\d+\.\d+\ncommit: .+\nspec: \d+\.\d+\.\d+\n$/);
    const f = JSON.parse((await v(['features'])).stdout);
    assert.equal(f.ociVersionMin, '1.0.0');
    assert.ok(f.hooks.includes('createRuntime'));
    assert.ok(f.linux.namespaces.includes('pid'));
  });

  test('spec writes a config.json that run accepts as is', async () => {
    const b = bundle();
    const fresh = join(b.dir, 'fresh');
    const { copyFileSync, mkdirSync, symlinkSync } = await import('node:fs');
    mkdirSync(join(fresh, 'rootfs', 'bin'), { recursive: true });
    copyFileSync(busybox, join(fresh, 'rootfs', 'bin', 'busybox'));
    symlinkSync('busybox', join(fresh, 'rootfs', 'bin', 'sh'));
    assert.equal((await v(['spec', '--bundle', fresh])).status, 0);
    const spec = JSON.parse(readFileSync(join(fresh, 'config.json'), 'utf8'));
    assert.deepEqual(spec.process.args, ['sh']);
    assert.equal(spec.root.path, 'rootfs');
    const r = await v(['run', '--bundle', fresh, uniqueId('spec')]);
    assert.equal(r.status, 0, r.stderr);
    assertFails(await v(['spec', '--bundle', fresh]), /exists/);
  });
});
