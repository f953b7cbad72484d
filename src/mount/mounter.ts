// The node's mount engine: stage = s3fs on a fresh driver-owned backing directory + a bind of it on
// the staging path; publish = a bind of the staging path (through a slave "view" of it) on the target.
// Every operation decides from the mount table, the on-disk records and one S3 request, so it does
// the right thing after a driver restart, and repairs by stacking a bind over a dead mount (see
// docs/node.md and docs/kernel.md for the kernel behaviour this relies on).
import { EventEmitter } from 'node:events';
import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Driver } from '../driver.js';
import { CsiError, aborted, alreadyExists, deadlineExceeded, failedPrecondition, internal } from '../errors.js';
import { faultPoint } from '../faults.js';
import { KeyedMutex } from '../locks.js';
import { checkFuseDevice } from './prerequisites.js';
import { type BucketAccess, checkBucketAccess } from './bucket-check.js';
import { type EngineEvent, EventChannel, type MountEngine, type RecordedCredentials, type VolumeCondition } from './engine.js';
import { type PathHealth, checkPath, checkPaths } from './health.js';
import { type MountEntry, isReadOnly, layersAt, mountsUnder, readMountTable } from './mountinfo.js';
import { bindMount, detach, unmountTop } from './ops.js';
import { statfsOfOwnMount } from './readiness.js';
import { readPasswdFile, removePasswdFile, writePasswdFile } from './passwd.js';
import { type StagedRecord, backingDirsOf, backingRoot, listRecords, readRecord, removeRecord, viewPath, writeRecord } from './records.js';
import { S3fsProcess, findS3fsPids, s3fsPidsWhere } from './s3fs-process.js';
import { spawner } from './spawner.js';
import { type StageSpec, s3fsArgs, stageFingerprint, stagingKey } from './spec.js';

export interface S3fsExitEvent {
  volumeId: string;
  stagingPath: string;
  backingDir: string;
  pid: number;
  code: number | null;
  signal: string | null;
  stderr: string[];
}

export type StageResult = 'mounted' | 'adopted' | 'repaired' | 'unchanged';
export type PublishResult = 'mounted' | 'repaired' | 'unchanged';

interface Supervised {
  proc: S3fsProcess;
  volumeId: string;
  stagingPath: string;
  backingDir: string;
}

/** Hard cap of unmounts of one path: far above what the driver ever stacks (2), so hitting it means something else keeps mounting there. */
const MAX_UNMOUNTS = 256;
/** Devices remembered per staging path (see StagedRecord.devices). */
const MAX_DEVICES = 64;
/**
 * Mount-table polling while s3fs starts: every 2 ms for the first 100 ms (s3fs mounts within tens of
 * ms; concurrent stages share each read, see readMountTable), then doubling up to 16 ms.
 */
const POLL_FAST_MS = 2;
const POLL_FAST_FOR_MS = 100;
const POLL_MAX_MS = 16;

export class Mounter extends EventEmitter implements MountEngine {
  /** The typed form of this mounter's events (MountEngine); 's3fs-exit' is bridged in the constructor. */
  readonly events = new EventChannel<EngineEvent>();
  readonly #locks = new KeyedMutex();
  /** key -> the s3fs serving the staging path of that key now. */
  readonly #procs = new Map<string, Supervised>();
  /** key -> why the volume is abnormal (its s3fs exited); cleared by a successful (re)stage. */
  readonly #abnormal = new Map<string, string>();

  constructor(private readonly driver: Driver) {
    super();
    this.on('s3fs-exit', (e: S3fsExitEvent) => this.events.emit({ kind: 's3fs-exit', ...e }));
  }

  /**
   * Starts the process starter s3fs goes through (spawner.ts) now rather than on the first
   * NodeStageVolume. Called once the process serves its socket: a process start earlier would delay
   * the socket. A helper that cannot be started is reported by readiness and by the stage that needs it.
   */
  warmUp(): void {
    void spawner.warmUp().catch((err: unknown) => this.driver.log.warn({ err: String(err) }, 'cannot start the process starter yet'));
  }

