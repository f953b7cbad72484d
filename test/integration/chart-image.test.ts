// The container image: the Dockerfile passes BuildKit's own linter (tools/dockerfile-lint, every rule
// incl. experimental ones), the build context holds what it copies, the app layer it assembles
// (production dependencies only) really runs, it agrees with the chart (user id, the `s3fs-csi`
// command on PATH); and the image `make image` builds (scripts/image.sh: BuildKit, locally made base,
// cached by its inputs) has the expected config and files and runs the driver under runc.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadYaml } from '@kubernetes/client-node';
import { packageRoot, packageVersion } from '../../src/paths.js';
import { chartDir } from '../harness/chart.js';
import { ensureDriverImage, type LocalImage } from '../harness/images.js';
import { layerPaths, readDockerArchive, runcDelete, runcRun, unpackRootfs, writeBundleConfig, type DockerArchive } from '../harness/runc.js';
import { requireTool, tools } from '../harness/tools.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function run(bin: string, args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(bin, args, { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
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
    assert.deepEqual(froms, ['${NODE_IMAGE} AS build', '${NODE_IMAGE} AS deps', '${NODE_IMAGE} AS heal', '${NODE_IMAGE}']);
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

  it('bakes Node\'s compile cache at build time, for root and for the image user, where bin/s3fs-csi looks', async () => {
    const ins = await instructions();
    assert.ok(ins.some(([k, v]) => k === 'ENV' && v === 'S3FS_CSI_COMPILE_CACHE=/app/.compile-cache'));
    const fill = ins.find(([k, v]) => k === 'RUN' && v.includes('compile-cache.js'))?.[1] ?? '';
    assert.match(fill, /node \/app\/dist\/src\/compile-cache\.js .*setpriv --reuid=65532 --regid=65532 --clear-groups node \/app\/dist\/src\/compile-cache\.js/);
    assert.match(fill, /chmod 0755 \/app\/\.compile-cache$/, 'read-only once filled');
    assert.match(await readFile(join(packageRoot, 'bin', 's3fs-csi'), 'utf8'), /enableCompileCache\?\.\(cacheDir \|\| undefined\)/);
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
    // The Dockerfile's compile-cache step works on this layer: it loads every role's modules.
    const cache = join(app, '.compile-cache');
    const fill = await run(process.execPath, [join(app, 'dist', 'src', 'compile-cache.js')], { env: { ...process.env, S3FS_CSI_COMPILE_CACHE: cache } });
    assert.equal(fill.code, 0, fill.stderr);
    assert.ok((await readdir(cache)).length > 0, 'cache written');
  });
});

