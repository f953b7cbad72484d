// The fact behind NodeStageVolume's error codes: one signed S3 request with the volume's own
// credentials (ListObjectsV2, max-keys=1, on the bucket and prefix s3fs is about to mount), sent while
// s3fs starts. Its HTTP status says what s3fs's log text would only hint at, in words that change
// between s3fs versions: 403 = the keys are refused, 404 = no such bucket, no answer = unreachable.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { getCACertificates } from 'node:tls';
import { type CsiError, failedPrecondition, internal, notFound, permissionDenied, unavailable } from '../errors.js';
import { signRequest } from '../s3/sigv4.js';
import type { StageSpec } from './spec.js';

export type BucketAccess = { ok: true } | { ok: false; error: CsiError };

/** What s3fs uses without `url=`. */
const defaultEndpoint = (region: string): string => (region === 'us-east-1' ? 'https://s3.amazonaws.com' : `https://s3.${region}.amazonaws.com`);

/** The ListObjectsV2 URL of the volume's bucket/prefix, path-style or virtual-hosted like s3fs. */
export function listUrl(spec: Pick<StageSpec, 'bucket' | 'prefix' | 'endpoint' | 'region' | 'pathStyle'>): URL {
  const base = new URL(spec.endpoint ?? defaultEndpoint(spec.region));
  const url = spec.pathStyle ? new URL(`${base.origin}/${spec.bucket}`) : new URL(`${base.protocol}//${spec.bucket}.${base.host}/`);
  url.searchParams.set('list-type', '2');
  url.searchParams.set('max-keys', '1');
  if (spec.prefix) url.searchParams.set('prefix', `${spec.prefix}/`);
  return url;
}

/** The S3 error code of an XML error body, when there is one. */
export const s3ErrorCode = (body: string): string | undefined => /<Code>([^<]{1,64})<\/Code>/.exec(body)?.[1];

/** Pure: the answer's HTTP status (and S3 error code) -> whether s3fs can work, and the CSI code if not. */
export function accessFromStatus(httpStatus: number, s3Code: string | undefined, where: string): BucketAccess {
  if (httpStatus >= 200 && httpStatus < 300) return { ok: true };
  const what = `S3 answered ${httpStatus}${s3Code ? ` ${s3Code}` : ''} for ${where}`;
  if (httpStatus === 403 || httpStatus === 401) return { ok: false, error: permissionDenied(`${what}: the volume's credentials are refused`) };
  if (httpStatus === 404) return { ok: false, error: notFound(`${what}: the bucket does not exist`) };
  if (httpStatus === 429 || httpStatus >= 500) return { ok: false, error: unavailable(`${what}: the S3 server is not serving`) };
  // 301/307 (wrong region), 400 (malformed for this server): s3fs would fail the same way; retrying won't help.
  if (httpStatus >= 300 && httpStatus < 500) return { ok: false, error: failedPrecondition(`${what}: check the endpoint and region`) };
  return { ok: false, error: internal(what) };
}

let caCache: string[] | undefined;
/** s3fs trusts the node's store: do the same (Node's bundled roots plus the system's). */
function trustedCas(): string[] {
  if (!caCache) {
    let system: string[] = [];
    try {
      system = getCACertificates('system');
    } catch {
      // no readable system store: the bundled roots alone
    }
    caCache = [...getCACertificates('bundled'), ...system];
  }
  return caCache;
}

/**
 * Sends the request under `timeoutMs` (and `signal`). Never throws: a network failure is UNAVAILABLE.
 * The secret key only ever enters the HMAC; error messages name the bucket and endpoint, no keys.
 */
export function checkBucketAccess(spec: StageSpec, timeoutMs: number, signal?: AbortSignal): Promise<BucketAccess> {
  const url = listUrl(spec);
  const where = `bucket ${spec.bucket}${spec.prefix ? ` prefix ${spec.prefix}/` : ''} at ${url.origin}`;
  const headers = signRequest({
    method: 'GET', url, region: spec.region, now: new Date(),
    accessKeyId: spec.credentials.accessKeyId.reveal(), secretAccessKey: spec.credentials.secretAccessKey.reveal(),
  });
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: BucketAccess): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      req.destroy();
      resolve(r);
    };
    const tls = url.protocol === 'https:';
    const send = tls ? httpsRequest : httpRequest;
    const req = send(url, {
      method: 'GET', headers, agent: false,
      ...(tls ? { rejectUnauthorized: !spec.insecureSkipVerify, ca: trustedCas() } : {}),
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (body.length < 4096) body += d;
      });
      res.on('end', () => done(accessFromStatus(res.statusCode ?? 0, s3ErrorCode(body), where)));
      res.on('error', (e) => done({ ok: false, error: unavailable(`S3 request for ${where} failed: ${e.message}`) }));
    });
    const timer = setTimeout(() => done({ ok: false, error: unavailable(`S3 did not answer within ${timeoutMs} ms for ${where}`) }), timeoutMs);
    const onAbort = (): void => done({ ok: false, error: unavailable(`S3 request for ${where} abandoned: the caller gave up`) });
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, error: unavailable(`cannot reach S3 for ${where}: ${e.code ?? e.message}`) }));
    req.end();
  });
}
