// What a test node changes on the host outside its own directory, recorded before it starts and put
// back afterwards: the sysctls kubelet sets (it has no opt-out), the cgroup directories containerd
// creates, network namespaces of pod sandboxes, /run/containerd (shim sockets), and the
// device-plugins directory kubelet creates under /var/lib/kubelet whatever --root-dir says.
import { existsSync } from 'node:fs';
import { readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mountsUnder, readMountTable } from '../../src/mount/index.js';

/** kubelet's setupKernelTunables() values (protectKernelDefaults=false). */
export const KUBELET_SYSCTLS = [
  'vm/overcommit_memory', 'vm/panic_on_oom', 'kernel/panic', 'kernel/panic_on_oops', 'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes',
] as const;

/** Paths a node creates when they are absent; removed afterwards only if they were absent before. */
// The last two are the chart's default mounter dirs: the e2e points both into the node's own
// directory, so they are listed only to put the host back should a values change miss one.
export const CREATED_PATHS = ['/run/containerd', '/var/lib/kubelet', '/run/netns', '/etc/cni', '/var/log/pods', '/var/log/containers', '/run/s3fs-csi', '/run/s3fs-csi-mounter'] as const;

const CGROUP_ROOT = '/sys/fs/cgroup';
/** The cgroup subtrees containerd and kubelet use with cgroupsPerQOS=false and the cgroupfs driver. */
const CGROUP_PARENTS = ['k8s.io', 'kubepods', 'kubepods.slice'];

export interface HostSnapshot {
  sysctls: Record<string, string>;
  absentPaths: string[];
  netns: string[];
  /** Per cgroup v1 hierarchy, the node's subtrees that existed before (normally none). */
  cgroupDirs: string[];
}

const sysctlPath = (name: string): string => join('/proc/sys', name);

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/** Every existing `<hierarchy>/<parent>` directory of the node's cgroup parents. */
async function nodeCgroupDirs(): Promise<string[]> {
  const out: string[] = [];
  for (const h of await listDir(CGROUP_ROOT)) {
    for (const parent of CGROUP_PARENTS) {
      const d = join(CGROUP_ROOT, h, parent);
      if (existsSync(d)) out.push(d);
    }
  }
  return out;
}

export async function snapshotHost(): Promise<HostSnapshot> {
  const sysctls: Record<string, string> = {};
  for (const s of KUBELET_SYSCTLS) sysctls[s] = (await readFile(sysctlPath(s), 'utf8')).trim();
  return {
    sysctls,
    absentPaths: CREATED_PATHS.filter((p) => !existsSync(p)),
    netns: await listDir('/run/netns'),
    cgroupDirs: await nodeCgroupDirs(),
  };
}

/** The differences between two snapshots, as the list of things to put back (pure). */
export function hostDrift(before: HostSnapshot, now: HostSnapshot): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(before.sysctls)) if (now.sysctls[k] !== v) out.push(`sysctl ${k}: ${now.sysctls[k]} (was ${v})`);
  for (const p of before.absentPaths) if (!now.absentPaths.includes(p)) out.push(`${p} exists (was absent)`);
  for (const n of now.netns) if (!before.netns.includes(n)) out.push(`network namespace /run/netns/${n} left`);
  for (const d of now.cgroupDirs) if (!before.cgroupDirs.includes(d)) out.push(`cgroup ${d} left`);
  return out;
}

/** Removes a cgroup v1 directory tree bottom-up (only empty cgroups can be removed). */
async function removeCgroupTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await removeCgroupTree(join(dir, e.name));
  await rmdir(dir).catch(() => undefined);
}

/**
 * Puts back what the node changed. Network namespace files are nsfs mounts: the caller unmounts
 * them first (it owns the mount helpers). Returns what could not be restored.
 */
export async function restoreHost(before: HostSnapshot): Promise<string[]> {
  for (const [k, v] of Object.entries(before.sysctls)) {
    await writeFile(sysctlPath(k), `${v}\n`).catch(() => undefined);
  }
  for (const d of await nodeCgroupDirs()) if (!before.cgroupDirs.includes(d)) await removeCgroupTree(d);
  for (const n of await listDir('/run/netns')) if (!before.netns.includes(n)) await rm(join('/run/netns', n), { force: true }).catch(() => undefined);
  const table = await readMountTable();
  for (const p of before.absentPaths) {
    // Never walk a recursive delete into a mount (a FUSE mount would delete bucket data).
    if (mountsUnder(table, p).length > 0) continue;
    await rm(p, { recursive: true, force: true }).catch(() => undefined);
  }
  return hostDrift(before, await snapshotHost());
}
