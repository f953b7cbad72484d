// The recovery planner: PURE. From what the cluster wants (desiredState) and what the node has
// (NodeFacts: mount states, vol_data.json files, the mounter's records) decide, per volume and target:
//   healthy           -> nothing (or adopt: a healthy s3fs nobody supervises yet)
//   stale / hung      -> repair (new s3fs on a fresh backing dir, bind stacked over the staging path)
//   missing, pod runs -> mount / publish
//   orphan (pod gone) -> clean up, but only dead mounts and only when the cluster view is complete
// Healthy mounts are never touched. Everything here is plain data in, plain data out.
import type { PathState } from '../mount/health.js';
import type { DesiredState, DesiredTarget, DesiredVolume, Skip } from './cluster.js';

export interface VolData {
  volumeHandle?: string;
  driverName?: string;
}

export interface PathFact {
  path: string;
  state: PathState;
  message: string;
  /** Mounts stacked on the path (0 = nothing mounted). */
  layers: number;
}

/** What the mounter recorded when it staged the volume (its options win on repair: same fingerprint). */
export interface StageRecordFact {
  volumeId: string;
  readonly: boolean;
  mountGroup?: string;
}

export interface StagingFact extends PathFact {
  volData?: VolData;
  record?: StageRecordFact;
  /** The running driver already supervises a live s3fs for it. */
  supervised: boolean;
}

export interface TargetFact extends PathFact {
  podUid: string;
  volumeName: string;
  volData?: VolData;
}

export interface NodeFacts {
  stagings: StagingFact[];
  targets: TargetFact[];
}

export type StageAction = 'none' | 'adopt' | 'mount' | 'repair';
export type TargetAction = 'none' | 'publish' | 'republish';

export interface TargetPlan {
  target: DesiredTarget;
  action: TargetAction;
  state: PathState;
}

export interface VolumePlan {
  volume: DesiredVolume;
  stage: StageAction;
  stagingState: PathState;
  /** Options to stage with: the record's when there is one (a repair must match the original stage). */
  readonly: boolean;
  mountGroup?: string;
  targets: TargetPlan[];
}

export interface OrphanPlan {
  kind: 'unpublish' | 'unstage';
  path: string;
  /** The volume it belongs to when known (vol_data.json / record): the lock to hold. */
  volumeId?: string;
  state: PathState;
  reason: string;
}

export interface Plan {
  /** Volumes with work to do (stage != none or some target action != none). */
  volumes: VolumePlan[];
  /** Volumes found fully healthy and supervised: left alone. */
  healthy: string[];
  orphans: OrphanPlan[];
  skipped: Skip[];
}

const DEAD: ReadonlySet<PathState> = new Set(['stale', 'hung']);
const ABSENT: ReadonlySet<PathState> = new Set(['not-mounted', 'missing']);

const absentFact = (path: string): PathFact => ({ path, state: 'missing', message: `${path} does not exist`, layers: 0 });

