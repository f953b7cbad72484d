// 3. Mount latency: NodeStageVolume wall time against the same s3fs command run by hand until the
// mount answers (the limit), and NodePublishVolume (a bind mount) wall time; unpublish/unstage too.
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { status, type ServiceError } from '@grpc/grpc-js';
import { benchDriver } from '../lib/drivers.js';
import { mountByHand } from '../lib/handmount.js';
import { publish, stage, stagingOf, targetOf, unpublish, unstage } from '../lib/nodeops.js';
import { benchS3 } from '../lib/s3.js';
import { directClient } from '../lib/s3direct.js';
import { nowMs, pairRatio, stat } from '../lib/stats.js';
import { na, type BenchContext, type Row, type SectionResult } from '../lib/types.js';

const SECTION = 'mount';

export async function mountSection(ctx: BenchContext): Promise<SectionResult> {
  const reps = ctx.pick(10, 3, 1);
  const { s3, stop: stopS3 } = await benchS3(ctx);
  const { driver, stop: stopDriver } = await benchDriver(ctx, 'driver (mount)', { mode: 'node' });
  const sdk = directClient(s3);
  const stopMounts = ctx.cleanup.mounts(driver.dir);
  try {
    const code = await driver.call('Node', 'NodeStageVolume', {}, 5000).then(() => 0, (e: ServiceError) => e.code);
    if (code === status.UNIMPLEMENTED) return na(SECTION, 'not implemented (NodeStageVolume answers UNIMPLEMENTED)');
    const bucket = 'bench-mount';
    await sdk.send(new CreateBucketCommand({ Bucket: bucket }));
    await sdk.send(new PutObjectCommand({ Bucket: bucket, Key: 'hello.txt', Body: 'hello' }));

    const stageMs: number[] = [];
    const handMs: number[] = [];
    const publishMs: number[] = [];
    const unpublishMs: number[] = [];
    const unstageMs: number[] = [];
    for (let i = -1; i < reps; i++) { // i = -1: warm-up
      const staging = stagingOf(driver, `pv-${i + 1}`);
      const target = await targetOf(driver, `pod-${i + 1}`, `pv-${i + 1}`);
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
      stageMs.push(s);
      publishMs.push(p);
      unpublishMs.push(up);
      unstageMs.push(us);
      handMs.push(hand.ms);
    }
    ctx.log(`mount: stage ${stat(stageMs).median.toFixed(0)} ms vs by hand ${stat(handMs).median.toFixed(0)} ms`);
    const rows: Row[] = [
      { metric: 'NodeStageVolume (s3fs mounted and answering)', unit: 'ms', better: 'lower', ours: stat(stageMs), peer: { label: 'same s3fs command by hand', stat: stat(handMs) }, ratio: pairRatio(stageMs, handMs) },
      { metric: 'NodePublishVolume (bind mount)', unit: 'ms', better: 'lower', ours: stat(publishMs) },
      { metric: 'NodeUnpublishVolume', unit: 'ms', better: 'lower', ours: stat(unpublishMs) },
      { metric: 'NodeUnstageVolume (s3fs stopped)', unit: 'ms', better: 'lower', ours: stat(unstageMs) },
    ];
    return { section: SECTION, status: 'ok', rows, details: { reps, stageMs, handMs, publishMs, unpublishMs, unstageMs } };
  } finally {
    sdk.destroy();
    await stopDriver();
    await stopMounts();
    await stopS3();
  }
}
