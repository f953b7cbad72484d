// Mounts that outlive the driver, under a real kubelet: a pod writes a line every 100 ms through a
// volume while the node plugin is SIGKILLed (as the OOM killer or a failed liveness probe would end
// it) and upgraded with helm, while the volume's s3fs is killed, and while the mounter pod itself is
// replaced. The writer's container mounts /data without propagation (the default), so a dead mount
// can only come back inside it by being healed in place (docs/kernel.md): it is never restarted.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { pidsWhere } from '../../src/mount/s3fs-process.js';
import { packageRoot } from '../../src/paths.js';
import { isPodReady } from '../harness/cluster.js';
import { waitFor } from '../harness/net.js';
import { DRIVER, NAMESPACE, type World, driverRegistered, startWorld, waitNodePluginReady } from './world.js';
import { type Workloads, workloads } from './workloads.js';

const NS = 'survival';
let w: World;
let k: Workloads;
const figures: Record<string, number> = {};

// Appends a numbered line every 100 ms and reads it back; reports each failed write (with its error)
// or wrong read-back (with what it read) and, every 10 writes, its counts. Opening, writing and closing
// each time makes every write a full round through s3fs.
const WRITER = [
  'echo shared-data > /data/shared.txt',
  'n=0; e=0',
  'while true; do',
  '  n=$((n+1))',
  '  if err=$( { echo "line $n" >> /data/writer.log; } 2>&1 ); then',
  '    got=$(tail -n 1 /data/writer.log 2>&1) || true',
  '    if [ "$got" != "line $n" ]; then e=$((e+1)); echo "readback-error $n got: $got"; fi',
  '  else e=$((e+1)); echo "write-error $n: $err"; fi',
  '  [ $((n % 10)) -eq 0 ] && echo "progress $n errors $e"',
  '  sleep 0.1',
  'done',
].join('\n');

// Reads a file of the same volume every 200 ms (another container, no propagation either). Not the
// writer's log: s3fs 1.90 itself, with no driver involved, lets a reader of a file that another
// process keeps appending to read stale or zero-filled data (and the appender's read-back then fails
// too) once or twice in 1,500 appends (docs/node.md, "s3fs's consistency"); the writer's count must show
// what a driver restart does, not that.
const READER = [
  'while true; do',
  '  if l=$(cat /data/shared.txt 2>/dev/null); then echo "read-ok $l"; else echo "read-error"; fi',
  '  sleep 0.2',
  'done',
].join('\n');

/** The reader's verdict from its last line: did its most recent read succeed? */
async function readerOk(pod: string): Promise<boolean> {
  const last = (await k.logs(pod)).trim().split('\n').at(-1) ?? '';
  return last === 'read-ok shared-data';
}

/**
 * After an outage that began at `since`: the writer's and both readers' times until they work again,
 * recorded in `figures` under `name`.
 */
async function outageRecovered(name: string, since: number, what: string): Promise<void> {
  const [r, peerMs, h2cMs] = await Promise.all([writerRecovers('writer', since, what), readerRecovers('peer', since, what), readerRecovers('peer-h2c', since, what)]);
  figures[`${name}ToWritesBackMs`] = r.ms;
  figures[`${name}FailedWrites`] = r.errors;
  figures[`${name}ToReadsBackNoneMs`] = peerMs;
  figures[`${name}ToReadsBackHostToContainerMs`] = h2cMs;
}

/** Waits until the reader's reads fail and then succeed again; ms from `since` until they do. */
async function readerRecovers(pod: string, since: number, what: string): Promise<number> {
  await waitFor(`${pod}: reads fail (${what})`, async () => (!(await readerOk(pod)) || undefined), 60_000, 100);
  await waitFor(`${pod}: reads succeed again (${what})`, async () => ((await readerOk(pod)) || undefined), 120_000, 100);
  return Date.now() - since;
}

interface WriterState { writes: number; errors: number }

async function writerState(pod: string): Promise<WriterState> {
  const lines = (await k.logs(pod)).split('\n').filter((l) => l.startsWith('progress '));
  const last = lines.at(-1)?.split(' ') ?? [];
  return { writes: Number(last[1] ?? 0), errors: Number(last[3] ?? 0) };
}

/** Waits until the writer has made `more` further writes; returns its state then. */
async function writerAdvances(pod: string, more: number, what: string, timeoutMs = 120_000): Promise<WriterState> {
  const from = (await writerState(pod)).writes;
  return waitFor(`${pod}: ${more} more writes (${what})`, async () => {
    const s = await writerState(pod);
    return s.writes >= from + more ? s : undefined;
  }, timeoutMs, 250);
}

