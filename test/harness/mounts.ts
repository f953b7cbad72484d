// Test cleanup: unmount whatever is still mounted under a directory (deepest first, also dead FUSE
// mounts), so a failing test never leaves mounts behind.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Mount points under `dir` from /proc/self/mountinfo (field 5, octal escapes decoded). */
export async function mountPointsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const decode = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => !!p)
    .map(decode)
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
}

export async function unmountUnder(dir: string): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const points = (await mountPointsUnder(dir)).sort((a, b) => b.length - a.length);
    if (points.length === 0) return;
    for (const p of points) await run('umount', ['-l', p]).catch(() => undefined);
  }
}
