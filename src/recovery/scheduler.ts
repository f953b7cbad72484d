// When recovery runs:
//   start-up   : a local pass (every recorded volume whose mount is dead, repaired from on-disk state,
//                no API call) starts at once; meanwhile the Kubernetes client loads and discovery
//                reads the API; then a full scan (observe -> plan -> execute) covers what local state
//                could not (targets, lost credentials, volumes never staged). Probe reports ready
//                when both are done; the CSI socket serves kubelet's calls all along (a call on a
//                volume being repaired waits for its volume lock). While the API server is
//                unreachable or RBAC denies a read, the driver stays live and not ready, and retries
//                the scan with backoff.
//   s3fs exit  : the dead volume is repaired from local state at once (no API call); if that is not
//                possible a full scan is queued.
//   dead mount : NodeGetVolumeStats found one (engine event 'dead-mount'): same as an s3fs exit.
//   mounter    : the separate mounter (re)connected: a local pass; a new mounter process (its s3fs
//                died with the old one) also gets a full scan (triggers.ts decides).
//   interval   : a full scan every --recovery-interval (also catches hung s3fs and lost targets).
// Scans never overlap: a trigger during a scan queues exactly one more.
// Every volume's outcome becomes Events on its Pods and PVC (outcome-events.ts decides, the recorder
// writes in the background); local repairs find those objects in what the last scan saw (the
// start-up local pass's wait for the first scan's discovery).
import { setTimeout as sleep } from 'node:timers/promises';
import { RunningTasks } from '../running.js';
import type { Driver } from '../driver.js';
import { errorMessage } from '../errors.js';
import type { KubeReader } from '../kube/reader.js';
import type { EventRecorder } from '../kube/events.js';
import type { MountEngine } from '../mount/index.js';
import { desiredState } from './cluster.js';
import { fetchClusterView, forbiddenErrors } from './discovery.js';
import { type ExecutionReport, executePlan } from './executor.js';
import { healContainers, healedPer, volumesWithDeadCopies } from './heal-containers.js';
import { LocalRecoveryError, repairLocally } from './local.js';
import { observeNode } from './observe.js';
import { type RecoveryOutcome, type RecoverySteps, type VolumeRefs, didRecover, eventsFor, fixableProblem, refsOf } from './outcome-events.js';
import { type Plan, plan } from './planner.js';
import { mapSettled } from './pool.js';
import { type Reaction, type Trigger, reactionTo } from './triggers.js';

export type { Trigger };

export interface ScanSummary {
  trigger: Trigger;
  plan: Plan;
  report: ExecutionReport;
  ms: number;
}

/** What recovery reaches the API with, once loaded (@kubernetes/client-node is loaded with it). */
export interface KubeAccess {
  reader: KubeReader;
  /** Events of recovery outcomes; undefined when they are off or cannot be written. */
  events?: EventRecorder;
}

/** Repairs of one local pass whose containers are healed in one pass after them (#repairOne). */
interface HealLater {
  stagings: string[];
  /** Each repair's Events, given the containers healed per staging path. */
  reports: Array<(healed: ReadonlyMap<string, number>) => void>;
}

const WARNING = 'recovery';
const MAX_BACKOFF_MS = 5000;
const LOCAL_RETRY_MAX_MS = 30_000;

export class Recovery {
  readonly #driver: Driver;
  readonly #mounter: MountEngine;
  /** Loads the Kubernetes client and the Event recorder (undefined: no API configured). */
  readonly #loadAccess: (() => Promise<KubeAccess | undefined>) | undefined;
  #reader: KubeReader | undefined;
  #events: EventRecorder | undefined;
  /** volume handle -> its claim and pods, as the last full scan saw them (for local repairs' Events). */
  #refs = new Map<string, VolumeRefs>();
  /** Local repairs' Events waiting for the first scan's discovery to say whose they are (start-up). */
  #awaitingRefs: Array<() => void> | undefined = [];
  /** Until the start-up recovery is done (its scan follows the local pass: events need no scan of their own). */
  #startingUp = true;
  #localRun: Promise<number> | undefined;
  #localQueued: Promise<number> | undefined;
  #stopped = false;
  #scanning: Promise<ScanSummary | undefined> | undefined;
  #queued = false;
  #timer: NodeJS.Timeout | undefined;
  /** staging path -> pending local repair timer */
  readonly #local = new Map<string, NodeJS.Timeout>();
  readonly #localAttempts = new Map<string, number>();
  /** Scans and local repairs in progress: stop() aborts them and waits (bounded) for their undo. */
  readonly #tasks = new RunningTasks();

  constructor(driver: Driver, mounter: MountEngine, access: (() => Promise<KubeAccess | undefined>) | undefined) {
    this.#driver = driver;
    this.#mounter = mounter;
    this.#loadAccess = access;
  }

