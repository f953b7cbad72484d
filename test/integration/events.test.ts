// Kubernetes Events of recovery, against the real kube-apiserver: what `kubectl describe pod` shows
// after a driver restart with stale mounts, after a storm of s3fs crashes, for a volume whose Secret
// is gone, and that a role without events permission changes nothing but the Events. Real etcd +
// kube-apiserver, real versitygw, real s3fs and FUSE, the real driver binary with a ServiceAccount
// bound to exactly the node RBAC rules (recovery-world.ts).
import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CoreV1Event } from '@kubernetes/client-node';
import { COMBINED_PREFIX } from '../../src/kube/event-aggregation.js';
import { NODE_READ_RULES } from '../../src/kube/rbac.js';
import { waitFor } from '../harness/net.js';
import { DRIVER, OTHER_NODE, THIS_NODE, type World, type WorldPod, buildWorld, readIn, s3fsServing, writeHost } from './recovery-world.js';

let world: World;
const BOUND_MS = 60_000;
const here = (): WorldPod[] => world.pods.filter((p) => p.node === THIS_NODE);
const content = (pv: string): string => `data of ${pv}\n`;

async function eventsOn(namespace: string, uid: string, reason?: string): Promise<CoreV1Event[]> {
  const fieldSelector = `involvedObject.uid=${uid}${reason ? `,reason=${reason}` : ''}`;
  return (await world.kube.core.listNamespacedEvent({ namespace, fieldSelector })).items;
}
const claimUid = async (namespace: string, name: string): Promise<string> => (await world.kube.core.readNamespacedPersistentVolumeClaim({ namespace, name })).metadata?.uid ?? '';
const allEvents = async (): Promise<CoreV1Event[]> => (await world.kube.core.listEventForAllNamespaces({})).items;

