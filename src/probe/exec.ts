// `s3fs-csi probe`, the exec liveness probe: kubelet starts a fresh process for every probe, so this
// entry (bin/s3fs-csi runs it when the first argument is `probe`) loads only what one Probe call needs
// — its own flag reading and src/probe/once.ts over Node's HTTP/2 — not the command line parser, the
// logger, a gRPC library or any proto file. Anything it does not recognise (--help, a typo, an invalid duration) goes
// to the full command line (main.ts), which prints help and errors exactly as for every command.
import { parseArgs } from 'node:util';
import { socketPathOf } from '../config.js';
import { parseDuration } from '../duration.js';

export interface ProbeArgs {
  endpoint: string;
  timeoutMs: number;
  requireReady: boolean;
}

const DEFAULT_ENDPOINT = 'unix:///csi/csi.sock';
const DEFAULT_TIMEOUT_MS = 3000;

/**
 * The probe's flags after `probe`, with the environment variables `--help` names (flag > environment >
 * default, as the full command line reads them); undefined for anything else.
 */
export function parseProbeArgs(args: readonly string[], env: NodeJS.ProcessEnv): ProbeArgs | undefined {
  let values: { endpoint?: string; timeout?: string; 'ignore-not-ready'?: boolean };
  try {
    // Node's own parser (no load cost); strict: an unknown flag, a missing value or a positional throws.
    ({ values } = parseArgs({
      args: [...args],
      options: { endpoint: { type: 'string' }, timeout: { type: 'string' }, 'ignore-not-ready': { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch {
    return undefined;
  }
  const endpoint = values.endpoint ?? env.CSI_ENDPOINT ?? DEFAULT_ENDPOINT;
  const timeout = values.timeout ?? env.S3FS_CSI_PROBE_TIMEOUT;
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (timeout !== undefined) {
    try {
      timeoutMs = parseDuration(timeout);
    } catch {
      return undefined;
    }
  }
  return { endpoint, timeoutMs, requireReady: values['ignore-not-ready'] !== true };
}

/** Runs one probe and exits: 0 healthy (and ready unless --ignore-not-ready), 1 not, 2 bad endpoint. */
export async function runProbe(o: ProbeArgs): Promise<never> {
  let socketPath: string;
  try {
    socketPath = socketPathOf(o.endpoint);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const { probeOnce } = await import('./once.js');
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

/** The entry bin/s3fs-csi imports for `s3fs-csi probe ...`. */
export async function main(argv: readonly string[]): Promise<void> {
  const parsed = parseProbeArgs(argv.slice(3), process.env);
  if (parsed) await runProbe(parsed);
  else await import('../main.js');
}
