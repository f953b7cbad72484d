// The bench's own check of "does this mount answer": one `stat -f` child for all the paths, killed
// after `timeoutMs`; a path answers when stat printed it. Independent of the driver's code under test
// (src/mount/health.ts), and one process for hundreds of paths, so the measuring loop stays cheap.
import { spawn } from 'node:child_process';

export function answering(paths: readonly string[], timeoutMs = 2000): Promise<Set<string>> {
  if (paths.length === 0) return Promise.resolve(new Set());
  return new Promise((resolve) => {
    const child = spawn('stat', ['-f', '-c', '%n', '--', ...paths], { stdio: ['ignore', 'pipe', 'ignore'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } });
    let out = '';
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const wanted = new Set(paths);
      resolve(new Set(out.split('\n').slice(0, -1).filter((l) => wanted.has(l))));
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish();
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', finish);
    child.once('close', finish);
  });
}
