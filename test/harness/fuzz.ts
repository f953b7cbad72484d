// Hostile CSI requests for the fuzz tests, sent as raw protobuf bytes over the real socket so that
// what the client library would refuse (non-UTF-8 strings, wrong wire types, truncated messages)
// reaches the driver too. Deterministic: the same seed gives the same requests.
import * as grpc from '@grpc/grpc-js';
import { type ServiceName, services } from '../../src/csi/proto.js';

/** mulberry32: small, fast, seedable. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** The places a fuzz run may touch, and the traps it lays for path handling. */
export interface FuzzWorld {
  /** The allowed root (kubelet dir). */
  kubeletDir: string;
  /** A directory outside every allowed root; nothing may appear in it. */
  outsideDir: string;
  /** Inside the kubelet dir: a symlink to /etc. */
  linkToEtc: string;
  /** Inside the kubelet dir: a symlink to outsideDir. */
  linkToOutside: string;
  /** Inside the kubelet dir: a symlink to another pod's volume directory. */
  linkToOtherPod: string;
  /** A volume id that exists, and the secrets that reach it. */
  volumeId: string;
  secrets: Record<string, string>;
  /** A node id the driver accepts. */
  nodeId: string;
}

export interface FuzzCase {
  method: string;
  bytes: Buffer;
  /** Codes this case must get (a single-defect case); undefined = any valid CSI code. */
  expect?: readonly grpc.status[];
  /** The case carries a path outside the allowed roots (must not be OK for stage/publish). */
  outsidePath: boolean;
  note: string;
}

// --- hostile values ------------------------------------------------------------------------------

const INJECTIONS = [
  '-o', '-oallow_other', '--help', '-f', ' -o passwd_file=/etc/shadow', 'allow_other', 'passwd_file=/etc/shadow',
  'url=http://localhost:1', 'a,allow_other', 'nonempty,dev,suid', 'uid=0,gid=0', 'umask=0000', 'exec', 'suid',
  'dev', 'default_permissions', 'bucket;touch /tmp/pwned', '$(touch /tmp/pwned)', '`id`', 'x\n-o allow_other',
  'use_cache=/etc', 'ahbe_conf=/etc/passwd', 'logfile=/etc/cron.d/x', 'mp_umask=000', 'tmpdir=/', 'curldbg',
  'dbglevel=debug', 'ssl_verify_hostname=0', 'nosscache', 'ro', 'rw', 'x'.repeat(5000),
];

function hostileString(r: Rng): string {
  switch (r.int(22)) {
    case 0: return '';
    case 1: return 'a'.repeat(128);
    case 2: return 'a'.repeat(129);
    // Very large values are costly to build and send: rarer, but present.
    case 3: return 'b'.repeat(r.chance(0.05) ? 70_000 : r.pick([200, 1000, 4097]));
    case 4: return `vol\0ume${r.int(100)}`;
    case 5: return '\0';
    case 6: return '\u202e\u0000\uffff\ud800x'; // RTL override, NUL, non-character, lone surrogate
    case 7: return '😀'.repeat(r.int(60) + 1);
    case 8: return r.pick(['..', '.', '/', '../..', '%2e%2e%2f', '..%00', '\\..\\..']);
    case 9: return r.pick(INJECTIONS);
    case 10: return `bucket-${r.int(1e6)}`;
    case 11: return r.pick(['A-UPPER', 'xn--bucket', '192.168.1.1', 'a', 'ab', 'a..b', '-bucket', 'bucket-', 'b_u']);
    case 12: return `fuzz-${r.int(1000)}/${r.pick(['..', '.', 'p/../..', 'ok', '', '//', 'a\0b', 'x'.repeat(200)])}`;
    case 13: return '\n\r\t ';
    case 14: return String.fromCharCode(...Array.from({ length: r.int(40) + 1 }, () => r.int(0x10000)));
    case 15: return `${r.int(2 ** 31)}`;
    case 16: return 'true';
    case 17: return '{"a":1}';
    case 18: return '${jndi:ldap://x}';
    case 19: return 'a/'.repeat(70);
    case 20: return ' leading-space';
    default: return r.pick(['fake-vol-id', 'fake-vol-id-0123', 'pvc-0f0e0d0c-aaaa-bbbb-cccc-000000000000']);
  }
}

