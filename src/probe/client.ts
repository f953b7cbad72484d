// The driver's own Probe calls for /healthz and /readyz (src/probe/http.ts): @grpc/grpc-js over one
// long-lived connection to the CSI socket. No proto file is parsed for it: the call has one fixed
// shape (empty ProbeRequest out, ProbeResponse back, read by src/probe/wire.ts).
import { existsSync } from 'node:fs';
import { Client, Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import { type ProbeResult, codeName, decodeProbeResponse } from './wire.js';

export type { ProbeResult } from './wire.js';

const PROBE_PATH = '/csi.v1.Identity/Probe';
const EMPTY = Buffer.alloc(0);

/** One Probe call on `client` under a deadline. */
export function probeCall(client: Client, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(PROBE_PATH, () => EMPTY, decodeProbeResponse, {}, new Metadata(), { deadline: Date.now() + timeoutMs }, (err: ServiceError | null, res) => {
      if (err) {
        const code = typeof err.code === 'number' ? codeName(err.code) : 'Unknown';
        resolve({ healthy: false, reason: `probe failed with ${code}: ${err.details || err.message}` });
      } else {
        resolve({ healthy: true, ready: res?.ready ?? true });
      }
    });
  });
}

/**
 * Probe calls over one long-lived connection: unlike the livenessprobe sidecar (a fresh connection per
 * request, src/probe/once.ts does that for the exec probe), neither end of the socket pays a connection
 * set-up and teardown per /healthz request. The socket file is checked on every call, so a deleted
 * socket (kubelet could no longer connect) fails the probe at once; a broken connection is
 * re-established by grpc-js on the next call, and calls fail while it cannot be (no waitForReady).
 */
export class ProbeConnection {
  #client: Client | undefined;
  #inFlight: Promise<ProbeResult> | undefined;
  /** Probe calls made (each request that shared another's call is not one). */
  calls = 0;

  constructor(private readonly socketPath: string) {}

  /**
   * One Probe through the socket. A request that arrives while a Probe is in flight shares that
   * call's answer instead of making its own: the answer comes after the request arrived, so it says
   * as much about the driver as a call of its own would, and a burst of probers (kubelet, a
   * monitoring system, a load balancer) costs the driver one call instead of one each. Nothing is
   * cached: the next request after an answer makes a new call.
   */
  async probe(timeoutMs: number): Promise<ProbeResult> {
    if (!existsSync(this.socketPath)) {
      this.close();
      return { healthy: false, reason: `failed to connect to the driver: ${this.socketPath} does not exist` };
    }
    if (this.#inFlight) return this.#inFlight;
    this.#client ??= new Client(`unix://${this.socketPath}`, credentials.createInsecure(), { 'grpc.enable_retries': 0 });
    this.calls++;
    const call = probeCall(this.#client, timeoutMs).finally(() => {
      if (this.#inFlight === call) this.#inFlight = undefined;
    });
    this.#inFlight = call;
    return call;
  }

  close(): void {
    this.#client?.close();
    this.#client = undefined;
    this.#inFlight = undefined;
  }
}
