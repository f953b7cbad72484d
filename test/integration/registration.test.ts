// Built-in kubelet registration against the real binary, with this test playing kubelet's plugin
// watcher exactly as kubelet does: GetInfo on <registration-dir>/<driver>-reg.sock, then
// NotifyRegistrationStatus. (Under the real kubelet this is proven again by test/e2e.)
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../../src/generated/pluginregistration/pluginregistration.js';
import type { RegistrationClient } from '../../src/generated/pluginregistration/pluginregistration/Registration.js';
import { packageRoot } from '../../src/paths.js';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { waitFor } from '../harness/net.js';

function registrationClient(socketPath: string): RegistrationClient {
  const def = protoLoader.loadSync(join(packageRoot, 'proto', 'pluginregistration.proto'), { keepCase: true, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType;
  return new pkg.pluginregistration.Registration(`unix://${socketPath}`, grpc.credentials.createInsecure());
}
const getInfo = (c: RegistrationClient): Promise<{ type: string; name: string; endpoint: string; supported_versions: string[] }> =>
  new Promise((resolve, reject) => c.GetInfo({}, { deadline: Date.now() + 5000 }, (err, res) => (err || !res ? reject(err) : resolve(res))));
const notify = (c: RegistrationClient, registered: boolean, error = ''): Promise<void> =>
  new Promise((resolve, reject) => c.NotifyRegistrationStatus({ plugin_registered: registered, error }, { deadline: Date.now() + 5000 }, (err) => (err ? reject(err) : resolve())));

const started: DriverProcess[] = [];
after(async () => {
  for (const d of started) await d.cleanup();
});

describe('built-in kubelet registration', () => {
  it('serves GetInfo repeatedly, fails /healthz when kubelet refuses, removes its socket on SIGTERM', async () => {
    const d = await startDriver({ mode: 'node', args: ['--registration', 'builtin', '--drivername', 'reg.test.csi'] });
    started.push(d);
    const regSock = join(d.kubeletDir, 'plugins_registry', 'reg.test.csi-reg.sock');
    await waitFor('registration socket', async () => existsSync(regSock) || undefined, 10_000, 20);
    const c = registrationClient(regSock);
    // kubelet calls GetInfo again and again (its reconciler): every call answers the same.
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await getInfo(c), {
        type: 'CSIPlugin', name: 'reg.test.csi', endpoint: join(d.kubeletDir, 'plugins', 'reg.test.csi', 'csi.sock'), supported_versions: ['1.0.0'],
      });
    }
    await notify(c, true);
    assert.equal((await d.http('/healthz')).status, 200);
    assert.match((await d.http('/metrics')).body, /^s3fs_csi_kubelet_registered 1$/m);

    await notify(c, false, 'plugin name clash');
    const h = await d.http('/healthz');
    assert.equal(h.status, 500);
    assert.match(h.body, /registration: kubelet refused the registration: plugin name clash/);
    assert.ok(d.logs.some((l) => /kubelet refused the plugin registration/.test(l) && /plugin name clash/.test(l)), 'the refusal is logged');

    await notify(c, true);
    assert.equal((await d.http('/healthz')).status, 200);
    c.close();
    assert.equal(await d.stop('SIGTERM'), 0);
    assert.equal(existsSync(regSock), false, 'the registration socket is removed on SIGTERM');
  });

  it('fails /healthz when the registration socket disappears', async () => {
    const d = await startDriver({ mode: 'node', args: ['--registration', 'builtin'] });
    started.push(d);
    const regSock = join(d.kubeletDir, 'plugins_registry', 's3fs.csi.dev-reg.sock');
    await waitFor('registration socket', async () => existsSync(regSock) || undefined, 10_000, 20);
    assert.equal((await d.http('/healthz')).status, 200);
    await rm(regSock);
    const h = await d.http('/healthz');
    assert.equal(h.status, 500);
    assert.match(h.body, /registration socket .* is gone/);
  });

  it('serves no registration socket by default (sidecar mode)', async () => {
    const d = await startDriver({ mode: 'node' });
    started.push(d);
    assert.equal(existsSync(join(d.kubeletDir, 'plugins_registry')), false);
  });
});
