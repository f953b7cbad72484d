// The recovery planner with plain data: cluster objects + node facts in, a plan out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { desiredState } from '../../src/recovery/cluster.js';
import { stagingPathFor, targetPathFor } from '../../src/recovery/kubelet-paths.js';
import { type NodeFacts, type StagingFact, type TargetFact, plan } from '../../src/recovery/planner.js';
import type { PathState } from '../../src/mount/health.js';
import { DRIVER, KUBELET, NODE, pod, pv, pvc, view } from './recovery-fixtures.js';

const opts = { nodeName: NODE, driverName: DRIVER, kubeletDir: KUBELET };
const S = (handle: string): string => stagingPathFor(KUBELET, DRIVER, handle);
const T = (uid: string, pvName: string): string => targetPathFor(KUBELET, uid, pvName);
const layersOf = (state: PathState): number => (state === 'missing' || state === 'not-mounted' ? 0 : 1);

function staging(handle: string, state: PathState, o: Partial<StagingFact> = {}): StagingFact {
  return { path: S(handle), state, message: state, layers: layersOf(state), volData: { volumeHandle: handle, driverName: DRIVER }, record: { volumeId: handle, readonly: false }, supervised: state === 'healthy', ...o };
}
function target(uid: string, pvName: string, handle: string, state: PathState, o: Partial<TargetFact> = {}): TargetFact {
  return { path: T(uid, pvName), state, message: state, layers: layersOf(state), podUid: uid, volumeName: pvName, volData: { volumeHandle: handle, driverName: DRIVER }, ...o };
}

/** Two pods sharing volume A (pv-a), one pod with volume B (pv-b). */
function cluster(o: { phase?: string; extraPods?: ReturnType<typeof pod>[]; errors?: string[] } = {}) {
  return desiredState(view({
    pods: [
      pod('p1', { claims: ['a'], phase: o.phase }),
      pod('p2', { claims: ['a'], phase: o.phase }),
      pod('p3', { claims: ['b'], phase: o.phase }),
      ...(o.extraPods ?? []),
    ],
    pvcs: [pvc('a', { volume: 'pv-a' }), pvc('b', { volume: 'pv-b' })],
    pvs: [pv('pv-a', { handle: 'bucket-a' }), pv('pv-b', { handle: 'bucket-b/prefix' })],
    errors: o.errors,
  }), opts);
}
const U1 = 'uid-default-p1';
const U2 = 'uid-default-p2';
const U3 = 'uid-default-p3';

