// Hostile input over the real socket: at least 10,000 malformed or adversarial requests per RPC of
// every service. The driver must never crash, answer only valid CSI codes (INVALID_ARGUMENT where a
// required field is missing, a refusal for paths outside the roots), never create or mount anything
// outside the allowed roots, and keep its memory bounded.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { codeName } from '../../src/errors.js';
import type { ServiceName } from '../../src/csi/proto.js';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { type FuzzWorld, RawClient, VALID_CODES, generator, isUndecodable, methodsOf } from '../harness/fuzz.js';
import { mountPointsUnder, scrubDir } from '../harness/mounts.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';
import { entriesUnder, findSecrets, rssBytes } from '../harness/scan.js';

const PER_RPC = Number(process.env.S3FS_CSI_FUZZ_COUNT ?? 10_000);
const IN_FLIGHT = 32;
const DEADLINE_MS = 20_000;
/**
 * RSS ceiling of the driver during the whole run. Requests of up to ~1 MiB grow V8's heap to a
 * plateau of ~450-500 MiB on this machine; a leak shows as growth after the plateau (checked below).
 */
const RSS_LIMIT = 640 * 1024 * 1024;

let s3: S3Server;
let drv: DriverProcess;
let dir: string;
let world: FuzzWorld;
let client: RawClient;
let mountsBefore: string[];
const rssSamples: { after: string; bytes: number }[] = [];
const summary: string[] = [];

async function readMountPoints(): Promise<string[]> {
  return mountPointsUnder('/');
}

before(async () => {
  s3 = await startS3Server();
  dir = await mkdtemp(join(tmpdir(), 's3fs-csi-fuzz-'));
  const kubeletDir = join(dir, 'kubelet');
  const outsideDir = join(dir, 'outside');
  const otherPod = join(kubeletDir, 'pods', 'other-pod-uid', 'volumes', 'kubernetes.io~csi', 'pv-other');
  await mkdir(outsideDir, { recursive: true });
  await mkdir(otherPod, { recursive: true });
  await writeFile(join(otherPod, 'precious'), 'other pod data');
  const pods = join(kubeletDir, 'pods');
  await symlink('/etc', join(pods, 'link-etc'));
  await symlink(outsideDir, join(pods, 'link-outside'));
  await symlink(otherPod, join(pods, 'link-other-pod'));
  mountsBefore = await readMountPoints();
  drv = await startDriver({
    mode: 'all',
    dir,
    // Errors only: 250,000 failing calls would otherwise be 250,000 warn lines.
    args: ['--s3-endpoint', s3.endpoint, '--log-level', 'error', '--mount-timeout', '5s', '--mount-check-timeout', '1s'],
  });
  const created = await drv
    .call<{ volume: { volume_id: string } }>('Controller', 'CreateVolume', {
      name: 'fuzz-base-volume',
      volume_capabilities: [{ mount: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }],
      secrets: s3.secrets,
    })
    .catch(() => undefined);
  world = {
    kubeletDir,
    outsideDir,
    linkToEtc: join(pods, 'link-etc'),
    linkToOutside: join(pods, 'link-outside'),
    linkToOtherPod: join(pods, 'link-other-pod'),
    volumeId: created?.volume.volume_id ?? 'fuzz-base-volume',
    secrets: s3.secrets,
    nodeId: 'test-node',
  };
  client = new RawClient(drv.socketPath);
});

after(async () => {
  client?.close();
  if (drv) await drv.stop('SIGKILL');
  if (dir) await scrubDir(dir);
  await s3?.stop();
  if (summary.length > 0) console.log(`fuzz summary (per RPC: requests, codes, ms):\n${summary.join('\n')}`);
});

interface Tally {
  codes: Map<string, number>;
  failures: string[];
  maxMs: number;
}

async function fuzzRpc(service: ServiceName, method: string, seed: number): Promise<Tally> {
  const gen = generator(service, method, world, seed);
  const tally: Tally = { codes: new Map(), failures: [], maxMs: 0 };
  // Does the RPC exist at all here? (UNIMPLEMENTED for everything is then the right answer.)
  const probe = await client.call(service, method, Buffer.alloc(0), DEADLINE_MS);
  const unimplemented = probe.code === status.UNIMPLEMENTED;
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < PER_RPC) {
      sent++;
      const c = gen.next();
      const res = await client.call(service, method, c.bytes, DEADLINE_MS);
      const name = isUndecodable(res) ? 'Internal(undecodable)' : codeName(res.code);
      tally.codes.set(name, (tally.codes.get(name) ?? 0) + 1);
      tally.maxMs = Math.max(tally.maxMs, res.ms);
      const fail = (why: string): void => {
        if (tally.failures.length < 20) tally.failures.push(`${why} [${c.note}] -> ${codeName(res.code)}: ${res.details.slice(0, 300)}`);
      };
      if (!VALID_CODES.has(res.code) && !isUndecodable(res)) fail('invalid code');
      else if (c.expect && !(unimplemented && res.code === status.UNIMPLEMENTED) && !c.expect.includes(res.code)) fail(`expected ${c.expect.map(codeName).join('|')}`);
      else if (c.outsidePath && res.code === status.OK && /^Node(Stage|Publish)Volume$/.test(method)) fail('accepted a path outside the roots');
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return tally;
}

