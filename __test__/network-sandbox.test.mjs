// The `sandbox` network mode, end to end: a container whose spec names a
// network namespace gets that namespace's interfaces taken over by the
// sentry's own stack. The test makes two namespaces joined by a veth
// pair, runs a container in one, and talks to it from the other (and
// back). The namespace keeps no address of its own afterwards: the host
// kernel no longer answers for the sandbox's address.

import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busybox, eventually, privateRootPerTest, uniqueId, veilOci } from './helpers.mjs';

const perTest = privateRootPerTest();
let root;
beforeEach(() => (root = perTest.root()));

const tag = `${process.pid % 10000}${Math.random().toString(36).slice(2, 5)}`;

function sh(cmd) {
  const r = spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  return r.stdout;
}

/** Two namespaces, `in` (for the container) and `out` (the host side), joined by a veth pair. */
function vethPair() {
  const ns = { in: `vnin${tag}`, out: `vnout${tag}`, inDev: `vi${tag}`, outDev: `vo${tag}` };
  perTest.onCleanup(() => {
    spawnSync('ip', ['netns', 'del', ns.in]);
    spawnSync('ip', ['netns', 'del', ns.out]);
  });
  sh(`ip netns add ${ns.in} && ip netns add ${ns.out}`);
  sh(`ip link add ${ns.inDev} netns ${ns.in} type veth peer name ${ns.outDev} netns ${ns.out}`);
  sh(`ip -n ${ns.in} addr add 10.199.7.2/24 dev ${ns.inDev} && ip -n ${ns.in} link set ${ns.inDev} up && ip -n ${ns.in} link set lo up`);
  sh(`ip -n ${ns.out} addr add 10.199.7.1/24 dev ${ns.outDev} && ip -n ${ns.out} link set ${ns.outDev} up`);
  return ns;
}

const ipAvailable = spawnSync('ip', ['netns', 'list']).status === 0;

describe('the sandbox network mode', { skip: ipAvailable ? false : 'no iproute2 `ip` with netns support' }, () => {
  test('a server in the sandbox is reached over a veth, and the sandbox reaches a server outside', async () => {
    const ns = vethPair();
    // A server on the host side, for the sandbox to fetch from.
    const www = mkdtempSync(join(tmpdir(), 'vtest-www-'));
    perTest.onCleanup(() => rmSync(www, { recursive: true, force: true }));
    writeFileSync(join(www, 'index.html'), 'from the host side\n');
    const outside = spawn('ip', ['netns', 'exec', ns.out, busybox, 'httpd', '-f', '-p', '10.199.7.1:8080', '-h', www], { stdio: 'ignore' });
    perTest.onCleanup(() => outside.kill('SIGKILL'));

    const script = [
      'ip -4 -o addr',
      'httpd -p 80 -h /www',
      'i=0; until wget -q -O - http://10.199.7.1:8080/index.html; do i=$((i+1)); [ $i -lt 100 ] || exit 7; sleep 0.1; done',
      'exec sleep 60',
    ].join('\n');
    const b = perTest.bundle({
      args: ['/bin/busybox', 'sh', '-c', script],
      processExtra: { env: ['PATH=/bin'] },
      config: { linux: { namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network', path: `/var/run/netns/${ns.in}` }] } },
    });
    mkdirSync(join(b.dir, 'rootfs', 'www'));
    writeFileSync(join(b.dir, 'rootfs', 'www', 'index.html'), 'served from inside the sandbox\n');
    for (const tool of ['httpd', 'wget', 'sleep', 'ip']) spawnSync('ln', ['-s', 'busybox', join(b.dir, 'rootfs', 'bin', tool)]);

    const id = uniqueId('net');
    const running = veilOci(root, ['run', '-b', b.dir, id], { timeoutMs: 90000 });
    const fetched = await eventually(
      () => {
        const r = spawnSync('ip', ['netns', 'exec', ns.out, busybox, 'nc', '-w', '2', '10.199.7.2', '80'], {
          input: 'GET /index.html HTTP/1.0\r\n\r\n',
          encoding: 'utf8',
        });
        return r.status === 0 && r.stdout.startsWith('HTTP/1.') && r.stdout;
      },
      30000,
      'the sandbox answering on 10.199.7.2:80',
    );
    assert.match(fetched, /^HTTP\/1\.[01] 200 OK\r\n/);
    assert.equal(fetched.slice(fetched.indexOf('\r\n\r\n') + 4), 'served from inside the sandbox\n');
    // The namespace itself no longer holds the address: the sandbox does.
    assert.doesNotMatch(sh(`ip -n ${ns.in} -o addr show dev ${ns.inDev}`), /10\.199\.7\.2/);
    await veilOci(root, ['kill', id, 'KILL']);
    const r = await running;
    // The sandbox sees the address it took over, and reached the host side.
    assert.match(r.stdout, /^1: lo +inet 127\.0\.0\.1\/8 .*\n2: vi\S+ +inet 10\.199\.7\.2\/24 /, r.stderr);
    assert.match(r.stdout, /\nfrom the host side\n/, r.stderr);
  });
});
