// The foundation against the real binary over its real socket: Identity, roles, HTTP and exec
// probing, socket lifecycle, secret-free logs, csi-sanity's Identity specs.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { packageVersion } from '../../src/paths.js';
import { binPath, startDriver, type DriverProcess } from '../harness/driver.js';
import { mountPointsUnder, s3fsPidsUnder } from '../harness/mounts.js';
import { failures, runSanity } from '../harness/sanity.js';

// Bounded like kubelet bounds an exec probe: a probe that hangs fails the test instead of holding it.
function probeCli(socketPath: string, ...extra: string[]): Promise<{ code: number; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const args = [binPath, 'probe', '--endpoint', `unix://${socketPath}`, ...extra];
    execFile(process.execPath, args, { timeout: 30_000, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : err.killed ? -1 : 1) : 0;
      resolve({ code, stderr: stderr.trim(), ms: Date.now() - started });
    });
  });
}

const started: DriverProcess[] = [];
async function driver(...args: Parameters<typeof startDriver>): Promise<DriverProcess> {
  const d = await startDriver(...args);
  started.push(d);
  return d;
}
after(async () => {
  for (const d of started) await d.cleanup();
});

describe('Identity service', () => {
  it('answers GetPluginInfo, GetPluginCapabilities and Probe', async () => {
    const d = await driver({ mode: 'all' });
    const info = await d.call<{ name: string; vendor_version: string }>('Identity', 'GetPluginInfo');
    assert.equal(info.name, 's3fs.csi.dev');
    assert.equal(info.vendor_version, packageVersion);
    const caps = await d.call<{ capabilities: { service?: { type: string }; volume_expansion?: { type: string } }[] }>('Identity', 'GetPluginCapabilities');
    assert.ok(caps.capabilities.some((c) => c.service?.type === 'CONTROLLER_SERVICE'));
    assert.ok(caps.capabilities.some((c) => c.volume_expansion?.type === 'ONLINE'));
    const probe = await d.call<{ ready: { value: boolean } }>('Identity', 'Probe');
    assert.equal(probe.ready.value, true);
  });

  it('serves only the roles of its mode; the others answer UNIMPLEMENTED', async () => {
    const node = await driver({ mode: 'node', args: ['--drivername', 'example.csi.test'] });
    assert.equal((await node.call<{ name: string }>('Identity', 'GetPluginInfo')).name, 'example.csi.test');
    const caps = await node.call<{ capabilities: { service?: { type: string } }[] }>('Identity', 'GetPluginCapabilities');
    assert.ok(!caps.capabilities.some((c) => c.service?.type === 'CONTROLLER_SERVICE'));
    assert.equal(await node.callCode('Controller', 'CreateVolume', { name: 'x' }), status.UNIMPLEMENTED);
    assert.equal(await node.callCode('Controller', 'ControllerGetCapabilities'), status.UNIMPLEMENTED);

    const controller = await driver({ mode: 'controller' });
    assert.equal(await controller.callCode('Node', 'NodeGetInfo'), status.UNIMPLEMENTED);
    assert.equal(await controller.callCode('Node', 'NodeStageVolume', { volume_id: 'v' }), status.UNIMPLEMENTED);
  });

  it('Probe fails with FAILED_PRECONDITION naming the broken node dependency', async () => {
    const d = await driver({ mode: 'node', args: ['--s3fs-path', '/nonexistent/s3fs'] });
    assert.equal(await d.callCode('Identity', 'Probe'), status.FAILED_PRECONDITION);
    const res = await d.http('/healthz');
    assert.equal(res.status, 500);
    assert.match(res.body, /FailedPrecondition.*s3fs binary "\/nonexistent\/s3fs"/);
    const cli = await probeCli(d.socketPath);
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /s3fs binary/);
  });
});

