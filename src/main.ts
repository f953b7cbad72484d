// Entry point: `s3fs-csi` serves the driver, `s3fs-csi probe` is the exec liveness probe. Only the
// command line parser loads up front; each command imports what it needs, so the exec probe (run by
// kubelet every few seconds) starts in a fraction of the driver's start-up time and memory.
import { buildCli } from './cli.js';
import { socketPathOf } from './config.js';

async function probe(o: { endpoint: string; timeoutMs: number; requireReady: boolean }): Promise<void> {
  let socketPath: string;
  try {
    socketPath = socketPathOf(o.endpoint);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const { probeOnce } = await import('./probe/client.js');
  const result = await probeOnce(socketPath, o.timeoutMs);
  if (!result.healthy) {
    process.stderr.write(`${result.reason}\n`);
    process.exit(1);
  }
  if (o.requireReady && !result.ready) {
    process.stderr.write('driver responded but is not ready\n');
    process.exit(1);
  }
  process.exit(0);
}

await buildCli({
  serve: async (cfg) => (await import('./serve.js')).serve(cfg),
  probe,
}).parseAsync(process.argv);
