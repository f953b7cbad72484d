// The process starter, `s3fs-csi-mount --spawn` (native/spawn.c), through the driver's own client
// (src/mount/spawner.ts): what a child gets (argv, exactly the environment asked, its own session,
// /dev/null on stdin, SIGPIPE ignored), its output line by line before its end, exit codes and
// signals, a failed start, and the starter's own death (children keep running and are watched by
// pid) and replacement. Every child started here ends within the test; stragglers are killed in after().
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { BUILT_MOUNT_HELPER } from '../../src/mount/mount-helper.js';
import { type SpawnedChild, spawner } from '../../src/mount/spawner.js';

const started: number[] = [];

async function run(script: string, env: Record<string, string> = {}): Promise<{ child: SpawnedChild; lines: string[] }> {
  const lines: string[] = [];
  const child = await spawner.start(['/bin/sh', '-c', script], env, (l) => lines.push(l));
  assert.ok('pid' in child, `started: ${JSON.stringify(child)}`);
  started.push(child.pid);
  return { child, lines };
}

const statOf = async (pid: number): Promise<string[]> => {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
};

before(() => {
  assert.ok(existsSync(BUILT_MOUNT_HELPER), `${BUILT_MOUNT_HELPER} missing: run make build (or make native)`);
});

after(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // ended, as it should have
    }
  }
});

describe('s3fs-csi-mount --spawn', () => {
  it('relays stdout and stderr line by line, an unfinished last line included, all before the exit code', async () => {
    const { child, lines } = await run('echo one; echo two >&2; echo "three  spaced"; printf unfinished; exit 7');
    assert.deepEqual(await child.exited, { code: 7, signal: null });
    assert.deepEqual(lines, ['one', 'two', 'three  spaced', 'unfinished']);
  });

  it('a line longer than 4096 bytes comes in pieces; empty lines and any byte but newline survive', async () => {
    const { child, lines } = await run('head -c 10000 /dev/zero | tr "\\0" x; echo; echo; printf "tab\\there\\n"');
    assert.deepEqual(await child.exited, { code: 0, signal: null });
    assert.deepEqual(lines.slice(0, 3).map((l) => l.length), [4096, 4096, 1808]);
    assert.ok(lines.slice(0, 3).every((l) => /^x+$/.test(l)));
    assert.deepEqual(lines.slice(3), ['', 'tab\there']);
  });

  it('the child gets exactly the environment asked for, its own session, /dev/null on stdin and SIGPIPE ignored', async () => {
    const { child, lines } = await run('env | sort; read x; echo "read:$?"; grep -E "^SigIgn" /proc/$$/status; sleep 0.3', { PATH: '/usr/bin:/bin', LC_ALL: 'C', ONLY: 'this' });
    const [, , pgrp, session] = await statOf(child.pid);
    assert.equal(Number(session), child.pid, 'leads its own session');
    assert.equal(Number(pgrp), child.pid, 'and its own process group');
    await child.exited;
    const env = lines.filter((l) => /^[A-Z_]+=/.test(l) && !/^(PWD|SHLVL|_)=/.test(l));
    assert.deepEqual(env, ['LC_ALL=C', 'ONLY=this', 'PATH=/usr/bin:/bin']);
    assert.ok(lines.includes('read:1'), 'stdin is at its end at once (/dev/null)');
    const ignored = BigInt(`0x${lines.find((l) => l.startsWith('SigIgn'))?.split(/\s+/)[1] ?? '0'}`);
    assert.equal(ignored & (1n << 12n), 1n << 12n, 'SIGPIPE (13) ignored');
  });

  it('a child ended by a signal reports the signal, not a code', async () => {
    const { child } = await run('kill -TERM $$; sleep 5');
    assert.deepEqual(await child.exited, { code: null, signal: 'SIGTERM' });
    const killed = await run('sleep 30');
    process.kill(killed.child.pid, 'SIGKILL');
    assert.deepEqual(await killed.child.exited, { code: null, signal: 'SIGKILL' });
  });

  it('a file that cannot be started answers its errno, and the starter goes on', async () => {
    assert.deepEqual(await spawner.start(['/nonexistent/s3fs'], {}, () => undefined), { errno: 2 });
    assert.deepEqual(await spawner.start(['/etc'], {}, () => undefined), { errno: 13 }, 'a directory: EACCES');
    const { child, lines } = await run('echo after');
    await child.exited;
    assert.deepEqual(lines, ['after']);
  });

  it('many starts at once are answered in order, each child with its own output', async () => {
    const all = await Promise.all(Array.from({ length: 40 }, (_, i) => run(`echo ${i}; exit ${i % 3}`)));
    for (const [i, { child, lines }] of all.entries()) {
      assert.deepEqual(await child.exited, { code: i % 3, signal: null });
      assert.deepEqual(lines, [String(i)]);
    }
  });

  it('the starter killed: its children keep running, their end is still seen, and the next start runs a new starter', async () => {
    const { child } = await run('sleep 1');
    const first = spawner.pid;
    assert.ok(first);
    process.kill(first, 'SIGKILL');
    const exit = await child.exited;
    assert.deepEqual(exit, { code: null, signal: null }, 'seen as gone, without a code: the starter that knew it is dead');
    const after = await statOf(child.pid).catch(() => ['gone']);
    assert.ok(after[0] === 'gone' || after[0] === 'Z', `and it has really ended (state ${after[0]})`);
    const next = await run('echo again');
    assert.deepEqual(await next.child.exited, { code: 0, signal: null });
    assert.deepEqual(next.lines, ['again']);
    assert.ok(spawner.pid && spawner.pid !== first);
  });
});
