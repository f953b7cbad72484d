// The node plugin with its s3fs in the separate mounter: both roles of the real binary, real s3fs,
// real FUSE, a real S3 server. The mounter runs as a "container" (own pid and mount namespace,
// unshare) sharing only the kubelet dir with the host, so its death takes its s3fs with it, as in a pod.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mounterServiceDefinition } from '../../src/mounter/proto.js';
import { type DriverProcess, startDriver } from '../harness/driver.js';
import { type MounterProcess, mounterSocketOf, sharedKubeletDir, startMounter } from '../harness/mounter.js';
import { s3fsPidsUnder, scrubDir } from '../harness/mounts.js';
import { waitFor } from '../harness/net.js';
import { type S3Server, startS3Server } from '../harness/s3server.js';

const CAP = { mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

let s3: S3Server;
let raw: S3Client;
let dir: string;
let mounter: MounterProcess | undefined;
let node: DriverProcess | undefined;

const nodeArgs = (): string[] => ['--mounter-endpoint', `unix://${mounterSocketOf(dir)}`, '--s3-endpoint', s3.endpoint, '--recovery', 'true', '--mount-check-timeout', '1s'];
const startNode = (): Promise<DriverProcess> => startDriver({ mode: 'node', dir, args: nodeArgs() });
const startContainerMounter = (): Promise<MounterProcess> => startMounter({ dir, container: true });

interface Vol { id: string; staging: string; target: string }
let seq = 0;
async function newVolume(): Promise<Vol> {
  const id = `mounter-test-${process.pid}-${++seq}`;
  await raw.send(new CreateBucketCommand({ Bucket: id }));
  const kubelet = join(dir, 'kubelet');
  const staging = join(kubelet, 'plugins/kubernetes.io/csi/s3fs.csi.dev', id, 'globalmount');
  const parent = join(kubelet, 'pods', `pod-${seq}`, 'volumes/kubernetes.io~csi', id);
  await mkdir(parent, { recursive: true });
  return { id, staging, target: join(parent, 'mount') };
}
async function stageAndPublish(n: DriverProcess, v: Vol): Promise<void> {
  await n.call('Node', 'NodeStageVolume', { volume_id: v.id, staging_target_path: v.staging, volume_capability: CAP, secrets: s3.secrets }, 60_000);
  await n.call('Node', 'NodePublishVolume', { volume_id: v.id, staging_target_path: v.staging, target_path: v.target, volume_capability: CAP });
}

/** The s3fs serving `v` (argv names one of its backing dirs under the mounter's state dir). */
async function s3fsOf(v: Vol): Promise<number | undefined> {
  const { stagingKey } = await import('../../src/mount/spec.js');
  const key = stagingKey(v.staging);
  const pids = await s3fsPidsUnder(join(dir, 'mstate', 'backing'));
  for (const pid of pids) {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv.some((a) => a.includes(`/backing/${key}-`))) return pid;
  }
  return undefined;
}
const parentOf = async (pid: number): Promise<number> => Number((await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ')[1]);
/** The process that started s3fs `pid` through its process starter (`s3fs-csi-mount --spawn`, src/mount/spawner.ts). */
async function starterOwner(pid: number): Promise<number> {
  const starter = await parentOf(pid);
  assert.deepEqual((await readFile(`/proc/${starter}/cmdline`, 'utf8')).split('\0').filter(Boolean).slice(1), ['--spawn'], 's3fs\'s parent is the process starter');
  return parentOf(starter);
}

/** Reads `file` in a child under a deadline: a dead mount fails, a hung one times out, never blocking the test. */
function readWithDeadline(file: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const c = spawn('timeout', ['3', 'cat', file], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.once('close', (code) => resolve(code === 0 ? out : undefined));
  });
}

/** Writes and reads back a counter in `dirPath` every 100 ms for `seconds`; resolves with the epoch ms of each good round and the failures. */
function writer(dirPath: string, seconds: number): Promise<{ rounds: number; okAt: number[]; errors: string[] }> {
  const script = `end=$(( $(date +%s) + ${seconds} )); n=0
while [ "$(date +%s)" -lt "$end" ]; do n=$((n+1))
  if timeout 5 sh -c 'echo "$1" > "$2/w.txt"' sh "$n" "${dirPath}" && [ "$(timeout 5 cat "${dirPath}/w.txt")" = "$n" ]; then echo "ok $(date +%s%3N)"; else echo "ERR $n $(date +%T.%N)"; fi
  sleep 0.1
done`;
  return new Promise((resolve) => {
    const c = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.once('close', () => {
      const lines = out.split('\n').filter(Boolean);
      const okAt = lines.filter((l) => l.startsWith('ok ')).map((l) => Number(l.slice(3)));
      resolve({ rounds: lines.length, okAt, errors: lines.filter((l) => l.startsWith('ERR')) });
    });
  });
}

async function healthyStats(n: DriverProcess, v: Vol): Promise<boolean> {
  const r = await n.call<{ volume_condition: { abnormal: boolean } }>('Node', 'NodeGetVolumeStats', { volume_id: v.id, volume_path: v.target }, 10_000).catch(() => undefined);
  return r?.volume_condition.abnormal === false;
}

const rpcCount = (m: MounterProcess, rpc: string): number => m.logs.filter((l) => l.includes(`"rpc":"${rpc}"`)).length;

before(async () => {
  s3 = await startS3Server();
  raw = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey } });
  dir = await mkdtemp(join(tmpdir(), 's3fs-csi-mounter-'));
  await sharedKubeletDir(dir);
  mounter = await startContainerMounter();
  node = await startNode();
});

