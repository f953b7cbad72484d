// The mounter role's gRPC server (proto/mounter.proto) on a unix socket only root can open (0600):
// each call runs the in-process Mounter under the volume's lock (a restarted node plugin may race
// the old one still finishing a call), with the caller's deadline/cancel as its abort signal. One log
// line and one metric per call; credentials never reach a log line or an error message (every text
// is scrubbed of the values the request carried).
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { clearStaleSocket } from '../socket-file.js';
import type { Driver } from '../driver.js';
import { CsiError, codeName, errorMessage, invalidArgument, notFound } from '../errors.js';
import { type Mounter, checkPathSyntax } from '../mount/index.js';
import { packageVersion } from '../paths.js';
import { RunningTasks } from '../running.js';
import { scrub, secretValuesOf } from '../secrets.js';
import { MounterServerMetrics } from './metrics.js';
import { API_VERSION, MIN_API_VERSION, type MounterHello } from './protocol.js';
import { mounterServiceDefinition } from './proto.js';
import { type WireEvent, type WireStageSpec, exitToWire, helloToWire, recordToWire, specFromWire } from './wire.js';

type Request = Record<string, unknown>;
type UnaryImpl = (req: Request, signal: AbortSignal) => Promise<object>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export class MounterServer {
  readonly hello: MounterHello;
  readonly #server = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  readonly #calls = new RunningTasks();
  readonly #streams = new Set<grpc.ServerWritableStream<unknown, WireEvent>>();
  readonly #metrics: MounterServerMetrics;
  #listening = false;

  constructor(
    private readonly driver: Driver,
    private readonly mounter: Mounter,
    private readonly socketPath: string,
  ) {
    this.hello = {
      serverVersion: packageVersion, apiVersion: API_VERSION, minApiVersion: MIN_API_VERSION,
      instanceId: randomUUID(), startedAt: new Date().toISOString(), nodeId: driver.config.nodeId,
    };
    this.#metrics = new MounterServerMetrics(driver.metrics.registry);
    const path = (p: unknown, field: string): string => checkPathSyntax(str(p), driver.config.allowedRoots, field);
    // The volume id names the lock; the path stands in when a caller (recovery's orphan cleanup) has none.
    const lockKey = (id: unknown, p: string): string => str(id) || p;
    const m = this.mounter;

    const unary: Record<string, UnaryImpl> = {
      Hello: async () => helloToWire(this.hello),
      EnsureStaged: async (req, signal) => {
        const wire = req.spec as WireStageSpec | null | undefined;
        if (!wire?.volume_id) throw invalidArgument('spec.volume_id is required');
        const spec = specFromWire({ ...wire, staging_path: path(wire.staging_path, 'staging_path') });
        return { result: await m.withVolumeLock(spec.volumeId, () => m.ensureStaged(spec, signal), signal) };
      },
      EnsurePublished: async (req, signal) => {
        const target = path(req.target_path, 'target_path');
        const staging = path(req.staging_path, 'staging_path');
        return { result: await m.withVolumeLock(lockKey(req.volume_id, target), () => m.ensurePublished(target, staging, req.readonly === true), signal) };
      },
      Unpublish: async (req, signal) => {
        const target = path(req.target_path, 'target_path');
        await m.withVolumeLock(lockKey(req.volume_id, target), () => m.unpublish(target), signal);
        return {};
      },
      Unstage: async (req, signal) => {
        const staging = path(req.staging_path, 'staging_path');
        await m.withVolumeLock(lockKey(req.volume_id, staging), () => m.unstage(staging), signal);
        return {};
      },
      ListStaged: async () => ({ records: (await m.staged()).map(recordToWire) }),
      GetRecord: async (req) => {
        const rec = await m.recordOf(path(req.path, 'path'));
        return rec ? { found: true, record: recordToWire(rec) } : { found: false };
      },
      GetCondition: async (req) => {
        const c = await m.conditionOf(path(req.path, 'path'));
        return c ? { known: true, abnormal: c.abnormal, message: c.message } : { known: false };
      },
      GetRecordedCredentials: async (req) => {
        const p = path(req.path, 'path');
        try {
          const c = await m.recordedCredentials(p);
          return { access_key_id: c.accessKeyId.reveal(), secret_access_key: c.secretAccessKey.reveal() };
        } catch (err) {
          throw notFound(`no usable passwd file for ${p}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
        }
      },
    };

    const impl: grpc.UntypedServiceImplementation = { Watch: (call: grpc.ServerWritableStream<unknown, WireEvent>) => this.#watch(call) };
    for (const [method, fn] of Object.entries(unary)) impl[method] = this.#wrap(method, fn);
    this.#server.addService(mounterServiceDefinition, impl);
  }

  #wrap(method: string, fn: UnaryImpl): grpc.handleUnaryCall<Request, object> {
    return (call, callback) => {
      const started = process.hrtime.bigint();
      const req = call.request ?? {};
      const secrets = secretValuesOf(req);
      const controller = new AbortController();
      const d = call.getDeadline();
      const deadline = d instanceof Date ? d.getTime() : typeof d === 'number' && Number.isFinite(d) ? d : Infinity;
      const timer = Number.isFinite(deadline) ? setTimeout(() => controller.abort(new Error('deadline exceeded')), Math.max(0, deadline - Date.now())) : undefined;
      call.on('cancelled', () => controller.abort(new Error('cancelled by the node plugin')));
      const finish = (code: grpc.status, res: object | null, message?: string): void => {
        if (timer) clearTimeout(timer);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        this.#metrics.rpcs.observe({ method, code: codeName(code) }, seconds);
        const fields = { rpc: method, ...logFields(req, secrets), duration_ms: Math.round(seconds * 1e4) / 10, code: codeName(code) };
        if (code === grpc.status.OK) {
          // Queries run all the time (stats, recovery): debug; changes: info.
          this.driver.log[/^(Hello|List|Get)/.test(method) ? 'debug' : 'info'](fields, 'mounter call');
          callback(null, res);
        } else {
          this.driver.log[code === grpc.status.INTERNAL ? 'error' : 'warn']({ ...fields, error: message }, 'mounter call failed');
          callback({ code, details: message ?? codeName(code) });
        }
      };
      let run: Promise<object>;
      try {
        run = fn(req, AbortSignal.any([controller.signal, this.#calls.signal]));
      } catch (err) {
        run = Promise.reject(err);
      }
      this.#calls.track(run.then(
        (res) => finish(grpc.status.OK, res),
        (err: unknown) => {
          if (err instanceof CsiError) finish(err.code, null, scrub(err.message, secrets));
          else finish(grpc.status.INTERNAL, null, `internal error: ${scrub(errorMessage(err), secrets)}`);
        },
      ));
    };
  }

  /** The event stream: `hello` first, then every unexpected s3fs exit until the client goes away. */
  #watch(call: grpc.ServerWritableStream<unknown, WireEvent>): void {
    this.#streams.add(call);
    this.#metrics.watchers.set(this.#streams.size);
    call.write({ hello: helloToWire(this.hello) });
    const unsubscribe = this.mounter.events.on((e) => {
      if (e.kind === 's3fs-exit') call.write({ s3fs_exit: exitToWire(e) });
    });
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      unsubscribe();
      this.#streams.delete(call);
      this.#metrics.watchers.set(this.#streams.size);
    };
    call.on('cancelled', close);
    call.on('close', close);
    call.on('error', close);
    this.driver.log.info({ watchers: this.#streams.size }, 'node plugin subscribed to mounter events');
  }

  async listen(): Promise<void> {
    const path = this.socketPath;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await clearStaleSocket(path);
    await new Promise<void>((resolve, reject) => {
      this.#server.bindAsync(`unix://${path}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
    // Root only: whoever can talk to the mounter can mount anything anywhere under the kubelet dir.
    await chmod(path, 0o600);
    this.#listening = true;
  }

  /** Stops accepting, lets in-flight calls finish within `timeoutMs` (then aborts them), ends the streams. */
  async shutdown(timeoutMs: number, cleanupMs = 5000): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    for (const s of this.#streams) s.end();
    const closed = new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
    await this.#calls.drain(timeoutMs, cleanupMs);
    this.#server.forceShutdown();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
    await rm(this.socketPath, { force: true });
  }
}

/** Ids and paths for the log line, scrubbed; never a credential or a whole request. */
function logFields(req: Request, secrets: Set<string>): Record<string, string> {
  const spec = (req.spec ?? {}) as Request;
  const out: Record<string, string> = {};
  const pick = (name: string, v: unknown): void => {
    if (typeof v === 'string' && v) out[name] = scrub(v.slice(0, 256), secrets);
  };
  pick('volume_id', req.volume_id ?? spec.volume_id);
  pick('staging_path', req.staging_path ?? spec.staging_path);
  pick('target_path', req.target_path);
  pick('path', req.path);
  return out;
}
