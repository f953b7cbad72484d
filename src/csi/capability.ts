// Which volume capabilities an s3fs volume can serve. One check for the Controller (CreateVolume,
// ValidateVolumeCapabilities, ControllerExpandVolume) and the Node (stage, publish).
import { invalidArgument } from '../errors.js';
import type { VolumeCapability } from './messages.js';

const FS_TYPES = new Set(['', 'fuse', 'fuse.s3fs', 's3fs']);

/** Why this driver cannot serve a capability, or undefined when it can. */
export function capabilityProblem(cap: VolumeCapability | null | undefined): string | undefined {
  if (!cap) return 'empty volume capability';
  if (cap.block || cap.access_type === 'block') return 'block volumes are not supported (S3 is mounted as a filesystem)';
  if (!cap.mount && cap.access_type !== 'mount') return 'volume capability has no access type (mount is required)';
  const fsType = cap.mount?.fs_type ?? '';
  if (!FS_TYPES.has(fsType)) return `filesystem type "${fsType.slice(0, 40)}" is not supported (leave it empty or use "fuse")`;
  const mode = cap.access_mode?.mode;
  if (!mode || mode === 'UNKNOWN') return 'volume capability has no access mode';
  return undefined;
}

/** INVALID_ARGUMENT for a request whose capabilities are missing or unsupported. */
export function requireCapabilities(caps: VolumeCapability[] | undefined): void {
  if (!caps || caps.length === 0) throw invalidArgument('volume_capabilities are required');
  for (const cap of caps) {
    const problem = capabilityProblem(cap);
    if (problem) throw invalidArgument(problem);
  }
}

