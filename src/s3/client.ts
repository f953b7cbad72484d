// The one place that builds S3 clients: timeouts and bounded retries so an unreachable endpoint turns
// into UNAVAILABLE within seconds, TLS options for self-hosted servers, and a small cache so calls
// with the same connection reuse sockets.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { failedPrecondition } from '../errors.js';
import type { S3Connection } from './connection.js';

export interface ClientTuning {
  /** TCP/TLS connect deadline of one attempt. */
  connectTimeoutMs: number;
  /** Deadline of one request attempt once connected. */
  requestTimeoutMs: number;
  /** Attempts per call, first included (the SDK's standard retry: backoff on throttling, 5xx, network errors). */
  maxAttempts: number;
  /** Cap of one call with all its attempts (S3Store aborts it): UNAVAILABLE after this long. */
  callTimeoutMs: number;
}

// A down server fails in milliseconds (connection refused, 3 attempts with backoff); a hung one is
// cut off after callTimeoutMs, the same as the external-provisioner's default 10s RPC timeout.
export const DEFAULT_TUNING: ClientTuning = { connectTimeoutMs: 3000, requestTimeoutMs: 6000, maxAttempts: 3, callTimeoutMs: 10_000 };

const MAX_CACHED = 32;

function cacheKey(c: S3Connection): string {
  // Hash of the whole connection (secrets included) so the key itself is not a readable secret.
  return createHash('sha256')
    .update(JSON.stringify([c.endpoint, c.region, c.accessKeyId.reveal(), c.secretAccessKey.reveal(), c.sessionToken?.reveal(), c.pathStyle, c.caBundle, c.insecureSkipVerify]))
    .digest('hex');
}

function readCa(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw failedPrecondition(`cannot read S3 CA bundle ${path}: ${(err as Error).message}`);
  }
}

export class S3ClientPool {
  readonly #clients = new Map<string, S3Client>();

  constructor(readonly tuning: ClientTuning = DEFAULT_TUNING) {}

  get(conn: S3Connection): S3Client {
    const key = cacheKey(conn);
    const hit = this.#clients.get(key);
    if (hit) {
      // refresh LRU position
      this.#clients.delete(key);
      this.#clients.set(key, hit);
      return hit;
    }
    const client = this.#build(conn);
    this.#clients.set(key, client);
    if (this.#clients.size > MAX_CACHED) {
      const [oldestKey, oldest] = this.#clients.entries().next().value as [string, S3Client];
      this.#clients.delete(oldestKey);
      oldest.destroy();
    }
    return client;
  }

  #build(conn: S3Connection): S3Client {
    const agentOptions = { keepAlive: true, maxSockets: 64 };
    const httpsAgent = new HttpsAgent({
      ...agentOptions,
      ca: conn.caBundle ? readCa(conn.caBundle) : undefined,
      rejectUnauthorized: !conn.insecureSkipVerify,
    });
    return new S3Client({
      endpoint: conn.endpoint,
      region: conn.region,
      forcePathStyle: conn.pathStyle,
      credentials: {
        accessKeyId: conn.accessKeyId.reveal(),
        secretAccessKey: conn.secretAccessKey.reveal(),
        sessionToken: conn.sessionToken?.reveal(),
      },
      maxAttempts: this.tuning.maxAttempts,
      retryMode: 'standard',
      // Many S3-compatible servers reject the newer default CRC checksums on every request.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: this.tuning.connectTimeoutMs,
        requestTimeout: this.tuning.requestTimeoutMs,
        httpAgent: new HttpAgent(agentOptions),
        httpsAgent,
      },
    });
  }

  destroy(): void {
    for (const c of this.#clients.values()) c.destroy();
    this.#clients.clear();
  }
}
