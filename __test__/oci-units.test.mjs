// Issue 4: the pure rules of the lifecycle, without a sandbox.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repo } from './helpers.mjs';

const load = (m) => createRequire(import.meta.url)(join(repo, 'dist', m));
const { sandboxOomScoreAdj, goferOomScoreAdj } = load('oom.js');
const { parseSignal } = load('oci.js');
const { cgroupPath, cpusetCount, derivedLimits, detectHierarchy, sharesToWeight } = load('cgroup.js');
const { changeStatus } = load('container.js');
const { rfc3339Nano, ID_PATTERN } = load('state.js');
const { normalizeArgs, endExecFlags } = load('cli.js');
const { sandboxIdOf, wantsOwnPidNamespace, joiningSpec, podMembers } = load('pod.js');

const spec = (score, type) => ({
  process: score === undefined ? {} : { oomScoreAdj: score },
  annotations: type ? { 'io.kubernetes.cri.container-type': type } : {},
});

test('oom: the sandbox gets the lowest score, ignoring the CRI sandbox container', () => {
  const pause = { spec: spec(-998, 'sandbox'), originalOomScoreAdj: 0 };
  assert.equal(sandboxOomScoreAdj(spec(500, 'container'), [pause, { spec: spec(500, 'container') }, { spec: spec(300, 'container') }], false), 300);
  assert.equal(sandboxOomScoreAdj(spec(5), [{ spec: spec(5), originalOomScoreAdj: 0 }], false), 5);
  assert.equal(sandboxOomScoreAdj(spec(undefined), [{ spec: spec(undefined) }], false), undefined, 'no score: leave it');
});

test('oom: destroying restores the original when no score remains; the root container changes nothing', () => {
  const pause = { spec: spec(-998, 'sandbox'), originalOomScoreAdj: 17 };
  assert.equal(sandboxOomScoreAdj(spec(300, 'container'), [pause, { spec: spec(undefined, 'container') }], true), 17);
  assert.equal(sandboxOomScoreAdj(spec(300, 'container'), [pause, { spec: spec(100, 'container') }], true), 100);
  assert.equal(sandboxOomScoreAdj(spec(300), [{ spec: spec(300), originalOomScoreAdj: 0 }], true), undefined);
  assert.equal(sandboxOomScoreAdj(spec(300, 'container'), [], true), undefined, 'sandbox gone');
  assert.equal(goferOomScoreAdj(spec(42)), 42);
  assert.equal(goferOomScoreAdj(spec(undefined)), undefined);
});

test('pods: the sandbox a CRI container joins, its PID namespace, the members root first', () => {
  assert.equal(sandboxIdOf({ annotations: { 'io.kubernetes.cri.sandbox-id': 'p1' } }), 'p1');
  assert.equal(sandboxIdOf({ annotations: { 'io.kubernetes.cri-o.SandboxID': 'p2' } }), 'p2');
  assert.throws(() => sandboxIdOf({ annotations: { 'io.kubernetes.cri.container-type': 'container' } }), /annotations: .*sandbox-id/);
  assert.equal(wantsOwnPidNamespace({ linux: { namespaces: [{ type: 'pid' }] } }), true);
  assert.equal(wantsOwnPidNamespace({ linux: { namespaces: [{ type: 'pid', path: '/proc/1/ns/pid' }] } }), false, 'a path: the sandbox one');
  assert.equal(wantsOwnPidNamespace({}), false);
  const s = { process: { args: ['sh'], cwd: '/w' }, root: { path: '/r', readonly: true }, linux: { namespaces: [{ type: 'pid' }] } };
  const processDefaults = { user: { uid: 0, gid: 0, additionalGids: [] }, noNewPrivileges: false, oomScoreAdj: 0, maskedPaths: [], readonlyPaths: [], devices: [] };
  assert.deepEqual(joiningSpec(s), { args: ['sh'], env: [], cwd: '/w', ownPidNamespace: true, ...processDefaults });
  const members = podMembers([{ id: 'b', sandboxId: 'a' }, { id: 'x' }, { id: 'a' }, { id: 'c', sandboxId: 'a' }], 'a');
  assert.deepEqual(members.map((m) => m.id), ['a', 'b', 'c']);
});

