// Issue 3, end to end: a real Debian userland (scripts/build-rootfs.sh) runs
// on the sentry with output identical to running it natively. Each command
// runs twice: in the sandbox (`veil do --rootfs $VEIL_ROOTFS -- …`) and
// natively, chrooted into the same rootfs under a copy-on-write overlay with
// the same environment, cwd, hostname and PID 1 (helpers.mjs, native()).
// Status and stdout must match exactly; a normaliser only ever removes what
// legitimately differs between the two kernels.

import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  assertBashSameAsNative,
  assertNothingLeft,
  assertSameAsNative,
  descendants,
  native,
  startWatching,
  stillAlive,
  testRootfs,
  treeListing,
  veil,
  veilIn,
} from './helpers.mjs';

const { dir: R, skip } = testRootfs();
if (skip) console.log(`# userland tests skipped: ${skip}`);

beforeEach(startWatching);
afterEach(assertNothingLeft);

const TAB = '\t';
const py = (code) => ['python3', '-c', code];

describe('bash scripts', { skip }, () => {
  test('pipelines', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `printf '%s\\n' pear apple fig apple pear apple | sort | uniq -c | sort -k1,1nr -k2 | head -2
       seq 1 1000 | grep 7 | tr -d '\\n' | wc -c
       set -o pipefail; false | true; echo "pipefail=$?"
       echo abc | { read -r x; echo "read $x"; }`,
    );
    assert.equal(outside.stdout, '      3 apple\n      2 pear\n793\npipefail=1\nread abc\n');
  });

  test('subshells and command substitution', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `x=$(echo outer; (cd /etc && pwd; exit 7); echo "sub=$?")
       echo "$x"
       (a=1; echo "in-$a"); echo "out-\${a:-unset}"
       echo $(( $(echo 6) * $(echo $(echo 7)) ))
       pwd; (cd /usr/lib; pwd); pwd`,
    );
    assert.equal(outside.stdout, 'outer\n/etc\nsub=7\nin-1\nout-unset\n42\n/\n/usr/lib\n/\n');
  });

  test('trap … EXIT', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `( trap 'echo "subshell exit $?"' EXIT; echo in-subshell; exit 4 )
       echo "after=$?"
       bash -c 'trap "echo bye \\$?" EXIT; echo hi; exit 3'
       echo "child=$?"
       trap 'echo "main exit $?"' EXIT
       exit 5`,
      { expectStatus: 5 },
    );
    assert.equal(outside.stdout, 'in-subshell\nsubshell exit 4\nafter=4\nhi\nbye 3\nchild=3\nmain exit 5\n');
  });

  test('background jobs and wait', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `sleep 0.3 & a=$!
       (sleep 0.1; exit 5) & b=$!
       wait $b; echo "b=$?"
       wait $a; echo "a=$?"
       for i in 3 1 2; do (sleep 0.$i; echo "job$i"; exit $i) & done | sort
       for i in 1 2 3; do (exit $i) & done; wait; echo "all waited"
       sleep 10 & kill $!; wait $!; echo "killed=$?"`,
    );
    assert.equal(outside.stdout, 'b=5\na=0\njob1\njob2\njob3\nall waited\nkilled=143\n');
  });

  test('here-documents', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `name=world
cat <<EOF
hello $name $((2 + 3)) $(echo sub)
EOF
cat <<'EOF'
literal $name $(echo no)
EOF
cat <<-EOF
${TAB}${TAB}tabs stripped
${TAB}EOF
tr a-z A-Z <<< "here string"
wc -l <<EOF
$(seq 1 20000)
EOF`,
    );
    assert.equal(outside.stdout, 'hello world 5 sub\nliteral $name $(echo no)\ntabs stripped\nHERE STRING\n20000\n');
  });

  test('redirections to files', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `set -e
       cd /tmp
       echo one > f; echo two >> f; cat < f
       exec 3> g; echo three >&3; echo four 1>&3; exec 3>&-
       cat g f | wc -l
       ls /nonexistent 2> err || echo "ls=$?"
       cat err
       { echo out; echo err >&2; } > both 2>&1; sort both
       echo replaced > f; cat f
       : > g; wc -c < g
       exec 4< f; read -r line <&4; exec 4<&-; echo "read=$line"
       set -o noclobber; (echo x > f) 2>/dev/null || echo noclobber-refused; echo forced >| f; cat f
       rm f g err both; ls -A /tmp`,
    );
    assert.equal(
      outside.stdout,
      "one\ntwo\n4\nls=2\nls: cannot access '/nonexistent': No such file or directory\nerr\nout\nreplaced\n0\nread=replaced\nnoclobber-refused\nforced\n",
    );
  });
});

/**
 * `ls -l` lines as fields (column widths follow from the values), with the
 * mount points of the kernel's own filesystems (/proc, /dev, /sys) reduced
 * to their type and name: their attributes are each kernel's, not the
 * rootfs'. The `total` lines go too: each sums the blocks of every entry,
 * those mount points included; `ls -las` shows the blocks entry by entry.
 */
function lsFields(text) {
  return text
    .split('\n')
    .filter((line) => !/^total \d+$/.test(line))
    .map((line) => {
      const f = line.trim().split(/\s+/);
      const type = f.find((x) => /^[-dlcbps][-rwxsStT]{9}$/.test(x));
      return ['proc', 'dev', 'sys'].includes(f.at(-1)) && type ? `${type[0]} ${f.at(-1)}` : f.join(' ');
    })
    .join('\n');
}

