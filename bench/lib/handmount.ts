// s3fs started by hand with exactly the command line the driver would build (src/mount/spec.ts is the
// one place that builds it), timed until the mount answers: in the mount table as FUSE and statfs
// succeeding. This is the limit NodeStageVolume is compared with, and the way to try options the
// driver's policy does not accept (use_cache).
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { layersAt, readMountTable, s3fsArgs, stageSpecFrom } from '../../src/mount/index.js';
import { answering } from './answering.js';
import { writePasswdFile } from '../../src/mount/passwd.js';
import type { S3Server } from '../../test/harness/s3server.js';
import { killPid } from './cleanup.js';
import { nowMs } from './stats.js';
import type { BenchContext } from './types.js';

const run = promisify(execFile);

export interface HandMount {
  ms: number;
  pid: number;
  path: string;
  unmount(): Promise<void>;
}

let seq = 0;

export async function mountByHand(
  ctx: BenchContext,
  s3: S3Server,
  o: { volumeId: string; options?: string; rawOptions?: string[]; /** s3fs binary (default `s3fs` on PATH). */ bin?: string },
): Promise<HandMount> {
  const n = ++seq;
  const path = join(ctx.workDir, 'hand', `m${n}`);
  await mkdir(path, { recursive: true });
  const spec = stageSpecFrom(
    { volumeId: o.volumeId, stagingPath: path, secrets: s3.secrets, volumeContext: o.options ? { options: o.options } : {} },
    { s3: { region: s3.region, pathStyle: true, insecureSkipVerify: false } },
  );
  const passwd = await writePasswdFile(join(ctx.workDir, 'runtime'), `hand${n}`, spec.credentials.accessKeyId, spec.credentials.secretAccessKey);
  const args = s3fsArgs(spec, path, passwd);
  for (const raw of o.rawOptions ?? []) args.push('-o', raw);

  const t0 = nowMs();
  const child = spawn(o.bin ?? 's3fs', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const pid = child.pid ?? 0;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const undo = async (): Promise<void> => {
    await run('umount', [path]).catch(() => run('umount', ['-l', path]).catch(() => undefined));
    await Promise.race([exited, sleep(5000)]);
    await killPid(pid);
  };
  ctx.cleanup.pids.push(pid);
  const remove = ctx.cleanup.add(`s3fs by hand on ${path}`, undo);
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`s3fs exited (${child.exitCode}): ${stderr.slice(-500)}`);
      if (nowMs() - t0 > 30_000) throw new Error(`s3fs did not mount in 30 s: ${stderr.slice(-500)}`);
      const table = await readMountTable();
      if (layersAt(table, path).some((m) => m.fsType.startsWith('fuse'))) break;
      await sleep(5);
    }
    if (!(await answering([path], 10_000)).has(path)) throw new Error(`hand mount not usable: ${path} does not answer statfs`);
  } catch (err) {
    await remove();
    throw err;
  }
  return { ms: nowMs() - t0, pid, path, unmount: remove };
}

/**
 * The limit of recovering `volumeIds.length` volumes: the same s3fs command lines started by hand all
 * at once, timed until every mount is in the mount table as FUSE (one table read per 5 ms for all)
 * and answers statfs (one `stat -f` for all). No driver, no API, no bind mounts.
 */
export async function mountManyByHand(ctx: BenchContext, s3: S3Server, volumeIds: readonly string[]): Promise<{ ms: number; unmount(): Promise<void> }> {
  const base = join(ctx.workDir, 'hand-many', `batch${++seq}`);
  const prepared = await Promise.all(volumeIds.map(async (volumeId, i) => {
    const path = join(base, `m${i}`);
    await mkdir(path, { recursive: true });
    const spec = stageSpecFrom({ volumeId, stagingPath: path, secrets: s3.secrets, volumeContext: {} }, { s3: { region: s3.region, pathStyle: true, insecureSkipVerify: false } });
    const passwd = await writePasswdFile(join(ctx.workDir, 'runtime'), `many${seq}-${i}`, spec.credentials.accessKeyId, spec.credentials.secretAccessKey);
    return { path, args: s3fsArgs(spec, path, passwd) };
  }));
  const pids: number[] = [];
  const undo = async (): Promise<void> => {
    await Promise.all(prepared.map((p) => run('umount', [p.path]).catch(() => run('umount', ['-l', p.path]).catch(() => undefined))));
    await Promise.all(pids.map((pid) => killPid(pid)));
  };
  const remove = ctx.cleanup.add(`${volumeIds.length} s3fs by hand under ${base}`, undo);
  const t0 = nowMs();
  try {
    const children = prepared.map((p) => spawn('s3fs', p.args, { stdio: 'ignore', detached: true, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } }));
    for (const c of children) if (c.pid) pids.push(c.pid);
    ctx.cleanup.pids.push(...pids);
    const pending = new Set(prepared.map((p) => p.path));
    while (pending.size > 0) {
      if (nowMs() - t0 > 120_000) throw new Error(`${pending.size} hand mounts not mounted in 120 s`);
      if (children.some((c) => c.exitCode !== null)) throw new Error('an s3fs started by hand exited');
      const table = await readMountTable();
      for (const m of table) if (m.fsType.startsWith('fuse') && pending.has(m.mountPoint)) pending.delete(m.mountPoint);
      if (pending.size > 0) await sleep(5);
    }
    const ok = await answering(prepared.map((p) => p.path), 30_000);
    if (ok.size !== prepared.length) throw new Error(`${prepared.length - ok.size} hand mounts not usable`);
  } catch (err) {
    await remove();
    throw err;
  }
  return { ms: nowMs() - t0, unmount: remove };
}
