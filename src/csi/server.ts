// The gRPC server on the CSI unix socket, and the one wrapper every handler goes through:
// cancellation/deadline signal, a JSON log line per call, the sidecar-compatible metric, secret
// scrubbing of every error message, and CsiError -> status translation (anything else -> INTERNAL).
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CsiError, codeName, errorMessage } from '../errors.js';
import type { Driver } from '../driver.js';
import { clearStaleSocket } from '../socket-file.js';
import { RunningTasks } from '../running.js';
import { scrub, secretValuesOf } from '../secrets.js';
import { type ServiceName, services } from './proto.js';

export interface CallContext {
  /** Aborted when the client cancels or the call's deadline passes. */
  signal: AbortSignal;
  /** Epoch milliseconds of the call's deadline (Infinity when none). */
  deadline: number;
}

// `never` parameters let handlers declare their own request type and still fit one table.
export type Handler = (request: never, ctx: CallContext) => Promise<object>;
export type ServiceHandlers = Record<string, Handler>;

function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown>): number {
  const d = call.getDeadline();
  if (d instanceof Date) return d.getTime();
  return typeof d === 'number' && Number.isFinite(d) ? d : Infinity;
}

/**
 * The fields worth a log line: ids and paths, never maps that may carry secrets — and even these are
 * scrubbed of the request's secret values, since a client may put anything in a name.
 */
function logFields(request: Record<string, unknown>, secrets: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of ['volume_id', 'name', 'staging_target_path', 'target_path', 'volume_path']) {
    const v = request[key];
    if (typeof v === 'string' && v) out[key] = scrub(v.length > 256 ? `${v.slice(0, 256)}...` : v, secrets);
  }
  return out;
}

export function wrap(driver: Driver, service: ServiceName, method: string, handler: Handler, calls: RunningTasks): grpc.handleUnaryCall<unknown, unknown> {
  const fullMethod = `/csi.v1.${service}/${method}`;
  return (call, callback) => {
    const started = process.hrtime.bigint();
    const request = (call.request ?? {}) as Record<string, unknown>;
    const secrets = secretValuesOf(request);
    const controller = new AbortController();
    const deadline = deadlineOf(call);
    const timer = Number.isFinite(deadline)
      ? setTimeout(() => controller.abort(new Error('deadline exceeded')), Math.max(0, deadline - Date.now()))
      : undefined;
    call.on('cancelled', () => controller.abort(new Error('cancelled by client')));

    const finish = (code: grpc.status, response: object | null, message?: string): void => {
      if (timer) clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      driver.metrics.observeOperation(fullMethod, codeName(code), seconds);
      const fields = { method: fullMethod, ...logFields(request, secrets), duration_ms: Math.round(seconds * 1e4) / 10, code: codeName(code) };
      if (code === grpc.status.OK) {
        driver.log.info(fields, 'call');
        callback(null, response);
      } else {
        const level = code === grpc.status.INTERNAL || code === grpc.status.UNKNOWN ? 'error' : 'warn';
        driver.log[level]({ ...fields, error: message }, 'call failed');
        callback({ code, details: message ?? codeName(code) });
      }
    };

    let result: Promise<object>;
    try {
      // Deadline, client cancel, or the driver's shutdown giving up on the call.
      result = handler(request as never, { signal: AbortSignal.any([controller.signal, calls.signal]), deadline });
    } catch (err) {
      result = Promise.reject(err);
    }
    const settled = result.then(
      (response) => finish(grpc.status.OK, response),
      (err: unknown) => {
        // Secret values the request carried are scrubbed from whatever text an error holds.
        if (err instanceof CsiError) {
          finish(err.code, null, scrub(err.message, secrets));
        } else {
          const text = scrub(errorMessage(err), secrets);
          finish(grpc.status.INTERNAL, null, `internal error: ${text}`);
        }
      },
    );
    calls.track(settled);
  };
}

export class CsiServer {
  readonly #server = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  // gRPC's tryShutdown only waits for open streams; a handler whose client has gone still runs.
  readonly #calls = new RunningTasks();
  #listening = false;

  constructor(
    private readonly driver: Driver,
    handlers: Partial<Record<ServiceName, ServiceHandlers>>,
  ) {
    for (const [name, impl] of Object.entries(handlers) as [ServiceName, ServiceHandlers][]) this.#add(name, impl);
  }

  #add(name: ServiceName, impl: ServiceHandlers): void {
    const wrapped: grpc.UntypedServiceImplementation = {};
    for (const [method, handler] of Object.entries(impl)) wrapped[method] = wrap(this.driver, name, method, handler, this.#calls);
    this.#server.addService(services[name], wrapped);
  }

  /**
   * Serves a service whose code is still loading (the socket opens first, see serve.ts): its calls wait
   * for `loading`, then run the loaded handlers; a method the loaded service lacks answers UNIMPLEMENTED,
   * and a failed load fails the calls with its error. Once loaded, the real handlers replace the waiting
   * ones (calls already waiting finish through them).
   */
  serveWhenLoaded(name: ServiceName, loading: Promise<ServiceHandlers>): void {
    const waiting: ServiceHandlers = {};
    for (const method of Object.keys(services[name])) {
      waiting[method] = async (request: never, ctx: CallContext) => {
        const handler = (await loading)[method];
        if (!handler) throw new CsiError(grpc.status.UNIMPLEMENTED, `${method} is not implemented`);
        return handler(request, ctx);
      };
    }
    this.#add(name, waiting);
    loading.then((impl) => {
      this.#server.removeService(services[name]);
      this.#add(name, impl);
    }, () => undefined);
  }

  async listen(): Promise<void> {
    const path = this.driver.config.socketPath;
    await mkdir(dirname(path), { recursive: true });
    await clearStaleSocket(path);
    await new Promise<void>((resolve, reject) => {
      this.#server.bindAsync(`unix://${path}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
    this.#listening = true;
  }

  /**
   * Stops accepting, lets in-flight calls finish within `timeoutMs`, aborts the ones still running
   * (a half-done mount is undone, never left behind unrecorded) and gives them `cleanupMs` to do so,
   * then closes the remaining streams and removes the socket.
   */
  async shutdown(timeoutMs: number, cleanupMs = 5000): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    const streamsClosed = new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
    await this.#calls.drain(timeoutMs, cleanupMs);
    if (this.#calls.size > 0) this.driver.log.warn({ calls: this.#calls.size }, 'calls still running after shutdown grace; exiting anyway');
    this.#server.forceShutdown();
    await Promise.race([streamsClosed, new Promise((r) => setTimeout(r, 1000).unref())]);
    await rm(this.driver.config.socketPath, { force: true });
  }
}