describe('coreutils', { skip }, () => {
  test('ls -la /', async () => {
    const { outside } = await assertBashSameAsNative(R, 'ls -la /; ls -las /', { root: 'readonly', normalize: lsFields });
    assert.match(outside.stdout, /^lrwxrwxrwx +1 root root +7 .* bin -> usr\/bin$/m);
    assert.match(outside.stdout, /^ *4 drwxr-xr-x +\d+ root root +4096 .* \.$/m);
    assert.match(outside.stdout, /^drwxr-xr-x .* etc$/m);
  });

  test('ls -la of files with known attributes', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `set -e; mkdir /tmp/ls; cd /tmp/ls
       printf 12345 > five; : > empty; seq 1000 > numbers; ln -s numbers link; ln numbers hard
       chmod 0640 five; chmod 4755 empty; chown 1:2 numbers
       touch -h -d '2001-09-09 01:46:40 UTC' five empty numbers link
       TZ=UTC ls -l --time-style=full-iso`,
    );
    assert.equal(
      outside.stdout,
      [
        'total 12',
        '-rwsr-xr-x 1 root   root    0 2001-09-09 01:46:40.000000000 +0000 empty',
        '-rw-r----- 1 root   root    5 2001-09-09 01:46:40.000000000 +0000 five',
        '-rw-r--r-- 2 daemon bin  3893 2001-09-09 01:46:40.000000000 +0000 hard',
        'lrwxrwxrwx 1 root   root    7 2001-09-09 01:46:40.000000000 +0000 link -> numbers',
        '-rw-r--r-- 2 daemon bin  3893 2001-09-09 01:46:40.000000000 +0000 numbers',
        '',
      ].join('\n'),
    );
  });

  test('sort', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `set -o pipefail
       printf '%s\\n' banana Apple cherry apple 10 9 | LC_ALL=C sort
       printf '%s\\n' 10 9 100 -1 | sort -n
       printf 'b,2\\na,10\\nc,1\\n' | sort -t, -k2,2n
       printf '%s\\n' b a b c a | sort -u | tr '\\n' ' '; echo
       seq 200000 | sort -r -S 1M | sort -n -S 1M --parallel=2 | sha256sum`,
    );
    assert.equal(
      outside.stdout,
      '10\n9\nApple\napple\nbanana\ncherry\n-1\n9\n10\n100\nc,1\nb,2\na,10\na b c \n' +
        // = seq 200000 | sha256sum
        '5af7b95208fdcff454bab3f5eddf567a688a3796c703d4fef91072e38645c062  -\n',
    );
  });

  test('wc', async () => {
    const { outside } = await assertBashSameAsNative(R, `wc /etc/passwd /etc/group; seq 100000 | wc -l -w -c; printf 'a b\\nc' | wc`);
    assert.match(outside.stdout, /^ +100000 +100000 +588895$/m);
    assert.match(outside.stdout, /^ +1 +3 +5$/m);
  });

  test("find / -xdev -name '*.conf' (sorted)", async () => {
    const { outside } = await assertBashSameAsNative(R, `find / -xdev -name '*.conf' | sort`, { root: 'readonly' });
    const found = outside.stdout.split('\n');
    assert.ok(found.includes('/etc/adduser.conf') && found.includes('/etc/ld.so.conf'), outside.stdout);
    assert.ok(!found.some((p) => p.startsWith('/proc/') || p.startsWith('/dev/')), outside.stdout);
  });

  test('tar czf, then tar xzf: the same tree', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `set -e
       mkdir -p /tmp/t/src/sub/deeper /tmp/t/src/empty; cd /tmp/t
       seq 1 20000 > src/numbers
       head -c 300000 /dev/zero | tr '\\0' x > src/sub/xs
       cp /usr/bin/bash src/sub/deeper/bash.bin
       ln -s ../numbers src/sub/link
       tar czf src.tar.gz src
       gzip -t src.tar.gz
       mkdir out && tar xzf src.tar.gz -C out
       listing() { (cd "$1" && find . -printf '%y %m %p %l\\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
       listing src > before; listing out/src > after
       cmp before after && cat after
       tar tzf src.tar.gz | sort`,
    );
    assert.match(outside.stdout, /^l 777 \.\/sub\/link \.\.\/numbers$/m);
    assert.match(outside.stdout, /^\w{64} {2}\.\/sub\/deeper\/bash\.bin$/m);
  });

  test('sha256sum', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `printf abc | sha256sum; sha256sum /usr/bin/bash /etc/os-release | cut -c 65-; head -c 10000000 /dev/zero | sha256sum`,
    );
    assert.equal(
      outside.stdout,
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  -\n  /usr/bin/bash\n  /etc/os-release\n' +
        'f5e02aa71e67f41d79023a128ca35bad86cf7b6656967bfe0884b3a3c4325eaf  -\n',
    );
  });

  test('date of fixed times', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `date -d @0 -u; date -u -d '2024-02-29 12:34:56 UTC' '+%s %A %j'; date -u -R -d @1700000000; TZ=UTC0 date -d @86399 +%T`,
    );
    assert.equal(
      outside.stdout,
      'Thu Jan  1 00:00:00 UTC 1970\n1709210096 Thursday 060\nTue, 14 Nov 2023 22:13:20 +0000\n23:59:59\n',
    );
  });

  test('date is the host clock, and sleep sleeps', async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await veilIn(R, ['bash', '-c', 'date +%s; s=$(date +%s%N); sleep 1; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))']);
    const after = Math.ceil(Date.now() / 1000);
    assert.equal(r.status, 0, r.stderr);
    const [now, sleptMs] = r.stdout.trim().split('\n').map(Number);
    assert.ok(now >= before && now <= after, `date +%s = ${now}, host clock was ${before}..${after}`);
    assert.ok(sleptMs >= 1000 && sleptMs < 3000, `sleep 1 took ${sleptMs} ms`);
  });
});

