// Fills Node's module compile cache (bin/s3fs-csi) with every module a role loads, without running
// any of them: `S3FS_CSI_COMPILE_CACHE=<dir> node dist/src/compile-cache.js`. The Dockerfile runs it at
// build time, once per user the image's processes run as (the cache is kept per uid), so a started
// container compiles next to nothing. Importing evaluates module tops only (no server starts).
import module from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** What the driver's roles and the exec probe load: the serve path of every mode and its dependencies. */
export const ROLE_MODULES = [
  './cli.js', './serve.js', './probe/exec.js', './probe/client.js', './probe/http.js',
  './csi/controller.js', './csi/node.js', './mount/mounter.js', './mounter/client.js', './mounter/serve.js',
  './recovery/index.js', './kube/registration.js',
];

export async function fillCompileCache(dir: string | undefined): Promise<string> {
  const status = module.enableCompileCache(dir || undefined);
  if (status.status !== module.constants.compileCacheStatus.ENABLED && status.status !== module.constants.compileCacheStatus.ALREADY_ENABLED) {
    throw new Error(`compile cache not enabled: ${status.message ?? status.status}`);
  }
  for (const m of ROLE_MODULES) await import(m);
  module.flushCompileCache();
  return status.directory ?? '';
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const where = await fillCompileCache(process.env.S3FS_CSI_COMPILE_CACHE);
  process.stdout.write(`compile cache filled: ${where}\n`);
  process.exit(0);
}
