// Where the package's own files (proto/, package.json) live, whether running from dist/ or an image.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'proto', 'csi.proto'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('s3fs-csi: cannot find the package root (package.json + proto/csi.proto)');
    dir = parent;
  }
}

export const packageRoot = findPackageRoot();
export const protoPath = join(packageRoot, 'proto', 'csi.proto');
export const packageVersion: string = (
  JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }
).version;