/** Waits until writes fail and then succeed again; ms from `since` to the first good write after errors. */
async function writerRecovers(pod: string, since: number, what: string): Promise<{ ms: number; errors: number }> {
  const before = await writerState(pod);
  await waitFor(`${pod}: writes fail (${what})`, async () => ((await writerState(pod)).errors > before.errors || undefined), 60_000, 100);
  // Back: 20 writes in a row without a new error. The time reported is when the error count was last
  // seen growing (an upper bound, to within one poll, of the last failed write).
  let last = await writerState(pod);
  let lastErrorSeenAt = Date.now();
  await waitFor(`${pod}: writes succeed again (${what})`, async () => {
    const s = await writerState(pod);
    if (s.errors !== last.errors) {
      last = s;
      lastErrorSeenAt = Date.now();
      return undefined;
    }
    return s.writes >= last.writes + 20 || undefined;
  }, 120_000, 100);
  return { ms: lastErrorSeenAt - since, errors: last.errors - before.errors };
}

const kubeletDirArg = (): string => `--kubelet-dir=${w.node.kubeletDir}`;
const s3fsOf = (bucket: string): Promise<number[]> => k.s3fsOfBucket(bucket);
const restarts = (p: V1Pod): number => p.status?.containerStatuses?.reduce((n, c) => n + c.restartCount, 0) ?? 0;

const podOf = (component: string): Promise<V1Pod> => w.podOf(component);

