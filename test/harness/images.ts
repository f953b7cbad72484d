// The container images the end-to-end tests import into their containerd (no registry here): a pause
// image and a workload image made from Debian's static busybox, and the driver image built from the
// project's Dockerfile by scripts/image.sh. Each is a `docker save`-format tar, cached by a hash of its
// inputs under the tools cache, so only the first run pays for it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { PAUSE_SCRIPT, busyboxLayer, dockerSaveArchive, ociArchitecture, sha256Hex, tarArchive, type ImageConfigSpec } from './image-archive.js';
import { toolsDir } from './tools.js';

export interface LocalImage {
  /** Full reference as containerd stores it and a pod spec names it (with imagePullPolicy: Never). */
  ref: string;
  /** `docker save`-format tar: `ctr -n k8s.io images import <tar>`. */
  tar: string;
}

export interface E2eImages {
  pause: LocalImage;
  workload: LocalImage;
  driver: LocalImage;
}

export interface ImageOptions {
  /** Where the tars are kept (default: <tools cache>/image/e2e). */
  cacheDir?: string;
  /** The static busybox (default: Debian's busybox-static, /bin/busybox). */
  busybox?: string;
}

/** Bump when what goes into the busybox images changes in a way their inputs do not show. */
const RECIPE = 'busybox-images-v1';
const defaultCacheDir = (): string => join(toolsDir, 'image', 'e2e');

function run(bin: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { env: env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: 30 * 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${bin} ${args.join(' ')} failed: ${err.message}\n${stderr.slice(-4000)}`));
      else resolve(stdout);
    });
  });
}

async function readBusybox(path: string): Promise<{ binary: Buffer; applets: string[] }> {
  if (!existsSync(path)) throw new Error(`${path} is missing: install busybox-static (scripts/install-tools.sh node-e2e)`);
  const binary = await readFile(path);
  const applets = (await run(path, ['--list-full'])).split('\n').map((l) => l.trim()).filter(Boolean);
  return { binary, applets };
}

/** Writes the archive unless a tar of the same content hash is already there. */
async function ensureArchive(cacheDir: string, name: string, hash: string, make: (ref: string) => Buffer): Promise<LocalImage> {
  const tag = hash.slice(0, 16);
  const ref = `docker.io/library/s3fs-csi-e2e-${name}:${tag}`;
  const tar = join(cacheDir, `${name}-${tag}.tar`);
  if (!existsSync(tar)) {
    await mkdir(cacheDir, { recursive: true });
    const tmp = `${tar}.${process.pid}.tmp`;
    try {
      await writeFile(tmp, make(ref));
      await rename(tmp, tar);
    } finally {
      await rm(tmp, { force: true });
    }
  }
  return { ref, tar };
}

/** Pause image: busybox sh sleeping until SIGTERM (exit 0), reaping every child (see PAUSE_SCRIPT). */
export async function ensurePauseImage(opts: ImageOptions = {}): Promise<LocalImage> {
  const { binary } = await readBusybox(opts.busybox ?? '/bin/busybox');
  const spec: ImageConfigSpec = {
    architecture: ociArchitecture(process.arch),
    entrypoint: ['/bin/busybox', 'sh', '-c', PAUSE_SCRIPT],
    createdBy: 'test/harness/images.ts: pause (busybox-static)',
  };
  const hash = sha256Hex(JSON.stringify({ RECIPE, spec, busybox: sha256Hex(binary) }));
  return ensureArchive(opts.cacheDir ?? defaultCacheDir(), 'pause', hash, (ref) =>
    dockerSaveArchive(ref, spec, tarArchive([
      { type: 'dir', path: 'bin' },
      { type: 'file', path: 'bin/busybox', data: binary, mode: 0o755 },
    ])),
  );
}

/** Workload image: busybox with every applet linked (sh, cat, ls, touch, sleep, dd, stat, id, ...). */
export async function ensureWorkloadImage(opts: ImageOptions = {}): Promise<LocalImage> {
  const { binary, applets } = await readBusybox(opts.busybox ?? '/bin/busybox');
  const spec: ImageConfigSpec = {
    architecture: ociArchitecture(process.arch),
    entrypoint: [],
    cmd: ['/bin/sh'],
    createdBy: 'test/harness/images.ts: workload (busybox-static, all applets)',
  };
  const hash = sha256Hex(JSON.stringify({ RECIPE, spec, busybox: sha256Hex(binary), applets }));
  return ensureArchive(opts.cacheDir ?? defaultCacheDir(), 'workload', hash, (ref) => dockerSaveArchive(ref, spec, busyboxLayer(binary, applets)),
  );
}

/**
 * The driver image from the project's Dockerfile (scripts/image.sh: BuildKit, locally made base;
 * cached by its inputs, minutes the first time, instant afterwards). Needs root and the `image` tools.
 */
export async function ensureDriverImage(env: NodeJS.ProcessEnv = {}): Promise<LocalImage> {
  const stdout = await run(join(packageRoot, 'scripts', 'image.sh'), [], { ...process.env, ...env });
  const value = (key: string): string => {
    const line = stdout.split('\n').find((l) => l.startsWith(`${key}=`));
    if (!line) throw new Error(`scripts/image.sh printed no ${key}=: ${stdout}`);
    return line.slice(key.length + 1);
  };
  return { ref: value('ref'), tar: value('tar') };
}

/** All three images the end-to-end tests import. */
export async function ensureE2eImages(opts: ImageOptions = {}): Promise<E2eImages> {
  return {
    pause: await ensurePauseImage(opts),
    workload: await ensureWorkloadImage(opts),
    driver: await ensureDriverImage(),
  };
}
