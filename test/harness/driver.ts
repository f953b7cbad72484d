// Starts the real s3fs-csi binary (bin/s3fs-csi, compiled) and talks to it over its real socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, ServiceError } from '@grpc/grpc-js';
import { csiClient, type ServiceName, unary } from '../../src/csi/proto.js';
import { packageRoot } from '../../src/paths.js';
import { killS3fsAndUnmountUnder, scrubDir } from './mounts.js';
import { freePort, waitFor } from './net.js';

export const binPath = join(packageRoot, 'bin', 's3fs-csi');

export interface DriverOptions {
  mode?: 'controller' | 'node' | 'all';
  args?: string[];
  env?: Record<string, string>;
  /** Reuse a directory (socket, kubelet dir, state) across restarts. */
  dir?: string;
  /** Wait until GetPluginInfo answers (default true). */
  waitReady?: boolean;
  /** Command prefix that must exec the driver keeping its pid, e.g. ['unshare', '--mount', ...]. */
  wrapper?: string[];
}

export interface DriverProcess {
  dir: string;
  socketPath: string;
  httpPort: number;
  kubeletDir: string;
  proc: ChildProcess;
  /** Every line the driver wrote to stdout/stderr so far. */
  logs: string[];
  call<Res = Record<string, unknown>>(service: ServiceName, method: string, request?: object, deadlineMs?: number): Promise<Res>;
  /** The gRPC status code of a call expected to fail (throws if it succeeds). */
  callCode(service: ServiceName, method: string, request?: object, deadlineMs?: number): Promise<number>;
  http(path: string): Promise<{ status: number; body: string }>;
  exited: Promise<number | null>;
  /** The exit code, or 'still running' once `ms` have passed (never waits unbounded). */
  exitedWithin(ms: number): Promise<number | null | 'still running'>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Removes the temp dir (when the harness created it). */
  cleanup(): Promise<void>;
}

/** The last value of a flag given as `--flag value` or `--flag=value`. */
function lastFlag(args: readonly string[], flag: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) value = args[i + 1];
    else if (args[i]?.startsWith(`${flag}=`)) value = args[i]!.slice(flag.length + 1);
  }
  return value;
}

/** Whether the driver serves HTTP with these flags (an empty --http-endpoint falls back to --health-port). */
function httpServed(args: readonly string[]): boolean {
  const mode = lastFlag(args, '--mode');
  if (mode === 'mounter') return false;
  return Boolean(lastFlag(args, '--http-endpoint')) || lastFlag(args, '--health-port') !== '0';
}

export async function startDriver(opts: DriverOptions = {}): Promise<DriverProcess> {
  const ownDir = !opts.dir;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 's3fs-csi-drv-')));
  const socketPath = join(dir, 'csi.sock');
  const kubeletDir = join(dir, 'kubelet');
  const httpPort = await freePort();
  const { mkdir } = await import('node:fs/promises');
  await mkdir(kubeletDir, { recursive: true });
  const args = [
    binPath,
    '--endpoint', `unix://${socketPath}`,
    '--mode', opts.mode ?? 'all',
    '--nodeid', 'test-node',
    '--http-endpoint', `127.0.0.1:${httpPort}`,
    '--kubelet-dir', kubeletDir,
    '--state-dir', join(dir, 'state'),
    '--runtime-dir', join(dir, 'runtime'),
    '--recovery', 'false',
    ...(opts.args ?? []),
  ];
  const wrapper = opts.wrapper ?? [];
  const proc = spawn(wrapper[0] ?? process.execPath, wrapper.length > 0 ? [...wrapper.slice(1), process.execPath, ...args] : args, {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const collect = (chunk: Buffer): void => {
    for (const line of chunk.toString().split('\n')) if (line) logs.push(line);
  };
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));

  const clients = new Map<ServiceName, Client>();
  const clientFor = (service: ServiceName): Client => {
    let c = clients.get(service);
    if (!c) {
      c = csiClient(service, socketPath);
      clients.set(service, c);
    }
    return c;
  };
  const closeClients = (): void => {
    for (const c of clients.values()) c.close();
    clients.clear();
  };

  const driver: DriverProcess = {
    dir,
    socketPath,
    httpPort,
    kubeletDir,
    proc,
    logs,
    exited,
    exitedWithin: (ms) => Promise.race([exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), ms).unref())]),
    call: (service, method, request = {}, deadlineMs = 30_000) => unary(clientFor(service), method, request, deadlineMs),
    async callCode(service, method, request = {}, deadlineMs = 30_000) {
      try {
        await unary(clientFor(service), method, request, deadlineMs);
      } catch (err) {
        return (err as ServiceError).code;
      }
      throw new Error(`${service}.${method} succeeded but was expected to fail`);
    },
    async http(path) {
      const res = await fetch(`http://127.0.0.1:${httpPort}${path}`, { signal: AbortSignal.timeout(15_000) });
      return { status: res.status, body: await res.text() };
    },
    async stop(signal = 'SIGTERM') {
      closeClients();
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async cleanup() {
      const stopped = driver.stop('SIGKILL');
      // A driver thread blocked on a FUSE request of its own hung s3fs only dies once that s3fs does.
      const late = setTimeout(() => void killS3fsAndUnmountUnder(dir), 5000);
      await stopped;
      clearTimeout(late);
      // s3fs outlives a killed driver by design: its mounts go before the directory does.
      if (ownDir) await scrubDir(dir);
    },
  };

  if (opts.waitReady !== false) {
    try {
      // An early exit fails at once with the driver's last words instead of waiting out the timeout.
      const died = exited.then((code) => {
        throw new Error(`driver exited with ${code} before serving:\n${logs.slice(-10).join('\n')}`);
      });
      died.catch(() => undefined); // handled by the race below; silences the rejection after a normal stop
      await Promise.race([
        died,
        waitFor('the driver socket', async () => {
          if (!existsSync(socketPath)) return undefined;
          await driver.call('Identity', 'GetPluginInfo', {}, 2000);
          return true;
        }, 20_000, 50).then(() => (httpServed(args)
          // The socket opens first; HTTP comes up once the rest of the driver has loaded.
          ? waitFor('the driver\'s HTTP endpoint', () => fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(2000) }).then(() => true, () => undefined), 20_000, 50)
          : true)),
      ]);
    } catch (err) {
      await driver.cleanup();
      throw err;
    }
  }
  return driver;
}
