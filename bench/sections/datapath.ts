// 4. Data path: 1 GiB sequential write/read and 1,000 × 4 KiB files write/read/`ls -l` through the
// driver's mount vs the same through @aws-sdk/client-s3 at the same server (the limit), then s3fs
// tuning variants against the driver's defaults. Every read and listing follows a fresh mount, so it
// measures S3 and s3fs, not the kernel's page cache or s3fs's stat cache from the write.
//
// Knobs (environment), so a comparison is one `node dist/bench/run.js --only datapath`:
//   DATAPATH_S3FS=/usr/bin/s3fs,/path/to/other/s3fs  several s3fs builds, one driver each
//                        (--s3fs-path), measured in the same repetitions in rotating order
//   DATAPATH_TUNE_S3FS=1.95   which of them the tuning variants run on (version or path; default the first)
//   DATAPATH_VARIANTS='streamupload;max_dirty_data=128'   tuning variants instead of the built-in
//                        ones: `;`-separated s3fs option sets, through the driver when its option
//                        policy accepts them, else by hand with the driver's command line plus them
//                        (`use_cache` alone gets a fresh cache dir); `none` for no variants
//   DATAPATH_REPS, DATAPATH_VARIANT_REPS   repetitions (full mode: 3 and 2)
//   DATAPATH_SMALL=0     only the 1 GiB sequential write/read (no small files, no ls -l)
//   DATAPATH_MAX_LOAD=2.5   before every run wait (up to DATAPATH_LOAD_WAIT_S, default 900 s) until
//                        the 1-minute load average is below this, for a machine shared with others
import { CreateBucketCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { status, type ServiceError } from '@grpc/grpc-js';
import { mkdir, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { validateOptions } from '../../src/mount/options.js';
import type { DriverProcess } from '../../test/harness/driver.js';
import { benchDriver } from '../lib/drivers.js';
import { mountByHand, type HandMount } from '../lib/handmount.js';
import { publish, stage, stagingOf, targetOf, unpublish, unstage } from '../lib/nodeops.js';
import { benchS3 } from '../lib/s3.js';
import { s3fsBinaries, type S3fsBinary } from '../lib/s3fsbin.js';
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

const ALL_METRICS: Metric[] = ['write', 'read', 'smallWrite', 'smallRead', 'list'];

/**
 * DATAPATH_MAX_LOAD: waits until the 1-minute load average is below it (checked every 5 s, at most
 * DATAPATH_LOAD_WAIT_S); returns the load average the run starts with and whether the wait gave up.
 */
async function quietEnough(ctx: BenchContext): Promise<{ loadavg: number[]; waitedS: number; gaveUp: boolean }> {
  const max = Number(process.env.DATAPATH_MAX_LOAD ?? '');
  const t0 = Date.now();
  if (!(max > 0)) return { loadavg: loadavg(), waitedS: 0, gaveUp: false };
  const limitMs = envInt('DATAPATH_LOAD_WAIT_S', 900) * 1000;
  let logged = false;
  for (;;) {
    const l = loadavg();
    if ((l[0] ?? 0) < max) return { loadavg: l, waitedS: (Date.now() - t0) / 1000, gaveUp: false };
    if (Date.now() - t0 > limitMs) {
      ctx.log(`datapath: load ${(l[0] ?? 0).toFixed(2)} still >= ${max} after ${limitMs / 1000} s; running anyway`);
      return { loadavg: l, waitedS: (Date.now() - t0) / 1000, gaveUp: true };
    }
    if (!logged) ctx.log(`datapath: load ${(l[0] ?? 0).toFixed(2)} >= ${max}, waiting`);
    logged = true;
    await sleep(5000);
  }
}

/** A positive integer from the environment, or the default. */
function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${v}: expected a positive integer`);
  return n;
}

/** A raw s3fs option list for a hand mount; a bare `use_cache` gets a fresh directory under the work dir. */
async function rawOptions(ctx: BenchContext, set: string): Promise<string[]> {
  const out: string[] = [];
  for (const o of set.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (o === 'use_cache') {
      const dir = join(ctx.workDir, 's3fs-cache');
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      out.push(`use_cache=${dir}`);
    } else {
      out.push(o);
    }
  }
  return out;
}

/** DATAPATH_VARIANTS: option sets the driver accepts go through it, the others by hand. */
function variantsFromEnv(text: string): Variant[] {
  if (text.trim() === 'none') return [];
  return text.split(';').map((x) => x.trim()).filter(Boolean).map((set): Variant => {
    let viaDriver = true;
    try {
      validateOptions([set], 'DATAPATH_VARIANTS');
    } catch {
      viaDriver = false;
    }
    return viaDriver
      ? { label: set, options: set, metrics: ALL_METRICS }
      : { label: `${set} (by hand)`, metrics: ALL_METRICS, raw: (c) => rawOptions(c, set) };
  });
}

export async function datapathSection(ctx: BenchContext): Promise<SectionResult> {
  const mib = ctx.pick(1024, 64, 8);
  const files = ctx.pick(1000, 100, 10);
  const reps = envInt('DATAPATH_REPS', ctx.pick(3, 1, 1));
  const variantReps = envInt('DATAPATH_VARIANT_REPS', ctx.pick(2, 1, 1));
  const small = process.env.DATAPATH_SMALL !== '0';
  const envVariants = process.env.DATAPATH_VARIANTS;
  const variants: Variant[] = ctx.settings.smoke ? [] : envVariants !== undefined ? variantsFromEnv(envVariants) : [
    { label: 'multipart_size=64', options: 'multipart_size=64', metrics: ['write', 'read'] },
    { label: 'parallel_count=16', options: 'parallel_count=16', metrics: ['write', 'read'] },
    { label: 'enable_noobj_cache', options: 'enable_noobj_cache', metrics: ['smallWrite', 'list'] },
    {
      label: 'use_cache (by hand)',
      metrics: ['read', 'smallRead', 'list'],
      raw: (c) => rawOptions(c, 'use_cache'),
    },
  ];

  const binaries = await s3fsBinaries();
  const tuneSel = process.env.DATAPATH_TUNE_S3FS;
  const tune = tuneSel ? binaries.find((b) => b.bin === tuneSel || b.label === `s3fs ${tuneSel}` || b.label === tuneSel) : binaries[0];
  if (!tune) throw new Error(`DATAPATH_TUNE_S3FS=${tuneSel ?? ''} names none of ${binaries.map((b) => `${b.label} (${b.bin})`).join(', ')}`);
  ctx.log(`datapath: s3fs under test: ${binaries.map((b) => `${b.label} = ${b.bin}`).join('; ')}; variants on ${tune.label}`);

  const { s3, stop: stopS3 } = await benchS3(ctx);
  const stops: (() => Promise<void>)[] = [];
  const sdk = directClient(s3);
  try {
    // One driver per s3fs build, each told which binary to run.
    const drivers = new Map<S3fsBinary, DriverProcess>();
    for (const b of binaries) {
      const { driver, stop } = await benchDriver(ctx, `driver (datapath, ${b.label})`, { mode: 'node', args: ['--s3fs-path', b.bin] });
      stops.push(stop, ctx.cleanup.mounts(driver.dir));
      drivers.set(b, driver);
    }
    const first = drivers.get(binaries[0] as S3fsBinary) as DriverProcess;
    const code = await first.call('Node', 'NodeStageVolume', {}, 5000).then(() => 0, (e: ServiceError) => e.code);
    if (code === status.UNIMPLEMENTED) return na(SECTION, 'not implemented (NodeStageVolume answers UNIMPLEMENTED)');
    await sdk.send(new CreateBucketCommand({ Bucket: BUCKET }));
    let seq = 0;

    const viaDriver = (b: S3fsBinary, options?: string): Target => {
      const driver = drivers.get(b) as DriverProcess;
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
          m = await mountByHand(ctx, s3, { volumeId: BUCKET, rawOptions: raw, bin: tune.bin });
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
      if (!small) {
        await t.close();
        return { write, read, smallWrite: Number.NaN, smallRead: Number.NaN, list: Number.NaN };
      }
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
      if (!small) return { write, read, smallWrite: Number.NaN, smallRead: Number.NaN, list: Number.NaN };
      const p = `${run}/small`;
      const smallWrite = await sdkSmallWrite(sdk, BUCKET, p, files);
      const smallRead = await sdkSmallRead(sdk, BUCKET, p, files);
      const list = await sdkList(sdk, BUCKET, p, files);
      return { write, read, smallWrite, smallRead, list };
    };
    const show = (f: Figures): string => `write ${f.write.toFixed(0)} MiB/s, read ${f.read.toFixed(0)} MiB/s, small w ${f.smallWrite.toFixed(0)}/s r ${f.smallRead.toFixed(0)}/s, ls ${f.list.toFixed(0)} ms`;
    const fmtLoad = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');

    // Warm-up: one small round through each path.
    if (!ctx.settings.smoke) {
      for (const b of binaries) {
        const t = viaDriver(b);
        const dir = join(await t.open(), `warmup-${++seq}`);
        await fsSmallWrite(dir, 20);
        await fsSmallRead(dir, 20);
        await t.close();
      }
      await sdkSmallWrite(sdk, BUCKET, 'warmup-sdk', 20);
    }

    // Every path once per repetition, the order rotating (with k paths, k repetitions put each in
    // every position once), so a drift in the shared machine's load does not favour one of them.
    const defaults = new Map<S3fsBinary, Figures[]>(binaries.map((b) => [b, []]));
    const direct: Figures[] = [];
    const loads: { rep: number; path: string; loadavg: number[]; waitedS: number; gaveUp: boolean }[] = [];
    for (let i = 0; i < reps; i++) {
      const runs: { name: string; go: () => Promise<Figures> }[] = [
        ...binaries.map((b) => ({ name: b.label, go: async () => {
          const f = await runMounted(viaDriver(b), `defaults-${b.label.replace(/[^a-z0-9]+/gi, '-')}-${i}`);
          defaults.get(b)?.push(f);
          return f;
        } })),
        { name: 'SDK', go: async () => {
          const f = await runSdk(`sdk-${i}`);
          direct.push(f);
          return f;
        } },
      ];
      const order = runs.map((_, j) => runs[(i + j) % runs.length] as (typeof runs)[number]);
      for (const r of order) {
        const q = await quietEnough(ctx);
        loads.push({ rep: i, path: r.name, ...q });
        const f = await r.go();
        ctx.log(`datapath rep ${i + 1}/${reps}: ${r.name.padEnd(10)} ${show(f)} (load before: ${fmtLoad(q.loadavg)}, after: ${fmtLoad(loadavg())})`);
      }
    }
    // Each variant run is paired with a defaults run right beside it (order alternating), so the
    // ratio compares two runs under the same load of this shared machine.
    const tuned: Record<string, { variant: Figures[]; base: Figures[]; load: string[] }> = {};
    for (const v of variants) {
      const t: { variant: Figures[]; base: Figures[]; load: string[] } = { variant: [], base: [], load: [] };
      tuned[v.label] = t;
      for (let i = 0; i < variantReps; i++) {
        const tag = `${v.label.replace(/[^a-z0-9]+/gi, '-')}-${i}`;
        const runs: (() => Promise<void>)[] = [
          async () => {
            const target = v.raw ? byHand(await v.raw(ctx)) : viaDriver(tune, v.options);
            t.load.push(`variant ${fmtLoad((await quietEnough(ctx)).loadavg)}`);
            t.variant.push(await runMounted(target, tag));
          },
          async () => {
            t.load.push(`defaults ${fmtLoad((await quietEnough(ctx)).loadavg)}`);
            t.base.push(await runMounted(viaDriver(tune), `base-${tag}`));
          },
        ];
        if (i % 2 === 1) runs.reverse();
        for (const r of runs) await r();
        ctx.log(`datapath ${v.label} (${tune.label}) rep ${i + 1}/${variantReps}: ${show(t.variant[i] as Figures)} (load before: ${t.load.slice(-2).join(', ')})`);
        ctx.log(`datapath ${v.label} (${tune.label}) rep ${i + 1}/${variantReps}: defaults beside it: ${show(t.base[i] as Figures)}`);
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
    const measured = (xs: number[]): boolean => xs.some((x) => Number.isFinite(x));
    // With one s3fs the rows keep their old names; with several each names its build.
    const buildTag = (b: S3fsBinary): string => (binaries.length > 1 ? `, ${b.label}` : '');
    for (const m of METRICS) {
      for (const bin of binaries) {
        const a = (defaults.get(bin) ?? []).map((f) => f[m.key]);
        const b = direct.map((f) => f[m.key]);
        if (!measured(a)) continue;
        rows.push({ metric: `${m.name} (driver defaults${buildTag(bin)})`, unit: m.unit, better: m.better, ours: stat(a), peer: { label: '@aws-sdk/client-s3 direct', stat: stat(b) }, ratio: pairRatio(a, b) });
      }
    }
    // Each other build against the first, repetition by repetition.
    const base = binaries[0] as S3fsBinary;
    for (const other of binaries.slice(1)) {
      for (const m of METRICS) {
        const a = (defaults.get(other) ?? []).map((f) => f[m.key]);
        const b = (defaults.get(base) ?? []).map((f) => f[m.key]);
        if (!measured(a)) continue;
        rows.push({ metric: `${m.name} (driver defaults), ${other.label} vs ${base.label}`, unit: m.unit, better: m.better, ours: stat(a), peer: { label: `${base.label}, same repetitions`, stat: stat(b) }, ratio: pairRatio(a, b) });
      }
    }
    for (const v of variants) {
      for (const m of METRICS.filter((x) => v.metrics.includes(x.key))) {
        const a = (tuned[v.label]?.variant ?? []).map((f) => f[m.key]);
        const b = (tuned[v.label]?.base ?? []).map((f) => f[m.key]);
        if (!measured(a)) continue;
        rows.push({ metric: `${m.name}, ${v.label}${buildTag(tune)}`, unit: m.unit, better: m.better, ours: stat(a), peer: { label: 'driver defaults (run beside it)', stat: stat(b) }, ratio: pairRatio(a, b) });
      }
    }
    const byLabel = Object.fromEntries(binaries.map((b) => [b.label, { bin: b.bin, version: b.version, runs: defaults.get(b) ?? [] }]));
    return { section: SECTION, status: 'ok', rows, details: { mib, files, reps, variantReps, small, s3fs: byLabel, tune: tune.label, direct, tuned, loads } };
  } finally {
    sdk.destroy();
    for (const stop of stops) await stop();
    await stopS3();
  }
}
