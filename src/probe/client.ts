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

  constructor(private readonly socketPath: string) {}

  async probe(timeoutMs: number): Promise<ProbeResult> {
    if (!existsSync(this.socketPath)) {
      this.close();
      return { healthy: false, reason: `failed to connect to the driver: ${this.socketPath} does not exist` };
    }
    this.#client ??= new Client(`unix://${this.socketPath}`, credentials.createInsecure(), { 'grpc.enable_retries': 0 });
    return probeCall(this.#client, timeoutMs);
  }

  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }
}