test('signals: names with and without SIG, numbers, real-time', () => {
  assert.equal(parseSignal('TERM'), 15);
  assert.equal(parseSignal('SIGKILL'), 9);
  assert.equal(parseSignal('sigusr1'), 10);
  assert.equal(parseSignal('9'), 9);
  assert.equal(parseSignal('RTMIN+2'), 36);
  assert.throws(() => parseSignal('BOGUS'), /unknown signal "BOGUS"/);
  assert.throws(() => parseSignal('99'), /unknown signal/);
});

test('the status table is the seed\'s changeStatus', () => {
  const go = (from, to) => {
    const meta = { status: from };
    changeStatus(meta, to);
    return meta.status;
  };
  assert.equal(go('creating', 'created'), 'created');
  assert.equal(go('created', 'running'), 'running');
  assert.equal(go('running', 'paused'), 'paused');
  assert.equal(go('paused', 'running'), 'running');
  assert.equal(go('created', 'stopped'), 'stopped');
  assert.throws(() => go('created', 'paused'), /invalid state transition/);
  assert.throws(() => go('stopped', 'running'), /invalid state transition/);
  assert.throws(() => go('paused', 'stopped'), /invalid state transition/);
  assert.throws(() => go('running', 'creating'), /invalid state transition/);
});

test('cgroups: paths, conversions, derived limits, hierarchy detection', () => {
  assert.equal(cgroupPath(undefined, 'abc'), '/abc');
  assert.equal(cgroupPath('/a/b', 'x'), '/a/b');
  assert.equal(cgroupPath('system.slice:veil:abc', 'x'), '/system.slice/veil-abc.scope');
  assert.equal(sharesToWeight(1024), 39);
  assert.equal(cpusetCount('0-2,5'), 4);
  assert.deepEqual(derivedLimits({ cpu: { quota: 150000, period: 100000 }, memory: { limit: 1 << 28 }, pids: { limit: 10 } }, 8, 2 ** 34), {
    cpus: 2,
    totalMemory: 1 << 28,
    maxTasks: 10,
  });
  assert.deepEqual(derivedLimits(undefined, 8, 2 ** 34), { cpus: undefined, totalMemory: undefined, maxTasks: undefined });
  const hybrid = [
    '30 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory',
    '31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw shared:10 - cgroup cgroup rw,cpu,cpuacct',
    '32 25 0:28 / /sys/fs/cgroup/unified rw shared:11 - cgroup2 cgroup2 rw',
  ].join('\n');
  assert.deepEqual(detectHierarchy(hybrid), { version: 1, mounts: { memory: '/sys/fs/cgroup/memory', cpu: '/sys/fs/cgroup/cpu,cpuacct', cpuacct: '/sys/fs/cgroup/cpu,cpuacct' } });
  assert.deepEqual(detectHierarchy('40 1 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw'), { version: 2, mount: '/sys/fs/cgroup' });
});

test('ids, timestamps and single-dash long flags', () => {
  assert.ok(ID_PATTERN.test('a.b_c-d+e'));
  assert.ok(!ID_PATTERN.test('a/b'));
  assert.ok(!ID_PATTERN.test(''));
  assert.equal(rfc3339Nano(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)), 9), '2024-01-02T03:04:05.678000009Z');
  assert.equal(rfc3339Nano(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 0)), 0), '2024-01-02T03:04:05Z');
  assert.deepEqual(normalizeArgs(['-root', '/r', '-no-subreaper', '-a', 'kill', '-bundle=/b', '--', '-root']), ['--root', '/r', '--no-subreaper', '-a', 'kill', '--bundle=/b', '--', '-root']);
});

test('exec\'s flags end at the container id, as in runc', () => {
  assert.deepEqual(endExecFlags(['-root', '/r', 'exec', '-t', '-e', 'A=1', 'id', 'sh', '-c', 'x']), ['-root', '/r', 'exec', '-t', '-e', 'A=1', 'id', '--', 'sh', '-c', 'x']);
  assert.deepEqual(endExecFlags(['exec', '--console-socket=/s', '--detach', 'id', 'ls', '-all']), ['exec', '--console-socket=/s', '--detach', 'id', '--', 'ls', '-all']);
  assert.deepEqual(endExecFlags(['exec', 'id', '--', 'sh', '-c', 'x']), ['exec', 'id', '--', 'sh', '-c', 'x']);
  assert.deepEqual(endExecFlags(['exec', '--process', '/p.json', 'id']), ['exec', '--process', '/p.json', 'id']);
  assert.deepEqual(endExecFlags(['kill', 'id', '-a']), ['kill', 'id', '-a']);
});
