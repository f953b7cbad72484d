// The Controller service through the real binary (--mode controller) against a real S3 server
// (versitygw): the three provisioning models, idempotency, paging, expansion, volume condition,
// deletes that remove exactly the volume's objects, concurrency and S3 outages.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
} from '@aws-sdk/client-s3';
import { status } from '@grpc/grpc-js';
import { isValidBucketName } from '../../src/s3/volume-id.js';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';

const GiB = 1024 ** 3;
const MOUNT = [{ mount: { fs_type: '', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } }];

interface Volume { volume_id: string; capacity_bytes: number; volume_context: Record<string, string> }
interface GetVolume { volume: Volume; status: { volume_condition: { abnormal: boolean; message: string } } }

let s3: S3Server;
let raw: S3Client;
let work: string;
let d: DriverProcess;
const cleanups: (() => Promise<unknown>)[] = [];

before(async () => {
  s3 = await startS3Server();
  raw = new S3Client({
    endpoint: s3.endpoint, region: s3.region, forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
  });
  work = await mkdtemp(join(tmpdir(), 's3fs-csi-ctl-'));
  await writeFile(join(work, 'accessKeyID'), s3.accessKey, { mode: 0o600 });
  await writeFile(join(work, 'secretAccessKey'), s3.secretKey, { mode: 0o600 });
  d = await startDriver({ mode: 'controller', args: ['--s3-endpoint', s3.endpoint, '--s3-secret-dir', work] });
});
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await d?.cleanup();
  raw?.destroy();
  await s3?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const create = (name: string, extra: Record<string, unknown> = {}): Promise<{ volume: Volume }> =>
  d.call('Controller', 'CreateVolume', { name, volume_capabilities: MOUNT, secrets: s3.secrets, ...extra });
const createCode = (name: string, extra: Record<string, unknown> = {}): Promise<number> =>
  d.callCode('Controller', 'CreateVolume', { name, volume_capabilities: MOUNT, secrets: s3.secrets, ...extra });
const del = (volume_id: string): Promise<unknown> => d.call('Controller', 'DeleteVolume', { volume_id, secrets: s3.secrets });
const getVolume = (volume_id: string): Promise<GetVolume> => d.call('Controller', 'ControllerGetVolume', { volume_id });

