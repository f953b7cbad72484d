// A real S3 server (versitygw, POSIX backend) on 127.0.0.1 with a random port and a temp data dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from './net.js';
import { requireTool, tools } from './tools.js';

export interface S3Server {
  endpoint: string;
  port: number;
  accessKey: string;
  secretKey: string;
  region: string;
  dataDir: string;
  /** The secrets map a CSI request carries to use this server. */
  secrets: Record<string, string>;
  stop(): Promise<void>;
  /** Stop without deleting data (restart with start()). */
  pause(): Promise<void>;
  start(): Promise<void>;
}

export async function startS3Server(opts: { accessKey?: string; secretKey?: string; port?: number } = {}): Promise<S3Server> {
  const bin = requireTool(tools.versitygw);
  const root = await mkdtemp(join(tmpdir(), 's3fs-csi-s3-'));
  const dataDir = join(root, 'data');
  const metaDir = join(root, 'meta');
  await mkdir(dataDir);
  await mkdir(metaDir);
  const port = opts.port ?? (await freePort());
  const accessKey = opts.accessKey ?? 'AKIATESTHARNESS0001';
  const secretKey = opts.secretKey ?? `harness-secret-${Math.random().toString(36).slice(2)}`;
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    // Credentials go through the environment of this test-owned server (versitygw reads ROOT_*).
    child = spawn(bin, ['--port', `127.0.0.1:${port}`, 'posix', '--sidecar', metaDir, dataDir], {
      env: { ...process.env, ROOT_ACCESS_KEY: accessKey, ROOT_SECRET_KEY: secretKey },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    try {
      await waitForPort(port, 20_000);
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`versitygw did not start: ${(err as Error).message}\n${stderr}`);
    }
  };
  const pause = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
      setTimeout(() => c.kill('SIGKILL'), 3000).unref();
    });
  };
  await start();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    port,
    accessKey,
    secretKey,
    region: 'us-east-1',
    dataDir,
    secrets: { accessKeyID: accessKey, secretAccessKey: secretKey, endpoint, region: 'us-east-1' },
    start,
    pause,
    async stop() {
      await pause();
      await rm(root, { recursive: true, force: true });
    },
  };
}
