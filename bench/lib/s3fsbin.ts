// The s3fs binaries a data-path run measures: `s3fs` on PATH by default, or the list in
// DATAPATH_S3FS (comma-separated paths, e.g. Debian bookworm's /usr/bin/s3fs beside the trixie build
// scripts/install-tools.sh s3fs-trixie makes), each labelled by the version it reports.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface S3fsBinary {
  /** What rows call it, e.g. "s3fs 1.95". */
  label: string;
  /** Path (or name on PATH) given to the driver's --s3fs-path and to hand mounts. */
  bin: string;
  /** The first line of `s3fs --version`. */
  version: string;
}

/** "Amazon Simple Storage Service File System V1.95 (commit:...) with GnuTLS" -> "1.95". */
export function s3fsVersionOf(text: string): string | undefined {
  return /File System V(\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1];
}

export async function s3fsBinaries(spec = process.env.DATAPATH_S3FS): Promise<S3fsBinary[]> {
  const bins = (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (bins.length === 0) bins.push('s3fs');
  const out: S3fsBinary[] = [];
  for (const bin of bins) {
    const { stdout } = await run(bin, ['--version'], { timeout: 10_000 }).catch((err: Error) => {
      throw new Error(`DATAPATH_S3FS: ${bin} --version failed: ${err.message.split('\n')[0] ?? ''}`);
    });
    const version = stdout.split('\n')[0] ?? '';
    let label = `s3fs ${s3fsVersionOf(version) ?? '?'}`;
    if (out.some((b) => b.label === label)) label = `${label} (${bin})`;
    out.push({ label, bin, version });
  }
  return out;
}
