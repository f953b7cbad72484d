// The protobuf wire form of csi.v1.ProbeResponse, read with protobufjs's minimal Reader (the runtime
// @grpc/proto-loader itself builds on) instead of loading and parsing csi.proto:
//   message ProbeResponse { google.protobuf.BoolValue ready = 1; }
//   message BoolValue { bool value = 1; }
// `ready` absent means ready (CSI spec); a present BoolValue without `value` is false (proto3 default).
// Unknown fields are skipped, as any protobuf reader does, so a newer CSI version still decodes;
// truncated input makes the Reader throw (RangeError "index out of range").
import protobuf from 'protobufjs/minimal.js';

export interface ProbeReply {
  /** undefined when the driver did not set the field. */
  ready?: boolean;
}

const LENGTH_DELIMITED = 2;
const VARINT = 0;

export function decodeProbeResponse(buf: Uint8Array): ProbeReply {
  const r = protobuf.Reader.create(buf);
  const out: ProbeReply = {};
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 !== 1 || (tag & 7) !== LENGTH_DELIMITED) {
      r.skipType(tag & 7);
      continue;
    }
    // A repeated occurrence of a message field merges; for BoolValue the last `value` wins.
    const end = r.uint32() + r.pos;
    if (end > r.len) throw new RangeError(`index out of range: BoolValue ends at ${end} of ${r.len}`);
    let ready = out.ready ?? false;
    while (r.pos < end) {
      const t = r.uint32();
      if (t >>> 3 === 1 && (t & 7) === VARINT) ready = r.bool();
      else r.skipType(t & 7);
    }
    out.ready = ready;
  }
  return out;
}

export type ProbeResult =
  | { healthy: true; ready: boolean }
  | { healthy: false; reason: string };

const CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists',
  'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange',
  'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
];

/** A gRPC status code's name as Go's codes.Code.String() spells it (the sidecar's messages use it). */
export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `Code(${code})`;
}

/** The grpc-timeout header value: at most 8 digits, so long deadlines go in a coarser unit. */
export function grpcTimeout(ms: number): string {
  const n = Math.max(0, Math.ceil(ms));
  if (n < 1e8) return `${n}m`;
  const s = Math.ceil(n / 1000);
  if (s < 1e8) return `${s}S`;
  return `${Math.min(99_999_999, Math.ceil(s / 3600))}H`;
}

/**
 * The one message of a unary gRPC response body: a 5-byte prefix (compressed flag, big-endian length)
 * and the message. Compression is refused: the request offered none (no grpc-accept-encoding).
 */
export function probeReplyFromFrames<T>(body: Buffer, decode: (msg: Uint8Array) => T): T {
  if (body.length < 5) throw new Error(`response of ${body.length} bytes has no gRPC message`);
  if (body[0] !== 0) throw new Error('response message is compressed, which was not offered');
  const len = body.readUInt32BE(1);
  if (5 + len > body.length) throw new Error(`response message of ${len} bytes is cut short at ${body.length - 5}`);
  return decode(body.subarray(5, 5 + len));
}