describe(`hostile input: ${PER_RPC} requests per RPC over the real socket`, () => {
  const rpcs: [ServiceName, string][] = (['Identity', 'Controller', 'Node'] as const).flatMap((s) => methodsOf(s).map((m): [ServiceName, string] => [s, m]));
  let seed = 1;
  for (const [service, method] of rpcs) {
    const mySeed = seed++;
    it(`${service}.${method}`, async () => {
      const t0 = Date.now();
      const tally = await fuzzRpc(service, method, mySeed);
      const alive = drv.proc.exitCode === null && drv.proc.signalCode === null;
      const rss = rssBytes(drv.proc.pid ?? 0) ?? 0;
      rssSamples.push({ after: method, bytes: rss });
      const codes = [...tally.codes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(' ');
      summary.push(`${service}.${method}: ${PER_RPC} in ${Date.now() - t0} ms, max call ${tally.maxMs} ms, rss ${Math.round(rss / 1048576)} MiB; ${codes}`);
      assert.ok(alive, `driver died during ${method}: ${drv.logs.slice(-5).join('\n')}`);
      assert.deepEqual(tally.failures, [], `${method}: ${tally.failures.length} bad answers`);
      assert.ok(rss > 0 && rss < RSS_LIMIT, `driver RSS ${rss} bytes after ${method}`);
      // Answers keep coming while it is being fuzzed: a good call still works.
      assert.equal((await drv.call<{ name: string }>('Identity', 'GetPluginInfo')).name, 's3fs.csi.dev');
    });
  }

  it('created and mounted nothing outside the allowed roots, crashed nothing, memory stayed bounded', async () => {
    assert.deepEqual(entriesUnder(world.outsideDir), [], 'nothing appeared in the directory outside the roots');
    assert.deepEqual(readdirSync('/etc').filter((n) => n.startsWith('s3fs-csi-fuzz')), []);
    assert.deepEqual(readdirSync('/dev/shm').filter((n) => n.startsWith('s3fs-csi-fuzz')), []);
    const otherPod = join(world.kubeletDir, 'pods', 'other-pod-uid', 'volumes', 'kubernetes.io~csi', 'pv-other');
    assert.deepEqual(readdirSync(otherPod), ['precious'], "another pod's directory was not touched");
    assert.ok(!existsSync(join(dir, 'kubelet-sibling')));
    const allowed = [world.kubeletDir, join(dir, 'state')];
    const newMounts = (await readMountPoints()).filter((p) => !mountsBefore.includes(p));
    const stray = newMounts.filter((p) => !allowed.some((root) => p.startsWith(`${root}/`)));
    assert.deepEqual(stray, [], 'mounts outside the kubelet and state dirs');
    // No handler escaped into the process-level safety nets.
    const escaped = drv.logs.filter((l) => /uncaught exception|unhandled rejection/.test(l));
    assert.deepEqual(escaped.slice(0, 5), []);
    // The valid secrets rode along in a fraction of 260,000 requests: none of them came back out.
    assert.deepEqual(findSecrets([{ where: 'fuzz driver log', text: drv.logs.join('\n') }], [s3.secretKey]), []);
    const first = rssSamples[0]?.bytes ?? 0;
    const max = Math.max(...rssSamples.map((s) => s.bytes));
    assert.ok(max < RSS_LIMIT, `max RSS ${max}`);
    // Bounded, not growing: after the first four RPCs (heap warmed up by the largest requests), the
    // last sample is within 25% + 32 MiB of the fourth.
    const warm = rssSamples[3]?.bytes ?? first;
    const last = rssSamples.at(-1)?.bytes ?? 0;
    assert.ok(last <= warm * 1.25 + 32 * 1048576, `RSS grew from ${warm} to ${last} bytes`);
    summary.push(`RSS: first ${Math.round(first / 1048576)} MiB, max ${Math.round(max / 1048576)} MiB, last ${Math.round((rssSamples.at(-1)?.bytes ?? 0) / 1048576)} MiB`);
  });
});
