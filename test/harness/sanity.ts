// Runs the real csi-sanity (kubernetes-csi/csi-test v5.6.0) and extracts its verdict.
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTool, tools } from './tools.js';

export interface SanityOptions {
  endpoint: string;
  controllerEndpoint?: string;
  stagingDir: string;
  mountDir: string;
  workDir: string;
  parameters?: Record<string, string>;
  secrets?: Record<string, Record<string, string>>;
  volumeSize?: number;
  expandSize?: number;
  focus?: string;
  skip?: string;
  junitReport?: string;
  timeoutMs?: number;
}

export interface SanityResult {
  exitCode: number | null;
  ran: number;
  total: number;
  passed: number;
  failed: number;
  pending: number;
  skipped: number;
  /** "Ran N of M Specs ..." and the pass/fail line, for the CI log. */
  summary: string;
  output: string;
}

function yaml(obj: Record<string, unknown>): string {
  // csi-sanity reads YAML; JSON is valid YAML and needs no serializer.
  return JSON.stringify(obj, null, 2);
}

export async function runSanity(o: SanityOptions): Promise<SanityResult> {
  const bin = requireTool(tools.csiSanity);
  await mkdir(o.workDir, { recursive: true });
  const args = [
    `--csi.endpoint=unix://${o.endpoint}`,
    `--csi.stagingdir=${o.stagingDir}`,
    `--csi.mountdir=${o.mountDir}`,
    `--csi.testvolumesize=${o.volumeSize ?? 1 << 30}`,
    `--csi.testvolumeexpandsize=${o.expandSize ?? 2 << 30}`,
    '--ginkgo.no-color',
    '--ginkgo.v',
  ];
  if (o.controllerEndpoint) args.push(`--csi.controllerendpoint=unix://${o.controllerEndpoint}`);
  if (o.parameters) {
    const file = join(o.workDir, 'parameters.yaml');
    await writeFile(file, yaml(o.parameters));
    args.push(`--csi.testvolumeparameters=${file}`);
  }
  if (o.secrets) {
    const file = join(o.workDir, 'secrets.yaml');
    await writeFile(file, yaml(o.secrets), { mode: 0o600 });
    args.push(`--csi.secrets=${file}`);
  }
  if (o.focus) args.push(`--ginkgo.focus=${o.focus}`);
  if (o.skip) args.push(`--ginkgo.skip=${o.skip}`);
  if (o.junitReport) args.push(`--ginkgo.junit-report=${o.junitReport}`);

  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 15 * 60_000);
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  clearTimeout(timer);

  const ranMatch = /Ran (\d+) of (\d+) Specs/.exec(output);
  const countsMatch = /(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped/.exec(output);
  const summaryLines = output.split('\n').filter((l) => /Ran \d+ of \d+ Specs|Passed \|.*Failed|^(SUCCESS|FAIL)!/.test(l));
  return {
    exitCode,
    ran: Number(ranMatch?.[1] ?? 0),
    total: Number(ranMatch?.[2] ?? 0),
    passed: Number(countsMatch?.[1] ?? 0),
    failed: Number(countsMatch?.[2] ?? 0),
    pending: Number(countsMatch?.[3] ?? 0),
    skipped: Number(countsMatch?.[4] ?? 0),
    summary: summaryLines.join('\n'),
    output,
  };
}

/** The failing spec names, for an assertion message that says what broke. */
export function failures(output: string): string {
  const lines = output.split('\n').filter((l) => /\[FAIL\]|\[FAILED\]/.test(l));
  return lines.slice(0, 40).join('\n') || output.slice(-4000);
}
