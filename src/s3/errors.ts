// S3 SDK failures -> CSI codes, decided once. Known conditions get their own code and a message that
// names the operation and the bucket; only what we cannot classify becomes INTERNAL.
import { Code, CsiError } from '../errors.js';

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: string;
  cause?: unknown;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET', 'EPROTO', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);
// XAdminUserNotFound: versitygw's answer to an unknown access key (AWS says InvalidAccessKeyId).
const AUTH_NAMES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired', 'AuthorizationHeaderMalformed', 'XAdminUserNotFound']);
const THROTTLE_NAMES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequests', 'ServiceUnavailable', 'RequestTimeout', 'RequestTimeTooSkewed']);

function shape(err: unknown): SdkErrorShape {
  return err && typeof err === 'object' ? (err as SdkErrorShape) : { message: String(err) };
}

/** The S3 error code (`NoSuchBucket`, ...) or network errno of an SDK failure. */
export function s3ErrorName(err: unknown): string {
  const e = shape(err);
  return e.name && e.name !== 'Error' ? e.name : (e.code ?? 'Error');
}

export function httpStatusOf(err: unknown): number | undefined {
  return shape(err).$metadata?.httpStatusCode;
}

function networkCode(err: unknown, depth = 0): string | undefined {
  const e = shape(err);
  if (e.code && NETWORK_CODES.has(e.code)) return e.code;
  if (e.name && NETWORK_CODES.has(e.name)) return e.name;
  if (depth < 3 && e.cause) return networkCode(e.cause, depth + 1);
  // AggregateError from happy-eyeballs connects
  const errors = (err as { errors?: unknown[] } | undefined)?.errors;
  if (depth < 3 && Array.isArray(errors)) for (const inner of errors) {
    const c = networkCode(inner, depth + 1);
    if (c) return c;
  }
  return undefined;
}

export function isNotFound(err: unknown): boolean {
  const name = s3ErrorName(err);
  return name === 'NoSuchBucket' || name === 'NoSuchKey' || name === 'NotFound' || httpStatusOf(err) === 404;
}

/**
 * Translate an SDK error. `what` names the operation and target, e.g. `create bucket "b"`; SDK
 * messages never carry credential values, and the server wrapper scrubs them anyway.
 */
export function s3Error(err: unknown, what: string, signal?: AbortSignal): CsiError {
  if (err instanceof CsiError) return err;
  const e = shape(err);
  const name = s3ErrorName(err);
  const status = httpStatusOf(err);
  // HEAD answers carry no body: the SDK only knows the status then ("Unknown: UnknownError").
  const detail = name === 'Unknown' || e.message === 'UnknownError'
    ? `HTTP ${status ?? '?'}`
    : `${name}${e.message && e.message !== name ? `: ${e.message}` : ''}`.slice(0, 300);
  if (signal?.aborted) {
    return new CsiError(Code.DEADLINE_EXCEEDED, `S3 ${what}: call deadline passed or call cancelled`, { cause: err });
  }
  if (name === 'AbortError') {
    // Our own per-call cap fired (the RPC itself is still alive): the server did not answer in time.
    return new CsiError(Code.UNAVAILABLE, `S3 endpoint did not answer in time while trying to ${what}`, { cause: err });
  }
  const net = networkCode(err);
  if (net) return new CsiError(Code.UNAVAILABLE, `S3 endpoint unreachable while trying to ${what}: ${net}`, { cause: err });
  if (name === 'TimeoutError' || /timed? ?out/i.test(e.message ?? '')) {
    return new CsiError(Code.UNAVAILABLE, `S3 endpoint did not answer in time while trying to ${what}`, { cause: err });
  }
  if (AUTH_NAMES.has(name)) return new CsiError(Code.UNAUTHENTICATED, `S3 rejected the credentials while trying to ${what}: ${detail}`, { cause: err });
  if (name === 'AccessDenied' || name === 'AllAccessDisabled' || status === 403) {
    return new CsiError(Code.PERMISSION_DENIED, `S3 access denied while trying to ${what}: ${detail}`, { cause: err });
  }
  if (name === 'BucketAlreadyExists') {
    return new CsiError(Code.FAILED_PRECONDITION, `cannot ${what}: the bucket name is taken by another account (choose another name or a bucketPrefix)`, { cause: err });
  }
  if (name === 'InvalidBucketName') return new CsiError(Code.INVALID_ARGUMENT, `cannot ${what}: ${detail}`, { cause: err });
  if (name === 'TooManyBuckets') return new CsiError(Code.RESOURCE_EXHAUSTED, `cannot ${what}: ${detail}`, { cause: err });
  if (THROTTLE_NAMES.has(name) || (status !== undefined && status >= 500) || status === 429) {
    return new CsiError(Code.UNAVAILABLE, `S3 unavailable while trying to ${what}: ${detail}`, { cause: err });
  }
  if (isNotFound(err)) return new CsiError(Code.NOT_FOUND, `cannot ${what}: ${detail}`, { cause: err });
  // A bare 400 (HEAD answers have no body) is the server refusing what the caller configured,
  // most often a region that does not match the endpoint.
  if (status === 400 && (name === 'Unknown' || e.message === 'UnknownError')) return new CsiError(Code.INVALID_ARGUMENT, `S3 rejected the request while trying to ${what}: ${detail} (check the region and endpoint)`, { cause: err });
  return new CsiError(Code.INTERNAL, `S3 ${what} failed: ${detail}`, { cause: err });
}
