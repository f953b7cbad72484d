// After a repair: heal every running container that still shows a dead layer of the repaired
// volumes, in place. Containers with mountPropagation HostToContainer were already reached by the
// bind stacked on the staging path; the ones with the default (None) hold a private copy of the dead
// mount, which s3fs-csi-heal replaces inside their mount namespace (docs/kernel.md). One /proc scan
// for all volumes given, a plan per volume (pure, src/mount/heal-plan.ts), a few helpers at once,
// each under a deadline. Every outcome is logged and counted; none of them fails the repair.
import { join } from 'node:path';
import type { Driver } from '../driver.js';
import { errorMessage } from '../errors.js';
import { type HealResult, type HealTask, type HealWhere, otherNamespaces, planHeals, readMountTable, layersAt, resolveHealHelper, runHealHelper, seesHostPids, statfsUnderDeadline, type VolumeLayers, volumeLayers } from '../mount/index.js';
import { mapSettled } from './pool.js';

const HELPER_TIMEOUT_MS = 5000;
/** statfs of a container's mount before it is replaced: a dead FUSE mount fails at once (ENOTCONN). */
const LIVENESS_TIMEOUT_MS = 2000;
const PARALLELISM = 4;

/** Heals the containers of the volumes staged at `stagingPaths`; resolves to one result per dead mount found. */
export async function healContainers(driver: Driver, stagingPaths: readonly string[], history: (stagingPath: string) => Promise<readonly string[]> = async () => []): Promise<HealResult[]> {
  const log = driver.log;
  const started = Date.now();
  try {
    const table = await readMountTable();
    const histories = await Promise.all(stagingPaths.map((p) => history(p).catch(() => [] as readonly string[])));
    const volumes = stagingPaths.map((p, i) => volumeLayers(p, layersAt(table, p), histories[i])).filter((v): v is VolumeLayers => v !== undefined && v.deadDevices.size > 0);
    if (volumes.length === 0 || driver.config.healHelper === 'none') return [];
    if (!(await seesHostPids())) {
      log.warn({ staging_target_paths: stagingPaths }, 'containers cannot be healed in place: the node plugin does not see the node\'s processes (hostPID)');
      return [];
    }
    const views = await otherNamespaces();
    const helper = await resolveHealHelper(driver.config.healHelper);
    const tasks: HealTask[] = [];
    const results: HealResult[] = [];
    for (const v of volumes) {
      const p = planHeals(v, views);
      tasks.push(...p.tasks);
      for (const s of p.skipped) results.push({ result: 'skipped', where: { ns: s.ns, pid: s.pid, target: s.target }, reason: s.reason });
    }
    if (!helper) {
      for (const t of tasks) results.push({ result: 'failed', where: whereOf(t), reason: 'helper', message: `${driver.config.healHelper} not found (--heal-helper)`, ms: 0 });
    } else {
      const dead = await reallyDead(tasks, results);
      const settled = await mapSettled(dead, PARALLELISM, (t) => runHealHelper(helper, t, HELPER_TIMEOUT_MS));
      settled.forEach((r, i) => {
        const t = dead[i];
        if (r.status === 'fulfilled') results.push(r.value);
        else if (t) results.push({ result: 'failed', where: whereOf(t), reason: 'helper', message: errorMessage(r.reason), ms: 0 });
      });
    }
    for (const r of results) report(driver, r);
    if (results.length > 0) {
      const count = (k: HealResult['result']): number => results.filter((r) => r.result === k).length;
      log.info({ staging_target_paths: stagingPaths, namespaces: views.length, healed: count('healed'), failed: count('failed'), skipped: count('skipped'), ms: Date.now() - started }, 'container heal pass done');
    }
    return results;
  } catch (err) {
    // /proc or the mount table unreadable: nothing was changed.
    log.error({ staging_target_paths: stagingPaths, err: errorMessage(err) }, 'cannot look for containers to heal');
    return [];
  }
}

/** A staged volume and the devices its s3fs processes had before (StagedRecord.devices). */
export interface StagedVolume {
  stagingPath: string;
  history: readonly string[];
}

/**
 * The staging paths of the volumes that some running container still shows dead, found without
 * changing anything: one mount-table read, one /proc scan, a statfs per candidate. The periodic
 * sweep behind every repair's own heal pass: a container that pass missed (started meanwhile,
 * its helper timed out, the pass itself failed) is found here and healed by healContainers.
 */
export async function volumesWithDeadCopies(driver: Driver, staged: readonly StagedVolume[]): Promise<string[]> {
  if (driver.config.healHelper === 'none') return [];
  const table = await readMountTable();
  const volumes = staged.map((s) => volumeLayers(s.stagingPath, layersAt(table, s.stagingPath), s.history)).filter((v): v is VolumeLayers => v !== undefined && v.deadDevices.size > 0);
  if (volumes.length === 0 || !(await seesHostPids())) return [];
  const views = await otherNamespaces();
  const found: string[] = [];
  for (const v of volumes) {
    const { tasks } = planHeals(v, views);
    if (tasks.length > 0 && (await reallyDead(tasks, [])).length > 0) found.push(v.stagingPath);
  }
  return found;
}

const whereOf = (t: HealTask): HealWhere => ({ ns: t.ns, pid: t.pid, target: t.target });

/**
 * Pure: containers healed per staging path, from one pass over several volumes. A healed mount's
 * source is its volume's staging path, or a subdirectory of it (a subPath).
 */
export function healedPer(stagingPaths: readonly string[], results: readonly HealResult[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of results) {
    if (r.result !== 'healed') continue;
    const sp = stagingPaths.find((p) => r.source === p || r.source.startsWith(`${p}/`));
    if (sp !== undefined) out.set(sp, (out.get(sp) ?? 0) + 1);
  }
  return out;
}

/**
 * The tasks whose mount really is dead. A device number is not an identity: once no mount holds a
 * dead s3fs's superblock any more, the kernel hands its number to the next FUSE mount, so a device
 * in a volume's history can belong to another volume's live s3fs by now, and replacing that mount
 * would put the wrong volume in the container. So statfs through the container's root decides: a
 * mount that answers is left alone (and reported as skipped).
 */
async function reallyDead(tasks: readonly HealTask[], results: HealResult[]): Promise<HealTask[]> {
  const checked = await mapSettled(tasks, PARALLELISM, (t) => statfsUnderDeadline(join('/proc', String(t.pid), 'root', t.target), LIVENESS_TIMEOUT_MS));
  const dead: HealTask[] = [];
  checked.forEach((c, i) => {
    const t = tasks[i];
    if (!t) return;
    if (c.status === 'fulfilled' && c.value.state === 'healthy') results.push({ result: 'skipped', where: whereOf(t), reason: `the mount answers: device ${t.deadDevice} is not a dead mount of this volume any more` });
    else dead.push(t);
  });
  return dead;
}

function report(driver: Driver, r: HealResult): void {
  driver.metrics.containerHeals.inc({ result: r.result });
  const fields = { mnt_ns: r.where.ns, pid: r.where.pid, container_path: r.where.target };
  if (r.result === 'healed') driver.log.info({ ...fields, source: r.source, read_only: r.readOnly, ms: r.ms }, 'container healed in place');
  else if (r.result === 'failed') driver.log.error({ ...fields, reason: r.reason, err: r.message, ms: r.ms }, 'container heal failed');
  else driver.log.warn({ ...fields, reason: r.reason }, 'container heal skipped');
}
