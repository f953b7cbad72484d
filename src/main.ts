// Entry point: `s3fs-csi` serves the driver, `s3fs-csi probe` is the exec liveness probe. Only the
// command line parser loads up front; each command imports what it needs. bin/s3fs-csi sends an
// ordinary `s3fs-csi probe ...` to src/probe/exec.ts without loading even the parser; this path
// serves help, errors and unusual forms of it.
import { buildCli } from './cli.js';

await buildCli({
  serve: async (cfg) => (await import('./serve.js')).serve(cfg),
  probe: async (o) => (await import('./probe/exec.js')).runProbe(o),
}).parseAsync(process.argv);
