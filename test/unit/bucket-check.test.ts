// The pre-mount S3 request: SigV4 signing (checked against the AWS SDK's own signer), the URL it asks,
// and the mapping of S3's answer to a CSI code.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { accessFromStatus, listUrl, s3ErrorCode } from '../../src/mount/bucket-check.js';
import { EMPTY_SHA256, amzDate, signRequest, uriEncode } from '../../src/s3/sigv4.js';

const bytes = (d: string | ArrayBuffer | ArrayBufferView): string | Uint8Array =>
  typeof d === 'string' ? d : d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** node:crypto in the shape the SDK signer takes (a hash, or an HMAC when given a secret). */
class Sha256 {
  readonly #h: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#h.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.#h.digest());
  }
}

describe('SigV4 for one GET', () => {
  it('produces the signature of the AWS SDK signer for the same request', async () => {
    const now = new Date('2026-12-02T10:20:30Z');
    for (const [href, region] of [
      ['http://127.0.0.1:9000/my-bucket?list-type=2&max-keys=1&prefix=a%20b/c%2Bd/', 'us-east-1'],
      ['https://my-bucket.s3.eu-west-1.amazonaws.com/?list-type=2&max-keys=1', 'eu-west-1'],
      ['http://[::1]:8080/b?prefix=%E2%9C%93%2A%28x%29/&list-type=2&max-keys=1', 'auto'],
    ] as const) {
      const url = new URL(href);
      const ours = signRequest({ method: 'GET', url, region, accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', now });
      const sdk = new SignatureV4({ service: 's3', region, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' }, sha256: Sha256, uriEscapePath: false, applyChecksum: false });
      const signed = await sdk.sign({
        method: 'GET', protocol: url.protocol, hostname: url.hostname, port: url.port ? Number(url.port) : undefined, path: url.pathname,
        query: Object.fromEntries(url.searchParams.entries()),
        headers: { host: url.host, 'x-amz-content-sha256': EMPTY_SHA256 },
      }, { signingDate: now });
      assert.equal(ours.authorization, signed.headers.authorization, href);
      assert.equal(ours['x-amz-date'], amzDate(now));
    }
  });

  it('encodes like RFC 3986, keeping slashes only in paths', () => {
    assert.equal(uriEncode("a b/c+d*!'()~_.-"), 'a%20b%2Fc%2Bd%2A%21%27%28%29~_.-');
    assert.equal(uriEncode('a b/c', true), 'a%20b/c');
  });
});

describe('the bucket check request', () => {
  it('asks for at most one key of the volume\'s prefix, path-style or virtual-hosted', () => {
    assert.equal(listUrl({ bucket: 'b1', prefix: 'p/q', endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', pathStyle: true }).href,
      'http://127.0.0.1:9000/b1?list-type=2&max-keys=1&prefix=p%2Fq%2F');
    assert.equal(listUrl({ bucket: 'b1', prefix: '', endpoint: 'https://s3.example.com', region: 'x', pathStyle: false }).href,
      'https://b1.s3.example.com/?list-type=2&max-keys=1');
    assert.equal(listUrl({ bucket: 'b1', prefix: '', region: 'eu-west-1', pathStyle: false }).host, 'b1.s3.eu-west-1.amazonaws.com');
  });

  it('maps S3\'s answer to the code a CO can act on', () => {
    const code = (s: number): number | undefined => {
      const r = accessFromStatus(s, undefined, 'bucket b');
      return r.ok ? undefined : r.error.code;
    };
    assert.equal(code(200), undefined);
    assert.equal(code(403), status.PERMISSION_DENIED);
    assert.equal(code(404), status.NOT_FOUND);
    assert.equal(code(503), status.UNAVAILABLE);
    assert.equal(code(429), status.UNAVAILABLE);
    assert.equal(code(301), status.FAILED_PRECONDITION);
    assert.equal(code(400), status.FAILED_PRECONDITION);
    assert.equal(s3ErrorCode('<?xml version="1.0"?><Error><Code>NoSuchBucket</Code></Error>'), 'NoSuchBucket');
    assert.equal(s3ErrorCode(''), undefined);
  });
});
