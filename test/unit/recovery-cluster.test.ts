// Discovery's pure half: which of the cluster's objects are this node's volumes of this driver, where
// kubelet expects them, and which Secret holds their credentials. Plain objects, no API server.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  claimsToFetch, classesToFetch, desiredState, expandTemplate, secretRefFor, volumesToFetch,
} from '../../src/recovery/cluster.js';
import { isStagingPath, parseTargetPath, stagingPathFor, targetPathFor } from '../../src/recovery/kubelet-paths.js';
import { DRIVER, KUBELET, NODE, pod, pv, pvc, sc, view } from './recovery-fixtures.js';

const opts = { nodeName: NODE, driverName: DRIVER, kubeletDir: KUBELET };

describe('kubelet paths', () => {
  it('staging path is sha256 of the volume handle under the driver dir; target by pod uid and PV name', () => {
    const h = createHash('sha256').update('bucket/prefix').digest('hex');
    assert.equal(stagingPathFor(KUBELET, DRIVER, 'bucket/prefix'), `${KUBELET}/plugins/kubernetes.io/csi/${DRIVER}/${h}/globalmount`);
    assert.ok(isStagingPath(KUBELET, DRIVER, stagingPathFor(KUBELET, DRIVER, 'x')));
    assert.ok(!isStagingPath(KUBELET, DRIVER, `${KUBELET}/plugins/kubernetes.io/csi/other/${h}/globalmount`));
    assert.ok(!isStagingPath(KUBELET, DRIVER, `${KUBELET}/plugins/kubernetes.io/csi/${DRIVER}/short/globalmount`));
    const t = targetPathFor(KUBELET, 'u-1', 'pv-1');
    assert.equal(t, `${KUBELET}/pods/u-1/volumes/kubernetes.io~csi/pv-1/mount`);
    assert.deepEqual(parseTargetPath(KUBELET, t), { podUid: 'u-1', volumeName: 'pv-1' });
    assert.equal(parseTargetPath(KUBELET, `${KUBELET}/pods/u-1/volumes/kubernetes.io~nfs/pv-1/mount`), undefined);
    assert.equal(parseTargetPath(KUBELET, `/elsewhere/pods/u-1/volumes/kubernetes.io~csi/pv-1/mount`), undefined);
  });
});

describe('what to fetch', () => {
  it('claims of active pods of this node only (incl. generic ephemeral), PVs of claims, classes only when the PV has no secret ref', () => {
    const pods = [
      pod('a', { claims: ['c1', 'c2'] }),
      pod('b', { claims: ['c1'], ns: 'other' }),
      pod('done', { claims: ['c3'], phase: 'Succeeded' }),
      pod('elsewhere', { claims: ['c4'], node: 'node-b' }),
      pod('eph', { ephemeral: ['scratch'] }),
    ];
    assert.deepEqual(claimsToFetch(pods, NODE).map((c) => `${c.namespace}/${c.name}`).sort(), ['default/c1', 'default/c2', 'default/eph-scratch', 'other/c1']);
    const claims = new Map([['default/c1', pvc('c1', { volume: 'pv1' })], ['default/c2', pvc('c2')], ['default/x', null]]);
    assert.deepEqual(volumesToFetch(claims), ['pv1']);
    const pvs = new Map([
      ['pv1', pv('pv1', { sc: 'with-ref', stageRef: ['ns', 's'] })],
      ['pv2', pv('pv2', { sc: 'needs-class' })],
      ['pv3', pv('pv3', { sc: 'foreign', driver: 'other.csi' })],
      ['pv4', null],
    ]);
    assert.deepEqual(classesToFetch(pvs, DRIVER), ['needs-class']);
  });
});

