// Recovery outcomes -> Events (pure), and the typed facts the Warning reasons are decided from.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code, CsiError, internal, notFound, permissionDenied, unavailable } from '../../src/errors.js';
import { KubeError, type KubeReader } from '../../src/kube/client.js';
import { desiredState } from '../../src/recovery/cluster.js';
import { type RecoveryOutcome, type VolumeRefs, didRecover, durationText, eventsFor, fixableProblem, refsOf } from '../../src/recovery/outcome-events.js';
import { SecretError, secretsFor } from '../../src/recovery/secret-access.js';
import { DRIVER, KUBELET, NODE, pod, pv, pvc, view } from './recovery-fixtures.js';

const S3_DEFAULTS = { s3: { region: 'us-east-1', pathStyle: true, insecureSkipVerify: false } };

/** Volume A used by pods p1 and p2 (team-a), as discovery + desiredState see it. */
function volumeA(): ReturnType<typeof desiredState>['volumes'][number] {
  const d = desiredState(view({
    pods: [pod('p1', { ns: 'team-a', claims: ['a'] }), pod('p2', { ns: 'team-a', claims: ['a'] })],
    pvcs: [pvc('a', { ns: 'team-a', volume: 'pv-a' })],
    pvs: [pv('pv-a', { handle: 'bucket-a', claim: ['team-a', 'a'], stageRef: ['s3fs-system', 'creds'] })],
  }), { nodeName: NODE, driverName: DRIVER, kubeletDir: KUBELET });
  const v = d.volumes[0];
  assert.ok(v);
  return v;
}

describe('recovery outcome -> Events', () => {
  it('refs: the claim and every pod of this node with uid, apiVersion, kind, namespace, name', () => {
    const refs = refsOf(volumeA());
    assert.deepEqual(refs.claim, { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: 'team-a', name: 'a', uid: 'pvc-uid-a', resourceVersion: undefined });
    assert.deepEqual(refs.pods.map((p) => [p.kind, p.apiVersion, p.namespace, p.name, p.uid]), [['Pod', 'v1', 'team-a', 'p1', 'uid-team-a-p1'], ['Pod', 'v1', 'team-a', 'p2', 'uid-team-a-p2']]);
  });

  it('recovered: Normal VolumeRecovered on each affected pod and on the PVC, naming the PV, the trigger, what was done and how long it took', () => {
    const refs = refsOf(volumeA());
    const o: RecoveryOutcome = { kind: 'recovered', volume: refs, pods: refs.pods, trigger: 'startup', ms: 1234, steps: { stage: 'repaired', targets: 1, propagated: 1, containers: 2 } };
    const events = eventsFor(o);
    assert.deepEqual(events.map((e) => [e.object.kind, e.object.name]), [['Pod', 'p1'], ['Pod', 'p2'], ['PersistentVolumeClaim', 'a']]);
    for (const e of events) {
      assert.deepEqual([e.type, e.reason], ['Normal', 'VolumeRecovered']);
      assert.equal(e.message, 'volume pv-a recovered after driver start in 1.2 s: s3fs restarted, 1 pod mount re-bound, 1 pod mount healed by propagation, 2 containers healed in place');
    }
  });

  it('each trigger has its words; a target-only repair names only its pod', () => {
    const refs = refsOf(volumeA());
    const texts = (['s3fs-exit', 'dead-mount', 'interval', 'mounter-restart'] as const).map((trigger) =>
      eventsFor({ kind: 'recovered', volume: refs, pods: [refs.pods[0]!], trigger, ms: 80, steps: { targets: 1, propagated: 0, containers: 0 } }));
    assert.deepEqual(texts.map((es) => es.length), [2, 2, 2, 2], 'the pod and the claim');
    assert.deepEqual(texts.map((es) => es[0]?.message), [
      'volume pv-a recovered after s3fs exit in 80 ms: 1 pod mount re-bound',
      'volume pv-a recovered after dead mount in 80 ms: 1 pod mount re-bound',
      'volume pv-a recovered after periodic scan in 80 ms: 1 pod mount re-bound',
      'volume pv-a recovered after mounter restart in 80 ms: 1 pod mount re-bound',
    ]);
  });

  it('only what a user would notice counts as recovered (an adopt or an unchanged check does not)', () => {
    assert.equal(didRecover({ targets: 0, propagated: 0, containers: 0 }), false);
    assert.equal(didRecover({ stage: 'mounted', targets: 0, propagated: 0, containers: 0 }), true);
    assert.equal(didRecover({ targets: 0, propagated: 0, containers: 1 }), true);
    assert.deepEqual([durationText(5), durationText(999), durationText(61_000)], ['5 ms', '999 ms', '61.0 s']);
  });

  it('a claim whose uid is unknown gets no Event (involvedObject needs it); the pods still do', () => {
    const refs: VolumeRefs = { ...refsOf(volumeA()), claim: undefined };
    assert.equal(eventsFor({ kind: 'recovered', volume: refs, pods: refs.pods, trigger: 'startup', ms: 1, steps: { stage: 'repaired', targets: 0, propagated: 0, containers: 0 } }).length, 2);
  });

  it('Warnings: reason from the typed error, message says what to fix and whether the volume was repaired anyway', () => {
    const refs = refsOf(volumeA());
    const warn = (err: unknown, repaired = false) => {
      const problem = fixableProblem(err);
      assert.ok(problem, String(err));
      return eventsFor({ kind: 'not-recovered', volume: refs, pods: refs.pods, trigger: 'startup', problem, repaired });
    };
    const missing = warn(new SecretError('missing', 's3fs-system/creds', 'Secret s3fs-system/creds (pv nodeStageSecretRef) of volume bucket-a not found'));
    assert.deepEqual(missing.map((e) => [e.type, e.reason, e.object.name]), [['Warning', 'SecretUnreadable', 'p1'], ['Warning', 'SecretUnreadable', 'p2'], ['Warning', 'SecretUnreadable', 'a']]);
    assert.match(missing[0]?.message ?? '', /^volume pv-a cannot be repaired: its Secret s3fs-system\/creds is missing or unusable \(.*not found\)$/);
    const later = eventsFor({ kind: 'not-recovered', volume: refs, pods: refs.pods, trigger: 'interval', problem: fixableProblem(new SecretError('missing', 's3fs-system/creds', 'Secret s3fs-system/creds (pv nodeStageSecretRef) of volume bucket-a not found'))!, repaired: false });
    assert.equal(later[0]?.message, missing[0]?.message, 'the same problem found by another trigger is the same Event (counted)');
    assert.equal(warn(new SecretError('invalid', 'ns/s', 'no S3 credentials'))[0]?.reason, 'SecretUnreadable');
    const rbac = warn(new SecretError('forbidden', 'ns/s', 'RBAC denies "get secrets" (Secret ns/s): the node plugin\'s ClusterRole needs {apiGroups: [""], resources: ["secrets"], verbs: ["get"]}'));
    assert.equal(rbac[0]?.reason, 'RBACMissing');
    assert.match(rbac[0]?.message ?? '', /resources: \["secrets"\], verbs: \["get"\]/);
    assert.equal(warn(notFound('S3 answered 404 NoSuchBucket for bucket b: the bucket does not exist'))[0]?.reason, 'BucketMissing');
    assert.equal(warn(permissionDenied('S3 answered 403 AccessDenied for bucket b'))[0]?.reason, 'S3AccessDenied');
    assert.equal(warn(new CsiError(Code.UNAUTHENTICATED, 'S3 rejected the credentials'))[0]?.reason, 'S3AccessDenied');
    assert.match(warn(new SecretError('missing', 'ns/s', 'gone'), true)[0]?.message ?? '', /^volume pv-a was repaired with the credentials s3fs already had, but its Secret ns\/s/);
  });

  it('what the user cannot fix (S3 or API unreachable, s3fs failing) is no Warning; text is never parsed', () => {
    assert.equal(fixableProblem(unavailable('S3 did not answer')), undefined);
    assert.equal(fixableProblem(internal('s3fs exited: NoSuchBucket AccessDenied')), undefined);
    assert.equal(fixableProblem(new SecretError('unavailable', 'ns/s', 'API server unreachable')), undefined);
    assert.equal(fixableProblem(new Error('NoSuchBucket: 404 not found, Secret missing, 403 forbidden')), undefined);
    assert.equal(fixableProblem('AccessDenied'), undefined);
  });
});