async function readable(p: WorldPod): Promise<boolean> {
  const r = await readIn(undefined, join(p.target, 'hello.txt'), 2000);
  return r.ok && r.text === content(p.volume.pvName);
}
async function allReadable(): Promise<void> {
  await waitFor('every target readable', async () => ((await Promise.all(here().map(readable))).every(Boolean) ? true : undefined), BOUND_MS, 100);
}
async function metric(name: string, labels: string): Promise<number> {
  const body = (await world.driver!.http('/metrics')).body;
  const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)`, 'm').exec(body);
  return m ? Number(m[1]) : 0;
}
async function wipeLocalCredentials(): Promise<void> {
  const runtime = join(world.base, 'runtime');
  for (const f of await readdir(runtime)) await rm(join(runtime, f), { force: true });
}

before(async () => {
  // 3 volumes: 0 and 2 with the central Secret (PV reference), 1 with team-b's own Secret (templated
  // in the StorageClass); pods app-0 and app-3 share volume 0; app-4 runs on another node.
  world = await buildWorld({ volumes: 3, podsHere: 4, podsElsewhere: 1 });
  for (const v of world.volumes) {
    const p = here().find((x) => x.volume.handle === v.handle);
    if (p) await writeHost(join(p.target, 'hello.txt'), content(v.pvName));
  }
  await allReadable();
}, { timeout: 240_000 });

after(async () => {
  await world?.cleanup();
}, { timeout: 120_000 });

describe('Kubernetes Events of recovery (real kube-apiserver)', () => {
  it('driver restart with stale mounts: every Pod and PVC gets Normal VolumeRecovered, as client-go writes it', async () => {
    await world.killAll();
    const started = Date.now();
    await world.startDriver({ waitReady: false });
    const objects = [
      ...here().map((p) => ({ ns: p.namespace, uid: p.uid, kind: 'Pod', name: p.name, pv: p.volume.pvName })),
      ...(await Promise.all(world.volumes.map(async (v) => ({ ns: v.namespace, uid: await claimUid(v.namespace, v.claim), kind: 'PersistentVolumeClaim', name: v.claim, pv: v.pvName })))),
    ];
    const seen = await waitFor('a VolumeRecovered Event on every pod and claim', async () => {
      const lists = await Promise.all(objects.map((o) => eventsOn(o.ns, o.uid, 'VolumeRecovered')));
      return lists.every((l) => l.length > 0) ? lists : undefined;
    }, BOUND_MS, 100);
    const ms = Date.now() - started;
    process.stdout.write(`# events: ${objects.length} VolumeRecovered Events (4 pods, 3 PVCs) in the API ${ms} ms after the driver was started\n`);
    await allReadable();
    objects.forEach((o, i) => {
      const events = seen[i] ?? [];
      assert.equal(events.length, 1, `${o.kind} ${o.name}: one Event`);
      const e = events[0]!;
      assert.equal(e.type, 'Normal');
      assert.equal(e.count, 1);
      assert.match(e.message ?? '', new RegExp(`^volume ${o.pv} recovered after driver start in [0-9.]+ m?s: s3fs restarted`));
      assert.deepEqual([e.involvedObject.kind, e.involvedObject.apiVersion, e.involvedObject.namespace, e.involvedObject.name, e.involvedObject.uid], [o.kind, 'v1', o.ns, o.name, o.uid]);
      assert.ok(e.involvedObject.resourceVersion, 'resourceVersion as GetReference sets it');
      assert.deepEqual([e.source?.component, e.source?.host, e.reportingComponent, e.reportingInstance], [DRIVER, THIS_NODE, DRIVER, THIS_NODE]);
      assert.ok(e.firstTimestamp && e.lastTimestamp);
    });
    const elsewhere = world.pods.find((p) => p.node === OTHER_NODE);
    assert.ok(elsewhere);
    assert.deepEqual(await eventsOn(elsewhere.namespace, elsewhere.uid), [], 'nothing on the other node\'s pod');
  });

  it('a storm of 50 s3fs crashes (2 volumes x 25): repaired every time, a bounded number of Event objects, aggregated', async () => {
    const victims = [world.volumes[0]!, world.volumes[2]!];
    const started = Date.now();
    for (let round = 0; round < 25; round++) {
      const old = await Promise.all(victims.map((v) => s3fsServing(world, v.stagingPath)));
      for (const pid of old) process.kill(pid, 'SIGKILL');
      await waitFor(`round ${round}: a new s3fs serves both volumes`, async () => {
        const now = await Promise.all(victims.map((v) => s3fsServing(world, v.stagingPath).catch(() => 0)));
        return now.every((pid, i) => pid !== 0 && pid !== old[i]) ? true : undefined;
      }, BOUND_MS, 20);
      await allReadable();
    }
    const stormMs = Date.now() - started;
    // The recorder writes in the background: wait until its queue has settled (no write for 2 s).
    let last = -1;
    await waitFor('writes settled', async () => {
      const n = await metric('s3fs_csi_events_written_total', 'type="Normal",reason="VolumeRecovered"');
      if (n === last) return true;
      last = n;
      return undefined;
    }, 30_000, 2000);
    const users = here().filter((p) => victims.some((v) => v.handle === p.volume.handle));
    const objects = [
      ...users.map((p) => ({ ns: p.namespace, uid: p.uid, name: `pod ${p.name}` })),
      ...(await Promise.all(victims.map(async (v) => ({ ns: v.namespace, uid: await claimUid(v.namespace, v.claim), name: `pvc ${v.claim}` })))),
    ];
    let total = 0;
    for (const o of objects) {
      const events = await eventsOn(o.ns, o.uid, 'VolumeRecovered');
      total += events.length;
      // 1 from the restart + 25 crashes: 9 written as they are, then one combined Event whose count grows.
      assert.ok(events.length <= 10, `${o.name}: ${events.length} Event objects`);
      const combined = events.find((e) => e.message?.startsWith(COMBINED_PREFIX));
      assert.ok(combined, `${o.name}: a combined Event`);
      assert.ok((combined.count ?? 0) > 1, `${o.name}: the combined Event counts repeats (${combined.count})`);
      assert.match(combined.message ?? '', /recovered after s3fs exit in/);
    }
    const written = await metric('s3fs_csi_events_written_total', 'type="Normal",reason="VolumeRecovered"');
    const spam = await metric('s3fs_csi_events_dropped_total', 'cause="spam"');
    process.stdout.write(`# events: 50 repairs in ${stormMs} ms on ${objects.length} objects -> ${total} Event objects, ${written} writes in all (creates + count patches), ${spam} dropped by the per-object spam filter\n`);
    assert.ok(total <= objects.length * 10);
    assert.ok(spam > 0, 'the spam filter capped the writes (25 per object and reason)');
  });

  it('a volume whose Secret is gone: Warning SecretUnreadable on its pod and PVC; VolumeRecovered once it is back', async () => {
    const broken = world.volumes[1]!;
    assert.equal(broken.namespace, 'team-b');
    const secret = await world.kube.core.readNamespacedSecret({ namespace: 'team-b', name: 's3-creds' });
    await world.kube.core.deleteNamespacedSecret({ namespace: 'team-b', name: 's3-creds' });
    await world.killAll();
    await wipeLocalCredentials(); // no local fallback: only the Secret could heal it
    await world.startDriver({ waitReady: false, args: ['--recovery-interval', '2s'] });
    const victim = here().find((p) => p.volume.handle === broken.handle)!;
    const pvcUid = await claimUid(broken.namespace, broken.claim);
    const [onPod, onPvc] = await waitFor('SecretUnreadable on the pod and the claim', async () => {
      const r = await Promise.all([eventsOn(victim.namespace, victim.uid, 'SecretUnreadable'), eventsOn(broken.namespace, pvcUid, 'SecretUnreadable')]);
      return r.every((l) => l.length > 0) ? r : undefined;
    }, BOUND_MS, 200);
    for (const e of [...onPod!, ...onPvc!]) {
      assert.equal(e.type, 'Warning');
      assert.match(e.message ?? '', new RegExp(`^volume ${broken.pvName} cannot be repaired: its Secret team-b/s3-creds is missing or unusable \\(.*not found\\)`));
    }
    const others = here().filter((p) => p.volume.handle !== broken.handle);
    await waitFor('the other volumes readable', async () => ((await Promise.all(others.map(readable))).every(Boolean) ? true : undefined), BOUND_MS, 100);
    // The periodic scan (2 s) retries: identical Warnings patch the count of the same Event.
    await waitFor('the Warning counted again', async () => {
      const l = await eventsOn(victim.namespace, victim.uid, 'SecretUnreadable');
      return l.length === 1 && (l[0]?.count ?? 0) >= 2 ? true : undefined;
    }, 30_000, 500);
    await world.kube.core.createNamespacedSecret({ namespace: 'team-b', body: { metadata: { name: 's3-creds', namespace: 'team-b' }, data: secret.data } });
    await allReadable();
    await waitFor('VolumeRecovered after the periodic scan', async () => {
      const l = await eventsOn(victim.namespace, victim.uid, 'VolumeRecovered');
      return l.some((e) => /recovered after periodic scan/.test(e.message ?? '')) ? true : undefined;
    }, 30_000, 200);
  });

  it('no Event message carries a credential', async () => {
    const events = await allEvents();
    assert.ok(events.length > 0);
    for (const e of events) {
      for (const secret of [world.s3.secretKey, world.s3.accessKey]) assert.ok(!(e.message ?? '').includes(secret), `${e.reason}: ${e.message}`);
    }
  });

  it('a role without events permission: every volume is still repaired; Events are dropped and counted, nothing is written', async () => {
    const readOnly = await world.kube.kubeconfigForRules('no-events', NODE_READ_RULES.map((r) => ({ ...r })));
    const before = (await allEvents()).length;
    await world.killAll();
    const started = Date.now();
    const d = await world.startDriver({ kubeconfig: readOnly, waitReady: false });
    await allReadable();
    process.stdout.write(`# events: without events RBAC all targets readable ${Date.now() - started} ms after the start\n`);
    await waitFor('drops counted', async () => ((await metric('s3fs_csi_events_dropped_total', 'cause="forbidden"')) > 0 ? true : undefined), 20_000, 200);
    // The Events of the first volumes are written (and refused) while the start-up scan still repairs
    // the others: the scan's own count comes when it ends (the local pass before it counts as
    // result="local", so that one is not the scan's).
    await waitFor('the start-up scan done', async () => ((await metric('s3fs_csi_recovery_runs_total', 'trigger="startup",result="(?:ok|partial|error)"')) > 0 ? true : undefined), 20_000, 200);
    assert.equal(await metric('s3fs_csi_recovery_runs_total', 'trigger="startup",result="ok"'), 1);
    assert.equal(await metric('s3fs_csi_events_written_total', 'type="Normal",reason="VolumeRecovered"'), 0);
    assert.equal((await allEvents()).length, before, 'no Event written');
    assert.equal(d.logs.filter((l) => /Kubernetes Events cannot be written \(RBAC\)/.test(l)).length, 1, 'said once');
  });
});
