// Pure parts of the end-to-end harness: what the external-provisioner stand-in sends, the host
// state comparison behind the strict teardown, the node's generated configs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cniConfList, containerdConfig } from '../harness/containerd.js';
import { type HostSnapshot, hostDrift } from '../harness/host-state.js';
import { kubeletConfig } from '../harness/kubelet.js';
import { subjectOf } from '../harness/pki.js';
import { createParameters, csiAccessMode, resolveTemplate, secretRef } from '../harness/provisioner.js';

describe('external-provisioner stand-in', () => {
  it('drops reserved parameters and adds the extra-create-metadata keys', () => {
    const params = { bucket: 'b', 'csi.storage.k8s.io/provisioner-secret-name': 's', 'csi.storage.k8s.io/provisioner-secret-namespace': 'ns', 'csi.storage.k8s.io/fstype': 'x' };
    assert.deepEqual(createParameters(params, { pvcName: 'c', pvcNamespace: 'n', pvName: 'pvc-1' }), {
      bucket: 'b', 'csi.storage.k8s.io/pvc/name': 'c', 'csi.storage.k8s.io/pvc/namespace': 'n', 'csi.storage.k8s.io/pv/name': 'pvc-1',
    });
  });
  it('resolves secret references with templates, and only complete ones', () => {
    const vars = { 'pvc.name': 'c', 'pvc.namespace': 'n', 'pv.name': 'pvc-1' };
    assert.deepEqual(secretRef({ 'csi.storage.k8s.io/node-stage-secret-name': '${pvc.name}-creds', 'csi.storage.k8s.io/node-stage-secret-namespace': '${pvc.namespace}' }, 'node-stage', vars), { name: 'c-creds', namespace: 'n' });
    assert.equal(secretRef({ 'csi.storage.k8s.io/node-stage-secret-name': 'x' }, 'node-stage', vars), undefined);
    assert.throws(() => resolveTemplate('${pod.name}', vars), /unknown template variable/);
  });
  it('maps access modes as the sidecar does', () => {
    assert.equal(csiAccessMode('ReadWriteOnce'), 'SINGLE_NODE_WRITER');
    assert.equal(csiAccessMode('ReadOnlyMany'), 'MULTI_NODE_READER_ONLY');
    assert.equal(csiAccessMode('ReadWriteMany'), 'MULTI_NODE_MULTI_WRITER');
    assert.equal(csiAccessMode('ReadWriteOncePod'), 'SINGLE_NODE_SINGLE_WRITER');
    assert.throws(() => csiAccessMode('Bogus'));
  });
});

describe('host state of a test node', () => {
  const before: HostSnapshot = { sysctls: { 'vm/overcommit_memory': '0', 'kernel/panic': '1' }, absentPaths: ['/run/containerd'], netns: ['mine'], cgroupDirs: [] };
  it('is clean when nothing changed', () => {
    assert.deepEqual(hostDrift(before, structuredClone(before)), []);
  });
  it('names every sysctl, path, network namespace and cgroup left changed', () => {
    const now: HostSnapshot = { sysctls: { 'vm/overcommit_memory': '1', 'kernel/panic': '1' }, absentPaths: [], netns: ['mine', 'cni-123'], cgroupDirs: ['/sys/fs/cgroup/cpu/k8s.io'] };
    assert.deepEqual(hostDrift(before, now), [
      'sysctl vm/overcommit_memory: 1 (was 0)', '/run/containerd exists (was absent)', 'network namespace /run/netns/cni-123 left', 'cgroup /sys/fs/cgroup/cpu/k8s.io left',
    ]);
  });
});

describe('node configuration', () => {
  it('keeps containerd and CNI inside the node directory, loopback only', () => {
    const toml = containerdConfig('/n/containerd', 'docker.io/library/pause:e2e');
    for (const line of toml.split('\n').filter((l) => /(root|state|address|Root|conf_dir|bin_dir) =/.test(l))) assert.match(line, /"\/n\/containerd\//);
    assert.match(toml, /sandbox_image = "docker.io\/library\/pause:e2e"/);
    assert.match(toml, /SystemdCgroup = false/);
    assert.deepEqual(JSON.parse(cniConfList()).plugins, [{ type: 'loopback' }, { type: 's3fs-csi-e2e-podnet' }]);
  });
  it('serves kubelet on loopback only, with webhook auth and client certificates', () => {
    const c = JSON.parse(kubeletConfig({ port: 1, healthzPort: 2, containerdSocket: '/s', caCert: '/ca', dir: '/d' })) as Record<string, unknown>;
    assert.equal(c.address, '127.0.0.1');
    assert.equal(c.healthzBindAddress, '127.0.0.1');
    assert.equal(c.readOnlyPort, 0);
    assert.deepEqual(c.authorization, { mode: 'Webhook' });
    assert.equal(c.makeIPTablesUtilChains, false);
  });
  it('writes Kubernetes users and groups as certificate subjects', () => {
    assert.equal(subjectOf('system:node:localhost', ['system:nodes']), '/O=system:nodes/CN=system:node:localhost');
  });
});