describe('mounts outlive the driver under a real kubelet', { timeout: 20 * 60_000 }, () => {
  let bucket = '';
  let otherBucket = '';

  before(async () => {
    w = await startWorld();
    k = workloads(w, NS);
    await w.install(w.values);
    await waitNodePluginReady(w);
    await waitFor('driver registered in CSINode', async () => (await driverRegistered(w)) || undefined, 60_000, 200);
    await w.node.kube.createNamespace(NS);
    const pv = await k.provision('shared');
    bucket = (await k.bucketOf(pv)).bucket;
    const otherPv = await k.provision('other');
    otherBucket = (await k.bucketOf(otherPv)).bucket;
    await k.pod('writer', 'shared', WRITER);
    await w.node.waitPod(NS, 'writer', isPodReady, 120_000, 'Ready');
    await k.pod('peer', 'shared', READER);
    await k.pod('peer-h2c', 'shared', READER, { mountPropagation: 'HostToContainer' });
    await w.node.waitPod(NS, 'peer', isPodReady, 120_000, 'Ready');
    await w.node.waitPod(NS, 'peer-h2c', isPodReady, 120_000, 'Ready');
    await k.runPod('bystander', 'other', 'echo kept > /data/kept.txt && cat /data/kept.txt');
    await writerAdvances('writer', 20, 'start');
    for (const r of ['peer', 'peer-h2c']) await waitFor(`${r} reads the volume`, async () => (await readerOk(r)) || undefined, 30_000, 250);
  });

  after(async () => {
    if (!w) return;
    process.stdout.write(`# survival: ${JSON.stringify(figures)}\n`);
    await w.saveLogs(join(packageRoot, 'build', 'e2e', 'logs', 'survival'), [NS]).catch((err: Error) => process.stdout.write(`# logs not saved: ${err.message}\n`));
    const drift = await w.stop();
    assert.deepEqual(drift, [], 'the node left nothing running, mounted or changed');
  });

  it('its /healthz liveness probe fails (registration socket removed): kubelet restarts the node plugin, the writer sees no error', async () => {
    const s3fsBefore = await s3fsOf(bucket);
    const node = await podOf('node');
    const before = await writerState('writer');
    const restartsBefore = restarts(node);
    // A real fault the driver's /healthz reports: kubelet can no longer find the driver.
    await rm(join(w.node.kubeletDir, 'plugins_registry', 's3fs.csi.dev-reg.sock'));
    const t0 = Date.now();
    const restarted = await w.node.waitPod(NAMESPACE, node.metadata?.name ?? '', (p) => restarts(p) > restartsBefore && isPodReady(p), 180_000, 'restarted by kubelet and Ready');
    figures.livenessFailureToRestartedReadyMs = Date.now() - t0;
    assert.equal(restarted.metadata?.uid, node.metadata?.uid, 'the same pod, its container restarted by kubelet');
    const probes = (await w.node.kubeletGet('/metrics/probes')).body;
    assert.match(probes, new RegExp(`prober_probe_total\\{[^}]*container="s3fs-csi"[^}]*pod="${node.metadata?.name}"[^}]*probe_type="Liveness"[^}]*result="failed"[^}]*\\} [1-9]`), 'kubelet saw the liveness probe fail');
    await waitFor('driver registered again', async () => (await driverRegistered(w)) || undefined, 60_000, 200);
    const after = await writerAdvances('writer', 30, 'after the liveness restart');
    assert.equal(after.errors, before.errors, 'no write or read-back failed');
    assert.deepEqual(await s3fsOf(bucket), s3fsBefore, 's3fs never restarted');
    assert.equal(restarts(await k.readPod('writer')), 0);
  });

  it('SIGKILL of the node plugin (an OOM kill): kubelet restarts it, the writer sees no error, s3fs is the same process', async () => {
    const s3fsBefore = await s3fsOf(bucket);
    assert.equal(s3fsBefore.length, 1);
    const mounter = await podOf('mounter');
    const node = await podOf('node');
    // The driver's node process, as the OOM killer would pick it (tini, PID 1 of the container, has the same arguments).
    const nodeProcs = await pidsWhere((argv) => !(argv[0]?.endsWith('tini') ?? true) && argv.includes('--mode=node') && argv.includes(kubeletDirArg()));
    assert.equal(nodeProcs.length, 1, `one node plugin process: ${nodeProcs.join(' ')}`);
    const before = await writerState('writer');
    const restartsBefore = restarts(node);
    process.kill(nodeProcs[0] ?? 0, 'SIGKILL');
    const restarted = await w.node.waitPod(NAMESPACE, node.metadata?.name ?? '', (p) => restarts(p) > restartsBefore && isPodReady(p), 180_000, 'restarted and Ready');
    assert.equal(restarted.metadata?.uid, node.metadata?.uid, 'the same pod, its container restarted');
    const after = await writerAdvances('writer', 30, 'after the node plugin restart');
    assert.equal(after.errors, before.errors, 'no write failed');
    assert.deepEqual(await s3fsOf(bucket), s3fsBefore, 's3fs never restarted');
    assert.equal((await podOf('mounter')).metadata?.uid, mounter.metadata?.uid);
    assert.equal(restarts(await k.readPod('writer')), 0);
  });

  it('helm upgrade: the node DaemonSet rolls, the mounter (OnDelete) stays, the writer sees no error', async () => {
    const s3fsBefore = await s3fsOf(bucket);
    const mounter = await podOf('mounter');
    const node = await podOf('node');
    const before = await writerState('writer');
    await w.install({ ...w.values, logVerbosity: 5 });
    const fresh = await waitFor('a new node plugin pod', async () => {
      const p = await podOf('node').catch(() => undefined);
      return p && p.metadata?.uid !== node.metadata?.uid && isPodReady(p) ? p : undefined;
    }, 180_000, 500);
    assert.ok(fresh.spec?.containers[0]?.args?.includes('--v=5'), 'the new pod runs the upgraded spec');
    const after = await writerAdvances('writer', 30, 'after helm upgrade');
    assert.equal(after.errors, before.errors, 'no write failed');
    assert.deepEqual(await s3fsOf(bucket), s3fsBefore, 's3fs never restarted');
    assert.equal((await podOf('mounter')).metadata?.uid, mounter.metadata?.uid, 'the mounter pod is untouched');
  });

  it('kill -9 of the volume\'s s3fs: only that volume goes down, and comes back inside the running writer (healed in place, not restarted)', async () => {
    const [victim] = await s3fsOf(bucket);
    const bystander = await s3fsOf(otherBucket);
    assert.ok(victim);
    const t0 = Date.now();
    process.kill(victim, 'SIGKILL');
    await outageRecovered('s3fsKilled', t0, 's3fs killed');
    assert.equal(restarts(await k.readPod('writer')), 0, 'the writer was not restarted');
    assert.deepEqual(await s3fsOf(otherBucket), bystander, 'the other volume\'s s3fs is untouched');
    const [fresh] = await s3fsOf(bucket);
    assert.ok(fresh && fresh !== victim, 'a new s3fs serves the volume');
    for (const p of ['peer', 'peer-h2c']) assert.equal(restarts(await k.readPod(p)), 0, `${p} was not restarted`);
    // What the person on call sees with `kubectl describe pod writer` and `kubectl describe pvc shared`.
    const seen = await waitFor('VolumeRecovered on the writer and on its claim', async () => {
      const [pod, pvc] = await Promise.all([k.eventsOf('Pod', 'writer', 'VolumeRecovered'), k.eventsOf('PersistentVolumeClaim', 'shared', 'VolumeRecovered')]);
      const onPod = pod.find((e) => /after s3fs exit/.test(e.message ?? ''));
      const onPvc = pvc.find((e) => /after s3fs exit/.test(e.message ?? ''));
      return onPod && onPvc ? { onPod, onPvc } : undefined;
    }, 30_000, 250);
    assert.equal(seen.onPod.type, 'Normal');
    assert.equal(seen.onPod.source?.component, DRIVER);
    assert.match(seen.onPod.message ?? '', /^volume pvc-\S+ recovered after s3fs exit in [0-9.]+ m?s/);
  });

  it('the mounter pod replaced (its upgrade): every volume comes back through the new mounter, every container healed in place', async () => {
    const mounter = await podOf('mounter');
    await w.keepLogsBefore('mounter-delete'); // the old mounter's log goes with its pod
    const t0 = Date.now();
    await w.node.kube.core.deleteNamespacedPod({ namespace: NAMESPACE, name: mounter.metadata?.name ?? '' });
    await outageRecovered('mounterReplaced', t0, 'mounter replaced');
    const fresh = await podOf('mounter');
    assert.notEqual(fresh.metadata?.uid, mounter.metadata?.uid);
    assert.equal(restarts(await k.readPod('writer')), 0, 'the writer was not restarted');
    for (const p of ['peer', 'peer-h2c', 'bystander']) assert.equal(restarts(await k.readPod(p)), 0, `${p} was not restarted`);
    assert.equal((await s3fsOf(bucket)).length, 1);
    assert.equal((await s3fsOf(otherBucket)).length, 1);
  });

  it('after the repairs, deleting one of two pods of a volume leaves the other\'s mount alone; deleting the last unstages', async () => {
    const pv = (await w.node.kube.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'shared' })).spec?.volumeName ?? '';
    const before = await writerState('writer');
    await k.deletePods('peer', 'peer-h2c');
    const after = await writerAdvances('writer', 30, 'after its peer was deleted');
    assert.equal(after.errors, before.errors, 'no write failed: the peer\'s unmount did not reach the writer');
    // What the writer wrote is in S3, in order.
    await k.deletePods('writer');
    let left: unknown;
    await waitFor('the volume unstaged', async () => {
      const m = await k.mountsOfPv(pv);
      left = m;
      return (m.staging.length === 0 && m.targets.length === 0) || undefined;
    }, 60_000, 250).catch((err: Error) => { throw new Error(`${err.message}; still mounted: ${JSON.stringify(left)}`); });
    // NodeUnstage unmounts and has the mounter stop s3fs, which exits once it has uploaded what it holds.
    await waitFor('no s3fs left for the volume', async () => ((await s3fsOf(bucket)).length === 0) || undefined, 30_000, 250);
    const keys = await k.keysIn(bucket, '');
    assert.ok(keys.includes('writer.log'), keys.join(' '));
  });

  it('hostPID off: no healing in place; a pod with the paired exec liveness probe is restarted by kubelet and reads its data again', async () => {
    const node = await podOf('node');
    await w.install({ ...w.values, node: { ...(w.values.node as object), hostPID: false } });
    await waitFor('the node plugin without hostPID', async () => {
      const p = await podOf('node').catch(() => undefined);
      return p && p.metadata?.uid !== node.metadata?.uid && p.spec?.hostPID !== true && isPodReady(p) ? p : undefined;
    }, 180_000, 500);
    // charts/s3fs-csi/examples/workload-liveness.yaml's probe, with shorter periods.
    const probe = { exec: { command: ['stat', '-f', '/data'] }, timeoutSeconds: 5, periodSeconds: 2, failureThreshold: 3 };
    await k.runPod('paired', 'other', 'cat /data/kept.txt', { livenessProbe: probe });
    const [victim] = await s3fsOf(otherBucket);
    assert.ok(victim);
    const t0 = Date.now();
    process.kill(victim, 'SIGKILL');
    await w.node.waitPod(NS, 'paired', (p) => restarts(p) >= 1 && isPodReady(p), 180_000, 'restarted by its liveness probe and Ready');
    const log = await waitFor('the restarted container reads the data', async () => {
      const l = await k.logs('paired').catch(() => '');
      return l.includes('script-done') ? l : undefined;
    }, 60_000, 250);
    figures.pairedLivenessKillToReadsAgainMs = Date.now() - t0;
    assert.match(log, /kept/);
    await w.install(w.values);
  });
});
