// The chart's RBAC, least privilege per role:
// - node: exactly the rules node recovery needs (src/kube/rbac.ts, which recovery's own tests run with);
// - controller: covers every rule the sidecars' own RBAC examples grant (deploy/kubernetes/rbac.yaml of
//   external-provisioner and external-resizer, from their Go modules; the health monitor's transcribed),
//   minus exceptions that are each explained and checked against the driver's real capabilities, and
//   grants nothing beyond them;
// - the real kube-apiserver's RBAC authorizer agrees (SubjectAccessReview for the chart's ServiceAccounts).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuthorizationV1Api, type KubernetesObject, type V1PolicyRule } from '@kubernetes/client-node';
import { NODE_RBAC_RULES, NODE_READ_RULES } from '../../src/kube/rbac.js';
import { VALUE_SETS, objectsOf, only, parseManifests, render } from '../harness/chart.js';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { type KubeCluster, startKube } from '../harness/kube.js';
import { requireTool, tools } from '../harness/tools.js';

type Role = KubernetesObject & { rules?: V1PolicyRule[] };

/** One permission: "<apiGroup>/<resource>:<verb>" (core group = ""). */
function grants(rules: V1PolicyRule[] | undefined): Set<string> {
  const out = new Set<string>();
  for (const r of rules ?? []) {
    for (const g of r.apiGroups ?? ['']) for (const res of r.resources ?? []) for (const v of r.verbs) out.add(`${g}/${res}:${v}`);
  }
  return out;
}
const union = (...sets: Set<string>[]): Set<string> => new Set(sets.flatMap((s) => [...s]));
const minus = (a: Set<string>, b: Set<string>): string[] => [...a].filter((x) => !b.has(x)).sort();

interface Example {
  /** ClusterRole rules (cluster-wide) and Role rules (release namespace only). */
  cluster: Set<string>;
  namespaced: Set<string>;
}

async function sidecarExample(file: string): Promise<Example> {
  const path = join(requireTool(tools.sidecarRbacDir), file);
  const docs = parseManifests(await readFile(path, 'utf8')) as Role[];
  return {
    cluster: union(...docs.filter((d) => d.kind === 'ClusterRole').map((d) => grants(d.rules))),
    namespaced: union(...docs.filter((d) => d.kind === 'Role').map((d) => grants(d.rules))),
  };
}

/**
 * external-health-monitor-controller v0.18.0's deploy/kubernetes/external-health-monitor-controller/rbac.yaml,
 * transcribed: the module proxy refuses to serve that module (403), so install-tools cannot fetch it.
 * It grants no events rule although the monitor reports through events; the chart's controller has
 * events create/update/patch for the other sidecars anyway.
 */
const HEALTH_MONITOR_EXAMPLE: Example = {
  cluster: grants([
    { apiGroups: [''], resources: ['persistentvolumes', 'persistentvolumeclaims', 'nodes', 'pods'], verbs: ['get', 'list', 'watch'] },
  ]),
  namespaced: grants([{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'watch', 'list', 'delete', 'update', 'create'] }]),
};

