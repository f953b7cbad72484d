// The benchmark runner in its smoke mode (one tiny repetition of the cheap sections): proves that
// `make bench` starts, measures, prints its table, writes JSON and leaves no process behind —
// without benchmarking anything inside `make test`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { packageRoot } from '../../src/paths.js';

const out = await mkdtemp(join(tmpdir(), 's3fs-csi-bench-smoke-'));
after(() => rm(out, { recursive: true, force: true }));

interface Report {
  mode: string;
  startedPids: number[];
  results: { section: string; status: string; reason?: string; rows: { metric: string; ours: { median: number; n: number } }[] }[];
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it('runs the runner in smoke mode: table, JSON, every started process stopped', { timeout: 120_000 }, async () => {
  const runner = join(packageRoot, 'dist', 'bench', 'run.js');
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [runner, '--smoke', '--only', 'probe,footprint', '--out', out], { timeout: 110_000 }, (err, so, se) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: String(so), stderr: String(se) }));
  });
  assert.equal(code, 0, `runner failed:\n${stdout}\n${stderr.slice(-3000)}`);
  assert.match(stdout, /\| section \| metric \|/);
  const file = join(out, 'latest-smoke.json');
  assert.ok(existsSync(file), 'JSON results written');
  const report = JSON.parse(await readFile(file, 'utf8')) as Report;
  assert.equal(report.mode, 'smoke');
  const footprint = report.results.find((r) => r.section === 'footprint');
  assert.equal(footprint?.status, 'ok', footprint?.reason);
  assert.ok(footprint.rows.every((r) => r.ours.n > 0 && r.ours.median > 0), 'every footprint row has a figure');
  // The probe section needs the peers (make bench installs them); without them it must say n/a, not fail.
  const probe = report.results.find((r) => r.section === 'probe');
  assert.ok(probe && (probe.status === 'ok' || probe.status === 'n/a'), `probe: ${probe?.status} ${probe?.reason ?? ''}`);
  // The runner stopped what it started: no driver or sidecar outlives it.
  assert.ok(report.startedPids.length > 0, 'the runner records what it started');
  assert.deepEqual(report.startedPids.filter(alive), [], 'processes left running');
});
