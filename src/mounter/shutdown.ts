// The mounter's own end (SIGTERM: its pod is really going away): every s3fs of a staged volume gets
// SIGTERM, so it flushes what it still holds to S3 and exits, and SIGKILL once `graceMs` has passed.
// Found by the argv naming the volume's backing directory (the same fact adoption uses).
// The pods' mounts go dead either way; recovery in the next mounter repairs them.
import type { Logger } from '../log.js';
import { type StagedRecord, findS3fsPids } from '../mount/index.js';

const signal = (pid: number, sig: NodeJS.Signals | 0): boolean => {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false; // gone already
  }
};

export async function stopStagedS3fs(records: readonly StagedRecord[], graceMs: number, log: Logger): Promise<void> {
  const pids = new Set<number>();
  for (const r of records) for (const pid of await findS3fsPids(r.backingDir)) if (signal(pid, 'SIGTERM')) pids.add(pid);
  if (pids.size === 0) return;
  log.info({ s3fs: pids.size, grace_ms: graceMs }, 'stopping s3fs processes (flush, then exit)');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    for (const pid of pids) if (!signal(pid, 0)) pids.delete(pid);
    if (pids.size === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  log.warn({ s3fs: pids.size }, 's3fs still running after the grace period: killed');
  for (const pid of pids) signal(pid, 'SIGKILL');
}
