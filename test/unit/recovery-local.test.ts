// Small pure pieces of recovery: which binds still show a dead s3fs after a staging repair, and how
// API failures become messages that say what to fix.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { KubeError, toKubeError } from '../../src/kube/client.js';
import { NODE_RBAC_RULES } from '../../src/kube/rbac.js';
import { parseMountInfo } from '../../src/mount/mountinfo.js';
import type { PathHealth } from '../../src/mount/health.js';
import { reallyStale, staleBinds } from '../../src/recovery/local.js';

const K = '/var/lib/kubelet';
const S = `${K}/plugins/kubernetes.io/csi/s3fs.csi.dev/${'a'.repeat(64)}/globalmount`;
const T1 = `${K}/pods/u1/volumes/kubernetes.io~csi/pv1/mount`;
const T2 = `${K}/pods/u2/volumes/kubernetes.io~csi/pv1/mount`;
const OTHER = '/mnt/elsewhere';
const line = (id: number, parent: number, dev: string, mp: string, opts = 'rw'): string =>
  `${id} ${parent} ${dev} / ${mp} ${opts},relatime shared:1 - fuse.s3fs s3fs rw,user_id=0`;

describe('staleBinds', () => {
  const cfg = { kubeletDir: K, allowedRoots: [K], stateDir: '/var/lib/s3fs-csi' };
  it('finds targets whose top layer is still an old s3fs, keeps their read-only flag, ignores the rest', () => {
    const table = parseMountInfo([
      line(10, 1, '0:50', S),                    // dead layer
      line(11, 10, '0:60', S),                   // new layer stacked by the repair
      line(20, 1, '0:50', T1),                   // target that did not get the new layer (private)
      line(21, 1, '0:50', T2, 'ro'),             // same, read-only
      line(22, 21, '0:60', T2, 'ro'),            // ...but it did get it: healed
      line(30, 1, '0:50', OTHER),                // not a kubelet target, not under an allowed root
      line(40, 1, '0:50', '/var/lib/s3fs-csi/backing/x-1'),
    ].join('\n'));
    assert.deepEqual(staleBinds(table, S, new Set(['0:50']), cfg), [{ path: T1, readonly: false }]);
    const t3 = parseMountInfo([line(20, 1, '0:50', T1, 'ro')].join('\n'));
    assert.deepEqual(staleBinds(t3, S, new Set(['0:50']), cfg), [{ path: T1, readonly: true }]);
    assert.deepEqual(staleBinds(parseMountInfo(line(30, 1, '0:50', `${OTHER}/x`)), S, new Set(['0:50']), { ...cfg, allowedRoots: [K, OTHER] }), [{ path: `${OTHER}/x`, readonly: false }]);
  });
});

describe('reallyStale', () => {
  it('keeps only the candidates whose statfs fails: a reused device number of a live mount is left alone', async () => {
    // T2 shows a device number this volume's dead layer had, but a concurrent repair's new s3fs (of
    // another volume) got that number: it answers statfs and must not be re-bound to this volume.
    const health = new Map<string, PathHealth>([
      [T1, { state: 'stale', message: 'ENOTCONN' }],
      [T2, { state: 'healthy', message: 'ok' }],
      [`${K}/pods/u3/volumes/kubernetes.io~csi/pv1/mount`, { state: 'hung', message: 'timeout' }],
      [`${K}/pods/u4/volumes/kubernetes.io~csi/pv1/mount`, { state: 'not-mounted', message: 'gone meanwhile' }],
    ]);
    const asked: string[][] = [];
    const check = async (paths: readonly string[]): Promise<ReadonlyMap<string, PathHealth>> => {
      asked.push([...paths]);
      return health;
    };
    const candidates = [...health.keys()].map((path) => ({ path, readonly: false }));
    assert.deepEqual((await reallyStale(candidates, check)).map((c) => c.path), [T1, `${K}/pods/u3/volumes/kubernetes.io~csi/pv1/mount`]);
    assert.equal(asked.length, 1, 'one check for all candidates');
    assert.deepEqual(await reallyStale([], check), []);
    assert.equal(asked.length, 1, 'no check without candidates');
  });
});

describe('API errors', () => {
  it('403 names the verb, the resource and the exact rule to add', () => {
    const body = JSON.stringify({ kind: 'Status', message: 'secrets "s" is forbidden: User "system:serviceaccount:kube-system:n" cannot get resource "secrets"' });
    const e = toKubeError(new ApiException(403, 'Forbidden', body, {}), { verb: 'get', resource: 'secrets', what: 'Secret ns/s' });
    assert.equal(e.kind, 'forbidden');
    assert.match(e.message, /^RBAC denies "get secrets" \(Secret ns\/s\): the node plugin's ClusterRole needs \{apiGroups: \[""\], resources: \["secrets"\], verbs: \["get"\]\} — API server: secrets "s" is forbidden/);
    const sc = toKubeError(new ApiException(403, 'Forbidden', '', {}), { verb: 'get', resource: 'storageclasses', apiGroup: 'storage.k8s.io', what: 'StorageClass x' });
    assert.match(sc.message, /apiGroups: \["storage.k8s.io"\]/);
  });
  it('401, other HTTP codes and network failures', () => {
    assert.equal(toKubeError(new ApiException(401, 'Unauthorized', '', {}), { verb: 'list', resource: 'pods', what: 'pods' }).kind, 'unauthorized');
    assert.match(toKubeError(new ApiException(500, 'x', { message: 'etcd down' }, {}), { verb: 'list', resource: 'pods', what: 'pods' }).message, /HTTP 500: etcd down/);
    const net = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    const e = toKubeError(net, { verb: 'list', resource: 'pods', what: 'pods on node n' });
    assert.equal(e.kind, 'unreachable');
    assert.equal(e.message, 'API server unreachable while reading pods on node n: ECONNREFUSED');
    const already = new KubeError('timeout', 'x');
    assert.equal(toKubeError(already, { verb: 'get', resource: 'pods', what: 'x' }), already);
  });
  it('the node rules grant reads, plus create/patch on events only, and never list/watch on secrets', () => {
    for (const r of NODE_RBAC_RULES) {
      const writes = r.verbs.filter((v) => !['get', 'list', 'watch'].includes(v));
      if (writes.length > 0) assert.deepEqual([r.apiGroups, r.resources, writes], [[''], ['events'], ['create', 'patch']]);
    }
    const events = NODE_RBAC_RULES.filter((r) => r.resources.includes('events'));
    assert.deepEqual(events.flatMap((r) => r.verbs), ['create', 'patch']);
    const secrets = NODE_RBAC_RULES.filter((r) => r.resources.includes('secrets'));
    assert.deepEqual(secrets.flatMap((r) => r.verbs), ['get']);
  });
});