  /** An API is configured and (once loaded) usable. */
  get #hasApi(): boolean {
    return this.#loadAccess !== undefined && (this.#reader !== undefined || this.#startingUp);
  }

  /** Hands an outcome's Events to the recorder (which only enqueues: never waits, never throws). */
  #report(o: RecoveryOutcome, secrets: readonly string[]): void {
    if (!this.#events) return;
    for (const e of eventsFor(o)) this.#events.record(e, secrets);
  }

  /**
   * A local repair's Events, for the claim and pods the last scan saw using `volumeId`. Before the
   * first scan's discovery (the start-up local pass runs while it reads the API) they wait for it.
   */
  #reportLocal(volumeId: string, send: (refs: VolumeRefs) => void): void {
    const go = (): void => {
      const refs = this.#refs.get(volumeId);
      if (refs) send(refs);
    };
    if (this.#awaitingRefs) this.#awaitingRefs.push(go);
    else go();
  }

  /**
   * Hooks the events and runs the start-up recovery in the background (Probe: not ready until done).
   * `served`: resolves once every gRPC service answers (see #startup).
   */
  start(served: Promise<void> = Promise.resolve()): void {
    this.#mounter.events.on((e) => this.#react(reactionTo(e, this.#hasApi)));
    const done = this.#driver.beginStartupTask('recovery');
    void this.#startup(served).finally(() => {
      this.#startingUp = false;
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

  async #startup(served: Promise<void>): Promise<void> {
    const log = this.#driver.log;
    // Local state first: it needs no API. Loading the API client, then discovery, hold this event loop
    // for a second or more (the client is the largest module the driver loads, and it deserializes
    // every object it reads): they start once every gRPC service answers (kubelet's calls are not held
    // up behind them while the services load) and every local repair has ended. Overlapping them with
    // the repairs measured slower, on two cores: repairs that had finished waited behind the load to
    // be seen, and the next ones to be sent (docs/bench.md).
    const local = this.localPass('startup').catch((e: unknown) => {
      log.error({ err: errorMessage(e) }, 'local recovery pass failed');
      return 0;
    });
    await Promise.all([served, local]);
    const access = await this.#loadAccess?.();
    this.#reader = access?.reader;
    this.#events = access?.events;
    if (!this.#reader) {
      this.#awaitingRefs = undefined; // no scan will ever name the objects: no Events
      this.#driver.setWarning(WARNING, 'no Kubernetes API configured (not in a cluster, no --kubeconfig): repairs use on-disk records only');
      await local;
      return;
    }
    let delay = 500;
    while (!this.#stopped) {
      try {
        await this.scan('startup', local);
        return;
      } catch (err) {
        // Discovery itself failed (pods could not be listed): the local pass goes on; keep trying.
        log.warn({ err: errorMessage(err), retry_in_ms: delay }, 'start-up recovery cannot read the API; retrying');
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
  async scan(trigger: Trigger, after?: Promise<unknown>): Promise<ScanSummary | undefined> {
    if (this.#scanning) {
      this.#queued = true;
      return this.#scanning;
    }
    const run = this.#tasks.track(this.#scanOnce(trigger, after));
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

  /** `after`: work whose repairs the observation must see (the start-up local pass); awaited after discovery. */
  async #scanOnce(trigger: Trigger, after?: Promise<unknown>): Promise<ScanSummary | undefined> {
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
      const waiting = this.#awaitingRefs ?? [];
      this.#awaitingRefs = undefined;
      for (const go of waiting) go();
      await after;
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

  /**
   * Repairs every recorded volume whose staging mount is dead from local state (no API). A pass asked
   * for while one runs is queued (at most one), like scans.
   */
  localPass(trigger: Trigger): Promise<number> {
    if (this.#localRun) {
      this.#localQueued ??= this.#localRun.catch(() => 0).then(() => {
        this.#localQueued = undefined;
        return this.localPass(trigger);
      });
      return this.#localQueued;
    }
    const run = this.#tasks.track(this.#localPassOnce(trigger)).finally(() => {
      if (this.#localRun === run) this.#localRun = undefined;
    });
    this.#localRun = run;
    return run;
  }

  /**
   * One local pass: every record's staging path checked at once (one statfs child per batch), the
   * dead ones repaired --recovery-parallelism at a time, then one container-heal pass for all of them
   * (a /proc scan per pass, not per volume).
   */
  async #localPassOnce(trigger: Trigger): Promise<number> {
    const driver = this.#driver;
    const started = Date.now();
    const records = await this.#mounter.staged();
    const health = await this.#mounter.checkPaths(records.map((r) => r.stagingPath));
    const verdicts = await Promise.all(records.map(async (rec): Promise<string | undefined> => {
      const h = health.get(rec.stagingPath);
      if (h?.state === 'not-mounted' || h?.state === 'missing') return undefined; // kubelet stages it again when needed
      if (h?.state === 'healthy' && (await this.#mounter.conditionOf(rec.stagingPath))?.abnormal === false) return undefined;
      return rec.stagingPath;
    }));
    const todo = verdicts.filter((p): p is string => p !== undefined);
    const later: HealLater = { stagings: [], reports: [] };
    const results = await mapSettled(todo, driver.config.recovery.parallelism, (p) => this.#repairOne(p, trigger, later));
    const heals = later.stagings.length > 0 ? await healContainers(driver, later.stagings, async (p) => (await this.#mounter.recordOf(p))?.devices ?? []) : [];
    const healed = healedPer(later.stagings, heals);
    for (const r of later.reports) r(healed);
    driver.metrics.recoveryRuns.inc({ trigger, result: 'local' });
    const repaired = results.filter((r) => r.status === 'fulfilled' && r.value).length;
    if (todo.length > 0) driver.log.info({ trigger, records: records.length, dead: todo.length, repaired, ms: Date.now() - started }, 'local recovery pass done');
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
    const found = await volumesWithDeadCopies(driver, records.map((r) => ({ stagingPath: r.stagingPath, history: history.get(r.stagingPath) ?? [] })));
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

  /**
   * `later`: the caller heals containers in one pass for many repairs: the repaired staging path is
   * collected for it instead of healed now, and the Events wait for that pass's count.
   */
  async #repairOne(stagingPath: string, trigger: Trigger, later?: HealLater): Promise<boolean> {
    const driver = this.#driver;
    const started = Date.now();
    let volumeId: string | undefined;
    try {
      const rec = await this.#mounter.recordOf(stagingPath);
      if (!rec) return true; // unstaged meanwhile: nothing to do
      volumeId = rec.volumeId;
      const r = await repairLocally(this.#mounter, driver.config, stagingPath, this.#tasks.signal);
      if (r.stage === 'repaired' && later) later.stagings.push(stagingPath);
      const heals = r.stage === 'repaired' && !later ? await this.#mounter.withVolumeLock(rec.volumeId, () => healContainers(driver, [stagingPath], async (p) => (await this.#mounter.recordOf(p))?.devices ?? [])) : [];
      const steps: RecoverySteps = {
        stage: r.stage === 'repaired' || r.stage === 'mounted' ? r.stage : undefined,
        targets: r.targets.filter((t) => t.result === 'repaired').length,
        propagated: 0,
        containers: heals.filter((h) => h.result === 'healed').length,
      };
      const ms = Date.now() - started;
      const send = (healed: number): void => {
        steps.containers += healed;
        if (didRecover(steps)) this.#reportLocal(rec.volumeId, (refs) => this.#report({ kind: 'recovered', volume: refs, pods: refs.pods, trigger, ms, steps }, []));
      };
      if (later) later.reports.push((healed) => send(healed.get(stagingPath) ?? 0));
      else send(0);
      driver.metrics.recoveryActions.inc({ action: r.stage === 'repaired' ? 'repair' : r.stage, result: 'ok' });
      for (const t of r.targets) driver.metrics.recoveryActions.inc({ action: 'republish', result: t.result === 'error' ? 'error' : 'ok' });
      driver.log.info({ trigger, volume_id: rec.volumeId, staging_target_path: stagingPath, result: r.stage, targets: r.targets, ...(r.live.length > 0 ? { left_live: r.live } : {}), ms: Date.now() - started }, 'local recovery done');
      return r.targets.every((t) => t.result !== 'error');
    } catch (err) {
      if (err instanceof LocalRecoveryError && this.#hasApi) {
        // Expected after a mounter pod is replaced (its in-memory passwd files went with it): not a
        // failure yet, the API scan repairs with the Secret, and counts the outcome. At start-up
        // that scan follows the local pass anyway.
        driver.log.info({ trigger, staging_target_path: stagingPath, reason: errorMessage(err) }, 'local recovery not possible; the API scan repairs');
        if (!this.#startingUp) this.trigger(trigger);
        return true;
      }
      driver.metrics.recoveryActions.inc({ action: 'repair', result: 'error' });
      driver.log.error({ trigger, staging_target_path: stagingPath, err: errorMessage(err) }, 'local recovery failed');
      const problem = fixableProblem(err);
      if (volumeId && problem) {
        // The keys s3fs used, so the scrub can take them out of the message (S3's text never has them).
        const used = await this.#mounter.recordedCredentials(stagingPath).then((c) => [c.accessKeyId.reveal(), c.secretAccessKey.reveal()], () => []);
        this.#reportLocal(volumeId, (refs) => this.#report({ kind: 'not-recovered', volume: refs, pods: refs.pods, trigger, problem, repaired: false }, used));
      }
      return false;
    }
  }
}