describe('secretsFor: why a Secret cannot be used, as a typed fact', () => {
  const vol = volumeA();
  const reader = (get: KubeReader['getSecretData']): KubeReader => ({
    listPodsOnNode: async () => [], getPvc: async () => undefined, getPv: async () => undefined, getStorageClass: async () => undefined, getSecretData: get, calls: 0,
  });
  const problemOf = async (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: unknown) => (e instanceof SecretError ? `${e.problem} ${e.secret}` : `other ${String(e)}`));

  it('missing, forbidden, unreachable, no API, unusable contents, fine', async () => {
    assert.equal(await problemOf(secretsFor(vol, reader(async () => undefined), S3_DEFAULTS)), 'missing s3fs-system/creds');
    assert.equal(await problemOf(secretsFor(vol, reader(async () => { throw new KubeError('forbidden', 'RBAC denies "get secrets"', 403); }), S3_DEFAULTS)), 'forbidden s3fs-system/creds');
    assert.equal(await problemOf(secretsFor(vol, reader(async () => { throw new KubeError('unreachable', 'down'); }), S3_DEFAULTS)), 'unavailable s3fs-system/creds');
    assert.equal(await problemOf(secretsFor(vol, undefined, S3_DEFAULTS)), 'unavailable s3fs-system/creds');
    assert.equal(await problemOf(secretsFor(vol, reader(async () => ({ accessKeyID: 'AKIAEXAMPLE' })), S3_DEFAULTS)), 'invalid s3fs-system/creds');
    assert.equal(await problemOf(secretsFor(vol, reader(async () => ({ accessKeyID: 'AKIAEXAMPLE', secretAccessKey: 'has space' })), S3_DEFAULTS)), 'invalid s3fs-system/creds');
    assert.equal(await problemOf(secretsFor(vol, reader(async () => ({ accessKeyID: 'AKIAEXAMPLE', secretAccessKey: 'SECRETVALUE1' })), S3_DEFAULTS)), 'ok');
  });

  it('an unusable Secret\'s message never echoes its values', async () => {
    const err = await secretsFor(vol, reader(async () => ({ accessKeyID: 'AKIA:COLON', secretAccessKey: 'SECRETVALUE1' })), S3_DEFAULTS).catch((e: unknown) => e);
    assert.ok(err instanceof SecretError);
    assert.ok(!err.message.includes('AKIA:COLON') && !err.message.includes('SECRETVALUE1'), err.message);
  });
});
