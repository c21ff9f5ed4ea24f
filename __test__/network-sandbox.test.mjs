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

// Thousands of random and malformed frames, from the host side of the veth
// to the sandbox's MAC and to broadcast: garbage, IPv4 headers with random
// fields (fragments, options, lengths, protocols; half with a correct
// header checksum), IPv6 with random next headers, ARP with random bodies.
const FUZZ = String.raw`
import random, socket, struct, sys
dev, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
r = random.Random(20261202)
src = bytes.fromhex("020000000099")
def csum(h):
    t = sum(struct.unpack("!%dH" % (len(h) // 2), h))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
def ipv4():
    body = r.randbytes(r.randrange(0, 1400))
    h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, r.randrange(256), r.choice([20 + len(body), r.randrange(65536)]),
        r.randrange(65536), r.choice([0, 0x2000, r.randrange(65536)]), r.randrange(256), r.choice([1, 6, 17, 58, r.randrange(256)]), 0,
        bytes([10, 199, 7, 1]), bytes([10, 199, 7, 2])))
    if r.random() < 0.5: h[10:12] = struct.pack("!H", csum(bytes(h)))
    return 0x0800, bytes(h) + body
def ipv6():
    body = r.randbytes(r.randrange(0, 1400))
    return 0x86dd, struct.pack("!IHBB16s16s", 0x60000000, r.choice([len(body), r.randrange(65536)]), r.choice([0, 6, 17, 44, 58, 60, r.randrange(256)]), 64,
        bytes.fromhex("fe800000000000000000000000000001"), bytes.fromhex("ff020000000000000000000000000001")) + body
def arp():
    return 0x0806, r.randbytes(r.randrange(0, 60))
def junk():
    return r.randrange(65536), r.randbytes(r.randrange(0, 1500))
sent = 0
for i in range(4000):
    et, body = r.choice([ipv4, ipv4, ipv6, arp, junk])()
    dst = mac if r.random() < 0.8 else bytes([255]) * 6
    try:
        s.send(dst + src + struct.pack("!H", et) + body)
        sent += 1
    except OSError:
        pass
print(sent)
`;

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
    const fetch = () => {
      const r = spawnSync('ip', ['netns', 'exec', ns.out, busybox, 'nc', '-w', '5', '10.199.7.2', '80'], { input: 'GET /index.html HTTP/1.0\r\n\r\n', encoding: 'utf8' });
      return r.stdout;
    };
    // Garbage on the wire neither crashes nor wedges the sandbox's stack.
    const mac = sh(`ip -n ${ns.out} neigh show 10.199.7.2`).match(/lladdr (\S+)/)?.[1];
    assert.ok(mac, 'the host side learned the sandbox MAC');
    const fuzz = spawnSync('ip', ['netns', 'exec', ns.out, '/usr/bin/python3', '-c', FUZZ, ns.outDev, mac], { encoding: 'utf8' });
    assert.equal(fuzz.status, 0, fuzz.stderr);
    assert.ok(Number(fuzz.stdout) > 3000, `frames sent: ${fuzz.stdout}`);
    assert.match(fetch(), /\r\n\r\nserved from inside the sandbox\n$/);
    await veilOci(root, ['kill', id, 'KILL']);
    const r = await running;
    // The sandbox sees the address it took over, and reached the host side.
    assert.match(r.stdout, /^1: lo +inet 127\.0\.0\.1\/8 .*\n2: vi\S+ +inet 10\.199\.7\.2\/24 /, r.stderr);
    assert.match(r.stdout, /\nfrom the host side\n/, r.stderr);
  });
});