async function keys(bucket: string, prefix = ''): Promise<string[]> {
  const res = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined }));
  return (res.Contents ?? []).map((o) => o.Key ?? '').sort();
}
async function buckets(): Promise<string[]> {
  return ((await raw.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name ?? '');
}
const put = (bucket: string, key: string, body = 'data'): Promise<unknown> => raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
async function listAll(maxEntries: number): Promise<Volume[]> {
  const out: Volume[] = [];
  let token = '';
  for (let i = 0; i < 100; i++) {
    const page = await d.call<{ entries: { volume: Volume; status?: { volume_condition?: { abnormal: boolean } } }[]; next_token: string }>(
      'Controller', 'ListVolumes', { max_entries: maxEntries, starting_token: token });
    if (maxEntries > 0) assert.ok(page.entries.length <= maxEntries);
    // VOLUME_CONDITION is advertised, so the spec requires a condition on every entry.
    assert.ok(page.entries.every((e) => e.status?.volume_condition?.abnormal === false), 'every entry has a volume condition');
    out.push(...page.entries.map((e) => e.volume));
    token = page.next_token;
    if (!token) return out;
  }
  throw new Error('ListVolumes paging did not end');
}

describe('bucket per volume', () => {
  it('creates a bucket named after the volume, idempotently, with the capacity and context recorded', async () => {
    const { volume } = await create('pvc-0001', { capacity_range: { required_bytes: 2 * GiB }, parameters: { options: '-o allow_other' } });
    assert.equal(volume.volume_id, 'pvc-0001');
    assert.equal(volume.capacity_bytes, 2 * GiB);
    assert.deepEqual(volume.volume_context, { bucket: 'pvc-0001', prefix: '', options: '-o allow_other' });
    assert.ok((await buckets()).includes('pvc-0001'));
    assert.deepEqual(await keys('pvc-0001'), ['.s3fs-csi/volume.json']);

    const again = await create('pvc-0001', { capacity_range: { required_bytes: 2 * GiB }, parameters: { options: '-o allow_other' } });
    assert.deepEqual(again.volume, volume);
    // a range the existing size satisfies is the same request
    assert.equal((await create('pvc-0001', { capacity_range: { required_bytes: GiB, limit_bytes: 3 * GiB }, parameters: { options: '-o allow_other' } })).volume.volume_id, 'pvc-0001');
    assert.equal(await createCode('pvc-0001', { capacity_range: { required_bytes: 4 * GiB, limit_bytes: 4 * GiB }, parameters: { options: '-o allow_other' } }), status.ALREADY_EXISTS);
    assert.equal(await createCode('pvc-0001', { capacity_range: { required_bytes: 2 * GiB }, parameters: { options: '-o ro' } }), status.ALREADY_EXISTS);
    // csi.storage.k8s.io/* parameters are not part of the volume
    assert.equal((await create('pvc-0001', {
      capacity_range: { required_bytes: 2 * GiB },
      parameters: { options: '-o allow_other', 'csi.storage.k8s.io/pvc/name': 'claim', 'csi.storage.k8s.io/provisioner-secret-name': 's' },
    })).volume.volume_id, 'pvc-0001');
    await del('pvc-0001');
    assert.ok(!(await buckets()).includes('pvc-0001'));
    await del('pvc-0001'); // again: already gone is OK
  });

  it('records a real default capacity when none is requested', async () => {
    const { volume } = await create('pvc-default-size');
    assert.equal(volume.capacity_bytes, GiB);
    await del(volume.volume_id);
  });

  it('handles 128-character and non-DNS names with a stable hashed bucket name; bucketPrefix is applied', async () => {
    const long = `Sanity-${'x'.repeat(121)}`;
    assert.equal(long.length, 128);
    const a = await create(long);
    const b = await create(long);
    assert.equal(a.volume.volume_id, b.volume.volume_id);
    assert.ok(isValidBucketName(a.volume.volume_id) && a.volume.volume_id.length <= 63, a.volume.volume_id);
    const p = await create('pvc-prefixed', { parameters: { bucketPrefix: 'team-a-' } });
    assert.equal(p.volume.volume_id, 'team-a-pvc-prefixed');
    for (const v of [a, p]) await del(v.volume.volume_id);
  });

  it('expands by recording the new capacity, never shrinks, and reports it in GetVolume and ListVolumes', async () => {
    const { volume } = await create('pvc-expand', { capacity_range: { required_bytes: GiB } });
    const res = await d.call<{ capacity_bytes: number; node_expansion_required: boolean }>('Controller', 'ControllerExpandVolume', {
      volume_id: volume.volume_id, capacity_range: { required_bytes: 5 * GiB }, secrets: s3.secrets,
    });
    assert.deepEqual(res, { capacity_bytes: 5 * GiB, node_expansion_required: false });
    const smaller = await d.call<{ capacity_bytes: number }>('Controller', 'ControllerExpandVolume', {
      volume_id: volume.volume_id, capacity_range: { required_bytes: 2 * GiB }, secrets: s3.secrets,
    });
    assert.equal(smaller.capacity_bytes, 5 * GiB);
    assert.equal((await getVolume(volume.volume_id)).volume.capacity_bytes, 5 * GiB);
    assert.equal((await listAll(0)).find((v) => v.volume_id === volume.volume_id)?.capacity_bytes, 5 * GiB);
    assert.equal(await d.callCode('Controller', 'ControllerExpandVolume', { volume_id: 'no-such-bucket-here', capacity_range: { required_bytes: GiB }, secrets: s3.secrets }), status.NOT_FOUND);
    await del(volume.volume_id);
  });

  it('deletes every object of the volume (paginated, batched) and the bucket', async () => {
    const { volume } = await create('pvc-many-objects');
    await Promise.all(Array.from({ length: 1205 }, (_, i) => put('pvc-many-objects', `dir/${i}`)));
    await del(volume.volume_id);
    assert.ok(!(await buckets()).includes('pvc-many-objects'));
  });

  it('refuses an existing bucket with foreign data, and a bucket deleted behind its back is NOT_FOUND', async () => {
    await raw.send(new CreateBucketCommand({ Bucket: 'pvc-taken' }));
    await put('pvc-taken', 'someone-elses.txt');
    cleanups.push(async () => {
      await raw.send(new DeleteObjectCommand({ Bucket: 'pvc-taken', Key: 'someone-elses.txt' }));
      await raw.send(new DeleteBucketCommand({ Bucket: 'pvc-taken' }));
    });
    assert.equal(await createCode('pvc-taken'), status.FAILED_PRECONDITION);

    const { volume } = await create('pvc-vanishing');
    assert.equal((await getVolume(volume.volume_id)).status.volume_condition.abnormal, false);
    await raw.send(new DeleteObjectCommand({ Bucket: 'pvc-vanishing', Key: '.s3fs-csi/volume.json' }));
    await raw.send(new DeleteBucketCommand({ Bucket: 'pvc-vanishing' }));
    assert.equal(await d.callCode('Controller', 'ControllerGetVolume', { volume_id: volume.volume_id }), status.NOT_FOUND);
    await del(volume.volume_id);
  });
});

describe('prefix per volume in a shared bucket', () => {
  const params = { bucket: 'shared-vols', options: '-o allow_other' };

  it('creates the bucket if missing, a prefix per volume, metadata outside the prefix', async () => {
    const { volume } = await create('vol1', { parameters: params, capacity_range: { required_bytes: 3 * GiB } });
    assert.equal(volume.volume_id, 'shared-vols/vol1');
    assert.deepEqual(volume.volume_context, { bucket: 'shared-vols', prefix: 'vol1', options: '-o allow_other' });
    assert.deepEqual(await keys('shared-vols', 'vol1'), ['vol1/']);
    assert.deepEqual(await keys('shared-vols', '.s3fs-csi/'), ['.s3fs-csi/volumes/vol1.json']);
    assert.deepEqual((await create('vol1', { parameters: params, capacity_range: { required_bytes: 3 * GiB } })).volume, volume);
    assert.equal(await createCode('vol1', { parameters: params, capacity_range: { required_bytes: 6 * GiB, limit_bytes: 6 * GiB } }), status.ALREADY_EXISTS);
    await del(volume.volume_id);
  });

  it('a 128-character name fits the 128-byte volume id', async () => {
    const long = `sanity-controller-create-maxlen-${'y'.repeat(96)}`;
    const { volume } = await create(long, { parameters: params });
    assert.ok(Buffer.byteLength(volume.volume_id) <= 128);
    assert.equal((await create(long, { parameters: params })).volume.volume_id, volume.volume_id);
    await del(volume.volume_id);
  });

  it('delete removes exactly the volume\'s objects: a neighbour prefix and a longer sibling survive', async () => {
    const v1 = (await create('data', { parameters: params })).volume;
    const v10 = (await create('data10', { parameters: params })).volume;
    await put('shared-vols', 'data/a.txt');
    await put('shared-vols', 'data/sub/b.txt');
    await put('shared-vols', 'data10/c.txt');
    await put('shared-vols', 'neighbour/keep.txt');
    await put('shared-vols', 'data.txt');
    await del(v1.volume_id);
    assert.deepEqual(await keys('shared-vols', 'data/'), []);
    assert.deepEqual(await keys('shared-vols', 'data10/'), ['data10/', 'data10/c.txt']);
    assert.deepEqual(await keys('shared-vols', 'neighbour/'), ['neighbour/keep.txt']);
    assert.deepEqual(await keys('shared-vols', 'data.txt'), ['data.txt']);
    assert.ok(!(await keys('shared-vols', '.s3fs-csi/')).includes('.s3fs-csi/volumes/data.json'));
    await del(v10.volume_id);
  });

  it('reclaimData=retain keeps the data and only forgets the volume', async () => {
    const { volume } = await create('kept', { parameters: { ...params, reclaimData: 'retain' } });
    await put('shared-vols', 'kept/important.txt');
    await del(volume.volume_id);
    assert.deepEqual(await keys('shared-vols', 'kept/'), ['kept/', 'kept/important.txt']);
    assert.ok(!(await listAll(0)).some((v) => v.volume_id === volume.volume_id));

    const b = await create('pvc-kept-bucket', { parameters: { reclaimData: 'retain' } });
    await put('pvc-kept-bucket', 'important.txt');
    await del(b.volume.volume_id);
    assert.deepEqual(await keys('pvc-kept-bucket'), ['important.txt']);
    cleanups.push(async () => {
      await raw.send(new DeleteObjectCommand({ Bucket: 'pvc-kept-bucket', Key: 'important.txt' }));
      await raw.send(new DeleteBucketCommand({ Bucket: 'pvc-kept-bucket' }));
    });
  });

  it('ControllerGetVolume reports the prefix deleted behind the driver\'s back as abnormal', async () => {
    const { volume } = await create('fragile', { parameters: params });
    await put('shared-vols', 'fragile/x');
    const ok = await getVolume(volume.volume_id);
    assert.equal(ok.status.volume_condition.abnormal, false);
    assert.equal(ok.volume.volume_context.prefix, 'fragile');
    for (const k of await keys('shared-vols', 'fragile/')) await raw.send(new DeleteObjectCommand({ Bucket: 'shared-vols', Key: k }));
    const gone = await getVolume(volume.volume_id);
    assert.equal(gone.status.volume_condition.abnormal, true);
    assert.match(gone.status.volume_condition.message, /fragile/);
    await del(volume.volume_id);
  });
});

describe('static volumes (existing data, no CreateVolume)', () => {
  it('validates, reports and expands ids of existing data; DeleteVolume never touches it', async () => {
    await raw.send(new CreateBucketCommand({ Bucket: 'static-data' }));
    await put('static-data', 'file.txt');
    await put('static-data', 'team/file.txt');
    cleanups.push(async () => {
      for (const k of await keys('static-data')) await raw.send(new DeleteObjectCommand({ Bucket: 'static-data', Key: k }));
      await raw.send(new DeleteBucketCommand({ Bucket: 'static-data' }));
    });
    for (const id of ['static-data', 'static-data/team']) {
      const v = await d.call<{ confirmed?: object }>('Controller', 'ValidateVolumeCapabilities', { volume_id: id, volume_capabilities: MOUNT, secrets: s3.secrets });
      assert.ok(v.confirmed, id);
      assert.equal((await getVolume(id)).status.volume_condition.abnormal, false);
      const e = await d.call<{ capacity_bytes: number }>('Controller', 'ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 7 * GiB }, secrets: s3.secrets });
      assert.equal(e.capacity_bytes, 7 * GiB);
      await del(id);
    }
    assert.deepEqual(await keys('static-data'), ['file.txt', 'team/file.txt']);
    assert.equal(await d.callCode('Controller', 'ValidateVolumeCapabilities', { volume_id: 'static-data/nothing-here', volume_capabilities: MOUNT, secrets: s3.secrets }), status.NOT_FOUND);
  });
});

describe('capabilities and arguments', () => {
  it('accepts mount with every access mode, rejects block', async () => {
    const { volume } = await create('pvc-caps', { parameters: { bucket: 'shared-caps' } });
    for (const mode of ['SINGLE_NODE_WRITER', 'SINGLE_NODE_READER_ONLY', 'MULTI_NODE_READER_ONLY', 'MULTI_NODE_SINGLE_WRITER', 'MULTI_NODE_MULTI_WRITER', 'SINGLE_NODE_SINGLE_WRITER', 'SINGLE_NODE_MULTI_WRITER']) {
      const res = await d.call<{ confirmed?: { volume_capabilities: unknown[] } }>('Controller', 'ValidateVolumeCapabilities', {
        volume_id: volume.volume_id, volume_capabilities: [{ mount: {}, access_mode: { mode } }], secrets: s3.secrets,
      });
      assert.equal(res.confirmed?.volume_capabilities.length, 1, mode);
    }
    const block = await d.call<{ confirmed?: object; message: string }>('Controller', 'ValidateVolumeCapabilities', {
      volume_id: volume.volume_id, volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }], secrets: s3.secrets,
    });
    assert.equal(block.confirmed, null);
    assert.match(block.message, /block/);
    assert.equal(await createCode('pvc-block', { volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }] }), status.INVALID_ARGUMENT);
    assert.equal(await d.callCode('Controller', 'ValidateVolumeCapabilities', { volume_id: 'fake-vol-id', volume_capabilities: MOUNT, secrets: s3.secrets }), status.NOT_FOUND);
    assert.equal(await d.callCode('Controller', 'ValidateVolumeCapabilities', { volume_id: 'Not A Valid Id', volume_capabilities: MOUNT, secrets: s3.secrets }), status.NOT_FOUND);
    await del(volume.volume_id);
  });

  it('names the bad parameter in INVALID_ARGUMENT; unsupported RPCs are UNIMPLEMENTED', async () => {
    for (const [parameters, name] of [
      [{ bucket: 'Bad_Bucket' }, 'bucket'], [{ reclaimData: 'maybe' }, 'reclaimData'], [{ bucketPrefix: 'UPPER' }, 'bucketPrefix'],
      [{ typo: 'x' }, 'typo'], [{ options: 'a\nb' }, 'options'], [{ endpoint: 'http://elsewhere:9000' }, 'endpoint'],
    ] as const) {
      await assert.rejects(create('pvc-bad', { parameters }), (err: { code: number; details: string }) => {
        assert.equal(err.code, status.INVALID_ARGUMENT);
        assert.match(err.details, new RegExp(`"${name}"`));
        return true;
      });
    }
    assert.equal(await createCode('pvc-range', { capacity_range: { required_bytes: 2 * GiB, limit_bytes: GiB } }), status.OUT_OF_RANGE);
    assert.equal(await d.callCode('Controller', 'ListVolumes', { starting_token: 'not-ours' }), status.ABORTED);
    for (const m of ['GetCapacity', 'ControllerPublishVolume', 'CreateSnapshot', 'ControllerModifyVolume']) {
      assert.equal(await d.callCode('Controller', m, {}), status.UNIMPLEMENTED, m);
    }
    const caps = await d.call<{ capabilities: { rpc: { type: string } }[] }>('Controller', 'ControllerGetCapabilities');
    assert.deepEqual(caps.capabilities.map((c) => c.rpc.type).sort(),
      ['CREATE_DELETE_VOLUME', 'EXPAND_VOLUME', 'GET_VOLUME', 'LIST_VOLUMES', 'SINGLE_NODE_MULTI_WRITER', 'VOLUME_CONDITION']);
  });
});

