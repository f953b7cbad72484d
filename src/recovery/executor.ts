// The executor: carries out a Plan with the mounter. One volume at a time under its volume lock (the
// same lock the Node RPCs take), volumes in parallel up to --recovery-parallelism; a failing volume
// never stops the others. Credentials for a mount or a repair come from the volume's Secret as it is
// now (a rotated key takes effect; each Secret is read once per plan, however many volumes use it);
// a healthy-but-unsupervised volume is adopted with the recorded spec when it is on disk (no API
// call). Containers of the repaired volumes are healed in one pass after the volumes (one /proc scan
// for the plan, not one per volume). Every outcome is logged and counted, and each volume's outcome
// is handed to `report` as a typed RecoveryOutcome (the Events on its Pods and PVC), once its
// containers are healed.
import { dirname } from 'node:path';
import type { Driver } from '../driver.js';
import { errorMessage } from '../errors.js';
import type { KubeReader } from '../kube/reader.js';
import { type MountEngine, type StageSpec, readMountTable, stageSpecFrom, topAt } from '../mount/index.js';
import { healContainers, healedPer } from './heal-containers.js';
import { LocalRecoveryError, localSpec } from './local.js';
import { readVolData } from './observe.js';
import { type Fixable, type RecoveryOutcome, type RecoverySteps, didRecover, fixableProblem, podRefs, refsOf } from './outcome-events.js';
import type { OrphanPlan, Plan, VolumePlan } from './planner.js';
import { mapSettled } from './pool.js';
import { type SecretReads, secretsFor } from './secret-access.js';
import type { Trigger } from './triggers.js';

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
  /** What started this run (named in the Events). */
  trigger?: Trigger;
  /** Each volume's outcome, with the secret values it used (never to appear in a message). Must not throw. */
  report?: (o: RecoveryOutcome, secrets: readonly string[]) => void;
}

/** The spec to stage with, plus what went wrong reading the Secret when the repair went on without it. */
interface SpecChoice {
  spec: StageSpec;
  secretProblem?: Fixable;
}

