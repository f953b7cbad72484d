// Which recovery work an engine event calls for: pure, so the mapping is tested on its own.
//   s3fs exit            -> repair that volume from local state, shortly (its mounts are dead)
//   dead mount           -> repair that volume at once (or a full scan when the staging path is unknown)
//   mounter (re)connected -> a local pass over every staged volume (only dead ones are touched); when
//                           it is a new mounter process every s3fs died with the old one, so a full
//                           scan follows when the API is available (targets, credentials from Secrets)
//   mounter lost         -> nothing: no repair can succeed until it is back (its return triggers one)
import type { EngineEvent } from '../mount/index.js';

export type Trigger = 'startup' | 'interval' | 's3fs-exit' | 'dead-mount' | 'mounter-connected' | 'mounter-restart' | 'manual';

export type Reaction =
  | { kind: 'repair'; stagingPath: string; trigger: Trigger; delayMs: number }
  | { kind: 'scan'; trigger: Trigger }
  | { kind: 'local-pass'; trigger: Trigger; thenScan: boolean }
  | { kind: 'none' };

/** s3fs unmounts its FUSE mount as it dies: give the exit a moment to settle before repairing. */
export const EXIT_REPAIR_DELAY_MS = 100;

export function reactionTo(e: EngineEvent, hasApi: boolean): Reaction {
  switch (e.kind) {
    case 's3fs-exit':
      return { kind: 'repair', stagingPath: e.stagingPath, trigger: 's3fs-exit', delayMs: EXIT_REPAIR_DELAY_MS };
    case 'dead-mount':
      return e.stagingPath ? { kind: 'repair', stagingPath: e.stagingPath, trigger: 'dead-mount', delayMs: 0 } : { kind: 'scan', trigger: 'dead-mount' };
    case 'mounter-connected':
      return e.restarted
        ? { kind: 'local-pass', trigger: 'mounter-restart', thenScan: hasApi }
        : { kind: 'local-pass', trigger: 'mounter-connected', thenScan: false };
    case 'mounter-lost':
      return { kind: 'none' };
  }
}