/** What the examples grant that the chart leaves out, and why (docs/packaging.md repeats these). */
const EXCEPTIONS: { grants: string[]; why: string }[] = [
  {
    grants: ['/events:list', '/events:watch'],
    why: "client-go's event recorder (both sidecars' only use of events) creates, updates and patches; nothing reads events",
  },
  {
    grants: [
      'snapshot.storage.k8s.io/volumesnapshots:get', 'snapshot.storage.k8s.io/volumesnapshots:list',
      'snapshot.storage.k8s.io/volumesnapshots:watch', 'snapshot.storage.k8s.io/volumesnapshots:update',
      'snapshot.storage.k8s.io/volumesnapshotcontents:get', 'snapshot.storage.k8s.io/volumesnapshotcontents:list',
    ],
    why: 'no snapshots or clones (CREATE_DELETE_SNAPSHOT, CLONE_VOLUME not advertised); the provisioner reads snapshots only for a snapshot dataSource and its finalizer sweeper turns itself off on Forbidden',
  },
  {
    grants: ['storage.k8s.io/csinodes:get', 'storage.k8s.io/csinodes:list', 'storage.k8s.io/csinodes:watch', '/nodes:get', '/nodes:list', '/nodes:watch'],
    why: 'topology only: the provisioner watches CSINodes/Nodes when the plugin advertises VOLUME_ACCESSIBILITY_CONSTRAINTS, which S3 (reachable from every node) does not',
  },
  {
    grants: ['storage.k8s.io/volumeattachments:get', 'storage.k8s.io/volumeattachments:list', 'storage.k8s.io/volumeattachments:watch'],
    why: 'only with PUBLISH_UNPUBLISH_VOLUME; attachRequired is false and the controller does not advertise it',
  },
  {
    grants: ['/pods:get', '/pods:list', '/pods:watch'],
    why: 'resizer runs with --handle-volume-inuse-error=false: the driver expands ONLINE, so no Pod informer (the health monitor, when enabled, brings its own pods rule)',
  },
  {
    grants: ['storage.k8s.io/volumeattributesclasses:get', 'storage.k8s.io/volumeattributesclasses:list', 'storage.k8s.io/volumeattributesclasses:watch'],
    why: 'no MODIFY_VOLUME: the resizer starts no modify controller and never reads VolumeAttributesClasses',
  },
  {
    grants: [
      'storage.k8s.io/csistoragecapacities:get', 'storage.k8s.io/csistoragecapacities:list', 'storage.k8s.io/csistoragecapacities:watch',
      'storage.k8s.io/csistoragecapacities:create', 'storage.k8s.io/csistoragecapacities:update', 'storage.k8s.io/csistoragecapacities:patch',
      'storage.k8s.io/csistoragecapacities:delete', 'apps/replicasets:get',
    ],
    why: 'capacity tracking is off (no --enable-capacity: S3 has no capacity); pods/replicasets get serve only its owner lookup',
  },
];

/** What the chart grants beyond the examples' active rules, and why. */
const ADDITIONS: { grants: string[]; why: string }[] = [
  {
    grants: ['/secrets:get'],
    why: "the examples' own commented-out rule for plugins that need secrets (provisioner and controller-expand secrets); get only, never list/watch",
  },
];

let provisioner: Example;
let resizer: Example;
before(async () => {
  provisioner = await sidecarExample('csi-provisioner-v6.3.0.yaml');
  resizer = await sidecarExample('csi-resizer-v2.2.0.yaml');
});

function chartRules(objs: KubernetesObject[], component: 'controller' | 'node'): Example {
  const mine = (kind: string): Role[] => (objectsOf(objs, kind) as Role[]).filter((o) => o.metadata?.name?.endsWith(`-${component}`));
  return { cluster: union(...mine('ClusterRole').map((r) => grants(r.rules))), namespaced: union(...mine('Role').map((r) => grants(r.rules))) };
}

describe('chart RBAC: node', () => {
  const asSet = (rules: typeof NODE_RBAC_RULES): string[] => [...grants(rules.map((r) => ({ ...r, verbs: [...r.verbs] })))].sort();

  it('the node ClusterRole grants exactly NODE_RBAC_RULES (what recovery reads, events create/patch), and no namespaced Role', async () => {
    for (const values of [VALUE_SETS.defaults!, VALUE_SETS.everything!]) {
      const node = chartRules(await render(values), 'node');
      assert.deepEqual([...node.cluster].sort(), asSet(NODE_RBAC_RULES));
      assert.equal(node.namespaced.size, 0);
    }
    assert.deepEqual(minus(grants(NODE_RBAC_RULES.map((r) => ({ ...r, verbs: [...r.verbs] }))), grants(NODE_READ_RULES.map((r) => ({ ...r, verbs: [...r.verbs] })))), ['/events:create', '/events:patch']);
  });

  it('node.recovery.events=false: the events rule is gone (reads only), and the driver gets --events=false', async () => {
    const objs = await render(VALUE_SETS.noEvents!);
    assert.deepEqual([...chartRules(objs, 'node').cluster].sort(), asSet(NODE_READ_RULES));
    const ds = objectsOf(objs, 'DaemonSet').find((o) => o.metadata?.name?.endsWith('-node')) as KubernetesObject & { spec: { template: { spec: { containers: { name: string; args?: string[] }[] } } } };
    assert.ok(ds.spec.template.spec.containers.some((c) => c.args?.includes('--events=false')));
  });

  it('no role of the chart may list or watch Secrets', async () => {
    for (const values of Object.values(VALUE_SETS)) {
      const objs = await render(values);
      for (const role of [...objectsOf(objs, 'ClusterRole'), ...objectsOf(objs, 'Role')] as Role[]) {
        const g = grants(role.rules);
        for (const bad of ['/secrets:list', '/secrets:watch', '/secrets:*', '*/*:*', '/*:get']) assert.ok(!g.has(bad), `${role.metadata?.name} grants ${bad}`);
      }
    }
  });
});