describe('procps', { skip }, () => {
  test('ps aux shows the sandbox\'s processes and no host process', async () => {
    const script = 'sleep 30 & sleep 31 & ps aux; kill %1 %2; wait';
    const r = await veilIn(R, ['bash', '-c', script]);
    assert.equal(r.status, 0, r.stderr);
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    assert.deepEqual(header.trim().split(/\s+/), ['USER', 'PID', '%CPU', '%MEM', 'VSZ', 'RSS', 'TTY', 'STAT', 'START', 'TIME', 'COMMAND']);
    const procs = rows.map((row) => {
      const f = row.trim().split(/\s+/);
      return { user: f[0], pid: Number(f[1]), command: f.slice(10).join(' ') };
    });
    assert.deepEqual(
      procs.map((p) => p.command).sort(),
      [`bash -c ${script}`, 'ps aux', 'sleep 30', 'sleep 31'].sort(),
      r.stdout,
    );
    assert.ok(procs.every((p) => p.user === 'root' && p.pid >= 1 && p.pid < 100), r.stdout);
    assert.equal(procs.find((p) => p.command.startsWith('bash')).pid, 1, r.stdout);
    assert.equal(new Set(procs.map((p) => p.pid)).size, 4, r.stdout);
  });
});

describe('python3', { skip }, () => {
  test('json', async () => {
    const { outside } = await assertSameAsNative(
      R,
      py(`import json
d = json.loads('{"a": [1, 2.5, {"b": null}], "c": "\\\\u00e9", "t": true}')
print(json.dumps(d, sort_keys=True))
print(json.dumps({"x": [1, {"y": False}]}, indent=2))
try:
    json.loads('{bad')
except json.JSONDecodeError as e:
    print("error at", e.pos)`),
    );
    assert.equal(
      outside.stdout,
      '{"a": [1, 2.5, {"b": null}], "c": "\\u00e9", "t": true}\n{\n  "x": [\n    1,\n    {\n      "y": false\n    }\n  ]\n}\nerror at 1\n',
    );
  });

  test('threading: 8 threads, locks, a barrier, a condition', async () => {
    const { outside } = await assertSameAsNative(
      R,
      py(`import threading
lock = threading.Lock()
barrier = threading.Barrier(8)
count = 0
results = []
def work(n):
    global count
    barrier.wait()
    for _ in range(10000):
        with lock:
            count += 1
    with lock:
        results.append(n * n)
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
cond = threading.Condition()
items, consumed = [], []
def consumer():
    while len(consumed) < 5:
        with cond:
            while not items:
                cond.wait()
            consumed.append(items.pop(0))
c = threading.Thread(target=consumer)
c.start()
for i in range(5):
    with cond:
        items.append(i)
        cond.notify()
c.join()
local = threading.local()
def set_local(v, out):
    local.v = v
    out.append(local.v)
out = []
ts = [threading.Thread(target=set_local, args=(i, out)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print(count, sorted(results), consumed, sorted(out), threading.active_count())`),
    );
    assert.equal(outside.stdout, '80000 [0, 1, 4, 9, 16, 25, 36, 49] [0, 1, 2, 3, 4] [0, 1, 2, 3, 4, 5, 6, 7] 1\n');
  });

  test('subprocess.run', async () => {
    const { outside } = await assertSameAsNative(
      R,
      py(`import subprocess
r = subprocess.run(['sh', '-c', 'echo out; echo err >&2; exit 3'], capture_output=True, text=True)
print(r.returncode, repr(r.stdout), repr(r.stderr))
print(subprocess.run(['tr', 'a-z', 'A-Z'], input='hello\\n', capture_output=True, text=True).stdout, end='')
try:
    subprocess.run(['false'], check=True)
except subprocess.CalledProcessError as e:
    print('CalledProcessError', e.returncode)
print(subprocess.check_output('echo $((6 * 7)) | cat', shell=True, text=True), end='')
p = subprocess.Popen(['sleep', '10'])
p.terminate()
print('terminated', p.wait())
try:
    subprocess.run(['sleep', '5'], timeout=0.3)
except subprocess.TimeoutExpired:
    print('timeout')`),
    );
    assert.equal(outside.stdout, "3 'out\\n' 'err\\n'\nHELLO\nCalledProcessError 1\n42\nterminated -15\ntimeout\n");
  });

  test('os.fork and os.waitpid', async () => {
    const { outside } = await assertSameAsNative(
      R,
      py(`import os, signal, time
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    os.write(w, b'hello from the child of %d' % os.getppid())
    os._exit(7)
os.close(w)
data = os.read(r, 100)
p, st = os.waitpid(pid, 0)
print(data, p == pid, os.WIFEXITED(st), os.WEXITSTATUS(st))
pid = os.fork()
if pid == 0:
    os.kill(os.getpid(), signal.SIGKILL)
p, st = os.waitpid(pid, 0)
print(os.WIFSIGNALED(st), os.WTERMSIG(st))
pid = os.fork()
if pid == 0:
    time.sleep(0.5)
    os._exit(0)
print(os.waitpid(pid, os.WNOHANG))
os.waitpid(pid, 0)
kids = set()
for i in range(5):
    pid = os.fork()
    if pid == 0:
        os._exit(10 + i)
    kids.add(pid)
codes = []
while kids:
    p, st = os.waitpid(-1, 0)
    kids.remove(p)
    codes.append(os.WEXITSTATUS(st))
print(sorted(codes))
try:
    os.wait()
except ChildProcessError as e:
    print('no children:', e.errno)`),
    );
    assert.equal(
      outside.stdout,
      "b'hello from the child of 1' True True 7\nTrue 9\n(0, 0)\n[10, 11, 12, 13, 14]\nno children: 10\n",
    );
  });

  test('signal.alarm with a handler', async () => {
    const { outside } = await assertSameAsNative(
      R,
      py(`import signal, time
got = []
signal.signal(signal.SIGALRM, lambda s, f: got.append(s))
t = time.monotonic()
signal.alarm(1)
signal.pause()
e = time.monotonic() - t
print(got == [signal.SIGALRM], 0.9 < e < 3 or e)
class Alarm(Exception):
    pass
def raiser(s, f):
    raise Alarm()
signal.signal(signal.SIGALRM, raiser)
t = time.monotonic()
signal.alarm(1)
try:
    time.sleep(10)
except Alarm:
    e = time.monotonic() - t
    print('sleep interrupted', 0.9 < e < 3 or e)
signal.alarm(5)
print('remaining', signal.alarm(0))`),
    );
    assert.equal(outside.stdout, 'True True\nsleep interrupted True\nremaining 5\n');
  });

  test('stop and continue are reported to wait; robust mutexes outlive their owner', async () => {
    const { outside } = await assertSameAsNative(
      R,
      py(`import ctypes, os, signal, threading, time
pid = os.fork()
if pid == 0:
    time.sleep(30)
    os._exit(0)
os.kill(pid, signal.SIGSTOP)
_, st = os.waitpid(pid, os.WUNTRACED)
print('stopped', os.WIFSTOPPED(st), os.WSTOPSIG(st))
os.kill(pid, signal.SIGCONT)
_, st = os.waitpid(pid, os.WCONTINUED)
print('continued', os.WIFCONTINUED(st))
os.kill(pid, signal.SIGKILL)
_, st = os.waitpid(pid, 0)
print('killed', os.WTERMSIG(st))
libc = ctypes.CDLL(None, use_errno=True)
attr, m = ctypes.create_string_buffer(8), ctypes.create_string_buffer(40)
libc.pthread_mutexattr_init(attr)
libc.pthread_mutexattr_setrobust(attr, 1)
libc.pthread_mutex_init(m, attr)
def hold():
    libc.pthread_mutex_lock(m)
    libc.syscall(60, 0)  # this thread exits holding the mutex
threading.Thread(target=hold).start()
time.sleep(0.5)
print('lock after its owner died:', libc.pthread_mutex_lock(m), flush=True)
os._exit(0)  # the dead owner thread can never be joined`),
    );
    assert.equal(outside.stdout, 'stopped True 19\ncontinued True\nkilled 9\nlock after its owner died: 130\n');
  });

  test('credentials: dropping root limits files, signals and ids', async () => {
    const { outside } = await assertSameAsNative(
      R,
      py(`import errno, os
def status(*names):
    lines = open('/proc/self/status').read().splitlines()
    return [l.split(':\t', 1) for l in lines if l.split(':')[0] in names]
print('ids', os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), flush=True)
print('root holds capabilities', all(int(v, 16) != 0 for _, v in status('CapPrm', 'CapEff')), flush=True)
with open('/tmp/secret', 'w') as f:
    f.write('s')
os.chmod('/tmp/secret', 0o600)
pid = os.fork()
if pid == 0:
    os.setgroups([])
    os.setresgid(65534, 65533, 65532)
    os.setreuid(65534, 65534)
    print('child', os.getresuid(), os.getresgid(), os.getgroups())
    print('status', status('Uid', 'Gid', 'Groups', 'CapPrm', 'CapEff'))
    for what, f in [('read secret', lambda: open('/tmp/secret').read()),
                    ('setuid(0)', lambda: os.setuid(0)),
                    ('kill(1, 0)', lambda: os.kill(1, 0))]:
        try:
            f()
            print(what, 'allowed')
        except PermissionError as e:
            print(what, errno.errorcode[e.errno])
    with open('/tmp/mine', 'w') as f:
        f.write('m')
    st = os.stat('/tmp/mine')
    print('new file owner', st.st_uid, st.st_gid, 'W_OK /etc/passwd', os.access('/etc/passwd', os.W_OK), flush=True)
    os._exit(0)
_, st = os.waitpid(pid, 0)
print('child status', st)`),
    );
    assert.equal(
      outside.stdout,
      'ids 0 0 0 []\nroot holds capabilities True\nchild (65534, 65534, 65534) (65534, 65533, 65532) []\n' +
        "status [['Uid', '65534\\t65534\\t65534\\t65534'], ['Gid', '65534\\t65533\\t65532\\t65533'], ['Groups', ' '], ['CapPrm', '0000000000000000'], ['CapEff', '0000000000000000']]\n" +
        'read secret EACCES\nsetuid(0) EPERM\nkill(1, 0) EPERM\n' +
        'new file owner 65534 65533 W_OK /etc/passwd False\nchild status 0\n',
    );
  });

  test('CPU-time interval timers and resource usage', async () => {
    const { outside } = await assertSameAsNative(
      R,
      py(`import os, resource, signal, time
hits = {'VTALRM': 0, 'PROF': 0}
signal.signal(signal.SIGVTALRM, lambda s, f: hits.__setitem__('VTALRM', hits['VTALRM'] + 1))
signal.signal(signal.SIGPROF, lambda s, f: hits.__setitem__('PROF', hits['PROF'] + 1))
signal.setitimer(signal.ITIMER_VIRTUAL, 0.05, 0.05)
signal.setitimer(signal.ITIMER_PROF, 0.05, 0.05)
t = time.process_time(); x = 0
while time.monotonic() and hits['VTALRM'] < 3:
    x += 1
print('virtual timer fired', hits['VTALRM'] >= 3, 'prof fired', hits['PROF'] >= 1)
signal.setitimer(signal.ITIMER_VIRTUAL, 0); signal.setitimer(signal.ITIMER_PROF, 0)
print('getitimer after disarm', signal.getitimer(signal.ITIMER_VIRTUAL))
ru = resource.getrusage(resource.RUSAGE_SELF)
print('user time counted', ru.ru_utime > 0.1)
pid = os.fork()
if pid == 0:
    e = time.monotonic() + 0.3
    while time.monotonic() < e: pass
    os._exit(0)
os.waitpid(pid, 0)
print('children time counted', resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime > 0.1, os.times().children_user + os.times().children_system > 0.1)`),
    );
    assert.equal(
      outside.stdout,
      'virtual timer fired True prof fired True\ngetitimer after disarm (0.0, 0.0)\nuser time counted True\nchildren time counted True True\n',
    );
  });

  test('tempfile', async () => {
    const { outside } = await assertSameAsNative(
      R,
      py(`import os, tempfile
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, 'a.txt')
    with open(p, 'w') as f:
        f.write('x' * 100000)
    print(os.path.getsize(p), os.listdir(d), d.startswith('/tmp/'), oct(os.stat(d).st_mode & 0o777))
    kept = d
print(os.path.exists(kept))
with tempfile.NamedTemporaryFile('w+b') as f:
    f.write(b'hello')
    f.flush()
    f.seek(0)
    print(f.read(), os.path.exists(f.name))
    name = f.name
print(os.path.exists(name))
fd, path = tempfile.mkstemp(suffix='.dat')
os.write(fd, b'abc')
os.close(fd)
print(open(path, 'rb').read(), path.endswith('.dat'), oct(os.stat(path).st_mode & 0o777))
os.unlink(path)
with tempfile.TemporaryFile() as f:
    f.write(b'anonymous')
    f.seek(0)
    print(f.read())
print(os.listdir('/tmp'))`),
    );
    assert.equal(
      outside.stdout,
      "100000 ['a.txt'] True 0o700\nFalse\nb'hello' True\nFalse\nb'abc' True 0o600\nb'anonymous'\n[]\n",
    );
  });

  test('socket.socketpair', async () => {
    const { outside } = await assertSameAsNative(
      R,
      py(`import os, socket
a, b = socket.socketpair()
print(a.family == socket.AF_UNIX, a.type == socket.SOCK_STREAM)
a.sendall(b'ping')
print(b.recv(4))
pid = os.fork()
if pid == 0:
    b.sendall(b'pong' * 100000)
    os._exit(0)
data = b''
while len(data) < 400000:
    data += a.recv(65536)
os.waitpid(pid, 0)
print(len(data), data[:8])
r, w = os.pipe()
os.write(w, b'through a passed fd')
socket.send_fds(a, [b'fd'], [r])
msg, fds, flags, addr = socket.recv_fds(b, 10, 1)
print(msg, len(fds), os.read(fds[0], 100))
a.shutdown(socket.SHUT_WR)
print(b.recv(10))
d1, d2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
d1.send(b'one')
d1.send(b'two')
print(d2.recv(100), d2.recv(100))`),
    );
    assert.equal(outside.stdout, "True True\nb'ping'\n400000 b'pongpong'\nb'fd' 1 b'through a passed fd'\nb''\nb'one' b'two'\n");
  });

  test('select and selectors', async () => {
    const { outside } = await assertSameAsNative(
      R,
      py(`import os, select, selectors, socket, time
r, w = os.pipe()
print(select.select([r], [], [], 0))
os.write(w, b'x')
print(select.select([r], [w], [], 1) == ([r], [w], []))
t = time.monotonic()
print(select.select([], [], [], 0.2), 0.19 < time.monotonic() - t < 2)
a, b = socket.socketpair()
sel = selectors.DefaultSelector()
print(type(sel).__name__)
sel.register(b, selectors.EVENT_READ, 'socket')
sel.register(r, selectors.EVENT_READ, 'pipe')
print(sorted(k.data for k, ev in sel.select(0)))
a.send(b'hi')
print(sorted(k.data for k, ev in sel.select(1)))
os.read(r, 1)
b.recv(2)
print(sel.select(0.1))
sel.modify(b, selectors.EVENT_WRITE, 'writable')
print([(k.data, ev == selectors.EVENT_WRITE) for k, ev in sel.select(0)])
sel.close()
p = select.poll()
p.register(w, select.POLLOUT)
print(p.poll(0) == [(w, select.POLLOUT)])`),
    );
    assert.equal(
      outside.stdout,
      "([], [], [])\nTrue\n([], [], []) True\nEpollSelector\n['pipe']\n['pipe', 'socket']\n[]\n[('writable', True)]\nTrue\n",
    );
  });

  test('mmap of a file', async () => {
    const { outside } = await assertSameAsNative(
      R,
      py(`import mmap, os, tempfile
d = tempfile.mkdtemp()
p = os.path.join(d, 'm')
with open(p, 'wb') as f:
    f.write(b'\\0' * 8192)
with open(p, 'r+b') as f:
    m = mmap.mmap(f.fileno(), 0)
    m[0:5] = b'hello'
    m[4096:4101] = b'world'
    m.flush()
    print(len(m), m[:5], m.find(b'world'))
    m.close()
print(open(p, 'rb').read().replace(b'\\0', b''))
with open('/etc/os-release', 'rb') as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    print(m[:] == open('/etc/os-release', 'rb').read(), m[:12])
with open(p, 'rb') as f:
    private = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE)
    private[:5] = b'HELLO'
    print(private[:5], open(p, 'rb').read(5))
shared = mmap.mmap(-1, 4096, flags=mmap.MAP_SHARED)
pid = os.fork()
if pid == 0:
    shared[:5] = b'child'
    os._exit(0)
os.waitpid(pid, 0)
print(shared[:5])`),
    );
    assert.equal(
      outside.stdout,
      "8192 b'hello' 4096\nb'helloworld'\nTrue b'PRETTY_NAME='\nb'HELLO' b'hello'\nb'child'\n",
    );
  });
});