after(async () => {
  await node?.stop('SIGKILL').catch(() => undefined);
  await mounter?.kill().catch(() => undefined);
  if (dir) await scrubDir(dir);
  raw?.destroy();
  await s3?.stop();
});

describe('node plugin with a separate mounter', () => {
  const vols: Vol[] = [];

  it('stages and publishes through the mounter: s3fs is the mounter\'s child, not the node plugin\'s', async () => {
    assert.ok(node && mounter);
    for (let i = 0; i < 2; i++) {
      const v = await newVolume();
      await stageAndPublish(node, v);
      await writeFile(join(v.target, 'hello.txt'), `hello ${v.id}`);
      vols.push(v);
    }
    for (const v of vols) {
      const pid = await s3fsOf(v);
      assert.ok(pid, `an s3fs serves ${v.id}`);
      assert.equal(await starterOwner(pid), mounter.pid, 's3fs runs under the mounter');
      const obj = await raw.send(new GetObjectCommand({ Bucket: v.id, Key: 'hello.txt' }));
      assert.equal(await obj.Body?.transformToString(), `hello ${v.id}`);
    }
    const probe = await node.http('/healthz');
    assert.equal(probe.status, 200, probe.body);
    const metrics = (await node.http('/metrics')).body;
    assert.match(metrics, /^s3fs_csi_mounter_connected 1$/m);
    assert.match(metrics, /^s3fs_csi_mounter_compatible 1$/m);
    const mm = (await mounter.http('/metrics')).body;
    assert.match(mm, /^s3fs_csi_staged_volumes\{condition="healthy"\} 2$/m);
    assert.match(mm, /s3fs_csi_mounter_rpc_seconds_count\{method="EnsureStaged",code="OK"\} 2/);
    assert.equal((await mounter.http('/healthz')).status, 200);
  });

  it('SIGKILL of the node plugin under a writer: zero errors; the restarted plugin adopts, nothing is remounted', async () => {
    assert.ok(node && mounter);
    const v = vols[0] as Vol;
    const pidsBefore = await Promise.all(vols.map(s3fsOf));
    const stagedBefore = rpcCount(mounter, 'EnsureStaged');
    const w = writer(v.target, 8);
    await new Promise((r) => setTimeout(r, 1500));
    await node.stop('SIGKILL');
    const killedAt = Date.now();
    node = await startNode();
    const restartMs = Date.now() - killedAt;
    await waitFor('the node plugin to be ready', async () => (await node?.http('/readyz'))?.status === 200, 20_000, 100);
    const readyAt = Date.now();
    const result = await w;
    const whileAway = result.okAt.filter((t) => t >= killedAt && t <= readyAt).length;
    console.log(`node plugin SIGKILL+restart: serving again after ${restartMs} ms; writer ${result.rounds} rounds (${whileAway} while the plugin was away), ${result.errors.length} errors`);
    assert.ok(whileAway > 0, 'the writer wrote and read back while no node plugin ran');
    assert.deepEqual(result.errors, []);
    assert.deepEqual(await Promise.all(vols.map(s3fsOf)), pidsBefore, 'the same s3fs processes serve');
    assert.equal(rpcCount(mounter, 'EnsureStaged'), stagedBefore, 'nothing was staged again');
    for (const x of vols) assert.ok(await healthyStats(node, x), `${x.id} is healthy`);
    // Kubelet's periodic calls after the restart find everything in place.
    await stageAndPublish(node, v);
    assert.deepEqual(await Promise.all(vols.map(s3fsOf)), pidsBefore);
  });

  it('SIGTERM of the node plugin leaves every s3fs alone', async () => {
    assert.ok(node && mounter);
    const pidsBefore = await Promise.all(vols.map(s3fsOf));
    assert.equal(await node.stop('SIGTERM'), 0);
    assert.deepEqual(await Promise.all(vols.map(s3fsOf)), pidsBefore);
    for (const v of vols) assert.equal(await readWithDeadline(join(v.target, 'hello.txt')), `hello ${v.id}`);
    node = await startNode();
  });

  it('kill -9 of one s3fs: only that volume is affected, and the node plugin repairs it through the mounter', async () => {
    assert.ok(node && mounter);
    const [a, b] = vols as [Vol, Vol];
    const pidA = await s3fsOf(a);
    const pidB = await s3fsOf(b);
    assert.ok(pidA && pidB);
    const killed = Date.now();
    process.kill(pidA, 'SIGKILL');
    const w = writer(b.target, 3);
    const repaired = await waitFor('volume a readable again', async () => (await readWithDeadline(join(a.target, 'hello.txt'))) === `hello ${a.id}` || undefined, 30_000, 50);
    const repairMs = Date.now() - killed;
    assert.ok(repaired);
    const rb = await w;
    console.log(`s3fs SIGKILL: target readable again after ${repairMs} ms; the other volume's writer: ${rb.rounds} rounds, ${rb.errors.length} errors`);
    assert.deepEqual(rb.errors, [], 'the other volume never noticed');
    assert.equal(await s3fsOf(b), pidB, 'the other volume keeps its s3fs');
    const newA = await s3fsOf(a);
    assert.ok(newA && newA !== pidA, 'a new s3fs serves the repaired volume');
    assert.equal(await starterOwner(newA), mounter.pid);
    await waitFor('volume a healthy in stats', async () => ((node && (await healthyStats(node, a))) || undefined), 20_000, 200);
  });

  it('mounter restart (its s3fs die with it): the node plugin notices and repairs every volume through the new mounter', async () => {
    assert.ok(node && mounter);
    const pidsBefore = await Promise.all(vols.map(s3fsOf));
    await mounter.kill();
    for (const v of vols) assert.equal(await readWithDeadline(join(v.target, 'hello.txt')), undefined, 'the mounts are dead while the mounter is away');
    // Not ready (with the reason) but live: a liveness restart could not bring the mounter back.
    const readyz = await waitFor('the node plugin to notice', async () => {
      const r = await node?.http('/readyz');
      return r?.status === 500 ? r.body : undefined;
    }, 15_000, 100);
    assert.match(readyz, /mounter: not connected to .*mounter\.sock/);
    assert.equal((await node.http('/healthz')).status, 200);
    const started = Date.now();
    mounter = await startContainerMounter();
    for (const v of vols) {
      await waitFor(`${v.id} readable again`, async () => (await readWithDeadline(join(v.target, 'hello.txt'))) === `hello ${v.id}` || undefined, 60_000, 100);
    }
    const ms = Date.now() - started;
    console.log(`mounter restart: ${vols.length} volumes readable through their targets ${ms} ms after the new mounter started`);
    const pidsAfter = await Promise.all(vols.map(s3fsOf));
    for (const [i, pid] of pidsAfter.entries()) {
      assert.ok(pid && pid !== pidsBefore[i]);
      assert.equal(await starterOwner(pid), mounter.pid);
    }
    assert.match((await node.http('/metrics')).body, /^s3fs_csi_mounter_restarts_seen_total 1$/m);
    await waitFor('the node plugin ready again', async () => ((await node?.http('/readyz'))?.status === 200) || undefined, 15_000, 100);
  });

  it('credentials never appear in the mounter\'s or s3fs\'s argv, environment or logs, nor in error messages', async () => {
    assert.ok(node && mounter);
    const secret = s3.secretKey;
    const pids = [mounter.pid, ...(await Promise.all(vols.map(s3fsOf))).filter((p): p is number => p !== undefined)];
    for (const pid of pids) {
      for (const f of ['cmdline', 'environ']) assert.ok(!(await readFile(`/proc/${pid}/${f}`, 'utf8')).includes(secret), `${f} of ${pid}`);
    }
    // A stage that fails with a wrong secret: the key stays out of the answer and every log.
    const v = await newVolume();
    const wrong = `wrong-secret-${Date.now()}-value`;
    const err = await node.call('Node', 'NodeStageVolume', { volume_id: v.id, staging_target_path: v.staging, volume_capability: CAP, secrets: { ...s3.secrets, secretAccessKey: wrong } }, 60_000)
      .then(() => undefined, (e: grpc.ServiceError) => e);
    assert.ok(err, 'the stage fails');
    assert.ok(!err.details.includes(wrong));
    for (const logs of [mounter.logs, node.logs]) {
      assert.ok(!logs.some((l) => l.includes(secret) || l.includes(wrong)), 'no credential in logs');
    }
  });

  it('SIGTERM to the mounter stops its s3fs gracefully and exits', async () => {
    assert.ok(mounter);
    const pids = (await Promise.all(vols.map(s3fsOf))).filter((p): p is number => p !== undefined);
    assert.equal(pids.length, vols.length);
    mounter.signal('SIGTERM');
    assert.equal(await mounter.exited, 0);
    for (const pid of pids) assert.equal(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => 'gone'), 'gone');
    assert.ok(mounter.logs.some((l) => l.includes('stopping s3fs processes')));
    mounter = undefined;
  });
});

