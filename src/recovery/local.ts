// Recovery from what is on this node alone, with no API call: the mounter's record of a staged volume
// (<state-dir>/volumes/<key>.json: bucket, prefix, endpoint, options — no secrets) plus the volume's
// passwd file (<runtime-dir>/<key>.passwd), both read through the mount engine (in this process or
// in the separate mounter), give back exactly the StageSpec it was staged with. Used
// when an s3fs process dies while the driver runs, when NodeGetVolumeStats or a check finds a dead
// mount, and at start-up while the API server is unreachable. Credentials read here are those s3fs
// already used; the API path (executor.ts) rewrites them from the current Secret.
import type { Config } from '../config.js';
import { errorMessage } from '../errors.js';
import { type MountEngine, type MountEntry, type PathHealth, type RecordedCredentials, type StageResult, type StageSpec, type StagedRecord, isReadOnly, layersAt, readMountTable } from '../mount/index.js';
import { parseTargetPath } from './kubelet-paths.js';

export class LocalRecoveryError extends Error {}

/** The StageSpec a volume was staged with, from its record and passwd file. */
export async function localSpec(rec: StagedRecord, cfg: Pick<Config, 's3'>, engine: Pick<MountEngine, 'recordedCredentials'>): Promise<StageSpec> {
  let credentials: RecordedCredentials;
  try {
    credentials = await engine.recordedCredentials(rec.stagingPath);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? errorMessage(err);
    throw new LocalRecoveryError(`no usable passwd file for volume ${rec.volumeId} (${why}): credentials must come from the API`);
  }
  return {
    volumeId: rec.volumeId,
    stagingPath: rec.stagingPath,
    bucket: rec.bucket,
    prefix: rec.prefix,
    endpoint: rec.endpoint,
    region: rec.region,
    pathStyle: cfg.s3.pathStyle,
    insecureSkipVerify: cfg.s3.insecureSkipVerify,
    credentials,
    userOptions: [...rec.userOptions],
    readonly: rec.readonly,
    mountGroup: rec.mountGroup,
  };
}

export interface LocalRepair {
  stage: StageResult;
  targets: RebindResult[];
  /** Binds that showed a former device of the volume but answer statfs: left alone (reallyStale). */
  live: string[];
}

export interface RebindResult {
  path: string;
  result: 'repaired' | 'unchanged' | 'error';
  message?: string;
}

/**
 * Targets still showing one of `oldDevices` (the dead s3fs layers of `stagingPath`) on top, found in
 * the mount table: binds whose mount did not receive the repair by propagation (a private kubelet
 * dir). Only kubelet publish targets and paths under the allowed roots are considered.
 */
export function staleBinds(table: readonly MountEntry[], stagingPath: string, oldDevices: ReadonlySet<string>, cfg: Pick<Config, 'kubeletDir' | 'allowedRoots' | 'stateDir'>): Array<{ path: string; readonly: boolean }> {
  const out: Array<{ path: string; readonly: boolean }> = [];
  const seen = new Set<string>();
  const allowed = (p: string): boolean => parseTargetPath(cfg.kubeletDir, p) !== undefined || cfg.allowedRoots.some((r) => r !== cfg.kubeletDir && p.startsWith(`${r}/`));
  for (const m of table) {
    if (seen.has(m.mountPoint) || m.mountPoint === stagingPath || m.mountPoint.startsWith(`${cfg.stateDir}/`)) continue;
    if (!oldDevices.has(m.device) || !allowed(m.mountPoint)) continue;
    seen.add(m.mountPoint);
    const top = layersAt(table, m.mountPoint).at(-1);
    if (top && oldDevices.has(top.device)) out.push({ path: m.mountPoint, readonly: isReadOnly(top) });
  }
  return out;
}

/**
 * The `candidates` (staleBinds) that really are dead, as statfs through each says: a mount that
 * answers is live and left alone. A device number is no identity. The repair takes the dead layers
 * above the bottom one off the staging path (and, by propagation, off its targets); once no mount
 * holds a dead s3fs's superblock the kernel gives its number to the next FUSE mount, which can be
 * another volume's s3fs, started by a repair running at the same time (a local pass repairs many
 * volumes at once). That volume's targets then show "a dead device of this volume" on top, and
 * re-binding them would put this volume into another volume's pods.
 */
export async function reallyStale<T extends { path: string }>(candidates: readonly T[], check: (paths: readonly string[]) => Promise<ReadonlyMap<string, PathHealth>>): Promise<T[]> {
  if (candidates.length === 0) return [];
  const health = await check(candidates.map((c) => c.path));
  return candidates.filter((c) => {
    const state = health.get(c.path)?.state;
    return state !== 'healthy' && state !== 'not-mounted' && state !== 'missing';
  });
}

/**
 * Repairs one staged volume from local state under its volume lock: ensureStaged with the recorded
 * spec (repair, adopt or unchanged), then re-binds every target that still shows a dead layer and
 * does not answer statfs (reallyStale).
 */
export async function repairLocally(mounter: MountEngine, cfg: Config, stagingPath: string, signal?: AbortSignal): Promise<LocalRepair> {
  const rec = await mounter.recordOf(stagingPath);
  if (!rec) throw new LocalRecoveryError(`no record of a volume staged at ${stagingPath}`);
  const spec = await localSpec(rec, cfg, mounter);
  return mounter.withVolumeLock(rec.volumeId, async () => {
    const before = new Set(layersAt(await readMountTable(), stagingPath).map((m) => m.device));
    const stage = await mounter.ensureStaged(spec, signal);
    const targets: RebindResult[] = [];
    if (stage !== 'repaired') return { stage, targets, live: [] };
    const table = await readMountTable();
    const now = layersAt(table, stagingPath).at(-1)?.device;
    if (now) before.delete(now);
    const candidates = staleBinds(table, stagingPath, before, cfg);
    const dead = await reallyStale(candidates, (paths) => mounter.checkPaths(paths, table));
    const live = candidates.filter((c) => !dead.includes(c)).map((c) => c.path);
    for (const t of dead) {
      try {
        targets.push({ path: t.path, result: await mounter.ensurePublished(t.path, stagingPath, t.readonly, rec.volumeId) === 'unchanged' ? 'unchanged' : 'repaired' });
      } catch (err) {
        targets.push({ path: t.path, result: 'error', message: (err as Error).message });
      }
    }
    return { stage, targets, live };
  });
}