describe('chart RBAC: controller against the sidecars\' own examples', () => {
  it('the exceptions are real: each names rules the examples grant, and the driver lacks the capability they need', async (t) => {
    const granted = union(provisioner.cluster, provisioner.namespaced, resizer.cluster, resizer.namespaced);
    for (const e of EXCEPTIONS) for (const g of e.grants) assert.ok(granted.has(g), `exception ${g} is not granted by any example (stale)`);

    const driver: DriverProcess = await startDriver({ mode: 'controller' });
    t.after(() => driver.cleanup());
    const caps = await driver.call<{ capabilities: { rpc?: { type: string } }[] }>('Controller', 'ControllerGetCapabilities');
    const rpcs = caps.capabilities.map((c) => c.rpc?.type);
    for (const absent of ['PUBLISH_UNPUBLISH_VOLUME', 'CREATE_DELETE_SNAPSHOT', 'CLONE_VOLUME', 'MODIFY_VOLUME', 'GET_CAPACITY']) {
      assert.ok(!rpcs.includes(absent), `the controller advertises ${absent}: revisit EXCEPTIONS`);
    }
    assert.ok(rpcs.includes('EXPAND_VOLUME'));
    const plugin = await driver.call<{ capabilities: { service?: { type: string }; volume_expansion?: { type: string } }[] }>('Identity', 'GetPluginCapabilities');
    assert.ok(!plugin.capabilities.some((c) => c.service?.type === 'VOLUME_ACCESSIBILITY_CONSTRAINTS'), 'topology advertised: revisit EXCEPTIONS');
    assert.ok(plugin.capabilities.some((c) => c.volume_expansion?.type === 'ONLINE'), 'expansion not ONLINE: the resizer needs its Pod informer');

    const dep = only(await render({}), 'Deployment', '-controller') as KubernetesObject & { spec: { template: { spec: { containers: { name: string; args?: string[] }[] } } } };
    const args = (name: string): string[] => dep.spec.template.spec.containers.find((c) => c.name === name)?.args ?? [];
    assert.ok(args('csi-resizer').includes('--handle-volume-inuse-error=false'));
    assert.ok(!args('csi-provisioner').some((a) => a.startsWith('--enable-capacity')));
  });

  // The exceptions concern the provisioner's and resizer's examples; the health monitor's has none.
  for (const [label, values, examples] of [
    ['provisioner + resizer (defaults)', VALUE_SETS.defaults!, (): [Example, boolean][] => [[provisioner, true], [resizer, true]]],
    ['with the health monitor', VALUE_SETS.everything!, (): [Example, boolean][] => [[provisioner, true], [resizer, true], [HEALTH_MONITOR_EXAMPLE, false]]],
  ] as const) {
    it(`${label}: covers every rule of the examples but the explained exceptions, and grants nothing else`, async () => {
      const mine = chartRules(await render(values), 'controller');
      const excepted = new Set(EXCEPTIONS.flatMap((e) => e.grants));
      const added = new Set(ADDITIONS.flatMap((a) => a.grants));
      const covered = union(mine.cluster, mine.namespaced);
      for (const [ex, exceptionsApply] of examples()) {
        const skip = (g: string): boolean => exceptionsApply && excepted.has(g);
        // Coverage: cluster-wide needs by the ClusterRole; namespaced needs by either.
        assert.deepEqual(minus(ex.cluster, mine.cluster).filter((g) => !skip(g)), [], 'cluster-wide rules a sidecar needs');
        assert.deepEqual(minus(ex.namespaced, covered).filter((g) => !skip(g)), [], 'namespaced rules a sidecar needs');
      }
      // Least privilege: nothing the examples do not grant in the same scope (except the explained additions).
      const exCluster = union(...examples().map(([e]) => e.cluster));
      const exNamespaced = union(...examples().map(([e]) => e.namespaced));
      assert.deepEqual(minus(mine.cluster, union(exCluster, added)), [], 'cluster-wide grants beyond the examples');
      assert.deepEqual(minus(mine.namespaced, exNamespaced), [], 'namespaced grants beyond the examples');
    });
  }
});

