// 5. Controller: CreateVolume + DeleteVolume pairs per second at 1, 10 and 50 concurrent clients, in
// both provisioning models (a bucket per volume; a prefix in a shared bucket), against the bare S3
// calls that model cannot do without (CreateBucket+DeleteBucket; PutObject+DeleteObject of the
// directory marker) sent straight with @aws-sdk/client-s3 at the same server — the limit.
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { status, type ServiceError } from '@grpc/grpc-js';
import { benchDriver } from '../lib/drivers.js';
import { closedLoop, type LoopResult } from '../lib/load.js';
import { benchS3 } from '../lib/s3.js';
import { directClient } from '../lib/s3direct.js';
import { pairRatio, stat } from '../lib/stats.js';
import { na, type BenchContext, type Row, type SectionResult } from '../lib/types.js';

const SECTION = 'controller';

export async function controllerSection(ctx: BenchContext): Promise<SectionResult> {
  const levels = ctx.pick([1, 10, 50], [1, 10, 50], [1, 10]);
  const opsFor = (c: number): number => ctx.pick(c === 1 ? 60 : 200, c === 1 ? 20 : 60, 10);
  const reps = ctx.pick(3, 1, 1);
  const { s3, stop: stopS3 } = await benchS3(ctx);
  const { driver, stop: stopDriver } = await benchDriver(ctx, 'driver (controller)', { mode: 'controller' });
  const sdk = directClient(s3);
  try {
    const probe = await driver.call('Controller', 'CreateVolume', { name: 'bench-probe', parameters: {}, secrets: s3.secrets, volume_capabilities: [] }, 10_000)
      .then(() => 'ok', (e: ServiceError) => (e.code === status.UNIMPLEMENTED ? 'unimplemented' : 'other'));
    if (probe === 'unimplemented') return na(SECTION, 'not implemented (CreateVolume answers UNIMPLEMENTED)');

    const cap = [{ mount: { fs_type: '', mount_flags: [] }, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }];
    const shared = 'bench-shared';
    await sdk.send(new CreateBucketCommand({ Bucket: shared }));
    let seq = 0;
    const models = [
      {
        name: 'bucket per volume',
        params: {} as Record<string, string>,
        limit: 'SDK CreateBucket+DeleteBucket',
        direct: async (): Promise<void> => {
          const b = `bench-direct-${process.pid}-${seq++}`;
          await sdk.send(new CreateBucketCommand({ Bucket: b }));
          await sdk.send(new DeleteBucketCommand({ Bucket: b }));
        },
      },
      {
        name: 'prefix in a shared bucket',
        params: { bucket: shared } as Record<string, string>,
        limit: 'SDK PutObject+DeleteObject',
        direct: async (): Promise<void> => {
          const k = `direct-${seq++}/`;
          await sdk.send(new PutObjectCommand({ Bucket: shared, Key: k, Body: '' }));
          await sdk.send(new DeleteObjectCommand({ Bucket: shared, Key: k }));
        },
      },
    ];
    const rows: Row[] = [];
    const details: Record<string, unknown> = { reps, levels };
    for (const model of models) {
      const viaDriver = async (): Promise<void> => {
        const name = `pvc-bench-${process.pid}-${seq++}`;
        const res = await driver.call<{ volume: { volume_id: string } }>('Controller', 'CreateVolume', { name, parameters: model.params, secrets: s3.secrets, volume_capabilities: cap }, 30_000);
        await driver.call('Controller', 'DeleteVolume', { volume_id: res.volume.volume_id, secrets: s3.secrets }, 30_000);
      };
      // Warm-up: connections, JIT, the shared bucket's first records.
      await closedLoop(5, 5, viaDriver);
      await closedLoop(5, 5, model.direct);
      for (const c of levels) {
        const ours: LoopResult[] = [];
        const theirs: LoopResult[] = [];
        for (let i = 0; i < reps; i++) {
          ours.push(await closedLoop(opsFor(c), c, viaDriver));
          theirs.push(await closedLoop(opsFor(c), c, model.direct));
        }
        const bad = [...ours, ...theirs].find((r) => r.errors > 0);
        if (bad) throw new Error(`controller ${model.name} c=${c}: ${bad.errors} errors, first: ${bad.firstError}`);
        const a = ours.map((r) => r.opsPerSec);
        const b = theirs.map((r) => r.opsPerSec);
        rows.push({
          metric: `Create+DeleteVolume, ${model.name}, ${c} client${c > 1 ? 's' : ''}`,
          unit: 'pairs/s',
          better: 'higher',
          ours: stat(a),
          peer: { label: model.limit, stat: stat(b) },
          ratio: pairRatio(a, b),
          note: `p50 ${stat(ours.map((r) => r.p50)).median.toFixed(0)} ms`,
        });
        details[`${model.name} c=${c}`] = { ours, theirs };
        ctx.log(`controller ${model.name} c=${c}: ${stat(a).median.toFixed(1)} vs ${stat(b).median.toFixed(1)} pairs/s`);
      }
    }
    return { section: SECTION, status: 'ok', rows, details };
  } finally {
    sdk.destroy();
    await stopDriver();
    await stopS3();
  }
}
