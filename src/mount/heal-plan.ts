// PURE: which mounts in which containers' mount namespaces still show a dead s3fs layer of a volume,
// and what heals each one. A container that mounted the volume with mountPropagation None holds a
// private copy of the target mount: a repair stacked on the staging path never reaches it, so the
// node plugin replaces that copy in place (s3fs-csi-heal, see docs/kernel.md). Decided from the
// containers' mount tables alone: device numbers say which volume and which layer, `root` says which
// subdirectory (a subPath), the per-mount options say read-only, the optional fields say shared.
import { posix } from 'node:path';
import { type MountEntry, isReadOnly, isShared, topAt } from './mountinfo.js';

/** One mount namespace other than the driver's own, as seen through one of its processes. */
export interface NamespaceView {
  /** Inode of the mount namespace (the number in `mnt:[N]`). */
  ns: string;
  /** A process in it, whose /proc/<pid>/mountinfo `table` is. */
  pid: number;
  table: readonly MountEntry[];
}

/** The volume's layers on the staging path in the driver's namespace, after a repair. */
export interface VolumeLayers {
  stagingPath: string;
  /** Device of the top (healthy) layer. */
  healthyDevice: string;
  /** Devices of the dead layers underneath: s3fs processes that served this volume before. */
  deadDevices: ReadonlySet<string>;
}

export interface HealTask {
  ns: string;
  pid: number;
  /** The mount point as the container sees it. */
  target: string;
  /** The healthy equivalent in the driver's namespace: the staging path, plus a subPath's subdirectory. */
  source: string;
  readOnly: boolean;
  /** Device of the dead mount on top of `target` (the helper checks it is still there). */
  deadDevice: string;
}

export interface HealSkip {
  ns: string;
  pid: number;
  target: string;
  reason: string;
}

export interface HealPlan {
  tasks: HealTask[];
  skipped: HealSkip[];
}

/** Every mount point whose top layer is a dead layer of the volume, in every namespace given. */
export function planHeals(volume: VolumeLayers, namespaces: readonly NamespaceView[]): HealPlan {
  const tasks: HealTask[] = [];
  const skipped: HealSkip[] = [];
  for (const view of namespaces) {
    const seen = new Set<string>();
    for (const m of view.table) {
      if (seen.has(m.mountPoint) || !volume.deadDevices.has(m.device)) continue;
      seen.add(m.mountPoint);
      const top = topAt(view.table, m.mountPoint);
      if (!top || top.device === volume.healthyDevice || !volume.deadDevices.has(top.device)) continue; // healthy on top
      const where = { ns: view.ns, pid: view.pid, target: top.mountPoint };
      const why = reasonToSkip(top, view.table);
      if (why) {
        skipped.push({ ...where, reason: why });
        continue;
      }
      tasks.push({ ...where, source: sourceFor(volume.stagingPath, top.root), readOnly: isReadOnly(top), deadDevice: top.device });
    }
  }
  return { tasks, skipped };
}

function reasonToSkip(top: MountEntry, table: readonly MountEntry[]): string | undefined {
  // A peer of other namespaces' mounts (e.g. the host's own kubelet dir, or a Bidirectional
  // container): repairs reach it by propagation, and detaching its dead layer would propagate back.
  if (isShared(top)) return 'shared mount (peer group): healed by propagation, never in place';
  // Mount and unmount events propagate by the parent's peer group: a mount placed beneath the dead one
  // on a shared parent would appear in the parent's peers too.
  const parent = table.find((p) => p.id === top.parentId);
  if (parent && isShared(parent)) return `the mount it sits on (${parent.mountPoint}) is shared: a change here would propagate to its peers`;
  // Detaching the dead mount takes every mount below it along (e.g. a ConfigMap mounted inside the
  // volume); those are not ours to re-create.
  const nested = table.filter((c) => c.parentId === top.id && c.mountPoint !== top.mountPoint);
  if (nested.length > 0) return `${nested.length} mount(s) nested inside it (e.g. ${nested[0]?.mountPoint}) would be detached with it; restart the container`;
  // The kernel marks a mount whose root directory was deleted; there is nothing to bind in its place.
  if (!top.root.startsWith('/') || top.root.endsWith('//deleted')) return `its directory ${top.root} no longer exists in the volume`;
  return undefined;
}

/** The staging path plus the mount's root inside the filesystem ("/" = the whole volume). */
export function sourceFor(stagingPath: string, root: string): string {
  const sub = posix.normalize(root);
  return sub === '/' ? stagingPath : posix.join(stagingPath, sub);
}

/** Dead layers = every layer on the staging path but the top one; undefined when nothing is staged. */
export function volumeLayers(stagingPath: string, layers: readonly MountEntry[], history: readonly string[] = []): VolumeLayers | undefined {
  const top = layers[layers.length - 1];
  if (!top) return undefined;
  // A repair drops the layers above the bottom one, so an earlier repair's device (still held by a
  // container's private copy) is known only from the volume's recorded device history.
  const deadDevices = new Set([...layers.map((l) => l.device), ...history]);
  deadDevices.delete(top.device);
  return { stagingPath, healthyDevice: top.device, deadDevices };
}