describe('planner', () => {
  it('everything healthy and supervised: no action at all', () => {
    const facts: NodeFacts = {
      stagings: [staging('bucket-a', 'healthy'), staging('bucket-b/prefix', 'healthy')],
      targets: [target(U1, 'pv-a', 'bucket-a', 'healthy'), target(U2, 'pv-a', 'bucket-a', 'healthy'), target(U3, 'pv-b', 'bucket-b/prefix', 'healthy')],
    };
    const p = plan(cluster(), facts);
    assert.deepEqual(p.volumes, []);
    assert.deepEqual(p.healthy.sort(), ['bucket-a', 'bucket-b/prefix']);
    assert.deepEqual(p.orphans, []);
  });

  it('healthy but unsupervised (s3fs survived a driver restart): adopt, targets untouched', () => {
    const p = plan(cluster(), {
      stagings: [staging('bucket-a', 'healthy', { supervised: false }), staging('bucket-b/prefix', 'healthy')],
      targets: [target(U1, 'pv-a', 'bucket-a', 'healthy'), target(U2, 'pv-a', 'bucket-a', 'healthy'), target(U3, 'pv-b', 'bucket-b/prefix', 'healthy')],
    });
    assert.equal(p.volumes.length, 1);
    assert.equal(p.volumes[0]?.stage, 'adopt');
    assert.deepEqual(p.volumes[0]?.targets.map((t) => t.action), ['none', 'none']);
  });

  it('stale staging (s3fs killed): repair, and its dead targets are republished (or healed by propagation)', () => {
    const p = plan(cluster(), {
      stagings: [staging('bucket-a', 'stale', { supervised: false }), staging('bucket-b/prefix', 'hung', { supervised: false })],
      targets: [target(U1, 'pv-a', 'bucket-a', 'stale'), target(U2, 'pv-a', 'bucket-a', 'stale'), target(U3, 'pv-b', 'bucket-b/prefix', 'hung')],
    });
    assert.deepEqual(p.volumes.map((v) => [v.volume.volumeHandle, v.stage, v.targets.map((t) => t.action).join(',')]).sort(), [
      ['bucket-a', 'repair', 'republish,republish'],
      ['bucket-b/prefix', 'repair', 'republish'],
    ]);
  });

  it('the record\'s options win over the cluster\'s (a repair must match the original stage)', () => {
    const p = plan(cluster(), {
      stagings: [staging('bucket-a', 'stale', { record: { volumeId: 'bucket-a', readonly: true, mountGroup: '2000' } })],
      targets: [target(U1, 'pv-a', 'bucket-a', 'stale')],
    });
    const a = p.volumes.find((v) => v.volume.volumeHandle === 'bucket-a');
    assert.equal(a?.readonly, true);
    assert.equal(a?.mountGroup, '2000');
  });

  it('healthy staging with one dead target (bound from an older s3fs): only that target is republished', () => {
    const p = plan(cluster(), {
      stagings: [staging('bucket-a', 'healthy'), staging('bucket-b/prefix', 'healthy')],
      targets: [target(U1, 'pv-a', 'bucket-a', 'stale'), target(U2, 'pv-a', 'bucket-a', 'healthy'), target(U3, 'pv-b', 'bucket-b/prefix', 'healthy')],
    });
    assert.equal(p.volumes.length, 1);
    assert.equal(p.volumes[0]?.stage, 'none');
    assert.deepEqual(p.volumes[0]?.targets.map((t) => [t.target.podName, t.action]), [['p1', 'republish'], ['p2', 'none']]);
  });

  it('missing while the pod runs (node reboot, mounts gone, vol_data.json kept on disk): mount and publish', () => {
    const p = plan(cluster(), {
      stagings: [],
      targets: [target(U1, 'pv-a', 'bucket-a', 'missing'), target(U2, 'pv-a', 'bucket-a', 'missing'), target(U3, 'pv-b', 'bucket-b/prefix', 'missing')],
    });
    assert.deepEqual(p.volumes.map((v) => [v.stage, v.targets.map((t) => t.action).join(',')]).sort(), [['mount', 'publish'], ['mount', 'publish,publish']]);
  });

  it('a Running pod whose target kubelet has torn down (no vol_data.json, nothing mounted) is left to kubelet, never published again', () => {
    const p = plan(cluster(), {
      stagings: [staging('bucket-a', 'healthy')],
      targets: [target(U1, 'pv-a', 'bucket-a', 'missing', { volData: undefined }), target(U2, 'pv-a', 'bucket-a', 'healthy')],
    });
    assert.deepEqual(p.volumes.flatMap((v) => v.targets).filter((t) => t.target.podName === 'p1'), [], 'nothing planned for p1');
    assert.ok(p.skipped.some((s) => s.subject === `target ${T(U1, 'pv-a')}` && s.reason.includes('not set up by kubelet')));
  });

  it('pending pods that kubelet has not set up (no vol_data.json, nothing mounted) are left to kubelet', () => {
    const p = plan(cluster({ phase: 'Pending' }), { stagings: [], targets: [] });
    assert.deepEqual(p.volumes, []);
    assert.ok(p.skipped.some((s) => s.reason.includes('not set up by kubelet')));
  });

  it('pending pods with vol_data.json written (kubelet got that far) are mounted', () => {
    const p = plan(cluster({ phase: 'Pending' }), {
      stagings: [staging('bucket-a', 'stale')],
      targets: [target(U1, 'pv-a', 'bucket-a', 'not-mounted'), target(U2, 'pv-a', 'bucket-a', 'stale')],
    });
    assert.deepEqual(p.volumes.map((v) => [v.volume.volumeHandle, v.stage, v.targets.map((t) => `${t.target.podName}:${t.action}`).join(',')]), [
      ['bucket-a', 'repair', 'p1:publish,p2:republish'],
    ]);
  });

  it('cross-checks vol_data.json: a mismatching handle skips the volume / target with a warning', () => {
    const p = plan(cluster(), {
      stagings: [staging('bucket-a', 'stale', { volData: { volumeHandle: 'someone-else' } }), staging('bucket-b/prefix', 'stale')],
      targets: [target(U3, 'pv-b', 'wrong-handle', 'stale')],
    });
    assert.deepEqual(p.volumes.map((v) => [v.volume.volumeHandle, v.targets.length]), [['bucket-b/prefix', 0]]);
    assert.equal(p.skipped.filter((s) => s.warn && /names volume/.test(s.reason)).length, 2);
  });

  it('orphans (pod gone): dead targets unpublished and dead staging unstaged; healthy ones left to kubelet', () => {
    const p = plan(cluster(), {
      stagings: [
        staging('bucket-a', 'healthy'), staging('bucket-b/prefix', 'healthy'),
        staging('gone-dead', 'stale'), staging('gone-healthy', 'healthy'), staging('gone-unmounted', 'not-mounted'),
      ],
      targets: [
        target(U1, 'pv-a', 'bucket-a', 'healthy'), target(U2, 'pv-a', 'bucket-a', 'healthy'), target(U3, 'pv-b', 'bucket-b/prefix', 'healthy'),
        target('deleted-pod', 'pv-x', 'gone-dead', 'stale'),
        target('deleted-pod-2', 'pv-y', 'gone-healthy', 'healthy'),
      ],
    });
    assert.deepEqual(p.orphans.map((o) => [o.kind, o.path, o.volumeId]), [
      ['unpublish', T('deleted-pod', 'pv-x'), 'gone-dead'],
      ['unstage', S('gone-dead'), 'gone-dead'],
    ]);
    assert.ok(p.skipped.some((s) => s.subject.includes(T('deleted-pod-2', 'pv-y')) && /left for kubelet/.test(s.reason)));
    assert.ok(p.skipped.some((s) => s.subject.includes(S('gone-healthy')) && /left for kubelet/.test(s.reason)));
  });

  it('no orphan clean-up when the cluster view is incomplete', () => {
    const p = plan(cluster({ errors: ['RBAC denies get persistentvolumes'] }), {
      stagings: [staging('gone-dead', 'stale')],
      targets: [target('deleted-pod', 'pv-x', 'gone-dead', 'stale')],
    });
    assert.deepEqual(p.orphans, []);
    assert.ok(p.skipped.some((s) => s.subject === 'orphan clean-up'));
  });

  it('a dead staging still used by a known pod whose claim was deleted is not an orphan', () => {
    const d = desiredState(view({
      pods: [pod('p9', { claims: ['deleted-claim'] })],
      missing: ['default/deleted-claim'],
    }), opts);
    const p = plan(d, {
      stagings: [staging('vol-9', 'stale')],
      targets: [target('uid-default-p9', 'pv-9', 'vol-9', 'stale')],
    });
    assert.deepEqual(p.orphans, []);
    assert.deepEqual(p.volumes, []);
    assert.ok(p.skipped.some((s) => /still used by a pod/.test(s.reason)));
  });

  it('targets of terminal pods are kubelet\'s: neither repaired nor treated as orphans', () => {
    const d = cluster({ extraPods: [pod('done', { claims: ['a'], phase: 'Succeeded' })] });
    const p = plan(d, {
      stagings: [staging('bucket-a', 'healthy'), staging('bucket-b/prefix', 'healthy')],
      targets: [target('uid-default-done', 'pv-a', 'bucket-a', 'stale'), target(U1, 'pv-a', 'bucket-a', 'healthy'), target(U2, 'pv-a', 'bucket-a', 'healthy'), target(U3, 'pv-b', 'bucket-b/prefix', 'healthy')],
    });
    assert.deepEqual(p.volumes, []);
    assert.deepEqual(p.orphans, []);
  });

  it('pods on another node contribute nothing even if their paths existed here', () => {
    const d = desiredState(view({
      pods: [pod('far', { node: 'node-b', claims: ['a'] })],
      pvcs: [pvc('a', { volume: 'pv-a' })],
      pvs: [pv('pv-a', { handle: 'bucket-a' })],
    }), opts);
    const p = plan(d, { stagings: [], targets: [] });
    assert.deepEqual(p.volumes, []);
    assert.deepEqual(d.knownPodUids.size, 0);
  });
});