function hostilePath(r: Rng, w: FuzzWorld): { path: string; outside: boolean } {
  const k = w.kubeletDir;
  const inside = (p: string): { path: string; outside: boolean } => ({ path: p, outside: false });
  const out = (p: string): { path: string; outside: boolean } => ({ path: p, outside: true });
  switch (r.int(24)) {
    case 0: return out('/');
    case 1: return out('/etc');
    case 2: return out(`/etc/s3fs-csi-fuzz-${r.int(100)}`);
    case 3: return out(`${w.outsideDir}/t${r.int(100)}`);
    case 4: return out(`${k}/../${w.outsideDir.split('/').pop() ?? 'x'}/t${r.int(100)}`);
    case 5: return out(`${k}/pods/../../${w.outsideDir.split('/').pop() ?? 'x'}/dotdot${r.int(100)}`);
    case 6: return out(`${w.linkToEtc}/s3fs-csi-fuzz`);
    case 7: return out(`${w.linkToOutside}/mount${r.int(100)}`);
    case 8: return out(`${w.linkToOtherPod}/mount`);
    case 9: return out(`pods/relative/${r.int(100)}`);
    case 10: return out(`${k}\0/../../${r.int(100)}`);
    case 11: return out(`/proc/self/root${w.outsideDir}/proc${r.int(100)}`);
    case 12: return out(`/${k}/../../..${w.outsideDir}/slashes`);
    case 13: return out(`${k}-sibling/x`); // shares the prefix string, not the directory
    case 14: return out(`/dev/shm/s3fs-csi-fuzz-${r.int(100)}`);
    case 15: return out(`${k}/pods/${'x'.repeat(300)}/${'y'.repeat(300)}/../../../..${w.outsideDir}/long`);
    case 16: return out(`${w.outsideDir}/${'d/'.repeat(60)}deep`);
    case 17: return out('');
    case 18: return inside(`${k}/pods/uid-${r.int(50)}/volumes/kubernetes.io~csi/pv-${r.int(50)}/mount`);
    case 19: return inside(`${k}/plugins/kubernetes.io/csi/s3fs.csi.dev/${r.int(1e6).toString(16)}/globalmount`);
    case 20: return inside(`${k}/pods/uid/volumes/kubernetes.io~csi/${hostileString(r).replace(/\//g, '_').slice(0, 200)}/mount`);
    case 21: return inside(k);
    case 22: return inside(`${k}/pods/uid-${r.int(50)}/./volumes/../volumes/kubernetes.io~csi/pv/mount`);
    default: return out(`${k}/pods/uid-${r.int(50)}/volumes/kubernetes.io~csi/pv/mount/../../../../../..${w.outsideDir}/esc`);
  }
}

function hostileMap(r: Rng, w: FuzzWorld, kind: 'secrets' | 'params' | 'context'): Record<string, string> {
  const m: Record<string, string> = {};
  switch (r.int(8)) {
    case 0: return m;
    case 1: // huge map (far over the spec's 4 KiB)
      for (let i = 0, n = r.chance(0.05) ? 5000 : r.pick([30, 120]); i < n; i++) m[`k${i}`] = 'v'.repeat(r.int(200));
      return m;
    case 2:
      m[hostileString(r)] = hostileString(r);
      return m;
    case 3:
      if (kind === 'secrets') return { ...w.secrets, [r.pick(['accessKeyID', 'secretAccessKey', 'endpoint', 'region'])]: hostileString(r) };
      break;
    case 4:
      if (kind === 'secrets') return { ...w.secrets };
      break;
    case 5:
      if (kind === 'secrets') return { ...w.secrets, endpoint: r.pick(['file:///etc/passwd', 'http://localhost:1', 'gopher://x', '-o', 'http://[::1', 'http://127.0.0.1:1']) };
      break;
    default:
      break;
  }
  const keys = kind === 'params'
    ? ['bucket', 'bucketPrefix', 'options', 'reclaimData', 'region', 'endpoint', 'mounter', 'csi.storage.k8s.io/pvc/name', 'unknown']
    : kind === 'context'
      ? ['bucket', 'prefix', 'options', 'endpoint', 'region', 'mounter', 'csi.storage.k8s.io/ephemeral', 'readonly']
      : ['accessKeyID', 'secretAccessKey', 'sessionToken', 'endpoint', 'region'];
  for (let i = r.int(4); i >= 0; i--) {
    const key = r.pick(keys);
    m[key] = key === 'options' ? r.pick(INJECTIONS) : hostileString(r);
  }
  return m;
}