describe('ListVolumes', () => {
  it('pages through volumes of both models with max_entries, without duplicates or gaps', async () => {
    const created: string[] = [];
    for (let i = 0; i < 4; i++) created.push((await create(`pvc-list-${i}`)).volume.volume_id);
    for (let i = 0; i < 3; i++) created.push((await create(`list-${i}`, { parameters: { bucket: 'shared-list' } })).volume.volume_id);
    const all = await listAll(0);
    for (const id of created) assert.ok(all.some((v) => v.volume_id === id), id);
    const paged = await listAll(2);
    assert.deepEqual(paged.map((v) => v.volume_id), all.map((v) => v.volume_id));
    assert.equal(new Set(paged.map((v) => v.volume_id)).size, paged.length);
    // a token stays valid when its volume is deleted between pages
    const first = await d.call<{ entries: { volume: Volume }[]; next_token: string }>('Controller', 'ListVolumes', { max_entries: 1 });
    await del(first.entries[0]!.volume.volume_id);
    const rest = await d.call<{ entries: { volume: Volume }[] }>('Controller', 'ListVolumes', { starting_token: first.next_token });
    assert.ok(rest.entries.length > 0);
    for (const id of created) await del(id);
  });
});

describe('concurrency', () => {
  it('50 concurrent CreateVolume calls with one name give one volume and 50 successful answers', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, () => create('pvc-stampede', { capacity_range: { required_bytes: GiB } })));
    assert.equal(new Set(answers.map((a) => a.volume.volume_id)).size, 1);
    assert.equal((await buckets()).filter((b) => b === 'pvc-stampede').length, 1);
    assert.deepEqual(await keys('pvc-stampede'), ['.s3fs-csi/volume.json']);
    const shared = await Promise.all(Array.from({ length: 50 }, () => create('stampede', { parameters: { bucket: 'shared-stampede' } })));
    assert.equal(new Set(shared.map((a) => a.volume.volume_id)).size, 1);
    await Promise.all([del('pvc-stampede'), del('pvc-stampede'), del('shared-stampede/stampede'), del('shared-stampede/stampede')]);
    assert.ok(!(await buckets()).includes('pvc-stampede'));
  });
});

