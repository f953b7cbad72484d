// How to reach S3 for one volume: the request's `secrets` map (the keys of yandex-cloud/k8s-csi-s3,
// so existing Secrets work unchanged) over the driver-level defaults. Shared by controller and node.
import type { S3Defaults } from '../config.js';
import { invalidArgument } from '../errors.js';
import { Secret } from '../secrets.js';
import type { StringMap } from '../csi/messages.js';

/** Secret keys read from CSI `secrets` maps and Kubernetes Secrets. */
export const SECRET_KEYS = {
  accessKeyId: 'accessKeyID',
  secretAccessKey: 'secretAccessKey',
  sessionToken: 'sessionToken',
  endpoint: 'endpoint',
  region: 'region',
} as const;

export interface S3Connection {
  endpoint?: string;
  region: string;
  accessKeyId: Secret;
  secretAccessKey: Secret;
  sessionToken?: Secret;
  pathStyle: boolean;
  caBundle?: string;
  insecureSkipVerify: boolean;
}

export function checkEndpointUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not echoed: an unparsable value may still carry user:password.
    throw invalidArgument('S3 endpoint is not a URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw invalidArgument('S3 endpoint must be an http(s) URL');
  if (parsed.username || parsed.password) throw invalidArgument('S3 endpoint must not carry credentials');
  return url.replace(/\/+$/, '');
}

// Credentials end up in HTTP headers and in s3fs's `ACCESS:SECRET` passwd file: control characters,
// spaces or non-ASCII would break the header (an INTERNAL from deep in the SDK) or add passwd lines.
const CREDENTIAL_RE = /^[\x21-\x7e]+$/;
// What the SDK accepts as a region (a host label); anything else fails inside the SDK as INTERNAL.
const REGION_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
export const isValidRegion = (region: string): boolean => REGION_RE.test(region);

/** INVALID_ARGUMENT naming the key, never echoing the value. */
function checkCredential(value: string, key: string, maxLength: number): void {
  if (value.length > maxLength || !CREDENTIAL_RE.test(value)) {
    throw invalidArgument(`secret key "${key}" is malformed (printable ASCII without spaces, at most ${maxLength} characters)`);
  }
}

/**
 * Credentials and endpoint for a call. `required` = the call cannot proceed without credentials
 * (INVALID_ARGUMENT naming the missing key; the values themselves are never echoed).
 */
export function connectionFrom(secrets: StringMap | undefined, defaults: S3Defaults): S3Connection {
  const s = secrets ?? {};
  const accessKey = s[SECRET_KEYS.accessKeyId] ?? defaults.accessKeyId?.reveal();
  const secretKey = s[SECRET_KEYS.secretAccessKey] ?? defaults.secretAccessKey?.reveal();
  if (!accessKey) throw invalidArgument(`no S3 credentials: secret key "${SECRET_KEYS.accessKeyId}" missing and no driver default`);
  if (!secretKey) throw invalidArgument(`no S3 credentials: secret key "${SECRET_KEYS.secretAccessKey}" missing and no driver default`);
  const token = s[SECRET_KEYS.sessionToken] ?? defaults.sessionToken?.reveal();
  const endpoint = s[SECRET_KEYS.endpoint] || defaults.endpoint;
  checkCredential(accessKey, SECRET_KEYS.accessKeyId, 1024);
  // s3fs's passwd file is `ACCESS:SECRET`: a ':' in the access key would split the line elsewhere.
  if (accessKey.includes(':')) throw invalidArgument(`secret key "${SECRET_KEYS.accessKeyId}" must not contain ":"`);
  checkCredential(secretKey, SECRET_KEYS.secretAccessKey, 1024);
  if (token) checkCredential(token, SECRET_KEYS.sessionToken, 8192);
  const region = s[SECRET_KEYS.region] || defaults.region || 'us-east-1';
  if (!isValidRegion(region)) throw invalidArgument(`S3 region (secret key "${SECRET_KEYS.region}" or volume attribute) is not a valid region name`);
  return {
    endpoint: endpoint ? checkEndpointUrl(endpoint) : undefined,
    region,
    accessKeyId: new Secret(accessKey),
    secretAccessKey: new Secret(secretKey),
    sessionToken: token ? new Secret(token) : undefined,
    pathStyle: defaults.pathStyle,
    caBundle: defaults.caBundle,
    insecureSkipVerify: defaults.insecureSkipVerify,
  };
}
