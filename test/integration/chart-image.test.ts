// The container image, as far as it can be proved without a container engine: the Dockerfile passes
// BuildKit's own linter (tools/dockerfile-lint, every rule incl. experimental ones), the build context
// holds what it copies, the app layer it assembles (production dependencies only) really runs, and it
// agrees with the chart (user id, the `s3fs-csi` command on PATH).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadYaml } from '@kubernetes/client-node';
import { packageRoot, packageVersion } from '../../src/paths.js';
import { chartDir } from '../harness/chart.js';
import { requireTool, tools } from '../harness/tools.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function run(bin: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(bin, args, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const dockerfile = join(packageRoot, 'Dockerfile');

/** Instructions of the Dockerfile as [keyword, rest] with continuation lines joined (comments dropped). */
async function instructions(): Promise<[string, string][]> {
  const text = (await readFile(dockerfile, 'utf8')).split('\n').filter((l) => !l.trimStart().startsWith('#')).join('\n').replace(/\\\n/g, ' ');
  return text.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
    const [kw, ...rest] = l.split(/\s+/);
    return [kw!.toUpperCase(), rest.join(' ')];
  });
}

describe('Dockerfile', () => {
  it('passes BuildKit\'s Dockerfile linter with every rule on, and fails the build on any finding', async () => {
    const text = await readFile(dockerfile, 'utf8');
    assert.match(text, /^# check=error=true;experimental=all$/m, '`docker build` enforces the same checks');
    const r = await run(requireTool(tools.dockerfileLint), [dockerfile]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it('the linter is live: it reports a Dockerfile with known problems', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 's3fs-csi-dockerfile-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const bad = join(dir, 'Dockerfile');
    await writeFile(bad, 'from node:24-bookworm-slim as build\nMAINTAINER someone\nENV A 1\nCMD node main.js\n');
    const r = await run(requireTool(tools.dockerfileLint), [bad]);
    assert.equal(r.code, 1);
    for (const rule of ['MaintainerDeprecated', 'ConsistentInstructionCasing', 'LegacyKeyValueFormat', 'JSONArgsRecommended']) assert.match(r.stdout, new RegExp(rule));
  });

  it('multi-stage on Node 24 slim; s3fs, fuse3 and tini from Debian; production dependencies only; OCI labels', async () => {
    const ins = await instructions();
    const froms = ins.filter(([k]) => k === 'FROM').map(([, v]) => v);
    assert.equal(froms.length, 3);
    assert.ok(ins.some(([k, v]) => k === 'ARG' && v === 'NODE_IMAGE=node:24-bookworm-slim'));
    const runs = ins.filter(([k]) => k === 'RUN').map(([, v]) => v);
    assert.ok(runs.some((r) => /apt-get install .*\bs3fs\b.*\bfuse3\b.*\btini\b/.test(r)));
    assert.ok(runs.some((r) => r.includes('npm ci --omit=dev')));
    const labels = ins.filter(([k]) => k === 'LABEL').map(([, v]) => v).join(' ');
    for (const l of ['title', 'description', 'version', 'revision', 'licenses', 'base.name']) {
      assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${l.replace('.', '\\.')}=`));
    }
    const entry = ins.find(([k]) => k === 'ENTRYPOINT')?.[1];
    assert.deepEqual(JSON.parse(entry ?? '[]'), ['/usr/bin/tini', '--', 's3fs-csi']);
  });

  it('agrees with the chart: the controller runs as the image user, probes call `s3fs-csi` on PATH', async () => {
    const ins = await instructions();
    const user = ins.filter(([k]) => k === 'USER').at(-1)?.[1];
    const values = loadYaml<{ controller: { podSecurityContext: { runAsUser: number; runAsGroup: number } } }>(await readFile(join(chartDir, 'values.yaml'), 'utf8'));
    assert.equal(user, `${values.controller.podSecurityContext.runAsUser}:${values.controller.podSecurityContext.runAsGroup}`);
    assert.ok(ins.some(([k, v]) => k === 'RUN' && v.includes('ln -s /app/bin/s3fs-csi /usr/local/bin/s3fs-csi')));
  });

  it('.dockerignore lets in exactly what the Dockerfile copies from the context', async () => {
    const ins = await instructions();
    const sources = ins
      .filter(([k, v]) => k === 'COPY' && !v.startsWith('--from'))
      .flatMap(([, v]) => v.split(/\s+/).slice(0, -1))
      .map((s) => s.replace(/\/$/, ''));
    const ignore = (await readFile(join(packageRoot, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    assert.equal(ignore[0], '*', 'everything else stays out of the context');
    const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    assert.deepEqual([...new Set(sources)].sort(), [...allowed].sort());
  });

  it('the app layer the image assembles (npm ci --omit=dev + dist/src + proto + bin) starts', { timeout: 300_000 }, async (t) => {
    const app = await mkdtemp(join(tmpdir(), 's3fs-csi-image-app-'));
    t.after(() => rm(app, { recursive: true, force: true }));
    for (const f of ['package.json', 'package-lock.json']) await cp(join(packageRoot, f), join(app, f));
    const npm = await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app, timeoutMs: 240_000 });
    assert.equal(npm.code, 0, npm.stderr);
    // Dev dependencies stay out of the image.
    await assert.rejects(readFile(join(app, 'node_modules', 'typescript', 'package.json')));
    await rm(join(app, 'package-lock.json'));
    await cp(join(packageRoot, 'dist', 'src'), join(app, 'dist', 'src'), { recursive: true });
    await cp(join(packageRoot, 'proto'), join(app, 'proto'), { recursive: true });
    await cp(join(packageRoot, 'bin'), join(app, 'bin'), { recursive: true });
    // main.js imports every module statically: --version loads them all.
    const version = await run(process.execPath, [join(app, 'bin', 's3fs-csi'), '--version']);
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.stdout.trim(), packageVersion);
    const probe = await run(process.execPath, [join(app, 'bin', 's3fs-csi'), 'probe', '--endpoint', `unix://${join(app, 'none.sock')}`, '--timeout', '1s']);
    assert.equal(probe.code, 1);
    assert.ok(probe.stderr.length > 0);
  });
});