describe('sqlite3, gcc, make', { skip }, () => {
  test('sqlite3: a database file, a transaction of 10,000 inserts, a query', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `set -eo pipefail
       mkdir /tmp/db; cd /tmp/db
       sqlite3 test.db 'CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER);'
       { echo 'BEGIN;'
         seq 10000 | awk -v q="'" '{ printf "INSERT INTO t (name, n) VALUES (%srow%d%s, %d);\\n", q, $1, q, $1 * 7 % 1000 }'
         echo 'COMMIT;'; } | sqlite3 test.db
       sqlite3 test.db <<'SQL'
SELECT count(*), sum(n), min(name), max(name) FROM t;
SELECT id, name, n FROM t WHERE id % 2500 = 0 ORDER BY id;
PRAGMA integrity_check;
SQL
       ls`,
      { timeoutMs: 300000 },
    );
    assert.equal(
      outside.stdout,
      '10000|4995000|row1|row9999\n2500|row2500|500\n5000|row5000|0\n7500|row7500|500\n10000|row10000|0\nok\ntest.db\n',
    );
  });

  test('gcc hello.c -o hello && ./hello', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `set -e
       mkdir /tmp/hello; cd /tmp/hello
       cat > hello.c <<'EOF'
#include <stdio.h>
int main(int argc, char **argv) {
    printf("hello, world (%d args, last %s)\\n", argc, argv[argc - 1]);
    return 0;
}
EOF
       gcc hello.c -o hello && ./hello a b`,
      { timeoutMs: 300000 },
    );
    assert.equal(outside.stdout, 'hello, world (3 args, last b)\n');
  });

  test('make -j2 of a project with several source files', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `set -e
       mkdir /tmp/proj; cd /tmp/proj
       cat > util.h <<'EOF'
int add(int, int);
int mul(int, int);
const char *greeting(void);
EOF
       cat > add.c <<'EOF'
#include "util.h"
int add(int a, int b) { return a + b; }
EOF
       cat > mul.c <<'EOF'
#include "util.h"
int mul(int a, int b) { int r = 0; for (int i = 0; i < b; i++) r = add(r, a); return r; }
EOF
       cat > greet.c <<'EOF'
#include "util.h"
const char *greeting(void) { return "built by make"; }
EOF
       cat > main.c <<'EOF'
#include <stdio.h>
#include "util.h"
int main(void) { printf("%s: %d %d\\n", greeting(), add(2, 3), mul(6, 7)); return 0; }
EOF
       cat > Makefile <<'EOF'
CFLAGS = -O1 -Wall -Werror
OBJS = main.o add.o mul.o greet.o
prog: $(OBJS)
${TAB}$(CC) $(CFLAGS) -o $@ $(OBJS)
%.o: %.c util.h
${TAB}$(CC) $(CFLAGS) -c $<
EOF
       make -j2 -s
       ./prog
       make -j2
       touch add.c
       make -j2
       ./prog
       ls`,
      { timeoutMs: 300000 },
    );
    assert.equal(
      outside.stdout,
      'built by make: 5 42\n' +
        "make: 'prog' is up to date.\n" +
        'cc -O1 -Wall -Werror -c add.c\ncc -O1 -Wall -Werror -o prog main.o add.o mul.o greet.o\n' +
        'built by make: 5 42\n' +
        'Makefile\nadd.c\nadd.o\ngreet.c\ngreet.o\nmain.c\nmain.o\nmul.c\nmul.o\nprog\nutil.h\n',
    );
  });
});

