// The one reader of the kernel's mount table in the project (/proc/self/mountinfo). A mount table
// entry says nothing about health: a dead FUSE mount stays listed (see health.ts for that).
import { readFile } from 'node:fs/promises';
import { SharedRead } from './shared-read.js';

export interface MountEntry {
  id: number;
  parentId: number;
  /** "major:minor" of the filesystem; bind mounts of one s3fs share it. */
  device: string;
  /** Path inside the filesystem that is mounted here ("/" for a whole filesystem). */
  root: string;
  mountPoint: string;
  options: string[];
  /** Propagation tags: "shared:N" (a peer group), "master:N" (a slave of one), "unbindable". */
  optionalFields: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 3) continue;
    out.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      device: fields[2] ?? '',
      root: unescape(fields[3] ?? ''),
      mountPoint: unescape(fields[4] ?? ''),
      options: (fields[5] ?? '').split(','),
      optionalFields: fields.slice(6, sep),
      fsType: fields[sep + 1] ?? '',
      source: unescape(fields[sep + 2] ?? ''),
      superOptions: (fields[sep + 3] ?? '').split(','),
    });
  }
  return out;
}

const OWN_TABLE = '/proc/self/mountinfo';
/** This process's mount table, read at most once per wave of concurrent callers (shared-read.ts). */
export const ownMountTable = new SharedRead<readonly MountEntry[]>(async () => parseMountInfo(await readFile(OWN_TABLE, 'utf8')));

/**
 * The mount table as it is now (read after the call). Concurrent callers of this process's table
 * share one read: the result is shared, hence readonly.
 */
export async function readMountTable(file = OWN_TABLE): Promise<readonly MountEntry[]> {
  if (file === OWN_TABLE) return ownMountTable.get();
  return parseMountInfo(await readFile(file, 'utf8'));
}

/**
 * Every mount on `path`, bottom -> top. Mounts stacked on the same path form a parent chain
 * (each layer's parent is the layer below), which orders them; the kernel lists them in mount order.
 */
export function layersAt(table: readonly MountEntry[], path: string): MountEntry[] {
  const here = table.filter((m) => m.mountPoint === path);
  if (here.length <= 1) return here;
  const ids = new Set(here.map((m) => m.id));
  const byParent = new Map(here.map((m) => [m.parentId, m]));
  let cur = here.find((m) => !ids.has(m.parentId));
  const ordered: MountEntry[] = [];
  while (cur && ordered.length < here.length) {
    ordered.push(cur);
    cur = byParent.get(cur.id);
  }
  // Fall back to table order for anything the chain did not reach (should not happen).
  for (const m of here) if (!ordered.includes(m)) ordered.push(m);
  return ordered;
}

export function topAt(table: readonly MountEntry[], path: string): MountEntry | undefined {
  const layers = layersAt(table, path);
  return layers[layers.length - 1];
}

export function mountsUnder(table: readonly MountEntry[], dir: string): MountEntry[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return table.filter((m) => m.mountPoint === dir || m.mountPoint.startsWith(prefix));
}

export const isReadOnly = (m: MountEntry): boolean => m.options.includes('ro');
export const isS3fs = (m: MountEntry): boolean => m.fsType === 'fuse.s3fs';
/** In a peer group: mount events on it propagate to (and from) its peers. */
export const isShared = (m: MountEntry): boolean => m.optionalFields.some((f) => f.startsWith('shared:'));
