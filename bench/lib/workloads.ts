// The data-path workloads, once through a mounted directory and once through @aws-sdk/client-s3 at
// the same server. Each returns a figure where higher or lower is better as the row says.
import {
  CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand,
  UploadPartCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { closedLoop } from './load.js';
import { MiB, timeCommand } from './procs.js';
import { nowMs } from './stats.js';

export const SMALL = 4096;
const PART = 16 * MiB;
const SDK_PARALLEL = 4;
export const FILE_CONCURRENCY = 8;

const small = randomBytes(SMALL);

/** MiB/s writing `mib` MiB sequentially (dd, 1 MiB blocks; s3fs uploads on close, so dd's wall time includes the upload). */
export async function fsSeqWrite(dir: string, mib: number): Promise<number> {
  const r = await timeCommand('dd', ['if=/dev/zero', `of=${join(dir, 'big')}`, 'bs=1M', `count=${mib}`], { timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`dd write failed: ${r.stderr.slice(-300)}`);
  return mib / (r.ms / 1000);
}

export async function fsSeqRead(dir: string, mib: number): Promise<number> {
  const r = await timeCommand('dd', [`if=${join(dir, 'big')}`, 'of=/dev/null', 'bs=1M'], { timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`dd read failed: ${r.stderr.slice(-300)}`);
  return mib / (r.ms / 1000);
}

async function loopOrThrow(what: string, n: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const r = await closedLoop(n, FILE_CONCURRENCY, op);
  if (r.errors > 0) throw new Error(`${what}: ${r.errors} errors, first: ${r.firstError}`);
  return r.opsPerSec;
}

export async function fsSmallWrite(dir: string, n: number): Promise<number> {
  await mkdir(dir, { recursive: true });
  return loopOrThrow('small writes', n, (i) => writeFile(join(dir, `f${i}`), small));
}

export async function fsSmallRead(dir: string, n: number): Promise<number> {
  return loopOrThrow('small reads', n, async (i) => {
    const b = await readFile(join(dir, `f${i}`));
    if (b.length !== SMALL) throw new Error(`short read ${b.length}`);
  });
}

/** ms for `ls -l` of the directory (a listing plus attributes of every entry). */
export async function fsList(dir: string, n: number): Promise<number> {
  const r = await timeCommand('ls', ['-l', dir], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`ls failed: ${r.stderr.slice(-300)}`);
  const lines = r.stdout.split('\n').filter((l) => /^-/.test(l)).length;
  if (lines !== n) throw new Error(`ls -l listed ${lines} files, expected ${n}`);
  return r.ms;
}

async function drain(body: unknown): Promise<number> {
  let n = 0;
  for await (const chunk of body as Readable) n += (chunk as Buffer).length;
  return n;
}

const zeros = Buffer.alloc(PART);

export async function sdkSeqWrite(sdk: S3Client, bucket: string, key: string, mib: number): Promise<number> {
  const t0 = nowMs();
  const bytes = mib * MiB;
  const up = await sdk.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const parts = Math.ceil(bytes / PART);
  const etags: { PartNumber: number; ETag: string }[] = [];
  await loopParallel(parts, SDK_PARALLEL, async (i) => {
    const len = Math.min(PART, bytes - i * PART);
    const r = await sdk.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: up.UploadId, PartNumber: i + 1, Body: zeros.subarray(0, len), ContentLength: len }));
    etags.push({ PartNumber: i + 1, ETag: r.ETag ?? '' });
  });
  etags.sort((a, b) => a.PartNumber - b.PartNumber);
  await sdk.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: up.UploadId, MultipartUpload: { Parts: etags } }));
  return mib / ((nowMs() - t0) / 1000);
}

export async function sdkSeqRead(sdk: S3Client, bucket: string, key: string, mib: number): Promise<number> {
  const t0 = nowMs();
  const bytes = mib * MiB;
  let got = 0;
  await loopParallel(Math.ceil(bytes / PART), SDK_PARALLEL, async (i) => {
    const end = Math.min(bytes, (i + 1) * PART) - 1;
    const r = await sdk.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${i * PART}-${end}` }));
    const n = await drain(r.Body); // (not `got += await`: that reads `got` before the await)
    got += n;
  });
  if (got !== bytes) throw new Error(`SDK read ${got} of ${bytes} bytes`);
  return mib / ((nowMs() - t0) / 1000);
}

export function sdkSmallWrite(sdk: S3Client, bucket: string, prefix: string, n: number): Promise<number> {
  return loopOrThrow('SDK small writes', n, (i) => sdk.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/f${i}`, Body: small })));
}

export function sdkSmallRead(sdk: S3Client, bucket: string, prefix: string, n: number): Promise<number> {
  return loopOrThrow('SDK small reads', n, async (i) => {
    const r = await sdk.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/f${i}` }));
    if ((await drain(r.Body)) !== SMALL) throw new Error('short read');
  });
}

export async function sdkList(sdk: S3Client, bucket: string, prefix: string, n: number): Promise<number> {
  const t0 = nowMs();
  let count = 0;
  let token: string | undefined;
  do {
    const r = await sdk.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, Delimiter: '/', ContinuationToken: token }));
    count += r.Contents?.length ?? 0;
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  if (count !== n) throw new Error(`SDK listed ${count}, expected ${n}`);
  return nowMs() - t0;
}

async function loopParallel(n: number, c: number, op: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(c, n) }, async () => {
    while (next < n) await op(next++);
  }));
}
