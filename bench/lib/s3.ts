// One versitygw per section, under the cleanup registry.
import { startS3Server, type S3Server } from '../../test/harness/s3server.js';
import type { BenchContext } from './types.js';

export async function benchS3(ctx: BenchContext): Promise<{ s3: S3Server; stop: () => Promise<void> }> {
  const s3 = await startS3Server();
  const stop = ctx.cleanup.add('versitygw', () => s3.stop());
  return { s3, stop };
}