export function plan(desired: DesiredState, facts: NodeFacts): Plan {
  const stagings = new Map(facts.stagings.map((f) => [f.path, f]));
  const targets = new Map(facts.targets.map((f) => [f.path, f]));
  const skipped: Skip[] = [...desired.skipped];
  const volumes: VolumePlan[] = [];
  const healthy: string[] = [];

  for (const vol of desired.volumes) {
    const subject = `volume ${vol.volumeHandle} (pv ${vol.pvName})`;
    const sf: StagingFact = stagings.get(vol.stagingPath) ?? { ...absentFact(vol.stagingPath), supervised: false };
    if (sf.volData?.volumeHandle && sf.volData.volumeHandle !== vol.volumeHandle) {
      skipped.push({ subject, reason: `${sf.path}/../vol_data.json names volume ${sf.volData.volumeHandle}`, warn: true });
      continue;
    }
    if (sf.record && sf.record.volumeId !== vol.volumeHandle) {
      skipped.push({ subject, reason: `staging path is recorded for volume ${sf.record.volumeId}`, warn: true });
      continue;
    }

    const targetPlans: TargetPlan[] = [];
    for (const t of vol.targets) {
      const tf = targets.get(t.path);
      if (tf?.volData?.volumeHandle && tf.volData.volumeHandle !== vol.volumeHandle) {
        skipped.push({ subject: `target ${t.path}`, reason: `vol_data.json names volume ${tf.volData.volumeHandle}, the API says ${vol.volumeHandle}`, warn: true });
        continue;
      }
      const state = tf?.state ?? 'missing';
      // Only a target kubelet holds set up (its vol_data.json written, or something mounted there) is
      // recovery's to publish. Kubelet writes vol_data.json before NodePublishVolume and removes it
      // after NodeUnpublishVolume, and it survives a reboot on disk; the pod's phase in the API does
      // not say this: a Running pod being deleted may have just been unpublished by kubelet, and
      // publishing it again would leave a mount kubelet no longer knows (its NodeUnstageVolume then
      // fails for good with "still mounted by other references").
      const expected = tf?.volData !== undefined || (tf?.layers ?? 0) > 0;
      let action: TargetAction = 'none';
      if (!expected) {
        skipped.push({ subject: `target ${t.path}`, reason: `pod ${t.podNamespace}/${t.podName} not set up by kubelet (not yet, or no longer)`, warn: false });
        continue;
      }
      if (DEAD.has(state) || state === 'error') action = 'republish';
      else if (ABSENT.has(state)) action = 'publish';
      targetPlans.push({ target: t, action, state });
    }

    let stage: StageAction = 'none';
    if (sf.state === 'healthy') stage = sf.supervised ? 'none' : 'adopt';
    else if (DEAD.has(sf.state) || sf.state === 'error') stage = 'repair';
    else if (targetPlans.length > 0) stage = 'mount';
    else {
      skipped.push({ subject, reason: 'not staged and no pod of this node has it set up yet', warn: false });
      continue;
    }

    const vp: VolumePlan = {
      volume: vol,
      stage,
      stagingState: sf.state,
      readonly: sf.record ? sf.record.readonly : vol.readonly,
      mountGroup: sf.record ? sf.record.mountGroup : vol.mountGroup,
      targets: targetPlans,
    };
    if (stage === 'none' && targetPlans.every((t) => t.action === 'none')) healthy.push(vol.volumeHandle);
    else volumes.push(vp);
  }

  const orphans: OrphanPlan[] = [];
  if (!desired.complete) {
    skipped.push({ subject: 'orphan clean-up', reason: 'the cluster view is incomplete (some reads failed): nothing is treated as an orphan', warn: true });
    return { volumes, healthy, orphans, skipped };
  }

  // Targets of pods the API no longer lists.
  for (const tf of facts.targets) {
    if (desired.knownPodUids.has(tf.podUid)) continue;
    if (DEAD.has(tf.state) || (tf.state === 'error' && tf.layers > 0)) {
      orphans.push({ kind: 'unpublish', path: tf.path, volumeId: tf.volData?.volumeHandle, state: tf.state, reason: `pod ${tf.podUid} no longer exists` });
    } else if (tf.state === 'healthy') {
      skipped.push({ subject: `target ${tf.path}`, reason: `pod ${tf.podUid} no longer exists; the mount is healthy, left for kubelet's NodeUnpublishVolume`, warn: false });
    }
  }

  // Staging paths no desired volume maps to and no remaining pod's target refers to.
  const desiredStagings = new Set(desired.volumes.map((v) => v.stagingPath));
  const handlesInUse = new Set<string>();
  for (const tf of facts.targets) {
    if (desired.knownPodUids.has(tf.podUid) && tf.volData?.volumeHandle) handlesInUse.add(tf.volData.volumeHandle);
  }
  for (const sf of facts.stagings) {
    if (desiredStagings.has(sf.path)) continue;
    const handle = sf.volData?.volumeHandle ?? sf.record?.volumeId;
    if (handle && handlesInUse.has(handle)) {
      skipped.push({ subject: `staging ${sf.path}`, reason: `volume ${handle} is still used by a pod of this node whose claim could not be resolved`, warn: true });
      continue;
    }
    if (DEAD.has(sf.state) || (sf.state === 'error' && sf.layers > 0)) {
      orphans.push({ kind: 'unstage', path: sf.path, volumeId: handle, state: sf.state, reason: `no pod of this node uses volume ${handle ?? '(unknown)'} any more` });
    } else if (sf.state === 'healthy') {
      skipped.push({ subject: `staging ${sf.path}`, reason: 'no pod uses it; the mount is healthy, left for kubelet\'s NodeUnstageVolume', warn: false });
    }
  }
  return { volumes, healthy, orphans, skipped };
}