describe('chart RBAC: the real kube-apiserver authorizes as intended', () => {
  let kube: KubeCluster;
  const ns = 'storage-system';
  before(async () => {
    kube = await startKube();
    await kube.createNamespace(ns);
    const objs = (await render({}, { namespace: ns })).filter((o) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind ?? ''));
    await kube.create(objs);
  });
  after(() => kube?.stop());

  async function allowed(sa: string, verb: string, resource: string, opts: { group?: string; namespace?: string } = {}): Promise<boolean> {
    const api = kube.admin.makeApiClient(AuthorizationV1Api);
    const r = await api.createSubjectAccessReview({
      body: {
        spec: {
          user: `system:serviceaccount:${ns}:${sa}`,
          groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
          resourceAttributes: { verb, resource: resource.split('/')[0], subresource: resource.split('/')[1], group: opts.group ?? '', namespace: opts.namespace },
        },
      },
    });
    return r.status?.allowed === true;
  }

  it('node: reads what recovery needs anywhere, writes only Events (create, patch); never lists Secrets', async () => {
    const sa = 's3fs-csi-node';
    for (const [verb, res, group] of [['list', 'pods'], ['watch', 'pods'], ['get', 'persistentvolumeclaims'], ['get', 'persistentvolumes'], ['get', 'storageclasses', 'storage.k8s.io'], ['get', 'secrets']] as const) {
      assert.equal(await allowed(sa, verb, res, { group, namespace: res === 'persistentvolumes' || res === 'storageclasses' ? undefined : 'team-a' }), true, `${verb} ${res}`);
    }
    for (const verb of ['create', 'patch']) assert.equal(await allowed(sa, verb, 'events', { namespace: 'team-a' }), true, `${verb} events`);
    for (const [verb, res] of [['list', 'secrets'], ['watch', 'secrets'], ['create', 'pods'], ['delete', 'pods'], ['list', 'persistentvolumes'], ['get', 'configmaps'], ['update', 'persistentvolumes'],
      ['get', 'events'], ['list', 'events'], ['update', 'events'], ['delete', 'events']] as const) {
      assert.equal(await allowed(sa, verb, res, { namespace: 'team-a' }), false, `${verb} ${res} must be denied`);
    }
  });

  it('controller: provisions and resizes, elects leaders only in its namespace, never lists Secrets', async () => {
    const sa = 's3fs-csi-controller';
    assert.equal(await allowed(sa, 'create', 'persistentvolumes'), true);
    assert.equal(await allowed(sa, 'delete', 'persistentvolumes'), true);
    assert.equal(await allowed(sa, 'update', 'persistentvolumeclaims', { namespace: 'team-a' }), true);
    assert.equal(await allowed(sa, 'patch', 'persistentvolumeclaims/status', { namespace: 'team-a' }), true);
    assert.equal(await allowed(sa, 'create', 'events', { namespace: 'team-a' }), true);
    assert.equal(await allowed(sa, 'get', 'secrets', { namespace: 'team-a' }), true);
    assert.equal(await allowed(sa, 'update', 'leases', { group: 'coordination.k8s.io', namespace: ns }), true);
    assert.equal(await allowed(sa, 'update', 'leases', { group: 'coordination.k8s.io', namespace: 'kube-system' }), false);
    assert.equal(await allowed(sa, 'list', 'secrets', { namespace: 'team-a' }), false);
    assert.equal(await allowed(sa, 'create', 'pods', { namespace: ns }), false);
    assert.equal(await allowed(sa, 'list', 'nodes'), false);
  });
});