describe('S3 outages', () => {
  it('S3 stopped: UNAVAILABLE quickly, Probe healthy, GetVolume abnormal; works again when S3 returns', async () => {
    const { volume } = await create('pvc-outage');
    await s3.pause();
    try {
      let t = Date.now();
      assert.equal(await createCode('pvc-outage-2'), status.UNAVAILABLE);
      const createMs = Date.now() - t;
      assert.ok(createMs < 5000, `CreateVolume took ${createMs} ms`);
      t = Date.now();
      assert.equal(await d.callCode('Controller', 'DeleteVolume', { volume_id: volume.volume_id, secrets: s3.secrets }), status.UNAVAILABLE);
      assert.equal(await d.callCode('Controller', 'ListVolumes', {}), status.UNAVAILABLE);
      const g = await getVolume(volume.volume_id);
      assert.equal(g.status.volume_condition.abnormal, true);
      assert.match(g.status.volume_condition.message, /unreachable/);
      console.log(`S3 down: CreateVolume UNAVAILABLE after ${createMs} ms, DeleteVolume/ListVolumes/GetVolume after ${Date.now() - t} ms`);
      const probe = await d.call<{ ready: { value: boolean } }>('Identity', 'Probe');
      assert.equal(probe.ready.value, true);
      assert.equal((await d.http('/healthz')).status, 200);
    } finally {
      await s3.start();
    }
    const again = await create('pvc-outage-2');
    assert.equal(again.volume.volume_id, 'pvc-outage-2');
    await del('pvc-outage-2');
    await del(volume.volume_id);
  });

  it('S3 hung or failing: UNAVAILABLE within the bounded call time, never INTERNAL', { timeout: 60_000 }, async () => {
    // A server that accepts connections and never answers, and one that answers every request 503 SlowDown.
    const sockets = new Set<Socket>();
    const hang = createTcpServer((sock) => { sockets.add(sock); sock.on('error', () => undefined); });
    const slowDown = createHttpServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>test</Message></Error>');
    });
    const listen = (srv: Server | ReturnType<typeof createHttpServer>): Promise<string> =>
      new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`)));
    const [hangEndpoint, slowEndpoint] = [await listen(hang), await listen(slowDown)];
    try {
      let t = Date.now();
      const hung = await d.callCode('Controller', 'CreateVolume', { name: 'pvc-hung', volume_capabilities: MOUNT, secrets: { ...s3.secrets, endpoint: hangEndpoint } }, 30_000);
      const hungMs = Date.now() - t;
      assert.equal(hung, status.UNAVAILABLE);
      assert.ok(hungMs < 15_000, `hung server: answered after ${hungMs} ms`);
      t = Date.now();
      const failing = await d.callCode('Controller', 'CreateVolume', { name: 'pvc-slowdown', volume_capabilities: MOUNT, secrets: { ...s3.secrets, endpoint: slowEndpoint } }, 30_000);
      const failingMs = Date.now() - t;
      assert.equal(failing, status.UNAVAILABLE);
      console.log(`hung S3: UNAVAILABLE after ${hungMs} ms; 503 SlowDown S3: UNAVAILABLE after ${failingMs} ms`);
    } finally {
      for (const sock of sockets) sock.destroy();
      slowDown.closeAllConnections();
      await new Promise((r) => hang.close(r));
      await new Promise((r) => slowDown.close(r));
    }
  });

  it('wrong credentials: UNAUTHENTICATED/PERMISSION_DENIED; no credentials anywhere: INVALID_ARGUMENT naming the key', async () => {
    // S3 servers answer a bad signature as SignatureDoesNotMatch (-> UNAUTHENTICATED) or AccessDenied
    // (-> PERMISSION_DENIED); either way a clear code and never the secret.
    await assert.rejects(create('pvc-badcreds', { secrets: { ...s3.secrets, secretAccessKey: 'wrong-secret-value' } }), (err: { code: number; details: string }) => {
      assert.ok([status.UNAUTHENTICATED, status.PERMISSION_DENIED].includes(err.code), `code ${err.code}: ${err.details}`);
      assert.doesNotMatch(err.details, /wrong-secret-value/);
      console.log(`bad secret key: ${err.details}`);
      return true;
    });
    const bare = await startDriver({ mode: 'controller', args: ['--s3-endpoint', s3.endpoint], env: { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' } });
    cleanups.push(() => bare.cleanup());
    await assert.rejects(bare.call('Controller', 'CreateVolume', { name: 'pvc-nocreds', volume_capabilities: MOUNT }), (err: { code: number; details: string }) => {
      assert.equal(err.code, status.INVALID_ARGUMENT);
      assert.match(err.details, /accessKeyID/);
      return true;
    });
    const caps = await bare.call<{ capabilities: { rpc: { type: string } }[] }>('Controller', 'ControllerGetCapabilities');
    assert.ok(!caps.capabilities.some((c) => c.rpc.type === 'LIST_VOLUMES'), 'LIST_VOLUMES needs driver-level credentials');
  });
});