describe('version handshake', () => {
  it('refuses a mounter of another API version with a clear reason (Probe, metric, calls)', async () => {
    const fakeDir = await mkdtemp(join(tmpdir(), 's3fs-csi-mounter-v-'));
    const socket = join(fakeDir, 'fake.sock');
    // A mounter speaking only API v7 (no binary of that version exists yet: this is its Hello).
    const server = new grpc.Server();
    server.addService(mounterServiceDefinition, {
      Hello: (_c: unknown, cb: grpc.sendUnaryData<object>) => cb(null, { server_version: '9.0.0', api_version: 7, min_api_version: 7, instance_id: 'fake', started_at: '', node_id: 'test-node' }),
      Watch: (call: grpc.ServerWritableStream<unknown, object>) => call.write({ hello: { server_version: '9.0.0', api_version: 7, min_api_version: 7, instance_id: 'fake' } }),
    });
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
    const n = await startDriver({ mode: 'node', args: ['--mounter-endpoint', `unix://${socket}`, '--s3-endpoint', s3.endpoint] });
    try {
      const body = await waitFor('the refusal', async () => {
        const r = await n.http('/healthz');
        return r.status === 500 && r.body.includes('refused') ? r.body : undefined;
      }, 15_000, 100);
      assert.match(body, /mounter refused: mounter 9\.0\.0 no longer serves API v1 \(it serves v7\.\.v7\)/);
      assert.match((await n.http('/metrics')).body, /^s3fs_csi_mounter_compatible 0$/m);
      const staging = join(n.kubeletDir, 'plugins/kubernetes.io/csi/s3fs.csi.dev/x/globalmount');
      const code = await n.callCode('Node', 'NodeStageVolume', { volume_id: 'some-bucket', staging_target_path: staging, volume_capability: CAP, secrets: s3.secrets });
      assert.equal(code, grpc.status.FAILED_PRECONDITION);
      assert.ok(n.logs.some((l) => l.includes('"msg":"mounter refused"')));
    } finally {
      await n.cleanup();
      server.forceShutdown();
      await scrubDir(fakeDir);
    }
  });
});
