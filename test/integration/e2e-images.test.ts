// The busybox images the end-to-end tests import (test/harness/images.ts), run for real under runc:
// the workload image runs shell scripts with the usual tools; the pause image adopts and reaps
// orphans as PID 1 of its PID namespace and exits 0 on SIGTERM. Made in a temporary cache directory,
// so this also proves the cache: a second call returns the same tar without rewriting it.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensurePauseImage, ensureWorkloadImage, type LocalImage } from '../harness/images.js';
import { exec, runcBin, runcDelete, runcRun, runcStart, unpackRootfs, writeBundleConfig } from '../harness/runc.js';

/** Host pids of the children of a process (zombies included, which is the point). */
async function children(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(/\s+/).filter(Boolean).map(Number);
}

/** Polls a fact until it holds or the deadline passes (then the test fails on the fact itself). */
async function until(fact: () => Promise<boolean>, deadlineMs = 20_000): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await fact()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('end-to-end images made from busybox-static', () => {
  let cache: string;
  let pause: LocalImage;
  let workload: LocalImage;
  before(async () => {
    cache = await mkdtemp(join(tmpdir(), 's3fs-csi-e2e-images-'));
    pause = await ensurePauseImage({ cacheDir: cache });
    workload = await ensureWorkloadImage({ cacheDir: cache });
  });
  after(() => rm(cache, { recursive: true, force: true }));

  it('refs are full docker.io/library references tagged with the content hash; cached tars are reused', async () => {
    assert.match(pause.ref, /^docker\.io\/library\/s3fs-csi-e2e-pause:[0-9a-f]{16}$/);
    assert.match(workload.ref, /^docker\.io\/library\/s3fs-csi-e2e-workload:[0-9a-f]{16}$/);
    const before = (await stat(workload.tar)).mtimeMs;
    const again = await ensureWorkloadImage({ cacheDir: cache });
    assert.deepEqual(again, workload);
    assert.equal((await stat(workload.tar)).mtimeMs, before, 'not rewritten');
  });

  async function bundleOf(image: LocalImage, name: string): Promise<{ bundle: string; state: string; entrypoint: string[] }> {
    const work = join(cache, `run-${name}`);
    const state = join(work, 'state');
    await mkdir(state, { recursive: true });
    const archive = await unpackRootfs(image.tar, join(work, 'rootfs'), work);
    return { bundle: work, state, entrypoint: [...(archive.config.config.Entrypoint ?? []), ...(archive.config.config.Cmd ?? [])] };
  }

  it('workload: `sh -c` scripts with cat, ls, touch, dd, stat, id, sleep', { timeout: 120_000 }, async (t) => {
    const { bundle, state, entrypoint } = await bundleOf(workload, 'workload');
    assert.deepEqual(entrypoint, ['/bin/sh']);
    const id = `s3fs-csi-e2e-workload-${process.pid}`;
    t.after(() => runcDelete(state, id));
    const script = 'set -e; cd /tmp; touch a; echo hello > a; cat a; dd if=/dev/zero of=b bs=1k count=3 2>/dev/null; stat -c %s b; ls /bin/sh /usr/bin/env; id -un; sleep 0; env true';
    // A writable root, as a pod's container has.
    await writeBundleConfig(bundle, { args: ['sh', '-c', script], writableRoot: true });
    const r = await runcRun(state, bundle, id);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello\n3072\n/bin/sh\n/usr/bin/env\nroot\n');
  });

  it('pause: PID 1 reaps an orphan it adopts and exits 0 on SIGTERM', { timeout: 120_000 }, async (t) => {
    const { bundle, state, entrypoint } = await bundleOf(pause, 'pause');
    assert.equal(entrypoint[0], '/bin/busybox');
    const id = `s3fs-csi-e2e-pause-${process.pid}`;
    t.after(() => runcDelete(state, id));
    await writeBundleConfig(bundle, { args: entrypoint });
    const { exited } = runcStart(state, bundle, id);
    let init = 0;
    assert.ok(await until(async () => {
      const s = await exec(runcBin, ['--root', state, 'state', id]);
      if (s.code !== 0) return false;
      const st = JSON.parse(s.stdout) as { status: string; pid: number };
      init = st.pid;
      return st.status === 'running' && (await children(init)).length === 1; // its sleep
    }), 'pause container running');
    // A process that leaves a child behind: the child is re-parented to the pause process (PID 1 of
    // the container's PID namespace), which must collect it when it exits.
    const orphanMaker = await exec(runcBin, ['--root', state, 'exec', id, '/bin/busybox', 'sh', '-c', '/bin/busybox sleep 1 </dev/null >/dev/null 2>&1 & echo started']);
    assert.equal(orphanMaker.code, 0, orphanMaker.stderr);
    const adopted = await children(init);
    assert.equal(adopted.length, 2, 'the orphan is now a child of pause');
    assert.ok(await until(async () => (await children(init)).length === 1), 'the orphan exited and was reaped (no zombie child left)');
    await exec(runcBin, ['--root', state, 'kill', id, 'TERM']);
    assert.equal(await exited, 0);
  });
});