describe('errors, not crashes', { skip }, () => {
  test('a bad pointer to a system call gets EFAULT', async () => {
    // syscall(2) directly: no libc wrapper between the bad pointer and the kernel.
    const { outside } = await assertSameAsNative(
      R,
      py(`import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
r, w = os.pipe()
os.write(w, b'data')
BAD = ctypes.c_void_p(1)
L = ctypes.c_long
calls = [
    ('read', 0, L(r), BAD, L(10)),
    ('write', 1, L(w), BAD, L(10)),
    ('open', 2, BAD, L(0)),
    ('stat', 4, b'/', BAD),
    ('fstat', 5, L(r), BAD),
    ('poll', 7, BAD, L(1), L(0)),
    ('rt_sigaction', 13, L(10), BAD, None, L(8)),
    ('pipe', 22, BAD),
    ('nanosleep', 35, BAD, None),
    ('execve', 59, BAD, None, None),
    ('uname', 63, BAD),
    ('getcwd', 79, BAD, L(100)),
    ('readlink', 89, b'/proc/self/exe', BAD, L(100)),
    ('gettimeofday', 96, BAD, None),
    ('clock_gettime', 228, L(0), BAD),
    ('getrandom', 318, BAD, L(8), L(0)),
]
for name, nr, *args in calls:
    ctypes.set_errno(0)
    ret = libc.syscall(L(nr), *args)
    print(name, ret, ctypes.get_errno())
# The failed read must not have consumed the pipe's data (Linux does not).
os.set_blocking(r, False)
try:
    print(os.read(r, 10))
except BlockingIOError:
    print('the pipe is empty')`),
    );
    const lines = outside.stdout.trim().split('\n');
    assert.equal(lines.length, 17);
    assert.ok(lines.slice(0, 16).every((l) => / -1 14$/.test(l)), outside.stdout);
    assert.equal(lines[16], "b'data'");
  });

  test('a segfault exits 139 in a shell and the sandbox stays usable', async () => {
    const { outside } = await assertBashSameAsNative(
      R,
      `python3 -c 'import ctypes; ctypes.string_at(0)'
       echo "status=$?"
       bash -c 'kill -SEGV $$'; echo "signalled=$?"
       echo still alive; ls /usr | wc -l; python3 -c 'print("python works")'`,
    );
    assert.match(outside.stdout, /^status=139\nsignalled=139\nstill alive\n\d+\npython works\n$/);
  });

  test('a fork bomb is bounded by the task limit, and the sandbox can still be killed', async (t) => {
    // Inside: the bomb, and PID 1 printing how many processes /proc shows
    // each second (bash builtins only: it must not need to fork).
    const script = `bomb() { bomb | bomb & }; bomb
      while :; do
        p=(/proc/[0-9]*); echo "tasks \${#p[@]}"
        read -r -t 1 || (( $? > 128 )) || { echo "read -t 1 failed"; exit 99; }
      done`;
    const TASK_LIMIT = 1024;
    let cli;
    let maxHost = 0;
    const seen = new Set();
    const result = veilIn(R, ['bash', '-c', script], {
      keepStdinOpen: true,
      timeoutMs: 120000,
      onSpawn: (child) => (cli = child),
    });
    let exited = false;
    result.then(() => (exited = true), () => (exited = true));
    let stdout = '';
    let stderr = '';
    cli.stdout.on('data', (d) => (stdout += d));
    cli.stderr.on('data', (d) => (stderr += d));
    const startedAt = Date.now();
    const deadline = startedAt + 45000;
    const limited = /fork: (retry: )?Resource temporarily unavailable/;
    while (Date.now() < deadline && !exited) {
      const tree = descendants(cli.pid);
      tree.forEach((id) => seen.add(id));
      maxHost = Math.max(maxHost, tree.length);
      if (limited.test(stderr) && stdout.split('\n').length > 4) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const killedAt = Date.now();
    cli.kill('SIGTERM');
    const escalate = setTimeout(() => cli.kill('SIGKILL'), 20000);
    const r = await result;
    clearTimeout(escalate);
    const stopMs = Date.now() - killedAt;
    t.diagnostic(`bomb ran ${killedAt - startedAt} ms; the CLI exited ${stopMs} ms after SIGTERM; at most ${maxHost} host processes`);
    await new Promise((res) => setTimeout(res, 500));
    assert.deepEqual(stillAlive([...seen]), [], 'sandbox processes outlived the CLI');
    assert.doesNotMatch(stdout, /read -t 1 failed/, `PID 1 could not wait with read -t 1:\n${stderr.slice(-1000)}`);
    const counts = [...stdout.matchAll(/^tasks (\d+)$/gm)].map((m) => Number(m[1]));
    assert.match(stderr, limited, 'the bomb never hit the task limit');
    assert.ok(counts.length >= 3, `PID 1 stopped reporting during the bomb:\n${stdout}`);
    assert.ok(Math.max(...counts) <= TASK_LIMIT, `more than ${TASK_LIMIT} processes: ${counts}`);
    // The sandbox, plus at most one host process per task.
    assert.ok(maxHost <= TASK_LIMIT + 2, `${maxHost} host processes under the CLI`);
    assert.equal(r.signal, null, `the CLI died of a signal after ${stopMs} ms: SIGTERM did not stop the sandbox`);
    assert.equal(r.status, 143, r.stderr.slice(-2000));
    // Errors, not crashes: at the limit fork fails with EAGAIN; no task is
    // killed by the sentry for want of a platform resource.
    const killedTasks = stderr.split('\n').filter((l) => /^veil: task \d+: /.test(l));
    assert.deepEqual(killedTasks.slice(0, 3), [], `${killedTasks.length} tasks failed inside the sentry`);
  });
});

describe('the copy-on-write root', { skip }, () => {
  test('writes, deletes and renames stay in the sandbox; the host tree is byte for byte unchanged', async () => {
    // A canary first: this test runs unguarded (helpers.mjs, veilIn), and a
    // sandbox that writes through to the host must not get to delete files.
    const canary = join(R, '.veil-cow-canary');
    const probe = await veilIn(R, ['bash', '-c', 'echo canary > /.veil-cow-canary; cat /.veil-cow-canary'], { guard: false });
    if (existsSync(canary)) {
      rmSync(canary);
      assert.fail(`a write in the sandbox reached the host rootfs (${canary}); not running the rest of this test`);
    }
    assert.deepEqual({ status: probe.status, stdout: probe.stdout }, { status: 0, stdout: 'canary\n' }, probe.stderr);
    const before = treeListing(R);
    const { outside } = await assertBashSameAsNative(
      R,
      `set -e
       echo created > /etc/veil-created
       echo appended >> /etc/os-release
       rm /etc/debian_version
       mv /etc/hostname /etc/hostname.renamed
       mv /usr/share/doc/gcc-12 /usr/share/doc/gcc-renamed
       rm -r /usr/share/doc/bash
       mkdir -p /opt/veil/new/dir && echo deep > /opt/veil/new/dir/file
       ln -s /etc/veil-created /root/link
       chmod 0600 /etc/shells; truncate -s 10 /etc/services; touch -d @1000000000 /etc/services; touch -d @0 /etc/issue
       cat /etc/veil-created; tail -n 1 /etc/os-release
       ls /etc/debian_version 2>&1 || true
       ls /usr/share/doc/gcc-renamed; ls -d /usr/share/doc/gcc-12 /usr/share/doc/bash 2>&1 || true
       cat /opt/veil/new/dir/file; readlink /root/link; cat /root/link
       stat -c '%n %a %s %Y' /etc/shells /etc/services /etc/issue`,
      { guard: false },
    );
    assert.match(outside.stdout, /^created\nappended\nls: cannot access '\/etc\/debian_version': No such file or directory\n/);
    const after = treeListing(R);
    assert.deepEqual(after.filter((l) => !before.includes(l)), [], 'entries changed or added in the host rootfs');
    assert.deepEqual(before.filter((l) => !after.includes(l)), [], 'entries changed or removed in the host rootfs');
    // A second sandbox starts from the untouched tree.
    const again = await veilIn(R, ['cat', '/etc/debian_version']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /^12\.\d+\n$/);
  });
});

describe('veil do --rootfs and veil run --bundle', { skip }, () => {
  test('--rootfs accepts a relative path', async () => {
    const r = await veil(['do', '--rootfs', relative(process.cwd(), R), '--', 'cat', '/etc/debian_version']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^12\.\d+\n$/);
  });

  test('python3 from the rootfs through a bundle', async () => {
    const bundle = mkdtempSync(join(tmpdir(), 'vbundle-'));
    const id = `userland-bundle-${process.pid}`;
    try {
      symlinkSync(R, join(bundle, 'rootfs'));
      const config = {
        ociVersion: '1.0.2',
        process: {
          terminal: false,
          user: { uid: 0, gid: 0 },
          args: ['python3', '-c', 'import os, socket, sys; print(sys.version_info[:2], os.getcwd(), socket.gethostname(), os.environ["GREETING"], sys.argv)', 'arg1'],
          env: ['PATH=/usr/bin:/bin', 'GREETING=hello from the bundle'],
          cwd: '/usr/lib',
        },
        root: { path: 'rootfs', readonly: false },
        hostname: 'bundled',
      };
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
      const version = await native(R, ['python3', '-c', 'import sys; print(sys.version_info[:2])']);
      assert.equal(version.status, 0, version.stderr);
      const state = join(bundle, 'state');
      const r = await veil(['--root', state, 'run', '--bundle', bundle, id]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `${version.stdout.trim()} /usr/lib bundled hello from the bundle ['-c', 'arg1']\n`);
      // -b, and the bundle defaults to the current directory.
      const exit = { ...config, process: { ...config.process, args: ['bash', '-c', 'exit 7'] } };
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(exit));
      const short = await veil(['--root', state, 'run', '-b', bundle, id]);
      assert.equal(short.status, 7, short.stderr);
      const here = await veil(['--root', state, 'run', id], { cwd: bundle });
      assert.equal(here.status, 7, here.stderr);
      // Each run deleted its container: no state and no cgroup remain.
      assert.deepEqual(existsSync(state) ? readdirSync(state) : [], []);
      const cgroups = ['', ...readdirSync('/sys/fs/cgroup')].map((c) => join('/sys/fs/cgroup', c, id)).filter((p) => existsSync(p));
      assert.deepEqual(cgroups, [], 'cgroups left behind');
    } finally {
      rmSync(bundle, { recursive: true, force: true });
    }
  });
});
