// Runs a `docker save`-format image under runc, the OCI runtime containerd uses, without containerd:
// the layers are unpacked into a root filesystem (whiteouts applied) and a bundle made from
// `runc spec`. For tests that must see the image itself work (needs root).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export const runcBin = process.env.RUNC_BIN ?? '/usr/sbin/runc';

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function exec(bin: string, args: string[], timeoutMs = 120_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function must(bin: string, args: string[], timeoutMs?: number): Promise<string> {
  const r = await exec(bin, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${bin} ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export interface DockerArchive {
  ref: string;
  /** The image config (the `config` object holds Entrypoint, Cmd, User, Env, Labels). */
  config: { config: { Entrypoint?: string[]; Cmd?: string[]; User?: string; Env?: string[]; Labels?: Record<string, string>; WorkingDir?: string } };
  /** Layer paths inside the archive, lowest first. */
  layers: string[];
}

/** Reads manifest.json and the config of a one-image `docker save` archive. */
export async function readDockerArchive(tar: string): Promise<DockerArchive> {
  const manifest = JSON.parse(await must('tar', ['-xOf', tar, 'manifest.json'])) as { Config: string; RepoTags: string[]; Layers: string[] }[];
  if (manifest.length !== 1) throw new Error(`${tar}: ${manifest.length} images in manifest.json`);
  const [image] = manifest;
  const config = JSON.parse(await must('tar', ['-xOf', tar, image!.Config])) as DockerArchive['config'];
  return { ref: image!.RepoTags[0] ?? '', config, layers: image!.Layers };
}

/** Paths in one layer (gzip or plain), as GNU tar lists them (no leading ./). */
export async function layerPaths(tar: string, layer: string, work: string): Promise<string[]> {
  const file = join(work, 'layer');
  await must('tar', ['-xf', tar, '-C', work, '--transform', `s|.*|layer|`, layer]);
  try {
    const list = await must('tar', ['-tf', file], 300_000);
    return list.split('\n').filter(Boolean).map((p) => p.replace(/^\.\//, ''));
  } finally {
    await rm(file, { force: true });
  }
}

/** Applies one layer's whiteouts below dir (after the layer is extracted over the lower ones). */
async function applyWhiteouts(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.name === '.wh..wh..opq') {
      await rm(path);
    } else if (entry.name.startsWith('.wh.')) {
      await rm(join(dir, entry.name.slice(4)), { recursive: true, force: true });
      await rm(path);
    } else if (entry.isDirectory()) {
      await applyWhiteouts(path);
    }
  }
}

/** Unpacks every layer of the archive into rootfs, lowest first. */
export async function unpackRootfs(tar: string, rootfs: string, work: string): Promise<DockerArchive> {
  const image = await readDockerArchive(tar);
  await mkdir(rootfs, { recursive: true });
  for (const layer of image.layers) {
    const file = join(work, 'layer');
    await must('tar', ['-xf', tar, '-C', work, '--transform', 's|.*|layer|', layer]);
    // Opaque directories hide everything below them from lower layers: empty them first.
    const opaque = (await must('tar', ['-tf', file], 300_000)).split('\n').filter((p) => basename(p) === '.wh..wh..opq');
    for (const p of opaque) {
      const d = join(rootfs, dirname(p));
      for (const e of await readdir(d).catch(() => [] as string[])) await rm(join(d, e), { recursive: true, force: true });
    }
    await must('tar', ['-xpf', file, '-C', rootfs, '--numeric-owner'], 300_000);
    await rm(file);
    await applyWhiteouts(rootfs);
  }
  return image;
}

export interface ContainerSpec {
  args: string[];
  /** "uid:gid" (the image's User), default root. */
  user?: string;
  env?: string[];
  cwd?: string;
  /** Default: read-only root, as the chart runs the controller. */
  writableRoot?: boolean;
}

/** Writes <bundle>/config.json: `runc spec` defaults (PATH in env), no terminal, the given process. */
export async function writeBundleConfig(bundle: string, spec: ContainerSpec): Promise<void> {
  await rm(join(bundle, 'config.json'), { force: true });
  await must(runcBin, ['spec', '--bundle', bundle]);
  const path = join(bundle, 'config.json');
  const config = JSON.parse(await readFile(path, 'utf8')) as { process: Record<string, unknown>; root: { path: string; readonly: boolean } };
  const [uid, gid] = (spec.user ?? '0:0').split(':').map(Number);
  config.process.terminal = false;
  config.process.args = spec.args;
  config.process.user = { uid: uid ?? 0, gid: gid ?? uid ?? 0 };
  config.process.cwd = spec.cwd ?? '/';
  if (spec.env) config.process.env = spec.env;
  config.root = { path: 'rootfs', readonly: !spec.writableRoot };
  await writeFile(path, JSON.stringify(config));
}

/** `runc run` in the foreground: resolves with the container's exit status and output. */
export function runcRun(stateRoot: string, bundle: string, id: string, timeoutMs = 120_000): Promise<Result> {
  return exec(runcBin, ['--root', stateRoot, 'run', '--bundle', bundle, id], timeoutMs);
}

/** Starts `runc run` in the foreground without waiting; the caller kills it with `runc kill`. */
export function runcStart(stateRoot: string, bundle: string, id: string): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(runcBin, ['--root', stateRoot, 'run', '--bundle', bundle, id], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited };
}

/** Removes the container whatever state it is in (cleanup; ignores a container that is gone). */
export async function runcDelete(stateRoot: string, id: string): Promise<void> {
  await exec(runcBin, ['--root', stateRoot, 'delete', '--force', id]);
}
