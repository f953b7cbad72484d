// The seam between the CSI node service / recovery and whatever runs s3fs and makes the mounts.
// Two implementations: the in-process Mounter (mounter.ts: tests, --mode all, a node plugin without
// a mounter) and RemoteMounter (src/mounter/client.ts: a node plugin whose s3fs live in the separate,
// long-lived mounter process). The node service and recovery depend on this interface only.
import type { PathHealth } from './health.js';
import type { MountEntry } from './mountinfo.js';
import type { StagedRecord } from './records.js';
import type { Secret } from '../secrets.js';
import type { StageSpec } from './spec.js';
import type { PublishResult, StageResult } from './mounter.js';

export type { PublishResult, StageResult };

export interface VolumeCondition {
  abnormal: boolean;
  message: string;
}

export interface RecordedCredentials {
  accessKeyId: Secret;
  secretAccessKey: Secret;
}

/** Everything that happens to mounts, as one typed union (no string event names). */
export type EngineEvent =
  /** A supervised s3fs exited while its volume was staged: its mounts are dead. */
  | {
    kind: 's3fs-exit';
    volumeId: string;
    stagingPath: string;
    backingDir: string;
    pid: number;
    code: number | null;
    signal: string | null;
    stderr: string[];
  }
  /** NodeGetVolumeStats (or a check) found a dead mount. */
  | { kind: 'dead-mount'; volumeId: string; path: string; stagingPath?: string }
  /**
   * The remote mounter answered the handshake. `restarted`: it is another process than the one
   * seen before, so every s3fs it had is gone and every staged volume needs a repair.
   */
  | { kind: 'mounter-connected'; instanceId: string; restarted: boolean }
  /** The remote mounter is unreachable or refused (version): nothing can be mounted meanwhile. */
  | { kind: 'mounter-lost'; reason: string };

export type EngineEventKind = EngineEvent['kind'];

/** A typed, synchronous event channel: listeners run in order; a throwing listener does not stop the others. */
export class EventChannel<E extends { kind: string }> {
  readonly #listeners = new Set<(e: E) => void>();

  /** Subscribes; returns the unsubscribe function. */
  on(listener: (e: E) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  emit(event: E): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch {
        // a listener's bug must not break the emitter (s3fs supervision, the event stream)
      }
    }
  }
}

export interface MountEngine {
  readonly events: EventChannel<EngineEvent>;

  /** Serialises operations on one volume in this process (a remote mounter serialises again on its side). */
  withVolumeLock<T>(volumeId: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T>;

  ensureStaged(spec: StageSpec, signal?: AbortSignal): Promise<StageResult>;
  /** `volumeId`: the volume whose lock the caller holds; the remote mounter locks it too. */
  ensurePublished(target: string, staging: string, readonly: boolean, volumeId?: string): Promise<PublishResult>;
  unpublish(target: string, volumeId?: string): Promise<void>;
  unstage(staging: string, volumeId?: string): Promise<void>;

  staged(): Promise<StagedRecord[]>;
  recordOf(stagingPath: string): Promise<StagedRecord | undefined>;
  /** What s3fs supervision knows: abnormal when the volume's s3fs exited; undefined = not supervised. */
  conditionOf(stagingPath: string): Promise<VolumeCondition | undefined>;
  /** The credentials the staged volume's s3fs uses; throws when they are not on the node any more. */
  recordedCredentials(stagingPath: string): Promise<RecordedCredentials>;

  /** Health of a path under the mount-check deadline (runs in the calling process). */
  checkPath(path: string, table?: readonly MountEntry[]): Promise<PathHealth>;
  /** checkPath of many paths at once (one statfs child per batch, not one per path). */
  checkPaths(paths: readonly string[], table?: readonly MountEntry[]): Promise<Map<string, PathHealth>>;
}
