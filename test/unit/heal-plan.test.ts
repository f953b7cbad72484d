// The in-place heal planner with plain mount tables: which containers' mounts are dead layers of a
// volume, and what replaces each.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type NamespaceView, planHeals, sourceFor, volumeLayers } from '../../src/mount/heal-plan.js';
import { isShared, layersAt, parseMountInfo } from '../../src/mount/mountinfo.js';

const STAGING = '/var/lib/kubelet/plugins/kubernetes.io/csi/s3fs.csi.dev/abc/globalmount';
const s3fs = (id: number, parent: number, dev: string, root: string, point: string, opts = 'rw,nosuid,nodev,relatime', tags = ''): string =>
  `${id} ${parent} ${dev} ${root} ${point} ${opts}${tags ? ` ${tags}` : ''} - fuse.s3fs s3fs rw,user_id=0,group_id=0,allow_other`;

// The driver's namespace: three layers stacked on the staging path; 0:61 is the repair on top.
const HOST = parseMountInfo([
  '25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  s3fs(100, 25, '0:59', '/', STAGING, undefined, 'shared:40'),
  s3fs(101, 100, '0:60', '/', STAGING, undefined, 'shared:41'),
  s3fs(102, 101, '0:61', '/', STAGING, undefined, 'shared:42'),
].join('\n'));
const VOLUME = volumeLayers(STAGING, layersAt(HOST, STAGING));

const view = (ns: string, pid: number, lines: string[]): NamespaceView => ({
  ns, pid, table: parseMountInfo(['500 499 0:80 / / rw,relatime - overlay overlay rw', ...lines].join('\n')),
});

describe('heal planner', () => {
  it('takes every staging layer but the top one as dead', () => {
    assert.ok(VOLUME);
    assert.equal(VOLUME.healthyDevice, '0:61');
    assert.deepEqual([...VOLUME.deadDevices].sort(), ['0:59', '0:60']);
    assert.equal(volumeLayers(STAGING, []), undefined);
    assert.equal(volumeLayers(STAGING, layersAt(HOST, STAGING).slice(0, 1))?.deadDevices.size, 0);
  });

  it('also takes the recorded devices of earlier repairs as dead (a repair drops the layers above the bottom one), never the top', () => {
    const v = volumeLayers(STAGING, layersAt(HOST, STAGING), ['0:42', '0:61']);
    assert.deepEqual([...(v?.deadDevices ?? [])].sort(), ['0:42', '0:59', '0:60']);
  });

  it('heals a private dead copy with the staging path, keeping read-only and subPath', () => {
    assert.ok(VOLUME);
    const p = planHeals(VOLUME, [view('4026532001', 4242, [
      s3fs(600, 500, '0:60', '/', '/data'),
      s3fs(601, 500, '0:60', '/sub/dir', '/logs'),
      s3fs(602, 500, '0:59', '/', '/ro', 'ro,nosuid,nodev,relatime'),
    ])]);
    assert.deepEqual(p.skipped, []);
    assert.deepEqual(p.tasks, [
      { ns: '4026532001', pid: 4242, target: '/data', source: STAGING, readOnly: false, deadDevice: '0:60' },
      { ns: '4026532001', pid: 4242, target: '/logs', source: `${STAGING}/sub/dir`, readOnly: false, deadDevice: '0:60' },
      { ns: '4026532001', pid: 4242, target: '/ro', source: STAGING, readOnly: true, deadDevice: '0:59' },
    ]);
  });

  it('leaves healthy mounts, other volumes and mounts healed by propagation alone', () => {
    assert.ok(VOLUME);
    const p = planHeals(VOLUME, [view('4026532002', 77, [
      s3fs(600, 500, '0:61', '/', '/healthy', undefined, 'master:42'),
      s3fs(601, 500, '0:70', '/', '/other-volume'),
      // a HostToContainer copy: the repair arrived on top of the dead layer by propagation
      s3fs(602, 500, '0:60', '/', '/slave', undefined, 'master:41'),
      s3fs(603, 602, '0:61', '/', '/slave', undefined, 'master:42'),
    ])]);
    assert.deepEqual(p, { tasks: [], skipped: [] });
  });

  it('skips shared mounts, mounts with others nested inside, and deleted subPath directories, saying why', () => {
    assert.ok(VOLUME);
    const p = planHeals(VOLUME, [view('4026532003', 9, [
      s3fs(600, 500, '0:60', '/', '/bidirectional', undefined, 'shared:41'),
      s3fs(601, 500, '0:60', '/', '/data'),
      '602 601 0:22 / /data/config ro,relatime - tmpfs tmpfs rw',
      s3fs(603, 500, '0:60', '/gone//deleted', '/old'),
      '604 500 0:23 / /host rw,relatime shared:7 - tmpfs tmpfs rw',
      s3fs(605, 604, '0:60', '/', '/host/target'),
    ])]);
    assert.deepEqual(p.tasks, []);
    assert.deepEqual(p.skipped.map((s) => s.target), ['/bidirectional', '/data', '/old', '/host/target']);
    assert.match(p.skipped[0]?.reason ?? '', /shared/);
    assert.match(p.skipped[1]?.reason ?? '', /nested.*\/data\/config/);
    assert.match(p.skipped[2]?.reason ?? '', /no longer exists/);
    assert.match(p.skipped[3]?.reason ?? '', /\/host\) is shared/);
  });

  it('plans each namespace through its own process, and each stacked path once (its top)', () => {
    assert.ok(VOLUME);
    const p = planHeals(VOLUME, [
      view('1', 10, [s3fs(600, 500, '0:59', '/', '/data'), s3fs(601, 600, '0:60', '/', '/data')]),
      view('2', 20, [s3fs(600, 500, '0:60', '/', '/data')]),
    ]);
    assert.deepEqual(p.tasks.map((t) => [t.ns, t.pid, t.target, t.deadDevice]), [['1', 10, '/data', '0:60'], ['2', 20, '/data', '0:60']]);
  });

  it('sourceFor joins the mount root under the staging path', () => {
    assert.equal(sourceFor('/s', '/'), '/s');
    assert.equal(sourceFor('/s', '/a/b'), '/s/a/b');
    assert.equal(sourceFor('/s', '/a/b/'), '/s/a/b/');
  });

  it('the mountinfo parser keeps the propagation tags', () => {
    const [a, b] = parseMountInfo(`${s3fs(1, 0, '0:1', '/', '/a', undefined, 'shared:3 master:2')}\n${s3fs(2, 0, '0:1', '/', '/b')}`);
    assert.deepEqual(a?.optionalFields, ['shared:3', 'master:2']);
    assert.deepEqual(b?.optionalFields, []);
    assert.ok(a && isShared(a));
    assert.ok(b && !isShared(b));
  });
});