describe('built-in probing', () => {
  it('/healthz and `s3fs-csi probe` succeed while healthy, and /metrics has the sidecar histogram', async () => {
    const d = await driver({ mode: 'all' });
    const res = await d.http('/healthz');
    assert.deepEqual(res, { status: 200, body: 'ok' });
    assert.equal((await d.http('/readyz')).status, 200);
    assert.equal((await probeCli(d.socketPath)).code, 0);
    const metrics = await d.http('/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /csi_sidecar_operations_seconds_bucket\{le="0\.1",driver_name="s3fs\.csi\.dev",method_name="\/csi\.v1\.Identity\/Probe",grpc_status_code="OK"\} [1-9]/);
    assert.match(metrics.body, /le="600"/);
    assert.match(metrics.body, /process_resident_memory_bytes/);
  });

  it('fails when the socket file is deleted', async () => {
    const d = await driver({ mode: 'all', args: ['--probe-timeout', '1s'] });
    await unlink(d.socketPath);
    const t0 = Date.now();
    const res = await d.http('/healthz');
    assert.equal(res.status, 500);
    assert.ok(Date.now() - t0 < 1500, 'answered within the probe timeout');
    assert.match(res.body, /does not exist/);
    const cli = await probeCli(d.socketPath, '--timeout', '1s');
    assert.notEqual(cli.code, 0);
    assert.ok(cli.stderr.length > 0 && !cli.stderr.includes('\n'), 'one-line reason');
  });

  it('fails within the probe timeout when Probe hangs (fault hook), and recovers', async () => {
    const faults = join(await mkdtemp(join(tmpdir(), 's3fs-csi-faults-')), 'faults');
    await writeFile(faults, 'probe=hang\n');
    const d = await driver({ mode: 'all', args: ['--probe-timeout', '1s'], env: { S3FS_CSI_FAULTS_FILE: faults } });
    const t0 = Date.now();
    const res = await d.http('/healthz');
    const elapsed = Date.now() - t0;
    assert.equal(res.status, 500);
    assert.match(res.body, /DeadlineExceeded/);
    assert.ok(elapsed >= 900 && elapsed < 2500, `took ${elapsed} ms`);
    const cli = await probeCli(d.socketPath, '--timeout', '1s');
    assert.notEqual(cli.code, 0);
    assert.ok(cli.ms < 4000, `exec probe took ${cli.ms} ms`);
    await writeFile(faults, '');
    assert.equal((await d.http('/healthz')).status, 200);
    assert.equal((await probeCli(d.socketPath)).code, 0);
    // The driver kept serving other calls while a Probe hung.
    assert.equal((await d.call<{ name: string }>('Identity', 'GetPluginInfo')).name, 's3fs.csi.dev');
    await rm(join(faults, '..'), { recursive: true, force: true });
  });
});

describe('socket lifecycle', () => {
  it('SIGTERM removes the socket and exits 0', async () => {
    const d = await driver({ mode: 'all' });
    assert.ok(existsSync(d.socketPath));
    assert.equal(await d.stop('SIGTERM'), 0);
    assert.ok(!existsSync(d.socketPath), 'socket removed');
  });

  it('a second instance replaces the stale socket of a killed one, but not a live one', async () => {
    const first = await driver({ mode: 'all' });
    await first.stop('SIGKILL');
    assert.ok(existsSync(first.socketPath), 'SIGKILL leaves the socket file behind');
    const second = await driver({ mode: 'all', dir: first.dir });
    assert.equal((await second.call<{ name: string }>('Identity', 'GetPluginInfo')).name, 's3fs.csi.dev');
    const third = await driver({ mode: 'all', dir: first.dir, waitReady: false });
    const thirdExit = await third.exitedWithin(20_000);
    assert.ok(thirdExit !== 0 && thirdExit !== 'still running', `a third instance refuses to steal a live socket (exit: ${thirdExit})`);
    assert.equal((await second.call<{ name: string }>('Identity', 'GetPluginInfo')).name, 's3fs.csi.dev');
  });
});

describe('secret hygiene of logs and errors', () => {
  it('secrets in requests never appear in logs or error messages', async () => {
    const d = await driver({ mode: 'all', args: ['--v', '6', '--allowed-root', tmpdir()] });
    const secrets = { accessKeyID: 'AKIAEXAMPLE', secretAccessKey: 's3cr3t-canary', endpoint: 'http://127.0.0.1:1' };
    const messages: string[] = [];
    const attempts: [ 'Controller' | 'Node', string, object][] = [
      ['Controller', 'CreateVolume', { name: 'canary-vol', secrets, volume_capabilities: [{ mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }] }],
      ['Controller', 'CreateVolume', { name: 'AKIAEXAMPLE s3cr3t-canary', secrets, parameters: { options: 's3cr3t-canary' } }],
      ['Controller', 'DeleteVolume', { volume_id: 's3cr3t-canary', secrets }],
      ['Node', 'NodeStageVolume', { volume_id: 'canary-bucket', staging_target_path: join(d.dir, 'canary-stage'), secrets,
        volume_capability: { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } } }],
    ];
    for (const [service, method, req] of attempts) {
      try {
        await d.call(service, method, req, 10_000);
      } catch (err) {
        messages.push(String((err as Error).message));
      }
    }
    await d.stop('SIGTERM');
    // The stage against a dead endpoint was still mounting when its deadline passed: it is undone.
    assert.deepEqual(await s3fsPidsUnder(d.dir), [], 's3fs left running');
    assert.deepEqual(await mountPointsUnder(d.dir), [], 'mount left behind');
    const text = [...d.logs, ...messages].join('\n');
    assert.ok(d.logs.length > 0);
    for (const value of ['AKIAEXAMPLE', 's3cr3t-canary']) assert.ok(!text.includes(value), `${value} leaked:\n${text}`);
  });
});

describe('csi-sanity Identity specs', () => {
  it('pass', async () => {
    const d = await driver({ mode: 'all' });
    const res = await runSanity({
      endpoint: d.socketPath,
      stagingDir: join(d.dir, 'sanity-staging'),
      mountDir: join(d.dir, 'sanity-mount'),
      workDir: join(d.dir, 'sanity'),
      focus: 'Identity',
      timeoutMs: 120_000,
    });
    console.log(res.summary);
    assert.equal(res.exitCode, 0, failures(res.output));
    assert.ok(res.ran >= 3, res.summary);
    assert.equal(res.failed, 0);
  });
});
