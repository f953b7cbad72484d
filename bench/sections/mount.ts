// 3. Mount latency: NodeStageVolume wall time against the same s3fs command run by hand until the
// mount answers (the limit), and NodePublishVolume (a bind mount) wall time; unpublish/unstage too.
// Both configurations: s3fs in the node plugin, and s3fs in the separate mounter as the chart runs it
// (the node plugin forwards over the mounter's socket); the hand-run s3fs is measured between the
// driver's calls, in the same loop, so both see the same machine.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { status, type ServiceError } from '@grpc/grpc-js';
import { mounterSocketOf, startMounter } from '../../test/harness/mounter.js';
import { benchDriver } from '../lib/drivers.js';
import { mountByHand } from '../lib/handmount.js';
import { publish, stage, stagingOf, targetOf, unpublish, unstage } from '../lib/nodeops.js';
import { benchS3 } from '../lib/s3.js';
import { directClient } from '../lib/s3direct.js';
import { nowMs, pairRatio, stat } from '../lib/stats.js';
import { na, type BenchContext, type Row, type SectionResult } from '../lib/types.js';
import type { DriverProcess } from '../../test/harness/driver.js';
import type { S3Server } from '../../test/harness/s3server.js';

const SECTION = 'mount';

type Config = 'in-process' | 'mounter';

interface Samples { stageMs: number[]; handMs: number[]; publishMs: number[]; unpublishMs: number[]; unstageMs: number[] }

async function measure(ctx: BenchContext, s3: S3Server, driver: DriverProcess, bucket: string, reps: number, tag: string): Promise<Samples> {
  const out: Samples = { stageMs: [], handMs: [], publishMs: [], unpublishMs: [], unstageMs: [] };
  for (let i = -1; i < reps; i++) { // i = -1: warm-up
    const staging = stagingOf(driver, `pv-${tag}-${i + 1}`);
    const target = await targetOf(driver, `pod-${tag}-${i + 1}`, `pv-${tag}-${i + 1}`);
    let t = nowMs();
    await stage(driver, s3, bucket, staging);
    const s = nowMs() - t;
    t = nowMs();
    await publish(driver, bucket, staging, target);
    const p = nowMs() - t;
    t = nowMs();
    await unpublish(driver, bucket, target);
    const up = nowMs() - t;
    t = nowMs();
    await unstage(driver, bucket, staging);
    const us = nowMs() - t;
    const hand = await mountByHand(ctx, s3, { volumeId: bucket });
    await hand.unmount();
    if (i < 0) continue;
    out.stageMs.push(s);
    out.publishMs.push(p);
    out.unpublishMs.push(up);
    out.unstageMs.push(us);
    out.handMs.push(hand.ms);
  }
  return out;
}

/** The node plugin, with the mounter beside it for `mounter` (both stopped by the returned function). */
async function driverFor(ctx: BenchContext, config: Config): Promise<{ driver: DriverProcess; stop: () => Promise<void> }> {
  if (config === 'in-process') return benchDriver(ctx, 'driver (mount)', { mode: 'node' });
  const dir = join(ctx.workDir, 'mount-mounter');
  await mkdir(dir, { recursive: true });
  const mounter = await startMounter({ dir });
  ctx.cleanup.pids.push(mounter.pid);
  const stopMounter = ctx.cleanup.add('mounter (mount)', () => mounter.kill());
  const { driver, stop: stopDriver } = await benchDriver(ctx, 'driver (mount, with mounter)', { mode: 'node', dir, args: ['--mounter-endpoint', `unix://${mounterSocketOf(dir)}`] });
  return {
    driver,
    stop: async () => {
      await stopDriver();
      await stopMounter();
    },
  };
}

export async function mountSection(ctx: BenchContext): Promise<SectionResult> {
  const reps = ctx.pick(10, 3, 1);
  const { s3, stop: stopS3 } = await benchS3(ctx);
  const sdk = directClient(s3);
  const rows: Row[] = [];
  const details: Record<string, unknown> = { reps };
  try {
    const bucket = 'bench-mount';
    await sdk.send(new CreateBucketCommand({ Bucket: bucket }));
    await sdk.send(new PutObjectCommand({ Bucket: bucket, Key: 'hello.txt', Body: 'hello' }));
    for (const config of ['in-process', 'mounter'] as const) {
      const { driver, stop } = await driverFor(ctx, config);
      const stopMounts = ctx.cleanup.mounts(driver.dir);
      try {
        const code = await driver.call('Node', 'NodeStageVolume', {}, 5000).then(() => 0, (e: ServiceError) => e.code);
        if (code === status.UNIMPLEMENTED) return na(SECTION, 'not implemented (NodeStageVolume answers UNIMPLEMENTED)');
        const m = await measure(ctx, s3, driver, bucket, reps, config);
        details[config] = m;
        const where = config === 'mounter' ? 's3fs in the mounter' : 's3fs in the node plugin';
        ctx.log(`mount (${where}): stage ${stat(m.stageMs).median.toFixed(0)} ms vs by hand ${stat(m.handMs).median.toFixed(0)} ms`);
        rows.push(
          { metric: `NodeStageVolume (s3fs mounted and answering; ${where})`, unit: 'ms', better: 'lower', ours: stat(m.stageMs), peer: { label: 'same s3fs command by hand', stat: stat(m.handMs) }, ratio: pairRatio(m.stageMs, m.handMs) },
          { metric: `NodePublishVolume (bind mount; ${where})`, unit: 'ms', better: 'lower', ours: stat(m.publishMs) },
          { metric: `NodeUnpublishVolume (${where})`, unit: 'ms', better: 'lower', ours: stat(m.unpublishMs) },
          { metric: `NodeUnstageVolume (s3fs stopped; ${where})`, unit: 'ms', better: 'lower', ours: stat(m.unstageMs) },
        );
      } finally {
        await stop();
        await stopMounts();
      }
    }
    return { section: SECTION, status: 'ok', rows, details };
  } finally {
    sdk.destroy();
    await stopS3();
  }
}
