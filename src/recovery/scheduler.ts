// When recovery runs:
//   start-up   : a full scan (API discovery -> observe -> plan -> execute) before Probe reports ready;
//                while the API server is unreachable or RBAC denies a read, the driver stays live and
//                not ready, repairs what it can from local state, and retries with backoff.
//   s3fs exit  : the dead volume is repaired from local state at once (no API call); if that is not
//                possible a full scan is queued.
//   dead mount : NodeGetVolumeStats found one (engine event 'dead-mount'): same as an s3fs exit.
//   mounter    : the separate mounter (re)connected: a local pass; a new mounter process (its s3fs
//                died with the old one) also gets a full scan (triggers.ts decides).
//   interval   : a full scan every --recovery-interval (also catches hung s3fs and lost targets).
// Scans never overlap: a trigger during a scan queues exactly one more.
// Every volume's outcome becomes Events on its Pods and PVC (outcome-events.ts decides, the recorder
// writes in the background); local repairs find those objects in what the last scan saw.
import { setTimeout as sleep } from 'node:timers/promises';
import { RunningTasks } from '../running.js';
import type { Driver } from '../driver.js';
import { errorMessage } from '../errors.js';
import type { KubeReader } from '../kube/client.js';
import type { EventRecorder } from '../kube/events.js';
import type { MountEngine } from '../mount/index.js';
import { desiredState } from './cluster.js';
import { fetchClusterView, forbiddenErrors } from './discovery.js';
import { type ExecutionReport, executePlan } from './executor.js';
import { healContainers, volumesWithDeadCopies } from './heal-containers.js';
import { LocalRecoveryError, repairLocally } from './local.js';
import { observeNode } from './observe.js';
import { type RecoveryOutcome, type RecoverySteps, type VolumeRefs, didRecover, eventsFor, fixableProblem, refsOf } from './outcome-events.js';
import { type Plan, plan } from './planner.js';
import { type Reaction, type Trigger, reactionTo } from './triggers.js';

export type { Trigger };

export interface ScanSummary {
  trigger: Trigger;
  plan: Plan;
  report: ExecutionReport;
  ms: number;
}

const WARNING = 'recovery';
const MAX_BACKOFF_MS = 5000;
const LOCAL_RETRY_MAX_MS = 30_000;

export class Recovery {
  readonly #driver: Driver;
  readonly #mounter: MountEngine;
  readonly #reader: KubeReader | undefined;
  readonly #events: EventRecorder | undefined;
  /** volume handle -> its claim and pods, as the last full scan saw them (for local repairs' Events). */
  #refs = new Map<string, VolumeRefs>();
  #stopped = false;
  #scanning: Promise<ScanSummary | undefined> | undefined;
  #queued = false;
  #timer: NodeJS.Timeout | undefined;
  /** staging path -> pending local repair timer */
  readonly #local = new Map<string, NodeJS.Timeout>();
  readonly #localAttempts = new Map<string, number>();
  /** Scans and local repairs in progress: stop() aborts them and waits (bounded) for their undo. */
  readonly #tasks = new RunningTasks();

  constructor(driver: Driver, mounter: MountEngine, reader: KubeReader | undefined, events?: EventRecorder) {
    this.#driver = driver;
    this.#mounter = mounter;
    this.#reader = reader;
    this.#events = events;
  }

  /** Hands an outcome's Events to the recorder (which only enqueues: never waits, never throws). */
  #report(o: RecoveryOutcome, secrets: readonly string[]): void {
    if (!this.#events) return;
    for (const e of eventsFor(o)) this.#events.record(e, secrets);
  }