export async function executePlan(p: Plan, deps: ExecutorDeps): Promise<ExecutionReport> {
  const { driver, mounter } = deps;
  const cfg = driver.config;
  const log = driver.log;
  const outcomes: ActionOutcome[] = [];
  const problems: string[] = [];
  const trigger = deps.trigger ?? 'manual';
  const report = (o: RecoveryOutcome, secrets: readonly string[]): void => {
    try {
      deps.report?.(o, secrets);
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'recovery outcome report failed');
    }
  };
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
  /** Each volume's Events, sent once the heal pass has said how many of its containers it healed. */
  const reports: Array<(healed: ReadonlyMap<string, number>) => void> = [];
  const specFor = async (vp: VolumePlan): Promise<SpecChoice> => {
    const vol = vp.volume;
    if (vp.stage === 'adopt') {
      const rec = await mounter.recordOf(vol.stagingPath);
      if (rec) {
        try {
          return { spec: await localSpec(rec, cfg, mounter) };
        } catch (err) {
          if (!(err instanceof LocalRecoveryError)) throw err;
        }
      }
    }
    let secrets: Record<string, string> | undefined;
    try {
      secrets = await secretsFor(vol, deps.reader, cfg, secretReads);
    } catch (err) {
      // Without the Secret, a repair can still use the credentials s3fs had (if still on disk),
      // but the reason is reported: a missing RBAC rule must not go unnoticed.
      problems.push(errorMessage(err));
      const rec = await mounter.recordOf(vol.stagingPath);
      if (vp.stage === 'repair' && rec) {
        try {
          return { spec: await localSpec(rec, cfg, mounter), secretProblem: fixableProblem(err) };
        } catch {
          // fall through to the original error
        }
      }
      throw err;
    }
    return { spec: stageSpecFrom({
      volumeId: vol.volumeHandle,
      stagingPath: vol.stagingPath,
      volumeContext: vol.volumeContext,
      secrets,
      mountFlags: vol.mountOptions,
      volumeMountGroup: vp.mountGroup,
      readonly: vp.readonly,
    }, cfg) };
  };

  const runVolume = async (vp: VolumePlan): Promise<boolean> => {
    const vol = vp.volume;
    const fields = { volume_id: vol.volumeHandle, pv: vol.pvName, claim: `${vol.claim.namespace}/${vol.claim.name}` };
    const started = Date.now();
    const steps: RecoverySteps = { targets: 0, propagated: 0, containers: 0 };
    const touched = new Set<string>();
    // The pods kubelet has set this volume up for (the planner left out the ones it has not reached).
    const planned = vp.targets.map((tp) => tp.target);
    let used: readonly string[] = [];
    let secretProblem: Fixable | undefined;
    let ok = true;
    await mounter.withVolumeLock(vol.volumeHandle, async () => {
      if (vp.stage !== 'none') {
        try {
          const choice = await specFor(vp);
          used = [choice.spec.credentials.accessKeyId.reveal(), choice.spec.credentials.secretAccessKey.reveal()];
          secretProblem = choice.secretProblem;
          const result = await mounter.ensureStaged(choice.spec, deps.signal);
          if (result === 'repaired' || result === 'mounted') steps.stage = result;
          record({ subject: vol.stagingPath, action: vp.stage, result: 'ok', detail: result }, { ...fields, staging_target_path: vol.stagingPath, was: vp.stagingState });
        } catch (err) {
          ok = false;
          record({ subject: vol.stagingPath, action: vp.stage, result: 'error', detail: errorMessage(err) }, { ...fields, staging_target_path: vol.stagingPath, was: vp.stagingState });
          const problem = fixableProblem(err);
          if (problem) report({ kind: 'not-recovered', volume: refsOf(vol), pods: podRefs(planned), trigger, problem, repaired: false }, used);
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
              if (tp.action !== 'none') {
                steps.propagated++;
                touched.add(t.podUid);
                record({ subject: t.path, action: 'heal-by-propagation', result: 'ok', detail: 'healthy after the staging repair' }, { ...fields, target_path: t.path });
              }
              continue;
            }
          }
          // The plan may be seconds old: a target kubelet has unpublished since (its vol_data.json gone)
          // is no longer ours to bind (planner.ts says why).
          if (tp.action === 'publish' && !(await readVolData(dirname(t.path)))) {
            log.info({ ...fields, target_path: t.path }, 'publish skipped: kubelet has unpublished the target meanwhile');
            continue;
          }
          const result = await mounter.ensurePublished(t.path, vol.stagingPath, t.readonly, vol.volumeHandle);
          if (result !== 'unchanged') {
            steps.targets++;
            touched.add(t.podUid);
          }
          record({ subject: t.path, action: tp.action === 'publish' ? 'publish' : 'republish', result: 'ok', detail: result }, { ...fields, target_path: t.path, was: tp.state });
        } catch (err) {
          ok = false;
          record({ subject: t.path, action: tp.action === 'publish' ? 'publish' : 'republish', result: 'error', detail: errorMessage(err) }, { ...fields, target_path: t.path, was: tp.state });
        }
      }
      if (vp.stage === 'repair') repairedStagings.push(vol.stagingPath);
    });
    reports.push((healed) => {
      steps.containers = healed.get(vol.stagingPath) ?? 0;
      if (didRecover(steps)) {
        // A staging repair or mount reached every pod of the volume; a target alone, only its pod.
        const pods = podRefs(planned.filter((t) => steps.stage || touched.has(t.podUid)));
        report({ kind: 'recovered', volume: refsOf(vol), pods, trigger, ms: Date.now() - started, steps }, used);
      }
      if (secretProblem) report({ kind: 'not-recovered', volume: refsOf(vol), pods: podRefs(planned), trigger, problem: secretProblem, repaired: true }, used);
    });
    return ok;
  };

  const results = await mapSettled(p.volumes, cfg.recovery.parallelism, runVolume);
  // Containers with a private copy of the dead mount (mountPropagation None): healed in place.
  // Logged and counted on their own (s3fs_csi_container_heals_total); they never fail the volume.
  const heals = repairedStagings.length > 0 ? await healContainers(driver, repairedStagings, async (sp) => (await mounter.recordOf(sp))?.devices ?? []) : [];
  const healed = healedPer(repairedStagings, heals);
  for (const r of reports) r(healed);
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

