// One Probe call on a fresh connection, closed afterwards — what the kubernetes-csi livenessprobe
// sidecar makes per /healthz request — for `s3fs-csi probe`, where every call is its own process.
// Spoken directly over Node's built-in HTTP/2 (gRPC is HTTP/2 with a 5-byte frame per message and the
// status in trailers) so the exec probe loads no gRPC library: @grpc/grpc-js alone takes several times
// Node's own start-up to load, which is the whole budget of a probe that runs every few seconds.
// The driver itself (and /healthz in it) keeps using grpc-js; this one call has one fixed shape.
import { connect, constants } from 'node:http2';
import { createConnection } from 'node:net';
import { existsSync } from 'node:fs';
import { type ProbeResult, codeName, decodeProbeResponse, grpcTimeout, probeReplyFromFrames } from './wire.js';

const PATH = '/csi.v1.Identity/Probe';
// An empty ProbeRequest: not compressed, length 0.
const EMPTY_REQUEST = Buffer.alloc(5);

export function probeOnce(socketPath: string, timeoutMs: number): Promise<ProbeResult> {
  if (!existsSync(socketPath)) return Promise.resolve({ healthy: false, reason: `failed to connect to the driver: ${socketPath} does not exist` });
  return new Promise((resolve) => {
    let done = false;
    const session = connect('http://localhost', { createConnection: () => createConnection(socketPath) });
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ healthy: false, reason: `probe failed with DeadlineExceeded: no answer within ${timeoutMs} ms` }), timeoutMs);
    session.on('error', (err: NodeJS.ErrnoException) => finish({ healthy: false, reason: `probe failed with Unavailable: failed to connect to the driver: ${err.code ?? err.message}` }));
    const req = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: PATH,
      [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
      te: 'trailers',
      'grpc-timeout': grpcTimeout(timeoutMs),
    });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message: string | undefined;
    let httpStatus: number | undefined;
    const take = (h: Record<string, unknown>): void => {
      if (typeof h['grpc-status'] === 'string') status = h['grpc-status'];
      if (typeof h['grpc-message'] === 'string') message = h['grpc-message'];
    };
    req.on('response', (h) => {
      httpStatus = Number(h[constants.HTTP2_HEADER_STATUS]);
      take(h);
    });
    req.on('trailers', take);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', (err: Error) => finish({ healthy: false, reason: `probe failed with Unavailable: ${err.message}` }));
    req.on('end', () => {
      if (httpStatus !== 200) return finish({ healthy: false, reason: `probe failed with Unknown: HTTP status ${httpStatus ?? 'none'} from the driver` });
      if (status === undefined) return finish({ healthy: false, reason: 'probe failed with Unknown: the driver sent no gRPC status' });
      if (status !== '0') {
        const text = message === undefined ? '' : safeDecode(message);
        return finish({ healthy: false, reason: `probe failed with ${codeName(Number(status))}: ${text}` });
      }
      try {
        const reply = probeReplyFromFrames(Buffer.concat(chunks), decodeProbeResponse);
        finish({ healthy: true, ready: reply.ready ?? true });
      } catch (err) {
        finish({ healthy: false, reason: `probe failed with Internal: ${(err as Error).message}` });
      }
    });
    req.end(EMPTY_REQUEST);
  });
}

/** grpc-message is percent-encoded (gRPC over HTTP/2); a malformed one is shown as sent. */
function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
