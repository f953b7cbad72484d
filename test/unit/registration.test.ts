// The pure decisions of built-in kubelet registration: what GetInfo advertises, when health fails.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SUPPORTED_CSI_VERSIONS, pluginInfo, registrationProblem } from '../../src/kube/registration.js';

describe('plugin registration decisions', () => {
  it('advertises a CSI plugin at the socket path kubelet sees', () => {
    assert.deepEqual(pluginInfo('s3fs.csi.dev', '/var/lib/kubelet/plugins/s3fs.csi.dev/csi.sock'), {
      type: 'CSIPlugin', name: 's3fs.csi.dev', endpoint: '/var/lib/kubelet/plugins/s3fs.csi.dev/csi.sock', supported_versions: SUPPORTED_CSI_VERSIONS,
    });
  });

  const ours = { dev: 1, ino: 42 };
  it('is healthy before kubelet has spoken and after it accepted', () => {
    assert.equal(registrationProblem({ infoCalls: 0, socketId: ours }, ours, '/r.sock'), undefined);
    assert.equal(registrationProblem({ infoCalls: 1, socketId: ours, lastStatus: { registered: true, error: '', at: new Date() } }, ours, '/r.sock'), undefined);
  });

  it('fails when the socket is gone or replaced', () => {
    assert.match(registrationProblem({ infoCalls: 1, socketId: ours }, undefined, '/r.sock') ?? '', /is gone/);
    assert.match(registrationProblem({ infoCalls: 1, socketId: ours }, { dev: 1, ino: 43 }, '/r.sock') ?? '', /replaced/);
  });

  it('fails with kubelet\'s reason when kubelet refused', () => {
    const state = { infoCalls: 1, socketId: ours, lastStatus: { registered: false, error: 'unsupported version', at: new Date() } };
    assert.match(registrationProblem(state, ours, '/r.sock') ?? '', /refused the registration: unsupported version/);
  });
});