  /** Hooks the events and runs the start-up recovery in the background (Probe: not ready until done). */
  start(): void {
    this.#mounter.events.on((e) => this.#react(reactionTo(e, this.#reader !== undefined)));
    const done = this.#driver.beginStartupTask('recovery');
    void this.#startup().finally(() => {
      done();
      this.#schedule();
    });
  }

  #react(r: Reaction): void {
    if (this.#stopped) return;
    if (r.kind === 'repair') this.repairSoon(r.stagingPath, r.trigger, r.delayMs);
    else if (r.kind === 'scan') this.trigger(r.trigger);
    else if (r.kind === 'local-pass') {
      void this.#tasks.track(this.localPass(r.trigger))
        .catch((err: unknown) => this.#driver.log.error({ trigger: r.trigger, err: errorMessage(err) }, 'local recovery pass failed'))
        .finally(() => {
          if (r.thenScan) this.trigger(r.trigger);
        });
    }
  }

  /**
   * Stops triggering, aborts the repairs in progress (a half-done mount is undone, never left
   * unrecorded) and waits up to `waitMs` for them to finish undoing.
   */
  async stop(waitMs = 5000): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const t of this.#local.values()) clearTimeout(t);
    this.#local.clear();
    await this.#tasks.drain(0, waitMs);
    await this.#events?.close(Math.min(waitMs, 2000));
  }

  /** Queues a full scan (coalesced with one in progress). */
  trigger(trigger: Trigger): void {
    if (this.#stopped) return;
    if (this.#scanning) {
      this.#queued = true;
      return;
    }
    void this.scan(trigger).catch(() => undefined);
  }

  async #startup(): Promise<void> {
    const log = this.#driver.log;
    if (!this.#reader) {
      this.#driver.setWarning(WARNING, 'no Kubernetes API configured (not in a cluster, no --kubeconfig): repairs use on-disk records only');
      await this.localPass('startup');
      return;
    }
    let delay = 500;
    let localDone = false;
    while (!this.#stopped) {
      try {
        await this.scan('startup');
        return;
      } catch (err) {
        // Discovery itself failed (pods could not be listed): heal what local state allows, keep trying.
        log.warn({ err: errorMessage(err), retry_in_ms: delay }, 'start-up recovery cannot read the API; retrying');
        if (!localDone) {
          localDone = true;
          await this.localPass('startup').catch((e: unknown) => log.error({ err: errorMessage(e) }, 'local recovery pass failed'));
        }
        await sleep(delay + Math.floor(Math.random() * 200));
        delay = Math.min(delay * 2, MAX_BACKOFF_MS);
      }
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    const interval = this.#driver.config.recovery.intervalMs;
    if (interval <= 0) return;
    this.#timer = setTimeout(() => {
      void (this.#reader ? this.scan('interval').catch(() => this.localPass('interval')) : this.localPass('interval'))
        .catch(() => undefined)
        .then(() => this.#tasks.track(this.healSweep()))
        .catch((err: unknown) => this.#driver.log.error({ err: errorMessage(err) }, 'container heal sweep failed'))
        .finally(() => this.#schedule());
    }, interval);
    this.#timer.unref();
  }

  /**
   * One full scan. Throws when the pods of this node cannot be listed (nothing can be decided);
   * partial failures (one claim, one Secret) are reported as warnings and the rest proceeds.
   */
  async scan(trigger: Trigger): Promise<ScanSummary | undefined> {
    if (this.#scanning) {
      this.#queued = true;
      return this.#scanning;
    }
    const run = this.#tasks.track(this.#scanOnce(trigger));
    this.#scanning = run;
    try {
      return await run;
    } finally {
      this.#scanning = undefined;
      if (this.#queued && !this.#stopped) {
        this.#queued = false;
        this.trigger(trigger);
      }
    }
  }

  async #scanOnce(trigger: Trigger): Promise<ScanSummary | undefined> {
    const driver = this.#driver;
    const cfg = driver.config;
    const reader = this.#reader;
    if (!reader) return undefined;
    const started = Date.now();
    const endTimer = driver.metrics.recoveryDuration.startTimer();
    try {
      const view = await fetchClusterView(reader, { nodeName: cfg.nodeId, driverName: cfg.driverName, parallelism: Math.max(4, cfg.recovery.parallelism) });
      const desired = desiredState(view, { nodeName: cfg.nodeId, driverName: cfg.driverName, kubeletDir: cfg.kubeletDir });
      this.#refs = new Map(desired.volumes.map((v) => [v.volumeHandle, refsOf(v)]));
      const facts = await observeNode(this.#mounter, {
        kubeletDir: cfg.kubeletDir,
        driverName: cfg.driverName,
        stagingPaths: desired.volumes.map((v) => v.stagingPath),
        targetPaths: desired.volumes.flatMap((v) => v.targets.map((t) => t.path)),
        parallelism: Math.max(4, cfg.recovery.parallelism * 2),
      });
      const p = plan(desired, facts);
      for (const s of p.skipped) {
        if (s.warn) driver.log.warn({ subject: s.subject, reason: s.reason }, 'recovery skipped');
        else driver.log.debug({ subject: s.subject, reason: s.reason }, 'recovery skipped');
      }
      const report = await executePlan(p, { driver, mounter: this.#mounter, reader, signal: this.#tasks.signal, trigger, report: (o, s) => this.#report(o, s) });
      const forbidden = forbiddenErrors(view.failures).map((e) => e.message);
      const problems = [...forbidden, ...view.errors.filter((e) => !forbidden.includes(e)), ...report.problems];
      const unique = [...new Set(problems)];
      driver.setWarning(WARNING, unique.length ? unique.slice(0, 3).join('; ') + (unique.length > 3 ? ` (+${unique.length - 3} more)` : '') : undefined);
      const result = report.failed > 0 || unique.length > 0 ? 'partial' : 'ok';
      driver.metrics.recoveryRuns.inc({ trigger, result });
      const ms = Date.now() - started;
      driver.log.info({
        trigger, ms, volumes: desired.volumes.length, healthy: p.healthy.length, acted: p.volumes.length,
        repaired: report.repaired, failed: report.failed, orphans: p.orphans.length, api_calls: reader.calls,
      }, 'recovery scan done');
      return { trigger, plan: p, report, ms };
    } catch (err) {
      driver.metrics.recoveryRuns.inc({ trigger, result: 'error' });
      driver.setWarning(WARNING, errorMessage(err));
      throw err;
    } finally {
      endTimer();
    }
  }

  /** Repairs every recorded volume whose staging mount is dead from local state (no API). */
  async localPass(trigger: Trigger): Promise<number> {
    const driver = this.#driver;
    let repaired = 0;
    for (const rec of await this.#mounter.staged()) {
      const h = await this.#mounter.checkPath(rec.stagingPath);
      const supervised = (await this.#mounter.conditionOf(rec.stagingPath))?.abnormal === false;
      if (h.state === 'healthy' && supervised) continue;
      if (h.state === 'not-mounted' || h.state === 'missing') continue; // kubelet stages it again when needed
      if (await this.#repairOne(rec.stagingPath, trigger)) repaired++;
    }
    driver.metrics.recoveryRuns.inc({ trigger, result: 'local' });
    return repaired;
  }

  /**
   * Heals the containers that still show a dead mount of a healthy volume: each repair heals the
   * containers it finds, this catches the ones it could not (a container started while the repair
   * ran, a helper that timed out). Runs after every interval scan; finds nothing, changes nothing
   * on a healthy node. Returns how many containers it healed.
   */
  async healSweep(): Promise<number> {
    const driver = this.#driver;
    const records = await this.#mounter.staged();
    const history = new Map(records.map((r) => [r.stagingPath, r.devices ?? []]));
    const found = await volumesWithDeadCopies(driver, records.map((r) => ({ stagingPath: r.stagingPath, history: r.devices ?? [] })));
    let healed = 0;
    for (const rec of records.filter((r) => found.includes(r.stagingPath))) {
      if (this.#stopped) break;
      const started = Date.now();
      const heals = await this.#mounter.withVolumeLock(rec.volumeId, () => healContainers(driver, [rec.stagingPath], async (p) => history.get(p) ?? []));
      const n = heals.filter((h) => h.result === 'healed').length;
      healed += n;
      const refs = this.#refs.get(rec.volumeId);
      if (refs && n > 0) this.#report({ kind: 'recovered', volume: refs, pods: refs.pods, trigger: 'interval', ms: Date.now() - started, steps: { propagated: 0, targets: 0, containers: n } }, []);
      driver.log.info({ volume_id: rec.volumeId, staging_target_path: rec.stagingPath, healed: n }, 'container heal sweep: containers that still showed a dead mount');
    }
    return healed;
  }

  /** Local repair of one staging path, soon; retried with backoff while it fails. */
  repairSoon(stagingPath: string, trigger: Trigger, delayMs: number): void {
    if (this.#stopped || this.#local.has(stagingPath)) return;
    const t = setTimeout(() => {
      void this.#tasks.track(this.#repairOne(stagingPath, trigger)).then((ok) => {
        this.#local.delete(stagingPath);
        if (ok) {
          this.#localAttempts.delete(stagingPath);
          return;
        }
        const n = (this.#localAttempts.get(stagingPath) ?? 0) + 1;
        this.#localAttempts.set(stagingPath, n);
        if (n <= 20) this.repairSoon(stagingPath, trigger, Math.min(LOCAL_RETRY_MAX_MS, 500 * 2 ** n));
      });
    }, delayMs);
    t.unref();
    this.#local.set(stagingPath, t);
  }

  async #repairOne(stagingPath: string, trigger: Trigger): Promise<boolean> {
    const driver = this.#driver;
    const started = Date.now();
    let volumeId: string | undefined;
    try {
      const rec = await this.#mounter.recordOf(stagingPath);
      if (!rec) return true; // unstaged meanwhile: nothing to do
      volumeId = rec.volumeId;
      const r = await repairLocally(this.#mounter, driver.config, stagingPath, this.#tasks.signal);
      const heals = r.stage === 'repaired' ? await this.#mounter.withVolumeLock(rec.volumeId, () => healContainers(driver, [stagingPath], async (p) => (await this.#mounter.recordOf(p))?.devices ?? [])) : [];
      const steps: RecoverySteps = {
        stage: r.stage === 'repaired' || r.stage === 'mounted' ? r.stage : undefined,
        targets: r.targets.filter((t) => t.result === 'repaired').length,
        propagated: 0,
        containers: heals.filter((h) => h.result === 'healed').length,
      };
      const refs = this.#refs.get(rec.volumeId);
      if (refs && didRecover(steps)) this.#report({ kind: 'recovered', volume: refs, pods: refs.pods, trigger, ms: Date.now() - started, steps }, []);
      driver.metrics.recoveryActions.inc({ action: r.stage === 'repaired' ? 'repair' : r.stage, result: 'ok' });
      for (const t of r.targets) driver.metrics.recoveryActions.inc({ action: 'republish', result: t.result === 'error' ? 'error' : 'ok' });
      driver.log.info({ trigger, volume_id: rec.volumeId, staging_target_path: stagingPath, result: r.stage, targets: r.targets, ms: Date.now() - started }, 'local recovery done');
      return r.targets.every((t) => t.result !== 'error');
    } catch (err) {
      if (err instanceof LocalRecoveryError && this.#reader) {
        // Expected after a mounter pod is replaced (its in-memory passwd files went with it): not a
        // failure yet, the API scan repairs with the Secret, and counts the outcome.
        driver.log.info({ trigger, staging_target_path: stagingPath, reason: errorMessage(err) }, 'local recovery not possible; the API scan repairs');
        this.trigger(trigger);
        return true;
      }
      driver.metrics.recoveryActions.inc({ action: 'repair', result: 'error' });
      driver.log.error({ trigger, staging_target_path: stagingPath, err: errorMessage(err) }, 'local recovery failed');
      const refs = volumeId ? this.#refs.get(volumeId) : undefined;
      const problem = fixableProblem(err);
      if (refs && problem) {
        // The keys s3fs used, so the scrub can take them out of the message (S3's text never has them).
        const used = await this.#mounter.recordedCredentials(stagingPath).then((c) => [c.accessKeyId.reveal(), c.secretAccessKey.reveal()], () => []);
        this.#report({ kind: 'not-recovered', volume: refs, pods: refs.pods, trigger, problem, repaired: false }, used);
      }
      return false;
    }
  }
}
