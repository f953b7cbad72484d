// Volume metadata kept in S3 beside the data, so the controller holds no local state and any replica
// can answer. One JSON object per volume:
//   bucket per volume:  <bucket>/.s3fs-csi/volume.json
//   prefix per volume:  <bucket>/.s3fs-csi/volumes/<prefix>.json   (outside the volume's prefix, so
//                       it never appears inside a mounted prefix volume)
import type { VolumeLocation } from './volume-id.js';
import { formatVolumeId } from './volume-id.js';

export const META_DIR = '.s3fs-csi/';
export const BUCKET_META_KEY = `${META_DIR}volume.json`;
export const PREFIX_META_DIR = `${META_DIR}volumes/`;

export type ReclaimData = 'delete' | 'retain';

export interface VolumeRecord {
  version: 1;
  /** The CSI name (Kubernetes: the PV name) the volume was created for. */
  name: string;
  volumeId: string;
  capacityBytes: number;
  /** The StorageClass parameters that define the volume (csi.storage.k8s.io/* removed). */
  parameters: Record<string, string>;
  reclaimData: ReclaimData;
  createdAt: string;
  updatedAt: string;
}

export function metadataKey(loc: VolumeLocation): string {
  return loc.prefix ? `${PREFIX_META_DIR}${loc.prefix}.json` : BUCKET_META_KEY;
}

/** The prefix a key under PREFIX_META_DIR describes, or undefined for unrelated keys. */
export function prefixOfMetadataKey(key: string): string | undefined {
  if (!key.startsWith(PREFIX_META_DIR) || !key.endsWith('.json')) return undefined;
  const prefix = key.slice(PREFIX_META_DIR.length, -'.json'.length);
  return prefix || undefined;
}

/** Parses a stored record; undefined when it is not one of ours (never throws on bad JSON). */
export function parseRecord(text: string, loc: VolumeLocation): VolumeRecord | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!raw || typeof raw !== 'object') return undefined;
  const r = raw as Partial<VolumeRecord>;
  if (r.version !== 1 || typeof r.name !== 'string' || typeof r.capacityBytes !== 'number' || !Number.isSafeInteger(r.capacityBytes)) return undefined;
  if (r.volumeId !== formatVolumeId(loc)) return undefined;
  const parameters: Record<string, string> = {};
  if (r.parameters && typeof r.parameters === 'object') {
    for (const [k, v] of Object.entries(r.parameters)) if (typeof v === 'string') parameters[k] = v;
  }
  return {
    version: 1,
    name: r.name,
    volumeId: r.volumeId,
    capacityBytes: r.capacityBytes,
    parameters,
    reclaimData: r.reclaimData === 'retain' ? 'retain' : 'delete',
    createdAt: typeof r.createdAt === 'string' ? r.createdAt : '',
    updatedAt: typeof r.updatedAt === 'string' ? r.updatedAt : '',
  };
}

export function serializeRecord(r: VolumeRecord): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}