// Built once (minutes cold: base image + npm ci + apt; instant when the inputs are unchanged).
describe('the image make image builds (BuildKit, no daemon, no registry)', { timeout: 30 * 60_000 }, () => {
  let image: LocalImage;
  let archive: DockerArchive;
  let work: string;
  const paths: string[] = [];

  it('builds (or finds cached) a docker-save tar named after the chart\'s repository and the package version', { timeout: 30 * 60_000 }, async () => {
    image = await ensureDriverImage();
    const values = loadYaml<{ image: { repository: string } }>(await readFile(join(chartDir, 'values.yaml'), 'utf8'));
    assert.equal(image.ref, `${values.image.repository}:${packageVersion}`);
    archive = await readDockerArchive(image.tar);
    assert.equal(archive.ref, image.ref);
    work = await mkdtemp(join(tmpdir(), 's3fs-csi-image-'));
    for (const layer of archive.layers) paths.push(...(await layerPaths(image.tar, layer, work)));
  });
  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('config: tini as PID 1 running s3fs-csi, user 65532, version labels, no build-time CA', () => {
    const c = archive.config.config;
    assert.deepEqual(c.Entrypoint, ['/usr/bin/tini', '--', 's3fs-csi']);
    assert.deepEqual(c.Cmd, ['--help']);
    assert.equal(c.User, '65532:65532');
    assert.equal(c.Labels?.['org.opencontainers.image.version'], packageVersion);
    assert.match(c.Labels?.['org.opencontainers.image.revision'] ?? '', /^[0-9a-f]{40}(-dirty)?$/);
    assert.ok(!(c.Env ?? []).some((e) => e.startsWith('NODE_EXTRA_CA_CERTS')), 'the build CA stays out of the runtime config');
  });

  it('layers: s3fs and fusermount3 from Debian, tini, node, the app, s3fs-csi-heal and s3fs-csi-mount; no compiler, no build secret, no apt lists', () => {
    const has = (p: string): boolean => paths.includes(p);
    for (const p of ['usr/bin/s3fs', 'usr/bin/fusermount3', 'usr/bin/tini', 'usr/local/bin/node', 'usr/local/bin/s3fs-csi', 'usr/local/bin/s3fs-csi-heal', 'usr/local/bin/s3fs-csi-mount', 'app/dist/src/main.js', 'app/bin/s3fs-csi', 'app/node_modules/@grpc/grpc-js/package.json']) {
      assert.ok(has(p), `${p} in the image`);
    }
    assert.ok(!has('usr/bin/gcc') && !paths.some((p) => p.startsWith('usr/lib/gcc/')), 'the compiler stays in its stage');
    assert.ok(!has('app/node_modules/typescript/package.json'), 'no dev dependencies');
    assert.ok(!paths.some((p) => p.startsWith('run/secrets/') && p !== 'run/secrets/'), 'no build secret in a layer');
    assert.ok(!paths.some((p) => /^var\/lib\/apt\/lists\/.+_Packages/.test(p)), 'no apt lists');
    assert.ok(!paths.some((p) => /^usr\/share\/doc\/.+\/changelog/.test(p)), 'no docs beyond licences');
  });

  it('runs under runc as its own user: s3fs-csi --version through tini, s3fs, s3fs-csi-heal and s3fs-csi-mount (a request, and --statfs) start', { timeout: 600_000 }, async (t) => {
    const bundle = join(work, 'bundle');
    const state = join(work, 'runc-state');
    await mkdir(state, { recursive: true });
    await unpackRootfs(image.tar, join(bundle, 'rootfs'), work);
    const c = archive.config.config;
    const runIn = async (name: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
      const id = `s3fs-csi-image-test-${process.pid}-${name}`;
      t.after(() => runcDelete(state, id));
      await writeBundleConfig(bundle, { args, user: c.User, env: c.Env, cwd: c.WorkingDir });
      return runcRun(state, bundle, id);
    };
    const version = await runIn('version', [...c.Entrypoint!, '--version']);
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.stdout.trim(), packageVersion);
    const s3fs = await runIn('s3fs', ['s3fs', '--version']);
    assert.equal(s3fs.code, 0, s3fs.stderr);
    assert.match(s3fs.stdout, /Amazon Simple Storage Service File System V1\.9\d/);
    // Without arguments the helper refuses with its usage status (2) and a message: it is there and runs.
    const heal = await runIn('heal', ['s3fs-csi-heal']);
    assert.equal(heal.code, 2, heal.stdout + heal.stderr);
    assert.match(heal.stderr, /s3fs-csi-heal/);
    // One request on stdin, one errno back: ENOENT for a path that does not exist (or EPERM, as
    // this unprivileged user may be refused first); then the end of stdin ends it with status 0.
    const mount = await runIn('mount', ['sh', '-c', "printf 'umount\\000/nonexistent\\000' | s3fs-csi-mount"]);
    assert.equal(mount.code, 0, mount.stdout + mount.stderr);
    assert.match(mount.stdout, /^[12]\n$/);
    // The health checks' one-shot mode: the root answers with its figures, a missing path with ENOENT.
    const statfs = await runIn('statfs', ['s3fs-csi-mount', '--statfs', '/', '/nonexistent']);
    assert.equal(statfs.code, 0, statfs.stdout + statfs.stderr);
    assert.match(statfs.stdout, /^0( \d+){6}\n2\n$/);
  });
});