describe('secret references', () => {
  const v = pv('pv-9', { sc: 'x' });
  const c = pvc('data', { ns: 'team-a', annotations: { owner: 'alice' } });
  it('PV refs win (stage before publish)', () => {
    assert.deepEqual(secretRefFor(pv('p', { stageRef: ['n1', 's1'], publishRef: ['n2', 's2'] }), c, sc('x', { 'csi.storage.k8s.io/node-stage-secret-name': 'z' })), { namespace: 'n1', name: 's1', source: 'pv nodeStageSecretRef' });
    assert.deepEqual(secretRefFor(pv('p', { publishRef: ['n2', 's2'] }), c, undefined), { namespace: 'n2', name: 's2', source: 'pv nodePublishSecretRef' });
  });
  it('StorageClass parameters with templates; the namespace defaults to the claim\'s', () => {
    assert.deepEqual(secretRefFor(v, c, sc('x', {
      'csi.storage.k8s.io/node-stage-secret-name': 's3-${pvc.name}',
      'csi.storage.k8s.io/node-stage-secret-namespace': '${pvc.namespace}',
    })), { namespace: 'team-a', name: 's3-data', source: 'storageclass node-stage' });
    assert.deepEqual(secretRefFor(v, c, sc('x', { 'csi.storage.k8s.io/node-publish-secret-name': 'for-${pv.name}' })), { namespace: 'team-a', name: 'for-pv-9', source: 'storageclass node-publish' });
    assert.equal(expandTemplate("k-${pvc.annotations['owner']}", v, c), 'k-alice');
    assert.equal(secretRefFor(v, c, sc('x', {})), undefined);
    assert.equal(secretRefFor(v, c, undefined), undefined);
  });
  it('unknown templates and invalid names are errors, not guesses', () => {
    assert.throws(() => secretRefFor(v, c, sc('x', { 'csi.storage.k8s.io/node-stage-secret-name': '${node.name}' })), /unsupported template/);
    assert.throws(() => secretRefFor(v, c, sc('x', { 'csi.storage.k8s.io/node-stage-secret-name': 'Bad_Name' })), /not a valid Secret name/);
  });
});

