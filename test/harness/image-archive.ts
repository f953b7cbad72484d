// Pure construction of small container images as `docker save`-format archives (manifest.json, the
// image config, one uncompressed layer tar), the format `ctr images import` and `docker load` accept.
// No I/O here: test/harness/images.ts decides what goes in and writes the bytes.
import { createHash } from 'node:crypto';

export type TarEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string };

const BLOCK = 512;

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Octal field of `width` bytes: digits, zero-padded, NUL-terminated. */
function octal(value: number, width: number): string {
  const digits = value.toString(8);
  if (digits.length > width - 1) throw new Error(`tar: ${value} does not fit in ${width} bytes`);
  return digits.padStart(width - 1, '0') + '\0';
}

/** Splits a path into ustar's name (<= 100 bytes) and prefix (<= 155 bytes) fields. */
function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  throw new Error(`tar: path too long for ustar: ${path}`);
}

function header(entry: TarEntry, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const path = entry.type === 'dir' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
  const { name, prefix } = splitName(path);
  const mode = entry.type === 'symlink' ? 0o777 : (entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644));
  const put = (text: string, offset: number, width: number): void => {
    if (Buffer.byteLength(text) > width) throw new Error(`tar: field too long: ${text}`);
    h.write(text, offset, width, 'utf8');
  };
  put(name, 0, 100);
  put(octal(mode, 8), 100, 8);
  put(octal(0, 8), 108, 8); // uid: root
  put(octal(0, 8), 116, 8); // gid: root
  put(octal(size, 12), 124, 12);
  put(octal(0, 12), 136, 12); // mtime: the epoch, so equal inputs give equal bytes
  put(entry.type === 'dir' ? '5' : entry.type === 'symlink' ? '2' : '0', 156, 1);
  if (entry.type === 'symlink') put(entry.target, 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put('root', 265, 32);
  put('root', 297, 32);
  put(prefix, 345, 155);
  // The checksum is computed with its own field read as eight spaces.
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  put(octal(sum, 7) + ' ', 148, 8);
  return h;
}

/** A POSIX ustar archive of the entries, in the order given, owned by root, dated at the epoch. */
export function tarArchive(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.type === 'file' ? entry.data : Buffer.alloc(0);
    parts.push(header(entry, data.length), data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(2 * BLOCK)); // end of archive
  return Buffer.concat(parts);
}

/** Go's name of the architecture (what image configs and containerd's platform match use). */
export function ociArchitecture(nodeArch: string): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const arch = map[nodeArch];
  if (!arch) throw new Error(`no image architecture for ${nodeArch}`);
  return arch;
}

export interface ImageConfigSpec {
  architecture: string;
  entrypoint: string[];
  cmd?: string[];
  env?: string[];
  /** What made the layer (the image history's `created_by`). */
  createdBy: string;
}

export interface ImageConfig {
  architecture: string;
  os: 'linux';
  created: string;
  config: { Env: string[]; Entrypoint: string[]; Cmd?: string[]; WorkingDir: string };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history: { created: string; created_by: string }[];
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The image config of a one-layer image whose uncompressed layer tar has this sha256. */
export function imageConfig(spec: ImageConfigSpec, layerSha256: string): ImageConfig {
  const created = '1970-01-01T00:00:00Z';
  return {
    architecture: spec.architecture,
    os: 'linux',
    created,
    config: {
      Env: spec.env ?? [DEFAULT_PATH],
      Entrypoint: spec.entrypoint,
      ...(spec.cmd ? { Cmd: spec.cmd } : {}),
      WorkingDir: '/',
    },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerSha256}`] },
    history: [{ created, created_by: spec.createdBy }],
  };
}

export interface DockerSaveManifestEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

/**
 * A `docker save`-format archive of a one-layer image: `<config sha>.json`, `<layer sha>/layer.tar`
 * and manifest.json naming `ref` (a full reference, e.g. docker.io/library/name:tag, which is what
 * containerd stores it as and what kubelet looks up).
 */
export function dockerSaveArchive(ref: string, spec: ImageConfigSpec, layer: Buffer): Buffer {
  const layerSha = sha256Hex(layer);
  const config = Buffer.from(JSON.stringify(imageConfig(spec, layerSha)));
  const configName = `${sha256Hex(config)}.json`;
  const layerName = `${layerSha}/layer.tar`;
  const manifest: DockerSaveManifestEntry[] = [{ Config: configName, RepoTags: [ref], Layers: [layerName] }];
  return tarArchive([
    { type: 'file', path: configName, data: config },
    { type: 'dir', path: layerSha },
    { type: 'file', path: layerName, data: layer },
    { type: 'file', path: 'manifest.json', data: Buffer.from(JSON.stringify(manifest)) },
  ]);
}

/** The directories every container root needs as mount points or scratch space. */
const ROOT_DIRS: TarEntry[] = [
  { type: 'dir', path: 'bin' },
  { type: 'dir', path: 'dev' },
  { type: 'dir', path: 'etc' },
  { type: 'dir', path: 'proc' },
  { type: 'dir', path: 'root', mode: 0o700 },
  { type: 'dir', path: 'sys' },
  { type: 'dir', path: 'tmp', mode: 0o1777 },
];

/**
 * The layer of a busybox image: the static busybox at /bin/busybox and, for each applet path (as
 * `busybox --list-full` prints them, e.g. `bin/sh`, `usr/bin/env`), a symlink to it; users root and
 * nobody so `id` and `ls -l` print names.
 */
export function busyboxLayer(busybox: Buffer, appletPaths: readonly string[]): Buffer {
  const entries: TarEntry[] = [...ROOT_DIRS];
  const dirs = new Set(ROOT_DIRS.map((e) => e.path));
  const addDirs = (path: string): void => {
    const parts = path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!dirs.has(dir)) {
        dirs.add(dir);
        entries.push({ type: 'dir', path: dir });
      }
    }
  };
  entries.push({ type: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 });
  entries.push({ type: 'file', path: 'etc/passwd', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n') });
  entries.push({ type: 'file', path: 'etc/group', data: Buffer.from('root:x:0:\nnobody:x:65534:\n') });
  const links = [...new Set(appletPaths.map((p) => p.replace(/^\/+/, '')))].filter((p) => p && p !== 'bin/busybox').sort();
  for (const link of links) {
    addDirs(link);
    entries.push({ type: 'symlink', path: link, target: '/bin/busybox' });
  }
  return tarArchive(entries);
}

/**
 * The pause container's program (busybox sh): sleeps until SIGTERM or SIGINT and then exits 0. The
 * shell's `wait` collects every child that exits, including orphans the kernel hands to it as the
 * first process of the pod's PID namespace, so none stays a zombie.
 */
export const PAUSE_SCRIPT = "trap 'exit 0' TERM INT; while :; do /bin/busybox sleep 2147483647 & wait; done";
