// End to end: the driver rebuilds lost s3fs mounts from the Kubernetes API after it restarts, and
// repairs s3fs processes that die while it runs. Real kube-apiserver + etcd, real versitygw, real s3fs
// and FUSE, the real driver binary with a ServiceAccount bound to exactly the node RBAC rules.
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { existsSync, readFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { NODE_RBAC_RULES } from '../../src/kube/rbac.js';
import { mountPointsUnder, s3fsPidsUnder, unmountUnder } from '../harness/mounts.js';
import { waitFor } from '../harness/net.js';
import { type Container, type World, OTHER_NODE, THIS_NODE, buildWorld, container, readIn, s3fsServing, writeHost } from './recovery-world.js';

let world: World;
const containers: Container[] = [];

// How long a test waits for recovery before it calls it broken. A bound on liveness, not a goal: how
// fast recovery is gets measured in bench/ (`make bench ONLY=recovery`), beside its limit, never
// asserted here, where the machine's load decides the figure. Each test prints the time it saw.
const RECOVERY_BOUND_MS = 60_000;

const here = (): World['pods'] => world.pods.filter((p) => p.node === THIS_NODE);
const content = (pvName: string): string => `data of ${pvName}\n`;

/** ms until every target of this node's pods reads its file, or throws after `limitMs`. */
async function allReadable(limitMs: number, started = Date.now()): Promise<number> {
  const pending = new Set(here().map((p) => p.target));
  await waitFor(`all ${pending.size} targets readable`, async () => {
    await Promise.all([...pending].map(async (t) => {
      const p = here().find((x) => x.target === t);
      const r = await readIn(undefined, join(t, 'hello.txt'), 2000);
      if (r.ok && p && r.text === content(p.volume.pvName)) pending.delete(t);
    }));
    return pending.size === 0 ? true : undefined;
  }, limitMs, 100).catch((err: Error) => {
    throw new Error(`${err.message}; still unreadable: ${[...pending].slice(0, 5).join(', ')}\n${world.driver?.logs.filter((l) => /"level":(40|50)/.test(l)).slice(-10).join('\n')}`);
  });
  return Date.now() - started;
}

before(async () => {
  world = await buildWorld({ volumes: 10, podsHere: 15, podsElsewhere: 5 });
  // One file per volume, written through one of its targets (the other targets see it too).
  const seen = new Set<string>();
  for (const p of here()) {
    if (seen.has(p.volume.handle)) continue;
    seen.add(p.volume.handle);
    await writeHost(join(p.target, 'hello.txt'), content(p.volume.pvName));
  }
  await allReadable(RECOVERY_BOUND_MS);
}, { timeout: 240_000 });

after(async () => {
  for (const c of containers) c.stop();
  await world?.cleanup();
}, { timeout: 120_000 });

describe('recovery after a driver restart (3 namespaces, 2 StorageClasses, 10 PVCs, 15 pods here + 5 elsewhere)', () => {
  let slave: Container[] = [];
  let priv: Container[] = [];

  it('the world is set up as kubelet would have it', async () => {
    assert.equal(world.volumes.length, 10);
    assert.equal(here().length, 15);
    assert.equal(world.pods.filter((p) => p.node === OTHER_NODE).length, 5);
    assert.equal(new Set(world.volumes.map((v) => v.namespace)).size, 3);
    assert.equal(new Set(world.volumes.map((v) => v.storageClass)).size, 2);
    for (const p of world.pods.filter((x) => x.node === OTHER_NODE)) assert.ok(!existsSync(p.target), `${p.target} exists`);
    assert.equal((await s3fsPidsUnder(world.base)).length, 10, 'one s3fs per volume');
  });

  it('containers: HostToContainer (slave) and default (private) mount namespaces read the data', async () => {
    slave = [await container('slave'), await container('slave')];
    priv = [await container('private'), await container('private')];
    containers.push(...slave, ...priv);
    const ps = here();
    for (const [i, c] of [...slave, ...priv].entries()) {
      const p = ps[i];
      assert.ok(p);
      const r = await readIn(c.pid, join(p.target, 'hello.txt'));
      assert.ok(r.ok, r.text);
    }
  });

  it('SIGKILL of the driver and every s3fs: every target fails with ENOTCONN', async () => {
    await world.killAll();
    await waitFor('all s3fs gone', async () => ((await s3fsPidsUnder(world.base)).length === 0 ? true : undefined), 5000);
    for (const p of here()) {
      const r = await readIn(undefined, join(p.target, 'hello.txt'));
      assert.equal(r.ok, false);
      assert.match(r.text, /Transport endpoint is not connected/);
    }
  });

  it('restart: every target of this node is readable again; nothing for the other node', async () => {
    const started = Date.now();
    const d = await world.startDriver({ waitReady: false });
    const ms = await allReadable(RECOVERY_BOUND_MS, started);
    process.stdout.write(`# recovery: 10 volumes / 15 targets readable ${ms} ms after the driver was started\n`);
    await waitFor('driver ready', async () => ((await d.http('/readyz')).status === 200 ? true : undefined), 10_000);
    for (const p of world.pods.filter((x) => x.node === OTHER_NODE)) {
      assert.ok(!existsSync(p.target), `${p.target} must not exist`);
      assert.deepEqual(await mountPointsUnder(join(world.kubeletDir, 'pods', p.uid)), []);
    }
    assert.equal((await s3fsPidsUnder(world.base)).length, 10, 'exactly one new s3fs per volume');
    const lines = d.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const scan = lines.find((l) => l.msg === 'recovery scan done' && l.trigger === 'startup');
    assert.ok(scan, 'start-up scan logged');
    // The start-up local pass (on-disk records and passwd files, no API) repairs first; the scan
    // after it repairs what is left (here nothing: the credentials were on disk).
    const local = lines.find((l) => l.msg === 'local recovery pass done' && l.trigger === 'startup');
    process.stdout.write(`# recovery: start-up local pass ${String(local?.ms)} ms, scan ${String(scan.ms)} ms, ${String(scan.api_calls)} API calls\n`);
    assert.equal(Number(local?.repaired ?? 0) + Number(scan.repaired), 10);
    assert.equal(scan.failed, 0);
    const metrics = (await d.http('/metrics')).body;
    assert.match(metrics, /s3fs_csi_recovery_actions_total\{action="repair",result="ok"\} 10/);
    assert.match(metrics, /s3fs_csi_recovery_runs_total\{trigger="startup",result="ok"\} 1/);
  });

  it('HostToContainer namespaces read the data again without being touched', async () => {
    const ps = here();
    for (const [i, c] of slave.entries()) {
      const p = ps[i];
      assert.ok(p);
      const r = await readIn(c.pid, join(p.target, 'hello.txt'));
      assert.ok(r.ok, `slave namespace of ${p.target}: ${r.text}`);
      assert.equal(r.text, content(p.volume.pvName));
    }
  });

  it('private namespaces still fail until "restarted" (a new namespace), then read the data', async () => {
    const ps = here();
    for (const [i, c] of priv.entries()) {
      const p = ps[slave.length + i];
      assert.ok(p);
      const r = await readIn(c.pid, join(p.target, 'hello.txt'));
      assert.equal(r.ok, false, 'a private copy keeps the dead mount');
      assert.match(r.text, /Transport endpoint is not connected/);
      c.stop();
      const restarted = await container('private');
      containers.push(restarted);
      const r2 = await readIn(restarted.pid, join(p.target, 'hello.txt'));
      assert.ok(r2.ok, r2.text);
      assert.equal(r2.text, content(p.volume.pvName));
    }
  });

  it('an s3fs killed while the driver runs is repaired with no API call (API server stopped)', async () => {
    await world.kube.stopApiServer();
    try {
      const victim = here()[0];
      assert.ok(victim);
      const pid = await s3fsOf(victim.volume.stagingPath);
      const started = Date.now();
      process.kill(pid, 'SIGKILL');
      await waitFor('victim dead', async () => ((await readIn(undefined, join(victim.target, 'hello.txt'))).ok ? undefined : true), 5000, 20).catch(() => undefined);
      await waitFor('victim readable again', async () => ((await readIn(undefined, join(victim.target, 'hello.txt'))).ok ? true : undefined), RECOVERY_BOUND_MS, 100);
      process.stdout.write(`# recovery: s3fs killed -> readable again in ${Date.now() - started} ms (API server down)\n`);
      await allReadable(RECOVERY_BOUND_MS);
    } finally {
      await world.kube.startApiServer();
    }
  });

  it('a hung s3fs (SIGSTOP) found by NodeGetVolumeStats is replaced', async () => {
    const victim = here()[1];
    assert.ok(victim);
    const pid = await s3fsOf(victim.volume.stagingPath);
    const d = world.driver;
    assert.ok(d);
    const started = Date.now();
    process.kill(pid, 'SIGSTOP');
    try {
      const stats = await d.call<{ volume_condition: { abnormal: boolean; message: string } }>('Node', 'NodeGetVolumeStats', { volume_id: victim.volume.handle, volume_path: victim.target }, 15_000);
      assert.equal(stats.volume_condition.abnormal, true, stats.volume_condition.message);
      // found by stats (2 s deadline) + the mounter's own check (2 s) + SIGTERM grace before SIGKILL (5 s) + s3fs start
      await waitFor('hung volume readable again', async () => ((await readIn(undefined, join(victim.target, 'hello.txt'))).ok ? true : undefined), RECOVERY_BOUND_MS, 100);
      process.stdout.write(`# recovery: hung s3fs -> readable again in ${Date.now() - started} ms (found by NodeGetVolumeStats)\n`);
      assert.ok(!existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z', 'the hung s3fs was stopped');
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    await allReadable(RECOVERY_BOUND_MS);
  });

  it('API server down at start: live, not ready, repaired once the API comes back', async () => {
    await world.kube.stopApiServer();
    await world.killAll();
    // Lose the local credentials too (as if the runtime dir were wiped): only the API can heal now.
    const runtime = join(world.base, 'runtime');
    for (const f of await readdir(runtime)) await rm(join(runtime, f), { force: true });
    const d = await world.startDriver({ waitReady: true });
    await sleep(3000);
    const health = await d.http('/healthz');
    assert.equal(health.status, 200, health.body);
    const ready = await d.http('/readyz');
    assert.equal(ready.status, 500, ready.body);
    assert.match(ready.body, /not ready \(recovery\): recovery: API server unreachable/);
    const probe = await d.call<{ ready: { value: boolean } }>('Identity', 'Probe', {});
    assert.equal(probe.ready.value, false);
    assert.ok(d.logs.some((l) => /start-up recovery cannot read the API/.test(l)), 'the outage is logged');
    const back = Date.now();
    await world.kube.startApiServer();
    const apiMs = Date.now() - back;
    const ms = await allReadable(RECOVERY_BOUND_MS, back);
    process.stdout.write(`# recovery: API server back (${apiMs} ms to start) -> all targets readable ${ms} ms after it was started\n`);
    await waitFor('ready after the API returned', async () => ((await d.http('/readyz')).status === 200 ? true : undefined), 10_000);
    assert.ok(d.proc.exitCode === null, 'never crashed');
  });

  it('API reads share connections: 40 reads, sequential and concurrent, over at most two TLS connections', async () => {
    // client-node 2.0 alone opens one connection per request (a new pool each time): 40 here.
    const { createKubeReader } = await import('../../src/kube/client.js');
    let connected = 0;
    const onConnect = (): void => void connected++;
    diagnostics.subscribe('undici:client:connected', onConnect);
    try {
      const reader = createKubeReader({ kubeconfig: world.nodeKubeconfig });
      for (let i = 0; i < 20; i++) assert.equal((await reader.listPodsOnNode(THIS_NODE)).length, 15);
      await Promise.all(Array.from({ length: 20 }, () => reader.getSecretData('s3fs-system', 's3-creds')));
      assert.equal(reader.calls, 40);
      assert.ok(connected >= 1 && connected <= 2, `${connected} connections for 40 reads`);
    } finally {
      diagnostics.unsubscribe('undici:client:connected', onConnect);
    }
  });

  it('RBAC: exactly the node rules suffice; a role without "get secrets" gives an error naming it', async () => {
    const { createKubeReader, KubeError } = await import('../../src/kube/client.js');
    const full = createKubeReader({ kubeconfig: world.nodeKubeconfig });
    const v = world.volumes[0];
    assert.ok(v);
    assert.ok(await full.getSecretData('s3fs-system', 's3-creds'));
    assert.equal((await full.listPodsOnNode(THIS_NODE)).length, 15);
    const limited = await world.kube.kubeconfigForRules('no-secrets', NODE_RBAC_RULES.filter((r) => !r.resources.includes('secrets')).map((r) => ({ ...r })));
    const reader = createKubeReader({ kubeconfig: limited });
    await assert.rejects(reader.getSecretData('s3fs-system', 's3-creds'), (err: unknown) => {
      assert.ok(err instanceof KubeError);
      assert.equal(err.kind, 'forbidden');
      assert.match(err.message, /RBAC denies "get secrets".*resources: \["secrets"\], verbs: \["get"\]/);
      return true;
    });

    // The driver with that role: repairs what local state allows, and says what is missing.
    await world.killAll();
    const runtime = join(world.base, 'runtime');
    for (const f of await readdir(runtime)) await rm(join(runtime, f), { force: true });
    const d = await world.startDriver({ kubeconfig: limited });
    await waitFor('the missing permission reported', async () => {
      const r = await d.http('/readyz');
      return /RBAC denies "get secrets"/.test(r.body) ? r : undefined;
    }, 15_000, 200);
    assert.ok(d.logs.some((l) => /RBAC denies \\"get secrets\\"/.test(l)), 'logged');
    assert.ok(!d.logs.some((l) => l.includes(world.s3.secretKey)), 'no secret in the logs');
    // Back to the right role: everything heals.
    await world.killAll();
    await world.startDriver({ args: ['--recovery-interval', '2s'] });
    await allReadable(RECOVERY_BOUND_MS);
  });

  it('the periodic scan re-publishes a target that lost its mount (vol_data.json still there)', async () => {
    const victim = here()[2];
    assert.ok(victim);
    const d = world.driver;
    assert.ok(d);
    // The interval scan may catch the target half-unmounted (a dead layer on top: "republish") or
    // empty ("publish"); either way one more target action must have succeeded.
    const targetActions = async (): Promise<number> => {
      const body = (await d.http('/metrics')).body;
      let n = 0;
      for (const m of body.matchAll(/s3fs_csi_recovery_actions_total\{action="(?:re)?publish",result="ok"\} (\d+)/g)) n += Number(m[1]);
      return n;
    };
    const before = await targetActions();
    // Every layer (earlier repairs stacked some): nothing is mounted there any more.
    await unmountUnder(victim.target);
    assert.deepEqual(await mountPointsUnder(victim.target), []);
    assert.equal((await readIn(undefined, join(victim.target, 'hello.txt'))).ok, false);
    const started = Date.now();
    await waitFor('target re-published', async () => ((await readIn(undefined, join(victim.target, 'hello.txt'))).ok ? true : undefined), 8000, 100);
    process.stdout.write(`# recovery: unmounted target re-published by the interval scan in ${Date.now() - started} ms (interval 2 s)\n`);
    assert.ok((await targetActions()) > before, 'a recovery publish/republish of the target was counted');
  });
});

const s3fsOf = (stagingPath: string): Promise<number> => s3fsServing(world, stagingPath);
