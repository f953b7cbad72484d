// AWS Signature Version 4 for one bodiless S3 request, with node:crypto only. The node plugin uses it
// for its one pre-mount S3 request (src/mount/bucket-check.ts) instead of loading @aws-sdk/client-s3:
// the SDK costs the node pod tens of MiB of RSS and ~100 ms of start-up for a single GET (docs/node.md).
import { createHash, createHmac } from 'node:crypto';

export interface SignInput {
  method: 'GET' | 'HEAD';
  url: URL;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Signing time (tests pin it). */
  now: Date;
  /** Extra headers to sign (lower-case names). */
  headers?: Record<string, string>;
}

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256Hex = (data: string): string => createHash('sha256').update(data, 'utf8').digest('hex');

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ is %XX. */
export function uriEncode(s: string, keepSlash = false): string {
  const out = encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return keepSlash ? out.replace(/%2F/g, '/') : out;
}

/** "20130524T000000Z" */
export const amzDate = (d: Date): string => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

function canonicalQuery(url: URL): string {
  const pairs = [...url.searchParams.entries()].map(([k, v]) => [uriEncode(k), uriEncode(v)] as const);
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** The headers to send (host, x-amz-date, x-amz-content-sha256, authorization and the extra ones). */
export function signRequest(input: SignInput): Record<string, string> {
  const date = amzDate(input.now);
  const day = date.slice(0, 8);
  const headers: Record<string, string> = {
    ...input.headers,
    host: input.url.host,
    'x-amz-content-sha256': EMPTY_SHA256,
    'x-amz-date': date,
  };
  const names = Object.keys(headers).map((h) => h.toLowerCase()).sort();
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v.trim().replace(/\s+/g, ' ')]));
  const signedHeaders = names.join(';');
  // S3 signs the path as sent, each segment encoded once (no double encoding as other services do).
  const path = uriEncode(decodeURIComponent(input.url.pathname), true) || '/';
  const canonical = [input.method, path, canonicalQuery(input.url), names.map((n) => `${n}:${lower[n]}\n`).join(''), signedHeaders, EMPTY_SHA256].join('\n');
  const scope = `${day}/${input.region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha256Hex(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${input.secretAccessKey}`, day), input.region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
  return { ...headers, authorization: `AWS4-HMAC-SHA256 Credential=${input.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}` };
}