function hostileCapability(r: Rng): object {
  const modes = ['SINGLE_NODE_WRITER', 'MULTI_NODE_MULTI_WRITER', 'MULTI_NODE_READER_ONLY', 'SINGLE_NODE_READER_ONLY', 'UNKNOWN', 'SINGLE_NODE_MULTI_WRITER'];
  switch (r.int(6)) {
    case 0: return {};
    case 1: return { block: {}, access_mode: { mode: r.pick(modes) } };
    case 2: return { mount: {} };
    case 3: return { mount: { fs_type: hostileString(r) }, access_mode: { mode: r.pick(modes) } };
    case 4: return { mount: { mount_flags: Array.from({ length: r.int(6) + 1 }, () => r.pick(INJECTIONS)), volume_mount_group: hostileString(r) }, access_mode: { mode: r.pick(modes) } };
    default: return { mount: { mount_flags: Array.from({ length: r.chance(0.05) ? 2000 : 100 }, (_v, i) => `opt${i}`) }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
  }
}

function hostileNumber(r: Rng): number {
  return r.pick([0, -1, 1, 2 ** 53, -(2 ** 53), 2 ** 31, 1024 ** 5, 1024 ** 6, r.int(2 ** 40)]);
}

/** A random object carrying every CSI request field name; each RPC's encoder keeps its own fields. */
function hostileRequest(r: Rng, w: FuzzWorld): { request: Record<string, unknown>; outside: boolean } {
  let outside = false;
  const path = (): string => {
    const p = hostilePath(r, w);
    outside ||= p.outside;
    return p.path;
  };
  const maybe = <T>(p: number, v: () => T): T | undefined => (r.chance(p) ? v() : undefined);
  const req: Record<string, unknown> = {
    name: maybe(0.8, () => hostileString(r)),
    volume_id: maybe(0.8, () => (r.chance(0.3) ? w.volumeId : hostileString(r))),
    source_volume_id: maybe(0.3, () => hostileString(r)),
    snapshot_id: maybe(0.3, () => hostileString(r)),
    node_id: maybe(0.5, () => (r.chance(0.5) ? w.nodeId : hostileString(r))),
    staging_target_path: maybe(0.8, path),
    target_path: maybe(0.8, path),
    volume_path: maybe(0.7, path),
    starting_token: maybe(0.3, () => hostileString(r)),
    max_entries: maybe(0.3, () => r.pick([-1, 0, 1, 2 ** 31 - 1])),
    readonly: r.chance(0.5),
    capacity_range: maybe(0.4, () => ({ required_bytes: hostileNumber(r), limit_bytes: hostileNumber(r) })),
    volume_capability: maybe(0.8, () => hostileCapability(r)),
    volume_capabilities: maybe(0.8, () => Array.from({ length: r.chance(0.05) ? 50 : r.pick([0, 1, 2]) }, () => hostileCapability(r))),
    parameters: maybe(0.6, () => hostileMap(r, w, 'params')),
    mutable_parameters: maybe(0.3, () => hostileMap(r, w, 'params')),
    secrets: maybe(0.7, () => hostileMap(r, w, 'secrets')),
    volume_context: maybe(0.6, () => hostileMap(r, w, 'context')),
    publish_context: maybe(0.4, () => hostileMap(r, w, 'context')),
    staging_target_path_extra: undefined,
  };
  return { request: req, outside };
}

// --- single-defect cases: a valid request with exactly one thing wrong ------------------------

const CAP = { mount: { mount_flags: [] }, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };
const INVALID: readonly grpc.status[] = [grpc.status.INVALID_ARGUMENT];
/** A path outside the roots: refused; which refusal code is the driver's choice. */
const REFUSED: readonly grpc.status[] = [grpc.status.INVALID_ARGUMENT, grpc.status.PERMISSION_DENIED];

interface Shape {
  base: (w: FuzzWorld, r: Rng) => Record<string, unknown>;
  /** Fields whose absence the spec makes INVALID_ARGUMENT. */
  required: string[];
  /** Path fields that must stay inside the allowed roots. */
  paths: string[];
}

const stagingPath = (w: FuzzWorld, r: Rng): string => `${w.kubeletDir}/plugins/kubernetes.io/csi/s3fs.csi.dev/fz${r.int(1e6)}/globalmount`;
const targetPath = (w: FuzzWorld, r: Rng): string => `${w.kubeletDir}/pods/fz-${r.int(1e6)}/volumes/kubernetes.io~csi/pv/mount`;

/** Per RPC (of the services that validate input), the shape of a good request. */
export const SHAPES: Record<string, Shape> = {
  CreateVolume: { base: (w, r) => ({ name: `fz-${r.int(1e9)}`, volume_capabilities: [CAP], secrets: w.secrets }), required: ['name', 'volume_capabilities'], paths: [] },
  DeleteVolume: { base: (w) => ({ volume_id: w.volumeId, secrets: w.secrets }), required: ['volume_id'], paths: [] },
  ValidateVolumeCapabilities: { base: (w) => ({ volume_id: w.volumeId, volume_capabilities: [CAP], secrets: w.secrets }), required: ['volume_id', 'volume_capabilities'], paths: [] },
  ControllerExpandVolume: { base: (w) => ({ volume_id: w.volumeId, capacity_range: { required_bytes: 2 * 1024 ** 3 }, secrets: w.secrets }), required: ['volume_id', 'capacity_range'], paths: [] },
  ControllerGetVolume: { base: (w) => ({ volume_id: w.volumeId }), required: ['volume_id'], paths: [] },
  NodeStageVolume: { base: (w, r) => ({ volume_id: w.volumeId, staging_target_path: stagingPath(w, r), volume_capability: CAP, secrets: w.secrets }), required: ['volume_id', 'staging_target_path', 'volume_capability'], paths: ['staging_target_path'] },
  NodeUnstageVolume: { base: (w, r) => ({ volume_id: w.volumeId, staging_target_path: stagingPath(w, r) }), required: ['volume_id', 'staging_target_path'], paths: [] },
  NodePublishVolume: { base: (w, r) => ({ volume_id: w.volumeId, staging_target_path: stagingPath(w, r), target_path: targetPath(w, r), volume_capability: CAP, secrets: w.secrets }), required: ['volume_id', 'target_path', 'volume_capability'], paths: ['target_path', 'staging_target_path'] },
  NodeUnpublishVolume: { base: (w, r) => ({ volume_id: w.volumeId, target_path: targetPath(w, r) }), required: ['volume_id', 'target_path'], paths: [] },
  NodeGetVolumeStats: { base: (w, r) => ({ volume_id: w.volumeId, volume_path: targetPath(w, r) }), required: ['volume_id', 'volume_path'], paths: [] },
  NodeExpandVolume: { base: (w, r) => ({ volume_id: w.volumeId, volume_path: targetPath(w, r) }), required: ['volume_id', 'volume_path'], paths: [] },
};

// --- encoding -------------------------------------------------------------------------------

type Serializer = (value: object) => Buffer;

function serializerOf(service: ServiceName, method: string): Serializer {
  const def = (services[service] as unknown as Record<string, { requestSerialize: Serializer }>)[method];
  if (!def) throw new Error(`unknown method ${service}.${method}`);
  return def.requestSerialize;
}

/** Byte mutations the client library would never produce. */
function mutate(r: Rng, bytes: Buffer): Buffer {
  switch (r.int(7)) {
    case 0: // random bytes
      return Buffer.from(Array.from({ length: r.int(300) }, () => r.int(256)));
    case 1: // truncated
      return bytes.subarray(0, r.int(bytes.length + 1));
    case 2: { // flipped bytes
      const b = Buffer.from(bytes);
      for (let i = 0; i < 1 + r.int(4) && b.length > 0; i++) b[r.int(b.length)] = r.int(256);
      return b;
    }
    case 3: // field 1..8 with a wrong wire type (varint / fixed32 / fixed64 / start-group)
      return Buffer.concat([bytes, Buffer.from([((1 + r.int(8)) << 3) | r.pick([0, 1, 3, 5]), ...Array.from({ length: 8 }, () => r.int(256))])]);
    case 4: // an enormous declared length
      return Buffer.concat([bytes, Buffer.from([(1 << 3) | 2, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x41])]);
    case 5: // a nested message field holding a string where a message belongs
      return Buffer.concat([bytes, Buffer.from([(4 << 3) | 2, 5]), Buffer.from('\xff\xfe\x00/..', 'latin1')]);
    default: // unknown fields (must be ignored)
      return Buffer.concat([bytes, Buffer.from([(99 << 3) | 2, 3, 0x61, 0x62, 0x63, (1000 << 3) & 0x7f | 0x80, 1000 >> 4, 1])]);
  }
}

// Bytes that are not UTF-8 (or are overlong encodings of '/' and '.', the classic traversal trick).
const NON_UTF8 = [
  [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xc0, 0xae, 0xc0, 0xae, 0xc0, 0xaf], [0xff, 0xfe], [0xed, 0xa0, 0x80], [0x80], [0xf8, 0x88, 0x80, 0x80, 0x80],
];

/** Replaces a marker in the encoded bytes with non-UTF-8 bytes of the same length (length prefix stays right). */
function withNonUtf8(r: Rng, encode: Serializer, request: Record<string, unknown>, field: string, prefix: string): Buffer | undefined {
  const raw = Buffer.from(Array.from({ length: 6 }, () => r.pick(NON_UTF8)).flat());
  const marker = 'Q'.repeat(raw.length);
  let bytes: Buffer;
  try {
    bytes = encode({ ...request, [field]: `${prefix}${marker}` });
  } catch {
    return undefined;
  }
  const at = bytes.indexOf(marker);
  if (at < 0) return undefined;
  raw.copy(bytes, at);
  return bytes;
}

export interface Generator {
  next(): FuzzCase;
}

/** Cases for one RPC: single-defect (strict expectation), structural chaos, and raw byte mutations. */
export function generator(service: ServiceName, method: string, world: FuzzWorld, seed: number): Generator {
  const r = new Rng(seed);
  const encode = serializerOf(service, method);
  const shape = SHAPES[method];
  const safeEncode = (req: object): Buffer | undefined => {
    try {
      return encode(req);
    } catch {
      return undefined;
    }
  };
  return {
    next(): FuzzCase {
      const roll = r.next();
      if (shape && roll < 0.2) {
        const base = shape.base(world, r);
        const pathDefect = shape.paths.length > 0 && r.chance(0.5);
        if (pathDefect) {
          // Only outside paths here: every other field is good, so the path is what is refused.
          let p = hostilePath(r, world);
          while (!p.outside || p.path === '') p = hostilePath(r, world);
          const field = r.pick(shape.paths);
          return { method, bytes: encode({ ...base, [field]: p.path }), expect: REFUSED, outsidePath: true, note: `${field} outside the roots: ${p.path.slice(0, 120)}` };
        }
        if (shape.required.length > 0) {
          const field = r.pick(shape.required);
          const req = { ...base };
          delete req[field];
          return { method, bytes: encode(req), expect: INVALID, outsidePath: false, note: `missing ${field}` };
        }
      }
      if (roll < 0.3) {
        const { request } = hostileRequest(r, world);
        const field = r.pick(['volume_id', 'name', 'staging_target_path', 'target_path', 'volume_path', 'node_id']);
        const prefix = field.includes('path') ? `${world.kubeletDir}/pods/` : '';
        const bytes = withNonUtf8(r, encode, request, field, prefix);
        // Decoded, these may spell '/..': treat as possibly outside.
        if (bytes) return { method, bytes, outsidePath: true, note: `non-UTF-8 ${field}` };
      }
      if (roll < 0.45) {
        const { request } = hostileRequest(r, world);
        const bytes = safeEncode(request) ?? Buffer.alloc(0);
        return { method, bytes: mutate(r, bytes), outsidePath: true, note: 'raw mutation' };
      }
      for (;;) {
        const { request, outside } = hostileRequest(r, world);
        const bytes = safeEncode(request);
        if (bytes) return { method, bytes, outsidePath: outside, note: 'hostile fields' };
      }
    },
  };
}

// --- sending ----------------------------------------------------------------------------------

export interface RawResult {
  code: grpc.status;
  details: string;
  ms: number;
}

/** Sends pre-encoded request bytes to `/csi.v1.<service>/<method>`. */
export class RawClient {
  readonly #client: grpc.Client;
  constructor(socketPath: string) {
    this.#client = new grpc.Client(`unix://${socketPath}`, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': 8 * 1024 * 1024,
    });
  }
  call(service: ServiceName, method: string, bytes: Buffer, deadlineMs: number): Promise<RawResult> {
    const started = Date.now();
    return new Promise((resolve) => {
      this.#client.makeUnaryRequest<Buffer, Buffer>(
        `/csi.v1.${service}/${method}`,
        (b) => b,
        (b) => b,
        bytes,
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err) => resolve({ code: err ? err.code : grpc.status.OK, details: err?.details ?? '', ms: Date.now() - started }),
      );
    });
  }
  close(): void {
    this.#client.close();
  }
}

/** Every RPC of a service (from the loaded proto). */
export function methodsOf(service: ServiceName): string[] {
  return Object.keys(services[service]);
}

/** Codes a CSI driver may answer; UNKNOWN, DATA_LOSS and DEADLINE_EXCEEDED (a hang) are not among them. */
export const VALID_CODES: ReadonlySet<grpc.status> = new Set([
  grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.ALREADY_EXISTS,
  grpc.status.PERMISSION_DENIED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.FAILED_PRECONDITION, grpc.status.ABORTED,
  grpc.status.OUT_OF_RANGE, grpc.status.UNIMPLEMENTED, grpc.status.UNAVAILABLE, grpc.status.UNAUTHENTICATED,
]);

/**
 * gRPC's own answer to bytes that are not a protobuf message: INTERNAL "Error deserializing
 * request" from the library, before any driver code runs (Go's gRPC answers the same way).
 */
export function isUndecodable(res: RawResult): boolean {
  return res.code === grpc.status.INTERNAL && res.details.startsWith('Error deserializing request');
}
