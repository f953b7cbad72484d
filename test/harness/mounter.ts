// Starts the real binary in the mounter role (s3fs-csi --mode mounter). With `container: true` it
// runs as pid 1 of its own pid namespace with its own mount namespace (unshare), as in its pod: when
// it dies, the kernel kills every s3fs it started and its private mounts vanish, while mounts under
// the kubelet dir (a shared mount, see sharedKubeletDir) reach the host both ways.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { helloOnce } from '../../src/mounter/http.js';
import type { MounterHello } from '../../src/mounter/protocol.js';
import { binPath } from './driver.js';
import { freePort, waitFor } from './net.js';

const run = promisify(execFile);

export interface MounterOptions {
  /** Base directory: kubelet dir `<dir>/kubelet`, socket `<dir>/mounter/mounter.sock`, state `<dir>/mstate`. */
  dir: string;
  container?: boolean;
  args?: string[];
  env?: Record<string, string>;
}

export interface MounterProcess {
  socketPath: string;
  httpPort: number;
  /** The wrapper (unshare) or the mounter itself: SIGKILL to it ends the whole "container". */
  proc: ChildProcess;
  /** The mounter's own pid as the host sees it. */
  pid: number;
  logs: string[];
  hello(): Promise<MounterHello>;
  http(path: string): Promise<{ status: number; body: string }>;
  exited: Promise<number | null>;
  /** SIGKILL to the container (all its processes die) or to the mounter alone. */
  kill(): Promise<void>;
  /** A signal to the mounter process itself (e.g. SIGTERM for a graceful stop). */
  signal(sig: NodeJS.Signals): void;
}

export const mounterSocketOf = (dir: string): string => join(dir, 'mounter', 'mounter.sock');

/** Makes `<dir>/kubelet` a shared mount, as kubelet's root dir is on a node (undo with unmountUnder). */
export async function sharedKubeletDir(dir: string): Promise<string> {
  const kubeletDir = join(dir, 'kubelet');
  await run('mkdir', ['-p', kubeletDir]);
  await run('mount', ['--bind', kubeletDir, kubeletDir]);
  await run('mount', ['--make-rshared', kubeletDir]);
  return kubeletDir;
}

async function childPidOf(pid: number): Promise<number | undefined> {
  for (const task of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const kids = (await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean);
    if (kids[0]) return Number(kids[0]);
  }
  return undefined;
}

export async function startMounter(o: MounterOptions): Promise<MounterProcess> {
  const socketPath = mounterSocketOf(o.dir);
  const httpPort = await freePort();
  const args = [
    binPath, '--mode', 'mounter',
    '--mounter-endpoint', `unix://${socketPath}`,
    '--nodeid', 'test-node',
    '--http-endpoint', `127.0.0.1:${httpPort}`,
    '--kubelet-dir', join(o.dir, 'kubelet'),
    '--state-dir', join(o.dir, 'mstate'),
    '--runtime-dir', join(o.dir, 'mruntime'),
    ...(o.args ?? []),
  ];
  // --propagation unchanged: the host's private / stays private (the mounter's backing mounts stay
  // in its namespace) while the shared kubelet dir keeps propagating, like a Bidirectional hostPath.
  const wrapper = o.container ? ['unshare', '--pid', '--fork', '--kill-child', '--mount', '--propagation', 'unchanged', '--mount-proc'] : [];
  const proc = spawn(wrapper[0] ?? process.execPath, wrapper.length ? [...wrapper.slice(1), process.execPath, ...args] : args, {
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const collect = (chunk: Buffer): void => {
    for (const line of chunk.toString().split('\n')) if (line) logs.push(line);
  };
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const outerPid = proc.pid;
  if (!outerPid) throw new Error('cannot start the mounter');
  const pid = o.container ? await waitFor('the mounter inside unshare', () => childPidOf(outerPid), 10_000) : outerPid;

  const m: MounterProcess = {
    socketPath, httpPort, proc, pid, logs, exited,
    hello: () => helloOnce(socketPath, 3000),
    async http(path) {
      const res = await fetch(`http://127.0.0.1:${httpPort}${path}`, { signal: AbortSignal.timeout(15_000) });
      return { status: res.status, body: await res.text() };
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
      // The pid namespace is gone once its init is: wait until the mounter pid is.
      await waitFor('the mounter to be gone', () => (existsSync(`/proc/${pid}`) ? undefined : true), 10_000);
    },
    signal(sig) {
      process.kill(pid, sig);
    },
  };
  try {
    const died = exited.then((code) => {
      throw new Error(`mounter exited with ${code} before serving:\n${logs.slice(-10).join('\n')}`);
    });
    died.catch(() => undefined);
    await Promise.race([died, waitFor('the mounter socket', async () => (existsSync(socketPath) ? m.hello() : undefined), 20_000, 50)]);
  } catch (err) {
    await m.kill();
    throw err;
  }
  return m;
}
