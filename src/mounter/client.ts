// RemoteMounter: the MountEngine of a node plugin whose s3fs run in the separate mounter process.
// It keeps one connection: Hello (versions, instance id) judged by protocol.ts, then the Watch
// stream, whose end means the mounter went away. A new instance id on reconnection means a new
// mounter process, whose s3fs are new too (in a container the old ones died with it): that is
// announced as `mounter-connected` with `restarted: true`, and recovery repairs every volume.
// Calls made while the mounter is unreachable wait for it a while (mount operations up to their
// deadline, queries briefly); calls to a refused (incompatible) mounter fail at once with the reason.
// Health: an unreachable mounter makes the node plugin not ready (never unhealthy: a liveness restart
// cannot bring the mounter back, and kubelet's crash-loop backoff would delay our return after it
// does); a refused one makes it unhealthy, with the reason in Probe. Per-volume locks are taken here
// as well as in the mounter.
import type { Client, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { Metadata, status } from '@grpc/grpc-js';
import { type FSWatcher, watch as watchDir } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Driver } from '../driver.js';
import { CsiError, aborted, errorMessage, failedPrecondition, unavailable } from '../errors.js';
import { KeyedMutex } from '../locks.js';
import {
  type EngineEvent, EventChannel, type MountEngine, type MountEntry, type PathHealth, type PublishResult, type RecordedCredentials,
  type StageResult, type StageSpec, type StagedRecord, type VolumeCondition, checkPath, checkPaths,
} from '../mount/index.js';
import { packageVersion } from '../paths.js';
import { Secret } from '../secrets.js';
import { MounterClientMetrics } from './metrics.js';
import { API_VERSION, type MounterHello, judgeMounter } from './protocol.js';
import { mounterClient } from './proto.js';
import {
  type WireEvent, type WireHello, type WireRecord, eventFromWire, helloFromWire, publishResultFromWire, recordFromWire, specToWire,
  stageResultFromWire,
} from './wire.js';

type Link =
  | { state: 'connecting'; reason: string }
  | { state: 'ready'; hello: MounterHello }
  | { state: 'refused'; reason: string };

const HELLO_TIMEOUT_MS = 5000;
// Reconnection polls a unix socket on this node: a refused connect costs one syscall, while every
// extra 100 ms here is 100 ms longer that every volume of the node stays down after a mounter
// restart (its replacement serves ~1.8 s after the old pod is deleted on a quiet node). So the delay is
// capped low; only an incompatible mounter is asked again slowly. On top of the poll, the socket's
// directory is watched while disconnected: the new mounter's socket appearing wakes the loop at once
// on a fresh channel (the old channel may sit in its reconnect backoff). Measured with grpc-js on
// this machine: 14-29 ms from the socket's creation to the first answer, against 180-350 ms by
// polling alone.
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 250;
const REFUSED_RETRY_MS = 2000;
/** How long a mount operation without a deadline of its own waits for an unreachable mounter. */
const DEFAULT_WAIT_MS = 30_000;
/** Queries (stats, records) answer kubelet's periodic calls: they wait only briefly. */
const QUERY_WAIT_MS = 3000;
const QUERY_DEADLINE_MS = 30_000;

export class RemoteMounter implements MountEngine {
  readonly events = new EventChannel<EngineEvent>();
  readonly #locks = new KeyedMutex();
  #client: Client;
  /** Watches the socket's directory while disconnected (undefined when connected or unsupported). */
  #dirWatch: FSWatcher | undefined;
  /** Ends the current wait between connection attempts early. */
  #wake: (() => void) | undefined;
  /** The socket appeared since the last attempt: the next one uses a fresh channel. */
  #socketAppeared = false;
  readonly #metrics: MounterClientMetrics;
  #link: Link = { state: 'connecting', reason: 'not connected yet' };
  #linkChanged = new EventChannel<{ kind: 'link' }>();
  #seenInstance: string | undefined;
  #stream: ClientReadableStream<WireEvent> | undefined;
  #stopped = false;
  /** Held while the mounter is not usable: Probe answers ready=false meanwhile. */
  #notReady: (() => void) | undefined;
  /** A tolerated version difference, shown in /readyz while connected. */
  #versionWarning: string | undefined;

