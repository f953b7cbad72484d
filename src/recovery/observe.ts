// Observation: what this node has, as plain facts for the planner. Reads the mount table once, lists
// the driver's staging directories and the pods' CSI volume directories under the kubelet dir (with
// their vol_data.json), and checks the health of every relevant path under a deadline (statfs in
// child processes, many paths per child).
import { readFile, readdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type MountEngine, type MountEntry, type PathHealth, type StagedRecord, layersAt, readMountTable } from '../mount/index.js';
import { isStagingPath, parseTargetPath, stagingRoot } from './kubelet-paths.js';
import type { NodeFacts, StagingFact, TargetFact, VolData } from './planner.js';
import { mapSettled } from './pool.js';

/** The part of the mount engine that observation needs. */
export type MountView = Pick<MountEngine, 'checkPaths' | 'staged' | 'conditionOf'>;

export interface ObserveOptions {
  kubeletDir: string;
  driverName: string;
  /** Paths the cluster wants, checked even when nothing is on disk for them yet. */
  stagingPaths: readonly string[];
  targetPaths: readonly string[];
  parallelism: number;
}

/** kubelet's vol_data.json of a CSI volume directory (a target's parent or a staging dir), if it holds one. */
export async function readVolData(dir: string): Promise<VolData | undefined> {
  try {
    const j = JSON.parse(await readFile(`${dir}/vol_data.json`, 'utf8')) as Record<string, unknown>;
    return {
      volumeHandle: typeof j.volumeHandle === 'string' ? j.volumeHandle : undefined,
      driverName: typeof j.driverName === 'string' ? j.driverName : undefined,
    };
  } catch {
    return undefined;
  }
}

const list = (dir: string): Promise<string[]> => readdir(dir).catch(() => [] as string[]);

/** Every staging path of this driver on disk or in the mount table. */
async function stagingPathsOnDisk(o: ObserveOptions, table: readonly MountEntry[], records: readonly StagedRecord[]): Promise<string[]> {
  const root = stagingRoot(o.kubeletDir, o.driverName);
  const out = new Set<string>();
  for (const name of await list(root)) if (/^[0-9a-f]{64}$/.test(name)) out.add(`${root}/${name}/globalmount`);
  for (const m of table) if (isStagingPath(o.kubeletDir, o.driverName, m.mountPoint)) out.add(m.mountPoint);
  for (const r of records) if (isStagingPath(o.kubeletDir, o.driverName, r.stagingPath)) out.add(r.stagingPath);
  return [...out];
}

/** Every publish target of this driver: CSI volume dirs whose vol_data.json names us, or s3fs mounts there. */
async function targetPathsOnDisk(o: ObserveOptions, table: readonly MountEntry[]): Promise<Map<string, VolData | undefined>> {
  const out = new Map<string, VolData | undefined>();
  const pods = `${o.kubeletDir}/pods`;
  for (const uid of await list(pods)) {
    const csiDir = `${pods}/${uid}/volumes/kubernetes.io~csi`;
    for (const vol of await list(csiDir)) {
      const vd = await readVolData(`${csiDir}/${vol}`);
      if (vd?.driverName === o.driverName) out.set(`${csiDir}/${vol}/mount`, vd);
    }
  }
  for (const m of table) {
    if (m.fsType === 'fuse.s3fs' && parseTargetPath(o.kubeletDir, m.mountPoint) && !out.has(m.mountPoint)) out.set(m.mountPoint, undefined);
  }
  return out;
}

export async function observeNode(mounts: MountView, o: ObserveOptions): Promise<NodeFacts> {
  const table = await readMountTable();
  const records = await mounts.staged();
  const recordByPath = new Map(records.map((r) => [r.stagingPath, r]));

  const stagingSet = new Set([...o.stagingPaths, ...(await stagingPathsOnDisk(o, table, records))]);
  const targetData = await targetPathsOnDisk(o, table);
  for (const p of o.targetPaths) if (!targetData.has(p)) targetData.set(p, await readVolData(dirname(p)));

  const stagingList = [...stagingSet];
  const targetList = [...targetData];
  // Every path's health at once: one statfs child per batch instead of one per path.
  const healthOf = await mounts.checkPaths([...stagingList, ...targetList.map(([p]) => p)], table);
  const checked = (path: string): PathHealth => healthOf.get(path) ?? { state: 'error', message: `${path} was not checked` };
  const stagingResults = await mapSettled(stagingList, o.parallelism, async (path): Promise<StagingFact> => {
    const health = checked(path);
    const rec = recordByPath.get(path);
    return {
      path,
      state: health.state,
      message: health.message,
      layers: layersAt(table, path).length,
      volData: await readVolData(dirname(path)),
      record: rec ? { volumeId: rec.volumeId, readonly: rec.readonly, mountGroup: rec.mountGroup } : undefined,
      supervised: (await mounts.conditionOf(path))?.abnormal === false,
    };
  });
  const targetResults = await mapSettled(targetList, o.parallelism, async ([path, volData]): Promise<TargetFact | undefined> => {
    const ref = parseTargetPath(o.kubeletDir, path);
    if (!ref) return undefined;
    const health = checked(path);
    return { path, state: health.state, message: health.message, layers: layersAt(table, path).length, podUid: ref.podUid, volumeName: ref.volumeName, volData };
  });

  const stagings: StagingFact[] = [];
  stagingResults.forEach((r, i) => {
    if (r.status === 'fulfilled') stagings.push(r.value);
    else stagings.push({ path: stagingList[i] ?? '', state: 'error', message: String((r.reason as Error)?.message ?? r.reason), layers: 0, supervised: false });
  });
  const targets: TargetFact[] = [];
  for (const r of targetResults) if (r.status === 'fulfilled' && r.value) targets.push(r.value);
  return { stagings, targets };
}
