// What recovery tells the people who look at Pods and PVCs: PURE. A recovery outcome (typed, from
// the executor or a local repair) -> the Events to record, one per affected Pod and one on the PVC.
//   recovered     -> Normal VolumeRecovered: the volume (PV), the trigger, what was done, how long
//   not-recovered -> Warning with a reason the user can act on, decided from typed errors:
//                    SecretError (missing/invalid -> SecretUnreadable, forbidden -> RBACMissing),
//                    CsiError codes of the mount engine's S3 check (NOT_FOUND -> BucketMissing,
//                    PERMISSION_DENIED / UNAUTHENTICATED -> S3AccessDenied)
// Anything else (S3 unreachable, API down, s3fs crashing) fixes itself or is not the user's to fix:
// it stays in logs and metrics.
import { Code, CsiError } from '../errors.js';
import type { EventIntent, ObjectRef } from '../kube/event-aggregation.js';
import type { DesiredVolume } from './cluster.js';
import { SecretError } from './secret-access.js';
import type { Trigger } from './triggers.js';

/** The objects a volume's Events go to: its claim and the pods of this node that use it. */
export interface VolumeRefs {
  volumeHandle: string;
  pvName: string;
  claim?: ObjectRef;
  pods: ObjectRef[];
}

export interface RecoverySteps {
  /** s3fs started again on the staging path ('repair') or the staging path mounted afresh ('mount'). */
  stage?: 'repaired' | 'mounted';
  /** Pod targets bound again (republish, publish, local re-bind). */
  targets: number;
  /** Pod targets found healthy again after the staging repair (mount propagation). */
  propagated: number;
  /** Containers whose private copy of the dead mount was replaced in place. */
  containers: number;
}

export type Fixable =
  | { kind: 'secret-unreadable'; secret: string; detail: string }
  | { kind: 'rbac-missing'; detail: string }
  | { kind: 'bucket-missing'; detail: string }
  | { kind: 's3-access-denied'; detail: string };

export type RecoveryOutcome =
  | { kind: 'recovered'; volume: VolumeRefs; pods: ObjectRef[]; trigger: Trigger; ms: number; steps: RecoverySteps }
  /** `repaired`: the repair went on without the fix (e.g. with the credentials s3fs already had). */
  | { kind: 'not-recovered'; volume: VolumeRefs; pods: ObjectRef[]; trigger: Trigger; problem: Fixable; repaired: boolean };

const DETAIL_MAX = 400;

/** The user-fixable problem behind a failure, or undefined. Typed facts only, never message text. */
export function fixableProblem(err: unknown): Fixable | undefined {
  const detail = err instanceof Error ? err.message.slice(0, DETAIL_MAX) : '';
  if (err instanceof SecretError) {
    if (err.problem === 'missing' || err.problem === 'invalid') return { kind: 'secret-unreadable', secret: err.secret, detail };
    if (err.problem === 'forbidden') return { kind: 'rbac-missing', detail };
    return undefined;
  }
  if (err instanceof CsiError) {
    if (err.code === Code.NOT_FOUND) return { kind: 'bucket-missing', detail };
    if (err.code === Code.PERMISSION_DENIED || err.code === Code.UNAUTHENTICATED) return { kind: 's3-access-denied', detail };
  }
  return undefined;
}

export const TRIGGER_TEXT: Record<Trigger, string> = {
  startup: 'driver start',
  interval: 'periodic scan',
  's3fs-exit': 's3fs exit',
  'dead-mount': 'dead mount',
  'mounter-connected': 'mounter reconnect',
  'mounter-restart': 'mounter restart',
  manual: 'manual request',
};

export function refsOf(vol: DesiredVolume): VolumeRefs {
  return {
    volumeHandle: vol.volumeHandle,
    pvName: vol.pvName,
    claim: vol.claim.uid
      ? { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: vol.claim.namespace, name: vol.claim.name, uid: vol.claim.uid, resourceVersion: vol.claim.resourceVersion }
      : undefined,
    pods: podRefs(vol.targets),
  };
}

export function podRefs(targets: DesiredVolume['targets']): ObjectRef[] {
  const seen = new Map<string, ObjectRef>();
  for (const t of targets) {
    seen.set(t.podUid, { kind: 'Pod', apiVersion: 'v1', namespace: t.podNamespace, name: t.podName, uid: t.podUid, resourceVersion: t.podResourceVersion });
  }
  return [...seen.values()];
}

/** "1.2 s" / "340 ms" */
export function durationText(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

export function stepsText(s: RecoverySteps): string {
  const parts: string[] = [];
  if (s.stage === 'repaired') parts.push('s3fs restarted');
  if (s.stage === 'mounted') parts.push('staging mount rebuilt');
  if (s.targets > 0) parts.push(`${plural(s.targets, 'pod mount', 'pod mounts')} re-bound`);
  if (s.propagated > 0) parts.push(`${plural(s.propagated, 'pod mount', 'pod mounts')} healed by propagation`);
  if (s.containers > 0) parts.push(`${plural(s.containers, 'container', 'containers')} healed in place`);
  return parts.join(', ');
}

/** Whether anything the user would notice was repaired (an adopt or an unchanged check is not). */
export const didRecover = (s: RecoverySteps): boolean => s.stage !== undefined || s.targets + s.propagated + s.containers > 0;

function problemText(p: Fixable, pv: string, repaired: boolean): string {
  const lead = repaired ? `volume ${pv} was repaired with the credentials s3fs already had, but` : `volume ${pv} cannot be repaired:`;
  switch (p.kind) {
    case 'secret-unreadable':
      return `${lead} its Secret ${p.secret} is missing or unusable (${p.detail})`;
    case 'rbac-missing':
      return `${lead} the driver's RBAC role is missing a rule (${p.detail})`;
    case 'bucket-missing':
      return `${lead} its bucket does not exist (${p.detail})`;
    case 's3-access-denied':
      return `${lead} S3 refuses the volume's credentials (${p.detail})`;
  }
}

const REASON = {
  'secret-unreadable': 'SecretUnreadable',
  'rbac-missing': 'RBACMissing',
  'bucket-missing': 'BucketMissing',
  's3-access-denied': 'S3AccessDenied',
} as const satisfies Record<Fixable['kind'], string>;

/** One Event per affected pod and one on the claim (when its uid is known). */
export function eventsFor(o: RecoveryOutcome): EventIntent[] {
  const objects = [...o.pods, ...(o.volume.claim ? [o.volume.claim] : [])];
  if (o.kind === 'recovered') {
    const message = `volume ${o.volume.pvName} recovered after ${TRIGGER_TEXT[o.trigger]} in ${durationText(o.ms)}: ${stepsText(o.steps)}`;
    return objects.map((object) => ({ object, type: 'Normal', reason: 'VolumeRecovered', message }));
  }
  // No trigger in a Warning: the same problem found again by another scan is the same Event, counted.
  const message = problemText(o.problem, o.volume.pvName, o.repaired);
  return objects.map((object) => ({ object, type: 'Warning', reason: REASON[o.problem.kind], message }));
}
