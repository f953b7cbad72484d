// 4. Data path: 1 GiB sequential write/read and 1,000 × 4 KiB files write/read/`ls -l` through the
// driver's mount vs the same through @aws-sdk/client-s3 at the same server (the limit), then s3fs
// tuning variants against the driver's defaults. Every read and listing follows a fresh mount, so it
// measures S3 and s3fs, not the kernel's page cache or s3fs's stat cache from the write.
import { CreateBucketCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { status, type ServiceError } from '@grpc/grpc-js';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { benchDriver } from '../lib/drivers.js';
import { mountByHand, type HandMount } from '../lib/handmount.js';
import { publish, stage, stagingOf, targetOf, unpublish, unstage } from '../lib/nodeops.js';
import { benchS3 } from '../lib/s3.js';
import { directClient } from '../lib/s3direct.js';
import { pairRatio, stat } from '../lib/stats.js';
import { na, type BenchContext, type Row, type SectionResult } from '../lib/types.js';
import {
  FILE_CONCURRENCY, fsList, fsSeqRead, fsSeqWrite, fsSmallRead, fsSmallWrite, sdkList, sdkSeqRead, sdkSeqWrite, sdkSmallRead,
  sdkSmallWrite,
} from '../lib/workloads.js';

const SECTION = 'datapath';
const BUCKET = 'bench-data';

interface Figures {
  write: number;
  read: number;
  smallWrite: number;
  smallRead: number;
  list: number;
}
type Metric = keyof Figures;

interface Target {
  open(): Promise<string>;
  close(): Promise<void>;
}

interface Variant {
  label: string;
  /** The figures this option is meant to move (the only rows printed for it; JSON has all). */
  metrics: Metric[];
  /** StorageClass `options` through the driver, or raw s3fs options by hand (outside the driver's policy). */
  options?: string;
  raw?: (ctx: BenchContext) => Promise<string[]>;
}

export async function datapathSection(ctx: BenchContext): Promise<SectionResult> {
  const mib = ctx.pick(1024, 64, 8);
  const files = ctx.pick(1000, 100, 10);
  const reps = ctx.pick(3, 1, 1);
  const variantReps = ctx.pick(2, 1, 1);
  const variants: Variant[] = ctx.settings.smoke ? [] : [
    { label: 'multipart_size=64', options: 'multipart_size=64', metrics: ['write', 'read'] },
    { label: 'parallel_count=16', options: 'parallel_count=16', metrics: ['write', 'read'] },
    { label: 'enable_noobj_cache', options: 'enable_noobj_cache', metrics: ['smallWrite', 'list'] },
    {
      label: 'use_cache (by hand)',
      metrics: ['read', 'smallRead', 'list'],
      raw: async (c) => {
        const dir = join(c.workDir, 's3fs-cache');
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir, { recursive: true });
        return [`use_cache=${dir}`];
      },
    },
  ];

  const { s3, stop: stopS3 } = await benchS3(ctx);
  const { driver, stop: stopDriver } = await benchDriver(ctx, 'driver (datapath)', { mode: 'node' });
  const stopMounts = ctx.cleanup.mounts(driver.dir);
  const sdk = directClient(s3);
  try {
    const code = await driver.call('Node', 'NodeStageVolume', {}, 5000).then(() => 0, (e: ServiceError) => e.code);
    if (code === status.UNIMPLEMENTED) return na(SECTION, 'not implemented (NodeStageVolume answers UNIMPLEMENTED)');
    await sdk.send(new CreateBucketCommand({ Bucket: BUCKET }));
    let seq = 0;

    const viaDriver = (options?: string): Target => {
      const n = ++seq;
      const staging = stagingOf(driver, `pv-data-${n}`);
      let target = '';
      return {
        async open() {
          target = await targetOf(driver, `pod-data-${n}`, `pv-data-${n}`);
          await stage(driver, s3, BUCKET, staging, options);
          await publish(driver, BUCKET, staging, target);
          return target;
        },
        async close() {
          await unpublish(driver, BUCKET, target);
          await unstage(driver, BUCKET, staging);
        },
      };
    };
    const byHand = (raw: string[]): Target => {
      let m: HandMount | undefined;
      return {
        async open() {
          m = await mountByHand(ctx, s3, { volumeId: BUCKET, rawOptions: raw });
          return m.path;
        },
        async close() {
          await m?.unmount();
        },
      };
    };

    const runMounted = async (t: Target, run: string): Promise<Figures> => {
      let dir = join(await t.open(), run);
      await mkdir(dir, { recursive: true });
      const write = await fsSeqWrite(dir, mib);
      await t.close();
      dir = join(await t.open(), run);
      const read = await fsSeqRead(dir, mib);
      await rm(join(dir, 'big'));
      const smallDir = join(dir, 'small');
      const smallWrite = await fsSmallWrite(smallDir, files);
      await t.close();
      dir = join(await t.open(), run);
      const smallRead = await fsSmallRead(join(dir, 'small'), files);
      await t.close();
      dir = join(await t.open(), run);
      const list = await fsList(join(dir, 'small'), files);
      await t.close();
      return { write, read, smallWrite, smallRead, list };
    };
    const runSdk = async (run: string): Promise<Figures> => {
      const key = `${run}/big`;
      const write = await sdkSeqWrite(sdk, BUCKET, key, mib);
      const read = await sdkSeqRead(sdk, BUCKET, key, mib);
      await sdk.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
      const p = `${run}/small`;
      const smallWrite = await sdkSmallWrite(sdk, BUCKET, p, files);
      const smallRead = await sdkSmallRead(sdk, BUCKET, p, files);
      const list = await sdkList(sdk, BUCKET, p, files);
      return { write, read, smallWrite, smallRead, list };
    };
    const show = (f: Figures): string => `write ${f.write.toFixed(0)} MiB/s, read ${f.read.toFixed(0)} MiB/s, small w ${f.smallWrite.toFixed(0)}/s r ${f.smallRead.toFixed(0)}/s, ls ${f.list.toFixed(0)} ms`;

    // Warm-up: one small round through each path.
    if (!ctx.settings.smoke) {
      const t = viaDriver();
      const dir = join(await t.open(), 'warmup');
      await fsSmallWrite(dir, 20);
      await fsSmallRead(dir, 20);
      await t.close();
      await sdkSmallWrite(sdk, BUCKET, 'warmup-sdk', 20);
    }

    const defaults: Figures[] = [];
    const direct: Figures[] = [];
    for (let i = 0; i < reps; i++) {
      const runs: [() => Promise<void>, () => Promise<void>] = [
        async () => void defaults.push(await runMounted(viaDriver(), `defaults-${i}`)),
        async () => void direct.push(await runSdk(`sdk-${i}`)),
      ];
      if (i % 2 === 1) runs.reverse();
      for (const r of runs) await r();
      ctx.log(`datapath rep ${i + 1}/${reps}: driver ${show(defaults[i] as Figures)}`);
      ctx.log(`datapath rep ${i + 1}/${reps}: SDK    ${show(direct[i] as Figures)}`);
    }
    // Each variant run is paired with a defaults run right beside it (order alternating), so the
    // ratio compares two runs under the same load of this shared machine.
    const tuned: Record<string, { variant: Figures[]; base: Figures[] }> = {};
    for (const v of variants) {
      const t: { variant: Figures[]; base: Figures[] } = { variant: [], base: [] };
      tuned[v.label] = t;
      for (let i = 0; i < variantReps; i++) {
        const tag = `${v.label.replace(/[^a-z0-9]+/gi, '-')}-${i}`;
        const runs: (() => Promise<void>)[] = [
          async () => {
            const target = v.raw ? byHand(await v.raw(ctx)) : viaDriver(v.options);
            t.variant.push(await runMounted(target, tag));
          },
          async () => void t.base.push(await runMounted(viaDriver(), `base-${tag}`)),
        ];
        if (i % 2 === 1) runs.reverse();
        for (const r of runs) await r();
        ctx.log(`datapath ${v.label} rep ${i + 1}/${variantReps}: ${show(t.variant[i] as Figures)}`);
        ctx.log(`datapath ${v.label} rep ${i + 1}/${variantReps}: defaults beside it: ${show(t.base[i] as Figures)}`);
      }
    }

    const METRICS: { key: Metric; name: string; unit: string; better: Row['better'] }[] = [
      { key: 'write', name: `sequential write ${mib} MiB`, unit: 'MiB/s', better: 'higher' },
      { key: 'read', name: `sequential read ${mib} MiB`, unit: 'MiB/s', better: 'higher' },
      { key: 'smallWrite', name: `write ${files} × 4 KiB files (${FILE_CONCURRENCY} at a time)`, unit: 'files/s', better: 'higher' },
      { key: 'smallRead', name: `read ${files} × 4 KiB files (${FILE_CONCURRENCY} at a time)`, unit: 'files/s', better: 'higher' },
      { key: 'list', name: `ls -l of ${files} files`, unit: 'ms', better: 'lower' },
    ];
    const rows: Row[] = [];
    for (const m of METRICS) {
      const a = defaults.map((f) => f[m.key]);
      const b = direct.map((f) => f[m.key]);
      rows.push({ metric: `${m.name} (driver defaults)`, unit: m.unit, better: m.better, ours: stat(a), peer: { label: '@aws-sdk/client-s3 direct', stat: stat(b) }, ratio: pairRatio(a, b) });
    }
    for (const v of variants) {
      for (const m of METRICS.filter((x) => v.metrics.includes(x.key))) {
        const a = (tuned[v.label]?.variant ?? []).map((f) => f[m.key]);
        const b = (tuned[v.label]?.base ?? []).map((f) => f[m.key]);
        rows.push({ metric: `${m.name}, ${v.label}`, unit: m.unit, better: m.better, ours: stat(a), peer: { label: 'driver defaults (run beside it)', stat: stat(b) }, ratio: pairRatio(a, b) });
      }
    }
    return { section: SECTION, status: 'ok', rows, details: { mib, files, reps, variantReps, defaults, direct, tuned } };
  } finally {
    sdk.destroy();
    await stopDriver();
    await stopMounts();
    await stopS3();
  }
}
