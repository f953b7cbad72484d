// The executor: carries out a Plan with the mounter. One volume at a time under its volume lock (the
// same lock the Node RPCs take), volumes in parallel up to --recovery-parallelism; a failing volume
// never stops the others. Credentials for a mount or a repair come from the volume's Secret as it is
// now (a rotated key takes effect; each Secret is read once per plan, however many volumes use it);
// a healthy-but-unsupervised volume is adopted with the recorded spec when it is on disk (no API
// call). Containers of the repaired volumes are healed in one pass after the volumes (one /proc scan
// for the plan, not one per volume). Every outcome is logged and counted.
import type { Driver } from '../driver.js';
import { errorMessage } from '../errors.js';
import { KubeError, type KubeReader } from '../kube/reader.js';
import { type MountEngine, type StageSpec, readMountTable, stageSpecFrom, topAt } from '../mount/index.js';
import type { DesiredVolume } from './cluster.js';
import { healContainers } from './heal-containers.js';
import { LocalRecoveryError, localSpec } from './local.js';
import type { OrphanPlan, Plan, VolumePlan } from './planner.js';
import { mapSettled } from './pool.js';

export interface ActionOutcome {
  subject: string;
  action: string;
  result: 'ok' | 'error';
  detail: string;
}

export interface ExecutionReport {
  outcomes: ActionOutcome[];
  /** Errors worth a warning in Probe/readyz (RBAC denials name the missing rule). */
  problems: string[];
  /** Volumes whose every step succeeded. */
  repaired: number;
  failed: number;
}

export interface ExecutorDeps {
  driver: Driver;
  mounter: MountEngine;
  reader?: KubeReader;
  /** Aborted when the driver shuts down: a mount in progress is undone rather than left behind. */
  signal?: AbortSignal;
}

type SecretReads = Map<string, Promise<Record<string, string> | undefined>>;

/** Secret data for a volume; throws with the reason (not found / RBAC / unreachable). `reads`: one read per Secret per plan. */
async function secretsFor(vol: DesiredVolume, reader: KubeReader | undefined, reads: SecretReads): Promise<Record<string, string> | undefined> {
  if (!vol.secretRef) return undefined;
  if (!reader) throw new KubeError('other', `volume ${vol.volumeHandle} needs Secret ${vol.secretRef.namespace}/${vol.secretRef.name} but no API access is configured`);
  const key = `${vol.secretRef.namespace}/${vol.secretRef.name}`;
  let read = reads.get(key);
  if (!read) {
    read = reader.getSecretData(vol.secretRef.namespace, vol.secretRef.name);
    reads.set(key, read);
  }
  const data = await read;
  if (!data) throw new KubeError('other', `Secret ${vol.secretRef.namespace}/${vol.secretRef.name} (${vol.secretRef.source}) of volume ${vol.volumeHandle} not found`);
  return data;
}

