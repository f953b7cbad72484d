// Shared pieces of the fault suite: request builders, a fault-file handle, the leak check every test
// ends with, and cleanup of whatever a driver left (s3fs by PID, mounts by path, temp dirs).
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import { codeName } from '../../src/errors.js';
import type { DriverProcess } from '../harness/driver.js';
import { mountPointsUnder } from '../harness/mounts.js';
import { s3fsProcessesUnder } from '../harness/scan.js';

export const CAP = { mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };
export const CAPS = [CAP];

export const stagingOf = (d: DriverProcess, name: string): string => join(d.kubeletDir, 'plugins/kubernetes.io/csi/s3fs.csi.dev', name, 'globalmount');

/** The kubelet creates a target's parent before NodePublish; the driver creates the target. */
export async function targetOf(d: DriverProcess, pod: string, pv: string): Promise<string> {
  const parent = join(d.kubeletDir, 'pods', pod, 'volumes/kubernetes.io~csi', pv);
  await mkdir(parent, { recursive: true });
  return join(parent, 'mount');
}

export const stageReq = (volumeId: string, staging: string, secrets: Record<string, string>): object => ({
  volume_id: volumeId, staging_target_path: staging, volume_capability: CAP, secrets,
});
export const publishReq = (volumeId: string, staging: string, target: string): object => ({
  volume_id: volumeId, staging_target_path: staging, target_path: target, volume_capability: CAP,
});

/** Code name and message of a call (OK when it succeeds). */
export async function outcome(p: Promise<unknown>): Promise<{ code: string; message: string; ms: number }> {
  const t0 = Date.now();
  try {
    await p;
    return { code: 'OK', message: '', ms: Date.now() - t0 };
  } catch (err) {
    const e = err as ServiceError;
    return { code: typeof e.code === 'number' ? codeName(e.code) : 'ClientError', message: e.details ?? e.message, ms: Date.now() - t0 };
  }
}

/** Retries `fn` until it succeeds; returns the ms from the first attempt to success. */
export async function retryUntilOk(fn: () => Promise<unknown>, timeoutMs: number, intervalMs = 250): Promise<number> {
  const t0 = Date.now();
  let last: unknown;
  while (Date.now() - t0 < timeoutMs) {
    try {
      await fn();
      return Date.now() - t0;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
  throw new Error(`no success within ${timeoutMs} ms; last: ${(last as ServiceError)?.details ?? (last as Error)?.message}`);
}

export interface FaultsFile {
  path: string;
  set(lines: Record<string, string>): Promise<void>;
  clear(): Promise<void>;
}

export async function faultsFile(): Promise<FaultsFile> {
  const dir = await mkdtemp(join(tmpdir(), 's3fs-csi-faults-'));
  const path = join(dir, 'faults');
  await writeFile(path, '');
  return {
    path,
    set: (lines) => writeFile(path, Object.entries(lines).map(([k, v]) => `${k}=${v}\n`).join('')),
    clear: () => writeFile(path, ''),
  };
}

/**
 * What a driver left on the node after every volume was unpublished and unstaged: s3fs processes,
 * mounts, passwd files, backing dirs, staged records, and the given targets still on disk.
 */
export async function leaks(d: DriverProcess, targets: string[] = []): Promise<string[]> {
  const out: string[] = [];
  for (const p of s3fsProcessesUnder(d.dir)) out.push(`s3fs pid ${p.pid}: ${p.cmdline.slice(0, 3).join(' ')}`);
  for (const m of await mountPointsUnder(d.dir)) out.push(`mount ${m}`);
  const list = (sub: string): string[] => {
    try {
      return readdirSync(join(d.dir, sub));
    } catch {
      return [];
    }
  };
  for (const f of list('runtime')) out.push(`runtime file ${f}`);
  for (const f of list('state/backing')) out.push(`backing dir ${f}`);
  for (const f of list('state/volumes')) out.push(`staged record ${f}`);
  for (const t of targets) if (existsSync(t)) out.push(`target ${t}`);
  return out;
}

export { scrubDir } from '../harness/mounts.js';

/** Texts the driver let out (logs, error messages, metrics) for the secret scan. */
export class Witness {
  readonly texts: { where: string; text: string }[] = [];
  add(where: string, text: string): void {
    this.texts.push({ where, text });
  }
  addDriver(d: DriverProcess, name: string): void {
    this.texts.push({ where: `${name} log`, text: d.logs.join('\n') });
  }
}
