// Every manifest the chart renders, for every value set, and every example, sent to a real
// kube-apiserver 1.34 with server-side dry run (validated, defaulted and admitted; nothing stored).
// Then `helm upgrade` between value sets: with a release installed for real, every other value set's
// objects must be accepted as updates (immutable selectors and CSIDriver fields unchanged).
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiException, type KubernetesObject } from '@kubernetes/client-node';
import { VALUE_SETS, chartDir, helm, parseManifests, render, upgradeInstall } from '../harness/chart.js';
import { type KubeCluster, startKube } from '../harness/kube.js';

let kube: KubeCluster;
before(async () => {
  kube = await startKube();
});
after(() => kube?.stop());

const describeObject = (o: KubernetesObject): string => `${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`;

function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body = typeof err.body === 'string' ? err.body : JSON.stringify(err.body);
    return `${err.code}: ${body.slice(0, 600)}`;
  }
  return String(err);
}

/** Dry-run create of each object, collecting every rejection (not just the first). */
async function dryRunCreate(objects: KubernetesObject[]): Promise<string[]> {
  const rejected: string[] = [];
  for (const o of objects) {
    try {
      const echoed = await kube.objects.create(o, undefined, 'All');
      assert.equal(echoed.metadata?.name, o.metadata?.name);
    } catch (err) {
      rejected.push(`${describeObject(o)}: ${apiMessage(err)}`);
    }
  }
  return rejected;
}

/** What `helm upgrade` does to the API, as a dry run: update objects that exist, create the others. */
async function dryRunApply(objects: KubernetesObject[]): Promise<string[]> {
  const rejected: string[] = [];
  for (const o of objects) {
    try {
      let current: KubernetesObject | undefined;
      try {
        current = await kube.objects.read({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata?.name ?? '', namespace: o.metadata?.namespace } });
      } catch (err) {
        if (!(err instanceof ApiException && err.code === 404)) throw err;
      }
      if (current) {
        await kube.objects.replace({ ...o, metadata: { ...o.metadata, resourceVersion: current.metadata?.resourceVersion } }, undefined, 'All');
      } else {
        await kube.objects.create(o, undefined, 'All');
      }
    } catch (err) {
      rejected.push(`${describeObject(o)}: ${apiMessage(err)}`);
    }
  }
  return rejected;
}

describe('chart manifests: server-side dry run on kube-apiserver 1.34', () => {
  for (const [name, values] of Object.entries(VALUE_SETS)) {
    it(`value set "${name}": every rendered object is accepted`, async () => {
      const namespace = `vs-${name.toLowerCase()}`;
      await kube.createNamespace(namespace);
      const objects = await render(values, { namespace });
      assert.ok(objects.length >= 10, `only ${objects.length} objects rendered`);
      // The chart sets the namespace of everything namespaced itself (helm template does not).
      for (const o of objects) {
        const clusterScoped = ['CSIDriver', 'ClusterRole', 'ClusterRoleBinding', 'StorageClass'].includes(o.kind ?? '');
        assert.equal(o.metadata?.namespace, clusterScoped ? undefined : namespace, describeObject(o));
      }
      assert.deepEqual(await dryRunCreate(objects), []);
    });
  }

  it('a rendered object the API would refuse is reported (the check can fail)', async () => {
    const objects = await render({}, { namespace: 'vs-defaults' });
    const ds = objects.find((o) => o.kind === 'DaemonSet') as KubernetesObject & { spec: { template: { spec: { volumes: { name: string; hostPath?: { type?: string } }[] } } } };
    const broken = structuredClone(ds);
    broken.spec.template.spec.volumes[0]!.hostPath = { type: 'NoSuchType' };
    const rejected = await dryRunCreate([broken]);
    assert.equal(rejected.length, 1);
    assert.match(rejected[0]!, /422/);
  });

  it('the examples are accepted (PVC, both workload styles, static PV + claim)', async () => {
    const namespace = 'examples';
    await kube.createNamespace(namespace);
    const dir = join(chartDir, 'examples');
    const objects: KubernetesObject[] = [];
    for (const file of (await readdir(dir)).sort()) {
      for (const o of parseManifests(await readFile(join(dir, file), 'utf8'))) {
        if (o.kind !== 'PersistentVolume') o.metadata = { ...o.metadata, namespace };
        objects.push(o);
      }
    }
    assert.equal(objects.length, 5);
    assert.deepEqual(await dryRunCreate(objects), []);
  });
});

describe('chart upgrades: from an installed release to every value set', () => {
  const namespace = 'upgrade';
  const release = 'upg';
  // Its own driver name and release name: cluster-scoped objects must not collide with the dry runs above.
  const base = { driverName: 'upgrade.s3fs.csi.dev' };
  before(async () => {
    await kube.createNamespace(namespace);
    const installed = await render(base, { namespace, release });
    await kube.create(installed);
  });

  const targets: Record<string, object> = {
    ...VALUE_SETS,
    // CSIDriver fields the chart exposes are mutable in place (attachRequired and volumeLifecycleModes are not, so the chart fixes them).
    csiDriverToggles: { csiDriver: { requiresRepublish: false, fsGroupPolicy: 'None' } },
  };
  for (const [name, values] of Object.entries(targets)) {
    it(`upgrade to "${name}" is accepted as updates`, async () => {
      const objects = await render({ ...values, ...base }, { namespace, release });
      assert.deepEqual(await dryRunApply(objects), []);
    });
  }

});

describe('helm itself against the real API server: install, upgrade through every value set, NOTES', () => {
  const namespace = 'helm-release';
  const release = 'real';
  const base = { driverName: 'helm.s3fs.csi.dev' };

  it('helm install, then helm upgrade to each value set, then helm uninstall', { timeout: 300_000 }, async () => {
    await kube.createNamespace(namespace);
    const sets = Object.entries(VALUE_SETS);
    for (const [i, [name, values]] of sets.entries()) {
      const r = await upgradeInstall({ ...values, ...base }, { release, namespace, kubeconfig: kube.adminKubeconfig });
      assert.equal(r.code, 0, `${i === 0 ? 'install' : 'upgrade'} to ${name}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`REVISION: ${i + 1}`));
      // NOTES tell the user how to check the installation, in the probe style chosen.
      assert.match(r.stdout, /kubectl get csinodes/);
      if ((values as { probes?: { mode?: string } }).probes?.mode === 'exec') assert.match(r.stdout, /s3fs-csi probe/);
      else assert.match(r.stdout, /curl -s localhost:\d+\/healthz/);
    }
    const driver = await kube.storage.readCSIDriver({ name: 'helm.s3fs.csi.dev' });
    assert.equal(driver.spec.requiresRepublish, true);
    const un = await helm(['uninstall', release, '--namespace', namespace, '--kubeconfig', kube.adminKubeconfig, '--wait', '--timeout', '60s']);
    assert.equal(un.code, 0, un.stderr);
    await assert.rejects(kube.storage.readCSIDriver({ name: 'helm.s3fs.csi.dev' }));
  });
});