export async function executePlan(p: Plan, deps: ExecutorDeps): Promise<ExecutionReport> {
  const { driver, mounter } = deps;
  const cfg = driver.config;
  const log = driver.log;
  const outcomes: ActionOutcome[] = [];
  const problems: string[] = [];
  const count = (action: string, result: 'ok' | 'error'): void => {
    driver.metrics.recoveryActions.inc({ action, result });
  };
  const record = (o: ActionOutcome, fields: Record<string, unknown>): void => {
    outcomes.push(o);
    count(o.action, o.result);
    if (o.result === 'ok') log.info({ ...fields, action: o.action, result: o.detail }, 'recovery action done');
    else log.error({ ...fields, action: o.action, err: o.detail }, 'recovery action failed');
  };

  const secretReads: SecretReads = new Map();
  /** Staging paths repaired: their containers are healed in one pass after every volume. */
  const repairedStagings: string[] = [];
  const specFor = async (vp: VolumePlan): Promise<StageSpec> => {
    const vol = vp.volume;
    if (vp.stage === 'adopt') {
      const rec = await mounter.recordOf(vol.stagingPath);
      if (rec) {
        try {
          return await localSpec(rec, cfg, mounter);
        } catch (err) {
          if (!(err instanceof LocalRecoveryError)) throw err;
        }
      }
    }
    let secrets: Record<string, string> | undefined;
    try {
      secrets = await secretsFor(vol, deps.reader, secretReads);
    } catch (err) {
      // Without the Secret, a repair can still use the credentials s3fs had (if still on disk),
      // but the reason is reported: a missing RBAC rule must not go unnoticed.
      problems.push(errorMessage(err));
      const rec = await mounter.recordOf(vol.stagingPath);
      if (vp.stage === 'repair' && rec) {
        try {
          return await localSpec(rec, cfg, mounter);
        } catch {
          // fall through to the original error
        }
      }
      throw err;
    }
    return stageSpecFrom({
      volumeId: vol.volumeHandle,
      stagingPath: vol.stagingPath,
      volumeContext: vol.volumeContext,
      secrets,
      mountFlags: vol.mountOptions,
      volumeMountGroup: vp.mountGroup,
      readonly: vp.readonly,
    }, cfg);
  };

  const runVolume = async (vp: VolumePlan): Promise<boolean> => {
    const vol = vp.volume;
    const fields = { volume_id: vol.volumeHandle, pv: vol.pvName, claim: `${vol.claim.namespace}/${vol.claim.name}` };
    let ok = true;
    await mounter.withVolumeLock(vol.volumeHandle, async () => {
      if (vp.stage !== 'none') {
        try {
          const spec = await specFor(vp);
          const result = await mounter.ensureStaged(spec, deps.signal);
          record({ subject: vol.stagingPath, action: vp.stage, result: 'ok', detail: result }, { ...fields, staging_target_path: vol.stagingPath, was: vp.stagingState });
        } catch (err) {
          ok = false;
          record({ subject: vol.stagingPath, action: vp.stage, result: 'error', detail: errorMessage(err) }, { ...fields, staging_target_path: vol.stagingPath, was: vp.stagingState });
          return; // targets cannot be bound to a staging path that is not serving
        }
      }
      for (const tp of vp.targets) {
        // A dead target is usually healed by the staging repair through mount propagation; check
        // first so a healed one is left alone. Publish targets that have nothing mounted.
        if (tp.action === 'none' && vp.stage !== 'repair') continue;
        const t = tp.target;
        try {
          if (tp.action !== 'publish') {
            // Shows the very mount the staging path shows (same device: the repair reached it by
            // propagation): as healthy as the staging mount just made. Otherwise ask statfs.
            const table = await readMountTable();
            const top = topAt(table, t.path)?.device;
            const h = top !== undefined && top === topAt(table, vol.stagingPath)?.device ? { state: 'healthy' } : await mounter.checkPath(t.path, table);
            if (h.state === 'healthy') {
              if (tp.action !== 'none') record({ subject: t.path, action: 'heal-by-propagation', result: 'ok', detail: 'healthy after the staging repair' }, { ...fields, target_path: t.path });
              continue;
            }
          }
          const result = await mounter.ensurePublished(t.path, vol.stagingPath, t.readonly, vol.volumeHandle);
          record({ subject: t.path, action: tp.action === 'publish' ? 'publish' : 'republish', result: 'ok', detail: result }, { ...fields, target_path: t.path, was: tp.state });
        } catch (err) {
          ok = false;
          record({ subject: t.path, action: tp.action === 'publish' ? 'publish' : 'republish', result: 'error', detail: errorMessage(err) }, { ...fields, target_path: t.path, was: tp.state });
        }
      }
      if (vp.stage === 'repair') repairedStagings.push(vol.stagingPath);
    });
    return ok;
  };

  const results = await mapSettled(p.volumes, cfg.recovery.parallelism, runVolume);
  // Containers with a private copy of the dead mount (mountPropagation None): healed in place.
  // Logged and counted on their own (s3fs_csi_container_heals_total); they never fail the volume.
  if (repairedStagings.length > 0) await healContainers(driver, repairedStagings, async (p) => (await mounter.recordOf(p))?.devices ?? []);
  let repaired = 0;
  let failed = 0;
  results.forEach((r, i) => {
    if (r.status === 'fulfilled' && r.value) repaired++;
    else {
      failed++;
      if (r.status === 'rejected') {
        const vp = p.volumes[i];
        record({ subject: vp?.volume.stagingPath ?? '?', action: 'volume', result: 'error', detail: errorMessage(r.reason) }, { volume_id: vp?.volume.volumeHandle });
      }
    }
  });

  // Orphans: targets first (they are binds of the staging mounts), then staging paths.
  const ordered: OrphanPlan[] = [...p.orphans.filter((o) => o.kind === 'unpublish'), ...p.orphans.filter((o) => o.kind === 'unstage')];
  for (const o of ordered) {
    try {
      const lockKey = o.volumeId ?? o.path;
      await mounter.withVolumeLock(lockKey, () => (o.kind === 'unpublish' ? mounter.unpublish(o.path, lockKey) : mounter.unstage(o.path, lockKey)));
      record({ subject: o.path, action: o.kind, result: 'ok', detail: o.reason }, { path: o.path, was: o.state });
    } catch (err) {
      record({ subject: o.path, action: o.kind, result: 'error', detail: errorMessage(err) }, { path: o.path, was: o.state });
    }
  }
  return { outcomes, problems: [...new Set(problems)], repaired, failed };
}