  get #cfg() {
    return this.driver.config;
  }

  withVolumeLock<T>(volumeId: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.#locks.run(volumeId, fn, signal);
  }

  checkPath(path: string, table?: readonly MountEntry[]): Promise<PathHealth> {
    return checkPath(path, this.#cfg.mountCheckTimeoutMs, table);
  }

  checkPaths(paths: readonly string[], table?: readonly MountEntry[]): Promise<Map<string, PathHealth>> {
    return checkPaths(paths, this.#cfg.mountCheckTimeoutMs, table);
  }

  staged(): Promise<StagedRecord[]> {
    return listRecords(this.#cfg.stateDir);
  }

  recordOf(stagingPath: string): Promise<StagedRecord | undefined> {
    return readRecord(this.#cfg.stateDir, stagingKey(stagingPath));
  }

  /** What supervision knows: abnormal when the volume's s3fs exited unexpectedly. */
  volumeCondition(stagingPath: string): { abnormal: boolean; message: string } | undefined {
    const key = stagingKey(stagingPath);
    const why = this.#abnormal.get(key);
    if (why) return { abnormal: true, message: why };
    const sup = this.#procs.get(key);
    return sup?.proc.running ? { abnormal: false, message: 'ok' } : undefined;
  }

  async conditionOf(stagingPath: string): Promise<VolumeCondition | undefined> {
    return this.volumeCondition(stagingPath);
  }

  recordedCredentials(stagingPath: string): Promise<RecordedCredentials> {
    return readPasswdFile(this.#cfg.runtimeDir, stagingKey(stagingPath));
  }

  async ensureStaged(spec: StageSpec, signal?: AbortSignal): Promise<StageResult> {
    const key = stagingKey(spec.stagingPath);
    const fingerprint = stageFingerprint(spec);
    const record = await readRecord(this.#cfg.stateDir, key);
    const table = await readMountTable();
    let layers = layersAt(table, spec.stagingPath);
    if (layers.length > 0 && !record && (await this.#interruptedStage(key, table, layers))) {
      // Killed between the bind and the record: our own bind, not someone else's mount. Start over.
      await this.#unmountAll(spec.stagingPath);
      layers = [];
    }

    if (layers.length > 0) {
      if (!record) throw alreadyExists(`${spec.stagingPath} already has a mount the driver did not make`);
      if (record.volumeId !== spec.volumeId) throw alreadyExists(`${spec.stagingPath} is staged for volume ${record.volumeId}`);
      // The mount group is the first stage's: a second pod with another fsGroup shares the mount
      // (with a group the mount grants access through its "other" bits, see s3fsOptions), it does
      // not get a second one. Anything else that differs is a conflict.
      if (record.fingerprint !== stageFingerprint({ ...spec, mountGroup: record.mountGroup })) {
        throw alreadyExists(`volume ${spec.volumeId} is already staged at ${spec.stagingPath} with other options`);
      }
      if ((record.mountGroup ?? '') !== (spec.mountGroup ?? '')) {
        this.driver.log.info({ volume_id: spec.volumeId, staged_group: record.mountGroup ?? '', requested_group: spec.mountGroup ?? '' }, 'volume already staged with another mount group; sharing it');
      }
      const health = await this.checkPath(spec.stagingPath, table);
      if (health.state === 'healthy') {
        const sup = this.#procs.get(key);
        if (sup?.proc.running) return 'unchanged';
        // Staged by an earlier driver process whose s3fs survived: supervise it from now on.
        const pids = await findS3fsPids(record.backingDir);
        if (pids[0] !== undefined) this.#supervise(key, record, S3fsProcess.adopt(pids[0]));
        this.#abnormal.delete(key);
        this.#updateGauge();
        return 'adopted';
      }
      this.driver.log.warn({ volume_id: spec.volumeId, staging_target_path: spec.stagingPath, state: health.state, reason: health.message }, 'repairing stale staging mount');
      // A hung s3fs will not act on SIGTERM in time; its mount is being replaced anyway. A stale
      // (ENOTCONN) mount has no s3fs any more: the kernel says so only once the daemon closed
      // /dev/fuse. No /proc scan for strays then (a scan reads every process's argv: on a busy node
      // it took most of a repair's time); an older backing dir's s3fs ends when its mount is taken off below.
      await this.#retireProcess(key, health.state === 'hung' ? 0 : undefined, health.state !== 'stale');
      // Bounded depth: the bottom layer stays (every target bound before the first repair, and every
      // HostToContainer container of those, is a copy of it: a mount stacked on it reaches them all);
      // earlier repair layers above it are dead too and go, their unmount propagating to the same copies.
      await this.#unmountAbove(spec.stagingPath, 1);
      const backingDir = await this.#startS3fs(spec, key, signal, { to: spec.stagingPath });
      await writeRecord(this.#cfg.stateDir, { ...this.#recordFrom(spec, key, fingerprint, backingDir), stagedAt: record.stagedAt, devices: await this.#devicesAfterBind(spec.stagingPath, record.devices) });
      await this.#removeOldBackingDirs(key, backingDir);
      return 'repaired';
    }

    // Nothing mounted: whatever the record says is history (e.g. the node rebooted).
    await this.#retireProcess(key);
    await this.#removeOldBackingDirs(key, undefined);
    await mkdir(spec.stagingPath, { recursive: true, mode: 0o750 });
    const backingDir = await this.#startS3fs(spec, key, signal, { to: spec.stagingPath, before: () => faultPoint('stage-after-s3fs', signal) });
    await faultPoint('stage-after-bind', signal);
    await writeRecord(this.#cfg.stateDir, { ...this.#recordFrom(spec, key, fingerprint, backingDir), devices: await this.#devicesAfterBind(spec.stagingPath, undefined) });
    return 'mounted';
  }

  /**
   * Binds the staging path on `target` through the volume's view (`<state-dir>/views/<key>`, a slave
   * bind of the staging path). A target bound from the view is a slave of the staging mount's peer
   * group: a repair stacked on the staging path still reaches it (and every HostToContainer container
   * made from it), but an unmount on the target no longer travels back to the staging path and the
   * other targets. Bound straight from the staging path, the target would be its peer, and one pod's
   * NodeUnpublishVolume would take the repair away from every other pod (verified, docs/kernel.md).
   */
  async ensurePublished(target: string, staging: string, readonly: boolean): Promise<PublishResult> {
    const table = await readMountTable();
    const stagingLayers = layersAt(table, staging);
    const stagingTop = stagingLayers[stagingLayers.length - 1];
    if (!stagingTop) throw failedPrecondition(`nothing is staged at ${staging}`);
    const key = stagingKey(staging);
    const targetLayers = layersAt(table, target);
    const top = targetLayers[targetLayers.length - 1];
    if (!top) {
      const view = await this.#ensureView(key, staging, stagingTop, table);
      await mkdir(target, { recursive: true, mode: 0o750 });
      await faultPoint('publish-after-mkdir');
      await bindMount(view, target, readonly);
      await faultPoint('publish-after-bind');
      return 'mounted';
    }
    // Every device this volume was ever served by on this node (dead layers included).
    const record = await readRecord(this.#cfg.stateDir, key);
    const devices = new Set([...stagingLayers.map((m) => m.device), ...(record?.devices ?? [])]);
    if (!devices.has(top.device)) throw alreadyExists(`${target} is already mounted from something other than ${staging}`);
    const stagedRo = isReadOnly(stagingTop);
    if (readonly && !isReadOnly(top)) throw alreadyExists(`${target} is already published read-write`);
    if (!readonly && isReadOnly(top) && !stagedRo) throw alreadyExists(`${target} is already published read-only`);
    if (top.device === stagingTop.device) return 'unchanged';
    // The target still shows an older (dead) s3fs: it did not receive the repair (private propagation,
    // or bound from an earlier repair layer). Keep its bottom layer (the pod's containers are copies
    // of it), drop dead repair layers above it, and stack the healthy mount: depth stays at most 2.
    const view = await this.#ensureView(key, staging, stagingTop, table);
    await this.#unmountAbove(target, 1);
    await bindMount(view, target, readonly);
    return 'repaired';
  }

  async unpublish(target: string): Promise<void> {
    await this.#unmountAll(target);
    try {
      await rmdir(target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'ENOTDIR') throw failedPrecondition(`${target} is not mounted by the driver and is not an empty directory (${code}); refusing to delete it`);
      if (code !== 'ENOENT') throw internal(`cannot remove ${target}: ${code ?? (err as Error).message}`);
    }
  }

  async unstage(staging: string): Promise<void> {
    const key = stagingKey(staging);
    const view = viewPath(this.#cfg.stateDir, key);
    await this.#unmountAll(view);
    await rmdir(view).catch(() => undefined);
    await this.#unmountAll(staging);
    await this.#retireProcess(key);
    await this.#removeOldBackingDirs(key, undefined);
    await removePasswdFile(this.#cfg.runtimeDir, key);
    await removeRecord(this.#cfg.stateDir, key);
    this.#abnormal.delete(key);
    this.#updateGauge();
  }

  /**
   * For the owner of the s3fs processes when it is really going away (in-process node mode: the
   * driver's SIGTERM): stops every supervised s3fs so that what was written gets uploaded. Measured
   * with s3fs 1.90: SIGTERM alone loses the data of files still open for writing (s3fs dies by
   * SIGABRT without uploading them); detaching its backing mount first (MNT_DETACH: the staging and
   * target binds stay, so a later repair can stack on them) and then SIGTERM makes s3fs upload them
   * before it exits. SIGKILL after `graceMs`. The mounts it served are dead afterwards (ENOTCONN) and
   * are repaired by the next stage or recovery.
   */
  async shutdown(graceMs: number): Promise<void> {
    const all = [...this.#procs.entries()];
    if (all.length > 0) this.driver.log.info({ s3fs: all.length, grace_ms: graceMs }, 'stopping s3fs processes (backing mount detached first, so each uploads what it holds)');
    await Promise.all(all.map(async ([key, sup]) => {
      sup.proc.markExpected();
      await detach(sup.backingDir).catch((err: Error) => this.driver.log.warn({ dir: sup.backingDir, err: err.message }, 'cannot detach backing mount'));
      await sup.proc.stop(graceMs);
      this.#procs.delete(key);
      this.driver.log.info({ volume_id: sup.volumeId, pid: sup.proc.pid }, 's3fs stopped for shutdown');
    }));
    this.#updateGauge();
  }

  // --- internals ---------------------------------------------------------------------------

  #recordFrom(spec: StageSpec, key: string, fingerprint: string, backingDir: string): StagedRecord {
    return {
      volumeId: spec.volumeId, stagingPath: spec.stagingPath, key, bucket: spec.bucket, prefix: spec.prefix,
      endpoint: spec.endpoint, region: spec.region, userOptions: spec.userOptions, readonly: spec.readonly,
      mountGroup: spec.mountGroup, fingerprint, backingDir, stagedAt: new Date().toISOString(),
    };
  }

  /** Every layer on the staging path is a bind of one of this key's backing mounts: a stage cut short before its record. */
  async #interruptedStage(key: string, table: readonly MountEntry[], layers: readonly MountEntry[]): Promise<boolean> {
    const ours = new Set<string>();
    for (const { dir } of await backingDirsOf(this.#cfg.stateDir, key)) for (const m of layersAt(table, dir)) ours.add(m.device);
    return ours.size > 0 && layers.every((l) => ours.has(l.device));
  }

  /** Unmounts every layer on `path` until the mount table shows none (hard cap MAX_UNMOUNTS). */
  async #unmountAll(path: string): Promise<void> {
    await this.#unmountAbove(path, 0);
  }

  /** Unmounts the top layer of `path` until at most `keep` are left (hard cap MAX_UNMOUNTS). */
  async #unmountAbove(path: string, keep: number): Promise<void> {
    for (let i = 0; i <= MAX_UNMOUNTS; i++) {
      const layers = layersAt(await readMountTable(), path);
      if (layers.length <= keep) return;
      await unmountTop(path);
    }
    const left = layersAt(await readMountTable(), path).length;
    throw internal(`${path} still has ${left} stacked mounts after ${MAX_UNMOUNTS} unmounts: something keeps mounting there`);
  }

  /** The volume's view, rebuilt when it does not show what the staging path shows (first publish, or a repair that did not reach it). */
  async #ensureView(key: string, staging: string, stagingTop: MountEntry, table: readonly MountEntry[]): Promise<string> {
    const view = viewPath(this.#cfg.stateDir, key);
    const layers = layersAt(table, view);
    if (layers[layers.length - 1]?.device === stagingTop.device) return view;
    await this.#unmountAll(view);
    await mkdir(view, { recursive: true, mode: 0o700 });
    await bindMount(staging, view, false, true);
    return view;
  }

  /** `previous` plus the device now on top of `staging`, newest last, bounded. */
  async #devicesAfterBind(staging: string, previous: readonly string[] | undefined): Promise<string[]> {
    const layers = layersAt(await readMountTable(), staging);
    const now = layers.map((l) => l.device);
    const merged = [...(previous ?? []).filter((d) => !now.includes(d)), ...now];
    return merged.slice(-MAX_DEVICES);
  }

  /**
   * Starts s3fs on a fresh backing dir and waits until it serves; on failure leaves nothing behind.
   * `bind`: also binds the backing mount on `bind.to`, as soon as it is in the mount table, while the
   * readiness check (statfs, S3's answer) runs: the two process starts overlap instead of adding up.
   * A bind made for an s3fs that then turns out unusable is taken off again.
   */
  async #startS3fs(spec: StageSpec, key: string, signal?: AbortSignal, bind?: { to: string; before?: () => Promise<void> }): Promise<string> {
    const root = backingRoot(this.#cfg.stateDir);
    await mkdir(root, { recursive: true, mode: 0o700 });
    const existing = await backingDirsOf(this.#cfg.stateDir, key);
    const backingDir = join(root, `${key}-${(existing[existing.length - 1]?.n ?? 0) + 1}`);
    await mkdir(backingDir, { mode: 0o750 });
    const passwd = await writePasswdFile(this.#cfg.runtimeDir, key, spec.credentials.accessKeyId, spec.credentials.secretAccessKey);
    const secrets = [spec.credentials.accessKeyId.reveal(), spec.credentials.secretAccessKey.reveal()].filter((s) => s.length >= 4);
    // The S3 request runs while s3fs starts: it costs no time on success and decides the code on failure.
    const access = checkBucketAccess(spec, Math.min(this.#cfg.mountTimeoutMs, 10_000), signal);
    const proc = await S3fsProcess.start(this.#cfg.s3fsPath, s3fsArgs(spec, backingDir, passwd), this.driver.log, secrets);
    let bound: Promise<true | Error> | undefined;
    const onMounted = bind
      ? (): void => {
        bound = (async () => {
          await bind.before?.();
          await bindMount(backingDir, bind.to);
          return true as const;
        })().catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
      }
      : undefined;
    const undo = async (): Promise<void> => {
      await proc.stop(500);
      await this.#unmountAll(backingDir).catch(() => undefined);
      await rmdir(backingDir).catch(() => undefined);
      await removePasswdFile(this.#cfg.runtimeDir, key);
    };
    try {
      await this.#waitReady(proc, backingDir, access, signal, onMounted);
    } catch (err) {
      // s3fs first: a bind still waiting for its init then fails at once. A bind that was made is
      // the top layer of bind.to (the volume lock is held): take it off again.
      await proc.stop(500);
      if (bind && (await bound) === true) await unmountTop(bind.to).catch(() => undefined);
      await undo();
      throw err;
    }
    const b = await bound;
    if (b instanceof Error) {
      await undo();
      throw internal(b.message);
    }
    this.#supervise(key, { volumeId: spec.volumeId, stagingPath: spec.stagingPath, backingDir }, proc);
    this.#abnormal.delete(key);
    this.#updateGauge();
    return backingDir;
  }

  /**
   * Ready = S3 accepted the volume's keys for its bucket/prefix, the FUSE mount is in the mount table,
   * and it answers statfs (which waits for s3fs's init). No settle time: s3fs 1.90 mounts first and
   * exits after a failed bucket/credential check, but that check asks S3 what the driver's own
   * request already asked. The mount table is re-read every 2 ms (POLL_*), and every wait also ends
   * at once when s3fs exits or S3 answers. `onMounted` runs as soon as the mount is in the table,
   * before the statfs (the caller's bind overlaps it).
   */
  async #waitReady(proc: S3fsProcess, backingDir: string, access: Promise<BucketAccess>, signal?: AbortSignal, onMounted?: () => void): Promise<void> {
    const deadline = Date.now() + this.#cfg.mountTimeoutMs;
    let verdict: BucketAccess | undefined;
    void access.then((v) => (verdict = v));
    const refusal = (): CsiError | undefined => (verdict && !verdict.ok ? withTail(verdict.error, proc) : undefined);
    const failed = async (what: string): Promise<CsiError> => {
      const v = await access;
      if (!v.ok) return withTail(v.error, proc);
      // s3fs's own words for the message (the pipe closes when it exits); the code comes from facts.
      await Promise.race([proc.exited, sleep(500)]);
      return await s3fsFailure(what, proc);
    };
    const started = Date.now();
    for (let wait = POLL_FAST_MS; ; wait = Date.now() - started < POLL_FAST_FOR_MS ? POLL_FAST_MS : Math.min(wait * 2, POLL_MAX_MS)) {
      const refused = refusal();
      if (refused) throw refused;
      if (!proc.running) throw await failed('s3fs exited before mounting');
      // The caller gave up (deadline or cancel): say so, whatever s3fs printed meanwhile.
      if (signal?.aborted) throw gaveUp(proc);
      const table = await readMountTable();
      if (layersAt(table, backingDir).some((m) => m.fsType.startsWith('fuse'))) break;
      if (Date.now() > deadline) throw deadlineExceeded(`s3fs did not mount within ${this.#cfg.mountTimeoutMs} ms${tail(proc.lines)}`);
      await Promise.race([sleep(wait), proc.exited, access]);
    }
    onMounted?.();
    // statfs waits for s3fs's init, which may take long against a dead endpoint: a refusal from S3 or a
    // caller that gives up meanwhile (deadline, cancel, driver shutdown) ends the wait at once. It runs
    // in this process (readiness.ts): every answer but `healthy` ends in the caller's proc.stop, which
    // is what that module's contract asks.
    const stopProbe = new AbortController();
    const probeSignal = signal ? AbortSignal.any([signal, stopProbe.signal]) : stopProbe.signal;
    void access.then((v) => v.ok || stopProbe.abort());
    const health = await statfsOfOwnMount(backingDir, Math.max(1000, deadline - Date.now()), probeSignal);
    if (signal?.aborted) throw gaveUp(proc);
    const refused = refusal();
    if (refused) throw refused;
    if (health.state !== 'healthy') throw await failed(`s3fs mount is not usable (${health.state})`);
    const v = await access;
    if (!v.ok) throw withTail(v.error, proc);
    if (!proc.running) throw await failed('s3fs exited after mounting');
  }


  #supervise(key: string, where: { volumeId: string; stagingPath: string; backingDir: string }, proc: S3fsProcess): void {
    const sup: Supervised = { proc, ...where };
    this.#procs.set(key, sup);
    void proc.exited.then((exit) => {
      if (this.#procs.get(key) === sup) this.#procs.delete(key);
      if (exit.expected) return;
      const last = exit.stderr.slice(-5);
      const message = `s3fs (pid ${proc.pid}) exited unexpectedly (${exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`})${last.length ? `: ${last[last.length - 1]}` : ''}`;
      this.#abnormal.set(key, message);
      this.driver.metrics.s3fsExits.inc();
      this.driver.log.error({ volume_id: where.volumeId, staging_target_path: where.stagingPath, pid: proc.pid, code: exit.code, signal: exit.signal, stderr: last }, 's3fs exited unexpectedly');
      this.#updateGauge();
      const event: S3fsExitEvent = { ...where, pid: proc.pid, code: exit.code, signal: exit.signal, stderr: exit.stderr };
      this.emit('s3fs-exit', event);
    });
  }

  /** Stops the supervised s3fs of `key` (if any) and, with `strays`, any other s3fs on its backing dirs. */
  async #retireProcess(key: string, graceMs?: number, strays = true): Promise<void> {
    const sup = this.#procs.get(key);
    this.#procs.delete(key);
    if (sup) await sup.proc.stop(graceMs);
    if (!strays) return;
    // One /proc scan for strays on any of the key's backing dirs.
    const dirs = new Set((await backingDirsOf(this.#cfg.stateDir, key)).map((b) => b.dir));
    if (dirs.size === 0) return;
    for (const pid of await s3fsPidsWhere((argv) => argv.some((a) => dirs.has(a)))) await S3fsProcess.adopt(pid, 200).stop();
  }

  /** Unmounts and removes the backing dirs of `key` except `keep` (dead ones after a repair). */
  async #removeOldBackingDirs(key: string, keep: string | undefined): Promise<void> {
    const table = await readMountTable();
    for (const { dir } of await backingDirsOf(this.#cfg.stateDir, key)) {
      if (dir === keep) continue;
      const sup = [...this.#procs.values()].find((s) => s.backingDir === dir);
      sup?.proc.markExpected();
      if (mountsUnder(table, dir).length > 0) await this.#unmountAll(dir);
      await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.driver.log.warn({ dir, err: err.code }, 'cannot remove old backing directory');
      });
    }
  }

  #updateGauge(): void {
    let healthy = 0;
    for (const s of this.#procs.values()) if (s.proc.running) healthy++;
    this.driver.metrics.mountedVolumes.set({ condition: 'healthy' }, healthy);
    this.driver.metrics.mountedVolumes.set({ condition: 'abnormal' }, this.#abnormal.size);
  }
}

/** The caller (deadline, cancel, driver shutdown) stopped waiting while s3fs was mounting. */
const gaveUp = (proc: S3fsProcess): CsiError => aborted(`call cancelled or past its deadline while s3fs was mounting${tail(proc.lines)}`);

/** An s3fs log line without its "<timestamp> [LEVEL] " prefix. */
const bare = (line: string): string => line.replace(/^\S+Z \[\w+\] /, '');

const tail = (lines: readonly string[]): string => {
  const l = lines.filter((x) => /\[(CRT|ERR|WAN)\]/.test(x)).slice(-3);
  const shown = (l.length ? l : lines.slice(-3)).map(bare);
  return shown.length ? `: ${shown.join(' | ')}` : '';
};

/** An error decided from S3's answer, with s3fs's last words (if any) for the reader. */
const withTail = (err: CsiError, proc: S3fsProcess): CsiError => new CsiError(err.code, `${err.message}${tail(proc.lines)}`);

/**
 * s3fs failed although S3 accepted the volume's keys: the code comes from facts about the node, the
 * message from s3fs. No s3fs binary (spawn failed) or no usable /dev/fuse = the node cannot mount at
 * all (FAILED_PRECONDITION, as Probe says); anything else is INTERNAL.
 */
async function s3fsFailure(what: string, proc: S3fsProcess): Promise<CsiError> {
  const msg = `${what}${tail(proc.lines)}`;
  if (proc.pid <= 0) return failedPrecondition(msg);
  // Opening it, not access(): a device node whose driver is gone passes the permission check and
  // only fails to open (ENXIO).
  const fuse = await checkFuseDevice();
  if (fuse) return failedPrecondition(`${msg} (${fuse})`);
  return internal(msg);
}