describe('desiredState', () => {
  it('maps pods -> claims -> our bound PVs -> one staging per volume handle and one target per pod', () => {
    const d = desiredState(view({
      pods: [pod('a', { claims: ['c1'], fsGroup: 1000 }), pod('b', { claims: ['c1'], ro: true }), pod('c', { ns: 'x', claims: ['c2'] })],
      pvcs: [pvc('c1', { volume: 'pv1' }), pvc('c2', { ns: 'x', volume: 'pv2' })],
      pvs: [
        pv('pv1', { claim: ['default', 'c1'], stageRef: ['default', 'creds'], attrs: { bucket: 'b1' }, mountOptions: ['ro_foo'] }),
        pv('pv2', { claim: ['x', 'c2'], sc: 'gold', modes: ['ReadOnlyMany'] }),
      ],
      classes: [sc('gold', { 'csi.storage.k8s.io/node-stage-secret-name': 'creds-${pvc.namespace}', 'csi.storage.k8s.io/node-stage-secret-namespace': 'secrets' })],
    }), opts);
    assert.equal(d.complete, true);
    assert.equal(d.volumes.length, 2);
    const v1 = d.volumes.find((v) => v.pvName === 'pv1');
    assert.ok(v1);
    assert.equal(v1.stagingPath, stagingPathFor(KUBELET, DRIVER, 'bucket-pv1'));
    assert.deepEqual(v1.targets.map((t) => [t.podName, t.readonly]), [['a', false], ['b', true]]);
    assert.equal(v1.targets[0]?.path, targetPathFor(KUBELET, 'uid-default-a', 'pv1'));
    assert.deepEqual(v1.secretRef, { namespace: 'default', name: 'creds', source: 'pv nodeStageSecretRef' });
    assert.deepEqual(v1.volumeContext, { bucket: 'b1' });
    assert.deepEqual(v1.mountOptions, ['ro_foo']);
    assert.equal(v1.mountGroup, '1000');
    assert.equal(v1.readonly, false);
    const v2 = d.volumes.find((v) => v.pvName === 'pv2');
    assert.equal(v2?.readonly, true);
    assert.deepEqual(v2?.secretRef, { namespace: 'secrets', name: 'creds-x', source: 'storageclass node-stage' });
    assert.deepEqual([...d.knownPodUids].sort(), ['uid-default-a', 'uid-default-b', 'uid-x-c']);
  });

  it('leaves out other nodes, other drivers, non-CSI PVs, terminal pods, unbound and deleted claims, misbound PVs', () => {
    const d = desiredState(view({
      pods: [
        pod('other-node', { node: 'node-b', claims: ['c1'] }),
        pod('foreign', { claims: ['foreign'] }),
        pod('hostpath', { claims: ['hp'] }),
        pod('finished', { claims: ['c1'], phase: 'Failed' }),
        pod('unbound', { claims: ['pending-claim'] }),
        pod('deleted', { claims: ['gone'] }),
        pod('misbound', { claims: ['mb'] }),
        pod('unread', { claims: ['never-read'] }),
      ],
      pvcs: [
        pvc('c1', { volume: 'pv1' }), pvc('foreign', { volume: 'pvf' }), pvc('hp', { volume: 'pvh' }),
        pvc('pending-claim', { annotations: { 'volume.kubernetes.io/storage-provisioner': DRIVER } }),
        pvc('mb', { volume: 'pvm' }),
      ],
      missing: ['default/gone'],
      pvs: [pv('pv1'), pv('pvf', { driver: 'ebs.csi.aws.com' }), pv('pvh', { csi: false }), pv('pvm', { claim: ['default', 'someone-else'] })],
    }), opts);
    assert.deepEqual(d.volumes, []);
    const reasons = d.skipped.map((s) => `${s.subject.split(' ')[1]}: ${s.reason}`);
    assert.ok(reasons.some((r) => r.startsWith('default/other-node: scheduled to node node-b')), reasons.join('\n'));
    assert.ok(reasons.some((r) => r.startsWith('default/foreign: volume of driver ebs.csi.aws.com')));
    assert.ok(reasons.some((r) => r.startsWith('default/hostpath: not a CSI volume')));
    assert.ok(reasons.some((r) => r.startsWith('default/finished: pod Failed')));
    assert.ok(reasons.some((r) => r.startsWith('default/unbound: claim is not bound')));
    assert.ok(d.skipped.find((s) => s.subject.includes('unbound'))?.warn, 'an annotated claim of ours that is unbound is worth a warning');
    assert.ok(reasons.some((r) => r.startsWith('default/deleted: PersistentVolumeClaim not found')));
    assert.ok(reasons.some((r) => r.startsWith('default/misbound: PersistentVolume pvm is bound to default/someone-else')));
    assert.ok(reasons.some((r) => r.startsWith('default/unread: claim was not read')));
    assert.ok(d.knownPodUids.has('uid-default-finished'), 'terminal pods still count as known (their targets are not orphans)');
    assert.ok(!d.knownPodUids.has('uid-default-other-node'));
  });

  it('static PVs (no class, no refs) use the driver defaults; a needed class that was not read skips the volume', () => {
    const d = desiredState(view({
      pods: [pod('s', { claims: ['static'] }), pod('t', { claims: ['nc'] })],
      pvcs: [pvc('static', { volume: 'pv-static' }), pvc('nc', { volume: 'pv-nc' })],
      pvs: [pv('pv-static', { handle: 'static-bucket/some/prefix' }), pv('pv-nc', { sc: 'unread-class' })],
      errors: ['reading StorageClass unread-class failed'],
    }), opts);
    assert.equal(d.complete, false);
    assert.deepEqual(d.volumes.map((v) => [v.volumeHandle, v.secretRef]), [['static-bucket/some/prefix', undefined]]);
    assert.ok(d.skipped.some((s) => s.reason.includes('StorageClass unread-class') && s.warn));
  });

  it('generic ephemeral volumes resolve through the <pod>-<volume> claim; pods sharing a volume share its staging', () => {
    const d = desiredState(view({
      pods: [pod('e', { ephemeral: ['scratch'] }), pod('f', { claims: ['shared'] }), pod('g', { claims: ['shared'] })],
      pvcs: [pvc('e-scratch', { volume: 'pv-e' }), pvc('shared', { volume: 'pv-s' })],
      pvs: [pv('pv-e'), pv('pv-s')],
    }), opts);
    assert.deepEqual(d.volumes.map((v) => [v.pvName, v.targets.length]).sort(), [['pv-e', 1], ['pv-s', 2]]);
  });
});