  constructor(
    private readonly driver: Driver,
    readonly socketPath: string,
  ) {
    // No gRPC-level retries or waiting: this class decides how long a call waits for the mounter. The
    // channel's own reconnect backoff is capped like the loop's: a call made while the channel backs
    // off fails at once, so a long channel backoff would delay the first Hello to a new mounter.
    this.#client = this.#newChannel();
    this.#metrics = new MounterClientMetrics(driver.metrics.registry);
  }

  /** Starts connecting (in the background, for as long as the node plugin runs). */
  start(): void {
    this.#setLink(this.#link); // not ready until the first handshake
    void this.#connectLoop();
  }

  /** Closes the connection. Never touches the mounter's s3fs. */
  stop(): void {
    this.#stopped = true;
    this.#unwatchSocket();
    this.#wake?.();
    this.#stream?.cancel();
    this.#client.close();
  }

  #newChannel(): Client {
    return mounterClient(this.socketPath, { 'grpc.enable_retries': 0, 'grpc.initial_reconnect_backoff_ms': RETRY_MIN_MS, 'grpc.max_reconnect_backoff_ms': RETRY_MAX_MS });
  }

  /** Starts watching the socket's directory for the mounter's (new) socket; polling alone if that fails. */
  #watchSocket(): void {
    if (this.#dirWatch || this.#stopped) return;
    const name = basename(this.socketPath);
    try {
      this.#dirWatch = watchDir(dirname(this.socketPath), { persistent: false }, (_event, file) => {
        if (file !== null && file !== name) return;
        this.#socketAppeared = true;
        this.#wake?.();
      });
      this.#dirWatch.on('error', () => this.#unwatchSocket());
    } catch {
      this.#dirWatch = undefined; // no such directory yet, or no inotify: the poll still runs
    }
  }

  #unwatchSocket(): void {
    this.#dirWatch?.close();
    this.#dirWatch = undefined;
  }

  /** Waits `ms`, or less when the socket's directory changes meanwhile. */
  #pause(ms: number): Promise<void> {
    if (this.#socketAppeared) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  /** Why the mounter cannot be used at all (an incompatible one): the node plugin's health check. */
  problem(): string | undefined {
    return this.#link.state === 'refused' ? `mounter refused: ${this.#link.reason}` : undefined;
  }

  get instanceId(): string | undefined {
    return this.#link.state === 'ready' ? this.#link.hello.instanceId : undefined;
  }

  // --- connection ------------------------------------------------------------------------

  #setLink(link: Link): void {
    this.#link = link;
    this.#metrics.connected.set(link.state === 'ready' ? 1 : 0);
    if (link.state === 'ready') {
      this.#notReady?.();
      this.#notReady = undefined;
      this.driver.setWarning('mounter', this.#versionWarning);
    } else {
      this.#notReady ??= this.driver.beginStartupTask('mounter');
      this.driver.setWarning('mounter', link.state === 'refused' ? `refused: ${link.reason}` : `not connected to ${this.socketPath}: ${link.reason}`);
    }
    this.#linkChanged.emit({ kind: 'link' });
  }

  async #connectLoop(): Promise<void> {
    const log = this.driver.log;
    let delay = RETRY_MIN_MS;
    while (!this.#stopped) {
      this.#watchSocket();
      if (this.#socketAppeared) {
        this.#socketAppeared = false;
        const old = this.#client;
        this.#client = this.#newChannel();
        old.close();
      }
      try {
        const hello = helloFromWire(await this.#unary<WireHello>('Hello', { client_version: packageVersion, api_version: API_VERSION }, { deadlineMs: HELLO_TIMEOUT_MS, direct: true }));
        this.#metrics.info.reset();
        this.#metrics.info.set({ version: hello.serverVersion, api_version: String(hello.apiVersion) }, 1);
        const verdict = judgeMounter(hello, { apiVersion: API_VERSION, packageVersion, nodeId: this.driver.config.nodeId });
        this.#metrics.compatible.set(verdict.ok ? 1 : 0);
        if (!verdict.ok) {
          if (this.#link.state !== 'refused' || this.#link.reason !== verdict.reason) log.error({ mounter_version: hello.serverVersion, mounter_api: hello.apiVersion, our_api: API_VERSION, reason: verdict.reason }, 'mounter refused');
          this.#setLink({ state: 'refused', reason: verdict.reason });
          this.events.emit({ kind: 'mounter-lost', reason: verdict.reason });
          // A replaced mounter pod may be compatible: ask again, slowly (or when its socket is replaced).
          await this.#pause(REFUSED_RETRY_MS);
          continue;
        }
        this.#versionWarning = verdict.warning;
        if (verdict.warning) log.warn({ mounter_version: hello.serverVersion, our_version: packageVersion }, verdict.warning);
        delay = RETRY_MIN_MS;
        this.#unwatchSocket();
        const reason = await this.#watch();
        if (this.#stopped) return;
        log.warn({ reason }, 'lost the mounter; reconnecting');
        this.#setLink({ state: 'connecting', reason });
        this.events.emit({ kind: 'mounter-lost', reason });
      } catch (err) {
        const reason = errorMessage(err);
        if (this.#link.state === 'ready' || this.#link.reason !== reason) log.warn({ err: reason, socket: this.socketPath }, 'mounter not reachable; retrying');
        this.#setLink({ state: 'connecting', reason });
      }
      await this.#pause(delay);
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  }

  /** Runs the event stream until it ends; resolves with why it ended. */
  #watch(): Promise<string> {
    return new Promise((resolve) => {
      const watch = (this.#client as unknown as { Watch(req: object): ClientReadableStream<WireEvent> }).Watch;
      const stream = watch.call(this.#client, {});
      this.#stream = stream;
      let done = false;
      const end = (why: string): void => {
        if (done) return;
        done = true;
        this.#stream = undefined;
        resolve(why);
      };
      stream.on('data', (msg: WireEvent) => {
        if (msg.hello) {
          this.#onHello(helloFromWire(msg.hello));
          return;
        }
        const e = eventFromWire(msg);
        if (e) this.events.emit(e);
      });
      stream.on('error', (err: ServiceError) => end(err.details || err.message));
      stream.on('end', () => end('the mounter closed its event stream'));
    });
  }

  #onHello(hello: MounterHello): void {
    const restarted = this.#seenInstance !== undefined && this.#seenInstance !== hello.instanceId;
    if (restarted) this.#metrics.newInstances.inc();
    this.#seenInstance = hello.instanceId;
    this.#setLink({ state: 'ready', hello });
    this.driver.log.info({ mounter_version: hello.serverVersion, mounter_api: hello.apiVersion, instance: hello.instanceId, mounter_started_at: hello.startedAt, restarted }, restarted ? 'connected to a new mounter process: its volumes need repair' : 'connected to the mounter');
    this.events.emit({ kind: 'mounter-connected', instanceId: hello.instanceId, restarted });
  }

  /** Waits until the link is ready (or refused: fails at once), at most until `deadline`. */
  async #usable(deadline: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const link = this.#link;
      if (link.state === 'ready') return;
      if (link.state === 'refused') throw failedPrecondition(`mounter refused: ${link.reason}`);
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted || this.#stopped) throw unavailable(`mounter at ${this.socketPath} not reachable: ${link.reason}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        const off = this.#linkChanged.on(done);
        signal?.addEventListener('abort', done, { once: true });
        function done(): void {
          clearTimeout(timer);
          off();
          signal?.removeEventListener('abort', done);
          resolve();
        }
      });
    }
  }

  /** One unary call; its error becomes a CsiError with the mounter's status code. */
  async #unary<Res>(method: string, request: object, o: { deadlineMs?: number; signal?: AbortSignal; direct?: boolean; waitMs?: number } = {}): Promise<Res> {
    const deadline = Date.now() + (o.deadlineMs ?? (o.signal ? 24 * 3600_000 : DEFAULT_WAIT_MS));
    if (!o.direct) await this.#usable(Math.min(deadline, Date.now() + (o.waitMs ?? DEFAULT_WAIT_MS)), o.signal);
    if (o.signal?.aborted) throw aborted('call cancelled before the mounter was asked');
    return new Promise<Res>((resolve, reject) => {
      const fn = (this.#client as unknown as Record<string, (req: object, meta: Metadata, opts: { deadline: number }, cb: (err: ServiceError | null, res?: Res) => void) => { cancel(): void }>)[method];
      if (typeof fn !== 'function') {
        reject(new Error(`unknown mounter method ${method}`));
        return;
      }
      const onAbort = (): void => call.cancel();
      const call = fn.call(this.#client, request, new Metadata(), { deadline }, (err, res) => {
        o.signal?.removeEventListener('abort', onAbort);
        if (err) reject(fromServiceError(err, method));
        else resolve(res as Res);
      });
      o.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  // --- MountEngine -----------------------------------------------------------------------

  withVolumeLock<T>(volumeId: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.#locks.run(volumeId, fn, signal);
  }

  async ensureStaged(spec: StageSpec, signal?: AbortSignal): Promise<StageResult> {
    // s3fs may take the whole mount timeout to start, plus the undo of a failed start.
    const deadlineMs = signal ? undefined : this.driver.config.mountTimeoutMs + 30_000;
    const res = await this.#unary<{ result: string }>('EnsureStaged', { spec: specToWire(spec) }, { signal, deadlineMs });
    return stageResultFromWire(res.result);
  }

  async ensurePublished(target: string, staging: string, readonly: boolean, volumeId?: string): Promise<PublishResult> {
    const res = await this.#unary<{ result: string }>('EnsurePublished', { volume_id: volumeId ?? '', target_path: target, staging_path: staging, readonly }, { deadlineMs: QUERY_DEADLINE_MS * 2 });
    return publishResultFromWire(res.result);
  }

  async unpublish(target: string, volumeId?: string): Promise<void> {
    await this.#unary('Unpublish', { volume_id: volumeId ?? '', target_path: target }, { deadlineMs: QUERY_DEADLINE_MS * 2 });
  }

  async unstage(staging: string, volumeId?: string): Promise<void> {
    await this.#unary('Unstage', { volume_id: volumeId ?? '', staging_path: staging }, { deadlineMs: QUERY_DEADLINE_MS * 2 });
  }

  async staged(): Promise<StagedRecord[]> {
    const res = await this.#unary<{ records: WireRecord[] }>('ListStaged', {}, { deadlineMs: QUERY_DEADLINE_MS, waitMs: QUERY_WAIT_MS });
    return (res.records ?? []).map(recordFromWire);
  }

  async recordOf(stagingPath: string): Promise<StagedRecord | undefined> {
    const res = await this.#unary<{ found: boolean; record: WireRecord | null }>('GetRecord', { path: stagingPath }, { deadlineMs: QUERY_DEADLINE_MS, waitMs: QUERY_WAIT_MS });
    return res.found && res.record ? recordFromWire(res.record) : undefined;
  }

  async conditionOf(stagingPath: string): Promise<VolumeCondition | undefined> {
    const res = await this.#unary<{ known: boolean; abnormal: boolean; message: string }>('GetCondition', { path: stagingPath }, { deadlineMs: QUERY_DEADLINE_MS, waitMs: QUERY_WAIT_MS });
    return res.known ? { abnormal: res.abnormal, message: res.message } : undefined;
  }

  async recordedCredentials(stagingPath: string): Promise<RecordedCredentials> {
    const res = await this.#unary<{ access_key_id: string; secret_access_key: string }>('GetRecordedCredentials', { path: stagingPath }, { deadlineMs: QUERY_DEADLINE_MS, waitMs: QUERY_WAIT_MS });
    return { accessKeyId: new Secret(res.access_key_id), secretAccessKey: new Secret(res.secret_access_key) };
  }

  checkPath(path: string, table?: readonly MountEntry[]): Promise<PathHealth> {
    return checkPath(path, this.driver.config.mountCheckTimeoutMs, table);
  }

  checkPaths(paths: readonly string[], table?: readonly MountEntry[]): Promise<Map<string, PathHealth>> {
    return checkPaths(paths, this.driver.config.mountCheckTimeoutMs, table);
  }
}

/** The mounter's status passes through (kubelet acts on it); a transport failure says "mounter". */
function fromServiceError(err: ServiceError, method: string): CsiError {
  const details = err.details || err.message;
  if (err.code === status.UNAVAILABLE) return unavailable(`mounter unreachable during ${method}: ${details}`);
  if (err.code === status.CANCELLED) return aborted(`${method} cancelled: ${details}`);
  return new CsiError(err.code, details);
}
