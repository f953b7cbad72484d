// The benchmark runner: `make bench` (full) or `make bench QUICK=1` (under 3 minutes).
//   node dist/bench/run.js [--quick] [--smoke] [--only probe,footprint,...] [--out build/bench]
// Starts what each section needs, prints a markdown table, writes JSON under build/bench/ and undoes
// everything it started or mounted — also on failure and on Ctrl-C.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../src/paths.js';
import { Cleanup } from './lib/cleanup.js';
import { machine, table } from './lib/report.js';
import { nowMs } from './lib/stats.js';
import type { BenchContext, Section, SectionResult, Settings } from './lib/types.js';
import { controllerSection } from './sections/controller.js';
import { datapathSection } from './sections/datapath.js';
import { footprintSection } from './sections/footprint.js';
import { mountSection } from './sections/mount.js';
import { probeSection } from './sections/probe.js';
import { recoverySection } from './sections/recovery.js';

export const SECTIONS: Record<string, Section> = {
  probe: probeSection,
  footprint: footprintSection,
  controller: controllerSection,
  mount: mountSection,
  datapath: datapathSection,
  recovery: recoverySection,
};

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: /^(1|true|yes)$/i.test(process.env.QUICK ?? '') },
      smoke: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string', default: join(packageRoot, 'build', 'bench') },
    },
  });
  const settings: Settings = { quick: values.quick === true || values.smoke === true, smoke: values.smoke === true };
  const names = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : Object.keys(SECTIONS);
  for (const n of names) if (!SECTIONS[n]) throw new Error(`unknown section "${n}" (known: ${Object.keys(SECTIONS).join(', ')})`);

  const cleanup = new Cleanup();
  const workDir = await mkdtemp(join(tmpdir(), 's3fs-csi-bench-'));
  cleanup.add('work dir', () => rm(workDir, { recursive: true, force: true }));
  cleanup.mounts(workDir);
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n[bench] ${sig}: stopping what was started\n`);
    void cleanup.run().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const mode = settings.smoke ? 'smoke' : settings.quick ? 'quick' : 'full';
  const log = (msg: string): void => {
    process.stderr.write(`[bench] ${msg}\n`);
  };
  const ctx: BenchContext = {
    settings,
    cleanup,
    workDir,
    log,
    pick: (full, quick, smoke) => (settings.smoke ? smoke : settings.quick ? quick : full),
  };
  const started = new Date();
  const results: SectionResult[] = [];
  try {
    for (const name of names) {
      const section = SECTIONS[name];
      if (!section) continue;
      log(`section ${name} (${mode})`);
      const t0 = nowMs();
      let r: SectionResult;
      try {
        r = await section(ctx);
      } catch (err) {
        r = { section: name, status: 'failed', reason: (err as Error).message.split('\n')[0] ?? 'error', rows: [], details: { stack: (err as Error).stack } };
        log(`section ${name} failed: ${(err as Error).stack ?? String(err)}`);
      }
      r.seconds = (nowMs() - t0) / 1000;
      results.push(r);
      log(`section ${name}: ${r.status}${r.reason ? ` (${r.reason})` : ''} in ${r.seconds.toFixed(1)} s`);
      if (interrupted) break;
    }
  } finally {
    await cleanup.run();
  }

  const text = table(results);
  const report = { started: started.toISOString(), mode, seconds: (Date.now() - started.getTime()) / 1000, machine: machine(), results, startedPids: cleanup.pids };
  await mkdir(values.out, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  await writeFile(join(values.out, `results-${mode}-${stamp}.json`), JSON.stringify(report, null, 2));
  await writeFile(join(values.out, `latest-${mode}.json`), JSON.stringify(report, null, 2));
  await writeFile(join(values.out, `latest-${mode}.md`), `${text}\n`);
  process.stdout.write(`\ns3fs-csi benchmark (${mode}) on ${report.machine.cores} × ${report.machine.cpu}, ${report.machine.memoryGiB} GiB, ${process.version}, ${report.seconds.toFixed(0)} s\n\n${text}\n\nJSON: ${join(values.out, `latest-${mode}.json`)}\n`);
  return results.some((r) => r.status === 'failed') ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[bench] ${(err as Error).stack ?? String(err)}\n`);
    process.exit(2);
  },
);
