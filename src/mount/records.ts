// On-disk facts about staged volumes, so every node operation works after a driver restart from the
// mount table plus these files: `<state-dir>/volumes/<key>.json` (never secrets) and the backing
// directories `<state-dir>/backing/<key>-<n>`.
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface StagedRecord {
  volumeId: string;
  stagingPath: string;
  key: string;
  bucket: string;
  prefix: string;
  endpoint?: string;
  region: string;
  userOptions: string[];
  readonly: boolean;
  mountGroup?: string;
  /** Compatibility fingerprint (see stageFingerprint). */
  fingerprint: string;
  /** The backing directory of the s3fs currently bound on the staging path. */
  backingDir: string;
  /** Devices ("major:minor") of every s3fs that served this staging path, newest last (bounded): a
   *  target still showing one of them is ours, even after the staging path dropped that layer. */
  devices?: string[];
  stagedAt: string;
}

export const volumesDir = (stateDir: string): string => join(stateDir, 'volumes');
export const backingRoot = (stateDir: string): string => join(stateDir, 'backing');
/** Where the publish source of a staging path lives: a slave bind of it (see Mounter.ensurePublished). */
export const viewPath = (stateDir: string, key: string): string => join(stateDir, 'views', key);

export async function readRecord(stateDir: string, key: string): Promise<StagedRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(volumesDir(stateDir), `${key}.json`), 'utf8')) as StagedRecord;
  } catch {
    return undefined;
  }
}

export async function writeRecord(stateDir: string, rec: StagedRecord): Promise<void> {
  const dir = volumesDir(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${rec.key}.json`);
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, `${JSON.stringify(rec, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

export async function removeRecord(stateDir: string, key: string): Promise<void> {
  await rm(join(volumesDir(stateDir), `${key}.json`), { force: true });
}

export async function listRecords(stateDir: string): Promise<StagedRecord[]> {
  const names = await readdir(volumesDir(stateDir)).catch(() => [] as string[]);
  const out: StagedRecord[] = [];
  for (const n of names) {
    if (!/^[0-9a-f]{16}\.json$/.test(n)) continue;
    const rec = await readRecord(stateDir, n.slice(0, 16));
    if (rec) out.push(rec);
  }
  return out;
}

/** Backing directories of one staging key, oldest first. */
export async function backingDirsOf(stateDir: string, key: string): Promise<{ dir: string; n: number }[]> {
  const root = backingRoot(stateDir);
  const names = await readdir(root).catch(() => [] as string[]);
  return names
    .map((name) => ({ name, m: new RegExp(`^${key}-(\\d+)$`).exec(name) }))
    .filter((x): x is { name: string; m: RegExpExecArray } => x.m !== null)
    .map((x) => ({ dir: join(root, x.name), n: Number(x.m[1]) }))
    .sort((a, b) => a.n - b.n);
}
