// The node plugin as the chart runs it with default values (charts/s3fs-csi/templates/node.yaml):
// node mode, the mounter, built-in registration, recovery on, and the V8 heap flags of
// `node.v8.*` (NODE_OPTIONS) read from charts/s3fs-csi/values.yaml itself.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';

/** `node.v8.maxSemiSpaceSizeMiB` / `maxOldSpaceSizeMiB` of the chart's values.yaml (0 = V8's default). */
export function chartV8Defaults(): { maxSemiSpaceSizeMiB: number; maxOldSpaceSizeMiB: number } {
  const text = readFileSync(join(packageRoot, 'charts', 's3fs-csi', 'values.yaml'), 'utf8');
  // The top-level `node:` block, then its `v8:` block (keys indented by four spaces).
  const node = /^node:\n([\s\S]*?)(?=^\S)/m.exec(text)?.[1] ?? '';
  const v8 = /^ {2}v8:\n((?: {4}.*\n|\s*#.*\n)+)/m.exec(node)?.[1] ?? '';
  const num = (key: string): number => Number(new RegExp(`^ {4}${key}: (\\d+)`, 'm').exec(v8)?.[1] ?? 0);
  return { maxSemiSpaceSizeMiB: num('maxSemiSpaceSizeMiB'), maxOldSpaceSizeMiB: num('maxOldSpaceSizeMiB') };
}

/** NODE_OPTIONS as node.yaml renders it from those values. */
export function chartNodeOptions(v = chartV8Defaults()): string {
  return [
    v.maxSemiSpaceSizeMiB > 0 ? `--max-semi-space-size=${v.maxSemiSpaceSizeMiB}` : '',
    v.maxOldSpaceSizeMiB > 0 ? `--max-old-space-size=${v.maxOldSpaceSizeMiB}` : '',
  ].filter(Boolean).join(' ');
}

/** The node plugin's flags with default values, paths moved under `dir` (after the harness's own). */
export function chartNodeArgs(o: { dir: string; kubeletDir: string; socketPath: string; mounterSocket: string; kubeconfig?: string; recovery?: boolean }): string[] {
  const recovery = o.recovery ?? true;
  return [
    '--mode=node',
    '--drivername=s3fs.csi.dev',
    '--v=2',
    `--kubelet-dir=${o.kubeletDir}`,
    `--state-dir=${join(o.dir, 'state')}`,
    `--runtime-dir=${join(o.dir, 'runtime')}`,
    `--mounter-endpoint=unix://${o.mounterSocket}`,
    '--max-volumes-per-node=0',
    '--mount-timeout=30s',
    '--mount-check-timeout=2s',
    '--shutdown-timeout=10s',
    '--registration=builtin',
    `--kubelet-registration-path=${o.socketPath}`,
    `--registration-dir=${join(o.dir, 'registration')}`,
    `--recovery=${recovery}`,
    ...(recovery ? ['--recovery-interval=60s', '--recovery-parallelism=32'] : []),
    ...(o.kubeconfig ? [`--kubeconfig=${o.kubeconfig}`] : []),
  ];
}
