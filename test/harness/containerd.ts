// containerd (Debian's 1.6) for a test node: its own root, state, sockets and runc state under the
// node's directory, the overlayfs snapshotter, cgroupfs, locally imported images (no registry is
// reachable: the sandbox image must be imported before kubelet asks for a pod), and a CNI config whose
// only plugin is the reference `loopback` plugin: pods get `lo` and no other interface, so no pod has
// an address anything could send to.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './net.js';
import { pidsWhere } from '../../src/mount/s3fs-process.js';

const run = promisify(execFile);

/** Debian's reference CNI plugins (containernetworking-plugins). */
export const CNI_BIN_DIR = '/usr/lib/cni';

export interface Containerd {
  socket: string;
  pid: number;
  log: string[];
  /** `ctr -n k8s.io images import` of a docker-save tar. */
  importImage(tar: string): Promise<void>;
  /** Image refs in the k8s.io namespace. */
  images(): Promise<string[]>;
  /** Kills every task left in the k8s.io namespace (pods keep running when kubelet stops). */
  killAllTasks(): Promise<number>;
  stop(): Promise<void>;
}

/** containerd's config (version 2 schema of containerd 1.6), every path inside `dir` (pure). */
export function containerdConfig(dir: string, sandboxImage: string): string {
  const q = JSON.stringify;
  return `version = 2
root = ${q(join(dir, 'root'))}
state = ${q(join(dir, 'state'))}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = ${q(join(dir, 'containerd.sock'))}

[ttrpc]
  address = ${q(join(dir, 'containerd.sock.ttrpc'))}

[debug]
  level = "warn"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(sandboxImage)}
  enable_cdi = false
  # kubelet asks -998/-997 for node-critical pods; below containerd's own value that needs
  # CAP_SYS_RESOURCE, which a node running inside a container lacks (runc init then dies).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = ${q(join(dir, 'runc'))}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(join(dir, 'cni-bin'))}
    conf_dir = ${q(join(dir, 'cni'))}
    max_conf_num = 1
`;
}

/** The CNI network: `lo` up, and an `eth0` that never leaves the pod's own namespace (pure). */
export function cniConfList(): string {
  return JSON.stringify({ cniVersion: '1.0.0', name: 's3fs-csi-e2e', plugins: [{ type: 'loopback' }, { type: POD_NET_PLUGIN }] }, null, 2);
}

/**
 * containerd 1.6 wants an `eth0` with an address in the CNI result ("failed to find network info for
 * sandbox" without it). This plugin gives each pod an `eth0` (one end of a veth pair whose other end
 * stays there too) inside the pod's own network
 * namespace, with a TEST-NET-3 address derived from the container id: no link to the host, no route
 * out, nothing on the host changed, and nothing ever sends to it (the tests use no pod IPs).
 */
export const POD_NET_PLUGIN = 's3fs-csi-e2e-podnet';
export const POD_NET_SCRIPT = `#!/bin/sh
set -e
case "$CNI_COMMAND" in
ADD)
  n=$(printf '%s' "$CNI_CONTAINERID" | cksum | cut -d' ' -f1)
  ip="203.0.113.$(( n % 250 + 2 ))"
  # A veth pair with both ends in the pod's namespace (this kernel has no dummy driver).
  nsenter --net="$CNI_NETNS" ip link add "$CNI_IFNAME" type veth peer name "$CNI_IFNAME-peer"
  nsenter --net="$CNI_NETNS" ip addr add "$ip/32" dev "$CNI_IFNAME"
  nsenter --net="$CNI_NETNS" ip link set "$CNI_IFNAME" up
  printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"address":"%s/32","interface":0}]}' "$CNI_IFNAME" "$CNI_NETNS" "$ip"
  ;;
DEL|CHECK|GC|STATUS) ;;
VERSION) printf '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}' ;;
esac
`;

async function ctr(socket: string, args: string[], timeoutMs = 120_000): Promise<string> {
  const { stdout } = await run('ctr', ['--address', socket, '--namespace', 'k8s.io', ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** PIDs of containerd-shim processes serving this containerd (they outlive it by design). */
export function shimPidsOf(socket: string): Promise<number[]> {
  return pidsWhere((argv) => (argv[0]?.includes('containerd-shim') ?? false) && argv.includes(socket));
}

export async function startContainerd(dir: string, sandboxImage: string): Promise<Containerd> {
  await mkdir(join(dir, 'cni'), { recursive: true });
  await writeFile(join(dir, 'cni', '10-s3fs-csi-e2e.conflist'), cniConfList());
  // One plugin directory: the reference loopback plugin and the pod network plugin above.
  await mkdir(join(dir, 'cni-bin'), { recursive: true });
  await symlink(join(CNI_BIN_DIR, 'loopback'), join(dir, 'cni-bin', 'loopback'));
  await writeFile(join(dir, 'cni-bin', POD_NET_PLUGIN), POD_NET_SCRIPT, { mode: 0o755 });
  const configFile = join(dir, 'config.toml');
  await writeFile(configFile, containerdConfig(dir, sandboxImage));
  const socket = join(dir, 'containerd.sock');
  const child: ChildProcess = spawn('containerd', ['--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const keep = (d: Buffer): void => {
    for (const line of d.toString().split('\n')) if (line) log.push(line);
    if (log.length > 300) log.splice(0, log.length - 300);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    // Shims are re-parented daemons: stop the ones of this containerd by PID.
    for (const pid of await shimPidsOf(socket)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  try {
    await waitFor('containerd socket', async () => {
      if (child.exitCode !== null) throw new Error(`containerd exited: ${log.slice(-10).join('\n')}`);
      if (!existsSync(socket)) return undefined;
      await ctr(socket, ['version'], 5000);
      return true;
    }, 30_000, 100);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    socket,
    pid: child.pid ?? 0,
    log,
    async importImage(tar) {
      await ctr(socket, ['images', 'import', tar]);
    },
    async images() {
      return (await ctr(socket, ['images', 'ls', '-q'])).split('\n').filter(Boolean);
    },
    async killAllTasks() {
      const ids = (await ctr(socket, ['tasks', 'ls', '-q'], 30_000).catch(() => '')).split('\n').filter(Boolean);
      for (const id of ids) await ctr(socket, ['tasks', 'kill', '--signal', 'SIGKILL', id], 30_000).catch(() => undefined);
      for (const id of ids) await ctr(socket, ['tasks', 'delete', '--force', id], 30_000).catch(() => undefined);
      return ids.length;
    },
    stop,
  };
}
